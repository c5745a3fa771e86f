/* runtime/instance.h: one running copy of a revision on this node, as the
 * controller assigned it (docs/internals.md). A `fresh` instance keeps a
 * zygote (runtime/zygote.h) and a number of concurrency slots, and runs
 * each invoke request in a fresh child of it (or in a prepared jail of the
 * pool while it has no zygote); a `service` instance is one long-lived
 * jail serving HTTP on a unix socket, ready once its readiness probe
 * passes. Every transition is reported through the host's changed
 * callback at once, with its reason. Everything runs on the host's loop. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "broker.h"
#include "gpu.h"
#include "jail.h"
#include "pool.h"
#include "proto.h"
#include "template.h"

typedef enum InstanceState {
        INSTANCE_STARTING,
        INSTANCE_READY,
        INSTANCE_DRAINING,
        INSTANCE_STOPPED,
        INSTANCE_FAILED,
        _INSTANCE_STATE_MAX,
} InstanceState;

#define INSTANCE_REASON_MAX 256
#define INSTANCE_SLOTS_MAX  256          /* a fresh instance's concurrency, at most */
#define INSTANCE_SERVICE_TIMEOUT_NS (24ULL * 3600 * 1000000000ULL) /* the jail's longest deadline */
#define INSTANCE_DRAIN_MAX_MS 30000      /* a drain waits for in-flight work at most this long */

typedef struct Instance Instance;

typedef struct InstanceHost {
        uv_loop_t *loop;
        Pool **pool;                     /* the node's pool of prepared jails (NULL once stopping) */
        Templates **templates;           /* the node's python3 template zygote (NULL: none) */
        const char *cgroup_parent;
        uid_t box_uid;                   /* the host uid boxes map to */
        gid_t socket_gid;                /* the group that may connect to service sockets (the activator's) */
        const char *run_base;            /* host folder of the instances' folders: /run/fnbox/instances */
        Broker *broker;                  /* NULL: boxes get no broker socket */
        const GpuInventory *gpus;        /* the node's GPUs (NULL: none) */
        const struct SessionHost *sessions; /* how requests with a session reach the controller
                                          * (session_run.h); NULL: they are refused */
        /* a transition (state or reason) happened: report it now */
        void (*changed)(Instance *i, void *userdata);
        /* one line of an instance's stderr (no newline) */
        void (*log)(Instance *i, const char *line, size_t len, void *userdata);
        /* a request ended: its outcome (a JailStatus name, "refused") and its duration */
        void (*request_done)(Instance *i, const char *outcome, double seconds, void *userdata);
        /* a zygote became ready after seconds; an instance became ready after seconds */
        void (*zygote_ready)(Instance *i, double seconds, void *userdata);
        void (*instance_ready)(Instance *i, double seconds, void *userdata);
        void *userdata;
} InstanceHost;

/* An instance from one entry of an assignment ({id, namespace, function,
 * revision, variant, desired, codeDigest, spec}): -EINVAL and why for bad
 * ids or digest. It starts in `starting` (reason `started`) and waits for
 * its code (instance_start); a spec this node cannot run gives an
 * instance already `failed` (`setup_error: ...`). */
int instance_new(const InstanceHost *h, json_t *entry, char *why, size_t why_len, Instance **ret);
/* The node's GPU indices the instance holds (none: n 0). */
const unsigned *instance_gpus(const Instance *i, size_t *ret_n);
/* The code is unpacked in code_dir: build the zygote or the service jail. */
void instance_start(Instance *i, const char *code_dir);
/* Give up before it ran: state failed with this reason. */
void instance_fail(Instance *i, const char *reason);
/* Stop taking requests, let in-flight ones finish (bounded), then stop.
 * now: kill what runs at once. */
void instance_drain(Instance *i, bool now);
/* The controller says that no activator has a request in flight to this
 * draining instance (`"idle": true` in its assignment): a service stops
 * now instead of waiting out its timeout. A fresh instance sees its own
 * requests and ignores it. */
void instance_drain_idle(Instance *i);

const char *instance_id(const Instance *i);
const char *instance_digest(const Instance *i);
const char *instance_revision(const Instance *i);   /* NAMESPACE/REVISION */
InstanceState instance_state(const Instance *i);
const char *instance_state_to_string(InstanceState s);
unsigned instance_inflight(const Instance *i);
/* Stopped or failed, and nothing of it runs any more (it may be freed). */
bool instance_finished(const Instance *i);
/* {"id", "state", "reason", "inflight", "endpoint", "sinceMs"} */
json_t *instance_status_json(const Instance *i);
void instance_free(Instance *i);

/* ----- requests (fresh mode) ----- */

typedef struct InstanceCall InstanceCall;
/* The request's result (r is the caller's for the duration of the call:
 * it may take r->out.data). */
typedef void (*instance_reply_fn)(JailResult *r, void *userdata);

/* Run one request with body on stdin (copied). 0, or a PROTO_INVOKE_*
 * code (positive) with why: no such instance is the caller's to say;
 * PROTO_INVOKE_NOT_READY, PROTO_INVOKE_BUSY (no free slot),
 * PROTO_INVOKE_FAILED (the jail could not be started). */
int instance_invoke(Instance *i, const ProtoInvoke *inv, const char *body, size_t len, instance_reply_fn fn,
                    void *userdata, InstanceCall **ret, char *why, size_t why_len);
/* The client went away: kill the request's jail; fn is not called. */
void instance_call_cancel(InstanceCall *c);
