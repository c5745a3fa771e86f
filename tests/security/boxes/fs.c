/* tests/security/boxes/fs.c: attacks on the filesystem: filling /tmp,
 * open file descriptors, walking out through /proc and "..", writing to
 * /proc/sys, /sys and the cgroup tree, overwriting the interpreter and the
 * libraries, and writing through a symlink to a host file. */
#include "box.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static int fill_files(const char *prefix, size_t size, int *ret_n) {
        static char block[65536];
        memset(block, 'x', sizeof block);
        for (int n = 0;; n++) {
                char p[64];
                snprintf(p, sizeof p, "/tmp/%s%d", prefix, n);
                int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        return *ret_n = n, -errno;
                for (size_t off = 0; off < size; off += sizeof block)
                        if (write(fd, block, sizeof block) < 0) {
                                int e = errno;
                                close(fd);
                                return *ret_n = n, -e;
                        }
                close(fd);
        }
}

static void remove_files(const char *prefix, int n) {
        for (int i = 0; i <= n; i++) {
                char p[64];
                snprintf(p, sizeof p, "/tmp/%s%d", prefix, i);
                unlink(p);
        }
}

/* /tmp full of data, then full of empty files, then one file beyond the
 * file size limit (SIGXFSZ ignored, so the write fails with EFBIG). */
static int tmpfill(int argc, char **argv) {
        int n;
        int r = fill_files("data", 65536, &n);
        say("fill: errno=%d files=%d\n", -r, n);
        remove_files("data", n);
        r = fill_files("empty", 0, &n);
        say("inodes: errno=%d files=%d\n", -r, n);
        remove_files("empty", n);
        signal(SIGXFSZ, SIG_IGN);
        static char block[65536];
        int fd = open("/tmp/huge", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        long long bytes = 0;
        for (;;) {
                ssize_t w = write(fd, block, sizeof block);
                if (w <= 0)
                        break;
                bytes += w;
        }
        say("huge: errno=%d bytes=%lld\n", errno, bytes);
        return 0;
}

/* The same huge file, without ignoring SIGXFSZ. */
static int hugefile(int argc, char **argv) {
        static char block[65536];
        int fd = open("/tmp/huge", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        say("writing\n");
        for (;;)
                if (write(fd, block, sizeof block) < 0)
                        return say("write: errno=%d\n", errno), 1;
}

/* One file in /tmp of the given size: tmpfs pages are memory, and must
 * count against the memory limit. */
static int tmpwrite(int argc, char **argv) {
        static char block[65536];
        memset(block, 'm', sizeof block);
        long long want = argc > 1 ? atoll(argv[1]) : 0, done = 0;
        int fd = open("/tmp/big", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        while (done < want) {
                ssize_t w = write(fd, block, sizeof block);
                if (w < 0)
                        return say("tmpwrite: errno=%d bytes=%lld\n", errno, done), 1;
                done += w;
        }
        say("tmpwrite: ok bytes=%lld\n", done);
        return 0;
}

/* Which descriptors did the box inherit? Both the /proc view and a sweep. */
static int fds(int argc, char **argv) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return say("opendir: errno=%d\n", errno), 1;
        char list[4096] = "";
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
                        snprintf(list + strlen(list), sizeof list - strlen(list), " %s", e->d_name);
        closedir(d);
        say("proc fds:%s\n", list);
        list[0] = 0;
        for (int fd = 0; fd < 65536; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        snprintf(list + strlen(list), sizeof list - strlen(list), " %d", fd);
        say("open fds:%s\n", list);
        return 0;
}

/* "root" if path is the jail's root directory, "other" if not. */
static void where(const char *step, const char *path) {
        struct stat a, b;
        if (stat(path, &a) < 0)
                return say("%s: errno=%d\n", step, errno);
        stat("/", &b);
        say("%s: %s\n", step, a.st_dev == b.st_dev && a.st_ino == b.st_ino ? "root" : "other");
}

/* Walk up from everything that might lead outside: inherited descriptors,
 * /proc magic links, a directory fd held across chdir, and ".." chains. */
static int fdescape(int argc, char **argv) {
        for (int fd = 0; fd < 3; fd++) {
                char p[64], step[64];
                snprintf(p, sizeof p, "/proc/self/fd/%d/..", fd);
                snprintf(step, sizeof step, "open %s", p);
                TRY(step, open(p, O_RDONLY | O_CLOEXEC));
                snprintf(step, sizeof step, "openat fd %d ..", fd);
                TRY(step, openat(fd, "..", O_RDONLY | O_CLOEXEC));
        }
        int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        TRY("fchdir held /tmp fd", fchdir(dir));
        for (int i = 0; i < 64; i++)
                chdir("..");
        where("64 x .. from held fd", ".");
        char deep[1024] = "/tmp";
        for (int i = 0; i < 64; i++)
                strcat(deep, "/..");
        where("/tmp/../.. x64", deep);
        where("/proc/self/root/..", "/proc/self/root/..");
        where("/proc/self/cwd/../../..", "/proc/self/cwd/../../..");
        where("/proc/2/root", "/proc/2/root");
        TRY("open /proc/1/root", open("/proc/1/root", O_RDONLY | O_CLOEXEC));
        TRY("open /proc/1/fd", open("/proc/1/fd", O_RDONLY | O_CLOEXEC));
        TRY("open /proc/1/cwd/..", open("/proc/1/cwd/..", O_RDONLY | O_CLOEXEC));
        TRY("stat /work", access("/work", F_OK));
        TRY("stat /root", access("/root", F_OK));
        TRY("stat /home", access("/home", F_OK));
        TRY("stat /var", access("/var", F_OK));
        return 0;
}

static void try_write(const char *path, const char *data) {
        char step[300];
        snprintf(step, sizeof step, "write %s", path);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return say("%s: errno=%d\n", step, errno);
        TRY(step, write(fd, data, strlen(data)));
        close(fd);
}

/* The kernel's tunables, the magic SysRq key, /sys and the cgroup tree. */
static int procsys(int argc, char **argv) {
        try_write("/proc/sys/kernel/core_pattern", "|/tmp/x");
        try_write("/proc/sys/kernel/modprobe", "/tmp/x");
        try_write("/proc/sysrq-trigger", "b");
        try_write("/sys/kernel/uevent_helper", "/tmp/x");
        try_write("/sys/fs/cgroup/memory/release_agent", "/tmp/x");
        try_write("/sys/fs/cgroup/cgroup.procs", "1");
        try_write("/proc/self/oom_score_adj", "-1000");
        try_write("/proc/self/setgroups", "allow");
        try_write("/proc/self/uid_map", "0 0 1");
        TRY("stat /proc/sys", access("/proc/sys", F_OK));
        TRY("stat /sys", access("/sys", F_OK));
        TRY("stat /sys/fs/cgroup", access("/sys/fs/cgroup", F_OK));
        TRY("mkdir /sys", mkdir("/sys", 0755));
        return 0;
}

static void try_open(const char *step, const char *path, int flags) {
        TRY(step, open(path, flags | O_CLOEXEC));
}

/* Replace what every box trusts: the interpreter, libc, our own binary. */
static int overwrite(int argc, char **argv) {
        try_open("write /usr/bin/python3", "/usr/bin/python3", O_WRONLY);
        try_open("truncate /usr/bin/python3", "/usr/bin/python3", O_WRONLY | O_TRUNC);
        TRY("unlink /usr/bin/python3", unlink("/usr/bin/python3"));
        TRY("rename /usr/bin/python3", rename("/usr/bin/python3", "/usr/bin/python3.old"));
        const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        try_open("write libc", libc, O_WRONLY);
        TRY("chmod libc", chmod(libc, 0777));
        try_open("create /usr/lib/evil.so", "/usr/lib/evil.so", O_WRONLY | O_CREAT);
        try_open("write /proc/self/exe", "/proc/self/exe", O_WRONLY);
        try_open("write /fn/fs", "/fn/fs", O_WRONLY);
        TRY("unlink /fn/fs", unlink("/fn/fs"));
        try_open("write /fn/data.txt", "/fn/data.txt", O_WRONLY);
        try_open("create /fn/new", "/fn/new", O_WRONLY | O_CREAT);
        try_open("create /etc/ld.so.preload", "/etc/ld.so.preload", O_WRONLY | O_CREAT);
        return 0;
}

/* The box makes its "output file" a link to a file outside /tmp. */
static int symlinks(int argc, char **argv) {
        TRY("symlink /tmp/out -> /etc/passwd", symlink("/etc/passwd", "/tmp/out"));
        try_open("write /tmp/out", "/tmp/out", O_WRONLY);
        try_open("append /tmp/out", "/tmp/out", O_WRONLY | O_APPEND);
        try_open("truncate /tmp/out", "/tmp/out", O_WRONLY | O_TRUNC);
        TRY("link /tmp/hard -> /etc/passwd", link("/etc/passwd", "/tmp/hard"));
        int fd = open("/tmp/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        TRY("rename /tmp/new over /etc/passwd", rename("/tmp/new", "/etc/passwd"));
        TRY("symlink /tmp/shadow -> /etc/shadow", symlink("/etc/shadow", "/tmp/shadow"));
        try_open("create through /tmp/shadow", "/tmp/shadow", O_WRONLY | O_CREAT);
        TRY("symlink /tmp/hostpw -> /proc/1/root/etc/passwd", symlink("/proc/1/root/etc/passwd", "/tmp/hostpw"));
        try_open("write /tmp/hostpw", "/tmp/hostpw", O_WRONLY);
        return 0;
}

static const Attack attacks[] = {
        { "tmpfill", tmpfill },
        { "hugefile", hugefile },
        { "tmpwrite", tmpwrite },
        { "fds", fds },
        { "fdescape", fdescape },
        { "procsys", procsys },
        { "overwrite", overwrite },
        { "symlinks", symlinks },
};

BOX_MAIN(attacks)
