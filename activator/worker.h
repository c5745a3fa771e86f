/* activator/worker.h: the threads that serve clients. Each worker runs one
 * libuv loop with its own HTTP server (http.h) on its own SO_REUSEPORT
 * listening socket, and the backend connections of the requests it
 * accepted: a request never changes thread, and no thread waits on a
 * socket. Queued requests are connections waiting for their answer (no
 * thread, a few KiB each). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "activator/router.h"

typedef struct Gateway Gateway;

#define WORKERS_MAX           64
#define WORKER_HEADERS_MAX    (16u << 10)       /* request line and headers: 431 beyond */
#define WORKER_TIMEOUT_S      30                /* idle client connections */
#define WORKER_DISCARD_MAX    (4ull << 30)      /* body bytes read and dropped before a 413 */
#define WORKER_BODY_BUDGET    (1ull << 30)      /* request bodies held at once, all workers */
#define WORKER_QUEUE_GRACE_MS 10000             /* the queue deadline: the revision's timeout plus this */
#define WORKER_MISS_WAIT_MS   5000              /* a miss waits this long at most for its sync (router.h) */

typedef struct ActConfig {
        Router *router;
        unsigned threads;
        uint32_t queue_depth;            /* per revision */
        size_t max_body;
        unsigned max_connections;        /* all workers together */
        const char *invoke_secret;       /* HELLO secret for tcp: invoke addresses, or NULL */
        bool auth;                       /* /fn/ needs a bearer token (--auth token) */
        Gateway *gateway;                /* the LLM gateway at /v1/ (--gateway-config), or NULL */
} ActConfig;

typedef struct Workers Workers;

/* Start cfg->threads workers, one per listening fd (they take the fds). */
int workers_start(const ActConfig *cfg, int *listen_fds, Workers **ret);
/* Stop accepting; answer 503 shutting_down at once to what waits in a
 * queue (nothing is queued from then on), to requests whose body is still
 * arriving and to new requests on open connections; wait up to grace_ms
 * for the requests routed to an instance to end; cut what is left short;
 * stop and free. */
void workers_stop(Workers *ws, unsigned grace_ms);
