/* cli/docsplit.c: split YAML text at its document markers (see docsplit.h
 * for why a line scan is exact). One pass, no allocation. */
#include "docsplit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define NONE SIZE_MAX

typedef struct Splitter {
        YamlDoc *docs;
        size_t n, max;
        size_t start;           /* where the current piece begins */
        unsigned start_line;
        size_t directives;      /* first pending "%" line, or NONE */
        unsigned directives_line;
        bool content;           /* the current piece has content */
} Splitter;

/* "---" or "..." at the start of the line, then a blank or the end. */
static bool is_marker(const char *p, const char *e, const char *m) {
        return e - p >= 3 && memcmp(p, m, 3) == 0 && (e - p == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\r');
}

/* Anything but blanks and a comment in [p, e). */
static bool has_content(const char *p, const char *e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
                p++;
        return p < e && *p != '#';
}

static int emit(Splitter *s, size_t end) {
        if (!s->content)
                return 0;
        if (s->n >= s->max)
                return -E2BIG;
        s->docs[s->n++] = (YamlDoc) { s->start, end - s->start, s->start_line };
        s->content = false;
        return 0;
}

static int on_line(Splitter *s, const char *text, const char *p, const char *e, unsigned line) {
        size_t off = (size_t) (p - text);
        if (is_marker(p, e, "---")) {
                int r = emit(s, off);
                bool pending = s->directives != NONE;
                s->start = pending ? s->directives : off;
                s->start_line = pending ? s->directives_line : line;
                s->directives = NONE;
                s->content = has_content(p + 3, e);
                return r;
        }
        if (is_marker(p, e, "...")) {
                int r = emit(s, off);
                s->start = (size_t) (e - text) + 1;
                s->start_line = line + 1;
                return r;
        }
        if (!s->content && *p == '%') {
                if (s->directives == NONE) {
                        s->directives = off;
                        s->directives_line = line;
                }
                return 0;
        }
        if (!s->content && has_content(p, e)) {
                s->content = true;
                if (s->directives != NONE) {
                        s->start = s->directives;
                        s->start_line = s->directives_line;
                        s->directives = NONE;
                }
        }
        return 0;
}

int docsplit(const char *text, size_t len, YamlDoc *docs, size_t max) {
        Splitter s = { .docs = docs, .max = max, .start_line = 1, .directives = NONE };
        const char *p = text, *end = text + len;
        if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                p += 3;         /* a byte order mark belongs to the first piece */
        for (unsigned line = 1; p < end; line++) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *e = nl ? nl : end;
                int r = on_line(&s, text, p, e, line);
                if (r < 0)
                        return r;
                p = nl ? nl + 1 : end;
        }
        if (s.start > len)
                s.start = len;
        int r = emit(&s, len);
        return r < 0 ? r : (int) s.n;
}
