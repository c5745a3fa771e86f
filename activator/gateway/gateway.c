/* activator/gateway/gateway.c: the gateway's process-wide part (see
 * gateway.h): the configuration and its reloads (SIGHUP through main.c,
 * file changes through a watcher thread with its own libuv loop), what
 * each upstream taught us, who the caller is (a bearer token, or a
 * broker call's signed identity headers), the metrics, and the first
 * look at a request (its path, method, caller and size). One request's
 * path from there is call.c. */
#define _GNU_SOURCE
#include "activator/gateway/gwint.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "activator/auth.h"
#include "activator/fnpath.h"
#include "lib/util.h"

#define RELOAD_DEBOUNCE_MS 200

uint64_t gw_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int64_t gw_realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t gw_random(GwWorker *gw) {
        uint64_t x = gw->rng;
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        gw->rng = x;
        return x * 2685821657736338717ull;
}

/* ---- the configuration -------------------------------------------------------------- */

GwConfig *gw_config_get(Gateway *g) {
        pthread_mutex_lock(&g->lock);
        GwConfig *c = gw_config_ref(g->cfg);
        pthread_mutex_unlock(&g->lock);
        return c;
}

/* Each upstream's state, by name, kept across reloads. Under the lock. */
static int states_bind(Gateway *g, GwConfig *cfg) {
        for (size_t i = 0; i < cfg->n_upstreams; i++) {
                GwUpstream *u = &cfg->upstreams[i];
                GwUpState *s = g->states;
                while (s && strcmp(s->name, u->name) != 0)
                        s = s->next;
                if (!s) {
                        if (!(s = calloc(1, sizeof *s)) || !(s->name = strdup(u->name))) {
                                free(s);
                                return -ENOMEM;
                        }
                        s->next = g->states;
                        g->states = s;
                }
                u->state = s;
        }
        return 0;
}

static void quotas_apply(Gateway *g, const GwConfig *cfg) {
        quota_clear_limits(g->quota);
        for (size_t i = 0; i < cfg->n_quotas; i++)
                quota_set_limit(g->quota, cfg->quotas[i].key, &cfg->quotas[i].limit);
}

static int config_install(Gateway *g, char *err, size_t err_len) {
        GwConfig *cfg = NULL;
        int r = gw_config_load(g->path, &cfg, err, err_len);
        if (r < 0)
                return r;
        pthread_mutex_lock(&g->lock);
        r = states_bind(g, cfg);
        GwConfig *old = NULL;
        if (r == 0) {
                old = g->cfg;
                g->cfg = cfg;
                quotas_apply(g, cfg);
        }
        pthread_mutex_unlock(&g->lock);
        if (r < 0) {
                snprintf(err, err_len, "%s: out of memory", g->path);
                gw_config_unref(cfg);
                return r;
        }
        gw_config_unref(old);
        return 0;
}

int gateway_reload(Gateway *g) {
        char err[GW_ERROR_MAX + 256];
        int r = config_install(g, err, sizeof err);
        pthread_mutex_lock(&g->lock);
        if (r < 0)
                g->reloads_failed++;
        else
                g->reloads_ok++;
        size_t nu = g->cfg->n_upstreams, na = g->cfg->n_aliases;
        pthread_mutex_unlock(&g->lock);
        if (r < 0)
                fprintf(stderr, PROG ": gateway: %s; keeping the previous configuration\n", err);
        else
                fprintf(stderr, PROG ": gateway: reloaded %s (%zu upstreams, %zu models and aliases)\n", g->path, nu, na);
        return r;
}

/* ---- the watcher thread ----------------------------------------------------------------- */

static void on_debounce(uv_timer_t *t) {
        gateway_reload(t->data);
}

/* The folder is watched, not the file: editors and config managers
 * replace a file by renaming another over it. */
static void on_fs(uv_fs_event_t *h, const char *filename, int events _unused_, int status) {
        Gateway *g = h->data;
        _cleanup_free_ char *copy = strdup(g->path);
        if (status < 0 || !copy)
                return;
        if (filename && strcmp(filename, basename(copy)) != 0)
                return;
        uv_timer_start(&g->debounce, on_debounce, RELOAD_DEBOUNCE_MS, 0);
}

static void on_wake(uv_async_t *a) {
        Gateway *g = a->data;
        if (!g->stopping)
                return;
        uv_fs_event_stop(&g->fs);
        uv_close((uv_handle_t *) &g->fs, NULL);
        uv_close((uv_handle_t *) &g->debounce, NULL);
        uv_close((uv_handle_t *) &g->wake, NULL);
}

static void *watch_main(void *arg) {
        Gateway *g = arg;
        uv_run(&g->loop, UV_RUN_DEFAULT);
        return NULL;
}

static int watch_start(Gateway *g) {
        _cleanup_free_ char *copy = strdup(g->path);
        if (!copy)
                return -ENOMEM;
        int r = uv_loop_init(&g->loop);
        if (r < 0)
                return r;
        uv_async_init(&g->loop, &g->wake, on_wake);
        uv_timer_init(&g->loop, &g->debounce);
        uv_fs_event_init(&g->loop, &g->fs);
        g->wake.data = g->debounce.data = g->fs.data = g;
        r = uv_fs_event_start(&g->fs, on_fs, dirname(copy), 0);
        if (r < 0)
                fprintf(stderr, PROG ": gateway: cannot watch the folder of %s (%s): reload with SIGHUP\n", g->path,
                        uv_strerror(r));
        r = -pthread_create(&g->thread, NULL, watch_main, g);
        g->thread_started = r == 0;
        return r;
}

static void watch_stop(Gateway *g) {
        if (!g->thread_started)
                return;
        g->stopping = true;
        uv_async_send(&g->wake);
        pthread_join(g->thread, NULL);
        uv_loop_close(&g->loop);
}

/* ---- the gateway ---------------------------------------------------------------------------- */

int gateway_new(const GatewayOptions *o, Gateway **ret, char *err, size_t err_len) {
        Gateway *g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        pthread_mutex_init(&g->lock, NULL);
        g->router = o->router;
        g->auth = o->auth;
        int r = -ENOMEM;
        char auth[600];
        if (!(g->path = strdup(o->config_path)) || !(g->self_url = strdup(o->self_url ? o->self_url : "")) ||
            !(g->token = strdup(o->token ? o->token : "")) || (o->invoke_secret && !(g->secret = strdup(o->invoke_secret))) ||
            !(g->quota = quota_new()))
                goto fail;
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", g->token);
        if (o->controller_url && !(g->audit = audit_new(o->controller_url, auth)))
                goto fail;
        explicit_bzero(auth, sizeof auth);
        if ((r = config_install(g, err, err_len)) < 0)
                goto fail;
        if ((r = watch_start(g)) < 0) {
                snprintf(err, err_len, "cannot start the gateway's file watcher: %s", strerror(-r));
                goto fail;
        }
        *ret = g;
        return 0;
fail:
        if (r == -ENOMEM && !err[0])
                snprintf(err, err_len, "out of memory");
        gateway_free(g);
        return r;
}

void gateway_free(Gateway *g) {
        if (!g)
                return;
        watch_stop(g);
        audit_free(g->audit);
        quota_free(g->quota);
        gw_config_unref(g->cfg);
        for (GwUpState *s = g->states, *n; s; s = n) {
                n = s->next;
                free(s->name);
                free(s);
        }
        for (GwSeries *s = g->series, *n; s; s = n) {
                n = s->next;
                free(s->alias);
                free(s->upstream);
                free(s);
        }
        free(g->path);
        free(g->self_url);
        if (g->token)
                explicit_bzero(g->token, strlen(g->token));
        free(g->token);
        if (g->secret)
                explicit_bzero(g->secret, strlen(g->secret));
        free(g->secret);
        pthread_mutex_destroy(&g->lock);
        free(g);
}

int gateway_worker_new(Gateway *g, uv_loop_t *loop, GwWorker **ret) {
        GwWorker *gw = calloc(1, sizeof *gw);
        if (!gw)
                return -ENOMEM;
        gw->g = g;
        if (getrandom(&gw->rng, sizeof gw->rng, 0) != sizeof gw->rng)
                gw->rng = gw_now_ns();
        gw->rng |= 1;
        int r = up_client_new(loop, &gw->up);
        if (r < 0) {
                free(gw);
                return r;
        }
        *ret = gw;
        return 0;
}

void gateway_worker_free(GwWorker *gw) {
        if (!gw)
                return;
        up_client_free(gw->up);
        free(gw);
}

/* ---- metrics ------------------------------------------------------------------------------------ */

void gw_metrics_record(Gateway *g, const char *alias, const char *upstream, bool ok, uint64_t in, uint64_t out,
                       double latency_s, double ttft_s) {
        pthread_mutex_lock(&g->lock);
        GwSeries *s = g->series;
        while (s && !(strcmp(s->alias, alias) == 0 && strcmp(s->upstream, upstream) == 0))
                s = s->next;
        if (!s && g->n_series >= GW_SERIES_MAX) {
                alias = upstream = "other";
                for (s = g->series; s && !(strcmp(s->alias, "other") == 0 && strcmp(s->upstream, "other") == 0);)
                        s = s->next;
        }
        if (!s && (s = calloc(1, sizeof *s))) {
                s->alias = strdup(alias);
                s->upstream = strdup(upstream);
                if (!s->alias || !s->upstream) {
                        free(s->alias);
                        free(s->upstream);
                        free(s);
                        s = NULL;
                } else {
                        s->next = g->series;
                        g->series = s;
                        g->n_series++;
                }
        }
        if (s) {
                ok ? s->ok++ : s->failed++;
                s->tokens_in += in;
                s->tokens_out += out;
                histogram_add(&s->latency, latency_s);
                if (ttft_s >= 0)
                        histogram_add(&s->ttft, ttft_s);
        }
        pthread_mutex_unlock(&g->lock);
}

static void histogram_write(FILE *f, const char *name, const GwSeries *s, const Histogram *h) {
        uint64_t cum = 0;
        for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
                cum += h->counts[i];
                if (i < METRICS_BUCKETS)
                        fprintf(f, "%s_bucket{alias=\"%s\",upstream=\"%s\",le=\"%g\"} %llu\n", name, s->alias, s->upstream,
                                metrics_bucket_bounds[i], (unsigned long long) cum);
                else
                        fprintf(f, "%s_bucket{alias=\"%s\",upstream=\"%s\",le=\"+Inf\"} %llu\n", name, s->alias,
                                s->upstream, (unsigned long long) cum);
        }
        fprintf(f, "%s_sum{alias=\"%s\",upstream=\"%s\"} %.6f\n", name, s->alias, s->upstream, h->sum);
        fprintf(f, "%s_count{alias=\"%s\",upstream=\"%s\"} %llu\n", name, s->alias, s->upstream, (unsigned long long) h->n);
}

static void metrics_write(Gateway *g, FILE *f) {
        uint64_t now = gw_now_ns();
        fprintf(f, "# HELP fnbox_llm_requests_total LLM gateway requests by alias, the upstream that answered (none: none did) and outcome.\n"
                   "# TYPE fnbox_llm_requests_total counter\n");
        for (GwSeries *s = g->series; s; s = s->next) {
                fprintf(f, "fnbox_llm_requests_total{alias=\"%s\",upstream=\"%s\",outcome=\"ok\"} %llu\n", s->alias,
                        s->upstream, (unsigned long long) s->ok);
                fprintf(f, "fnbox_llm_requests_total{alias=\"%s\",upstream=\"%s\",outcome=\"error\"} %llu\n", s->alias,
                        s->upstream, (unsigned long long) s->failed);
        }
        fprintf(f, "# HELP fnbox_llm_tokens_total Tokens in (prompt) and out (completion), from usage or counted.\n"
                   "# TYPE fnbox_llm_tokens_total counter\n");
        for (GwSeries *s = g->series; s; s = s->next) {
                fprintf(f, "fnbox_llm_tokens_total{alias=\"%s\",upstream=\"%s\",direction=\"in\"} %llu\n", s->alias,
                        s->upstream, (unsigned long long) s->tokens_in);
                fprintf(f, "fnbox_llm_tokens_total{alias=\"%s\",upstream=\"%s\",direction=\"out\"} %llu\n", s->alias,
                        s->upstream, (unsigned long long) s->tokens_out);
        }
        fprintf(f, "# HELP fnbox_llm_request_duration_seconds LLM gateway request latency.\n"
                   "# TYPE fnbox_llm_request_duration_seconds histogram\n");
        for (GwSeries *s = g->series; s; s = s->next)
                histogram_write(f, "fnbox_llm_request_duration_seconds", s, &s->latency);
        fprintf(f, "# HELP fnbox_llm_time_to_first_token_seconds Time to the first streamed token.\n"
                   "# TYPE fnbox_llm_time_to_first_token_seconds histogram\n");
        for (GwSeries *s = g->series; s; s = s->next)
                if (s->ttft.n)
                        histogram_write(f, "fnbox_llm_time_to_first_token_seconds", s, &s->ttft);
        fprintf(f, "# HELP fnbox_llm_upstream_inflight Requests in flight to each upstream.\n"
                   "# TYPE fnbox_llm_upstream_inflight gauge\n");
        for (GwUpState *s = g->states; s; s = s->next)
                fprintf(f, "fnbox_llm_upstream_inflight{upstream=\"%s\"} %u\n", s->name, s->inflight);
        fprintf(f, "# HELP fnbox_llm_upstream_cooling_down 1 while an upstream cools down after failures.\n"
                   "# TYPE fnbox_llm_upstream_cooling_down gauge\n");
        for (GwUpState *s = g->states; s; s = s->next)
                fprintf(f, "fnbox_llm_upstream_cooling_down{upstream=\"%s\"} %d\n", s->name, s->cooldown_until_ns > now);
        QuotaStats qs;
        quota_stats(g->quota, &qs);
        fprintf(f, "# HELP fnbox_llm_quota_reservations Quota reservations held by requests in flight.\n"
                   "# TYPE fnbox_llm_quota_reservations gauge\nfnbox_llm_quota_reservations %llu\n"
                   "# HELP fnbox_llm_quota_reserved_tokens Tokens those reservations hold.\n"
                   "# TYPE fnbox_llm_quota_reserved_tokens gauge\nfnbox_llm_quota_reserved_tokens %llu\n",
                (unsigned long long) qs.reservations, (unsigned long long) qs.tokens_reserved);
        fprintf(f, "# HELP fnbox_llm_config_reloads_total Gateway configuration reloads.\n"
                   "# TYPE fnbox_llm_config_reloads_total counter\n"
                   "fnbox_llm_config_reloads_total{result=\"ok\"} %llu\nfnbox_llm_config_reloads_total{result=\"failed\"} %llu\n",
                (unsigned long long) g->reloads_ok, (unsigned long long) g->reloads_failed);
        if (g->audit)
                fprintf(f, "# HELP fnbox_llm_audit_dropped_total Audit records dropped (the controller away too long).\n"
                           "# TYPE fnbox_llm_audit_dropped_total counter\nfnbox_llm_audit_dropped_total %llu\n",
                        (unsigned long long) audit_dropped(g->audit));
}

char *gateway_metrics_text(Gateway *g, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        pthread_mutex_lock(&g->lock);
        metrics_write(g, f);
        pthread_mutex_unlock(&g->lock);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        *ret_len = len;
        return buf;
}

/* ---- the first look at a request ------------------------------------------------------------------ */

bool gateway_path(const char *uri) {
        return strncmp(uri, "/v1/", 4) == 0 || strcmp(uri, "/v1") == 0;
}

static HttpResponse *head_error(Req *q, unsigned status, const char *type, const char *code, const char *param,
                                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static HttpResponse *head_error(Req *q, unsigned status, const char *type, const char *code, const char *param,
                                       const char *fmt, ...) {
        char msg[1024];
        size_t len;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        char *body = oai_error_json(msg, type, param, code, &len);
        HttpResponse *r = body ? http_response_buffer(body, len) : NULL;     /* takes body */
        if (!r)
                return NULL;
        http_response_header(r, "Content-Type", "application/json");
        http_response_header(r, "X-Request-Id", q->reqid);
        if (status == 401)
                http_response_header(r, "WWW-Authenticate", "Bearer realm=\"fnbox\"");
        if (status == 405)
                http_response_header(r, "Allow", q->gw && q->gw->models ? "GET" : "POST");
        if (status == 503)
                http_response_header(r, "Retry-After", "1");
        return r;
}

static const char *header(Req *q, const char *name) {
        return http_header(q->conn, name);
}

/* A broker call: X-Fnbox-Caller, X-Fnbox-Depth and X-Fnbox-Broker-Auth
 * ("v1 TIME HEX") signed with the invoke secret (docs/internals.md). */
static HttpResponse *identify_broker(GwCall *c, const char *sig, unsigned *st) {
        Req *q = c->q;
        const char *caller = header(q, "X-Fnbox-Caller"), *depth_h = header(q, "X-Fnbox-Depth");
        const char *ns_h = header(q, "X-Fnbox-Namespace");
        char ns[GW_NS_MAX];
        unsigned depth = 0;
        *st = 401;
        /* the same check as a broker's /fn call (activator/auth.c) */
        int r = auth_broker_verify(c->g->secret, caller, depth_h, sig, (long long) (gw_realtime_ns() / 1000000000),
                                   ns, sizeof ns, &depth);
        if (r == -ENOKEY)
                return head_error(q, 401, "authentication_error", "broker_refused", NULL,
                                  "broker calls are refused: this activator has no --invoke-secret-file");
        if (r == -EBADMSG || (r == 0 && strlen(caller) >= GW_CALLER_MAX))
                return head_error(q, 401, "authentication_error", "broker_malformed", NULL,
                                  "malformed broker identity (X-Fnbox-Caller: fn:NS/NAME@REV, X-Fnbox-Depth: 0-%u, "
                                  "X-Fnbox-Broker-Auth: v1 TIME HMAC)", AUTH_BROKER_DEPTH_MAX);
        if (r < 0)
                return head_error(q, 401, "authentication_error", "broker_refused", NULL, "the broker signature does not match");
        if (ns_h && strcmp(ns_h, ns) != 0) {
                *st = 403;
                return head_error(q, 403, "permission_error", "forbidden", NULL,
                                  "a function in namespace %s may not call as namespace %s", ns, ns_h);
        }
        if (depth > c->cfg->max_depth) {
                *st = 400;
                return head_error(q, 400, "invalid_request_error", "depth_exceeded", NULL,
                                  "the call is nested %u deep; at most %u", depth, c->cfg->max_depth);
        }
        snprintf(c->ns, sizeof c->ns, "%s", ns);
        snprintf(c->caller, sizeof c->caller, "%s", caller);
        *st = 0;        /* verified: no status, the call goes on (gateway_head answers when *st is set) */
        return NULL;
}

static HttpResponse *identify(GwCall *c, unsigned *st) {
        Req *q = c->q;
        const char *sig = header(q, "X-Fnbox-Broker-Auth"), *ns = header(q, "X-Fnbox-Namespace");
        char msg[256];
        if (sig)
                return identify_broker(c, sig, st);
        if (ns && !fnpath_name_ok(ns, strlen(ns))) {
                *st = 400;
                return head_error(q, 400, "invalid_request_error", "invalid_namespace", NULL,
                                  "X-Fnbox-Namespace is not a valid namespace name");
        }
        snprintf(c->ns, sizeof c->ns, "%s", ns ? ns : "default");
        if (!c->g->auth) {
                snprintf(c->caller, sizeof c->caller, "anonymous");
                return NULL;
        }
        /* the worker's token cache, as /fn/ calls use it: no hashing per request */
        bool hit = false;
        const char *authorization = header(q, "Authorization");
        int r = auth_key_from_header(authorization, req_auth_cache(q), &q->auth_key, &hit);
        if (r < 0) {
                *st = r == -EIO ? 500 : 401;
                return head_error(q, *st, *st == 500 ? "server_error" : "authentication_error", "invalid_api_key", NULL, "%s",
                                  r == -ENOKEY ? "this call needs an API key: Authorization: Bearer fnb_..."
                                  : r == -EBADMSG ? "the API key is malformed (expected an fnbox token, fnb_...)"
                                                  : "the API key cannot be checked now");
        }
        ActError e = router_authorize_ns(c->g->router, &q->auth_key, c->ns, msg, sizeof msg);
        if (!hit && (e == ACT_OK || e == ACT_FORBIDDEN))
                auth_cache_put(req_auth_cache(q), authorization, &q->auth_key);
        if (e != ACT_OK) {
                *st = act_error_status(e);
                return head_error(q, *st, e == ACT_FORBIDDEN ? "permission_error" : e == ACT_UNAUTHENTICATED ? "authentication_error"
                                                                                                               : "service_unavailable",
                                  e == ACT_FORBIDDEN ? "forbidden" : e == ACT_UNAUTHENTICATED ? "invalid_api_key" : "unavailable",
                                  NULL, "%s", msg);
        }
        snprintf(c->token_id, sizeof c->token_id, "%s", q->auth_key.id);
        snprintf(c->caller, sizeof c->caller, "token:%s", q->auth_key.id);
        return NULL;
}

static int hexval(char ch) {
        return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* The ID of /v1/models/ID, percent-decoded into id (a model name may hold
 * a slash, sent as itself or as %2F): 0, or -EINVAL when it is empty,
 * too long, badly encoded or holds a NUL or a control character. */
static int model_id_of(const char *p, size_t n, char *id, size_t size) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                int ch = (unsigned char) p[i];
                if (ch == '%') {
                        int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        ch = hi * 16 + lo;
                        i += 2;
                }
                if (ch < 0x20 || ch == 0x7f || k + 1 >= size)
                        return -EINVAL;
                id[k++] = (char) ch;
        }
        id[k] = 0;
        return k ? 0 : -EINVAL;
}

/* The endpoint a path names: 0 with *ret, or -ENOENT (-EINVAL: a model ID
 * that cannot be one). */
static int endpoint_of(const char *uri, GwCall *c, OaiEndpoint *ret) {
        size_t n = strcspn(uri, "?");
        c->models = false;
        c->model_id[0] = 0;
        if (n == 10 && strncmp(uri, "/v1/models", n) == 0) {
                c->models = true;
                return 0;
        }
        if (n > 11 && strncmp(uri, "/v1/models/", 11) == 0) {
                c->models = true;
                return model_id_of(uri + 11, n - 11, c->model_id, sizeof c->model_id);
        }
        for (int e = 0; e < _OAI_ENDPOINT_MAX; e++) {
                const char *p = oai_endpoint_path(e);
                if (n == 3 + strlen(p) && strncmp(uri + 3, p, n - 3) == 0) {
                        *ret = (OaiEndpoint) e;
                        return 0;
                }
        }
        return -ENOENT;
}

static uint64_t content_length(Req *q) {
        const char *cl = header(q, "Content-Length");
        if (!cl)
                return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        return errno || end == cl || *end ? UINT64_MAX : v;
}

uint64_t gateway_body_max(const Req *q) {
        return q && q->gw ? q->gw->cfg->max_body : UINT64_MAX;
}

int gateway_error_json(Req *q, ActError e, const char *msg, char *buf, size_t size) {
        const char *type, *code = act_error_type(e);
        size_t len;
        switch (e) {
        case ACT_TOO_LARGE:
                type = "invalid_request_error", code = "request_too_large";
                break;
        case ACT_BAD_REQUEST:
        case ACT_NOT_FOUND:
        case ACT_URI_TOO_LONG:
        case ACT_HEADERS_TOO_LARGE:
        case ACT_VERSION_NOT_SUPPORTED:
                type = "invalid_request_error";
                break;
        case ACT_UNAUTHENTICATED:
                type = "authentication_error";
                break;
        case ACT_FORBIDDEN:
                type = "permission_error";
                break;
        case ACT_UNAVAILABLE:
        case ACT_QUEUE_FULL:
        case ACT_SHUTTING_DOWN:
                type = "service_unavailable";
                break;
        case ACT_TIMEOUT:
        case ACT_QUEUE_TIMEOUT:
                type = "timeout";
                break;
        default:
                type = "server_error";
        }
        GwCall *c = q ? q->gw : NULL;
        if (c && !c->final_status) {
                c->final_status = act_error_status(e);
                snprintf(c->error_type, sizeof c->error_type, "%s", type);
        }
        _cleanup_free_ char *body = oai_error_json(msg, type, NULL, code, &len);
        if (!body || len >= size)
                return -ENOBUFS;
        memcpy(buf, body, len + 1);
        return (int) len;
}

HttpResponse *gateway_head(GwWorker *gw, Req *q, unsigned *st) {
        GwCall *c = gw_call_new(gw, q);
        HttpResponse *r = NULL;
        *st = 0;
        if (!c) {
                *st = 500;
                return head_error(q, 500, "server_error", NULL, NULL, "out of memory");
        }
        bool get = strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;
        int e = endpoint_of(q->uri, c, &c->ep);
        if (e == -EINVAL) {
                *st = 404;
                r = head_error(q, 404, "invalid_request_error", "model_not_found", "model", "no such model: the ID is empty, "
                               "badly encoded or over %d bytes", GW_NAME_MAX - 1);
        } else if (e < 0) {
                *st = 404;
                r = head_error(q, 404, "invalid_request_error", "unknown_url", NULL,
                               "no such endpoint: the gateway serves /v1/chat/completions, /v1/completions, /v1/embeddings, "
                               "/v1/models and /v1/models/ID");
        } else if (c->models != get) {
                *st = 405;
                r = head_error(q, 405, "invalid_request_error", "method_not_allowed", NULL, "%s is not allowed here; use %s",
                               q->method, c->models ? "GET" : "POST");
        } else if (!(r = identify(c, st))) {
                uint64_t cl = content_length(q);
                if (cl == UINT64_MAX || cl > c->cfg->max_body) {
                        *st = 413;
                        r = head_error(q, 413, "invalid_request_error", "request_too_large", NULL,
                                       "the request body is over the gateway's limit of %llu bytes",
                                       (unsigned long long) c->cfg->max_body);
                }
        }
        if (*st)
                gw_call_free(c);
        return r;
}
