/* controller/auth.c: bearer tokens to principals. Only the token's id is
 * looked up; the secret is hashed and compared in constant time. Nothing
 * here logs: a token must never reach a log line. */
#include "controller/auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* The token after "Bearer " (scheme case-insensitive), or NULL. */
static const char *bearer_token(const char *authorization) {
        if (!authorization || strncasecmp(authorization, "Bearer", 6) != 0)
                return NULL;
        const char *p = authorization + 6;
        if (*p != ' ' && *p != '\t')
                return NULL;
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

static void store_token_clearp(StoreToken *t) {
        store_token_clear(t);
}

int auth_authenticate(Store *store, const char *authorization, AuthPrincipal *ret) {
        char id[TOKEN_ID_LEN + 1], hash[65];
        if (!authorization || !*authorization)
                return -ENOKEY;
        const char *tok = bearer_token(authorization);
        if (!tok || token_parse(tok, id, hash) < 0)
                return -EBADMSG;

        _cleanup_(store_token_clearp) StoreToken t = {};
        int r = store_token_get(store, id, &t);
        if (r == -ENOENT)
                return -EKEYREJECTED;
        if (r < 0)
                return r;
        if (!token_hash_equal(hash, t.secret_hash))
                return -EKEYREJECTED;
        if (t.revoked_ms != 0)
                return -EKEYREVOKED;

        TokenRole role;
        if (token_role_from_string(t.role, &role) < 0 || !t.namespaces)
                return -EKEYREJECTED;
        ret->authenticated = true;
        memcpy(ret->id, id, sizeof id);
        ret->role = role;
        ret->namespaces = TAKE_PTR(t.namespaces);
        return 0;
}

const char *auth_error_message(int r) {
        switch (r) {
        case -ENOKEY:
                return "this request needs a bearer token (Authorization: Bearer fnb_...)";
        case -EBADMSG:
                return "the bearer token is malformed";
        case -EKEYREVOKED:
                return "the bearer token has been revoked";
        default:
                return "the bearer token is not known";
        }
}

bool auth_allows(const AuthPrincipal *p, TokenRole min_role, const char *ns) {
        if (!p->authenticated || p->role < min_role)
                return false;
        if (!ns || p->role == TOKEN_ROLE_ADMIN)
                return true;
        return token_namespace_allowed(p->namespaces, ns);
}

void auth_principal_clear(AuthPrincipal *p) {
        free(p->namespaces);
        *p = (AuthPrincipal) {};
}
