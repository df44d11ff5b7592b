/*
 * A fake Orthanc host for shim-level tests: loads a built plugin library (dlopen), lets it start
 * its gateway exactly as Orthanc would, then runs storage calls read from stdin on a pool of
 * threads, as Orthanc's HTTP threads would. Driven by src/harness/shim-host.ts.
 *
 *   shim-host <plugin.so> <configuration.json> <threads>
 *
 * stdout: {"ready":true,"rangeReads":B} (or {"ready":false}), then one JSON line per call:
 *   {"id","rc","ms","size","match","pluginCpuMs","checkCpuMs"}, the last two the calling thread's
 *   CPU inside the plugin's callback and in the host's own work (content check).
 * stderr: the plugin's log, one "I|W|E<space>message" line per entry.
 * stdin, one command per line (content is a pure function of seed and byte position):
 *   C id uuid type size seed          create
 *   R id uuid type size seed          read whole, compared with the content
 *   G id uuid type offset length seed read a range, compared with the content
 *   D id uuid type                    remove
 *   Q                                 wait for the calls in flight, finalize, exit
 * Threads: "shim-host" (reads commands), "caller" (the calls; /proc/<pid>/task/<tid>/comm).
 */
#define _GNU_SOURCE
#include "fake-orthanc-host.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static pthread_mutex_t g_output_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_line(char level, const char *text) {
  pthread_mutex_lock(&g_output_lock);
  fprintf(stderr, "%c %s\n", level, text);
  fflush(stderr);
  pthread_mutex_unlock(&g_output_lock);
}

/* The content of `seed`: byte p is pool[(start(seed) + p) % POOL_PERIOD], a pure function of seed
 * and byte position, cheap to produce and to check so that the host's own CPU per call stays small
 * beside the shim's and the gateway's (the benchmark measures those). The pool is random bytes
 * (splitmix64) made once; a create of up to SLICE_MAX bytes hands over a slice of it, as Orthanc
 * hands over its own buffer, and every read is checked byte for byte with memcmp. The period is
 * odd, so no power-of-two shift of the content (a chunk or part misplaced) can match. */
#define POOL_PERIOD ((32u << 20) + 12345u)
#define SLICE_MAX (16u << 20)
static unsigned char *g_pool; /* POOL_PERIOD bytes, then its first SLICE_MAX bytes again */
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static void make_pool(void) {
  g_pool = malloc(POOL_PERIOD + SLICE_MAX);
  if (!g_pool) return;
  uint64_t i = 0;
  for (; i + 8 <= POOL_PERIOD; i += 8) {
    uint64_t word = mix(i / 8);
    memcpy(g_pool + i, &word, 8);
  }
  for (; i < POOL_PERIOD; i++) g_pool[i] = (unsigned char)(mix(i / 8) >> (i % 8 * 8));
  memcpy(g_pool + POOL_PERIOD, g_pool, SLICE_MAX);
}

/* Where the content of `seed` starts in the pool; NULL when the pool could not be made. */
static const unsigned char *pool_at(uint64_t seed, uint64_t position) {
  pthread_once(&g_pool_once, make_pool);
  return g_pool ? g_pool + (mix(seed ^ 0xc0ffee) % POOL_PERIOD + position) % POOL_PERIOD : NULL;
}

/* Whether `data` holds bytes [offset, offset + length) of the content of `seed`. */
static int matches(const unsigned char *data, uint64_t seed, uint64_t offset, uint64_t length) {
  for (uint64_t done = 0; done < length;) {
    uint64_t n = length - done < SLICE_MAX ? length - done : SLICE_MAX;
    const unsigned char *expected = pool_at(seed, offset + done);
    if (!expected || memcmp(expected, data + done, n) != 0) return 0;
    done += n;
  }
  return 1;
}

/* Larger contents are assembled once and shared by every create of the same seed and size. */
typedef struct shared_content {
  uint64_t seed, size;
  unsigned char *data;
  struct shared_content *next;
} shared_content;
static shared_content *g_shared;
static pthread_mutex_t g_shared_lock = PTHREAD_MUTEX_INITIALIZER;

static const unsigned char *content(uint64_t seed, uint64_t size) {
  if (size <= SLICE_MAX) return pool_at(seed, 0);
  pthread_mutex_lock(&g_shared_lock);
  shared_content *c = g_shared;
  while (c && !(c->seed == seed && c->size == size)) c = c->next;
  if (!c && pool_at(seed, 0) && (c = calloc(1, sizeof(*c))) != NULL && (c->data = malloc(size)) != NULL) {
    for (uint64_t done = 0; done < size;) {
      uint64_t n = size - done < SLICE_MAX ? size - done : SLICE_MAX;
      memcpy(c->data + done, pool_at(seed, done), n);
      done += n;
    }
    c->seed = seed;
    c->size = size;
    c->next = g_shared;
    g_shared = c;
  }
  pthread_mutex_unlock(&g_shared_lock);
  return c ? c->data : NULL;
}

typedef struct command {
  char op;
  unsigned long long id, type, size, seed, offset;
  char uuid[160];
  struct command *next;
} command;

static command *g_head, *g_tail;
static int g_closed;
static pthread_mutex_t g_queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_queue_cond = PTHREAD_COND_INITIALIZER;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of the calling thread: splits a call's host cost into the plugin's and the check's. */
static double thread_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void run(const command *c) {
  int rc = -1, match = -1;
  unsigned long long size = 0;
  double start = now_ms(), cpu_start = thread_cpu_ms(), plugin_cpu = 0;
  OrthancPluginContentType type = (OrthancPluginContentType)c->type;
  if (c->op == 'C') {
    const unsigned char *data = content(c->seed, c->size);
    cpu_start = thread_cpu_ms();
    if (data) rc = g_storage.create(c->uuid, data, (int64_t)c->size, type);
    plugin_cpu = thread_cpu_ms() - cpu_start;
    size = c->size;
  } else if (c->op == 'R') {
    OrthancPluginMemoryBuffer64 buffer = {0};
    rc = g_storage.read_whole(&buffer, c->uuid, type);
    plugin_cpu = thread_cpu_ms() - cpu_start;
    if (rc == 0) {
      size = buffer.size;
      match = buffer.size == c->size && matches(buffer.data, c->seed, 0, buffer.size);
      free(buffer.data);
    }
  } else if (c->op == 'G') {
    if (g_storage.read_range == NULL) {
      rc = OrthancPluginErrorCode_NotImplemented;
    } else {
      OrthancPluginMemoryBuffer64 buffer = {.data = malloc(c->size > 0 ? c->size : 1), .size = c->size};
      cpu_start = thread_cpu_ms();
      rc = g_storage.read_range(&buffer, c->uuid, type, c->offset);
      plugin_cpu = thread_cpu_ms() - cpu_start;
      if (rc == 0) {
        size = buffer.size;
        match = matches(buffer.data, c->seed, c->offset, c->size);
      }
      free(buffer.data);
    }
  } else if (c->op == 'D') {
    rc = g_storage.remove(c->uuid, type);
    plugin_cpu = thread_cpu_ms() - cpu_start;
  }
  double ms = now_ms() - start, check_cpu = thread_cpu_ms() - cpu_start - plugin_cpu;
  pthread_mutex_lock(&g_output_lock);
  printf("{\"id\":%llu,\"rc\":%d,\"ms\":%.3f,\"size\":%llu,\"match\":%s,\"pluginCpuMs\":%.4f,\"checkCpuMs\":%.4f}\n",
         c->id, rc, ms, size, match < 0 ? "null" : match ? "true" : "false", plugin_cpu, check_cpu);
  fflush(stdout);
  pthread_mutex_unlock(&g_output_lock);
}

static void *worker(void *unused) {
  (void)unused;
  pthread_setname_np(pthread_self(), "caller");
  for (;;) {
    pthread_mutex_lock(&g_queue_lock);
    while (!g_head && !g_closed) pthread_cond_wait(&g_queue_cond, &g_queue_lock);
    command *c = g_head;
    if (c) {
      g_head = c->next;
      if (!g_head) g_tail = NULL;
    }
    pthread_mutex_unlock(&g_queue_lock);
    if (!c) return NULL;
    run(c);
    free(c);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <plugin.so> <configuration.json> <threads>\n", argv[0]);
    return 2;
  }
  int threads = atoi(argv[3]);
  if (threads < 1) {
    fprintf(stderr, "E shim-host: threads must be 1 or more, got %s\n", argv[3]);
    return 2;
  }
  g_log_sink = log_line;
  int loaded = load_plugin(argv[1], argv[2], "E ");
  if (loaded == 2) return 2;
  if (loaded != 0) {
    printf("{\"ready\":false}\n");
    fflush(stdout);
    if (g_finalize) g_finalize();
    return 1;
  }
  printf("{\"ready\":true,\"rangeReads\":%s}\n", g_storage.read_range ? "true" : "false");
  fflush(stdout);

  pthread_t *pool = calloc((size_t)threads, sizeof(pthread_t));
  for (int i = 0; i < threads; i++) pthread_create(&pool[i], NULL, worker, NULL);
  char line[512];
  while (fgets(line, sizeof(line), stdin)) {
    command *c = calloc(1, sizeof(*c));
    int n = 0;
    c->op = line[0];
    if (c->op == 'Q') {
      free(c);
      break;
    }
    if (c->op == 'C' || c->op == 'R')
      n = sscanf(line + 1, "%llu %159s %llu %llu %llu", &c->id, c->uuid, &c->type, &c->size, &c->seed) == 5;
    else if (c->op == 'G')
      n = sscanf(line + 1, "%llu %159s %llu %llu %llu %llu", &c->id, c->uuid, &c->type, &c->offset, &c->size,
                 &c->seed) == 6;
    else if (c->op == 'D')
      n = sscanf(line + 1, "%llu %159s %llu", &c->id, c->uuid, &c->type) == 3;
    if (!n) {
      fprintf(stderr, "E shim-host: bad command: %s", line);
      free(c);
      continue;
    }
    pthread_mutex_lock(&g_queue_lock);
    if (g_tail) g_tail->next = c;
    else g_head = c;
    g_tail = c;
    pthread_cond_signal(&g_queue_cond);
    pthread_mutex_unlock(&g_queue_lock);
  }
  pthread_mutex_lock(&g_queue_lock);
  g_closed = 1;
  pthread_cond_broadcast(&g_queue_cond);
  pthread_mutex_unlock(&g_queue_lock);
  for (int i = 0; i < threads; i++) pthread_join(pool[i], NULL);
  g_finalize();
  return 0;
}
