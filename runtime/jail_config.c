/* runtime/jail_config.c: defaults and validation of a jail's configuration,
 * and the table of runtimes (which interpreter runs the code, with what
 * flags). Everything a caller gets wrong is refused here, before any
 * namespace, cgroup or mount exists. */
#define _GNU_SOURCE
#include "jail.h"
#include "jail_internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

const JailRuntimeInfo jail_runtimes[_JAIL_RUNTIME_MAX] = {
        [JAIL_RUNTIME_EXEC] = { "exec", NULL, { NULL }, "main" },
        [JAIL_RUNTIME_SH] = { "sh", "/bin/sh", { NULL }, "main.sh" },
        [JAIL_RUNTIME_PYTHON3] = { "python3", "/usr/bin/python3", { "-I", NULL }, "main.py" },
        [JAIL_RUNTIME_NODE] = { "node", "/usr/bin/node", { NULL }, "index.js" },
};

void jail_limits_default(JailLimits *l) {
        *l = (JailLimits) {
                .memory_bytes = 128ULL << 20,
                .timeout_ns = 10ULL * 1000000000ULL,
                .cpu_millis = 1000,
                .pids = 64,
                .tmp_bytes = 16ULL << 20,
                .tmp_inodes = 0, /* derived from tmp_bytes */
                .output_bytes = 1ULL << 20,
                .fsize_bytes = 0, /* derived from tmp_bytes */
                .nofile = 1024,
                .stack_bytes = 8ULL << 20,
        };
}

void jail_config_init(JailConfig *c) {
        *c = (JailConfig) {
                .runtime = JAIL_RUNTIME_EXEC,
                .code_fd = -1,
                .host_uid = 65534,
                .host_gid = 65534,
                .cgroup_parent = "fnbox",
        };
        jail_limits_default(&c->limits);
}

const char *jail_runtime_to_string(JailRuntime r) {
        return r >= 0 && r < _JAIL_RUNTIME_MAX ? jail_runtimes[r].name : NULL;
}

int jail_runtime_from_string(const char *s) {
        for (int i = 0; s && i < _JAIL_RUNTIME_MAX; i++)
                if (strcmp(s, jail_runtimes[i].name) == 0)
                        return i;
        return -EINVAL;
}

static int refuse(char *why, size_t len, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

typedef struct Range {
        const char *name;
        uint64_t value, min, max;
} Range;

/* The host's RAM and online cores, which bound the limits; looked up at
 * most once a second (a daemon checks every request). */
static void host_size(uint64_t *ram, uint64_t *cores) {
        static uint64_t cached_ram, cached_cores;
        static time_t stamp;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
        if (!cached_cores || now.tv_sec != stamp) {
                struct sysinfo si;
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                cached_ram = sysinfo(&si) == 0 ? (uint64_t) si.totalram * si.mem_unit : (64ULL << 30);
                cached_cores = n > 0 ? (uint64_t) n : 1;
                stamp = now.tv_sec;
        }
        *ram = cached_ram;
        *cores = cached_cores;
}

static int check_limits(const JailLimits *l, char *why, size_t len) {
        uint64_t ram, cores;
        host_size(&ram, &cores);
        const Range ranges[] = {
                { "--memory", l->memory_bytes, 4ULL << 20, ram },
                { "--timeout", l->timeout_ns, 1000000ULL, 86400ULL * 1000000000ULL },
                { "--cpu", l->cpu_millis, 10, cores * 1000 },
                { "--pids", l->pids, 1, 32768 },
                { "--tmp", l->tmp_bytes, 64ULL << 10, ram / 2 },
                { "--output", l->output_bytes, 0, 1ULL << 30 },
                { "nofile", l->nofile, 16, 65536 },
                { "stack", l->stack_bytes, 128ULL << 10, 1ULL << 30 },
        };
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++)
                if (ranges[i].value < ranges[i].min || ranges[i].value > ranges[i].max)
                        return refuse(why, len, "%s out of range: %llu (allowed %llu..%llu)",
                                      ranges[i].name, (unsigned long long) ranges[i].value,
                                      (unsigned long long) ranges[i].min, (unsigned long long) ranges[i].max);
        return 0;
}

static bool env_key_valid(const char *kv) {
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv || strlen(kv) > 32768)
                return false;
        for (const char *p = kv; p < eq; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
                      (p > kv && *p >= '0' && *p <= '9')))
                        return false;
        return true;
}

/* Is st readable (and, if need_exec, executable or searchable) by the box's
 * host uid? The box sees the code through a bind mount, so only the mode
 * bits of the file or folder itself matter. */
static bool jail_can_use(const struct stat *st, const JailConfig *c, bool need_exec) {
        mode_t r = S_IROTH, x = S_IXOTH;
        if (st->st_uid == c->host_uid)
                r = S_IRUSR, x = S_IXUSR;
        else if (st->st_gid == c->host_gid)
                r = S_IRGRP, x = S_IXGRP;
        return (st->st_mode & r) && (!need_exec || (st->st_mode & x));
}

static bool path_is_special(const char *real) {
        static const char *const bad[] = { "/proc", "/sys", "/dev", "/run/fnbox" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                size_t n = strlen(bad[i]);
                if (strncmp(real, bad[i], n) == 0 && (real[n] == 0 || real[n] == '/'))
                        return true;
        }
        return false;
}

/* The name a code file gets under /fn: the last component of its path. */
static bool code_name_valid(const char *code) {
        const char *slash = strrchr(code, '/'), *name = slash ? slash + 1 : code;
        return *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && strlen(name) < 256;
}

static int check_folder(const JailConfig *c, int fd, const struct stat *st, char *why, size_t len) {
        bool is_exec = c->runtime == JAIL_RUNTIME_EXEC;
        if (!jail_can_use(st, c, true))
                return refuse(why, len, "--code %s: the box user (uid %u) cannot enter the folder; chmod o+rx",
                              c->code, (unsigned) c->host_uid);
        const char *entry = c->entry ? c->entry : jail_runtimes[c->runtime].default_entry;
        if (!*entry || entry[0] == '/' || strstr(entry, "..") || strlen(entry) > 200)
                return refuse(why, len, "--entry %s: must be a relative path inside the code folder", entry);
        struct stat est;
        if (fstatat(fd, entry, &est, 0) < 0 || !S_ISREG(est.st_mode))
                return refuse(why, len, "--code %s: entry %s not found in the folder", c->code, entry);
        if (!jail_can_use(&est, c, is_exec))
                return refuse(why, len, "--code %s: the box user cannot %s %s", c->code,
                              is_exec ? "execute" : "read", entry);
        return 0;
}

/* Check the opened code, never the path again: a path can be swapped for a
 * symlink (to /proc, say) between a check and a later open. The fd is what
 * gets mounted. The daemon runs this on the fd its client sent. */
int jail_code_check(const JailConfig *c, int fd, char *why, size_t len, struct stat *ret_st) {
        struct stat st;
        if (!c->code || !*c->code)
                return refuse(why, len, "--code is required");
        if (fstat(fd, &st) < 0)
                return refuse(why, len, "--code %s: %s", c->code, strerror(errno));
        char link[64], real[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, real, sizeof real - 1);
        if (n <= 0)
                return refuse(why, len, "--code %s: cannot resolve: %s", c->code, strerror(errno));
        real[n] = 0;
        if (real[0] != '/' || path_is_special(real))
                return refuse(why, len, "--code %s: must not be under /proc, /sys, /dev or /run/fnbox", c->code);
        /* the caller (real uid, as for a setuid install) must be able to read it */
        if (faccessat(AT_FDCWD, link, R_OK, 0) < 0)
                return refuse(why, len, "--code %s: not readable by you: %s", c->code, strerror(errno));
        bool is_exec = c->runtime == JAIL_RUNTIME_EXEC;
        int r = 0;
        if (S_ISREG(st.st_mode)) {
                if (!jail_can_use(&st, c, is_exec))
                        return refuse(why, len, "--code %s: the box user (uid %u) cannot %s it; chmod o+r%s",
                                      c->code, (unsigned) c->host_uid, is_exec ? "execute" : "read",
                                      is_exec ? "x" : "");
                if (!code_name_valid(c->code))
                        return refuse(why, len, "--code %s: the file's name must be a plain name", c->code);
        } else if (!S_ISDIR(st.st_mode))
                return refuse(why, len, "--code %s: not a regular file or a folder", c->code);
        else if ((r = check_folder(c, fd, &st, why, len)) < 0)
                return r;
        if (ret_st)
                *ret_st = st;
        return 0;
}

/* Open the code once (O_PATH) and check what was opened. */
int jail_code_open(const JailConfig *c, char *why, size_t len, int *ret_fd, struct stat *ret_st) {
        if (!c->code || !*c->code)
                return refuse(why, len, "--code is required");
        _cleanup_close_ int fd = open(c->code, O_PATH | O_CLOEXEC);
        if (fd < 0)
                return refuse(why, len, "--code %s: %s", c->code, strerror(errno));
        int r = jail_code_check(c, fd, why, len, ret_st);
        if (r < 0)
                return r;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

/* What the box's host uid must be able to do with a bound folder. */
typedef enum FolderUse { FOLDER_ENTER, FOLDER_READ, FOLDER_WRITE } FolderUse;

/* A host folder bound into the jail (run_dir, input_dir, output_dir): an
 * absolute path of a directory (the last component not a symlink: it is
 * opened without following one), not under /proc, /sys or /dev, that the
 * box's host uid can use as it must. */
static int check_folder_bind(const JailConfig *c, const char *what, const char *path, FolderUse use, char *why,
                             size_t len) {
        struct stat st;
        if (path[0] != '/' || strstr(path, "/../") || strlen(path) >= PATH_MAX)
                return refuse(why, len, "%s %.200s: must be an absolute path", what, path);
        if (lstat(path, &st) < 0)
                return refuse(why, len, "%s %.200s: %s", what, path, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return refuse(why, len, "%s %.200s: not a directory", what, path);
        static const char *const bad[] = { "/proc", "/sys", "/dev" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                size_t n = strlen(bad[i]);
                if (strncmp(path, bad[i], n) == 0 && (path[n] == 0 || path[n] == '/'))
                        return refuse(why, len, "%s %.200s: must not be under /proc, /sys or /dev", what, path);
        }
        /* the mode bits of the folder itself: the box sees it through a bind */
        static const mode_t need[][3] = {
                [FOLDER_ENTER] = { S_IXOTH, S_IXGRP, S_IXUSR },
                [FOLDER_READ] = { S_IROTH | S_IXOTH, S_IRGRP | S_IXGRP, S_IRUSR | S_IXUSR },
                [FOLDER_WRITE] = { S_IWOTH | S_IXOTH, S_IWGRP | S_IXGRP, S_IWUSR | S_IXUSR },
        };
        static const char *const verb[] = { "enter", "read", "write" };
        mode_t m = need[use][st.st_uid == c->host_uid ? 2 : st.st_gid == c->host_gid ? 1 : 0];
        if ((st.st_mode & m) != m)
                return refuse(why, len, "%s %.200s: the box user (uid %u) cannot %s it", what, path,
                              (unsigned) c->host_uid, verb[use]);
        return 0;
}

/* A service's folder (read-write at /run/fnbox, or read-only: the box
 * only enters it), and a session's /input and /output. */
static int check_folders(const JailConfig *c, char *why, size_t len) {
        int r;
        if (c->run_dir && (r = check_folder_bind(c, "run dir", c->run_dir,
                                                 c->run_dir_readonly ? FOLDER_ENTER : FOLDER_WRITE, why, len)) < 0)
                return r;
        if (c->input_dir && (r = check_folder_bind(c, "input dir", c->input_dir, FOLDER_READ, why, len)) < 0)
                return r;
        if (c->output_dir && (r = check_folder_bind(c, "output dir", c->output_dir, FOLDER_WRITE, why, len)) < 0)
                return r;
        struct stat in, out;
        if (c->input_dir && c->output_dir && lstat(c->input_dir, &in) == 0 && lstat(c->output_dir, &out) == 0 &&
            in.st_dev == out.st_dev && in.st_ino == out.st_ino)
                return refuse(why, len, "input dir and output dir must be different folders");
        return 0;
}

/* A device path under /dev: one or two components of [A-Za-z0-9._-], not
 * dot-led, and not one of the five every jail has. */
static bool device_path_valid(const char *p) {
        static const char *const base[] = { "null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout",
                                            "stderr" };
        size_t n = strnlen(p, sizeof ((JailDevice *) 0)->path);
        if (n == 0 || n >= sizeof ((JailDevice *) 0)->path || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/") != n)
                return false;
        const char *slash = strchr(p, '/');
        if (p[0] == '.' || p[0] == '/' || (slash && (strchr(slash + 1, '/') || slash[1] == '.' || slash[1] == 0)))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(base); i++)
                if (strcmp(p, base[i]) == 0)
                        return false;
        return true;
}

int jail_device_check(const JailDevice *d, char *why, size_t len) {
        if (!device_path_valid(d->path))
                return refuse(why, len, "device /dev/%.64s: not a plain name under /dev (one folder at most)", d->path);
        if (d->type != 'c' && d->type != 'b')
                return refuse(why, len, "device /dev/%.64s: neither a character nor a block device", d->path);
        return 0;
}

static int check_devices(const JailConfig *c, char *why, size_t len) {
        if (c->n_devices > JAIL_DEVICES_MAX)
                return refuse(why, len, "too many devices: %zu (at most %d)", c->n_devices, JAIL_DEVICES_MAX);
        for (size_t i = 0; i < c->n_devices; i++) {
                const JailDevice *d = &c->devices[i];
                int r = jail_device_check(d, why, len);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (strcmp(c->devices[k].path, d->path) == 0)
                                return refuse(why, len, "device /dev/%.64s: named twice", d->path);
        }
        return 0;
}

/* Everything but the code, which jail_code_open() checks. */
int jail_config_check_rest(const JailConfig *c, char *why, size_t len) {
        if (c->runtime < 0 || c->runtime >= _JAIL_RUNTIME_MAX)
                return refuse(why, len, "unknown runtime");
        const char *interp = jail_runtimes[c->runtime].interpreter;
        if (interp && access(interp, X_OK) < 0)
                return refuse(why, len, "runtime %s needs %s, which this host lacks",
                              jail_runtimes[c->runtime].name, interp);
        if (c->host_uid == 0 || c->host_gid == 0)
                return refuse(why, len, "the box must map to an unprivileged host uid and gid, not 0");
        int r = check_limits(&c->limits, why, len);
        if (r < 0)
                return r;
        if (c->stdin_len > JAIL_STDIN_MAX)
                return refuse(why, len, "stdin too large: %zu bytes (at most %u MiB)", c->stdin_len,
                              (unsigned) (JAIL_STDIN_MAX >> 20));
        if (c->n_env > 256)
                return refuse(why, len, "too many --env (at most 256)");
        for (size_t i = 0; i < c->n_env; i++)
                if (!env_key_valid(c->env[i]))
                        return refuse(why, len, "--env %.40s: expected KEY=VALUE with KEY of [A-Za-z_][A-Za-z0-9_]*", c->env[i]);
        size_t total = 0;
        for (size_t i = 0; i < c->n_args; i++)
                total += strlen(c->args[i]) + 1;
        if (c->n_args > 4096 || total > (1U << 20))
                return refuse(why, len, "too many or too long arguments (at most 4096, 1 MiB in all)");
        if (!c->cgroup_parent || !*c->cgroup_parent || strstr(c->cgroup_parent, "..") || c->cgroup_parent[0] == '/')
                return refuse(why, len, "cgroup parent must be a relative path without ..");
        int r2 = check_devices(c, why, len);
        return r2 < 0 ? r2 : check_folders(c, why, len);
}

int jail_config_check(const JailConfig *c, char *why, size_t len) {
        int r = jail_config_check_rest(c, why, len);
        if (r < 0)
                return r;
        return c->code_fd >= 0 ? jail_code_check(c, c->code_fd, why, len, NULL)
                               : jail_code_open(c, why, len, NULL, NULL);
}

int jail_config_check_open(const JailConfig *c, char *why, size_t len, int *ret_code_fd) {
        int r = jail_config_check_rest(c, why, len);
        return r < 0 ? r : jail_code_open(c, why, len, ret_code_fd, NULL);
}
