/* activator/router.c: the shared routing state (see router.h): hash maps of
 * slots, revision states and function metrics, the queues of waiting
 * requests, and what the controller client reads. */
#define _GNU_SOURCE
#include "activator/router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/list.h"
#include "lib/util.h"

#define HASH_SIZE 4096   /* buckets of each map (chained; they never need to grow much) */

struct Router {
        pthread_mutex_t lock;
        pthread_cond_t cond;             /* pokes for the controller client */
        RouteTable *table;
        Slot *slots[HASH_SIZE];
        RevState *revs[HASH_SIZE];
        FnMetrics *fns[HASH_SIZE];
        FnMetrics unrouted;
        uint64_t rng;
        bool poke_pending, interrupted;
        bool closed;                     /* stopping: nothing more is queued */
        /* misses waiting for a table as fresh as the controller's (a queue of
         * no revision: rev stays NULL and it is in no map) */
        RevState misses;
        pthread_cond_t sync_cond;
        uint64_t sync_round, sync_last_ns;
        uint64_t misses_found, misses_final;     /* misses routed again: found then, or not */
        bool live, sync_stop;
};

uint64_t router_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static size_t hash_str(const char *s) {
        uint64_t h = 1469598103934665603ull;
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211ull;
        return (size_t) (h % HASH_SIZE);
}

static uint64_t rng_next(Router *r) {
        uint64_t x = r->rng;
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        r->rng = x;
        return x * 2685821657736338717ull;
}

int router_new(Router **ret) {
        Router *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->cond, &ca);
        pthread_cond_init(&r->sync_cond, &ca);
        pthread_condattr_destroy(&ca);
        r->misses.key = r->misses.ns = r->misses.name = (char *) "";
        r->unrouted.ns = r->unrouted.name = (char *) "";
        r->rng = router_now_ns() | 1;
        *ret = r;
        return 0;
}

static void revstate_free(RevState *rs) {
        free(rs->key);
        free(rs->ns);
        free(rs->name);
        free(rs);
}

void router_free(Router *r) {
        if (!r)
                return;
        for (size_t i = 0; i < HASH_SIZE; i++) {
                for (Slot *s = r->slots[i], *n; s; s = n) {
                        n = s->next;
                        free(s->id);
                        free(s->addr);
                        free(s);
                }
                for (RevState *s = r->revs[i], *n; s; s = n) {
                        n = s->next;
                        revstate_free(s);
                }
                for (FnMetrics *m = r->fns[i], *n; m; m = n) {
                        n = m->next;
                        free(m->ns);
                        free(m->name);
                        free(m);
                }
        }
        route_table_free(r->table);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        pthread_cond_destroy(&r->sync_cond);
        free(r);
}

/* ---- the maps (under the lock) ------------------------------------------ */

static Slot *slot_get(Router *r, const RouteInstance *in, RouteMode mode) {
        size_t h = hash_str(in->id);
        for (Slot *s = r->slots[h]; s; s = s->next)
                if (strcmp(s->id, in->id) == 0)
                        return s;
        Slot *s = calloc(1, sizeof *s);
        if (!s || !(s->id = strdup(in->id)) || !(s->addr = strdup(mode == ROUTE_FRESH ? in->invoke : in->endpoint))) {
                if (s)
                        free(s->id);
                free(s);
                return NULL;
        }
        s->next = r->slots[h];
        r->slots[h] = s;
        return s;
}

static RevState *revstate_get(Router *r, const RouteRevision *rev) {
        size_t h = hash_str(rev->key);
        for (RevState *s = r->revs[h]; s; s = s->next)
                if (strcmp(s->key, rev->key) == 0)
                        return s;
        RevState *s = calloc(1, sizeof *s);
        if (!s)
                return NULL;
        s->key = strdup(rev->key);
        s->ns = strdup(rev->ns);
        s->name = strdup(rev->name);
        if (!s->key || !s->ns || !s->name) {
                revstate_free(s);
                return NULL;
        }
        s->next = r->revs[h];
        r->revs[h] = s;
        return s;
}

static FnMetrics *fnmetrics_get(Router *r, const RouteFunction *f) {
        if (!f)
                return &r->unrouted;
        size_t h = hash_str(f->key);
        for (FnMetrics *m = r->fns[h]; m; m = m->next)
                if (strcmp(m->ns, f->ns) == 0 && strcmp(m->name, f->name) == 0)
                        return m;
        FnMetrics *m = calloc(1, sizeof *m);
        if (!m || !(m->ns = strdup(f->ns)) || !(m->name = strdup(f->name))) {
                if (m)
                        free(m->ns);
                free(m);
                return &r->unrouted;
        }
        m->next = r->fns[h];
        r->fns[h] = m;
        return m;
}

/* Free slots and revision states that no table lists and no request holds. */
static void prune(Router *r) {
        for (size_t i = 0; i < HASH_SIZE; i++) {
                for (Slot **p = &r->slots[i]; *p;) {
                        Slot *s = *p;
                        if (s->live || s->inflight) {
                                p = &s->next;
                                continue;
                        }
                        *p = s->next;
                        free(s->id);
                        free(s->addr);
                        free(s);
                }
                for (RevState **p = &r->revs[i]; *p;) {
                        RevState *s = *p;
                        if (s->rev || s->refs || s->inflight || s->queued || !s->reported_idle) {
                                p = &s->next;
                                continue;
                        }
                        *p = s->next;
                        revstate_free(s);
                }
        }
}

/* ---- queues (under the lock) ---------------------------------------------- */

static void queue_unlink(RevState *rs, Waiter *w) {
        if (w->prev)
                w->prev->next = w->next;
        else
                rs->head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        else
                rs->tail = w->prev;
        w->prev = w->next = NULL;
        rs->queued--;
}

static void queue_push(RevState *rs, Waiter *w) {
        w->prev = rs->tail;
        w->next = NULL;
        if (rs->tail)
                rs->tail->next = w;
        else
                rs->head = w;
        rs->tail = w;
        rs->queued++;
        w->state = WAITER_QUEUED;
        w->rs = rs;
}

static void params_of(const RouteRevision *rev, RouteParams *p) {
        *p = (RouteParams) { rev->mode, rev->timeout_ms, rev->startup_timeout_ms, rev->output_bytes };
}

static void inbox_push(Waiter *w) {
        RouterInbox *in = w->inbox;
        w->state = WAITER_READY;
        QUEUE_PUSH(in->head, in->tail, w, inbox_next);
        in->wake(in);
}

static void take_slot(RevState *rs, Slot *s) {
        s->inflight++;
        rs->inflight++;
        rs->reported_idle = false;
}

/* Hand free slots to the oldest waiters; fail them all when the revision
 * left the table or cannot be scheduled. */
static void drain(Router *r, RevState *rs) {
        while (rs->head) {
                Waiter *w = rs->head;
                const RouteRevision *rev = rs->rev;
                if (!rev || (rev->unschedulable && rev->n_instances == 0)) {
                        queue_unlink(rs, w);
                        w->slot = NULL;
                        w->error = rev ? ACT_UNSCHEDULABLE : ACT_UNAVAILABLE;
                        w->reason = strdup(rev ? rev->unschedulable : "the revision is no longer routed");
                        inbox_push(w);
                        continue;
                }
                ssize_t i = route_pick(rev, rng_next(r), NULL, 0);
                if (i < 0)
                        return;
                queue_unlink(rs, w);
                w->slot = rev->instances[i].slot;
                take_slot(rs, w->slot);
                params_of(rev, &w->params);
                w->error = ACT_OK;
                inbox_push(w);
        }
}

static void poke_maybe(Router *r, RevState *rs, uint64_t now) {
        if (rs->rev && rs->rev->n_instances == 0 && !rs->rev->unschedulable &&
            (rs->last_poke_ns == 0 || now - rs->last_poke_ns >= ROUTER_POKE_INTERVAL_NS)) {
                rs->last_poke_ns = now;
                rs->poke_pending = r->poke_pending = true;
                pthread_cond_signal(&r->cond);
        }
}

/* ---- the table -------------------------------------------------------------- */

static void bind_table(Router *r, RouteTable *t) {
        for (size_t i = 0; i < t->n_revisions; i++) {
                RouteRevision *rev = &t->revisions[i];
                rev->state = revstate_get(r, rev);
                for (size_t k = 0; k < rev->n_instances; k++)
                        rev->instances[k].slot = slot_get(r, &rev->instances[k], rev->mode);
        }
}

/* A table whose slots and states could not all be made (out of memory) is
 * cut down to what could. */
static void table_trim(RouteTable *t) {
        for (size_t i = 0; i < t->n_revisions; i++) {
                RouteRevision *rev = &t->revisions[i];
                size_t n = 0;
                for (size_t k = 0; k < rev->n_instances; k++)
                        if (rev->instances[k].slot)
                                rev->instances[n++] = rev->instances[k];
                        else {
                                RouteInstance *in = &rev->instances[k];
                                free(in->id), free(in->node), free(in->invoke), free(in->endpoint);
                        }
                rev->n_instances = n;
        }
}

static uint64_t swap(Router *r, RouteTable *t, bool only_newer) {
        pthread_mutex_lock(&r->lock);
        RouteTable *old = r->table;
        if (only_newer && old && t->version <= old->version) {
                uint64_t v = old->version;
                pthread_mutex_unlock(&r->lock);
                route_table_free(t);
                return v;
        }
        bind_table(r, t);
        table_trim(t);
        for (size_t i = 0; i < HASH_SIZE; i++) {
                for (Slot *s = r->slots[i]; s; s = s->next)
                        s->live = s->dropped = false;   /* a new table: a new chance */
                for (RevState *s = r->revs[i]; s; s = s->next)
                        s->rev = NULL;
        }
        for (size_t i = 0; i < t->n_revisions; i++) {
                RouteRevision *rev = &t->revisions[i];
                if (!rev->state)
                        continue;
                rev->state->rev = rev;
                for (size_t k = 0; k < rev->n_instances; k++)
                        rev->instances[k].slot->live = true;
        }
        r->table = t;
        for (size_t i = 0; i < HASH_SIZE; i++)
                for (RevState *s = r->revs[i]; s; s = s->next)
                        drain(r, s);
        prune(r);
        uint64_t v = old ? old->version : 0;
        pthread_mutex_unlock(&r->lock);
        route_table_free(old);
        return v;
}

uint64_t router_swap(Router *r, RouteTable *t) {
        return swap(r, t, false);
}

uint64_t router_swap_newer(Router *r, RouteTable *t) {
        return swap(r, t, true);
}

uint64_t router_version(Router *r) {
        pthread_mutex_lock(&r->lock);
        uint64_t v = r->table ? r->table->version : 0;
        pthread_mutex_unlock(&r->lock);
        return v;
}

/* ---- requests ----------------------------------------------------------------- */

/* A slot in rs, or w queued; the error otherwise. Under the lock. */
static ActError slot_or_queue(Router *r, RevState *rs, Slot *const *exclude, size_t n_exclude, uint64_t rnd,
                              Waiter *w, uint32_t queue_max, uint64_t now, Slot **ret_slot, char *msg, size_t msg_len) {
        const RouteRevision *rev = rs->rev;
        if (!rev) {
                snprintf(msg, msg_len, "the revision %s is no longer routed", rs->key);
                return ACT_UNAVAILABLE;
        }
        ssize_t i = rs->head ? -1 : route_pick(rev, rnd, exclude, n_exclude);
        if (i >= 0) {
                *ret_slot = rev->instances[i].slot;
                take_slot(rs, *ret_slot);
                return ACT_OK;
        }
        if (rev->unschedulable && rev->n_instances == 0) {
                snprintf(msg, msg_len, "%s", rev->unschedulable);
                return ACT_UNSCHEDULABLE;
        }
        if (!w) {
                snprintf(msg, msg_len, "no other instance of %s is free", rs->key);
                return ACT_UNAVAILABLE;
        }
        if (r->closed) {
                snprintf(msg, msg_len, "the activator is stopping and no instance of %s is free", rs->key);
                return ACT_SHUTTING_DOWN;
        }
        if (rs->queued >= queue_max) {
                snprintf(msg, msg_len, "%u requests already wait for %s; retry later", rs->queued, rs->key);
                return ACT_QUEUE_FULL;
        }
        w->cold = rev->n_instances == 0;
        w->since_ns = now;
        w->slot = NULL;
        queue_push(rs, w);
        rs->reported_idle = false;
        poke_maybe(r, rs, now);
        *ret_slot = NULL;
        return ACT_OK;
}

/* Park w as a miss, when a sync can still tell (under the lock). */
static bool park_miss(Router *r, Waiter *w, uint64_t now) {
        if (!w || w->synced || !r->live || r->closed || r->misses.queued >= ROUTER_MISSES_MAX)
                return false;
        w->cold = false;
        w->since_ns = now;
        w->slot = NULL;
        w->ticket = r->sync_round + 1;
        queue_push(&r->misses, w);
        pthread_cond_signal(&r->sync_cond);
        return true;
}

ActError router_authorize(Router *r, const FnPath *p, const AuthKey *key, char *msg, size_t msg_len) {
        pthread_mutex_lock(&r->lock);
        ActError e = ACT_UNAVAILABLE;
        if (r->table)
                e = route_authorize(r->table, p, key, msg, msg_len);
        else
                snprintf(msg, msg_len, "no route table from the controller yet; retry");
        pthread_mutex_unlock(&r->lock);
        return e;
}

bool router_has_function(Router *r, const FnPath *p, const char *ns, const FnSegment *seg) {
        pthread_mutex_lock(&r->lock);
        bool has = r->table && route_segment_function(r->table, p, ns, seg);
        pthread_mutex_unlock(&r->lock);
        return has;
}

ActError router_authorize_ns(Router *r, const AuthKey *key, const char *ns, char *msg, size_t msg_len) {
        const AuthToken *tok;
        ActError e = ACT_OK;
        pthread_mutex_lock(&r->lock);
        if (!r->table) {
                e = ACT_UNAVAILABLE;
                snprintf(msg, msg_len, "no route table from the controller yet; retry");
        } else if (!(tok = route_authenticate(r->table, key, msg, msg_len)))
                e = ACT_UNAUTHENTICATED;
        else if (!auth_allows(tok, ns)) {
                e = ACT_FORBIDDEN;
                snprintf(msg, msg_len, "token %s may not call namespace %s", tok->id, ns);
        }
        pthread_mutex_unlock(&r->lock);
        return e;
}

void router_route(Router *r, const FnPath *p, const AuthKey *key, uint64_t rnd, Waiter *w, uint32_t queue_max,
                  uint64_t now, RouteResult *ret) {
        const char *tag = NULL, *denied = NULL;
        const AuthToken *tok = NULL;
        pthread_mutex_lock(&r->lock);
        if (r->table && key)
                tok = route_authenticate(r->table, key, ret->message, sizeof ret->message);
        RouteFunction *f = r->table && (tok || !key) ?
                route_lookup_as(r->table, p, tok, &denied, &tag, &ret->sub, &ret->sub_len) : NULL;
        ret->metrics = fnmetrics_get(r, f);
        ret->rev = NULL;
        ret->slot = NULL;
        ret->queued = ret->parked = false;
        ret->developer = tok && tok->role >= TOKEN_ROLE_DEVELOPER;
        RouteRevision *rev = f ? route_resolve(f, tag, rnd >> 40) : NULL;
        if (w && w->synced && !w->counted_miss) {
                w->counted_miss = true;
                (!f || (!rev && tag && *tag)) ? r->misses_final++ : r->misses_found++;
        }
        if (!r->table) {
                ret->error = ACT_UNAVAILABLE;
                snprintf(ret->message, sizeof ret->message, "no route table from the controller yet; retry");
        } else if (key && !tok) {
                ret->error = ACT_UNAUTHENTICATED;
        } else if (denied) {
                ret->error = ACT_FORBIDDEN;
                snprintf(ret->message, sizeof ret->message, "token %s may not call functions in namespace %s",
                         tok->id, denied);
        } else if ((!f || (!rev && tag && *tag)) && park_miss(r, w, now)) {
                ret->error = ACT_OK;
                ret->parked = true;
        } else if (!f) {
                ret->error = ACT_NOT_FOUND;
                fnpath_missing(p, p->has_second, ret->message, sizeof ret->message);
        } else if (!rev || !rev->state) {
                ret->error = tag && *tag ? ACT_NOT_FOUND : ACT_UNAVAILABLE;
                snprintf(ret->message, sizeof ret->message, tag && *tag ? "function %s has no tag %s"
                         : "function %s has no revision taking traffic", f->key, tag);
        } else {
                RevState *rs = rev->state;
                ret->error = slot_or_queue(r, rs, NULL, 0, rnd, w, queue_max, now, &ret->slot, ret->message,
                                           sizeof ret->message);
                if (ret->error == ACT_OK) {
                        rs->refs++;
                        ret->rev = rs;
                        ret->queued = !ret->slot;
                        params_of(rev, &ret->params);
                }
        }
        pthread_mutex_unlock(&r->lock);
}

ActError router_retry(Router *r, RevState *rs, Slot *const *exclude, size_t n_exclude, uint64_t rnd,
                      Waiter *w, uint32_t queue_max, uint64_t now, Slot **ret_slot) {
        char msg[ROUTE_REASON_MAX + 128];
        pthread_mutex_lock(&r->lock);
        ActError e = slot_or_queue(r, rs, exclude, n_exclude, rnd, w, queue_max, now, ret_slot, msg, sizeof msg);
        pthread_mutex_unlock(&r->lock);
        return e;
}

void router_release(Router *r, RevState *rs, Slot *s) {
        pthread_mutex_lock(&r->lock);
        s->inflight--;
        rs->inflight--;
        if (rs->head)
                drain(r, rs);
        pthread_mutex_unlock(&r->lock);
}

void router_drop_slot(Router *r, Slot *s) {
        pthread_mutex_lock(&r->lock);
        s->dropped = true;
        pthread_mutex_unlock(&r->lock);
}

bool router_unqueue(Router *r, Waiter *w) {
        pthread_mutex_lock(&r->lock);
        bool queued = w->state == WAITER_QUEUED;
        if (queued) {
                queue_unlink(w->rs, w);
                w->state = WAITER_IDLE;
        }
        pthread_mutex_unlock(&r->lock);
        return queued;
}

void router_put(Router *r, RevState *rs) {
        if (!rs)
                return;
        pthread_mutex_lock(&r->lock);
        rs->refs--;
        pthread_mutex_unlock(&r->lock);
}

Waiter *router_inbox_take(Router *r, RouterInbox *inbox) {
        pthread_mutex_lock(&r->lock);
        Waiter *w = inbox->head;
        inbox->head = inbox->tail = NULL;
        for (Waiter *x = w; x; x = x->inbox_next)
                x->state = WAITER_IDLE;
        pthread_mutex_unlock(&r->lock);
        return w;
}

static void queue_fail_all(RevState *rs, ActError e, const char *why) {
        while (rs->head) {
                Waiter *w = rs->head;
                queue_unlink(rs, w);
                w->slot = NULL;
                w->error = e;
                free(w->reason);
                w->reason = strdup(why);
                inbox_push(w);
        }
}

void router_close(Router *r) {
        pthread_mutex_lock(&r->lock);
        r->closed = true;
        for (size_t i = 0; i < HASH_SIZE; i++)
                for (RevState *rs = r->revs[i]; rs; rs = rs->next)
                        queue_fail_all(rs, ACT_SHUTTING_DOWN, "the activator is stopping");
        queue_fail_all(&r->misses, ACT_SHUTTING_DOWN, "the activator is stopping");
        pthread_mutex_unlock(&r->lock);
}

/* ---- misses ----------------------------------------------------------------- */

/* Hand the misses of rounds up to round back to their workers. */
static void misses_release(Router *r, uint64_t round) {
        for (Waiter *w = r->misses.head, *next; w; w = next) {
                next = w->next;
                if (w->ticket > round)
                        continue;
                queue_unlink(&r->misses, w);
                w->reroute = true;
                w->error = ACT_OK;
                inbox_push(w);
        }
}

void router_set_live(Router *r, bool live) {
        pthread_mutex_lock(&r->lock);
        r->live = live;
        if (!live)
                misses_release(r, UINT64_MAX);
        pthread_mutex_unlock(&r->lock);
}

uint64_t router_wait_misses(Router *r) {
        uint64_t round = 0;
        pthread_mutex_lock(&r->lock);
        while (!r->sync_stop) {
                uint64_t now = router_now_ns(), at = r->sync_last_ns + ROUTER_SYNC_INTERVAL_NS;
                if (r->misses.head && (r->sync_last_ns == 0 || now >= at)) {
                        r->sync_last_ns = now;
                        round = ++r->sync_round;
                        break;
                }
                if (!r->misses.head)
                        pthread_cond_wait(&r->sync_cond, &r->lock);
                else {
                        struct timespec ts = { (time_t) (at / 1000000000u), (long) (at % 1000000000u) };
                        pthread_cond_timedwait(&r->sync_cond, &r->lock, &ts);
                }
        }
        pthread_mutex_unlock(&r->lock);
        return round;
}

void router_misses_done(Router *r, uint64_t round) {
        pthread_mutex_lock(&r->lock);
        misses_release(r, round);
        pthread_mutex_unlock(&r->lock);
}

/* ---- the controller client's view ------------------------------------------ */

json_t *router_wait_pokes(Router *r, uint64_t deadline_ns) {
        struct timespec ts = { (time_t) (deadline_ns / 1000000000u), (long) (deadline_ns % 1000000000u) };
        json_t *a = json_array();
        if (!a)
                return NULL;
        pthread_mutex_lock(&r->lock);
        while (!r->poke_pending && !r->interrupted && router_now_ns() < deadline_ns)
                if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT)
                        break;
        r->interrupted = false;
        if (r->poke_pending) {
                r->poke_pending = false;
                for (size_t i = 0; i < HASH_SIZE; i++)
                        for (RevState *rs = r->revs[i]; rs; rs = rs->next)
                                if (rs->poke_pending) {
                                        rs->poke_pending = false;
                                        json_array_append_new(a, json_pack("{s:s, s:s}", "namespace", rs->ns,
                                                                           "revision", rs->name));
                                }
        }
        pthread_mutex_unlock(&r->lock);
        return a;
}

void router_tick(Router *r) {
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < HASH_SIZE; i++)
                for (RevState *rs = r->revs[i]; rs; rs = rs->next)
                        if (rs->head)
                                drain(r, rs);
        pthread_mutex_unlock(&r->lock);
}

void router_interrupt(Router *r) {
        pthread_mutex_lock(&r->lock);
        r->interrupted = r->sync_stop = true;
        pthread_cond_broadcast(&r->cond);
        pthread_cond_broadcast(&r->sync_cond);
        pthread_mutex_unlock(&r->lock);
}

json_t *router_stats(Router *r, const char *id) {
        json_t *revs = json_array();
        if (!revs)
                return NULL;
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < HASH_SIZE; i++)
                for (RevState *rs = r->revs[i]; rs; rs = rs->next) {
                        if (rs->reported_idle)
                                continue;
                        json_array_append_new(revs, json_pack("{s:s, s:s, s:i, s:i}", "namespace", rs->ns,
                                                              "revision", rs->name, "inflight", (json_int_t) rs->inflight,
                                                              "queued", (json_int_t) rs->queued));
                        if (rs->inflight == 0 && rs->queued == 0)
                                rs->reported_idle = true;
                }
        pthread_mutex_unlock(&r->lock);
        return json_pack("{s:s, s:o}", "activator", id, "revisions", revs);
}

/* ---- metrics ----------------------------------------------------------------- */

void router_record(Router *r, FnMetrics *m, unsigned status, uint64_t duration_ns, bool cold, uint64_t wait_ns) {
        pthread_mutex_lock(&r->lock);
        if (!m)
                m = &r->unrouted;
        fnmetrics_count(m, status, (double) duration_ns / 1e9);
        if (cold) {
                m->cold_starts++;
                histogram_add(&m->cold_wait, (double) wait_ns / 1e9);
        }
        pthread_mutex_unlock(&r->lock);
}

static void gauges_write(Router *r, FILE *f) {
        fprintf(f, "# HELP fnbox_activator_route_misses_total Requests for a function or tag the route table lacked,\n"
                   "# by what the table fetched for them said.\n"
                   "# TYPE fnbox_activator_route_misses_total counter\n"
                   "fnbox_activator_route_misses_total{outcome=\"found\"} %llu\n"
                   "fnbox_activator_route_misses_total{outcome=\"not_found\"} %llu\n",
                (unsigned long long) r->misses_found, (unsigned long long) r->misses_final);
        fputs("# HELP fnbox_activator_queue_depth Requests waiting for an instance, by revision.\n"
              "# TYPE fnbox_activator_queue_depth gauge\n", f);
        for (size_t i = 0; i < HASH_SIZE; i++)
                for (RevState *rs = r->revs[i]; rs; rs = rs->next)
                        fprintf(f, "fnbox_activator_queue_depth{namespace=\"%s\",revision=\"%s\"} %u\n", rs->ns,
                                rs->name, rs->queued);
        fputs("# HELP fnbox_activator_inflight Requests being served by an instance, by revision.\n"
              "# TYPE fnbox_activator_inflight gauge\n", f);
        for (size_t i = 0; i < HASH_SIZE; i++)
                for (RevState *rs = r->revs[i]; rs; rs = rs->next)
                        fprintf(f, "fnbox_activator_inflight{namespace=\"%s\",revision=\"%s\"} %u\n", rs->ns,
                                rs->name, rs->inflight);
        fprintf(f, "# HELP fnbox_activator_routes_version The version of the route table in use.\n"
                   "# TYPE fnbox_activator_routes_version gauge\nfnbox_activator_routes_version %llu\n",
                (unsigned long long) (r->table ? r->table->version : 0));
}

char *router_metrics_text(Router *r, size_t *ret_len) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        pthread_mutex_lock(&r->lock);
        for (int fam = 0; fam < _METRICS_FAMILIES; fam++) {
                metrics_write_help(f, fam);
                if (r->unrouted.latency.n)
                        metrics_write_fn(f, fam, &r->unrouted);
                for (size_t i = 0; i < HASH_SIZE; i++)
                        for (FnMetrics *m = r->fns[i]; m; m = m->next)
                                if (m->latency.n || fam == METRICS_REQUESTS)
                                        metrics_write_fn(f, fam, m);
        }
        gauges_write(r, f);
        pthread_mutex_unlock(&r->lock);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        *ret_len = len;
        return text;
}
