/* controller/cluster.c: the cluster's life: the ticker thread (leases, the
 * autoscaler every second, drains, store syncs), instances placed by the
 * scheduler and reconciled against what nodes report, crash loops, and the
 * long polls, which are suspended HTTP requests answered from here. Node
 * status parsing lives in cluster_node.c, store syncs in cluster_sync.c,
 * the JSON and text we serve in cluster_render.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "controller/cluster_internal.h"
#include "lib/util.h"

#define CRASH_BACKOFF_MAX_MS    (5 * 60 * 1000)
#define INITIAL_WINDOW_MS       60000   /* a revision this new gets its initial scale */

int64_t cluster_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cluster_wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- objects ------------------------------------------------------------------------ */

static void pairs_free(ManifestPair *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].key);
                free(p[i].value);
        }
        free(p);
}

void rev_free(Rev *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_options; i++) {
                free(r->options[i].variant);
                pairs_free(r->options[i].selector, r->options[i].n_selector);
                json_decref(r->options[i].spec);
        }
        free(r->options);
        json_decref(r->spec);
        free(r->kpa);
        free(r->key);
        free(r->ns);
        free(r->function);
        free(r->name);
        free(r->code_digest);
        free(r);
}

void func_free(Func *f) {
        if (!f)
                return;
        json_decref(f->traffic);
        free(f->key);
        free(f->ns);
        free(f->name);
        free(f);
}

static void node_free(Node *n) {
        if (!n)
                return;
        free(n->name);
        free(n->boot_id);
        free(n->invoke);
        json_decref(n->labels_json);
        json_decref(n->capacity_json);
        json_decref(n->gpu_devices);
        pairs_free(n->labels, n->n_labels);
        free(n);
}

static void instance_free(Instance *i) {
        if (!i)
                return;
        free(i->id);
        free(i->endpoint);
        free(i);
}

static void log_ring_free(LogRing *l) {
        if (!l)
                return;
        for (size_t k = 0; k < CLUSTER_LOG_LINES; k++) {
                free(l->lines[k].instance);
                free(l->lines[k].line);
        }
        free(l);
}

/* ---- versions and long polls ----------------------------------------------------- */

void cluster_routes_changed(Cluster *c) {
        c->routes_version++;
        free(c->routes_text);
        c->routes_text = NULL;
        pthread_cond_signal(&c->wake);
}

void cluster_node_changed(Cluster *c, Node *n) {
        n->version++;
        pthread_cond_signal(&c->wake);
}

typedef struct Done {
        HttpRequest *req;
        HttpResponse resp;
        struct Done *next;
} Done;

/* The routes table as a response (a copy of the cached text). */
static void routes_response(Cluster *c, HttpResponse *resp) {
        if (!c->routes_text)
                c->routes_text = render_routes(c, &c->routes_len);
        char *copy = c->routes_text ? malloc(c->routes_len) : NULL;
        if (!copy) {
                http_error(resp, 500, "internal", NULL, "out of memory");
                return;
        }
        memcpy(copy, c->routes_text, c->routes_len);
        http_reply_raw(resp, 200, "application/json", copy, c->routes_len);
}

static void assignment_response(Cluster *c, Node *n, HttpResponse *resp) {
        http_reply(resp, 200, render_assignment(c, n));
}

/* Move every waiter whose version moved on, whose time is up, or all when
 * stopping, to *done with its answer. */
static void collect_waiters(Cluster *c, int64_t now, Done **done) {
        for (Waiter **p = &c->waiters; *p;) {
                Waiter *w = *p;
                uint64_t v = w->kind == WAIT_ROUTES ? c->routes_version : w->node->version;
                if (v == w->after && now < w->deadline_ms && !c->stopping) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                Done *d = calloc(1, sizeof *d);
                if (!d) {               /* cannot answer now: keep it for the next round */
                        w->next = *p;
                        *p = w;
                        return;
                }
                d->req = w->req;
                if (w->kind == WAIT_ROUTES)
                        routes_response(c, &d->resp);
                else
                        assignment_response(c, w->node, &d->resp);
                d->next = *done;
                *done = d;
                free(w);
        }
}

static void resume_all(Done *d) {
        while (d) {
                Done *next = d->next;
                http_resume(d->req, &d->resp);
                free(d);
                d = next;
        }
}

static int64_t earliest_deadline(Cluster *c, int64_t until) {
        for (Waiter *w = c->waiters; w; w = w->next)
                if (w->deadline_ms < until)
                        until = w->deadline_ms;
        return until;
}

/* Answer now, or suspend the request as a waiter. Called with the lock. */
static void wait_or_answer(Cluster *c, WaitKind kind, Node *n, uint64_t after, int64_t wait_ms, HttpRequest *req,
                           HttpResponse *resp) {
        uint64_t v = kind == WAIT_ROUTES ? c->routes_version : n->version;
        Waiter *w = v == after && wait_ms > 0 && !c->stopping ? calloc(1, sizeof *w) : NULL;
        if (!w) {
                if (kind == WAIT_ROUTES)
                        routes_response(c, resp);
                else
                        assignment_response(c, n, resp);
                return;
        }
        *w = (Waiter) { .req = req, .kind = kind, .node = n, .after = after,
                        .deadline_ms = cluster_now_ms() + wait_ms, .next = c->waiters };
        c->waiters = w;
        http_defer(req);
        pthread_cond_signal(&c->wake);
}

void cluster_routes(Cluster *c, uint64_t after, int64_t wait_ms, HttpRequest *req, HttpResponse *resp) {
        pthread_mutex_lock(&c->lock);
        wait_or_answer(c, WAIT_ROUTES, NULL, after, wait_ms, req, resp);
        pthread_mutex_unlock(&c->lock);
}

int cluster_node_assignments(Cluster *c, const char *name, uint64_t after, int64_t wait_ms, HttpRequest *req,
                             HttpResponse *resp) {
        pthread_mutex_lock(&c->lock);
        Node *n = cmap_get(&c->nodes, name);
        if (n)
                wait_or_answer(c, WAIT_NODE, n, after, wait_ms, req, resp);
        pthread_mutex_unlock(&c->lock);
        return n ? 0 : -ENOENT;
}

/* ---- instances --------------------------------------------------------------------- */

static bool inst_routed(const Instance *i) {
        return i->state == INST_READY && !i->leaving && !i->node->lost;
}

/* Forget an instance: out of the routes and out of its node's assignment. */
static void instance_remove(Cluster *c, Instance *i) {
        if (inst_routed(i))
                cluster_routes_changed(c);
        cluster_node_changed(c, i->node);
        cmap_remove(&c->instances, i->id);
        i->rev->n_instances--;
        instance_free(i);
}

static int instance_id(Cluster *c, const Rev *r, char *buf, size_t size) {
        for (int tries = 0; tries < 16; tries++) {
                uint8_t b[3];
                if (getrandom(b, sizeof b, 0) != sizeof b)
                        return -EIO;
                snprintf(buf, size, "%s-%02x%02x%02x", r->name, b[0], b[1], b[2]);
                if (!cmap_get(&c->instances, buf))
                        return 0;
        }
        return -EEXIST;
}

Instance *cluster_instance_new(Cluster *c, Rev *r, Node *n, size_t option, const char *id, int64_t now) {
        Instance *i = calloc(1, sizeof *i);
        if (!i || !(i->id = strdup(id)) || cmap_put(&c->instances, id, i) < 0) {
                instance_free(i);
                return NULL;
        }
        i->rev = r;
        i->node = n;
        i->option = option;
        i->state = INST_STARTING;
        i->created_ms = now;
        snprintf(i->reason, sizeof i->reason, "assigned");
        r->n_instances++;
        c->instances_created++;
        cluster_node_changed(c, n);
        return i;
}

uint64_t cluster_node_gpus_used(Cluster *c, const Node *n) {
        uint64_t used = 0;
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->instances, e, &it));) {
                const Instance *i = e->value;
                if (i->node == n)
                        used |= i->gpu_mask;
        }
        return used;
}

/* The scheduler's view of the nodes, with what is placed on each. */
static SchedNode *sched_nodes(Cluster *c, const Rev *r, Node ***ret_nodes, size_t *ret_n) {
        size_t n = c->nodes.n, k = 0, it = 0;
        SchedNode *sn = calloc(n ? n : 1, sizeof *sn);
        Node **nodes = calloc(n ? n : 1, sizeof *nodes);
        if (!sn || !nodes) {
                free(sn);
                free(nodes);
                return NULL;
        }
        for (MapEntry *e = NULL; (e = cmap_next(&c->nodes, e, &it));) {
                Node *nd = e->value;
                nodes[k] = nd;
                sn[k++] = (SchedNode) { .name = nd->name, .ready = !nd->lost, .labels = nd->labels,
                                        .n_labels = nd->n_labels,
                                        .cpu_millis = nd->cpu_millis * c->cfg.cpu_overcommit,
                                        .memory_bytes = nd->memory_bytes, .gpus = nd->gpus };
        }
        it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                const RevOption *o = &i->rev->options[i->option];
                for (size_t x = 0; x < k; x++)
                        if (nodes[x] == i->node) {
                                sn[x].used_cpu_millis += o->cpu_millis;
                                sn[x].used_memory_bytes += o->memory_bytes;
                                sn[x].used_gpus += o->gpus;
                                sn[x].instances++;
                                sn[x].revision_instances += i->rev == r;
                        }
        }
        /* the GPUs actually held count too (an instance taken back from a
         * node may hold others than its spec says): what the scheduler
         * sees free is what place() can then pick */
        for (size_t x = 0; x < k; x++) {
                uint64_t held = (uint64_t) __builtin_popcountll(cluster_node_gpus_used(c, nodes[x]));
                if (held > sn[x].used_gpus)
                        sn[x].used_gpus = held;
        }
        *ret_nodes = nodes;
        *ret_n = k;
        return sn;
}

/* Place one new instance of r, or say why not. */
static int place(Cluster *c, Rev *r, int64_t now, bool dry_run, char *reason, size_t size) {
        Node **nodes = NULL;
        size_t n = 0;
        SchedNode *sn = sched_nodes(c, r, &nodes, &n);
        SchedOption *opts = calloc(r->n_options ? r->n_options : 1, sizeof *opts);
        SchedResult res;
        int k = sn && opts ? 0 : -ENOMEM;
        for (size_t o = 0; k == 0 && o < r->n_options; o++)
                opts[o] = (SchedOption) { .variant = r->options[o].variant, .selector = r->options[o].selector,
                                          .n_selector = r->options[o].n_selector, .cpu_millis = r->options[o].cpu_millis,
                                          .memory_bytes = r->options[o].memory_bytes, .gpus = r->options[o].gpus };
        if (k == 0)
                k = scheduler_place(sn, n, opts, r->n_options, &res);
        if (k < 0)
                snprintf(reason, size, "%s", k == -ENOMEM ? "out of memory" : res.reason);
        char id[CLUSTER_ID_MAX];
        uint64_t gpus = 0;
        /* which of the node's GPUs: never one that an instance record
         * there holds (a leaving one's included, until it is gone) */
        if (k == 0 && opts[res.option].gpus > 0 &&
            scheduler_pick_gpus(cluster_node_gpus_used(c, nodes[res.node]), nodes[res.node]->gpus,
                                opts[res.option].gpus, &gpus) < 0) {
                snprintf(reason, size, "no node has the capacity: needs %llu free GPU%s",
                         (unsigned long long) opts[res.option].gpus, opts[res.option].gpus == 1 ? "" : "s");
                k = -ENOSPC;
        }
        Instance *inst = NULL;
        if (k == 0 && !dry_run && (k = instance_id(c, r, id, sizeof id)) == 0 &&
            !(inst = cluster_instance_new(c, r, nodes[res.node], res.option, id, now)))
                k = -ENOMEM;
        if (inst)
                inst->gpu_mask = gpus;
        free(sn);
        free(nodes);
        free(opts);
        return k;
}

static void set_unschedulable(Cluster *c, Rev *r, const char *reason, bool crash_loop) {
        if (strcmp(r->unschedulable, reason) == 0 && r->crash_loop == crash_loop)
                return;
        snprintf(r->unschedulable, sizeof r->unschedulable, "%s", reason);
        r->crash_loop = crash_loop && reason[0];
        cluster_routes_changed(c);
}

static void record_decision(Cluster *c, Rev *r, uint32_t desired, uint32_t ready, const char *reason) {
        Decision *d = &r->decisions[r->decision_head];
        *d = (Decision) { .at_ms = cluster_wall_ms(), .desired = desired, .ready = ready };
        snprintf(d->reason, sizeof d->reason, "%s", reason);
        r->decision_head = (r->decision_head + 1) % CLUSTER_DECISIONS;
        if (r->n_decisions < CLUSTER_DECISIONS)
                r->n_decisions++;
        c->decisions_total++;
}

/* One instance of r to leave: a starting one (newest first) before a ready
 * one (fewest in flight first). While r is routed, an instance that is
 * still starting is never stopped for want of traffic: a model that loads
 * for minutes loads to the end (its startup deadline still holds) and
 * leaves, if it must, once ready. */
static Instance *pick_victim(Cluster *c, Rev *r) {
        Instance *best = NULL;
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                if (i->rev != r || i->leaving || i->node->lost || (r->reachable && i->state == INST_STARTING))
                        continue;
                bool ready = i->state == INST_READY, best_ready = best && best->state == INST_READY;
                if (!best || (!ready && best_ready) ||
                    (ready == best_ready && (ready ? i->inflight < best->inflight : i->created_ms > best->created_ms)))
                        best = i;
        }
        return best;
}

/* Scale-down, step one: out of the routes now; the node is told to drain
 * once the activators had time to see the new table (not routed: at once). */
static void instance_leave(Cluster *c, Instance *i, int64_t now) {
        bool routed = inst_routed(i);
        i->leaving = true;
        i->leaving_ms = now;
        if (routed)
                cluster_routes_changed(c);
        else {
                i->drain = true;
                cluster_node_changed(c, i->node);
        }
}

static uint32_t live_instances(Cluster *c, Rev *r, uint32_t *ret_ready, int64_t *ret_ready_since) {
        uint32_t live = 0, ready = 0;
        int64_t since = -1;
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                if (i->rev != r || i->leaving || i->node->lost)
                        continue;
                live++;
                if (i->state == INST_READY) {
                        ready++;
                        if (since < 0 || i->ready_ms < since)
                                since = i->ready_ms;
                }
        }
        if (ret_ready)
                *ret_ready = ready;
        if (ret_ready_since)
                *ret_ready_since = since;
        return live;
}

/* Bring r's instances to r->desired: place what is missing (or say why no
 * node can), let the surplus leave. */
static void reconcile(Cluster *c, Rev *r, int64_t now) {
        uint32_t live = live_instances(c, r, NULL, NULL), placed = 0;
        char reason[SCHED_REASON_MAX] = "";
        if (r->crash_loop && now >= r->backoff_until_ms) {
                set_unschedulable(c, r, "", false);
                r->failures = 0;
        }
        if (live < r->desired && !r->crash_loop) {
                while (live + placed < r->desired && place(c, r, now, false, reason, sizeof reason) == 0)
                        placed++;
                if (live + placed == 0)
                        set_unschedulable(c, r, reason, false);
                else if (!r->crash_loop)
                        set_unschedulable(c, r, "", false);
        }
        for (; live > r->desired; live--) {
                Instance *v = pick_victim(c, r);
                if (!v)
                        break;
                instance_leave(c, v, now);
        }
        /* a placement reason goes stale when nodes come and go: try again */
        if (live == 0 && placed == 0 && r->desired == 0 && r->unschedulable[0] && !r->crash_loop &&
            place(c, r, now, true, reason, sizeof reason) == 0)
                set_unschedulable(c, r, "", false);
}

static uint32_t observed(const Rev *r, int64_t now, bool *ret_any) {
        uint32_t sum = 0;
        bool any = false;
        for (size_t k = 0; k < CLUSTER_ACTIVATORS_MAX; k++) {
                const ActivatorStat *s = &r->stats[k];
                if (s->name[0] && now - s->at_ms <= CLUSTER_STATS_FRESH_MS) {
                        sum += s->inflight + s->queued;
                        any = true;
                }
        }
        if (ret_any)
                *ret_any = any && sum > 0;
        return sum;
}

static KpaConfig kpa_config(const Rev *r) {
        const ManifestParams *p = &r->params;
        return (KpaConfig) { .min = p->min, .max = p->max, .initial = p->initial, .target = p->target,
                             .stable_window_ms = p->stable_window_ms, .panic_window_ms = p->panic_window_ms,
                             .scale_to_zero_after_ms = p->scale_to_zero_after_ms, .retention_ms = p->retention_ms,
                             .max_scale_up_rate = p->max_scale_up_rate, .max_scale_down_rate = p->max_scale_down_rate };
}

/* The autoscaler's decision for r, then reconcile. A new decision is kept
 * (for `fnbox describe`) when the desired count or the panic mode changes. */
void cluster_scale_rev(Cluster *c, Rev *r, int64_t now, bool record_sample) {
        if (!r->kpa) {
                if (!(r->kpa = malloc(sizeof *r->kpa)))
                        return;
                kpa_state_init(r->kpa);
                bool fresh = r->initial_pending && cluster_wall_ms() - r->created_wall_ms < INITIAL_WINDOW_MS;
                if (!fresh) {
                        r->kpa->initial_reached = true;
                        r->kpa->initial_reached_ms = now;
                }
                r->initial_pending = false;
        }
        if (record_sample)
                kpa_record(r->kpa, now, observed(r, now, NULL));
        uint32_t ready = 0;
        int64_t ready_since;
        live_instances(c, r, &ready, &ready_since);
        KpaConfig cfg = kpa_config(r);
        KpaInput in = { .now_ms = now, .ready = ready, .reachable = r->reachable, .poked = r->poked,
                        .ready_since_ms = ready_since };
        KpaDecision d;
        kpa_decide(r->kpa, &cfg, &in, &d);
        r->poked = false;
        if (d.desired != r->desired || d.panicking != r->panicking || r->n_decisions == 0)
                record_decision(c, r, d.desired, ready, d.reason);
        r->desired = d.desired;
        r->panicking = d.panicking;
        r->stable_concurrency = d.stable_concurrency;
        reconcile(c, r, now);
}

/* ---- instance reports -------------------------------------------------------------- */

/* A failure before the instance was ever ready; the third in a row is a
 * crash loop: unschedulable, with the reason, for a back-off that doubles. */
static void count_failure(Cluster *c, Rev *r, const char *why, int64_t now) {
        c->instances_failed++;
        if (++r->failures < CLUSTER_CRASH_LOOP)
                return;
        int64_t backoff = c->cfg.crash_backoff_ms << (r->backoffs < 5 ? r->backoffs : 5);
        if (backoff > CRASH_BACKOFF_MAX_MS)
                backoff = CRASH_BACKOFF_MAX_MS;
        r->backoffs++;
        r->backoff_until_ms = now + backoff;
        char reason[SCHED_REASON_MAX];
        snprintf(reason, sizeof reason, "instance failed: %.150s (%u times in a row)", why, r->failures);
        set_unschedulable(c, r, reason, true);
        char note[KPA_REASON_MAX];
        snprintf(note, sizeof note, "crash loop: %.120s; no new instance for %" PRId64 "s", reason, backoff / 1000);
        record_decision(c, r, r->desired, 0, note);
}

/* The node says i is in state st. */
void cluster_instance_report(Cluster *c, Instance *i, InstState st, const char *reason, uint32_t inflight,
                             const char *endpoint, int64_t since_ms, int64_t now) {
        bool was_routed = inst_routed(i);
        i->reported = true;
        i->state = st;
        snprintf(i->reason, sizeof i->reason, "%s", reason ? reason : "");
        i->inflight = inflight;
        i->since_ms = since_ms;
        if (!endpoint != !i->endpoint || (endpoint && strcmp(endpoint, i->endpoint) != 0)) {
                free(i->endpoint);
                i->endpoint = endpoint ? strdup(endpoint) : NULL;
                if (was_routed)
                        cluster_routes_changed(c);
        }
        if (st == INST_READY && !i->ever_ready) {
                i->ever_ready = true;
                i->ready_ms = now;
                i->rev->failures = 0;
                i->rev->backoffs = 0;
        }
        if (st == INST_STOPPED || st == INST_FAILED) {
                if (!i->leaving && !i->ever_ready)
                        count_failure(c, i->rev, i->reason[0] ? i->reason : inst_state_name(st), now);
                else if (st == INST_FAILED)
                        c->instances_failed++;
                instance_remove(c, i);
                return;
        }
        if (inst_routed(i) != was_routed)
                cluster_routes_changed(c);
}

/* An instance the node stopped listing, or never started in time. */
void cluster_instance_gone(Cluster *c, Instance *i, const char *why, int64_t now) {
        if (!i->leaving && !i->ever_ready)
                count_failure(c, i->rev, why, now);
        instance_remove(c, i);
}

/* ---- the ticker -------------------------------------------------------------------- */

static void node_lost(Cluster *c, Node *n) {
        n->lost = true;
        n->persisted_ms = 0;
        size_t it = 0, k = 0;
        Instance **gone = calloc(c->instances.n ? c->instances.n : 1, sizeof *gone);
        for (MapEntry *e = NULL; gone && (e = cmap_next(&c->instances, e, &it));)
                if (((Instance *) e->value)->node == n)
                        gone[k++] = e->value;
        for (size_t x = 0; x < k; x++)
                instance_remove(c, gone[x]);
        free(gone);
        cluster_routes_changed(c);
        cluster_node_changed(c, n);
        fprintf(stderr, "fnbox-controller: node %s is lost (no status for %" PRId64 "ms); %zu instance%s rescheduled\n",
                n->name, c->cfg.lease_ms, k, k == 1 ? "" : "s");
}

static void check_nodes(Cluster *c, int64_t now) {
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->nodes, e, &it));) {
                Node *n = e->value;
                if (!n->lost && now - n->seen_ms > c->cfg.lease_ms)
                        node_lost(c, n);
        }
}

/* No activator has a request in flight on any instance of r: each busy
 * activator reports every second, and one that was idle said so once and
 * reports again as soon as it has a request (activator/router.c). */
static bool rev_idle(const Rev *r, int64_t now) {
        for (size_t k = 0; k < CLUSTER_ACTIVATORS_MAX; k++)
                if (r->stats[k].name[0] && now - r->stats[k].at_ms <= CLUSTER_STATS_FRESH_MS && r->stats[k].inflight > 0)
                        return false;
        return true;
}

/* Drains that are due, and instances their node never reported. A
 * draining service instance is idle once a report period has passed
 * since the drain (every activator that had a request on it then has said
 * so since) and no activator has one on its revision: the node may stop
 * it at once instead of waiting out the request timeout (a `fresh`
 * instance's node sees its own requests end). */
static void check_instances(Cluster *c, int64_t now) {
        size_t it = 0, k = 0;
        Instance **late = calloc(c->instances.n ? c->instances.n : 1, sizeof *late);
        for (MapEntry *e = NULL; late && (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                if (i->leaving && !i->drain && now - i->leaving_ms >= c->cfg.drain_delay_ms) {
                        i->drain = true;
                        cluster_node_changed(c, i->node);
                }
                if (i->drain && !i->drain_idle && now - i->leaving_ms >= c->cfg.drain_delay_ms + CLUSTER_STATS_PERIOD_MS &&
                    rev_idle(i->rev, now)) {
                        i->drain_idle = true;
                        cluster_node_changed(c, i->node);
                }
                if (!i->reported && now - i->created_ms > (int64_t) i->rev->params.startup_timeout_ms + c->cfg.lease_ms)
                        late[k++] = i;
        }
        for (size_t x = 0; x < k; x++)
                cluster_instance_gone(c, late[x], "the node never reported it", now);
        free(late);
}

static bool rev_active(const Rev *r, int64_t now) {
        bool traffic = false;
        observed(r, now, &traffic);
        return r->n_instances > 0 || traffic || r->poked || r->kpa || (r->reachable && r->params.min > 0) ||
               (r->reachable && r->initial_pending);
}

/* Every active revision through the autoscaler; idle ones lose their
 * window state, revisions nothing refers to any more are forgotten. */
static void scale_all(Cluster *c, int64_t now) {
        size_t it = 0, k = 0;
        Rev **idle = calloc(c->revs.n ? c->revs.n : 1, sizeof *idle);
        for (MapEntry *e = NULL; idle && (e = cmap_next(&c->revs, e, &it));) {
                Rev *r = e->value;
                if (rev_active(r, now))
                        cluster_scale_rev(c, r, now, true);
                else if (r->unschedulable[0])
                        reconcile(c, r, now);
                bool traffic = false;
                observed(r, now, &traffic);
                if (r->kpa && r->desired == 0 && r->n_instances == 0 && !traffic && !r->panicking &&
                    r->kpa->initial_reached) {
                        free(r->kpa);
                        r->kpa = NULL;
                }
                if (!r->reachable && r->n_instances == 0 && !r->kpa)
                        idle[k++] = r;
        }
        for (size_t x = 0; x < k; x++) {
                cmap_remove(&c->revs, idle[x]->key);
                rev_free(idle[x]);
        }
        free(idle);
}

/* Nodes whose state the store should hear about (copies, written after
 * the lock is released). */
static size_t nodes_to_persist(Cluster *c, int64_t now, StoreNode *out, size_t max) {
        size_t it = 0, k = 0;
        for (MapEntry *e = NULL; k < max && (e = cmap_next(&c->nodes, e, &it));) {
                Node *n = e->value;
                if (n->persisted_ms > 0 && now - n->persisted_ms < CLUSTER_HEARTBEAT_PERSIST_MS)
                        continue;
                char *labels = json_dumps(n->labels_json, JSON_COMPACT | JSON_SORT_KEYS);
                char *cap = json_dumps(n->capacity_json, JSON_COMPACT | JSON_SORT_KEYS);
                char *name = strdup(n->name), *state = strdup(n->lost ? "lost" : "ready");
                if (!labels || !cap || !name || !state) {
                        free(labels), free(cap), free(name), free(state);
                        break;
                }
                out[k++] = (StoreNode) { .name = name, .labels_json = labels, .capacity_json = cap, .state = state,
                                         .heartbeat_ms = cluster_wall_ms() - (now - n->seen_ms) };
                n->persisted_ms = now;
        }
        return k;
}

void cluster_persist_nodes(Cluster *c, int64_t now) {
        StoreNode batch[16];
        size_t n;
        do {
                pthread_mutex_lock(&c->lock);
                n = nodes_to_persist(c, now, batch, ELEMENTSOF(batch));
                pthread_mutex_unlock(&c->lock);
                for (size_t i = 0; i < n; i++) {
                        int r = store_node_put(c->store, &batch[i]);
                        if (r < 0)
                                fprintf(stderr, "fnbox-controller: store: node %s: %s\n", batch[i].name, strerror(-r));
                        store_node_clear(&batch[i]);
                }
        } while (n == ELEMENTSOF(batch));
}

static void ticker_sync(Cluster *c, int64_t now) {
        if (now < c->next_sync_ms && !c->sync_all_pending)
                return;
        c->sync_all_pending = false;
        c->next_sync_ms = now + CLUSTER_SYNC_PERIOD_MS;
        pthread_mutex_unlock(&c->lock);
        int r = cluster_sync_all(c);
        if (r < 0)
                fprintf(stderr, "fnbox-controller: reading functions from the store: %s\n", strerror(-r));
        pthread_mutex_lock(&c->lock);
}

static void *ticker_main(void *arg) {
        Cluster *c = arg;
        int64_t next_tick = cluster_now_ms();
        pthread_mutex_lock(&c->lock);
        while (c->running) {
                int64_t now = cluster_now_ms();
                Done *done = NULL;
                if (now >= next_tick) {
                        check_nodes(c, now);
                        check_instances(c, now);
                        scale_all(c, now);
                        next_tick = now + 1000;
                }
                collect_waiters(c, now, &done);
                pthread_mutex_unlock(&c->lock);
                resume_all(done);
                cluster_persist_nodes(c, now);
                pthread_mutex_lock(&c->lock);
                ticker_sync(c, now);
                if (!c->running)
                        break;
                int64_t until = earliest_deadline(c, next_tick);
                struct timespec ts = { .tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000 };
                if (until > cluster_now_ms())
                        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

/* ---- activators ------------------------------------------------------------------- */

static void stat_put(Rev *r, const char *activator, uint32_t inflight, uint32_t queued, int64_t now) {
        ActivatorStat *slot = NULL, *oldest = &r->stats[0];
        for (size_t k = 0; k < CLUSTER_ACTIVATORS_MAX && !slot; k++) {
                ActivatorStat *s = &r->stats[k];
                if (strcmp(s->name, activator) == 0 || !s->name[0])
                        slot = s;
                else if (s->at_ms < oldest->at_ms)
                        oldest = s;
        }
        if (!slot)
                slot = oldest;
        snprintf(slot->name, sizeof slot->name, "%s", activator);
        slot->inflight = inflight;
        slot->queued = queued;
        slot->at_ms = now;
}

static int bad(char *err, size_t size, const char *what, const char *expected) {
        snprintf(err, size, "%s: expected %s", what, expected);
        return -EINVAL;
}

int cluster_activator_stats(Cluster *c, const json_t *body, char *err, size_t errsize) {
        const char *act = json_string_value(json_object_get(body, "activator"));
        const json_t *list = json_object_get(body, "revisions");
        if (!act || !*act || strlen(act) >= sizeof(((ActivatorStat *) 0)->name))
                return bad(err, errsize, "activator", "a string of 1 to 63 bytes");
        if (!json_is_array(list) || json_array_size(list) > 100000)
                return bad(err, errsize, "revisions", "a list of at most 100000 entries");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
                const json_t *in = json_object_get(e, "inflight"), *q = json_object_get(e, "queued");
                if (!json_is_string(json_object_get(e, "namespace")) || !json_is_string(json_object_get(e, "revision")) ||
                    !json_is_integer(in) || !json_is_integer(q) || json_integer_value(in) < 0 ||
                    json_integer_value(q) < 0 || json_integer_value(in) > 1000000 || json_integer_value(q) > 1000000)
                        return bad(err, errsize, "revisions", "entries with namespace, revision, and inflight and "
                                   "queued integers from 0 to 1000000");
        }
        int64_t now = cluster_now_ms();
        pthread_mutex_lock(&c->lock);
        json_array_foreach(list, i, e) {
                char key[2 * 256 + 2];
                snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(e, "namespace")),
                         json_string_value(json_object_get(e, "revision")));
                Rev *r = cmap_get(&c->revs, key);
                if (r)
                        stat_put(r, act, (uint32_t) json_integer_value(json_object_get(e, "inflight")),
                                 (uint32_t) json_integer_value(json_object_get(e, "queued")), now);
        }
        pthread_mutex_unlock(&c->lock);
        return 0;
}

static int poke_now(Cluster *c, const char *key) {
        Done *done = NULL;
        int64_t now = cluster_now_ms();
        pthread_mutex_lock(&c->lock);
        Rev *r = cmap_get(&c->revs, key);
        if (r) {
                r->poked = true;
                cluster_scale_rev(c, r, now, false);
                collect_waiters(c, now, &done);
        }
        pthread_mutex_unlock(&c->lock);
        resume_all(done);
        return r ? 0 : -ENOENT;
}

int cluster_poke(Cluster *c, const char *ns, const char *revision) {
        char key[2 * 256 + 2], function[256];
        snprintf(key, sizeof key, "%s/%s", ns, revision);
        if (poke_now(c, key) == 0)
                return 0;
        /* not known yet (deployed a moment ago, or through another
         * controller): read its function, then try again */
        const char *dash = strrchr(revision, '-');
        if (!dash || (size_t) (dash - revision) >= sizeof function)
                return -ENOENT;
        memcpy(function, revision, (size_t) (dash - revision));
        function[dash - revision] = 0;
        cluster_sync_function(c, ns, function);
        return poke_now(c, key);
}

void cluster_function_changed(Cluster *c, const char *ns, const char *name) {
        int r = cluster_sync_function(c, ns, name);
        if (r < 0 && r != -ENOENT)
                fprintf(stderr, "fnbox-controller: reading %s/%s from the store: %s\n", ns, name, strerror(-r));
        pthread_mutex_lock(&c->lock);
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
}

/* ---- logs ---------------------------------------------------------------------------- */

void cluster_log_append(Cluster *c, const Instance *i, int64_t time_ms, const char *line) {
        char key[2 * 256 + 2];
        snprintf(key, sizeof key, "%s/%s", i->rev->ns, i->rev->function);
        LogRing *l = cmap_get(&c->logs, key);
        if (!l) {
                if (!(l = calloc(1, sizeof *l)) || cmap_put(&c->logs, key, l) < 0) {
                        free(l);
                        return;
                }
        }
        LogLine *slot = &l->lines[l->head];
        free(slot->instance);
        free(slot->line);
        slot->instance = strdup(i->id);
        slot->line = strdup(line);
        slot->time_ms = time_ms;
        l->head = (l->head + 1) % CLUSTER_LOG_LINES;
        if (l->n < CLUSTER_LOG_LINES)
                l->n++;
        else
                l->dropped++;
}

/* ---- life cycle ------------------------------------------------------------------ */

int cluster_new(Store *store, const ClusterConfig *cfg, Cluster **ret) {
        Cluster *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->wake, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&c->lock, NULL);
        pthread_mutex_init(&c->sync_lock, NULL);
        c->store = store;
        c->cfg = *cfg;
        if (c->cfg.lease_ms <= 0)
                c->cfg.lease_ms = CLUSTER_LEASE_DEFAULT_MS;
        if (c->cfg.cpu_overcommit == 0)
                c->cfg.cpu_overcommit = CLUSTER_CPU_OVERCOMMIT_DEFAULT;
        if (c->cfg.crash_backoff_ms <= 0)
                c->cfg.crash_backoff_ms = 10000;
        if (c->cfg.drain_delay_ms <= 0)
                c->cfg.drain_delay_ms = 1000;
        /* versions start at the wall clock, so that after a restart they
         * differ from what any client saw before */
        c->routes_version = (uint64_t) cluster_wall_ms();
        c->started_wall_ms = cluster_wall_ms();
        *ret = c;
        return 0;
}

int cluster_start(Cluster *c) {
        int r = cluster_sync_all(c);
        if (r < 0)
                return r;
        c->next_sync_ms = cluster_now_ms() + CLUSTER_SYNC_PERIOD_MS;
        c->running = true;
        r = -pthread_create(&c->ticker, NULL, ticker_main, c);
        if (r < 0)
                c->running = false;
        return r;
}

void cluster_stop(Cluster *c) {
        if (!c)
                return;
        Done *done = NULL;
        pthread_mutex_lock(&c->lock);
        bool was = c->running;
        c->running = false;
        c->stopping = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
        if (was)
                pthread_join(c->ticker, NULL);
        pthread_mutex_lock(&c->lock);
        collect_waiters(c, cluster_now_ms(), &done);
        pthread_mutex_unlock(&c->lock);
        resume_all(done);
}

void cluster_free(Cluster *c) {
        if (!c)
                return;
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->instances, e, &it));)
                instance_free(e->value);
        it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->revs, e, &it));)
                rev_free(e->value);
        it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->nodes, e, &it));)
                node_free(e->value);
        it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->funcs, e, &it));)
                func_free(e->value);
        it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->logs, e, &it));)
                log_ring_free(e->value);
        cmap_clear(&c->instances);
        cmap_clear(&c->revs);
        cmap_clear(&c->nodes);
        cmap_clear(&c->funcs);
        cmap_clear(&c->logs);
        cmap_clear(&c->pins);
        free(c->routes_text);
        json_decref(c->tokens);
        json_decref(c->skills);
        free(c->requests);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->sync_lock);
        pthread_cond_destroy(&c->wake);
        free(c);
}

void cluster_count_request(Cluster *c, const char *endpoint, unsigned status) {
        pthread_mutex_lock(&c->lock);
        RequestCount *slot = NULL;
        for (size_t i = 0; i < c->n_requests && !slot; i++)
                if (c->requests[i].status == status && strcmp(c->requests[i].endpoint, endpoint) == 0)
                        slot = &c->requests[i];
        if (!slot && c->n_requests < 512) {
                RequestCount *grown = realloc(c->requests, (c->n_requests + 1) * sizeof *grown);
                if (grown) {
                        c->requests = grown;
                        slot = &grown[c->n_requests++];
                        *slot = (RequestCount) { .status = status };
                        snprintf(slot->endpoint, sizeof slot->endpoint, "%s", endpoint);
                }
        }
        if (slot)
                slot->n++;
        pthread_mutex_unlock(&c->lock);
}
