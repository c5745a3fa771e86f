/* runtime/node_notify.h: sd_notify without libsystemd (fnbox-runtime is a
 * static binary): one datagram to $NOTIFY_SOCKET, a path or an abstract
 * name (@...). Nothing happens when the variable is unset. */
#pragma once

/* "READY=1", "STOPPING=1", "STATUS=...": 1 sent, 0 no socket, or -errno. */
int node_notify(const char *state);
