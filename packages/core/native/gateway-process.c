/* The gateway process: spawn, handshake, log forwarding, restart with backoff, stop. */
#define _GNU_SOURCE
#include "gateway-process.h"

#include "json-scan.h"
#include "json-write.h"
#include "node-runtime.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define STARTUP_TIMEOUT_MS 120000   /* first handshake (provider start-up may contact the cloud) */
#define STOP_GRACE_MS 5000          /* after closing stdin, before SIGKILL */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define HEALTHY_AFTER_MS 10000      /* a gateway alive that long resets the backoff */
#define DEFAULT_CALL_TIMEOUT_MS 1800000
#define MAX_CALL_TIMEOUT_S 2147483  /* GatewayCallTimeout's allowed range: 1 to this */
#define LINE_FIRST_CAPACITY 8192
#define LINE_MAX_BYTES (1 << 20)    /* longer lines (never expected) are split */

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

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the fields below */
static pthread_cond_t g_cond;
static gateway_state g_state = GW_STOPPED;
static unsigned g_generation;
static int g_stopping;
static gateway_child g_child = {.pid = -1, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
static char *g_failure;       /* why the first start failed, whole (it may be long) */
static int g_range_reads;
static char *g_ready_handshake; /* the first "ready" line: the routes and job types to register */
static int64_t g_call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;

static pthread_t g_supervisor;
static int g_supervisor_running;
static char *g_envelope;
static size_t g_envelope_size;
static char *g_node_executable;
static char g_gateway_script[PATH_MAX];
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)
static char g_socket_dir[SUN_PATH_SIZE];
static char g_socket_path[SUN_PATH_SIZE]; /* the first worker's; the others append ".<i>" */
/* The sockets of the running gateway's workers, from its handshake (under g_lock). */
static char g_worker_paths[GATEWAY_MAX_WORKERS][SUN_PATH_SIZE];
static int g_worker_count;

/* Replaces *failure with a formatted message of any length. */
static void set_failure(char **failure, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void set_failure(char **failure, const char *format, ...) {
  char *text = NULL;
  va_list args;
  va_start(args, format);
  if (vasprintf(&text, format, args) < 0) text = NULL;
  va_end(args);
  free(*failure);
  *failure = text != NULL ? text : strdup("out of memory");
}

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

/* One stream's pending bytes; grows up to LINE_MAX_BYTES so a long line (the handshake of a
 * long start-up error) arrives whole. */
typedef struct {
  char *data;
  size_t used;
  size_t capacity;
} line_buffer;

/* Reads the gateway's stdout (handshake, then info) and stderr (log lines) until both close. */
static void *output_thread_main(void *arg) {
  gateway_child *child = arg;
  pthread_setname_np(pthread_self(), "oos-gateway-log"); /* names show in top -H and /proc */
  line_buffer buffers[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
  int fds[2] = {child->stderr_fd, child->stdout_fd};
  int open_count = 2;
  int handshake_seen = 0;
  for (int i = 0; i < 2; i++) {
    buffers[i].data = malloc(LINE_FIRST_CAPACITY);
    buffers[i].capacity = buffers[i].data ? LINE_FIRST_CAPACITY : 0;
  }
  while (open_count > 0 && buffers[0].data && buffers[1].data) {
    struct pollfd pfds[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
    if (poll(pfds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) { /* stderr first: warnings precede the handshake */
      if (fds[i] < 0 || (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      line_buffer *b = &buffers[i];
      if (b->used == b->capacity - 1 && b->capacity < LINE_MAX_BYTES) {
        char *grown = realloc(b->data, b->capacity * 2);
        if (grown) {
          b->data = grown;
          b->capacity *= 2;
        }
      }
      ssize_t n = read(fds[i], b->data + b->used, b->capacity - 1 - b->used);
      if (n < 0 && errno == EINTR) continue;
      int closed = n <= 0;
      if (n > 0) b->used += (size_t)n;
      for (;;) {
        char *newline = memchr(b->data, '\n', b->used);
        int full = b->used == b->capacity - 1 && b->capacity >= LINE_MAX_BYTES;
        if (!newline && !(full || (closed && b->used > 0))) break;
        size_t line_length = newline ? (size_t)(newline - b->data) : b->used;
        b->data[line_length] = '\0';
        if (i == 1 && !handshake_seen) {
          handshake_seen = 1;
          pthread_mutex_lock(&g_lock);
          child->handshake = strdup(b->data);
          pthread_cond_broadcast(&g_cond);
          pthread_mutex_unlock(&g_lock);
        } else {
          forward_log_line(i == 1, b->data);
        }
        size_t consumed = newline ? line_length + 1 : line_length;
        memmove(b->data, b->data + consumed, b->used - consumed);
        b->used -= consumed;
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
    free(buffers[i].data);
  }
  return NULL;
}

/* Orthanc's environment plus glibc malloc settings: a fixed mmap threshold, so freed upload
 * buffers (parts of 5 MB and more) go back to the system at once instead of staying in the heap,
 * as glibc's sliding threshold otherwise does (16 concurrent 256 MiB creates: peak RSS ~50 MiB
 * lower), and two arenas, so freed chunks are not spread over one arena per thread (soak: RSS
 * creeps less). 1 MiB + 64 KiB, not 128 KiB: the 1 MiB buffers of every call (file reads, bodies)
 * then come from the arenas; mapped and unmapped each time, they cost page faults, zeroing and
 * cross-core TLB flushes (25-45% more gateway CPU per 1 MiB read). Not higher: anything larger
 * still goes back at once (4 MiB let the GCS soak's RSS stick at ~270 MiB in 2 runs of 18).
 * An operator's own settings win. Built before fork (it allocates); NULL when out of memory. */
static char **gateway_environment(void) {
  extern char **environ;
  size_t count = 0;
  while (environ[count] != NULL) count++;
  char **env = calloc(count + 3, sizeof(char *));
  if (env == NULL) return NULL;
  memcpy(env, environ, count * sizeof(char *));
  if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL) env[count++] = (char *)"MALLOC_MMAP_THRESHOLD_=1114112";
  if (getenv("MALLOC_ARENA_MAX") == NULL) env[count++] = (char *)"MALLOC_ARENA_MAX=2";
  return env;
}

static void child_exec(int stdin_fd, int stdout_fd, int stderr_fd, int exec_error_fd, pid_t parent,
                       char **env) {
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
  /* A small young generation: upload traffic allocates Buffers, not objects, and V8 otherwise
   * grows new space to ~125 MiB of mostly empty pages (measured, 16 concurrent creates). */
  char *const argv[] = {g_node_executable, "--max-semi-space-size=4", g_gateway_script, NULL};
  extern char **environ;
  execvpe(g_node_executable, argv, env != NULL ? env : environ);
  int error = errno;
  ssize_t ignored = write(exec_error_fd, &error, sizeof(error));
  (void)ignored;
  _exit(127);
}

/* The socket's private directory must exist, be ours and be closed to others (mode 0700). */
static int ensure_socket_dir(char **failure) {
  struct stat info;
  if (mkdir(g_socket_dir, 0700) != 0 && errno != EEXIST) {
    set_failure(failure, "cannot create %s: %s", g_socket_dir, strerror(errno));
    return -1;
  }
  if (lstat(g_socket_dir, &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != geteuid() ||
      (info.st_mode & 0077) != 0) {
    set_failure(failure, "%s is not a private directory of this user (mode 0700)", g_socket_dir);
    return -1;
  }
  return 0;
}

/* Starts a gateway and sends it the envelope. Sets `*failure` on error. */
static int spawn_gateway(gateway_child *child, char **failure) {
  int stdin_pair[2], out_pipe[2], err_pipe[2], exec_pipe[2];
  if (ensure_socket_dir(failure) != 0) return -1;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stdin_pair) != 0) goto fail_stdin;
  if (pipe2(out_pipe, O_CLOEXEC) != 0) goto fail_out;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) goto fail_err;
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) goto fail_exec;

  pid_t parent = getpid();
  char **env = gateway_environment();
  pid_t pid = fork();
  if (pid == 0) child_exec(stdin_pair[1], out_pipe[1], err_pipe[1], exec_pipe[1], parent, env);
  int fork_error = errno;
  free(env);
  close(stdin_pair[1]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);
  if (pid < 0) {
    set_failure(failure, "cannot start the gateway: fork: %s", strerror(fork_error));
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
    set_failure(failure, "cannot execute the Node runtime \"%s\": %s (set \"NodeExecutable\" in the \"%s\" section)",
             g_node_executable, strerror(exec_error), OOS_SECTION);
    goto fail_output;
  }
  if (pthread_create(&child->output_thread, NULL, output_thread_main, child) != 0) {
    set_failure(failure, "cannot start the gateway's log thread");
    goto fail_output;
  }
  child->has_output_thread = 1;

  /* The envelope, length-prefixed (u32 LE): see src/gateway/envelope.ts. */
  fcntl(child->stdin_fd, F_SETFL, fcntl(child->stdin_fd, F_GETFL) | O_NONBLOCK);
  unsigned char length[4];
  put_u32(length, (uint32_t)g_envelope_size);
  struct iovec iov[2] = {{.iov_base = length, .iov_len = 4}, {.iov_base = g_envelope, .iov_len = g_envelope_size}};
  int sent = send_all_iov(child->stdin_fd, iov, 2, STARTUP_TIMEOUT_MS);
  if (sent != IO_OK) {
    set_failure(failure, "cannot send the configuration to the gateway: %s", io_describe(sent));
    return -1;
  }
  return 0;

fail_output: /* no log thread to close them; reap_gateway handles the rest */
  close(child->stdout_fd);
  close(child->stderr_fd);
  child->stdout_fd = child->stderr_fd = -1;
  return -1;
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
  set_failure(failure, "cannot start the gateway: %s", strerror(errno));
  return -1;
}

/* Reads the handshake's "sockets" (one per worker thread) into g_worker_paths. Each must lie in
 * our private directory. Without the member (never expected), the one socket we chose. */
static int read_worker_sockets(const char *line, char **failure) {
  const char *sockets = json_member(line, "sockets");
  char paths[GATEWAY_MAX_WORKERS][SUN_PATH_SIZE];
  int count = 0;
  size_t dir_length = strlen(g_socket_dir);
  if (sockets == NULL) {
    memcpy(paths[0], g_socket_path, SUN_PATH_SIZE);
    count = 1;
  }
  for (size_t i = 0; sockets != NULL && json_item(sockets, i) != NULL; i++) {
    if (count == GATEWAY_MAX_WORKERS) {
      set_failure(failure, "the gateway announced more than %d worker sockets", GATEWAY_MAX_WORKERS);
      return -1;
    }
    if (json_string_value(json_item(sockets, i), paths[count], SUN_PATH_SIZE) != 0 ||
        strncmp(paths[count], g_socket_dir, dir_length) != 0 || paths[count][dir_length] != '/' ||
        strchr(paths[count] + dir_length + 1, '/') != NULL) {
      set_failure(failure, "the gateway announced a socket outside %s", g_socket_dir);
      return -1;
    }
    count++;
  }
  if (count == 0) {
    set_failure(failure, "the gateway announced no worker socket");
    return -1;
  }
  pthread_mutex_lock(&g_lock);
  memcpy(g_worker_paths, paths, sizeof(paths[0]) * (size_t)count);
  g_worker_count = count;
  pthread_mutex_unlock(&g_lock);
  return 0;
}

/* Waits for the handshake line. Returns 0 when ready. Called without g_lock held. */
static int await_handshake(gateway_child *child, char **failure) {
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
  char status[32] = "";
  if (stopping) {
    set_failure(failure, "Orthanc is stopping");
  } else if (line == NULL) {
    set_failure(failure, timed_out ? "the gateway did not answer within %d s"
                                   : "the gateway exited before its handshake (see its log above)",
                STARTUP_TIMEOUT_MS / 1000);
  } else if (json_member_string(line, "status", status, sizeof(status)) != 0) {
    set_failure(failure, "the gateway sent an invalid handshake");
  } else if (strcmp(status, "ready") != 0) {
    /* A decoded string is never longer than its JSON text: the message arrives whole. */
    size_t capacity = strlen(line) + 1;
    char *message = malloc(capacity);
    if (message != NULL && json_member_string(line, "message", message, capacity) == 0) {
      set_failure(failure, "%s", message);
    } else {
      set_failure(failure, "the gateway refused to start but its handshake holds no readable message: %.200s",
                  line);
    }
    free(message);
  } else {
    const char *range = json_member(line, "rangeReads");
    const char *timeout = json_member(line, "callTimeoutSeconds");
    char *end = NULL;
    double seconds = timeout != NULL ? strtod(timeout, &end) : 0;
    if (timeout == NULL || end == timeout || !(seconds >= 1 && seconds <= MAX_CALL_TIMEOUT_S)) {
      set_failure(failure, "the gateway sent an invalid call timeout (allowed: 1 to %d s)", MAX_CALL_TIMEOUT_S);
    } else if (read_worker_sockets(line, failure) == 0) {
      pthread_mutex_lock(&g_lock);
      g_range_reads = range != NULL && strncmp(range, "true", 4) == 0;
      if (g_ready_handshake == NULL) g_ready_handshake = strdup(line);
      g_call_timeout_ms = (int64_t)(seconds * 1000);
      pthread_mutex_unlock(&g_lock);
      result = 0;
    }
  }
  free(line);
  return result;
}

/* EOF on its stdin makes the gateway exit. shutdown, not close: the supervisor owns the descriptor.
 * Called with g_lock held. */
static void end_stdin_locked(gateway_child *child) {
  if (child->stdin_fd >= 0) shutdown(child->stdin_fd, SHUT_RDWR);
}

static void end_stdin(gateway_child *child) {
  pthread_mutex_lock(&g_lock);
  end_stdin_locked(child);
  pthread_mutex_unlock(&g_lock);
}

/* Reaps the gateway (killing it after a grace period once stdin is closed) and its log thread. */
static int reap_gateway(gateway_child *child, int close_stdin_first) {
  int status = 0;
  if (child->pid > 0) {
    if (close_stdin_first) {
      end_stdin(child);
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
  end_stdin(child);
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
  pthread_setname_np(pthread_self(), "oos-supervisor");
  int first = 1;
  int backoff = BACKOFF_FIRST_MS;
  for (;;) {
    char *failure = NULL;
    int started = spawn_gateway(&g_child, &failure) == 0 && await_handshake(&g_child, &failure) == 0;
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
      wire_pool_drain();
      if (stopping) break;
      char how[64];
      describe_exit(status, how, sizeof(how));
      if (now_ms() - started_at >= HEALTHY_AFTER_MS) backoff = BACKOFF_FIRST_MS;
      log_message(LOG_ERROR, "gateway %s; restarting in %d ms", how, backoff);
    } else {
      reap_gateway(&g_child, 1);
      if (first) {
        pthread_mutex_lock(&g_lock);
        g_failure = failure;
        failure = NULL;
        g_state = GW_FAILED;
        pthread_cond_broadcast(&g_cond);
        pthread_mutex_unlock(&g_lock);
        break;
      }
      log_message(LOG_ERROR, "gateway restart failed: %s; retrying in %d ms", failure, backoff);
      free(failure);
    }
    if (backoff_sleep(backoff)) break;
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
  }
  return NULL;
}

static int locate_gateway_script(void) {
  char dir[PATH_MAX];
  if (plugin_directory(dir, sizeof(dir)) != 0) return -1;
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
    if (n <= 0 || (size_t)n + sizeof("/gateway.sock.NN") > sizeof(g_socket_path)) continue;
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
  wire_pool_drain();
  /* A gateway killed outright leaves its sockets behind. */
  for (int i = 0; i < g_worker_count; i++) unlink(g_worker_paths[i]);
  g_worker_count = 0;
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
  free(g_ready_handshake);
  g_ready_handshake = NULL;
}

/* {"socketPath":..,"section":..,"provider":..,"configurationPath":..,"configuration":<Orthanc's
 * JSON, raw>}, allocated once at its exact size: no stray copies of the configuration (maybe
 * secrets) in freed memory. */
static int build_envelope(const char *section, const char *configuration_path, const char *configuration) {
  static const char format[] =
      "{\"socketPath\":%s,\"section\":%s,\"provider\":\"%s\",\"configurationPath\":%s,\"configuration\":%s}";
  /* Only the short, non-secret strings go through the growable buffers. */
  json_buffer socket_path = {0}, section_name = {0}, config_path = {0};
  json_quoted(&socket_path, g_socket_path);
  json_quoted(&section_name, section);
  json_quoted(&config_path, configuration_path);
  const char *quoted[3] = {json_text(&socket_path), json_text(&section_name), json_text(&config_path)};
  if (quoted[0] != NULL && quoted[1] != NULL && quoted[2] != NULL) {
    int length = snprintf(NULL, 0, format, quoted[0], quoted[1], OOS_PROVIDER, quoted[2], configuration);
    if (length >= 0 && (g_envelope = malloc((size_t)length + 1)) != NULL)
      g_envelope_size = (size_t)snprintf(g_envelope, (size_t)length + 1, format, quoted[0], quoted[1],
                                         OOS_PROVIDER, quoted[2], configuration);
  }
  json_free(&socket_path);
  json_free(&section_name);
  json_free(&config_path);
  return g_envelope == NULL ? -1 : 0;
}

int gateway_prepare(const char *node_executable, const char *section, const char *configuration_path,
                    const char *configuration) {
  g_node_executable = strdup(node_executable);
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
  if (ok && build_envelope(section, configuration_path, configuration) != 0) ok = 0;
  if (ok) return 0;
  release_resources();
  return -1;
}

int gateway_start(int *range_reads, pid_t *pid) {
  pthread_condattr_t attributes;
  pthread_condattr_init(&attributes);
  pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
  pthread_cond_init(&g_cond, &attributes);
  pthread_condattr_destroy(&attributes);

  g_stopping = 0;
  g_state = GW_STARTING;
  sigset_t all, previous;
  sigfillset(&all);
  /* Our threads take no signals: Orthanc's own threads keep handling them. */
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  int rc = pthread_create(&g_supervisor, NULL, supervisor_main, NULL);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  if (rc != 0) {
    log_message(LOG_ERROR, "cannot start the supervisor thread");
    release_resources();
    return -1;
  }
  g_supervisor_running = 1;

  pthread_mutex_lock(&g_lock);
  while (g_state == GW_STARTING) pthread_cond_wait(&g_cond, &g_lock);
  int failed = g_state == GW_FAILED;
  *range_reads = g_range_reads;
  *pid = g_child.pid;
  pthread_mutex_unlock(&g_lock);

  if (failed) {
    log_message(LOG_ERROR, "%s", g_failure != NULL ? g_failure : "the gateway did not start");
    free(g_failure);
    g_failure = NULL;
    pthread_join(g_supervisor, NULL);
    g_supervisor_running = 0;
    release_resources();
    return -1;
  }
  return 0;
}

void gateway_stop(void) {
  if (!g_supervisor_running) return;
  log_message(LOG_WARNING, "stopping the gateway");
  pthread_mutex_lock(&g_lock);
  g_stopping = 1;
  g_state = GW_STOPPED;
  pid_t pid = g_child.pid;
  end_stdin_locked(&g_child);
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);

  /* The supervisor reaps the gateway; kill it if it does not exit within the grace period. */
  struct timespec limit = deadline_timespec(now_ms() + STOP_GRACE_MS);
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

int gateway_await_ready(int64_t deadline_ms, unsigned *generation, int *workers) {
  struct timespec deadline = deadline_timespec(deadline_ms);
  pthread_mutex_lock(&g_lock);
  while (g_state == GW_STARTING && !g_stopping) {
    if (pthread_cond_timedwait(&g_cond, &g_lock, &deadline) == ETIMEDOUT) break;
  }
  int ready = g_state == GW_READY && !g_stopping;
  *generation = g_generation;
  *workers = g_worker_count;
  pthread_mutex_unlock(&g_lock);
  return ready;
}

int gateway_await_other_generation(unsigned generation, int64_t deadline_ms) {
  struct timespec deadline = deadline_timespec(deadline_ms);
  pthread_mutex_lock(&g_lock);
  while (g_generation == generation && !g_stopping) {
    if (pthread_cond_timedwait(&g_cond, &g_lock, &deadline) == ETIMEDOUT) break;
  }
  int changed = g_generation != generation && !g_stopping;
  pthread_mutex_unlock(&g_lock);
  return changed;
}

int gateway_is_current(unsigned generation) {
  pthread_mutex_lock(&g_lock);
  int current = g_state == GW_READY && generation == g_generation;
  pthread_mutex_unlock(&g_lock);
  return current;
}

const char *gateway_ready_handshake(void) { return g_ready_handshake; }

int gateway_worker_count(void) {
  pthread_mutex_lock(&g_lock);
  int workers = g_worker_count;
  pthread_mutex_unlock(&g_lock);
  return workers;
}

int64_t gateway_call_timeout_ms(void) {
  pthread_mutex_lock(&g_lock);
  int64_t timeout_ms = g_call_timeout_ms;
  pthread_mutex_unlock(&g_lock);
  return timeout_ms;
}

int gateway_socket_address(unsigned generation, int worker, struct sockaddr_un *address) {
  memset(address, 0, sizeof(*address));
  address->sun_family = AF_UNIX;
  pthread_mutex_lock(&g_lock);
  int current = generation == g_generation && worker >= 0 && worker < g_worker_count;
  if (current) memcpy(address->sun_path, g_worker_paths[worker], sizeof(address->sun_path));
  pthread_mutex_unlock(&g_lock);
  return current ? 0 : -1;
}
