/* runtime/cgroup_devices.c: which device nodes a jail's tasks may open or
 * make. Every jail is allowed its five harmless devices (null, zero, full,
 * random, urandom) and, for a GPU instance, exactly the devices of its
 * GPUs; everything else is refused by the kernel even if a node for it
 * existed in the jail. v1: the devices controller's deny and allow lists.
 * v2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the jail's cgroup,
 * written here instruction by instruction (a list of equality tests). */
#define _GNU_SOURCE
#include "cgroup.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "lib/util.h"

const CgroupDevice cgroup_devices_base[CGROUP_DEVICES_BASE] = {
        { 'c', 1, 3 }, { 'c', 1, 5 }, { 'c', 1, 7 }, { 'c', 1, 8 }, { 'c', 1, 9 },
};

/* ---- v1 ------------------------------------------------------------------------ */

static int v1_write(const char *dir, const char *file, const char *val) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, file) >= (int) sizeof p)
                return -ENAMETOOLONG;
        return write_file_str(p, val);
}

/* "a" on devices.deny empties the allow list and makes deny the default;
 * then one "c MAJ:MIN rwm" per device. */
static int v1_set(const char *dir, const CgroupDevice *d, size_t n) {
        int r = v1_write(dir, "devices.deny", "a");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char v[64];
                snprintf(v, sizeof v, "%c %u:%u rwm", d[i].type, d[i].major, d[i].minor);
                r = v1_write(dir, "devices.allow", v);
        }
        return r;
}

/* ---- v2 ------------------------------------------------------------------------ */

#define INSN(c, d, s, o, i) ((struct bpf_insn) { .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define AND32_K(d, i) INSN(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, i)
#define JNE_K(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define MOV64_K(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* r2 = the device type (access_type's low half), r3 = major, r4 = minor;
 * per device: a match returns 1 (allowed, any access); falling off the end
 * returns 0 (EPERM). */
int cgroup_devices_program(const CgroupDevice *d, size_t n, struct bpf_insn *out, size_t cap) {
        size_t k = 0, need = 4 + 5 * n + 2;
        if (need > cap)
                return -E2BIG;
        out[k++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
        out[k++] = AND32_K(BPF_REG_2, 0xffff);
        out[k++] = LDX_W(BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
        out[k++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));
        for (size_t i = 0; i < n; i++) {
                int type = d[i].type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
                out[k++] = JNE_K(BPF_REG_2, type, 4);
                out[k++] = JNE_K(BPF_REG_3, (int32_t) d[i].major, 3);
                out[k++] = JNE_K(BPF_REG_4, (int32_t) d[i].minor, 2);
                out[k++] = MOV64_K(BPF_REG_0, 1);
                out[k++] = EXIT_INSN();
        }
        out[k++] = MOV64_K(BPF_REG_0, 0);
        out[k++] = EXIT_INSN();
        return (int) k;
}

static int prog_load(const CgroupDevice *d, size_t n) {
        struct bpf_insn insns[4 + 5 * (CGROUP_DEVICES_BASE + CGROUP_DEVICES_MAX) + 2];
        int k = cgroup_devices_program(d, n, insns, ELEMENTSOF(insns));
        if (k < 0)
                return k;
        union bpf_attr a = { 0 };
        a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        a.insns = (uint64_t) (uintptr_t) insns;
        a.insn_cnt = (uint32_t) k;
        a.license = (uint64_t) (uintptr_t) "GPL";
        int fd = (int) syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
        return fd < 0 ? negative_errno() : fd;
}

/* Attach with no flags: the one program of this cgroup, replacing the
 * one there (a prepared jail's base program, when it becomes a GPU
 * instance's). */
int cgroup_devices_attach(const char *dir, const CgroupDevice *d, size_t n) {
        static int base_fd = -1; /* the base program, loaded once; the loop's thread only */
        bool is_base = n == CGROUP_DEVICES_BASE && memcmp(d, cgroup_devices_base, sizeof cgroup_devices_base) == 0;
        int prog = is_base ? base_fd : -1;
        if (prog < 0 && (prog = prog_load(d, n)) < 0)
                return prog;
        if (is_base)
                base_fd = prog;
        _cleanup_close_ int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = 0;
        if (cg < 0)
                r = negative_errno();
        else {
                union bpf_attr a = { 0 };
                a.target_fd = (uint32_t) cg;
                a.attach_bpf_fd = (uint32_t) prog;
                a.attach_type = BPF_CGROUP_DEVICE;
                if (syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a) < 0)
                        r = negative_errno();
        }
        if (!is_base)
                close(prog);
        return r;
}

/* ---- both ---------------------------------------------------------------------- */

int cgroup_devices_set(const Cgroup *cg, const CgroupDevice *extra, size_t n_extra) {
        CgroupDevice all[CGROUP_DEVICES_BASE + CGROUP_DEVICES_MAX];
        if (n_extra > CGROUP_DEVICES_MAX)
                return -E2BIG;
        memcpy(all, cgroup_devices_base, sizeof cgroup_devices_base);
        for (size_t i = 0; i < n_extra; i++) {
                if (extra[i].type != 'c' && extra[i].type != 'b')
                        return -EINVAL;
                all[CGROUP_DEVICES_BASE + i] = extra[i];
        }
        size_t n = CGROUP_DEVICES_BASE + n_extra;
        if (cg->version == 2)
                return cg->n > 0 ? cgroup_devices_attach(cg->path[0], all, n) : -EBADF;
        if (cg->devices < 0)
                return n_extra > 0 ? -EOPNOTSUPP : 0; /* no devices hierarchy: the jail's /dev alone */
        return v1_set(cg->path[cg->devices], all, n);
}
