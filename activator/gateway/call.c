/* activator/gateway/call.c: one gateway request, from its body to its
 * audit record: checks (400), the model (404), the data rules (403), the
 * quota (429), then attempts on the alias's upstreams and its fallbacks
 * (upstream.c) until one answers. A non-streamed answer is taken whole
 * and checked before the caller sees a byte, so any failure may fall
 * back; a stream is committed to the caller with its first event, and a
 * failure after that ends it with an error event and [DONE]. */
#define _GNU_SOURCE
#include "activator/gateway/gwint.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* After a stream's [DONE] the upstream's answer still has to end (the
 * chunked body's last chunk) for its connection to be kept for the next
 * call; stopping at [DONE] made curl close it, and every stream paid a
 * new connection (socket, connect, the upstream's accept). The caller is
 * answered at [DONE]; the end is awaited this long, and this many bytes
 * after [DONE] are read and dropped, else the connection goes. */
#define GW_LINGER_MS 1000
#define GW_AFTER_DONE_MAX (64u << 10)

static void attempt_next(GwCall *c);

GwCall *gw_call_new(GwWorker *gw, Req *q) {
        GwCall *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->gw = gw;
        c->g = gw->g;
        c->q = q;
        c->cfg = gw_config_get(gw->g);
        snprintf(c->rec.request_id, sizeof c->rec.request_id, "%s", q->reqid);
        c->rec.at_ms = gw_realtime_ns() / 1000000;
        c->rec.ttft_ms = -1;
        q->gw = c;
        q->refs++;
        return c;
}

/* The attempt's upstream is no longer in flight (ok: NULL for no verdict). */
static void attempt_release(GwCall *c, const bool *ok) {
        if (!c->state)
                return;
        uint64_t now = gw_now_ns();
        double ttfb = c->ttfb_ns ? (double) (c->ttfb_ns - c->attempt_ns) / 1e6 : -1;
        bool cooled = false;
        pthread_mutex_lock(&c->g->lock);
        c->state->inflight--;
        if (ok && (cooled = gw_route_result(c->state, c->alias, *ok, ttfb, now)))
                c->g->cooldowns++;
        pthread_mutex_unlock(&c->g->lock);
        if (cooled)
                fprintf(stderr, PROG ": gateway: upstream %s failed %u times in a row: cooling down for %.1fs\n",
                        c->member->up->name, c->alias->cooldown_failures, (double) c->alias->cooldown_ms / 1e3);
        c->state = NULL;
}

static void attempt_reset(GwCall *c) {
        c->status = 0;
        c->retry_after[0] = 0;
        c->len = 0;
        c->too_big = c->garbage = false;
        c->ttfb_ns = 0;
        oai_sse_clear(&c->sse);
}

/* Stop the upstream request under way, if any. */
static void call_cancel(GwCall *c) {
        if (c->call) {
                up_call_cancel(c->call);
                c->call = NULL;
        }
}

void gw_call_free(GwCall *c) {
        if (!c)
                return;
        c->watching = false;
        call_cancel(c);
        attempt_release(c, NULL);
        json_decref(c->body);
        free(c->buf);
        oai_sse_clear(&c->sse);
        audit_record_clear(&c->rec);
        gw_config_unref(c->cfg);
        Req *q = c->q;
        q->gw = NULL;
        free(c);
        req_unref(q);
}

/* ---- answers ---------------------------------------------------------------------------- */

static void respond(GwCall *c, unsigned status, char *body, size_t len, const char *retry_after) {
        HttpResponse *r = req_buffer_response(c->q, body, len);
        if (r) {
                http_response_header(r, "Content-Type", "application/json");
                if (retry_after)
                        http_response_header(r, "Retry-After", retry_after);
                if (c->rec.upstream[0])
                        http_response_header(r, "X-Fnbox-Upstream", c->rec.upstream);
        }
        c->final_status = status;
        req_start(c->q, r, status);
}

void gw_respond_error(GwCall *c, unsigned status, const char *type, const char *code, const char *param,
                      const char *retry_after, const char *fmt, ...) {
        char msg[1024];
        size_t len = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(c->error_type, sizeof c->error_type, "%s", type);
        char *body = oai_error_json(msg, type, param, code, &len);
        respond(c, status, body, len, retry_after);
}

/* ---- the end of a request -------------------------------------------------------------------- */

static void audit_fill(GwCall *c, uint64_t in, uint64_t out, bool counted) {
        AuditRecord *r = &c->rec;
        uint64_t now = c->end_ns ? c->end_ns : gw_now_ns();
        snprintf(r->ns, sizeof r->ns, "%s", c->ns);
        snprintf(r->caller, sizeof r->caller, "%s", c->caller);
        snprintf(r->endpoint, sizeof r->endpoint, "%s", oai_endpoint_name(c->ep));
        snprintf(r->alias, sizeof r->alias, "%.*s", (int) sizeof r->alias - 1, c->rq.model);
        r->tokens_in = in;
        r->tokens_out = out;
        r->tokens_counted = counted;
        r->latency_ms = (double) (now - c->q->start_ns) / 1e6;
        r->ttft_ms = c->first_token_ns ? (double) (c->first_token_ns - c->q->start_ns) / 1e6 : -1;
        r->status = c->final_status;
        snprintf(r->error_type, sizeof r->error_type, "%s", c->final_status == 200 ? "" : c->error_type);
        r->rules = c->fired;
        r->stream = c->rq.stream;
}

/* Settle, count, audit, and let the request go. */
static void finish(GwCall *c) {
        bool answered = c->rec.upstream[0] != 0;
        bool counted = answered && !c->has_usage;
        uint64_t in = !answered ? 0 : c->has_usage ? c->in : c->rq.prompt_tokens;
        uint64_t out = !answered ? 0 : c->has_usage ? c->out : oai_estimate_tokens(c->out_bytes);
        if (c->res.active)
                quota_settle(c->g->quota, &c->res, in + out);
        if (c->rq.model[0]) {
                double lat = (double) ((c->end_ns ? c->end_ns : gw_now_ns()) - c->q->start_ns) / 1e9;
                double ttft = c->first_token_ns ? (double) (c->first_token_ns - c->q->start_ns) / 1e9 : -1;
                gw_metrics_record(c->g, c->rq.model, answered ? c->rec.upstream : "none", c->final_status == 200, in, out,
                                  lat, ttft);
        }
        audit_fill(c, in, out, counted);
        if (c->g->audit) {
                audit_submit(c->g->audit, &c->rec);     /* takes the bodies */
                c->rec.request_body = c->rec.response_body = NULL;
        }
        gw_call_free(c);
}

/* ---- streams ------------------------------------------------------------------------------------- */

static void out_event(GwCall *c, const char *p, size_t len) {
        req_out(c->q, "data: ", 6);
        req_out(c->q, p, len);
        req_out(c->q, "\n\n", 2);
}

static int commit(GwCall *c) {
        HttpResponse *r = req_stream_response(c->q, HTTP_SIZE_UNKNOWN);
        if (!r)
                return -ENOMEM;
        http_response_header(r, "Content-Type", "text/event-stream");
        http_response_header(r, "Cache-Control", "no-cache");
        http_response_header(r, "X-Fnbox-Upstream", c->member->up->name);
        snprintf(c->rec.upstream, sizeof c->rec.upstream, "%s", c->member->up->name);
        c->committed = true;
        c->final_status = 200;
        req_start(c->q, r, 200);
        return 0;
}

/* The stream ends well: the usage the caller asked for (counted when the
 * upstream gave none), then [DONE]. */
static void stream_finish(GwCall *c) {
        if (c->rq.include_usage && !c->has_usage) {
                json_t *u = oai_usage_json(c->rq.prompt_tokens, oai_estimate_tokens(c->out_bytes));
                json_t *chunk = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", c->rec.request_id, "object",
                                          c->ep == OAI_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                                          (json_int_t) (c->rec.at_ms / 1000), "model", c->rq.model, "choices", "usage", u);
                char *s = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
                if (s)
                        out_event(c, s, strlen(s));
                free(s);
                json_decref(chunk);
        }
        out_event(c, "[DONE]", 6);
        c->stream_ended = true;
        c->end_ns = gw_now_ns();
        c->watching = false;                    /* answered: the caller may go */
        req_backend_done(c->q, true);
}

/* The stream breaks after the caller got bytes: an error event, then [DONE]. */
static void stream_fail(GwCall *c, const char *type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void stream_fail(GwCall *c, const char *type, const char *fmt, ...) {
        char msg[1024];
        size_t len;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(c->error_type, sizeof c->error_type, "%s", type);
        char *body = oai_error_json(msg, type, NULL, NULL, &len);
        if (body)
                out_event(c, body, len - 1);
        free(body);
        out_event(c, "[DONE]", 6);
        c->stream_ended = true;
        c->end_ns = gw_now_ns();
        c->final_status = 502;         /* for the audit and metrics: the caller saw 200 and an error event */
        req_backend_done(c->q, true);
}

static void fail_set(GwCall *c, unsigned status, const char *type, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static void fail_set(GwCall *c, unsigned status, const char *type, const char *code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
        va_end(ap);
        c->fail_status = status;
        snprintf(c->fail_type, sizeof c->fail_type, "%s", type);
        snprintf(c->fail_code, sizeof c->fail_code, "%s", code);
        snprintf(c->fail_retry, sizeof c->fail_retry, "%s", status == 429 ? c->retry_after : "");
}

/* One data payload of the upstream's stream: 0, or -1 to stop reading. */
static int stream_event(GwCall *c, const char *p, size_t len) {
        if (len == 6 && memcmp(p, "[DONE]", 6) == 0) {
                if (!c->committed) {
                        fail_set(c, 502, "upstream_error", "bad_gateway", "upstream %s ended its stream without a chunk",
                                 c->member->up->name);
                        return -1;
                }
                stream_finish(c);
                up_call_linger(c->call, GW_LINGER_MS);
                return 0;
        }
        /* Most events need nothing but their text counted and to be passed
         * on: read without building them (a JSON parse per event was about
         * 10 us of 25). One that names "usage" or "error", or any when the
         * namespace keeps bodies (the answer is assembled), is parsed. */
        size_t bytes;
        if (!c->rec.bodies && oai_chunk_scan(p, len, &bytes) == 0) {
                c->out_bytes += bytes;
                if (!c->committed && commit(c) < 0)
                        return -1;
                if (bytes && !c->first_token_ns)
                        c->first_token_ns = gw_now_ns();
                out_event(c, p, len);
                return 0;
        }
        json_t *j = json_loadb(p, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                c->garbage = true;
                return -1;
        }
        const json_t *err = json_object_get(j, "error");
        if (err && !json_is_null(err)) {
                const char *m = json_string_value(json_object_get(err, "message"));
                if (c->committed)
                        stream_fail(c, "upstream_error", "upstream %s failed mid-stream: %.300s", c->member->up->name,
                                    m ? m : "(no message)");
                else
                        fail_set(c, 502, "upstream_error", "bad_gateway", "upstream %s answered an error event: %.300s",
                                 c->member->up->name, m ? m : "(no message)");
                json_decref(j);
                return -1;
        }
        bool changed = false;
        uint64_t in, out;
        if (oai_usage(j, &in, &out)) {
                c->has_usage = true;
                c->in = in;
                c->out = out;
                if (!c->rq.include_usage) {
                        json_object_del(j, "usage");
                        changed = true;
                }
        }
        const json_t *choices = json_object_get(j, "choices");
        if (changed && json_is_array(choices) && json_array_size(choices) == 0) {
                json_decref(j);         /* a usage-only chunk the caller did not ask for */
                return 0;
        }
        bytes = oai_completion_bytes(j);
        c->out_bytes += bytes;
        if (!c->committed && commit(c) < 0) {
                json_decref(j);
                return -1;
        }
        if (bytes && !c->first_token_ns)
                c->first_token_ns = gw_now_ns();
        audit_stream_add(&c->rec, j);           /* the namespace keeps bodies: the answer, assembled */
        if (changed) {
                char *s = json_dumps(j, JSON_COMPACT);
                if (s)
                        out_event(c, s, strlen(s));
                free(s);
        } else
                out_event(c, p, len);
        json_decref(j);
        return 0;
}

/* ---- an attempt's handlers ------------------------------------------------------------------------ */

static void on_headers(void *ud, long status, const char *retry_after) {
        GwCall *c = ud;
        c->status = status;
        c->ttfb_ns = gw_now_ns();
        snprintf(c->retry_after, sizeof c->retry_after, "%s", retry_after ? retry_after : "");
}

static bool buf_add(GwCall *c, const char *p, size_t n, size_t max) {
        if (c->len + n > max)
                return false;
        if (c->len + n + 1 > c->cap) {
                size_t cap = c->cap ? c->cap : 16384;
                while (cap < c->len + n + 1)
                        cap *= 2;
                char *x = realloc(c->buf, cap);
                if (!x)
                        return false;
                c->buf = x;
                c->cap = cap;
        }
        memcpy(c->buf + c->len, p, n);
        c->len += n;
        c->buf[c->len] = 0;
        return true;
}

static bool on_data(void *ud, const char *p, size_t n) {
        GwCall *c = ud;
        if (c->status != 200) {
                buf_add(c, p, n, GW_ERRBODY_MAX);       /* the rest of an error answer is dropped */
                return true;
        }
        if (!c->rq.stream) {
                if (!buf_add(c, p, n, c->cfg->max_response)) {
                        c->too_big = true;
                        return false;
                }
                return true;
        }
        for (;;) {
                const char *ev;
                size_t ev_len;
                if (c->stream_ended) {          /* after [DONE]: read to the answer's end, pass nothing on */
                        c->after_done += n;
                        return c->after_done <= GW_AFTER_DONE_MAX;
                }
                int r = oai_sse_next(&c->sse, &p, &n, &ev, &ev_len);
                if (r < 0) {
                        c->garbage = true;
                        return false;
                }
                if (r == OAI_SSE_NONE)
                        return true;
                if (stream_event(c, ev, ev_len) < 0)
                        return false;
        }
}

/* A whole (non-streamed) 200 answer: a JSON object, or a failure. */
static bool answer_whole(GwCall *c) {
        json_t *j = json_loadb(c->buf ? c->buf : "", c->len, 0, NULL);
        if (!json_is_object(j) || (json_object_get(j, "error") && !json_is_null(json_object_get(j, "error")))) {
                json_decref(j);
                return false;
        }
        uint64_t in, out;
        if (oai_usage(j, &in, &out)) {
                c->has_usage = true;
                c->in = in;
                c->out = out;
        }
        c->out_bytes = oai_completion_bytes(j);
        json_decref(j);
        snprintf(c->rec.upstream, sizeof c->rec.upstream, "%s", c->member->up->name);
        if (gw_config_bodies(c->cfg, c->ns))
                c->rec.response_body = strndup(c->buf, c->len);
        char *body = TAKE_PTR(c->buf);
        size_t len = c->len;
        c->len = c->cap = 0;
        respond(c, 200, body, len, NULL);
        return true;
}

/* The upstream refused the request itself (400, 413, 422): the caller's
 * to fix, passed on as OpenAI says it, and no fault of the upstream. */
static void answer_refusal(GwCall *c) {
        json_t *j = json_loadb(c->buf ? c->buf : "", c->len, 0, NULL);
        const json_t *err = json_object_get(j, "error");
        const char *m = json_string_value(json_object_get(err, "message"));
        gw_respond_error(c, (unsigned) c->status, "invalid_request_error", NULL, json_string_value(json_object_get(err, "param")),
                         NULL, "upstream %s refused the request: %.500s", c->member->up->name, m ? m : "(no message)");
        json_decref(j);
}

static void fail_from_status(GwCall *c) {
        json_t *j = json_loadb(c->buf ? c->buf : "", c->len, 0, NULL);
        const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        const char *name = c->member->up->name;
        if (c->status == 429)
                fail_set(c, 429, "rate_limit_exceeded", "upstream_rate_limited", "upstream %s is rate limited: %.300s", name,
                         m ? m : "retry later");
        else if (c->status == 504)
                fail_set(c, 504, "timeout", "upstream_timeout", "upstream %s answered 504: %.300s", name, m ? m : "timeout");
        else
                fail_set(c, 502, "upstream_error", "bad_gateway", "upstream %s answered %ld: %.300s", name, c->status,
                         m ? m : "(no message)");
        json_decref(j);
}

static void fail_from_error(GwCall *c, UpError err, const char *msg) {
        const GwUpstream *u = c->member->up;
        if (c->too_big)
                fail_set(c, 502, "upstream_error", "bad_gateway", "upstream %s answered more than %llu bytes", u->name,
                         (unsigned long long) c->cfg->max_response);
        else if (c->garbage)
                fail_set(c, 502, "upstream_error", "bad_gateway", "upstream %s answered what is not the OpenAI format", u->name);
        else if (err == UP_TIMEOUT_FIRST_BYTE || err == UP_TIMEOUT_CONNECT)
                fail_set(c, 504, "timeout", "upstream_timeout", "upstream %s did not answer within %.1fs", u->name,
                         (double) (err == UP_TIMEOUT_CONNECT ? u->connect_ms : u->first_byte_ms) / 1e3);
        else if (err == UP_TIMEOUT_TOTAL)
                fail_set(c, 504, "timeout", "upstream_timeout", "upstream %s did not finish within %.1fs", u->name,
                         (double) u->total_ms / 1e3);
        else if (err != UP_STOPPED)
                fail_set(c, 502, "upstream_error", "bad_gateway", "upstream %s: %s (%s)", u->name, up_error_str(err), msg);
}

static void on_done(void *ud, UpError err, const char *msg) {
        GwCall *c = ud;
        bool ok;
        c->call = NULL;
        if (c->committed) {
                if (!c->stream_ended && err == UP_OK)
                        stream_finish(c);               /* ended without [DONE]: the caller still gets one */
                else if (!c->stream_ended)
                        stream_fail(c, err == UP_TIMEOUT_TOTAL ? "timeout" : "upstream_error",
                                    "upstream %s broke off the stream: %s", c->member->up->name,
                                    c->garbage ? "it sent what is not an event" : up_error_str(err));
                ok = c->final_status == 200;
                attempt_release(c, &ok);
                finish(c);
                return;
        }
        if (err == UP_OK && c->status == 200 && !c->rq.stream && answer_whole(c)) {
                ok = true;
                attempt_release(c, &ok);
                finish(c);
                return;
        }
        if (err == UP_OK && (c->status == 400 || c->status == 413 || c->status == 422)) {
                ok = true;
                answer_refusal(c);
                attempt_release(c, &ok);
                finish(c);
                return;
        }
        if (err == UP_OK && c->status == 200 && !c->rq.stream)
                c->garbage = true;
        if (err == UP_OK && c->status == 200 && c->rq.stream && !c->fail_status)
                fail_set(c, 502, "upstream_error", "bad_gateway", "upstream %s ended its stream without a chunk",
                         c->member->up->name);
        else if (err == UP_OK && c->status != 200)
                fail_from_status(c);
        else
                fail_from_error(c, err, msg);
        ok = false;
        attempt_release(c, &ok);
        attempt_next(c);
}

/* ---- attempts ---------------------------------------------------------------------------------------- */

static char *upstream_body(GwCall *c, const GwMember *m) {
        json_t *b = json_copy(c->body);
        if (!b)
                return NULL;
        json_object_set_new(b, "model", json_string(m->model));
        if (c->rq.stream && m->up->stream_usage)
                json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
        char *s = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        return s;
}

static int attempt_start(GwCall *c, GwMember *m) {
        const GwUpstream *u = m->up;
        char url[GW_URL_MAX + 256], auth[GW_KEY_MAX + 32] = "", reqid[AUDIT_REQUEST_ID_MAX + 32];
        const char *key = u->fn_name ? (c->g->auth ? c->g->token : NULL) : u->api_key;
        if (u->fn_name)
                snprintf(url, sizeof url, "%s/fn/%s/%s/v1%s", c->g->self_url, u->fn_ns, u->fn_name, oai_endpoint_path(c->ep));
        else
                snprintf(url, sizeof url, "%s%s", u->base_url, oai_endpoint_path(c->ep));
        if (key)
                snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        snprintf(reqid, sizeof reqid, "X-Request-Id: %s", c->rec.request_id);
        const char *headers[] = { "Content-Type: application/json",
                                  c->rq.stream ? "Accept: text/event-stream" : "Accept: application/json", reqid,
                                  key ? auth : NULL, NULL };
        _cleanup_free_ char *body = upstream_body(c, m);
        if (!body)
                return -ENOMEM;
        UpParams p = { .url = url, .headers = headers, .body = body, .body_len = strlen(body),
                       .connect_ms = u->connect_ms, .first_byte_ms = u->first_byte_ms, .total_ms = u->total_ms };
        static const UpHandlers h = { on_headers, on_data, on_done };
        attempt_reset(c);
        c->attempt_ns = gw_now_ns();
        int r = up_call_start(c->gw->up, &p, &h, c, &c->call);
        explicit_bzero(auth, sizeof auth);
        return r;
}

static void chain_note(GwCall *c, const char *name) {
        if (c->rec.chain_n < AUDIT_CHAIN_MAX)
                snprintf(c->rec.chain[c->rec.chain_n++], sizeof c->rec.chain[0], "%s", name);
}

/* Every attempt failed, or none could be made. */
static void fail_final(GwCall *c) {
        char ra[32];
        if (c->attempts == 0 && c->wait_ms) {
                snprintf(ra, sizeof ra, "%llu", (unsigned long long) ((c->wait_ms + 999) / 1000));
                gw_respond_error(c, 429, "rate_limit_exceeded", "upstreams_cooling_down", NULL, ra,
                                 "every upstream of %s is cooling down after failures; retry in %s s", c->rq.model, ra);
                return;
        }
        if (c->attempts == 0) {
                gw_respond_error(c, 503, "service_unavailable", "no_upstream", NULL, "1",
                                 "no upstream can take a request for %s now", c->rq.model);
                return;
        }
        gw_respond_error(c, c->fail_status ? c->fail_status : 502, c->fail_type[0] ? c->fail_type : "upstream_error",
                         c->fail_code[0] ? c->fail_code : "bad_gateway", NULL, c->fail_retry[0] ? c->fail_retry : NULL,
                         "%s", c->fail_msg[0] ? c->fail_msg : "no upstream answered");
}

static void chain_advance(GwCall *c) {
        c->chain_i++;
        c->in_alias = 0;
        memset(c->tried, 0, sizeof c->tried);
}

static void attempt_next(GwCall *c) {
        for (;;) {
                if (c->attempts >= AUDIT_CHAIN_MAX || c->chain_i >= c->n_chain) {
                        fail_final(c);
                        finish(c);
                        return;
                }
                GwAlias *a = c->chain[c->chain_i];
                if (c->in_alias > a->retries) {
                        chain_advance(c);
                        continue;
                }
                uint64_t wait = 0;
                pthread_mutex_lock(&c->g->lock);
                int idx = gw_route_pick(a, c->tried, c->fired != 0, gw_now_ns(), gw_random(c->gw), &wait);
                if (idx >= 0)
                        a->members[idx].up->state->inflight++;
                pthread_mutex_unlock(&c->g->lock);
                if (idx < 0) {
                        if (wait && (!c->wait_ms || wait < c->wait_ms))
                                c->wait_ms = wait;
                        chain_advance(c);
                        continue;
                }
                c->tried[idx] = true;
                c->in_alias++;
                c->attempts++;
                c->alias = a;
                c->member = &a->members[idx];
                c->state = c->member->up->state;
                chain_note(c, c->member->up->name);
                if (attempt_start(c, c->member) == 0)
                        return;
                fail_set(c, 502, "upstream_error", "bad_gateway", "cannot start a call to upstream %s", c->member->up->name);
                bool ok = false;
                attempt_release(c, &ok);
        }
}

/* ---- the request ---------------------------------------------------------------------------------------- */

static json_t *model_json(const GwAlias *a) {
        return json_pack("{s:s, s:s, s:i, s:s}", "id", a->name, "object", "model", "created", 0, "owned_by", "fnbox");
}

/* GET /v1/models: every alias; GET /v1/models/ID: that one, or 404. */
static void models_list(GwCall *c) {
        json_t *o = NULL;
        if (c->model_id[0]) {
                for (size_t i = 0; i < c->cfg->n_aliases && !o; i++)
                        if (strcmp(c->cfg->aliases[i].name, c->model_id) == 0 && !(o = model_json(&c->cfg->aliases[i]))) {
                                gw_respond_error(c, 500, "server_error", NULL, NULL, NULL, "out of memory");
                                return;
                        }
                if (!o) {
                        gw_respond_error(c, 404, "invalid_request_error", "model_not_found", "model", NULL,
                                         "the model %s does not exist here (GET /v1/models lists them)", c->model_id);
                        return;
                }
        } else {
                json_t *data = json_array();
                for (size_t i = 0; data && i < c->cfg->n_aliases; i++)
                        json_array_append_new(data, model_json(&c->cfg->aliases[i]));
                o = json_pack("{s:s, s:o}", "object", "list", "data", data);
        }
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!s) {
                gw_respond_error(c, 500, "server_error", NULL, NULL, NULL, "out of memory");
                return;
        }
        respond(c, 200, s, strlen(s), NULL);
}

/* The plan: the alias, then its fallbacks in order. */
static void plan(GwCall *c, GwAlias *a) {
        c->chain[c->n_chain++] = a;
        for (size_t i = 0; i < a->n_fallbacks && c->n_chain < ELEMENTSOF(c->chain); i++)
                c->chain[c->n_chain++] = a->fallbacks[i];
}

static bool plan_has_local(const GwCall *c) {
        for (size_t i = 0; i < c->n_chain; i++)
                if (gw_route_has_local(c->chain[i]))
                        return true;
        return false;
}

/* 400, 404, 403 and 429 before any upstream is asked: false when answered. */
static bool admit(GwCall *c) {
        Req *q = c->q;
        char msg[512], param[64];
        json_error_t je;
        if (q->body_len > c->cfg->max_body) {
                gw_respond_error(c, 413, "invalid_request_error", "request_too_large", NULL, NULL,
                                 "the request body is over the gateway's limit of %llu bytes", (unsigned long long) c->cfg->max_body);
                return false;
        }
        if (!(c->body = json_loadb(q->body ? q->body : "", q->body_len, JSON_REJECT_DUPLICATES, &je))) {
                gw_respond_error(c, 400, "invalid_request_error", "invalid_json", NULL, NULL,
                                 "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
                return false;
        }
        if (oai_request_check(c->ep, c->body, c->cfg->max_tokens, &c->rq, msg, sizeof msg, param, sizeof param) < 0) {
                gw_respond_error(c, 400, "invalid_request_error", "invalid_value", param, NULL, "%s", msg);
                return false;
        }
        GwAlias *a = gw_config_alias(c->cfg, c->rq.model);
        if (!a) {
                gw_respond_error(c, 404, "invalid_request_error", "model_not_found", "model", NULL,
                                 "the model %s does not exist here (GET /v1/models lists them)", c->rq.model);
                return false;
        }
        plan(c, a);
        c->fired = c->cfg->rules ? data_rules_scan_json(c->body, c->cfg->rules) : 0;
        if (c->fired && !plan_has_local(c)) {
                char rules[128];
                data_rules_format(c->fired, rules, sizeof rules);
                gw_respond_error(c, 403, "data_policy", "sensitive_data", NULL, NULL,
                                 "the request carries personal data (data rule %s) and no local upstream serves %s; "
                                 "it may not go to a cloud upstream", rules, c->rq.model);
                return false;
        }
        uint64_t tokens = c->rq.prompt_tokens +
                          (c->ep == OAI_EMBEDDINGS ? 0 : c->rq.has_max_tokens ? c->rq.max_tokens : c->cfg->default_max_tokens);
        unsigned retry = 0;
        if (quota_admit(c->g->quota, c->ns, c->token_id[0] ? c->token_id : NULL, tokens, gw_realtime_ns(), &c->res, msg,
                        sizeof msg, &retry) < 0) {
                char ra[32];
                snprintf(ra, sizeof ra, "%u", retry ? retry : 1);
                gw_respond_error(c, 429, "rate_limit_exceeded", "quota_exceeded", NULL, ra, "%s", msg);
                return false;
        }
        c->rec.bodies = gw_config_bodies(c->cfg, c->ns);
        if (c->rec.bodies)
                c->rec.request_body = strndup(q->body ? q->body : "", q->body_len);
        return true;
}

/* The caller hung up (its connection says so: activator/http.h) while we
 * wait on an upstream or stream its answer: stop the upstream now, not at
 * its timeout, and let the connection end. */
void gateway_hangup(Req *q) {
        GwCall *c = q->gw;
        if (!c || !c->watching)
                return;
        c->watching = false;
        call_cancel(c);
        attempt_release(c, NULL);
        snprintf(c->error_type, sizeof c->error_type, "client_closed");
        if (c->committed && !c->stream_ended) {
                c->stream_ended = true;
                c->final_status = 499;
                req_backend_done(c->q, false);
        } else if (!c->committed && !c->final_status)
                gw_respond_error(c, 499, "client_closed", NULL, NULL, NULL, "the caller left");
        finish(c);
}

void gateway_start(Req *q) {
        GwCall *c = q->gw;
        if (!c)
                return;
        if (c->models) {
                models_list(c);
                gw_call_free(c);
                return;
        }
        if (!admit(c)) {
                finish(c);
                return;
        }
        c->watching = true;      /* the caller's hang-up stops the call while it waits on us */
        attempt_next(c);
}

void gateway_abort(Req *q) {
        GwCall *c = q->gw;
        if (!c)
                return;
        if (c->call && c->stream_ended) {       /* answered; the upstream's end is awaited, on_done finishes */
                c->watching = false;
                return;
        }
        call_cancel(c);
        bool ok = true;
        attempt_release(c, c->stream_ended ? &ok : NULL);
        if (!c->committed && !c->final_status) {
                c->final_status = 499;
                snprintf(c->error_type, sizeof c->error_type, "client_closed");
        }
        finish(c);
}

void gateway_stop(Req *q) {
        GwCall *c = q->gw;
        if (!c)
                return;
        call_cancel(c);
        bool ok = c->final_status == 200;
        attempt_release(c, c->stream_ended ? &ok : NULL);
        if (c->committed && !c->stream_ended)
                stream_fail(c, "service_unavailable", "the activator is stopping");
        else if (!c->committed && !c->final_status)
                gw_respond_error(c, 503, "service_unavailable", "shutting_down", NULL, "1", "the activator is stopping; retry");
        finish(c);
}
