/* runtime/invoke.c: the invoke socket (invoke.h). One libuv poll per
 * connection and a small state machine: HELLO, then requests one after
 * another. A request that cannot run gets ERROR 1-4 and the connection
 * stays; a protocol error (no HELLO, a bad frame, a frame out of order)
 * gets ERROR 5 (PROTO_INVOKE_PROTOCOL) and the connection is closed. */
#define _GNU_SOURCE
#include "invoke.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "lib/list.h"
#include "lib/util.h"
#include "proto.h"

typedef enum ConnState { IC_READ, IC_RUN, IC_WRITE } ConnState;

typedef struct Conn {
        InvokeServer *s;
        struct Conn *prev, *next;
        int fd;
        bool tcp, hello, closing, close_after, in_request;
        uv_poll_t poll;
        uv_timer_t timer;
        unsigned open_handles;
        ConnState state;
        ProtoReader rd;
        ProtoInvokeRequest req;
        InstanceCall *call;
        JailResult result;
        ProtoReplyWriter w;
        ProtoBuf error;
        struct iovec iov[PROTO_REPLY_IOV];
        int iovcnt;
} Conn;

typedef struct Listener {
        int fd;
        bool tcp;
        uv_poll_t poll;
        InvokeServer *s;
} Listener;

struct InvokeServer {
        uv_loop_t *loop;
        InvokeConfig c;
        char *unix_path, *secret;
        Listener l[2];
        unsigned n_listeners;
        Conn *conns;
        unsigned n_conns, listeners_open;
        bool shut, freed;
};

static void conn_on_poll(uv_poll_t *h, int status, int events);
static void conn_read(Conn *c);

static void conn_on_closed(uv_handle_t *h) {
        Conn *c = h->data;
        if (--c->open_handles > 0)
                return;
        safe_close(c->fd);
        proto_reader_clear(&c->rd);
        proto_invoke_request_clear(&c->req);
        proto_reply_writer_clear(&c->w);
        proto_buf_clear(&c->error);
        jail_result_clear(&c->result);
        free(c);
}

static void conn_close(Conn *c) {
        if (c->closing)
                return;
        c->closing = true;
        if (c->call)
                instance_call_cancel(TAKE_PTR(c->call));
        LIST_REMOVE(c->s->conns, c);
        c->s->n_conns--;
        uv_close((uv_handle_t *) &c->poll, conn_on_closed);
        uv_close((uv_handle_t *) &c->timer, conn_on_closed);
}

static void on_timeout(uv_timer_t *t) {
        Conn *c = t->data;
        if (c->state == IC_READ)
                conn_close(c);
}

/* Back to reading: the next request (frames may be buffered already). */
static void conn_next(Conn *c) {
        c->state = IC_READ;
        c->in_request = false;
        c->iovcnt = 0;
        proto_invoke_request_clear(&c->req);
        proto_reply_writer_clear(&c->w);
        proto_buf_clear(&c->error);
        jail_result_clear(&c->result);
        if (c->s->shut) {
                conn_close(c);
                return;
        }
        uv_timer_start(&c->timer, on_timeout, INVOKE_IDLE_MS, 0);
        uv_poll_start(&c->poll, UV_READABLE, conn_on_poll);
        conn_read(c);
}

static void conn_write(Conn *c) {
        for (;;) {
                if (c->iovcnt == 0) {
                        c->iovcnt = c->error.len ? 0 : proto_reply_next(&c->w, c->iov);
                        if (c->iovcnt <= 0) {
                                if (c->close_after || c->iovcnt < 0)
                                        conn_close(c);
                                else
                                        conn_next(c);
                                return;
                        }
                }
                ssize_t n = writev(c->fd, c->iov, c->iovcnt);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        conn_close(c);
                        return;
                }
                for (int i = 0; i < c->iovcnt; i++) {
                        size_t take = (size_t) n < c->iov[i].iov_len ? (size_t) n : c->iov[i].iov_len;
                        c->iov[i].iov_base = (char *) c->iov[i].iov_base + take;
                        c->iov[i].iov_len -= take;
                        n -= (ssize_t) take;
                }
                if (c->iov[c->iovcnt - 1].iov_len == 0)
                        c->iovcnt = 0;
                if (c->iovcnt == 0 && c->error.len) {
                        if (c->close_after)
                                conn_close(c);
                        else
                                conn_next(c);
                        return;
                }
        }
}

static void conn_reply_start(Conn *c) {
        c->state = IC_WRITE;
        uv_timer_stop(&c->timer);
        uv_poll_start(&c->poll, UV_WRITABLE, conn_on_poll);
        conn_write(c);
}

static void conn_error(Conn *c, int code, const char *text, bool close_after) {
        proto_buf_clear(&c->error);
        c->close_after = close_after;
        if (proto_put_error(&c->error, code, text) < 0) {
                conn_close(c);
                return;
        }
        c->iov[0] = (struct iovec) { c->error.data, c->error.len };
        c->iovcnt = 1;
        conn_reply_start(c);
}

/* Keep only the last PROTO_STDERR_TAIL bytes of o (marked truncated when
 * bytes went). */
static void output_tail(JailOutput *o) {
        if (o->len <= PROTO_STDERR_TAIL)
                return;
        memmove(o->data, o->data + o->len - PROTO_STDERR_TAIL, PROTO_STDERR_TAIL);
        o->len = PROTO_STDERR_TAIL;
        o->truncated = true;
}

static void on_reply(JailResult *r, void *userdata) {
        Conn *c = userdata;
        c->call = NULL;
        c->result = *r;
        memset(r, 0, sizeof *r); /* the buffers are ours now */
        /* stderr went to the node's logs (instance.c); the client gets its
         * tail only when it asked (INVOKE "stderr": true) */
        if (c->req.inv.stderr_tail)
                output_tail(&c->result.err);
        c->w = (ProtoReplyWriter) { .r = &c->result, .no_stderr = !c->req.inv.stderr_tail };
        conn_reply_start(c);
}

static void conn_run(Conn *c) {
        InvokeServer *s = c->s;
        char why[300] = "";
        Instance *i = s->c.find(c->req.inv.instance, s->c.userdata);
        uv_timer_stop(&c->timer);
        if (!i) {
                if (s->c.refused)
                        s->c.refused(NULL, PROTO_INVOKE_NO_INSTANCE, s->c.userdata);
                snprintf(why, sizeof why, "no instance %s on this node", c->req.inv.instance);
                conn_error(c, PROTO_INVOKE_NO_INSTANCE, why, false);
                return;
        }
        int code = instance_invoke(i, &c->req.inv, c->req.stdin_data, c->req.stdin_len, on_reply, c, &c->call, why,
                                   sizeof why);
        if (code > 0) {
                if (s->c.refused)
                        s->c.refused(i, code, s->c.userdata);
                conn_error(c, code, why, false);
                return;
        }
        c->state = IC_RUN;
        /* watch for the client hanging up: then the request is killed */
        uv_poll_start(&c->poll, UV_DISCONNECT, conn_on_poll);
}

/* Constant-time: the secret must not leak through timing. */
static bool secret_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned char d = (unsigned char) (la != lb);
        for (size_t i = 0; i < PROTO_SECRET_MAX; i++)
                d |= (unsigned char) ((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
        return d == 0;
}

/* One frame: HELLO first, then the request's. 1 when a request is complete. */
static int conn_frame(Conn *c, const ProtoFrame *f, const char **why) {
        if (!c->hello) {
                ProtoHello h;
                if (f->type != PROTO_HELLO || proto_hello_decode(f->payload, f->len, &h) < 0)
                        return *why = "expected HELLO {\"version\": 1}", -EBADMSG;
                if (c->tcp && (!c->s->secret || !secret_equal(h.secret, c->s->secret)))
                        return *why = "HELLO: wrong secret", -EPERM;
                c->hello = true;
                return 0;
        }
        if (!c->in_request) {
                c->in_request = true;
                uv_timer_start(&c->timer, on_timeout, INVOKE_REQUEST_MS, 0);
        }
        int r = proto_invoke_feed(&c->req, f);
        if (r == -EFBIG)
                *why = "request body too large";
        else if (r < 0)
                *why = "malformed or out-of-order frame";
        return r;
}

static void conn_read(Conn *c) {
        for (int rounds = 0; rounds < 64 && c->state == IC_READ && !c->closing; rounds++) {
                uint8_t *space;
                size_t len;
                ProtoFrame f;
                const char *why = NULL;
                int r;
                while ((r = proto_reader_next(&c->rd, &f)) > 0)
                        if ((r = conn_frame(c, &f, &why)) != 0)
                                break;
                if (r == 1) {
                        conn_run(c);
                        return;
                }
                if (r < 0) {
                        conn_error(c, PROTO_INVOKE_PROTOCOL, why ? why : "malformed frame", true);
                        return;
                }
                if ((r = proto_reader_space(&c->rd, &space, &len)) < 0 && r != -EAGAIN) {
                        conn_error(c, PROTO_INVOKE_PROTOCOL, "malformed frame", true);
                        return;
                }
                if (r == -EAGAIN)
                        continue;
                ssize_t n = recv(c->fd, space, len, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n <= 0) {
                        conn_close(c); /* the client is gone */
                        return;
                }
                proto_reader_advance(&c->rd, (size_t) n);
        }
}

static void conn_on_poll(uv_poll_t *h, int status, int events) {
        Conn *c = h->data;
        if (c->closing)
                return;
        if (status < 0 || c->state == IC_RUN)
                conn_close(c); /* an error, or the client hung up mid-request */
        else if (c->state == IC_READ && (events & (UV_READABLE | UV_DISCONNECT)))
                conn_read(c);
        else if (c->state == IC_WRITE)
                conn_write(c);
}

/* ----- accepting ----- */

static bool peer_allowed(InvokeServer *s, int fd) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        return cred.uid == 0 || cred.uid == s->c.allowed_uid;
}

static bool server_accept(Listener *l) {
        InvokeServer *s = l->s;
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return errno == EINTR || errno == ECONNABORTED;
        Conn *c = NULL;
        if (s->shut || s->n_conns >= INVOKE_CONN_MAX || (!l->tcp && !peer_allowed(s, fd)) ||
            !(c = calloc(1, sizeof *c))) {
                close(fd);
                return true;
        }
        *c = (Conn) { .s = s, .fd = fd, .tcp = l->tcp };
        LIST_PREPEND(s->conns, c);
        s->n_conns++;
        uv_poll_init(s->loop, &c->poll, fd);
        uv_timer_init(s->loop, &c->timer);
        c->poll.data = c->timer.data = c;
        c->open_handles = 2;
        uv_poll_start(&c->poll, UV_READABLE, conn_on_poll);
        uv_timer_start(&c->timer, on_timeout, INVOKE_HELLO_MS, 0);
        conn_read(c);
        return true;
}

static void on_listen(uv_poll_t *h, int status, int events) {
        Listener *l = h->data;
        (void) events;
        for (int i = 0; status >= 0 && i < 32 && !l->s->shut; i++)
                if (!server_accept(l))
                        break;
}

static int listener_add(InvokeServer *s, int fd, bool tcp) {
        Listener *l = &s->l[s->n_listeners++];
        *l = (Listener) { .fd = fd, .tcp = tcp, .s = s };
        uv_poll_init(s->loop, &l->poll, fd);
        l->poll.data = l;
        s->listeners_open++;
        return uv_poll_start(&l->poll, UV_READABLE, on_listen);
}

/* The socket's folder: 0711 (others may pass through to the socket, never
 * list or write); created if missing, tightened if root owns it. */
static int socket_dir(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        struct stat st;
        if (!copy)
                return -ENOMEM;
        const char *dir = dirname(copy);
        if (mkdir(dir, 0711) < 0 && errno != EEXIST)
                return negative_errno();
        if (lstat(dir, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0)
                return -EPERM;
        return (st.st_mode & 07777) == 0711 || chmod(dir, 0711) == 0 ? 0 : negative_errno();
}

static int listen_unix(InvokeServer *s, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path) >= (int) sizeof sa.sun_path)
                return -ENAMETOOLONG;
        int r = socket_dir(path);
        if (r < 0)
                return r;
        if (lstat(path, &st) == 0) {
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return -EADDRINUSE;
                if (unlink(path) < 0)
                        return negative_errno();
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* 0600 while it is made, then root:GROUP 0660 */
        mode_t old = umask(0177);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0 || chown(path, 0, s->c.socket_gid) < 0 || chmod(path, 0660) < 0 || listen(fd, 512) < 0)
                return negative_errno();
        if (!(s->unix_path = strdup(path)))
                return -ENOMEM;
        return listener_add(s, TAKE_FD(fd), false);
}

static int listen_tcp(InvokeServer *s, const char *hostport, char *addr, size_t len) {
        char host[256];
        const char *colon = strrchr(hostport, ':');
        if (!colon || colon == hostport || (size_t) (colon - hostport) >= sizeof host)
                return -EINVAL;
        memcpy(host, hostport, (size_t) (colon - hostport));
        host[colon - hostport] = 0;
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(colon + 1)) };
        if (inet_pton(AF_INET, host, &in.sin_addr) != 1)
                return -EINVAL;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        socklen_t sl = sizeof in;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int) { 1 }, sizeof(int)) < 0 ||
            bind(fd, (struct sockaddr *) &in, sizeof in) < 0 || listen(fd, 512) < 0 ||
            getsockname(fd, (struct sockaddr *) &in, &sl) < 0)
                return negative_errno();
        snprintf(addr, len, "tcp:%s:%u", host, (unsigned) ntohs(in.sin_port));
        return listener_add(s, TAKE_FD(fd), true);
}

int invoke_server_new(uv_loop_t *loop, const InvokeConfig *c, InvokeServer **ret, char *ret_addr, size_t addr_len) {
        InvokeServer *s = calloc(1, sizeof *s);
        int r = 0;
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->c = *c;
        if (c->secret && !(s->secret = strdup(c->secret)))
                r = -ENOMEM;
        if (r >= 0 && c->unix_path && (r = listen_unix(s, c->unix_path)) >= 0)
                snprintf(ret_addr, addr_len, "unix:%s", c->unix_path);
        if (r >= 0 && c->tcp_listen)
                r = listen_tcp(s, c->tcp_listen, ret_addr, addr_len);
        if (r < 0) {
                invoke_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static void server_maybe_release(InvokeServer *s) {
        if (!s->freed || s->listeners_open > 0)
                return;
        free(s->unix_path);
        free(s->secret);
        free(s);
}

static void on_listener_closed(uv_handle_t *h) {
        Listener *l = h->data;
        InvokeServer *s = l->s;
        l->fd = safe_close(l->fd);
        s->listeners_open--;
        server_maybe_release(s);
}

void invoke_server_shutdown(InvokeServer *s) {
        if (!s || s->shut)
                return;
        s->shut = true;
        for (unsigned i = 0; i < s->n_listeners; i++)
                uv_close((uv_handle_t *) &s->l[i].poll, on_listener_closed);
        if (s->unix_path)
                (void) unlink(s->unix_path);
        for (Conn *c = s->conns, *next; c; c = next) {
                next = c->next;
                if (c->state == IC_READ)
                        conn_close(c);
        }
}

/* The listeners' handles close on the loop: the server is released once
 * they have. */
void invoke_server_free(InvokeServer *s) {
        if (!s)
                return;
        invoke_server_shutdown(s);
        while (s->conns)
                conn_close(s->conns);
        s->freed = true;
        server_maybe_release(s);
}
