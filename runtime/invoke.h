/* runtime/invoke.h: the node agent's invoke socket (docs/internals.md):
 * the activator sends HELLO once per connection, then any number of
 * requests (INVOKE, STDIN..., GO), one after the other, each answered with
 * RESULT, STDOUT..., END or with ERROR 1-4. A unix socket (0660, the
 * activator's group, SO_PEERCRED uid 0 or the allowed uid) or a TCP one
 * (HELLO must carry the node's secret). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "instance.h"

#define INVOKE_CONN_MAX      1024
#define INVOKE_HELLO_MS      10000       /* to send HELLO after connecting */
#define INVOKE_REQUEST_MS    30000       /* to send a whole request once it began */
#define INVOKE_IDLE_MS       300000      /* between requests */

typedef struct InvokeServer InvokeServer;

typedef struct InvokeConfig {
        const char *unix_path;           /* or NULL */
        const char *tcp_listen;          /* HOST:PORT (port 0: the kernel picks), or NULL */
        uid_t allowed_uid;               /* besides root, on the unix socket */
        gid_t socket_gid;                /* the unix socket's group */
        const char *secret;              /* required in HELLO on TCP */
        /* the instance for an id, or NULL */
        Instance *(*find)(const char *id, void *userdata);
        /* a request refused with ERROR code (metrics) */
        void (*refused)(Instance *i, int code, void *userdata);
        void *userdata;
} InvokeConfig;

/* Listen; ret_addr gets the address the controller is told ("unix:PATH" or
 * "tcp:HOST:PORT" with the bound port). */
int invoke_server_new(uv_loop_t *loop, const InvokeConfig *c, InvokeServer **ret, char *ret_addr, size_t addr_len);
/* Stop accepting; close idle connections. Requests running go on. */
void invoke_server_shutdown(InvokeServer *s);
/* Close everything (running requests are cancelled) and free it. */
void invoke_server_free(InvokeServer *s);
