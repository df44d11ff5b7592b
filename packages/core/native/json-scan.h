/*
 * Just enough JSON reading for the shim: Orthanc's configuration (written by JsonCpp) and the
 * gateway's handshake line (written by JSON.stringify). Validation is the gateway's job.
 */
#ifndef OOS_JSON_SCAN_H
#define OOS_JSON_SCAN_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Value of `key` in the object at `object` (on its '{'), or NULL. */
const char *json_member(const char *object, const char *key);

/* Decodes the string member `key` into `out`. Returns 0, or -1 when it is absent, not a string,
 * malformed or longer than `capacity`. */
int json_member_string(const char *object, const char *key, char *out, size_t capacity);

#pragma GCC visibility pop

#endif
