/* runtime/nodeconf.h: the node config file (`fnbox-runtime serve
 * --node-config FILE`, docs/runtime.md "Accelerators"): what the node
 * declares about itself instead of, or beside, what it detects: labels,
 * the accelerator, its GPUs and their device nodes, the control devices
 * every GPU jail gets, and driver folders bound read-only into jails. */
#pragma once

#include <jansson.h>

#include "gpu.h"

#define NODECONF_MAX_BYTES (256U << 10)
#define NODECONF_DRIVER_PATHS_MAX 8
#define NODECONF_ERROR_MAX 512

typedef struct NodeConf {
        json_t *labels;                 /* {k: v}, or NULL */
        bool has_accel;
        Accelerator accel;
        bool has_gpus, has_shared;
        GpuInventory inv;               /* gpus and shared, as declared */
        char driver_paths[NODECONF_DRIVER_PATHS_MAX][256];
        size_t n_driver_paths;
} NodeConf;

/* Read and check path. -EINVAL with "FILE:LINE: FIELD: what" in err. */
int nodeconf_load(const char *path, NodeConf *ret, char *err, size_t err_len);
/* Parse a config held in buf (file names the messages). */
int nodeconf_parse(const char *file, const char *buf, size_t len, NodeConf *ret, char *err, size_t err_len);
void nodeconf_clear(NodeConf *c);
/* The node's GPUs: what was detected (det), with the config's declarations
 * in place of it where it has them. */
void nodeconf_apply(const NodeConf *c, const GpuInventory *det, GpuInventory *ret);
