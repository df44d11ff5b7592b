/*
 * Bridge overhead driver: a minimal fake Orthanc host that loads the built plugin library
 * (dlopen), lets it start its gateway exactly as Orthanc would, then times the storage
 * callbacks it registers. Prints one JSON object with per-call latencies.
 *
 *   bridge-overhead <plugin.so> <configuration.json> <iterations per size>
 */
#define _GNU_SOURCE
#include <orthanc/OrthancCPlugin.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *g_configuration;
static OrthancPluginStorageCreate g_create;
static OrthancPluginStorageReadWhole g_read_whole;
static OrthancPluginStorageReadRange g_read_range;
static OrthancPluginStorageRemove g_remove;

static OrthancPluginErrorCode invoke(struct _OrthancPluginContext_t *context, _OrthancPluginService service,
                                     const void *params) {
  (void)context;
  switch (service) {
    case _OrthancPluginService_LogError:
    case _OrthancPluginService_LogWarning:
      fprintf(stderr, "%s\n", (const char *)params);
      return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_LogInfo:
      return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_GetConfiguration: {
      const _OrthancPluginRetrieveDynamicString *p = params;
      *p->result = strdup(g_configuration);
      return OrthancPluginErrorCode_Success;
    }
    case _OrthancPluginService_SetPluginProperty:
      return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_CreateMemoryBuffer64: {
      const _OrthancPluginCreateMemoryBuffer64 *p = params;
      p->target->data = malloc(p->size > 0 ? p->size : 1);
      p->target->size = p->size;
      return p->target->data ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_NotEnoughMemory;
    }
    case _OrthancPluginService_RegisterStorageArea2: {
      const _OrthancPluginRegisterStorageArea2 *p = params;
      g_create = p->create;
      g_read_whole = p->readWhole;
      g_read_range = p->readRange;
      g_remove = p->remove;
      return OrthancPluginErrorCode_Success;
    }
    default:
      fprintf(stderr, "bench host: unexpected service %d\n", (int)service);
      return OrthancPluginErrorCode_NotImplemented;
  }
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void print_stats(const char *op, size_t size, double *samples, int n, int *first) {
  qsort(samples, (size_t)n, sizeof(double), compare);
  printf("%s{\"operation\":\"%s\",\"bytes\":%zu,\"calls\":%d,\"p50Us\":%.1f,\"p90Us\":%.1f}", *first ? "" : ",", op,
         size, n, samples[n / 2], samples[(n * 9) / 10]);
  *first = 0;
}

static char *read_file(const char *path) {
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

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <plugin.so> <configuration.json> <iterations>\n", argv[0]);
    return 2;
  }
  int iterations = atoi(argv[3]);
  g_configuration = read_file(argv[2]);
  void *plugin = dlopen(argv[1], RTLD_NOW);
  if (!plugin || !g_configuration || iterations < 2) {
    fprintf(stderr, "cannot load %s or %s: %s\n", argv[1], argv[2], dlerror());
    return 2;
  }
  int32_t (*initialize)(OrthancPluginContext *) = (int32_t(*)(OrthancPluginContext *))dlsym(plugin, "OrthancPluginInitialize");
  void (*finalize)(void) = (void (*)(void))dlsym(plugin, "OrthancPluginFinalize");
  OrthancPluginContext context = {.orthancVersion = "1.10.1", .Free = free, .InvokeService = invoke};
  if (!initialize || !finalize || initialize(&context) != 0 || !g_create || !g_read_range) {
    fprintf(stderr, "plugin initialization failed\n");
    return 1;
  }

  const size_t sizes[] = {4096, 65536, 1048576};
  double *samples = malloc(sizeof(double) * (size_t)iterations);
  char (*uuids)[40] = malloc(40 * (size_t)iterations);
  int first = 1, failures = 0;
  printf("{\"results\":[");
  for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    size_t size = sizes[s];
    unsigned char *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = (unsigned char)(i * 31 + s);
    for (int i = 0; i < iterations; i++) {
      snprintf(uuids[i], 40, "%08x-0000-4000-8000-%012x", (unsigned)s, (unsigned)i);
      double start = now_us();
      failures += g_create(uuids[i], data, (int64_t)size, OrthancPluginContentType_Dicom) != 0;
      samples[i] = now_us() - start;
    }
    print_stats("create", size, samples, iterations, &first);
    for (int i = 0; i < iterations; i++) {
      OrthancPluginMemoryBuffer64 buffer = {0};
      double start = now_us();
      int rc = g_read_whole(&buffer, uuids[i], OrthancPluginContentType_Dicom);
      samples[i] = now_us() - start;
      failures += rc != 0 || buffer.size != size || memcmp(buffer.data, data, size) != 0;
      free(buffer.data);
    }
    print_stats("readWhole", size, samples, iterations, &first);
    for (int i = 0; i < iterations; i++) {
      OrthancPluginMemoryBuffer64 buffer = {.data = malloc(size / 2), .size = size / 2};
      double start = now_us();
      int rc = g_read_range(&buffer, uuids[i], OrthancPluginContentType_Dicom, size / 4);
      samples[i] = now_us() - start;
      failures += rc != 0 || memcmp(buffer.data, data + size / 4, size / 2) != 0;
      free(buffer.data);
    }
    print_stats("readRange(half)", size, samples, iterations, &first);
    for (int i = 0; i < iterations; i++) failures += g_remove(uuids[i], OrthancPluginContentType_Dicom) != 0;
    free(data);
  }
  printf("],\"failures\":%d}\n", failures);
  fflush(stdout);
  finalize();
  return failures == 0 ? 0 : 1;
}
