/* tests/unit/test_scheduler.c: placement against node labels and capacity:
 * selectors and variants in manifest order, spreading CPU work, packing
 * GPU work, lost nodes, and the unschedulable sentences. */
#include "test.h"

#include <errno.h>

#include "controller/scheduler.h"

static const ManifestPair cuda[] = { { "accelerator", "cuda" }, { "arch", "x86_64" } };
static const ManifestPair rocm[] = { { "accelerator", "rocm" }, { "arch", "x86_64" } };
static const ManifestPair none[] = { { "accelerator", "none" }, { "arch", "x86_64" } };
static const ManifestPair want_cuda[] = { { "accelerator", "cuda" } };
static const ManifestPair want_rocm[] = { { "accelerator", "rocm" } };

#define GiB (1ULL << 30)

static SchedNode node(const char *name, const ManifestPair *labels, size_t n, uint64_t gpus) {
        return (SchedNode) { .name = name, .ready = true, .labels = labels, .n_labels = n,
                             .cpu_millis = 4000, .memory_bytes = 16 * GiB, .gpus = gpus };
}

static SchedOption cpu_work(void) {
        return (SchedOption) { .cpu_millis = 1000, .memory_bytes = 128ULL << 20 };
}

TEST(scheduler_selector_match) {
        ASSERT_TRUE(scheduler_matches(want_cuda, 1, cuda, 2));
        ASSERT_TRUE(!scheduler_matches(want_cuda, 1, rocm, 2));
        ASSERT_TRUE(scheduler_matches(NULL, 0, rocm, 2));
        ASSERT_TRUE(!scheduler_matches(want_cuda, 1, NULL, 0));
}

/* CPU work spreads: fewest instances of the revision, then fewest
 * instances, then most free CPU, then name. */
TEST(scheduler_spreads_cpu_work) {
        SchedNode nodes[3] = { node("a", none, 2, 0), node("b", none, 2, 0), node("c", none, 2, 0) };
        SchedOption o = cpu_work();
        SchedResult r;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, &o, 1, &r), 0);
        ASSERT_EQ_UINT(r.node, 0);              /* all equal: by name */
        nodes[0].revision_instances = 1, nodes[0].instances = 1, nodes[0].used_cpu_millis = 1000;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, &o, 1, &r), 0);
        ASSERT_EQ_UINT(r.node, 1);
        nodes[1].instances = 2;                 /* other revisions' */
        ASSERT_EQ_INT(scheduler_place(nodes, 3, &o, 1, &r), 0);
        ASSERT_EQ_UINT(r.node, 2);
        nodes[2].instances = 2, nodes[2].used_cpu_millis = 3000;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, &o, 1, &r), 0);
        ASSERT_EQ_UINT(r.node, 1);              /* more free CPU than c */
}

/* GPU work packs: the node with the fewest free GPUs that still fit. */
TEST(scheduler_packs_gpu_work) {
        SchedNode nodes[3] = { node("big", cuda, 2, 8), node("half", cuda, 2, 8), node("cpu", none, 2, 0) };
        nodes[1].used_gpus = 6;
        SchedOption o = { .selector = want_cuda, .n_selector = 1, .cpu_millis = 1000, .memory_bytes = GiB, .gpus = 2 };
        SchedResult r;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, &o, 1, &r), 0);
        ASSERT_EQ_UINT(r.node, 1);
        nodes[1].used_gpus = 7;                 /* one left: does not fit */
        ASSERT_EQ_INT(scheduler_place(nodes, 3, &o, 1, &r), 0);
        ASSERT_EQ_UINT(r.node, 0);
        nodes[0].used_gpus = 7;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, &o, 1, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node has the capacity: needs 2 GPUs with accelerator=cuda");
}

/* Variants in manifest order: the first whose selector a node with room
 * matches; with the CUDA node gone, the ROCm build. */
TEST(scheduler_variants_in_order) {
        SchedNode nodes[3] = { node("n-rocm", rocm, 2, 1), node("n-cuda", cuda, 2, 1), node("n-cpu", none, 2, 0) };
        SchedOption opts[2] = {
                { .variant = "cuda", .selector = want_cuda, .n_selector = 1, .cpu_millis = 1000, .memory_bytes = GiB, .gpus = 1 },
                { .variant = "rocm", .selector = want_rocm, .n_selector = 1, .cpu_millis = 1000, .memory_bytes = GiB, .gpus = 1 },
        };
        SchedResult r;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, opts, 2, &r), 0);
        ASSERT_EQ_UINT(r.option, 0);
        ASSERT_EQ_STR(nodes[r.node].name, "n-cuda");
        nodes[1].ready = false;                 /* lost: never placed on */
        ASSERT_EQ_INT(scheduler_place(nodes, 3, opts, 2, &r), 0);
        ASSERT_EQ_UINT(r.option, 1);
        ASSERT_EQ_STR(nodes[r.node].name, "n-rocm");
        nodes[0].ready = false;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, opts, 2, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node matches accelerator=cuda (variant cuda) or accelerator=rocm (variant rocm)");
        /* the CUDA node back but full: the ROCm one is still lost */
        nodes[1].ready = true;
        nodes[1].used_gpus = 1;
        ASSERT_EQ_INT(scheduler_place(nodes, 3, opts, 2, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node has the capacity: needs 1 GPU with accelerator=cuda (variant cuda)");
}

TEST(scheduler_unschedulable_reasons) {
        SchedNode nodes[2] = { node("a", none, 2, 0), node("b", none, 2, 0) };
        SchedOption o = { .selector = want_cuda, .n_selector = 1, .cpu_millis = 500, .memory_bytes = GiB };
        SchedResult r;
        ASSERT_EQ_INT(scheduler_place(nodes, 2, &o, 1, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node matches accelerator=cuda");
        o = cpu_work();
        o.memory_bytes = 32 * GiB;
        ASSERT_EQ_INT(scheduler_place(nodes, 2, &o, 1, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node has the capacity: needs 32Gi memory");
        o.memory_bytes = 12 * GiB;
        o.cpu_millis = 2500;
        nodes[0].used_cpu_millis = 2000;        /* a: CPU but no memory; b: memory but no CPU */
        nodes[1].used_memory_bytes = 8 * GiB;
        ASSERT_EQ_INT(scheduler_place(nodes, 2, &o, 1, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node has the capacity: needs 2500m CPU and 12Gi memory on one node");
        nodes[0].ready = nodes[1].ready = false;
        ASSERT_EQ_INT(scheduler_place(nodes, 2, &o, 1, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node is ready");
        ASSERT_EQ_INT(scheduler_place(NULL, 0, &o, 1, &r), -ENOSPC);
        ASSERT_EQ_STR(r.reason, "no node is ready");
}
