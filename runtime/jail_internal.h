/* runtime/jail_internal.h: shared between the parts of the jail module. */
#pragma once

#include "jail.h"

typedef struct JailRuntimeInfo {
        const char *name;
        const char *interpreter;   /* NULL: the code itself is executed */
        const char *flags[4];
        const char *default_entry; /* for a code folder */
} JailRuntimeInfo;

extern const JailRuntimeInfo jail_runtimes[_JAIL_RUNTIME_MAX];

struct stat;
/* Open --code once (O_PATH), check the opened file, and hand back the fd and
 * its stat: what is checked is what gets mounted. */
int jail_code_open(const JailConfig *c, char *why, size_t len, int *ret_fd, struct stat *ret_st);
int jail_config_check_rest(const JailConfig *c, char *why, size_t len);
