/* runtime/run_client.h: `fnbox-runtime run` through the runtime daemon. */
#pragma once

#include "jail.h"
#include "proto.h"

/* Connect to the daemon's socket and check that root listens there.
 * -ENOENT or -ECONNREFUSED: no daemon (the caller may run the jail itself). */
int run_client_connect(const char *path, int *ret_fd);
/* Send the request (c->code_fd travels with it) and wait for the reply. uid
 * 0 and a NULL cgroup parent leave the daemon's defaults. */
int run_client_call(int fd, const JailConfig *c, uid_t uid, const char *cgroup_parent, ProtoReply *ret);
