/* tests/dataplane/functions/echo-native/main.c: a small, fast service-mode
 * box for the benchmarks: HTTP/1.1 with keep-alive on the unix socket named
 * by FNBOX_SOCKET, one thread, epoll. GET /healthz answers "ok"; any other
 * request is answered with its body (Content-Length bodies only, at most
 * 64 KiB with the headers). Fast enough that the proxy in front of it,
 * not the backend, sets the pace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF_MAX (64 * 1024)

typedef struct Conn {
        int fd;
        size_t len;
        char buf[BUF_MAX];
} Conn;

static long header_len(const char *b, size_t n) {
        const char *e = memmem(b, n, "\r\n\r\n", 4);
        return e ? (long) (e - b) + 4 : -1;
}

static long content_length(const char *b, size_t hlen) {
        for (const char *p = b; p && p < b + hlen; p = memmem(p, hlen - (size_t) (p - b), "\r\n", 2)) {
                p += (p == b) ? 0 : 2;
                if (strncasecmp(p, "content-length:", 15) == 0)
                        return strtol(p + 15, NULL, 10);
        }
        return 0;
}

/* Answer every complete request in c's buffer; -1 to close. */
static int serve(Conn *c) {
        for (;;) {
                long h = header_len(c->buf, c->len);
                if (h < 0)
                        return c->len >= BUF_MAX ? -1 : 0;
                long cl = content_length(c->buf, (size_t) h);
                if (cl < 0 || h + cl > BUF_MAX)
                        return -1;
                if ((size_t) (h + cl) > c->len)
                        return 0;
                char head[160];
                const char *body = c->buf + h;
                size_t blen = (size_t) cl;
                if (strncmp(c->buf, "GET /healthz", 12) == 0)
                        body = "ok", blen = 2;
                int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 "Content-Length: %zu\r\n\r\n", blen);
                struct iovec iov[2] = { { head, (size_t) n }, { (void *) body, blen } };
                struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
                if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) != (ssize_t) (n + blen))
                        return -1;
                memmove(c->buf, c->buf + h + cl, c->len - (size_t) (h + cl));
                c->len -= (size_t) (h + cl);
        }
}

int main(void) {
        const char *path = getenv("FNBOX_SOCKET");
        if (!path)
                path = "/run/fnbox/http.sock";
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return fprintf(stderr, "echo-native: socket path too long\n"), 1;
        strcpy(sa.sun_path, path);
        unlink(path);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 1024) < 0)
                return fprintf(stderr, "echo-native: %s: %s\n", path, strerror(errno)), 1;
        chmod(path, 0666);
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
        fprintf(stderr, "echo-native: serving on %s\n", path);
        for (;;) {
                struct epoll_event evs[64];
                int n = epoll_wait(ep, evs, 64, -1);
                for (int i = 0; i < n; i++) {
                        Conn *c = evs[i].data.ptr;
                        if (!c) {
                                int fd;
                                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                                        Conn *nc = calloc(1, sizeof *nc);
                                        if (!nc) {
                                                close(fd);
                                                continue;
                                        }
                                        nc->fd = fd;
                                        struct epoll_event e = { .events = EPOLLIN, .data.ptr = nc };
                                        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                                }
                                continue;
                        }
                        ssize_t r = read(c->fd, c->buf + c->len, BUF_MAX - c->len);
                        if (r > 0)
                                c->len += (size_t) r;
                        if (r == 0 || (r < 0 && errno != EAGAIN) || (r > 0 && serve(c) < 0)) {
                                close(c->fd);
                                free(c);
                        }
                }
        }
}
