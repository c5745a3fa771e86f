/* lib/listen.c: the daemons' listening sockets (see listen.h). */
#include "lib/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"

#define LISTEN_BACKLOG 4096

static int listen_split(const char *spec, char *host, size_t hsize, char *port, size_t psize) {
        const char *colon = strrchr(spec, ':');
        if (!colon || !colon[1] || strlen(colon + 1) >= psize || strspn(colon + 1, "0123456789") != strlen(colon + 1))
                return -EINVAL;
        const char *h = spec;
        size_t hl = (size_t) (colon - spec);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
                h++, hl -= 2;
        if (hl == 0 || hl >= hsize)
                return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = 0;
        strcpy(port, colon + 1);
        return 0;
}

static int bind_one(const struct sockaddr *sa, socklen_t len, bool reuseport, int *ret_fd) {
        _cleanup_close_ int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) || bind(fd, sa, len) < 0 ||
            listen(fd, LISTEN_BACKLOG) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void listen_url(const struct sockaddr_storage *ss, char url[LISTEN_URL_MAX]) {
        char addr[INET6_ADDRSTRLEN];
        if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) ss;
                inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
                snprintf(url, LISTEN_URL_MAX, "http://[%s]:%u", addr, ntohs(s6->sin6_port));
        } else {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *) ss;
                inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
                snprintf(url, LISTEN_URL_MAX, "http://%s:%u", addr, ntohs(s4->sin_port));
        }
}

int listen_open_n(const char *spec, unsigned n, int *ret_fds, char ret_url[LISTEN_URL_MAX]) {
        char host[256], port[8];
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        if (n == 0 || listen_split(spec, host, sizeof host, port, sizeof port) < 0 || atoi(port) > 65535)
                return -EINVAL;
        if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
                return -EADDRNOTAVAIL;
        struct sockaddr_storage ss;
        socklen_t len = (socklen_t) ai->ai_addrlen;
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        int r = 0;
        unsigned opened = 0;
        while (opened < n) {
                r = bind_one((struct sockaddr *) &ss, len, n > 1, &ret_fds[opened]);
                if (r < 0)
                        break;
                opened++;
                /* port 0: the first socket's port for the rest */
                if (opened == 1 && getsockname(ret_fds[0], (struct sockaddr *) &ss, &len) < 0) {
                        r = negative_errno();
                        break;
                }
        }
        if (r < 0) {
                for (unsigned k = 0; k < opened; k++)
                        ret_fds[k] = safe_close(ret_fds[k]);
                return r;
        }
        listen_url(&ss, ret_url);
        return 0;
}
