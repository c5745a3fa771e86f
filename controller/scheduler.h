/* controller/scheduler.h: where a new instance of a revision goes. Pure:
 * the caller passes the nodes (labels, capacity, what is already placed)
 * and the ways the revision can run (its spec's nodeSelector, or each of
 * its variants in manifest order); the answer is a node and a way, or a
 * sentence saying why none will do. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/manifest.h"

#define SCHED_REASON_MAX        256

typedef struct SchedNode {
        const char *name;
        bool ready;                             /* false: lost, never placed on */
        const ManifestPair *labels;
        size_t n_labels;
        uint64_t cpu_millis, memory_bytes, gpus;        /* capacity */
        uint64_t used_cpu_millis, used_memory_bytes, used_gpus;
        uint32_t instances;                     /* of every revision */
        uint32_t revision_instances;            /* of the revision being placed */
} SchedNode;

/* One way to run the revision: the spec itself (variant NULL) or a variant. */
typedef struct SchedOption {
        const char *variant;
        const ManifestPair *selector;
        size_t n_selector;
        uint64_t cpu_millis, memory_bytes, gpus;        /* from its limits */
} SchedOption;

typedef struct SchedResult {
        size_t node;                            /* index into nodes */
        size_t option;                          /* index into options */
        char reason[SCHED_REASON_MAX];          /* when unschedulable */
} SchedResult;

/* Every selector pair is among the labels. */
bool scheduler_matches(const ManifestPair *selector, size_t n_selector, const ManifestPair *labels, size_t n_labels);

#define SCHED_GPUS_MAX 64      /* GPUs of one node that can be told apart */

/* The want lowest GPUs of a node with n_gpus that are not in used (a bit
 * per GPU index), as a mask; -ENOSPC when fewer are free. */
int scheduler_pick_gpus(uint64_t used, uint64_t n_gpus, uint64_t want, uint64_t *ret_mask);

/* The first option (in order) that some ready node matches and has room
 * for; among those nodes, GPU work (gpus > 0) packs onto the node with the
 * fewest free GPUs that still fit, other work spreads: fewest instances of
 * this revision, then fewest instances, then most free CPU, then name.
 * Returns 0 with node and option, or -ENOSPC with reason filled in
 * ("no node matches accelerator=cuda", "no node has the capacity: needs 2
 * GPUs"). */
int scheduler_place(const SchedNode *nodes, size_t n_nodes, const SchedOption *options, size_t n_options,
                    SchedResult *ret);
