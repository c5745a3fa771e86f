/* controller/bootstrap.c: the data folder (0700) and the first admin token.
 * The token file is made with O_EXCL and O_NOFOLLOW in the folder we
 * opened, so nothing planted there can redirect the write; the token itself
 * is never logged, only where it is. */
#include "controller/bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/token.h"
#include "lib/util.h"

char *bootstrap_default_data_dir(void) {
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        char buf[4096];
        if (geteuid() == 0)
                return strdup("/var/lib/fnbox");
        if (xdg && xdg[0] == '/')
                snprintf(buf, sizeof buf, "%s/fnbox", xdg);
        else if (home && home[0] == '/')
                snprintf(buf, sizeof buf, "%s/.local/share/fnbox", home);
        else
                return strdup("fnbox-data");
        return strdup(buf);
}

/* mkdir -p with mode 0700 for every folder it makes. */
static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int bootstrap_data_dir(const char *path, int *ret_fd) {
        struct stat st;
        int r = mkdir_parents(path);
        if (r < 0)
                return r;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) == 0 && (st.st_mode & 0077))
                fprintf(stderr, "fnbox-controller: warning: %s is open to other users (mode %04o); 0700 is safer\n",
                        path, (unsigned) (st.st_mode & 07777));
        *ret_fd = fd;
        return 0;
}

/* Write the token to DIR/admin.token, 0600, durably. */
static int write_token_file(int dir_fd, const char *tok) {
        _cleanup_close_ int fd = openat(dir_fd, BOOTSTRAP_TOKEN_FILE,
                                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        char line[TOKEN_STRING_MAX + 2];
        snprintf(line, sizeof line, "%s\n", tok);
        int r = write_all(fd, line, strlen(line));
        explicit_bzero(line, sizeof line);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        return r;
}

int bootstrap_admin_token(Store *store, int dir_fd) {
        int64_t count = 0;
        char tok[TOKEN_STRING_MAX], id[TOKEN_ID_LEN + 1], hash[65];
        int r = store_token_count(store, &count);
        if (r < 0 || count > 0)
                return r;
        r = token_generate(tok, id, hash);
        if (r < 0)
                return r;
        /* the store has no token, so a file left here by a start that died
         * before storing its token holds nothing valid */
        if (unlinkat(dir_fd, BOOTSTRAP_TOKEN_FILE, 0) < 0 && errno != ENOENT)
                return negative_errno();
        r = write_token_file(dir_fd, tok);
        explicit_bzero(tok, sizeof tok);
        if (r < 0)
                return r;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        StoreToken t = {
                .id = id, .secret_hash = hash, .role = (char *) "admin", .namespaces = (char *) "*",
                .description = (char *) "first admin (admin.token)",
                .created_ms = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000,
        };
        r = store_token_create(store, &t);
        if (r < 0) {
                unlinkat(dir_fd, BOOTSTRAP_TOKEN_FILE, 0);
                return r;
        }
        if (fsync(dir_fd) < 0)
                return negative_errno();
        return 1;
}
