/* activator/table.h: the route table the controller sends (GET /v1/routes,
 * docs/internals.md): functions with their traffic split, revisions with
 * their ready instances. A table is immutable once parsed; the router
 * (router.h) binds each instance to a Slot, the in-flight counter that
 * outlives the table, and each revision to its RevState. Parsing, lookup,
 * the traffic split and the instance pick are pure: the unit suite drives
 * them with fixed random numbers. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "activator/auth.h"
#include "activator/fnpath.h"

#define ROUTE_ADDR_MAX        512       /* invoke and endpoint addresses */
#define ROUTE_REASON_MAX      512       /* an unschedulable reason */
#define ROUTE_TRAFFIC_MAX     64        /* traffic entries of one function */
#define ROUTE_INSTANCES_MAX   4096      /* instances of one revision */
#define ROUTE_FIRST_FREE_MAX  3         /* up to this concurrency: first available, not p2c */
#define ROUTE_CONCURRENCY_DEFAULT 100   /* concurrency 0 (unbounded) counts as this many slots */

typedef struct RevState RevState;       /* router.h */

/* One instance's in-flight count, shared by every table that lists the
 * instance and by the requests it serves; owned by the router. */
typedef struct Slot {
        char *id;
        char *addr;              /* where to send: invoke (fresh) or endpoint (service) */
        uint32_t inflight;
        bool live;               /* listed by the current table */
        bool dropped;            /* its node said it has no such instance */
        struct Slot *next;       /* the router's hash chain */
} Slot;
typedef enum RouteMode { ROUTE_FRESH, ROUTE_SERVICE } RouteMode;

typedef struct RouteInstance {
        char *id, *node;
        char *invoke;            /* "unix:/path" or "tcp:HOST:PORT" (fresh) */
        char *endpoint;          /* "unix:/path" (service), or NULL */
        Slot *slot;
} RouteInstance;

typedef struct RouteRevision {
        char *key;               /* "NAMESPACE/REVISION" */
        char *ns, *name;
        RouteMode mode;
        uint32_t concurrency;    /* slots per instance; never 0 here */
        uint64_t timeout_ms, startup_timeout_ms, output_bytes;
        char *unschedulable;     /* NULL, or the controller's reason */
        RouteInstance *instances;
        size_t n_instances;
        RevState *state;
} RouteRevision;

typedef struct RouteTarget {
        RouteRevision *rev;
        uint32_t percent;
        char *tag;               /* NULL without one */
} RouteTarget;

typedef struct RouteFunction {
        char *key;               /* "NAMESPACE/NAME" */
        char *ns, *name;
        RouteTarget *traffic;
        size_t n_traffic;
        uint32_t percent_total;
} RouteFunction;

/* A skill's newest promoted version (the route table's "skills"). */
typedef struct RouteSkill {
        char *key;               /* "NAMESPACE/NAME" */
        char version[FNPATH_VERSION_MAX + 1];   /* digits */
} RouteSkill;

typedef struct RouteTable {
        uint64_t version;
        RouteFunction *functions;        /* sorted by key */
        size_t n_functions;
        RouteRevision *revisions;        /* sorted by key */
        size_t n_revisions;
        AuthToken *tokens;               /* who may call (auth.h), sorted by id */
        size_t n_tokens;
        bool has_tokens;                 /* the controller sent "tokens" */
        RouteSkill *skills;              /* sorted by key; none when the controller sent no "skills" */
        size_t n_skills;
} RouteTable;

/* Parse the controller's document. -EINVAL with why on a malformed one
 * (the caller keeps its last table). Traffic that names a revision missing
 * from "revisions" is kept out. "tokens" may be absent (an older
 * controller): has_tokens is then false, and no token is known. */
int route_table_parse(const json_t *doc, RouteTable **ret, char *why, size_t why_len);
void route_table_free(RouteTable *t);

RouteFunction *route_table_function(const RouteTable *t, const char *ns, const char *name);
/* The newest promoted version of skill ns/name (digits), or NULL. */
const char *route_table_skill(const RouteTable *t, const char *ns, const char *name);
/* The function a segment names in namespace ns: the function itself, or
 * for a skill (p->skill) skill-NAME-vVERSION, VERSION being the segment's
 * or, without one, the table's newest promoted. NULL when there is none. */
RouteFunction *route_segment_function(const RouteTable *t, const FnPath *p, const char *ns, const FnSegment *seg);
RouteRevision *route_table_revision(const RouteTable *t, const char *ns, const char *rev);

/* The function a parsed URL names: NAMESPACE/NAME when the table has it,
 * else NAME in namespace "default". The tag and the path for the box come
 * back too (*ret_sub: "" or "/..."). A skill's function has one revision:
 * its tag is "" (the version picked the function). */
RouteFunction *route_lookup(const RouteTable *t, const FnPath *p, const char **ret_tag,
                            const char **ret_sub, size_t *ret_sub_len);
/* The same as the token tok sees the table (NULL: everything), so that
 * what it gets for a namespace it may not call never depends on what that
 * namespace holds. /fn/NAME: NAME in "default", or denied. /fn/NS/NAME
 * when tok may call NS: NS/NAME when it exists, else NS in "default" (path
 * /NAME) when tok may call "default", else NULL (404). When tok may not
 * call NS: NS in "default" when tok may call it and it exists, else
 * denied (never a look at NS). Denied: NULL, with *ret_denied_ns the
 * namespace it may not call. */
RouteFunction *route_lookup_as(const RouteTable *t, const FnPath *p, const AuthToken *tok, const char **ret_denied_ns,
                               const char **ret_tag, const char **ret_sub, size_t *ret_sub_len);

/* The token k (auth.h) against the table: its entry, or NULL with
 * ACT_UNAUTHENTICATED and a sentence in msg. */
const AuthToken *route_authenticate(const RouteTable *t, const AuthKey *k, char *msg, size_t msg_len);
/* May the token k call what the URL p names? ACT_OK (the function may
 * still not exist: 404 then), ACT_UNAUTHENTICATED or ACT_FORBIDDEN with a
 * sentence in msg. */
ActError route_authorize(const RouteTable *t, const FnPath *p, const AuthKey *k, char *msg, size_t msg_len);

/* The revision for a request: the one whose tag (or revision name) is tag,
 * or by the split, where rnd picks a point in [0, percent_total). NULL when
 * the tag is unknown or the function has no traffic. */
RouteRevision *route_resolve(const RouteFunction *f, const char *tag, uint64_t rnd);

/* Pick an instance with a free slot: the first one when the revision has
 * ROUTE_FIRST_FREE_MAX slots or fewer per instance, else the less loaded of
 * two drawn at random (rnd), falling back to a scan. Instances whose slot
 * is in exclude are skipped. Index, or -1 when every slot is taken. */
ssize_t route_pick(const RouteRevision *rev, uint64_t rnd, Slot *const *exclude, size_t n_exclude);
