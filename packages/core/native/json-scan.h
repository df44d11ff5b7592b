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

/* Element `index` of the array at `array` (on its '['), or NULL. */
const char *json_item(const char *array, size_t index);

/* Decodes the string value at `value` (on its opening quote) into `out`. Returns 0, or -1 when it
 * is not a string, malformed or longer than `capacity`. */
int json_string_value(const char *value, char *out, size_t capacity);

/* Integer value of member `key`, or `fallback` when it is absent or not a number. */
long long json_member_integer(const char *object, const char *key, long long fallback);

#pragma GCC visibility pop

#endif
