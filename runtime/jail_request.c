/* runtime/jail_request.c: turning a checked JailConfig into what a prepared
 * jail's init receives with its START message: the argv and environment
 * (built from scratch, carried in a memfd), the code's detached mount and
 * its place under /fn, the /tmp mount options and the rlimits. Parent side;
 * nothing here touches a jail's processes. */
#define _GNU_SOURCE
#include "jail.h"
#include "jail_internal.h"
#include "zygote_child.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "lib/util.h"

static char **strv_new(size_t n) { return calloc(n + 1, sizeof(char *)); }

static void strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static void strv_freep(char ***v) { strv_free(*v); }

/* The file's name under /fn: the last component of the path it was given by. */
int jail_code_name(const char *code, char *ret, size_t len) {
        _cleanup_free_ char *copy = strdup(code);
        if (!copy)
                return -ENOMEM;
        if (snprintf(ret, len, "%s", basename(copy)) >= (int) len)
                return -ENAMETOOLONG;
        return 0;
}

static int build_argv(const JailConfig *c, bool is_dir, int zygote, char ***ret, char *exec_path, size_t len) {
        const JailRuntimeInfo *rt = &jail_runtimes[c->runtime];
        char code_in_jail[PATH_MAX], name[256];
        int r;
        if (is_dir)
                snprintf(code_in_jail, sizeof code_in_jail, "/fn/%s", c->entry ? c->entry : rt->default_entry);
        else if ((r = jail_code_name(c->code, name, sizeof name)) < 0)
                return r;
        else
                snprintf(code_in_jail, sizeof code_in_jail, "/fn/%s", name);
        char **v = strv_new(10 + c->n_args);
        if (!v)
                return -ENOMEM;
        *ret = v;
        size_t n = 0;
        if (rt->interpreter) {
                v[n++] = strdup(rt->interpreter);
                for (size_t i = 0; rt->flags[i]; i++)
                        v[n++] = strdup(rt->flags[i]);
        }
        if (zygote == JAIL_ZYGOTE_PYTHON || zygote == JAIL_ZYGOTE_TEMPLATE) {
                /* the driver runs first; it gets the box's path and arguments */
                v[n++] = strdup("-c");
                v[n++] = strdup(zygote_driver_py);
        }
        snprintf(exec_path, len, "%s", rt->interpreter ? rt->interpreter : code_in_jail);
        v[n++] = strdup(code_in_jail);
        for (size_t i = 0; i < c->n_args; i++)
                v[n++] = strdup(c->args[i]);
        for (size_t i = 0; i < n; i++)
                if (!v[i])
                        return -ENOMEM;
        return 0;
}

static int build_env(const JailConfig *c, char ***ret) {
        static const char *const base[] = {
                "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
                "LANG=C.UTF-8", "USER=box", "LOGNAME=box",
        };
        char **v = strv_new(ELEMENTSOF(base) + c->n_env);
        if (!v)
                return -ENOMEM;
        *ret = v;
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(base); i++) {
                size_t klen = strcspn(base[i], "=") + 1;
                bool overridden = false;
                for (size_t k = 0; k < c->n_env; k++)
                        overridden |= strncmp(c->env[k], base[i], klen) == 0;
                if (!overridden && !(v[n++] = strdup(base[i])))
                        return -ENOMEM;
        }
        for (size_t k = 0; k < c->n_env; k++)
                if (!(v[n++] = strdup(c->env[k])))
                        return -ENOMEM;
        return 0;
}

static size_t strv_bytes(char **v, uint32_t *ret_n) {
        size_t total = 0, n = 0;
        for (; v[n]; n++)
                total += strlen(v[n]) + 1;
        *ret_n = (uint32_t) n;
        return total;
}

static char *strv_pack(char *p, char **v) {
        for (size_t i = 0; v[i]; i++)
                p = stpcpy(p, v[i]) + 1;
        return p;
}

/* The exec path, argv and envp as NUL-terminated strings, in a memfd. */
static int spec_write(const char *exec_path, char **argv, char **envp, JailStartMsg *m) {
        size_t total = strlen(exec_path) + 1 + strv_bytes(argv, &m->n_argv) + strv_bytes(envp, &m->n_env);
        if (total > JAIL_SPEC_MAX || m->n_argv > JAIL_SPEC_ARGS || m->n_env > JAIL_SPEC_ENV)
                return -E2BIG;
        _cleanup_free_ char *buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        char *p = stpcpy(buf, exec_path) + 1;
        p = strv_pack(strv_pack(p, argv), envp);
        int fd = memfd_create("fnbox-request", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = write_all(fd, buf, total);
        if (r < 0)
                return safe_close(fd), r;
        m->spec_len = total;
        return fd;
}

static void limits_to_msg(const JailLimits *l, JailStartMsg *m) {
        uint64_t inodes = l->tmp_inodes ? l->tmp_inodes : l->tmp_bytes / 4096;
        uint64_t fsize = l->fsize_bytes ? l->fsize_bytes : l->tmp_bytes;
        snprintf(m->tmp_opts, sizeof m->tmp_opts, "size=%llu,nr_inodes=%llu",
                 (unsigned long long) l->tmp_bytes, (unsigned long long) (inodes < 64 ? 64 : inodes));
        m->rl_core = (struct rlimit) { 0, 0 };
        m->rl_fsize = (struct rlimit) { fsize, fsize };
        m->rl_nofile = (struct rlimit) { l->nofile, l->nofile };
        m->rl_stack = (struct rlimit) { l->stack_bytes, l->stack_bytes };
}

/* A detached copy of the mount of a checked folder, its last component
 * not followed if it is a symlink. */
static int tree_of(const char *path) {
        int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
        return fd < 0 ? negative_errno() : fd;
}

int jail_request_build(const JailConfig *c, int path_fd, bool is_dir, int zygote, JailStartParts *ret) {
        _cleanup_(strv_freep) char **argv = NULL, **envp = NULL;
        char exec_path[PATH_MAX], name[256];
        JailStartParts p = { .msg = { .type = JAIL_MSG_START, .code_is_dir = is_dir, .zygote = (uint32_t) zygote },
                             .code_fd = -1, .spec_fd = -1, .run_fd = -1, .input_fd = -1, .output_fd = -1 };
        int r;
        if ((r = build_argv(c, is_dir, zygote, &argv, exec_path, sizeof exec_path)) < 0 || (r = build_env(c, &envp)) < 0)
                return r;
        if (is_dir)
                snprintf(p.msg.code_target, sizeof p.msg.code_target, "fn");
        else if ((r = jail_code_name(c->code, name, sizeof name)) < 0)
                return r;
        else
                snprintf(p.msg.code_target, sizeof p.msg.code_target, "fn/%s", name);
        limits_to_msg(&c->limits, &p.msg);
        for (size_t i = 0; i < c->n_devices && i < JAIL_DEVICES_MAX; i++) {
                snprintf(p.msg.devices[i].path, sizeof p.msg.devices[i].path, "%s", c->devices[i].path);
                p.msg.devices[i].mode = c->devices[i].type == 'b' ? S_IFBLK : S_IFCHR;
                p.msg.devices[i].major = c->devices[i].major;
                p.msg.devices[i].minor = c->devices[i].minor;
                p.msg.n_devices = (uint32_t) i + 1;
        }
        if ((p.spec_fd = spec_write(exec_path, argv, envp, &p.msg)) < 0)
                return p.spec_fd;
        /* A detached copy of the checked code's mount, which the jail moves
         * into its own mount namespace (a plain bind cannot cross them). */
        p.code_fd = open_tree(path_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (p.code_fd < 0) {
                r = negative_errno();
                jail_request_clear(&p);
                return r;
        }
        /* the service folder and a session's /input and /output: detached
         * copies of the directories jail_config_check_rest() checked,
         * opened here without following a symlink */
        if ((c->run_dir && (r = p.run_fd = tree_of(c->run_dir)) < 0) ||
            (c->input_dir && (r = p.input_fd = tree_of(c->input_dir)) < 0) ||
            (c->output_dir && (r = p.output_fd = tree_of(c->output_dir)) < 0)) {
                jail_request_clear(&p);
                return r;
        }
        if (c->run_dir)
                p.msg.has_run_dir = c->run_dir_readonly ? 2 : 1;
        p.msg.has_input = c->input_dir != NULL;
        p.msg.has_output = c->output_dir != NULL;
        *ret = p;
        return 0;
}

/* The fds that travel with START, in the order the jail takes them:
 * code, spec, then run_dir's, input's and output's when there. */
size_t jail_request_fds(const JailStartParts *p, int fds[static 5]) {
        size_t n = 0;
        fds[n++] = p->code_fd;
        fds[n++] = p->spec_fd;
        if (p->run_fd >= 0)
                fds[n++] = p->run_fd;
        if (p->input_fd >= 0)
                fds[n++] = p->input_fd;
        if (p->output_fd >= 0)
                fds[n++] = p->output_fd;
        return n;
}

/* A template's ADOPT (zygote_child.h): the box's argv from "/fn/ENTRY" on,
 * its environment and limits, as the START of a python3 zygote of c would
 * carry them, in a memfd. */
int jail_adopt_build(const JailConfig *c, bool is_dir, int *ret_fd) {
        _cleanup_(strv_freep) char **argv = NULL, **envp = NULL;
        char exec_path[PATH_MAX];
        int r;
        if ((r = build_argv(c, is_dir, JAIL_ZYGOTE_PYTHON, &argv, exec_path, sizeof exec_path)) < 0 ||
            (r = build_env(c, &envp)) < 0)
                return r;
        /* what the template's own command line has already: the
         * interpreter, its flags, -c and the driver */
        const JailRuntimeInfo *rt = &jail_runtimes[c->runtime];
        size_t skip = 3;
        while (rt->flags[skip - 3])
                skip++;
        for (size_t i = 0; i < skip; i++)
                if (!argv[i])
                        return -EINVAL;
        JailStartMsg m = { 0 };
        ZygoteAdopt a = { .magic = ZYGOTE_ADOPT_MAGIC };
        size_t total = strv_bytes(argv + skip, &a.n_argv) + strv_bytes(envp, &a.n_env);
        if (total > ZYGOTE_ADOPT_MAX || a.n_argv > JAIL_SPEC_ARGS || a.n_env > JAIL_SPEC_ENV)
                return -E2BIG;
        a.strings_len = (uint32_t) total;
        limits_to_msg(&c->limits, &m);
        memcpy(a.tmp_opts, m.tmp_opts, sizeof a.tmp_opts);
        a.rl_core = m.rl_core;
        a.rl_fsize = m.rl_fsize;
        a.rl_nofile = m.rl_nofile;
        a.rl_stack = m.rl_stack;
        _cleanup_free_ char *buf = malloc(sizeof a + total);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, &a, sizeof a);
        strv_pack(strv_pack(buf + sizeof a, argv + skip), envp);
        int fd = memfd_create("fnbox-adopt", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if ((r = write_all(fd, buf, sizeof a + total)) < 0)
                return safe_close(fd), r;
        *ret_fd = fd;
        return 0;
}

void jail_request_clear(JailStartParts *p) {
        p->code_fd = safe_close(p->code_fd);
        p->spec_fd = safe_close(p->spec_fd);
        p->run_fd = safe_close(p->run_fd);
        p->input_fd = safe_close(p->input_fd);
        p->output_fd = safe_close(p->output_fd);
}
