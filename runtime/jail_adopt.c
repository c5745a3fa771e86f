/* runtime/jail_adopt.c: a template zygote's revision, on the runtime's
 * side (zygote.h, "Templates"). The template's jail was built before its
 * revision was known, with an empty /fn and an empty /run/fnbox; its user
 * namespace cannot mount in its mount namespace (host root made that one),
 * so the runtime does it: a thread of its own enters the template's mount
 * namespace and moves detached copies of the revision's code and of the
 * instance's folder onto them, read-only. Then ADOPT tells the template
 * its revision (jail_adopt_build). The template has run nothing of any
 * revision's before this; a template is adopted once. */
#define _GNU_SOURCE
#include "jail_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "lib/util.h"

typedef struct AdoptMounts {
        int mntns;          /* the template's mount namespace */
        int code_tree;      /* the code's detached mount */
        bool is_dir;
        const char *name;   /* a single-file code's name under /fn */
        int run_tree;       /* the instance's folder's, or -1 */
        int err;
        const char *what;   /* the step that failed */
} AdoptMounts;

#define STEP(m, call, step)                         \
        do {                                        \
                if ((call) < 0) {                   \
                        (m)->err = -errno;          \
                        (m)->what = (step);         \
                        return NULL;                \
                }                                   \
        } while (0)

/* In a thread of its own: setns() into a mount namespace takes a thread
 * that shares no filesystem state with the others (CLONE_FS). */
static void *adopt_thread(void *userdata) {
        AdoptMounts *m = userdata;
        STEP(m, unshare(CLONE_FS), "unshare CLONE_FS");
        STEP(m, setns(m->mntns, CLONE_NEWNS), "enter the template's mount namespace");
        /* the root and the working folder are the namespace's root now */
        if (m->is_dir) {
                STEP(m, move_mount(m->code_tree, "", AT_FDCWD, "/fn", MOVE_MOUNT_F_EMPTY_PATH), "attach /fn");
        } else {
                /* a file needs a file to sit on: a tiny tmpfs holds one,
                 * then turns read-only as the rest of the root is */
                char path[PATH_MAX];
                snprintf(path, sizeof path, "/fn/%s", m->name);
                STEP(m, mount("tmpfs", "/fn", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,nr_inodes=8,mode=0755"),
                     "mount /fn");
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                STEP(m, fd, "create /fn entry");
                close(fd);
                STEP(m, move_mount(m->code_tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH), "attach /fn entry");
                STEP(m, mount(NULL, "/fn", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL),
                     "remount /fn read-only");
        }
        if (m->run_tree >= 0)
                STEP(m, move_mount(m->run_tree, "", AT_FDCWD, "/run/fnbox", MOVE_MOUNT_F_EMPTY_PATH),
                     "attach /run/fnbox");
        return NULL;
}

/* A detached, read-only copy of the mount at fd (AT_EMPTY_PATH) or path. */
static int tree_ro(int dirfd, const char *path, unsigned flags) {
        int t = open_tree(dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | flags);
        if (t < 0)
                return negative_errno();
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
        if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
                int r = negative_errno();
                close(t);
                return r;
        }
        return t;
}

int jail_adopt_mount(pid_t pid, const JailConfig *c, int code_fd, bool is_dir, char *why, size_t why_len) {
        char name[256] = "", ns[64];
        int r;
        if (!is_dir && (r = jail_code_name(c->code, name, sizeof name)) < 0) {
                snprintf(why, why_len, "the code's name: %s", strerror(-r));
                return r;
        }
        AdoptMounts m = { .mntns = -1, .code_tree = -1, .is_dir = is_dir, .name = name, .run_tree = -1 };
        snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int) pid);
        if ((m.mntns = open(ns, O_RDONLY | O_CLOEXEC)) < 0) {
                r = negative_errno();
                snprintf(why, why_len, "open the template's mount namespace: %s", strerror(-r));
                return r;
        }
        if ((r = m.code_tree = tree_ro(code_fd, "", AT_EMPTY_PATH)) < 0 ||
            (c->run_dir && (r = m.run_tree = tree_ro(AT_FDCWD, c->run_dir, AT_SYMLINK_NOFOLLOW)) < 0)) {
                snprintf(why, why_len, "copy the code's or the folder's mount: %s", strerror(-r));
                goto out;
        }
        pthread_t t;
        if ((r = -pthread_create(&t, NULL, adopt_thread, &m)) < 0) {
                snprintf(why, why_len, "a thread: %s", strerror(-r));
                goto out;
        }
        pthread_join(t, NULL);
        if ((r = m.err) < 0)
                snprintf(why, why_len, "%s: %s", m.what, strerror(-r));
out:
        safe_close(m.mntns);
        safe_close(m.code_tree);
        safe_close(m.run_tree);
        return r;
}
