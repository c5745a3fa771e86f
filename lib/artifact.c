/* lib/artifact.c: content-addressed code artifacts. A file or folder is packed
 * into a deterministic POSIX ustar archive (sorted, mtime 0, owner 0, modes
 * 0644/0755) and named by its SHA-256; unpacking refuses anything that could
 * write or point outside the target folder. Also sha256_hex for everyone. */
#define _GNU_SOURCE
#include "artifact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util.h"

#define BLOCK 512u

/* ---- hashing ----------------------------------------------------------- */

/* Writes an empty string if libcrypto fails (it does not in practice), so a
 * failure can never produce a digest that matches anything. */
void sha256_hex(const void *data, size_t len, char ret_hex[65]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        ret_hex[0] = 0;
        if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
                return;
        for (unsigned i = 0; i < 32; i++) {
                ret_hex[2 * i] = hex[md[i] >> 4];
                ret_hex[2 * i + 1] = hex[md[i] & 15];
        }
        ret_hex[64] = 0;
}

void artifact_digest(const void *data, size_t len, char ret_digest[ARTIFACT_DIGEST_LEN]) {
        char hex[65];
        sha256_hex(data, len, hex);
        if (!hex[0])
                ret_digest[0] = 0;
        else
                snprintf(ret_digest, ARTIFACT_DIGEST_LEN, "sha256:%.64s", hex);
}

int artifact_digest_valid(const char *s) {
        if (!s || strncmp(s, "sha256:", 7) != 0)
                return 0;
        for (size_t i = 7; i < 71; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return s[71] == 0;
}

/* ---- paths ------------------------------------------------------------- */

/* A symlink target is safe when it is relative, its ".." components all
 * come first and climb no higher than the link's own folder (depth: how many
 * folders deep that is), and no ".." follows a name. Every folder on the
 * way down from the link's folder is real (packing and unpacking never go
 * through links), and by induction every link it passes through stays in
 * the tree too, so the target resolves inside the tree. */
static bool link_target_safe(const char *target, unsigned depth) {
        if (!*target || target[0] == '/' || strlen(target) >= 100)
                return false;
        bool named = false;
        for (const char *p = target; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (named || depth == 0)
                                return false;
                        depth--;
                } else if (n > 0 && !(n == 1 && p[0] == '.'))
                        named = true;
                p += n;
                if (*p == '/')
                        p++;
        }
        return true;
}

/* Folders above path's last component. */
static unsigned path_depth(const char *path) {
        unsigned d = 0;
        for (const char *p = path; *p; p++)
                if (*p == '/' && p[1])
                        d++;
        return d;
}

/* An entry path: relative, no empty, "." or ".." components, at most
 * ARTIFACT_PATH_MAX bytes. */
static bool entry_path_valid(const char *path) {
        size_t len = strlen(path);
        if (len == 0 || len > ARTIFACT_PATH_MAX || path[0] == '/')
                return false;
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += n;
                if (*p == '/')
                        p++;
        }
        return true;
}

/* ---- packing: collect -------------------------------------------------- */

typedef enum { ENTRY_FILE, ENTRY_DIR, ENTRY_LINK } EntryType;

typedef struct Entry {
        char *path;             /* relative, no trailing slash */
        EntryType type;
        bool exec;
        char *data;             /* file content or link target */
        size_t size;
} Entry;

typedef struct Pack {
        Entry *entries;
        size_t n, cap;
        size_t total;           /* archive bytes so far, the two end blocks included */
        size_t max_bytes;
} Pack;

static void pack_clear(Pack *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->entries[i].path);
                free(p->entries[i].data);
        }
        free(p->entries);
}

static size_t round_block(size_t n) {
        return (n + BLOCK - 1) / BLOCK * BLOCK;
}

/* Reserve room for one more entry of size bytes; -E2BIG past the limits. */
static int pack_reserve(Pack *p, size_t size) {
        if (p->n >= ARTIFACT_ENTRIES_MAX)
                return -E2BIG;
        /* 077777777777: the largest size an ustar header can hold */
        if (size > p->max_bytes || size > 077777777777ULL ||
            p->total + BLOCK + round_block(size) > p->max_bytes)
                return -E2BIG;
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 64;
                Entry *e = realloc(p->entries, cap * sizeof *e);
                if (!e)
                        return -ENOMEM;
                p->entries = e;
                p->cap = cap;
        }
        p->total += BLOCK + round_block(size);
        return 0;
}

static int read_exact(int fd, char *buf, size_t size) {
        size_t got = 0;
        while (got < size) {
                ssize_t n = read(fd, buf + got, size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EIO; /* shrank while we read it */
                got += (size_t) n;
        }
        return 0;
}

/* Add the regular file open as fd, named path (takes path). */
static int pack_add_file(Pack *p, int fd, const struct stat *st, char *path) {
        _cleanup_free_ char *owned = path;
        if (!entry_path_valid(path))
                return -ENAMETOOLONG;
        int r = pack_reserve(p, (size_t) st->st_size);
        if (r < 0)
                return r;
        _cleanup_free_ char *data = malloc(st->st_size ? (size_t) st->st_size : 1);
        if (!data)
                return -ENOMEM;
        r = read_exact(fd, data, (size_t) st->st_size);
        if (r < 0)
                return r;
        p->entries[p->n++] = (Entry) {
                .path = TAKE_PTR(owned), .type = ENTRY_FILE, .exec = (st->st_mode & 0111) != 0,
                .data = TAKE_PTR(data), .size = (size_t) st->st_size,
        };
        return 0;
}

static int pack_add_link(Pack *p, int dir_fd, const char *name, char *path) {
        _cleanup_free_ char *owned = path;
        char target[128];
        ssize_t n = readlinkat(dir_fd, name, target, sizeof target - 1);
        if (n < 0)
                return negative_errno();
        target[n] = 0;
        if (!entry_path_valid(path))
                return -ENAMETOOLONG;
        if (!link_target_safe(target, path_depth(path)))
                return -ELOOP;
        int r = pack_reserve(p, 0);
        if (r < 0)
                return r;
        char *t = strdup(target);
        if (!t)
                return -ENOMEM;
        p->entries[p->n++] = (Entry) { .path = TAKE_PTR(owned), .type = ENTRY_LINK, .data = t };
        return 0;
}

static int pack_dir(Pack *p, int dir_fd, const char *prefix);

static char *join(const char *prefix, const char *name) {
        char *s = NULL;
        if (asprintf(&s, "%s%s%s", prefix, *prefix ? "/" : "", name) < 0)
                return NULL;
        return s;
}

/* Version-control folders and Python's byte-code caches change without the
 * code changing; leaving them out keeps the digest a function of the code. */
static bool name_skipped(const char *name) {
        return strcmp(name, ".git") == 0 || strcmp(name, "__pycache__") == 0;
}

static int pack_child(Pack *p, int dir_fd, const char *prefix, const char *name) {
        char *path = join(prefix, name);
        if (!path)
                return -ENOMEM;
        struct stat st;
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                free(path);
                return negative_errno();
        }
        if (S_ISLNK(st.st_mode))
                return pack_add_link(p, dir_fd, name, path);
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
                free(path);
                return -EINVAL; /* devices, sockets, fifos */
        }
        _cleanup_free_ char *owned = path;
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISREG(st.st_mode))
                return pack_add_file(p, fd, &st, TAKE_PTR(owned));
        if (!S_ISDIR(st.st_mode))
                return -EINVAL;
        if (!entry_path_valid(path))
                return -ENAMETOOLONG;
        int r = pack_reserve(p, 0);
        if (r < 0)
                return r;
        p->entries[p->n++] = (Entry) { .path = TAKE_PTR(owned), .type = ENTRY_DIR };
        return pack_dir(p, fd, p->entries[p->n - 1].path);
}

/* Add every entry of the open folder dir_fd, recursively; prefix is its path
 * in the archive ("" for the root). */
static int pack_dir(Pack *p, int dir_fd, const char *prefix) {
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -ENOMEM;
        }
        int r = 0;
        struct dirent *de;
        errno = 0;
        while (r == 0 && (de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || name_skipped(de->d_name))
                        continue;
                r = pack_child(p, dir_fd, prefix, de->d_name);
                errno = 0;
        }
        if (r == 0 && errno != 0)
                r = negative_errno();
        closedir(d);
        return r;
}

/* ---- packing: write ---------------------------------------------------- */

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const Entry *) a)->path, ((const Entry *) b)->path);
}

static void put_octal(char *field, size_t width, uint64_t v) {
        /* width - 1 digits, zero padded, then NUL */
        snprintf(field, width, "%0*llo", (int) (width - 1), (unsigned long long) v);
}

/* Split path into ustar prefix and name: the name takes what fits in 100
 * bytes, the prefix the rest (up to a '/'), at most 155 bytes. */
static int header_set_path(char *hdr, const char *path) {
        size_t len = strlen(path);
        if (len <= 100) {
                memcpy(hdr, path, len);
                return 0;
        }
        for (size_t i = 0; i < len && i <= 155; i++)
                if (path[i] == '/' && len - i - 1 <= 100 && len - i - 1 > 0) {
                        memcpy(hdr + 345, path, i);
                        memcpy(hdr, path + i + 1, len - i - 1);
                        return 0;
                }
        return -ENAMETOOLONG;
}

static int header_write(char *hdr, const Entry *e) {
        char name[ARTIFACT_PATH_MAX + 2];
        snprintf(name, sizeof name, "%s%s", e->path, e->type == ENTRY_DIR ? "/" : "");
        memset(hdr, 0, BLOCK);
        int r = header_set_path(hdr, name);
        if (r < 0)
                return r;
        put_octal(hdr + 100, 8, e->type == ENTRY_FILE && !e->exec ? 0644 : 0755);
        put_octal(hdr + 108, 8, 0);
        put_octal(hdr + 116, 8, 0);
        put_octal(hdr + 124, 12, e->type == ENTRY_FILE ? e->size : 0);
        put_octal(hdr + 136, 12, 0);
        hdr[156] = e->type == ENTRY_FILE ? '0' : e->type == ENTRY_DIR ? '5' : '2';
        if (e->type == ENTRY_LINK)
                memcpy(hdr + 157, e->data, strlen(e->data));
        memcpy(hdr + 257, "ustar", 6);
        memcpy(hdr + 263, "00", 2);
        put_octal(hdr + 329, 8, 0);
        put_octal(hdr + 337, 8, 0);
        memset(hdr + 148, ' ', 8);
        unsigned sum = 0;
        for (unsigned i = 0; i < BLOCK; i++)
                sum += (unsigned char) hdr[i];
        snprintf(hdr + 148, 7, "%06o", sum);
        hdr[155] = ' ';
        return 0;
}

static int pack_write(Pack *p, void **ret_data, size_t *ret_len) {
        if (p->n > 1)
                qsort(p->entries, p->n, sizeof(Entry), entry_cmp);
        size_t total = p->total;
        _cleanup_free_ char *buf = calloc(1, total);
        if (!buf)
                return -ENOMEM;
        size_t off = 0;
        for (size_t i = 0; i < p->n; i++) {
                const Entry *e = &p->entries[i];
                int r = header_write(buf + off, e);
                if (r < 0)
                        return r;
                off += BLOCK;
                if (e->type == ENTRY_FILE) {
                        if (e->size)
                                memcpy(buf + off, e->data, e->size);
                        off += round_block(e->size);
                }
        }
        *ret_data = TAKE_PTR(buf);
        *ret_len = total;
        return 0;
}

int artifact_pack(const char *path, size_t max_bytes, void **ret_data, size_t *ret_len,
                  char ret_digest[ARTIFACT_DIGEST_LEN]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        Pack p = { .max_bytes = max_bytes, .total = 2 * BLOCK };
        if (max_bytes < p.total)
                return -E2BIG;
        int r;
        if (S_ISDIR(st.st_mode))
                r = pack_dir(&p, fd, "");
        else if (S_ISREG(st.st_mode)) {
                _cleanup_free_ char *copy = strdup(path);
                char *name = copy ? strdup(basename(copy)) : NULL;
                r = name ? pack_add_file(&p, fd, &st, name) : -ENOMEM;
        } else
                r = -EINVAL;
        void *data = NULL;
        size_t len = 0;
        if (r >= 0)
                r = pack_write(&p, &data, &len);
        pack_clear(&p);
        if (r < 0)
                return r;
        if (ret_digest)
                artifact_digest(data, len, ret_digest);
        *ret_data = data;
        *ret_len = len;
        return 0;
}

int artifact_pack_file(const char *name, const void *content, size_t size, bool exec, size_t max_bytes,
                       void **ret_data, size_t *ret_len, char ret_digest[ARTIFACT_DIGEST_LEN]) {
        if (!name || strchr(name, '/') || !entry_path_valid(name))
                return -EINVAL;
        Pack p = { .max_bytes = max_bytes, .total = 2 * BLOCK };
        if (max_bytes < p.total)
                return -E2BIG;
        int r = pack_reserve(&p, size);
        char *path = r >= 0 ? strdup(name) : NULL;
        char *data = r >= 0 ? malloc(size ? size : 1) : NULL;
        if (r >= 0 && (!path || !data))
                r = -ENOMEM;
        if (r < 0) {
                free(path);
                free(data);
                pack_clear(&p);
                return r;
        }
        if (size)
                memcpy(data, content, size);
        p.entries[p.n++] = (Entry) { .path = path, .type = ENTRY_FILE, .exec = exec, .data = data, .size = size };
        void *out = NULL;
        size_t len = 0;
        r = pack_write(&p, &out, &len);
        pack_clear(&p);
        if (r < 0)
                return r;
        if (ret_digest)
                artifact_digest(out, len, ret_digest);
        *ret_data = out;
        *ret_len = len;
        return 0;
}

/* ---- unpacking --------------------------------------------------------- */

/* An octal field: digits, then NUL or spaces to the end; -1 otherwise. */
static int64_t parse_octal(const char *f, size_t width) {
        int64_t v = 0;
        size_t i = 0;
        while (i < width && f[i] == ' ')
                i++;
        size_t start = i;
        for (; i < width && f[i] >= '0' && f[i] <= '7'; i++)
                v = v * 8 + (f[i] - '0');
        if (i == start || i - start > 11)
                return -1;
        for (; i < width; i++)
                if (f[i] != 0 && f[i] != ' ')
                        return -1;
        return v;
}

static bool header_checksum_ok(const unsigned char *h) {
        int64_t want = parse_octal((const char *) h + 148, 8);
        int64_t sum = 0;
        for (unsigned i = 0; i < BLOCK; i++)
                sum += (i >= 148 && i < 156) ? ' ' : h[i];
        return want == sum;
}

typedef struct Header {
        char path[ARTIFACT_PATH_MAX + 2];
        char link[101];
        char type;
        bool exec;
        size_t size;
} Header;

static int header_read(const unsigned char *h, Header *ret) {
        const char *c = (const char *) h;
        if (!header_checksum_ok(h) || memcmp(c + 257, "ustar\0" "00", 8) != 0)
                return -EINVAL;
        int64_t size = parse_octal(c + 124, 12), mode = parse_octal(c + 100, 8);
        if (size < 0 || mode < 0)
                return -EINVAL;
        size_t nlen = strnlen(c, 100), plen = strnlen(c + 345, 155);
        if (plen + 1 + nlen > ARTIFACT_PATH_MAX + 1)
                return -EINVAL;
        if (plen)
                snprintf(ret->path, sizeof ret->path, "%.*s/%.*s", (int) plen, c + 345, (int) nlen, c);
        else
                snprintf(ret->path, sizeof ret->path, "%.*s", (int) nlen, c);
        snprintf(ret->link, sizeof ret->link, "%.*s", (int) strnlen(c + 157, 100), c + 157);
        ret->type = c[156] ? c[156] : '0';
        ret->exec = (mode & 0111) != 0;
        ret->size = (size_t) size;
        return 0;
}

/* Open the folder that will hold path's last component, creating missing
 * folders on the way; never follows a symlink. *ret_leaf points into path. */
static int open_parent(int dir_fd, char *path, const char **ret_leaf) {
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        char *p = path, *slash;
        while ((slash = strchr(p, '/'))) {
                *slash = 0;
                if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
                        int r = negative_errno();
                        safe_close(fd);
                        return r;
                }
                int next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                *slash = '/';
                safe_close(fd);
                if (next < 0)
                        return errno == ELOOP || errno == ENOTDIR ? -EINVAL : negative_errno();
                fd = next;
                p = slash + 1;
        }
        *ret_leaf = p;
        return fd;
}

static int unpack_file(int parent, const char *leaf, const Header *h, const void *content) {
        mode_t mode = h->exec ? 0755 : 0644;
        _cleanup_close_ int fd = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return errno == EEXIST ? -EINVAL : negative_errno();
        int r = write_all(fd, content, h->size);
        if (r < 0)
                return r;
        return fchmod(fd, mode) < 0 ? negative_errno() : 0;
}

static int unpack_dir(int parent, const char *leaf) {
        struct stat st;
        if (mkdirat(parent, leaf, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -EINVAL;
        return fchmodat(parent, leaf, 0755, 0) < 0 ? negative_errno() : 0;
}

/* What unpacking checks of an entry before it writes anything (a folder's
 * trailing '/' is dropped from its path). */
static int entry_check(Header *h) {
        size_t len = strlen(h->path);
        if (h->type == '5' && len > 1 && h->path[len - 1] == '/')
                h->path[--len] = 0;
        if (!entry_path_valid(h->path))
                return -EINVAL;
        if (h->type == '2' && !link_target_safe(h->link, path_depth(h->path)))
                return -EINVAL;
        if (h->type != '0' && h->type != '5' && h->type != '2')
                return -EINVAL; /* hard links, devices, fifos, extensions */
        if (h->type != '0' && h->size != 0)
                return -EINVAL;
        return 0;
}

static int unpack_entry(int dir_fd, Header *h, const void *content) {
        bool is_dir = h->type == '5';
        int r = entry_check(h);
        if (r < 0)
                return r;
        const char *leaf;
        int parent = open_parent(dir_fd, h->path, &leaf);
        if (parent < 0)
                return parent;
        if (h->type == '0')
                r = unpack_file(parent, leaf, h, content);
        else if (is_dir)
                r = unpack_dir(parent, leaf);
        else
                r = symlinkat(h->link, parent, leaf) < 0 ? (errno == EEXIST ? -EINVAL : negative_errno()) : 0;
        safe_close(parent);
        return r;
}

static bool block_is_zero(const unsigned char *b) {
        for (unsigned i = 0; i < BLOCK; i++)
                if (b[i])
                        return false;
        return true;
}

/* Every entry in order: fn(h, content) unpacks it or only looks. */
static int walk(const void *data, size_t len, int (*fn)(Header *h, const void *content, void *userdata),
                void *userdata) {
        const unsigned char *d = data;
        size_t off = 0, entries = 0;
        if (!data || len % BLOCK != 0)
                return -EINVAL;
        while (off + BLOCK <= len) {
                if (block_is_zero(d + off))
                        return 0;
                Header h;
                int r = header_read(d + off, &h);
                if (r < 0)
                        return r;
                off += BLOCK;
                if (h.size > len - off || round_block(h.size) > len - off)
                        return -EINVAL;
                if (++entries > ARTIFACT_ENTRIES_MAX)
                        return -E2BIG;
                r = fn(&h, d + off, userdata);
                if (r < 0)
                        return r;
                off += round_block(h.size);
        }
        return -EINVAL; /* no end-of-archive block */
}

static int unpack_one(Header *h, const void *content, void *userdata) {
        return unpack_entry(*(int *) userdata, h, content);
}

int artifact_unpack(const void *data, size_t len, int dir_fd) {
        return walk(data, len, unpack_one, &dir_fd);
}

typedef struct ListCtx {
        artifact_list_fn fn;
        void *userdata;
} ListCtx;

static int list_one(Header *h, const void *content, void *userdata) {
        ListCtx *c = userdata;
        int r = entry_check(h);
        return r < 0 ? r : c->fn(h->path, h->type, content, h->size, c->userdata);
}

int artifact_list(const void *data, size_t len, artifact_list_fn fn, void *userdata) {
        ListCtx c = { fn, userdata };
        return walk(data, len, list_one, &c);
}

/* ---- packing files held in memory ---------------------------------------- */

/* One file of artifact_pack_files: a name without '/' that fits an ustar
 * name field on its own (no prefix to split into). */
static int pack_add_memory(Pack *p, const char *name, const void *content, size_t size) {
        if (!name || strchr(name, '/') || !entry_path_valid(name) || strlen(name) > 100)
                return -EINVAL;
        int r = pack_reserve(p, size);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = strdup(name);
        _cleanup_free_ char *data = malloc(size ? size : 1);
        if (!path || !data)
                return -ENOMEM;
        if (size)
                memcpy(data, content, size);
        p->entries[p->n++] = (Entry) { .path = TAKE_PTR(path), .type = ENTRY_FILE, .data = TAKE_PTR(data), .size = size };
        return 0;
}

int artifact_pack_files(const char *const *names, const void *const *contents, const size_t *sizes, size_t n,
                        size_t max_bytes, void **ret_data, size_t *ret_len, char ret_digest[ARTIFACT_DIGEST_LEN]) {
        Pack p = { .max_bytes = max_bytes, .total = 2 * BLOCK };
        int r = max_bytes < p.total ? -E2BIG : 0;
        for (size_t i = 0; r == 0 && i < n; i++)
                r = pack_add_memory(&p, names[i], contents[i], sizes[i]);
        if (r == 0 && p.n > 1) {
                qsort(p.entries, p.n, sizeof(Entry), entry_cmp);
                for (size_t i = 1; r == 0 && i < p.n; i++)
                        if (strcmp(p.entries[i - 1].path, p.entries[i].path) == 0)
                                r = -EINVAL;
        }
        void *out = NULL;
        size_t len = 0;
        if (r == 0)
                r = pack_write(&p, &out, &len);
        pack_clear(&p);
        if (r < 0)
                return r;
        if (ret_digest)
                artifact_digest(out, len, ret_digest);
        *ret_data = out;
        *ret_len = len;
        return 0;
}
