/* runtime/broker.h: the broker, the only door out of a box. Each instance
 * gets one unix socket (BROKER_SOCKET_NAME in its run folder, at
 * BROKER_SOCKET_IN_JAIL inside every jail of the instance, FNBOX_BROKER in
 * the box's environment) that speaks HTTP/1.1, one request per
 * connection. `/v1/...` goes to the LLM gateway and `/fn/NAME[/...]` to
 * the function NAME of the box's own namespace, both through the
 * activator; nothing else is reachable. The caller's identity is the
 * socket the call came in on: whatever X-Fnbox-* or Authorization headers
 * the box sends are dropped, and the broker adds the identity headers the
 * activator trusts, signed with the invoke secret (docs/internals.md,
 * "Broker calls"). Nested calls carry their depth, each box has a rate
 * limit, each call a deadline within its request's own, and every call is
 * written to the runtime's log. Everything runs on the runtime's loop and
 * never blocks it. docs/boxes.md is the box's side. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define BROKER_SOCKET_NAME "broker.sock"
#define BROKER_SOCKET_IN_JAIL "/run/fnbox/broker.sock"
#define BROKER_HELPERS_IN_JAIL "/run/fnbox"     /* fnbox-call, fnbox.py, fnbox.js */

#define BROKER_DEPTH_DEFAULT 8
#define BROKER_DEPTH_MAX 64
#define BROKER_RATE_DEFAULT 20.0         /* calls per second, per instance */
#define BROKER_BURST_DEFAULT 40
#define BROKER_CALL_MS_DEFAULT 300000    /* a call's longest life when its box has no deadline */
#define BROKER_BODY_DEFAULT (8U << 20)   /* a request body, at most */
#define BROKER_HEAD_MAX (16U << 10)      /* request line and headers, at most */
#define BROKER_CONNS_MAX 32              /* calls in flight per instance */

typedef struct BrokerOptions {
        const char *activator;           /* http://HOST:PORT (an IP address or localhost) */
        const char *secret;              /* the invoke secret: the key of the identity headers */
        unsigned max_depth;              /* 0: BROKER_DEPTH_DEFAULT */
        double rate;                     /* 0: BROKER_RATE_DEFAULT */
        unsigned burst;                  /* 0: BROKER_BURST_DEFAULT */
        uint64_t call_ms;                /* 0: BROKER_CALL_MS_DEFAULT */
        size_t max_body;                 /* 0: BROKER_BODY_DEFAULT */
} BrokerOptions;

typedef struct Broker Broker;
typedef struct BrokerBox BrokerBox;

/* Who a call belongs to: the request that the calling process serves. */
typedef struct BrokerCaller {
        unsigned depth;                  /* that request's own depth (0: called from outside) */
        uint64_t deadline_ns;            /* CLOCK_MONOTONIC: when that request's time is up; 0: none known */
        bool known;                      /* false: the instance cannot tell (a service) */
} BrokerCaller;

/* The instance's answer for a process that connected (its host pid). */
typedef void (*broker_caller_fn)(pid_t pid, BrokerCaller *ret, void *userdata);

typedef struct BrokerIdentity {
        const char *instance;            /* the instance id */
        const char *ns;                  /* its namespace */
        const char *function;
        const char *revision;            /* the revision's name, e.g. hello-00001 */
} BrokerIdentity;

/* Check the options (-EINVAL with why) and resolve the activator's
 * address once. */
int broker_new(uv_loop_t *loop, const BrokerOptions *o, char *why, size_t why_len, Broker **ret);
/* Release the broker; it goes once its last box is closed. */
void broker_free(Broker *b);
/* "OPTION: problem", or NULL: for the option parsers */
int broker_parse_activator(const char *url, char *host, size_t host_len, unsigned *ret_port);

/* Bind dir/BROKER_SOCKET_NAME (dir: a folder only root and the box's uid
 * can write, made for this instance), owned by box_uid, 0600, and serve
 * it. The helpers (fnbox-call, fnbox.py, fnbox.js) are written next to
 * it. id's strings are copied. */
int broker_box_open(Broker *b, const char *dir, uid_t box_uid, const BrokerIdentity *id, broker_caller_fn fn,
                    void *userdata, BrokerBox **ret);
/* Stop serving: the socket file goes at once, calls in flight end now
 * (closed), and the memory on the loop's next turns. NULL is fine. */
void broker_box_close(BrokerBox *x);

/* The X-Fnbox-Broker-Auth signature: the hex HMAC-SHA256, keyed with
 * the secret, of "v1\nCALLER\nNAMESPACE\nDEPTH\nTIME". */
void broker_identity_mac(const char *secret, const char *caller, const char *ns, unsigned depth, long long t,
                         char out[65]);

/* The helpers, as linked into fnbox-runtime (runtime/box/). */
int broker_helpers_write(int dir_fd);
