/*
 * The shim's side of the wire protocol (framing described at the top of src/gateway/protocol.ts):
 *   - storage calls: request header(32) uuid [body]; response header(16) message [bytes trailer];
 *   - forwarded calls (wire_invoke): an Invoke frame (op 5: name, JSON meta, body), then, until the
 *     final answer, any number of OrthancRequest frames from the gateway that the caller's handler
 *     carries out and answers with an OrthancAnswer frame (op 6), all on the same connection.
 */
#include "wire.h"

#include "gateway-process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Mirrored in src/gateway/protocol.ts. */

/* magic[4] op u8 reserved u8 uuidLength u16 contentType u32 reserved u32 offset u64 size u64 */
#define REQUEST_HEADER_SIZE 32
/* magic[4] status u8 reserved u8 messageLength u16 size u64 */
#define RESPONSE_HEADER_SIZE 16
#define MAX_UUID_LENGTH 128

static const unsigned char REQUEST_MAGIC[4] = {'O', 'S', 'Q', '1'};
static const unsigned char RESPONSE_MAGIC[4] = {'O', 'S', 'R', '1'};

enum { ST_OK = 0, ST_NOT_FOUND = 1, ST_RANGE = 2, ST_INTEGRITY = 3, ST_BAD_REQUEST = 4, ST_FAILED = 5,
       ST_ORTHANC_REQUEST = 6 };

/* Largest body of a forwarded call's message (REST bodies, job states: small in practice). */
#define MAX_INVOKE_BODY ((uint64_t)256 * 1024 * 1024)

/* How long a refused connection waits for its gateway to be noticed dead (a worker thread's death
 * ends the gateway at once); a socket refused by a gateway that stays up is an error. */
#define DYING_GATEWAY_WAIT_MS 5000

/* SO_SNDBUF asked for each connection (the kernel doubles it, within net.core.wmem_max). */
#define SEND_BUFFER_BYTES (512 * 1024)

/* Idle connections kept per worker of the gateway. */
#define POOL_CAPACITY 64

typedef struct {
  int fd;
  unsigned generation;
} pooled_connection;

/* Each worker thread of the gateway serves its own socket: one pool of idle connections per
 * worker, and the calls each is serving now, to send a call to the least busy. */
typedef struct {
  pooled_connection idle[POOL_CAPACITY];
  int idle_count;
  int in_flight;
} worker_pool;

static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER; /* only around the pools */
static worker_pool g_pools[GATEWAY_MAX_WORKERS];
static unsigned g_next_worker; /* where the search for the least busy starts: spreads ties */

static void put_u16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* ---- Idle-bounded I/O ---------------------------------------------------------------------
 * GatewayCallTimeout bounds a period without progress, not a whole call: every wait for the
 * socket is limited to `idle_ms`, and each byte that moves starts a new period. A large transfer
 * that keeps moving is never cut; a stalled one fails after `idle_ms`. */

const char *io_describe(int result) {
  switch (result) {
    case IO_TIMEOUT: return "timed out";
    case IO_CLOSED: return "connection closed by the gateway";
    default: return "connection error";
  }
}

static int wait_fd(int fd, short events, int64_t idle_ms) {
  int64_t deadline_ms = now_ms() + idle_ms;
  for (;;) {
    int64_t left = deadline_ms - now_ms();
    if (left <= 0) return IO_TIMEOUT;
    struct pollfd pfd = {.fd = fd, .events = events};
    int n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (n > 0) return IO_OK;
    if (n < 0 && errno != EINTR) return IO_ERROR;
  }
}

int send_all_iov(int fd, struct iovec *iov, int count, int64_t idle_ms) {
  while (count > 0) {
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)count};
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int w = wait_fd(fd, POLLOUT, idle_ms);
        if (w != IO_OK) return w;
        continue;
      }
      return errno == EPIPE || errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
    }
    size_t sent = (size_t)n;
    while (count > 0 && sent >= iov->iov_len) {
      sent -= iov->iov_len;
      iov++;
      count--;
    }
    if (count > 0) {
      iov->iov_base = (char *)iov->iov_base + sent;
      iov->iov_len -= sent;
    }
  }
  return IO_OK;
}

static int recv_all(int fd, void *data, size_t size, int64_t idle_ms) {
  char *p = data;
  while (size > 0) {
    size_t chunk = size > (1u << 30) ? (1u << 30) : size;
    ssize_t n = recv(fd, p, chunk, MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      size -= (size_t)n;
    } else if (n == 0) {
      return IO_CLOSED;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int w = wait_fd(fd, POLLIN, idle_ms);
      if (w != IO_OK) return w;
    } else if (errno != EINTR) {
      return errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
    }
  }
  return IO_OK;
}

/* ---- Connections ------------------------------------------------------------------------- */

void wire_pool_drain(void) {
  pthread_mutex_lock(&g_pool_lock);
  for (int w = 0; w < GATEWAY_MAX_WORKERS; w++) {
    for (int i = 0; i < g_pools[w].idle_count; i++) close(g_pools[w].idle[i].fd);
    g_pools[w].idle_count = 0;
  }
  pthread_mutex_unlock(&g_pool_lock);
}

typedef struct {
  int fd;
  unsigned generation;
  int worker;
  int reused;
} connection;

/* The worker for a call: `affinity` (>= 0) picks one by a hash, else the one serving the fewest
 * calls now. Counts the call in its in_flight until connection_release. Under g_pool_lock. */
static int choose_worker_locked(int workers, int affinity) {
  int chosen = 0;
  if (affinity >= 0) {
    chosen = affinity % workers;
  } else {
    unsigned start = g_next_worker++;
    chosen = (int)(start % (unsigned)workers);
    for (int i = 1; i < workers; i++) {
      int w = (int)((start + (unsigned)i) % (unsigned)workers);
      if (g_pools[w].in_flight < g_pools[chosen].in_flight) chosen = w;
    }
  }
  g_pools[chosen].in_flight++;
  return chosen;
}

/* A pooled connection to the worker, or -1. Under g_pool_lock. */
static int take_idle_locked(int worker, unsigned generation) {
  worker_pool *pool = &g_pools[worker];
  while (pool->idle_count > 0) {
    pooled_connection p = pool->idle[--pool->idle_count];
    if (p.generation == generation) return p.fd;
    close(p.fd);
  }
  return -1;
}

static int connect_worker(unsigned generation, int worker, int64_t deadline_ms, int *error) {
  struct sockaddr_un address;
  if (gateway_socket_address(generation, worker, &address) != 0) {
    *error = ECONNREFUSED; /* that gateway is gone */
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  int64_t left = deadline_ms - now_ms();
  struct timeval tv = {.tv_sec = left > 0 ? left / 1000 : 0, .tv_usec = left > 0 ? (left % 1000) * 1000 : 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc;
  do rc = connect(fd, (struct sockaddr *)&address, sizeof(address));
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    *error = errno;
    close(fd);
    return -1;
  }
  /* A whole 1 MiB body fits in flight: one sendmsg instead of ~5 with waits in between. */
  int send_buffer = SEND_BUFFER_BYTES;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof(send_buffer));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void connection_release(connection *c, int reusable);

/* Waits (bounded) for a ready gateway and returns a pooled or new connection to one of its
 * workers (see choose_worker_locked). A refused connection means that gateway is dying (a worker
 * thread died): wait for the restarted one rather than fail. */
static int connection_acquire(connection *c, int allow_pooled, int affinity, int64_t deadline_ms, char *failure,
                              size_t size) {
  for (;;) {
    unsigned generation;
    int workers;
    if (!gateway_await_ready(deadline_ms, &generation, &workers) || workers < 1) {
      snprintf(failure, size, "the gateway is not running (being restarted or stopped)");
      return -1;
    }
    c->fd = -1;
    c->generation = generation;
    c->reused = 0;
    pthread_mutex_lock(&g_pool_lock);
    c->worker = choose_worker_locked(workers, affinity);
    if (allow_pooled) c->fd = take_idle_locked(c->worker, generation);
    pthread_mutex_unlock(&g_pool_lock);
    if (c->fd >= 0) {
      c->reused = 1;
      return 0;
    }
    int error = 0;
    c->fd = connect_worker(generation, c->worker, deadline_ms, &error);
    if (c->fd >= 0) return 0;
    connection_release(c, 0);
    if ((error == ECONNREFUSED || error == ENOENT) && now_ms() < deadline_ms) {
      int64_t until = now_ms() + DYING_GATEWAY_WAIT_MS;
      if (gateway_await_other_generation(generation, until < deadline_ms ? until : deadline_ms)) continue;
    }
    snprintf(failure, size, "cannot connect to the gateway: %s", strerror(error));
    return -1;
  }
}

/* Ends the call on the connection: pools it when reusable, closes it otherwise. */
static void connection_release(connection *c, int reusable) {
  int keep = c->fd >= 0 && reusable && gateway_is_current(c->generation);
  pthread_mutex_lock(&g_pool_lock);
  worker_pool *pool = &g_pools[c->worker];
  pool->in_flight--;
  if (keep && pool->idle_count < POOL_CAPACITY) {
    pool->idle[pool->idle_count].fd = c->fd;
    pool->idle[pool->idle_count].generation = c->generation;
    pool->idle_count++;
    c->fd = -1;
  }
  pthread_mutex_unlock(&g_pool_lock);
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* ---- Calls ------------------------------------------------------------------------------- */

typedef struct {
  int io;              /* io_result of the transport */
  int answered;        /* a response byte arrived: the request must not be retried */
  int status;          /* gateway status when io == IO_OK */
  char message[1024];
} call_outcome;

/* Reads a response header and its message. */
static int read_response_header(int fd, call_outcome *out, uint64_t *size, int64_t idle_ms) {
  unsigned char header[RESPONSE_HEADER_SIZE];
  int r = recv_all(fd, header, sizeof(header), idle_ms);
  if (r != IO_OK) return r;
  out->answered = 1;
  if (memcmp(header, RESPONSE_MAGIC, 4) != 0) return IO_ERROR;
  out->status = header[4];
  *size = get_u64(header + 8);
  size_t message_length = get_u16(header + 6);
  size_t kept = message_length < sizeof(out->message) - 1 ? message_length : sizeof(out->message) - 1;
  r = recv_all(fd, out->message, kept, idle_ms);
  if (r != IO_OK) return r;
  out->message[kept] = '\0';
  char discard[256];
  for (size_t left = message_length - kept; left > 0;) {
    size_t n = left < sizeof(discard) ? left : sizeof(discard);
    r = recv_all(fd, discard, n, idle_ms);
    if (r != IO_OK) return r;
    left -= n;
  }
  return IO_OK;
}

static void call_once(connection *c, const call_request *request, call_outcome *out, int64_t idle_ms) {
  out->answered = 0;
  out->status = ST_FAILED;
  out->message[0] = '\0';
  size_t uuid_length = strlen(request->uuid);
  unsigned char header[REQUEST_HEADER_SIZE] = {0};
  memcpy(header, REQUEST_MAGIC, 4);
  header[4] = (unsigned char)request->op;
  put_u16(header + 6, (uint16_t)uuid_length);
  put_u32(header + 8, (uint32_t)request->type);
  put_u64(header + 16, request->offset);
  put_u64(header + 24, request->size);
  struct iovec iov[3] = {
      {.iov_base = header, .iov_len = sizeof(header)},
      {.iov_base = (void *)request->uuid, .iov_len = uuid_length},
      {.iov_base = (void *)request->body, .iov_len = request->op == OP_CREATE ? request->size : 0},
  };
  out->io = send_all_iov(c->fd, iov, request->op == OP_CREATE && request->size > 0 ? 3 : 2, idle_ms);
  if (out->io != IO_OK) return;

  uint64_t size = 0;
  out->io = read_response_header(c->fd, out, &size, idle_ms);
  if (out->io != IO_OK || out->status != ST_OK) return;
  if (request->op != OP_READ_WHOLE && request->op != OP_READ_RANGE) return;

  OrthancPluginMemoryBuffer64 *target = request->target;
  if (request->op == OP_READ_RANGE) {
    if (size != target->size) {
      out->io = IO_ERROR;
      snprintf(out->message, sizeof(out->message), "the gateway announced %llu bytes for a range of %llu",
               (unsigned long long)size, (unsigned long long)target->size);
      return;
    }
  } else {
    if (size > (uint64_t)SIZE_MAX / 2) {
      out->io = IO_ERROR;
      snprintf(out->message, sizeof(out->message), "object size %llu is too large", (unsigned long long)size);
      return;
    }
    if (OrthancPluginCreateMemoryBuffer64(plugin_context(), target, size) != OrthancPluginErrorCode_Success) {
      out->io = IO_ERROR;
      out->status = -1; /* marks an allocation failure */
      snprintf(out->message, sizeof(out->message), "cannot allocate %llu bytes", (unsigned long long)size);
      target->data = NULL;
      target->size = 0;
      return;
    }
  }
  out->io = recv_all(c->fd, target->data, size, idle_ms);
  uint64_t trailer_size = 0;
  if (out->io == IO_OK) out->io = read_response_header(c->fd, out, &trailer_size, idle_ms);
  if (out->io == IO_OK && out->status == ST_OK) return;
  if (request->op == OP_READ_WHOLE) {
    OrthancPluginFreeMemoryBuffer64(plugin_context(), target);
    target->data = NULL;
    target->size = 0;
  }
}

/* FNV-1a. */
static uint32_t uuid_hash(const char *uuid) {
  uint32_t hash = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)uuid; *p; p++) hash = (hash ^ *p) * 16777619u;
  return hash;
}

static const char *operation_name(int op) {
  switch (op) {
    case OP_CREATE: return "creating";
    case OP_READ_WHOLE: return "reading";
    case OP_READ_RANGE: return "reading a range of";
    default: return "removing";
  }
}

OrthancPluginErrorCode wire_call(const call_request *request) {
  if (strlen(request->uuid) > MAX_UUID_LENGTH) {
    log_message(LOG_ERROR, "error while %s object: invalid uuid", operation_name(request->op));
    return OrthancPluginErrorCode_ParameterOutOfRange;
  }
  int64_t timeout_ms = gateway_call_timeout_ms();
  int64_t deadline = now_ms() + timeout_ms; /* for a gateway being (re)started */
  call_outcome outcome;
  char failure[256];
  /* Range reads of one attachment go to one worker: its C1 header cache serves the next ones. */
  int affinity = request->op == OP_READ_RANGE ? (int)(uuid_hash(request->uuid) & 0x7fffffff) : -1;
  for (int attempt = 0;; attempt++) {
    connection c;
    if (connection_acquire(&c, attempt == 0, affinity, deadline, failure, sizeof(failure)) != 0) {
      log_message(LOG_ERROR, "error while %s object %s: %s", operation_name(request->op), request->uuid, failure);
      return OrthancPluginErrorCode_StorageAreaPlugin;
    }
    call_once(&c, request, &outcome, timeout_ms);
    int clean = outcome.io == IO_OK;
    connection_release(&c, clean);
    /* A pooled connection may be stale (gateway restarted): retry once on a fresh one. */
    if (!clean && !outcome.answered && c.reused && attempt == 0) continue;
    break;
  }
  if (outcome.io == IO_OK && outcome.status == ST_OK) return OrthancPluginErrorCode_Success;

  if (outcome.io != IO_OK) {
    if (outcome.status == -1) {
      log_message(LOG_ERROR, "error while reading object %s: %s", request->uuid, outcome.message);
      return OrthancPluginErrorCode_NotEnoughMemory;
    }
    if (outcome.io == IO_TIMEOUT) {
      log_message(LOG_ERROR, "error while %s object %s: no progress for %lld s (GatewayCallTimeout)",
                  operation_name(request->op), request->uuid, (long long)(timeout_ms / 1000));
    } else {
      log_message(LOG_ERROR, "error while %s object %s: %s%s%s", operation_name(request->op), request->uuid,
                  io_describe(outcome.io), outcome.message[0] ? ": " : "", outcome.message);
    }
    return OrthancPluginErrorCode_StorageAreaPlugin;
  }
  /* A missing object is Orthanc's to report (hybrid mode has already looked on both sides). */
  log_message(outcome.status == ST_NOT_FOUND ? LOG_WARNING : LOG_ERROR, "error while %s object %s: %s",
              operation_name(request->op), request->uuid,
              outcome.message[0] ? outcome.message : "unknown gateway error");
  switch (outcome.status) {
    case ST_NOT_FOUND: return OrthancPluginErrorCode_UnknownResource;
    case ST_RANGE: return OrthancPluginErrorCode_BadRange;
    case ST_BAD_REQUEST: return OrthancPluginErrorCode_ParameterOutOfRange;
    default: return OrthancPluginErrorCode_StorageAreaPlugin;
  }
}


/* ---- Forwarded calls --------------------------------------------------------------------- */

void wire_message_free(wire_message *message) {
  free(message->meta);
  free(message->body);
  message->meta = NULL;
  message->body = NULL;
  message->body_size = 0;
}

/* Sends a header (op, name, meta length, body size), the name, the meta and the body. */
static int send_frame(int fd, int op, const char *name, const char *meta, const void *body, uint64_t body_size,
                      int64_t deadline_ms) {
  size_t name_length = strlen(name), meta_length = strlen(meta);
  unsigned char header[REQUEST_HEADER_SIZE] = {0};
  memcpy(header, REQUEST_MAGIC, 4);
  header[4] = (unsigned char)op;
  put_u16(header + 6, (uint16_t)name_length);
  put_u32(header + 8, (uint32_t)meta_length);
  put_u64(header + 24, body_size);
  struct iovec iov[4] = {
      {.iov_base = header, .iov_len = sizeof(header)},
      {.iov_base = (void *)name, .iov_len = name_length},
      {.iov_base = (void *)meta, .iov_len = meta_length},
      {.iov_base = (void *)body, .iov_len = body_size},
  };
  return send_all_iov(fd, iov, body_size > 0 ? 4 : 3, deadline_ms);
}

/* Reads a response header, its whole message (the metadata) and its body. */
static int read_message(int fd, int *status, wire_message *message, int64_t deadline_ms) {
  unsigned char header[RESPONSE_HEADER_SIZE];
  int r = recv_all(fd, header, sizeof(header), deadline_ms);
  if (r != IO_OK) return r;
  if (memcmp(header, RESPONSE_MAGIC, 4) != 0) return IO_ERROR;
  *status = header[4];
  size_t meta_length = get_u16(header + 6);
  uint64_t body_size = get_u64(header + 8);
  if (body_size > MAX_INVOKE_BODY) return IO_ERROR;
  message->meta = malloc(meta_length + 1);
  message->body = body_size > 0 ? malloc((size_t)body_size) : NULL;
  message->body_size = body_size;
  if (message->meta == NULL || (body_size > 0 && message->body == NULL)) return IO_ERROR;
  r = recv_all(fd, message->meta, meta_length, deadline_ms);
  if (r == IO_OK && body_size > 0) r = recv_all(fd, message->body, (size_t)body_size, deadline_ms);
  message->meta[r == IO_OK ? meta_length : 0] = '\0';
  return r;
}

typedef struct {
  int io;
  int answered;
} invoke_outcome;

static void invoke_once(connection *c, const char *name, const char *meta, const void *body, uint64_t body_size,
                        wire_orthanc_handler handler, wire_message *answer, int *status, invoke_outcome *out,
                        int64_t deadline_ms) {
  out->answered = 0;
  out->io = send_frame(c->fd, OP_INVOKE, name, meta, body, body_size, deadline_ms);
  while (out->io == IO_OK) {
    wire_message message = {0};
    out->io = read_message(c->fd, status, &message, deadline_ms);
    if (out->io == IO_OK) out->answered = 1;
    if (out->io != IO_OK || *status != ST_ORTHANC_REQUEST) {
      *answer = message;
      return;
    }
    wire_message reply = {0};
    handler(&message, &reply);
    out->io = send_frame(c->fd, OP_ORTHANC_ANSWER, "", reply.meta ? reply.meta : "{\"error\":1}", reply.body,
                         reply.body_size, deadline_ms);
    wire_message_free(&message);
    wire_message_free(&reply);
  }
}

int wire_invoke(const char *name, const char *meta, const void *body, uint64_t body_size,
                wire_orthanc_handler handler, wire_message *answer, char *failure, size_t failure_size) {
  int64_t timeout_ms = gateway_call_timeout_ms();
  int64_t deadline = now_ms() + timeout_ms;
  invoke_outcome outcome;
  int status = ST_FAILED;
  memset(answer, 0, sizeof(*answer));
  for (int attempt = 0;; attempt++) {
    connection c;
    if (connection_acquire(&c, attempt == 0, -1, deadline, failure, failure_size) != 0) return -1;
    invoke_once(&c, name, meta, body, body_size, handler, answer, &status, &outcome, deadline);
    connection_release(&c, outcome.io == IO_OK);
    if (outcome.io != IO_OK && !outcome.answered && c.reused && attempt == 0) {
      wire_message_free(answer);
      continue;
    }
    break;
  }
  if (outcome.io == IO_OK && status == ST_OK) return 0;
  if (outcome.io == IO_TIMEOUT) {
    snprintf(failure, failure_size, "timed out after %lld s (GatewayCallTimeout)", (long long)(timeout_ms / 1000));
  } else if (outcome.io != IO_OK) {
    snprintf(failure, failure_size, "%s", io_describe(outcome.io));
  } else {
    snprintf(failure, failure_size, "%s", answer->meta && answer->meta[0] ? answer->meta : "unknown gateway error");
  }
  wire_message_free(answer);
  return -1;
}
