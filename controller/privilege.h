/* controller/privilege.h: dropping root to the service user. */
#pragma once

#include <stddef.h>

/* Hand the data folder (and a SQLite database outside it, sqlite_path, or
 * NULL) to user, then become user: setgroups, setgid, setuid, and check
 * that root cannot be regained. A missing user is -ESRCH with a sentence
 * naming --user in err. */
int privilege_drop(const char *user, int data_dir_fd, const char *sqlite_path, char *err, size_t errsize);
