/* controller/cluster_internal.h: the cluster's state, shared by its files:
 * cluster.c (nodes, instances, the ticker, long polls), cluster_sync.c
 * (functions and revisions read from the store), cluster_render.c (the
 * JSON and text the API serves). Everything here is guarded by c->lock
 * unless it says otherwise. */
#pragma once

#include <pthread.h>

#include "controller/cluster.h"
#include "controller/kpa.h"
#include "controller/scheduler.h"
#include "lib/manifest.h"

#define CLUSTER_ID_MAX          128
#define CLUSTER_ACTIVATORS_MAX  16      /* activators tracked per revision */
#define CLUSTER_STATS_FRESH_MS  3000    /* an activator's report counts this long */
#define CLUSTER_STATS_PERIOD_MS 1000    /* how often a busy activator reports */
#define CLUSTER_SYNC_PERIOD_MS  10000   /* full re-read of the store */
#define CLUSTER_HEARTBEAT_PERSIST_MS 30000

/* ---- a string-keyed hash table (chained) -------------------------------------- */

typedef struct MapEntry {
        char *key;
        void *value;
        struct MapEntry *next;
} MapEntry;

typedef struct Map {
        MapEntry **buckets;
        size_t n_buckets, n;
} Map;

void *cmap_get(const Map *m, const char *key);
int cmap_put(Map *m, const char *key, void *value);
void *cmap_remove(Map *m, const char *key);
void cmap_clear(Map *m);
/* Iterate: size_t i = 0; for (MapEntry *e = NULL; (e = cmap_next(m, e, &i));) */
MapEntry *cmap_next(const Map *m, MapEntry *e, size_t *i);

/* ---- nodes, revisions, instances -------------------------------------------------- */

typedef struct Node {
        char *name;
        char *boot_id;
        char *invoke;
        json_t *labels_json, *capacity_json;
        json_t *gpu_devices;            /* its report's gpuDevices: [{index, device, product?, ...}] */
        ManifestPair *labels;
        size_t n_labels;
        uint64_t cpu_millis, memory_bytes, gpus;
        int64_t seen_ms;                /* monotonic: last status */
        int64_t persisted_ms;           /* monotonic: last store_node_put */
        bool lost;
        bool reported;                  /* has sent a status to this process */
        uint64_t version;               /* of its assignment */
        uint64_t logs_dropped;
        uint64_t mark;                  /* reports received */
} Node;

typedef struct Decision {
        int64_t at_ms;                  /* wall clock */
        uint32_t desired, ready;
        char reason[KPA_REASON_MAX];
} Decision;

typedef struct ActivatorStat {
        char name[64];
        uint32_t inflight, queued;
        int64_t at_ms;                  /* monotonic */
} ActivatorStat;

/* One way to run a revision: its spec or a variant, with the spec the
 * node gets (the variant resolved into it). */
typedef struct RevOption {
        char *variant;
        ManifestPair *selector;
        size_t n_selector;
        uint64_t cpu_millis, memory_bytes, gpus;
        json_t *spec;
} RevOption;

typedef struct Rev {
        char *key;                      /* "NS/REVISION" */
        char *ns, *function, *name;
        char *code_digest;
        json_t *spec;
        ManifestParams params;
        RevOption *options;
        size_t n_options;
        bool reachable;                 /* named by the traffic split */
        bool initial_pending;           /* new: its first decision applies initial scale */
        int64_t created_wall_ms;
        bool poked;
        KpaState *kpa;                  /* while active */
        uint32_t desired;
        bool panicking;
        double stable_concurrency;
        char unschedulable[SCHED_REASON_MAX];
        bool crash_loop;                /* the reason is a crash loop, not placement */
        int64_t backoff_until_ms;       /* monotonic */
        uint32_t backoffs;
        uint32_t failures;              /* in a row, without becoming ready */
        ActivatorStat stats[CLUSTER_ACTIVATORS_MAX];
        Decision decisions[CLUSTER_DECISIONS];
        size_t n_decisions, decision_head;
        uint32_t n_instances;           /* every instance record of this revision */
} Rev;

typedef enum {
        INST_STARTING, INST_READY, INST_DRAINING, INST_STOPPED, INST_FAILED,
} InstState;

typedef struct Instance {
        char *id;
        Rev *rev;
        Node *node;
        size_t option;
        bool leaving;                   /* out of the routes; drain follows */
        bool drain;                     /* the node is told to drain it */
        bool drain_idle;                /* ... and that no activator has a request on it */
        int64_t leaving_ms;             /* monotonic */
        InstState state;
        bool reported;
        bool ever_ready;
        char reason[128];
        char *endpoint;
        uint32_t inflight;
        uint64_t gpu_mask;              /* the node's GPUs it holds (bit i: GPU i) until its record goes */
        int64_t since_ms;               /* the node's clock (wall) */
        int64_t created_ms;             /* monotonic */
        int64_t ready_ms;               /* monotonic: when it first was ready */
        uint64_t mark;                  /* the node report that listed it */
} Instance;

typedef struct LogLine {
        char *instance;
        int64_t time_ms;
        char *line;
} LogLine;

typedef struct LogRing {
        LogLine lines[CLUSTER_LOG_LINES];
        size_t head, n;
        uint64_t dropped;
} LogRing;

/* A function as the route table shows it. */
typedef struct Func {
        char *key;                      /* "NS/NAME" */
        char *ns, *name;
        json_t *traffic;                /* [{revision, percent, tag?}] resolved */
        int64_t latest;
} Func;

typedef enum { WAIT_ROUTES, WAIT_NODE } WaitKind;

typedef struct Waiter {
        HttpRequest *req;
        WaitKind kind;
        Node *node;
        uint64_t after;
        int64_t deadline_ms;            /* monotonic */
        struct Waiter *next;
} Waiter;

typedef struct RequestCount {
        char endpoint[96];
        unsigned status;
        uint64_t n;
} RequestCount;

struct Cluster {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_mutex_t sync_lock;      /* one store sync at a time (outside lock) */
        Store *store;
        ClusterConfig cfg;
        pthread_t ticker;
        bool running, stopping;

        Map nodes;                      /* name -> Node */
        Map revs;                       /* "NS/REV" -> Rev */
        Map instances;                  /* id -> Instance */
        Map funcs;                      /* "NS/NAME" -> Func */
        Map logs;                       /* "NS/NAME" -> LogRing */
        Map pins;                       /* "NS/FUNCTION/REVISION" -> (uintptr_t) replays routing it */
        Waiter *waiters;

        uint64_t routes_version;
        json_t *tokens;                 /* the live tokens the route table carries (cluster_tokens.c) */
        json_t *skills;                 /* [{namespace, name, version}]: the skills served at /skills/NAME */
        char *routes_text;              /* the rendered table of routes_version */
        size_t routes_len;
        int64_t next_sync_ms;
        int64_t started_wall_ms;
        bool sync_all_pending;

        RequestCount *requests;
        size_t n_requests;
        uint64_t decisions_total;
        uint64_t instances_created, instances_failed;
};

int64_t cluster_now_ms(void);           /* monotonic */
int64_t cluster_wall_ms(void);

/* cluster.c */
void cluster_routes_changed(Cluster *c);
/* Write the nodes the store has not heard from lately (takes c->lock
 * itself; call it without). */
void cluster_persist_nodes(Cluster *c, int64_t now);
void cluster_node_changed(Cluster *c, Node *n);
void rev_free(Rev *r);
void func_free(Func *f);
/* Decide and reconcile one revision now (the ticker, a poke). */
void cluster_scale_rev(Cluster *c, Rev *r, int64_t now, bool record_sample);

Instance *cluster_instance_new(Cluster *c, Rev *r, Node *n, size_t option, const char *id, int64_t now);
void cluster_instance_report(Cluster *c, Instance *i, InstState st, const char *reason, uint32_t inflight,
                             const char *endpoint, int64_t since_ms, int64_t now);
void cluster_instance_gone(Cluster *c, Instance *i, const char *why, int64_t now);
void cluster_log_append(Cluster *c, const Instance *i, int64_t time_ms, const char *line);

/* cluster_sync.c */
int cluster_sync_all(Cluster *c);
int cluster_sync_function(Cluster *c, const char *ns, const char *name);
int rev_from_store(const StoreRevision *sr, Rev **ret);

/* cluster_tokens.c: read the live tokens; called with sync_lock held */
int cluster_sync_tokens_locked(Cluster *c);

/* cluster_render.c */
json_t *render_assignment(Cluster *c, Node *n);
json_t *render_gpu_list(uint64_t mask);
char *render_routes(Cluster *c, size_t *ret_len);
const char *inst_state_name(InstState s);

/* The GPUs (a bit per index) that n's instance records hold. */
uint64_t cluster_node_gpus_used(Cluster *c, const Node *n);
