/*
 * Native shim of the Orthanc object-storage plugins: Orthanc's entry points and storage callbacks.
 *
 * Orthanc loads plugins as C shared libraries; all logic (configuration, naming, encryption,
 * backends) lives in a TypeScript gateway process. The shim only:
 *   - finds whether the provider's section exists (here) and which Node runtime to run
 *     (node-runtime.c);
 *   - starts the gateway and restarts it with backoff if it dies (gateway-process.c);
 *   - forwards each storage callback over a Unix socket, with pooled connections and a
 *     deadline on every call (wire.c);
 *   - forwards the gateway's log lines to Orthanc's log (gateway-process.c);
 *   - registers the REST routes and job types the gateway announces and forwards their callbacks,
 *     serving the gateway's own requests to Orthanc's REST API meanwhile (forward.c).
 */
#define _GNU_SOURCE
#include "shim.h"

#include "forward.h"
#include "gateway-process.h"
#include "json-scan.h"
#include "node-runtime.h"
#include "wire.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static OrthancPluginContext *g_context;

OrthancPluginContext *plugin_context(void) { return g_context; }

void log_message(log_level level, const char *format, ...) {
  char *text = NULL;
  char *line = NULL;
  va_list args;
  va_start(args, format);
  int ok = vasprintf(&text, format, args);
  va_end(args);
  if (ok < 0 || g_context == NULL) return;
  if (asprintf(&line, "%s: %s", OOS_PLUGIN_NAME, text) >= 0) {
    if (level == LOG_INFO) OrthancPluginLogInfo(g_context, line);
    else if (level == LOG_WARNING) OrthancPluginLogWarning(g_context, line);
    else OrthancPluginLogError(g_context, line);
    free(line);
  }
  free(text);
}

static OrthancPluginErrorCode storage_create(const char *uuid, const void *content, int64_t size,
                                             OrthancPluginContentType type) {
  if (size < 0) return OrthancPluginErrorCode_ParameterOutOfRange;
  call_request request = {.op = OP_CREATE, .uuid = uuid, .type = type, .size = (uint64_t)size, .body = content};
  return wire_call(&request);
}

static OrthancPluginErrorCode storage_read_whole(OrthancPluginMemoryBuffer64 *target, const char *uuid,
                                                 OrthancPluginContentType type) {
  call_request request = {.op = OP_READ_WHOLE, .uuid = uuid, .type = type, .target = target};
  return wire_call(&request);
}

static OrthancPluginErrorCode storage_read_range(OrthancPluginMemoryBuffer64 *target, const char *uuid,
                                                 OrthancPluginContentType type, uint64_t range_start) {
  call_request request = {.op = OP_READ_RANGE, .uuid = uuid, .type = type, .offset = range_start,
                          .size = target->size, .target = target};
  return wire_call(&request);
}

static OrthancPluginErrorCode storage_remove(const char *uuid, OrthancPluginContentType type) {
  call_request request = {.op = OP_REMOVE, .uuid = uuid, .type = type};
  return wire_call(&request);
}

/* Finds the provider's section; returns its name, or NULL when absent. */
static const char *find_section(const char *configuration) {
  if (json_member(configuration, OOS_SECTION) != NULL) return OOS_SECTION;
#ifdef OOS_LEGACY_SECTION
  if (json_member(configuration, OOS_LEGACY_SECTION) != NULL) return OOS_LEGACY_SECTION;
#endif
  return NULL;
}

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext *context) {
  g_context = context;
  if (!OrthancPluginCheckVersionAdvanced(context, 1, 9, 0)) {
    log_message(LOG_ERROR, "this plugin needs Orthanc 1.9.0 or later (this is %s)", context->orthancVersion);
    return -1;
  }
  OrthancPluginSetDescription(context, OOS_PLUGIN_DESCRIPTION);

  char *configuration = OrthancPluginGetConfiguration(context);
  if (configuration == NULL) {
    log_message(LOG_ERROR, "cannot read Orthanc's configuration");
    return -1;
  }
  const char *section = find_section(configuration);
  if (section == NULL) {
    log_message(LOG_WARNING, "%s section missing: plugin disabled", OOS_SECTION);
    OrthancPluginFreeString(context, configuration);
    return 0;
  }

  char configured_node[PATH_MAX], node[PATH_MAX];
  const char *section_value = json_member(configuration, section);
  int configured = section_value != NULL && *section_value == '{' &&
                   json_member(section_value, "NodeExecutable") != NULL;
  if (configured &&
      (json_member_string(section_value, "NodeExecutable", configured_node, sizeof(configured_node)) != 0 ||
       configured_node[0] == '\0')) {
    log_message(LOG_ERROR, "\"%s.NodeExecutable\" must be a non-empty path string", section);
    OrthancPluginFreeString(context, configuration);
    return -1;
  }
  if (resolve_node_runtime(configured ? configured_node : NULL, section, node, sizeof(node)) != 0) {
    OrthancPluginFreeString(context, configuration);
    return -1;
  }
  /* Orthanc resolves relative paths of its configuration against the file's folder. */
  char *configuration_path = OrthancPluginGetConfigurationPath(context);
  int prepared = gateway_prepare(node, section, configuration_path ? configuration_path : "", configuration) == 0;
  if (configuration_path) OrthancPluginFreeString(context, configuration_path);
  OrthancPluginFreeString(context, configuration);
  int range_reads;
  pid_t pid;
  if (!prepared || gateway_start(&range_reads, &pid) != 0) return -1;

  if (forward_register(gateway_ready_handshake()) != 0) {
    gateway_stop();
    return -1;
  }
  OrthancPluginRegisterStorageArea2(context, storage_create, storage_read_whole,
                                    range_reads ? storage_read_range : NULL, storage_remove);
  log_message(LOG_WARNING,
              "storage area registered (section %s, gateway pid %d with %d worker threads, range reads %s, "
              "call timeout %lld s without progress)",
              section, (int)pid, gateway_worker_count(), range_reads ? "on" : "off: whole-file reads only",
              (long long)(gateway_call_timeout_ms() / 1000));
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void) { gateway_stop(); }

ORTHANC_PLUGINS_API const char *OrthancPluginGetName(void) { return OOS_PLUGIN_NAME; }

ORTHANC_PLUGINS_API const char *OrthancPluginGetVersion(void) { return OOS_PLUGIN_VERSION; }
