/*
 * Native shim of the Orthanc object-storage plugins.
 *
 * Orthanc loads plugins as C shared libraries; all logic (configuration, naming, encryption,
 * backends) lives in a TypeScript gateway process. This file only:
 *   - finds whether the provider's section exists and which Node executable to run;
 *   - starts the gateway, hands it the configuration over a private socketpair (never argv),
 *     waits for its handshake and restarts it with backoff if it dies;
 *   - forwards each storage callback over a Unix socket, with pooled connections and a
 *     deadline on every call;
 *   - forwards the gateway's log lines to Orthanc's log.
 *
 * Build-time identity (see scripts/build-artifact.mjs): OOS_PLUGIN_NAME, OOS_PLUGIN_VERSION,
 * OOS_PLUGIN_DESCRIPTION, OOS_PROVIDER, OOS_SECTION and optionally OOS_LEGACY_SECTION.
 */
#define _GNU_SOURCE
#include <orthanc/OrthancCPlugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* ---- Wire protocol (mirrored in src/gateway/protocol.ts) -------------------------------- */

/* magic[4] op u8 reserved u8 uuidLength u16 contentType u32 reserved u32 offset u64 size u64 */
#define REQUEST_HEADER_SIZE 32
/* magic[4] status u8 reserved u8 messageLength u16 size u64 */
#define RESPONSE_HEADER_SIZE 16
#define MAX_UUID_LENGTH 128

static const unsigned char REQUEST_MAGIC[4] = {'O', 'S', 'Q', '1'};
static const unsigned char RESPONSE_MAGIC[4] = {'O', 'S', 'R', '1'};

enum { OP_CREATE = 1, OP_READ_WHOLE = 2, OP_READ_RANGE = 3, OP_REMOVE = 4 };
enum { ST_OK = 0, ST_NOT_FOUND = 1, ST_RANGE = 2, ST_INTEGRITY = 3, ST_BAD_REQUEST = 4, ST_FAILED = 5 };

/* ---- Tunables ---------------------------------------------------------------------------- */

#define STARTUP_TIMEOUT_MS 120000   /* first handshake (provider start-up may contact the cloud) */
#define STOP_GRACE_MS 5000          /* after closing stdin, before SIGKILL */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define HEALTHY_AFTER_MS 10000      /* a gateway alive that long resets the backoff */
#define DEFAULT_CALL_TIMEOUT_MS 60000
#define POOL_CAPACITY 64
#define LOG_LINE_MAX 8192

/* ---- Global state ------------------------------------------------------------------------ */

typedef enum { GW_STARTING, GW_READY, GW_FAILED, GW_STOPPED } gateway_state;

typedef struct {
  pid_t pid;
  int stdin_fd;        /* our end of the socketpair: kept open for the gateway's whole life */
  int stdout_fd;
  int stderr_fd;
  pthread_t output_thread;
  int has_output_thread;
  char *handshake;     /* first stdout line, once received */
  int output_closed;   /* stdout reached EOF */
} gateway_child;

static OrthancPluginContext *g_context;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the fields below */
static pthread_cond_t g_cond;
static gateway_state g_state = GW_STOPPED;
static unsigned g_generation;
static int g_stopping;
static gateway_child g_child = {.pid = -1, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
static char g_failure[1024];
static int g_range_reads;
static int g_call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;

static pthread_t g_supervisor;
static int g_supervisor_running;
static char *g_envelope;
static size_t g_envelope_size;
static char *g_node_executable;
static char g_gateway_script[PATH_MAX];
static char g_socket_dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char g_socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

typedef struct {
  int fd;
  unsigned generation;
} pooled_connection;

static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER; /* only around the free list */
static pooled_connection g_pool[POOL_CAPACITY];
static int g_pool_count;

/* ---- Small helpers ----------------------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_timespec(int64_t deadline_ms) {
  struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
  return ts;
}

typedef enum { LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

static void log_message(log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void log_message(log_level level, const char *format, ...) {
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

static void put_u16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v) {
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

/* ---- Minimal JSON scanner: top-level keys and one string inside a section ---------------- */

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
 * Returns the position after the closing quote, or NULL if malformed or too long for `out`. */
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

/* Value of `key` in the object at `object` (on its '{'), or NULL. */
static const char *json_member(const char *object, const char *key) {
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

static int json_member_string(const char *object, const char *key, char *out, size_t capacity) {
  const char *value = json_member(object, key);
  return value != NULL && *value == '"' && json_string(value, out, capacity) != NULL ? 0 : -1;
}

/* ---- I/O with deadlines ------------------------------------------------------------------ */

typedef enum { IO_OK = 0, IO_TIMEOUT = -1, IO_CLOSED = -2, IO_ERROR = -3 } io_result;

static const char *io_describe(int result) {
  switch (result) {
    case IO_TIMEOUT: return "timed out";
    case IO_CLOSED: return "connection closed by the gateway";
    default: return "connection error";
  }
}

static int wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - now_ms();
    if (left <= 0) return IO_TIMEOUT;
    struct pollfd pfd = {.fd = fd, .events = events};
    int n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (n > 0) return IO_OK;
    if (n < 0 && errno != EINTR) return IO_ERROR;
  }
}

/* Sends every byte of the iovecs (modified in place). */
static int send_all_iov(int fd, struct iovec *iov, int count, int64_t deadline_ms) {
  while (count > 0) {
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)count};
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int w = wait_fd(fd, POLLOUT, deadline_ms);
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

static int recv_all(int fd, void *data, size_t size, int64_t deadline_ms) {
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
      int w = wait_fd(fd, POLLIN, deadline_ms);
      if (w != IO_OK) return w;
    } else if (errno != EINTR) {
      return errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
    }
  }
  return IO_OK;
}

/* ---- Gateway lifecycle ------------------------------------------------------------------- */

static void forward_log_line(int from_stdout, char *line) {
  size_t length = strlen(line);
  if (length > 0 && line[length - 1] == '\r') line[length - 1] = '\0';
  if (line[0] == '\0') return;
  if (!from_stdout && line[1] == '\t' && (line[0] == 'I' || line[0] == 'W' || line[0] == 'E')) {
    log_level level = line[0] == 'I' ? LOG_INFO : line[0] == 'W' ? LOG_WARNING : LOG_ERROR;
    log_message(level, "%s", line + 2);
  } else {
    /* Anything else on stderr (e.g. a Node crash trace) is worth seeing. */
    log_message(from_stdout ? LOG_INFO : LOG_ERROR, "gateway: %s", line);
  }
}

/* Reads the gateway's stdout (handshake, then info) and stderr (log lines) until both close. */
static void *output_thread_main(void *arg) {
  gateway_child *child = arg;
  char buffers[2][LOG_LINE_MAX];
  size_t used[2] = {0, 0};
  int fds[2] = {child->stderr_fd, child->stdout_fd};
  int open_count = 2;
  int handshake_seen = 0;
  while (open_count > 0) {
    struct pollfd pfds[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
    if (poll(pfds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) { /* stderr first: warnings precede the handshake */
      if (fds[i] < 0 || (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = read(fds[i], buffers[i] + used[i], LOG_LINE_MAX - 1 - used[i]);
      if (n < 0 && errno == EINTR) continue;
      int closed = n <= 0;
      if (n > 0) used[i] += (size_t)n;
      for (;;) {
        char *newline = memchr(buffers[i], '\n', used[i]);
        int full = used[i] == LOG_LINE_MAX - 1;
        if (!newline && !(full || (closed && used[i] > 0))) break;
        size_t line_length = newline ? (size_t)(newline - buffers[i]) : used[i];
        buffers[i][line_length] = '\0';
        if (i == 1 && !handshake_seen) {
          handshake_seen = 1;
          pthread_mutex_lock(&g_lock);
          child->handshake = strdup(buffers[i]);
          pthread_cond_broadcast(&g_cond);
          pthread_mutex_unlock(&g_lock);
        } else {
          forward_log_line(i == 1, buffers[i]);
        }
        size_t consumed = newline ? line_length + 1 : line_length;
        memmove(buffers[i], buffers[i] + consumed, used[i] - consumed);
        used[i] -= consumed;
      }
      if (closed) {
        close(fds[i]);
        fds[i] = -1;
        open_count--;
        if (i == 1) {
          pthread_mutex_lock(&g_lock);
          child->output_closed = 1;
          pthread_cond_broadcast(&g_cond);
          pthread_mutex_unlock(&g_lock);
        }
      }
    }
  }
  for (int i = 0; i < 2; i++) {
    if (fds[i] >= 0) close(fds[i]);
  }
  return NULL;
}

static void child_exec(int stdin_fd, int stdout_fd, int stderr_fd, int exec_error_fd, pid_t parent) {
  /* Only async-signal-safe calls between fork and exec. */
  sigset_t none;
  sigemptyset(&none);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(127);
  if (dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0) _exit(127);
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 65536; fd++) {
      if (fd != exec_error_fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  char *const argv[] = {g_node_executable, g_gateway_script, NULL};
  execvp(g_node_executable, argv);
  int error = errno;
  ssize_t ignored = write(exec_error_fd, &error, sizeof(error));
  (void)ignored;
  _exit(127);
}

/* The socket's private directory must exist, be ours and be closed to others (mode 0700). */
static int ensure_socket_dir(char *failure, size_t failure_size) {
  struct stat info;
  if (mkdir(g_socket_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(failure, failure_size, "cannot create %s: %s", g_socket_dir, strerror(errno));
    return -1;
  }
  if (lstat(g_socket_dir, &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != geteuid() ||
      (info.st_mode & 0077) != 0) {
    snprintf(failure, failure_size, "%s is not a private directory of this user (mode 0700)", g_socket_dir);
    return -1;
  }
  return 0;
}

/* Starts a gateway and sends it the envelope. Fills `failure` on error. */
static int spawn_gateway(gateway_child *child, char *failure, size_t failure_size) {
  int stdin_pair[2], out_pipe[2], err_pipe[2], exec_pipe[2];
  if (ensure_socket_dir(failure, failure_size) != 0) return -1;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stdin_pair) != 0) goto fail_stdin;
  if (pipe2(out_pipe, O_CLOEXEC) != 0) goto fail_out;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) goto fail_err;
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) goto fail_exec;

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) child_exec(stdin_pair[1], out_pipe[1], err_pipe[1], exec_pipe[1], parent);
  int fork_error = errno;
  close(stdin_pair[1]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);
  if (pid < 0) {
    snprintf(failure, failure_size, "cannot start the gateway: fork: %s", strerror(fork_error));
    close(exec_pipe[0]);
    close(stdin_pair[0]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return -1;
  }
  int exec_error = 0;
  ssize_t n;
  do n = read(exec_pipe[0], &exec_error, sizeof(exec_error));
  while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);

  pthread_mutex_lock(&g_lock);
  child->pid = pid;
  child->stdin_fd = stdin_pair[0];
  child->stdout_fd = out_pipe[0];
  child->stderr_fd = err_pipe[0];
  child->has_output_thread = 0;
  child->handshake = NULL;
  child->output_closed = 0;
  pthread_mutex_unlock(&g_lock);
  if (n == (ssize_t)sizeof(exec_error)) {
    close(child->stdout_fd);
    close(child->stderr_fd);
    child->stdout_fd = child->stderr_fd = -1;
    snprintf(failure, failure_size,
             "cannot execute the Node runtime \"%s\": %s (set \"NodeExecutable\" in the \"%s\" section)",
             g_node_executable, strerror(exec_error), OOS_SECTION);
    return -1;
  }
  if (pthread_create(&child->output_thread, NULL, output_thread_main, child) != 0) {
    close(child->stdout_fd);
    close(child->stderr_fd);
    child->stdout_fd = child->stderr_fd = -1;
    snprintf(failure, failure_size, "cannot start the gateway's log thread");
    return -1;
  }
  child->has_output_thread = 1;

  fcntl(child->stdin_fd, F_SETFL, fcntl(child->stdin_fd, F_GETFL) | O_NONBLOCK);
  unsigned char length[4];
  uint32_t size = (uint32_t)g_envelope_size;
  for (int i = 0; i < 4; i++) length[i] = (unsigned char)(size >> (8 * i));
  struct iovec iov[2] = {{.iov_base = length, .iov_len = 4}, {.iov_base = g_envelope, .iov_len = g_envelope_size}};
  int sent = send_all_iov(child->stdin_fd, iov, 2, now_ms() + STARTUP_TIMEOUT_MS);
  if (sent != IO_OK) {
    snprintf(failure, failure_size, "cannot send the configuration to the gateway: %s", io_describe(sent));
    return -1;
  }
  return 0;

fail_exec:
  close(err_pipe[0]);
  close(err_pipe[1]);
fail_err:
  close(out_pipe[0]);
  close(out_pipe[1]);
fail_out:
  close(stdin_pair[0]);
  close(stdin_pair[1]);
fail_stdin:
  snprintf(failure, failure_size, "cannot start the gateway: %s", strerror(errno));
  return -1;
}

/* Waits for the handshake line. Returns 0 when ready. Called without g_lock held. */
static int await_handshake(gateway_child *child, char *failure, size_t failure_size) {
  struct timespec deadline = deadline_timespec(now_ms() + STARTUP_TIMEOUT_MS);
  pthread_mutex_lock(&g_lock);
  int timed_out = 0;
  while (child->handshake == NULL && !child->output_closed && !g_stopping && !timed_out) {
    timed_out = pthread_cond_timedwait(&g_cond, &g_lock, &deadline) == ETIMEDOUT;
  }
  char *line = child->handshake;
  child->handshake = NULL;
  int stopping = g_stopping;
  pthread_mutex_unlock(&g_lock);

  int result = -1;
  char status[32] = "", message[900] = "";
  if (stopping) {
    snprintf(failure, failure_size, "Orthanc is stopping");
  } else if (line == NULL) {
    snprintf(failure, failure_size, timed_out ? "the gateway did not answer within %d s"
                                              : "the gateway exited before its handshake (see its log above)",
             STARTUP_TIMEOUT_MS / 1000);
  } else if (json_member_string(line, "status", status, sizeof(status)) != 0) {
    snprintf(failure, failure_size, "the gateway sent an invalid handshake");
  } else if (strcmp(status, "ready") != 0) {
    if (json_member_string(line, "message", message, sizeof(message)) != 0) strcpy(message, "unknown error");
    snprintf(failure, failure_size, "%s", message);
  } else {
    const char *range = json_member(line, "rangeReads");
    const char *timeout = json_member(line, "callTimeoutSeconds");
    pthread_mutex_lock(&g_lock);
    g_range_reads = range != NULL && strncmp(range, "true", 4) == 0;
    if (timeout != NULL) {
      double seconds = strtod(timeout, NULL);
      if (seconds > 0 && seconds < 86400.0 * 7) g_call_timeout_ms = (int)(seconds * 1000);
    }
    pthread_mutex_unlock(&g_lock);
    result = 0;
  }
  free(line);
  return result;
}

static void pool_drain(void) {
  pthread_mutex_lock(&g_pool_lock);
  for (int i = 0; i < g_pool_count; i++) close(g_pool[i].fd);
  g_pool_count = 0;
  pthread_mutex_unlock(&g_pool_lock);
}

/* Reaps the gateway (killing it after a grace period once stdin is closed) and its log thread. */
static int reap_gateway(gateway_child *child, int close_stdin_first) {
  int status = 0;
  if (child->pid > 0) {
    if (close_stdin_first) {
      pthread_mutex_lock(&g_lock);
      if (child->stdin_fd >= 0) shutdown(child->stdin_fd, SHUT_RDWR);
      pthread_mutex_unlock(&g_lock);
      int64_t deadline = now_ms() + STOP_GRACE_MS;
      while (waitpid(child->pid, &status, WNOHANG) == 0) {
        if (now_ms() >= deadline) {
          kill(child->pid, SIGKILL);
          waitpid(child->pid, &status, 0);
          break;
        }
        usleep(20000);
      }
    } else {
      /* ECHILD (children reaped elsewhere) is fine: the log thread's join below waits for exit. */
      while (waitpid(child->pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  /* EOF on stdin also stops a gateway that outlived its direct child (NodeExecutable being a
   * wrapper script); it holds the output pipes, so this must come before the join. */
  pthread_mutex_lock(&g_lock);
  if (child->stdin_fd >= 0) shutdown(child->stdin_fd, SHUT_RDWR);
  pthread_mutex_unlock(&g_lock);
  if (child->has_output_thread) pthread_join(child->output_thread, NULL);
  child->has_output_thread = 0;
  pthread_mutex_lock(&g_lock);
  if (child->stdin_fd >= 0) close(child->stdin_fd);
  child->stdin_fd = child->stdout_fd = child->stderr_fd = -1;
  child->pid = -1;
  free(child->handshake);
  child->handshake = NULL;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);
  return status;
}

static void describe_exit(int status, char *out, size_t size) {
  if (WIFSIGNALED(status)) snprintf(out, size, "killed by signal %d", WTERMSIG(status));
  else snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
}

/* Sleeps up to `ms` unless Orthanc stops. Returns nonzero when stopping. */
static int backoff_sleep(int ms) {
  struct timespec deadline = deadline_timespec(now_ms() + ms);
  pthread_mutex_lock(&g_lock);
  while (!g_stopping && pthread_cond_timedwait(&g_cond, &g_lock, &deadline) != ETIMEDOUT) {
  }
  int stopping = g_stopping;
  pthread_mutex_unlock(&g_lock);
  return stopping;
}

/* Starts the gateway, then restarts it with backoff whenever it dies, until Finalize.
 * Lives as long as the plugin: PR_SET_PDEATHSIG fires when this thread ends. */
static void *supervisor_main(void *unused) {
  (void)unused;
  int first = 1;
  int backoff = BACKOFF_FIRST_MS;
  for (;;) {
    char failure[1024] = "";
    int started = spawn_gateway(&g_child, failure, sizeof(failure)) == 0 &&
                  await_handshake(&g_child, failure, sizeof(failure)) == 0;
    if (started) {
      int64_t started_at = now_ms();
      pthread_mutex_lock(&g_lock);
      g_state = GW_READY;
      g_generation++;
      pthread_cond_broadcast(&g_cond);
      pthread_mutex_unlock(&g_lock);
      if (!first) log_message(LOG_WARNING, "gateway restarted (pid %d)", (int)g_child.pid);
      first = 0;
      int status = reap_gateway(&g_child, 0);
      pthread_mutex_lock(&g_lock);
      int stopping = g_stopping;
      if (!stopping) g_state = GW_STARTING;
      g_generation++;
      pthread_mutex_unlock(&g_lock);
      pool_drain();
      if (stopping) break;
      char how[64];
      describe_exit(status, how, sizeof(how));
      if (now_ms() - started_at >= HEALTHY_AFTER_MS) backoff = BACKOFF_FIRST_MS;
      log_message(LOG_ERROR, "gateway %s; restarting in %d ms", how, backoff);
    } else {
      reap_gateway(&g_child, 1);
      if (first) {
        pthread_mutex_lock(&g_lock);
        snprintf(g_failure, sizeof(g_failure), "%s", failure);
        g_state = GW_FAILED;
        pthread_cond_broadcast(&g_cond);
        pthread_mutex_unlock(&g_lock);
        break;
      }
      log_message(LOG_ERROR, "gateway restart failed: %s; retrying in %d ms", failure, backoff);
    }
    if (backoff_sleep(backoff)) break;
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
  }
  return NULL;
}

/* ---- Connections ------------------------------------------------------------------------- */

typedef struct {
  int fd;
  unsigned generation;
  int reused;
} connection;

/* Waits (bounded) for a ready gateway and returns a pooled or new connection. */
static int connection_acquire(connection *c, int allow_pooled, int64_t deadline_ms, char *failure, size_t size) {
  struct timespec deadline = deadline_timespec(deadline_ms);
  pthread_mutex_lock(&g_lock);
  while (g_state == GW_STARTING && !g_stopping) {
    if (pthread_cond_timedwait(&g_cond, &g_lock, &deadline) == ETIMEDOUT) break;
  }
  int ready = g_state == GW_READY && !g_stopping;
  unsigned generation = g_generation;
  pthread_mutex_unlock(&g_lock);
  if (!ready) {
    snprintf(failure, size, "the gateway is not running (being restarted or stopped)");
    return -1;
  }

  c->fd = -1;
  c->generation = generation;
  c->reused = 0;
  if (allow_pooled) {
    pthread_mutex_lock(&g_pool_lock);
    while (g_pool_count > 0 && c->fd < 0) {
      pooled_connection p = g_pool[--g_pool_count];
      if (p.generation == generation) c->fd = p.fd;
      else close(p.fd);
    }
    pthread_mutex_unlock(&g_pool_lock);
    if (c->fd >= 0) {
      c->reused = 1;
      return 0;
    }
  }

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(failure, size, "cannot create a socket: %s", strerror(errno));
    return -1;
  }
  int64_t left = deadline_ms - now_ms();
  struct timeval tv = {.tv_sec = left > 0 ? left / 1000 : 0, .tv_usec = left > 0 ? (left % 1000) * 1000 : 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  memcpy(address.sun_path, g_socket_path, sizeof(address.sun_path));
  int rc;
  do rc = connect(fd, (struct sockaddr *)&address, sizeof(address));
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    snprintf(failure, size, "cannot connect to the gateway: %s", strerror(errno));
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  c->fd = fd;
  return 0;
}

static void connection_release(connection *c, int reusable) {
  if (c->fd < 0) return;
  if (reusable) {
    pthread_mutex_lock(&g_lock);
    int current = g_state == GW_READY && c->generation == g_generation;
    pthread_mutex_unlock(&g_lock);
    if (current) {
      pthread_mutex_lock(&g_pool_lock);
      if (g_pool_count < POOL_CAPACITY) {
        g_pool[g_pool_count].fd = c->fd;
        g_pool[g_pool_count].generation = c->generation;
        g_pool_count++;
        c->fd = -1;
      }
      pthread_mutex_unlock(&g_pool_lock);
    }
  }
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* ---- Calls ------------------------------------------------------------------------------- */

typedef struct {
  int op;
  const char *uuid;
  OrthancPluginContentType type;
  uint64_t offset;
  uint64_t size;
  const void *body;                     /* create */
  OrthancPluginMemoryBuffer64 *target;  /* read whole (allocated here) or range (given) */
} call_request;

typedef struct {
  int io;              /* io_result of the transport */
  int answered;        /* a response byte arrived: the request must not be retried */
  int status;          /* gateway status when io == IO_OK */
  char message[1024];
} call_outcome;

/* Reads a response header and its message. */
static int read_response_header(int fd, call_outcome *out, uint64_t *size, int64_t deadline_ms) {
  unsigned char header[RESPONSE_HEADER_SIZE];
  int r = recv_all(fd, header, sizeof(header), deadline_ms);
  if (r != IO_OK) return r;
  out->answered = 1;
  if (memcmp(header, RESPONSE_MAGIC, 4) != 0) return IO_ERROR;
  out->status = header[4];
  *size = get_u64(header + 8);
  size_t message_length = get_u16(header + 6);
  size_t kept = message_length < sizeof(out->message) - 1 ? message_length : sizeof(out->message) - 1;
  r = recv_all(fd, out->message, kept, deadline_ms);
  if (r != IO_OK) return r;
  out->message[kept] = '\0';
  char discard[256];
  for (size_t left = message_length - kept; left > 0;) {
    size_t n = left < sizeof(discard) ? left : sizeof(discard);
    r = recv_all(fd, discard, n, deadline_ms);
    if (r != IO_OK) return r;
    left -= n;
  }
  return IO_OK;
}

static void call_once(connection *c, const call_request *request, call_outcome *out, int64_t deadline_ms) {
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
  out->io = send_all_iov(c->fd, iov, request->op == OP_CREATE && request->size > 0 ? 3 : 2, deadline_ms);
  if (out->io != IO_OK) return;

  uint64_t size = 0;
  out->io = read_response_header(c->fd, out, &size, deadline_ms);
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
    if (OrthancPluginCreateMemoryBuffer64(g_context, target, size) != OrthancPluginErrorCode_Success) {
      out->io = IO_ERROR;
      out->status = -1; /* marks an allocation failure */
      snprintf(out->message, sizeof(out->message), "cannot allocate %llu bytes", (unsigned long long)size);
      target->data = NULL;
      target->size = 0;
      return;
    }
  }
  out->io = recv_all(c->fd, target->data, size, deadline_ms);
  uint64_t trailer_size = 0;
  if (out->io == IO_OK) out->io = read_response_header(c->fd, out, &trailer_size, deadline_ms);
  if (out->io == IO_OK && out->status == ST_OK) return;
  if (request->op == OP_READ_WHOLE) {
    OrthancPluginFreeMemoryBuffer64(g_context, target);
    target->data = NULL;
    target->size = 0;
  }
}

static const char *operation_name(int op) {
  switch (op) {
    case OP_CREATE: return "creating";
    case OP_READ_WHOLE: return "reading";
    case OP_READ_RANGE: return "reading a range of";
    default: return "removing";
  }
}

static OrthancPluginErrorCode perform(const call_request *request) {
  if (strlen(request->uuid) > MAX_UUID_LENGTH) {
    log_message(LOG_ERROR, "error while %s object: invalid uuid", operation_name(request->op));
    return OrthancPluginErrorCode_ParameterOutOfRange;
  }
  pthread_mutex_lock(&g_lock);
  int64_t timeout_ms = g_call_timeout_ms;
  pthread_mutex_unlock(&g_lock);
  int64_t deadline = now_ms() + timeout_ms;
  call_outcome outcome;
  char failure[256];
  for (int attempt = 0;; attempt++) {
    connection c;
    if (connection_acquire(&c, attempt == 0, deadline, failure, sizeof(failure)) != 0) {
      log_message(LOG_ERROR, "error while %s object %s: %s", operation_name(request->op), request->uuid, failure);
      return OrthancPluginErrorCode_StorageAreaPlugin;
    }
    call_once(&c, request, &outcome, deadline);
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
      log_message(LOG_ERROR, "error while %s object %s: timed out after %lld s (GatewayCallTimeout)",
                  operation_name(request->op), request->uuid, (long long)(timeout_ms / 1000));
    } else {
      log_message(LOG_ERROR, "error while %s object %s: %s%s%s", operation_name(request->op), request->uuid,
                  io_describe(outcome.io), outcome.message[0] ? ": " : "", outcome.message);
    }
    return OrthancPluginErrorCode_StorageAreaPlugin;
  }
  log_message(LOG_ERROR, "error while %s object %s: %s", operation_name(request->op), request->uuid,
              outcome.message[0] ? outcome.message : "unknown gateway error");
  switch (outcome.status) {
    case ST_NOT_FOUND: return OrthancPluginErrorCode_UnknownResource;
    case ST_RANGE: return OrthancPluginErrorCode_BadRange;
    case ST_BAD_REQUEST: return OrthancPluginErrorCode_ParameterOutOfRange;
    default: return OrthancPluginErrorCode_StorageAreaPlugin;
  }
}

static OrthancPluginErrorCode storage_create(const char *uuid, const void *content, int64_t size,
                                             OrthancPluginContentType type) {
  if (size < 0) return OrthancPluginErrorCode_ParameterOutOfRange;
  call_request request = {.op = OP_CREATE, .uuid = uuid, .type = type, .size = (uint64_t)size, .body = content};
  return perform(&request);
}

static OrthancPluginErrorCode storage_read_whole(OrthancPluginMemoryBuffer64 *target, const char *uuid,
                                                 OrthancPluginContentType type) {
  call_request request = {.op = OP_READ_WHOLE, .uuid = uuid, .type = type, .target = target};
  return perform(&request);
}

static OrthancPluginErrorCode storage_read_range(OrthancPluginMemoryBuffer64 *target, const char *uuid,
                                                 OrthancPluginContentType type, uint64_t range_start) {
  call_request request = {.op = OP_READ_RANGE, .uuid = uuid, .type = type, .offset = range_start,
                          .size = target->size, .target = target};
  return perform(&request);
}

static OrthancPluginErrorCode storage_remove(const char *uuid, OrthancPluginContentType type) {
  call_request request = {.op = OP_REMOVE, .uuid = uuid, .type = type};
  return perform(&request);
}

/* ---- Plugin entry points ----------------------------------------------------------------- */

static int append_json_string(char **out, size_t *length, size_t *capacity, const char *text) {
  size_t needed = *length + strlen(text) * 6 + 3;
  if (needed > *capacity) {
    char *grown = realloc(*out, needed);
    if (!grown) return -1;
    *out = grown;
    *capacity = needed;
  }
  char *p = *out + *length;
  *p++ = '"';
  for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
    if (*s == '"' || *s == '\\') { *p++ = '\\'; *p++ = (char)*s; }
    else if (*s < 0x20) p += sprintf(p, "\\u%04x", *s);
    else *p++ = (char)*s;
  }
  *p++ = '"';
  *length = (size_t)(p - *out);
  return 0;
}

static int append_raw(char **out, size_t *length, size_t *capacity, const char *text) {
  size_t n = strlen(text);
  if (*length + n + 1 > *capacity) {
    size_t grown_size = *length + n + 1;
    char *grown = realloc(*out, grown_size);
    if (!grown) return -1;
    *out = grown;
    *capacity = grown_size;
  }
  memcpy(*out + *length, text, n + 1);
  *length += n;
  return 0;
}

/* {"socketPath":..,"section":..,"provider":..,"configuration":<Orthanc's JSON, raw>} */
static int build_envelope(const char *section, const char *configuration) {
  char *out = NULL;
  size_t length = 0, capacity = 0;
  int failed = append_raw(&out, &length, &capacity, "{\"socketPath\":") ||
               append_json_string(&out, &length, &capacity, g_socket_path) ||
               append_raw(&out, &length, &capacity, ",\"section\":") ||
               append_json_string(&out, &length, &capacity, section) ||
               append_raw(&out, &length, &capacity, ",\"provider\":\"" OOS_PROVIDER "\",\"configuration\":") ||
               append_raw(&out, &length, &capacity, configuration) || append_raw(&out, &length, &capacity, "}");
  if (failed) {
    free(out);
    return -1;
  }
  g_envelope = out;
  g_envelope_size = length;
  return 0;
}

static int locate_gateway_script(void) {
  Dl_info info;
  if (dladdr((void *)&locate_gateway_script, &info) == 0 || info.dli_fname == NULL) return -1;
  char path[PATH_MAX];
  if (realpath(info.dli_fname, path) == NULL) snprintf(path, sizeof(path), "%s", info.dli_fname);
  char *slash = strrchr(path, '/');
  const char *dir = ".";
  if (slash) {
    *slash = '\0';
    dir = path[0] ? path : "/";
  }
  int n = snprintf(g_gateway_script, sizeof(g_gateway_script), "%s/gateway.mjs", dir);
  return n > 0 && (size_t)n < sizeof(g_gateway_script) ? 0 : -1;
}

static int make_socket_dir(void) {
  const char *candidates[] = {getenv("TMPDIR"), "/tmp"};
  for (size_t i = 0; i < 2; i++) {
    const char *base = candidates[i];
    if (base == NULL || base[0] == '\0') continue;
    int n = snprintf(g_socket_dir, sizeof(g_socket_dir), "%s/orthanc-oos-XXXXXX", base);
    /* The socket path must fit in sun_path. */
    if (n <= 0 || (size_t)n + sizeof("/gateway.sock") > sizeof(g_socket_path)) continue;
    if (mkdtemp(g_socket_dir) == NULL) continue; /* mkdtemp creates it with mode 0700 */
    chmod(g_socket_dir, 0700);
    memcpy(g_socket_path, g_socket_dir, (size_t)n);
    memcpy(g_socket_path + n, "/gateway.sock", sizeof("/gateway.sock"));
    return 0;
  }
  g_socket_dir[0] = '\0';
  return -1;
}

static void release_resources(void) {
  pool_drain();
  if (g_socket_path[0]) unlink(g_socket_path);
  if (g_socket_dir[0]) rmdir(g_socket_dir);
  g_socket_path[0] = g_socket_dir[0] = '\0';
  if (g_envelope) {
    explicit_bzero(g_envelope, g_envelope_size); /* holds the configuration, maybe secrets */
    free(g_envelope);
  }
  g_envelope = NULL;
  free(g_node_executable);
  g_node_executable = NULL;
}

/* Finds the provider's section; returns its name, or NULL when absent. */
static const char *find_section(const char *configuration) {
  if (json_member(configuration, OOS_SECTION) != NULL) return OOS_SECTION;
#ifdef OOS_LEGACY_SECTION
  if (json_member(configuration, OOS_LEGACY_SECTION) != NULL) return OOS_LEGACY_SECTION;
#endif
  return NULL;
}

static int start_supervisor(void) {
  sigset_t all, previous;
  sigfillset(&all);
  /* Our threads take no signals: Orthanc's own threads keep handling them. */
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  int rc = pthread_create(&g_supervisor, NULL, supervisor_main, NULL);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  return rc;
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

  char node[PATH_MAX] = "node";
  const char *section_value = json_member(configuration, section);
  if (section_value != NULL && *section_value == '{' &&
      json_member(section_value, "NodeExecutable") != NULL &&
      (json_member_string(section_value, "NodeExecutable", node, sizeof(node)) != 0 || node[0] == '\0')) {
    log_message(LOG_ERROR, "\"%s.NodeExecutable\" must be a non-empty path string", section);
    OrthancPluginFreeString(context, configuration);
    return -1;
  }
  g_node_executable = strdup(node);

  int ok = g_node_executable != NULL && locate_gateway_script() == 0;
  if (ok && access(g_gateway_script, R_OK) != 0) {
    log_message(LOG_ERROR, "cannot read the gateway %s: %s (it must sit next to the plugin library)",
                g_gateway_script, strerror(errno));
    ok = 0;
  }
  if (ok && make_socket_dir() != 0) {
    log_message(LOG_ERROR, "cannot create a private directory for the gateway socket: %s", strerror(errno));
    ok = 0;
  }
  if (ok && build_envelope(section, configuration) != 0) ok = 0;
  OrthancPluginFreeString(context, configuration);
  if (!ok) {
    release_resources();
    return -1;
  }

  pthread_condattr_t attributes;
  pthread_condattr_init(&attributes);
  pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
  pthread_cond_init(&g_cond, &attributes);
  pthread_condattr_destroy(&attributes);

  g_stopping = 0;
  g_state = GW_STARTING;
  if (start_supervisor() != 0) {
    log_message(LOG_ERROR, "cannot start the supervisor thread");
    release_resources();
    return -1;
  }
  g_supervisor_running = 1;

  pthread_mutex_lock(&g_lock);
  while (g_state == GW_STARTING) pthread_cond_wait(&g_cond, &g_lock);
  int failed = g_state == GW_FAILED;
  int range_reads = g_range_reads;
  pid_t pid = g_child.pid;
  pthread_mutex_unlock(&g_lock);

  if (failed) {
    log_message(LOG_ERROR, "%s", g_failure);
    pthread_join(g_supervisor, NULL);
    g_supervisor_running = 0;
    release_resources();
    return -1;
  }

  OrthancPluginRegisterStorageArea2(context, storage_create, storage_read_whole,
                                    range_reads ? storage_read_range : NULL, storage_remove);
  log_message(LOG_WARNING, "storage area registered (section %s, gateway pid %d, range reads %s)", section,
              (int)pid, range_reads ? "on" : "off: whole-file reads only");
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void) {
  if (!g_supervisor_running) return;
  log_message(LOG_WARNING, "stopping the gateway");
  pthread_mutex_lock(&g_lock);
  g_stopping = 1;
  g_state = GW_STOPPED;
  pid_t pid = g_child.pid;
  /* EOF on stdin: the gateway exits. shutdown, not close: the supervisor owns the descriptor. */
  if (g_child.stdin_fd >= 0) shutdown(g_child.stdin_fd, SHUT_RDWR);
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);

  /* The supervisor reaps the gateway; kill it if it does not exit within the grace period. */
  int64_t deadline = now_ms() + STOP_GRACE_MS;
  struct timespec limit = deadline_timespec(deadline);
  pthread_mutex_lock(&g_lock);
  while (g_child.pid == pid && pid > 0) {
    if (pthread_cond_timedwait(&g_cond, &g_lock, &limit) == ETIMEDOUT) {
      if (g_child.pid == pid) kill(pid, SIGKILL);
      break;
    }
  }
  pthread_mutex_unlock(&g_lock);
  pthread_join(g_supervisor, NULL);
  g_supervisor_running = 0;
  release_resources();
}

ORTHANC_PLUGINS_API const char *OrthancPluginGetName(void) { return OOS_PLUGIN_NAME; }

ORTHANC_PLUGINS_API const char *OrthancPluginGetVersion(void) { return OOS_PLUGIN_VERSION; }
