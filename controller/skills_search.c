/* controller/skills_search.c: the skill library's in-memory search index:
 * BM25 over postings lists (term -> documents) and brute-force cosine over
 * unit-normalised embeddings, merged as controller/skills_search.h says.
 * Pure: no I/O, no locks; every put either applies whole or leaves the
 * index as it was. */
#include "controller/skills_search.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define NONE UINT32_MAX
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* ---- a hash map of ids (open addressing, linear probing) ------------------ */

/* The keys live in the objects the ids name; the map keeps each id's hash
 * so that it can grow and delete (backward shift) without them. */
typedef struct IdMap {
        uint32_t *ids;          /* id + 1; 0: empty */
        uint32_t *hashes;
        size_t cap;             /* a power of 2, or 0 */
        size_t n;
} IdMap;

typedef bool (*IdMapEq)(const SkillIndex *ix, uint32_t id, const void *key);

static uint32_t hash_bytes(uint32_t h, const void *p, size_t len) {
        const unsigned char *s = p;
        /* FNV-1a, then a final mix so that linear probing sees spread bits */
        for (size_t i = 0; i < len; i++)
                h = (h ^ s[i]) * 16777619u;
        h ^= h >> 15;
        h *= 0x2c1b3c6du;
        h ^= h >> 12;
        return h;
}

static void idmap_done(IdMap *m) {
        free(m->ids);
        free(m->hashes);
        *m = (IdMap) {};
}

static void idmap_put_raw(IdMap *m, uint32_t hash, uint32_t id) {
        size_t mask = m->cap - 1;
        for (size_t i = hash & mask;; i = (i + 1) & mask)
                if (m->ids[i] == 0) {
                        m->ids[i] = id + 1;
                        m->hashes[i] = hash;
                        m->n++;
                        return;
                }
}

/* Room for n entries at a load of at most one half. */
static int idmap_reserve(IdMap *m, size_t n) {
        if (n * 2 <= m->cap)
                return 0;
        size_t cap = m->cap ? m->cap : 16;
        while (cap < n * 2)
                cap *= 2;
        IdMap g = { .ids = calloc(cap, sizeof(uint32_t)), .hashes = calloc(cap, sizeof(uint32_t)), .cap = cap };
        if (!g.ids || !g.hashes) {
                idmap_done(&g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
                if (m->ids[i])
                        idmap_put_raw(&g, m->hashes[i], m->ids[i] - 1);
        idmap_done(m);
        *m = g;
        return 0;
}

/* The slot holding key, or SIZE_MAX. */
static size_t idmap_slot(const IdMap *m, const SkillIndex *ix, uint32_t hash, IdMapEq eq, const void *key) {
        if (m->cap == 0)
                return SIZE_MAX;
        size_t mask = m->cap - 1;
        for (size_t i = hash & mask; m->ids[i]; i = (i + 1) & mask)
                if (m->hashes[i] == hash && eq(ix, m->ids[i] - 1, key))
                        return i;
        return SIZE_MAX;
}

static uint32_t idmap_find(const IdMap *m, const SkillIndex *ix, uint32_t hash, IdMapEq eq, const void *key) {
        size_t i = idmap_slot(m, ix, hash, eq, key);
        return i == SIZE_MAX ? NONE : m->ids[i] - 1;
}

/* Deletes slot i, moving back the entries after it that probing would no
 * longer reach (no tombstones). */
static void idmap_delete_slot(IdMap *m, size_t i) {
        size_t mask = m->cap - 1;
        size_t j = i;
        for (;;) {
                j = (j + 1) & mask;
                if (m->ids[j] == 0)
                        break;
                size_t home = m->hashes[j] & mask;
                /* entry j may move to i when its home is not in (i, j] cyclically */
                if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
                        m->ids[i] = m->ids[j];
                        m->hashes[i] = m->hashes[j];
                        i = j;
                }
        }
        m->ids[i] = 0;
        m->n--;
}

/* ---- the index ------------------------------------------------------------ */

typedef struct Posting {
        uint32_t doc;
        float tf;               /* the weighted term frequency */
} Posting;

typedef struct Term {
        char *text;             /* NULL: a free slot */
        uint32_t hash;
        uint32_t n, cap;
        Posting *postings;      /* unordered */
} Term;

/* A document's terms, sorted by term id; pos: its place in the term's postings. */
typedef struct DocTerm {
        uint32_t term, pos;
} DocTerm;

typedef struct Doc {
        char *ns, *name, *runtime, *description;
        int64_t version;
        uint32_t hash;
        float len;              /* the weighted length */
        uint32_t n_terms;
        DocTerm *terms;
        uint32_t dim;           /* 0: no embedding */
        float *emb;             /* unit length */
} Doc;

struct SkillIndex {
        Doc **docs;             /* by id; NULL: a free slot */
        uint32_t n_slots, cap_slots;
        uint32_t *free_docs;    /* a stack of free ids below n_slots, as big as cap_slots */
        uint32_t n_free_docs;
        size_t n_docs;
        double total_len;
        Term *terms;
        uint32_t n_term_slots, cap_terms;
        uint32_t *free_terms;
        uint32_t n_free_terms;
        IdMap doc_map, term_map;
};

typedef struct DocKey {
        const char *ns, *name;
} DocKey;

typedef struct TermKey {
        const char *text;
        size_t len;
} TermKey;

static bool doc_eq(const SkillIndex *ix, uint32_t id, const void *key) {
        const DocKey *k = key;
        return streq(ix->docs[id]->ns, k->ns) && streq(ix->docs[id]->name, k->name);
}

static bool term_eq(const SkillIndex *ix, uint32_t id, const void *key) {
        const TermKey *k = key;
        const char *t = ix->terms[id].text;
        return strncmp(t, k->text, k->len) == 0 && t[k->len] == 0;
}

static uint32_t doc_hash(const char *ns, const char *name) {
        uint32_t h = hash_bytes(2166136261u, ns, strlen(ns) + 1);
        return hash_bytes(h, name, strlen(name));
}

static uint32_t term_hash(const char *s, size_t len) {
        return hash_bytes(2166136261u, s, len);
}

static void doc_free(Doc *d) {
        if (!d)
                return;
        free(d->ns);
        free(d->name);
        free(d->runtime);
        free(d->description);
        free(d->terms);
        free(d->emb);
        free(d);
}

int skill_index_new(SkillIndex **ret) {
        SkillIndex *ix = calloc(1, sizeof(SkillIndex));
        if (!ix)
                return -ENOMEM;
        *ret = ix;
        return 0;
}

void skill_index_free(SkillIndex *ix) {
        if (!ix)
                return;
        for (uint32_t i = 0; i < ix->n_slots; i++)
                doc_free(ix->docs[i]);
        for (uint32_t i = 0; i < ix->n_term_slots; i++) {
                free(ix->terms[i].text);
                free(ix->terms[i].postings);
        }
        free(ix->docs);
        free(ix->free_docs);
        free(ix->terms);
        free(ix->free_terms);
        idmap_done(&ix->doc_map);
        idmap_done(&ix->term_map);
        free(ix);
}

size_t skill_index_count(const SkillIndex *ix) {
        return ix->n_docs;
}

/* ---- tokens --------------------------------------------------------------- */

/* Language keywords (python, node, sh) that say nothing about what code
 * does; sorted for bsearch. */
static const char *const code_stop[] = {
        "and", "as", "async", "await", "break", "case", "catch", "class", "const", "continue", "def",
        "default", "del", "do", "done", "elif", "else", "esac", "except", "export", "exports", "false",
        "fi", "finally", "for", "from", "function", "global", "if", "import", "in", "is", "lambda", "let",
        "local", "module", "new", "none", "nonlocal", "not", "null", "of", "or", "pass", "raise",
        "require", "return", "self", "switch", "then", "this", "throw", "true", "try", "typeof",
        "undefined", "var", "while", "with", "yield",
};

static int cmp_cstr(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static bool code_stop_word(const char *t) {
        return bsearch(&t, code_stop, ELEMENTSOF(code_stop), sizeof(code_stop[0]), cmp_cstr) != NULL;
}

static bool is_word_byte(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static bool is_upper(unsigned char c) {
        return c >= 'A' && c <= 'Z';
}

static bool is_lower_or_digit(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

typedef void (*TokenFn)(void *userdata, const char *tok, size_t len);

/* One part of a word (no '_', no camel boundary inside): lowercased,
 * filtered, handed on. */
static void token_emit(const char *s, size_t len, bool code, TokenFn fn, void *userdata) {
        if (len < 2 || len > SKILL_INDEX_TOKEN_MAX)
                return;
        char t[SKILL_INDEX_TOKEN_MAX + 1];
        bool digits = true;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = s[i];
                t[i] = is_upper(c) ? (char) (c - 'A' + 'a') : (char) c;
                digits = digits && c >= '0' && c <= '9';
        }
        t[len] = 0;
        if (code && (digits || code_stop_word(t)))
                return;
        fn(userdata, t, len);
}

/* Splits a run of word bytes at camelCase: before an upper-case letter that
 * follows a lower-case one or a digit ("parseCsv"), and before the last
 * capital of a run of them followed by a lower-case letter ("HTTPHeader"). */
static void word_split(const char *s, size_t len, bool code, TokenFn fn, void *userdata) {
        size_t start = 0;
        for (size_t i = 1; i < len; i++) {
                unsigned char p = s[i - 1], c = s[i];
                bool cut = is_upper(c) && (is_lower_or_digit(p) ||
                                           (is_upper(p) && i + 1 < len && is_lower_or_digit(s[i + 1]) &&
                                            !(s[i + 1] >= '0' && s[i + 1] <= '9')));
                if (cut) {
                        token_emit(s + start, i - start, code, fn, userdata);
                        start = i;
                }
        }
        token_emit(s + start, len - start, code, fn, userdata);
}

/* Every token of s[0..len): runs of letters, digits and bytes >= 0x80;
 * anything else ('_', '-', spaces, punctuation) separates. */
static void tokenize(const char *s, size_t len, bool code, TokenFn fn, void *userdata) {
        size_t i = 0;
        while (i < len) {
                while (i < len && !is_word_byte(s[i]))
                        i++;
                size_t start = i;
                while (i < len && is_word_byte(s[i]))
                        i++;
                if (i > start)
                        word_split(s + start, i - start, code, fn, userdata);
        }
}

/* ---- a bag of tokens with weights ----------------------------------------- */

typedef struct BagEntry {
        char *text;
        size_t len;
        uint32_t hash;
        float tf;
        bool in_code;
        uint32_t term;          /* the index's term id, or NONE: new */
        Posting *postings;      /* for a new term: its first postings array */
} BagEntry;

typedef struct Bag {
        BagEntry *e;
        size_t n, cap;
        uint32_t *slots;        /* entry + 1; 0: empty */
        size_t n_slots;         /* a power of 2 */
        size_t code_terms;
        float weight;           /* what the current field adds per token */
        bool code;              /* the current field is code: once per token, capped */
        int error;
} Bag;

static void bag_done(Bag *b) {
        for (size_t i = 0; i < b->n; i++) {
                free(b->e[i].text);
                free(b->e[i].postings);
        }
        free(b->e);
        free(b->slots);
        *b = (Bag) {};
}

static int bag_grow(Bag *b) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        BagEntry *e = realloc(b->e, cap * sizeof(BagEntry));
        if (!e)
                return -ENOMEM;
        b->e = e;
        b->cap = cap;
        uint32_t *slots = calloc(cap * 2, sizeof(uint32_t));
        if (!slots)
                return -ENOMEM;
        free(b->slots);
        b->slots = slots;
        b->n_slots = cap * 2;
        for (size_t i = 0; i < b->n; i++)
                for (size_t j = b->e[i].hash & (b->n_slots - 1);; j = (j + 1) & (b->n_slots - 1))
                        if (!b->slots[j]) {
                                b->slots[j] = i + 1;
                                break;
                        }
        return 0;
}

static void bag_add(void *userdata, const char *tok, size_t len) {
        Bag *b = userdata;
        if (b->error < 0)
                return;
        uint32_t h = term_hash(tok, len);
        size_t j = b->n_slots ? h & (b->n_slots - 1) : 0;
        for (; b->n_slots && b->slots[j]; j = (j + 1) & (b->n_slots - 1)) {
                BagEntry *e = &b->e[b->slots[j] - 1];
                if (e->hash == h && e->len == len && memcmp(e->text, tok, len) == 0) {
                        if (!b->code)
                                e->tf += b->weight;
                        else if (!e->in_code) {
                                e->tf += b->weight;
                                e->in_code = true;
                        }
                        return;
                }
        }
        if (b->code && b->code_terms >= SKILL_INDEX_CODE_TERMS_MAX)
                return;
        if (b->n == b->cap) {
                b->error = bag_grow(b);
                if (b->error < 0)
                        return;
                return bag_add(userdata, tok, len);
        }
        char *text = strndup(tok, len);
        if (!text) {
                b->error = -ENOMEM;
                return;
        }
        b->e[b->n] = (BagEntry) { .text = text, .len = len, .hash = h, .tf = b->weight, .in_code = b->code,
                                  .term = NONE };
        b->slots[j] = ++b->n;
        b->code_terms += b->code;
}

static void bag_field(Bag *b, const char *s, size_t len, float weight, bool code) {
        b->weight = weight;
        b->code = code;
        tokenize(s, len, code, bag_add, b);
}

/* ---- put and remove ------------------------------------------------------- */

static int cmp_doc_term(const void *a, const void *b) {
        uint32_t x = ((const DocTerm *) a)->term, y = ((const DocTerm *) b)->term;
        return (x > y) - (x < y);
}

static bool key_valid(const char *s) {
        size_t n = s ? strnlen(s, SKILL_INDEX_KEY_MAX + 1) : 0;
        return n >= 1 && n <= SKILL_INDEX_KEY_MAX && !memchr(s, '/', n);
}

/* The unit vector of emb into *ret (NULL for an all-zero one). */
static int embedding_unit(const float *emb, size_t dim, float **ret) {
        if (dim == 0 || dim > SKILL_INDEX_DIM_MAX)
                return -EINVAL;
        double ss = 0;
        for (size_t i = 0; i < dim; i++) {
                if (!isfinite(emb[i]))
                        return -EINVAL;
                ss += (double) emb[i] * emb[i];
        }
        if (!(ss > 0) || !isfinite(ss)) {
                *ret = NULL;
                return 0;
        }
        float *u = malloc(dim * sizeof(float));
        if (!u)
                return -ENOMEM;
        double inv = 1.0 / sqrt(ss);
        for (size_t i = 0; i < dim; i++)
                u[i] = (float) (emb[i] * inv);
        *ret = u;
        return 0;
}

static void doc_free_p(Doc **d) {
        doc_free(*d);
}

/* A new document with its strings and embedding, not yet in the index. */
static int doc_make(const char *ns, const char *name, int64_t version, const char *runtime,
                    const char *description, const float *emb, size_t dim, Doc **ret) {
        _cleanup_(doc_free_p) Doc *d = calloc(1, sizeof(Doc));
        if (!d)
                return -ENOMEM;
        d->ns = strdup(ns);
        d->name = strdup(name);
        d->runtime = strdup(runtime);
        d->description = strdup(description);
        if (!d->ns || !d->name || !d->runtime || !d->description)
                return -ENOMEM;
        d->version = version;
        d->hash = doc_hash(ns, name);
        if (emb && dim > 0) {
                int r = embedding_unit(emb, dim, &d->emb);
                if (r < 0)
                        return r;
                d->dim = d->emb ? (uint32_t) dim : 0;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

/* Everything a put can fail on, before it changes anything: each term
 * found or its text and postings allocated, room in every array and map. */
static int put_reserve(SkillIndex *ix, Bag *b, Doc *d, bool replacing) {
        size_t new_terms = 0;
        for (size_t i = 0; i < b->n; i++) {
                BagEntry *e = &b->e[i];
                e->term = idmap_find(&ix->term_map, ix, e->hash, term_eq, &(TermKey) { e->text, e->len });
                if (e->term == NONE) {
                        e->postings = malloc(4 * sizeof(Posting));
                        if (!e->postings)
                                return -ENOMEM;
                        new_terms++;
                        continue;
                }
                Term *t = &ix->terms[e->term];
                if (t->n == t->cap) {
                        uint32_t cap = t->cap * 2;
                        Posting *p = realloc(t->postings, cap * sizeof(Posting));
                        if (!p)
                                return -ENOMEM;
                        t->postings = p;
                        t->cap = cap;
                }
        }
        if ((size_t) ix->n_term_slots + new_terms > UINT32_MAX / 2)
                return -ENOSPC;
        if (ix->n_term_slots + new_terms > ix->cap_terms) {
                size_t cap = ix->cap_terms ? ix->cap_terms : 256;
                while (cap < ix->n_term_slots + new_terms)
                        cap *= 2;
                Term *t = realloc(ix->terms, cap * sizeof(Term));
                if (!t)
                        return -ENOMEM;
                ix->terms = t;
                uint32_t *f = realloc(ix->free_terms, cap * sizeof(uint32_t));
                if (!f)
                        return -ENOMEM;
                ix->free_terms = f;
                ix->cap_terms = cap;
        }
        int r = idmap_reserve(&ix->term_map, ix->term_map.n + new_terms);
        if (r < 0)
                return r;
        if (b->n > 0) {
                d->terms = malloc(b->n * sizeof(DocTerm));
                if (!d->terms)
                        return -ENOMEM;
        }
        if (replacing)
                return 0;
        if (ix->n_docs >= SKILL_INDEX_DOCS_MAX)
                return -ENOSPC;
        if (ix->n_free_docs == 0 && ix->n_slots == ix->cap_slots) {
                uint32_t cap = ix->cap_slots ? ix->cap_slots * 2 : 64;
                Doc **docs = realloc(ix->docs, cap * sizeof(Doc *));
                if (!docs)
                        return -ENOMEM;
                ix->docs = docs;
                uint32_t *f = realloc(ix->free_docs, cap * sizeof(uint32_t));
                if (!f)
                        return -ENOMEM;
                ix->free_docs = f;
                ix->cap_slots = cap;
        }
        return idmap_reserve(&ix->doc_map, ix->doc_map.n + 1);
}

/* Takes document id's postings out of every term (swap with the last,
 * fixing the moved posting's back reference); terms left empty stay until
 * terms_sweep. */
static void doc_unpost(SkillIndex *ix, uint32_t id) {
        Doc *d = ix->docs[id];
        for (uint32_t i = 0; i < d->n_terms; i++) {
                Term *t = &ix->terms[d->terms[i].term];
                uint32_t pos = d->terms[i].pos;
                Posting last = t->postings[--t->n];
                if (pos == t->n)
                        continue;
                t->postings[pos] = last;
                Doc *m = ix->docs[last.doc];
                DocTerm *dt = bsearch(&(DocTerm) { .term = d->terms[i].term }, m->terms, m->n_terms,
                                      sizeof(DocTerm), cmp_doc_term);
                dt->pos = pos;
        }
        ix->total_len -= d->len;
}

/* Frees the terms of d that no document uses any more. */
static void terms_sweep(SkillIndex *ix, const Doc *d) {
        for (uint32_t i = 0; i < d->n_terms; i++) {
                uint32_t id = d->terms[i].term;
                Term *t = &ix->terms[id];
                if (!t->text || t->n > 0)
                        continue;
                size_t slot = idmap_slot(&ix->term_map, ix, t->hash, term_eq,
                                         &(TermKey) { t->text, strlen(t->text) });
                idmap_delete_slot(&ix->term_map, slot);
                free(t->text);
                free(t->postings);
                *t = (Term) {};
                ix->free_terms[ix->n_free_terms++] = id;
        }
}

/* Links the reserved document d in as id: new terms first, then postings. */
static void doc_post(SkillIndex *ix, Bag *b, Doc *d, uint32_t id) {
        for (size_t i = 0; i < b->n; i++) {
                BagEntry *e = &b->e[i];
                if (e->term == NONE) {
                        uint32_t t = ix->n_free_terms > 0 ? ix->free_terms[--ix->n_free_terms] : ix->n_term_slots++;
                        ix->terms[t] = (Term) { .text = TAKE_PTR(e->text), .hash = e->hash, .cap = 4,
                                                .postings = TAKE_PTR(e->postings) };
                        idmap_put_raw(&ix->term_map, e->hash, t);
                        e->term = t;
                }
                Term *t = &ix->terms[e->term];
                d->terms[i] = (DocTerm) { .term = e->term, .pos = t->n };
                t->postings[t->n++] = (Posting) { .doc = id, .tf = e->tf };
                d->len += e->tf;
        }
        d->n_terms = b->n;
        if (d->n_terms > 1)
                qsort(d->terms, d->n_terms, sizeof(DocTerm), cmp_doc_term);
        ix->total_len += d->len;
}

int skill_index_put(SkillIndex *ix, const char *ns, const char *name, int64_t version, const char *runtime,
                    const char *description, const char *code, const float *emb, size_t dim) {
        runtime = runtime ?: "";
        description = description ?: "";
        if (!key_valid(ns) || !key_valid(name) || strnlen(runtime, SKILL_INDEX_RUNTIME_MAX + 1) > SKILL_INDEX_RUNTIME_MAX)
                return -EINVAL;
        size_t dlen = strnlen(description, SKILL_INDEX_DESCRIPTION_MAX + 1);
        if (dlen > SKILL_INDEX_DESCRIPTION_MAX)
                return -E2BIG;
        _cleanup_(doc_free_p) Doc *d = NULL;
        int r = doc_make(ns, name, version, runtime, description, emb, emb ? dim : 0, &d);
        if (r < 0)
                return r;

        __attribute__((cleanup(bag_done))) Bag b = {};
        bag_field(&b, name, strlen(name), SKILL_INDEX_WEIGHT_NAME, false);
        bag_field(&b, description, dlen, SKILL_INDEX_WEIGHT_DESCRIPTION, false);
        if (code)
                bag_field(&b, code, strnlen(code, SKILL_INDEX_CODE_SCAN_MAX), SKILL_INDEX_WEIGHT_CODE, true);
        if (b.error < 0)
                return b.error;

        uint32_t old = idmap_find(&ix->doc_map, ix, d->hash, doc_eq, &(DocKey) { ns, name });
        r = put_reserve(ix, &b, d, old != NONE);
        if (r < 0)
                return r;

        /* From here on nothing fails. A replaced document keeps its id. */
        uint32_t id;
        Doc *prev = NULL;
        if (old != NONE) {
                prev = ix->docs[old];
                doc_unpost(ix, old);
                id = old;
        } else {
                id = ix->n_free_docs > 0 ? ix->free_docs[--ix->n_free_docs] : ix->n_slots++;
                idmap_put_raw(&ix->doc_map, d->hash, id);
                ix->n_docs++;
        }
        ix->docs[id] = d;
        doc_post(ix, &b, TAKE_PTR(d), id);
        if (prev) {
                terms_sweep(ix, prev);
                doc_free(prev);
        }
        return 0;
}

int skill_index_remove(SkillIndex *ix, const char *ns, const char *name) {
        if (!key_valid(ns) || !key_valid(name))
                return -ENOENT;
        size_t slot = idmap_slot(&ix->doc_map, ix, doc_hash(ns, name), doc_eq, &(DocKey) { ns, name });
        if (slot == SIZE_MAX)
                return -ENOENT;
        uint32_t id = ix->doc_map.ids[slot] - 1;
        Doc *d = ix->docs[id];
        doc_unpost(ix, id);
        terms_sweep(ix, d);
        idmap_delete_slot(&ix->doc_map, slot);
        doc_free(d);
        ix->docs[id] = NULL;
        ix->free_docs[ix->n_free_docs++] = id;
        ix->n_docs--;
        if (ix->n_docs == 0)
                ix->total_len = 0;      /* no float dust left over */
        return 0;
}

int skill_index_lookup(const SkillIndex *ix, const char *ns, const char *name, int64_t *ret_version) {
        if (!key_valid(ns) || !key_valid(name))
                return -ENOENT;
        uint32_t id = idmap_find(&ix->doc_map, ix, doc_hash(ns, name), doc_eq, &(DocKey) { ns, name });
        if (id == NONE)
                return -ENOENT;
        if (ret_version)
                *ret_version = ix->docs[id]->version;
        return 0;
}

/* ---- search --------------------------------------------------------------- */

typedef struct Cand {
        uint32_t doc;
        bool has_emb;
        double bm25, cosine;    /* raw */
        double lexical, semantic, score;        /* normalised, merged */
} Cand;

/* Candidates by document id: open addressing over the touched documents
 * only, so a query costs its postings, not the index. */
typedef struct CandSet {
        Cand *c;
        size_t n, cap;
        uint32_t *slots;        /* cand + 1 */
        size_t mask;
} CandSet;

static void candset_done(CandSet *s) {
        free(s->c);
        free(s->slots);
}

static int candset_init(CandSet *s, size_t n) {
        size_t cap = 16;
        while (cap < n * 2)
                cap *= 2;
        *s = (CandSet) { .c = malloc((n ? n : 1) * sizeof(Cand)), .cap = n, .slots = calloc(cap, sizeof(uint32_t)),
                         .mask = cap - 1 };
        return s->c && s->slots ? 0 : -ENOMEM;
}

static Cand *candset_get(CandSet *s, uint32_t doc) {
        size_t j = ((uint32_t) doc * 2654435761u) & s->mask;
        for (; s->slots[j]; j = (j + 1) & s->mask)
                if (s->c[s->slots[j] - 1].doc == doc)
                        return &s->c[s->slots[j] - 1];
        if (s->n == s->cap)
                return NULL;    /* cannot happen: sized for every posting and document */
        s->c[s->n] = (Cand) { .doc = doc };
        s->slots[j] = ++s->n;
        return &s->c[s->n - 1];
}

typedef struct Query {
        const SkillIndex *ix;
        uint32_t terms[SKILL_INDEX_QUERY_MAX / 2];      /* distinct term ids (tokens are >= 2 bytes) */
        size_t n;
} Query;

static void query_add(void *userdata, const char *tok, size_t len) {
        Query *q = userdata;
        uint32_t t = idmap_find(&q->ix->term_map, q->ix, term_hash(tok, len), term_eq, &(TermKey) { tok, len });
        if (t == NONE)
                return;
        for (size_t i = 0; i < q->n; i++)
                if (q->terms[i] == t)
                        return;
        if (q->n < ELEMENTSOF(q->terms))
                q->terms[q->n++] = t;
}

static bool ns_match(const Doc *d, const char *ns) {
        return !ns || streq(d->ns, ns);
}

static void bm25_accumulate(const SkillIndex *ix, const Query *q, const char *ns, CandSet *s) {
        double n = (double) ix->n_docs;
        double avgdl = ix->n_docs > 0 && ix->total_len > 0 ? ix->total_len / n : 1;
        const double k1 = SKILL_INDEX_BM25_K1, b = SKILL_INDEX_BM25_B;
        for (size_t i = 0; i < q->n; i++) {
                const Term *t = &ix->terms[q->terms[i]];
                double df = t->n;
                double idf = log(1 + (n - df + 0.5) / (df + 0.5));
                for (uint32_t p = 0; p < t->n; p++) {
                        const Doc *d = ix->docs[t->postings[p].doc];
                        if (!ns_match(d, ns))
                                continue;
                        double tf = t->postings[p].tf;
                        Cand *c = candset_get(s, t->postings[p].doc);
                        if (c)
                                c->bm25 += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * d->len / avgdl));
                }
        }
}

static float dot(const float *a, const float *b, size_t n) {
        float acc[8] = {};
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
                for (size_t k = 0; k < 8; k++)
                        acc[k] += a[i + k] * b[i + k];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < n; i++)
                s += a[i] * b[i];
        return s;
}

/* Every document with an embedding of the query's dimension: its cosine. */
static size_t cosine_accumulate(const SkillIndex *ix, const float *q, size_t dim, const char *ns, CandSet *s) {
        size_t n = 0;
        for (uint32_t id = 0; id < ix->n_slots; id++) {
                const Doc *d = ix->docs[id];
                if (!d || d->dim != dim || !ns_match(d, ns))
                        continue;
                Cand *c = candset_get(s, id);
                if (!c)
                        continue;
                c->has_emb = true;
                c->cosine = fmax(-1.0, fmin(1.0, dot(q, d->emb, dim)));
                n++;
        }
        return n;
}

/* The merge rule of skills_search.h, over the candidates. */
static void merge_scores(CandSet *s, bool semantic) {
        double max_bm25 = 0, min_cos = INFINITY, max_cos = -INFINITY;
        for (size_t i = 0; i < s->n; i++) {
                max_bm25 = fmax(max_bm25, s->c[i].bm25);
                if (s->c[i].has_emb) {
                        min_cos = fmin(min_cos, s->c[i].cosine);
                        max_cos = fmax(max_cos, s->c[i].cosine);
                }
        }
        for (size_t i = 0; i < s->n; i++) {
                Cand *c = &s->c[i];
                c->lexical = max_bm25 > 0 ? c->bm25 / max_bm25 : 0;
                c->semantic = !semantic || !c->has_emb ? 0 :
                              max_cos > min_cos ? (c->cosine - min_cos) / (max_cos - min_cos) : 1;
                c->score = semantic ? (1 - SKILL_INDEX_SEMANTIC_WEIGHT) * c->lexical +
                                      SKILL_INDEX_SEMANTIC_WEIGHT * c->semantic
                                    : c->lexical;
        }
}

/* > 0 when a ranks before b: higher score, then name, then namespace. */
static int cand_better(const SkillIndex *ix, const Cand *a, const Cand *b) {
        if (a->score != b->score)
                return a->score > b->score ? 1 : -1;
        const Doc *x = ix->docs[a->doc], *y = ix->docs[b->doc];
        int r = strcmp(x->name, y->name);
        if (r == 0)
                r = strcmp(x->ns, y->ns);
        return -r;
}

/* A min-heap of the best k (its root the worst of them). */
static void heap_down(const SkillIndex *ix, Cand **h, size_t n, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, w = i;
                if (l < n && cand_better(ix, h[w], h[l]) > 0)
                        w = l;
                if (r < n && cand_better(ix, h[w], h[r]) > 0)
                        w = r;
                if (w == i)
                        return;
                Cand *t = h[i];
                h[i] = h[w];
                h[w] = t;
                i = w;
        }
}

static void heap_up(const SkillIndex *ix, Cand **h, size_t i) {
        while (i > 0 && cand_better(ix, h[(i - 1) / 2], h[i]) > 0) {
                Cand *t = h[i];
                h[i] = h[(i - 1) / 2];
                h[(i - 1) / 2] = t;
                i = (i - 1) / 2;
        }
}

/* The k best of the candidates, best first, into out. Returns how many. */
static size_t top_k(const SkillIndex *ix, CandSet *s, Cand **out, size_t k) {
        size_t n = 0;
        if (k == 0)
                return 0;
        for (size_t i = 0; i < s->n; i++) {
                Cand *c = &s->c[i];
                if (n < k) {
                        out[n] = c;
                        heap_up(ix, out, n++);
                } else if (cand_better(ix, c, out[0]) > 0) {
                        out[0] = c;
                        heap_down(ix, out, n, 0);
                }
        }
        /* pop the worst to the end, so the array ends best first */
        for (size_t m = n; m > 1; m--) {
                Cand *t = out[0];
                out[0] = out[m - 1];
                out[m - 1] = t;
                heap_down(ix, out, m - 1, 0);
        }
        return n;
}

int skill_index_search(const SkillIndex *ix, const char *ns, const char *query, const float *qemb, size_t dim,
                       SkillHit *hits, size_t max, bool *ret_semantic) {
        if (!query)
                return -EINVAL;
        size_t qlen = strnlen(query, SKILL_INDEX_QUERY_MAX + 1);
        if (qlen > SKILL_INDEX_QUERY_MAX)
                return -E2BIG;
        _cleanup_free_ float *qunit = NULL;
        if (qemb && dim > 0) {
                int r = embedding_unit(qemb, dim, &qunit);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ Query *q = calloc(1, sizeof(Query));
        if (!q)
                return -ENOMEM;
        q->ix = ix;
        tokenize(query, qlen, false, query_add, q);

        size_t n_postings = 0;
        for (size_t i = 0; i < q->n; i++)
                n_postings += ix->terms[q->terms[i]].n;
        size_t bound = n_postings + (qunit ? ix->n_docs : 0);
        __attribute__((cleanup(candset_done))) CandSet s = {};
        if (candset_init(&s, MIN(bound, ix->n_docs)) < 0)
                return -ENOMEM;
        bm25_accumulate(ix, q, ns, &s);
        bool semantic = qunit && cosine_accumulate(ix, qunit, dim, ns, &s) > 0;
        merge_scores(&s, semantic);

        size_t k = MIN(max, s.n);
        _cleanup_free_ Cand **top = malloc((k ? k : 1) * sizeof(Cand *));
        if (!top)
                return -ENOMEM;
        k = top_k(ix, &s, top, k);
        for (size_t i = 0; i < k; i++) {
                const Doc *d = ix->docs[top[i]->doc];
                const Cand *c = top[i];
                hits[i] = (SkillHit) { .ns = d->ns, .name = d->name, .description = d->description,
                                       .runtime = d->runtime, .version = d->version, .score = c->score,
                                       .lexical = c->lexical, .semantic = c->semantic, .bm25 = c->bm25,
                                       .cosine = c->cosine };
        }
        if (ret_semantic)
                *ret_semantic = semantic;
        return (int) k;
}
