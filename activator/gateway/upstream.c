/* activator/gateway/upstream.c: libcurl's multi interface on a worker's
 * libuv loop (see upstream.h). curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION: a uv_poll each) and when to call it back
 * (CURLMOPT_TIMERFUNCTION: one uv_timer); we tell curl what happened with
 * curl_multi_socket_action and collect the finished transfers. Each call
 * has its own uv_timer for the first-byte deadline (curl has none). */
#define _GNU_SOURCE
#include "activator/gateway/upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/list.h"
#include "lib/util.h"

typedef struct UpSock {
        uv_poll_t poll;
        curl_socket_t fd;
        UpClient *u;
        struct UpSock *prev, *next;
} UpSock;

struct UpCall {
        UpClient *u;
        CURL *easy;
        struct curl_slist *headers;
        UpHandlers h;
        void *ud;
        uv_timer_t deadline;                /* the first byte's, then the end's (up_call_linger) */
        long status;
        char retry_after[64];
        bool got_byte, headers_done, first_byte_expired;
        struct UpCall *prev, *next;
};

struct UpClient {
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t timer;
        UpSock *socks;
        UpCall *calls;
        bool freeing;
};

const char *up_error_str(UpError e) {
        static const char *const s[] = {
                [UP_OK] = "ok", [UP_CONNECT] = "cannot connect", [UP_TIMEOUT_CONNECT] = "connect timeout",
                [UP_TIMEOUT_FIRST_BYTE] = "no answer in time", [UP_TIMEOUT_TOTAL] = "the answer did not end in time",
                [UP_BROKEN] = "the connection broke", [UP_STOPPED] = "stopped", [UP_INTERNAL] = "internal error",
        };
        return (unsigned) e < ELEMENTSOF(s) ? s[e] : "?";
}

/* ---- calls ------------------------------------------------------------------------ */

static void timer_closed(uv_handle_t *h) {
        free(h->data);
}

/* Out of curl and the list; freed once its timer has closed. */
static void call_free(UpCall *c) {
        UpClient *u = c->u;
        LIST_REMOVE(u->calls, c);
        curl_multi_remove_handle(u->multi, c->easy);
        curl_easy_cleanup(c->easy);
        curl_slist_free_all(c->headers);
        c->deadline.data = c;
        uv_close((uv_handle_t *) &c->deadline, timer_closed);
}

static UpError error_of(UpCall *c, CURLcode rc) {
        switch (rc) {
        case CURLE_OK:
                return UP_OK;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
                return UP_CONNECT;
        case CURLE_OPERATION_TIMEDOUT:
                return !c->got_byte && !c->headers_done ? UP_TIMEOUT_CONNECT : UP_TIMEOUT_TOTAL;
        case CURLE_WRITE_ERROR:
                return UP_STOPPED;
        case CURLE_OUT_OF_MEMORY:
                return UP_INTERNAL;
        default:
                return UP_BROKEN;
        }
}

static void check_done(UpClient *u) {
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(u->multi, &left))) {
                if (m->msg != CURLMSG_DONE)
                        continue;
                UpCall *c = NULL;
                CURLcode rc = m->data.result;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &c);
                if (!c)
                        continue;
                UpError e = error_of(c, rc);
                if (e == UP_TIMEOUT_CONNECT) {
                        long connected = 0;
                        curl_easy_getinfo(c->easy, CURLINFO_CONNECT_TIME_T, &connected);
                        if (connected > 0)
                                e = UP_TIMEOUT_FIRST_BYTE;
                }
                char msg[CURL_ERROR_SIZE + 64];
                snprintf(msg, sizeof msg, "%s", e == UP_OK ? "ok" : curl_easy_strerror(rc));
                uv_timer_stop(&c->deadline);
                UpHandlers h = c->h;
                void *ud = c->ud;
                call_free(c);
                h.done(ud, e, msg);
        }
}

static void on_first_byte_timeout(uv_timer_t *t) {
        UpCall *c = t->data;
        UpHandlers h = c->h;
        void *ud = c->ud;
        call_free(c);
        h.done(ud, UP_TIMEOUT_FIRST_BYTE, "no answer in time");
}

static void on_linger_timeout(uv_timer_t *t) {
        UpCall *c = t->data;
        UpHandlers h = c->h;
        void *ud = c->ud;
        call_free(c);
        h.done(ud, UP_STOPPED, "the answer did not end after its last event");
}

/* The first byte came by now: its timer is free to time the end. */
void up_call_linger(UpCall *c, uint64_t ms) {
        if (c)
                uv_timer_start(&c->deadline, on_linger_timeout, ms, 0);
}

static void first_byte_seen(UpCall *c) {
        if (!c->got_byte) {
                c->got_byte = true;
                uv_timer_stop(&c->deadline);
        }
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
        UpCall *c = ud;
        size_t len = size * n;
        first_byte_seen(c);
        if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
                const char *sp = memchr(p, ' ', len);
                c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
                c->retry_after[0] = 0;
                c->headers_done = false;
        } else if (len >= 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
                size_t v = 12;
                while (v < len && (p[v] == ' ' || p[v] == '\t'))
                        v++;
                size_t e = len;
                while (e > v && (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' '))
                        e--;
                snprintf(c->retry_after, sizeof c->retry_after, "%.*s", (int) (e - v), p + v);
        } else if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n')) {
                if (c->status >= 200 && !c->headers_done) {
                        c->headers_done = true;
                        c->h.headers(c->ud, c->status, c->retry_after[0] ? c->retry_after : NULL);
                }
        }
        return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
        UpCall *c = ud;
        size_t len = size * n;
        first_byte_seen(c);
        if (!c->headers_done) {
                c->headers_done = true;
                c->h.headers(c->ud, c->status, NULL);
        }
        return c->h.data(c->ud, p, len) ? len : 0;
}

static int ms_opt(CURL *e, CURLoption o, uint64_t ms) {
        return curl_easy_setopt(e, o, (long) (ms > 0x7fffffff ? 0x7fffffff : ms)) == CURLE_OK ? 0 : -EINVAL;
}

static int call_setup(UpCall *c, const UpParams *p) {
        CURL *e = c->easy;
        for (size_t i = 0; p->headers && p->headers[i]; i++) {
                struct curl_slist *l = curl_slist_append(c->headers, p->headers[i]);
                if (!l)
                        return -ENOMEM;
                c->headers = l;
        }
        /* no 100-continue round trip */
        struct curl_slist *l = curl_slist_append(c->headers, "Expect:");
        if (!l)
                return -ENOMEM;
        c->headers = l;
        int bad = 0;
        bad |= curl_easy_setopt(e, CURLOPT_URL, p->url);
        bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
        bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, c);
        bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
        bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
        bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        if (p->body) {
                bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) p->body_len);
                bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, p->body);
        }
        if (bad)
                return -EINVAL;
        if (ms_opt(e, CURLOPT_CONNECTTIMEOUT_MS, p->connect_ms) < 0 || ms_opt(e, CURLOPT_TIMEOUT_MS, p->total_ms) < 0)
                return -EINVAL;
        return 0;
}

int up_call_start(UpClient *u, const UpParams *p, const UpHandlers *h, void *ud, UpCall **ret) {
        UpCall *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->u = u;
        c->h = *h;
        c->ud = ud;
        if (!(c->easy = curl_easy_init())) {
                free(c);
                return -ENOMEM;
        }
        int r = call_setup(c, p);
        if (r < 0) {
                curl_easy_cleanup(c->easy);
                curl_slist_free_all(c->headers);
                free(c);
                return r;
        }
        uv_timer_init(u->loop, &c->deadline);
        c->deadline.data = c;
        if (curl_multi_add_handle(u->multi, c->easy) != CURLM_OK) {
                curl_easy_cleanup(c->easy);
                curl_slist_free_all(c->headers);
                uv_close((uv_handle_t *) &c->deadline, timer_closed);
                return -EIO;
        }
        LIST_PREPEND(u->calls, c);
        if (p->first_byte_ms)
                uv_timer_start(&c->deadline, on_first_byte_timeout, p->first_byte_ms, 0);
        *ret = c;
        return 0;
}

void up_call_cancel(UpCall *c) {
        if (c) {
                uv_timer_stop(&c->deadline);
                call_free(c);
        }
}

/* ---- the loop's side ------------------------------------------------------------------- */

static void sock_closed(uv_handle_t *h) {
        free(h->data);
}

static void sock_drop(UpClient *u, UpSock *k) {
        LIST_REMOVE(u->socks, k);
        uv_poll_stop(&k->poll);
        uv_close((uv_handle_t *) &k->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
        UpSock *k = h->data;
        UpClient *u = k->u;
        int flags = status < 0 ? CURL_CSELECT_ERR : 0, running;
        if (events & UV_READABLE)
                flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
                flags |= CURL_CSELECT_OUT;
        curl_multi_socket_action(u->multi, k->fd, flags, &running);
        check_done(u);
}

static int on_socket(CURL *e _unused_, curl_socket_t s, int what, void *userp, void *socketp) {
        UpClient *u = userp;
        UpSock *k = socketp;
        if (what == CURL_POLL_REMOVE) {
                if (k) {
                        curl_multi_assign(u->multi, s, NULL);
                        sock_drop(u, k);
                }
                return 0;
        }
        if (!k) {
                if (!(k = calloc(1, sizeof *k)))
                        return -1;
                if (uv_poll_init_socket(u->loop, &k->poll, s) < 0) {
                        free(k);
                        return -1;
                }
                k->fd = s;
                k->u = u;
                k->poll.data = k;
                LIST_PREPEND(u->socks, k);
                curl_multi_assign(u->multi, s, k);
        }
        int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
        uv_poll_start(&k->poll, ev, on_poll);
        return 0;
}

static void on_timeout(uv_timer_t *t) {
        UpClient *u = t->data;
        int running;
        curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(u);
}

static int on_timer(CURLM *m _unused_, long ms, void *userp) {
        UpClient *u = userp;
        if (u->freeing)
                return 0;
        if (ms < 0)
                uv_timer_stop(&u->timer);
        else
                uv_timer_start(&u->timer, on_timeout, (uint64_t) ms, 0);
        return 0;
}

int up_client_new(uv_loop_t *loop, UpClient **ret) {
        UpClient *u = calloc(1, sizeof *u);
        if (!u)
                return -ENOMEM;
        u->loop = loop;
        if (!(u->multi = curl_multi_init())) {
                free(u);
                return -ENOMEM;
        }
        curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
        curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer);
        curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
        curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 256L);
        uv_timer_init(loop, &u->timer);
        u->timer.data = u;
        *ret = u;
        return 0;
}

static void client_closed(uv_handle_t *h) {
        free(h->data);
}

void up_client_free(UpClient *u) {
        if (!u)
                return;
        while (u->calls)
                up_call_cancel(u->calls);
        u->freeing = true;
        curl_multi_cleanup(u->multi);
        while (u->socks)
                sock_drop(u, u->socks);
        uv_timer_stop(&u->timer);
        uv_close((uv_handle_t *) &u->timer, client_closed);
}
