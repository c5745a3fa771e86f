/* lib/store.h: fnbox's state, behind one interface with two backends:
 * SQLite (the embedded default, one file in the data folder) and PostgreSQL
 * through libpq (several controllers sharing one database). Schema
 * migrations are versioned and applied by store_open. Every write is one
 * transaction and is durable when the call returns.
 *
 * Documents (specs, traffic, labels) are opaque JSON text to the store
 * (at most 8 MiB each, else -E2BIG). Names, namespaces and ids are 1-253
 * bytes without '/' or control characters (else -EINVAL).
 * Errors are negative errno values: -ENOENT (no such object), -EEXIST,
 * -ESTALE (resource version mismatch: the caller answers 409), -EINVAL,
 * -E2BIG, -EIO (the database failed; store_last_error says why).
 *
 * A Store may be shared by threads: operations on one handle run one at a
 * time (PostgreSQL: one connection per handle). Do not use a handle in a
 * child after fork(); open another. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ARTIFACT_MAX      (64u << 20)     /* bytes per code artifact */
#define STORE_LIST_MAX          1000            /* items per page */

typedef struct Store Store;

/* url: "sqlite:/path/to/fnbox.db" or "postgres://..." / "postgresql://..."
 * (any libpq connection URI; "host=/tmp dbname=x" key=value strings are
 * accepted after "postgres:"). Creates the database file / schema when
 * missing and applies pending migrations (concurrent openers wait for one
 * another). -EPROTO when the database's schema is newer than this build. */
int store_open(const char *url, Store **ret);
void store_close(Store *s);
void store_closep(Store **s);
#define _cleanup_store_ __attribute__((cleanup(store_closep)))

const char *store_backend(const Store *s);     /* "sqlite" or "postgres" */
int store_schema_version(Store *s);
/* The database's last error message, for logs (never includes secrets):
 * the calling thread's last failure on s, or with s NULL its last failure on
 * any handle (how store_open failed). */
const char *store_last_error(const Store *s);

/* ---- functions and revisions ---------------------------------------- */

typedef struct StoreFunction {
        char *namespace_;
        char *name;
        int64_t resource_version;       /* starts at 1, +1 on every change (an
                                         * update that changes nothing keeps it) */
        int64_t latest_revision;        /* number of the newest revision, 0 if none */
        char *spec_json;                /* canonical spec with traffic */
        char *traffic_json;             /* JSON array of {revision|latestRevision, percent, tag} */
        int64_t created_ms, updated_ms; /* Unix epoch milliseconds */
} StoreFunction;

typedef struct StoreRevision {
        char *namespace_;
        char *function;
        int64_t number;                 /* 1, 2, ...; name is FUNCTION-%05d */
        char *spec_json;                /* canonical revision spec (no traffic) */
        char *spec_digest;              /* sha256 hex of spec_json + code digest */
        char *code_digest;              /* "sha256:HEX" */
        int64_t created_ms;
} StoreRevision;

void store_function_clear(StoreFunction *f);
void store_revision_clear(StoreRevision *r);
void store_function_array_free(StoreFunction *a, size_t n);
void store_revision_array_free(StoreRevision *a, size_t n);

typedef struct StoreDeploy {
        const char *namespace_;
        const char *name;
        int64_t expected_version;       /* -1: any; 0: must not exist; N: must be N */
        const char *spec_json;          /* canonical spec with traffic */
        const char *traffic_json;
        const char *revision_json;      /* canonical spec without traffic */
        const char *spec_digest;        /* equal to the latest revision's: no new revision */
        const char *code_digest;        /* must name a stored artifact: else -ENOENT */
} StoreDeploy;

typedef struct StoreDeployResult {
        int64_t revision;               /* the latest revision after the deploy */
        bool revision_created;
        bool function_created;
        int64_t resource_version;       /* the function's version after the deploy */
} StoreDeployResult;

/* Create or update a function and, when spec_digest differs from the latest
 * revision's, add revision latest+1, all in one transaction. Racing deploys
 * never lose a revision: with expected_version >= 0 the loser gets -ESTALE;
 * with -1 they are serialised. A missing function has version 0, so
 * expected_version 0 on an existing function, or N on a missing one, is
 * -ESTALE too. Without a new revision the function is still updated (and
 * its version bumped) when spec_json or traffic_json differ. A code_digest
 * that was never stored: -ENOENT. Nothing is written on any error. */
int store_deploy(Store *s, const StoreDeploy *d, StoreDeployResult *ret);

int store_function_get(Store *s, const char *ns, const char *name, StoreFunction *ret);
/* Functions of one namespace (ns NULL: of every namespace; the caller has
 * checked that it may see them), ordered by (namespace, name),
 * starting after the cursor "NS/NAME" (NULL or "" from the start). At most
 * limit (<= STORE_LIST_MAX) items; *ret_next is the cursor for the next page
 * or NULL when this was the last. */
int store_function_list(Store *s, const char *ns, const char *after, size_t limit,
                        StoreFunction **ret, size_t *ret_n, char **ret_next);
/* Replace the traffic split. -ESTALE on version mismatch (expected -1: any).
 * *ret_version: the version after (unchanged when the split was the same). */
int store_traffic_set(Store *s, const char *ns, const char *name, int64_t expected_version,
                      const char *traffic_json, int64_t *ret_version);
/* Delete a function and its revisions (artifacts stay: they are shared).
 * A function deployed again after this starts over at revision 1. */
int store_function_delete(Store *s, const char *ns, const char *name, int64_t expected_version);

int store_revision_get(Store *s, const char *ns, const char *function, int64_t number, StoreRevision *ret);
/* Newest first, starting below number `before` (0: from the newest), at
 * most limit (<= STORE_LIST_MAX). -ENOENT when the function does not exist. */
int store_revision_list(Store *s, const char *ns, const char *function, int64_t before, size_t limit,
                        StoreRevision **ret, size_t *ret_n);

/* ---- code artifacts, content addressed -------------------------------- */

/* digest is "sha256:HEX" of data; the store trusts the caller to have
 * checked it (lib/artifact.h does). Putting an existing digest is a no-op. */
int store_artifact_put(Store *s, const char *digest, const void *data, size_t len);
int store_artifact_get(Store *s, const char *digest, void **ret_data, size_t *ret_len);
/* 1 if present, 0 if not, or -errno. */
int store_artifact_exists(Store *s, const char *digest);

/* ---- tokens ----------------------------------------------------------- */

typedef struct StoreToken {
        char *id;                       /* public part, 16 hex characters */
        char *secret_hash;              /* sha256 hex of the secret part */
        char *role;                     /* "admin", "developer", "invoker" */
        char *namespaces;               /* comma-separated, or "*" */
        char *description;
        int64_t created_ms;
        int64_t revoked_ms;             /* 0 while valid */
} StoreToken;

void store_token_clear(StoreToken *t);
void store_token_array_free(StoreToken *a, size_t n);

/* -EEXIST on id clash. created_ms 0: now; description NULL: ""; revoked_ms
 * is ignored (a new token is valid). */
int store_token_create(Store *s, const StoreToken *t);
int store_token_get(Store *s, const char *id, StoreToken *ret);
int store_token_list(Store *s, StoreToken **ret, size_t *ret_n);   /* oldest first */
int store_token_revoke(Store *s, const char *id);              /* -ENOENT, or 0 (idempotent) */
/* Number of tokens ever created (revoked included): 0 means first start. */
int store_token_count(Store *s, int64_t *ret);

/* ---- nodes (registered by runtimes; the data plane fills these in) ---- */

typedef struct StoreNode {
        char *name;
        char *labels_json;              /* {"arch": "x86_64", "accelerator": "none", ...} */
        char *capacity_json;            /* {"cpuMillis": 2000, "memoryBytes": ..., "gpus": 0} */
        char *state;                    /* "ready", "lost" */
        int64_t heartbeat_ms;
        int64_t registered_ms;
} StoreNode;

void store_node_clear(StoreNode *n);
void store_node_array_free(StoreNode *a, size_t n);

/* Insert or replace; heartbeat_ms or registered_ms 0: now. Replacing keeps
 * the first registered_ms. */
int store_node_put(Store *s, const StoreNode *n);
int store_node_list(Store *s, StoreNode **ret, size_t *ret_n);  /* by name */
int store_node_delete(Store *s, const char *name);             /* -ENOENT */

/* ---- LLM gateway audit records (sent by activators in batches) -------- */

#define STORE_LLM_AUDIT_BATCH_MAX       1000    /* records per store_llm_audit_add */
#define STORE_LLM_FIELD_MAX             256     /* bytes of caller, endpoint, alias, upstream... */

typedef struct StoreLlmAudit {
        int64_t id;                     /* assigned by the store, increasing; ignored when adding */
        char *request_id;               /* 1-128 bytes, no control characters */
        int64_t at_ms;                  /* when the request started */
        char *namespace_;
        char *caller;                   /* "token:ID" or "fn:NS/NAME@REV" */
        char *endpoint;                 /* "chat.completions", "completions", "embeddings" */
        char *alias;                    /* the model asked for */
        char *upstream;                 /* the one that answered; "" when none did */
        char *chain_json;               /* JSON array of the upstreams tried, in order */
        int64_t tokens_in, tokens_out;
        bool tokens_counted;            /* counted by the gateway, not from upstream usage */
        int64_t latency_us;
        int64_t ttft_us;                /* time to first token; -1: none */
        int64_t status;                 /* the HTTP status the caller got */
        char *error_type;               /* "" on success */
        char *rules;                    /* data rules that fired, "email,card"; "" none */
        bool stream;
        char *request_body;             /* NULL unless the namespace keeps bodies */
        char *response_body;
        int64_t received_ms;            /* when the store took it (set by the store) */
        bool request_body_truncated;    /* the activator kept only the first AUDIT_BODY_MAX bytes */
        bool response_body_truncated;
} StoreLlmAudit;

void store_llm_audit_clear(StoreLlmAudit *a);
void store_llm_audit_array_free(StoreLlmAudit *a, size_t n);

/* Add n records (at most STORE_LLM_AUDIT_BATCH_MAX, else -E2BIG) in one
 * transaction; nothing is written when one is invalid (-EINVAL; the
 * message names its index and field). A record already stored (same
 * namespace, request id and start: a batch sent again after a lost
 * answer) is skipped. Returns the number of records added. */
int store_llm_audit_add(Store *s, const StoreLlmAudit *recs, size_t n);

typedef struct StoreLlmAuditQuery {
        const char *namespace_;         /* NULL: every namespace */
        const char *alias;              /* NULL or "": any */
        int64_t since_ms;               /* records that started at or after; 0: all */
        int64_t before_id;              /* the cursor: ids below it; 0: from the newest */
        size_t limit;                   /* 1..STORE_LIST_MAX */
} StoreLlmAuditQuery;

/* Newest first (by id, the order the store took them in). */
int store_llm_audit_list(Store *s, const StoreLlmAuditQuery *q, StoreLlmAudit **ret, size_t *ret_n);
#define STORE_LLM_PRUNE_BATCH           10000   /* records deleted per statement */
/* Delete the records that started before before_ms, oldest first, in
 * batches of STORE_LLM_PRUNE_BATCH; returns how many (at most INT_MAX). */
int store_llm_audit_prune(Store *s, int64_t before_ms);

/* ---- skill versions (the skill library) ------------------------------- */

#define STORE_SKILL_NAME_MAX            40              /* [a-z0-9-], a DNS-1123 label */
#define STORE_SKILL_DESCRIPTION_MAX     4096            /* bytes */
#define STORE_SKILL_EMBEDDING_MAX       (64u << 10)     /* bytes of embedding_json */
#define STORE_SKILL_FIELD_MAX           256             /* bytes of runtime, created_by... */

typedef struct StoreSkillVersion {
        char *namespace_, *name;
        int64_t version;                /* 1, 2, ... per (namespace, name); assigned by store_skill_version_add */
        char *state;                    /* "candidate", "promoted", "deprecated" */
        char *runtime;                  /* "python3", "node", "sh" (the store checks non-empty only) */
        char *code_digest;              /* "sha256:HEX", a stored artifact (else -ENOENT) */
        char *description;              /* <= STORE_SKILL_DESCRIPTION_MAX bytes; "" allowed */
        char *doc_json;                 /* immutable JSON: tests, limits, interface, evidence, provenance (<= 8 MiB) */
        char *embedding_json;           /* NULL or a non-empty JSON array of numbers (<= 64 KiB) */
        int64_t parent;                 /* 0: none; else an existing version of the same skill */
        int64_t created_ms, promoted_ms, deprecated_ms;  /* 0: not yet */
        char *created_by, *promoted_by, *deprecated_by;  /* "token:ID" or ""; NULL = "" when adding */
} StoreSkillVersion;

void store_skill_version_clear(StoreSkillVersion *v);
void store_skill_version_array_free(StoreSkillVersion *a, size_t n);

/* Add version max+1 (1 for a new name) in one transaction; racing adds
 * (threads, handles, controllers) get distinct consecutive numbers. The
 * version field is ignored; state NULL or "candidate" adds a candidate,
 * "promoted" a promoted version (promoted_ms 0: now); created_ms 0: now.
 * -EINVAL: a bad namespace, name (1-40 of [a-z0-9-], starting and ending
 * with a letter or digit), state, runtime, by-field, parent (not an existing
 * version of this skill) or embedding; -E2BIG: description, doc_json or
 * embedding_json over its limit; -ENOENT: code_digest is no stored artifact.
 * store_last_error says which. */
int store_skill_version_add(Store *s, const StoreSkillVersion *v, int64_t *ret_version);
/* version > 0: that one; 0: the newest promoted (not deprecated) one; -1:
 * the newest of any state. -ENOENT when there is none. */
int store_skill_version_get(Store *s, const char *ns, const char *name, int64_t version, StoreSkillVersion *ret);
/* ns NULL: every namespace; name NULL: every name. Ordered by (namespace,
 * name, version), starting after the cursor "NS/NAME/VERSION" (NULL or "":
 * from the start). At most limit (<= STORE_LIST_MAX); *ret_next (may be
 * NULL) as in store_function_list. */
int store_skill_version_list(Store *s, const char *ns, const char *name, const char *after, size_t limit,
                             StoreSkillVersion **ret, size_t *ret_n, char **ret_next);
/* The only mutation (content never changes): candidate -> promoted (sets
 * promoted_ms/_by), candidate or promoted -> deprecated (sets
 * deprecated_ms/_by). by NULL: ""; at_ms 0: now. Anything else -EINVAL
 * with store_last_error saying why ("version 3 is already promoted");
 * -ENOENT when there is no such version. */
int store_skill_version_set_state(Store *s, const char *ns, const char *name, int64_t version,
                                  const char *state, const char *by, int64_t at_ms);
/* A number that changes whenever any skill version is added or changes
 * state, on any handle or controller sharing the database (a counter row
 * bumped in the writing transaction): the controller's search index cache
 * reloads when it differs. */
int store_skill_stamp(Store *s, int64_t *ret);

/* ---- sessions: one run of a fresh box with input files ---------------- */

#define STORE_SESSION_ID_LEN            34              /* "s-" + 12 hex (ms) + 20 hex (random) */
#define STORE_SESSION_BLOB_MAX          (33u << 20)     /* bytes per blob: input, stdin, stdout, output (a full
                                                         * 32 MiB /output packs to a little more) */
#define STORE_SESSION_RESULT_MAX        (64u << 10)     /* bytes of result_json */

/* The metadata of a session; its four blobs are read with
 * store_session_blob only. A blob that is empty or was never set has the
 * digest "" and the size 0. */
typedef struct StoreSession {
        char *id;                       /* s-<12 hex ms><20 hex> */
        char *namespace_;
        char *function;                 /* "" at creation: any function of the namespace may claim it */
        char *state;                    /* "created", "running", "done", "failed" */
        char *revision;                 /* "" until claimed: the revision that ran, NAME-0000N */
        char *code_digest;              /* "" until claimed */
        char *replay_of;                /* "" or the id of the session this one replays */
        char *created_by;               /* "token:ID" */
        char *input_digest;             /* "sha256:HEX" of the input archive, "" when none */
        char *stdin_digest, *stdout_digest, *output_digest;  /* "" until finished (stdin: at creation when given) */
        int64_t input_size, stdin_size, stdout_size, output_size;
        char *result_json;              /* NULL until finished */
        int64_t created_ms, started_ms, finished_ms, expires_ms;   /* 0: not yet */
} StoreSession;

void store_session_clear(StoreSession *s);
void store_session_array_free(StoreSession *a, size_t n);

/* Add a session in state created. Fields used: id ("s-" and 32 lowercase
 * hex), namespace_, function (NULL or "": any; else a function name,
 * manifest_name_valid), replay_of (NULL or "": none; else a session id),
 * created_by (NULL = ""; at most 256 bytes, no control characters),
 * created_ms (0: now), expires_ms (> created_ms); the others are ignored.
 * input/stdin may be NULL (none). Digests and sizes are computed by the
 * store. -EEXIST for a duplicate id, -EINVAL bad id/namespace/function/
 * replay_of/created_by/times, -E2BIG a blob over STORE_SESSION_BLOB_MAX. */
int store_session_create(Store *s, const StoreSession *v, const void *input, size_t input_len,
                         const void *stdin_data, size_t stdin_len);
int store_session_get(Store *s, const char *id, StoreSession *ret);       /* -ENOENT */
/* which: "input", "stdin", "stdout", "output" (else -EINVAL). A blob never
 * set reads as len 0 (data a malloc()ed 1-byte buffer). -ENOENT no such
 * session. */
int store_session_blob(Store *s, const char *id, const char *which, void **ret, size_t *ret_len);
/* created -> running, atomically (two claimers: one wins, the other gets
 * -EBUSY); sets function (when it was ""), revision, code_digest,
 * started_ms (0: now). -ENOENT; -EBUSY when not in state created, or when
 * the session was created for another function (store_last_error says
 * which); -EINVAL bad arguments. */
int store_session_start(Store *s, const char *id, const char *function, const char *revision,
                        const char *code_digest, int64_t at_ms);
/* running -> done/failed with result_json (UTF-8, 1 to
 * STORE_SESSION_RESULT_MAX bytes) and the blobs (NULL: empty; stdin NULL
 * keeps the one given at creation), finished_ms = at_ms (0: now).
 * -ENOENT, -EBUSY (not running), -E2BIG, -EINVAL (state not done/failed). */
int store_session_finish(Store *s, const char *id, const char *state, const char *result_json,
                         const void *stdin_data, size_t stdin_len, const void *stdout_data, size_t stdout_len,
                         const void *output, size_t output_len, int64_t at_ms);
/* Newest first (id DESC), after the cursor (an id; NULL/"" from the newest);
 * ns NULL: every namespace. limit <= STORE_LIST_MAX; *ret_next (may be
 * NULL) as in store_function_list: the last item's id, or NULL on the last
 * page. Metadata only (no blobs). */
int store_session_list(Store *s, const char *ns, const char *after, size_t limit, StoreSession **ret,
                       size_t *ret_n, char **ret_next);
int store_session_delete(Store *s, const char *id);                       /* -ENOENT */
/* Delete every session with expires_ms <= now_ms (0: now), in batches so
 * that a large prune never holds the store long; the count (at most
 * INT_MAX). */
int store_session_prune(Store *s, int64_t now_ms);
