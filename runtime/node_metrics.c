/* runtime/node_metrics.c: counters and histograms kept on the loop, and a
 * minimal HTTP/1.1 server for them: one request per connection, a bounded
 * head (8 KiB, 5 s), GET /metrics answered with the text format, anything
 * else 404, 405 or 400. */
#define _GNU_SOURCE
#include "node_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define HEAD_MAX 8192
#define CONN_MS 5000
#define CONNS_MAX 64

static const double buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

static const char *const outcomes[] = {
        "exited", "signaled", "timeout", "out_of_memory", "output_limit", "killed", "setup_error", "cancelled",
        "no_instance", "not_ready", "busy", "failed",
};
#define N_OUTCOMES (sizeof outcomes / sizeof outcomes[0])

typedef struct Histogram {
        uint64_t counts[N_BUCKETS + 1];
        double sum;
        uint64_t count;
} Histogram;

typedef struct RevStats {
        char *revision;
        uint64_t requests[N_OUTCOMES];
        Histogram duration;
        uint64_t cold_starts;
        double cold_sum;
} RevStats;

typedef struct MConn {
        NodeMetrics *m;
        uv_tcp_t tcp;
        uv_timer_t timer;
        uv_write_t wr;
        char head[HEAD_MAX];
        size_t len;
        char *reply;
        unsigned open;
        bool responding, closing;
} MConn;

struct NodeMetrics {
        uv_loop_t *loop;
        uv_tcp_t server;
        bool listening;
        unsigned n_conns;
        RevStats *revs;
        size_t n_revs;
        Histogram zygote;
        metrics_gauges_fn gauges;
        void *userdata;
};

static void hist_add(Histogram *h, double v) {
        size_t i = 0;
        while (i < N_BUCKETS && v > buckets[i])
                i++;
        h->counts[i]++;
        h->sum += v;
        h->count++;
}

static RevStats *rev_get(NodeMetrics *m, const char *revision) {
        const char *name = revision ? revision : "unknown";
        for (size_t i = 0; i < m->n_revs; i++)
                if (strcmp(m->revs[i].revision, name) == 0)
                        return &m->revs[i];
        if (m->n_revs >= METRICS_REVISIONS_MAX)
                name = "other";
        for (size_t i = 0; i < m->n_revs; i++)
                if (strcmp(m->revs[i].revision, name) == 0)
                        return &m->revs[i];
        RevStats *r = realloc(m->revs, (m->n_revs + 1) * sizeof *r);
        if (!r)
                return NULL;
        m->revs = r;
        r = &m->revs[m->n_revs];
        *r = (RevStats) { .revision = strdup(name) };
        if (!r->revision)
                return NULL;
        m->n_revs++;
        return r;
}

void node_metrics_request(NodeMetrics *m, const char *revision, const char *outcome, double seconds) {
        RevStats *r = m ? rev_get(m, revision) : NULL;
        if (!r)
                return;
        for (size_t i = 0; i < N_OUTCOMES; i++)
                if (strcmp(outcomes[i], outcome) == 0)
                        r->requests[i]++;
        if (seconds >= 0)
                hist_add(&r->duration, seconds);
}

void node_metrics_cold_start(NodeMetrics *m, const char *revision, double seconds) {
        RevStats *r = m ? rev_get(m, revision) : NULL;
        if (r) {
                r->cold_starts++;
                r->cold_sum += seconds;
        }
}

void node_metrics_zygote_start(NodeMetrics *m, double seconds) {
        if (m)
                hist_add(&m->zygote, seconds);
}

static void hist_write(FILE *f, const char *name, const char *labels, const Histogram *h) {
        uint64_t cum = 0;
        const char *sep = *labels ? "," : "";
        for (size_t i = 0; i < N_BUCKETS; i++) {
                cum += h->counts[i];
                fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, buckets[i], (unsigned long long) cum);
        }
        cum += h->counts[N_BUCKETS];
        fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long) cum);
        const char *lb = *labels ? "{" : "", *rb = *labels ? "}" : "";
        fprintf(f, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, lb, labels, rb, h->sum, name, lb, labels, rb,
                (unsigned long long) h->count);
}

int node_metrics_render(NodeMetrics *m, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        if (m->gauges)
                m->gauges(f, m->userdata);
        fputs("# HELP fnbox_runtime_requests_total Invoke requests by revision and outcome.\n"
              "# TYPE fnbox_runtime_requests_total counter\n", f);
        for (size_t i = 0; i < m->n_revs; i++)
                for (size_t o = 0; o < N_OUTCOMES; o++)
                        if (m->revs[i].requests[o])
                                fprintf(f, "fnbox_runtime_requests_total{revision=\"%s\",outcome=\"%s\"} %llu\n",
                                        m->revs[i].revision, outcomes[o], (unsigned long long) m->revs[i].requests[o]);
        fputs("# HELP fnbox_runtime_request_duration_seconds Time from a request to its result.\n"
              "# TYPE fnbox_runtime_request_duration_seconds histogram\n", f);
        for (size_t i = 0; i < m->n_revs; i++) {
                char labels[160];
                snprintf(labels, sizeof labels, "revision=\"%s\"", m->revs[i].revision);
                hist_write(f, "fnbox_runtime_request_duration_seconds", labels, &m->revs[i].duration);
        }
        fputs("# HELP fnbox_runtime_cold_starts_total Instances started, and the time until each was ready.\n"
              "# TYPE fnbox_runtime_cold_starts_total counter\n", f);
        for (size_t i = 0; i < m->n_revs; i++)
                if (m->revs[i].cold_starts)
                        fprintf(f, "fnbox_runtime_cold_starts_total{revision=\"%s\"} %llu\n"
                                   "fnbox_runtime_cold_start_seconds_sum{revision=\"%s\"} %.6f\n",
                                m->revs[i].revision, (unsigned long long) m->revs[i].cold_starts,
                                m->revs[i].revision, m->revs[i].cold_sum);
        fputs("# HELP fnbox_runtime_zygote_start_seconds Time to build a zygote until it is ready.\n"
              "# TYPE fnbox_runtime_zygote_start_seconds histogram\n", f);
        hist_write(f, "fnbox_runtime_zygote_start_seconds", "", &m->zygote);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* ----- the server ----- */

static void conn_closed(uv_handle_t *h) {
        MConn *c = h->data;
        if (--c->open > 0)
                return;
        c->m->n_conns--;
        free(c->reply);
        free(c);
}

static void conn_close(MConn *c) {
        if (c->closing)
                return;
        c->closing = true;
        uv_close((uv_handle_t *) &c->tcp, conn_closed);
        uv_close((uv_handle_t *) &c->timer, conn_closed);
}

static void on_written(uv_write_t *w, int status) {
        (void) status;
        conn_close(w->data);
}

static void respond(MConn *c, const char *status, const char *ctype, const char *body, size_t len) {
        c->responding = true;
        uv_read_stop((uv_stream_t *) &c->tcp);
        if (asprintf(&c->reply, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%.*s",
                     status, ctype, len, (int) len, body) < 0) {
                c->reply = NULL;
                conn_close(c);
                return;
        }
        uv_buf_t b = uv_buf_init(c->reply, (unsigned) strlen(c->reply));
        c->wr.data = c;
        if (uv_write(&c->wr, (uv_stream_t *) &c->tcp, &b, 1, on_written) < 0)
                conn_close(c);
}

static void handle(MConn *c) {
        c->head[c->len] = 0;
        char *eol = strstr(c->head, "\r\n");
        *eol = 0;
        char method[16], target[HEAD_MAX], version[16];
        if (sscanf(c->head, "%15s %8191s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0) {
                respond(c, "400 Bad Request", "text/plain", "bad request\n", 12);
                return;
        }
        if (strcmp(target, "/metrics") != 0) {
                respond(c, "404 Not Found", "text/plain", "not found\n", 10);
                return;
        }
        if (strcmp(method, "GET") != 0) {
                respond(c, "405 Method Not Allowed", "text/plain", "method not allowed\n", 19);
                return;
        }
        char *text;
        size_t len;
        if (node_metrics_render(c->m, &text, &len) < 0) {
                respond(c, "500 Internal Server Error", "text/plain", "out of memory\n", 14);
                return;
        }
        respond(c, "200 OK", "text/plain; version=0.0.4", text, len);
        free(text);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
        MConn *c = h->data;
        (void) suggested;
        *b = uv_buf_init(c->head + c->len, (unsigned) (HEAD_MAX - 1 - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
        MConn *c = s->data;
        (void) b;
        if (n < 0) {
                conn_close(c);
                return;
        }
        c->len += (size_t) n;
        c->head[c->len] = 0;
        if (strstr(c->head, "\r\n\r\n"))
                handle(c);
        else if (c->len >= HEAD_MAX - 1)
                respond(c, "431 Request Header Fields Too Large", "text/plain", "too large\n", 10);
}

static void on_conn_timeout(uv_timer_t *t) {
        conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status) {
        NodeMetrics *m = server->data;
        if (status < 0)
                return;
        MConn *c = calloc(1, sizeof *c);
        if (!c)
                return;
        c->m = m;
        uv_tcp_init(m->loop, &c->tcp);
        uv_timer_init(m->loop, &c->timer);
        c->tcp.data = c->timer.data = c;
        c->open = 2;
        m->n_conns++;
        if (uv_accept(server, (uv_stream_t *) &c->tcp) < 0 || m->n_conns > CONNS_MAX) {
                conn_close(c);
                return;
        }
        uv_timer_start(&c->timer, on_conn_timeout, CONN_MS, 0);
        uv_read_start((uv_stream_t *) &c->tcp, on_alloc, on_read);
}

int node_metrics_new(uv_loop_t *loop, const char *listen, metrics_gauges_fn gauges, void *userdata,
                     NodeMetrics **ret, unsigned *ret_port) {
        NodeMetrics *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        *m = (NodeMetrics) { .loop = loop, .gauges = gauges, .userdata = userdata };
        if (listen) {
                char host[64];
                const char *colon = strrchr(listen, ':');
                struct sockaddr_in in = { .sin_family = AF_INET };
                if (!colon || (size_t) (colon - listen) >= sizeof host) {
                        free(m);
                        return -EINVAL;
                }
                memcpy(host, listen, (size_t) (colon - listen));
                host[colon - listen] = 0;
                int r = uv_ip4_addr(host, atoi(colon + 1), &in);
                uv_tcp_init(loop, &m->server);
                m->server.data = m;
                m->listening = true;
                if (r >= 0)
                        r = uv_tcp_bind(&m->server, (struct sockaddr *) &in, 0);
                if (r >= 0)
                        r = uv_listen((uv_stream_t *) &m->server, 64, on_connection);
                int sl = sizeof in;
                if (r >= 0)
                        r = uv_tcp_getsockname(&m->server, (struct sockaddr *) &in, &sl);
                if (r < 0) {
                        node_metrics_free(m);
                        return r;
                }
                if (ret_port)
                        *ret_port = ntohs(in.sin_port);
        }
        *ret = m;
        return 0;
}

static void on_server_closed(uv_handle_t *h) {
        NodeMetrics *m = h->data;
        for (size_t i = 0; i < m->n_revs; i++)
                free(m->revs[i].revision);
        free(m->revs);
        free(m);
}

void node_metrics_free(NodeMetrics *m) {
        if (!m)
                return;
        if (m->listening) {
                uv_close((uv_handle_t *) &m->server, on_server_closed);
                return;
        }
        on_server_closed(&(uv_handle_t) { .data = m });
}
