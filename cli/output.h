/* cli/output.h: what the CLI prints. Aligned tables for people (widths from
 * the data, control characters from the server replaced), JSON for scripts
 * (pretty, keys sorted) and YAML (libyaml's emitter, strings quoted whenever
 * a YAML reader could take them for something else). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

typedef enum OutputFormat {
        OUTPUT_TABLE,
        OUTPUT_JSON,
        OUTPUT_YAML,
        OUTPUT_WIDE,            /* a table with more columns (nodes); others: the table */
} OutputFormat;

#define TABLE_COLUMNS_MAX       12
#define TABLE_CELL_MAX          1024    /* bytes shown per cell */
#define TABLE_ROWS_MAX          200000

int output_format_from_string(const char *s);

typedef struct Table Table;

Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
void table_freep(Table **t);
#define _cleanup_table_ __attribute__((cleanup(table_freep)))
/* One row of n_columns cells (NULL prints as "-"). */
int table_add(Table *t, const char *const *cells);
#define table_row(t, ...) table_add((t), (const char *const[]) { __VA_ARGS__ })
/* Columns separated by two spaces, the last one unpadded; headers in bold
 * when bold. */
int table_print(const Table *t, FILE *f, bool bold);
/* Bold headers only on a terminal, and never with NO_COLOR or TERM=dumb. */
bool output_use_bold(FILE *f);

/* Pretty JSON (2-space indent, sorted keys) and a final newline. */
int output_json(FILE *f, json_t *v);
/* YAML in block style, keys sorted; -EIO when the emitter fails. */
int output_yaml(FILE *f, json_t *v);
/* json or yaml by format (OUTPUT_TABLE is the caller's business). */
int output_value(FILE *f, OutputFormat format, json_t *v);

/* Copy s into buf (always NUL-terminated, truncated with "..."), replacing
 * control characters (C0, DEL, C1) with '?'. Returns buf. */
char *output_sanitize(const char *s, char *buf, size_t size);
/* Display width: UTF-8 code points. */
size_t output_width(const char *s);

/* People-friendly quantities: 134217728 -> "128Mi", 10000 ms -> "10s",
 * 500 millicores -> "500m", and an ISO 8601 time -> its age ("5m"). */
void format_bytes(uint64_t v, char *buf, size_t size);
void format_ms(uint64_t ms, char *buf, size_t size);
void format_cpu(uint64_t millis, char *buf, size_t size);
void format_age(const char *iso8601, time_t now, char *buf, size_t size);
/* A duration in seconds, as ages are shown: "90s", "5m", "3h", "6d". */
void format_span(long long seconds, char *buf, size_t size);
