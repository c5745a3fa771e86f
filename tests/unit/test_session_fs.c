/* tests/unit/test_session_fs.c: a session's host folders (runtime/session_fs.h):
 * the input unpacked, the output tmpfs mounted with its caps, packed, and
 * everything removed; bad archives; a hostile /output (symlinks out, fifos,
 * sockets, a full tmpfs, deep trees, sparse files, a tree changing while it
 * is packed); a prepared jail given /input and /output with jail_start; and
 * what zygotes and the config check refuse. Needs root (it mounts). */
#define _GNU_SOURCE
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/artifact.h"
#include "lib/util.h"
#include "runtime/jail.h"
#include "runtime/session_fs.h"
#include "runtime/zygote.h"

#define BOX_UID 65534

static char tmp[64];
static SessionFs live;   /* removed at exit whatever happens */

static void cleanup(void) {
        char cmd[128];
        session_fs_remove(&live);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (tmp[0] && system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmp);
}

/* A fresh temp folder; returns BASE inside it (not made yet). */
static const char *fresh_base(void) {
        static char base[96];
        snprintf(tmp, sizeof tmp, "/tmp/fnbox-unit-XXXXXX");
        ASSERT_TRUE(mkdtemp(tmp) != NULL);
        ASSERT_EQ_INT(chmod(tmp, 0755), 0);
        atexit(cleanup);
        snprintf(base, sizeof base, "%s/sessions", tmp);
        return base;
}

static void write_file(const char *path, const char *data, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ_INT(write(fd, data, strlen(data)), (ssize_t) strlen(data));
        close(fd);
        ASSERT_EQ_INT(chmod(path, mode), 0);
}

static char *read_text(const char *path) {
        static char buf[4096];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = 0;
        return buf;
}

/* The mountinfo line of the mount on path, "" if none. */
static const char *mount_line(const char *path) {
        static char line[1024];
        FILE *f = fopen("/proc/self/mountinfo", "re");
        ASSERT_TRUE(f != NULL);
        char want[600];
        snprintf(want, sizeof want, " %s ", path);
        bool found = false;
        while (!found && fgets(line, sizeof line, f)) {
                /* the fifth field is the mount point */
                char *p = line;
                for (int i = 0; i < 4 && p; i++)
                        p = strchr(p + 1, ' ');
                found = p && strncmp(p, want, strlen(want)) == 0;
        }
        fclose(f);
        return found ? line : "";
}

/* An archive of the folder dir (artifact_pack). */
static void *pack_dir(const char *dir, size_t *len) {
        void *data = NULL;
        ASSERT_EQ_INT(artifact_pack(dir, 64u << 20, &data, len, NULL), 0);
        return data;
}

typedef struct Listed {
        char names[4096];
        size_t n;
} Listed;

static int list_entry(const char *path, char type, const void *content, size_t size, void *userdata) {
        Listed *l = userdata;
        (void) content;
        (void) size;
        size_t used = strlen(l->names);
        snprintf(l->names + used, sizeof l->names - used, "%s%c;", path, type);
        l->n++;
        return 0;
}

static Listed list(const void *data, size_t len) {
        Listed l = { .names = "" };
        ASSERT_EQ_INT(artifact_list(data, len, list_entry, &l), 0);
        return l;
}

/* Run fn as the box's uid in a child (what a box can do to /output). */
static void as_box(void (*fn)(const char *dir), const char *dir) {
        pid_t p = fork();
        ASSERT_TRUE(p >= 0);
        if (p == 0) {
                if (setresgid(BOX_UID, BOX_UID, BOX_UID) < 0 || setresuid(BOX_UID, BOX_UID, BOX_UID) < 0)
                        _exit(99);
                fn(dir);
                _exit(0);
        }
        int st;
        ASSERT_EQ_INT(waitpid(p, &st, 0), p);
        ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void make_session(const char *base, const char *id, const void *in, size_t in_len) {
        char why[300] = "";
        int r = session_fs_make(base, id, in, in_len, BOX_UID, BOX_UID, &live, why, sizeof why);
        if (r < 0)
                FAIL_AT("session_fs_make: %d %s", r, why);
}

TEST(session_fs_make_pack_remove) {
        const char *base = fresh_base();
        char src[128], path[256], why[300] = "";
        snprintf(src, sizeof src, "%s/src", tmp);
        ASSERT_EQ_INT(mkdir(src, 0755), 0);
        snprintf(path, sizeof path, "%s/data.csv", src);
        write_file(path, "a,b\n1,2\n", 0600);
        snprintf(path, sizeof path, "%s/sub", src);
        ASSERT_EQ_INT(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/sub/run.sh", src);
        write_file(path, "echo hi\n", 0700);
        size_t in_len;
        _cleanup_free_ void *in = pack_dir(src, &in_len);
        make_session(base, "s-0123abcd", in, in_len);

        struct stat st;
        ASSERT_EQ_INT(stat(base, &st), 0);
        ASSERT_EQ_UINT(st.st_mode & 07777, 0711);
        snprintf(path, sizeof path, "%s/s-0123abcd", base);
        ASSERT_EQ_STR(live.base, path);
        ASSERT_EQ_INT(stat(live.input, &st), 0);
        ASSERT_EQ_UINT(st.st_mode & 07777, 0755);
        snprintf(path, sizeof path, "%s/data.csv", live.input);
        ASSERT_EQ_STR(read_text(path), "a,b\n1,2\n");
        ASSERT_EQ_INT(stat(path, &st), 0);
        ASSERT_EQ_UINT(st.st_mode & 07777, 0644);   /* the box reads it */
        snprintf(path, sizeof path, "%s/sub/run.sh", live.input);
        ASSERT_EQ_INT(stat(path, &st), 0);
        ASSERT_EQ_UINT(st.st_mode & 07777, 0755);

        /* the tmpfs, with its caps and owner */
        ASSERT_TRUE(live.output_mounted);
        const char *m = mount_line(live.output);
        ASSERT_TRUE(strstr(m, " rw,nosuid,nodev,noexec") != NULL);
        ASSERT_TRUE(strstr(m, " - tmpfs ") != NULL);
        ASSERT_TRUE(strstr(m, "size=32768k,nr_inodes=1024,mode=700,uid=65534,gid=65534") != NULL);

        /* what the box leaves is packed */
        snprintf(path, sizeof path, "%s/result.txt", live.output);
        write_file(path, "42\n", 0644);
        snprintf(path, sizeof path, "%s/plots", live.output);
        ASSERT_EQ_INT(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/plots/link", live.output);
        ASSERT_EQ_INT(symlink("../result.txt", path), 0);   /* inside: kept */
        void *out = NULL;
        size_t out_len = 0;
        ASSERT_EQ_INT(session_fs_pack_output(&live, &out, &out_len, why, sizeof why), 0);
        Listed l = list(out, out_len);
        ASSERT_EQ_STR(l.names, "plots5;plots/link2;result.txt0;");
        free(out);

        /* removed: no mount, no folder; twice is harmless */
        char output[256], id_dir[256];
        snprintf(output, sizeof output, "%s", live.output);
        snprintf(id_dir, sizeof id_dir, "%s", live.base);
        session_fs_remove(&live);
        ASSERT_EQ_STR(mount_line(output), "");
        ASSERT_TRUE(access(id_dir, F_OK) < 0 && errno == ENOENT);
        ASSERT_TRUE(live.base == NULL && !live.output_mounted);
        session_fs_remove(&live);
        session_fs_remove(NULL);
        ASSERT_EQ_INT(stat(base, &st), 0); /* BASE stays */
}

TEST(session_fs_empty_input_and_leftover) {
        const char *base = fresh_base();
        char why[300] = "";
        make_session(base, "s-empty", "", 0);
        DIR *d = opendir(live.input);
        ASSERT_TRUE(d != NULL);
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
        closedir(d);
        ASSERT_EQ_INT(n, 0);
        void *out = NULL;
        size_t out_len = 0;
        ASSERT_EQ_INT(session_fs_pack_output(&live, &out, &out_len, why, sizeof why), 0);
        ASSERT_EQ_UINT(out_len, 1024); /* the end blocks only */
        free(out);
        /* a runtime that died left this one: the next make of the id
         * removes it, and one tmpfs is left, not two */
        SessionFs old = live;
        live = (SessionFs) { 0 };
        make_session(base, "s-empty", "", 0);
        char probe[300];
        snprintf(probe, sizeof probe, "%s/probe", live.output);
        write_file(probe, "x", 0644);
        const char *m = mount_line(live.output);
        ASSERT_TRUE(strstr(m, " - tmpfs ") != NULL);
        session_fs_remove(&live);
        ASSERT_EQ_STR(mount_line(old.output), "");
        ASSERT_TRUE(access(old.base, F_OK) < 0);
        free(old.base);
        free(old.input);
        free(old.output);
}

/* A one-entry archive whose first header's name is replaced (checksum
 * fixed), or its type. */
static void *hostile_archive(const char *name, char type, size_t *len) {
        void *data = NULL;
        ASSERT_EQ_INT(artifact_pack_file("x", "abc", 3, false, 1 << 20, &data, len, NULL), 0);
        char *h = data;
        memset(h, 0, 100);
        memcpy(h, name, strlen(name));
        h[156] = type;
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (unsigned i = 0; i < 512; i++)
                sum += (unsigned char) h[i];
        snprintf(h + 148, 7, "%06o", sum);
        h[155] = ' ';
        return data;
}

TEST(session_fs_bad_input) {
        const char *base = fresh_base();
        char why[300] = "", path[256];
        SessionFs f;
        char junk[1024];
        memset(junk, 'x', sizeof junk);
        ASSERT_EQ_INT(session_fs_make(base, "s-junk", junk, sizeof junk, BOX_UID, BOX_UID, &f, why, sizeof why),
                      -EINVAL);
        ASSERT_TRUE(strncmp(why, "input: entry 1", 14) == 0);
        ASSERT_TRUE(f.base == NULL);
        snprintf(path, sizeof path, "%s/s-junk", base);
        ASSERT_TRUE(access(path, F_OK) < 0);   /* nothing made */

        static const struct { const char *name; char type; } bad[] = {
                { "/etc/cron.d/x", '0' }, { "../escape", '0' }, { "a/../../b", '0' }, { "dev", '3' },
                { "fifo", '6' }, { "hard", '1' },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                size_t len;
                _cleanup_free_ void *a = hostile_archive(bad[i].name, bad[i].type, &len);
                why[0] = 0;
                ASSERT_EQ_INT(session_fs_make(base, "s-bad", a, len, BOX_UID, BOX_UID, &f, why, sizeof why), -EINVAL);
                ASSERT_TRUE(strstr(why, "input: entry 1") != NULL);
        }
        snprintf(path, sizeof path, "%s/s-bad", base);
        ASSERT_TRUE(access(path, F_OK) < 0);
        ASSERT_TRUE(access("/etc/cron.d/x", F_OK) < 0);

        /* more entries than a session takes */
        char src[128];
        snprintf(src, sizeof src, "%s/many", tmp);
        ASSERT_EQ_INT(mkdir(src, 0755), 0);
        for (int i = 0; i <= SESSION_FS_INPUT_ENTRIES; i++) {
                snprintf(path, sizeof path, "%s/f%04d", src, i);
                write_file(path, "", 0644);
        }
        size_t len;
        _cleanup_free_ void *a = pack_dir(src, &len);
        ASSERT_EQ_INT(session_fs_make(base, "s-many", a, len, BOX_UID, BOX_UID, &f, why, sizeof why), -E2BIG);
        ASSERT_TRUE(strstr(why, "more than 1000 entries") != NULL);
        /* bad ids, uid 0 */
        static const char *const ids[] = { "", "..", ".hidden", "a/b", "../../etc", "s x" };
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                ASSERT_EQ_INT(session_fs_make(base, ids[i], "", 0, BOX_UID, BOX_UID, &f, why, sizeof why), -EINVAL);
        ASSERT_EQ_INT(session_fs_make(base, "s-root", "", 0, 0, 0, &f, why, sizeof why), -EINVAL);
}

TEST(session_fs_base_must_be_ours) {
        const char *base = fresh_base();
        char why[300] = "";
        SessionFs f;
        ASSERT_EQ_INT(symlink("/etc", base), 0);   /* a link: refused, /etc untouched */
        ASSERT_EQ_INT(session_fs_make(base, "s-1", "", 0, BOX_UID, BOX_UID, &f, why, sizeof why), -EPERM);
        ASSERT_TRUE(access("/etc/s-1", F_OK) < 0);
        ASSERT_EQ_INT(unlink(base), 0);
        ASSERT_EQ_INT(mkdir(base, 0777), 0);
        ASSERT_EQ_INT(chmod(base, 0777), 0);       /* others could swap our folders */
        ASSERT_EQ_INT(session_fs_make(base, "s-1", "", 0, BOX_UID, BOX_UID, &f, why, sizeof why), -EPERM);
        ASSERT_EQ_INT(session_fs_make("relative/base", "s-1", "", 0, BOX_UID, BOX_UID, &f, why, sizeof why), -EINVAL);
}

static void box_links_out(const char *dir) {
        char p[300];
        snprintf(p, sizeof p, "%s/d", dir);
        (void) mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/d/shadow", dir);
        if (symlink("../../../../../etc/shadow", p) < 0)
                _exit(1);
}

static void box_abs_link(const char *dir) {
        char p[300];
        snprintf(p, sizeof p, "%s/passwd", dir);
        if (symlink("/etc/passwd", p) < 0)
                _exit(1);
}

static void box_fifo(const char *dir) {
        char p[300];
        snprintf(p, sizeof p, "%s/pipe", dir);
        if (mkfifo(p, 0644) < 0)
                _exit(1);
}

static void box_socket(const char *dir) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", dir);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                _exit(1);
}

static void box_deep(const char *dir) {
        char p[4096];
        int n = snprintf(p, sizeof p, "%s", dir);
        for (int i = 0; i < 200; i++) {
                n += snprintf(p + n, sizeof p - (size_t) n, "/dd");
                if (mkdir(p, 0755) < 0)
                        _exit(1);
        }
}

static void box_sparse(const char *dir) {
        char p[300];
        snprintf(p, sizeof p, "%s/sparse", dir);
        int fd = open(p, O_WRONLY | O_CREAT, 0644);
        if (fd < 0 || ftruncate(fd, 1LL << 30) < 0)
                _exit(1);
}

static void clear_output(void) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 -delete", live.output);
        ASSERT_EQ_INT(system(cmd), 0);
}

static void expect_refused(void (*box)(const char *), int err, const char *says) {
        char why[400] = "";
        void *out = (void *) 1;
        size_t len = 7;
        as_box(box, live.output);
        ASSERT_EQ_INT(session_fs_pack_output(&live, &out, &len, why, sizeof why), err);
        if (!strstr(why, says))
                FAIL_AT("why: \"%s\" (expected it to contain \"%s\")", why, says);
        ASSERT_TRUE(out == (void *) 1 && len == 7); /* untouched on failure */
        clear_output();
}

TEST(session_fs_hostile_output) {
        const char *base = fresh_base();
        make_session(base, "s-hostile", "", 0);
        expect_refused(box_links_out, -ELOOP, "output: d/shadow is a symlink that leads outside /output");
        expect_refused(box_abs_link, -ELOOP, "output: passwd is a symlink that leads outside /output");
        expect_refused(box_fifo, -EINVAL, "output: pipe is a fifo");
        expect_refused(box_socket, -EINVAL, "output: sock is a socket");
        expect_refused(box_deep, -ENAMETOOLONG, "is a path over 255 bytes");
        expect_refused(box_sparse, -E2BIG, "output: more than");
}

static void box_fills(const char *dir) {
        char p[300];
        /* 2000 files: the inodes run out first (ENOSPC) */
        int made = 0;
        for (int i = 0; i < 2000; i++) {
                snprintf(p, sizeof p, "%s/f%04d", dir, i);
                int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0) {
                        if (errno != ENOSPC)
                                _exit(2);
                        break;
                }
                if (write(fd, "x", 1) != 1)
                        _exit(2);
                close(fd);
                made++;
        }
        if (made < 1000 || made >= 1024)
                _exit(3);
        /* then the bytes: the last files grow until the tmpfs is full */
        static char chunk[1 << 20];
        memset(chunk, 'y', sizeof chunk);
        snprintf(p, sizeof p, "%s/f%04d", dir, made - 1);
        int fd = open(p, O_WRONLY | O_APPEND);
        ssize_t w;
        size_t total = 0;
        while ((w = write(fd, chunk, sizeof chunk)) > 0)
                total += (size_t) w;
        /* each small file holds a page of the tmpfs */
        if (errno != ENOSPC || total < (24u << 20) || total > SESSION_FS_OUTPUT_MAX)
                _exit(4);
        close(fd);
}

TEST(session_fs_full_output_still_packs) {
        const char *base = fresh_base();
        char why[300] = "";
        make_session(base, "s-full", "", 0);
        as_box(box_fills, live.output);
        void *out = NULL;
        size_t len = 0;
        int r = session_fs_pack_output(&live, &out, &len, why, sizeof why);
        if (r < 0)
                FAIL_AT("pack: %d %s", r, why);
        ASSERT_TRUE(len > (24u << 20) && len <= SESSION_FS_PACK_MAX);
        Listed l = list(out, len);
        ASSERT_TRUE(l.n >= 1000 && l.n < 1024);
        free(out);
}

/* The box keeps changing /output while it is packed: a folder swapped for
 * a symlink to a folder outside with a secret in it, files growing and
 * shrinking. Packing may fail, but never reads the secret. */
TEST(session_fs_changing_output_never_followed) {
        const char *base = fresh_base();
        char secret_dir[128], p[300], why[400];
        snprintf(secret_dir, sizeof secret_dir, "%s/secret", tmp);
        ASSERT_EQ_INT(mkdir(secret_dir, 0755), 0);
        snprintf(p, sizeof p, "%s/key", secret_dir);
        write_file(p, "SECRET-7f3a", 0644);
        make_session(base, "s-race", "", 0);
        pid_t child = fork();
        ASSERT_TRUE(child >= 0);
        if (child == 0) {
                char d[300], l[300], t[300], f[300];
                snprintf(d, sizeof d, "%s/d", live.output);
                snprintf(l, sizeof l, "%s/l", live.output);
                snprintf(t, sizeof t, "%s/d/key", live.output);
                snprintf(f, sizeof f, "%s/grow", live.output);
                if (setresgid(BOX_UID, BOX_UID, BOX_UID) < 0 || setresuid(BOX_UID, BOX_UID, BOX_UID) < 0)
                        _exit(99);
                for (;;) {
                        (void) mkdir(d, 0755);
                        int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                        if (fd >= 0)
                                close(fd);
                        (void) unlink(t);
                        (void) rmdir(d);
                        if (symlink(secret_dir, l) == 0)
                                (void) rename(l, d);   /* d: now a link to the secret */
                        (void) unlink(d);
                        fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                        if (fd >= 0 && write(fd, "0123456789abcdef", 16) < 0)
                                _exit(3);
                        if (fd >= 0)
                                close(fd);
                }
        }
        int ok = 0, refused = 0;
        for (int i = 0; i < 300; i++) {
                void *out = NULL;
                size_t len = 0;
                int r = session_fs_pack_output(&live, &out, &len, why, sizeof why);
                if (r == 0) {
                        ok++;
                        ASSERT_TRUE(memmem(out, len, "SECRET-7f3a", 11) == NULL);
                        free(out);
                } else {
                        refused++;
                        ASSERT_TRUE(strncmp(why, "output: ", 8) == 0);
                }
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        ASSERT_EQ_INT(ok + refused, 300);
}

/* ----- the jail: /input and /output in a prepared jail ----- */

typedef struct Started {
        int done, ended;
        JailStatus status;
        char out[512];
} Started;

static void started_done(Jail *j, JailResult *r, void *userdata) {
        Started *s = userdata;
        (void) j;
        s->done++;
        s->status = r->status;
        snprintf(s->out, sizeof s->out, "%s%s", r->out.data ? r->out.data : "", r->err.data ? r->err.data : "");
}

static JailConfig session_config;
static const char *session_base;
static void *session_input;
static size_t session_input_len;

/* The jail waits, prepared, in a mount namespace of its own: the session's
 * folders are made only now, as a pool jail's are. */
static void start_with_files(Jail *j, JailEvent ev, int error, void *userdata) {
        Started *s = userdata;
        ASSERT_EQ_INT(error, 0);
        if (ev == JAIL_EVENT_END) {
                s->ended++;
                return;
        }
        make_session(session_base, "s-jail", session_input, session_input_len);
        session_config.input_dir = live.input;
        session_config.output_dir = live.output;
        char why[256] = "";
        int r = jail_start(j, &session_config, started_done, s, why, sizeof why);
        if (r < 0)
                FAIL_AT("jail_start: %d %s", r, why);
}

TEST(session_fs_pool_jail_gets_input_and_output) {
        const char *base = fresh_base();
        char src[128], p[256], why[300] = "";
        snprintf(src, sizeof src, "%s/src", tmp);
        ASSERT_EQ_INT(mkdir(src, 0755), 0);
        snprintf(p, sizeof p, "%s/data.csv", src);
        write_file(p, "x,y\n", 0644);
        session_base = base;
        session_input = pack_dir(src, &session_input_len);
        snprintf(p, sizeof p, "%s/main.sh", tmp);
        write_file(p,
                   "cat /input/data.csv\n"
                   "echo made > /output/made.txt && echo wrote\n"
                   "touch /input/new 2>/dev/null || echo input-ro\n"
                   "cp /bin/true /output/t && chmod 755 /output/t && { /output/t 2>/dev/null || echo noexec; }\n"
                   "rm /output/t\n",
                   0644);
        jail_config_init(&session_config);
        session_config.runtime = JAIL_RUNTIME_SH;
        session_config.code = p;
        session_config.host_uid = session_config.host_gid = BOX_UID;
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        Started s = { 0 };
        Jail *j;
        ASSERT_EQ_INT(jail_prepare(&loop, "fnbox", &j), 0);
        jail_set_events(j, start_with_files, &s);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(s.done, 1);
        ASSERT_EQ_INT(s.ended, 1);
        ASSERT_EQ_STR(jail_status_to_string(s.status), "exited");
        ASSERT_EQ_STR(s.out, "x,y\nwrote\ninput-ro\nnoexec\n");
        jail_free(j);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
        void *out = NULL;
        size_t len = 0;
        ASSERT_EQ_INT(session_fs_pack_output(&live, &out, &len, why, sizeof why), 0);
        Listed l = list(out, len);
        ASSERT_EQ_STR(l.names, "made.txt0;");
        free(out);
        free(session_input);
}

TEST(session_fs_config_checks_and_zygotes_refuse) {
        const char *base = fresh_base();
        char why[256] = "", p[256], link[256];
        make_session(base, "s-cfg", "", 0);
        JailConfig c;
        jail_config_init(&c);
        c.code = "/bin/true";
        c.host_uid = c.host_gid = BOX_UID;
        c.input_dir = live.input;
        c.output_dir = live.output;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), 0);
        c.input_dir = "relative";
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "input dir relative: must be an absolute path") != NULL);
        snprintf(link, sizeof link, "%s/link", tmp);
        ASSERT_EQ_INT(symlink(live.input, link), 0);
        c.input_dir = link;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "not a directory") != NULL);
        c.input_dir = "/proc/self";
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        c.input_dir = "/sys/kernel";
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "must not be under /proc, /sys or /dev") != NULL);
        c.input_dir = live.output;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "must be different") != NULL);
        c.input_dir = live.input;
        c.output_dir = live.input;  /* root's 0755: the box cannot write it */
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "output dir") && strstr(why, "cannot write it"));
        snprintf(p, sizeof p, "%s/closed", tmp);
        ASSERT_EQ_INT(mkdir(p, 0700), 0);
        c.output_dir = live.output;
        c.input_dir = p;            /* the box cannot read it */
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "input dir") && strstr(why, "cannot read it"));

        /* zygotes never take a session's files */
        c.input_dir = live.input;
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        Zygote *z = NULL;
        ASSERT_EQ_INT(zygote_new(&loop, &c, NULL, NULL, &z), -EINVAL);
        ASSERT_TRUE(z == NULL);
        c.runtime = JAIL_RUNTIME_PYTHON3;
        c.code = live.input;
        ASSERT_TRUE(!zygote_template_fits(&c));
        ASSERT_EQ_INT(zygote_template_new(&loop, &c, NULL, NULL, &z), -EINVAL);
        c.input_dir = NULL;
        ASSERT_EQ_INT(zygote_new(&loop, &c, NULL, NULL, &z), -EINVAL);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}
