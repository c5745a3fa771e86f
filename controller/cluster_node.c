/* controller/cluster_node.c: a node's status report (docs/internals.md),
 * checked field by field with a sentence for the first thing wrong, then
 * applied: the node registered or renewed (a lost node comes back with a
 * fresh assignment), each instance's reported state, the instances it no
 * longer lists, and its stderr lines into the functions' log rings. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/cluster_internal.h"
#include "lib/util.h"

#define STATUS_LABELS_MAX       64
#define STATUS_INSTANCES_MAX    4096
#define STATUS_LOG_LINES_MAX    256
#define STATUS_LOG_LINE_MAX     1024

typedef struct StatusInstance {
        const char *id;
        InstState state;
        const char *reason;
        const char *endpoint;
        uint32_t inflight;
        int64_t since_ms;
        uint64_t gpu_mask;
} StatusInstance;

typedef struct Status {
        const char *boot_id, *invoke;
        json_t *labels, *capacity, *gpu_devices;
        uint64_t cpu_millis, memory_bytes, gpus;
        StatusInstance *instances;
        size_t n_instances;
        const json_t *logs;
        uint64_t logs_dropped;
} Status;

static const char *const state_names[] = {
        [INST_STARTING] = "starting", [INST_READY] = "ready", [INST_DRAINING] = "draining",
        [INST_STOPPED] = "stopped", [INST_FAILED] = "failed",
};

const char *inst_state_name(InstState s) {
        return s >= 0 && (size_t) s < ELEMENTSOF(state_names) ? state_names[s] : "unknown";
}

__attribute__((format(printf, 3, 4)))
static int refuse(char *err, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static bool text_ok(const json_t *v, size_t min, size_t max) {
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        return json_is_string(v) && n >= min && n <= max && strlen(json_string_value(v)) == n;
}

static bool uint_ok(const json_t *v, int64_t max) {
        return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max;
}

static int parse_labels(const json_t *labels, char *err, size_t size) {
        const char *k;
        json_t *v;
        if (!json_is_object(labels) || json_object_size(labels) > STATUS_LABELS_MAX)
                return refuse(err, size, "labels: expected an object of at most %d string values", STATUS_LABELS_MAX);
        json_object_foreach((json_t *) labels, k, v)
                if (strlen(k) == 0 || strlen(k) > 253 || !text_ok(v, 0, 63))
                        return refuse(err, size, "labels.%.64s: expected a key of 1 to 253 bytes and a string of at "
                                      "most 63 bytes", k);
        return 0;
}

static int parse_capacity(const json_t *cap, Status *st, char *err, size_t size) {
        static const char *const keys[] = { "cpuMillis", "memoryBytes", "gpus" };
        uint64_t *dst[] = { &st->cpu_millis, &st->memory_bytes, &st->gpus };
        if (!json_is_object(cap))
                return refuse(err, size, "capacity: expected an object {cpuMillis, memoryBytes, gpus}");
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const json_t *v = json_object_get(cap, keys[i]);
                if (v && !uint_ok(v, INT64_MAX))
                        return refuse(err, size, "capacity.%s: expected an integer >= 0", keys[i]);
                *dst[i] = v ? (uint64_t) json_integer_value(v) : 0;
        }
        return 0;
}

static int parse_instance(const json_t *e, size_t i, StatusInstance *out, char *err, size_t size) {
        const json_t *id = json_object_get(e, "id"), *state = json_object_get(e, "state"),
                     *reason = json_object_get(e, "reason"), *in = json_object_get(e, "inflight"),
                     *ep = json_object_get(e, "endpoint"), *since = json_object_get(e, "sinceMs");
        if (!json_is_object(e) || !text_ok(id, 1, CLUSTER_ID_MAX - 1))
                return refuse(err, size, "instances[%zu].id: expected a string of 1 to %d bytes", i, CLUSTER_ID_MAX - 1);
        size_t s;
        for (s = 0; s < ELEMENTSOF(state_names); s++)
                if (json_is_string(state) && strcmp(json_string_value(state), state_names[s]) == 0)
                        break;
        if (s == ELEMENTSOF(state_names))
                return refuse(err, size, "instances[%zu].state: expected starting, ready, draining, stopped or failed", i);
        if ((reason && !json_is_null(reason) && !text_ok(reason, 0, 256)) || (in && !uint_ok(in, 1000000)) ||
            (ep && !json_is_null(ep) && !text_ok(ep, 1, 256)) || (since && !json_is_integer(since)))
                return refuse(err, size, "instances[%zu]: reason (at most 256 bytes), inflight (an integer >= 0), "
                              "endpoint (null or at most 256 bytes) or sinceMs (an integer) is malformed", i);
        const json_t *gpus = json_object_get(e, "gpus"), *g;
        uint64_t mask = 0;
        size_t gi;
        if (gpus && (!json_is_array(gpus) || json_array_size(gpus) > SCHED_GPUS_MAX))
                return refuse(err, size, "instances[%zu].gpus: expected a list of GPU indices", i);
        json_array_foreach(gpus, gi, g) {
                if (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) >= SCHED_GPUS_MAX)
                        return refuse(err, size, "instances[%zu].gpus[%zu]: expected an index 0 to %d", i, gi,
                                      SCHED_GPUS_MAX - 1);
                mask |= 1ULL << json_integer_value(g);
        }
        *out = (StatusInstance) { .id = json_string_value(id), .state = (InstState) s, .gpu_mask = mask,
                                  .reason = json_string_value(reason), .endpoint = json_string_value(ep),
                                  .inflight = in ? (uint32_t) json_integer_value(in) : 0,
                                  .since_ms = since ? json_integer_value(since) : 0 };
        return 0;
}

static int parse_logs(const json_t *logs, const json_t *dropped, Status *st, char *err, size_t size) {
        size_t i;
        json_t *e;
        if (logs && !json_is_null(logs) && (!json_is_array(logs) || json_array_size(logs) > STATUS_LOG_LINES_MAX))
                return refuse(err, size, "logs: expected a list of at most %d lines", STATUS_LOG_LINES_MAX);
        json_array_foreach(logs, i, e)
                if (!json_is_object(e) || !text_ok(json_object_get(e, "instance"), 1, CLUSTER_ID_MAX - 1) ||
                    !text_ok(json_object_get(e, "line"), 0, STATUS_LOG_LINE_MAX) ||
                    !json_is_integer(json_object_get(e, "timeMs")))
                        return refuse(err, size, "logs[%zu]: expected {instance, timeMs, line} with a line of at most %d "
                                      "bytes", i, STATUS_LOG_LINE_MAX);
        if (dropped && !uint_ok(dropped, INT64_MAX))
                return refuse(err, size, "logsDropped: expected an integer >= 0");
        st->logs = json_is_array(logs) ? logs : NULL;
        st->logs_dropped = dropped ? (uint64_t) json_integer_value(dropped) : 0;
        return 0;
}

/* Check the whole report before anything is applied. */
static int status_parse(const char *name, const json_t *body, Status *st, char *err, size_t size) {
        const json_t *nm = json_object_get(body, "name"), *boot = json_object_get(body, "bootId"),
                     *inv = json_object_get(body, "invoke"), *list = json_object_get(body, "instances");
        if (!json_is_string(nm) || strcmp(json_string_value(nm), name) != 0)
                return refuse(err, size, "name: expected \"%s\", the node in the path", name);
        if (!text_ok(boot, 1, 128))
                return refuse(err, size, "bootId: expected a string of 1 to 128 bytes");
        if (!text_ok(inv, 5, 256) || (strncmp(json_string_value(inv), "unix:", 5) != 0 &&
                                      strncmp(json_string_value(inv), "tcp:", 4) != 0))
                return refuse(err, size, "invoke: expected unix:PATH or tcp:HOST:PORT (at most 256 bytes)");
        st->boot_id = json_string_value(boot);
        st->invoke = json_string_value(inv);
        st->labels = json_object_get(body, "labels");
        st->capacity = json_object_get(body, "capacity");
        st->gpu_devices = json_object_get(body, "gpuDevices");
        if (st->gpu_devices && (!json_is_array(st->gpu_devices) || json_array_size(st->gpu_devices) > SCHED_GPUS_MAX))
                return refuse(err, size, "gpuDevices: expected a list of at most %d GPUs", SCHED_GPUS_MAX);
        size_t gi;
        json_t *g;
        json_array_foreach(st->gpu_devices, gi, g) {
                const json_t *idx = json_object_get(g, "index");
                if (!json_is_object(g) || !json_is_integer(idx) || json_integer_value(idx) != (json_int_t) gi ||
                    json_dumpb(g, NULL, 0, JSON_COMPACT) > 1024)
                        return refuse(err, size, "gpuDevices[%zu]: expected {index: %zu, device, ...} of at most 1 KiB", gi, gi);
        }
        int r = parse_labels(st->labels, err, size);
        if (r < 0 || (r = parse_capacity(st->capacity, st, err, size)) < 0 ||
            (r = parse_logs(json_object_get(body, "logs"), json_object_get(body, "logsDropped"), st, err, size)) < 0)
                return r;
        if (list && !json_is_null(list) && (!json_is_array(list) || json_array_size(list) > STATUS_INSTANCES_MAX))
                return refuse(err, size, "instances: expected a list of at most %d", STATUS_INSTANCES_MAX);
        st->n_instances = json_array_size(list);
        st->instances = calloc(st->n_instances ? st->n_instances : 1, sizeof *st->instances);
        if (!st->instances)
                return -ENOMEM;
        for (size_t i = 0; i < st->n_instances; i++)
                if ((r = parse_instance(json_array_get(list, i), i, &st->instances[i], err, size)) < 0)
                        return r;
        return 0;
}

/* ---- applying it -------------------------------------------------------------------- */

static int labels_pairs(const json_t *labels, ManifestPair **ret, size_t *ret_n) {
        size_t n = json_object_size(labels), k = 0;
        ManifestPair *p = calloc(n ? n : 1, sizeof *p);
        const char *key;
        json_t *v;
        if (!p)
                return -ENOMEM;
        json_object_foreach((json_t *) labels, key, v) {
                if (!(p[k].key = strdup(key)) || !(p[k].value = strdup(json_string_value(v)))) {
                        free(p[k].key);
                        for (size_t i = 0; i < k; i++)
                                free(p[i].key), free(p[i].value);
                        free(p);
                        return -ENOMEM;
                }
                k++;
        }
        *ret = p;
        *ret_n = k;
        return 0;
}

static Node *node_get(Cluster *c, const char *name) {
        Node *n = cmap_get(&c->nodes, name);
        if (n)
                return n;
        n = calloc(1, sizeof *n);
        if (!n || !(n->name = strdup(name)) || cmap_put(&c->nodes, name, n) < 0) {
                if (n)
                        free(n->name);
                free(n);
                return NULL;
        }
        n->version = (uint64_t) cluster_wall_ms();
        return n;
}

static int set_text(char **dst, const char *src) {
        if (*dst && strcmp(*dst, src) == 0)
                return 0;
        char *s = strdup(src);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 1;
}

/* Labels, capacity and addresses; changes reach the store and the routes. */
static int node_update(Cluster *c, Node *n, const Status *st) {
        bool labels_changed = !n->labels_json || !json_equal(n->labels_json, st->labels);
        bool cap_changed = !n->capacity_json || !json_equal(n->capacity_json, st->capacity);
        int r = set_text(&n->invoke, st->invoke);
        if (r < 0 || set_text(&n->boot_id, st->boot_id) < 0)
                return -ENOMEM;
        if (r > 0)
                cluster_routes_changed(c);
        if (labels_changed) {
                ManifestPair *p;
                size_t k;
                if (labels_pairs(st->labels, &p, &k) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < n->n_labels; i++)
                        free(n->labels[i].key), free(n->labels[i].value);
                free(n->labels);
                n->labels = p;
                n->n_labels = k;
                json_decref(n->labels_json);
                n->labels_json = json_deep_copy(st->labels);
        }
        if (cap_changed) {
                json_decref(n->capacity_json);
                n->capacity_json = json_deep_copy(st->capacity);
        }
        n->cpu_millis = st->cpu_millis;
        n->memory_bytes = st->memory_bytes;
        n->gpus = st->gpus < SCHED_GPUS_MAX ? st->gpus : SCHED_GPUS_MAX;
        if (st->gpu_devices && (!n->gpu_devices || !json_equal(n->gpu_devices, st->gpu_devices))) {
                json_t *copy = json_deep_copy(st->gpu_devices);
                if (!copy)
                        return -ENOMEM;
                json_decref(n->gpu_devices);
                n->gpu_devices = copy;
        }
        if (labels_changed || cap_changed || r > 0)
                n->persisted_ms = 0;
        return 0;
}

/* After a controller restart the nodes still run what the last one asked
 * for: take those instances back (once per node, on its first report to
 * this process) when their revision is one we route. */
static void adopt(Cluster *c, Node *n, const StatusInstance *si, int64_t now) {
        size_t len = strlen(si->id), it = 0;
        if (len < 8 || si->id[len - 7] != '-' || (si->state != INST_STARTING && si->state != INST_READY))
                return;
        Rev *found = NULL;
        int matches = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->revs, e, &it));) {
                Rev *r = e->value;
                if (r->reachable && strlen(r->name) == len - 7 && strncmp(r->name, si->id, len - 7) == 0)
                        found = r, matches++;
        }
        if (matches != 1)
                return;
        size_t option = 0;
        while (option + 1 < found->n_options &&
               !scheduler_matches(found->options[option].selector, found->options[option].n_selector, n->labels,
                                  n->n_labels))
                option++;
        Instance *i = cluster_instance_new(c, found, n, option, si->id, now);
        if (i) {
                i->reported = true;
                i->gpu_mask = si->gpu_mask; /* what it holds, as the node says */
                fprintf(stderr, "fnbox-controller: node %s: took back instance %s\n", n->name, si->id);
        }
}

static void apply_instances(Cluster *c, Node *n, const Status *st, bool first, int64_t now) {
        n->mark++;
        for (size_t k = 0; k < st->n_instances; k++) {
                const StatusInstance *si = &st->instances[k];
                Instance *i = cmap_get(&c->instances, si->id);
                if (!i && first)
                        adopt(c, n, si, now);
                i = cmap_get(&c->instances, si->id);
                if (!i || i->node != n)
                        continue;
                i->mark = n->mark;
                cluster_instance_report(c, i, si->state, si->reason, si->inflight, si->endpoint, si->since_ms, now);
        }
        /* reported before, missing now: the node no longer has it */
        size_t it = 0, gone_n = 0;
        Instance **gone = calloc(c->instances.n ? c->instances.n : 1, sizeof *gone);
        for (MapEntry *e = NULL; gone && (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                if (i->node == n && i->reported && i->mark != n->mark)
                        gone[gone_n++] = i;
        }
        for (size_t k = 0; k < gone_n; k++)
                cluster_instance_gone(c, gone[k], "the node no longer runs it", now);
        free(gone);
}

static void apply_logs(Cluster *c, Node *n, const Status *st) {
        size_t k;
        json_t *e;
        json_array_foreach(st->logs, k, e) {
                Instance *i = cmap_get(&c->instances, json_string_value(json_object_get(e, "instance")));
                if (i && i->node == n)
                        cluster_log_append(c, i, json_integer_value(json_object_get(e, "timeMs")),
                                           json_string_value(json_object_get(e, "line")));
        }
        n->logs_dropped += st->logs_dropped;
}

int cluster_node_status(Cluster *c, const char *name, const json_t *body, json_t **ret, char *err, size_t errsize) {
        Status st = {};
        int r = status_parse(name, body, &st, err, errsize);
        if (r < 0) {
                free(st.instances);
                return r;
        }
        int64_t now = cluster_now_ms();
        bool persist = false;
        pthread_mutex_lock(&c->lock);
        Node *n = node_get(c, name);
        r = n ? node_update(c, n, &st) : -ENOMEM;
        if (r == 0) {
                bool first = !n->reported;
                persist = first || n->lost;
                if (n->lost) {
                        n->lost = false;
                        n->persisted_ms = 0;
                        cluster_node_changed(c, n);     /* a fresh assignment */
                        cluster_routes_changed(c);
                        fprintf(stderr, "fnbox-controller: node %s is back\n", name);
                } else if (first)
                        fprintf(stderr, "fnbox-controller: node %s registered (%s)\n", name, st.invoke);
                n->seen_ms = now;
                n->reported = true;
                /* logs first: an instance that failed at once is forgotten
                 * by apply_instances, and its last words matter most */
                apply_logs(c, n, &st);
                apply_instances(c, n, &st, first, now);
                *ret = render_assignment(c, n);
                if (!*ret)
                        r = -ENOMEM;
        }
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
        free(st.instances);
        /* a node new or back is in the store (GET /v1/nodes) before its
         * first answer, not at the ticker's next turn */
        if (persist)
                cluster_persist_nodes(c, now);
        return r;
}

json_t *cluster_nodes_info(Cluster *c) {
        json_t *out = json_object();
        pthread_mutex_lock(&c->lock);
        size_t it = 0;
        for (MapEntry *e = NULL; out && (e = cmap_next(&c->nodes, e, &it));) {
                Node *n = e->value;
                json_t *o = json_pack("{s:s, s:i, s:i, s:s?}", "state", n->lost ? "lost" : "ready", "instances", 0,
                                      "ready", 0, "invoke", n->invoke);
                /* each GPU, with the instance that holds it */
                json_t *gpus = n->gpu_devices ? json_deep_copy(n->gpu_devices) : json_array();
                size_t gi, it2;
                json_t *g;
                json_array_foreach(gpus, gi, g) {
                        it2 = 0;
                        for (MapEntry *e2 = NULL; (e2 = cmap_next(&c->instances, e2, &it2));) {
                                Instance *i = e2->value;
                                if (i->node == n && gi < SCHED_GPUS_MAX && (i->gpu_mask & (1ULL << gi)))
                                        json_object_set_new(g, "instance", json_string(i->id));
                        }
                }
                if (!o || !gpus || json_object_set_new(o, "gpus", gpus) < 0 || json_object_set_new(out, n->name, o) < 0)
                        out = (json_decref(out), NULL);
        }
        it = 0;
        for (MapEntry *e = NULL; out && (e = cmap_next(&c->instances, e, &it));) {
                Instance *i = e->value;
                json_t *o = json_object_get(out, i->node->name);
                json_object_set_new(o, "instances", json_integer(json_integer_value(json_object_get(o, "instances")) + 1));
                if (i->state == INST_READY)
                        json_object_set_new(o, "ready", json_integer(json_integer_value(json_object_get(o, "ready")) + 1));
        }
        pthread_mutex_unlock(&c->lock);
        return out;
}
