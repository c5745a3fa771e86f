/* lib/token.c: API tokens: random generation (getrandom), the printable
 * form "fnb_ID_SECRET" (hex id, base64url secret), the SHA-256 of the secret
 * that the store keeps instead of the secret, a constant-time comparison of
 * hashes, roles, and namespace lists. */
#include "token.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define TOKEN_PREFIX            "fnb_"
#define TOKEN_PREFIX_LEN        4
#define TOKEN_SECRET_BYTES      32
#define TOKEN_SECRET_LEN        43      /* base64url of 32 bytes, unpadded */
#define TOKEN_ID_BYTES          (TOKEN_ID_LEN / 2)

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hexdigits[] = "0123456789abcdef";

static const char *const role_names[] = {
        [TOKEN_ROLE_INVOKER] = "invoker",
        [TOKEN_ROLE_DEVELOPER] = "developer",
        [TOKEN_ROLE_ADMIN] = "admin",
};

/* Fill buf from the kernel's CSPRNG, retrying on EINTR and short reads. */
static int random_bytes(uint8_t *buf, size_t len) {
        size_t off = 0;
        while (off < len) {
                ssize_t n = getrandom(buf + off, len - off, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno > 0 ? -errno : -EIO;
                }
                off += (size_t) n;
        }
        return 0;
}

/* Unpadded base64url; out must hold 4 * ceil(len / 3) + 1 bytes. */
static void base64url_encode(const uint8_t *in, size_t len, char *out) {
        size_t o = 0;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16;
                size_t left = len - i;
                if (left > 1)
                        v |= (uint32_t) in[i + 1] << 8;
                if (left > 2)
                        v |= in[i + 2];
                out[o++] = b64url[(v >> 18) & 63];
                out[o++] = b64url[(v >> 12) & 63];
                if (left > 1)
                        out[o++] = b64url[(v >> 6) & 63];
                if (left > 2)
                        out[o++] = b64url[v & 63];
        }
        out[o] = 0;
}

static void hex_encode(const uint8_t *in, size_t len, char *out) {
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = hexdigits[in[i] >> 4];
                out[2 * i + 1] = hexdigits[in[i] & 15];
        }
        out[2 * len] = 0;
}

/* Hex SHA-256 of the secret part as printed. -EIO if OpenSSL fails. */
static int secret_hash(const char *secret, size_t len, char ret_hash[65]) {
        uint8_t md[32];
        unsigned md_len = 0;
        if (!EVP_Digest(secret, len, md, &md_len, EVP_sha256(), NULL) || md_len != sizeof md)
                return -EIO;
        hex_encode(md, sizeof md, ret_hash);
        return 0;
}

int token_generate(char ret_token[TOKEN_STRING_MAX], char ret_id[TOKEN_ID_LEN + 1], char ret_hash[65]) {
        uint8_t id[TOKEN_ID_BYTES], secret[TOKEN_SECRET_BYTES];
        char id_hex[TOKEN_ID_LEN + 1], secret_s[TOKEN_SECRET_LEN + 2], hash[65];
        int r = random_bytes(id, sizeof id);
        if (r < 0)
                return r;
        r = random_bytes(secret, sizeof secret);
        if (r < 0)
                return r;
        hex_encode(id, sizeof id, id_hex);
        base64url_encode(secret, sizeof secret, secret_s);
        r = secret_hash(secret_s, TOKEN_SECRET_LEN, hash);
        explicit_bzero(secret, sizeof secret);
        if (r < 0)
                return r;
        snprintf(ret_token, TOKEN_STRING_MAX, TOKEN_PREFIX "%s_%s", id_hex, secret_s);
        explicit_bzero(secret_s, sizeof secret_s);
        memcpy(ret_id, id_hex, sizeof id_hex);
        memcpy(ret_hash, hash, sizeof hash);
        return 0;
}

static bool is_hex_lower(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_b64url(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
}

int token_parse(const char *token, char ret_id[TOKEN_ID_LEN + 1], char ret_hash[65]) {
        if (!token || strncmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
                return -EINVAL;
        const char *id = token + TOKEN_PREFIX_LEN;
        if (strnlen(id, TOKEN_STRING_MAX) != TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN)
                return -EINVAL;
        for (size_t i = 0; i < TOKEN_ID_LEN; i++)
                if (!is_hex_lower(id[i]))
                        return -EINVAL;
        if (id[TOKEN_ID_LEN] != '_')
                return -EINVAL;
        const char *secret = id + TOKEN_ID_LEN + 1;
        for (size_t i = 0; i < TOKEN_SECRET_LEN; i++)
                if (!is_b64url(secret[i]))
                        return -EINVAL;
        char hash[65];
        int r = secret_hash(secret, TOKEN_SECRET_LEN, hash);
        if (r < 0)
                return r;
        memcpy(ret_id, id, TOKEN_ID_LEN);
        ret_id[TOKEN_ID_LEN] = 0;
        memcpy(ret_hash, hash, sizeof hash);
        return 0;
}

/* The time taken depends only on the lengths (public: always 64), never on
 * where the first differing character is. */
bool token_hash_equal(const char *a, const char *b) {
        if (!a || !b)
                return false;
        size_t la = strnlen(a, 65), lb = strnlen(b, 65);
        if (la != lb || la != 64)
                return false;
        volatile unsigned char diff = 0;
        for (size_t i = 0; i < la; i++)
                diff |= (unsigned char) (a[i] ^ b[i]);
        return diff == 0;
}

int token_role_from_string(const char *s, TokenRole *ret) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
                if (strcmp(s, role_names[i]) == 0) {
                        *ret = (TokenRole) i;
                        return 0;
                }
        return -EINVAL;
}

const char *token_role_to_string(TokenRole r) {
        if ((size_t) r >= sizeof role_names / sizeof role_names[0])
                return NULL;
        return role_names[r];
}

bool token_namespace_allowed(const char *namespaces, const char *ns) {
        if (!namespaces || !ns || !*ns)
                return false;
        size_t ns_len = strlen(ns);
        for (const char *p = namespaces; *p;) {
                const char *end = strchr(p, ',');
                if (!end)
                        end = p + strlen(p);
                size_t n = (size_t) (end - p);
                if ((n == 1 && *p == '*') || (n == ns_len && memcmp(p, ns, n) == 0))
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}
