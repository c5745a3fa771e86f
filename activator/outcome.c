/* activator/outcome.c: statuses, error types and the error body (see outcome.h). */
#include "activator/outcome.h"

#include <errno.h>
#include <stdio.h>
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
