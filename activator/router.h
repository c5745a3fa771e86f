/* activator/router.h: the state every worker thread shares, behind one
 * lock: the current route table, each instance's in-flight count (Slot),
 * each revision's queue of waiting requests (RevState), the pokes and
 * stats for the controller, and the per-function metrics. The critical
 * sections are short (a lookup and a counter); no I/O happens under the
 * lock. A queued request is a Waiter; when an instance frees up or
 * appears, the router takes a slot for the oldest waiter and hands it to
 * its worker's inbox (the worker's wake callback runs, under the lock). */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "activator/metrics.h"
#include "activator/outcome.h"
#include "activator/table.h"

#define ROUTER_POKE_INTERVAL_NS 1000000000ull   /* one poke per revision per second */
#define ROUTER_SYNC_INTERVAL_NS 50000000ull     /* at most one table fetch for misses per 50 ms */
#define ROUTER_MISSES_MAX       4096            /* misses parked at once; past it, 404 at once */

typedef struct Router Router;
typedef struct Waiter Waiter;

/* A worker's inbox of dispatched waiters (guarded by the router's lock). */
typedef struct RouterInbox {
        Waiter *head, *tail;
        void (*wake)(struct RouterInbox *inbox);   /* called under the lock */
} RouterInbox;

struct RevState {
        char *key, *ns, *name;           /* "NS/REV", its namespace and revision */
        RouteRevision *rev;              /* in the current table, or NULL */
        uint32_t inflight, queued, refs;
        Waiter *head, *tail;
        uint64_t last_poke_ns;
        bool poke_pending;
        bool reported_idle;              /* its zero counts were reported once */
        RevState *next;
};

/* What a request needs of its revision once it has a slot (copied, so that
 * it outlives the table). */
typedef struct RouteParams {
        RouteMode mode;
        uint64_t timeout_ms, startup_timeout_ms, output_bytes;
} RouteParams;

enum { WAITER_IDLE, WAITER_QUEUED, WAITER_READY };

struct Waiter {
        Waiter *prev, *next;             /* in its revision's queue */
        Waiter *inbox_next;
        RouterInbox *inbox;              /* its worker's */
        RevState *rs;                    /* the queue it is in */
        int state;
        bool cold;                       /* queued while the revision had no instance */
        bool reroute;                    /* a miss whose sync is over: route it again */
        bool synced;                     /* routed again after a sync: a miss now is final */
        bool counted_miss;               /* in fnbox_activator_route_misses_total */
        uint64_t ticket;                 /* a miss: the first sync round that started after it */
        uint64_t since_ns;
        /* the outcome, set when it leaves the queue */
        Slot *slot;                      /* a slot taken for it, or NULL with error */
        RouteParams params;
        ActError error;
        char *reason;                    /* owned; with error */
};

typedef struct RouteResult {
        ActError error;                  /* ACT_OK: slot (or queued) */
        char message[ROUTE_REASON_MAX + 128];
        RevState *rev;                   /* a reference: router_put() it */
        Slot *slot;                      /* taken; router_release() it */
        RouteParams params;
        FnMetrics *metrics;              /* the function's; never NULL */
        const char *sub;                 /* the path for the box: "" or "/..." (into the URL) */
        size_t sub_len;
        bool queued;                     /* the waiter is in the revision's queue */
        bool parked;                     /* not in this table: the waiter waits for a sync */
        bool developer;                  /* routed with a developer's or an admin's token */
} RouteResult;

int router_new(Router **ret);
void router_free(Router *r);

/* Take a new table (owned from now on); wakes or fails the waiters it
 * decides. Returns the version of the table it replaced (0: none). */
uint64_t router_swap(Router *r, RouteTable *t);
/* The same, unless the table is not newer than the one in (freed then):
 * a fetch for misses must not undo the long poll's newer table, which
 * the long poll would not bring again. */
uint64_t router_swap_newer(Router *r, RouteTable *t);
uint64_t router_version(Router *r);

/* Whether the token key may call what p names in the current table
 * (route_authorize): ACT_OK, ACT_UNAUTHENTICATED, ACT_FORBIDDEN, or
 * ACT_UNAVAILABLE before the first table; a sentence in msg. */
ActError router_authorize(Router *r, const FnPath *p, const AuthKey *key, char *msg, size_t msg_len);
/* Whether the token key may call namespace ns (the LLM gateway's check):
 * ACT_OK, ACT_UNAUTHENTICATED, ACT_FORBIDDEN, or ACT_UNAVAILABLE before
 * the first table; a sentence in msg. */
/* Whether the route table has the function (or skill version) that seg
 * of p names in namespace ns (a broker call's target must be in the
 * caller's own namespace). */
bool router_has_function(Router *r, const FnPath *p, const char *ns, const FnSegment *seg);
ActError router_authorize_ns(Router *r, const AuthKey *key, const char *ns, char *msg, size_t msg_len);
/* Route a request: a slot at once, or w queued (at most queue_max per
 * revision; ACT_SHUTTING_DOWN after router_close), or an error. A
 * function or tag this table lacks parks w (ret->parked) until a table
 * fetched after it arrived is in (router_wait_misses): a deploy the
 * controller has answered is never a 404 here. w->synced: it was parked
 * once, the miss is final. rnd: random bits from the caller. key (NULL: no
 * check) is checked again against the table it is routed with, so that a
 * table that changed since router_authorize() cannot route it elsewhere. */
void router_route(Router *r, const FnPath *p, const AuthKey *key, uint64_t rnd, Waiter *w, uint32_t queue_max,
                  uint64_t now_ns, RouteResult *ret);
/* Another slot of the same revision after a refusal, skipping exclude;
 * queue w when none is free (w NULL: ACT_UNAVAILABLE instead; after
 * router_close: ACT_SHUTTING_DOWN). ACT_OK with slot or queued, else an error. */
ActError router_retry(Router *r, RevState *rs, Slot *const *exclude, size_t n_exclude, uint64_t rnd,
                      Waiter *w, uint32_t queue_max, uint64_t now_ns, Slot **ret_slot);
/* Give a slot back (and hand it to a waiter, if one waits). */
void router_release(Router *r, RevState *rs, Slot *s);
/* The instance is gone: route nothing more to it until the next table. */
void router_drop_slot(Router *r, Slot *s);
/* Take w out of its queue (its deadline passed). true when it was still
 * queued; false when it was dispatched meanwhile (it is in its inbox). */
bool router_unqueue(Router *r, Waiter *w);
void router_put(Router *r, RevState *rs);
/* Move the dispatched waiters out of an inbox (a NULL-terminated list
 * through inbox_next). */
Waiter *router_inbox_take(Router *r, RouterInbox *inbox);
/* Stopping: every queued waiter leaves its queue with ACT_SHUTTING_DOWN
 * (through its inbox), and from now on a request that finds no free slot
 * gets ACT_SHUTTING_DOWN instead of a place in a queue. */
void router_close(Router *r);

/* ---- for the controller client ---- */

/* Wait until a poke is pending or until deadline_ns (CLOCK_MONOTONIC).
 * Returns the pokes to send as a JSON array of {"namespace","revision"}
 * (empty when none), or NULL without memory. */
json_t *router_wait_pokes(Router *r, uint64_t deadline_ns);
/* {"activator": id, "revisions": [...]}: in-flight and queued counts of
 * every revision that has some, or had some at the last report. */
json_t *router_stats(Router *r, const char *id);
/* Try the queues again (a node said busy: its slots may be taken by
 * another activator's requests, whose ends we do not see). */
void router_tick(Router *r);
/* Wake router_wait_pokes() and router_wait_misses() at once (stopping). */
void router_interrupt(Router *r);
/* Whether the controller answers: misses are parked only while it does,
 * and those parked leave (to a 404) when it stops answering. */
void router_set_live(Router *r, bool live);
/* Wait until a miss is parked (and ROUTER_SYNC_INTERVAL_NS has passed since
 * the last round started); the round's number, 0 when interrupted. */
uint64_t router_wait_misses(Router *r);
/* The round's fetch is over (its table swapped in, or not): the misses
 * parked before it started are routed again by their workers. */
void router_misses_done(Router *r, uint64_t round);

/* ---- metrics ---- */

/* Record a finished request: its status and duration (and for a cold start,
 * its wait). Safe from any thread. */
void router_record(Router *r, FnMetrics *m, unsigned status, uint64_t duration_ns, bool cold, uint64_t wait_ns);
/* The Prometheus text of every metric (malloc'd), or NULL. */
char *router_metrics_text(Router *r, size_t *ret_len);

uint64_t router_now_ns(void);
