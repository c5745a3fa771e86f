/* tests/bench/skills_load.c: the C driver of tests/bench/skills_bench.py
 * (it builds this file with cc, together with controller/skills_search.c):
 * loads a generated skill library into a SkillIndex and times searches.
 *
 *   skills_load --docs FILE --queries FILE [--dim N] [--limit N] [--warmup N]
 *
 * FILE lines are tab-separated fields, with '\\', '\t' and '\n' escaped as
 * \\, \t and \n:
 *   docs:    namespace  name  runtime  description  code  embedding-text
 *   queries: namespace (or "-": every one)  query  embedding-text
 * The embedding text stands in for what an embedding model understands of
 * the text (the generator writes each concept's canonical word there,
 * whichever synonym the text used); its embedding is the normalised sum
 * of one fixed pseudo-random vector per word (a hashing embedding), so two
 * texts about the same concepts are close whatever their words. Embeddings
 * are computed before the clock starts: the gateway's /v1/embeddings call
 * is not what this measures.
 *
 * Each query runs lexical only and hybrid (the order alternating), limit
 * hits, after a warm-up of the first N queries (not counted). Prints JSON
 * on stdout: {"docs", "indexed", "build_ms" (the puts alone), "dim",
 * "limit", "hybrid_semantic" (hybrid searches whose semantic part took
 * part), "lexical_us": [...], "hybrid_us": [...], "lexical_top": [...],
 * "hybrid_top": [...] (each query's best hit), "lexical_hits": [...]}.
 *
 * Linux, C standard library only (and the index). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/skills_search.h"

#define FIELDS_MAX 6

typedef struct Line {
        char *f[FIELDS_MAX];
        size_t n;
} Line;

static void die(const char *what) {
        fprintf(stderr, "skills_load: %s\n", what);
        exit(1);
}

/* Splits s at tabs, unescaping each field in place. */
static void line_split(char *s, Line *l) {
        l->n = 0;
        char *w = s;
        l->f[l->n++] = w;
        for (char *r = s; *r && *r != '\n'; r++) {
                if (*r == '\t') {
                        *w++ = 0;
                        if (l->n == FIELDS_MAX)
                                die("too many fields");
                        l->f[l->n++] = w;
                } else if (*r == '\\' && r[1]) {
                        r++;
                        *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
                } else
                        *w++ = *r;
        }
        *w = 0;
}

static uint64_t splitmix(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* The hashing embedding of a text (words: runs of letters and digits). */
static void embed(const char *text, float *out, size_t dim) {
        memset(out, 0, dim * sizeof(float));
        const char *p = text;
        while (*p) {
                while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
                        p++;
                const char *s = p;
                while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
                        p++;
                if (p == s)
                        continue;
                uint64_t seed = 1469598103934665603ull;
                for (const char *c = s; c < p; c++)
                        seed = (seed ^ (unsigned char) *c) * 1099511628211ull;
                for (size_t i = 0; i < dim; i++)
                        out[i] += (float) ((double) (splitmix(&seed) >> 11) / (double) (1ull << 53) * 2 - 1);
        }
        double ss = 0;
        for (size_t i = 0; i < dim; i++)
                ss += (double) out[i] * out[i];
        for (size_t i = 0; ss > 0 && i < dim; i++)
                out[i] = (float) (out[i] / sqrt(ss));
}

static double now_us(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void json_str(const char *s) {
        putchar('"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        printf("\\%c", *s);
                else if ((unsigned char) *s < 0x20)
                        printf("\\u%04x", *s);
                else
                        putchar(*s);
        }
        putchar('"');
}

typedef struct Query {
        char *ns, *text;
        float *emb;
} Query;

static size_t load_docs(SkillIndex *ix, const char *path, size_t dim, double *ret_build_ms) {
        FILE *f = fopen(path, "re");
        if (!f)
                die("cannot open the docs file");
        char *buf = NULL;
        size_t cap = 0, n = 0;
        float *emb = malloc(dim * sizeof(float));
        double total = 0;
        while (getline(&buf, &cap, f) > 0) {
                Line l;
                line_split(buf, &l);
                if (l.n != 6)
                        die("a docs line without 6 fields");
                embed(l.f[5], emb, dim);
                double t0 = now_us();
                int r = skill_index_put(ix, l.f[0], l.f[1], 1, l.f[2], l.f[3], l.f[4], emb, dim);
                total += now_us() - t0;
                if (r < 0) {
                        fprintf(stderr, "skills_load: put %s/%s: %s\n", l.f[0], l.f[1], strerror(-r));
                        exit(1);
                }
                n++;
        }
        free(buf);
        free(emb);
        fclose(f);
        *ret_build_ms = total / 1000;
        return n;
}

static Query *load_queries(const char *path, size_t dim, size_t *ret_n) {
        FILE *f = fopen(path, "re");
        if (!f)
                die("cannot open the queries file");
        char *buf = NULL;
        size_t cap = 0, n = 0, qcap = 0;
        Query *q = NULL;
        while (getline(&buf, &cap, f) > 0) {
                Line l;
                line_split(buf, &l);
                if (l.n != 3)
                        die("a queries line without 3 fields");
                if (n == qcap) {
                        qcap = qcap ? qcap * 2 : 1024;
                        q = realloc(q, qcap * sizeof(Query));
                        if (!q)
                                die("out of memory");
                }
                q[n].ns = strcmp(l.f[0], "-") == 0 ? NULL : strdup(l.f[0]);
                q[n].text = strdup(l.f[1]);
                q[n].emb = malloc(dim * sizeof(float));
                if (!q[n].text || !q[n].emb)
                        die("out of memory");
                embed(l.f[2], q[n].emb, dim);
                n++;
        }
        free(buf);
        fclose(f);
        *ret_n = n;
        return q;
}

/* One search, timed; the top hit's name into top (or ""). */
static double timed(const SkillIndex *ix, const Query *q, size_t dim, bool hybrid, SkillHit *hits, size_t limit,
                    const char **top, int *n_hits, bool *semantic) {
        double t0 = now_us();
        int n = skill_index_search(ix, q->ns, q->text, hybrid ? q->emb : NULL, hybrid ? dim : 0, hits, limit, semantic);
        double t = now_us() - t0;
        if (n < 0) {
                fprintf(stderr, "skills_load: search \"%s\": %s\n", q->text, strerror(-n));
                exit(1);
        }
        *top = n > 0 ? hits[0].name : "";
        *n_hits = n;
        return t;
}

int main(int argc, char **argv) {
        const char *docs = NULL, *queries = NULL;
        size_t dim = 384, limit = 5, warmup = 100;
        for (int i = 1; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--docs") == 0)
                        docs = argv[i + 1];
                else if (strcmp(argv[i], "--queries") == 0)
                        queries = argv[i + 1];
                else if (strcmp(argv[i], "--dim") == 0)
                        dim = strtoul(argv[i + 1], NULL, 10);
                else if (strcmp(argv[i], "--limit") == 0)
                        limit = strtoul(argv[i + 1], NULL, 10);
                else if (strcmp(argv[i], "--warmup") == 0)
                        warmup = strtoul(argv[i + 1], NULL, 10);
                else
                        die("usage: skills_load --docs FILE --queries FILE [--dim N] [--limit N] [--warmup N]");
        }
        if (!docs || !queries || dim == 0 || dim > SKILL_INDEX_DIM_MAX || limit == 0 || limit > 1000)
                die("usage: skills_load --docs FILE --queries FILE [--dim N] [--limit N] [--warmup N]");

        SkillIndex *ix = NULL;
        if (skill_index_new(&ix) < 0)
                die("out of memory");
        double build_ms;
        size_t n_docs = load_docs(ix, docs, dim, &build_ms);
        size_t n_q;
        Query *q = load_queries(queries, dim, &n_q);
        SkillHit *hits = calloc(limit, sizeof(SkillHit));
        double *lex = calloc(n_q, sizeof(double)), *hyb = calloc(n_q, sizeof(double));
        const char **lex_top = calloc(n_q, sizeof(char *)), **hyb_top = calloc(n_q, sizeof(char *));
        int *lex_n = calloc(n_q, sizeof(int));
        if (!hits || !lex || !hyb || !lex_top || !hyb_top || !lex_n)
                die("out of memory");

        const char *top;
        int n;
        bool sem;
        for (size_t i = 0; i < warmup && i < n_q; i++) {
                timed(ix, &q[i], dim, false, hits, limit, &top, &n, &sem);
                timed(ix, &q[i], dim, true, hits, limit, &top, &n, &sem);
        }
        size_t n_sem = 0;
        for (size_t i = 0; i < n_q; i++) {
                bool hybrid_first = i % 2;
                for (int k = 0; k < 2; k++) {
                        bool hybrid = (k == 0) == hybrid_first;
                        if (hybrid) {
                                hyb[i] = timed(ix, &q[i], dim, true, hits, limit, &top, &n, &sem);
                                hyb_top[i] = top;
                                n_sem += sem;
                        } else {
                                lex[i] = timed(ix, &q[i], dim, false, hits, limit, &top, &n, &sem);
                                lex_top[i] = top;
                                lex_n[i] = n;
                        }
                }
        }

        printf("{\"docs\": %zu, \"indexed\": %zu, \"build_ms\": %.3f, \"dim\": %zu, \"limit\": %zu, "
               "\"hybrid_semantic\": %zu,\n", n_docs, skill_index_count(ix), build_ms, dim, limit, n_sem);
        const char *names[] = { "lexical_us", "hybrid_us" };
        double *vals[] = { lex, hyb };
        for (int k = 0; k < 2; k++) {
                printf(" \"%s\": [", names[k]);
                for (size_t i = 0; i < n_q; i++)
                        printf("%s%.2f", i ? ", " : "", vals[k][i]);
                printf("],\n");
        }
        const char *tnames[] = { "lexical_top", "hybrid_top" };
        const char **tops[] = { lex_top, hyb_top };
        for (int k = 0; k < 2; k++) {
                printf(" \"%s\": [", tnames[k]);
                for (size_t i = 0; i < n_q; i++) {
                        printf("%s", i ? ", " : "");
                        json_str(tops[k][i]);
                }
                printf("],\n");
        }
        printf(" \"lexical_hits\": [");
        for (size_t i = 0; i < n_q; i++)
                printf("%s%d", i ? ", " : "", lex_n[i]);
        printf("]}\n");
        /* the top names point into the index: freed with it, after printing */
        skill_index_free(ix);
        return 0;
}
