/* runtime/session_fs.c: the host-side folders of one session run: the
 * input archive unpacked into BASE/ID/input, a size-capped tmpfs owned by
 * the box on BASE/ID/output, the output packed after the run, and the
 * removal of all of it. The box controls what is in /output, so every walk
 * of it goes through directory fds and never follows a symlink. */
#define _GNU_SOURCE
#include "session_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "lib/artifact.h"
#include "lib/util.h"

#define TREE_DEPTH_MAX 256   /* deeper than any path artifact packs (255 bytes) */

static int fail(char *why, size_t len, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
        return r;
}

static bool id_valid(const char *id) {
        size_t n = id ? strlen(id) : 0;
        return n > 0 && n <= SESSION_FS_ID_MAX && id[0] != '.' &&
               strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* ----- removal ----- */

/* Remove what the folder fd holds, then close it: never through a symlink
 * (unlinkat removes the link), never into another mount (a folder on
 * another device is left, and its rmdir fails). */
static void remove_contents(int fd, dev_t dev, int depth) {
        DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno != EISDIR || depth >= TREE_DEPTH_MAX)
                        continue;
                int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (sub >= 0 && fstat(sub, &st) == 0 && st.st_dev == dev)
                        remove_contents(TAKE_FD(sub), dev, depth + 1);
                safe_close(sub);
                (void) unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        }
        closedir(d);
}

/* Remove the folder path and everything in it (see remove_contents). */
static void remove_tree(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0)
                remove_contents(TAKE_FD(fd), st.st_dev, 0);
        safe_close(fd);
        (void) rmdir(path);
}

/* Whatever is mounted on path (stacked mounts included), detached. */
static void unmount_all(const char *path) {
        for (int i = 0; i < 16 && umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0; i++)
                ;
}

void session_fs_remove(SessionFs *f) {
        if (!f)
                return;
        if (f->output && f->output_mounted)
                unmount_all(f->output);
        f->output_mounted = false;
        if (f->base)
                remove_tree(f->base);
        free(f->base);
        free(f->input);
        free(f->output);
        *f = (SessionFs) { 0 };
}

/* ----- making ----- */

/* BASE: made 0711 if missing; root's (ours) and not writable by others,
 * or a local user could swap what we are about to make for a link. */
static int base_ensure(const char *base, char *why, size_t len) {
        struct stat st;
        if (!base || base[0] != '/' || strstr(base, "/../") || strlen(base) > 3000)
                return fail(why, len, -EINVAL, "session folder %.200s: must be an absolute path", base ? base : "");
        if (mkdir(base, 0711) == 0)
                (void) chmod(base, 0711); /* whatever the umask */
        else if (errno != EEXIST)
                return fail(why, len, negative_errno(), "session folder %.200s: %s", base, strerror(errno));
        if (lstat(base, &st) < 0)
                return fail(why, len, negative_errno(), "session folder %.200s: %s", base, strerror(errno));
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
                return fail(why, len, -EPERM, "session folder %.200s: not a directory of ours that only we can write",
                            base);
        return 0;
}

typedef struct InputCheck {
        size_t n;
        char last[64];
} InputCheck;

static int input_entry(const char *path, char type, const void *content, size_t size, void *userdata) {
        InputCheck *c = userdata;
        (void) type;
        (void) content;
        (void) size;
        snprintf(c->last, sizeof c->last, "%s", path);
        return ++c->n > SESSION_FS_INPUT_ENTRIES ? -E2BIG : 0;
}

/* The archive as artifact_unpack will take it, within our limits. */
static int input_check(const void *input, size_t len, char *why, size_t why_len) {
        InputCheck c = { 0 };
        if (len == 0)
                return 0;
        if (!input)
                return fail(why, why_len, -EINVAL, "input: no data");
        if (len > SESSION_FS_INPUT_MAX)
                return fail(why, why_len, -E2BIG, "input: %zu bytes (at most %u)", len, SESSION_FS_INPUT_MAX);
        int r = artifact_list(input, len, input_entry, &c);
        if (r == -E2BIG)
                return fail(why, why_len, r, "input: more than %u entries", SESSION_FS_INPUT_ENTRIES);
        if (r < 0)
                return fail(why, why_len, -EINVAL,
                            "input: entry %zu%s%.64s%s: refused (not ustar, truncated, an absolute path or '..', "
                            "a link leading outside, a device, fifo or hard link)",
                            c.n + 1, c.n ? " (after " : "", c.last, c.n ? ")" : "");
        return 0;
}

/* input: the archive unpacked, readable by the box. */
static int make_input(int id_fd, const void *input, size_t len, char *why, size_t why_len) {
        if (mkdirat(id_fd, "input", 0755) < 0)
                return fail(why, why_len, negative_errno(), "input: mkdir: %s", strerror(errno));
        _cleanup_close_ int fd = openat(id_fd, "input", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchmod(fd, 0755) < 0)
                return fail(why, why_len, negative_errno(), "input: %s", strerror(errno));
        int r = len > 0 ? artifact_unpack(input, len, fd) : 0;
        if (r == -EINVAL)
                return fail(why, why_len, r, "input: refused while unpacking (a duplicate entry?)");
        if (r < 0)
                return fail(why, why_len, r, "input: unpacking: %s", strerror(-r));
        return 0;
}

/* output: the box's tmpfs, mounted on the folder we just made (through
 * its fd, so that nothing can have been put in its place). */
static int make_output(int id_fd, SessionFs *f, uid_t uid, gid_t gid, char *why, size_t why_len) {
        char opts[160], at[64];
        if (mkdirat(id_fd, "output", 0700) < 0)
                return fail(why, why_len, negative_errno(), "output: mkdir: %s", strerror(errno));
        _cleanup_close_ int fd = openat(id_fd, "output", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return fail(why, why_len, negative_errno(), "output: %s", strerror(errno));
        snprintf(opts, sizeof opts, "size=%u,nr_inodes=%u,mode=0700,uid=%u,gid=%u", SESSION_FS_OUTPUT_MAX,
                 SESSION_FS_OUTPUT_INODES, (unsigned) uid, (unsigned) gid);
        snprintf(at, sizeof at, "/proc/self/fd/%d", fd);
        if (mount("tmpfs", at, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
                return fail(why, why_len, negative_errno(), "output: mount a tmpfs: %s", strerror(errno));
        f->output_mounted = true;
        return 0;
}

static int make_folders(const char *base, const char *id, const void *input, size_t input_len, uid_t uid,
                        gid_t gid, SessionFs *f, char *why, size_t why_len) {
        int r = base_ensure(base, why, why_len);
        if (r < 0)
                return r;
        if (asprintf(&f->base, "%s/%s", base, id) < 0 || asprintf(&f->input, "%s/input", f->base) < 0 ||
            asprintf(&f->output, "%s/output", f->base) < 0)
                return fail(why, why_len, -ENOMEM, "out of memory");
        /* a leftover of a runtime that died: a session is claimed once */
        unmount_all(f->output);
        remove_tree(f->base);
        if (mkdir(f->base, 0711) < 0)
                return fail(why, why_len, negative_errno(), "session folder %.200s: %s", f->base, strerror(errno));
        _cleanup_close_ int id_fd = open(f->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (id_fd < 0 || fchmod(id_fd, 0711) < 0)
                return fail(why, why_len, negative_errno(), "session folder %.200s: %s", f->base, strerror(errno));
        if ((r = make_input(id_fd, input, input_len, why, why_len)) < 0)
                return r;
        return make_output(id_fd, f, uid, gid, why, why_len);
}

int session_fs_make(const char *base, const char *id, const void *input, size_t input_len, uid_t box_uid,
                    gid_t box_gid, SessionFs *ret, char *why, size_t why_len) {
        SessionFs f = { 0 };
        *ret = f;
        if (!id_valid(id))
                return fail(why, why_len, -EINVAL, "session id %.80s: expected 1 to %d of [A-Za-z0-9._-], not dot-led",
                            id ? id : "", SESSION_FS_ID_MAX);
        if (box_uid == 0 || box_gid == 0)
                return fail(why, why_len, -EINVAL, "the box must own /output as an unprivileged uid and gid, not 0");
        int r = input_check(input, input_len, why, why_len);
        if (r >= 0)
                r = make_folders(base, id, input, input_len, box_uid, box_gid, &f, why, why_len);
        if (r < 0) {
                session_fs_remove(&f);
                return r;
        }
        *ret = f;
        return 0;
}

/* ----- packing ----- */

/* As artifact_pack: what it leaves out of a folder. */
static bool name_skipped(const char *name) {
        return strcmp(name, ".git") == 0 || strcmp(name, "__pycache__") == 0;
}

/* Does a symlink in a folder depth deep, to target, resolve (by its
 * text) outside the top folder? *ret_named_then_up: a ".." follows a
 * name, which artifact_pack refuses even inside. */
static bool link_leads_outside(const char *target, int depth, bool *ret_named_then_up) {
        bool named = false;
        *ret_named_then_up = false;
        if (target[0] == '/')
                return true;
        for (const char *p = target; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        *ret_named_then_up |= named;
                        if (--depth < 0)
                                return true;
                } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                        depth++;
                        named = true;
                }
                p += n + (p[n] == '/');
        }
        return false;
}

typedef struct Culprit {
        int err;         /* what artifact_pack said */
        char what[300];  /* the first entry to blame, "" if none */
} Culprit;

static const char *kind_of(mode_t m) {
        return S_ISFIFO(m) ? "a fifo" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a file";
}

/* One entry: does it explain c->err? */
static bool blame(Culprit *c, int dir_fd, const char *name, const char *path, const struct stat *st, int depth) {
        if (c->err == -ENAMETOOLONG && strlen(path) > ARTIFACT_PATH_MAX)
                snprintf(c->what, sizeof c->what, "%.60s... is a path over %d bytes", path, ARTIFACT_PATH_MAX);
        else if (c->err == -EINVAL && !S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode))
                snprintf(c->what, sizeof c->what, "%.200s is %s: only files, folders and links are kept", path,
                         kind_of(st->st_mode));
        else if (c->err == -ELOOP && S_ISLNK(st->st_mode)) {
                char target[128];
                ssize_t n = readlinkat(dir_fd, name, target, sizeof target - 1);
                if (n < 0)
                        return false;
                target[n] = 0;
                bool named_then_up;
                if (link_leads_outside(target, depth, &named_then_up))
                        snprintf(c->what, sizeof c->what, "%.200s is a symlink that leads outside /output", path);
                else if (n >= 100 || named_then_up)
                        snprintf(c->what, sizeof c->what,
                                 "%.200s is a symlink that cannot be kept (under 100 bytes, its '..' first)", path);
        }
        return c->what[0] != 0;
}

/* Walk the folder fd (closed here) for the first entry that explains
 * c->err, as artifact_pack walks it: through fds, following nothing. */
static void find_culprit(Culprit *c, int fd, const char *prefix, int depth) {
        DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return;
        }
        struct dirent *e;
        while (!c->what[0] && (e = readdir(d))) {
                char path[ARTIFACT_PATH_MAX + 300];
                struct stat st;
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || name_skipped(e->d_name))
                        continue;
                snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "", e->d_name);
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    blame(c, dirfd(d), e->d_name, path, &st, depth))
                        continue;
                if (S_ISDIR(st.st_mode) && depth < TREE_DEPTH_MAX && strlen(path) <= ARTIFACT_PATH_MAX) {
                        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                find_culprit(c, sub, path, depth + 1);
                }
        }
        closedir(d);
}

/* Say why output could not be packed, naming the entry when there is one. */
static int explain(const SessionFs *f, int r, char *why, size_t len) {
        Culprit c = { .err = r };
        int fd = open(f->output, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                find_culprit(&c, fd, "", 0);
        if (c.what[0])
                return fail(why, len, r, "output: %s", c.what);
        if (r == -E2BIG)
                return fail(why, len, r, "output: more than %u bytes to pack (sparse files count in full)",
                            SESSION_FS_PACK_MAX);
        if (r == -EIO)
                return fail(why, len, r, "output: a file shrank while it was packed");
        return fail(why, len, r, "output: cannot be packed: %s (it changed while it was packed?)", strerror(-r));
}

int session_fs_pack_output(SessionFs *f, void **ret, size_t *ret_len, char *why, size_t why_len) {
        struct stat out, above;
        struct statfs sfs;
        if (!f || !f->output || !f->output_mounted)
                return fail(why, why_len, -EINVAL, "output: no session folder");
        /* what is packed is the box's tmpfs, never the folder under it */
        if (lstat(f->output, &out) < 0 || lstat(f->base, &above) < 0 || out.st_dev == above.st_dev ||
            statfs(f->output, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)
                return fail(why, why_len, -ENXIO, "output: its tmpfs is gone");
        void *data = NULL;
        size_t len = 0;
        int r = artifact_pack(f->output, SESSION_FS_PACK_MAX, &data, &len, NULL);
        if (r < 0)
                return explain(f, r, why, why_len);
        *ret = data;
        *ret_len = len;
        return 0;
}
