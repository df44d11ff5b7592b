/* Minimal JSON scanner: a member of an object, and a string value decoded to UTF-8. */
#include "json-scan.h"

#include <stdlib.h>
#include <string.h>

static const char *json_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

static void utf8_put(char **out, char *end, unsigned code) {
  unsigned char bytes[4];
  int n;
  if (code < 0x80) { bytes[0] = (unsigned char)code; n = 1; }
  else if (code < 0x800) { bytes[0] = (unsigned char)(0xC0 | (code >> 6)); bytes[1] = (unsigned char)(0x80 | (code & 0x3F)); n = 2; }
  else if (code < 0x10000) {
    bytes[0] = (unsigned char)(0xE0 | (code >> 12));
    bytes[1] = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
    bytes[2] = (unsigned char)(0x80 | (code & 0x3F));
    n = 3;
  } else {
    bytes[0] = (unsigned char)(0xF0 | (code >> 18));
    bytes[1] = (unsigned char)(0x80 | ((code >> 12) & 0x3F));
    bytes[2] = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
    bytes[3] = (unsigned char)(0x80 | (code & 0x3F));
    n = 4;
  }
  for (int i = 0; i < n; i++) {
    if (*out < end) *(*out)++ = (char)bytes[i];
  }
}

static int hex4(const char *p, unsigned *value) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *value = v;
  return 0;
}

/* Decodes the string at `p` (on its opening quote) into `out` (may be NULL to skip it).
 * Returns the position after the closing quote, or NULL if malformed or too long for `out`.
 * JsonCpp (Orthanc's configuration) writes every non-ASCII character as \uXXXX, astral ones as
 * surrogate pairs, so all of this is needed. Only "\/" is never written; it stays because a string
 * that failed to decode would make the whole provider section look absent. */
static const char *json_string(const char *p, char *out, size_t capacity) {
  char *o = out;
  char *end = out ? out + capacity - 1 : NULL;
  int truncated = 0;
  if (*p != '"') return NULL;
  p++;
  while (*p != '"') {
    unsigned code;
    if (*p == '\0') return NULL;
    if (*p != '\\') {
      code = (unsigned char)*p++;
      if (out) {
        if (o < end) *o++ = (char)code;
        else truncated = 1;
      }
      continue;
    }
    p++;
    switch (*p) {
      case '"': code = '"'; break;
      case '\\': code = '\\'; break;
      case '/': code = '/'; break;
      case 'b': code = '\b'; break;
      case 'f': code = '\f'; break;
      case 'n': code = '\n'; break;
      case 'r': code = '\r'; break;
      case 't': code = '\t'; break;
      case 'u':
        if (hex4(p + 1, &code) != 0) return NULL;
        p += 4;
        if (code >= 0xD800 && code < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
          unsigned low;
          if (hex4(p + 3, &low) == 0 && low >= 0xDC00 && low < 0xE000) {
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
          }
        }
        break;
      default: return NULL;
    }
    p++;
    if (out) {
      char *before = o;
      utf8_put(&o, end, code);
      if (o == before) truncated = 1;
    }
  }
  if (out) *o = '\0';
  return truncated ? NULL : p + 1;
}

static const char *json_skip(const char *p, int depth) {
  p = json_ws(p);
  if (depth > 64) return NULL;
  if (*p == '"') return json_string(p, NULL, 0);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = json_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        p = json_string(json_ws(p), NULL, 0);
        if (!p) return NULL;
        p = json_ws(p);
        if (*p++ != ':') return NULL;
      }
      p = json_skip(p, depth + 1);
      if (!p) return NULL;
      p = json_ws(p);
      if (*p == ',') { p++; continue; }
      if (*p == close) return p + 1;
      return NULL;
    }
  }
  const char *start = p;
  while (*p && strchr(",}] \t\r\n", *p) == NULL) p++;
  return p == start ? NULL : p;
}

const char *json_member(const char *object, const char *key) {
  char name[256];
  const char *p = json_ws(object);
  if (*p != '{') return NULL;
  p = json_ws(p + 1);
  if (*p == '}') return NULL;
  for (;;) {
    const char *after = json_string(json_ws(p), name, sizeof(name));
    int match = after != NULL && strcmp(name, key) == 0;
    if (!after) after = json_string(json_ws(p), NULL, 0); /* a long key: skip it */
    if (!after) return NULL;
    p = json_ws(after);
    if (*p++ != ':') return NULL;
    p = json_ws(p);
    if (match) return p;
    p = json_skip(p, 1);
    if (!p) return NULL;
    p = json_ws(p);
    if (*p != ',') return NULL;
    p++;
  }
}

int json_member_string(const char *object, const char *key, char *out, size_t capacity) {
  const char *value = json_member(object, key);
  return value != NULL && *value == '"' && json_string(value, out, capacity) != NULL ? 0 : -1;
}

const char *json_item(const char *array, size_t index) {
  const char *p = json_ws(array);
  if (*p != '[') return NULL;
  p = json_ws(p + 1);
  if (*p == ']') return NULL;
  for (size_t i = 0;; i++) {
    p = json_ws(p);
    if (i == index) return p;
    p = json_skip(p, 1);
    if (!p) return NULL;
    p = json_ws(p);
    if (*p != ',') return NULL;
    p++;
  }
}

int json_string_value(const char *value, char *out, size_t capacity) {
  return value != NULL && *value == '"' && json_string(value, out, capacity) != NULL ? 0 : -1;
}

long long json_member_integer(const char *object, const char *key, long long fallback) {
  const char *value = json_member(object, key);
  if (value == NULL || !(*value == '-' || (*value >= '0' && *value <= '9'))) return fallback;
  return strtoll(value, NULL, 10);
}
