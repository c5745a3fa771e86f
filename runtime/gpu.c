/* runtime/gpu.c: the node's GPUs (gpu.h). Detection reads device nodes and
 * sysfs; nothing here opens a GPU. nvidia-smi, when the host has it, is
 * run once at start with a deadline for names, memory and UUIDs. */
#define _GNU_SOURCE
#include "gpu.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define SMI_TIMEOUT_MS 5000
#define SMI_OUTPUT_MAX (64U << 10)

extern char **environ;

int gpu_dev_from_path(const char *host_path, const char *jail_path, GpuDev *ret, char *why, size_t why_len) {
        struct stat st;
        GpuDev d = { 0 };
        if (!host_path || host_path[0] != '/' || strlen(host_path) >= sizeof d.host) {
                snprintf(why, why_len, "%.200s: not an absolute path (at most %zu bytes)", host_path ? host_path : "",
                         sizeof d.host - 1);
                return -EINVAL;
        }
        if (stat(host_path, &st) < 0) {
                snprintf(why, why_len, "%.200s: %s", host_path, strerror(errno));
                return -EINVAL;
        }
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
                snprintf(why, why_len, "%.200s: not a device node", host_path);
                return -EINVAL;
        }
        snprintf(d.host, sizeof d.host, "%s", host_path);
        if (!jail_path) {
                const char *p = host_path, *q;
                while ((q = strstr(p, "/dev/")))
                        p = q + 5;
                if (p == host_path) {
                        /* a render or card node outside any /dev/ goes where
                         * ROCm and Mesa look for it */
                        p = strrchr(host_path, '/') + 1;
                        if (strncmp(p, "renderD", 7) == 0 || strncmp(p, "card", 4) == 0) {
                                snprintf(d.dev.path, sizeof d.dev.path, "dri/%s", p);
                                p = d.dev.path;
                        }
                }
                jail_path = p;
        }
        if (strlen(jail_path) >= sizeof d.dev.path) {
                snprintf(why, why_len, "%.200s: the name under /dev is too long", host_path);
                return -EINVAL;
        }
        if (jail_path != d.dev.path)
                snprintf(d.dev.path, sizeof d.dev.path, "%s", jail_path);
        d.dev.type = S_ISCHR(st.st_mode) ? 'c' : 'b';
        d.dev.major = major(st.st_rdev);
        d.dev.minor = minor(st.st_rdev);
        *ret = d;
        return 0;
}

/* ---- detection ------------------------------------------------------------------ */

static int cmp_uint(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;
        return x < y ? -1 : x > y;
}

/* The numbers N of dir's entries named PREFIX followed by digits, sorted. */
static unsigned numbered(const char *dir, const char *prefix, unsigned *out, unsigned max) {
        DIR *d = opendir(dir);
        unsigned n = 0;
        size_t pl = strlen(prefix);
        if (!d)
                return 0;
        struct dirent *e;
        while ((e = readdir(d)) && n < max) {
                const char *rest = e->d_name + pl;
                if (strncmp(e->d_name, prefix, pl) != 0 || !*rest || strlen(rest) > 6 ||
                    strspn(rest, "0123456789") != strlen(rest))
                        continue;
                out[n++] = (unsigned) atoi(rest);
        }
        closedir(d);
        qsort(out, n, sizeof *out, cmp_uint);
        return n;
}

static void add_shared(GpuInventory *inv, const char *dir, const char *name) {
        char p[512], why[256];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        if (inv->n_shared < GPU_SHARED_MAX && gpu_dev_from_path(p, name, &inv->shared[inv->n_shared], why, sizeof why) == 0)
                inv->n_shared++;
}

/* A sysfs value as text, trimmed; "" when absent. */
static void sys_read(const char *path, char *buf, size_t size) {
        ssize_t n = read_file_small(path, buf, size);
        if (n < 0)
                n = 0;
        buf[n < (ssize_t) size ? n : (ssize_t) size - 1] = 0;
        while (n > 0 && isspace((unsigned char) buf[n - 1]))
                buf[--n] = 0;
}

static int detect_cuda(const char *dev_dir, GpuInventory *inv) {
        unsigned nums[GPU_MAX];
        unsigned n = numbered(dev_dir, "nvidia", nums, GPU_MAX);
        char p[512], name[32], why[256];
        for (unsigned i = 0; i < n; i++) {
                snprintf(name, sizeof name, "nvidia%u", nums[i]);
                snprintf(p, sizeof p, "%s/%s", dev_dir, name);
                if (gpu_dev_from_path(p, name, &inv->gpu[inv->n].dev, why, sizeof why) == 0)
                        inv->n++;
        }
        if (inv->n == 0)
                return 0;
        inv->accel = ACCEL_CUDA;
        add_shared(inv, dev_dir, "nvidiactl");
        add_shared(inv, dev_dir, "nvidia-uvm");
        add_shared(inv, dev_dir, "nvidia-uvm-tools");
        return 1;
}

static int detect_rocm(const char *dev_dir, const char *sys_dir, GpuInventory *inv) {
        char p[600], name[64], why[256], v[128];
        struct stat st;
        snprintf(p, sizeof p, "%s/kfd", dev_dir);
        if (stat(p, &st) < 0 || !S_ISCHR(st.st_mode))
                return 0;
        unsigned nums[GPU_MAX];
        snprintf(p, sizeof p, "%s/dri", dev_dir);
        unsigned n = numbered(p, "renderD", nums, GPU_MAX);
        for (unsigned i = 0; i < n; i++) {
                char sys[480];
                snprintf(sys, sizeof sys, "%s/class/drm/renderD%u/device", sys_dir, nums[i]);
                snprintf(p, sizeof p, "%s/vendor", sys);
                sys_read(p, v, sizeof v);
                if (v[0] && strcasecmp(v, "0x1002") != 0)
                        continue; /* another vendor's render node (an Intel iGPU...) */
                snprintf(name, sizeof name, "dri/renderD%u", nums[i]);
                snprintf(p, sizeof p, "%s/%s", dev_dir, name);
                Gpu *g = &inv->gpu[inv->n];
                if (gpu_dev_from_path(p, name, &g->dev, why, sizeof why) < 0)
                        continue;
                snprintf(p, sizeof p, "%s/product_name", sys);
                sys_read(p, g->product, sizeof g->product);
                snprintf(p, sizeof p, "%s/mem_info_vram_total", sys);
                sys_read(p, v, sizeof v);
                g->memory_bytes = strtoull(v, NULL, 10);
                snprintf(p, sizeof p, "%s/unique_id", sys);
                sys_read(p, v, sizeof v);
                if (v[0] && strspn(v, "0123456789abcdefABCDEF") == strlen(v) && strlen(v) <= 32)
                        snprintf(g->uuid, sizeof g->uuid, "GPU-%s", v);
                inv->n++;
        }
        if (inv->n == 0)
                return 0;
        inv->accel = ACCEL_ROCM;
        add_shared(inv, dev_dir, "kfd");
        return 1;
}

/* Run argv, its stdout into buf (at most size-1 bytes, NUL-terminated),
 * killed past the deadline. 0 when it exited 0. */
static int run_capture(char *const argv[], char *buf, size_t size) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return negative_errno();
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(pfd[1]);
        if (r != 0) {
                close(pfd[0]);
                return -r;
        }
        size_t len = 0;
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                long left = SMI_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
                struct pollfd p = { .fd = pfd[0], .events = POLLIN };
                if (left <= 0 || (poll(&p, 1, (int) left) < 0 && errno != EINTR)) {
                        kill(pid, SIGKILL);
                        r = -ETIMEDOUT;
                        break;
                }
                char tmp[4096];
                ssize_t n = read(pfd[0], tmp, sizeof tmp);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                size_t take = (size_t) n < size - 1 - len ? (size_t) n : size - 1 - len;
                memcpy(buf + len, tmp, take);
                len += take;
        }
        buf[len] = 0;
        close(pfd[0]);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        return r < 0 ? r : WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* "00000000:17:00.0" (nvidia-smi) -> "0000:17:00.0" (the proc folder). */
static void bus_to_proc(const char *bus, char *out, size_t size) {
        const char *colon = strchr(bus, ':');
        if (colon && colon - bus == 8)
                bus += 4;
        snprintf(out, size, "%s", bus);
        for (char *c = out; *c; c++)
                *c = (char) tolower((unsigned char) *c);
}

static char *trim(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = 0;
        return s;
}

void gpu_apply_smi(GpuInventory *inv, const char *csv, const char *proc_dir) {
        _cleanup_free_ char *copy = strdup(csv);
        char *save = NULL;
        if (!copy)
                return;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4], *s2 = NULL;
                int k = 0;
                for (char *x = strtok_r(line, ",", &s2); x && k < 4; x = strtok_r(NULL, ",", &s2))
                        f[k++] = trim(x);
                if (k != 4)
                        continue;
                char bus[64], p[512], info[4096];
                bus_to_proc(f[0], bus, sizeof bus);
                if (strchr(bus, '/') || strstr(bus, ".."))
                        continue;
                snprintf(p, sizeof p, "%s/driver/nvidia/gpus/%s/information", proc_dir, bus);
                sys_read(p, info, sizeof info);
                const char *m = strstr(info, "Device Minor:");
                if (!m)
                        continue;
                unsigned minor_nr = (unsigned) strtoul(m + 13, NULL, 10);
                for (unsigned i = 0; i < inv->n; i++) {
                        Gpu *g = &inv->gpu[i];
                        if (g->dev.dev.minor != minor_nr)
                                continue;
                        if (strncmp(f[1], "GPU-", 4) == 0 && strlen(f[1]) < sizeof g->uuid &&
                            strspn(f[1] + 4, "0123456789abcdefABCDEF-") == strlen(f[1] + 4))
                                snprintf(g->uuid, sizeof g->uuid, "%s", f[1]);
                        snprintf(g->product, sizeof g->product, "%s", f[2]);
                        unsigned long long mib = strtoull(f[3], NULL, 10);
                        if (mib > 0 && mib < (1ULL << 40))
                                g->memory_bytes = (uint64_t) mib << 20;
                }
        }
}

int gpu_detect(const char *dev_dir, const char *sys_dir, const char *smi_path, GpuInventory *inv) {
        *inv = (GpuInventory) { .accel = ACCEL_NONE };
        if (detect_cuda(dev_dir, inv)) {
                if (smi_path && access(smi_path, X_OK) == 0) {
                        char *argv[] = { (char *) smi_path, "--query-gpu=pci.bus_id,uuid,name,memory.total",
                                         "--format=csv,noheader,nounits", NULL };
                        _cleanup_free_ char *out = malloc(SMI_OUTPUT_MAX);
                        if (out && run_capture(argv, out, SMI_OUTPUT_MAX) == 0)
                                gpu_apply_smi(inv, out, "/proc");
                }
                return 0;
        }
        if (!detect_rocm(dev_dir, sys_dir, inv))
                *inv = (GpuInventory) { .accel = ACCEL_NONE }; /* kfd alone: its shared entry goes */
        return 0;
}

/* ---- assignment ------------------------------------------------------------------ */

static void env_list(char *buf, size_t size, const char *key, const GpuInventory *inv, const unsigned *idx, size_t n,
                     bool uuids) {
        size_t len = (size_t) snprintf(buf, size, "%s=", key);
        for (size_t i = 0; i < n && len < size; i++) {
                if (uuids)
                        len += (size_t) snprintf(buf + len, size - len, "%s%s", i ? "," : "", inv->gpu[idx[i]].uuid);
                else
                        len += (size_t) snprintf(buf + len, size - len, "%s%zu", i ? "," : "", i);
        }
}

int gpu_assign(const GpuInventory *inv, const unsigned *idx, size_t n, JailDevice *devs, size_t *ret_n_devs,
               char env[GPU_ENV_MAX][GPU_ENV_LEN], size_t *ret_n_env, char *why, size_t why_len) {
        if (n > inv->n || n + inv->n_shared > JAIL_DEVICES_MAX) {
                snprintf(why, why_len, "%zu GPUs asked for, the node has %u", n, inv->n);
                return -EINVAL;
        }
        bool uuids = n > 0;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (idx[i] >= inv->n) {
                        snprintf(why, why_len, "GPU %u: the node has GPUs 0 to %u", idx[i], inv->n ? inv->n - 1 : 0);
                        return -EINVAL;
                }
                for (size_t j = 0; j < i; j++)
                        if (idx[j] == idx[i]) {
                                snprintf(why, why_len, "GPU %u assigned twice", idx[i]);
                                return -EINVAL;
                        }
                devs[k++] = inv->gpu[idx[i]].dev.dev;
                uuids &= inv->gpu[idx[i]].uuid[0] != 0;
        }
        size_t e = 0;
        if (n > 0) {
                for (unsigned s = 0; s < inv->n_shared; s++)
                        devs[k++] = inv->shared[s].dev;
                if (inv->accel == ACCEL_ROCM) {
                        env_list(env[e++], GPU_ENV_LEN, "ROCR_VISIBLE_DEVICES", inv, idx, n, uuids);
                        env_list(env[e++], GPU_ENV_LEN, "HIP_VISIBLE_DEVICES", inv, idx, n, false);
                } else
                        env_list(env[e++], GPU_ENV_LEN, "CUDA_VISIBLE_DEVICES", inv, idx, n, uuids);
                size_t len = (size_t) snprintf(env[e], GPU_ENV_LEN, "FNBOX_GPUS=");
                for (size_t i = 0; i < n; i++)
                        len += (size_t) snprintf(env[e] + len, GPU_ENV_LEN - len, "%s%u", i ? "," : "", idx[i]);
                e++;
        }
        *ret_n_devs = k;
        *ret_n_env = e;
        return 0;
}

/* ---- what the controller sees ------------------------------------------------------ */

json_t *gpu_inventory_json(const GpuInventory *inv) {
        json_t *a = json_array();
        for (unsigned i = 0; a && i < inv->n; i++) {
                const Gpu *g = &inv->gpu[i];
                char dev[80];
                snprintf(dev, sizeof dev, "/dev/%s", g->dev.dev.path);
                json_t *o = json_pack("{s:i,s:s}", "index", (int) i, "device", dev);
                if (o && g->product[0])
                        json_object_set_new(o, "product", json_string(g->product));
                if (o && g->memory_bytes)
                        json_object_set_new(o, "memoryBytes", json_integer((json_int_t) g->memory_bytes));
                if (o && g->uuid[0])
                        json_object_set_new(o, "uuid", json_string(g->uuid));
                if (!o || json_array_append_new(a, o) < 0)
                        a = (json_decref(a), NULL);
        }
        return a;
}

int gpu_labels(const GpuInventory *inv, json_t *labels) {
        char v[64];
        snprintf(v, sizeof v, "%u", inv->n);
        if (json_object_set_new(labels, "gpu.count", json_string(v)) < 0)
                return -ENOMEM;
        if (inv->n == 0)
                return 0;
        const Gpu *g = &inv->gpu[0];
        if (g->product[0]) {
                size_t k = 0;
                for (const char *c = g->product; *c && k < 63; c++) {
                        char ch = *c;
                        if (!isalnum((unsigned char) ch) && ch != '.' && ch != '_' && ch != '-')
                                ch = '-';
                        if (k == 0 && !isalnum((unsigned char) ch))
                                continue;
                        v[k++] = ch;
                }
                v[k] = 0;
                if (k > 0 && json_object_set_new(labels, "gpu.product", json_string(v)) < 0)
                        return -ENOMEM;
        }
        if (g->memory_bytes >= (1ULL << 30)) {
                snprintf(v, sizeof v, "%lluGi", (unsigned long long) (g->memory_bytes >> 30));
                if (json_object_set_new(labels, "gpu.memory", json_string(v)) < 0)
                        return -ENOMEM;
        }
        return 0;
}
