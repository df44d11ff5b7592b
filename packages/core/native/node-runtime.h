/*
 * Where the plugin sits and which Node.js runtime runs its gateway: "NodeExecutable" when set,
 * else the runtime shipped beside the library (`<plugin folder>/node`), else `node` on PATH.
 */
#ifndef OOS_NODE_RUNTIME_H
#define OOS_NODE_RUNTIME_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

#define OOS_MIN_NODE_MAJOR 22

/* The folder holding this library (symlinks resolved). Returns 0, or -1 when unknown. */
int plugin_directory(char *out, size_t capacity);

/* Chooses the runtime (`configured` is NodeExecutable, or NULL) into `out` and checks that it
 * runs and is Node.js 22 or later. Returns 0, or -1 after logging one error that names where
 * the runtime came from and the version found. */
int resolve_node_runtime(const char *configured, const char *section, char *out, size_t capacity);

#pragma GCC visibility pop

#endif
