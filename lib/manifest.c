/* lib/manifest.c: fnbox manifests. libyaml's events are built into a small
 * tree (refusing aliases, tags, deep nesting, huge scalars and oversized
 * input as they arrive), the tree is walked against tables of known fields
 * into a Manifest, defaults are filled in one place, and the cross-field
 * rules are checked last. Every error carries file, line, column and field. */
#define _GNU_SOURCE
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "quantity.h"
#include "util.h"

/* ---- errors ------------------------------------------------------------ */

typedef enum { NODE_SCALAR, NODE_MAP, NODE_SEQ } NodeKind;

typedef struct Node Node;
struct Node {
        NodeKind kind;
        bool plain;             /* plain scalar: may be null, a bool or an integer */
        unsigned line, column;  /* 1-based */
        char *value;            /* scalars: NUL-terminated, no NUL inside */
        size_t len;
        Node **items;           /* mappings: key, value, key, value...; sequences: items */
        size_t n, cap;
};

typedef struct Ctx {
        const char *file;
        ManifestError *err;
        const char *buf;        /* the input, to place reader errors */
        size_t len;
        char path[128];         /* dotted path of the field being read */
} Ctx;

/* Copy s for a message: printable ASCII only, at most size - 1 bytes. */
static const char *show(const char *s, char *buf, size_t size) {
        size_t o = 0;
        for (; s && *s && o + 1 < size; s++)
                buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        if (s && *s && size > 4)
                memcpy(buf + size - 4, "...", 3), o = size - 1;
        buf[o] = 0;
        return buf;
}

__attribute__((format(printf, 4, 5)))
static int fail(Ctx *c, const Node *n, int r, const char *fmt, ...) {
        ManifestError *e = c->err;
        show(c->file, e->file, sizeof e->file);
        e->line = n ? n->line : 0;
        e->column = n ? n->column : 0;
        snprintf(e->field, sizeof e->field, "%s", c->path);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        return r;
}

static size_t path_push(Ctx *c, const char *key) {
        size_t old = strlen(c->path);
        char shown[64];
        if (old + 1 < sizeof c->path)
                snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "",
                         show(key, shown, sizeof shown));
        return old;
}

static size_t path_push_index(Ctx *c, size_t i) {
        size_t old = strlen(c->path);
        if (old + 1 < sizeof c->path)
                snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
        return old;
}

static void path_pop(Ctx *c, size_t old) {
        c->path[old] = 0;
}

/* ---- the YAML tree ----------------------------------------------------- */

static void node_free(Node *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->n; i++)
                node_free(n->items[i]);
        free(n->items);
        free(n->value);
        free(n);
}

typedef struct Builder {
        Node *root;
        Node *stack[MANIFEST_DEPTH_MAX];
        unsigned depth;
        size_t nodes;
        unsigned doc_line;
} Builder;

static void builder_clear(Builder *b) {
        node_free(b->root);
        *b = (Builder) { 0 };
}

static Node *node_new(NodeKind kind, const yaml_mark_t *mark) {
        Node *n = calloc(1, sizeof *n);
        if (n) {
                n->kind = kind;
                n->line = (unsigned) mark->line + 1;
                n->column = (unsigned) mark->column + 1;
        }
        return n;
}

/* Attach n (owned) to the open collection, or make it the root. */
static int builder_attach(Ctx *c, Builder *b, Node *n) {
        if (++b->nodes > MANIFEST_NODES_MAX) {
                int r = fail(c, n, -E2BIG, "more than %u YAML nodes in one document", MANIFEST_NODES_MAX);
                node_free(n);
                return r;
        }
        if (b->depth == 0) {
                node_free(b->root);
                b->root = n;
                return 0;
        }
        Node *parent = b->stack[b->depth - 1];
        if (parent->kind == NODE_MAP && parent->n % 2 == 0 && n->kind != NODE_SCALAR) {
                int r = fail(c, n, -EINVAL, "mapping keys must be strings, not %s",
                             n->kind == NODE_MAP ? "mappings" : "lists");
                node_free(n);
                return r;
        }
        if (parent->n == parent->cap) {
                size_t cap = parent->cap ? parent->cap * 2 : 8;
                Node **items = realloc(parent->items, cap * sizeof *items);
                if (!items) {
                        node_free(n);
                        return -ENOMEM;
                }
                parent->items = items;
                parent->cap = cap;
        }
        parent->items[parent->n++] = n;
        return 0;
}

static int builder_scalar(Ctx *c, Builder *b, const yaml_event_t *ev) {
        Node probe = { .line = (unsigned) ev->start_mark.line + 1, .column = (unsigned) ev->start_mark.column + 1 };
        size_t len = ev->data.scalar.length;
        if (ev->data.scalar.tag)
                return fail(c, &probe, -EINVAL, "YAML tags (%.40s) are not allowed in manifests",
                            (const char *) ev->data.scalar.tag);
        if (len > MANIFEST_SCALAR_MAX)
                return fail(c, &probe, -E2BIG, "a value of %zu bytes, over the limit of %u bytes",
                            len, MANIFEST_SCALAR_MAX);
        if (memchr(ev->data.scalar.value, 0, len))
                return fail(c, &probe, -EINVAL, "a value contains a NUL character");
        Node *n = node_new(NODE_SCALAR, &ev->start_mark);
        if (!n || !(n->value = malloc(len + 1))) {
                free(n);
                return -ENOMEM;
        }
        memcpy(n->value, ev->data.scalar.value, len);
        n->value[len] = 0;
        n->len = len;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return builder_attach(c, b, n);
}

static int builder_open(Ctx *c, Builder *b, const yaml_event_t *ev, NodeKind kind) {
        const yaml_char_t *tag = kind == NODE_MAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
        Node probe = { .line = (unsigned) ev->start_mark.line + 1, .column = (unsigned) ev->start_mark.column + 1 };
        if (tag)
                return fail(c, &probe, -EINVAL, "YAML tags (%.40s) are not allowed in manifests", (const char *) tag);
        if (b->depth >= MANIFEST_DEPTH_MAX)
                return fail(c, &probe, -E2BIG, "nested deeper than %d levels", MANIFEST_DEPTH_MAX);
        Node *n = node_new(kind, &ev->start_mark);
        if (!n)
                return -ENOMEM;
        int r = builder_attach(c, b, n);
        if (r < 0)
                return r;
        b->stack[b->depth++] = n;
        return 0;
}

/* Line and column of a byte offset, for errors libyaml reports by offset. */
static void offset_position(const char *buf, size_t len, size_t off, Node *ret) {
        ret->line = 1;
        ret->column = 1;
        for (size_t i = 0; i < off && i < len; i++) {
                if (buf[i] == '\n')
                        ret->line++, ret->column = 1;
                else if (((unsigned char) buf[i] & 0xc0) != 0x80)
                        ret->column++;
        }
}

static int yaml_failure(Ctx *c, const yaml_parser_t *p) {
        Node at = { .line = (unsigned) p->problem_mark.line + 1, .column = (unsigned) p->problem_mark.column + 1 };
        const char *problem = p->problem ? p->problem : "unknown error";
        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return -ENOMEM;
        case YAML_READER_ERROR:
                offset_position(c->buf, c->len, p->problem_offset, &at);
                if (strstr(problem, "UTF") || strstr(problem, "octet"))
                        return fail(c, &at, -EINVAL, "invalid UTF-8 at byte offset %zu (%s): manifests must be UTF-8 text",
                                    p->problem_offset, problem);
                return fail(c, &at, -EINVAL, "not YAML text: %s (byte 0x%02x)", problem,
                            (unsigned) p->problem_value & 0xff);
        default:
                if (p->context)
                        return fail(c, &at, -EINVAL, "invalid YAML: %s %s", p->context, problem);
                return fail(c, &at, -EINVAL, "invalid YAML: %s", problem);
        }
}

/* ---- reading values ---------------------------------------------------- */

static const char *kind_name(const Node *n) {
        return n->kind == NODE_MAP ? "a mapping" : n->kind == NODE_SEQ ? "a list" : "a string";
}

static bool node_is_null(const Node *n) {
        static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
        if (n->kind != NODE_SCALAR || !n->plain)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
                if (strcmp(n->value, nulls[i]) == 0)
                        return true;
        return false;
}

static int want(Ctx *c, const Node *n, NodeKind kind, const char *what) {
        if (n->kind == kind)
                return 0;
        return fail(c, n, -EINVAL, "expected %s, got %s", what, kind_name(n));
}

/* The value of the given key in a mapping, or NULL. */
static const Node *map_get(const Node *map, const char *key) {
        if (!map || map->kind != NODE_MAP)
                return NULL;
        for (size_t i = 0; i + 1 < map->n; i += 2)
                if (strcmp(map->items[i]->value, key) == 0)
                        return map->items[i + 1];
        return NULL;
}

static int get_string(Ctx *c, const Node *n, size_t max, char **ret) {
        int r = want(c, n, NODE_SCALAR, "a string");
        if (r < 0)
                return r;
        if (n->len > max)
                return fail(c, n, -EINVAL, "expected at most %zu bytes, got %zu", max, n->len);
        char *s = strdup(n->value);
        if (!s)
                return -ENOMEM;
        free(*ret);
        *ret = s;
        return 0;
}

static int get_uint(Ctx *c, const Node *n, uint64_t min, uint64_t max, uint64_t *ret) {
        char shown[48];
        uint64_t v;
        if (n->kind != NODE_SCALAR)
                return fail(c, n, -EINVAL, "expected an integer, got %s", kind_name(n));
        if (!n->plain)
                return fail(c, n, -EINVAL, "expected an integer, got a quoted string (write it without quotes)");
        if (quantity_parse_uint(n->value, &v) < 0 || v < min || v > max)
                return fail(c, n, -EINVAL, "expected an integer from %llu to %llu, got %s",
                            (unsigned long long) min, (unsigned long long) max, show(n->value, shown, sizeof shown));
        *ret = v;
        return 0;
}

/* A plain decimal number (digits and one '.') above 1, for the scaling rates. */
static int get_rate(Ctx *c, const Node *n, double *ret) {
        char shown[48];
        if (n->kind != NODE_SCALAR)
                return fail(c, n, -EINVAL, "expected a number above 1, got %s", kind_name(n));
        size_t digits = strspn(n->value, "0123456789"), dot = n->value[digits] == '.';
        bool ok = n->plain && digits > 0 && digits <= 12 &&
                  strspn(n->value + digits + dot, "0123456789") == strlen(n->value + digits + dot) &&
                  n->len <= 24;
        double v = ok ? strtod(n->value, NULL) : 0;
        if (!ok || !(v > 1.0) || v > MANIFEST_RATE_MAX)
                return fail(c, n, -EINVAL, "expected a number above 1 and at most %.0f (such as 2 or 1.5), got %s",
                            MANIFEST_RATE_MAX, show(n->value, shown, sizeof shown));
        *ret = v;
        return 0;
}

static int get_bool(Ctx *c, const Node *n, bool *ret) {
        static const char *const yes[] = { "true", "True", "TRUE" }, *const no[] = { "false", "False", "FALSE" };
        char shown[48];
        for (size_t i = 0; n->kind == NODE_SCALAR && n->plain && i < ELEMENTSOF(yes); i++)
                if (strcmp(n->value, yes[i]) == 0 || strcmp(n->value, no[i]) == 0) {
                        *ret = n->value[0] == 't' || n->value[0] == 'T';
                        return 0;
                }
        if (n->kind != NODE_SCALAR)
                return fail(c, n, -EINVAL, "expected true or false, got %s", kind_name(n));
        return fail(c, n, -EINVAL, "expected true or false (unquoted), got %s%s%s", n->plain ? "" : "\"",
                    show(n->value, shown, sizeof shown), n->plain ? "" : "\"");
}

/* ---- quantities -------------------------------------------------------- */

typedef enum { Q_BYTES, Q_DURATION, Q_CPU } QuantityKind;

static void format_quantity(QuantityKind k, uint64_t v, char *buf, size_t size) {
        static const struct { const char *unit; uint64_t mult; } bytes[] = {
                { "Ti", 1ULL << 40 }, { "Gi", 1ULL << 30 }, { "Mi", 1ULL << 20 }, { "Ki", 1ULL << 10 }, { "", 1 },
        }, ms[] = {
                { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
        }, cpu[] = { { "", 1000 }, { "m", 1 } };
        const __typeof__(bytes[0]) *t = k == Q_BYTES ? bytes : k == Q_DURATION ? ms : cpu;
        size_t n = k == Q_BYTES ? ELEMENTSOF(bytes) : k == Q_DURATION ? ELEMENTSOF(ms) : ELEMENTSOF(cpu);
        for (size_t i = 0; i < n; i++)
                if (v % t[i].mult == 0 || i == n - 1) {
                        snprintf(buf, size, "%llu%s", (unsigned long long) (v / t[i].mult), t[i].unit);
                        return;
                }
}

/* A size, duration or CPU amount, plain or quoted, within min..max (for
 * durations, in milliseconds; the value is stored in nanoseconds). */
static int get_quantity(Ctx *c, const Node *n, QuantityKind k, uint64_t min, uint64_t max, uint64_t *ret) {
        static const char *const expected[] = {
                [Q_BYTES] = "a byte size such as 128Mi",
                [Q_DURATION] = "a duration such as 10s or 250ms",
                [Q_CPU] = "a CPU amount such as 500m or 2",
        };
        char shown[48], lo[24], hi[24];
        uint64_t v;
        if (n->kind != NODE_SCALAR)
                return fail(c, n, -EINVAL, "expected %s, got %s", expected[k], kind_name(n));
        int r = k == Q_BYTES ? quantity_parse_bytes(n->value, &v) :
                k == Q_DURATION ? quantity_parse_duration(n->value, &v) : quantity_parse_cpu(n->value, &v);
        if (r < 0)
                return fail(c, n, -EINVAL, "expected %s, got \"%s\"", expected[k], show(n->value, shown, sizeof shown));
        if (k == Q_DURATION)
                v /= 1000000;
        if (v < min || v > max) {
                format_quantity(k, min, lo, sizeof lo);
                format_quantity(k, max, hi, sizeof hi);
                return fail(c, n, -EINVAL, "%s is out of range: expected %s to %s",
                            show(n->value, shown, sizeof shown), lo, hi);
        }
        *ret = k == Q_DURATION ? v * 1000000 : v;
        return 0;
}

/* ---- names and paths --------------------------------------------------- */

bool manifest_name_valid(const char *s) {
        size_t len = s ? strlen(s) : 0;
        if (len == 0 || len > MANIFEST_NAME_MAX || s[0] == '-' || s[len - 1] == '-')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

static bool env_name_valid(const char *s) {
        if (!*s || strlen(s) > 128 || (*s >= '0' && *s <= '9'))
                return false;
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

/* A label name or value: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, 63 at most. */
static bool label_part_valid(const char *s, size_t len, bool empty_ok) {
        if (len == 0)
                return empty_ok;
        if (len > 63)
                return false;
        for (size_t i = 0; i < len; i++) {
                bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9');
                if (!alnum && ((i == 0 || i == len - 1) || !strchr("-_.", s[i])))
                        return false;
        }
        return true;
}

/* A label key: an optional DNS subdomain prefix and '/', then a name. */
static bool label_key_valid(const char *s) {
        const char *slash = strchr(s, '/');
        if (!slash)
                return label_part_valid(s, strlen(s), false);
        size_t plen = (size_t) (slash - s);
        if (plen == 0 || plen > 253 || strchr(slash + 1, '/'))
                return false;
        for (size_t i = 0; i < plen; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
                        return false;
        return label_part_valid(slash + 1, strlen(slash + 1), false);
}

/* NULL when s is a usable relative path inside the manifest's folder,
 * else what is wrong with it. */
static const char *relpath_problem(const char *s) {
        if (!*s)
                return "expected a path relative to the manifest's folder, got an empty string";
        if (s[0] == '/')
                return "expected a path relative to the manifest's folder, not an absolute path";
        for (const char *p = s; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return "must stay inside the manifest's folder: \"..\" is not allowed";
                p += n;
                if (*p == '/')
                        p++;
        }
        return NULL;
}

/* ---- field tables ------------------------------------------------------ */

typedef enum {
        F_STRING,       /* char *, any scalar of at most max bytes */
        F_LABEL,        /* char *, DNS-1123 label */
        F_PATH,         /* char *, relative path inside the folder, at most max bytes */
        F_ENUM,         /* int, index into names */
        F_BYTES,        /* uint64_t within min..max */
        F_DURATION,     /* uint64_t nanoseconds, min..max in milliseconds */
        F_CPU,          /* uint64_t millicores within min..max */
        F_UINT64,       /* uint64_t integer within min..max */
        F_UINT32,       /* uint32_t integer within min..max */
        F_BOOL,         /* bool */
        F_RATE,         /* double, a plain number above 1, at most MANIFEST_RATE_MAX */
        F_CUSTOM,       /* parse(c, node, obj) */
} FieldType;

typedef struct Field {
        const char *key;
        FieldType type;
        size_t offset;
        uint64_t min, max;
        const char *const *names;       /* F_ENUM, NULL-terminated */
        int (*parse)(Ctx *c, const Node *n, void *obj);
        bool required;
} Field;

#define FIELD_MAX 16

/* The tables, defined below; declared here for unknown_hint(). */
static const Field limit_fields[7], scale_fields[10], metadata_fields[2], spec_fields[13], readiness_fields[2];

/* Where key belongs when it was written at the wrong level ("spec.limits"
 * for a timeout under spec), or NULL. */
static const char *unknown_hint(const char *key) {
        static const struct { const char *where; const Field *fields; size_t n; } tables[] = {
                { "metadata", metadata_fields, ELEMENTSOF(metadata_fields) },
                { "spec", spec_fields, ELEMENTSOF(spec_fields) },
                { "spec.limits", limit_fields, ELEMENTSOF(limit_fields) },
                { "spec.scale", scale_fields, ELEMENTSOF(scale_fields) },
                { "spec.readiness", readiness_fields, ELEMENTSOF(readiness_fields) },
        };
        for (size_t t = 0; t < ELEMENTSOF(tables); t++)
                for (size_t f = 0; f < tables[t].n; f++)
                        if (strcmp(tables[t].fields[f].key, key) == 0)
                                return tables[t].where;
        return NULL;
}

static const char *const runtime_names[] = { "exec", "sh", "python3", "node", NULL };
static const char *const mode_names[] = { "fresh", "service", NULL };

const char *manifest_runtime_name(ManifestRuntime r) {
        return r >= 0 && r < (int) ELEMENTSOF(runtime_names) - 1 ? runtime_names[r] : NULL;
}

const char *manifest_mode_name(ManifestMode m) {
        return m >= 0 && m < (int) ELEMENTSOF(mode_names) - 1 ? mode_names[m] : NULL;
}

/* "a, b, c" from n strings stride bytes apart (a names array, or the key
 * member of a Field table). */
static void join_names(const char *const *names, size_t n, size_t stride, char *buf, size_t size) {
        size_t o = 0;
        buf[0] = 0;
        for (size_t i = 0; i < n && o + 1 < size; i++) {
                const char *s = *(const char *const *) ((const char *) names + i * stride);
                o += (size_t) snprintf(buf + o, size - o, "%s%s", i ? ", " : "", s);
        }
}

static int get_enum(Ctx *c, const Node *n, const char *const *names, int *ret) {
        char list[128], shown[48];
        size_t count = 0;
        while (names[count])
                count++;
        if (n->kind == NODE_SCALAR)
                for (size_t i = 0; i < count; i++)
                        if (strcmp(n->value, names[i]) == 0) {
                                *ret = (int) i;
                                return 0;
                        }
        join_names(names, count, sizeof(char *), list, sizeof list);
        if (n->kind != NODE_SCALAR)
                return fail(c, n, -EINVAL, "expected one of %s, got %s", list, kind_name(n));
        return fail(c, n, -EINVAL, "expected one of %s, got \"%s\"", list, show(n->value, shown, sizeof shown));
}

static int get_text(Ctx *c, const Node *n, const Field *f, char **dst) {
        char shown[48];
        int r = get_string(c, n, f->type == F_LABEL ? MANIFEST_SCALAR_MAX : f->max, dst);
        if (r < 0)
                return r;
        if (f->type == F_LABEL && !manifest_name_valid(*dst))
                return fail(c, n, -EINVAL, "expected a DNS-1123 label (lowercase letters, digits and '-', "
                            "starting and ending with a letter or digit, at most 63), got \"%s\"",
                            show(*dst, shown, sizeof shown));
        const char *why = f->type == F_PATH ? relpath_problem(*dst) : NULL;
        return why ? fail(c, n, -EINVAL, "%s", why) : 0;
}

static int field_parse(Ctx *c, const Field *f, const Node *n, void *obj) {
        void *dst = (char *) obj + f->offset;
        uint64_t v;
        int r;
        switch (f->type) {
        case F_STRING: case F_LABEL: case F_PATH:
                return get_text(c, n, f, dst);
        case F_ENUM:
                return get_enum(c, n, f->names, dst);
        case F_BYTES:
                return get_quantity(c, n, Q_BYTES, f->min, f->max, dst);
        case F_DURATION:
                return get_quantity(c, n, Q_DURATION, f->min, f->max, dst);
        case F_CPU:
                return get_quantity(c, n, Q_CPU, f->min, f->max, dst);
        case F_UINT64:
                return get_uint(c, n, f->min, f->max, dst);
        case F_UINT32:
                r = get_uint(c, n, f->min, f->max, &v);
                if (r >= 0)
                        *(uint32_t *) dst = (uint32_t) v;
                return r;
        case F_BOOL:
                return get_bool(c, n, dst);
        case F_RATE:
                return get_rate(c, n, dst);
        case F_CUSTOM:
                return f->parse(c, n, obj);
        }
        return -EINVAL;
}

/* Read the mapping n into obj by the table fields: unknown and duplicate
 * keys are errors, a null value counts as absent, required fields must be
 * there. */
static int walk_struct(Ctx *c, const Node *n, const Field *fields, size_t n_fields, void *obj) {
        const Node *seen[FIELD_MAX] = { 0 };
        bool present[FIELD_MAX] = { 0 };
        if (n_fields > FIELD_MAX)
                return -EINVAL;
        int r = want(c, n, NODE_MAP, "a mapping");
        for (size_t i = 0; r >= 0 && i + 1 < n->n; i += 2) {
                const Node *k = n->items[i], *v = n->items[i + 1];
                size_t f = 0;
                while (f < n_fields && strcmp(fields[f].key, k->value) != 0)
                        f++;
                size_t mark = path_push(c, k->value);
                if (f == n_fields) {
                        char list[160], shown[48];
                        const char *hint = unknown_hint(k->value);
                        join_names(&fields[0].key, n_fields, sizeof(Field), list, sizeof list);
                        if (hint)
                                return fail(c, k, -EINVAL, "unknown field here; expected one of: %s (did you mean %s.%s?)",
                                            list, hint, show(k->value, shown, sizeof shown));
                        return fail(c, k, -EINVAL, "unknown field; expected one of: %s", list);
                }
                if (seen[f])
                        return fail(c, k, -EINVAL, "duplicate field (first at line %u)", seen[f]->line);
                seen[f] = k;
                present[f] = !node_is_null(v);
                if (present[f] && (r = field_parse(c, &fields[f], v, obj)) < 0)
                        return r;
                path_pop(c, mark);
        }
        for (size_t f = 0; r >= 0 && f < n_fields; f++)
                if (fields[f].required && !present[f]) {
                        path_push(c, fields[f].key);
                        return fail(c, seen[f] ? seen[f] : n, -EINVAL, "required field is missing%s",
                                    seen[f] ? " (it is null)" : "");
                }
        return r;
}

#define WALK(c, n, table, obj) walk_struct(c, n, table, ELEMENTSOF(table), obj)

/* ---- string maps: env and nodeSelector --------------------------------- */

static int check_pair(Ctx *c, const Node *k, const Node *v, bool env) {
        char shown[48];
        if (env && !env_name_valid(k->value))
                return fail(c, k, -EINVAL, "expected an environment variable name matching [A-Za-z_][A-Za-z0-9_]* "
                            "(at most 128), got \"%s\"", show(k->value, shown, sizeof shown));
        if (!env && !label_key_valid(k->value))
                return fail(c, k, -EINVAL, "expected a label key such as accelerator or fnbox.dev/gpu, got \"%s\"",
                            show(k->value, shown, sizeof shown));
        if (v->kind != NODE_SCALAR || node_is_null(v))
                return fail(c, v, -EINVAL, "expected a string value%s, got %s", env ? " (write \"\" for empty)" : "",
                            v->kind == NODE_SCALAR ? "null" : kind_name(v));
        if (!env && !label_part_valid(v->value, v->len, true))
                return fail(c, v, -EINVAL, "expected a label value ([A-Za-z0-9._-], at most 63), got \"%s\"",
                            show(v->value, shown, sizeof shown));
        return 0;
}

static int parse_pairs(Ctx *c, const Node *n, bool env, ManifestPair **ret, size_t *ret_n) {
        size_t max = env ? MANIFEST_ENV_MAX : MANIFEST_LABELS_MAX, count = n->n / 2;
        int r = want(c, n, NODE_MAP, env ? "a mapping of NAME: value" : "a mapping of label: value");
        if (r < 0)
                return r;
        if (count > max)
                return fail(c, n, -EINVAL, "%zu entries, more than the %zu allowed", count, max);
        ManifestPair *p = calloc(count ? count : 1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *ret = p;
        for (size_t i = 0; i < count; i++) {
                const Node *k = n->items[2 * i], *v = n->items[2 * i + 1];
                size_t mark = path_push(c, k->value);
                if ((r = check_pair(c, k, v, env)) < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(p[j].key, k->value) == 0)
                                return fail(c, k, -EINVAL, "duplicate key (first at line %u)", n->items[2 * j]->line);
                if (!(p[i].key = strdup(k->value)) || !(p[i].value = strdup(v->value))) {
                        free(p[i].key);
                        return -ENOMEM;
                }
                (*ret_n)++;
                path_pop(c, mark);
        }
        return 0;
}

/* ---- limits, scale ----------------------------------------------------- */

static const Field limit_fields[7] = {
        { "memory", F_BYTES, offsetof(ManifestLimits, memory_bytes), .min = MANIFEST_MEMORY_MIN, .max = MANIFEST_MEMORY_MAX },
        { "timeout", F_DURATION, offsetof(ManifestLimits, timeout_ns), .min = MANIFEST_TIMEOUT_MIN_MS, .max = MANIFEST_TIMEOUT_MAX_MS },
        { "cpu", F_CPU, offsetof(ManifestLimits, cpu_millis), .min = MANIFEST_CPU_MIN, .max = MANIFEST_CPU_MAX },
        { "pids", F_UINT64, offsetof(ManifestLimits, pids), .min = MANIFEST_PIDS_MIN, .max = MANIFEST_PIDS_MAX },
        { "tmp", F_BYTES, offsetof(ManifestLimits, tmp_bytes), .min = MANIFEST_TMP_MIN, .max = MANIFEST_TMP_MAX },
        { "output", F_BYTES, offsetof(ManifestLimits, output_bytes), .min = MANIFEST_OUTPUT_MIN, .max = MANIFEST_OUTPUT_MAX },
        { "gpus", F_UINT64, offsetof(ManifestLimits, gpus), .max = MANIFEST_GPUS_MAX },
};

static const Field scale_fields[10] = {
        { "min", F_UINT32, offsetof(ManifestScale, min), .max = MANIFEST_SCALE_MAX },
        { "max", F_UINT32, offsetof(ManifestScale, max), .min = 1, .max = MANIFEST_SCALE_MAX },
        { "initial", F_UINT32, offsetof(ManifestScale, initial), .max = MANIFEST_SCALE_MAX },
        { "target", F_UINT32, offsetof(ManifestScale, target), .min = 1, .max = MANIFEST_SCALE_MAX },
        { "scaleToZeroAfter", F_DURATION, offsetof(ManifestScale, scale_to_zero_after_ns),
          .min = MANIFEST_IDLE_MIN_MS, .max = MANIFEST_IDLE_MAX_MS },
        { "retention", F_DURATION, offsetof(ManifestScale, retention_ns), .min = 0, .max = MANIFEST_RETENTION_MAX_MS },
        { "stableWindow", F_DURATION, offsetof(ManifestScale, stable_window_ns),
          .min = MANIFEST_STABLE_MIN_MS, .max = MANIFEST_STABLE_MAX_MS },
        { "panicWindow", F_DURATION, offsetof(ManifestScale, panic_window_ns),
          .min = MANIFEST_PANIC_MIN_MS, .max = MANIFEST_STABLE_MAX_MS },
        { "maxScaleUpRate", F_RATE, offsetof(ManifestScale, max_scale_up_rate), .min = 0 },
        { "maxScaleDownRate", F_RATE, offsetof(ManifestScale, max_scale_down_rate), .min = 0 },
};

static const Field readiness_fields[2] = {
        { "path", F_STRING, offsetof(ManifestReadiness, path), .max = MANIFEST_PROBE_PATH_MAX },
        { "period", F_DURATION, offsetof(ManifestReadiness, period_ns),
          .min = MANIFEST_PROBE_MIN_MS, .max = MANIFEST_PROBE_MAX_MS },
};

/* An absolute HTTP path of printable ASCII without spaces. */
static int f_readiness(Ctx *c, const Node *n, void *obj) {
        ManifestReadiness *rd = &((Manifest *) obj)->readiness;
        int r = WALK(c, n, readiness_fields, rd);
        if (r < 0 || !rd->path)
                return r;
        bool ok = rd->path[0] == '/';
        for (const char *p = rd->path; ok && *p; p++)
                ok = *p > 0x20 && *p < 0x7f;
        if (ok)
                return 0;
        size_t mark = path_push(c, "path");
        r = fail(c, map_get(n, "path"), -EINVAL, "expected an absolute path such as /healthz (printable, no spaces)");
        path_pop(c, mark);
        return r;
}

static int f_spec_limits(Ctx *c, const Node *n, void *obj) {
        return WALK(c, n, limit_fields, &((Manifest *) obj)->limits);
}

static int f_variant_limits(Ctx *c, const Node *n, void *obj) {
        return WALK(c, n, limit_fields, &((ManifestVariant *) obj)->limits);
}

static int f_scale(Ctx *c, const Node *n, void *obj) {
        return WALK(c, n, scale_fields, &((Manifest *) obj)->scale);
}

static int f_spec_env(Ctx *c, const Node *n, void *obj) {
        Manifest *m = obj;
        return parse_pairs(c, n, true, &m->env, &m->n_env);
}

static int f_spec_selector(Ctx *c, const Node *n, void *obj) {
        Manifest *m = obj;
        return parse_pairs(c, n, false, &m->node_selector, &m->n_node_selector);
}

static int f_variant_env(Ctx *c, const Node *n, void *obj) {
        ManifestVariant *v = obj;
        return parse_pairs(c, n, true, &v->env, &v->n_env);
}

static int f_variant_selector(Ctx *c, const Node *n, void *obj) {
        ManifestVariant *v = obj;
        return parse_pairs(c, n, false, &v->node_selector, &v->n_node_selector);
}

/* ---- variants and traffic ---------------------------------------------- */

static const Field variant_fields[] = {
        { "name", F_LABEL, offsetof(ManifestVariant, name), .required = true },
        { "nodeSelector", F_CUSTOM, .parse = f_variant_selector },
        { "code", F_PATH, offsetof(ManifestVariant, code), .max = MANIFEST_CODE_MAX },
        { "entrypoint", F_PATH, offsetof(ManifestVariant, entrypoint), .max = MANIFEST_ENTRY_MAX },
        { "env", F_CUSTOM, .parse = f_variant_env },
        { "limits", F_CUSTOM, .parse = f_variant_limits },
};

static const Field traffic_fields[] = {
        { "revision", F_STRING, offsetof(ManifestTraffic, revision), .max = 80 },
        { "latestRevision", F_BOOL, offsetof(ManifestTraffic, latest), .required = false },
        { "percent", F_UINT32, offsetof(ManifestTraffic, percent), .max = 100, .required = true },
        { "tag", F_LABEL, offsetof(ManifestTraffic, tag), .required = false },
};

/* A list of up to max mappings, each read by table into an array of
 * elem_size structures that *ret owns from the start (so a failure part
 * way frees cleanly). */
static int walk_list(Ctx *c, const Node *n, const Field *fields, size_t n_fields, size_t max,
                     size_t elem_size, void **ret, size_t *ret_n) {
        int r = want(c, n, NODE_SEQ, "a list");
        if (r < 0)
                return r;
        if (n->n == 0 || n->n > max)
                return fail(c, n, -EINVAL, "expected 1 to %zu entries, got %zu", max, n->n);
        char *items = calloc(n->n, elem_size);
        if (!items)
                return -ENOMEM;
        *ret = items;
        *ret_n = n->n;
        for (size_t i = 0; i < n->n; i++) {
                size_t mark = path_push_index(c, i);
                if ((r = walk_struct(c, n->items[i], fields, n_fields, items + i * elem_size)) < 0)
                        return r;
                path_pop(c, mark);
        }
        return 0;
}

static int f_variants(Ctx *c, const Node *n, void *obj) {
        Manifest *m = obj;
        int r = walk_list(c, n, variant_fields, ELEMENTSOF(variant_fields), MANIFEST_VARIANTS_MAX,
                          sizeof(ManifestVariant), (void **) &m->variants, &m->n_variants);
        for (size_t i = 0; r >= 0 && i < m->n_variants; i++)
                for (size_t j = 0; j < i; j++)
                        if (strcmp(m->variants[i].name, m->variants[j].name) == 0) {
                                size_t mark = path_push_index(c, i);
                                path_push(c, "name");
                                r = fail(c, map_get(n->items[i], "name"), -EINVAL,
                                         "duplicate variant name (also variants[%zu])", j);
                                path_pop(c, mark);
                                break;
                        }
        return r;
}

static int traffic_entry_check(Ctx *c, const Node *n, const ManifestTraffic *t, size_t i,
                               const ManifestTraffic *all) {
        size_t mark = path_push_index(c, i);
        int r = 0;
        if (t->latest == !!t->revision)
                r = fail(c, n, -EINVAL, t->latest ? "give either revision or latestRevision: true, not both" :
                         "expected revision: NAME-00001 or latestRevision: true");
        if (r >= 0 && t->tag && strncmp(t->tag, MANIFEST_RESERVED_TAG_PREFIX, strlen(MANIFEST_RESERVED_TAG_PREFIX)) == 0) {
                path_push(c, "tag");
                r = fail(c, map_get(n, "tag"), -EINVAL, "tags starting with " MANIFEST_RESERVED_TAG_PREFIX
                         " are fnbox's own (replays)");
        }
        for (size_t j = 0; r >= 0 && t->tag && j < i; j++)
                if (all[j].tag && strcmp(all[j].tag, t->tag) == 0) {
                        path_push(c, "tag");
                        r = fail(c, map_get(n, "tag"), -EINVAL, "duplicate tag (also traffic[%zu])", j);
                }
        path_pop(c, mark);
        return r;
}

static int f_traffic(Ctx *c, const Node *n, void *obj) {
        Manifest *m = obj;
        int r = walk_list(c, n, traffic_fields, ELEMENTSOF(traffic_fields), MANIFEST_TRAFFIC_MAX,
                          sizeof(ManifestTraffic), (void **) &m->traffic, &m->n_traffic);
        unsigned sum = 0;
        for (size_t i = 0; r >= 0 && i < m->n_traffic; i++) {
                r = traffic_entry_check(c, n->items[i], &m->traffic[i], i, m->traffic);
                sum += m->traffic[i].percent;
        }
        if (r >= 0 && sum != 100)
                r = fail(c, n, -EINVAL, "percentages add up to %u, expected 100", sum);
        return r;
}

/* ---- metadata, spec, the document -------------------------------------- */

static int f_api_version(Ctx *c, const Node *n, void *obj) {
        (void) obj;
        char shown[48];
        if (n->kind != NODE_SCALAR || strcmp(n->value, "fnbox.dev/v1") != 0)
                return fail(c, n, -EINVAL, "expected fnbox.dev/v1, got %s", n->kind == NODE_SCALAR ?
                            show(n->value, shown, sizeof shown) : kind_name(n));
        return 0;
}

static int f_kind(Ctx *c, const Node *n, void *obj) {
        (void) obj;
        char shown[48];
        if (n->kind != NODE_SCALAR || strcmp(n->value, "Function") != 0)
                return fail(c, n, -EINVAL, "expected Function, got %s", n->kind == NODE_SCALAR ?
                            show(n->value, shown, sizeof shown) : kind_name(n));
        return 0;
}

static const Field metadata_fields[2] = {
        { "name", F_LABEL, offsetof(Manifest, name), .required = true },
        { "namespace", F_LABEL, offsetof(Manifest, namespace_), .required = false },
};

static const Field spec_fields[13] = {
        { "runtime", F_ENUM, offsetof(Manifest, runtime), .names = runtime_names, .required = true },
        { "code", F_PATH, offsetof(Manifest, code), .max = MANIFEST_CODE_MAX, .required = true },
        { "entrypoint", F_PATH, offsetof(Manifest, entrypoint), .max = MANIFEST_ENTRY_MAX },
        { "mode", F_ENUM, offsetof(Manifest, mode), .names = mode_names },
        { "env", F_CUSTOM, .parse = f_spec_env },
        { "limits", F_CUSTOM, .parse = f_spec_limits },
        { "concurrency", F_UINT32, offsetof(Manifest, concurrency), .min = 1, .max = MANIFEST_CONCURRENCY_MAX },
        { "startupTimeout", F_DURATION, offsetof(Manifest, startup_timeout_ns),
          .min = MANIFEST_STARTUP_MIN_MS, .max = MANIFEST_STARTUP_MAX_MS },
        { "readiness", F_CUSTOM, .parse = f_readiness },
        { "scale", F_CUSTOM, .parse = f_scale },
        { "nodeSelector", F_CUSTOM, .parse = f_spec_selector },
        { "variants", F_CUSTOM, .parse = f_variants },
        { "traffic", F_CUSTOM, .parse = f_traffic },
};

static int f_metadata(Ctx *c, const Node *n, void *obj) {
        return WALK(c, n, metadata_fields, obj);
}

static int f_spec(Ctx *c, const Node *n, void *obj) {
        return WALK(c, n, spec_fields, obj);
}

static const Field root_fields[] = {
        { "apiVersion", F_CUSTOM, .parse = f_api_version, .required = true },
        { "kind", F_CUSTOM, .parse = f_kind, .required = true },
        { "metadata", F_CUSTOM, .parse = f_metadata, .required = true },
        { "spec", F_CUSTOM, .parse = f_spec, .required = true },
};

/* The defaults, all here: the jail's limits, Knative-like scaling, the
 * "default" namespace, fresh mode (enum value 0). Scale fields arrive as
 * UINT32_MAX when the manifest left them out. */
_Static_assert(sizeof(ManifestLimits) == 7 * sizeof(uint64_t), "ManifestLimits is seven uint64_t");

static int manifest_defaults(Manifest *m) {
        static const ManifestLimits limits = {
                .memory_bytes = 128ULL << 20, .timeout_ns = 10ULL * 1000000000ULL, .cpu_millis = 1000,
                .pids = 64, .tmp_bytes = 16ULL << 20, .output_bytes = 1ULL << 20, .gpus = 0,
        };
        ManifestScale *s = &m->scale;
        m->namespace_set = m->namespace_ != NULL;
        if (!m->namespace_ && !(m->namespace_ = strdup("default")))
                return -ENOMEM;
        for (size_t i = 0; i < sizeof limits / sizeof(uint64_t); i++) {
                uint64_t *v = (uint64_t *) &m->limits + i;
                if (*v == 0)
                        *v = ((const uint64_t *) &limits)[i];
        }
        if (s->min == UINT32_MAX)
                s->min = 0;
        if (s->max == UINT32_MAX)
                s->max = 20;
        if (s->initial == UINT32_MAX)
                s->initial = s->min > 1 ? s->min : 1;
        if (s->target == UINT32_MAX)
                s->target = 10;
        if (s->scale_to_zero_after_ns == 0)
                s->scale_to_zero_after_ns = 30ULL * 1000000000ULL;
        if (s->stable_window_ns == 0)
                s->stable_window_ns = MANIFEST_STABLE_DEFAULT_MS * 1000000ULL;
        if (s->panic_window_ns == 0)
                s->panic_window_ns = MANIFEST_PANIC_DEFAULT_MS * 1000000ULL;
        if (s->max_scale_up_rate == 0)
                s->max_scale_up_rate = MANIFEST_UP_RATE_DEFAULT;
        if (s->max_scale_down_rate == 0)
                s->max_scale_down_rate = MANIFEST_DOWN_RATE_DEFAULT;
        if (m->concurrency == 0)
                m->concurrency = s->target;
        if (m->startup_timeout_ns == 0)
                m->startup_timeout_ns = MANIFEST_STARTUP_DEFAULT_MS * 1000000ULL;
        if (!m->readiness.path && !(m->readiness.path = strdup(MANIFEST_PROBE_PATH_DEFAULT)))
                return -ENOMEM;
        if (m->readiness.period_ns == 0)
                m->readiness.period_ns = MANIFEST_PROBE_DEFAULT_MS * 1000000ULL;
        return 0;
}

static const Node *node_at(const Node *root, const char *a, const char *b) {
        const Node *n = map_get(map_get(root, a), b);
        return n ? n : map_get(root, a);
}

static int check_scale(Ctx *c, const Node *root, const ManifestScale *s) {
        const Node *scale = node_at(root, "spec", "scale");
        strcpy(c->path, "spec.scale.min");
        if (s->min > s->max)
                return fail(c, map_get(scale, "min") ? map_get(scale, "min") : scale, -EINVAL,
                            "min %u is above max %u", s->min, s->max);
        strcpy(c->path, "spec.scale.initial");
        if (s->initial < s->min || s->initial > s->max)
                return fail(c, map_get(scale, "initial") ? map_get(scale, "initial") : scale, -EINVAL,
                            "initial %u is outside min..max (%u..%u)", s->initial, s->min, s->max);
        strcpy(c->path, "spec.scale.panicWindow");
        if (s->panic_window_ns > s->stable_window_ns)
                return fail(c, map_get(scale, "panicWindow") ? map_get(scale, "panicWindow") : scale, -EINVAL,
                            "panicWindow (%llums) is longer than stableWindow (%llums)",
                            (unsigned long long) (s->panic_window_ns / 1000000),
                            (unsigned long long) (s->stable_window_ns / 1000000));
        c->path[0] = 0;
        return 0;
}

/* A revision named in traffic must be one of this function's: NAME-NNNNN. */
static int check_traffic_revisions(Ctx *c, const Node *root, const Manifest *m) {
        const Node *list = node_at(root, "spec", "traffic");
        size_t nlen = strlen(m->name);
        for (size_t i = 0; i < m->n_traffic; i++) {
                const char *rev = m->traffic[i].revision, *d;
                if (!rev)
                        continue;
                size_t digits = 0;
                if (strncmp(rev, m->name, nlen) == 0 && rev[nlen] == '-')
                        for (d = rev + nlen + 1; *d >= '0' && *d <= '9'; d++)
                                digits++;
                if (digits >= 5 && digits <= 10 && rev[nlen + 1 + digits] == 0)
                        continue;
                snprintf(c->path, sizeof c->path, "spec.traffic[%zu].revision", i);
                return fail(c, map_get(list->items[i], "revision"), -EINVAL,
                            "expected a revision of this function, such as %s-00001", m->name);
        }
        return 0;
}

static int check_document(Ctx *c, const Node *root, const Manifest *m) {
        if (m->n_node_selector && m->n_variants) {
                strcpy(c->path, "spec.variants");
                return fail(c, node_at(root, "spec", "variants"), -EINVAL,
                            "give either spec.nodeSelector or spec.variants (each with its own nodeSelector), not both");
        }
        int r = check_scale(c, root, &m->scale);
        return r < 0 ? r : check_traffic_revisions(c, root, m);
}

/* ---- documents and streams --------------------------------------------- */

static void pairs_free(ManifestPair *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].key);
                free(p[i].value);
        }
        free(p);
}

static void manifest_clear(Manifest *m) {
        free(m->source);
        free(m->name);
        free(m->namespace_);
        free(m->code);
        free(m->entrypoint);
        free(m->readiness.path);
        pairs_free(m->env, m->n_env);
        pairs_free(m->node_selector, m->n_node_selector);
        for (size_t i = 0; i < m->n_variants; i++) {
                ManifestVariant *v = &m->variants[i];
                free(v->name);
                free(v->code);
                free(v->entrypoint);
                pairs_free(v->node_selector, v->n_node_selector);
                pairs_free(v->env, v->n_env);
        }
        free(m->variants);
        for (size_t i = 0; i < m->n_traffic; i++) {
                free(m->traffic[i].revision);
                free(m->traffic[i].tag);
        }
        free(m->traffic);
}

void manifest_list_free(ManifestList *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                manifest_clear(&l->items[i]);
        free(l->items);
        free(l);
}

void manifest_list_freep(ManifestList **l) {
        manifest_list_free(*l);
}

static Manifest *list_add(ManifestList *l) {
        Manifest *items = realloc(l->items, (l->n + 1) * sizeof *items);
        if (!items)
                return NULL;
        l->items = items;
        items[l->n] = (Manifest) { 0 };
        return &items[l->n++];
}

/* One document's tree into a new manifest in list; empty documents (a
 * stray "---") are skipped. */
static int document_finish(Ctx *c, Builder *b, ManifestList *list) {
        const Node *root = b->root;
        if (!root || node_is_null(root))
                return 0;
        if (root->kind != NODE_MAP)
                return fail(c, root, -EINVAL, "expected a mapping (a Function manifest), got %s", kind_name(root));
        Manifest *m = list_add(list);
        if (!m || !(m->source = strdup(c->file)))
                return -ENOMEM;
        m->line = b->doc_line;
        m->scale = (ManifestScale) { .min = UINT32_MAX, .max = UINT32_MAX, .initial = UINT32_MAX, .target = UINT32_MAX };
        c->path[0] = 0;
        int r = WALK(c, root, root_fields, m);
        if (r >= 0)
                r = manifest_defaults(m);
        return r < 0 ? r : check_document(c, root, m);
}

static int on_event(Ctx *c, Builder *b, const yaml_event_t *ev, ManifestList *list, unsigned *docs) {
        Node at = { .line = (unsigned) ev->start_mark.line + 1, .column = (unsigned) ev->start_mark.column + 1 };
        int r;
        switch (ev->type) {
        case YAML_DOCUMENT_START_EVENT:
                if (++*docs > MANIFEST_DOCS_MAX)
                        return fail(c, &at, -E2BIG, "more than %d documents", MANIFEST_DOCS_MAX);
                builder_clear(b);
                b->doc_line = at.line;
                return 0;
        case YAML_DOCUMENT_END_EVENT:
                r = document_finish(c, b, list);
                builder_clear(b);
                return r;
        case YAML_ALIAS_EVENT:
                return fail(c, &at, -EINVAL, "YAML aliases (*%.40s) are not allowed in manifests",
                            (const char *) ev->data.alias.anchor);
        case YAML_SCALAR_EVENT:
                return builder_scalar(c, b, ev);
        case YAML_SEQUENCE_START_EVENT:
                return builder_open(c, b, ev, NODE_SEQ);
        case YAML_MAPPING_START_EVENT:
                return builder_open(c, b, ev, NODE_MAP);
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                if (b->depth > 0)
                        b->depth--;
                return 0;
        default:
                return 0;
        }
}

static int parse_stream(Ctx *c, yaml_parser_t *p, ManifestList *list) {
        Builder b = { 0 };
        unsigned docs = 0;
        int r = 0;
        for (bool done = false; !done && r >= 0;) {
                yaml_event_t ev;
                if (!yaml_parser_parse(p, &ev)) {
                        r = yaml_failure(c, p);
                        break;
                }
                done = ev.type == YAML_STREAM_END_EVENT;
                r = on_event(c, &b, &ev, list, &docs);
                yaml_event_delete(&ev);
        }
        builder_clear(&b);
        return r;
}

/* Two documents for one namespace/name would deploy over each other. A
 * namespace left out is decided later (-n, ?namespace=), so only documents
 * that both give one, or both leave it out, can be compared. */
static int check_unique(Ctx *c, const ManifestList *l) {
        for (size_t i = 1; i < l->n; i++)
                for (size_t j = 0; j < i; j++) {
                        const Manifest *a = &l->items[j], *b = &l->items[i];
                        if (strcmp(a->name, b->name) != 0 || a->namespace_set != b->namespace_set ||
                            strcmp(a->namespace_, b->namespace_) != 0)
                                continue;
                        Node at = { .line = b->line, .column = 1 };
                        char shown[64];
                        c->file = b->source;
                        strcpy(c->path, "metadata.name");
                        return fail(c, &at, -EINVAL, "function %s/%s is defined twice (also at %s:%u)",
                                    b->namespace_, b->name, show(a->source, shown, sizeof shown), a->line);
                }
        return 0;
}

int manifest_parse(const char *buf, size_t len, const char *filename, ManifestList **ret, ManifestError *err) {
        ManifestError dummy;
        Ctx c = { .file = filename ? filename : "<manifest>", .err = err ? err : &dummy, .buf = buf, .len = len };
        *c.err = (ManifestError) { 0 };
        if (len > MANIFEST_DOC_MAX)
                return fail(&c, NULL, -E2BIG, "%zu bytes, over the limit of %u bytes", len, MANIFEST_DOC_MAX);
        _cleanup_manifest_list_ ManifestList *list = calloc(1, sizeof *list);
        yaml_parser_t p;
        if (!list || !yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *) (buf ? buf : ""), buf ? len : 0);
        yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
        int r = parse_stream(&c, &p, list);
        yaml_parser_delete(&p);
        if (r < 0)
                return r;
        if (list->n == 0)
                return fail(&c, NULL, -EINVAL, "no manifest in the file (expected apiVersion: fnbox.dev/v1, kind: Function)");
        if ((r = check_unique(&c, list)) < 0)
                return r;
        *ret = TAKE_PTR(list);
        return 0;
}

/* ---- files and folders ------------------------------------------------- */

static int load_fd(int fd, const char *name, ManifestList **ret, ManifestError *err) {
        _cleanup_free_ char *buf = malloc(MANIFEST_DOC_MAX + 1);
        size_t got = 0;
        if (!buf)
                return -ENOMEM;
        while (got <= MANIFEST_DOC_MAX) {
                ssize_t n = read(fd, buf + got, MANIFEST_DOC_MAX + 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = negative_errno();
                        Ctx c = { .file = name, .err = err };
                        return fail(&c, NULL, r, "cannot read: %s", strerror(-r));
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        return manifest_parse(buf, got, name, ret, err);
}

static bool yaml_name(const char *s) {
        size_t n = strlen(s);
        return s[0] != '.' && ((n > 5 && strcmp(s + n - 5, ".yaml") == 0) || (n > 4 && strcmp(s + n - 4, ".yml") == 0));
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Names of the *.yaml / *.yml files in the folder, sorted bytewise. */
static int list_yaml(Ctx *c, int dir_fd, char ***ret, size_t *ret_n) {
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                safe_close(fd);
                return fail(c, NULL, -ENOMEM, "cannot list the folder");
        }
        char **names = NULL;
        size_t n = 0;
        int r = 0;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                struct stat st;
                if (!yaml_name(de->d_name) || fstatat(dir_fd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (n >= MANIFEST_DOCS_MAX) {
                        r = fail(c, NULL, -E2BIG, "more than %d manifest files in the folder", MANIFEST_DOCS_MAX);
                        break;
                }
                char **grown = realloc(names, (n + 1) * sizeof *names);
                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                names = grown;
                if (!(names[n] = strdup(de->d_name)))
                        r = -ENOMEM;
                else
                        n++;
        }
        closedir(d);
        if (n > 1)
                qsort(names, n, sizeof *names, cmp_str);
        *ret = names;
        *ret_n = n;
        return r;
}

static int list_move(ManifestList *dst, ManifestList *src) {
        Manifest *items = realloc(dst->items, (dst->n + src->n) * sizeof *items);
        if (!items)
                return -ENOMEM;
        dst->items = items;
        memcpy(items + dst->n, src->items, src->n * sizeof *items);
        dst->n += src->n;
        src->n = 0;
        return 0;
}

/* Parse the folder's file name and move its manifests into all. */
static int load_one(Ctx *c, int dir_fd, const char *path, const char *name, ManifestList *all) {
        _cleanup_free_ char *file = NULL;
        _cleanup_manifest_list_ ManifestList *one = NULL;
        size_t plen = strlen(path);
        if (asprintf(&file, "%s%s%s", path, plen && path[plen - 1] == '/' ? "" : "/", name) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
                int r = negative_errno();
                c->file = file;
                r = fail(c, NULL, r, "cannot open: %s", strerror(-r));
                c->file = path;
                return r;
        }
        int r = load_fd(fd, file, &one, c->err);
        if (r < 0)
                return r;
        if (all->n + one->n > MANIFEST_DOCS_MAX)
                return fail(c, NULL, -E2BIG, "more than %d documents in the folder", MANIFEST_DOCS_MAX);
        return list_move(all, one);
}

static int load_dir(Ctx *c, int dir_fd, const char *path, ManifestList **ret) {
        char **names = NULL;
        size_t n = 0;
        int r = list_yaml(c, dir_fd, &names, &n);
        _cleanup_manifest_list_ ManifestList *all = calloc(1, sizeof *all);
        if (r >= 0 && !all)
                r = -ENOMEM;
        if (r >= 0 && n == 0)
                r = fail(c, NULL, -ENOENT, "no *.yaml or *.yml files in the folder");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = load_one(c, dir_fd, path, names[i], all);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (r >= 0 && (r = check_unique(c, all)) >= 0)
                *ret = TAKE_PTR(all);
        return r;
}

int manifest_load_path(const char *path, ManifestList **ret, ManifestError *err) {
        ManifestError dummy;
        Ctx c = { .file = path, .err = err ? err : &dummy };
        *c.err = (ManifestError) { 0 };
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = negative_errno();
                return fail(&c, NULL, r, "cannot open: %s", strerror(-r));
        }
        if (S_ISDIR(st.st_mode))
                return load_dir(&c, fd, path, ret);
        if (st.st_size > (off_t) MANIFEST_DOC_MAX)
                return fail(&c, NULL, -E2BIG, "%lld bytes, over the limit of %u bytes",
                            (long long) st.st_size, MANIFEST_DOC_MAX);
        return load_fd(fd, path, ret, c.err);
}

int manifest_error_format(const ManifestError *e, char *buf, size_t size) {
        char pos[32] = "";
        if (e->line && e->column)
                snprintf(pos, sizeof pos, ":%u:%u", e->line, e->column);
        else if (e->line)
                snprintf(pos, sizeof pos, ":%u", e->line);
        return snprintf(buf, size, "%s%s: %s%s%s", e->file[0] ? e->file : "<manifest>", pos,
                        e->field, e->field[0] ? ": " : "", e->message);
}

/* ---- canonical JSON ---------------------------------------------------- */

static int cmp_key(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* A copy of the object o (consumed) with its keys in sorted order. */
static json_t *json_sorted(json_t *o) {
        size_t n = o ? json_object_size(o) : 0, i = 0;
        const char **keys = calloc(n ? n : 1, sizeof *keys);
        json_t *out = keys ? json_object() : NULL;
        const char *k;
        json_t *v;
        if (out) {
                json_object_foreach(o, k, v)
                        keys[i++] = k;
                qsort(keys, n, sizeof *keys, cmp_key);
                for (i = 0; i < n; i++)
                        if (json_object_set(out, keys[i], json_object_get(o, keys[i])) < 0)
                                out = (json_decref(out), NULL);
        }
        free(keys);
        json_decref(o);
        return out;
}

/* Pairs as an object; later arrays override earlier ones (spec env, then a
 * variant's). */
static json_t *pairs_json(const ManifestPair *a, size_t na, const ManifestPair *b, size_t nb) {
        json_t *o = json_object();
        for (size_t i = 0; o && i < na + nb; i++) {
                const ManifestPair *p = i < na ? &a[i] : &b[i - na];
                if (json_object_set_new(o, p->key, json_string(p->value)) < 0)
                        o = (json_decref(o), NULL);
        }
        return o ? json_sorted(o) : NULL;
}

static json_t *limits_json(const ManifestLimits *l, const ManifestLimits *base) {
        const ManifestLimits *b = base ? base : l;
#define PICK(f) (json_int_t) (l->f ? l->f : b->f)
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "memoryBytes", PICK(memory_bytes),
                         "timeoutMs", PICK(timeout_ns) / 1000000, "cpuMillis", PICK(cpu_millis),
                         "pids", PICK(pids), "tmpBytes", PICK(tmp_bytes), "outputBytes", PICK(output_bytes),
                         "gpus", PICK(gpus));
#undef PICK
}

/* "./a//b/" and "a/b" name the same code: one spelling in the spec. */
static json_t *path_json(const char *s) {
        char out[MANIFEST_CODE_MAX + 2];
        size_t o = 0;
        if (!s)
                return json_null();
        for (const char *p = s; *p && o < MANIFEST_CODE_MAX;) {
                size_t n = strcspn(p, "/");
                if (n > 0 && !(n == 1 && p[0] == '.') && o + n + 1 < sizeof out) {
                        o += (size_t) snprintf(out + o, sizeof out - o, "%s%.*s", o ? "/" : "", (int) n, p);
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        if (o == 0)
                out[o++] = '.';
        out[o] = 0;
        return json_string(out);
}

static json_t *variant_json(const Manifest *m, const ManifestVariant *v) {
        return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}", "name", v->name,
                         "nodeSelector", pairs_json(v->node_selector, v->n_node_selector, NULL, 0),
                         "code", path_json(v->code ? v->code : m->code),
                         "entrypoint", path_json(v->entrypoint ? v->entrypoint : m->entrypoint),
                         "env", pairs_json(m->env, m->n_env, v->env, v->n_env),
                         "limits", limits_json(&v->limits, &m->limits));
}

json_t *manifest_traffic_to_json(const Manifest *m) {
        json_t *a = json_array();
        if (a && m->n_traffic == 0 && json_array_append_new(a, json_pack("{s:b,s:i}", "latestRevision", 1, "percent", 100)) < 0)
                a = (json_decref(a), NULL);
        for (size_t i = 0; a && i < m->n_traffic; i++) {
                const ManifestTraffic *t = &m->traffic[i];
                json_t *e = t->latest ? json_pack("{s:b}", "latestRevision", 1) : json_pack("{s:s}", "revision", t->revision);
                if (e && (json_object_set_new(e, "percent", json_integer(t->percent)) < 0 ||
                          (t->tag && json_object_set_new(e, "tag", json_string(t->tag)) < 0)))
                        e = (json_decref(e), NULL);
                if (json_array_append_new(a, e) < 0)
                        a = (json_decref(a), NULL);
        }
        return a;
}

json_t *manifest_spec_to_json(const Manifest *m, bool include_traffic) {
        const ManifestScale *s = &m->scale;
        json_t *variants = json_array();
        for (size_t i = 0; variants && i < m->n_variants; i++)
                if (json_array_append_new(variants, variant_json(m, &m->variants[i])) < 0)
                        variants = (json_decref(variants), NULL);
        json_t *o = json_pack("{s:s,s:o,s:o,s:s,s:o,s:o,s:i,s:I,s:{s:s,s:I},"
                              "s:{s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:f,s:f},s:o,s:o}",
                              "runtime", manifest_runtime_name(m->runtime), "code", path_json(m->code),
                              "entrypoint", path_json(m->entrypoint), "mode", manifest_mode_name(m->mode),
                              "env", pairs_json(m->env, m->n_env, NULL, 0), "limits", limits_json(&m->limits, NULL),
                              "concurrency", (int) m->concurrency,
                              "startupTimeoutMs", (json_int_t) (m->startup_timeout_ns / 1000000),
                              "readiness", "path", m->readiness.path ? m->readiness.path : MANIFEST_PROBE_PATH_DEFAULT,
                              "periodMs", (json_int_t) (m->readiness.period_ns / 1000000),
                              "scale", "min", (int) s->min, "max", (int) s->max, "initial", (int) s->initial,
                              "target", (int) s->target, "scaleToZeroAfterMs", (json_int_t) (s->scale_to_zero_after_ns / 1000000),
                              "retentionMs", (json_int_t) (s->retention_ns / 1000000),
                              "stableWindowMs", (json_int_t) (s->stable_window_ns / 1000000),
                              "panicWindowMs", (json_int_t) (s->panic_window_ns / 1000000),
                              "maxScaleUpRate", s->max_scale_up_rate, "maxScaleDownRate", s->max_scale_down_rate,
                              "nodeSelector", pairs_json(m->node_selector, m->n_node_selector, NULL, 0),
                              "variants", variants);
        if (o && include_traffic && json_object_set_new(o, "traffic", manifest_traffic_to_json(m)) < 0)
                o = (json_decref(o), NULL);
        return o;
}

/* ---- reading stored specs back ----------------------------------------- */

/* obj[key] as an integer within lo..hi, or def when missing or not one. */
static uint64_t json_uint_in(const json_t *obj, const char *key, uint64_t def, uint64_t lo, uint64_t hi) {
        const json_t *v = json_object_get(obj, key);
        if (!json_is_integer(v))
                return def;
        json_int_t i = json_integer_value(v);
        return i < (json_int_t) lo ? lo : (uint64_t) i > hi ? hi : (uint64_t) i;
}

static double json_rate_in(const json_t *obj, const char *key, double def) {
        const json_t *v = json_object_get(obj, key);
        double d = json_is_number(v) ? json_number_value(v) : def;
        return d > 1.0 && d <= MANIFEST_RATE_MAX ? d : def;
}

void manifest_limits_params(const json_t *limits, ManifestParams *p) {
        p->cpu_millis = json_uint_in(limits, "cpuMillis", p->cpu_millis, 0, MANIFEST_CPU_MAX);
        p->memory_bytes = json_uint_in(limits, "memoryBytes", p->memory_bytes, 0, MANIFEST_MEMORY_MAX);
        p->gpus = json_uint_in(limits, "gpus", p->gpus, 0, MANIFEST_GPUS_MAX);
}

void manifest_spec_params(const json_t *spec, ManifestParams *p) {
        const json_t *scale = json_object_get(spec, "scale"), *limits = json_object_get(spec, "limits");
        const char *mode = json_string_value(json_object_get(spec, "mode"));
        *p = (ManifestParams) { .cpu_millis = 1000, .memory_bytes = 128ULL << 20 };
        p->mode = mode && strcmp(mode, "service") == 0 ? MANIFEST_MODE_SERVICE : MANIFEST_MODE_FRESH;
        p->max = (uint32_t) json_uint_in(scale, "max", 20, 1, MANIFEST_SCALE_MAX);
        p->min = (uint32_t) json_uint_in(scale, "min", 0, 0, p->max);
        p->initial = (uint32_t) json_uint_in(scale, "initial", p->min > 1 ? p->min : 1, p->min, p->max);
        p->target = (uint32_t) json_uint_in(scale, "target", 10, 1, MANIFEST_SCALE_MAX);
        p->scale_to_zero_after_ms = json_uint_in(scale, "scaleToZeroAfterMs", 30000, MANIFEST_IDLE_MIN_MS,
                                                 MANIFEST_IDLE_MAX_MS);
        p->retention_ms = json_uint_in(scale, "retentionMs", 0, 0, MANIFEST_RETENTION_MAX_MS);
        p->stable_window_ms = json_uint_in(scale, "stableWindowMs", MANIFEST_STABLE_DEFAULT_MS,
                                           MANIFEST_STABLE_MIN_MS, MANIFEST_STABLE_MAX_MS);
        p->panic_window_ms = json_uint_in(scale, "panicWindowMs", MANIFEST_PANIC_DEFAULT_MS,
                                          MANIFEST_PANIC_MIN_MS, p->stable_window_ms);
        p->max_scale_up_rate = json_rate_in(scale, "maxScaleUpRate", MANIFEST_UP_RATE_DEFAULT);
        p->max_scale_down_rate = json_rate_in(scale, "maxScaleDownRate", MANIFEST_DOWN_RATE_DEFAULT);
        p->concurrency = (uint32_t) json_uint_in(spec, "concurrency", p->target, 1, MANIFEST_CONCURRENCY_MAX);
        p->startup_timeout_ms = json_uint_in(spec, "startupTimeoutMs", MANIFEST_STARTUP_DEFAULT_MS,
                                             MANIFEST_STARTUP_MIN_MS, MANIFEST_STARTUP_MAX_MS);
        p->timeout_ms = json_uint_in(limits, "timeoutMs", 10000, MANIFEST_TIMEOUT_MIN_MS, MANIFEST_TIMEOUT_MAX_MS);
        p->output_bytes = json_uint_in(limits, "outputBytes", 1ULL << 20, MANIFEST_OUTPUT_MIN, MANIFEST_OUTPUT_MAX);
        manifest_limits_params(limits, p);
}
