/*
 * A fake Orthanc host for shim-level tests: loads a built plugin library (dlopen), lets it start
 * its gateway exactly as Orthanc would, then runs storage calls read from stdin on a pool of
 * threads, as Orthanc's HTTP threads would. Driven by src/harness/shim-host.ts.
 *
 *   shim-host <plugin.so> <configuration.json> <threads>
 *
 * stdout: {"ready":true,"rangeReads":B} (or {"ready":false}), then one JSON line per call.
 * stderr: the plugin's log, one "I|W|E<space>message" line per entry.
 * stdin, one command per line (content is a pure function of seed and byte position):
 *   C id uuid type size seed          create
 *   R id uuid type size seed          read whole, compared with the content
 *   G id uuid type offset length seed read a range, compared with the content
 *   D id uuid type                    remove
 *   Q                                 wait for the calls in flight, finalize, exit
 */
#define _GNU_SOURCE
#include <orthanc/OrthancCPlugin.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *g_configuration;
static OrthancPluginStorageCreate g_create;
static OrthancPluginStorageReadWhole g_read_whole;
static OrthancPluginStorageReadRange g_read_range;
static OrthancPluginStorageRemove g_remove;
static pthread_mutex_t g_output_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_line(char level, const char *text) {
  pthread_mutex_lock(&g_output_lock);
  fprintf(stderr, "%c %s\n", level, text);
  fflush(stderr);
  pthread_mutex_unlock(&g_output_lock);
}

static OrthancPluginErrorCode invoke(struct _OrthancPluginContext_t *context, _OrthancPluginService service,
                                     const void *params) {
  (void)context;
  switch (service) {
    case _OrthancPluginService_LogError: log_line('E', params); return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_LogWarning: log_line('W', params); return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_LogInfo: log_line('I', params); return OrthancPluginErrorCode_Success;
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
      g_create = p->create;
      g_read_whole = p->readWhole;
      g_read_range = p->readRange;
      g_remove = p->remove;
      return OrthancPluginErrorCode_Success;
    }
    default: return OrthancPluginErrorCode_NotImplemented;
  }
}

/* Byte `i` of the content of `seed`: splitmix64 of its 8-byte word, so any range is cheap. */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static void fill(unsigned char *out, uint64_t seed, uint64_t offset, uint64_t length) {
  for (uint64_t i = 0; i < length; i++) {
    uint64_t at = offset + i;
    out[i] = (unsigned char)(mix(seed * 0x100000001b3ULL ^ (at >> 3)) >> ((at & 7) * 8));
  }
}

static int matches(const unsigned char *data, uint64_t seed, uint64_t offset, uint64_t length) {
  unsigned char chunk[65536];
  for (uint64_t done = 0; done < length;) {
    uint64_t n = length - done < sizeof(chunk) ? length - done : sizeof(chunk);
    fill(chunk, seed, offset + done, n);
    if (memcmp(chunk, data + done, n) != 0) return 0;
    done += n;
  }
  return 1;
}

/* Large contents are generated once and shared by every create of the same seed and size. */
#define SHARED_FROM (16u << 20)
typedef struct shared_content {
  uint64_t seed, size;
  unsigned char *data;
  struct shared_content *next;
} shared_content;
static shared_content *g_shared;
static pthread_mutex_t g_shared_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned char *content(uint64_t seed, uint64_t size, int *owned) {
  *owned = size < SHARED_FROM;
  if (*owned) {
    unsigned char *data = malloc(size > 0 ? size : 1);
    if (data) fill(data, seed, 0, size);
    return data;
  }
  pthread_mutex_lock(&g_shared_lock);
  shared_content *c = g_shared;
  while (c && !(c->seed == seed && c->size == size)) c = c->next;
  if (!c && (c = calloc(1, sizeof(*c))) != NULL && (c->data = malloc(size)) != NULL) {
    fill(c->data, seed, 0, size);
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

static void run(const command *c) {
  int rc = -1, match = -1;
  unsigned long long size = 0;
  double start = now_ms();
  OrthancPluginContentType type = (OrthancPluginContentType)c->type;
  if (c->op == 'C') {
    int owned;
    unsigned char *data = content(c->seed, c->size, &owned);
    if (data) rc = g_create(c->uuid, data, (int64_t)c->size, type);
    if (owned) free(data);
    size = c->size;
  } else if (c->op == 'R') {
    OrthancPluginMemoryBuffer64 buffer = {0};
    rc = g_read_whole(&buffer, c->uuid, type);
    if (rc == 0) {
      size = buffer.size;
      match = buffer.size == c->size && matches(buffer.data, c->seed, 0, buffer.size);
      free(buffer.data);
    }
  } else if (c->op == 'G') {
    if (g_read_range == NULL) {
      rc = OrthancPluginErrorCode_NotImplemented;
    } else {
      OrthancPluginMemoryBuffer64 buffer = {.data = malloc(c->size > 0 ? c->size : 1), .size = c->size};
      rc = g_read_range(&buffer, c->uuid, type, c->offset);
      if (rc == 0) {
        size = buffer.size;
        match = matches(buffer.data, c->seed, c->offset, c->size);
      }
      free(buffer.data);
    }
  } else if (c->op == 'D') {
    rc = g_remove(c->uuid, type);
  }
  double ms = now_ms() - start;
  pthread_mutex_lock(&g_output_lock);
  printf("{\"id\":%llu,\"rc\":%d,\"ms\":%.3f,\"size\":%llu,\"match\":%s}\n", c->id, rc, ms, size,
         match < 0 ? "null" : match ? "true" : "false");
  fflush(stdout);
  pthread_mutex_unlock(&g_output_lock);
}

static void *worker(void *unused) {
  (void)unused;
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
    fprintf(stderr, "usage: %s <plugin.so> <configuration.json> <threads>\n", argv[0]);
    return 2;
  }
  int threads = atoi(argv[3]);
  g_configuration = read_file(argv[2]);
  void *plugin = dlopen(argv[1], RTLD_NOW);
  if (!plugin || !g_configuration || threads < 1) {
    fprintf(stderr, "E cannot load %s or %s: %s\n", argv[1], argv[2], dlerror());
    return 2;
  }
  int32_t (*initialize)(OrthancPluginContext *) =
      (int32_t(*)(OrthancPluginContext *))dlsym(plugin, "OrthancPluginInitialize");
  void (*finalize)(void) = (void (*)(void))dlsym(plugin, "OrthancPluginFinalize");
  OrthancPluginContext context = {.orthancVersion = "1.10.1", .Free = free, .InvokeService = invoke};
  if (!initialize || !finalize || initialize(&context) != 0 || !g_create) {
    printf("{\"ready\":false}\n");
    fflush(stdout);
    if (finalize) finalize();
    return 1;
  }
  printf("{\"ready\":true,\"rangeReads\":%s}\n", g_read_range ? "true" : "false");
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
  finalize();
  return 0;
}
