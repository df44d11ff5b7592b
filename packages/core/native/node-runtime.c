/* Locates the plugin's folder and the Node.js runtime of the gateway, and checks its version. */
#define _GNU_SOURCE
#include "node-runtime.h"

#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION_PROBE_TIMEOUT_MS 15000

extern char **environ;

int plugin_directory(char *out, size_t capacity) {
  Dl_info info;
  if (dladdr((void *)&plugin_directory, &info) == 0 || info.dli_fname == NULL) return -1;
  char path[PATH_MAX];
  if (realpath(info.dli_fname, path) == NULL) snprintf(path, sizeof(path), "%s", info.dli_fname);
  char *slash = strrchr(path, '/');
  const char *dir = ".";
  if (slash) {
    *slash = '\0';
    dir = path[0] ? path : "/";
  }
  int n = snprintf(out, capacity, "%s", dir);
  return n > 0 && (size_t)n < capacity ? 0 : -1;
}

/* Runs `<node> --version` and reads its first line into `version`. Returns 0, or an errno. */
static int probe_version(const char *node, char *version, size_t capacity) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return errno;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  char *const argv[] = {(char *)node, "--version", NULL};
  pid_t pid;
  int error = posix_spawnp(&pid, node, &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (error != 0) {
    close(out[0]);
    return error;
  }
  size_t used = 0;
  int64_t deadline = now_ms() + VERSION_PROBE_TIMEOUT_MS;
  for (;;) {
    int64_t left = deadline - now_ms();
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    if (left <= 0 || (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)) {
      kill(pid, SIGKILL);
      break;
    }
    if (pfd.revents == 0) continue;
    ssize_t n = read(out[0], version + used, capacity - 1 - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += (size_t)n;
    if (used == capacity - 1) break;
  }
  close(out[0]);
  version[used] = '\0';
  version[strcspn(version, "\r\n")] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return 0;
}

int resolve_node_runtime(const char *configured, const char *section, char *out, size_t capacity) {
  char dir[PATH_MAX], source[PATH_MAX + 160], hint[256];
  if (configured != NULL) {
    snprintf(out, capacity, "%s", configured);
    snprintf(source, sizeof(source), "\"%s\" (\"NodeExecutable\" of the \"%s\" section)", configured, section);
    snprintf(hint, sizeof(hint), "point \"NodeExecutable\" of the \"%s\" section at Node.js %d or later",
             section, OOS_MIN_NODE_MAJOR);
  } else if (plugin_directory(dir, sizeof(dir)) == 0 &&
             snprintf(out, capacity, "%s/node", dir) < (int)capacity && access(out, X_OK) == 0) {
    snprintf(source, sizeof(source), "\"%s\" (the runtime beside the plugin)", out);
    snprintf(hint, sizeof(hint), "reinstall the plugin folder, or set \"NodeExecutable\" in the \"%s\" section",
             section);
  } else {
    snprintf(out, capacity, "node");
    snprintf(source, sizeof(source), "\"node\" on Orthanc's PATH (no \"NodeExecutable\", no runtime beside the plugin)");
    snprintf(hint, sizeof(hint),
             "install the plugin folder with its runtime, or set \"NodeExecutable\" in the \"%s\" section to "
             "Node.js %d or later",
             section, OOS_MIN_NODE_MAJOR);
  }

  char version[64] = "";
  int error = probe_version(out, version, sizeof(version));
  if (error != 0) {
    log_message(LOG_ERROR, "cannot run the Node.js runtime %s: %s; %s", source, strerror(error), hint);
    return -1;
  }
  char *end = NULL;
  long major = version[0] == 'v' ? strtol(version + 1, &end, 10) : -1;
  if (major < 0 || end == version + 1 || *end != '.') {
    log_message(LOG_ERROR, "the Node.js runtime %s did not report a version (\"%s\" for --version); %s", source,
                version, hint);
    return -1;
  }
  if (major < OOS_MIN_NODE_MAJOR) {
    log_message(LOG_ERROR, "the Node.js runtime %s is %s; the gateway needs Node.js %d or later: %s", source,
                version, OOS_MIN_NODE_MAJOR, hint);
    return -1;
  }
  log_message(LOG_INFO, "gateway runtime: Node.js %s, %s", version, source);
  return 0;
}
