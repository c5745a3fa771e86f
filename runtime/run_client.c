/* runtime/run_client.c: the client half of `fnbox-runtime run` when a runtime
 * daemon is there: the request, the code's O_PATH fd (SCM_RIGHTS) and stdin
 * go over the daemon's unix socket; the result comes back as frames that
 * are checked as they arrive (proto.c). Plain blocking I/O: the process does
 * nothing else meanwhile. */
#define _GNU_SOURCE
#include "run_client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include "lib/util.h"

int run_client_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path) >= (int) sizeof sa.sun_path)
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return negative_errno();
        /* the code's fd goes to whoever listens: it must be root */
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0)
                return -EPERM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int send_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return negative_errno();
                p = (const char *) p + w;
                n -= (size_t) w;
        }
        return 0;
}

/* The RUN frame (and what follows it in b), with the code's fd attached
 * to its first bytes. */
static int send_run(int fd, const ProtoBuf *b, int code_fd) {
        char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
        struct iovec iov = { b->data, b->len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &code_fd, sizeof(int));
        ssize_t n;
        do
                n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        return send_all(fd, b->data + n, b->len - (size_t) n);
}

static int send_frame(int fd, uint32_t type, const void *p, size_t len) {
        uint32_t h[2] = { type, (uint32_t) len };
        int r = send_all(fd, h, sizeof h);
        return r < 0 ? r : send_all(fd, p, len);
}

#define SMALL_STDIN (64U << 10)

/* RUN, then stdin in pieces, then GO. A small request goes in one
 * sendmsg, so that the daemon wakes up once for it. */
static int send_request(int fd, const JailConfig *c, uid_t uid, const char *cgroup_parent) {
        ProtoBuf b = { 0 };
        bool small = c->stdin_len <= SMALL_STDIN;
        int r = proto_put_run(&b, c, uid, cgroup_parent);
        if (r >= 0 && small && c->stdin_len > 0)
                r = proto_put_frame(&b, PROTO_STDIN, c->stdin_data, c->stdin_len);
        if (r >= 0 && small)
                r = proto_put_frame(&b, PROTO_GO, NULL, 0);
        if (r >= 0)
                r = send_run(fd, &b, c->code_fd);
        proto_buf_clear(&b);
        if (small || r < 0)
                return r;
        for (size_t off = 0; r >= 0 && off < c->stdin_len; off += PROTO_CHUNK_MAX) {
                size_t n = c->stdin_len - off < PROTO_CHUNK_MAX ? c->stdin_len - off : PROTO_CHUNK_MAX;
                r = send_frame(fd, PROTO_STDIN, (const char *) c->stdin_data + off, n);
        }
        return r < 0 ? r : send_frame(fd, PROTO_GO, NULL, 0);
}

static int recv_reply(int fd, ProtoReply *ret) {
        ProtoReader rd = { 0 };
        int r = 0;
        while (r == 0) {
                ProtoFrame f;
                while ((r = proto_reader_next(&rd, &f)) > 0)
                        if ((r = proto_reply_feed(ret, &f)) != 0)
                                break;
                if (r != 0)
                        break;
                uint8_t *space;
                size_t len;
                if ((r = proto_reader_space(&rd, &space, &len)) < 0)
                        break;
                ssize_t n = recv(fd, space, len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        r = n == 0 ? -ECONNRESET : negative_errno();
                else
                        proto_reader_advance(&rd, (size_t) n);
        }
        proto_reader_clear(&rd);
        return r < 0 ? r : 0;
}

int run_client_call(int fd, const JailConfig *c, uid_t uid, const char *cgroup_parent, ProtoReply *ret) {
        proto_reply_init(ret);
        int r = send_request(fd, c, uid, cgroup_parent);
        /* the daemon may have refused early and closed: its answer still counts */
        int rr = recv_reply(fd, ret);
        if (rr < 0)
                proto_reply_clear(ret);
        return rr < 0 ? (r < 0 ? r : rr) : 0;
}
