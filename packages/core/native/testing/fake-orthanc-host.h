/*
 * What the fake Orthanc hosts of the benchmarks and tests share (packages/core/src/bench/
 * bridge-overhead.c, tooling/e2e/src/harness/shim-host.c): the few services a storage plugin asks
 * Orthanc for, and loading the plugin as Orthanc does. Header only, so each host stays one C file
 * compiled on demand (add -I packages/core/native/testing).
 */
#ifndef FAKE_ORTHANC_HOST_H
#define FAKE_ORTHANC_HOST_H

#include <orthanc/OrthancCPlugin.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The storage area the plugin registered (RegisterStorageArea2). */
static struct {
  OrthancPluginStorageCreate create;
  OrthancPluginStorageReadWhole read_whole;
  OrthancPluginStorageReadRange read_range;
  OrthancPluginStorageRemove remove;
} g_storage;

/* Receives the plugin's log lines; level 'I', 'W' or 'E'. Set by the host before loading. */
static void (*g_log_sink)(char level, const char *text);

static char *g_configuration;

/* Everything else (REST routes, jobs) is refused: the hosts only drive the storage area. */
static OrthancPluginErrorCode fake_invoke(struct _OrthancPluginContext_t *context, _OrthancPluginService service,
                                          const void *params) {
  (void)context;
  switch (service) {
    case _OrthancPluginService_LogError: g_log_sink('E', params); return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_LogWarning: g_log_sink('W', params); return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_LogInfo: g_log_sink('I', params); return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_GetConfiguration: {
      const _OrthancPluginRetrieveDynamicString *p = params;
      *p->result = strdup(g_configuration);
      return OrthancPluginErrorCode_Success;
    }
    case _OrthancPluginService_SetPluginProperty: return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_CreateMemoryBuffer64: {
      const _OrthancPluginCreateMemoryBuffer64 *p = params;
      p->target->data = malloc(p->size > 0 ? p->size : 1);
      p->target->size = p->size;
      return p->target->data ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_NotEnoughMemory;
    }
    case _OrthancPluginService_RegisterStorageArea2: {
      const _OrthancPluginRegisterStorageArea2 *p = params;
      g_storage.create = p->create;
      g_storage.read_whole = p->readWhole;
      g_storage.read_range = p->readRange;
      g_storage.remove = p->remove;
      return OrthancPluginErrorCode_Success;
    }
    default: return OrthancPluginErrorCode_NotImplemented;
  }
}

static char *read_whole_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)size + 1);
  if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
    free(text);
    text = NULL;
  }
  if (text) text[size] = '\0';
  fclose(f);
  return text;
}

/* The loaded plugin's OrthancPluginFinalize; NULL until load_plugin found it. */
static void (*g_finalize)(void);

/*
 * Loads the plugin with Orthanc's whole configuration (a JSON file) and initializes it, as
 * Orthanc 1.10.1 would. Returns 0 once it registered its storage area; 2 when the files cannot be
 * loaded (said on stderr, prefixed with `prefix`), 1 when the plugin refused to start.
 */
static int load_plugin(const char *plugin_path, const char *configuration_path, const char *prefix) {
  g_configuration = read_whole_file(configuration_path);
  void *plugin = dlopen(plugin_path, RTLD_NOW);
  if (!plugin || !g_configuration) {
    fprintf(stderr, "%scannot load %s or %s: %s\n", prefix, plugin_path, configuration_path, dlerror());
    return 2;
  }
  int32_t (*initialize)(OrthancPluginContext *) =
      (int32_t(*)(OrthancPluginContext *))dlsym(plugin, "OrthancPluginInitialize");
  g_finalize = (void (*)(void))dlsym(plugin, "OrthancPluginFinalize");
  static OrthancPluginContext context = {.orthancVersion = "1.10.1", .Free = free, .InvokeService = fake_invoke};
  if (!initialize || !g_finalize || initialize(&context) != 0 || !g_storage.create) return 1;
  return 0;
}

#endif
