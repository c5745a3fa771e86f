/* lib/yamltree.c: libyaml's events into a tree that remembers lines, and
 * the checked getters (yamltree.h). */
#define _GNU_SOURCE
#include "lib/yamltree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/quantity.h"
#include "lib/util.h"

void yt_free(YtNode *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->n; i++) {
                if (n->keys)
                        free(n->keys[i]);
                yt_free(n->kids[i]);
        }
        free(n->keys);
        free(n->kids);
        free(n->value);
        free(n);
}

int yt_fail(YtCtx *c, unsigned line, const char *field, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (field && *field)
                snprintf(c->err, c->err_len, "%s:%u: %s: %s", c->file, line, field, msg);
        else
                snprintf(c->err, c->err_len, "%s:%u: %s", c->file, line, msg);
        return -EINVAL;
}

/* A field's name for messages (cut when it is absurdly long). */
void yt_fieldf(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
}

static int node_add(YtNode *parent, char *key, YtNode *kid) {
        if (parent->n >= YT_CHILDREN_MAX)
                return -E2BIG;
        if (parent->n == parent->cap) {
                size_t cap = parent->cap ? parent->cap * 2 : 8;
                YtNode **k = realloc(parent->kids, cap * sizeof *k);
                if (!k)
                        return -ENOMEM;
                parent->kids = k;
                if (parent->kind == YT_MAP) {
                        char **ks = realloc(parent->keys, cap * sizeof *ks);
                        if (!ks)
                                return -ENOMEM;
                        parent->keys = ks;
                }
                parent->cap = cap;
        }
        if (parent->kind == YT_MAP)
                parent->keys[parent->n] = key;
        parent->kids[parent->n++] = kid;
        return 0;
}

typedef struct Builder {
        YtNode *stack[YT_DEPTH_MAX];
        char *pending_key[YT_DEPTH_MAX];
        size_t depth;
        YtNode *root;
        unsigned docs;
} Builder;

static void builder_clear(Builder *b) {
        for (size_t i = 0; i < YT_DEPTH_MAX; i++)
                free(b->pending_key[i]);
        yt_free(b->root);
        b->root = NULL;
}

/* Hand a finished node to its parent (as a key, or as a value). */
static int builder_put(YtCtx *c, Builder *b, YtNode *n) {
        if (b->depth == 0) {
                if (b->root) {
                        yt_free(n);
                        return yt_fail(c, n->line, NULL, "one YAML document expected");
                }
                b->root = n;
                return 0;
        }
        YtNode *p = b->stack[b->depth - 1];
        if (p->kind == YT_SEQ)
                return node_add(p, NULL, n);
        char **pk = &b->pending_key[b->depth - 1];
        if (!*pk) {
                if (n->kind != YT_SCALAR) {
                        unsigned line = n->line;
                        yt_free(n);
                        return yt_fail(c, line, NULL, "a mapping key must be a plain string");
                }
                unsigned line = n->line;
                *pk = TAKE_PTR(n->value);
                yt_free(n);
                for (size_t i = 0; i < p->n; i++)
                        if (strcmp(p->keys[i], *pk) == 0)
                                return yt_fail(c, line, *pk, "appears twice");
                return 0;
        }
        char *key = TAKE_PTR(*pk);
        int r = node_add(p, key, n);
        if (r < 0) {
                free(key);
                yt_free(n);
        }
        return r;
}

static int builder_event(YtCtx *c, Builder *b, const yaml_event_t *ev) {
        unsigned line = (unsigned) ev->start_mark.line + 1;
        YtNode *n;
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                if (!(n = calloc(1, sizeof *n)) || !(n->value = strndup((const char *) ev->data.scalar.value, ev->data.scalar.length))) {
                        free(n);
                        return -ENOMEM;
                }
                if (strlen(n->value) != ev->data.scalar.length) {
                        yt_free(n);
                        return yt_fail(c, line, NULL, "a NUL byte in a value");
                }
                n->kind = YT_SCALAR;
                n->line = line;
                n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                return builder_put(c, b, n);
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
                if (b->depth >= YT_DEPTH_MAX)
                        return yt_fail(c, line, NULL, "nested more than %d deep", YT_DEPTH_MAX);
                if (!(n = calloc(1, sizeof *n)))
                        return -ENOMEM;
                n->kind = ev->type == YAML_MAPPING_START_EVENT ? YT_MAP : YT_SEQ;
                n->line = line;
                b->stack[b->depth++] = n;
                return 0;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
                n = b->stack[--b->depth];
                b->stack[b->depth] = NULL;
                return builder_put(c, b, n);
        case YAML_ALIAS_EVENT:
                return yt_fail(c, line, NULL, "YAML aliases (*name) are not supported here");
        case YAML_DOCUMENT_START_EVENT:
                if (++b->docs > 1)
                        return yt_fail(c, line, NULL, "one YAML document expected");
                return 0;
        default:
                return 0;
        }
}

int yt_parse(YtCtx *c, const char *buf, size_t len, YtNode **ret) {
        yaml_parser_t p;
        Builder b = { 0 };
        int r = 0;
        if (!yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *) buf, len);
        for (bool done = false; !done && r == 0;) {
                yaml_event_t ev;
                if (!yaml_parser_parse(&p, &ev)) {
                        r = yt_fail(c, (unsigned) p.problem_mark.line + 1, NULL, "not valid YAML: %s",
                                 p.problem ? p.problem : "parse error");
                        break;
                }
                done = ev.type == YAML_STREAM_END_EVENT;
                r = builder_event(c, &b, &ev);
                yaml_event_delete(&ev);
        }
        while (b.depth > 0)
                yt_free(b.stack[--b.depth]);
        yaml_parser_delete(&p);
        if (r == 0 && !b.root)
                r = yt_fail(c, 1, NULL, "the file is empty");
        if (r == 0)
                *ret = TAKE_PTR(b.root);
        builder_clear(&b);
        return r;
}

/* ---- scalars -------------------------------------------------------------------- */

const YtNode *yt_get(const YtNode *m, const char *key) {
        for (size_t i = 0; m && m->kind == YT_MAP && i < m->n; i++)
                if (strcmp(m->keys[i], key) == 0)
                        return m->kids[i];
        return NULL;
}

/* Every key of m must be one of allowed (a NULL-terminated list). */
int yt_keys_check(YtCtx *c, const YtNode *m, const char *field, const char *const *allowed) {
        for (size_t i = 0; i < m->n; i++) {
                bool ok = false;
                for (size_t j = 0; allowed[j] && !ok; j++)
                        ok = strcmp(m->keys[i], allowed[j]) == 0;
                if (!ok) {
                        char f[256];
                        yt_fieldf(f, sizeof f, "%s%s%s", field, *field ? "." : "", m->keys[i]);
                        return yt_fail(c, m->kids[i]->line, f, "unknown field");
                }
        }
        return 0;
}

int yt_want(YtCtx *c, const YtNode *n, YtKind k, const char *field) {
        if (n->kind == k)
                return 0;
        return yt_fail(c, n->line, field, "expected %s", k == YT_MAP ? "a mapping" : k == YT_SEQ ? "a list" : "a value");
}

int yt_string(YtCtx *c, const YtNode *n, const char *field, size_t max, char **ret) {
        int r = yt_want(c, n, YT_SCALAR, field);
        if (r < 0)
                return r;
        if (!n->value[0])
                return yt_fail(c, n->line, field, "must not be empty");
        if (strlen(n->value) > max)
                return yt_fail(c, n->line, field, "longer than %zu bytes", max);
        for (const char *s = n->value; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return yt_fail(c, n->line, field, "contains a control character");
        char *v = strdup(n->value);
        if (!v)
                return -ENOMEM;
        free(*ret);
        *ret = v;
        return 0;
}

int yt_bool(YtCtx *c, const YtNode *n, const char *field, bool *ret) {
        int r = yt_want(c, n, YT_SCALAR, field);
        if (r < 0)
                return r;
        if (strcmp(n->value, "true") == 0)
                *ret = true;
        else if (strcmp(n->value, "false") == 0)
                *ret = false;
        else
                return yt_fail(c, n->line, field, "expected true or false, not \"%s\"", n->value);
        return 0;
}

int yt_uint(YtCtx *c, const YtNode *n, const char *field, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v;
        int r = yt_want(c, n, YT_SCALAR, field);
        if (r < 0)
                return r;
        if (quantity_parse_uint(n->value, &v) < 0 || v < min || v > max)
                return yt_fail(c, n->line, field, "expected a whole number from %llu to %llu, not \"%s\"",
                            (unsigned long long) min, (unsigned long long) max, n->value);
        *ret = v;
        return 0;
}

int yt_bytes(YtCtx *c, const YtNode *n, const char *field, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v;
        int r = yt_want(c, n, YT_SCALAR, field);
        if (r < 0)
                return r;
        if (quantity_parse_bytes(n->value, &v) < 0 || v < min || v > max)
                return yt_fail(c, n->line, field, "expected a size (like 4Mi) from %llu to %llu bytes, not \"%s\"",
                            (unsigned long long) min, (unsigned long long) max, n->value);
        *ret = v;
        return 0;
}

/* 3600000 -> "1h", 1500 -> "1500ms": the largest unit that divides it. */
static void yt_duration_text(uint64_t ms, char *buf, size_t size) {
        static const struct { const char *unit; uint64_t ms; } units[] = { { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
                if (ms >= units[i].ms && ms % units[i].ms == 0) {
                        snprintf(buf, size, "%llu%s", (unsigned long long) (ms / units[i].ms), units[i].unit);
                        return;
                }
        snprintf(buf, size, "%llums", (unsigned long long) ms);
}

int yt_duration(YtCtx *c, const YtNode *n, const char *field, uint64_t min_ms, uint64_t max_ms, uint64_t *ret) {
        int r = yt_want(c, n, YT_SCALAR, field);
        if (r < 0)
                return r;
        uint64_t ns, v = 0;
        if (quantity_parse_duration(n->value, &ns) == 0)
                v = ns / 1000000;
        if (v < min_ms || v > max_ms) {
                char lo[32], hi[32];
                yt_duration_text(min_ms, lo, sizeof lo);
                yt_duration_text(max_ms, hi, sizeof hi);
                return yt_fail(c, n->line, field, "expected a duration like 500ms, 30s or 5m (%s to %s), not \"%s\"",
                               lo, hi, n->value);
        }
        *ret = v;
        return 0;
}

