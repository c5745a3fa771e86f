/* controller/cluster_tokens.c: what the route table carries besides the
 * functions: the skills served at /skills/NAME (set by controller/skills.c)
 * and the tokens, so that activators check /fn/ calls themselves
 * (docs/internals.md): every token
 * not revoked, as the store keeps it (id, the SHA-256 of its secret, role,
 * namespaces), never a secret. Read from the store with every full sync
 * and at once when this controller creates or revokes a token; a change
 * is a new routes version. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/cluster_internal.h"

static json_t *namespaces_list(const char *list) {
        json_t *a = json_array();
        for (const char *p = list; a && p && *p;) {
                size_t n = strcspn(p, ",");
                if (json_array_append_new(a, json_stringn(p, n)) < 0)
                        a = (json_decref(a), NULL);
                p += n + (p[n] == ',');
        }
        return a;
}

/* [{id, secretHash, role, namespaces}] of the live tokens, oldest first. */
static int tokens_read(Store *store, json_t **ret) {
        StoreToken *t = NULL;
        size_t n = 0;
        int r = store_token_list(store, &t, &n);
        if (r < 0)
                return r;
        json_t *list = json_array();
        for (size_t i = 0; list && i < n; i++) {
                if (t[i].revoked_ms != 0 || !t[i].id || !t[i].secret_hash || !t[i].role)
                        continue;
                json_t *j = json_pack("{s:s, s:s, s:s, s:o}", "id", t[i].id, "secretHash", t[i].secret_hash, "role",
                                      t[i].role, "namespaces", namespaces_list(t[i].namespaces));
                if (!j || json_array_append_new(list, j) < 0)
                        list = (json_decref(list), NULL);
        }
        store_token_array_free(t, n);
        if (!list)
                return -ENOMEM;
        *ret = list;
        return 0;
}

int cluster_sync_tokens_locked(Cluster *c) {
        json_t *list = NULL;
        int r = tokens_read(c->store, &list);
        if (r < 0)
                return r;
        pthread_mutex_lock(&c->lock);
        if (!c->tokens || !json_equal(c->tokens, list)) {
                json_decref(c->tokens);
                c->tokens = json_incref(list);
                cluster_routes_changed(c);
        }
        pthread_mutex_unlock(&c->lock);
        json_decref(list);
        return 0;
}

void cluster_tokens_changed(Cluster *c) {
        if (!c)
                return;
        pthread_mutex_lock(&c->sync_lock);
        int r = cluster_sync_tokens_locked(c);
        pthread_mutex_unlock(&c->sync_lock);
        if (r < 0) {
                fprintf(stderr, "fnbox-controller: reading tokens from the store: %s (the next sync tries again)\n",
                        strerror(-r));
                pthread_mutex_lock(&c->lock);
                c->sync_all_pending = true;
                pthread_mutex_unlock(&c->lock);
        }
}

void cluster_skills_set(Cluster *c, json_t *list) {
        if (!c || !list) {
                json_decref(list);
                return;
        }
        pthread_mutex_lock(&c->lock);
        if (!c->skills || !json_equal(c->skills, list)) {
                json_decref(c->skills);
                c->skills = json_incref(list);
                cluster_routes_changed(c);
        }
        pthread_mutex_unlock(&c->lock);
        json_decref(list);
}
