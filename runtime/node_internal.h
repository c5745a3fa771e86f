/* runtime/node_internal.h: the node agent's state, shared by node.c (the
 * instances and the loop's side) and ctlclient.c (the controller calls,
 * which run on libuv's thread pool and hand their results back). */
#pragma once

#include <jansson.h>

#include "broker.h"
#include "ctlclient_http.h"
#include "detect.h"
#include "gpu.h"
#include "instance.h"
#include "invoke.h"
#include "node.h"
#include "node_metrics.h"
#include "session_run.h"

#define NODE_LOGS_QUEUE_MAX 4096         /* stderr lines waiting for a report */
#define NODE_LOGS_PER_REPORT 256
#define NODE_STATUS_TIMEOUT_MS 5000      /* a report's deadline at most (two heartbeats, if shorter) */
#define NODE_FINAL_STATUS_TIMEOUT_MS 2000 /* the last report, when stopping */
#define NODE_POLL_WAIT_MS 25000
#define NODE_ASSIGNMENT_MAX (16U << 20)
#define NODE_ASSIGNED_MAX 10000          /* instances in one assignment */
#define NODE_BACKOFF_MAX_MS 30000

typedef struct NodeLog {
        uint64_t seq, time_ms;
        char *instance, *line;
} NodeLog;

typedef struct NodeInstance {
        Instance *i;
        uint64_t terminal_gen;           /* the report in which it first was stopped or failed */
        bool fetching;                   /* its code's fetch is under way (one per digest) */
} NodeInstance;

struct Node {
        uv_loop_t *loop;
        Pool **pool;
        const char *cgroup_parent;
        uid_t box_uid;
        char name[64];
        char boot_id[33];
        char invoke_addr[300];
        json_t *labels;
        NodeCapacity capacity;
        GpuInventory gpus;               /* detected, or as the node config declares */
        HttpTarget ctl;
        char *token, *secret, *state_dir;
        SessionHost sessions;            /* how instances reach the controller for sessions */
        uid_t invoke_uid;
        gid_t invoke_gid;
        int cancel_fd;                   /* eventfd: ends the long poll and fetches at once */

        /* status reports, sent by a thread of their own (ctlclient.c): a
         * report never waits behind the long poll, a fetch or a probe on
         * libuv's pool */
        uv_thread_t reporter;
        uv_mutex_t rep_lock;
        uv_cond_t rep_cond;
        uv_async_t rep_async;            /* the reporter's answer is back */
        void *rep_todo, *rep_done;       /* one report at a time, under rep_lock */
        bool rep_quit, rep_started, rep_sync;   /* rep_sync: its lock and condition exist */
        bool status_busy, status_again, registered;
        unsigned status_failures;
        uint64_t status_gen, acked_gen;
        uint64_t heartbeat_ms;
        uv_timer_t heartbeat;
        /* the long poll */
        bool poll_busy;
        unsigned poll_failures;
        uint64_t version;
        bool have_version;
        uv_timer_t poll_timer;
        bool ctl_down;                   /* said once on stderr, until it answers again */
        uint64_t last_status_ms;         /* monotonic, of the last report sent */

        NodeInstance *inst;
        size_t n_inst, cap_inst;
        unsigned fetches;                /* in flight */

        NodeLog logs[NODE_LOGS_QUEUE_MAX];
        size_t log_head, log_n;
        uint64_t log_seq, logs_dropped;

        InvokeServer *invoke;
        Broker *broker;                  /* NULL: no --activator */
        Templates *templates;            /* NULL: --zygote-template off, or stopping */
        NodeMetrics *metrics;
        bool stopping, final_sent, closed, said_ready;
        Node **owner_ref;                /* set to NULL when the node is gone */
        unsigned handles_open;           /* the timers, the reporter's async */
};

/* node.c, for ctlclient.c */
json_t *node_status_body(Node *n, uint64_t *ret_last_log_seq, uint64_t *ret_dropped);
void node_status_acked(Node *n, uint64_t gen, uint64_t last_log_seq, uint64_t dropped);
void node_apply_assignment(Node *n, json_t *a, bool authoritative);
void node_registered(Node *n);
void node_fetch_done(Node *n, const char *digest, int r, const char *why);
void node_maybe_close(Node *n);

/* ctlclient.c: the controller calls */
int ctl_reporter_start(Node *n);
void ctl_reporter_answer(uv_async_t *a);   /* the reporter's async callback */
/* Stop the reporter thread (no report may be under way). */
void ctl_reporter_stop(Node *n);
void ctl_status_send(Node *n);
void ctl_poll_start(Node *n);
int ctl_fetch(Node *n, const char *digest);
/* how long the heartbeat should hold off after failed reports */
uint64_t ctl_status_backoff_ms(const Node *n);
/* "version", "heartbeatMs", "instances" checked; -EBADMSG otherwise */
int ctl_assignment_check(json_t *a);
