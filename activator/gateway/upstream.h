/* activator/gateway/upstream.h: HTTP calls to upstreams from a worker
 * thread: libcurl's multi interface driven by the worker's libuv loop
 * (uv_poll for curl's sockets, one uv_timer for curl's timeouts), with a
 * connection cache per worker. A call delivers its status and headers,
 * then its body as it arrives, then one end. Everything runs on the
 * worker's thread; nothing blocks. The API key in a call's headers is
 * never logged (nothing here logs). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct UpClient UpClient;
typedef struct UpCall UpCall;

typedef enum UpError {
        UP_OK,
        UP_CONNECT,              /* could not connect (refused, unreachable, DNS, TLS) */
        UP_TIMEOUT_CONNECT,
        UP_TIMEOUT_FIRST_BYTE,   /* nothing came back within first_byte_ms */
        UP_TIMEOUT_TOTAL,        /* the answer did not end within total_ms */
        UP_BROKEN,               /* the connection broke, or the answer is not HTTP */
        UP_STOPPED,              /* the data handler said stop */
        UP_INTERNAL,
} UpError;

typedef struct UpHandlers {
        /* The status and headers are in (retry_after: the header, or NULL). */
        void (*headers)(void *ud, long status, const char *retry_after);
        /* Body bytes as they come; false stops the call (done: UP_STOPPED). */
        bool (*data)(void *ud, const char *p, size_t n);
        /* The call is over; the call is freed after this returns. It may
         * start other calls. */
        void (*done)(void *ud, UpError err, const char *msg);
} UpHandlers;

typedef struct UpParams {
        const char *url;
        const char *const *headers;      /* "Name: value", NULL-terminated */
        const char *body;                /* POSTed when not NULL (copied) */
        size_t body_len;
        uint64_t connect_ms, first_byte_ms, total_ms;
} UpParams;

int up_client_new(uv_loop_t *loop, UpClient **ret);
/* Ends every call without a callback, then frees (as the loop runs on). */
void up_client_free(UpClient *u);

int up_call_start(UpClient *u, const UpParams *p, const UpHandlers *h, void *ud, UpCall **ret);
/* Stop a call: no callback comes after this. Not from its own handlers. */
void up_call_cancel(UpCall *c);
/* The caller has what it needs (a stream's [DONE]): let the answer end
 * within ms, so that its connection stays open for the next call, or
 * stop it then (done: UP_STOPPED). From the data handler too. */
void up_call_linger(UpCall *c, uint64_t ms);

const char *up_error_str(UpError e);
