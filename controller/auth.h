/* controller/auth.h: who is calling. A bearer token becomes a principal
 * (token id, role, namespaces) by looking its id up in the store and
 * comparing the secret's hash; then roles and namespaces decide. */
#pragma once

#include <stdbool.h>

#include "lib/store.h"
#include "lib/token.h"

typedef struct AuthPrincipal {
        bool authenticated;
        char id[TOKEN_ID_LEN + 1];
        TokenRole role;
        char *namespaces;       /* comma-separated, or "*" */
} AuthPrincipal;

/* From an Authorization header value (may be NULL). Returns 0, or
 * -ENOKEY (no token), -EBADMSG (malformed), -EKEYREJECTED (unknown id or
 * wrong secret), -EKEYREVOKED (revoked): all of these answer 401; other
 * negative values are store failures (500). */
int auth_authenticate(Store *store, const char *authorization, AuthPrincipal *ret);
/* The 401 message for one of the errors above. */
const char *auth_error_message(int r);

/* Whether p has at least min_role and, unless ns is NULL, may touch ns
 * (admins may touch every namespace). ns "*" asks for every namespace. */
bool auth_allows(const AuthPrincipal *p, TokenRole min_role, const char *ns);

void auth_principal_clear(AuthPrincipal *p);
