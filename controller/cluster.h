/* controller/cluster.h: the data plane as the controller sees it, in memory
 * behind one mutex: nodes (status, lease), instances (what the controller
 * wants and what the nodes report), each revision's autoscaler and
 * scheduler state, the activators' concurrency, the two long polls (a
 * node's assignment, the route table), logs and recent scaling decisions.
 * A ticker thread runs the autoscaler every second. docs/internals.md is
 * the wire format; docs/autoscaling.md the behaviour. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/http.h"
#include "lib/store.h"

#define CLUSTER_LEASE_DEFAULT_MS        5000
#define CLUSTER_LEASE_MIN_MS            500
#define CLUSTER_LEASE_MAX_MS            600000
#define CLUSTER_WAIT_MAX_MS             30000   /* a long poll's waitMs */
#define CLUSTER_STATUS_MAX              (1u << 20)      /* PUT .../status bodies */
#define CLUSTER_LOG_LINES               1000    /* kept per function */
#define CLUSTER_DECISIONS               20      /* kept per revision */
#define CLUSTER_CPU_OVERCOMMIT_DEFAULT  8
#define CLUSTER_CPU_OVERCOMMIT_MAX      100
#define CLUSTER_CRASH_LOOP              3       /* failures in a row before a back-off */

typedef struct Cluster Cluster;

typedef struct ClusterConfig {
        int64_t lease_ms;                       /* a node silent this long is lost */
        int64_t crash_backoff_ms;               /* first back-off after a crash loop (doubles) */
        int64_t drain_delay_ms;                 /* between leaving the routes and `drain` */
        unsigned cpu_overcommit;                /* placement counts a node's CPUs this many times
                                                 * (limits.cpu is a ceiling, not a reservation);
                                                 * 0: CLUSTER_CPU_OVERCOMMIT_DEFAULT */
} ClusterConfig;

int cluster_new(Store *store, const ClusterConfig *cfg, Cluster **ret);
/* Reads every function once, then starts the ticker thread. */
int cluster_start(Cluster *c);
/* Stops the ticker and answers every long poll, for a clean HTTP stop. */
void cluster_stop(Cluster *c);
void cluster_free(Cluster *c);

/* ---- nodes ------------------------------------------------------------------ */

/* A node's status report (docs/internals.md). 0 with the node's assignment
 * in *ret, or -EINVAL with a sentence in err. */
int cluster_node_status(Cluster *c, const char *name, const json_t *body, json_t **ret, char *err, size_t errsize);
/* The node's assignment when its version differs from after, else (with
 * wait_ms > 0) a deferred answer: the request is suspended and answered on
 * the next change or after wait_ms. -ENOENT: the node never reported. */
int cluster_node_assignments(Cluster *c, const char *name, uint64_t after, int64_t wait_ms, HttpRequest *req,
                             HttpResponse *resp);
/* {"name": {"state", "instances", "ready"}} for GET /v1/nodes. */
json_t *cluster_nodes_info(Cluster *c);

/* ---- activators -------------------------------------------------------------- */

/* The route table, with the same long-poll rules. */
void cluster_routes(Cluster *c, uint64_t after, int64_t wait_ms, HttpRequest *req, HttpResponse *resp);
/* An activator's per-second report. -EINVAL with err. */
int cluster_activator_stats(Cluster *c, const json_t *body, char *err, size_t errsize);
/* A request waits for a revision with nothing ready: decide now. -ENOENT
 * when the store has no such revision. */
int cluster_poke(Cluster *c, const char *ns, const char *revision);

/* ---- users ------------------------------------------------------------------- */

/* A token was created or revoked: read the tokens again now, so that the
 * activators get them with the next route table. */
void cluster_tokens_changed(Cluster *c);
/* The route table's "skills": [{namespace, name, version}], the newest
 * promoted version of each skill (takes list; a change is a new routes
 * version). */
void cluster_skills_set(Cluster *c, json_t *list);

/* Route revision NAME-NNNNN of ns/function under the tag fnbox-rN while a
 * replay runs it (pins of one revision nest; they live in this controller's
 * memory): the tag into tag. -EINVAL when revision is not function's. */
int cluster_pin(Cluster *c, const char *ns, const char *function, const char *revision, char *tag, size_t tag_size);
void cluster_unpin(Cluster *c, const char *ns, const char *function, const char *revision);

/* A function was deployed, changed its traffic or was deleted: read it again now. */
void cluster_function_changed(Cluster *c, const char *ns, const char *name);
/* {"revisions": [{"revision", "desired", "ready", ...}]} for GET /v1/functions/NAME. */
json_t *cluster_function_status(Cluster *c, const char *ns, const char *name);
/* {"items": [{"instance", "time", "line"}], "dropped": N}, the last limit lines. */
json_t *cluster_function_logs(Cluster *c, const char *ns, const char *name, size_t limit);
/* Prometheus text (malloc'd). */
char *cluster_metrics(Cluster *c, size_t *ret_len);
/* Count one answered request for /metrics. */
void cluster_count_request(Cluster *c, const char *endpoint, unsigned status);
