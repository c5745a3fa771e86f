/* runtime/cgroup.c: creating, limiting, inspecting and removing the cgroups
 * that hold one jail each. v2 uses one directory; v1 uses memory, pids and
 * cpu hierarchies found in /proc/self/mountinfo. */
#define _GNU_SOURCE
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <linux/magic.h>

#include "lib/util.h"

static const char *const v1_names[_CG_MAX] = { "memory", "pids", "cpu", "cpuacct", "devices" };

static bool has_token(const char *list, const char *tok) {
        size_t n = strlen(tok);
        for (const char *p = list; p && *p;) {
                const char *c = strchr(p, ',');
                size_t len = c ? (size_t) (c - p) : strlen(p);
                if (len == n && strncmp(p, tok, n) == 0)
                        return true;
                p = c ? c + 1 : NULL;
        }
        return false;
}

/* Scan mountinfo for "cgroup" mounts and note where each controller lives. */
static int detect_v1(CgroupHost *h) {
        _cleanup_(fclosep_) FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return negative_errno();
        char line[4096];
        while (fgets(line, sizeof line, f)) {
                char *sep = strstr(line, " - ");
                if (!sep)
                        continue;
                char fstype[64], src[256], opts[1024], mnt[PATH_MAX];
                if (sscanf(sep + 3, "%63s %255s %1023s", fstype, src, opts) != 3 ||
                    strcmp(fstype, "cgroup") != 0)
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                for (int i = 0; i < _CG_MAX; i++)
                        if (has_token(opts, v1_names[i]) && !h->root[i][0])
                                snprintf(h->root[i], sizeof h->root[i], "%s", mnt);
        }
        for (int i = 0; i < _CG_MAX; i++)
                if (!h->root[i][0] && i != CG_DEVICES)
                        return -ENOENT;
        h->version = 1;
        return 0;
}

/* The usual layout, probed without reading mountinfo (which costs a
 * one-shot run ~70 us): /sys/fs/cgroup/NAME is the root (inode 1) of a
 * cgroup v1 mount. Controllers mounted together (cpu,cpuacct) share a
 * device, and then one path. Should NAME hold another controller, the
 * jail's limit files are missing and creating its cgroup fails: never a
 * jail without limits. */
static int detect_v1_fast(CgroupHost *h) {
        dev_t dev[_CG_MAX];
        for (int i = 0; i < _CG_MAX; i++) {
                char p[64];
                struct stat st;
                struct statfs sf;
                snprintf(p, sizeof p, "/sys/fs/cgroup/%s", v1_names[i]);
                if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_ino != 1 ||
                    statfs(p, &sf) < 0 || sf.f_type != CGROUP_SUPER_MAGIC) {
                        if (i == CG_DEVICES)
                                continue; /* optional; mountinfo may still find it */
                        return -ENOENT;
                }
                dev[i] = st.st_dev;
                snprintf(h->root[i], sizeof h->root[i], "%s", p);
                for (int k = 0; k < i; k++)
                        if (h->root[k][0] && dev[k] == dev[i])
                                snprintf(h->root[i], sizeof h->root[i], "%s", h->root[k]);
        }
        h->version = 1;
        return 0;
}

int cgroup_host_detect(CgroupHost *ret) {
        CgroupHost h = { 0 };
        struct statfs sf;
        if (statfs("/sys/fs/cgroup", &sf) < 0)
                return negative_errno();
        if (sf.f_type == CGROUP2_SUPER_MAGIC) {
                h.version = 2;
                snprintf(h.root[0], sizeof h.root[0], "/sys/fs/cgroup");
        } else if (detect_v1_fast(&h) < 0 || !h.root[CG_DEVICES][0]) {
                h = (CgroupHost) { 0 };
                int r = detect_v1(&h);
                if (r < 0)
                        return r;
        }
        *ret = h;
        return 0;
}

static int write_at(const char *dir, const char *file, const char *val) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, file) >= (int) sizeof p)
                return -ENAMETOOLONG;
        return write_file_str(p, val);
}

static int mkdir_p(const char *dir) {
        char buf[PATH_MAX];
        snprintf(buf, sizeof buf, "%s", dir);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        *p = '/';
                }
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

/* v2: controllers must be enabled in every ancestor's subtree_control. */
static int v2_prepare_parent(const char *root, const char *parent) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", root, parent) >= (int) sizeof p)
                return -ENAMETOOLONG;
        int r = mkdir_p(p);
        if (r < 0)
                return r;
        /* Ignore failures on the root: controllers may already be on. */
        (void) write_at(root, "cgroup.subtree_control", "+memory +pids +cpu");
        return write_at(p, "cgroup.subtree_control", "+memory +pids +cpu");
}

typedef struct LimitFile {
        int controller;
        const char *v1, *v2;
} LimitFile;

static const LimitFile limit_files[_LIM_MAX] = {
        [LIM_MEMORY] = { CG_MEMORY, "memory.limit_in_bytes", "memory.max" },
        [LIM_MEMSW] = { CG_MEMORY, "memory.memsw.limit_in_bytes", "memory.swap.max" },
        [LIM_PIDS] = { CG_PIDS, "pids.max", "pids.max" },
        [LIM_CPU] = { CG_CPU, "cpu.cfs_quota_us", "cpu.max" },
};

void cgroup_init(Cgroup *cg) {
        *cg = (Cgroup) { 0 };
        for (int i = 0; i < _CG_MAX; i++)
                cg->procs_fd[i] = -1;
        for (int i = 0; i < _LIM_MAX; i++)
                cg->limit_fd[i] = -1;
        for (int i = 0; i < _ST_MAX; i++)
                cg->stat_fd[i] = -1;
        cg->devices = -1;
}

/* Open the limit files that live in dir (made for controller c). memsw
 * (v1) and memory.swap.max (v2) exist only where swap is accounted. */
static int open_limits(Cgroup *cg, int c, const char *dir) {
        for (int i = 0; i < _LIM_MAX; i++) {
                if (cg->version == 1 && limit_files[i].controller != c)
                        continue;
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/%s", dir, cg->version == 2 ? limit_files[i].v2 : limit_files[i].v1);
                cg->limit_fd[i] = open(p, O_WRONLY | O_CLOEXEC);
                if (cg->limit_fd[i] < 0 && (i != LIM_MEMSW || errno != ENOENT))
                        return negative_errno();
        }
        /* v1: the CFS period is fixed, the quota is the limit */
        if (cg->version == 1 && c == CG_CPU)
                return write_at(dir, "cpu.cfs_period_us", "100000");
        return 0;
}

static int write_limit(const Cgroup *cg, int which, const char *v) {
        if (cg->limit_fd[which] < 0)
                return which == LIM_MEMSW ? 0 : -EBADF;
        ssize_t n = pwrite(cg->limit_fd[which], v, strlen(v), 0);
        return n < 0 ? negative_errno() : 0;
}

/* Memory, then memory+swap (v1: never below memory, so it grows first and
 * shrinks last; v2: no swap at all). */
static int set_memory(Cgroup *cg, const CgroupLimits *l) {
        char v[32];
        int r;
        snprintf(v, sizeof v, "%llu", (unsigned long long) l->memory_bytes);
        if (cg->version == 2) {
                if ((r = write_limit(cg, LIM_MEMORY, v)) < 0)
                        return r;
                return cg->cur.memory_bytes ? 0 : write_limit(cg, LIM_MEMSW, "0");
        }
        /* a fresh cgroup has no limit (cur 0): its memory limit comes down */
        bool grows = cg->cur.memory_bytes && l->memory_bytes > cg->cur.memory_bytes;
        if (grows && (r = write_limit(cg, LIM_MEMSW, v)) < 0)
                return r;
        if ((r = write_limit(cg, LIM_MEMORY, v)) < 0)
                return r;
        return grows ? 0 : write_limit(cg, LIM_MEMSW, v);
}

int cgroup_set_limits(Cgroup *cg, const CgroupLimits *l) {
        char v[64];
        int r = 0;
        if (l->memory_bytes != cg->cur.memory_bytes)
                r = set_memory(cg, l);
        if (r >= 0 && l->pids != cg->cur.pids) {
                snprintf(v, sizeof v, "%llu", (unsigned long long) l->pids);
                r = write_limit(cg, LIM_PIDS, v);
        }
        if (r >= 0 && l->cpu_millis != cg->cur.cpu_millis) {
                snprintf(v, sizeof v, cg->version == 2 ? "%llu 100000" : "%llu",
                         (unsigned long long) l->cpu_millis * 100);
                r = write_limit(cg, LIM_CPU, v);
        }
        if (r < 0)
                return r;
        cg->cur = *l;
        return 0;
}

/* The jail's directory. Its parent is made only when it is missing (not
 * with a mkdir per path component for every jail); on v2 the controllers
 * are enabled in it once per process and parent. */
static int make_dir(const CgroupHost *h, int c, const char *parent, const char *dir) {
        static char v2_ready[PATH_MAX];
        int r;
        if (h->version == 2 && strcmp(v2_ready, parent) != 0) {
                if ((r = v2_prepare_parent(h->root[c], parent)) < 0)
                        return r;
                snprintf(v2_ready, sizeof v2_ready, "%s", parent);
        }
        if (mkdir(dir, 0755) == 0)
                return 0;
        if (errno != ENOENT || h->version == 2)
                return negative_errno();
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", h->root[c], parent);
        if ((r = mkdir_p(p)) < 0)
                return r;
        return mkdir(dir, 0755) < 0 ? negative_errno() : 0;
}

static int open_procs(const char *dir) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/cgroup.procs", dir);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* The files read for a jail's result, v1 / v2, and where they live. */
static const struct {
        int controller;
        const char *v1, *v2, *key_v1, *key_v2;
} stat_files[_ST_MAX] = {
        [ST_OOM] = { CG_MEMORY, "memory.oom_control", "memory.events", "oom_kill", "oom_kill" },
        [ST_CPU] = { CG_CPUACCT, "cpuacct.usage", "cpu.stat", NULL, "usage_usec" },
        [ST_PEAK] = { CG_MEMORY, "memory.max_usage_in_bytes", "memory.peak", NULL, NULL },
};

static const char *stat_dir(const Cgroup *cg, int which) {
        if (cg->version == 2)
                return cg->path[0];
        return cg->path[stat_files[which].controller == CG_MEMORY ? cg->memory : cg->cpuacct];
}

/* Opened with the cgroup, so that a result costs one pread per file; a
 * file the kernel lacks (memory.peak before 5.19) stays -1. */
static void open_stats(Cgroup *cg) {
        for (int i = 0; i < _ST_MAX; i++) {
                char p[PATH_MAX];
                if (snprintf(p, sizeof p, "%s/%s", stat_dir(cg, i),
                             cg->version == 2 ? stat_files[i].v2 : stat_files[i].v1) < (int) sizeof p)
                        cg->stat_fd[i] = open(p, O_RDONLY | O_CLOEXEC);
        }
}

int cgroup_create(const CgroupHost *h, const char *parent, const char *name,
                  const CgroupLimits *l, bool devices, Cgroup *ret) {
        Cgroup cg;
        cgroup_init(&cg);
        cg.version = h->version;
        int r = 0, ctrl_max = h->version == 2 ? 1 : _CG_MAX;
        for (int c = 0; c < ctrl_max; c++) {
                if (h->version == 1 && c == CG_DEVICES && (!devices || !h->root[c][0]))
                        continue;
                /* v1 controllers mounted together (cpu,cpuacct) share one directory */
                int same = -1;
                for (int k = 0; k < c && h->version == 1; k++)
                        if (strcmp(h->root[k], h->root[c]) == 0)
                                same = k;
                if (same >= 0) {
                        if (c == CG_CPUACCT)
                                cg.cpuacct = same;
                        continue;
                }
                int i = cg.n;
                if (snprintf(cg.path[i], PATH_MAX, "%s/%s/%s", h->root[c], parent, name) >= PATH_MAX) {
                        r = -ENAMETOOLONG;
                        goto fail;
                }
                if ((r = make_dir(h, c, parent, cg.path[i])) < 0)
                        goto fail;
                cg.n = i + 1;
                cg.kind[i] = c;
                if (c == CG_CPUACCT)
                        cg.cpuacct = i;
                if (c == CG_MEMORY)
                        cg.memory = i;
                if (c == CG_DEVICES)
                        cg.devices = i;
                if ((cg.procs_fd[i] = open_procs(cg.path[i])) < 0) {
                        r = cg.procs_fd[i];
                        goto fail;
                }
                if (c != CG_CPUACCT && c != CG_DEVICES && (r = open_limits(&cg, c, cg.path[i])) < 0)
                        goto fail;
        }
        if ((r = cgroup_set_limits(&cg, l)) < 0 || (devices && (r = cgroup_devices_set(&cg, NULL, 0)) < 0))
                goto fail;
        open_stats(&cg);
        *ret = cg;
        return 0;
fail:
        cgroup_destroy(&cg);
        return r;
}

/* A stat file's content, NUL-terminated; its number, or the number after
 * "KEY " on one of its lines. -1 if it cannot be read. */
static long long read_stat(const Cgroup *cg, int which) {
        char buf[4096];
        ssize_t n = cg->stat_fd[which] >= 0 ? pread(cg->stat_fd[which], buf, sizeof buf - 1, 0) : -1;
        if (n < 0) {
                char p[PATH_MAX];
                if (snprintf(p, sizeof p, "%s/%s", stat_dir(cg, which),
                             cg->version == 2 ? stat_files[which].v2 : stat_files[which].v1) >= (int) sizeof p)
                        return -1;
                n = read_file_small(p, buf, sizeof buf);
        }
        if (n <= 0)
                return -1;
        buf[n] = 0;
        const char *key = cg->version == 2 ? stat_files[which].key_v2 : stat_files[which].key_v1;
        if (!key)
                return atoll(buf);
        size_t kl = strlen(key);
        for (char *s = buf; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
                if (strncmp(s, key, kl) == 0 && s[kl] == ' ')
                        return atoll(s + kl + 1);
        return -1;
}

bool cgroup_oom_killed(const Cgroup *cg) {
        return cg->n > 0 && read_stat(cg, ST_OOM) > cg->oom_base;
}

long long cgroup_cpu_usage_ns(const Cgroup *cg) {
        if (cg->n == 0)
                return -1;
        long long v = read_stat(cg, ST_CPU);
        return v < 0 ? -1 : cg->version == 2 ? v * 1000 : v;
}

long long cgroup_memory_peak(const Cgroup *cg) {
        return cg->n == 0 ? -1 : read_stat(cg, ST_PEAK);
}

/* v1: no task charged to its pids cgroup (a zombie still is); v2: not
 * populated. */
static bool cgroup_empty(const Cgroup *cg) {
        char p[PATH_MAX], buf[512];
        int i = 0;
        if (cg->version == 1)
                while (i < cg->n && cg->kind[i] != CG_PIDS)
                        i++;
        if (i == cg->n ||
            snprintf(p, sizeof p, "%s/%s", cg->path[i], cg->version == 2 ? "cgroup.events" : "pids.current") >=
                    (int) sizeof p ||
            read_file_small(p, buf, sizeof buf) <= 0)
                return false;
        if (cg->version == 1)
                return atoll(buf) == 0;
        const char *s = strstr(buf, "populated ");
        return s && s[strlen("populated ")] == '0';
}

int cgroup_recycle(Cgroup *cg) {
        if (cg->n == 0 || !cgroup_empty(cg))
                return -EBUSY;
        /* the peak: v1 resets it with a write; v2 (6.12+) per open file,
         * for reads through that same file, which stat_fd becomes */
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", stat_dir(cg, ST_PEAK),
                     cg->version == 2 ? stat_files[ST_PEAK].v2 : stat_files[ST_PEAK].v1) >= (int) sizeof p)
                return -ENAMETOOLONG;
        int fd = open(p, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (write(fd, "0", 1) != 1) {
                int r = errno == EINVAL || errno == EOPNOTSUPP ? -EOPNOTSUPP : negative_errno();
                close(fd);
                return r;
        }
        safe_close(cg->stat_fd[ST_PEAK]);
        cg->stat_fd[ST_PEAK] = fd;
        long long oom = read_stat(cg, ST_OOM);
        cg->oom_base = oom > 0 ? oom : 0;
        for (int i = 0; i < cg->n; i++) {
                if (cg->procs_fd[i] >= 0)
                        continue;
                if ((cg->procs_fd[i] = open_procs(cg->path[i])) < 0) {
                        int r = cg->procs_fd[i];
                        cgroup_close_fds(cg);
                        return r;
                }
        }
        return 0;
}

/* Remove one stale jail cgroup directory if its runtime is gone. */
static void sweep_dir(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d))) {
                int pid;
                unsigned long n;
                if (sscanf(e->d_name, "jail-%d-%lu", &pid, &n) != 2 || pid <= 0)
                        continue;
                if (kill(pid, 0) == 0 || errno != ESRCH)
                        continue;
                Cgroup cg;
                cgroup_init(&cg);
                cg.n = 1;
                if (snprintf(cg.path[0], PATH_MAX, "%s/%s", dir, e->d_name) < PATH_MAX)
                        (void) cgroup_destroy(&cg);
        }
        closedir(d);
}

void cgroup_sweep_stale(const CgroupHost *h, const char *parent) {
        int n = h->version == 2 ? 1 : _CG_MAX;
        for (int i = 0; i < n; i++) {
                char p[PATH_MAX];
                if (!h->root[i][0])
                        continue;
                snprintf(p, sizeof p, "%s/%s", h->root[i], parent);
                sweep_dir(p);
        }
}

/* Kill every task listed in DIR/cgroup.procs; returns how many were found. */
static int kill_listed(const char *dir) {
        char p[PATH_MAX], buf[8192];
        snprintf(p, sizeof p, "%s/cgroup.procs", dir);
        if (read_file_small(p, buf, sizeof buf) <= 0)
                return 0;
        int n = 0;
        for (char *s = buf; *s;) {
                long pid = strtol(s, &s, 10);
                if (pid > 0 && kill((pid_t) pid, SIGKILL) == 0)
                        n++;
                while (*s == '\n')
                        s++;
        }
        return n;
}

void cgroup_close_fds(Cgroup *cg) {
        for (int i = 0; i < _CG_MAX; i++)
                cg->procs_fd[i] = safe_close(cg->procs_fd[i]);
}

int cgroup_destroy(Cgroup *cg) {
        int r = 0;
        cgroup_close_fds(cg);
        for (int i = 0; i < _LIM_MAX; i++)
                cg->limit_fd[i] = safe_close(cg->limit_fd[i]);
        for (int i = 0; i < _ST_MAX; i++)
                cg->stat_fd[i] = safe_close(cg->stat_fd[i]);
        for (int i = cg->n - 1; i >= 0; i--) {
                if (cg->version == 2 || cg->n == 1)
                        (void) write_at(cg->path[i], "cgroup.kill", "1");
                /* rmdir fails with EBUSY while dying tasks are still listed */
                int tries;
                for (tries = 0; tries < 2000; tries++) {
                        if (rmdir(cg->path[i]) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY) {
                                r = negative_errno();
                                break;
                        }
                        kill_listed(cg->path[i]);
                        nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
                }
                if (tries == 2000 && r == 0)
                        r = -EBUSY;
        }
        cg->n = 0;
        return r;
}
