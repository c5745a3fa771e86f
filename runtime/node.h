/* runtime/node.h: `fnbox-runtime serve --controller URL`: the node agent.
 * It registers the node with the controller (labels, capacity, the invoke
 * address), heartbeats, long-polls its assignment, fetches code, starts
 * and drains instances (instance.h), serves the invoke socket (invoke.h)
 * and the metrics. It shares the daemon's loop and its pool of prepared
 * jails. The protocol is docs/internals.md; operators read docs/runtime.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "pool.h"

#define NODE_LABELS_MAX 32
#define NODE_INVOKE_SOCKET_DEFAULT "/run/fnbox/invoke.sock"
#define NODE_STATE_DIR_DEFAULT "/var/lib/fnbox-runtime"
#define NODE_RUN_BASE "/run/fnbox/instances"

typedef struct NodeOptions {
        const char *controller;          /* NULL: no node agent (plain `serve`) */
        const char *token_file;
        const char *name;                /* NULL: the host name */
        char *labels[NODE_LABELS_MAX];   /* "k=v" */
        size_t n_labels;
        const char *invoke_socket;
        const char *invoke_listen;       /* HOST:PORT: TCP instead of the unix socket */
        const char *invoke_user;         /* UID or USER; NULL: the fnbox user if it exists */
        const char *invoke_secret_file;
        const char *state_dir;
        const char *metrics_listen;
        /* the broker (runtime/broker.h): the activator's URL, or NULL for
         * no broker; the key is the invoke secret (needed then) */
        const char *activator;
        unsigned broker_depth;           /* 0: the defaults */
        unsigned broker_rate, broker_burst;
        unsigned templates;              /* python3 template zygotes (template.h); 0: none */
        const struct NodeConf *conf;     /* --node-config (nodeconf.h), or NULL */
} NodeOptions;

typedef struct Node Node;

/* Everything that can fail before the loop runs (files, sockets, users)
 * fails here, with a message on stderr; then the agent works on loop. */
int node_new(uv_loop_t *loop, const NodeOptions *o, Pool **pool, const char *cgroup_parent, uid_t box_uid,
             Node **ret);
/* Drain every instance, report, remove what the node made, then release
 * every handle (the loop ends when the rest of the daemon's does). now:
 * kill what runs instead of letting it finish (a second signal). */
void node_stop(Node *n, bool now);
