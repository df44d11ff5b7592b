/*
 * The gateway process: started at initialization with the configuration on a private
 * socketpair (never argv), restarted with backoff when it dies, stopped at finalization.
 */
#ifndef OOS_GATEWAY_PROCESS_H
#define OOS_GATEWAY_PROCESS_H

#include "shim.h"

#include <sys/types.h>
#include <sys/un.h>

#pragma GCC visibility push(hidden)

/* Finds gateway.mjs next to this library, creates the socket's private directory and the
 * configuration envelope (with the path of Orthanc's configuration, "" when unknown, against
 * which Orthanc resolves relative paths). Returns -1 (logged when a reason is known, nothing
 * kept) on failure. */
int gateway_prepare(const char *node_executable, const char *section, const char *configuration_path,
                    const char *configuration);

/* Starts the supervisor and waits for the first handshake. Returns -1 (logged, everything
 * released) when the gateway cannot start or rejects the configuration. */
int gateway_start(int *range_reads, pid_t *pid);

/* Stops the gateway and the supervisor and releases everything. Nothing when not started. */
void gateway_stop(void);

/* Most worker threads (each with its own socket) a gateway may announce. */
#define GATEWAY_MAX_WORKERS 64

/* Waits, until the deadline, while the gateway is (re)starting. Returns 1 when it is ready, with
 * its generation (which changes whenever it starts or dies) and its number of worker sockets. */
int gateway_await_ready(int64_t deadline_ms, unsigned *generation, int *workers);

/* Waits, until the deadline, for the gateway of that generation to be gone (e.g. its socket
 * refused a connection because it is dying). Returns 1 when it is. */
int gateway_await_other_generation(unsigned generation, int64_t deadline_ms);

/* Whether the gateway of that generation is still the one running. */
int gateway_is_current(unsigned generation);

int64_t gateway_call_timeout_ms(void);

/* The first gateway's "ready" handshake line (JSON), once gateway_start has succeeded. */
const char *gateway_ready_handshake(void);

/* The worker threads (sockets) of the running gateway. */
int gateway_worker_count(void);

/* The socket of one worker of the gateway of that generation; -1 once that gateway is gone. */
int gateway_socket_address(unsigned generation, int worker, struct sockaddr_un *address);

#pragma GCC visibility pop

#endif
