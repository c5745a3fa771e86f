/* runtime/detect.h: what a node is: its architecture and its capacity,
 * reported to the controller as labels and capacity (its accelerators:
 * gpu.h). The meminfo file is a parameter so that the unit tests can
 * point it at a fake one. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct NodeCapacity {
        uint64_t cpu_millis;     /* online CPUs x 1000 */
        uint64_t memory_bytes;   /* MemTotal */
        unsigned gpus;
} NodeCapacity;

typedef enum Accelerator { ACCEL_NONE, ACCEL_CUDA, ACCEL_ROCM } Accelerator;

const char *accelerator_to_string(Accelerator a);
/* MemTotal of a meminfo file, in bytes. -ENODATA when it has none. */
int detect_memory(const char *meminfo_path, uint64_t *ret);
/* uname's machine (x86_64, aarch64...). */
int detect_arch(char *buf, size_t len);
/* CPUs and memory; gpus stays 0 (the caller counts them: gpu.h). */
int detect_capacity(const char *meminfo_path, NodeCapacity *ret);

/* A node label, as the controller's nodeSelector matches it: key
 * [A-Za-z0-9._/-]{1,63} starting with an alphanumeric, value
 * [A-Za-z0-9._-]{0,63}. "k=v" is split in place (the '=' becomes a NUL). */
int label_parse(char *kv, const char **ret_key, const char **ret_value);
