/* activator/gateway/openai.c: the OpenAI wire format (see openai.h). */
#define _GNU_SOURCE
#include "activator/gateway/openai.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
        const char *path, *name;
} endpoints[_OAI_ENDPOINT_MAX] = {
        [OAI_CHAT] = { "/chat/completions", "chat.completions" },
        [OAI_COMPLETIONS] = { "/completions", "completions" },
        [OAI_EMBEDDINGS] = { "/embeddings", "embeddings" },
};

const char *oai_endpoint_path(OaiEndpoint e) {
        return (unsigned) e < _OAI_ENDPOINT_MAX ? endpoints[e].path : "";
}

const char *oai_endpoint_name(OaiEndpoint e) {
        return (unsigned) e < _OAI_ENDPOINT_MAX ? endpoints[e].name : "";
}

static int bad(char *msg, size_t msg_len, char *param, size_t param_len, const char *p, const char *m) {
        snprintf(msg, msg_len, "%s", m);
        snprintf(param, param_len, "%s", p);
        return -EINVAL;
}

/* A content: a string, null, or an array of parts (objects). */
static bool content_ok(const json_t *c) {
        if (!c || json_is_string(c) || json_is_null(c))
                return true;
        if (!json_is_array(c))
                return false;
        size_t i;
        json_t *part;
        json_array_foreach(c, i, part) if (!json_is_object(part)) return false;
        return true;
}

static int messages_check(const json_t *msgs, char *msg, size_t msg_len, char *param, size_t param_len) {
        if (!msgs)
                return bad(msg, msg_len, param, param_len, "messages", "messages is required");
        if (!json_is_array(msgs) || json_array_size(msgs) == 0)
                return bad(msg, msg_len, param, param_len, "messages", "messages must be a non-empty array");
        if (json_array_size(msgs) > OAI_MESSAGES_MAX)
                return bad(msg, msg_len, param, param_len, "messages", "too many messages");
        size_t i;
        json_t *m;
        char p[64];
        json_array_foreach(msgs, i, m) {
                snprintf(p, sizeof p, "messages[%zu]", i);
                if (!json_is_object(m))
                        return bad(msg, msg_len, param, param_len, p, "each message must be an object");
                const char *role = json_string_value(json_object_get(m, "role"));
                if (!role || !*role) {
                        snprintf(p, sizeof p, "messages[%zu].role", i);
                        return bad(msg, msg_len, param, param_len, p, "each message needs a role (a string)");
                }
                if (!content_ok(json_object_get(m, "content"))) {
                        snprintf(p, sizeof p, "messages[%zu].content", i);
                        return bad(msg, msg_len, param, param_len, p, "content must be a string, an array of parts or null");
                }
        }
        return 0;
}

/* prompt / input: a string, an array of strings, or of token arrays. */
static bool text_input_ok(const json_t *v) {
        if (json_is_string(v))
                return true;
        if (!json_is_array(v) || json_array_size(v) == 0)
                return false;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
                if (json_is_string(x) || json_is_integer(x))
                        continue;
                if (!json_is_array(x))
                        return false;
                size_t k;
                json_t *t;
                json_array_foreach(x, k, t) if (!json_is_integer(t)) return false;
        }
        return true;
}

static int max_tokens_check(const json_t *body, uint64_t limit, OaiRequest *r, char *msg, size_t msg_len, char *param,
                            size_t param_len) {
        static const char *const names[] = { "max_tokens", "max_completion_tokens" };
        for (size_t i = 0; i < 2; i++) {
                const json_t *v = json_object_get(body, names[i]);
                if (!v || json_is_null(v))
                        continue;
                if (!json_is_integer(v))
                        return bad(msg, msg_len, param, param_len, names[i], "must be an integer");
                json_int_t n = json_integer_value(v);
                if (n < 1) {
                        snprintf(msg, msg_len, "%s must be at least 1 (got %lld)", names[i], (long long) n);
                        snprintf(param, param_len, "%s", names[i]);
                        return -EINVAL;
                }
                if ((uint64_t) n > limit) {
                        snprintf(msg, msg_len, "%s is %lld; this gateway allows at most %llu", names[i], (long long) n,
                                 (unsigned long long) limit);
                        snprintf(param, param_len, "%s", names[i]);
                        return -EINVAL;
                }
                r->has_max_tokens = true;
                r->max_tokens = (uint64_t) n;
        }
        return 0;
}

static int stream_check(OaiEndpoint e, const json_t *body, OaiRequest *r, char *msg, size_t msg_len, char *param,
                        size_t param_len) {
        const json_t *s = json_object_get(body, "stream"), *so = json_object_get(body, "stream_options");
        if (s && !json_is_null(s) && !json_is_boolean(s))
                return bad(msg, msg_len, param, param_len, "stream", "stream must be true or false");
        r->stream = json_is_true(s);
        if (r->stream && e == OAI_EMBEDDINGS)
                return bad(msg, msg_len, param, param_len, "stream", "embeddings are not streamed");
        if (so && !json_is_null(so)) {
                if (!json_is_object(so))
                        return bad(msg, msg_len, param, param_len, "stream_options", "stream_options must be an object");
                if (!r->stream)
                        return bad(msg, msg_len, param, param_len, "stream_options",
                                   "stream_options is only allowed with stream: true");
                const json_t *iu = json_object_get(so, "include_usage");
                if (iu && !json_is_boolean(iu))
                        return bad(msg, msg_len, param, param_len, "stream_options.include_usage", "must be true or false");
                r->include_usage = json_is_true(iu);
        }
        return 0;
}

/* Numbers that upstreams choke on, refused here with the field named. */
static int numbers_check(const json_t *body, char *msg, size_t msg_len, char *param, size_t param_len) {
        static const struct { const char *k; double lo, hi; } t[] = {
                { "temperature", 0, 2 }, { "top_p", 0, 1 }, { "presence_penalty", -2, 2 },
                { "frequency_penalty", -2, 2 }, { "n", 1, 128 },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                const json_t *v = json_object_get(body, t[i].k);
                if (!v || json_is_null(v))
                        continue;
                if (!json_is_number(v)) {
                        snprintf(msg, msg_len, "%s must be a number", t[i].k);
                        snprintf(param, param_len, "%s", t[i].k);
                        return -EINVAL;
                }
                double d = json_number_value(v);
                if (!(d >= t[i].lo && d <= t[i].hi)) {
                        snprintf(msg, msg_len, "%s must be from %g to %g", t[i].k, t[i].lo, t[i].hi);
                        snprintf(param, param_len, "%s", t[i].k);
                        return -EINVAL;
                }
        }
        return 0;
}

int oai_request_check(OaiEndpoint e, const json_t *body, uint64_t max_tokens_limit, OaiRequest *ret, char *msg,
                      size_t msg_len, char *param, size_t param_len) {
        OaiRequest r = { 0 };
        if (!json_is_object(body))
                return bad(msg, msg_len, param, param_len, "", "the body must be a JSON object");
        const json_t *model = json_object_get(body, "model");
        if (!model)
                return bad(msg, msg_len, param, param_len, "model", "model is required");
        if (!json_is_string(model) || json_string_length(model) == 0)
                return bad(msg, msg_len, param, param_len, "model", "model must be a non-empty string");
        if (json_string_length(model) >= sizeof r.model)
                return bad(msg, msg_len, param, param_len, "model", "model is too long");
        snprintf(r.model, sizeof r.model, "%s", json_string_value(model));
        int k;
        if (e == OAI_CHAT && (k = messages_check(json_object_get(body, "messages"), msg, msg_len, param, param_len)) < 0)
                return k;
        if (e == OAI_COMPLETIONS && !text_input_ok(json_object_get(body, "prompt")))
                return bad(msg, msg_len, param, param_len, "prompt",
                           "prompt is required: a string or an array of strings or token arrays");
        if (e == OAI_EMBEDDINGS && !text_input_ok(json_object_get(body, "input")))
                return bad(msg, msg_len, param, param_len, "input",
                           "input is required: a string or an array of strings or token arrays");
        if ((k = stream_check(e, body, &r, msg, msg_len, param, param_len)) < 0 ||
            (k = max_tokens_check(body, max_tokens_limit, &r, msg, msg_len, param, param_len)) < 0 ||
            (k = numbers_check(body, msg, msg_len, param, param_len)) < 0)
                return k;
        r.prompt_tokens = oai_prompt_tokens(e, body);
        *ret = r;
        return 0;
}

char *oai_error_json(const char *message, const char *type, const char *param, const char *code, size_t *ret_len) {
        json_t *o = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", message ? message : "", "type",
                              type ? type : "api_error", "param", param && *param ? json_string(param) : json_null(),
                              "code", code ? json_string(code) : json_null());
        if (!o)
                return NULL;
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        char *t = realloc(s, n + 2);
        if (!t) {
                free(s);
                return NULL;
        }
        t[n] = '\n';
        t[n + 1] = 0;
        *ret_len = n + 1;
        return t;
}

uint64_t oai_estimate_tokens(size_t text_bytes) {
        return (text_bytes + 3) / 4;
}

/* Bytes of every string in v (recursively), keys excluded; integers in
 * arrays (token ids) count a token (4 bytes) each. */
static size_t text_bytes(const json_t *v, unsigned depth) {
        size_t n = 0, i;
        const char *k;
        json_t *x;
        if (depth > 32)
                return 0;
        if (json_is_string(v))
                return json_string_length(v);
        if (json_is_integer(v))
                return 4;
        if (json_is_array(v))
                json_array_foreach(v, i, x) n += text_bytes(x, depth + 1);
        else if (json_is_object(v))
                json_object_foreach((json_t *) v, k, x) n += text_bytes(x, depth + 1);
        return n;
}

uint64_t oai_prompt_tokens(OaiEndpoint e, const json_t *body) {
        switch (e) {
        case OAI_CHAT: {
                const json_t *m = json_object_get(body, "messages");
                return oai_estimate_tokens(text_bytes(m, 0)) + 4 * json_array_size(m) + 3;
        }
        case OAI_COMPLETIONS:
                return oai_estimate_tokens(text_bytes(json_object_get(body, "prompt"), 0));
        case OAI_EMBEDDINGS:
                return oai_estimate_tokens(text_bytes(json_object_get(body, "input"), 0));
        default:
                return 0;
        }
}

size_t oai_completion_bytes(const json_t *resp) {
        const json_t *choices = json_object_get(resp, "choices");
        size_t n = 0, i;
        json_t *c;
        json_array_foreach(choices, i, c) {
                n += json_string_length(json_object_get(json_object_get(c, "message"), "content"));
                n += json_string_length(json_object_get(json_object_get(c, "delta"), "content"));
                n += json_string_length(json_object_get(c, "text"));
        }
        return n;
}

/* ---- a stream chunk read without building it (oai_chunk_scan) -------------------------- */

/* Where a value sits, for the text it counts: the top object, its
 * "choices" array, a choice, a choice's "delta" or "message", a string
 * that counts (choice.text, delta.content, message.content). */
enum { SC_OTHER, SC_TOP, SC_CHOICES, SC_CHOICE, SC_INNER, SC_COUNT };
#define SC_DEPTH_MAX 64

typedef struct Scan {
        const char *p, *end;
        size_t bytes;
} Scan;

static void sc_ws(Scan *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static int sc_hex4(const char *p, unsigned *ret) {
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
                char ch = p[i];
                v <<= 4;
                if (ch >= '0' && ch <= '9')
                        v |= (unsigned) (ch - '0');
                else if (ch >= 'a' && ch <= 'f')
                        v |= (unsigned) (ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'F')
                        v |= (unsigned) (ch - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

/* A string at s->p (its opening quote) as jansson would decode it: its
 * length in bytes, the raw span between the quotes and whether it had
 * escapes. -1 for anything jansson would refuse (bad escapes, lone
 * surrogates, \u0000, control characters, bad UTF-8). */
static int sc_string(Scan *s, size_t *ret_len, const char **ret_raw, size_t *ret_raw_len, bool *ret_esc) {
        const unsigned char *p = (const unsigned char *) s->p + 1, *end = (const unsigned char *) s->end;
        size_t n = 0;
        bool esc = false;
        for (;;) {
                if (p >= end)
                        return -1;
                unsigned char ch = *p;
                if (ch == '"')
                        break;
                if (ch < 0x20)
                        return -1;
                if (ch == '\\') {
                        esc = true;
                        if (p + 1 >= end)
                                return -1;
                        unsigned char e = p[1];
                        if (e != 'u') {
                                if (!strchr("\"\\/bfnrt", e) || !e)
                                        return -1;
                                n++;
                                p += 2;
                                continue;
                        }
                        unsigned cp, lo;
                        if (end - p < 6 || sc_hex4((const char *) p + 2, &cp) < 0 || cp == 0)
                                return -1;
                        p += 6;
                        if (cp >= 0xDC00 && cp <= 0xDFFF)
                                return -1;
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || sc_hex4((const char *) p + 2, &lo) < 0 ||
                                    lo < 0xDC00 || lo > 0xDFFF)
                                        return -1;
                                p += 6;
                                n += 4;
                        } else
                                n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
                        continue;
                }
                if (ch < 0x80) {
                        n++;
                        p++;
                        continue;
                }
                /* UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF */
                unsigned k, cp;
                if (ch >= 0xC2 && ch <= 0xDF)
                        k = 1, cp = ch & 0x1F;
                else if (ch >= 0xE0 && ch <= 0xEF)
                        k = 2, cp = ch & 0x0F;
                else if (ch >= 0xF0 && ch <= 0xF4)
                        k = 3, cp = ch & 0x07;
                else
                        return -1;
                if ((size_t) (end - p) <= k)
                        return -1;
                for (unsigned i = 1; i <= k; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return -1;
                        cp = (cp << 6) | (p[i] & 0x3F);
                }
                if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
                        return -1;
                n += k + 1;
                p += k + 1;
        }
        *ret_raw = s->p + 1;
        *ret_raw_len = (size_t) ((const char *) p - (s->p + 1));
        *ret_len = n;
        *ret_esc = esc;
        s->p = (const char *) p + 1;
        return 0;
}

/* A number in JSON's grammar. jansson also refuses an integer past
 * int64 and a real that overflows a double: a long integer, a long
 * number or an exponent of three digits is left to it (-1). */
static int sc_number(Scan *s) {
        const char *p = s->p, *e = s->end, *d;
        bool real = false;
        if (p < e && *p == '-')
                p++;
        if (p >= e || *p < '0' || *p > '9')
                return -1;
        d = p;
        if (*p == '0')
                p++;
        else
                while (p < e && *p >= '0' && *p <= '9')
                        p++;
        size_t int_digits = (size_t) (p - d);
        if (p < e && *p == '.') {
                real = true;
                if (++p >= e || *p < '0' || *p > '9')
                        return -1;
                while (p < e && *p >= '0' && *p <= '9')
                        p++;
        }
        if (p < e && (*p == 'e' || *p == 'E')) {
                real = true;
                p++;
                if (p < e && (*p == '+' || *p == '-'))
                        p++;
                if (p >= e || *p < '0' || *p > '9')
                        return -1;
                d = p;
                while (p < e && *p >= '0' && *p <= '9')
                        p++;
                if (p - d > 2)
                        return -1;
        }
        if ((!real && int_digits > 18) || p - s->p > 24)
                return -1;
        s->p = p;
        return 0;
}

static bool sc_key_is(const char *raw, size_t len, const char *key) {
        return strlen(key) == len && memcmp(raw, key, len) == 0;
}

static int sc_value(Scan *s, unsigned ctx, unsigned depth);

/* An object: which of its members count depends on where it sits. A
 * member that matters appearing twice (jansson keeps the last), or a key
 * with escapes where members matter: -1, left to the full parse. */
static int sc_object(Scan *s, unsigned ctx, unsigned depth) {
        unsigned seen = 0;
        s->p++;
        sc_ws(s);
        if (s->p < s->end && *s->p == '}') {
                s->p++;
                return 0;
        }
        for (;;) {
                const char *raw;
                size_t len, raw_len;
                bool esc;
                sc_ws(s);
                if (s->p >= s->end || *s->p != '"' || sc_string(s, &len, &raw, &raw_len, &esc) < 0)
                        return -1;
                if (esc && ctx != SC_OTHER)
                        return -1;
                unsigned sub = SC_OTHER, bit = 0;
                if (ctx == SC_TOP && sc_key_is(raw, raw_len, "choices"))
                        sub = SC_CHOICES, bit = 1;
                else if (ctx == SC_CHOICE && sc_key_is(raw, raw_len, "text"))
                        sub = SC_COUNT, bit = 1;
                else if (ctx == SC_CHOICE && sc_key_is(raw, raw_len, "delta"))
                        sub = SC_INNER, bit = 2;
                else if (ctx == SC_CHOICE && sc_key_is(raw, raw_len, "message"))
                        sub = SC_INNER, bit = 4;
                else if (ctx == SC_INNER && sc_key_is(raw, raw_len, "content"))
                        sub = SC_COUNT, bit = 1;
                if (seen & bit)
                        return -1;
                seen |= bit;
                sc_ws(s);
                if (s->p >= s->end || *s->p != ':')
                        return -1;
                s->p++;
                if (sc_value(s, sub, depth + 1) < 0)
                        return -1;
                sc_ws(s);
                if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        continue;
                }
                if (s->p < s->end && *s->p == '}') {
                        s->p++;
                        return 0;
                }
                return -1;
        }
}

static int sc_value(Scan *s, unsigned ctx, unsigned depth) {
        if (depth > SC_DEPTH_MAX)
                return -1;
        sc_ws(s);
        if (s->p >= s->end)
                return -1;
        switch (*s->p) {
        case '{':
                return sc_object(s, ctx == SC_TOP || ctx == SC_CHOICE || ctx == SC_INNER ? ctx : SC_OTHER, depth);
        case '[':
                s->p++;
                sc_ws(s);
                if (s->p < s->end && *s->p == ']') {
                        s->p++;
                        return 0;
                }
                for (;;) {
                        if (sc_value(s, ctx == SC_CHOICES ? SC_CHOICE : SC_OTHER, depth + 1) < 0)
                                return -1;
                        sc_ws(s);
                        if (s->p < s->end && *s->p == ',') {
                                s->p++;
                                continue;
                        }
                        if (s->p < s->end && *s->p == ']') {
                                s->p++;
                                return 0;
                        }
                        return -1;
                }
        case '"': {
                const char *raw;
                size_t len, raw_len;
                bool esc;
                if (sc_string(s, &len, &raw, &raw_len, &esc) < 0)
                        return -1;
                if (ctx == SC_COUNT)
                        s->bytes += len;
                return 0;
        }
        case 't':
        case 'f':
        case 'n': {
                const char *w = *s->p == 't' ? "true" : *s->p == 'f' ? "false" : "null";
                size_t l = strlen(w);
                if ((size_t) (s->end - s->p) < l || memcmp(s->p, w, l) != 0)
                        return -1;
                s->p += l;
                return 0;
        }
        default:
                return sc_number(s);
        }
}

int oai_chunk_scan(const char *p, size_t len, size_t *ret_bytes) {
        Scan s = { .p = p, .end = p + len };
        sc_ws(&s);
        if (s.p >= s.end || *s.p != '{')
                return -EINVAL;
        if (memmem(p, len, "\"usage\"", 7) || memmem(p, len, "\"error\"", 7))
                return -EAGAIN;
        if (sc_value(&s, SC_TOP, 0) < 0)
                return -EINVAL;
        sc_ws(&s);
        if (s.p != s.end)
                return -EINVAL;
        *ret_bytes = s.bytes;
        return 0;
}

bool oai_usage(const json_t *resp, uint64_t *ret_in, uint64_t *ret_out) {
        const json_t *u = json_object_get(resp, "usage");
        const json_t *in = json_object_get(u, "prompt_tokens"), *out = json_object_get(u, "completion_tokens"),
                     *total = json_object_get(u, "total_tokens");
        if (!json_is_integer(in) || json_integer_value(in) < 0)
                return false;
        json_int_t o = json_is_integer(out) ? json_integer_value(out)
                       : json_is_integer(total) ? json_integer_value(total) - json_integer_value(in) : 0;
        *ret_in = (uint64_t) json_integer_value(in);
        *ret_out = o > 0 ? (uint64_t) o : 0;
        return true;
}

json_t *oai_usage_json(uint64_t in, uint64_t out) {
        return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t) in, "completion_tokens", (json_int_t) out,
                         "total_tokens", (json_int_t) (in + out));
}

/* ---- server-sent events ---------------------------------------------------------------- */

static int sse_append(OaiSse *s, const char *p, size_t n) {
        if (s->len + n > OAI_SSE_LINE_MAX)
                return -E2BIG;
        if (s->len + n + 1 > s->cap) {
                size_t cap = s->cap ? s->cap : 1024;
                while (cap < s->len + n + 1)
                        cap *= 2;
                char *x = realloc(s->line, cap);
                if (!x)
                        return -ENOMEM;
                s->line = x;
                s->cap = cap;
        }
        memcpy(s->line + s->len, p, n);
        s->len += n;
        s->line[s->len] = 0;
        return 0;
}

int oai_sse_next(OaiSse *s, const char **data, size_t *len, const char **ret, size_t *ret_len) {
        for (;;) {
                /* a line that ended in the previous call was handed out: start afresh */
                if (s->len && s->line[s->len - 1] == '\n')
                        s->len = 0;
                if (*len == 0)
                        return OAI_SSE_NONE;
                const char *nl = memchr(*data, '\n', *len);
                size_t take = nl ? (size_t) (nl - *data) + 1 : *len;
                int r = sse_append(s, *data, take);
                if (r < 0)
                        return r;
                *data += take;
                *len -= take;
                if (!nl)
                        return OAI_SSE_NONE;
                size_t l = s->len - 1;
                if (l && s->line[l - 1] == '\r')
                        l--;
                if (l >= 5 && memcmp(s->line, "data:", 5) == 0) {
                        const char *p = s->line + 5;
                        size_t pl = l - 5;
                        if (pl && *p == ' ')
                                p++, pl--;
                        *ret = p;
                        *ret_len = pl;
                        return OAI_SSE_DATA;
                }
        }
}

void oai_sse_clear(OaiSse *s) {
        free(s->line);
        *s = (OaiSse) { 0 };
}
