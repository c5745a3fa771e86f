/* lib/daemon.c: the daemons' command line and dropping root (daemon.h). */
#include "lib/daemon.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "lib/util.h"

int daemon_options_parse(const char *prog, const DaemonOption *table, size_t n, int argc, char **argv, void *opts) {
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
                        return 1;
                size_t k, nl = 0;
                for (k = 0; k < n; k++) {
                        nl = strlen(table[k].name);
                        if (strncmp(argv[i], table[k].name, nl) == 0 && (!argv[i][nl] || argv[i][nl] == '='))
                                break;
                }
                if (k == n) {
                        fprintf(stderr, "%s: unknown option %s\n", prog, argv[i]);
                        return -EINVAL;
                }
                const char *v = argv[i][nl] == '=' ? argv[i] + nl + 1 : (i + 1 < argc ? argv[++i] : NULL);
                if (!v || !*v) {
                        fprintf(stderr, "%s: %s needs %s\n", prog, table[k].name, table[k].arg);
                        return -EINVAL;
                }
                *(const char **) ((char *) opts + table[k].offset) = v;
        }
        return 0;
}

void daemon_options_print(FILE *f, const DaemonOption *table, size_t n) {
        int wn = 6, wa = 0;     /* "--help" */
        for (size_t i = 0; i < n; i++) {
                int a = (int) strlen(table[i].name), b = (int) strlen(table[i].arg);
                wn = a > wn ? a : wn;
                wa = b > wa ? b : wa;
        }
        for (size_t i = 0; i < n; i++)
                fprintf(f, "  %-*s %-*s  %s\n", wn, table[i].name, wa, table[i].arg, table[i].help);
        fprintf(f, "  %-*s %-*s  %s\n", wn, "--help", wa, "", "this text");
}

int daemon_user_lookup(const char *user, uid_t *ret_uid, gid_t *ret_gid, char *err, size_t errsize) {
        errno = 0;
        struct passwd *pw = getpwnam(user);
        if (!pw) {
                snprintf(err, errsize, "--user %s: no such user (create it, for example with "
                         "useradd --system --no-create-home %s, or name another with --user)", user, user);
                return errno ? -errno : -ESRCH;
        }
        if (pw->pw_uid == 0) {
                snprintf(err, errsize, "--user %s: that is root; name an unprivileged user", user);
                return -EPERM;
        }
        *ret_uid = pw->pw_uid;
        *ret_gid = pw->pw_gid;
        return 0;
}

int daemon_become_user(const char *user, uid_t *ret_uid, gid_t *ret_gid, char *err, size_t errsize) {
        uid_t uid;
        gid_t gid;
        int r = daemon_user_lookup(user, &uid, &gid, err, errsize);
        if (r < 0)
                return r;
        /* Groups first (only the user's own), then the group id, then the
         * user id: after setuid we could no longer change the others. */
        if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
                r = negative_errno();
                snprintf(err, errsize, "--user %s: cannot become it: %s", user, strerror(-r));
                return r;
        }
        if (setuid(0) == 0 || geteuid() != uid || getegid() != gid) {
                snprintf(err, errsize, "--user %s: still able to regain root after becoming it", user);
                return -EPERM;
        }
#ifdef __SANITIZE_ADDRESS__
        /* LeakSanitizer inspects the process from a helper that needs it
         * dumpable; only sanitizer builds keep that. */
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
        if (ret_uid)
                *ret_uid = uid;
        if (ret_gid)
                *ret_gid = gid;
        return 0;
}
