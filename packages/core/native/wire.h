/*
 * The shim's side of the wire protocol (mirrored in src/gateway/protocol.ts): deadline-bounded
 * socket I/O, pooled connections to the gateway, and one storage call.
 */
#ifndef OOS_WIRE_H
#define OOS_WIRE_H

#include "shim.h"

#include <sys/uio.h>

#pragma GCC visibility push(hidden)

enum { OP_CREATE = 1, OP_READ_WHOLE = 2, OP_READ_RANGE = 3, OP_REMOVE = 4 };

typedef struct {
  int op;
  const char *uuid;
  OrthancPluginContentType type;
  uint64_t offset;
  uint64_t size;
  const void *body;                     /* create */
  OrthancPluginMemoryBuffer64 *target;  /* read whole (allocated here) or range (given) */
} call_request;

/* One storage call; each period without progress is bounded by the call timeout. Failures are
 * logged here. */
OrthancPluginErrorCode wire_call(const call_request *request);

/* Closes the pooled connections (the gateway they lead to is gone). */
void wire_pool_drain(void);

typedef enum { IO_OK = 0, IO_TIMEOUT = -1, IO_CLOSED = -2, IO_ERROR = -3 } io_result;

const char *io_describe(int result);

/* Sends every byte of the iovecs (modified in place) on a non-blocking descriptor, failing when
 * no byte can be sent for `idle_ms`. */
int send_all_iov(int fd, struct iovec *iov, int count, int64_t idle_ms);

void put_u32(unsigned char *p, uint32_t v);

#pragma GCC visibility pop

#endif
