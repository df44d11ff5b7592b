/*
 * Just enough JSON writing for the shim: the metadata of forwarded calls (REST requests, job
 * callbacks). A growable buffer; an allocation failure is remembered and reported once at the end.
 */
#ifndef OOS_JSON_WRITE_H
#define OOS_JSON_WRITE_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

typedef struct {
  char *data;
  size_t length;
  size_t capacity;
  int failed;
} json_buffer;

void json_raw(json_buffer *buffer, const char *text);

/* `text` as a JSON string literal (quoted and escaped). */
void json_quoted(json_buffer *buffer, const char *text);

void json_integer(json_buffer *buffer, long long value);

/* The finished text (owned by the buffer), or NULL when an allocation failed. */
const char *json_text(json_buffer *buffer);

void json_free(json_buffer *buffer);

#pragma GCC visibility pop

#endif
