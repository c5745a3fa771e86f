/* activator/outcome.c: statuses, error types and the error body (see outcome.h). */
#include "activator/outcome.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/jail.h"

static const struct {
        unsigned status;
        const char *type;
} errors[_ACT_ERROR_MAX] = {
        [ACT_OK] = { 200, "ok" },
        [ACT_BAD_REQUEST] = { 400, "bad_request" },
        [ACT_UNAUTHENTICATED] = { 401, "unauthenticated" },
        [ACT_FORBIDDEN] = { 403, "forbidden" },
        [ACT_NOT_FOUND] = { 404, "not_found" },
        [ACT_TOO_LARGE] = { 413, "too_large" },
        [ACT_URI_TOO_LONG] = { 414, "uri_too_long" },
        [ACT_HEADERS_TOO_LARGE] = { 431, "headers_too_large" },
        [ACT_FUNCTION_ERROR] = { 500, "function_error" },
        [ACT_INTERNAL] = { 500, "internal" },
        [ACT_NODE_FAILED] = { 502, "node_failed" },
        [ACT_OUTPUT_TOO_LARGE] = { 502, "output_too_large" },
        [ACT_BAD_GATEWAY] = { 502, "bad_gateway" },
        [ACT_UNAVAILABLE] = { 503, "unavailable" },
        [ACT_QUEUE_FULL] = { 503, "queue_full" },
        [ACT_UNSCHEDULABLE] = { 503, "unschedulable" },
        [ACT_SHUTTING_DOWN] = { 503, "shutting_down" },
        [ACT_TIMEOUT] = { 504, "timeout" },
        [ACT_QUEUE_TIMEOUT] = { 504, "queue_timeout" },
        [ACT_VERSION_NOT_SUPPORTED] = { 505, "http_version_not_supported" },
        [ACT_OUT_OF_MEMORY] = { 507, "out_of_memory" },
};

unsigned act_error_status(ActError e) {
        return (unsigned) e < _ACT_ERROR_MAX ? errors[e].status : 500;
}

const char *act_error_type(ActError e) {
        return (unsigned) e < _ACT_ERROR_MAX ? errors[e].type : "internal";
}

ActError outcome_from_result(int status, int exit_code, int signal, bool out_truncated,
                             char *msg, size_t msg_len) {
        switch (status) {
        case JAIL_EXITED:
                if (exit_code == 0 && !out_truncated) {
                        snprintf(msg, msg_len, "ok");
                        return ACT_OK;
                }
                if (exit_code == 0)
                        break;
                snprintf(msg, msg_len, "the function exited with status %d", exit_code);
                return ACT_FUNCTION_ERROR;
        case JAIL_SIGNALED:
                snprintf(msg, msg_len, "the function was killed by signal %d", signal);
                return ACT_FUNCTION_ERROR;
        case JAIL_TIMEOUT:
                snprintf(msg, msg_len, "the function ran past its timeout");
                return ACT_TIMEOUT;
        case JAIL_OUT_OF_MEMORY:
                snprintf(msg, msg_len, "the function ran out of memory");
                return ACT_OUT_OF_MEMORY;
        case JAIL_OUTPUT_LIMIT:
                break;
        case JAIL_KILLED:
                snprintf(msg, msg_len, "the function was stopped before it finished");
                return ACT_UNAVAILABLE;
        default:
                snprintf(msg, msg_len, "the node could not run the function");
                return ACT_NODE_FAILED;
        }
        snprintf(msg, msg_len, "the function's output is over its limit");
        return ACT_OUTPUT_TOO_LARGE;
}

InvokeRefusal outcome_from_refusal(int code) {
        switch (code) {
        case 1: return REFUSAL_DROP_INSTANCE;
        case 2: case 3: return REFUSAL_TRY_ANOTHER;
        default: return REFUSAL_FAIL;
        }
}

/* JSON string escaping of s into out (at most max input bytes). */
static size_t json_escape(const char *s, size_t max, char *out, size_t size) {
        size_t o = 0;
        for (size_t i = 0; s[i] && i < max && o + 7 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char) c;
                } else if (c < 0x20 || c == 0x7f)
                        o += (size_t) snprintf(out + o, size - o, "\\u%04x", c);
                else
                        out[o++] = (char) c;
        }
        out[o] = 0;
        return o;
}

int outcome_json(ActError e, const char *message, char *buf, size_t size) {
        char esc[1024 * 6 + 8];
        json_escape(message ? message : "", 1024, esc, sizeof esc);
        int n = snprintf(buf, size, "{\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}\n", act_error_type(e), esc);
        return n < 0 || (size_t) n >= size ? -ENOBUFS : n;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
        if (s[0] < 0x80)
                return 1;
        size_t len = s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                     : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                     : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
        if (len == 0 || len > n)
                return 0;
        for (size_t i = 1; i < len; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||   /* overlong, surrogates */
            (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))     /* overlong, past U+10FFFF */
                return 0;
        return len;
}

char *outcome_utf8_clean(const char *s, size_t len, size_t *ret_len) {
        if (len > SIZE_MAX / 3 - 1)
                return NULL;
        char *out = malloc(len * 3 + 1);        /* each byte becomes at most 3 */
        size_t o = 0;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                size_t k = utf8_seq((const unsigned char *) s + i, len - i);
                if (k == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                        continue;
                }
                memcpy(out + o, s + i, k);
                o += k;
                i += k;
        }
        out[o] = 0;
        *ret_len = o;
        return out;
}

char *outcome_json_detail(ActError e, const char *message, const OutcomeDetail *d, size_t *ret_len) {
        size_t el = d->err_len > OUTCOME_STDERR_MAX ? OUTCOME_STDERR_MAX : d->err_len, cl = 0;
        const char *err = d->err ? d->err + (d->err_len - el) : "";
        char *clean = outcome_utf8_clean(err, d->err ? el : 0, &cl);
        json_t *o = json_object(), *inner = json_object();
        char *text = NULL;
        if (!clean || !o || !inner || json_object_set_new(o, "error", inner) < 0) {
                if (o)
                        json_decref(o);
                else
                        json_decref(inner);
                free(clean);
                return NULL;
        }
        const char *m = message ? message : "";
        bool ok = json_object_set_new(inner, "type", json_string(act_error_type(e))) == 0 &&
                  json_object_set_new(inner, "message", json_stringn(m, strnlen(m, 1024))) == 0 &&
                  json_object_set_new(inner, "stderr", json_stringn(clean, cl)) == 0;
        if (ok && d->has_signal)
                ok = json_object_set_new(inner, "signal", json_integer(d->signal)) == 0;
        else if (ok && d->has_exit_code)
                ok = json_object_set_new(inner, "exitCode", json_integer(d->exit_code)) == 0;
        if (ok)
                text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        free(clean);
        if (!text)
                return NULL;
        size_t n = strlen(text);
        char *body = realloc(text, n + 2);
        if (!body) {
                free(text);
                return NULL;
        }
        body[n] = '\n';
        body[n + 1] = 0;
        *ret_len = n + 1;
        return body;
}
