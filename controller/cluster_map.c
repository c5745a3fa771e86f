/* controller/cluster_map.c: a string-keyed hash table with chaining for the
 * cluster's nodes, revisions, instances and functions (tens of thousands of
 * functions make linear lists too slow for a once-a-second ticker). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controller/cluster_internal.h"

static size_t hash(const char *s) {
        size_t h = 1469598103934665603ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211ULL;
        return h;
}

void *cmap_get(const Map *m, const char *key) {
        if (m->n_buckets == 0)
                return NULL;
        for (MapEntry *e = m->buckets[hash(key) % m->n_buckets]; e; e = e->next)
                if (strcmp(e->key, key) == 0)
                        return e->value;
        return NULL;
}

static int grow(Map *m) {
        size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
        MapEntry **b = calloc(nb, sizeof *b);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (MapEntry *e = m->buckets[i], *next; e; e = next) {
                        next = e->next;
                        size_t k = hash(e->key) % nb;
                        e->next = b[k];
                        b[k] = e;
                }
        free(m->buckets);
        m->buckets = b;
        m->n_buckets = nb;
        return 0;
}

/* Insert or replace (the old value is the caller's to free). */
int cmap_put(Map *m, const char *key, void *value) {
        if (m->n >= m->n_buckets && grow(m) < 0)
                return -ENOMEM;
        size_t k = hash(key) % m->n_buckets;
        for (MapEntry *e = m->buckets[k]; e; e = e->next)
                if (strcmp(e->key, key) == 0) {
                        e->value = value;
                        return 0;
                }
        MapEntry *e = malloc(sizeof *e);
        char *dup = strdup(key);
        if (!e || !dup) {
                free(e);
                free(dup);
                return -ENOMEM;
        }
        *e = (MapEntry) { dup, value, m->buckets[k] };
        m->buckets[k] = e;
        m->n++;
        return 0;
}

void *cmap_remove(Map *m, const char *key) {
        if (m->n_buckets == 0)
                return NULL;
        for (MapEntry **p = &m->buckets[hash(key) % m->n_buckets]; *p; p = &(*p)->next)
                if (strcmp((*p)->key, key) == 0) {
                        MapEntry *e = *p;
                        void *v = e->value;
                        *p = e->next;
                        free(e->key);
                        free(e);
                        m->n--;
                        return v;
                }
        return NULL;
}

/* The entry after e (NULL: the first); *i is the bucket cursor. Removing
 * the current entry while iterating is not allowed. */
MapEntry *cmap_next(const Map *m, MapEntry *e, size_t *i) {
        if (e && e->next)
                return e->next;
        for (*i = e ? *i + 1 : 0; *i < m->n_buckets; (*i)++)
                if (m->buckets[*i])
                        return m->buckets[*i];
        return NULL;
}

void cmap_clear(Map *m) {
        for (size_t i = 0; i < m->n_buckets; i++)
                for (MapEntry *e = m->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e->key);
                        free(e);
                }
        free(m->buckets);
        *m = (Map) { 0 };
}
