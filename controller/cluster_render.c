/* controller/cluster_render.c: what the cluster serves: a node's assignment
 * and the route table (docs/internals.md), a function's status and logs
 * (docs/api.md), and Prometheus text. Called with the cluster's lock held,
 * except the public cluster_* functions here, which take it. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/api.h"
#include "controller/cluster_internal.h"

/* A mask's GPU indices, lowest first: [0, 2]. */
json_t *render_gpu_list(uint64_t mask) {
        json_t *a = json_array();
        for (int g = 0; a && g < 64; g++)
                if ((mask & (1ULL << g)) && json_array_append_new(a, json_integer(g)) < 0)
                        a = (json_decref(a), NULL);
        return a;
}

json_t *render_assignment(Cluster *c, Node *n) {
        json_t *list = json_array();
        size_t it = 0;
        int64_t hb = c->cfg.lease_ms / 5 < 100 ? 100 : c->cfg.lease_ms / 5;
        for (MapEntry *e = NULL; list && (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                if (i->node != n)
                        continue;
                const RevOption *o = &i->rev->options[i->option];
                json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:O}", "id", i->id, "namespace", i->rev->ns,
                                      "function", i->rev->function, "revision", i->rev->name, "variant", o->variant,
                                      "desired", i->drain ? "drain" : "run", "codeDigest", i->rev->code_digest,
                                      "spec", o->spec);
                if (j && i->drain_idle && json_object_set_new(j, "idle", json_true()) < 0)
                        j = (json_decref(j), NULL);
                if (j && i->gpu_mask && json_object_set_new(j, "gpus", render_gpu_list(i->gpu_mask)) < 0)
                        j = (json_decref(j), NULL);
                if (!j || json_array_append_new(list, j) < 0)
                        list = (json_decref(list), NULL);
        }
        return list ? json_pack("{s:I, s:I, s:I, s:o}", "version", (json_int_t) n->version, "heartbeatMs",
                                (json_int_t) hb, "leaseMs", (json_int_t) c->cfg.lease_ms, "instances", list) : NULL;
}

/* ---- the route table ------------------------------------------------------------------ */

static json_t *route_revision(const Rev *r) {
        const ManifestParams *p = &r->params;
        return json_pack("{s:s, s:i, s:I, s:I, s:I, s:s?, s:[]}", "mode", p->mode == MANIFEST_MODE_SERVICE ? "service" : "fresh",
                         "concurrency", (int) p->concurrency, "timeoutMs", (json_int_t) p->timeout_ms,
                         "startupTimeoutMs", (json_int_t) p->startup_timeout_ms, "outputBytes",
                         (json_int_t) p->output_bytes, "unschedulable", r->unschedulable[0] ? r->unschedulable : NULL,
                         "instances");
}

static int routes_instances(Cluster *c, json_t *revisions) {
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                json_t *rev = json_object_get(revisions, i->rev->key);
                if (!rev || i->state != INST_READY || i->leaving || i->node->lost)
                        continue;
                json_t *j = json_pack("{s:s, s:s, s:s?, s:s?}", "id", i->id, "node", i->node->name, "invoke",
                                      i->node->invoke, "endpoint", i->endpoint);
                if (!j || json_array_append_new(json_object_get(rev, "instances"), j) < 0)
                        return -ENOMEM;
        }
        return 0;
}

char *render_routes(Cluster *c, size_t *ret_len) {
        json_t *functions = json_array(), *revisions = json_object();
        size_t it = 0;
        int r = functions && revisions ? 0 : -ENOMEM;
        for (MapEntry *e = NULL; r == 0 && (e = cmap_next(&c->funcs, e, &it));) {
                Func *f = e->value;
                json_t *j = json_pack("{s:s, s:s, s:O}", "namespace", f->ns, "name", f->name, "traffic", f->traffic);
                r = j && json_array_append_new(functions, j) == 0 ? 0 : -ENOMEM;
                size_t i;
                json_t *t;
                json_array_foreach(f->traffic, i, t) {
                        char key[512];
                        snprintf(key, sizeof key, "%s/%s", f->ns, json_string_value(json_object_get(t, "revision")));
                        Rev *rev = cmap_get(&c->revs, key);
                        if (r == 0 && rev && !json_object_get(revisions, key) &&
                            json_object_set_new(revisions, key, route_revision(rev)) < 0)
                                r = -ENOMEM;
                }
        }
        if (r == 0)
                r = routes_instances(c, revisions);
        json_t *doc = r == 0 ? json_pack("{s:I, s:O, s:O, s:o, s:o}", "version", (json_int_t) c->routes_version,
                                         "functions", functions, "revisions", revisions, "tokens",
                                         c->tokens ? json_incref(c->tokens) : json_array(), "skills",
                                         c->skills ? json_incref(c->skills) : json_array()) : NULL;
        json_decref(functions);
        json_decref(revisions);
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (text)
                *ret_len = strlen(text);
        return text;
}

/* ---- a function's status ------------------------------------------------------------- */

static json_t *decisions_json(const Rev *r) {
        json_t *a = json_array();
        for (size_t k = 0; a && k < r->n_decisions; k++) {
                size_t idx = (r->decision_head + CLUSTER_DECISIONS - r->n_decisions + k) % CLUSTER_DECISIONS;
                const Decision *d = &r->decisions[idx];
                json_array_append_new(a, json_pack("{s:o, s:i, s:i, s:s}", "at", api_time_json(d->at_ms), "desired",
                                                   (int) d->desired, "ready", (int) d->ready, "reason", d->reason));
        }
        return a;
}

static json_t *rev_status(Cluster *c, const Rev *r, int64_t now) {
        uint32_t ready = 0, starting = 0, draining = 0, inflight = 0, queued = 0;
        json_t *insts = json_array();
        size_t it = 0;
        for (MapEntry *e = NULL; insts && (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                if (i->rev != r)
                        continue;
                if (i->leaving || i->state == INST_DRAINING)
                        draining++;
                else if (i->state == INST_READY)
                        ready++;
                else
                        starting++;
                json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b, s:i}", "id", i->id, "node", i->node->name,
                                      "state", i->leaving ? "leaving" : inst_state_name(i->state), "reason", i->reason,
                                      "variant", r->options[i->option].variant, "drain", i->drain, "inflight",
                                      (int) i->inflight);
                if (j && i->gpu_mask)
                        json_object_set_new(j, "gpus", render_gpu_list(i->gpu_mask));
                json_array_append_new(insts, j);
        }
        for (size_t k = 0; k < CLUSTER_ACTIVATORS_MAX; k++)
                if (r->stats[k].name[0] && now - r->stats[k].at_ms <= CLUSTER_STATS_FRESH_MS) {
                        inflight += r->stats[k].inflight;
                        queued += r->stats[k].queued;
                }
        return json_pack("{s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:b, s:s?, s:i, s:o, s:o}",
                         "revision", r->name, "routed", r->reachable, "desired", (int) r->desired, "ready", (int) ready,
                         "starting", (int) starting, "draining", (int) draining, "inflight", (int) inflight,
                         "queued", (int) queued, "concurrency", r->stable_concurrency, "panic", r->panicking,
                         "unschedulable", r->unschedulable[0] ? r->unschedulable : NULL,
                         "failuresInARow", (int) r->failures, "instances", insts ? insts : json_array(),
                         "decisions", decisions_json(r));
}

static int cmp_rev_desc(const void *a, const void *b) {
        return -strcmp((*(const Rev *const *) a)->name, (*(const Rev *const *) b)->name);
}

json_t *cluster_function_status(Cluster *c, const char *ns, const char *name) {
        json_t *list = json_array();
        int64_t now = cluster_now_ms();
        pthread_mutex_lock(&c->lock);
        size_t it = 0, k = 0;
        Rev **revs = calloc(c->revs.n ? c->revs.n : 1, sizeof *revs);
        for (MapEntry *e = NULL; revs && (e = cmap_next(&c->revs, e, &it));) {
                Rev *r = e->value;
                if (strcmp(r->ns, ns) == 0 && strcmp(r->function, name) == 0)
                        revs[k++] = r;
        }
        qsort(revs, k, sizeof *revs, cmp_rev_desc);
        for (size_t i = 0; list && i < k; i++)
                if (json_array_append_new(list, rev_status(c, revs[i], now)) < 0)
                        list = (json_decref(list), NULL);
        free(revs);
        pthread_mutex_unlock(&c->lock);
        return list ? json_pack("{s:o}", "revisions", list) : NULL;
}

json_t *cluster_function_logs(Cluster *c, const char *ns, const char *name, size_t limit) {
        char key[512];
        snprintf(key, sizeof key, "%s/%s", ns, name);
        json_t *items = json_array();
        uint64_t dropped = 0;
        pthread_mutex_lock(&c->lock);
        LogRing *l = cmap_get(&c->logs, key);
        size_t n = l ? l->n : 0, skip = n > limit ? n - limit : 0;
        for (size_t k = skip; items && k < n; k++) {
                const LogLine *ln = &l->lines[(l->head + CLUSTER_LOG_LINES - n + k) % CLUSTER_LOG_LINES];
                json_t *j = json_pack("{s:s?, s:o, s:s?}", "instance", ln->instance, "time", api_time_json(ln->time_ms),
                                      "line", ln->line);
                if (!j || json_array_append_new(items, j) < 0)
                        items = (json_decref(items), NULL);
        }
        if (l)
                dropped = l->dropped + skip;
        pthread_mutex_unlock(&c->lock);
        return items ? json_pack("{s:o, s:I}", "items", items, "dropped", (json_int_t) dropped) : NULL;
}

/* ---- Prometheus text ---------------------------------------------------------------- */

typedef struct Text {
        char *buf;
        size_t len, cap;
        bool failed;
} Text;

__attribute__((format(printf, 2, 3)))
static void text_add(Text *t, const char *fmt, ...) {
        va_list ap;
        for (int round = 0; round < 2 && !t->failed; round++) {
                va_start(ap, fmt);
                int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        t->failed = true;
                        return;
                }
                if (t->buf && (size_t) n < t->cap - t->len) {
                        t->len += (size_t) n;
                        return;
                }
                size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t) n + 1;
                char *b = realloc(t->buf, cap);
                if (!b) {
                        t->failed = true;
                        return;
                }
                t->buf = b;
                t->cap = cap;
        }
}

static void metrics_revisions(Cluster *c, Text *t) {
        text_add(t, "# HELP fnbox_controller_instances_desired Instances the autoscaler wants, per revision.\n"
                    "# TYPE fnbox_controller_instances_desired gauge\n");
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->revs, e, &it));) {
                Rev *r = e->value;
                text_add(t, "fnbox_controller_instances_desired{namespace=\"%s\",revision=\"%s\"} %u\n", r->ns, r->name,
                         r->desired);
        }
        text_add(t, "# HELP fnbox_controller_instances_ready Ready instances, per revision.\n"
                    "# TYPE fnbox_controller_instances_ready gauge\n");
        it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->revs, e, &it));) {
                Rev *r = e->value;
                uint32_t ready = 0;
                size_t j = 0;
                for (MapEntry *f = NULL; (f = cmap_next(&c->instances, f, &j));) {
                        Instance *i = f->value;
                        ready += i->rev == r && i->state == INST_READY && !i->leaving;
                }
                text_add(t, "fnbox_controller_instances_ready{namespace=\"%s\",revision=\"%s\"} %u\n", r->ns, r->name,
                         ready);
        }
}

static void metrics_nodes(Cluster *c, Text *t) {
        unsigned ready = 0, lost = 0;
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->nodes, e, &it));)
                ((Node *) e->value)->lost ? lost++ : ready++;
        text_add(t, "# HELP fnbox_controller_nodes Nodes by state.\n# TYPE fnbox_controller_nodes gauge\n"
                    "fnbox_controller_nodes{state=\"ready\"} %u\nfnbox_controller_nodes{state=\"lost\"} %u\n", ready, lost);
}

char *cluster_metrics(Cluster *c, size_t *ret_len) {
        Text t = {};
        pthread_mutex_lock(&c->lock);
        text_add(&t, "# HELP fnbox_controller_requests_total API requests answered, by endpoint and status.\n"
                     "# TYPE fnbox_controller_requests_total counter\n");
        for (size_t i = 0; i < c->n_requests; i++)
                text_add(&t, "fnbox_controller_requests_total{endpoint=\"%s\",status=\"%u\"} %" PRIu64 "\n",
                         c->requests[i].endpoint, c->requests[i].status, c->requests[i].n);
        metrics_revisions(c, &t);
        metrics_nodes(c, &t);
        text_add(&t, "# HELP fnbox_controller_scaling_decisions_total Changes of a revision's desired instances.\n"
                     "# TYPE fnbox_controller_scaling_decisions_total counter\n"
                     "fnbox_controller_scaling_decisions_total %" PRIu64 "\n"
                     "# HELP fnbox_controller_instances_created_total Instances placed on nodes.\n"
                     "# TYPE fnbox_controller_instances_created_total counter\n"
                     "fnbox_controller_instances_created_total %" PRIu64 "\n"
                     "# HELP fnbox_controller_instance_failures_total Instances that failed or stopped on their own.\n"
                     "# TYPE fnbox_controller_instance_failures_total counter\n"
                     "fnbox_controller_instance_failures_total %" PRIu64 "\n",
                     c->decisions_total, c->instances_created, c->instances_failed);
        pthread_mutex_unlock(&c->lock);
        if (t.failed) {
                free(t.buf);
                return NULL;
        }
        *ret_len = t.len;
        return t.buf;
}
