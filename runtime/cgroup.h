/* runtime/cgroup.h: per-jail cgroups with memory, pids and CPU limits and a
 * device filter, on cgroup v2 (unified) or v1 (one hierarchy per
 * controller). The jail's init attaches itself by writing "0" to the procs
 * files opened here. */
#pragma once

#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* CG_CPUACCT and CG_DEVICES are only used on v1, where cpuacct may share a
 * hierarchy with cpu. The devices hierarchy is optional (root empty when
 * the host has none): without it a jail's /dev is its only device limit. */
enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_DEVICES, _CG_MAX };

typedef struct CgroupHost {
        int version;                   /* 1 or 2 */
        char root[_CG_MAX][PATH_MAX];  /* v1: each controller's mount; v2: root[0] */
} CgroupHost;

typedef struct CgroupLimits {
        uint64_t memory_bytes;
        uint64_t pids;
        uint64_t cpu_millis;
} CgroupLimits;

/* The limit files, kept open from creation so that a prepared jail's limits
 * are set at request time with one write each (v1 / v2 names). */
enum { LIM_MEMORY, LIM_MEMSW, LIM_PIDS, LIM_CPU, _LIM_MAX };
/* ... and the files read for its result (OOM kills, CPU time, peak memory). */
enum { ST_OOM, ST_CPU, ST_PEAK, _ST_MAX };

typedef struct Cgroup {
        int version;
        int n;                          /* directories created, in path[0..n-1] */
        char path[_CG_MAX][PATH_MAX];
        int kind[_CG_MAX];              /* the controller (CG_*) path[i] was made for */
        int procs_fd[_CG_MAX];          /* open O_WRONLY on each cgroup.procs */
        int limit_fd[_LIM_MAX];         /* open O_WRONLY; memsw/swap may be -1 */
        int stat_fd[_ST_MAX];           /* open O_RDONLY, or -1 */
        CgroupLimits cur;               /* as last written */
        int cpuacct;                    /* index in path[] that has cpuacct.usage (v1) */
        int memory;                     /* index in path[] of the memory controller */
        int devices;                    /* index in path[] of the v1 devices cgroup, or -1 */
        long long oom_base;             /* OOM kills counted before its present tasks (reuse) */
} Cgroup;

/* A device a jail's tasks may use: type 'c' or 'b', its numbers. */
typedef struct CgroupDevice {
        char type;
        uint32_t major, minor;
} CgroupDevice;

#define CGROUP_DEVICES_BASE 5           /* null, zero, full, random, urandom */
#define CGROUP_DEVICES_MAX 32           /* more than those, per jail */
extern const CgroupDevice cgroup_devices_base[CGROUP_DEVICES_BASE];

/* An empty Cgroup: no directory, every fd -1. */
void cgroup_init(Cgroup *cg);

/* Find the cgroup mounts of this host. */
int cgroup_host_detect(CgroupHost *ret);
/* Create PARENT/NAME in every needed hierarchy with limits applied. With
 * devices, it has a device filter of its own allowing the base devices
 * only (v1: a devices cgroup, v2: the BPF program); without, none (on v1
 * its tasks stay in their creator's devices cgroup, and so under its
 * filter: a zygote's children; on v2 there is then no filter at all). */
int cgroup_create(const CgroupHost *h, const char *parent, const char *name,
                  const CgroupLimits *l, bool devices, Cgroup *ret);
/* Allow the base devices and these (at most CGROUP_DEVICES_MAX), nothing
 * else, with any access (read, write, mknod). On v1 the cgroup needs its
 * own devices cgroup (-EOPNOTSUPP for extra devices without one). */
int cgroup_devices_set(const Cgroup *cg, const CgroupDevice *extra, size_t n_extra);
/* v2: attach the device program allowing d[0..n) to the cgroup at dir,
 * replacing the one there. */
int cgroup_devices_attach(const char *dir, const CgroupDevice *d, size_t n);
struct bpf_insn;
/* The program's instructions for d[0..n) into out; their count, or -E2BIG. */
int cgroup_devices_program(const CgroupDevice *d, size_t n, struct bpf_insn *out, size_t cap);
/* Write the limits into an existing cgroup (a prepared jail's, at request
 * time, before its box can start). */
int cgroup_set_limits(Cgroup *cg, const CgroupLimits *l);
/* True if the kernel's OOM killer killed a task in the cgroup. */
bool cgroup_oom_killed(const Cgroup *cg);
/* CPU time of every task that ever ran in it, in ns; -1 if unknown. */
long long cgroup_cpu_usage_ns(const Cgroup *cg);
/* Peak memory charged to it, in bytes; -1 if unknown. */
long long cgroup_memory_peak(const Cgroup *cg);
/* Remove PARENT/jail-PID-* left by runtimes that died (PID not running). */
void cgroup_sweep_stale(const CgroupHost *h, const char *parent);
/* Make an emptied cgroup ready for its next tasks instead of removing it
 * (creating and removing cgroups costs the kernel far more, cgroup v1
 * most): it must hold no task; its procs files are opened again, its
 * peak memory reset and its OOM kills so far set aside. -EBUSY if a task
 * is left, -EOPNOTSUPP where the peak cannot be reset (v2 before 6.12):
 * then remove it. */
int cgroup_recycle(Cgroup *cg);
/* SIGKILL everything left in the cgroup, then remove its directories. */
int cgroup_destroy(Cgroup *cg);
/* Close the cgroup.procs fds (once the jail's init has joined). */
void cgroup_close_fds(Cgroup *cg);
