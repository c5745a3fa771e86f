/* controller/listen.c: parse --listen, bind, listen, and report the port the
 * kernel gave (tests listen on port 0 and read it back). */
#include "controller/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"

#define LISTEN_BACKLOG 128

/* Split "HOST:PORT" or "[V6]:PORT" into host and port. */
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

static int listen_url(int fd, char url[LISTEN_URL_MAX]) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char addr[INET6_ADDRSTRLEN];
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return negative_errno();
        if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
                inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
                snprintf(url, LISTEN_URL_MAX, "http://[%s]:%u", addr, ntohs(s6->sin6_port));
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
                inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
                snprintf(url, LISTEN_URL_MAX, "http://%s:%u", addr, ntohs(s4->sin_port));
        }
        return 0;
}

int listen_open(const char *spec, int *ret_fd, char ret_url[LISTEN_URL_MAX]) {
        char host[256], port[8];
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        if (listen_split(spec, host, sizeof host, port, sizeof port) < 0 || atoi(port) > 65535)
                return -EINVAL;
        if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
                return -EADDRNOTAVAIL;
        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1, r = 0;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
                r = negative_errno();
        freeaddrinfo(ai);
        if (r == 0)
                r = listen_url(fd, ret_url);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
