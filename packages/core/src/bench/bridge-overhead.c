/*
 * Bridge overhead driver: a minimal fake Orthanc host that loads the built plugin library
 * (dlopen), lets it start its gateway exactly as Orthanc would, then times the storage
 * callbacks it registers. Prints one JSON object with per-call latencies.
 *
 *   bridge-overhead <plugin.so> <configuration.json> <iterations per size>
 *   bridge-overhead <plugin.so> <configuration.json> large <bytes> <range reads>
 *
 * The second form writes one object of <bytes> through the shim, reads it whole, then reads
 * 4 KiB ranges from its middle, and reports for each phase the time and what the gateway
 * process used: peak RSS (VmHWM, reset between phases), bytes it read (rchar) and CPU time.
 */
#define _GNU_SOURCE
#include "fake-orthanc-host.h"

#include <time.h>
#include <unistd.h>

static int g_gateway_pid;

/* Warnings and errors go to stderr; the shim's startup warning names the gateway's pid. */
static void log_line(char level, const char *text) {
  if (level == 'I') return;
  const char *pid = strstr(text, "gateway pid ");
  if (pid != NULL) g_gateway_pid = atoi(pid + strlen("gateway pid "));
  fprintf(stderr, "%s\n", text);
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

/* One number from a /proc/<gateway>/ file: the integer after `key`. */
static long long proc_value(const char *file, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/%s", g_gateway_pid, file);
  FILE *f = fopen(path, "r");
  long long value = -1;
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, key, strlen(key)) == 0) value = atoll(line + strlen(key));
  if (f) fclose(f);
  return value;
}

/* The gateway's CPU time (user + system) in ms, from /proc/<pid>/stat. */
static double gateway_cpu_ms(void) {
  char path[64], text[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", g_gateway_pid);
  FILE *f = fopen(path, "r");
  if (!f || !fgets(text, sizeof(text), f)) {
    if (f) fclose(f);
    return -1;
  }
  fclose(f);
  const char *after = strrchr(text, ')');
  unsigned long long utime = 0, stime = 0;
  if (after) sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime);
  return (double)(utime + stime) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static void reset_peak_rss(void) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/clear_refs", g_gateway_pid);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

typedef struct {
  double start_us, cpu_ms;
  long long rchar;
} phase;

static phase phase_begin(void) {
  reset_peak_rss();
  phase p = {now_us(), gateway_cpu_ms(), proc_value("io", "rchar: ")};
  return p;
}

static void phase_end(const char *name, phase p, int calls, int *first) {
  printf("%s\"%s\":{\"ms\":%.3f,\"calls\":%d,\"gatewayPeakRssKiB\":%lld,\"gatewayReadBytes\":%lld,"
         "\"gatewayCpuMs\":%.1f}",
         *first ? "" : ",", name, (now_us() - p.start_us) / 1000.0, calls, proc_value("status", "VmHWM:"),
         proc_value("io", "rchar: ") - p.rchar, gateway_cpu_ms() - p.cpu_ms);
  *first = 0;
}

static unsigned char pattern(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

/* Large-object mode: see the comment at the top. */
static int run_large(size_t size, int ranges) {
  const char *uuid = "0a1b2c3d-0000-4000-8000-00000000c1c1";
  const size_t range = 4096, offset = size / 2 + 12345;
  unsigned char *data = malloc(size);
  if (!data) return 2;
  for (size_t i = 0; i < size; i++) data[i] = pattern(i);
  int failures = 0, first = 1;
  printf("{\"bytes\":%zu,\"rangeBytes\":%zu,\"rangeOffset\":%zu,\"gatewayPid\":%d,\"baselineRssKiB\":%lld,",
         size, range, offset, g_gateway_pid, proc_value("status", "VmRSS:"));
  printf("\"phases\":{");
  phase p = phase_begin();
  failures += g_storage.create(uuid, data, (int64_t)size, OrthancPluginContentType_Dicom) != 0;
  phase_end("create", p, 1, &first);
  free(data);

  OrthancPluginMemoryBuffer64 whole = {0};
  p = phase_begin();
  failures += g_storage.read_whole(&whole, uuid, OrthancPluginContentType_Dicom) != 0;
  phase_end("readWhole", p, 1, &first);
  for (size_t i = 0; i < whole.size && failures == 0; i++) failures += whole.data && ((unsigned char *)whole.data)[i] != pattern(i);
  failures += whole.size != size;
  free(whole.data);

  double *samples = malloc(sizeof(double) * (size_t)ranges);
  p = phase_begin();
  for (int r = 0; r < ranges; r++) {
    OrthancPluginMemoryBuffer64 buffer = {.data = malloc(range), .size = range};
    double start = now_us();
    int rc = g_storage.read_range(&buffer, uuid, OrthancPluginContentType_Dicom, offset);
    samples[r] = now_us() - start;
    failures += rc != 0;
    for (size_t i = 0; i < range && rc == 0; i++) failures += ((unsigned char *)buffer.data)[i] != pattern(offset + i);
    free(buffer.data);
  }
  phase_end("readRange4KiB", p, ranges, &first);
  double first_range = samples[0];
  qsort(samples, (size_t)ranges, sizeof(double), compare);
  printf("},\"range4KiBFirstUs\":%.1f,\"range4KiBP50Us\":%.1f,\"range4KiBP90Us\":%.1f", first_range,
         samples[ranges / 2], samples[(ranges * 9) / 10]);
  free(samples);
  failures += g_storage.remove(uuid, OrthancPluginContentType_Dicom) != 0;
  printf(",\"failures\":%d}\n", failures);
  fflush(stdout);
  return failures;
}

int main(int argc, char **argv) {
  int large = argc == 6 && strcmp(argv[3], "large") == 0;
  if (argc != 4 && !large) {
    fprintf(stderr, "usage: %s <plugin.so> <configuration.json> <iterations> | large <bytes> <ranges>\n", argv[0]);
    return 2;
  }
  int iterations = large ? atoi(argv[5]) : atoi(argv[3]);
  if (iterations < 2) {
    fprintf(stderr, "iterations must be 2 or more, got %d\n", iterations);
    return 2;
  }
  g_log_sink = log_line;
  int loaded = load_plugin(argv[1], argv[2], "");
  if (loaded == 2) return 2;
  if (loaded != 0 || !g_storage.read_range) {
    fprintf(stderr, "plugin initialization failed\n");
    return 1;
  }
  if (large) {
    int failures = run_large((size_t)strtoull(argv[4], NULL, 10), iterations);
    g_finalize();
    return failures == 0 ? 0 : 1;
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
      failures += g_storage.create(uuids[i], data, (int64_t)size, OrthancPluginContentType_Dicom) != 0;
      samples[i] = now_us() - start;
    }
    print_stats("create", size, samples, iterations, &first);
    for (int i = 0; i < iterations; i++) {
      OrthancPluginMemoryBuffer64 buffer = {0};
      double start = now_us();
      int rc = g_storage.read_whole(&buffer, uuids[i], OrthancPluginContentType_Dicom);
      samples[i] = now_us() - start;
      failures += rc != 0 || buffer.size != size || memcmp(buffer.data, data, size) != 0;
      free(buffer.data);
    }
    print_stats("readWhole", size, samples, iterations, &first);
    for (int i = 0; i < iterations; i++) {
      OrthancPluginMemoryBuffer64 buffer = {.data = malloc(size / 2), .size = size / 2};
      double start = now_us();
      int rc = g_storage.read_range(&buffer, uuids[i], OrthancPluginContentType_Dicom, size / 4);
      samples[i] = now_us() - start;
      failures += rc != 0 || memcmp(buffer.data, data + size / 4, size / 2) != 0;
      free(buffer.data);
    }
    print_stats("readRange(half)", size, samples, iterations, &first);
    for (int i = 0; i < iterations; i++) failures += g_storage.remove(uuids[i], OrthancPluginContentType_Dicom) != 0;
    free(data);
  }
  printf("],\"failures\":%d}\n", failures);
  fflush(stdout);
  g_finalize();
  return failures == 0 ? 0 : 1;
}
