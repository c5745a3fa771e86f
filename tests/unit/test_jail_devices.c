/* tests/unit/test_jail_devices.c: a jail's devices. The device filter
 * itself (v1's devices controller here, and the v2 BPF program on whatever
 * cgroup2 mount the host has, the hybrid layout's included): a process in
 * the cgroup opens /dev/ptmx only once it is allowed. Then a jail given two
 * stand-in device nodes (numbers of the unassigned "local use" range, so
 * that opening one that is allowed fails with ENXIO, one refused with
 * EPERM) sees exactly those under /dev, and may open them. Root needed. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"
#include "runtime/cgroup.h"
#include "runtime/jail.h"

/* In a child moved into the cgroup(s) by writing "0" to each procs file:
 * open path; 0 when it opened, else the errno. */
static int open_in(char procs[][PATH_MAX], int n, const char *path) {
        pid_t p = fork();
        if (p == 0) {
                for (int i = 0; i < n; i++)
                        if (write_file_str(procs[i], "0") < 0)
                                _exit(200);
                int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
                _exit(fd >= 0 ? 0 : errno);
        }
        int st;
        ASSERT_TRUE(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st));
        return WEXITSTATUS(st);
}

static const CgroupDevice ptmx = { 'c', 5, 2 };

TEST(cgroup_devices_filter_v1_or_v2) {
        CgroupHost h;
        ASSERT_EQ_INT(cgroup_host_detect(&h), 0);
        if (h.version == 1 && !h.root[CG_DEVICES][0]) {
                fprintf(stderr, "  (no v1 devices hierarchy here: skipped)\n");
                return;
        }
        CgroupLimits l = { 256ULL << 20, 64, 1000 };
        Cgroup cg;
        char name[64];
        snprintf(name, sizeof name, "jail-%d-devtest", (int) getpid());
        ASSERT_EQ_INT(cgroup_create(&h, "fnbox", name, &l, true, &cg), 0);
        char procs[_CG_MAX][PATH_MAX];
        for (int i = 0; i < cg.n; i++)
                snprintf(procs[i], PATH_MAX, "%s/cgroup.procs", cg.path[i]);
        int denied = open_in(procs, cg.n, "/dev/ptmx"), null_ok = open_in(procs, cg.n, "/dev/null");
        ASSERT_EQ_INT(cgroup_devices_set(&cg, &ptmx, 1), 0);
        int allowed = open_in(procs, cg.n, "/dev/ptmx");
        ASSERT_EQ_INT(cgroup_devices_set(&cg, NULL, 0), 0);
        int again = open_in(procs, cg.n, "/dev/ptmx");
        ASSERT_EQ_INT(cgroup_destroy(&cg), 0);
        ASSERT_EQ_INT(denied, EPERM);
        ASSERT_EQ_INT(null_ok, 0);
        ASSERT_EQ_INT(allowed, 0);
        ASSERT_EQ_INT(again, EPERM);
        CgroupDevice many[CGROUP_DEVICES_MAX + 1] = { 0 };
        ASSERT_EQ_INT(cgroup_devices_set(&cg, many, CGROUP_DEVICES_MAX + 1), -E2BIG);
}

/* The BPF program on a cgroup2 mount, even where the runtime itself uses
 * v1 (the hybrid layout mounts cgroup2 at /sys/fs/cgroup/unified). */
TEST(cgroup_devices_bpf_program) {
        static const char *const mounts[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
        const char *root = NULL;
        for (size_t i = 0; i < ELEMENTSOF(mounts) && !root; i++) {
                struct statfs sf;
                if (statfs(mounts[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
                        root = mounts[i];
        }
        if (!root) {
                fprintf(stderr, "  (no cgroup2 mount here: skipped)\n");
                return;
        }
        struct bpf_insn insns[64];
        CgroupDevice d[CGROUP_DEVICES_BASE + 1];
        memcpy(d, cgroup_devices_base, sizeof cgroup_devices_base);
        d[CGROUP_DEVICES_BASE] = ptmx;
        ASSERT_EQ_INT(cgroup_devices_program(d, CGROUP_DEVICES_BASE + 1, insns, ELEMENTSOF(insns)),
                      4 + 5 * (CGROUP_DEVICES_BASE + 1) + 2);
        ASSERT_EQ_INT(cgroup_devices_program(d, CGROUP_DEVICES_BASE + 1, insns, 10), -E2BIG);

        char dir[PATH_MAX - 32], procs[1][PATH_MAX];
        snprintf(dir, sizeof dir, "%s/fnbox-unit-dev-%d", root, (int) getpid());
        ASSERT_EQ_INT(mkdir(dir, 0755), 0);
        snprintf(procs[0], PATH_MAX, "%s/cgroup.procs", dir);
        int before = open_in(procs, 1, "/dev/ptmx");
        int r1 = cgroup_devices_attach(dir, cgroup_devices_base, CGROUP_DEVICES_BASE);
        int denied = open_in(procs, 1, "/dev/ptmx"), null_ok = open_in(procs, 1, "/dev/null");
        int r2 = cgroup_devices_attach(dir, d, CGROUP_DEVICES_BASE + 1); /* replaces */
        int allowed = open_in(procs, 1, "/dev/ptmx"), zero_ok = open_in(procs, 1, "/dev/zero");
        ASSERT_EQ_INT(rmdir(dir), 0);
        ASSERT_EQ_INT(r1, 0);
        ASSERT_EQ_INT(r2, 0);
        ASSERT_EQ_INT(before, 0);
        ASSERT_EQ_INT(denied, EPERM);
        ASSERT_EQ_INT(null_ok, 0);
        ASSERT_EQ_INT(allowed, 0);
        ASSERT_EQ_INT(zero_ok, 0);
}

static char dir[64];

static void remove_dir(void) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (dir[0] && system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TEST(jail_devices_exactly_the_given) {
        snprintf(dir, sizeof dir, "/tmp/fnbox-unit-XXXXXX");
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        atexit(remove_dir);
        ASSERT_EQ_INT(chmod(dir, 0755), 0);
        char p[96];
        snprintf(p, sizeof p, "%s/main.sh", dir);
        FILE *f = fopen(p, "w");
        ASSERT_TRUE(f != NULL);
        /* what /dev holds, each stand-in's numbers, and what opening says */
        fputs("cd /dev && ls -A . dri | tr '\\n' ' '; echo\n"
              "stat -c '%n %F %t:%T %a' gpu3 dri/renderD129\n"
              "cat gpu3 2>&1 | sed 's/.*: //'\n", f);
        fclose(f);
        ASSERT_EQ_INT(chmod(p, 0644), 0);
        JailConfig c;
        jail_config_init(&c);
        c.runtime = JAIL_RUNTIME_SH;
        c.code = p;
        JailDevice devs[] = { { "gpu3", 'c', 240, 3 }, { "dri/renderD129", 'c', 241, 129 } };
        c.devices = devs;
        c.n_devices = 2;
        JailResult r;
        ASSERT_EQ_INT(jail_run(&c, &r), 0);
        if (r.status != JAIL_EXITED || r.exit_code != 0)
                FAIL_AT("status %s %d: %s %s", jail_status_to_string(r.status), r.exit_code, r.error, r.err.data);
        ASSERT_EQ_STR(r.out.data, ".: dri fd full gpu3 null random stderr stdin stdout urandom zero  dri: renderD129 \n"
                                  "gpu3 character special file f0:3 666\n"
                                  "dri/renderD129 character special file f1:81 666\n"
                                  "No such device or address\n");
        jail_result_clear(&r);

        /* bad lists are refused before anything is built */
        char why[256];
        JailDevice bad[][1] = { { { "../etc", 'c', 1, 1 } }, { { "null", 'c', 1, 1 } }, { { "a/b/c", 'c', 1, 1 } },
                                { { "gpu0", 'x', 1, 1 } }, { { "", 'c', 1, 1 } } };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                c.devices = bad[i];
                c.n_devices = 1;
                ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
                ASSERT_TRUE(strstr(why, "device") != NULL);
        }
        c.devices = devs;
        c.n_devices = JAIL_DEVICES_MAX + 1;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
}
