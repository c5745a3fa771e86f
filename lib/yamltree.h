/* lib/yamltree.h: a YAML file (one document) as a small tree of maps,
 * lists and scalars that remembers each node's line, and the checked
 * getters that config readers build on: every error says FILE:LINE: FIELD:
 * what is wrong. libyaml does the parsing; aliases are refused. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YT_DEPTH_MAX 32
#define YT_CHILDREN_MAX 65536

typedef enum { YT_SCALAR, YT_MAP, YT_SEQ } YtKind;

typedef struct YtNode {
        YtKind kind;
        unsigned line;
        char *value;                     /* scalars */
        bool plain;                      /* an unquoted scalar */
        char **keys;                     /* maps: keys[i] names kids[i] */
        struct YtNode **kids;
        size_t n, cap;
} YtNode;


/* Where errors go: "FILE:LINE: FIELD: message" into err. */
typedef struct YtCtx {
        const char *file;
        char *err;
        size_t err_len;
} YtCtx;

int yt_fail(YtCtx *c, unsigned line, const char *field, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A field's name for messages (cut when it is absurdly long). */
void yt_fieldf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* buf (len bytes) into a tree; -EINVAL with the error in c, -ENOMEM. */
int yt_parse(YtCtx *c, const char *buf, size_t len, YtNode **ret);
void yt_free(YtNode *n);
/* m's value for key, or NULL (also when m is not a map). */
const YtNode *yt_get(const YtNode *m, const char *key);
/* Every key of m must be one of allowed (a NULL-terminated list). */
int yt_keys_check(YtCtx *c, const YtNode *m, const char *field, const char *const *allowed);
int yt_want(YtCtx *c, const YtNode *n, YtKind k, const char *field);
/* A non-empty scalar of at most max bytes without control characters,
 * strdup'd into *ret (freeing what was there). */
int yt_string(YtCtx *c, const YtNode *n, const char *field, size_t max, char **ret);
int yt_bool(YtCtx *c, const YtNode *n, const char *field, bool *ret);
int yt_uint(YtCtx *c, const YtNode *n, const char *field, uint64_t min, uint64_t max, uint64_t *ret);
/* A size such as 4Mi (lib/quantity.h). */
int yt_bytes(YtCtx *c, const YtNode *n, const char *field, uint64_t min, uint64_t max, uint64_t *ret);
/* A duration such as 500ms, in ms. */
int yt_duration(YtCtx *c, const YtNode *n, const char *field, uint64_t min_ms, uint64_t max_ms, uint64_t *ret);
