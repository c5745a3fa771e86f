/* runtime/codecache.c: code artifacts on the node (codecache.h). An
 * artifact is unpacked by lib/artifact.c, which refuses hostile archives;
 * the folder appears under its digest only once it is complete (rename),
 * so a crash halfway leaves a .tmp- folder that the next start removes,
 * never a half-unpacked function. */
#define _GNU_SOURCE
#include "codecache.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lib/artifact.h"
#include "lib/util.h"

#define TREE_DEPTH_MAX 64

static void remove_contents(int fd, int depth) {
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *e;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && unlinkat(dirfd(d), e->d_name, 0) < 0 &&
                    errno == EISDIR && depth < TREE_DEPTH_MAX) {
                        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                remove_contents(sub, depth + 1);
                        (void) unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
                }
        closedir(d);
}

void codecache_remove_tree(int parent_fd, const char *name) {
        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                remove_contents(fd, 0);
        (void) unlinkat(parent_fd, name, AT_REMOVEDIR);
}

static int mkdir_0711(const char *path) {
        struct stat st;
        if (mkdir(path, 0711) < 0 && errno != EEXIST)
                return negative_errno();
        if (lstat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0022))
                return -EPERM; /* not ours, or others may write into it */
        return 0;
}

int codecache_init(const char *state_dir) {
        char code[4096];
        if (snprintf(code, sizeof code, "%s/code", state_dir) >= (int) sizeof code)
                return -ENAMETOOLONG;
        int r = mkdir_0711(state_dir);
        if (r < 0 || (r = mkdir_0711(code)) < 0)
                return r;
        _cleanup_close_ int fd = open(code, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        DIR *d = fdopendir(dup(fd));
        if (!d)
                return negative_errno();
        struct dirent *e;
        while ((e = readdir(d)))
                if (strncmp(e->d_name, ".tmp-", 5) == 0)
                        codecache_remove_tree(fd, e->d_name);
        closedir(d);
        return 0;
}

int codecache_dir(const char *state_dir, const char *digest, char *buf, size_t len) {
        if (!artifact_digest_valid(digest))
                return -EINVAL;
        return snprintf(buf, len, "%s/code/%s", state_dir, digest + 7) >= (int) len ? -ENAMETOOLONG : 0;
}

bool codecache_has(const char *state_dir, const char *digest) {
        char dir[4096];
        struct stat st;
        return codecache_dir(state_dir, digest, dir, sizeof dir) >= 0 && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static int unpack(const char *state_dir, const char *digest, const void *data, size_t len, char *why, size_t wl) {
        char code[3800], tmp[4096], final[4096];
        snprintf(code, sizeof code, "%s/code", state_dir);
        snprintf(tmp, sizeof tmp, "%s/.tmp-%.16s-XXXXXX", code, digest + 7);
        codecache_dir(state_dir, digest, final, sizeof final);
        if (!mkdtemp(tmp))
                return snprintf(why, wl, "%s: %m", tmp), negative_errno();
        _cleanup_close_ int cfd = open(code, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = fd < 0 || cfd < 0 ? negative_errno() : artifact_unpack(data, len, fd);
        if (r >= 0 && fchmod(fd, 0755) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, final) < 0)
                r = errno == EEXIST || errno == ENOTEMPTY ? 0 : negative_errno(); /* another fetch won */
        if (r < 0 || access(tmp, F_OK) == 0)
                codecache_remove_tree(cfd, strrchr(tmp, '/') + 1);
        if (r < 0)
                snprintf(why, wl, "could not unpack the artifact: %s", strerror(-r));
        return r;
}

int codecache_fetch(const HttpTarget *t, const char *token, const char *state_dir, const char *digest, int cancel_fd,
                    char *why, size_t why_len) {
        char path[128], got[ARTIFACT_DIGEST_LEN];
        if (!artifact_digest_valid(digest))
                return snprintf(why, why_len, "bad digest"), -EINVAL;
        snprintf(path, sizeof path, "/v1/artifacts/%s", digest);
        HttpRequest rq = { .method = "GET", .path = path, .token = token, .max_body = CODECACHE_ARTIFACT_MAX,
                           .timeout_ms = CODECACHE_FETCH_MS, .cancel_fd = cancel_fd };
        HttpResponse res = { 0 };
        int r = http_do(t, &rq, &res);
        if (r < 0) {
                snprintf(why, why_len, "fetching %s: %s", digest, strerror(-r));
                return r;
        }
        if (res.status != 200) {
                snprintf(why, why_len, "fetching %s: HTTP %d", digest, res.status);
                http_response_clear(&res);
                return -EIO;
        }
        artifact_digest(res.body, res.body_len, got);
        /* this runs on a pool thread that outlives the daemon's loop: free
         * libcrypto's per-thread state now, not at a thread exit that never comes */
        OPENSSL_thread_stop();
        if (strcmp(got, digest) != 0) {
                snprintf(why, why_len, "the artifact's bytes have digest %s, not %s", got, digest);
                http_response_clear(&res);
                return -EBADMSG;
        }
        r = unpack(state_dir, digest, res.body, res.body_len, why, why_len);
        http_response_clear(&res);
        return r;
}
