/* runtime/detect.h: what a node is: its architecture, its accelerators
 * (from the device nodes the host has) and its capacity, reported to the
 * controller as labels and capacity. The folders are parameters so that the
 * unit tests can point them at a fake /dev and a fake meminfo. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct NodeCapacity {
        uint64_t cpu_millis;     /* online CPUs x 1000 */
        uint64_t memory_bytes;   /* MemTotal */
        unsigned gpus;
} NodeCapacity;

typedef enum Accelerator { ACCEL_NONE, ACCEL_CUDA, ACCEL_ROCM } Accelerator;

/* CUDA when dev_dir has nvidia0, nvidia1, ... (each is a GPU; nvidiactl and
 * nvidia-uvm are not), else ROCm when it has kfd and dri/renderD* (each
 * render node is a GPU), else none. */
Accelerator detect_accelerator(const char *dev_dir, unsigned *ret_gpus);
const char *accelerator_to_string(Accelerator a);
/* MemTotal of a meminfo file, in bytes. -ENODATA when it has none. */
int detect_memory(const char *meminfo_path, uint64_t *ret);
/* uname's machine (x86_64, aarch64...). */
int detect_arch(char *buf, size_t len);
int detect_capacity(const char *dev_dir, const char *meminfo_path, NodeCapacity *ret, Accelerator *ret_accel);

/* A node label, as the controller's nodeSelector matches it: key
 * [A-Za-z0-9._/-]{1,63} starting with an alphanumeric, value
 * [A-Za-z0-9._-]{0,63}. "k=v" is split in place (the '=' becomes a NUL). */
int label_parse(char *kv, const char **ret_key, const char **ret_value);
