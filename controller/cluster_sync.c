/* controller/cluster_sync.c: functions and revisions from the store into
 * the cluster. A function's traffic split is resolved (latestRevision
 * becomes the revision it means); every revision it names with a percent
 * or a tag is read once (revisions are immutable) with its variants turned
 * into placement options. Store reads happen outside the cluster's lock;
 * one sync runs at a time. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/api.h"
#include "controller/cluster_internal.h"
#include "lib/manifest.h"
#include "lib/util.h"

static void store_function_clearp(StoreFunction *f) {
        store_function_clear(f);
}

static void store_revision_clearp(StoreRevision *r) {
        store_revision_clear(r);
}

/* ---- revisions ---------------------------------------------------------------------- */

static int selector_pairs(const json_t *sel, ManifestPair **ret, size_t *ret_n) {
        size_t n = json_object_size(sel), k = 0;
        ManifestPair *p = calloc(n ? n : 1, sizeof *p);
        const char *key;
        json_t *v;
        if (!p)
                return -ENOMEM;
        *ret = p;
        json_object_foreach((json_t *) sel, key, v) {
                if (!json_is_string(v))
                        continue;
                if (!(p[k].key = strdup(key)) || !(p[k].value = strdup(json_string_value(v))))
                        return -ENOMEM;         /* the caller frees what is there */
                *ret_n = ++k;
        }
        return 0;
}

/* The spec a node gets for a variant: the variant's code, entrypoint, env
 * and limits in place of the spec's, its selector, and no variants. */
static json_t *variant_spec(const json_t *spec, const json_t *v) {
        json_t *s = json_deep_copy(spec);
        static const char *const keys[] = { "code", "entrypoint", "env", "limits", "nodeSelector" };
        for (size_t i = 0; s && i < ELEMENTSOF(keys); i++) {
                json_t *val = json_object_get(v, keys[i]);
                if (val && json_object_set(s, keys[i], val) < 0)
                        s = (json_decref(s), NULL);
        }
        if (s && json_object_set_new(s, "variants", json_array()) < 0)
                s = (json_decref(s), NULL);
        return s;
}

static int rev_options(Rev *r) {
        const json_t *variants = json_object_get(r->spec, "variants");
        size_t n = json_array_size(variants);
        r->options = calloc(n ? n : 1, sizeof *r->options);
        if (!r->options)
                return -ENOMEM;
        if (n == 0) {
                RevOption *o = &r->options[r->n_options++];
                o->cpu_millis = r->params.cpu_millis;
                o->memory_bytes = r->params.memory_bytes;
                o->gpus = r->params.gpus;
                o->spec = json_incref(r->spec);
                return selector_pairs(json_object_get(r->spec, "nodeSelector"), &o->selector, &o->n_selector);
        }
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(variants, i);
                RevOption *o = &r->options[r->n_options++];
                ManifestParams p = r->params;
                manifest_limits_params(json_object_get(v, "limits"), &p);
                o->cpu_millis = p.cpu_millis;
                o->memory_bytes = p.memory_bytes;
                o->gpus = p.gpus;
                const char *name = json_string_value(json_object_get(v, "name"));
                if (!(o->variant = strdup(name ? name : "")) || !(o->spec = variant_spec(r->spec, v)) ||
                    selector_pairs(json_object_get(v, "nodeSelector"), &o->selector, &o->n_selector) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int rev_from_store(const StoreRevision *sr, Rev **ret) {
        Rev *r = calloc(1, sizeof *r);
        char name[256];
        if (!r)
                return -ENOMEM;
        snprintf(name, sizeof name, "%s-%05" PRId64, sr->function, sr->number);
        r->spec = json_loads(sr->spec_json ? sr->spec_json : "{}", 0, NULL);
        if (!r->spec)
                r->spec = json_object();
        manifest_spec_params(r->spec, &r->params);
        r->ns = strdup(sr->namespace_);
        r->function = strdup(sr->function);
        r->name = strdup(name);
        r->code_digest = strdup(sr->code_digest ? sr->code_digest : "");
        r->created_wall_ms = sr->created_ms;
        r->initial_pending = true;
        if (r->ns && r->name && asprintf(&r->key, "%s/%s", r->ns, r->name) < 0)
                r->key = NULL;
        if (!r->spec || !r->ns || !r->function || !r->name || !r->code_digest || !r->key || rev_options(r) < 0) {
                rev_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

/* ---- functions ------------------------------------------------------------------------ */

/* [{revision, percent, tag?}] with latestRevision resolved. */
static json_t *resolve_traffic(const StoreFunction *f) {
        json_t *in = json_loads(f->traffic_json ? f->traffic_json : "[]", 0, NULL), *out = json_array(), *e;
        size_t i;
        json_array_foreach(in, i, e) {
                char name[256];
                const char *rev = json_string_value(json_object_get(e, "revision"));
                if (!rev && json_is_true(json_object_get(e, "latestRevision")) && f->latest_revision > 0) {
                        snprintf(name, sizeof name, "%s-%05" PRId64, f->name, f->latest_revision);
                        rev = name;
                }
                if (!rev || !out)
                        continue;
                json_t *tag = json_object_get(e, "tag");
                json_t *o = json_pack("{s:s, s:I}", "revision", rev, "percent",
                                      json_integer_value(json_object_get(e, "percent")));
                if (o && json_is_string(tag))
                        json_object_set(o, "tag", tag);
                if (!o || json_array_append_new(out, o) < 0)
                        out = (json_decref(out), NULL);
        }
        json_decref(in);
        return out;
}

static bool routed_entry(const json_t *e) {
        return json_integer_value(json_object_get(e, "percent")) > 0 || json_object_get(e, "tag");
}

/* Read the revisions the traffic names that the cluster does not have yet. */
static void fetch_revisions(Cluster *c, const StoreFunction *f, const json_t *traffic) {
        size_t i;
        json_t *e;
        json_array_foreach(traffic, i, e) {
                char key[512];
                const char *rev = json_string_value(json_object_get(e, "revision"));
                snprintf(key, sizeof key, "%s/%s", f->namespace_, rev);
                pthread_mutex_lock(&c->lock);
                bool have = cmap_get(&c->revs, key) != NULL;
                pthread_mutex_unlock(&c->lock);
                const char *num = strrchr(rev, '-');
                if (have || !num)
                        continue;
                _cleanup_(store_revision_clearp) StoreRevision sr = {};
                Rev *r = NULL;
                if (store_revision_get(c->store, f->namespace_, f->name, strtoll(num + 1, NULL, 10), &sr) < 0 ||
                    rev_from_store(&sr, &r) < 0)
                        continue;
                pthread_mutex_lock(&c->lock);
                if (cmap_get(&c->revs, key) || cmap_put(&c->revs, key, r) < 0)
                        rev_free(r);
                pthread_mutex_unlock(&c->lock);
        }
}

/* Which revisions of ns/function the traffic routes (NULL: none). Called
 * with the lock. */
static void set_reachable(Cluster *c, const char *ns, const char *function, const json_t *traffic) {
        size_t it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->revs, e, &it));) {
                Rev *r = e->value;
                if (strcmp(r->ns, ns) != 0 || strcmp(r->function, function) != 0)
                        continue;
                bool reach = false;
                size_t i;
                json_t *t;
                json_array_foreach(traffic, i, t)
                        reach = reach || (routed_entry(t) &&
                                          strcmp(json_string_value(json_object_get(t, "revision")), r->name) == 0);
                if (reach != r->reachable) {
                        r->reachable = reach;
                        cluster_routes_changed(c);
                }
        }
}

static void function_remove(Cluster *c, const char *key, const char *ns, const char *name) {
        Func *f = cmap_remove(&c->funcs, key);
        if (f) {
                func_free(f);
                cluster_routes_changed(c);
        }
        set_reachable(c, ns, name, NULL);
}

/* ---- replay pins ---------------------------------------------------------------------- */

static void pin_key(const char *ns, const char *function, const char *revision, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s/%s", ns, function, revision);
}

/* The pinned revisions of ns/function as entries {revision, percent 0,
 * tag fnbox-rN} added to traffic (c->lock held). */
static int add_pins(Cluster *c, const StoreFunction *sf, json_t *traffic) {
        char prefix[512];
        size_t plen = (size_t) snprintf(prefix, sizeof prefix, "%s/%s/", sf->namespace_, sf->name), it = 0;
        for (MapEntry *e = NULL; (e = cmap_next(&c->pins, e, &it));) {
                if (strncmp(e->key, prefix, plen) != 0 || strchr(e->key + plen, '/'))
                        continue;
                const char *rev = e->key + plen;
                int64_t n = api_revision_number(sf->name, rev);
                char tag[64];
                if (n <= 0)
                        continue;
                snprintf(tag, sizeof tag, MANIFEST_RESERVED_TAG_PREFIX "r%" PRId64, n);
                json_t *o = json_pack("{s:s, s:i, s:s}", "revision", rev, "percent", 0, "tag", tag);
                if (!o || json_array_append_new(traffic, o) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int cluster_pin(Cluster *c, const char *ns, const char *function, const char *revision, char *tag, size_t tag_size) {
        char key[512];
        int64_t n = api_revision_number(function, revision);
        if (n <= 0)
                return -EINVAL;
        pin_key(ns, function, revision, key, sizeof key);
        pthread_mutex_lock(&c->lock);
        uintptr_t refs = (uintptr_t) cmap_get(&c->pins, key);
        int r = cmap_put(&c->pins, key, (void *) (refs + 1));
        pthread_mutex_unlock(&c->lock);
        if (r < 0)
                return r;
        snprintf(tag, tag_size, MANIFEST_RESERVED_TAG_PREFIX "r%" PRId64, n);
        r = cluster_sync_function(c, ns, function);
        if (r < 0)
                cluster_unpin(c, ns, function, revision);
        return r;
}

void cluster_unpin(Cluster *c, const char *ns, const char *function, const char *revision) {
        char key[512];
        pin_key(ns, function, revision, key, sizeof key);
        pthread_mutex_lock(&c->lock);
        uintptr_t refs = (uintptr_t) cmap_get(&c->pins, key);
        if (refs > 1)
                cmap_put(&c->pins, key, (void *) (refs - 1));
        else if (refs == 1)
                cmap_remove(&c->pins, key);
        pthread_mutex_unlock(&c->lock);
        if (refs == 1)
                cluster_sync_function(c, ns, function);
}

/* One function's current form into the cluster. */
static int function_apply(Cluster *c, const StoreFunction *sf) {
        json_t *traffic = resolve_traffic(sf);
        if (!traffic)
                return -ENOMEM;
        pthread_mutex_lock(&c->lock);
        int rp = add_pins(c, sf, traffic);
        pthread_mutex_unlock(&c->lock);
        if (rp < 0) {
                json_decref(traffic);
                return rp;
        }
        fetch_revisions(c, sf, traffic);
        char *key = NULL;
        if (asprintf(&key, "%s/%s", sf->namespace_, sf->name) < 0) {
                json_decref(traffic);
                return -ENOMEM;
        }
        int r = 0;
        pthread_mutex_lock(&c->lock);
        Func *f = cmap_get(&c->funcs, key);
        if (!f) {
                f = calloc(1, sizeof *f);
                if (!f || !(f->key = strdup(key)) || !(f->ns = strdup(sf->namespace_)) || !(f->name = strdup(sf->name)) ||
                    cmap_put(&c->funcs, key, f) < 0) {
                        func_free(f);
                        f = NULL;
                        r = -ENOMEM;
                }
        }
        if (f && (!f->traffic || !json_equal(f->traffic, traffic) || f->latest != sf->latest_revision)) {
                json_decref(f->traffic);
                f->traffic = json_incref(traffic);
                f->latest = sf->latest_revision;
                cluster_routes_changed(c);
        }
        if (f)
                set_reachable(c, sf->namespace_, sf->name, traffic);
        pthread_mutex_unlock(&c->lock);
        json_decref(traffic);
        free(key);
        return r;
}

int cluster_sync_function(Cluster *c, const char *ns, const char *name) {
        _cleanup_(store_function_clearp) StoreFunction f = {};
        pthread_mutex_lock(&c->sync_lock);
        int r = store_function_get(c->store, ns, name, &f);
        if (r == 0)
                r = function_apply(c, &f);
        else if (r == -ENOENT) {
                char key[512];
                snprintf(key, sizeof key, "%s/%s", ns, name);
                pthread_mutex_lock(&c->lock);
                function_remove(c, key, ns, name);
                pthread_mutex_unlock(&c->lock);
        }
        pthread_mutex_unlock(&c->sync_lock);
        return r;
}

/* Functions the store no longer has (seen: the keys it listed). */
static void remove_unseen(Cluster *c, const Map *seen) {
        pthread_mutex_lock(&c->lock);
        size_t it = 0, k = 0;
        Func **gone = calloc(c->funcs.n ? c->funcs.n : 1, sizeof *gone);
        for (MapEntry *e = NULL; gone && (e = cmap_next(&c->funcs, e, &it));)
                if (!cmap_get(seen, e->key))
                        gone[k++] = e->value;
        for (size_t i = 0; i < k; i++) {
                char *key = strdup(gone[i]->key), *ns = strdup(gone[i]->ns), *name = strdup(gone[i]->name);
                if (key && ns && name)
                        function_remove(c, key, ns, name);
                free(key), free(ns), free(name);
        }
        free(gone);
        pthread_mutex_unlock(&c->lock);
}

int cluster_sync_all(Cluster *c) {
        Map seen = {};
        char *after = NULL;
        int r = 0;
        pthread_mutex_lock(&c->sync_lock);
        do {
                StoreFunction *fs = NULL;
                size_t n = 0;
                char *next = NULL;
                r = store_function_list(c->store, NULL, after, STORE_LIST_MAX, &fs, &n, &next);
                for (size_t i = 0; r == 0 && i < n; i++) {
                        char key[512];
                        snprintf(key, sizeof key, "%s/%s", fs[i].namespace_, fs[i].name);
                        r = cmap_put(&seen, key, (void *) 1);
                        if (r == 0)
                                r = function_apply(c, &fs[i]);
                }
                store_function_array_free(fs, n);
                free(after);
                after = next;
        } while (r == 0 && after);
        free(after);
        if (r == 0)
                remove_unseen(c, &seen);
        cmap_clear(&seen);
        int rt = cluster_sync_tokens_locked(c);
        pthread_mutex_unlock(&c->sync_lock);
        return r < 0 ? r : rt;
}
