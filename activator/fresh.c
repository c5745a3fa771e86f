/* activator/fresh.c: fresh mode over the runtime's invoke socket
 * (docs/internals.md): HELLO once per connection, then INVOKE, STDIN and
 * GO for each request in one write (the body is not copied); RESULT, STDOUT
 * and END come back and stdout is streamed to the client as it arrives. */
#define _GNU_SOURCE
#include "activator/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static void on_write(uv_write_t *wr, int status) {
        Conn *c = wr->data;
        c->writing = false;
        if (status >= 0 && c->req)
                c->req->may_have_run = true;
        if (status < 0 && !c->closing)
                fresh_eof(c, status);
}

static int invoke_put(Conn *c, Req *q) {
        ProtoInvoke *inv = calloc(1, sizeof *inv);
        if (!inv)
                return -ENOMEM;
        const char *query = q->path.query ? q->path.query : "";
        snprintf(inv->instance, sizeof inv->instance, "%s", q->rt.slot->id);
        snprintf(inv->request_id, sizeof inv->request_id, "%s", q->reqid);
        snprintf(inv->traceparent, sizeof inv->traceparent, "%s", q->trace);
        snprintf(inv->method, sizeof inv->method, "%s", q->method);
        snprintf(inv->path, sizeof inv->path, "%.*s", (int) q->rt.sub_len, q->rt.sub_len ? q->rt.sub : "/");
        snprintf(inv->query, sizeof inv->query, "%s", query);
        inv->timeout_ms = q->rt.params.timeout_ms;
        inv->stderr_tail = q->want_stderr;
        snprintf(inv->session, sizeof inv->session, "%s", q->session);
        /* a broker call's depth (checked with its signature), for the
         * callee's own broker calls */
        const char *depth = http_header(q->conn, "X-Fnbox-Depth");
        if (depth && http_header(q->conn, "X-Fnbox-Broker-Auth"))
                inv->depth = (unsigned) atoi(depth) > PROTO_DEPTH_MAX ? PROTO_DEPTH_MAX : (unsigned) atoi(depth);
        int r = proto_put_invoke(&c->wbuf, inv);
        free(inv);
        return r;
}

int fresh_send(Conn *c) {
        Req *q = c->req;
        int r = 0;
        proto_buf_clear(&c->wbuf);
        if (!c->hello_sent)
                r = proto_put_hello(&c->wbuf, c->pool && strncmp(c->pool->addr, "tcp:", 4) == 0 ? c->b->secret : NULL);
        if (r >= 0)
                r = invoke_put(c, q);
        if (r < 0)
                return r;
        c->hello_sent = true;
        size_t n_chunks = (q->body_len + PROTO_CHUNK_MAX - 1) / PROTO_CHUNK_MAX, n = 0;
        free(c->iov);
        free(c->stdin_heads);
        c->iov = calloc(2 * n_chunks + 2, sizeof *c->iov);
        c->stdin_heads = calloc(n_chunks ? n_chunks : 1, sizeof *c->stdin_heads);
        if (!c->iov || !c->stdin_heads)
                return -ENOMEM;
        c->iov[n++] = uv_buf_init((char *) c->wbuf.data, (unsigned) c->wbuf.len);
        for (size_t i = 0; i < n_chunks; i++) {
                size_t off = i * PROTO_CHUNK_MAX, len = q->body_len - off < PROTO_CHUNK_MAX ? q->body_len - off : PROTO_CHUNK_MAX;
                uint32_t h[2] = { PROTO_STDIN, (uint32_t) len };
                memcpy(c->stdin_heads[i], h, sizeof h);
                c->iov[n++] = uv_buf_init((char *) c->stdin_heads[i], PROTO_HEADER_SIZE);
                c->iov[n++] = uv_buf_init(q->body + off, (unsigned) len);
        }
        uint32_t go[2] = { PROTO_GO, 0 };
        memcpy(c->go_head, go, sizeof go);
        c->iov[n++] = uv_buf_init((char *) c->go_head, PROTO_HEADER_SIZE);
        proto_reader_clear(&c->rd);
        proto_reply_clear(&c->reply);
        c->result_seen = c->result_ok = false;
        c->out_seen = c->err_seen = 0;
        c->deferred = ACT_OK;
        c->got_bytes = false;
        c->wreq.data = c;
        /* try it at once: most requests fit the socket buffer */
        int t = uv_try_write(&c->h.stream, c->iov, (unsigned) n);
        if (t == UV_EAGAIN)
                t = 0;
        if (t < 0)
                return t;
        size_t done = (size_t) t, k = 0;
        while (k < n && done >= c->iov[k].len)
                done -= c->iov[k++].len;
        if (k == n) {
                q->may_have_run = true;
                return 0;
        }
        c->iov[k].base += done;
        c->iov[k].len -= done;
        c->writing = true;
        return uv_write(&c->wreq, &c->h.stream, c->iov + k, (unsigned) (n - k), on_write);
}

/* RESULT: the box is done; answer now (or after its stdout). */
static int on_result(Conn *c, Req *q) {
        const JailResult *res = &c->reply.result;
        char msg[256];
        c->result_seen = true;
        ActError e = outcome_from_result((int) res->status, res->exit_code, res->signal, res->out.truncated, msg,
                                         sizeof msg);
        /* a session the node could not claim or prepare: say why (another
         * namespace's, already run, a bad archive: docs/sessions.md) */
        if (q && q->session[0] && res->status == JAIL_SETUP_ERROR && res->error[0]) {
                size_t n = strlen(msg);
                snprintf(msg + n, sizeof msg - n, ": %s", res->error);
        }
        if (q && e != ACT_OK && q->want_stderr && e != ACT_UNAVAILABLE && e != ACT_NODE_FAILED) {
                /* answered at END, with the stderr that comes before it */
                c->deferred = e;
                snprintf(c->deferred_msg, sizeof c->deferred_msg, "%s", msg);
                c->detail = (OutcomeDetail) { .has_signal = res->signal > 0, .signal = res->signal,
                                              .has_exit_code = res->status == JAIL_EXITED, .exit_code = res->exit_code };
                return 0;
        }
        if (q && e != ACT_OK) {
                req_fail(q, e, "%s", msg);
                conn_detach(c);         /* read on to END, then reuse */
                return 0;
        }
        c->result_ok = true;
        if (!q)
                return 0;
        HttpResponse *r = req_stream_response(q, c->reply.out_len);
        if (!r) {
                req_fail(q, ACT_INTERNAL, "out of memory");
                conn_detach(c);
                return 0;
        }
        http_response_header(r, "Content-Type", "application/octet-stream");
        req_start(q, r, 200);
        return 0;
}

static void on_refused(Conn *c, Req *q) {
        InvokeRefusal how = outcome_from_refusal(c->reply.exit_status);
        char text[PROTO_TEXT_MAX + 1];
        snprintf(text, sizeof text, "%s", c->reply.text);
        conn_close(c);                  /* detaches; never reused after an ERROR */
        if (!q || !q->conn)
                return;
        if (how == REFUSAL_FAIL)
                req_fail(q, ACT_NODE_FAILED, "the node failed to run the request: %s", text);
        else
                req_retry(q, how == REFUSAL_DROP_INSTANCE, NULL);
}

/* Keep the last OUTCOME_STDERR_MAX bytes of the box's stderr. Without
 * memory the answer goes without it. */
static void err_keep(Conn *c, const char *p, size_t n) {
        size_t max = OUTCOME_STDERR_MAX, have = c->detail.err_len;
        if (!c->err_tail && !(c->err_tail = malloc(max)))
                return;
        if (n >= max) {
                memcpy(c->err_tail, p + n - max, max);
                c->detail.err_len = max;
                return;
        }
        if (have + n > max) {
                memmove(c->err_tail, c->err_tail + (have + n - max), max - n);
                have = max - n;
        }
        memcpy(c->err_tail + have, p, n);
        c->detail.err_len = have + n;
}

/* One frame. Returns 0, 1 when the connection was closed or handed back,
 * or a negative errno for a protocol error. */
static int on_frame(Conn *c, const ProtoFrame *f) {
        Req *q = c->req;
        int r;
        if (!c->result_seen) {
                if ((r = proto_reply_feed(&c->reply, f)) < 0)
                        return r;
                if (c->reply.refused) {
                        q = c->req;
                        q ? q->refs++ : 0;
                        on_refused(c, q);
                        req_unref(q);
                        return 1;
                }
                return on_result(c, q);
        }
        if (f->type == PROTO_STDOUT) {
                if (c->out_seen + f->len > c->reply.out_len || c->err_seen)
                        return -EBADMSG;
                c->out_seen += f->len;
                if (q && c->result_ok && !req_out(q, (const char *) f->payload, f->len) && c->reading) {
                        uv_read_stop(&c->h.stream);
                        c->reading = false;
                }
                return 0;
        }
        if (f->type == PROTO_STDERR) {
                if (c->out_seen != c->reply.out_len || c->err_seen + f->len > c->reply.err_len)
                        return -EBADMSG;
                c->err_seen += f->len;
                if (q && c->deferred != ACT_OK)
                        err_keep(c, (const char *) f->payload, f->len);
                return 0;
        }
        if (f->type == PROTO_END && c->out_seen == c->reply.out_len && c->err_seen == c->reply.err_len) {
                if (q && c->deferred != ACT_OK) {
                        c->detail.err = c->err_tail;
                        req_fail_detail(q, c->deferred, c->deferred_msg, &c->detail);
                } else if (q)
                        req_backend_done(q, true);
                conn_finish(c, true);
                return 1;
        }
        return -EBADMSG;
}

void fresh_input(Conn *c, const char *data, size_t len) {
        while (len > 0 || c->rd.len > c->rd.start) {
                ProtoFrame f;
                int r = proto_reader_next(&c->rd, &f);
                if (r > 0) {
                        if ((r = on_frame(c, &f)) == 1) {
                                if (len > 0 && !c->closing && c->idle)
                                        fresh_eof(c, -EBADMSG);   /* bytes after END */
                                return;
                        }
                        if (r < 0) {
                                fresh_eof(c, r);
                                return;
                        }
                        continue;
                }
                if (r < 0) {
                        fresh_eof(c, r);
                        return;
                }
                if (len == 0)
                        return;
                uint8_t *space;
                size_t room;
                if ((r = proto_reader_space(&c->rd, &space, &room)) < 0) {
                        fresh_eof(c, r);
                        return;
                }
                size_t n = len < room ? len : room;
                memcpy(space, data, n);
                proto_reader_advance(&c->rd, n);
                data += n;
                len -= n;
        }
}

/* The connection broke (or spoke nonsense). Before GO went out the box
 * cannot have run: another instance. After: 502, no retry. */
void fresh_eof(Conn *c, int error) {
        Req *q = c->req;
        bool ok = c->result_ok, started = c->got_bytes || c->result_seen, reused = c->reused;
        Backends *b = c->b;
        if (q)
                q->refs++;
        conn_close(c);
        if (!q)
                return;
        if (q->conn && !started && !q->may_have_run && reused && q->reconnects++ < REQ_RECONNECTS_MAX)
                backend_start(b, q);    /* a pooled connection the node had closed */
        else if (q->conn && !started && !q->may_have_run)
                req_retry(q, false, "the connection to the node broke before the request was sent");
        else if (q->conn && !ok)
                req_fail(q, ACT_NODE_FAILED, "the connection to the node broke during the request (%s)",
                         error == UV_EOF ? "closed" : uv_strerror(error));
        else if (q->conn)
                req_fail(q, ACT_NODE_FAILED, "the node's answer was cut short (%s)",
                         error == UV_EOF ? "closed" : uv_strerror(error));
        req_unref(q);
}

/* runtime/proto.c's proto_reply_clear() calls jail_result_clear(), which
 * lives in runtime/jail.c, a file the activator does not link. Weak: the
 * runtime's own definition wins wherever it is linked in (a move of it into
 * jail_config.c is proposed to the runtime's owner). */
__attribute__((weak)) void jail_result_clear(JailResult *r) {
        free(r->out.data);
        free(r->err.data);
        memset(r, 0, sizeof *r);
}
