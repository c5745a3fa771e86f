/* activator/outcome.h: every way a call can end, as an HTTP status and a
 * JSON error type (the table in docs/invoke.md), and the mapping from what
 * a box or a node reported to one of them. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum ActError {
        ACT_OK,                  /* 200: the box exited 0 */
        ACT_BAD_REQUEST,         /* 400 bad_request */
        ACT_UNAUTHENTICATED,     /* 401 unauthenticated: no, a malformed or an unknown bearer token */
        ACT_FORBIDDEN,           /* 403 forbidden: the token may not call that namespace */
        ACT_NOT_FOUND,           /* 404 not_found */
        ACT_TOO_LARGE,           /* 413 too_large */
        ACT_URI_TOO_LONG,        /* 414 uri_too_long */
        ACT_HEADERS_TOO_LARGE,   /* 431 headers_too_large */
        ACT_FUNCTION_ERROR,      /* 500 function_error: exited non-zero or signaled */
        ACT_INTERNAL,            /* 500 internal */
        ACT_NODE_FAILED,         /* 502 node_failed: the node or instance broke off mid-request */
        ACT_OUTPUT_TOO_LARGE,    /* 502 output_too_large */
        ACT_BAD_GATEWAY,         /* 502 bad_gateway: a service answered what is not HTTP */
        ACT_UNAVAILABLE,         /* 503 unavailable */
        ACT_QUEUE_FULL,          /* 503 queue_full (Retry-After) */
        ACT_UNSCHEDULABLE,       /* 503 unschedulable: the controller's reason */
        ACT_SHUTTING_DOWN,       /* 503 shutting_down */
        ACT_TIMEOUT,             /* 504 timeout: the box ran past its timeout */
        ACT_QUEUE_TIMEOUT,       /* 504 queue_timeout: no instance in time */
        ACT_VERSION_NOT_SUPPORTED, /* 505 http_version_not_supported: HTTP/2.0, HTTP/1.2 ... */
        ACT_OUT_OF_MEMORY,       /* 507 out_of_memory */
        _ACT_ERROR_MAX,
} ActError;

unsigned act_error_status(ActError e);
const char *act_error_type(ActError e);

/* What a fresh-mode RESULT means. status is a JailStatus (runtime/jail.h),
 * out_truncated says whether stdout hit its cap. */
ActError outcome_from_result(int status, int exit_code, int signal, bool out_truncated,
                             char *msg, size_t msg_len);

/* What to do with an ERROR frame from the invoke socket (code 1-4). */
typedef enum InvokeRefusal {
        REFUSAL_DROP_INSTANCE,   /* 1: not on that node: forget it, try another */
        REFUSAL_TRY_ANOTHER,     /* 2, 3: draining, not ready, or no free slot */
        REFUSAL_FAIL,            /* 4 and anything else: 502 node_failed */
} InvokeRefusal;

InvokeRefusal outcome_from_refusal(int code);

/* The error body {"error": {"type": ..., "message": ...}} and a newline,
 * with message JSON-escaped (and cut to 1 KiB). Returns its length, or
 * -ENOBUFS when it does not fit. */
int outcome_json(ActError e, const char *message, char *buf, size_t size);

#define OUTCOME_STDERR_MAX 4096   /* the tail of a box's stderr in an error answer */

/* What a developer's call learns of a fresh box that failed
 * (X-Fnbox-Stderr, docs/invoke.md). */
typedef struct OutcomeDetail {
        const char *err;         /* the stderr's tail (any bytes), or NULL */
        size_t err_len;          /* only the last OUTCOME_STDERR_MAX bytes are used */
        bool has_exit_code, has_signal;
        int exit_code, signal;
} OutcomeDetail;

/* The error body with "stderr" (invalid UTF-8 replaced by U+FFFD) and
 * "exitCode" or "signal" added to the error object, a newline at the end:
 * malloc'd, its length in *ret_len; NULL without memory. */
char *outcome_json_detail(ActError e, const char *message, const OutcomeDetail *d, size_t *ret_len);

/* s (len bytes) as valid UTF-8: every byte that does not start a valid
 * sequence (overlong forms, surrogates and code points past U+10FFFF
 * included) becomes U+FFFD. malloc'd and NUL-terminated, its length in
 * *ret_len; NULL without memory. */
char *outcome_utf8_clean(const char *s, size_t len, size_t *ret_len);
