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
