/* controller/bootstrap.h: what the controller sets up before it serves: the
 * data folder, and on first start an admin token written to a file that
 * only the controller's user can read. */
#pragma once

#include "lib/store.h"

#define BOOTSTRAP_TOKEN_FILE "admin.token"

/* The default data folder: /var/lib/fnbox as root, else
 * $XDG_DATA_HOME/fnbox or ~/.local/share/fnbox. Returns a malloc()ed path. */
char *bootstrap_default_data_dir(void);
/* Create path (and missing parents) with mode 0700 when missing and open it.
 * Returns 0 or -errno; *ret_fd is O_DIRECTORY and CLOEXEC. */
int bootstrap_data_dir(const char *path, int *ret_fd);
/* When the store has never had a token, create an admin token for every
 * namespace and write it to DATA_DIR/admin.token (0600). Returns 1 when it
 * made one, 0 when tokens existed, or -errno. */
int bootstrap_admin_token(Store *store, int dir_fd);
