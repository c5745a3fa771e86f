/* tests/unit/test_token.c: lib/token.c: the token's printed form, that
 * parsing gives back the id and hash that generation made, that malformed
 * tokens are refused, hash comparison, roles and namespace lists. */
#include "test.h"

#include "lib/token.h"

#include <ctype.h>
#include <errno.h>

TEST(token_generate_form) {
        char tok[TOKEN_STRING_MAX], id[TOKEN_ID_LEN + 1], hash[65];
        ASSERT_EQ_INT(token_generate(tok, id, hash), 0);
        ASSERT_EQ_UINT(strlen(tok), 4 + 16 + 1 + 43);
        ASSERT_TRUE(strncmp(tok, "fnb_", 4) == 0);
        ASSERT_TRUE(strncmp(tok + 4, id, TOKEN_ID_LEN) == 0);
        ASSERT_TRUE(tok[20] == '_');
        ASSERT_EQ_UINT(strlen(id), TOKEN_ID_LEN);
        ASSERT_EQ_UINT(strlen(hash), 64);
        for (size_t i = 0; i < 64; i++)
                ASSERT_TRUE(isxdigit((unsigned char) hash[i]) && !isupper((unsigned char) hash[i]));
        /* the secret is not in the hash, nor the hash in the token */
        ASSERT_TRUE(strstr(tok, hash) == NULL);
}

TEST(token_parse_roundtrip) {
        char tok[TOKEN_STRING_MAX], id[TOKEN_ID_LEN + 1], hash[65];
        char pid[TOKEN_ID_LEN + 1], phash[65];
        ASSERT_EQ_INT(token_generate(tok, id, hash), 0);
        ASSERT_EQ_INT(token_parse(tok, pid, phash), 0);
        ASSERT_EQ_STR(pid, id);
        ASSERT_EQ_STR(phash, hash);
        ASSERT_TRUE(token_hash_equal(phash, hash));
}

TEST(token_generate_unique) {
        char a[TOKEN_STRING_MAX], b[TOKEN_STRING_MAX], ida[17], idb[17], ha[65], hb[65];
        ASSERT_EQ_INT(token_generate(a, ida, ha), 0);
        ASSERT_EQ_INT(token_generate(b, idb, hb), 0);
        ASSERT_TRUE(strcmp(a, b) != 0);
        ASSERT_TRUE(strcmp(ida, idb) != 0);
        ASSERT_TRUE(!token_hash_equal(ha, hb));
}

TEST(token_parse_known_hash) {
        /* sha256("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") */
        char id[17], hash[65];
        ASSERT_EQ_INT(token_parse("fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", id, hash), 0);
        ASSERT_EQ_STR(id, "0123456789abcdef");
        ASSERT_EQ_STR(hash, "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a");
}

TEST(token_parse_malformed) {
        static const char *const bad[] = {
                "",
                "fnb_",
                "xyz_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "fnb_0123456789ABCDEF_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* upper hex */
                "fnb_0123456789abcde_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* short id */
                "fnb_0123456789abcdef-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* separator */
                "fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",    /* short secret */
                "fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* long secret */
                "fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",   /* padding */
                "fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/",   /* std base64 */
                "fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",   /* space */
        };
        char id[17], hash[65];
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (token_parse(bad[i], id, hash) != -EINVAL)
                        FAIL_AT("accepted \"%s\"", bad[i]);
        ASSERT_EQ_INT(token_parse(NULL, id, hash), -EINVAL);
}

TEST(token_hash_equal_cases) {
        const char *a = "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a";
        char b[65];
        memcpy(b, a, 65);
        ASSERT_TRUE(token_hash_equal(a, b));
        b[63] = b[63] == '0' ? '1' : '0';
        ASSERT_TRUE(!token_hash_equal(a, b));
        b[63] = a[63];
        b[0] = b[0] == '0' ? '1' : '0';
        ASSERT_TRUE(!token_hash_equal(a, b));
        ASSERT_TRUE(!token_hash_equal(a, "4b2a"));
        ASSERT_TRUE(!token_hash_equal(a, NULL));
        ASSERT_TRUE(!token_hash_equal("", ""));
}

TEST(token_roles) {
        TokenRole r;
        ASSERT_EQ_INT(token_role_from_string("admin", &r), 0);
        ASSERT_EQ_INT(r, TOKEN_ROLE_ADMIN);
        ASSERT_EQ_INT(token_role_from_string("developer", &r), 0);
        ASSERT_EQ_INT(r, TOKEN_ROLE_DEVELOPER);
        ASSERT_EQ_INT(token_role_from_string("invoker", &r), 0);
        ASSERT_EQ_INT(r, TOKEN_ROLE_INVOKER);
        ASSERT_EQ_INT(token_role_from_string("Admin", &r), -EINVAL);
        ASSERT_EQ_INT(token_role_from_string("", &r), -EINVAL);
        ASSERT_EQ_INT(token_role_from_string(NULL, &r), -EINVAL);
        ASSERT_EQ_STR(token_role_to_string(TOKEN_ROLE_DEVELOPER), "developer");
        ASSERT_TRUE(token_role_to_string((TokenRole) 42) == NULL);
        /* roles are ordered by power */
        ASSERT_TRUE(TOKEN_ROLE_INVOKER < TOKEN_ROLE_DEVELOPER && TOKEN_ROLE_DEVELOPER < TOKEN_ROLE_ADMIN);
}

TEST(token_namespaces) {
        ASSERT_TRUE(token_namespace_allowed("*", "team-b"));
        ASSERT_TRUE(token_namespace_allowed("team-a", "team-a"));
        ASSERT_TRUE(token_namespace_allowed("team-a,team-b", "team-b"));
        ASSERT_TRUE(token_namespace_allowed("team-a,*", "x"));
        ASSERT_TRUE(!token_namespace_allowed("team-a", "team-b"));
        ASSERT_TRUE(!token_namespace_allowed("team-a", "team"));
        ASSERT_TRUE(!token_namespace_allowed("team", "team-a"));
        ASSERT_TRUE(!token_namespace_allowed("team-a,team-b", "team-a,team-b"));
        ASSERT_TRUE(!token_namespace_allowed("team-a", "*"));
        ASSERT_TRUE(!token_namespace_allowed("", "team-a"));
        ASSERT_TRUE(!token_namespace_allowed("team-a", ""));
        ASSERT_TRUE(!token_namespace_allowed(NULL, "team-a"));
        ASSERT_TRUE(!token_namespace_allowed(",", "team-a"));
}
