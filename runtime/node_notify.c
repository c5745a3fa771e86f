/* runtime/node_notify.c: the sd_notify protocol, which is one datagram of
 * NEWLINE-separated assignments on a unix socket named by $NOTIFY_SOCKET. */
#define _GNU_SOURCE
#include "node_notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/util.h"

int node_notify(const char *state) {
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!path || !*path)
                return 0;
        size_t n = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path)
                return -EINVAL;
        memcpy(sa.sun_path, path, n);
        if (path[0] == '@')
                sa.sun_path[0] = 0; /* abstract */
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
        if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0)
                return negative_errno();
        return 1;
}
