/* lib/token.h: API tokens. A token is "fnb_" + 16 hex characters of public id
 * + "_" + 43 base64url characters of secret (32 random bytes). The store
 * keeps only the id and the SHA-256 of the secret; the whole token is shown
 * once, when it is created. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_ID_LEN     16
#define TOKEN_STRING_MAX 80

typedef enum {
        TOKEN_ROLE_INVOKER,     /* call functions in its namespaces, read them */
        TOKEN_ROLE_DEVELOPER,   /* also deploy, change traffic, delete */
        TOKEN_ROLE_ADMIN,       /* everything, every namespace, tokens and nodes */
} TokenRole;

/* A new random token; writes the full token string, its id and the hex
 * SHA-256 of its secret. Returns 0 or -errno (getrandom). */
int token_generate(char ret_token[TOKEN_STRING_MAX], char ret_id[TOKEN_ID_LEN + 1], char ret_hash[65]);
/* Split a presented token into id and secret hash. -EINVAL when malformed. */
int token_parse(const char *token, char ret_id[TOKEN_ID_LEN + 1], char ret_hash[65]);
/* Constant-time comparison of two hex hashes. */
bool token_hash_equal(const char *a, const char *b);

int token_role_from_string(const char *s, TokenRole *ret);
const char *token_role_to_string(TokenRole r);
/* Whether a comma-separated namespace list ("*" = every) contains ns. */
bool token_namespace_allowed(const char *namespaces, const char *ns);
