/* Growable JSON text: see json-write.h. */
#include "json-write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(json_buffer *buffer, const char *bytes, size_t count) {
  if (buffer->failed) return;
  if (buffer->length + count + 1 > buffer->capacity) {
    size_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (buffer->length + count + 1 > capacity) capacity *= 2;
    char *grown = realloc(buffer->data, capacity);
    if (grown == NULL) {
      buffer->failed = 1;
      return;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
  }
  memcpy(buffer->data + buffer->length, bytes, count);
  buffer->length += count;
  buffer->data[buffer->length] = '\0';
}

void json_raw(json_buffer *buffer, const char *text) { append(buffer, text, strlen(text)); }

void json_quoted(json_buffer *buffer, const char *text) {
  append(buffer, "\"", 1);
  const char *run = text;
  for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
    if (*s != '"' && *s != '\\' && *s >= 0x20) continue;
    append(buffer, run, (size_t)((const char *)s - run));
    char escaped[8];
    if (*s == '"' || *s == '\\') snprintf(escaped, sizeof(escaped), "\\%c", *s);
    else snprintf(escaped, sizeof(escaped), "\\u%04x", *s);
    append(buffer, escaped, strlen(escaped));
    run = (const char *)s + 1;
  }
  append(buffer, run, strlen(run));
  append(buffer, "\"", 1);
}

void json_integer(json_buffer *buffer, long long value) {
  char text[32];
  snprintf(text, sizeof(text), "%lld", value);
  json_raw(buffer, text);
}

const char *json_text(json_buffer *buffer) {
  if (buffer->failed) return NULL;
  if (buffer->data == NULL) append(buffer, "", 0);
  return buffer->failed ? NULL : buffer->data;
}

void json_free(json_buffer *buffer) {
  free(buffer->data);
  buffer->data = NULL;
  buffer->length = buffer->capacity = 0;
  buffer->failed = 0;
}
