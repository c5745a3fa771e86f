/* activator/auth.h: who may call /fn/. The controller's route table
 * carries every live token as the store keeps it (id, the SHA-256 of its
 * secret, role, namespaces; never a secret: docs/internals.md). A request's
 * `Authorization: Bearer fnb_...` is taken apart and its secret hashed
 * (lib/token.h), the id looked up in the table, the hashes compared in
 * constant time, and the namespace checked: no controller round trip. A
 * per-worker cache remembers the hash of tokens that matched once, so that
 * a caller's next request skips the SHA-256; it maps a token to its hash
 * (a pure function), so it is never stale: a revoked token is absent from
 * the next table and fails there. Pure: no I/O, no locks. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "activator/outcome.h"
#include "lib/token.h"

#define AUTH_TOKENS_MAX      100000     /* tokens in one route table */
#define AUTH_NAMESPACES_MAX  256        /* namespaces of one token (the controller allows 64) */
#define AUTH_CACHE_SIZE      256        /* entries of a worker's cache (direct-mapped) */
#define AUTH_TOKEN_LEN       64         /* "fnb_" + 16 hex + "_" + 43 base64url */

/* A token as the route table lists it. */
typedef struct AuthToken {
        char id[TOKEN_ID_LEN + 1];
        char hash[65];                   /* hex SHA-256 of the secret */
        TokenRole role;
        char *namespaces;                /* "a,b", or "*" */
} AuthToken;

/* A presented token: its id and the hash of its secret. */
typedef struct AuthKey {
        char id[TOKEN_ID_LEN + 1];
        char hash[65];
} AuthKey;

typedef struct AuthCacheEntry {
        char token[AUTH_TOKEN_LEN];      /* not NUL-terminated; all zero when unused */
        AuthKey key;
} AuthCacheEntry;

typedef struct AuthCache {
        AuthCacheEntry e[AUTH_CACHE_SIZE];
} AuthCache;

/* The "tokens" member of a route table (an array; NULL: none). Sorted by
 * id. Entries with a role this activator does not know are left out.
 * -EINVAL with why on a malformed one. */
int auth_tokens_parse(const json_t *list, AuthToken **ret, size_t *ret_n, char *why, size_t why_len);
void auth_tokens_free(AuthToken *v, size_t n);
const AuthToken *auth_token_find(const AuthToken *v, size_t n, const char *id);

/* The key of an Authorization header value: 0, -ENOKEY when there is no
 * header or it is empty, -EBADMSG when it is not "Bearer fnb_..." with a
 * well-formed token, -EIO when hashing failed. cache may be NULL; *ret_hit
 * says whether it answered (no hashing). */
int auth_key_from_header(const char *authorization, AuthCache *cache, AuthKey *ret, bool *ret_hit);
/* Remember a token whose key matched a listed token. */
void auth_cache_put(AuthCache *cache, const char *authorization, const AuthKey *k);
/* Forget every entry (it holds secrets). */
void auth_cache_clear(AuthCache *cache);

/* The listed token whose id is k's and whose secret hash matches, or
 * NULL (no such token, revoked, or a wrong secret: the caller answers 401
 * alike). The hashes are compared in constant time. */
const AuthToken *auth_authenticate(const AuthToken *v, size_t n, const AuthKey *k);
/* Whether t may call functions in namespace ns (admins: every one). */
bool auth_allows(const AuthToken *t, const char *ns);

/* Whether a header value is an fnbox bearer token (never passed on to a box). */
bool auth_is_fnbox_bearer(const char *value);

/* A call from a box through its node's broker (docs/internals.md, "Broker
 * calls"): X-Fnbox-Caller (caller), X-Fnbox-Depth (depth, may be NULL)
 * and X-Fnbox-Broker-Auth (sig), signed with the invoke secret at most
 * AUTH_BROKER_SKEW_S from now. 0 with the caller's namespace and the
 * depth; -ENOKEY without a secret, -EBADMSG for malformed headers,
 * -EPERM for a signature that does not match. */
#define AUTH_BROKER_SKEW_S 300
#define AUTH_BROKER_DEPTH_MAX 64
int auth_broker_verify(const char *secret, const char *caller, const char *depth, const char *sig, long long now,
                       char *ret_ns, size_t ns_len, unsigned *ret_depth);
