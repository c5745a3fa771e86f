/* tests/unit/test_artifact.c: SHA-256, deterministic packing (same tree,
 * same digest, whatever the mtimes, owners and umask), round trips, and
 * hostile archives that unpacking must refuse without touching anything
 * outside its folder. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/artifact.h"

static char *tmpdir(void) {
        char *d = strdup("/tmp/fnbox-artifact-XXXXXX");
        if (!d || !mkdtemp(d))
                FAIL_AT("mkdtemp failed");
        return d;
}

static void rmrf(const char *d) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
        if (system(cmd) != 0)
                FAIL_AT("%s failed", cmd);
}

static void put(const char *dir, const char *name, const char *text, mode_t mode) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ_INT(write(fd, text, strlen(text)), (int) strlen(text));
        close(fd);
        ASSERT_EQ_INT(chmod(path, mode), 0);
}

static void sub(const char *dir, const char *name) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        ASSERT_EQ_INT(mkdir(path, 0700), 0);
}

TEST(artifact_sha256) {
        char hex[65], d[ARTIFACT_DIGEST_LEN];
        sha256_hex("abc", 3, hex);
        ASSERT_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("", 0, hex);
        ASSERT_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        artifact_digest("abc", 3, d);
        ASSERT_EQ_STR(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        ASSERT_TRUE(artifact_digest_valid(d));
        ASSERT_TRUE(!artifact_digest_valid(NULL));
        ASSERT_TRUE(!artifact_digest_valid("sha256:"));
        ASSERT_TRUE(!artifact_digest_valid("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        ASSERT_TRUE(!artifact_digest_valid("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
        ASSERT_TRUE(!artifact_digest_valid("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        ASSERT_TRUE(!artifact_digest_valid("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
}

/* The same tree built twice, in a different order, with other modes
 * (same execute bits), mtimes and a skipped cache folder. */
static void make_tree(const char *d, bool variant) {
        if (variant) {
                sub(d, "lib");
                put(d, "lib/util.py", "def f(): pass\n", 0600);
                put(d, "main.py", "import lib.util\n", 0640);
                put(d, "run", "#!/bin/sh\n", 0700);
                sub(d, "__pycache__");
                put(d, "__pycache__/x.pyc", "junk", 0644);
        } else {
                put(d, "run", "#!/bin/sh\n", 0755);
                put(d, "main.py", "import lib.util\n", 0644);
                sub(d, "lib");
                put(d, "lib/util.py", "def f(): pass\n", 0664);
        }
        char path[512];
        snprintf(path, sizeof path, "%s/lib/link.py", d);
        ASSERT_EQ_INT(symlink("../main.py", path), 0);
        struct timeval tv[2] = { { variant ? 1000 : 5, 0 }, { variant ? 1000 : 5, 0 } };
        snprintf(path, sizeof path, "%s/main.py", d);
        ASSERT_EQ_INT(utimes(path, tv), 0);
}

TEST(artifact_pack_deterministic) {
        char *a = tmpdir(), *b = tmpdir();
        make_tree(a, false);
        make_tree(b, true);
        void *da, *db;
        size_t la, lb;
        char ga[ARTIFACT_DIGEST_LEN], gb[ARTIFACT_DIGEST_LEN], gc[ARTIFACT_DIGEST_LEN];
        ASSERT_EQ_INT(artifact_pack(a, 1 << 20, &da, &la, ga), 0);
        ASSERT_EQ_INT(artifact_pack(b, 1 << 20, &db, &lb, gb), 0);
        ASSERT_EQ_UINT(la, lb);
        ASSERT_TRUE(memcmp(da, db, la) == 0);
        ASSERT_EQ_STR(ga, gb);
        artifact_digest(da, la, gc);
        ASSERT_EQ_STR(ga, gc);
        /* sorted: lib/, lib/link.py, lib/util.py, main.py, run; 5 headers,
         * 3 data blocks, 2 end blocks */
        ASSERT_EQ_UINT(la, 512 * 10);
        ASSERT_EQ_STR((char *) da, "lib/");
        ASSERT_EQ_STR((char *) da + 512, "lib/link.py");
        ASSERT_EQ_STR((char *) da + 1024, "lib/util.py");
        /* a change of content, or of an execute bit, changes the digest */
        put(b, "run", "#!/bin/sh\n", 0600);
        free(db);
        ASSERT_EQ_INT(artifact_pack(b, 1 << 20, &db, &lb, gb), 0);
        ASSERT_TRUE(strcmp(ga, gb) != 0);
        free(da);
        free(db);
        rmrf(a);
        rmrf(b);
        free(a);
        free(b);
}

TEST(artifact_pack_file) {
        char *d = tmpdir();
        put(d, "wc.py", "print(1)\n", 0644);
        char path[512];
        snprintf(path, sizeof path, "%s/wc.py", d);
        void *data;
        size_t len;
        char g[ARTIFACT_DIGEST_LEN];
        ASSERT_EQ_INT(artifact_pack(path, 1 << 20, &data, &len, g), 0);
        ASSERT_EQ_UINT(len, 512 * 4);
        ASSERT_EQ_STR((char *) data, "wc.py");
        ASSERT_EQ_STR((char *) data + 100, "0000644"); /* mode */
        ASSERT_EQ_STR((char *) data + 136, "00000000000"); /* mtime */
        ASSERT_EQ_STR((char *) data + 257, "ustar");
        free(data);
        /* the same bytes from the same content elsewhere */
        char *e = tmpdir();
        put(e, "wc.py", "print(1)\n", 0600);
        char g2[ARTIFACT_DIGEST_LEN];
        snprintf(path, sizeof path, "%s/wc.py", e);
        ASSERT_EQ_INT(artifact_pack(path, 1 << 20, &data, &len, g2), 0);
        ASSERT_EQ_STR(g, g2);
        free(data);
        rmrf(d);
        rmrf(e);
        free(d);
        free(e);
}

TEST(artifact_pack_refused) {
        char *d = tmpdir();
        void *data = NULL;
        size_t len;
        char path[512];
        snprintf(path, sizeof path, "%s/out", d);
        ASSERT_EQ_INT(symlink("../../etc/passwd", path), 0);
        ASSERT_EQ_INT(artifact_pack(d, 1 << 20, &data, &len, NULL), -ELOOP);
        unlink(path);
        ASSERT_EQ_INT(symlink("/etc/passwd", path), 0);
        ASSERT_EQ_INT(artifact_pack(d, 1 << 20, &data, &len, NULL), -ELOOP);
        unlink(path);
        sub(d, "s");
        snprintf(path, sizeof path, "%s/s/l", d);
        ASSERT_EQ_INT(symlink("x/../..", path), 0); /* ".." after a name */
        ASSERT_EQ_INT(artifact_pack(d, 1 << 20, &data, &len, NULL), -ELOOP);
        unlink(path);
        ASSERT_EQ_INT(symlink("../s", path), 0); /* fine: stays inside */
        ASSERT_EQ_INT(artifact_pack(d, 1 << 20, &data, &len, NULL), 0);
        free(data);

        char big[5000];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        put(d, "big", big, 0644);
        ASSERT_EQ_INT(artifact_pack(d, 4096, &data, &len, NULL), -E2BIG);
        ASSERT_EQ_INT(artifact_pack(d, 512 * 16, &data, &len, NULL), 0);
        free(data);
        snprintf(path, sizeof path, "%s/fifo", d);
        ASSERT_EQ_INT(mkfifo(path, 0644), 0);
        ASSERT_EQ_INT(artifact_pack(d, 1 << 20, &data, &len, NULL), -EINVAL);
        ASSERT_EQ_INT(artifact_pack("/nonexistent", 1 << 20, &data, &len, NULL), -ENOENT);
        rmrf(d);
        free(d);
}

TEST(artifact_pack_long_paths) {
        char *d = tmpdir();
        char name[120], path[1024];
        memset(name, 'n', 70);
        name[70] = 0;
        snprintf(path, sizeof path, "%s/%s", d, name);
        ASSERT_EQ_INT(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/%s/%s", d, name, name); /* 141 bytes: needs the prefix field */
        ASSERT_EQ_INT(mkdir(path, 0755), 0);
        put(path, "f", "x", 0644);
        void *data;
        size_t len;
        ASSERT_EQ_INT(artifact_pack(d, 1 << 20, &data, &len, NULL), 0);
        char *out = tmpdir();
        int fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ_INT(artifact_unpack(data, len, fd), 0);
        close(fd);
        snprintf(path, sizeof path, "%s/%s/%s/f", out, name, name);
        ASSERT_EQ_INT(access(path, R_OK), 0);
        free(data);
        /* a name component of over 100 bytes cannot be stored */
        memset(name, 'm', 110);
        name[110] = 0;
        put(d, name, "x", 0644);
        ASSERT_EQ_INT(artifact_pack(d, 1 << 20, &data, &len, NULL), -ENAMETOOLONG);
        rmrf(d);
        rmrf(out);
        free(d);
        free(out);
}

TEST(artifact_round_trip) {
        char *src = tmpdir(), *dst = tmpdir();
        make_tree(src, true);
        void *data;
        size_t len;
        char g[ARTIFACT_DIGEST_LEN], g2[ARTIFACT_DIGEST_LEN];
        ASSERT_EQ_INT(artifact_pack(src, 1 << 20, &data, &len, g), 0);
        int fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ_INT(artifact_unpack(data, len, fd), 0);
        close(fd);
        free(data);
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/run", dst);
        ASSERT_EQ_INT(stat(path, &st), 0);
        ASSERT_EQ_UINT(st.st_mode & 07777, 0755);
        snprintf(path, sizeof path, "%s/lib/util.py", dst);
        ASSERT_EQ_INT(stat(path, &st), 0);
        ASSERT_EQ_UINT(st.st_mode & 07777, 0644);
        snprintf(path, sizeof path, "%s/lib", dst);
        ASSERT_EQ_INT(stat(path, &st), 0);
        ASSERT_EQ_UINT(st.st_mode & 07777, 0755);
        snprintf(path, sizeof path, "%s/lib/link.py", dst);
        char target[64] = "";
        ASSERT_EQ_INT(readlink(path, target, sizeof target - 1), 10);
        ASSERT_EQ_STR(target, "../main.py");
        snprintf(path, sizeof path, "%s/__pycache__", dst);
        ASSERT_TRUE(access(path, F_OK) < 0);
        /* unpacked and packed again: the same digest */
        ASSERT_EQ_INT(artifact_pack(dst, 1 << 20, &data, &len, g2), 0);
        ASSERT_EQ_STR(g, g2);
        free(data);
        /* an empty folder packs to the two end blocks and unpacks to nothing */
        char *empty = tmpdir();
        ASSERT_EQ_INT(artifact_pack(empty, 1 << 20, &data, &len, NULL), 0);
        ASSERT_EQ_UINT(len, 1024);
        fd = open(empty, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ_INT(artifact_unpack(data, len, fd), 0);
        close(fd);
        free(data);
        rmrf(src);
        rmrf(dst);
        rmrf(empty);
        free(src);
        free(dst);
        free(empty);
}

/* ---- hostile archives, built by hand ----------------------------------- */

typedef struct Tar {
        char buf[512 * 16];
        size_t len;
} Tar;

static void tar_add(Tar *t, const char *name, char type, const char *link, const char *data) {
        char *h = t->buf + t->len;
        size_t size = data ? strlen(data) : 0;
        memset(h, 0, 512);
        memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
        snprintf(h + 100, 8, "%07o", 0644);
        snprintf(h + 108, 8, "%07o", 0);
        snprintf(h + 116, 8, "%07o", 0);
        snprintf(h + 124, 12, "%011o", (unsigned) (size & 07777777u));
        snprintf(h + 136, 12, "%011o", 0);
        h[156] = type;
        if (link)
                memcpy(h + 157, link, strlen(link));
        memcpy(h + 257, "ustar\0" "00", 8);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += (unsigned char) h[i];
        snprintf(h + 148, 7, "%06o", sum);
        t->len += 512;
        if (size) {
                memset(t->buf + t->len, 0, (size + 511) / 512 * 512);
                memcpy(t->buf + t->len, data, size);
                t->len += (size + 511) / 512 * 512;
        }
}

static void tar_end(Tar *t) {
        memset(t->buf + t->len, 0, 1024);
        t->len += 1024;
}

/* Unpack t into a fresh folder inside a fresh parent; returns the result
 * and checks that nothing appeared next to the folder. */
static int unpack_in_jail(const Tar *t) {
        char *parent = tmpdir(), path[512];
        snprintf(path, sizeof path, "%s/box", parent);
        ASSERT_EQ_INT(mkdir(path, 0755), 0);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = artifact_unpack(t->buf, t->len, fd);
        close(fd);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "test \"$(ls -A '%s')\" = box", parent);
        if (system(cmd) != 0)
                FAIL_AT("unpacking wrote outside its folder");
        rmrf(parent);
        free(parent);
        return r;
}

TEST(artifact_unpack_hostile) {
        static const struct { const char *name; char type; const char *link; } bad[] = {
                { "/etc/evil", '0', NULL },
                { "../evil", '0', NULL },
                { "a/../../evil", '0', NULL },
                { "./a", '0', NULL },
                { "a//b", '0', NULL },
                { "hard", '1', "x" },
                { "dev", '3', NULL },
                { "blk", '4', NULL },
                { "fifo", '6', NULL },
                { "pax", 'x', NULL },
                { "gnu", 'L', NULL },
                { "up", '2', "../evil" },
                { "abs", '2', "/etc" },
                { "a/up2", '2', "../../x" },
                { "mid", '2', "a/../../x" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                Tar t = { .len = 0 };
                tar_add(&t, bad[i].name, bad[i].type, bad[i].link, NULL);
                tar_end(&t);
                int r = unpack_in_jail(&t);
                if (r != -EINVAL)
                        FAIL_AT("%s (%c): %d, want -EINVAL", bad[i].name, bad[i].type, r);
        }
}

TEST(artifact_unpack_through_links) {
        /* a symlink inside the tree, then an entry written through it */
        Tar t = { .len = 0 };
        tar_add(&t, "d", '5', NULL, NULL);
        tar_add(&t, "l", '2', "d", NULL);
        tar_add(&t, "l/x", '0', NULL, "through the link");
        tar_end(&t);
        ASSERT_EQ_INT(unpack_in_jail(&t), -EINVAL);
        /* a file that replaces an earlier link, or a duplicate file */
        t.len = 0;
        tar_add(&t, "l", '2', "d", NULL);
        tar_add(&t, "l", '0', NULL, "x");
        tar_end(&t);
        ASSERT_EQ_INT(unpack_in_jail(&t), -EINVAL);
        t.len = 0;
        tar_add(&t, "f", '0', NULL, "a");
        tar_add(&t, "f", '0', NULL, "b");
        tar_end(&t);
        ASSERT_EQ_INT(unpack_in_jail(&t), -EINVAL);
        t.len = 0;
        tar_add(&t, "f", '0', NULL, "a");
        tar_add(&t, "f", '5', NULL, NULL);
        tar_end(&t);
        ASSERT_EQ_INT(unpack_in_jail(&t), -EINVAL);
        /* a link to a folder above, used by a later link */
        t.len = 0;
        tar_add(&t, "x", '2', ".", NULL);
        tar_add(&t, "y", '2', "x/..", NULL);
        tar_end(&t);
        ASSERT_EQ_INT(unpack_in_jail(&t), -EINVAL);
        /* fine: parents made on the way, a link to a sibling */
        t.len = 0;
        tar_add(&t, "a/b/c.txt", '0', NULL, "c");
        tar_add(&t, "a/b/l", '2', "../../a/b/c.txt", NULL);
        tar_add(&t, "a/b", '5', NULL, NULL);
        tar_end(&t);
        ASSERT_EQ_INT(unpack_in_jail(&t), 0);
}

TEST(artifact_unpack_malformed) {
        Tar t = { .len = 0 };
        tar_add(&t, "f", '0', NULL, "hello");
        tar_end(&t);
        ASSERT_EQ_INT(unpack_in_jail(&t), 0);
        Tar bad = t;
        bad.buf[148] ^= 1; /* checksum */
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        bad = t;
        bad.buf[0] = 'g'; /* content no longer matches the checksum */
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        bad = t;
        memcpy(bad.buf + 257, "ustar  ", 8); /* GNU magic */
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        bad = t;
        bad.len = 1024; /* no end block */
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        bad = t;
        bad.len = 512; /* content cut off */
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        bad = t;
        bad.len = 700; /* not whole blocks */
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        bad.len = 0;
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        bad.len = 0;
        tar_add(&bad, "big", '0', NULL, NULL);
        snprintf(bad.buf + 124, 12, "%011o", 077777777); /* bigger than the archive */
        memset(bad.buf + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += (unsigned char) bad.buf[i];
        snprintf(bad.buf + 148, 7, "%06o", sum);
        tar_end(&bad);
        ASSERT_EQ_INT(unpack_in_jail(&bad), -EINVAL);
        ASSERT_EQ_INT(artifact_unpack(NULL, 0, AT_FDCWD), -EINVAL);
}

TEST(artifact_unpack_entry_limit) {
        size_t n = ARTIFACT_ENTRIES_MAX + 1, len = (n + 2) * 512;
        char *buf = calloc(1, len);
        Tar *one = malloc(sizeof *one);
        one->len = 0;
        tar_add(one, "d", '5', NULL, NULL);
        for (size_t i = 0; i < n; i++)
                memcpy(buf + i * 512, one->buf, 512); /* the same folder, again and again */
        char *dir = tmpdir();
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ_INT(artifact_unpack(buf, len, fd), -E2BIG);
        ASSERT_EQ_INT(artifact_unpack(buf + 512, len - 512, fd), 0);
        close(fd);
        rmrf(dir);
        free(dir);
        free(one);
        free(buf);
}

static int list_collect(const char *path, char type, const void *content, size_t size, void *userdata) {
        char *out = userdata;
        if (type == '0' && size >= 3 && memcmp(content, "a,b", 3) != 0)
                return -EIO;
        size_t n = strlen(out);
        snprintf(out + n, 512 - n, "%s:%c:%zu;", path, type, size);
        return 0;
}

static int list_stop(const char *path, char type, const void *content, size_t size, void *userdata) {
        (void) path, (void) type, (void) content, (void) size, (void) userdata;
        return -ECANCELED;
}

/* artifact_list walks what artifact_unpack would take, refuses what it
 * would refuse, and writes nothing. */
TEST(artifact_list_checks) {
        Tar t = { .len = 0 };
        tar_add(&t, "dir/", '5', NULL, NULL);
        tar_add(&t, "dir/data.csv", '0', NULL, "a,b\n1,2\n");
        tar_add(&t, "link", '2', "dir/data.csv", NULL);
        tar_end(&t);
        char out[512] = "";
        ASSERT_EQ_INT(artifact_list(t.buf, t.len, list_collect, out), 0);
        ASSERT_EQ_STR(out, "dir:5:0;dir/data.csv:0:8;link:2:0;");
        ASSERT_EQ_INT(artifact_list(t.buf, t.len, list_stop, NULL), -ECANCELED);
        ASSERT_EQ_INT(artifact_list(t.buf, t.len - 1024, list_collect, out), -EINVAL); /* no end block */
        Tar bad = { .len = 0 };
        tar_add(&bad, "../evil", '0', NULL, "x");
        tar_end(&bad);
        out[0] = 0;
        ASSERT_EQ_INT(artifact_list(bad.buf, bad.len, list_collect, out), -EINVAL);
        ASSERT_EQ_STR(out, "");
}

/* artifact_pack_files: sorted whatever the order given, the bytes
 * artifact_pack_file gives for one file, a round trip, and the refusals. */
TEST(artifact_pack_files) {
        const char *names[] = { "zeta.txt", "data.csv", "empty" };
        const void *contents[] = { "z\n", "a,b\n1,2\n", NULL };
        const size_t sizes[] = { 2, 8, 0 };
        void *data, *again, *one, *none;
        size_t len, len2, len1, len0;
        char g[ARTIFACT_DIGEST_LEN], g2[ARTIFACT_DIGEST_LEN], g1[ARTIFACT_DIGEST_LEN];
        ASSERT_EQ_INT(artifact_pack_files(names, contents, sizes, 3, 1 << 20, &data, &len, g), 0);
        /* 3 headers, 2 data blocks, 2 end blocks; sorted by name */
        ASSERT_EQ_UINT(len, 512 * 7);
        ASSERT_EQ_STR((char *) data, "data.csv");
        ASSERT_EQ_STR((char *) data + 1024, "empty");
        ASSERT_EQ_STR((char *) data + 1536, "zeta.txt");
        ASSERT_EQ_STR((char *) data + 100, "0000644");
        /* another order: the same bytes */
        const char *names2[] = { "empty", "zeta.txt", "data.csv" };
        const void *contents2[] = { "", "z\n", "a,b\n1,2\n" };
        const size_t sizes2[] = { 0, 2, 8 };
        ASSERT_EQ_INT(artifact_pack_files(names2, contents2, sizes2, 3, 1 << 20, &again, &len2, g2), 0);
        ASSERT_EQ_UINT(len2, len);
        ASSERT_TRUE(memcmp(data, again, len) == 0);
        ASSERT_EQ_STR(g, g2);
        free(again);
        /* one file: what artifact_pack_file packs */
        ASSERT_EQ_INT(artifact_pack_files(names + 1, contents + 1, sizes + 1, 1, 1 << 20, &one, &len1, g1), 0);
        ASSERT_EQ_INT(artifact_pack_file("data.csv", "a,b\n1,2\n", 8, false, 1 << 20, &again, &len2, g2), 0);
        ASSERT_EQ_UINT(len1, len2);
        ASSERT_TRUE(memcmp(one, again, len1) == 0);
        ASSERT_EQ_STR(g1, g2);
        free(one);
        free(again);
        /* none: the two end blocks */
        ASSERT_EQ_INT(artifact_pack_files(NULL, NULL, NULL, 0, 1 << 20, &none, &len0, NULL), 0);
        ASSERT_EQ_UINT(len0, 1024);
        free(none);
        /* round trip */
        char *d = tmpdir(), path[512], text[16] = "";
        int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ_INT(artifact_unpack(data, len, fd), 0);
        close(fd);
        snprintf(path, sizeof path, "%s/data.csv", d);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ASSERT_EQ_INT(read(fd, text, sizeof text - 1), 8);
        close(fd);
        ASSERT_EQ_STR(text, "a,b\n1,2\n");
        rmrf(d);
        free(d);
        free(data);
        /* refusals */
        const char *dup[] = { "a.csv", "b.csv", "a.csv" };
        const void *dc[] = { "1", "2", "3" };
        const size_t ds[] = { 1, 1, 1 };
        data = NULL;
        ASSERT_EQ_INT(artifact_pack_files(dup, dc, ds, 3, 1 << 20, &data, &len, NULL), -EINVAL);
        const char *bad[][1] = { { "dir/a" }, { "" }, { "." }, { ".." }, { "/abs" }, { NULL } };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ASSERT_EQ_INT(artifact_pack_files(bad[i], dc, ds, 1, 1 << 20, &data, &len, NULL), -EINVAL);
        char longname[102];
        memset(longname, 'x', 101);
        longname[101] = 0;
        const char *lname[] = { longname };
        ASSERT_EQ_INT(artifact_pack_files(lname, dc, ds, 1, 1 << 20, &data, &len, NULL), -EINVAL);
        longname[100] = 0;      /* 100 bytes: fits */
        ASSERT_EQ_INT(artifact_pack_files(lname, dc, ds, 1, 1 << 20, &data, &len, NULL), 0);
        free(data);
        data = NULL;
        /* the limit counts headers and padding: 1 header + 1 block + 2 end blocks */
        ASSERT_EQ_INT(artifact_pack_files(names + 1, contents + 1, sizes + 1, 1, 2047, &data, &len, NULL), -E2BIG);
        ASSERT_EQ_INT(artifact_pack_files(names + 1, contents + 1, sizes + 1, 1, 2048, &data, &len, NULL), 0);
        free(data);
        data = NULL;
        ASSERT_EQ_INT(artifact_pack_files(NULL, NULL, NULL, 0, 1023, &data, &len, NULL), -E2BIG);
        ASSERT_TRUE(data == NULL);
}
