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
