/* controller/skills_search.h: the skill library's search index, in memory
 * and pure (no I/O, no locks, no clock, no global: the controller guards an
 * index with its own lock; searches only read it, so a read lock will do).
 * One document per skill, keyed by (namespace, name): the skill's newest
 * promoted version. docs/skills.md "Search" says it for users.
 *
 * Ranking, hybrid:
 *
 *   lexical   BM25 (k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
 *             N and df over the whole index, whatever the namespace filter)
 *             over weighted term frequencies: each token of the name
 *             (split on '-') counts 3, each token of the description 1, and
 *             each distinct identifier of the code 0.5 (once, however often
 *             the code uses it, so long code does not drown the rest). The
 *             document length is the sum of those weights. Tokens: runs of
 *             ASCII letters and digits (and any byte >= 0x80, so UTF-8
 *             words stay whole), also split at '_' and camelCase
 *             ("parseHTTPHeader" -> parse, http, header), ASCII-lowercased;
 *             tokens shorter than 2 or longer than 64 bytes are dropped; in
 *             code, all-digit tokens and language keywords (def, return,
 *             import, const, function, let, var, if, else, for, while...)
 *             too. The query is tokenised as a description; each distinct
 *             query term counts once. A query costs the postings of its
 *             terms, not the size of the index.
 *   semantic  the cosine similarity between the query's embedding and the
 *             document's (both unit-normalised), for documents whose
 *             embedding has the query's dimension; others (none, or
 *             another dimension) score 0 on this part.
 *
 * Candidates: the documents (in the namespace, when one is given) with a
 * lexical match, plus, when a query embedding is given, every one with an
 * embedding of its dimension. The parts are normalised over the candidates
 * and merged:
 *
 *   lexical'  = bm25 / max bm25                       (0 when no term matched)
 *   semantic' = (cos - min cos) / (max cos - min cos)  over the candidates with
 *               a comparable embedding (1 for all of them when max = min; 0
 *               for a candidate without one)
 *   score     = lexical'                                   without a query embedding
 *             = (1 - W) * lexical' + W * semantic', W = 0.5  with one
 *
 * so every figure is in [0, 1] and the best match on each part is 1. Hits
 * come best score first; equal scores by name, then namespace (bytewise),
 * so the order never depends on insertion order. A query with no token and
 * no embedding has no hits. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SKILL_INDEX_DOCS_MAX            100000          /* documents in one index */
#define SKILL_INDEX_QUERY_MAX           1024            /* bytes of a query */
#define SKILL_INDEX_DESCRIPTION_MAX     4096            /* bytes of a description */
#define SKILL_INDEX_CODE_SCAN_MAX       (256 * 1024)    /* bytes of code scanned for identifiers (the rest is ignored) */
#define SKILL_INDEX_CODE_TERMS_MAX      4096            /* distinct identifiers kept per document (the first ones) */
#define SKILL_INDEX_KEY_MAX             253             /* bytes of a namespace or a name */
#define SKILL_INDEX_RUNTIME_MAX         32              /* bytes of a runtime */
#define SKILL_INDEX_DIM_MAX             4096            /* dimensions of an embedding */
#define SKILL_INDEX_TOKEN_MAX           64              /* longer tokens are dropped */

#define SKILL_INDEX_BM25_K1             1.2
#define SKILL_INDEX_BM25_B              0.75
#define SKILL_INDEX_WEIGHT_NAME         3.0
#define SKILL_INDEX_WEIGHT_DESCRIPTION  1.0
#define SKILL_INDEX_WEIGHT_CODE         0.5
#define SKILL_INDEX_SEMANTIC_WEIGHT     0.5             /* W above */

typedef struct SkillIndex SkillIndex;

int skill_index_new(SkillIndex **ret);
/* Accepts NULL. */
void skill_index_free(SkillIndex *ix);

/* Adds or replaces the document of (ns, name). ns and name: 1 to
 * SKILL_INDEX_KEY_MAX bytes, no '/'; runtime NULL means "" (at most
 * SKILL_INDEX_RUNTIME_MAX); description NULL means "" (at most
 * SKILL_INDEX_DESCRIPTION_MAX); code NULL means none (only its first
 * SKILL_INDEX_CODE_SCAN_MAX bytes are read; it is not kept). emb NULL or
 * dim 0: no embedding; else dim 1 to SKILL_INDEX_DIM_MAX finite floats,
 * copied (an all-zero vector counts as none). Errors, with the index
 * unchanged: -EINVAL (a bad key, runtime or embedding), -E2BIG (the
 * description), -ENOSPC (a new document beyond SKILL_INDEX_DOCS_MAX),
 * -ENOMEM. */
int skill_index_put(SkillIndex *ix, const char *ns, const char *name, int64_t version, const char *runtime,
                    const char *description, const char *code, const float *emb, size_t dim);
/* -ENOENT when there is no such document. */
int skill_index_remove(SkillIndex *ix, const char *ns, const char *name);
/* The version a document was put with (-ENOENT), so a caller following a
 * store can put only what changed. */
int skill_index_lookup(const SkillIndex *ix, const char *ns, const char *name, int64_t *ret_version);
size_t skill_index_count(const SkillIndex *ix);

/* The strings point into the index: valid until the next put, remove or free. */
typedef struct SkillHit {
        const char *ns, *name, *description, *runtime;
        int64_t version;
        double score;           /* the merged score, [0, 1] */
        double lexical;         /* lexical', [0, 1] */
        double semantic;        /* semantic', [0, 1]; 0 without a query embedding */
        double bm25;            /* the raw BM25 score, >= 0 */
        double cosine;          /* the raw cosine, [-1, 1]; 0 without a comparable embedding */
} SkillHit;

/* Up to max hits, best first, into hits. ns NULL: every namespace. qemb
 * NULL or dim 0: lexical only; else dim 1 to SKILL_INDEX_DIM_MAX finite
 * floats (an all-zero vector counts as none). *ret_semantic (when not NULL)
 * tells whether the semantic part took part (a usable query embedding and
 * at least one candidate with an embedding of its dimension). Returns the
 * number of hits, or -EINVAL (query NULL, a bad embedding), -E2BIG (a query
 * over SKILL_INDEX_QUERY_MAX bytes), -ENOMEM. */
int skill_index_search(const SkillIndex *ix, const char *ns, const char *query, const float *qemb, size_t dim,
                       SkillHit *hits, size_t max, bool *ret_semantic);
