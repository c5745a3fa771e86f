/* runtime/serve.c: `fnbox-runtime serve`, the runtime daemon. It listens on
 * a root-only unix socket, keeps a pool of prepared jails, and runs each
 * request of `fnbox-runtime run` in one: the code's fd that the client sent
 * is checked as in a one-shot run, the jail gets the request, and the result
 * goes back as soon as the box is done; the jail's teardown and its
 * replacement in the pool follow, off the request's critical path. SIGTERM
 * or SIGINT stops it cleanly: nothing is left behind. */
#define _GNU_SOURCE
#include "serve.h"

#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "broker.h"
#include "jail.h"
#include "lib/quantity.h"
#include "lib/list.h"
#include "lib/util.h"
#include "node.h"
#include "nodeconf.h"
#include "template.h"
#include "pool.h"
#include "proto.h"

#define CONN_MAX        256        /* connections at once */
#define REQUEST_TIME_MS 30000      /* to send a whole request */
#define GRACE_MS        5000       /* running boxes may finish after SIGTERM */
#define FDS_MAX         4          /* fds one recvmsg may carry (one is allowed) */

typedef struct Server Server;

typedef enum ConnState { CONN_READ, CONN_RUN, CONN_WRITE } ConnState;

typedef struct Conn {
        Server *s;
        struct Conn *prev, *next;
        int fd;
        uv_poll_t poll;
        uv_timer_t timer;          /* deadline to receive the request */
        unsigned open_handles;
        ConnState state;
        ProtoReader rd;
        ProtoRequest req;
        int code_fd;               /* from the client, with RUN */
        Jail *jail;
        JailResult result;
        ProtoReplyWriter w;        /* the reply, or ... */
        ProtoBuf error;            /* ... an ERROR frame */
        struct iovec iov[PROTO_REPLY_IOV];
        int iovcnt;
        bool closing;
} Conn;

struct Server {
        uv_loop_t loop;
        int listen_fd;
        uv_poll_t listen_poll;
        uv_signal_t sigs[2];
        uv_timer_t grace;
        Pool *pool;
        Node *node;                /* with --controller: the node agent */
        Conn *conns;
        unsigned n_conns;
        char socket_path[sizeof ((struct sockaddr_un *) 0)->sun_path];
        const char *cgroup_parent;
        uid_t uid;
        unsigned pool_size;
        bool stopping;
        unsigned long pooled, on_demand, refused;
};

/* ----- connections ----- */

static void conn_on_closed(uv_handle_t *h) {
        Conn *c = h->data;
        if (--c->open_handles > 0)
                return;
        safe_close(c->fd);
        safe_close(c->code_fd);
        proto_reader_clear(&c->rd);
        proto_request_clear(&c->req);
        proto_reply_writer_clear(&c->w);
        proto_buf_clear(&c->error);
        jail_result_clear(&c->result);
        free(c);
}

/* Drop the connection; a jail still running for it is killed. */
static void conn_close(Conn *c) {
        if (c->closing)
                return;
        c->closing = true;
        Server *s = c->s;
        if (c->jail)
                c->jail = jail_free(c->jail);
        LIST_REMOVE(s->conns, c);
        s->n_conns--;
        uv_close((uv_handle_t *) &c->poll, conn_on_closed);
        uv_close((uv_handle_t *) &c->timer, conn_on_closed);
        if (s->pool)
                pool_refill(s->pool); /* the reply is out: build replacements now */
}

static void conn_on_poll(uv_poll_t *h, int status, int events);

/* Write what is pending; move on to the next frame of the reply. */
static void conn_write(Conn *c) {
        for (;;) {
                if (c->iovcnt == 0) {
                        c->iovcnt = c->error.len ? 0 : proto_reply_next(&c->w, c->iov);
                        if (c->iovcnt <= 0) {
                                conn_close(c); /* all written (or nothing more to say) */
                                return;
                        }
                }
                ssize_t n = writev(c->fd, c->iov, c->iovcnt);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        conn_close(c); /* the client went away */
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
                        conn_close(c);
                        return;
                }
        }
}

static void conn_reply_start(Conn *c) {
        c->state = CONN_WRITE;
        uv_poll_start(&c->poll, UV_WRITABLE, conn_on_poll);
        conn_write(c);
}

/* Refuse the request with an exit status and one line, as `run` would. */
static void conn_refuse(Conn *c, int exit_status, const char *text) {
        c->s->refused++;
        proto_buf_clear(&c->error);
        if (proto_put_error(&c->error, exit_status, text) < 0) {
                conn_close(c);
                return;
        }
        c->iov[0] = (struct iovec) { c->error.data, c->error.len };
        c->iovcnt = 1;
        conn_reply_start(c);
}

static void conn_on_done(Jail *j, JailResult *r, void *userdata) {
        Conn *c = userdata;
        c->result = *r;
        memset(r, 0, sizeof *r); /* the buffers are ours now */
        c->jail = jail_free(j);  /* its teardown goes on without us */
        c->w = (ProtoReplyWriter) { .r = &c->result };
        conn_reply_start(c);
}

static void on_jail_event(Jail *j, JailEvent ev, int error, void *userdata) {
        (void) j;
        (void) userdata;
        if (ev == JAIL_EVENT_END && error < 0)
                fprintf(stderr, "fnbox-runtime serve: could not remove a jail's cgroup: %s\n", strerror(-error));
}

/* Start the request in a pooled jail, or in a new one when the pool is
 * empty (or the request asks for another cgroup parent). Either way the
 * config and the code's fd are checked first, as in a one-shot run; a
 * pooled jail whose request is refused goes back to the pool unused. */
static int conn_start_jail(Conn *c, const JailConfig *cfg, char *why, size_t len) {
        Server *s = c->s;
        bool same_parent = strcmp(cfg->cgroup_parent, s->cgroup_parent) == 0;
        Jail *j = s->pool && same_parent ? pool_take(s->pool) : NULL;
        int r;
        if (j) {
                if ((r = jail_start(j, cfg, conn_on_done, c, why, len)) < 0) {
                        pool_put(s->pool, j);
                        return r;
                }
                s->pooled++;
        } else {
                if ((r = jail_config_check(cfg, why, len)) < 0)
                        return r;
                if ((r = jail_spawn(&s->loop, cfg, conn_on_done, c, &j)) < 0) {
                        snprintf(why, len, "could not start the jail: %s", strerror(-r));
                        return r == -EINVAL ? -EIO : r;
                }
                s->on_demand++;
        }
        jail_set_events(j, on_jail_event, s);
        c->jail = j;
        return 0;
}

static void conn_run(Conn *c) {
        Server *s = c->s;
        JailConfig cfg = c->req.cfg;
        char why[256] = "";
        uv_timer_stop(&c->timer);
        if (c->code_fd < 0) {
                conn_refuse(c, 2, "the request carried no code");
                return;
        }
        cfg.code_fd = c->code_fd;
        cfg.host_uid = cfg.host_gid = c->req.uid ? c->req.uid : s->uid;
        cfg.cgroup_parent = c->req.cgroup_parent ? c->req.cgroup_parent : s->cgroup_parent;
        int r = conn_start_jail(c, &cfg, why, sizeof why);
        if (r < 0) {
                /* a refused config is a usage error, as in a one-shot run */
                conn_refuse(c, r == -EINVAL ? 2 : 125, why[0] ? why : strerror(-r));
                return;
        }
        c->state = CONN_RUN;
        /* watch for the client hanging up: then the jail is killed */
        uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, conn_on_poll);
}

/* Keep the first fd that arrives; any other is a protocol error. */
static int conn_take_fds(Conn *c, struct msghdr *mh) {
        int bad = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *fds = (int *) CMSG_DATA(cm);
                for (size_t i = 0; i < n; i++) {
                        if (c->code_fd < 0 && c->req.state == 0)
                                c->code_fd = fds[i];
                        else {
                                safe_close(fds[i]);
                                bad = -EBADMSG;
                        }
                }
        }
        return (mh->msg_flags & MSG_CTRUNC) ? -EBADMSG : bad;
}

enum { RECV_MORE, RECV_EOF, RECV_WAIT };

/* Receive what is there: RECV_MORE (bytes came, or a frame waits),
 * RECV_WAIT (nothing now), RECV_EOF, or negative on a bad request. */
static int conn_recv(Conn *c) {
        uint8_t *space;
        size_t len;
        int r = proto_reader_space(&c->rd, &space, &len);
        if (r == -EAGAIN)
                return RECV_MORE; /* a whole frame is waiting */
        if (r < 0)
                return r;
        char cbuf[CMSG_SPACE(FDS_MAX * sizeof(int))];
        struct iovec iov = { space, len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? RECV_WAIT : negative_errno();
        if ((r = conn_take_fds(c, &mh)) < 0)
                return r;
        if (n == 0)
                return RECV_EOF;
        proto_reader_advance(&c->rd, (size_t) n);
        return RECV_MORE;
}

/* Read and take frames until the request is complete (then run it), the
 * socket has nothing more for now, or a bounded number of rounds passed. */
static void conn_read(Conn *c) {
        for (int rounds = 0; rounds < 64; rounds++) {
                int got = conn_recv(c), r = got;
                ProtoFrame f;
                while (r >= 0 && (r = proto_reader_next(&c->rd, &f)) > 0)
                        if ((r = proto_request_feed(&c->req, &f)) == 1) {
                                conn_run(c);
                                return;
                        }
                if (r < 0 || got < 0) {
                        conn_refuse(c, 125, r == -EFBIG ? "stdin too large" : "malformed request");
                        return;
                }
                if (got == RECV_EOF) {
                        conn_close(c); /* the client gave up before GO */
                        return;
                }
                if (got == RECV_WAIT)
                        return;
        }
}

static void conn_on_poll(uv_poll_t *h, int status, int events) {
        Conn *c = h->data;
        if (c->closing)
                return;
        if (c->state == CONN_READ && status >= 0 && (events & UV_READABLE))
                conn_read(c);
        else if (c->state == CONN_WRITE && status >= 0)
                conn_write(c);
        else if (c->state == CONN_RUN)
                conn_close(c); /* the client hung up or sent more: kill its jail */
        else if (status < 0)
                conn_close(c);
}

static void conn_on_timeout(uv_timer_t *t) {
        Conn *c = t->data;
        if (c->state == CONN_READ)
                conn_close(c);
}

/* Only root may ask for jails: they are built with root's privileges. */
static bool peer_is_root(int fd) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0;
}

/* Take one pending connection; false when there is none. */
static bool server_accept(Server *s) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return errno == EINTR || errno == ECONNABORTED;
        if (!peer_is_root(fd) || s->n_conns >= CONN_MAX || s->stopping) {
                close(fd);
                return true;
        }
        Conn *c = calloc(1, sizeof *c);
        if (!c) {
                close(fd);
                return true;
        }
        *c = (Conn) { .s = s, .fd = fd, .code_fd = -1 };
        LIST_PREPEND(s->conns, c);
        s->n_conns++;
        uv_poll_init(&s->loop, &c->poll, fd);
        uv_timer_init(&s->loop, &c->timer);
        c->poll.data = c->timer.data = c;
        c->open_handles = 2;
        uv_poll_start(&c->poll, UV_READABLE, conn_on_poll);
        uv_timer_start(&c->timer, conn_on_timeout, REQUEST_TIME_MS, 0);
        conn_read(c); /* the request often came with the connection */
        return true;
}

static void on_listen(uv_poll_t *h, int status, int events) {
        Server *s = h->data;
        (void) events;
        for (int i = 0; status >= 0 && i < 16 && !s->stopping; i++)
                if (!server_accept(s))
                        break;
}

/* ----- the socket ----- */

/* The socket's folder: created 0700 if missing. */
static int socket_dir(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        const char *dir = dirname(copy);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

/* A socket file left by a daemon that died is removed; a live one is not. */
static int socket_clear_stale(const struct sockaddr_un *sa) {
        struct stat st;
        if (lstat(sa->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (const struct sockaddr *) sa, sizeof *sa) == 0)
                return -EADDRINUSE;
        return unlink(sa->sun_path) < 0 ? negative_errno() : 0;
}

static int server_listen(Server *s) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s->socket_path) >= (int) sizeof sa.sun_path)
                return -ENAMETOOLONG;
        int r = socket_dir(s->socket_path);
        if (r < 0 || (r = socket_clear_stale(&sa)) < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* 0600 from the start: no moment in which others could connect */
        mode_t old = umask(0177);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0 || chmod(sa.sun_path, 0600) < 0 || listen(fd, 128) < 0)
                return negative_errno();
        s->listen_fd = TAKE_FD(fd);
        uv_poll_init(&s->loop, &s->listen_poll, s->listen_fd);
        s->listen_poll.data = s;
        uv_poll_start(&s->listen_poll, UV_READABLE, on_listen);
        return 0;
}

/* ----- stopping ----- */

static void kill_running(Server *s) {
        for (Conn *c = s->conns; c; c = c->next)
                if (c->state == CONN_RUN && c->jail)
                        jail_kill(c->jail);
}

/* The grace period bounds every stop: the node's draining instances too
 * (their own drain may be longer: a service waits for its timeout). */
static void on_grace(uv_timer_t *t) {
        Server *s = t->data;
        fprintf(stderr, "fnbox-runtime serve: grace period over, killing the running boxes\n");
        kill_running(s);
        node_stop(s->node, true);
}

/* Stop listening, kill the jails that wait, let running boxes finish for a
 * while. The loop ends by itself once every jail and connection is gone:
 * the signal handlers and the grace timer do not keep it alive. */
static void server_stop(Server *s) {
        if (s->stopping) {
                kill_running(s); /* a second signal: no more waiting */
                node_stop(s->node, true);
                return;
        }
        s->stopping = true;
        node_stop(s->node, false); /* drains its instances, then reports them stopped */
        uv_close((uv_handle_t *) &s->listen_poll, NULL);
        s->listen_fd = safe_close(s->listen_fd);
        (void) unlink(s->socket_path);
        pool_free(s->pool);
        s->pool = NULL;
        for (Conn *c = s->conns, *next; c; c = next) {
                next = c->next;
                if (c->state == CONN_READ)
                        conn_close(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(s->sigs); i++)
                uv_unref((uv_handle_t *) &s->sigs[i]);
        uv_timer_start(&s->grace, on_grace, GRACE_MS, 0);
        uv_unref((uv_handle_t *) &s->grace);
}

static void on_signal(uv_signal_t *h, int signum) {
        (void) signum;
        server_stop(h->data);
}

static void on_settled(Pool *p, unsigned ready, void *userdata) {
        Server *s = userdata;
        (void) p;
        printf("fnbox-runtime serve: ready on %s (pool %u, %u prepared)\n", s->socket_path, s->pool_size, ready);
        fflush(stdout);
}

/* ----- options ----- */

typedef struct ServeOptions {
        const char *socket;
        uint64_t pool;
        uint64_t uid;
        const char *cgroup_parent;
        const char *node_config;
        NodeOptions node;
} ServeOptions;

typedef int (*serve_opt_fn)(ServeOptions *o, const char *arg);

static int opt_socket(ServeOptions *o, const char *a) {
        o->socket = a;
        return *a == '/' && strlen(a) < sizeof ((struct sockaddr_un *) 0)->sun_path ? 0 : -EINVAL;
}
static int opt_pool(ServeOptions *o, const char *a) {
        return quantity_parse_uint(a, &o->pool) < 0 || o->pool > POOL_MAX ? -EINVAL : 0;
}
static int opt_uid(ServeOptions *o, const char *a) {
        return quantity_parse_uint(a, &o->uid) < 0 || o->uid == 0 || o->uid >= 0xfffffffeULL ? -EINVAL : 0;
}
static int opt_cgroup(ServeOptions *o, const char *a) {
        o->cgroup_parent = a;
        return *a && *a != '/' && !strstr(a, "..") ? 0 : -EINVAL;
}

/* ----- the node agent's options (docs/runtime.md) ----- */

static bool str_clean(const char *a, size_t max) {
        size_t n = strlen(a);
        if (n == 0 || n > max)
                return false;
        for (const char *c = a; *c; c++)
                if ((unsigned char) *c <= 0x20 || *c == 0x7f)
                        return false;
        return true;
}
static int opt_controller(ServeOptions *o, const char *a) {
        o->node.controller = a;
        return strncmp(a, "http://", 7) == 0 && str_clean(a, 512) ? 0 : -EINVAL;
}
static int opt_token_file(ServeOptions *o, const char *a) {
        o->node.token_file = a;
        return str_clean(a, 4096) ? 0 : -EINVAL;
}
static int opt_node(ServeOptions *o, const char *a) {
        o->node.name = a;
        return str_clean(a, 63) ? 0 : -EINVAL;
}
static int opt_label(ServeOptions *o, const char *a) {
        const char *eq = strchr(a, '=');
        if (!eq || eq == a || o->node.n_labels >= NODE_LABELS_MAX || strlen(a) > 128)
                return -EINVAL;
        o->node.labels[o->node.n_labels++] = (char *) a;
        return 0;
}
static int opt_invoke_socket(ServeOptions *o, const char *a) {
        o->node.invoke_socket = a;
        return *a == '/' && strlen(a) < sizeof ((struct sockaddr_un *) 0)->sun_path ? 0 : -EINVAL;
}
static int opt_invoke_listen(ServeOptions *o, const char *a) {
        o->node.invoke_listen = a;
        const char *colon = strrchr(a, ':');
        uint64_t port;
        return colon && colon > a && quantity_parse_uint(colon + 1, &port) >= 0 && port <= 65535 ? 0 : -EINVAL;
}
static int opt_invoke_uid(ServeOptions *o, const char *a) {
        o->node.invoke_user = a;
        return str_clean(a, 64) && strcmp(a, "0") != 0 ? 0 : -EINVAL;
}
static int opt_invoke_secret(ServeOptions *o, const char *a) {
        o->node.invoke_secret_file = a;
        return str_clean(a, 4096) ? 0 : -EINVAL;
}
static int opt_state_dir(ServeOptions *o, const char *a) {
        o->node.state_dir = a;
        return *a == '/' && str_clean(a, 3000) ? 0 : -EINVAL;
}
static int opt_activator(ServeOptions *o, const char *a) {
        char host[256];
        unsigned port;
        o->node.activator = a;
        return broker_parse_activator(a, host, sizeof host, &port);
}
static int opt_uint(const char *a, uint64_t max, unsigned *ret) {
        uint64_t v;
        if (quantity_parse_uint(a, &v) < 0 || v < 1 || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}
static int opt_broker_depth(ServeOptions *o, const char *a) {
        return opt_uint(a, BROKER_DEPTH_MAX, &o->node.broker_depth);
}
static int opt_broker_rate(ServeOptions *o, const char *a) {
        return opt_uint(a, 1000000, &o->node.broker_rate);
}
static int opt_broker_burst(ServeOptions *o, const char *a) {
        return opt_uint(a, 1000000, &o->node.broker_burst);
}
static int opt_metrics(ServeOptions *o, const char *a) {
        o->node.metrics_listen = a;
        return opt_invoke_listen(&(ServeOptions) { 0 }, a);
}

static int opt_templates(ServeOptions *o, const char *a) {
        uint64_t v;
        if (quantity_parse_uint(a, &v) < 0 || v > TEMPLATES_MAX)
                return -EINVAL;
        o->node.templates = (unsigned) v;
        return 0;
}

static int opt_node_config(ServeOptions *o, const char *a) {
        o->node_config = a;
        return str_clean(a, 4096) ? 0 : -EINVAL;
}

static const struct {
        const char *name;
        serve_opt_fn fn;
        const char *expect;
} serve_specs[] = {
        { "socket", opt_socket, "an absolute path (at most 107 bytes)" },
        { "pool", opt_pool, "a number of prepared jails, 0 to 64" },
        { "uid", opt_uid, "an unprivileged host uid" },
        { "cgroup-parent", opt_cgroup, "a cgroup path relative to the hierarchy root" },
        { "controller", opt_controller, "the controller's URL, http://HOST:PORT" },
        { "token-file", opt_token_file, "a file holding the controller's token" },
        { "node", opt_node, "a node name" },
        { "label", opt_label, "KEY=VALUE (at most 32 labels)" },
        { "invoke-socket", opt_invoke_socket, "an absolute path (at most 107 bytes)" },
        { "invoke-listen", opt_invoke_listen, "HOST:PORT (an IPv4 address)" },
        { "invoke-uid", opt_invoke_uid, "a user name or uid other than 0" },
        { "invoke-secret-file", opt_invoke_secret, "a file holding the invoke secret" },
        { "state-dir", opt_state_dir, "an absolute path" },
        { "metrics-listen", opt_metrics, "HOST:PORT (an IPv4 address)" },
        { "activator", opt_activator, "the activator's URL for the broker, http://IP:PORT" },
        { "broker-max-depth", opt_broker_depth, "1 to 64 nested calls" },
        { "broker-rate", opt_broker_rate, "calls per second per instance, at least 1" },
        { "broker-burst", opt_broker_burst, "calls at once above the rate, at least 1" },
        { "zygote-templates", opt_templates, "0 to 8 python3 template zygotes" },
        { "node-config", opt_node_config, "a node config file (YAML, docs/runtime.md)" },
};

static void serve_usage(FILE *f) {
        fputs("usage: fnbox-runtime serve [--socket " SERVE_SOCKET_DEFAULT "] [--pool 4] [--uid 65534]\n"
              "                           [--cgroup-parent fnbox]\n"
              "       as a node agent, add:\n"
              "                           --controller URL --token-file FILE [--node NAME] [--label K=V]...\n"
              "                           [--invoke-socket " NODE_INVOKE_SOCKET_DEFAULT " | --invoke-listen HOST:PORT\n"
              "                            --invoke-secret-file FILE] [--invoke-uid fnbox]\n"
              "                           [--state-dir " NODE_STATE_DIR_DEFAULT "] [--metrics-listen HOST:PORT]\n"
              "                           [--zygote-templates 2] [--node-config FILE]\n"
              "       the broker (each box's way out), add:\n"
              "                           --activator http://IP:PORT --invoke-secret-file FILE\n"
              "                           [--broker-max-depth 8] [--broker-rate 20] [--broker-burst 40]\n", f);
}

static int serve_parse(ServeOptions *o, int argc, char **argv) {
        struct option longopts[ELEMENTSOF(serve_specs) + 2];
        for (size_t i = 0; i < ELEMENTSOF(serve_specs); i++)
                longopts[i] = (struct option) { serve_specs[i].name, 1, NULL, (int) i + 1000 };
        longopts[ELEMENTSOF(serve_specs)] = (struct option) { "help", 0, NULL, 'h' };
        longopts[ELEMENTSOF(serve_specs) + 1] = (struct option) { 0 };
        opterr = 0;
        int c;
        while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
                if (c == 'h') {
                        serve_usage(stdout);
                        exit(0);
                }
                if (c < 1000) {
                        fprintf(stderr, "fnbox-runtime serve: unknown or incomplete option '%s'\n", argv[optind - 1]);
                        return -EINVAL;
                }
                if (serve_specs[c - 1000].fn(o, optarg) < 0) {
                        fprintf(stderr, "fnbox-runtime serve: --%s %s: expected %s\n", serve_specs[c - 1000].name,
                                optarg, serve_specs[c - 1000].expect);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "fnbox-runtime serve: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        const NodeOptions *n = &o->node;
        if (!n->controller && (n->token_file || n->name || n->n_labels || n->invoke_socket || n->invoke_listen ||
                               n->invoke_user || n->invoke_secret_file || n->state_dir || n->metrics_listen ||
                               n->activator || n->broker_depth || n->broker_rate || n->broker_burst)) {
                fprintf(stderr, "fnbox-runtime serve: the node agent's options need --controller\n");
                return -EINVAL;
        }
        if (n->controller && !n->token_file) {
                fprintf(stderr, "fnbox-runtime serve: --controller needs --token-file\n");
                return -EINVAL;
        }
        if (n->invoke_socket && n->invoke_listen) {
                fprintf(stderr, "fnbox-runtime serve: --invoke-socket and --invoke-listen exclude each other\n");
                return -EINVAL;
        }
        if (n->invoke_listen && !n->invoke_secret_file) {
                fprintf(stderr, "fnbox-runtime serve: --invoke-listen needs --invoke-secret-file\n");
                return -EINVAL;
        }
        if (n->activator && !n->invoke_secret_file) {
                fprintf(stderr, "fnbox-runtime serve: --activator needs --invoke-secret-file (it signs broker calls)\n");
                return -EINVAL;
        }
        if (!n->activator && (n->broker_depth || n->broker_rate || n->broker_burst)) {
                fprintf(stderr, "fnbox-runtime serve: the --broker-* options need --activator\n");
                return -EINVAL;
        }
        return 0;
}

/* ----- main ----- */

/* Each jail holds about a dozen fds here (pipes, pidfd, control socket,
 * timer, cgroup files): a full pool and many connections need more than
 * the usual soft limit of 1024. Boxes get their own (RLIMIT_NOFILE is set
 * in every jail). */
static void raise_nofile(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        rlim_t want = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
        if (rl.rlim_cur < want) {
                rl.rlim_cur = want;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static int server_init(Server *s, const ServeOptions *o) {
        *s = (Server) { .listen_fd = -1, .cgroup_parent = o->cgroup_parent, .uid = (uid_t) o->uid,
                        .pool_size = (unsigned) o->pool };
        snprintf(s->socket_path, sizeof s->socket_path, "%s", o->socket);
        raise_nofile();
        int r = jail_stdio_fill(); /* before the loop's fds exist */
        if (r < 0 || (r = uv_loop_init(&s->loop)) < 0)
                return r;
        static const int signums[] = { SIGTERM, SIGINT };
        for (size_t i = 0; i < ELEMENTSOF(signums); i++) {
                uv_signal_init(&s->loop, &s->sigs[i]);
                s->sigs[i].data = s;
                uv_signal_start(&s->sigs[i], on_signal, signums[i]);
        }
        uv_timer_init(&s->loop, &s->grace);
        s->grace.data = s;
        return 0;
}

static void server_close(Server *s) {
        for (size_t i = 0; i < ELEMENTSOF(s->sigs); i++)
                uv_close((uv_handle_t *) &s->sigs[i], NULL);
        uv_close((uv_handle_t *) &s->grace, NULL);
        if (!s->stopping && s->listen_fd >= 0) {
                uv_close((uv_handle_t *) &s->listen_poll, NULL);
                safe_close(s->listen_fd);
        }
        if (!s->stopping)
                pool_free(s->pool);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
}

int serve_cmd_main(int argc, char **argv) {
        ServeOptions o = { .socket = SERVE_SOCKET_DEFAULT, .pool = 4, .uid = 65534, .cgroup_parent = "fnbox",
                           .node = { .templates = TEMPLATES_DEFAULT } };
        if (serve_parse(&o, argc, argv) < 0)
                return 2;
        if (geteuid() != 0) {
                fprintf(stderr, "fnbox-runtime serve: must run as root (it creates namespaces and cgroups)\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        /* before any jail: its driver folders are bound into every one */
        _cleanup_(nodeconf_clear) NodeConf conf = { 0 };
        char err[NODECONF_ERROR_MAX];
        if (o.node_config) {
                int k = nodeconf_load(o.node_config, &conf, err, sizeof err);
                if (k >= 0 && (k = jail_host_binds(conf.driver_paths, conf.n_driver_paths)) < 0)
                        snprintf(err, sizeof err, "%s: driverPaths: %s", o.node_config, strerror(-k));
                if (k < 0) {
                        fprintf(stderr, "fnbox-runtime serve: %s\n", err);
                        return 2;
                }
                o.node.conf = &conf;
        }
        Server s;
        int r = server_init(&s, &o);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime serve: %s\n", strerror(-r));
                return 1;
        }
        if ((r = server_listen(&s)) < 0) {
                fprintf(stderr, "fnbox-runtime serve: %s: %s\n", s.socket_path,
                        r == -EADDRINUSE ? "another daemon is listening there" :
                        r == -EEXIST ? "exists and is not a socket" : strerror(-r));
                server_close(&s);
                return 1;
        }
        (void) jail_sweep_stale(s.cgroup_parent); /* a killed daemon's jails */
        if ((r = pool_new(&s.loop, s.pool_size, s.cgroup_parent, on_settled, &s, &s.pool)) < 0) {
                fprintf(stderr, "fnbox-runtime serve: the pool: %s\n", strerror(-r));
                (void) unlink(s.socket_path);
                server_close(&s);
                return 1;
        }
        if (o.node.controller && node_new(&s.loop, &o.node, &s.pool, s.cgroup_parent, s.uid, &s.node) < 0) {
                (void) unlink(s.socket_path); /* node_new said why */
                server_close(&s);
                return 1;
        }
        uv_run(&s.loop, UV_RUN_DEFAULT);
        server_close(&s);
        fprintf(stderr, "fnbox-runtime serve: stopped; %lu requests in pooled jails, %lu in new ones, %lu refused\n",
                s.pooled, s.on_demand, s.refused);
        return 0;
}
