/* tests/security/boxes/files.c: attacks on a session's files: writing to
 * /input (read-only), running programs from /input and /output (noexec),
 * filling /output past its cap (bytes and inodes), and leaving in /output
 * what the host must not follow when it packs it (a symlink to
 * /etc/shadow, a fifo). */
#include "box.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* The first line of a file, or errno. */
static void say_first_line(const char *step, const char *path) {
        char buf[256] = "";
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                say("%s: errno=%d\n", step, errno);
                return;
        }
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = 0;
        buf[strcspn(buf, "\n")] = 0;
        say("%s: %s\n", step, buf);
}

static int run_file(const char *path) {
        char *const argv[] = { (char *) path, NULL };
        char *const envp[] = { NULL };
        return execve(path, argv, envp);
}

/* /input: readable, nothing in it can change, nothing in it runs. */
static int input(int argc, char **argv) {
        (void) argc;
        (void) argv;
        say_first_line("read data.txt", "/input/data.txt");
        say_first_line("read sub/more.txt", "/input/sub/more.txt");
        TRY("create", open("/input/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        TRY("write data.txt", open("/input/data.txt", O_WRONLY | O_CLOEXEC));
        TRY("unlink", unlink("/input/data.txt"));
        TRY("mkdir", mkdir("/input/d", 0755));
        TRY("chmod", chmod("/input/data.txt", 0777));
        TRY("rename", rename("/input/data.txt", "/input/x"));
        TRY("symlink", symlink("/etc/passwd", "/input/l"));
        TRY("exec prog", run_file("/input/prog"));
        TRY("umount", umount2("/input", MNT_DETACH));
        TRY("remount rw", mount(NULL, "/input", NULL, MS_REMOUNT | MS_BIND, NULL));
        return 0;
}

/* Copy this program to path, mode 0755. */
static int copy_self(const char *path) {
        static char buf[1 << 16];
        int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (in < 0 || out < 0)
                return -1;
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
                if (write(out, buf, (size_t) n) != n)
                        return -1;
        close(in);
        close(out);
        return chmod(path, 04755);
}

/* /output: writable, nothing in it runs, no device can be made there. */
static int output(int argc, char **argv) {
        (void) argc;
        (void) argv;
        int fd = open("/output/result.txt", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        report("create result.txt", fd, errno);
        if (fd >= 0) {
                report("write result.txt", write(fd, "answer 42\n", 10) == 10 ? 0 : -1, errno);
                close(fd);
        }
        TRY("mkdir plots", mkdir("/output/plots", 0755));
        TRY("copy prog", copy_self("/output/plots/prog"));
        TRY("exec prog", run_file("/output/plots/prog"));
        TRY("mknod", mknod("/output/null", S_IFCHR | 0666, makedev(1, 3)));
        TRY("umount", umount2("/output", MNT_DETACH));
        return 0;
}

/* Write argv[1] bytes into /output/big, 1 MiB at a time. */
static int fill(int argc, char **argv) {
        static char chunk[1 << 20];
        long long want = argc > 1 ? atoll(argv[1]) : 0, done = 0;
        memset(chunk, 'z', sizeof chunk);
        int fd = open("/output/big", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
                say("fill: errno=%d\n", errno);
                return 0;
        }
        while (done < want) {
                ssize_t w = write(fd, chunk, want - done < (long long) sizeof chunk ? (size_t) (want - done) : sizeof chunk);
                if (w <= 0)
                        break;
                done += w;
        }
        say("fill: %s\n", done < want ? (errno == ENOSPC ? "errno=28" : "other error") : "ok");
        say("bytes: %lld\n", done);
        close(fd);
        return 0;
}

/* Create argv[1] empty files in /output. */
static int files(int argc, char **argv) {
        int want = argc > 1 ? atoi(argv[1]) : 0, n = 0;
        for (; n < want; n++) {
                char p[64];
                snprintf(p, sizeof p, "/output/f%05d", n);
                int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0)
                        break;
                close(fd);
        }
        say("files: %s\n", n < want ? (errno == ENOSPC ? "errno=28" : "other error") : "ok");
        say("made: %d\n", n);
        return 0;
}

/* What the host must never follow when it packs /output. */
static int linkout(int argc, char **argv) {
        (void) argc;
        (void) argv;
        TRY("symlink shadow", symlink("/etc/shadow", "/output/shadow"));
        return 0;
}

static int fifo(int argc, char **argv) {
        (void) argc;
        (void) argv;
        TRY("mkfifo", mkfifo("/output/pipe", 0644));
        return 0;
}

static const Attack attacks[] = {
        { "input", input }, { "output", output }, { "fill", fill },
        { "files", files }, { "linkout", linkout }, { "fifo", fifo },
};

BOX_MAIN(attacks)
