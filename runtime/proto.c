/* runtime/proto.c: encoding and size-checked decoding of the messages
 * between `fnbox-runtime run` and the runtime daemon (see proto.h). Nothing
 * that arrives is trusted: every length is checked against its bound before
 * anything is allocated or read, and strings must end where they say. */
#define _GNU_SOURCE
#include "proto.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>

#include "lib/util.h"

long proto_payload_max(uint32_t type) {
        switch (type) {
        case PROTO_RUN: return PROTO_RUN_MAX;
        case PROTO_STDIN: case PROTO_STDOUT: case PROTO_STDERR: return PROTO_CHUNK_MAX;
        case PROTO_GO: case PROTO_END: return 0;
        case PROTO_HELLO: return PROTO_HELLO_MAX;
        case PROTO_INVOKE: return PROTO_INVOKE_MAX;
        case PROTO_RESULT: return 64 + sizeof ((JailResult *) 0)->error;
        case PROTO_ERROR: return 8 + PROTO_TEXT_MAX + 1;
        default: return -EBADMSG;
        }
}

/* ----- encoding ----- */

void proto_buf_clear(ProtoBuf *b) {
        free(b->data);
        *b = (ProtoBuf) { 0 };
}

static int buf_put(ProtoBuf *b, const void *p, size_t n) {
        if (n > PROTO_RUN_MAX + PROTO_HEADER_SIZE || b->len + n > PROTO_RUN_MAX + 2 * PROTO_HEADER_SIZE)
                return -EMSGSIZE;
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n)
                        cap *= 2;
                uint8_t *d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

static int put_u32(ProtoBuf *b, uint32_t v) { return buf_put(b, &v, sizeof v); }
static int put_u64(ProtoBuf *b, uint64_t v) { return buf_put(b, &v, sizeof v); }

/* A string: u32 length, the bytes, and a NUL that the decoder checks. */
static int put_str(ProtoBuf *b, const char *s) {
        size_t n = s ? strlen(s) : 0;
        int r;
        if (n > UINT32_MAX)
                return -EMSGSIZE;
        if ((r = put_u32(b, (uint32_t) n)) < 0 || (r = buf_put(b, s ? s : "", n)) < 0)
                return r;
        return buf_put(b, "", 1);
}

int proto_put_frame(ProtoBuf *b, uint32_t type, const void *payload, size_t len) {
        long max = proto_payload_max(type);
        if (max < 0 || len > (size_t) max)
                return -EMSGSIZE;
        int r = put_u32(b, type);
        if (r >= 0)
                r = put_u32(b, (uint32_t) len);
        return r < 0 ? r : buf_put(b, payload, len);
}

/* Start a frame whose length is known only at its end. */
static size_t frame_begin(ProtoBuf *b, uint32_t type, int *r) {
        size_t at = b->len;
        if (*r >= 0)
                *r = put_u32(b, type);
        if (*r >= 0)
                *r = put_u32(b, 0);
        return at;
}

static int frame_end(ProtoBuf *b, size_t at, int r) {
        if (r < 0)
                return r;
        uint32_t type, len = (uint32_t) (b->len - at - PROTO_HEADER_SIZE);
        memcpy(&type, b->data + at, sizeof type);
        if (len > (size_t) proto_payload_max(type))
                return -EMSGSIZE;
        memcpy(b->data + at + 4, &len, sizeof len);
        return 0;
}

int proto_put_run(ProtoBuf *b, const JailConfig *c, uid_t uid, const char *cgroup_parent) {
        const JailLimits *l = &c->limits;
        const uint64_t limits[] = { l->memory_bytes, l->timeout_ns, l->cpu_millis, l->pids, l->tmp_bytes,
                                    l->tmp_inodes, l->output_bytes, l->fsize_bytes, l->nofile, l->stack_bytes };
        int r = 0;
        size_t at = frame_begin(b, PROTO_RUN, &r);
        const uint32_t head[] = { PROTO_VERSION, (uint32_t) c->runtime, (uint32_t) uid, 0,
                                  (uint32_t) c->n_args, (uint32_t) c->n_env };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(head); i++)
                r = put_u32(b, head[i]);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(limits); i++)
                r = put_u64(b, limits[i]);
        if (r >= 0 && (r = put_str(b, c->code)) >= 0 && (r = put_str(b, c->entry)) >= 0)
                r = put_str(b, cgroup_parent);
        for (size_t i = 0; r >= 0 && i < c->n_args; i++)
                r = put_str(b, c->args[i]);
        for (size_t i = 0; r >= 0 && i < c->n_env; i++)
                r = put_str(b, c->env[i]);
        return frame_end(b, at, r);
}

int proto_put_result(ProtoBuf *b, const JailResult *res) {
        int r = 0;
        size_t at = frame_begin(b, PROTO_RESULT, &r);
        const uint32_t head[] = { (uint32_t) res->status, (uint32_t) res->exit_code, (uint32_t) res->signal,
                                  (res->out.truncated ? 1u : 0u) | (res->err.truncated ? 2u : 0u) };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(head); i++)
                r = put_u32(b, head[i]);
        if (r >= 0)
                r = buf_put(b, &res->wall_ms, sizeof(double));
        if (r >= 0)
                r = buf_put(b, &res->cpu_ms, sizeof(double));
        if (r >= 0 && (r = put_u64(b, (uint64_t) res->max_rss_kb)) >= 0 && (r = put_u64(b, res->out.len)) >= 0)
                r = put_u64(b, res->err.len);
        if (r >= 0)
                r = put_str(b, res->error);
        return frame_end(b, at, r);
}

int proto_put_error(ProtoBuf *b, int exit_status, const char *text) {
        char line[PROTO_TEXT_MAX + 1];
        snprintf(line, sizeof line, "%s", text);
        line[strcspn(line, "\n")] = 0;
        int r = 0;
        size_t at = frame_begin(b, PROTO_ERROR, &r);
        if (r >= 0 && (r = put_u32(b, (uint32_t) exit_status)) >= 0)
                r = put_str(b, line);
        return frame_end(b, at, r);
}

/* ----- decoding ----- */

typedef struct Cursor {
        const uint8_t *p;
        size_t left;
} Cursor;

static int get_bytes(Cursor *c, void *ret, size_t n) {
        if (c->left < n)
                return -EBADMSG;
        memcpy(ret, c->p, n);
        c->p += n;
        c->left -= n;
        return 0;
}

static int get_u32(Cursor *c, uint32_t *v) { return get_bytes(c, v, sizeof *v); }
static int get_u64(Cursor *c, uint64_t *v) { return get_bytes(c, v, sizeof *v); }

/* A string of at most max bytes, NUL-terminated in place, no NUL inside. */
static int get_str(Cursor *c, size_t max, const char **ret) {
        uint32_t n;
        if (get_u32(c, &n) < 0 || n > max || (size_t) n + 1 > c->left)
                return -EBADMSG;
        if (c->p[n] != 0 || memchr(c->p, 0, n))
                return -EBADMSG;
        *ret = (const char *) c->p;
        c->p += (size_t) n + 1;
        c->left -= (size_t) n + 1;
        return 0;
}

static int get_strv(Cursor *c, uint32_t n, char ***ret) {
        char **v = calloc((size_t) n + 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        *ret = v;
        for (uint32_t i = 0; i < n; i++)
                if (get_str(c, PROTO_ARG_MAX, (const char **) &v[i]) < 0)
                        return -EBADMSG;
        return 0;
}

int proto_run_decode(const uint8_t *p, size_t len, ProtoRequest *q) {
        Cursor c = { p, len };
        uint32_t head[6];
        uint64_t lim[10];
        const char *cg;
        for (size_t i = 0; i < ELEMENTSOF(head); i++)
                if (get_u32(&c, &head[i]) < 0)
                        return -EBADMSG;
        if (head[0] != PROTO_VERSION || head[1] >= _JAIL_RUNTIME_MAX || head[3] != 0 ||
            head[4] > PROTO_ARGS_MAX || head[5] > PROTO_ENV_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < ELEMENTSOF(lim); i++)
                if (get_u64(&c, &lim[i]) < 0)
                        return -EBADMSG;
        JailConfig *cfg = &q->cfg;
        jail_config_init(cfg);
        cfg->runtime = (JailRuntime) head[1];
        cfg->limits = (JailLimits) { lim[0], lim[1], lim[2], lim[3], lim[4], lim[5], lim[6], lim[7], lim[8], lim[9] };
        q->uid = (uid_t) head[2];
        if (get_str(&c, PROTO_PATH_MAX, &cfg->code) < 0 || get_str(&c, PROTO_PATH_MAX, &cfg->entry) < 0 ||
            get_str(&c, PROTO_PATH_MAX, &cg) < 0)
                return -EBADMSG;
        if (!*cfg->entry)
                cfg->entry = NULL;
        q->cgroup_parent = *cg ? cg : NULL;
        int r = get_strv(&c, head[4], &q->args);
        if (r < 0 || (r = get_strv(&c, head[5], &q->env)) < 0)
                return r;
        if (c.left != 0)
                return -EBADMSG; /* trailing bytes */
        cfg->args = q->args;
        cfg->n_args = head[4];
        cfg->env = q->env;
        cfg->n_env = head[5];
        return 0;
}

/* ----- the reader ----- */

/* The header at the read position, checked: 0 when not all there yet. */
static int reader_header(const ProtoReader *r, uint32_t *type, uint32_t *len) {
        if (r->len - r->start < PROTO_HEADER_SIZE)
                return 0;
        memcpy(type, r->buf + r->start, 4);
        memcpy(len, r->buf + r->start + 4, 4);
        long max = proto_payload_max(*type);
        if (max < 0)
                return -EBADMSG;
        if (*len > (unsigned long) max)
                return -EMSGSIZE;
        return 1;
}

int proto_reader_space(ProtoReader *r, uint8_t **ret, size_t *ret_len) {
        uint32_t type, len;
        int h = reader_header(r, &type, &len);
        if (h < 0)
                return h;
        size_t frame = h ? PROTO_HEADER_SIZE + len : PROTO_HEADER_SIZE;
        size_t have = r->len - r->start;
        if (have >= frame)
                return -EAGAIN; /* a whole frame waits: take it first */
        if (r->start > 0) {
                memmove(r->buf, r->buf + r->start, have);
                r->len = have;
                r->start = 0;
        }
        if (frame > r->cap) {
                uint8_t *b = realloc(r->buf, frame);
                if (!b)
                        return -ENOMEM;
                r->buf = b;
                r->cap = frame;
        }
        *ret = r->buf + r->len;
        *ret_len = frame - r->len;
        return 0;
}

void proto_reader_advance(ProtoReader *r, size_t n) { r->len += n; }

int proto_reader_next(ProtoReader *r, ProtoFrame *ret) {
        uint32_t type, len;
        int h = reader_header(r, &type, &len);
        if (h <= 0)
                return h;
        if (r->len - r->start < PROTO_HEADER_SIZE + (size_t) len)
                return 0;
        *ret = (ProtoFrame) { type, len, r->buf + r->start + PROTO_HEADER_SIZE };
        r->start += PROTO_HEADER_SIZE + (size_t) len;
        return 1;
}

void proto_reader_clear(ProtoReader *r) {
        free(r->buf);
        *r = (ProtoReader) { 0 };
}

/* ----- the request ----- */

/* Append a STDIN piece to a growing body, never past max bytes. */
static int stdin_add(char **data, size_t *len, size_t *cap, uint64_t max, const ProtoFrame *f) {
        if ((uint64_t) *len + f->len > max)
                return -EFBIG;
        if (*len + f->len > *cap) {
                size_t c = *cap ? *cap : 65536;
                while (c < *len + f->len)
                        c *= 2;
                char *d = realloc(*data, c);
                if (!d)
                        return -ENOMEM;
                *data = d;
                *cap = c;
        }
        if (f->len)
                memcpy(*data + *len, f->payload, f->len);
        *len += f->len;
        return 0;
}

static int request_stdin(ProtoRequest *q, const ProtoFrame *f) {
        return stdin_add(&q->stdin_data, &q->stdin_len, &q->stdin_cap, JAIL_STDIN_MAX, f);
}

int proto_request_feed(ProtoRequest *q, const ProtoFrame *f) {
        int r;
        if (q->state == 0 && f->type == PROTO_RUN) {
                if (!(q->run = malloc(f->len ? f->len : 1)))
                        return -ENOMEM;
                memcpy(q->run, f->payload, f->len);
                if ((r = proto_run_decode(q->run, f->len, q)) < 0)
                        return r;
                q->state = PROTO_STDIN;
                return 0;
        }
        if (q->state == PROTO_STDIN && f->type == PROTO_STDIN)
                return request_stdin(q, f);
        if (q->state == PROTO_STDIN && f->type == PROTO_GO) {
                q->state = PROTO_GO;
                q->cfg.stdin_data = q->stdin_data;
                q->cfg.stdin_len = q->stdin_len;
                return 1;
        }
        return -EBADMSG;
}

void proto_request_clear(ProtoRequest *q) {
        free(q->run);
        free(q->args);
        free(q->env);
        free(q->stdin_data);
        *q = (ProtoRequest) { 0 };
}

/* ----- the reply, client side ----- */

void proto_reply_init(ProtoReply *p) {
        *p = (ProtoReply) { .state = PROTO_RESULT };
}

static int result_decode(ProtoReply *p, const ProtoFrame *f) {
        Cursor c = { f->payload, f->len };
        uint32_t head[4];
        uint64_t rss, out_len, err_len;
        double wall, cpu;
        const char *error;
        JailResult *r = &p->result;
        for (size_t i = 0; i < ELEMENTSOF(head); i++)
                if (get_u32(&c, &head[i]) < 0)
                        return -EBADMSG;
        if (get_bytes(&c, &wall, sizeof wall) < 0 || get_bytes(&c, &cpu, sizeof cpu) < 0 ||
            get_u64(&c, &rss) < 0 || get_u64(&c, &out_len) < 0 || get_u64(&c, &err_len) < 0 ||
            get_str(&c, sizeof r->error - 1, &error) < 0 || c.left != 0)
                return -EBADMSG;
        if (head[0] >= _JAIL_STATUS_MAX || head[1] > 255 || head[2] > 64 || (head[3] & ~3u) ||
            out_len > PROTO_OUTPUT_MAX || err_len > PROTO_OUTPUT_MAX || rss > (1ULL << 40) ||
            !isfinite(wall) || !isfinite(cpu) || wall < 0 || cpu < 0)
                return -EBADMSG;
        *r = (JailResult) { .status = (JailStatus) head[0], .exit_code = (int) head[1], .signal = (int) head[2],
                            .wall_ms = wall, .cpu_ms = cpu, .max_rss_kb = (long) rss };
        r->out.truncated = head[3] & 1;
        r->err.truncated = head[3] & 2;
        snprintf(r->error, sizeof r->error, "%s", error);
        p->out_len = out_len;
        p->err_len = err_len;
        return 0;
}

static int error_decode(ProtoReply *p, const ProtoFrame *f) {
        Cursor c = { f->payload, f->len };
        uint32_t status;
        const char *text;
        if (get_u32(&c, &status) < 0 || status < 1 || status > 255 ||
            get_str(&c, PROTO_TEXT_MAX, &text) < 0 || c.left != 0)
                return -EBADMSG;
        p->refused = true;
        p->exit_status = (int) status;
        snprintf(p->text, sizeof p->text, "%s", text);
        return 0;
}

/* Append a piece of output, never past what RESULT announced. */
static int output_add(JailOutput *o, uint64_t announced, const ProtoFrame *f) {
        if (o->len + f->len > announced)
                return -EBADMSG;
        if (!o->data && !(o->data = malloc(announced + 1)))
                return -ENOMEM;
        memcpy(o->data + o->len, f->payload, f->len);
        o->len += f->len;
        o->data[o->len] = 0;
        return 0;
}

int proto_reply_feed(ProtoReply *p, const ProtoFrame *f) {
        int r;
        if (p->state == PROTO_RESULT) {
                if (f->type == PROTO_ERROR)
                        return (r = error_decode(p, f)) < 0 ? r : (p->state = PROTO_END, 1);
                if (f->type != PROTO_RESULT)
                        return -EBADMSG;
                if ((r = result_decode(p, f)) < 0)
                        return r;
                p->state = PROTO_STDOUT;
                return 0;
        }
        if (p->state == PROTO_STDOUT && f->type == PROTO_STDERR && p->result.out.len == p->out_len)
                p->state = PROTO_STDERR;
        if (p->state == PROTO_STDOUT && f->type == PROTO_STDOUT)
                return output_add(&p->result.out, p->out_len, f);
        if (p->state == PROTO_STDERR && f->type == PROTO_STDERR)
                return output_add(&p->result.err, p->err_len, f);
        if ((p->state == PROTO_STDOUT || p->state == PROTO_STDERR) && f->type == PROTO_END &&
            p->result.out.len == p->out_len && p->result.err.len == p->err_len) {
                p->state = PROTO_END;
                return 1;
        }
        return -EBADMSG;
}

void proto_reply_clear(ProtoReply *p) {
        jail_result_clear(&p->result);
        proto_reply_init(p);
}

/* ----- the reply, daemon side ----- */

static int chunk(ProtoReplyWriter *w, uint32_t type, const JailOutput *o, uint8_t *head, struct iovec iov[2]) {
        size_t n = o->len - w->off;
        if (n > PROTO_CHUNK_MAX)
                n = PROTO_CHUNK_MAX;
        uint32_t h[2] = { type, (uint32_t) n };
        memcpy(head, h, sizeof h);
        iov[0] = (struct iovec) { head, PROTO_HEADER_SIZE };
        iov[1] = (struct iovec) { o->data + w->off, n };
        w->off += n;
        return 2;
}

/* One frame into iov, which has room slots, its header in head: the number
 * of iovecs, 0 when the reply is all given, -ENOBUFS when the frame needs
 * more room. */
static int reply_frame(ProtoReplyWriter *w, uint8_t *head, struct iovec *iov, int room) {
        if (room < 1)
                return -ENOBUFS;
        for (;;)
                switch (w->phase) {
                case 0: {
                        JailResult announced = *w->r;
                        if (w->no_stderr)
                                announced.err = (JailOutput) { 0 };
                        int r = proto_put_result(&w->fixed, &announced);
                        if (r < 0)
                                return r;
                        w->phase = 1;
                        iov[0] = (struct iovec) { w->fixed.data, w->fixed.len };
                        return 1;
                }
                case 1:
                case 2: {
                        const JailOutput *o = w->phase == 1 ? &w->r->out : &w->r->err;
                        if (w->off < o->len && !(w->phase == 2 && w->no_stderr))
                                return room < 2 ? -ENOBUFS
                                                : chunk(w, w->phase == 1 ? PROTO_STDOUT : PROTO_STDERR, o, head, iov);
                        w->phase++;
                        w->off = 0;
                        break;
                }
                case 3: {
                        uint32_t h[2] = { PROTO_END, 0 };
                        memcpy(head, h, sizeof h);
                        iov[0] = (struct iovec) { head, PROTO_HEADER_SIZE };
                        w->phase = 4;
                        return 1;
                }
                default:
                        return 0;
                }
}

int proto_reply_next(ProtoReplyWriter *w, struct iovec iov[PROTO_REPLY_IOV]) {
        int n = 0;
        unsigned heads = 0;
        while (heads < PROTO_REPLY_IOV / 2) {
                int r = reply_frame(w, w->heads[heads], iov + n, PROTO_REPLY_IOV - n);
                if (r == -ENOBUFS || r == 0)
                        break;
                if (r < 0)
                        return n > 0 ? n : r;
                heads += iov[n].iov_base == (void *) w->heads[heads];
                n += r;
        }
        return n;
}

void proto_reply_writer_clear(ProtoReplyWriter *w) {
        proto_buf_clear(&w->fixed);
        *w = (ProtoReplyWriter) { 0 };
}

/* ----- the invoke socket ----- */

static int put_json_frame(ProtoBuf *b, uint32_t type, json_t *o) {
        if (!o)
                return -ENOMEM;
        char *text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!text)
                return -ENOMEM;
        int r = proto_put_frame(b, type, text, strlen(text));
        free(text);
        return r;
}

int proto_put_hello(ProtoBuf *b, const char *secret) {
        if (secret && strlen(secret) > PROTO_SECRET_MAX)
                return -EMSGSIZE;
        json_t *o = json_pack("{s:i}", "version", PROTO_VERSION);
        if (o && secret && *secret && json_object_set_new(o, "secret", json_string(secret)) < 0)
                o = (json_decref(o), NULL);
        return put_json_frame(b, PROTO_HELLO, o);
}

/* A JSON object from a payload: strict (no duplicate keys, no trailing
 * bytes), at most max bytes. */
static json_t *json_payload(const uint8_t *p, size_t len, size_t max) {
        if (len == 0 || len > max)
                return NULL;
        json_t *o = json_loadb((const char *) p, len, JSON_REJECT_DUPLICATES, NULL);
        if (o && !json_is_object(o))
                o = (json_decref(o), NULL);
        return o;
}

/* Copy a JSON string of at most max bytes with no control character (and
 * no NUL) into out; a missing key leaves out as it is. */
static int get_json_str(json_t *o, const char *key, char *out, size_t max) {
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EBADMSG;
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        if (n > max)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return -EBADMSG;
        memcpy(out, s, n);
        out[n] = 0;
        return 0;
}

static bool only_keys(json_t *o, const char *const *keys, size_t n) {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
                bool known = false;
                for (size_t i = 0; i < n && !known; i++)
                        known = strcmp(k, keys[i]) == 0;
                if (!known)
                        return false;
        }
        return true;
}

int proto_hello_decode(const uint8_t *p, size_t len, ProtoHello *ret) {
        static const char *const keys[] = { "version", "secret" };
        json_t *o = json_payload(p, len, PROTO_HELLO_MAX);
        ProtoHello h = { 0 };
        int r = -EBADMSG;
        json_t *v = o ? json_object_get(o, "version") : NULL;
        if (o && only_keys(o, keys, ELEMENTSOF(keys)) && json_is_integer(v) &&
            get_json_str(o, "secret", h.secret, PROTO_SECRET_MAX) >= 0) {
                r = json_integer_value(v) == PROTO_VERSION ? 0 : -EPROTONOSUPPORT;
                h.version = (uint32_t) PROTO_VERSION;
        }
        json_decref(o);
        if (r >= 0)
                *ret = h;
        return r;
}

int proto_put_invoke(ProtoBuf *b, const ProtoInvoke *inv) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "instance", inv->instance,
                              "method", inv->method[0] ? inv->method : "POST", "path", inv->path[0] ? inv->path : "/");
        const struct { const char *k, *v; } opt[] = {
                { "requestId", inv->request_id }, { "traceparent", inv->traceparent }, { "query", inv->query },
                { "session", inv->session },
        };
        for (size_t i = 0; o && i < ELEMENTSOF(opt); i++)
                if (opt[i].v[0] && json_object_set_new(o, opt[i].k, json_string(opt[i].v)) < 0)
                        o = (json_decref(o), NULL);
        if (o && inv->timeout_ms && json_object_set_new(o, "timeoutMs", json_integer((json_int_t) inv->timeout_ms)) < 0)
                o = (json_decref(o), NULL);
        if (o && inv->depth && json_object_set_new(o, "depth", json_integer((json_int_t) inv->depth)) < 0)
                o = (json_decref(o), NULL);
        /* only when asked: a runtime older than the key refuses it */
        if (o && inv->stderr_tail && json_object_set_new(o, "stderr", json_true()) < 0)
                o = (json_decref(o), NULL);
        return put_json_frame(b, PROTO_INVOKE, o);
}

bool proto_session_valid(const char *s) {
        if (strlen(s) != PROTO_SESSION_MAX || strncmp(s, "s-", 2) != 0)
                return false;
        for (const char *c = s + 2; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return false;
        return true;
}

/* An HTTP method: a token (RFC 9110), upper-case letters in practice. */
static bool method_valid(const char *m) {
        if (!*m)
                return false;
        for (const char *c = m; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                      strchr("!#$%&'*+-.^_`|~", *c)))
                        return false;
        return true;
}

static int invoke_fields(json_t *o, ProtoInvoke *inv) {
        static const char *const keys[] = { "instance", "requestId", "traceparent", "method", "path", "query",
                                            "timeoutMs", "depth", "stderr", "session" };
        if (!only_keys(o, keys, ELEMENTSOF(keys)) || !json_is_string(json_object_get(o, "instance")) ||
            get_json_str(o, "instance", inv->instance, PROTO_ID_MAX) < 0 || !inv->instance[0] ||
            get_json_str(o, "requestId", inv->request_id, PROTO_REQID_MAX) < 0 ||
            get_json_str(o, "traceparent", inv->traceparent, PROTO_TRACE_MAX) < 0 ||
            get_json_str(o, "method", inv->method, PROTO_METHOD_MAX) < 0 || !method_valid(inv->method) ||
            get_json_str(o, "path", inv->path, PROTO_URLPART_MAX) < 0 || inv->path[0] != '/' ||
            get_json_str(o, "query", inv->query, PROTO_URLPART_MAX) < 0 ||
            get_json_str(o, "session", inv->session, PROTO_SESSION_MAX) < 0 ||
            (inv->session[0] && !proto_session_valid(inv->session)))
                return -EBADMSG;
        json_t *t = json_object_get(o, "timeoutMs");
        if (t && !json_is_null(t)) {
                if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                    (uint64_t) json_integer_value(t) > PROTO_TIMEOUT_MS_MAX)
                        return -EBADMSG;
                inv->timeout_ms = (uint64_t) json_integer_value(t);
        }
        json_t *d = json_object_get(o, "depth");
        if (d && !json_is_null(d)) {
                if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > PROTO_DEPTH_MAX)
                        return -EBADMSG;
                inv->depth = (unsigned) json_integer_value(d);
        }
        json_t *e = json_object_get(o, "stderr");
        if (e && !json_is_null(e)) {
                if (!json_is_boolean(e))
                        return -EBADMSG;
                inv->stderr_tail = json_is_true(e);
        }
        return 0;
}

int proto_invoke_decode(const uint8_t *p, size_t len, ProtoInvoke *ret) {
        json_t *o = json_payload(p, len, PROTO_INVOKE_MAX);
        if (!o)
                return -EBADMSG;
        ProtoInvoke *inv = calloc(1, sizeof *inv);
        if (!inv) {
                json_decref(o);
                return -ENOMEM;
        }
        strcpy(inv->method, "POST");
        strcpy(inv->path, "/");
        int r = invoke_fields(o, inv);
        json_decref(o);
        if (r >= 0)
                *ret = *inv;
        free(inv);
        return r;
}

int proto_invoke_feed(ProtoInvokeRequest *q, const ProtoFrame *f) {
        int r;
        if (q->state == 0 && f->type == PROTO_INVOKE) {
                if ((r = proto_invoke_decode(f->payload, f->len, &q->inv)) < 0)
                        return r;
                q->state = PROTO_STDIN;
                return 0;
        }
        if (q->state == PROTO_STDIN && f->type == PROTO_STDIN)
                return stdin_add(&q->stdin_data, &q->stdin_len, &q->stdin_cap,
                                 q->stdin_max ? q->stdin_max : JAIL_STDIN_MAX, f);
        if (q->state == PROTO_STDIN && f->type == PROTO_GO) {
                q->state = PROTO_GO;
                return 1;
        }
        return -EBADMSG;
}

void proto_invoke_request_clear(ProtoInvokeRequest *q) {
        uint64_t max = q->stdin_max;
        free(q->stdin_data);
        memset(q, 0, sizeof *q);
        q->stdin_max = max;
}
