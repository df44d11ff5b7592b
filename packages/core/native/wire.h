/*
 * The shim's side of the wire protocol (mirrored in src/gateway/protocol.ts): deadline-bounded
 * socket I/O, pooled connections to the gateway, and one storage call.
 */
#ifndef OOS_WIRE_H
#define OOS_WIRE_H

#include "shim.h"

#include <sys/uio.h>

#pragma GCC visibility push(hidden)

enum { OP_CREATE = 1, OP_READ_WHOLE = 2, OP_READ_RANGE = 3, OP_REMOVE = 4, OP_INVOKE = 5, OP_ORTHANC_ANSWER = 6 };

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

/* What a forwarded call (wire_invoke) answers, or what the shim answers to a request of the
 * gateway: JSON metadata and a body, both allocated with malloc. */
typedef struct {
  char *meta;
  void *body;
  uint64_t body_size;
} wire_message;

void wire_message_free(wire_message *message);

/* Carries out a request the gateway makes to Orthanc in the middle of a forwarded call and fills
 * `answer` (meta must be set; it may be an error description). */
typedef void (*wire_orthanc_handler)(const wire_message *request, wire_message *answer);

/* A forwarded call (REST route, job callback): sends `name`, `meta` and `body`, serves the
 * gateway's requests to Orthanc through `handler` until the final answer, which fills `answer`.
 * Returns 0, or -1 with `failure` filled (the gateway's error message or a transport error). */
int wire_invoke(const char *name, const char *meta, const void *body, uint64_t body_size,
                wire_orthanc_handler handler, wire_message *answer, char *failure, size_t failure_size);

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
