/* controller/scheduler.c: placement of one instance. Options (the spec, or
 * its variants in manifest order) are tried in turn; the first with a
 * ready node that matches its nodeSelector and has the room wins. GPU work
 * packs (the fewest free GPUs that still fit, keeping whole GPUs free for
 * bigger asks), CPU work spreads. When nothing fits, the reason names what
 * is missing, as the user will read it in `fnbox describe`. */
#include "controller/scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool scheduler_matches(const ManifestPair *selector, size_t n_selector, const ManifestPair *labels, size_t n_labels) {
        for (size_t i = 0; i < n_selector; i++) {
                bool found = false;
                for (size_t k = 0; k < n_labels && !found; k++)
                        found = strcmp(selector[i].key, labels[k].key) == 0 &&
                                strcmp(selector[i].value, labels[k].value) == 0;
                if (!found)
                        return false;
        }
        return true;
}

int scheduler_pick_gpus(uint64_t used, uint64_t n_gpus, uint64_t want, uint64_t *ret_mask) {
        uint64_t mask = 0, got = 0;
        for (uint64_t g = 0; g < n_gpus && g < SCHED_GPUS_MAX && got < want; g++)
                if (!(used & (1ULL << g))) {
                        mask |= 1ULL << g;
                        got++;
                }
        if (got < want)
                return -ENOSPC;
        *ret_mask = mask;
        return 0;
}

static uint64_t free_of(uint64_t cap, uint64_t used) {
        return used >= cap ? 0 : cap - used;
}

static bool fits(const SchedNode *n, const SchedOption *o) {
        return o->cpu_millis <= free_of(n->cpu_millis, n->used_cpu_millis) &&
               o->memory_bytes <= free_of(n->memory_bytes, n->used_memory_bytes) &&
               o->gpus <= free_of(n->gpus, n->used_gpus);
}

/* True when a is a better home than b for o. */
static bool better(const SchedNode *a, const SchedNode *b, const SchedOption *o) {
        if (o->gpus > 0) {
                uint64_t fa = free_of(a->gpus, a->used_gpus), fb = free_of(b->gpus, b->used_gpus);
                if (fa != fb)
                        return fa < fb;
        }
        if (a->revision_instances != b->revision_instances)
                return a->revision_instances < b->revision_instances;
        if (a->instances != b->instances)
                return a->instances < b->instances;
        uint64_t ca = free_of(a->cpu_millis, a->used_cpu_millis), cb = free_of(b->cpu_millis, b->used_cpu_millis);
        if (ca != cb)
                return ca > cb;
        return strcmp(a->name, b->name) < 0;
}

/* ---- reasons ------------------------------------------------------------------ */

static size_t selector_text(const SchedOption *o, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = 0;
        for (size_t i = 0; i < o->n_selector && n + 1 < size; i++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s=%s", i ? "," : "", o->selector[i].key,
                                       o->selector[i].value);
        if (o->variant && n + 1 < size)
                n += (size_t) snprintf(buf + n, size - n, "%s(variant %s)", n ? " " : "", o->variant);
        return n < size ? n : size - 1;
}

static void format_bytes(uint64_t v, char *buf, size_t size) {
        static const struct { const char *unit; uint64_t mult; } units[] = {
                { "Ti", 1ULL << 40 }, { "Gi", 1ULL << 30 }, { "Mi", 1ULL << 20 }, { "Ki", 1ULL << 10 },
        };
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
                if (v >= units[i].mult && v % units[i].mult == 0) {
                        snprintf(buf, size, "%llu%s", (unsigned long long) (v / units[i].mult), units[i].unit);
                        return;
                }
        snprintf(buf, size, "%llu bytes", (unsigned long long) v);
}

/* "2 GPUs", "500m CPU", "128Mi memory": each resource that no matching
 * node has free on its own, or all three when only their sum is missing. */
static void capacity_reason(const SchedNode *nodes, size_t n_nodes, const SchedOption *o, char *buf, size_t size) {
        bool gpu_ok = false, cpu_ok = false, mem_ok = false;
        for (size_t i = 0; i < n_nodes; i++) {
                const SchedNode *n = &nodes[i];
                if (!n->ready || !scheduler_matches(o->selector, o->n_selector, n->labels, n->n_labels))
                        continue;
                gpu_ok |= o->gpus <= free_of(n->gpus, n->used_gpus);
                cpu_ok |= o->cpu_millis <= free_of(n->cpu_millis, n->used_cpu_millis);
                mem_ok |= o->memory_bytes <= free_of(n->memory_bytes, n->used_memory_bytes);
        }
        bool all = gpu_ok && cpu_ok && mem_ok;
        char mem[32], parts[3][48];
        size_t k = 0;
        format_bytes(o->memory_bytes, mem, sizeof mem);
        if ((!gpu_ok || all) && o->gpus > 0)
                snprintf(parts[k++], sizeof parts[0], "%llu GPU%s", (unsigned long long) o->gpus, o->gpus == 1 ? "" : "s");
        if (!cpu_ok || all) {
                if (o->cpu_millis % 1000 == 0)
                        snprintf(parts[k++], sizeof parts[0], "%llu CPU%s", (unsigned long long) (o->cpu_millis / 1000),
                                 o->cpu_millis == 1000 ? "" : "s");
                else
                        snprintf(parts[k++], sizeof parts[0], "%llum CPU", (unsigned long long) o->cpu_millis);
        }
        if (!mem_ok || all)
                snprintf(parts[k++], sizeof parts[0], "%s memory", mem);
        size_t n = (size_t) snprintf(buf, size, "no node has the capacity: needs %s%s%s%s%s%s", parts[0],
                                     k > 2 ? ", " : k > 1 ? " and " : "", k > 1 ? parts[1] : "",
                                     k > 2 ? " and " : "", k > 2 ? parts[2] : "", all ? " on one node" : "");
        if (o->n_selector + (o->variant != NULL) > 0 && n + 7 < size)
                selector_text(o, buf + n + (size_t) snprintf(buf + n, size - n, " with "), size - n - 6);
}

static void unmatched_reason(const SchedOption *options, size_t n_options, char *buf, size_t size) {
        size_t n = (size_t) snprintf(buf, size, "no node matches ");
        for (size_t i = 0; i < n_options && n + 1 < size; i++) {
                if (i > 0)
                        n += (size_t) snprintf(buf + n, size - n, " or ");
                if (n + 1 < size)
                        n += selector_text(&options[i], buf + n, size - n);
        }
}

int scheduler_place(const SchedNode *nodes, size_t n_nodes, const SchedOption *options, size_t n_options,
                    SchedResult *ret) {
        const SchedOption *first_matched = NULL;
        bool any_ready = false;
        for (size_t o = 0; o < n_options; o++) {
                const SchedNode *best = NULL;
                for (size_t i = 0; i < n_nodes; i++) {
                        const SchedNode *n = &nodes[i];
                        any_ready |= n->ready;
                        if (!n->ready || !scheduler_matches(options[o].selector, options[o].n_selector, n->labels,
                                                            n->n_labels))
                                continue;
                        if (!first_matched)
                                first_matched = &options[o];
                        if (fits(n, &options[o]) && (!best || better(n, best, &options[o])))
                                best = n;
                }
                if (best) {
                        ret->node = (size_t) (best - nodes);
                        ret->option = o;
                        ret->reason[0] = 0;
                        return 0;
                }
        }
        if (n_options == 0)
                snprintf(ret->reason, sizeof ret->reason, "the revision has no way to run");
        else if (!any_ready)
                snprintf(ret->reason, sizeof ret->reason, "no node is ready");
        else if (!first_matched)
                unmatched_reason(options, n_options, ret->reason, sizeof ret->reason);
        else
                capacity_reason(nodes, n_nodes, first_matched, ret->reason, sizeof ret->reason);
        return -ENOSPC;
}
