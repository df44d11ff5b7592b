/*
 * Shared by the native shim's files: build-time identity, logging and clock helpers.
 *
 * Build-time identity (see scripts/build-artifact.mjs): OOS_PLUGIN_NAME, OOS_PLUGIN_VERSION,
 * OOS_PLUGIN_DESCRIPTION, OOS_PROVIDER, OOS_SECTION and optionally OOS_LEGACY_SECTION.
 */
#ifndef OOS_SHIM_H
#define OOS_SHIM_H

#include <orthanc/OrthancCPlugin.h>

#include <stdint.h>
#include <time.h>

#ifndef OOS_PLUGIN_NAME
#define OOS_PLUGIN_NAME "File System Object Storage"
#endif
#ifndef OOS_PLUGIN_VERSION
#define OOS_PLUGIN_VERSION "0.0.0"
#endif
#ifndef OOS_PLUGIN_DESCRIPTION
#define OOS_PLUGIN_DESCRIPTION "Stores the Orthanc storage area through the object-storage gateway"
#endif
#ifndef OOS_PROVIDER
#define OOS_PROVIDER "filesystem"
#endif
#ifndef OOS_SECTION
#define OOS_SECTION "FileSystemObjectStorage"
#endif

/* Every header of the shim hides its functions from the library's dynamic symbol table: only
 * Orthanc's entry points are exported, and no other library can interpose our internals. */
#pragma GCC visibility push(hidden)

typedef enum { LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

/* Orthanc's log, prefixed with the plugin's name (plugin.c). */
void log_message(log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* The context Orthanc passed to OrthancPluginInitialize. */
OrthancPluginContext *plugin_context(void);

static inline int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* For pthread_cond_timedwait on conditions created with CLOCK_MONOTONIC. */
static inline struct timespec deadline_timespec(int64_t deadline_ms) {
  struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
  return ts;
}

#pragma GCC visibility pop

#endif
