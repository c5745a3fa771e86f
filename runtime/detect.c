/* runtime/detect.c: the node's labels and capacity, from uname and
 * /proc/meminfo (its GPUs: gpu.c). */
#define _GNU_SOURCE
#include "detect.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/util.h"

const char *accelerator_to_string(Accelerator a) {
        return a == ACCEL_CUDA ? "cuda" : a == ACCEL_ROCM ? "rocm" : "none";
}

int detect_memory(const char *meminfo_path, uint64_t *ret) {
        char buf[16384];
        ssize_t n = read_file_small(meminfo_path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                unsigned long long kb;
                char unit[8];
                if (strncmp(l, "MemTotal:", 9) == 0 && sscanf(l + 9, " %llu %7s", &kb, unit) == 2 &&
                    strcmp(unit, "kB") == 0 && kb < (1ULL << 50)) {
                        *ret = (uint64_t) kb * 1024;
                        return 0;
                }
        }
        return -ENODATA;
}

int detect_arch(char *buf, size_t len) {
        struct utsname u;
        if (uname(&u) < 0)
                return negative_errno();
        return snprintf(buf, len, "%s", u.machine) >= (int) len ? -ENAMETOOLONG : 0;
}

int detect_capacity(const char *meminfo_path, NodeCapacity *ret) {
        NodeCapacity c = { 0 };
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        c.cpu_millis = (uint64_t) (cpus > 0 ? cpus : 1) * 1000;
        int r = detect_memory(meminfo_path, &c.memory_bytes);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

static bool label_chars(const char *s, const char *extra, size_t max, bool allow_empty) {
        size_t n = strlen(s);
        if (n > max || (!allow_empty && n == 0) || (n > 0 && !isalnum((unsigned char) s[0])))
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr(extra, *c))
                        return false;
        return true;
}

int label_parse(char *kv, const char **ret_key, const char **ret_value) {
        char *eq = strchr(kv, '=');
        if (!eq)
                return -EINVAL;
        *eq = 0;
        if (!label_chars(kv, "._/-", 63, false) || !label_chars(eq + 1, "._-", 63, true)) {
                *eq = '=';
                return -EINVAL;
        }
        *ret_key = kv;
        *ret_value = eq + 1;
        return 0;
}
