/* activator/gateway/gateway.h: the OpenAI-compatible LLM gateway inside
 * fnbox-activator (docs/llm-gateway.md). One Gateway per process holds
 * the configuration (reloaded on SIGHUP and when the file changes), what
 * it learnt of each upstream, the quota book, the audit shipper and the
 * metrics; each worker thread has a GwWorker with its own HTTP client on
 * the worker's loop. worker.c hands it the requests under /v1/. */
#pragma once

#include "activator/http.h"
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "activator/outcome.h"
#include "activator/router.h"

typedef struct Gateway Gateway;
typedef struct GwWorker GwWorker;
typedef struct GwCall GwCall;
typedef struct Req Req;

typedef struct GatewayOptions {
        const char *config_path;
        const char *self_url;            /* this activator, for fn: upstreams ("http://127.0.0.1:PORT") */
        const char *token;               /* its bearer token: fn: upstreams (with auth), the audit */
        const char *controller_url;      /* where audit records go */
        const char *invoke_secret;       /* the key of broker identity headers, or NULL: refused */
        Router *router;                  /* the route table's tokens */
        bool auth;                       /* callers need a bearer token (--auth token) */
} GatewayOptions;

/* Load the config (a sentence in err when it is wrong) and start
 * watching the file. */
int gateway_new(const GatewayOptions *o, Gateway **ret, char *err, size_t err_len);
void gateway_free(Gateway *g);
/* Read the file again; a bad one is logged and the old config stays. */
int gateway_reload(Gateway *g);

int gateway_worker_new(Gateway *g, uv_loop_t *loop, GwWorker **ret);
void gateway_worker_free(GwWorker *gw);

/* Whether a request URI is the gateway's (/v1/...). */
bool gateway_path(const char *uri);
/* The request line and headers are in: NULL to read the body (q->gw is
 * set), or an error response to queue with *ret_status. */
HttpResponse *gateway_head(GwWorker *gw, Req *q, unsigned *ret_status);
/* The largest body the gateway takes for q (its limits.max_body; the
 * activator's --max-body may be lower); UINT64_MAX when q is not the
 * gateway's. */
uint64_t gateway_body_max(const Req *q);
/* An error the activator answers itself on a gateway path (a body over a
 * limit, no memory, stopping...): the OpenAI-shaped body {"error":
 * {"message", "type", "param", "code"}} written into buf (its length, or
 * -ENOBUFS), and, when q->gw is set, the request's audit record takes
 * the status. */
int gateway_error_json(Req *q, ActError e, const char *msg, char *buf, size_t size);
/* The body is in: answer, now or later. */
void gateway_start(Req *q);
/* The caller closed its end while the call waits on an upstream or
 * streams: stop it (499 client_closed in the audit). */
void gateway_hangup(Req *q);
/* The client is gone: stop the upstream call, account, audit. */
void gateway_abort(Req *q);
/* Stopping: answer 503 now (or end the stream with an error event). */
void gateway_stop(Req *q);

/* The gateway's Prometheus text (malloc'd), appended to /metrics. */
char *gateway_metrics_text(Gateway *g, size_t *ret_len);
