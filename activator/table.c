/* activator/table.c: the route table: parsing the controller's document,
 * lookups, the traffic split and the instance pick (see table.h). */
#define _GNU_SOURCE
#include "activator/table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* ---- freeing ------------------------------------------------------------ */

static void revision_clear(RouteRevision *r) {
        for (size_t i = 0; i < r->n_instances; i++) {
                RouteInstance *in = &r->instances[i];
                free(in->id);
                free(in->node);
                free(in->invoke);
                free(in->endpoint);
        }
        free(r->instances);
        free(r->key);
        free(r->ns);
        free(r->name);
        free(r->unschedulable);
}

static void function_clear(RouteFunction *f) {
        for (size_t i = 0; i < f->n_traffic; i++)
                free(f->traffic[i].tag);
        free(f->traffic);
        free(f->key);
        free(f->ns);
        free(f->name);
}

void route_table_free(RouteTable *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n_revisions; i++)
                revision_clear(&t->revisions[i]);
        for (size_t i = 0; i < t->n_functions; i++)
                function_clear(&t->functions[i]);
        for (size_t i = 0; i < t->n_skills; i++)
                free(t->skills[i].key);
        free(t->skills);
        free(t->revisions);
        free(t->functions);
        auth_tokens_free(t->tokens, t->n_tokens);
        free(t);
}

/* ---- parsing ------------------------------------------------------------ */

#define FAIL(...) do { snprintf(why, why_len, __VA_ARGS__); return -EINVAL; } while (0)

static char *key_join(const char *a, const char *b) {
        char *k = NULL;
        return asprintf(&k, "%s/%s", a, b) < 0 ? NULL : k;
}

/* A string member: NULL when absent or null; -EINVAL when not a string or too long. */
static int get_str(const json_t *o, const char *name, size_t max, bool required, char **ret) {
        json_t *v = json_object_get(o, name);
        *ret = NULL;
        if (!v || json_is_null(v))
                return required ? -EINVAL : 0;
        if (!json_is_string(v) || json_string_length(v) > max || memchr(json_string_value(v), 0, json_string_length(v)))
                return -EINVAL;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_u64(const json_t *o, const char *name, uint64_t def, uint64_t max, uint64_t *ret) {
        json_t *v = json_object_get(o, name);
        if (!v || json_is_null(v)) {
                *ret = def;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) > max)
                return -EINVAL;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static bool addr_ok(const char *a) {
        return a && (strncmp(a, "unix:/", 6) == 0 || strncmp(a, "tcp:", 4) == 0);
}

static int instance_parse(const json_t *j, RouteRevision *r, RouteInstance *in, char *why, size_t why_len) {
        if (!json_is_object(j))
                FAIL("%s: an instance is not an object", r->key);
        if (get_str(j, "id", 256, true, &in->id) < 0 || get_str(j, "node", 256, false, &in->node) < 0 ||
            get_str(j, "invoke", ROUTE_ADDR_MAX, false, &in->invoke) < 0 ||
            get_str(j, "endpoint", ROUTE_ADDR_MAX, false, &in->endpoint) < 0)
                FAIL("%s: an instance has a bad id, node, invoke or endpoint", r->key);
        if (r->mode == ROUTE_FRESH && !addr_ok(in->invoke))
                FAIL("%s: instance %s has no invoke address", r->key, in->id);
        if (r->mode == ROUTE_SERVICE && (!in->endpoint || strncmp(in->endpoint, "unix:/", 6) != 0))
                FAIL("%s: instance %s has no unix: endpoint", r->key, in->id);
        return 0;
}

static int revision_parse(const char *key, const json_t *j, RouteRevision *r, char *why, size_t why_len) {
        const char *slash = strchr(key, '/');
        uint64_t conc;
        if (!json_is_object(j) || !slash || !fnpath_name_ok(key, (size_t) (slash - key)) || strlen(slash + 1) > 128)
                FAIL("revision %.80s: bad key or not an object", key);
        r->key = strdup(key);
        r->ns = strndup(key, (size_t) (slash - key));
        r->name = strdup(slash + 1);
        if (!r->key || !r->ns || !r->name)
                return -ENOMEM;
        const char *mode = json_string_value(json_object_get(j, "mode"));
        if (!mode || (strcmp(mode, "fresh") != 0 && strcmp(mode, "service") != 0))
                FAIL("%s: mode is not fresh or service", key);
        r->mode = strcmp(mode, "fresh") == 0 ? ROUTE_FRESH : ROUTE_SERVICE;
        if (get_u64(j, "concurrency", 0, 1000000, &conc) < 0 ||
            get_u64(j, "timeoutMs", 300000, 86400000, &r->timeout_ms) < 0 ||
            get_u64(j, "startupTimeoutMs", 600000, 86400000, &r->startup_timeout_ms) < 0 ||
            get_u64(j, "outputBytes", 0, UINT64_MAX >> 1, &r->output_bytes) < 0)
                FAIL("%s: bad concurrency, timeoutMs, startupTimeoutMs or outputBytes", key);
        r->concurrency = conc ? (uint32_t) conc : ROUTE_CONCURRENCY_DEFAULT;
        if (get_str(j, "unschedulable", ROUTE_REASON_MAX, false, &r->unschedulable) < 0)
                FAIL("%s: bad unschedulable", key);
        json_t *insts = json_object_get(j, "instances");
        if (insts && !json_is_array(insts))
                FAIL("%s: instances is not an array", key);
        size_t n = json_array_size(insts);
        if (n > ROUTE_INSTANCES_MAX)
                FAIL("%s: more than %d instances", key, ROUTE_INSTANCES_MAX);
        if (n && !(r->instances = calloc(n, sizeof *r->instances)))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r->n_instances++;
                int e = instance_parse(json_array_get(insts, i), r, &r->instances[i], why, why_len);
                if (e < 0)
                        return e;
        }
        return 0;
}

static int cmp_revision(const void *a, const void *b) {
        return strcmp(((const RouteRevision *) a)->key, ((const RouteRevision *) b)->key);
}

static int cmp_function(const void *a, const void *b) {
        return strcmp(((const RouteFunction *) a)->key, ((const RouteFunction *) b)->key);
}

static int target_parse(RouteTable *t, RouteFunction *f, const json_t *j, char *why, size_t why_len) {
        char *rev = NULL, *tag = NULL;
        uint64_t pct;
        if (!json_is_object(j) || get_str(j, "revision", 128, true, &rev) < 0 ||
            get_str(j, "tag", FNPATH_NAME_MAX, false, &tag) < 0 || get_u64(j, "percent", 0, 100, &pct) < 0) {
                free(rev);
                free(tag);
                FAIL("%s: bad traffic entry", f->key);
        }
        RouteRevision *r = route_table_revision(t, f->ns, rev);
        free(rev);
        if (!r) {               /* not routable: left out */
                free(tag);
                return 0;
        }
        f->traffic[f->n_traffic++] = (RouteTarget) { r, (uint32_t) pct, tag };
        f->percent_total += (uint32_t) pct;
        return 0;
}

static int function_parse(RouteTable *t, const json_t *j, RouteFunction *f, char *why, size_t why_len) {
        if (!json_is_object(j) || get_str(j, "namespace", FNPATH_NAME_MAX, true, &f->ns) < 0 ||
            get_str(j, "name", FNPATH_NAME_MAX, true, &f->name) < 0)
                FAIL("a function has no namespace or name");
        if (!fnpath_name_ok(f->ns, strlen(f->ns)) || !fnpath_name_ok(f->name, strlen(f->name)))
                FAIL("function %s/%s: bad name", f->ns, f->name);
        if (!(f->key = key_join(f->ns, f->name)))
                return -ENOMEM;
        json_t *traffic = json_object_get(j, "traffic");
        size_t n = json_array_size(traffic);
        if (!json_is_array(traffic) || n > ROUTE_TRAFFIC_MAX)
                FAIL("%s: traffic is not an array of at most %d", f->key, ROUTE_TRAFFIC_MAX);
        if (n && !(f->traffic = calloc(n, sizeof *f->traffic)))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int e = target_parse(t, f, json_array_get(traffic, i), why, why_len);
                if (e < 0)
                        return e;
        }
        return 0;
}

static int cmp_skill(const void *a, const void *b) {
        return strcmp(((const RouteSkill *) a)->key, ((const RouteSkill *) b)->key);
}

/* One entry of "skills": {"namespace", "name", "version"}. */
static int skill_parse(const json_t *j, RouteSkill *s, char *why, size_t why_len) {
        const char *ns = json_string_value(json_object_get(j, "namespace"));
        const char *name = json_string_value(json_object_get(j, "name"));
        json_t *v = json_object_get(j, "version");
        if (!json_is_object(j) || !ns || !name || !fnpath_name_ok(ns, strlen(ns)) ||
            !fnpath_skill_name_ok(name, strlen(name)))
                FAIL("a skill has no valid namespace or name");
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 999999999999999LL)
                FAIL("skill %s/%s: version is not an integer from 1 to 10^15-1", ns, name);
        snprintf(s->version, sizeof s->version, "%lld", (long long) json_integer_value(v));
        return (s->key = key_join(ns, name)) ? 0 : -ENOMEM;
}

/* "skills" (absent: none, an older controller). */
static int skills_parse(RouteTable *t, const json_t *skills, char *why, size_t why_len) {
        size_t n = json_array_size(skills);
        if (!skills || json_is_null(skills))
                return 0;
        if (!json_is_array(skills))
                FAIL("skills is not an array");
        if (n && !(t->skills = calloc(n, sizeof *t->skills)))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int e = skill_parse(json_array_get(skills, i), &t->skills[t->n_skills++], why, why_len);
                if (e < 0)
                        return e;
        }
        if (t->n_skills)
                qsort(t->skills, t->n_skills, sizeof *t->skills, cmp_skill);
        for (size_t i = 1; i < t->n_skills; i++)
                if (strcmp(t->skills[i - 1].key, t->skills[i].key) == 0)
                        FAIL("skill %s listed twice", t->skills[i].key);
        return 0;
}

static int table_fill(RouteTable *t, const json_t *doc, char *why, size_t why_len) {
        json_t *revs = json_object_get(doc, "revisions"), *fns = json_object_get(doc, "functions");
        if (!json_is_object(doc) || get_u64(doc, "version", 0, UINT64_MAX >> 1, &t->version) < 0 ||
            !json_is_object(revs) || !json_is_array(fns))
                FAIL("not a route table (version, functions, revisions)");
        size_t nr = json_object_size(revs), nf = json_array_size(fns);
        if ((nr && !(t->revisions = calloc(nr, sizeof *t->revisions))) ||
            (nf && !(t->functions = calloc(nf, sizeof *t->functions))))
                return -ENOMEM;
        const char *key;
        json_t *v;
        json_object_foreach(revs, key, v) {
                int e = revision_parse(key, v, &t->revisions[t->n_revisions++], why, why_len);
                if (e < 0)
                        return e;
        }
        if (t->n_revisions)
                qsort(t->revisions, t->n_revisions, sizeof *t->revisions, cmp_revision);
        for (size_t i = 0; i < nf; i++) {
                int e = function_parse(t, json_array_get(fns, i), &t->functions[t->n_functions++], why, why_len);
                if (e < 0)
                        return e;
        }
        if (t->n_functions)
                qsort(t->functions, t->n_functions, sizeof *t->functions, cmp_function);
        for (size_t i = 1; i < t->n_functions; i++)
                if (strcmp(t->functions[i - 1].key, t->functions[i].key) == 0)
                        FAIL("function %s listed twice", t->functions[i].key);
        int e = skills_parse(t, json_object_get(doc, "skills"), why, why_len);
        if (e < 0)
                return e;
        json_t *tokens = json_object_get(doc, "tokens");
        t->has_tokens = json_is_array(tokens);
        return auth_tokens_parse(tokens, &t->tokens, &t->n_tokens, why, why_len);
}

int route_table_parse(const json_t *doc, RouteTable **ret, char *why, size_t why_len) {
        RouteTable *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        int r = table_fill(t, doc, why, why_len);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(why, why_len, "out of memory");
                route_table_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

/* ---- lookups -------------------------------------------------------------- */

static int cmp_key_revision(const void *k, const void *e) {
        return strcmp(k, ((const RouteRevision *) e)->key);
}

static int cmp_key_function(const void *k, const void *e) {
        return strcmp(k, ((const RouteFunction *) e)->key);
}

/* "A/B" into key; false when it does not fit. Every request looks up
 * its function (twice with --auth), where snprintf was measurable. */
static bool key_fill(char *key, size_t size, const char *a, const char *b) {
        size_t al = strlen(a), bl = strlen(b);
        if (al + bl + 2 > size)
                return false;
        memcpy(key, a, al);
        key[al] = '/';
        memcpy(key + al + 1, b, bl + 1);
        return true;
}

RouteFunction *route_table_function(const RouteTable *t, const char *ns, const char *name) {
        char key[2 * FNPATH_NAME_MAX + 2];
        if (!t || !t->n_functions || !key_fill(key, sizeof key, ns, name))
                return NULL;
        return bsearch(key, t->functions, t->n_functions, sizeof *t->functions, cmp_key_function);
}

RouteRevision *route_table_revision(const RouteTable *t, const char *ns, const char *rev) {
        char key[FNPATH_NAME_MAX + 130];
        if (!t || !t->n_revisions || !key_fill(key, sizeof key, ns, rev))
                return NULL;
        return bsearch(key, t->revisions, t->n_revisions, sizeof *t->revisions, cmp_key_revision);
}

static int cmp_key_skill(const void *k, const void *e) {
        return strcmp(k, ((const RouteSkill *) e)->key);
}

const char *route_table_skill(const RouteTable *t, const char *ns, const char *name) {
        char key[2 * FNPATH_NAME_MAX + 2];
        if (!t || !t->n_skills || !key_fill(key, sizeof key, ns, name))
                return NULL;
        const RouteSkill *s = bsearch(key, t->skills, t->n_skills, sizeof *t->skills, cmp_key_skill);
        return s ? s->version : NULL;
}

RouteFunction *route_segment_function(const RouteTable *t, const FnPath *p, const char *ns, const FnSegment *seg) {
        char fn[FNPATH_NAME_MAX + 1];
        if (!seg->valid)
                return NULL;
        if (!p->skill)
                return route_table_function(t, ns, seg->name);
        const char *version = seg->tag[0] ? seg->tag : route_table_skill(t, ns, seg->name);
        if (!version || fnpath_skill_function(seg->name, version, fn, sizeof fn) < 0)
                return NULL;
        return route_table_function(t, ns, fn);
}

RouteFunction *route_lookup_as(const RouteTable *t, const FnPath *p, const AuthToken *tok, const char **ret_denied_ns,
                               const char **ret_tag, const char **ret_sub, size_t *ret_sub_len) {
        bool ns_ok = p->has_second && (!tok || auth_allows(tok, p->first.name));
        bool default_ok = !tok || auth_allows(tok, "default");
        RouteFunction *f = ns_ok ? route_segment_function(t, p, p->first.name, &p->second) : NULL;
        const FnSegment *seg = f ? &p->second : &p->first;
        *ret_denied_ns = NULL;
        if (!f && default_ok)
                f = route_segment_function(t, p, "default", &p->first);
        if (!f && !ns_ok && (p->has_second || !default_ok))
                *ret_denied_ns = p->has_second ? p->first.name : "default";
        *ret_tag = p->skill ? "" : seg->tag;
        *ret_sub = seg->rest;
        *ret_sub_len = seg->rest_len;
        return f;
}

RouteFunction *route_lookup(const RouteTable *t, const FnPath *p, const char **ret_tag,
                            const char **ret_sub, size_t *ret_sub_len) {
        const char *denied;
        return route_lookup_as(t, p, NULL, &denied, ret_tag, ret_sub, ret_sub_len);
}

const AuthToken *route_authenticate(const RouteTable *t, const AuthKey *k, char *msg, size_t msg_len) {
        const AuthToken *tok = auth_authenticate(t->tokens, t->n_tokens, k);
        if (!tok)
                snprintf(msg, msg_len, "%s", t->has_tokens ? "the bearer token is not known here (revoked, or a wrong secret)"
                                                           : "the controller sent no tokens (is it older than this activator?)");
        return tok;
}

ActError route_authorize(const RouteTable *t, const FnPath *p, const AuthKey *k, char *msg, size_t msg_len) {
        const char *tag, *sub, *denied;
        size_t sub_len;
        const AuthToken *tok = route_authenticate(t, k, msg, msg_len);
        if (!tok)
                return ACT_UNAUTHENTICATED;
        route_lookup_as(t, p, tok, &denied, &tag, &sub, &sub_len);
        if (denied) {
                snprintf(msg, msg_len, "token %s may not call functions in namespace %s", tok->id, denied);
                return ACT_FORBIDDEN;
        }
        return ACT_OK;
}

RouteRevision *route_resolve(const RouteFunction *f, const char *tag, uint64_t rnd) {
        if (tag && *tag) {
                for (size_t i = 0; i < f->n_traffic; i++)
                        if (f->traffic[i].tag && strcmp(f->traffic[i].tag, tag) == 0)
                                return f->traffic[i].rev;
                for (size_t i = 0; i < f->n_traffic; i++)
                        if (strcmp(f->traffic[i].rev->name, tag) == 0)
                                return f->traffic[i].rev;
                return NULL;
        }
        if (f->percent_total == 0)
                return NULL;
        uint64_t point = rnd % f->percent_total;
        for (size_t i = 0; i < f->n_traffic; i++) {
                if (point < f->traffic[i].percent)
                        return f->traffic[i].rev;
                point -= f->traffic[i].percent;
        }
        return NULL;
}

static bool slot_usable(const RouteRevision *rev, const Slot *s, Slot *const *exclude, size_t n_exclude) {
        if (s->dropped || s->inflight >= rev->concurrency)
                return false;
        for (size_t i = 0; i < n_exclude; i++)
                if (exclude[i] == s)
                        return false;
        return true;
}

ssize_t route_pick(const RouteRevision *rev, uint64_t rnd, Slot *const *exclude, size_t n_exclude) {
        size_t n = rev->n_instances;
        if (n == 0)
                return -1;
        if (rev->concurrency > ROUTE_FIRST_FREE_MAX && n > 1) {
                size_t a = (size_t) ((uint32_t) rnd % n), b = (size_t) ((rnd >> 32) % (n - 1));
                if (b >= a)
                        b++;
                const Slot *sa = rev->instances[a].slot, *sb = rev->instances[b].slot;
                bool ua = slot_usable(rev, sa, exclude, n_exclude), ub = slot_usable(rev, sb, exclude, n_exclude);
                if (ua && (!ub || sa->inflight <= sb->inflight))
                        return (ssize_t) a;
                if (ub)
                        return (ssize_t) b;
        }
        for (size_t i = 0; i < n; i++)
                if (slot_usable(rev, rev->instances[i].slot, exclude, n_exclude))
                        return (ssize_t) i;
        return -1;
}
