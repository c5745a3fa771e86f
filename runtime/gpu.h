/* runtime/gpu.h: the node's GPUs. Which it has (from /dev, sysfs and
 * nvidia-smi, or declared in the node config file: nodeconf.h), what each
 * is (product, memory, UUID), the device nodes a jail needs to use some of
 * them, and how the software in the jail is told which it got. The
 * controller assigns GPUs by their index here (0 .. n-1, in device order);
 * gpu_assign turns an assignment into a jail's devices and environment. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "jail.h"

#define GPU_MAX 64
#define GPU_SHARED_MAX 8          /* control devices every GPU jail gets */
#define GPU_ENV_MAX 4             /* variables gpu_assign sets */
#define GPU_ENV_LEN 1024

/* One device node: where it is on the host, where the jail gets it, and
 * what it is. */
typedef struct GpuDev {
        char host[256];
        JailDevice dev;
} GpuDev;

typedef struct Gpu {
        GpuDev dev;
        char product[96];                /* "" when unknown */
        uint64_t memory_bytes;           /* 0 when unknown */
        char uuid[96];                   /* "GPU-..." when known */
} Gpu;

typedef struct GpuInventory {
        Accelerator accel;
        Gpu gpu[GPU_MAX];
        unsigned n;
        GpuDev shared[GPU_SHARED_MAX];
        unsigned n_shared;
} GpuInventory;

/* What the node has: CUDA when dev_dir has nvidia0, nvidia1, ... (each a
 * GPU; nvidiactl, nvidia-uvm and nvidia-uvm-tools are shared), else ROCm
 * when it has kfd (shared) and dri/renderD* nodes whose PCI vendor in
 * sys_dir (class/drm/renderDN/device/vendor) is AMD's (or unknown), else
 * none. ROCm GPUs get product, memory and UUID from sysfs; CUDA GPUs from
 * smi_path (nvidia-smi; NULL or absent: not asked), run with a deadline. */
int gpu_detect(const char *dev_dir, const char *sys_dir, const char *smi_path, GpuInventory *ret);

/* A device node at host_path (a character or block device; a symlink to
 * one is followed), seen in the jail at /dev/JAIL_PATH: jail_path NULL
 * takes what follows the last "/dev/" in host_path, else its last
 * component (under dri/ for a renderD* or card* node). -EINVAL with why filled when it is not a device node. */
int gpu_dev_from_path(const char *host_path, const char *jail_path, GpuDev *ret, char *why, size_t why_len);

/* An instance's GPUs (indices into inv, each at most once): the jail's
 * device nodes (its GPUs', then the shared ones) and environment
 * (CUDA_VISIBLE_DEVICES, or ROCR_VISIBLE_DEVICES and HIP_VISIBLE_DEVICES:
 * the UUIDs when every one is known, else 0..n-1 as the jail numbers them;
 * FNBOX_GPUS: the node's indices). -EINVAL with why for a bad index. */
int gpu_assign(const GpuInventory *inv, const unsigned *idx, size_t n, JailDevice *devs, size_t *ret_n_devs,
               char env[GPU_ENV_MAX][GPU_ENV_LEN], size_t *ret_n_env, char *why, size_t why_len);

/* [{index, device, product?, memoryBytes?, uuid?}], for the controller. */
json_t *gpu_inventory_json(const GpuInventory *inv);

/* Labels for the node: gpu.count, gpu.product (spaces as '-', cut to a
 * label's 63 characters) and gpu.memory (in Gi) of its first GPU, when
 * known. Adds to labels (a JSON object). */
int gpu_labels(const GpuInventory *inv, json_t *labels);

/* nvidia-smi's "--query-gpu=pci.bus_id,uuid,name,memory.total
 * --format=csv,noheader,nounits" output, matched to the inventory's GPUs
 * by their minor number, found in proc_dir/driver/nvidia/gpus/BUS/
 * information ("Device Minor:"). Exposed for the unit tests. */
void gpu_apply_smi(GpuInventory *inv, const char *csv, const char *proc_dir);
