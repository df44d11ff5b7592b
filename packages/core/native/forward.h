/*
 * REST routes and jobs that the gateway serves: the shim registers what the gateway's handshake
 * announces ("restRoutes", "jobTypes") and forwards every callback over the wire (wire_invoke),
 * carrying out the requests the gateway makes to Orthanc meanwhile. No business logic here.
 */
#ifndef OOS_FORWARD_H
#define OOS_FORWARD_H

#include "shim.h"

#pragma GCC visibility push(hidden)

/* Registers the routes and the jobs unserializer the handshake announces. Returns -1 (logged) when
 * the handshake lists something unusable. */
int forward_register(const char *handshake);

#pragma GCC visibility pop

#endif
