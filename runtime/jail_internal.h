/* runtime/jail_internal.h: shared between the parts of the jail module. */
#pragma once

#include "jail.h"
#include "jail_child.h"

typedef struct JailRuntimeInfo {
        const char *name;
        const char *interpreter;   /* NULL: the code itself is executed */
        const char *flags[4];
        const char *default_entry; /* for a code folder */
} JailRuntimeInfo;

extern const JailRuntimeInfo jail_runtimes[_JAIL_RUNTIME_MAX];

struct stat;
/* Check an open (O_PATH) fd of the code: what is checked is what gets
 * mounted. Returns its stat. */
int jail_code_check(const JailConfig *c, int fd, char *why, size_t len, struct stat *ret_st);
/* Open --code once (O_PATH) and check the opened file. */
int jail_code_open(const JailConfig *c, char *why, size_t len, int *ret_fd, struct stat *ret_st);
int jail_config_check_rest(const JailConfig *c, char *why, size_t len);

/* What a prepared jail receives with START (jail_request.c). */
typedef struct JailStartParts {
        JailStartMsg msg;
        int code_fd;   /* the code's detached mount (open_tree) */
        int spec_fd;   /* memfd: exec path, argv, envp */
} JailStartParts;

int jail_request_build(const JailConfig *c, int path_fd, bool is_dir, JailStartParts *ret);
void jail_request_clear(JailStartParts *p);
