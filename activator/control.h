/* activator/control.h: the activator's side of the controller's API
 * (docs/internals.md): one thread long-polls GET /v1/routes and swaps each
 * new table into the router (keeping the last one, with back-off retries,
 * while the controller is away); another posts the stats every second and
 * the pokes as soon as the router has them; a third fetches the table at
 * once for requests that name what the table lacks (router_wait_misses),
 * so that a call right after a deploy finds it. libcurl, blocking, in
 * those threads only. */
#pragma once

#include "activator/router.h"

#define CONTROL_WAIT_MS        25000            /* the long poll's waitMs */
#define CONTROL_BACKOFF_MIN_MS 100
#define CONTROL_BACKOFF_MAX_MS 5000
#define CONTROL_TABLE_MAX      (64u << 20)      /* bytes of a route table */
#define CONTROL_STATS_MS       1000
#define CONTROL_TICK_MS        100              /* queues are tried again this often */
#define CONTROL_SYNC_TIMEOUT_MS 1000            /* a fetch for misses (they wait for it) */

typedef struct Control Control;

/* url: the controller's base URL; token: its bearer token; id: this
 * activator's name in stats. */
int control_start(Router *r, const char *url, const char *token, const char *id, Control **ret);
void control_stop(Control *c);
