/* cli/output.c: tables, JSON and YAML on stdout, and the small formatters
 * that turn the API's integers and timestamps back into what people write.
 * Everything that came from the server is sanitized before it reaches a
 * terminal. */
#define _GNU_SOURCE
#include "output.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "lib/util.h"

struct Table {
        size_t n_columns;
        char **cells;           /* rows * n_columns, row 0 the headers */
        size_t n_rows, cap_rows;
};

int output_format_from_string(const char *s) {
        if (strcmp(s, "table") == 0)
                return OUTPUT_TABLE;
        if (strcmp(s, "json") == 0)
                return OUTPUT_JSON;
        if (strcmp(s, "yaml") == 0)
                return OUTPUT_YAML;
        if (strcmp(s, "wide") == 0)
                return OUTPUT_WIDE;
        return -EINVAL;
}

/* ---- sanitising and widths --------------------------------------------- */

char *output_sanitize(const char *s, char *buf, size_t size) {
        const unsigned char *p = (const unsigned char *) (s ? s : "");
        size_t o = 0;
        bool more = false;
        if (size < 8) {
                if (size)
                        buf[0] = 0;
                return buf;
        }
        for (; *p; p++) {
                if (o + 1 >= size) {
                        more = true;
                        break;
                }
                if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        buf[o++] = '?';
                        p++;
                } else
                        buf[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char) *p;
        }
        if (more) {
                /* cut on a character boundary and say so */
                o = size - 4;
                while (o > 0 && ((unsigned char) buf[o] & 0xc0) == 0x80)
                        o--;
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = 0;
        return buf;
}

size_t output_width(const char *s) {
        size_t w = 0;
        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        w++;
        return w;
}

/* ---- tables ------------------------------------------------------------- */

Table *table_new(size_t n_columns, const char *const *headers) {
        if (n_columns == 0 || n_columns > TABLE_COLUMNS_MAX)
                return NULL;
        Table *t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        if (table_add(t, headers) < 0)
                return table_free(t);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

void table_freep(Table **t) {
        table_free(*t);
}

int table_add(Table *t, const char *const *cells) {
        if (t->n_rows > TABLE_ROWS_MAX)
                return -E2BIG;
        if (t->n_rows == t->cap_rows) {
                size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
                char **n = reallocarray(t->cells, cap * t->n_columns, sizeof *n);
                if (!n)
                        return -ENOMEM;
                t->cells = n;
                t->cap_rows = cap;
        }
        char buf[TABLE_CELL_MAX];
        char **row = t->cells + t->n_rows * t->n_columns;
        for (size_t i = 0; i < t->n_columns; i++) {
                row[i] = strdup(output_sanitize(cells[i] ? cells[i] : "-", buf, sizeof buf));
                if (!row[i]) {
                        while (i > 0)
                                free(row[--i]);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

bool output_use_bold(FILE *f) {
        const char *term = getenv("TERM");
        return isatty(fileno(f)) && !getenv("NO_COLOR") && !(term && strcmp(term, "dumb") == 0);
}

int table_print(const Table *t, FILE *f, bool bold) {
        size_t width[TABLE_COLUMNS_MAX] = { 0 };
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++) {
                        size_t w = output_width(t->cells[r * t->n_columns + c]);
                        if (w > width[c])
                                width[c] = w;
                }
        for (size_t r = 0; r < t->n_rows; r++) {
                size_t used = t->n_columns;     /* no padding after the last non-empty cell */
                while (used > 1 && !t->cells[r * t->n_columns + used - 1][0])
                        used--;
                for (size_t c = 0; c < used; c++) {
                        const char *s = t->cells[r * t->n_columns + c];
                        bool last = c + 1 == used;
                        fprintf(f, "%s%s%s", r == 0 && bold ? "\033[1m" : "", s, r == 0 && bold ? "\033[0m" : "");
                        if (!last)
                                fprintf(f, "%*s", (int) (width[c] - output_width(s) + 2), "");
                }
                fputc('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}

/* ---- JSON and YAML ------------------------------------------------------ */

int output_json(FILE *f, json_t *v) {
        if (json_dumpf(v, f, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
                return -EIO;
        fputc('\n', f);
        return ferror(f) ? -EIO : 0;
}

static bool yaml_special_word(const char *s) {
        static const char *const words[] = { "y", "n", "yes", "no", "true", "false", "on",
                                             "off", "null", "~", ".inf", ".nan" };
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasecmp(s, words[i]) == 0)
                        return true;
        return false;
}

/* Whether a string can be written plain and still read back as that string
 * (not a number, bool, null, timestamp, or YAML syntax). */
static bool yaml_plain_safe(const char *s) {
        if (!*s || !(isalpha((unsigned char) *s) || *s == '/' || *s == '_') || yaml_special_word(s))
                return false;
        size_t n = strlen(s);
        if (s[n - 1] == ' ' || s[n - 1] == ':')
                return false;
        for (const char *p = s; *p; p++) {
                unsigned char ch = (unsigned char) *p;
                if (isalnum(ch) || strchr("_./@+-", ch) || ch >= 0x80)
                        continue;
                if (ch == ':' && p[1] != ' ')
                        continue;
                if (ch == ' ' && p[1] != '#' && p[1] != ' ')
                        continue;
                return false;
        }
        return true;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, bool is_string) {
        yaml_event_t ev;
        yaml_scalar_style_t style = !is_string || yaml_plain_safe(s) ? YAML_PLAIN_SCALAR_STYLE
                                                                     : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *) s, (int) strlen(s),
                                          1, 1, style))
                return -ENOMEM;
        return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

static int emit_node(yaml_emitter_t *e, json_t *v, unsigned depth);

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int emit_object(yaml_emitter_t *e, json_t *v, unsigned depth) {
        yaml_event_t ev;
        size_t n = json_object_size(v), i = 0;
        _cleanup_free_ const char **keys = calloc(n ? n : 1, sizeof *keys);
        const char *k;
        json_t *child;
        if (!keys)
                return -ENOMEM;
        json_object_foreach(v, k, child)
                keys[i++] = k;
        qsort(keys, n, sizeof *keys, cmp_str);
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(e, &ev))
                return -EIO;
        for (i = 0; i < n; i++) {
                int r = emit_scalar(e, keys[i], true);
                if (r < 0 || (r = emit_node(e, json_object_get(v, keys[i]), depth + 1)) < 0)
                        return r;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

static int emit_array(yaml_emitter_t *e, json_t *v, unsigned depth) {
        yaml_event_t ev;
        size_t i;
        json_t *child;
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(e, &ev))
                return -EIO;
        json_array_foreach(v, i, child) {
                int r = emit_node(e, child, depth + 1);
                if (r < 0)
                        return r;
        }
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

static int emit_node(yaml_emitter_t *e, json_t *v, unsigned depth) {
        char num[64];
        if (depth > 64)
                return -ELOOP;
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return emit_object(e, v, depth);
        case JSON_ARRAY:
                return emit_array(e, v, depth);
        case JSON_STRING:
                return emit_scalar(e, json_string_value(v), true);
        case JSON_INTEGER:
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                return emit_scalar(e, num, false);
        case JSON_REAL:
                snprintf(num, sizeof num, "%.17g", json_real_value(v));
                return emit_scalar(e, num, false);
        case JSON_TRUE:
                return emit_scalar(e, "true", false);
        case JSON_FALSE:
                return emit_scalar(e, "false", false);
        default:
                return emit_scalar(e, "null", false);
        }
}

static int emit_document(yaml_emitter_t *e, json_t *v) {
        yaml_event_t ev;
        yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
        if (!yaml_emitter_emit(e, &ev))
                return -EIO;
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
        if (!yaml_emitter_emit(e, &ev))
                return -EIO;
        int r = emit_node(e, v, 0);
        if (r < 0)
                return r;
        yaml_document_end_event_initialize(&ev, 1);
        if (!yaml_emitter_emit(e, &ev))
                return -EIO;
        yaml_stream_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

int output_yaml(FILE *f, json_t *v) {
        yaml_emitter_t e;
        if (!yaml_emitter_initialize(&e))
                return -ENOMEM;
        yaml_emitter_set_output_file(&e, f);
        yaml_emitter_set_unicode(&e, 1);
        yaml_emitter_set_width(&e, -1);
        int r = emit_document(&e, v);
        if (r >= 0 && !yaml_emitter_flush(&e))
                r = -EIO;
        yaml_emitter_delete(&e);
        return r;
}

int output_value(FILE *f, OutputFormat format, json_t *v) {
        return format == OUTPUT_YAML ? output_yaml(f, v) : output_json(f, v);
}

/* ---- quantities --------------------------------------------------------- */

void format_bytes(uint64_t v, char *buf, size_t size) {
        static const char *const units[] = { "Ti", "Gi", "Mi", "Ki" };
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                uint64_t m = 1ULL << (10 * (ELEMENTSOF(units) - i));
                if (v && v % m == 0) {
                        snprintf(buf, size, "%" PRIu64 "%s", v / m, units[i]);
                        return;
                }
        }
        snprintf(buf, size, "%" PRIu64, v);
}

void format_ms(uint64_t ms, char *buf, size_t size) {
        if (ms && ms % 3600000 == 0)
                snprintf(buf, size, "%" PRIu64 "h", ms / 3600000);
        else if (ms && ms % 60000 == 0)
                snprintf(buf, size, "%" PRIu64 "m", ms / 60000);
        else if (ms % 1000 == 0)
                snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
        else
                snprintf(buf, size, "%" PRIu64 "ms", ms);
}

void format_cpu(uint64_t millis, char *buf, size_t size) {
        if (millis % 1000 == 0)
                snprintf(buf, size, "%" PRIu64, millis / 1000);
        else
                snprintf(buf, size, "%" PRIu64 "m", millis);
}

void format_age(const char *iso, time_t now, char *buf, size_t size) {
        struct tm tm = { 0 };
        const char *end = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        if (!end) {
                snprintf(buf, size, "%s", iso ? iso : "-");
                return;
        }
        time_t t = timegm(&tm);
        format_span(now > t ? (long long) (now - t) : 0, buf, size);
}

void format_span(long long seconds, char *buf, size_t size) {
        if (seconds < 120)
                snprintf(buf, size, "%llds", seconds);
        else if (seconds < 120 * 60)
                snprintf(buf, size, "%lldm", seconds / 60);
        else if (seconds < 48 * 3600)
                snprintf(buf, size, "%lldh", seconds / 3600);
        else
                snprintf(buf, size, "%lldd", seconds / 86400);
}
