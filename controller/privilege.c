/* controller/privilege.c: started as root, the controller gives root up
 * once it holds what needed it (the bound port, the open store, the admin
 * token file) and runs as --user from then on. */
#include "controller/privilege.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/util.h"

/* The data folder and the plain files directly in it (the database, its
 * -wal and -shm files, admin.token) to uid:gid. Symlinks are not followed:
 * a link planted in the folder cannot hand some other file to the user. */
static int chown_data(int dir_fd, uid_t uid, gid_t gid) {
        if (fchown(dir_fd, uid, gid) < 0)
                return negative_errno();
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                safe_close(fd);
                return -ENOMEM;
        }
        int r = 0;
        for (struct dirent *de; r == 0 && (de = readdir(d));) {
                struct stat st;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (fchownat(dir_fd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        r = negative_errno();
        }
        closedir(d);
        return r;
}

/* A SQLite database outside the data folder: the file and its companions. */
static int chown_sqlite(const char *path, uid_t uid, gid_t gid) {
        static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                char p[4200];
                snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
                if (lchown(p, uid, gid) < 0 && errno != ENOENT)
                        return negative_errno();
        }
        return 0;
}

int privilege_drop(const char *user, int data_dir_fd, const char *sqlite_path, char *err, size_t errsize) {
        uid_t uid;
        gid_t gid;
        int r = daemon_user_lookup(user, &uid, &gid, err, errsize);
        if (r < 0)
                return r;
        r = chown_data(data_dir_fd, uid, gid);
        if (r == 0 && sqlite_path)
                r = chown_sqlite(sqlite_path, uid, gid);
        if (r < 0) {
                snprintf(err, errsize, "cannot hand the data folder to %s: %s", user, strerror(-r));
                return r;
        }
        return daemon_become_user(user, NULL, NULL, err, errsize);
}
