/* activator/gateway/config.c: the gateway's YAML configuration (see
 * config.h): the file as a tree that remembers lines (lib/yamltree.h),
 * then a table-driven walk that checks every field and says where a
 * wrong one is. */
#define _GNU_SOURCE
#include "activator/gateway/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activator/fnpath.h"
#include "lib/quantity.h"
#include "lib/util.h"
#include "lib/yamltree.h"

/* The YAML tree and its checked getters: lib/yamltree.h. */
typedef YtNode Node;
#define N_SCALAR YT_SCALAR
#define N_MAP YT_MAP
#define N_SEQ YT_SEQ

typedef struct Ctx {
        YtCtx y;                         /* the file and where errors go */
        GwConfig *cfg;
} Ctx;

/* Names of upstreams and aliases: printable, no spaces, no '/' at the ends. */
static bool name_ok(const char *s) {
        if (!*s || strlen(s) >= GW_NAME_MAX)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || *s == 0x7f || *s == '"' || *s == '\\')
                        return false;
        return true;
}

static int get_name(Ctx *c, const Node *n, const char *field, char **ret) {
        int r = yt_string(&c->y, n, field, GW_NAME_MAX - 1, ret);
        if (r < 0)
                return r;
        if (!name_ok(*ret))
                return yt_fail(&c->y, n->line, field, "\"%s\" is not a valid name (printable, no spaces or quotes)", *ret);
        return 0;
}

/* ---- upstreams ------------------------------------------------------------------- */

/* A key file's first line; the key itself never goes into a message. */
static int key_from_file(Ctx *c, const Node *n, const char *field, const char *path, char **ret) {
        char buf[GW_KEY_MAX + 2];
        ssize_t len = read_file_small(path, buf, sizeof buf);
        if (len < 0)
                return yt_fail(&c->y, n->line, field, "cannot read %s: %s", path, strerror((int) -len));
        if ((size_t) len > GW_KEY_MAX)
                return yt_fail(&c->y, n->line, field, "%s is longer than %d bytes", path, GW_KEY_MAX);
        buf[strcspn(buf, "\r\n")] = 0;
        char *s = buf + strspn(buf, " \t");
        size_t l = strlen(s);
        while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
                s[--l] = 0;
        if (!l) {
                explicit_bzero(buf, sizeof buf);
                return yt_fail(&c->y, n->line, field, "%s holds no key", path);
        }
        *ret = strdup(s);
        explicit_bzero(buf, sizeof buf);
        return *ret ? 0 : -ENOMEM;
}

static int key_check(Ctx *c, const Node *n, const char *field, const char *key) {
        for (const char *s = key; *s; s++)
                if ((unsigned char) *s < 0x21 || *s == 0x7f)
                        return yt_fail(&c->y, n->line, field, "the key contains white space or a control character");
        if (strlen(key) > GW_KEY_MAX)
                return yt_fail(&c->y, n->line, field, "the key is longer than %d bytes", GW_KEY_MAX);
        return 0;
}

static int upstream_key(Ctx *c, const Node *m, const char *field, GwUpstream *u) {
        const Node *env = yt_get(m, "api_key_env"), *file = yt_get(m, "api_key_file");
        char f[160];
        if (env && file)
                return yt_fail(&c->y, file->line, field, "api_key_env and api_key_file: give one");
        if (env) {
                _cleanup_free_ char *name = NULL;
                yt_fieldf(f, sizeof f, "%s.api_key_env", field);
                int r = yt_string(&c->y, env, f, 255, &name);
                if (r < 0)
                        return r;
                const char *v = getenv(name);
                if (!v || !*v)
                        return yt_fail(&c->y, env->line, f, "the environment variable %s is not set", name);
                if ((r = key_check(c, env, f, v)) < 0)
                        return r;
                return (u->api_key = strdup(v)) ? 0 : -ENOMEM;
        }
        if (file) {
                _cleanup_free_ char *path = NULL;
                yt_fieldf(f, sizeof f, "%s.api_key_file", field);
                int r = yt_string(&c->y, file, f, 4095, &path);
                if (r < 0 || (r = key_from_file(c, file, f, path, &u->api_key)) < 0)
                        return r;
                return key_check(c, file, f, u->api_key);
        }
        return 0;
}

/* base_url: http(s)://... or fn:NAME, fn:NS/NAME */
static int upstream_url(Ctx *c, const Node *n, const char *field, GwUpstream *u) {
        _cleanup_free_ char *v = NULL;
        int r = yt_string(&c->y, n, field, GW_URL_MAX, &v);
        if (r < 0)
                return r;
        if (strncmp(v, "fn:", 3) == 0) {
                const char *s = v + 3, *slash = strchr(s, '/');
                char ns[64] = "default", name[64];
                if (slash && (size_t) (slash - s) < sizeof ns) {
                        memcpy(ns, s, (size_t) (slash - s));
                        ns[slash - s] = 0;
                        s = slash + 1;
                } else if (slash)
                        return yt_fail(&c->y, n->line, field, "\"%s\": the namespace is too long", v);
                snprintf(name, sizeof name, "%s", s);
                if (!fnpath_name_ok(ns, strlen(ns)) || !fnpath_name_ok(name, strlen(name)) || strlen(s) >= sizeof name)
                        return yt_fail(&c->y, n->line, field, "\"%s\": expected fn:NAME or fn:NAMESPACE/NAME (names of 1 to 63 of a-z, 0-9 and -)", v);
                if (!(u->fn_ns = strdup(ns)) || !(u->fn_name = strdup(name)))
                        return -ENOMEM;
                return 0;
        }
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
                return yt_fail(&c->y, n->line, field, "\"%s\": expected http://, https:// or fn:NAME", v);
        const char *host = strstr(v, "://") + 3;
        if (!*host || *host == '/')
                return yt_fail(&c->y, n->line, field, "\"%s\" has no host", v);
        if (strpbrk(v, " \t?#"))
                return yt_fail(&c->y, n->line, field, "\"%s\": no spaces, query or fragment", v);
        size_t l = strlen(v);
        while (l > 0 && v[l - 1] == '/')
                v[--l] = 0;
        u->base_url = TAKE_PTR(v);
        return 0;
}

static int upstream_timeouts(Ctx *c, const Node *m, const char *field, GwUpstream *u) {
        static const char *const keys[] = { "connect", "first_byte", "total", NULL };
        char f[160];
        int r = yt_want(&c->y, m, N_MAP, field);
        if (r < 0 || (r = yt_keys_check(&c->y, m, field, keys)) < 0)
                return r;
        struct { const char *k; uint64_t *v; } t[] = {
                { "connect", &u->connect_ms }, { "first_byte", &u->first_byte_ms }, { "total", &u->total_ms },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                const Node *n = yt_get(m, t[i].k);
                yt_fieldf(f, sizeof f, "%s.%s", field, t[i].k);
                if (n && (r = yt_duration(&c->y, n, f, 1, GW_TIMEOUT_MAX_MS, t[i].v)) < 0)
                        return r;
        }
        if (u->first_byte_ms > u->total_ms)
                return yt_fail(&c->y, m->line, field, "first_byte (%llums) is longer than total (%llums)",
                            (unsigned long long) u->first_byte_ms, (unsigned long long) u->total_ms);
        return 0;
}

static int upstream_models(Ctx *c, const Node *n, const char *field, GwUpstream *u) {
        char f[160];
        int r = yt_want(&c->y, n, N_SEQ, field);
        if (r < 0)
                return r;
        if (n->n > GW_MODELS_MAX)
                return yt_fail(&c->y, n->line, field, "more than %d models", GW_MODELS_MAX);
        if (!(u->models = calloc(n->n ? n->n : 1, sizeof *u->models)))
                return -ENOMEM;
        for (size_t i = 0; i < n->n; i++) {
                yt_fieldf(f, sizeof f, "%s[%zu]", field, i);
                if ((r = get_name(c, n->kids[i], f, &u->models[i])) < 0)
                        return r;
                u->n_models++;
        }
        return 0;
}

static int upstream_parse(Ctx *c, const Node *m, size_t idx, GwUpstream *u) {
        static const char *const keys[] = { "name", "base_url", "api_key_env", "api_key_file", "models", "local",
                                            "timeouts", "weight", "stream_usage", NULL };
        char field[64], f[160];
        yt_fieldf(field, sizeof field, "upstreams[%zu]", idx);
        int r = yt_want(&c->y, m, N_MAP, field);
        if (r < 0 || (r = yt_keys_check(&c->y, m, field, keys)) < 0)
                return r;
        const Node *name = yt_get(m, "name"), *url = yt_get(m, "base_url"), *n;
        if (!name)
                return yt_fail(&c->y, m->line, field, "name is missing");
        if (!url)
                return yt_fail(&c->y, m->line, field, "base_url is missing (http(s)://... or fn:NAME)");
        yt_fieldf(f, sizeof f, "%s.name", field);
        if ((r = get_name(c, name, f, &u->name)) < 0)
                return r;
        yt_fieldf(field, sizeof field, "upstreams[%s]", u->name);
        yt_fieldf(f, sizeof f, "%s.base_url", field);
        if ((r = upstream_url(c, url, f, u)) < 0)
                return r;
        u->weight = 1;
        u->stream_usage = true;
        u->connect_ms = 5000;
        u->first_byte_ms = u->fn_name ? 300000 : 60000;
        u->total_ms = u->fn_name ? 900000 : 600000;
        if ((r = upstream_key(c, m, field, u)) < 0)
                return r;
        yt_fieldf(f, sizeof f, "%s.models", field);
        if ((n = yt_get(m, "models")) && (r = upstream_models(c, n, f, u)) < 0)
                return r;
        yt_fieldf(f, sizeof f, "%s.local", field);
        if ((n = yt_get(m, "local")) && (r = yt_bool(&c->y, n, f, &u->local)) < 0)
                return r;
        yt_fieldf(f, sizeof f, "%s.stream_usage", field);
        if ((n = yt_get(m, "stream_usage")) && (r = yt_bool(&c->y, n, f, &u->stream_usage)) < 0)
                return r;
        uint64_t w = 1;
        yt_fieldf(f, sizeof f, "%s.weight", field);
        if ((n = yt_get(m, "weight")) && (r = yt_uint(&c->y, n, f, 0, GW_WEIGHT_MAX, &w)) < 0)
                return r;
        u->weight = (unsigned) w;
        yt_fieldf(f, sizeof f, "%s.timeouts", field);
        if ((n = yt_get(m, "timeouts")) && (r = upstream_timeouts(c, n, f, u)) < 0)
                return r;
        return 0;
}

static GwUpstream *upstream_find(const GwConfig *cfg, const char *name) {
        for (size_t i = 0; i < cfg->n_upstreams; i++)
                if (strcmp(cfg->upstreams[i].name, name) == 0)
                        return &cfg->upstreams[i];
        return NULL;
}

static int upstreams_parse(Ctx *c, const Node *n) {
        GwConfig *cfg = c->cfg;
        int r = yt_want(&c->y, n, N_SEQ, "upstreams");
        if (r < 0)
                return r;
        if (n->n == 0)
                return yt_fail(&c->y, n->line, "upstreams", "lists no upstream");
        if (n->n > GW_UPSTREAMS_MAX)
                return yt_fail(&c->y, n->line, "upstreams", "more than %d upstreams", GW_UPSTREAMS_MAX);
        if (!(cfg->upstreams = calloc(n->n, sizeof *cfg->upstreams)))
                return -ENOMEM;
        for (size_t i = 0; i < n->n; i++) {
                GwUpstream *u = &cfg->upstreams[i];
                cfg->n_upstreams++;
                if ((r = upstream_parse(c, n->kids[i], i, u)) < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(cfg->upstreams[j].name, u->name) == 0)
                                return yt_fail(&c->y, n->kids[i]->line, "upstreams", "the name %s is used twice", u->name);
        }
        return 0;
}

/* ---- aliases --------------------------------------------------------------------- */

static int member_parse(Ctx *c, const Node *n, const char *field, GwAlias *a, GwMember *mb) {
        static const char *const keys[] = { "upstream", "model", "weight", NULL };
        _cleanup_free_ char *name = NULL;
        const Node *un = n, *x;
        char f[256];
        int r;
        if (n->kind == N_MAP) {
                if ((r = yt_keys_check(&c->y, n, field, keys)) < 0)
                        return r;
                if (!(un = yt_get(n, "upstream")))
                        return yt_fail(&c->y, n->line, field, "upstream is missing");
        }
        yt_fieldf(f, sizeof f, "%s%s", field, n->kind == N_MAP ? ".upstream" : "");
        if ((r = get_name(c, un, f, &name)) < 0)
                return r;
        if (!(mb->up = upstream_find(c->cfg, name)))
                return yt_fail(&c->y, un->line, f, "no upstream is named %s", name);
        mb->weight = mb->up->weight;
        if (n->kind == N_MAP) {
                yt_fieldf(f, sizeof f, "%s.model", field);
                if ((x = yt_get(n, "model")) && (r = get_name(c, x, f, &mb->model)) < 0)
                        return r;
                uint64_t w;
                yt_fieldf(f, sizeof f, "%s.weight", field);
                if ((x = yt_get(n, "weight"))) {
                        if ((r = yt_uint(&c->y, x, f, 0, GW_WEIGHT_MAX, &w)) < 0)
                                return r;
                        mb->weight = (unsigned) w;
                }
        }
        /* the model the upstream is asked for: the member's, else the upstream's first, else the alias */
        if (!mb->model && !(mb->model = strdup(mb->up->n_models ? mb->up->models[0] : a->name)))
                return -ENOMEM;
        return 0;
}

static int cooldown_parse(Ctx *c, const Node *n, const char *field, GwAlias *a) {
        static const char *const keys[] = { "failures", "seconds", NULL };
        char f[256];
        uint64_t v;
        int r = yt_want(&c->y, n, N_MAP, field);
        if (r < 0 || (r = yt_keys_check(&c->y, n, field, keys)) < 0)
                return r;
        const Node *x;
        yt_fieldf(f, sizeof f, "%s.failures", field);
        if ((x = yt_get(n, "failures"))) {
                if ((r = yt_uint(&c->y, x, f, 0, 1000, &v)) < 0)
                        return r;
                a->cooldown_failures = (unsigned) v;
        }
        yt_fieldf(f, sizeof f, "%s.seconds", field);
        if ((x = yt_get(n, "seconds")) && (r = yt_duration(&c->y, x, f, 1, GW_TIMEOUT_MAX_MS, &a->cooldown_ms)) < 0)
                return r;
        return 0;
}

static int alias_parse(Ctx *c, const Node *m, size_t idx, GwAlias *a) {
        static const char *const keys[] = { "name", "upstreams", "strategy", "fallbacks", "retries", "cooldown", NULL };
        char field[200], f[256];
        const Node *n;
        yt_fieldf(field, sizeof field, "aliases[%zu]", idx);
        int r = yt_want(&c->y, m, N_MAP, field);
        if (r < 0 || (r = yt_keys_check(&c->y, m, field, keys)) < 0)
                return r;
        if (!(n = yt_get(m, "name")))
                return yt_fail(&c->y, m->line, field, "name is missing");
        yt_fieldf(f, sizeof f, "%s.name", field);
        if ((r = get_name(c, n, f, &a->name)) < 0)
                return r;
        yt_fieldf(field, sizeof field, "aliases[%s]", a->name);
        a->cooldown_failures = 3;
        a->cooldown_ms = 30000;
        yt_fieldf(f, sizeof f, "%s.upstreams", field);
        if (!(n = yt_get(m, "upstreams")))
                return yt_fail(&c->y, m->line, f, "is missing");
        if ((r = yt_want(&c->y, n, N_SEQ, f)) < 0)
                return r;
        if (n->n == 0 || n->n > GW_MEMBERS_MAX)
                return yt_fail(&c->y, n->line, f, "expected 1 to %d upstreams", GW_MEMBERS_MAX);
        if (!(a->members = calloc(n->n, sizeof *a->members)))
                return -ENOMEM;
        for (size_t i = 0; i < n->n; i++) {
                yt_fieldf(f, sizeof f, "%s.upstreams[%zu]", field, i);
                a->n_members++;
                if ((r = member_parse(c, n->kids[i], f, a, &a->members[i])) < 0)
                        return r;
        }
        yt_fieldf(f, sizeof f, "%s.strategy", field);
        if ((n = yt_get(m, "strategy"))) {
                if ((r = yt_want(&c->y, n, N_SCALAR, f)) < 0)
                        return r;
                bool found = false;
                for (int s = 0; s < _GW_STRATEGY_MAX && !found; s++)
                        if (strcmp(n->value, gw_strategy_name(s)) == 0) {
                                a->strategy = (GwStrategy) s;
                                found = true;
                        }
                if (!found)
                        return yt_fail(&c->y, n->line, f, "\"%s\": expected weighted, least-busy or lowest-latency", n->value);
        }
        uint64_t v;
        /* by default each upstream of the group gets one attempt */
        a->retries = a->n_members - 1 < GW_RETRIES_MAX ? (unsigned) a->n_members - 1 : GW_RETRIES_MAX;
        yt_fieldf(f, sizeof f, "%s.retries", field);
        if ((n = yt_get(m, "retries"))) {
                if ((r = yt_uint(&c->y, n, f, 0, GW_RETRIES_MAX, &v)) < 0)
                        return r;
                a->retries = (unsigned) v;
        }
        yt_fieldf(f, sizeof f, "%s.cooldown", field);
        if ((n = yt_get(m, "cooldown")) && (r = cooldown_parse(c, n, f, a)) < 0)
                return r;
        return 0;
}

static int alias_cmp(const void *x, const void *y) {
        return strcmp(((const GwAlias *) x)->name, ((const GwAlias *) y)->name);
}

/* The models the upstreams list that no alias is named for become aliases
 * of their own, over every upstream that lists them. */
static int implicit_aliases(Ctx *c, size_t *n_aliases) {
        GwConfig *cfg = c->cfg;
        for (size_t i = 0; i < cfg->n_upstreams; i++)
                for (size_t k = 0; k < cfg->upstreams[i].n_models; k++) {
                        const char *model = cfg->upstreams[i].models[k];
                        GwAlias *a = NULL;
                        for (size_t j = 0; j < *n_aliases && !a; j++)
                                if (strcmp(cfg->aliases[j].name, model) == 0)
                                        a = &cfg->aliases[j];
                        if (a && !a->implicit)
                                continue;
                        if (!a) {
                                if (*n_aliases >= GW_ALIASES_MAX)
                                        return yt_fail(&c->y, 1, "aliases", "more than %d models and aliases", GW_ALIASES_MAX);
                                a = &cfg->aliases[(*n_aliases)++];
                                a->implicit = true;
                                a->cooldown_failures = 3;
                                a->cooldown_ms = 30000;
                                if (!(a->name = strdup(model)) || !(a->members = calloc(GW_MEMBERS_MAX, sizeof *a->members)))
                                        return -ENOMEM;
                        }
                        if (a->n_members >= GW_MEMBERS_MAX)
                                continue;
                        a->retries = a->n_members < GW_RETRIES_MAX ? (unsigned) a->n_members : GW_RETRIES_MAX;
                        GwMember *mb = &a->members[a->n_members++];
                        mb->up = &cfg->upstreams[i];
                        mb->weight = mb->up->weight;
                        if (!(mb->model = strdup(model)))
                                return -ENOMEM;
                }
        return 0;
}

static int fallbacks_parse(Ctx *c, const Node *list, const Node *m, GwAlias *a) {
        const Node *n = yt_get(m, "fallbacks");
        char f[256];
        yt_fieldf(f, sizeof f, "aliases[%s].fallbacks", a->name);
        if (!n)
                return 0;
        int r = yt_want(&c->y, n, N_SEQ, f);
        if (r < 0)
                return r;
        if (n->n > GW_FALLBACKS_MAX)
                return yt_fail(&c->y, n->line, f, "more than %d fallbacks", GW_FALLBACKS_MAX);
        if (!(a->fallbacks = calloc(n->n ? n->n : 1, sizeof *a->fallbacks)))
                return -ENOMEM;
        for (size_t i = 0; i < n->n; i++) {
                const Node *x = n->kids[i];
                if ((r = yt_want(&c->y, x, N_SCALAR, f)) < 0)
                        return r;
                GwAlias *fb = gw_config_alias(c->cfg, x->value);
                if (!fb)
                        return yt_fail(&c->y, x->line, f, "no alias or model is named %s", x->value);
                if (fb == a)
                        return yt_fail(&c->y, x->line, f, "an alias cannot fall back on itself");
                a->fallbacks[a->n_fallbacks++] = fb;
        }
        (void) list;
        return 0;
}

static int aliases_parse(Ctx *c, const Node *n) {
        GwConfig *cfg = c->cfg;
        size_t n_models = 0, n_list = n ? n->n : 0;
        int r;
        if (n && (r = yt_want(&c->y, n, N_SEQ, "aliases")) < 0)
                return r;
        for (size_t i = 0; i < cfg->n_upstreams; i++)
                n_models += cfg->upstreams[i].n_models;
        if (n_list > GW_ALIASES_MAX)
                return yt_fail(&c->y, n->line, "aliases", "more than %d aliases", GW_ALIASES_MAX);
        if (!(cfg->aliases = calloc(n_list + n_models + 1, sizeof *cfg->aliases)))
                return -ENOMEM;
        for (size_t i = 0; i < n_list; i++) {
                GwAlias *a = &cfg->aliases[i];
                cfg->n_aliases++;
                if ((r = alias_parse(c, n->kids[i], i, a)) < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(cfg->aliases[j].name, a->name) == 0)
                                return yt_fail(&c->y, n->kids[i]->line, "aliases", "the name %s is used twice", a->name);
        }
        size_t total = cfg->n_aliases;
        if ((r = implicit_aliases(c, &total)) < 0) {
                cfg->n_aliases = total;
                return r;
        }
        cfg->n_aliases = total;
        /* sorted, then fallbacks resolved against the sorted list (pointers stay) */
        _cleanup_free_ char **order = calloc(n_list ? n_list : 1, sizeof *order);
        if (!order)
                return -ENOMEM;
        for (size_t i = 0; i < n_list; i++)
                order[i] = cfg->aliases[i].name;
        qsort(cfg->aliases, cfg->n_aliases, sizeof *cfg->aliases, alias_cmp);
        for (size_t i = 0; i < n_list; i++) {
                GwAlias *a = gw_config_alias(cfg, order[i]);
                if ((r = fallbacks_parse(c, n, n->kids[i], a)) < 0)
                        return r;
        }
        return 0;
}

/* ---- data rules, limits, quotas, audit -------------------------------------------- */

static int rules_parse(Ctx *c, const Node *n) {
        int r = yt_want(&c->y, n, N_SEQ, "data_rules");
        if (r < 0)
                return r;
        c->cfg->rules = 0;
        for (size_t i = 0; i < n->n; i++) {
                const Node *x = n->kids[i];
                if ((r = yt_want(&c->y, x, N_SCALAR, "data_rules")) < 0)
                        return r;
                int rule = data_rule_from_name(x->value);
                if (rule < 0)
                        return yt_fail(&c->y, x->line, "data_rules", "unknown rule \"%s\" (expected email, phone, card, tw_id or iban)", x->value);
                c->cfg->rules |= 1u << rule;
        }
        return 0;
}

static int limits_parse(Ctx *c, const Node *n) {
        static const char *const keys[] = { "max_body", "max_response", "default_max_tokens", "max_tokens", "max_depth", NULL };
        GwConfig *cfg = c->cfg;
        const Node *x;
        uint64_t v;
        int r = yt_want(&c->y, n, N_MAP, "limits");
        if (r < 0 || (r = yt_keys_check(&c->y, n, "limits", keys)) < 0)
                return r;
        if ((x = yt_get(n, "max_body")) && (r = yt_bytes(&c->y, x, "limits.max_body", 1024, 1ull << 30, &cfg->max_body)) < 0)
                return r;
        if ((x = yt_get(n, "max_response")) &&
            (r = yt_bytes(&c->y, x, "limits.max_response", 1024, 1ull << 30, &cfg->max_response)) < 0)
                return r;
        if ((x = yt_get(n, "max_tokens")) && (r = yt_uint(&c->y, x, "limits.max_tokens", 1, 100000000, &cfg->max_tokens)) < 0)
                return r;
        if ((x = yt_get(n, "default_max_tokens")) &&
            (r = yt_uint(&c->y, x, "limits.default_max_tokens", 1, cfg->max_tokens, &cfg->default_max_tokens)) < 0)
                return r;
        if ((x = yt_get(n, "max_depth"))) {
                if ((r = yt_uint(&c->y, x, "limits.max_depth", 1, 64, &v)) < 0)
                        return r;
                cfg->max_depth = (unsigned) v;
        }
        return 0;
}

static int quota_entries(Ctx *c, const Node *n, const char *prefix, const char *field) {
        static const char *const keys[] = { "requests_per_minute", "tokens_per_day", NULL };
        GwConfig *cfg = c->cfg;
        char f[256];
        int r = yt_want(&c->y, n, N_MAP, field);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n->n; i++) {
                const Node *e = n->kids[i], *x;
                yt_fieldf(f, sizeof f, "%s.%s", field, n->keys[i]);
                if (cfg->n_quotas >= GW_QUOTAS_MAX)
                        return yt_fail(&c->y, e->line, f, "more than %d quotas", GW_QUOTAS_MAX);
                if (!name_ok(n->keys[i]) || strlen(n->keys[i]) > 100)
                        return yt_fail(&c->y, e->line, f, "not a valid name");
                if ((r = yt_want(&c->y, e, N_MAP, f)) < 0 || (r = yt_keys_check(&c->y, e, f, keys)) < 0)
                        return r;
                GwQuotaEntry *q = &cfg->quotas[cfg->n_quotas++];
                snprintf(q->key, sizeof q->key, "%s:%s", prefix, n->keys[i]);
                char g[300];
                yt_fieldf(g, sizeof g, "%s.requests_per_minute", f);
                if ((x = yt_get(e, "requests_per_minute")) &&
                    (r = yt_uint(&c->y, x, g, 0, 100000000, &q->limit.requests_per_minute)) < 0)
                        return r;
                yt_fieldf(g, sizeof g, "%s.tokens_per_day", f);
                if ((x = yt_get(e, "tokens_per_day")) && (r = yt_uint(&c->y, x, g, 0, UINT64_MAX / 4, &q->limit.tokens_per_day)) < 0)
                        return r;
        }
        return 0;
}

static int quotas_parse(Ctx *c, const Node *n) {
        static const char *const keys[] = { "namespaces", "tokens", NULL };
        const Node *ns = yt_get(n, "namespaces"), *tok = yt_get(n, "tokens");
        int r = yt_want(&c->y, n, N_MAP, "quotas");
        if (r < 0 || (r = yt_keys_check(&c->y, n, "quotas", keys)) < 0)
                return r;
        size_t total = (ns && ns->kind == N_MAP ? ns->n : 0) + (tok && tok->kind == N_MAP ? tok->n : 0);
        if (!(c->cfg->quotas = calloc(total ? total : 1, sizeof *c->cfg->quotas)))
                return -ENOMEM;
        if (ns && (r = quota_entries(c, ns, "ns", "quotas.namespaces")) < 0)
                return r;
        if (tok && (r = quota_entries(c, tok, "token", "quotas.tokens")) < 0)
                return r;
        return 0;
}

static int audit_parse(Ctx *c, const Node *n) {
        static const char *const keys[] = { "bodies", NULL };
        GwConfig *cfg = c->cfg;
        const Node *b = yt_get(n, "bodies");
        char f[64];
        int r = yt_want(&c->y, n, N_MAP, "audit");
        if (r < 0 || (r = yt_keys_check(&c->y, n, "audit", keys)) < 0)
                return r;
        if (!b)
                return 0;
        if ((r = yt_want(&c->y, b, N_SEQ, "audit.bodies")) < 0)
                return r;
        if (b->n > 4096)
                return yt_fail(&c->y, b->line, "audit.bodies", "more than 4096 namespaces");
        if (!(cfg->body_namespaces = calloc(b->n ? b->n : 1, sizeof *cfg->body_namespaces)))
                return -ENOMEM;
        for (size_t i = 0; i < b->n; i++) {
                yt_fieldf(f, sizeof f, "audit.bodies[%zu]", i);
                if ((r = get_name(c, b->kids[i], f, &cfg->body_namespaces[i])) < 0)
                        return r;
                cfg->n_body_namespaces++;
        }
        return 0;
}

/* ---- the document ------------------------------------------------------------------ */

static int config_build(Ctx *c, const Node *root) {
        static const char *const keys[] = { "upstreams", "aliases", "data_rules", "limits", "quotas", "audit", NULL };
        GwConfig *cfg = c->cfg;
        const Node *n;
        int r = yt_want(&c->y, root, N_MAP, "");
        if (r < 0 || (r = yt_keys_check(&c->y, root, "", keys)) < 0)
                return r;
        cfg->rules = DATA_RULES_ALL;
        cfg->max_tokens = 1000000;
        cfg->default_max_tokens = 4096;
        cfg->max_body = 4u << 20;
        cfg->max_response = 16u << 20;
        cfg->max_depth = 8;
        if (!(n = yt_get(root, "upstreams")))
                return yt_fail(&c->y, root->line, "upstreams", "is missing");
        if ((r = upstreams_parse(c, n)) < 0 || (r = aliases_parse(c, yt_get(root, "aliases"))) < 0)
                return r;
        if ((n = yt_get(root, "data_rules")) && (r = rules_parse(c, n)) < 0)
                return r;
        if ((n = yt_get(root, "limits")) && (r = limits_parse(c, n)) < 0)
                return r;
        if (cfg->default_max_tokens > cfg->max_tokens)
                cfg->default_max_tokens = cfg->max_tokens;
        if ((n = yt_get(root, "quotas")) && (r = quotas_parse(c, n)) < 0)
                return r;
        if ((n = yt_get(root, "audit")) && (r = audit_parse(c, n)) < 0)
                return r;
        return 0;
}

static void config_free(GwConfig *cfg) {
        for (size_t i = 0; i < cfg->n_upstreams; i++) {
                GwUpstream *u = &cfg->upstreams[i];
                free(u->name);
                free(u->base_url);
                free(u->fn_ns);
                free(u->fn_name);
                if (u->api_key) {
                        explicit_bzero(u->api_key, strlen(u->api_key));
                        free(u->api_key);
                }
                for (size_t k = 0; k < u->n_models; k++)
                        free(u->models[k]);
                free(u->models);
        }
        for (size_t i = 0; i < cfg->n_aliases; i++) {
                GwAlias *a = &cfg->aliases[i];
                free(a->name);
                for (size_t k = 0; k < a->n_members; k++)
                        free(a->members[k].model);
                free(a->members);
                free(a->fallbacks);
        }
        for (size_t i = 0; i < cfg->n_body_namespaces; i++)
                free(cfg->body_namespaces[i]);
        free(cfg->body_namespaces);
        free(cfg->quotas);
        free(cfg->upstreams);
        free(cfg->aliases);
        free(cfg->path);
        free(cfg);
}

int gw_config_parse(const char *buf, size_t len, const char *filename, GwConfig **ret, char *err, size_t err_len) {
        Ctx c = { .y = { .file = filename ? filename : "(config)", .err = err, .err_len = err_len } };
        Node *root = NULL;
        if (err_len)
                err[0] = 0;
        if (len > GW_CONFIG_FILE_MAX)
                return yt_fail(&c.y, 1, NULL, "the file is over %u bytes", GW_CONFIG_FILE_MAX);
        int r = yt_parse(&c.y, buf, len, &root);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, err_len, "%s: out of memory", c.y.file);
                return r;
        }
        if (!(c.cfg = calloc(1, sizeof *c.cfg))) {
                yt_free(root);
                return -ENOMEM;
        }
        atomic_init(&c.cfg->refs, 1);
        r = config_build(&c, root);
        yt_free(root);
        if (r == 0 && !(c.cfg->path = strdup(c.y.file)))
                r = -ENOMEM;
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, err_len, "%s: out of memory", c.y.file);
                config_free(c.cfg);
                return r;
        }
        *ret = c.cfg;
        return 0;
}

int gw_config_load(const char *path, GwConfig **ret, char *err, size_t err_len) {
        _cleanup_free_ char *buf = malloc(GW_CONFIG_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t n = read_file_small(path, buf, GW_CONFIG_FILE_MAX + 1);
        if (n < 0) {
                snprintf(err, err_len, "%s: cannot read it: %s", path, strerror((int) -n));
                return (int) n;
        }
        if ((size_t) n > GW_CONFIG_FILE_MAX) {
                snprintf(err, err_len, "%s: the file is over %u bytes", path, GW_CONFIG_FILE_MAX);
                return -EFBIG;
        }
        return gw_config_parse(buf, (size_t) n, path, ret, err, err_len);
}

GwConfig *gw_config_ref(GwConfig *c) {
        if (c)
                atomic_fetch_add(&c->refs, 1);
        return c;
}

void gw_config_unref(GwConfig *c) {
        if (c && atomic_fetch_sub(&c->refs, 1) == 1)
                config_free(c);
}

GwAlias *gw_config_alias(const GwConfig *c, const char *model) {
        if (!c || !model)
                return NULL;
        size_t lo = 0, hi = c->n_aliases;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int d = strcmp(model, c->aliases[mid].name);
                if (d == 0)
                        return &c->aliases[mid];
                if (d < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

bool gw_config_bodies(const GwConfig *c, const char *ns) {
        for (size_t i = 0; c && i < c->n_body_namespaces; i++)
                if (strcmp(c->body_namespaces[i], ns) == 0)
                        return true;
        return false;
}

const char *gw_strategy_name(GwStrategy s) {
        static const char *const names[_GW_STRATEGY_MAX] = {
                [GW_STRATEGY_WEIGHTED] = "weighted",
                [GW_STRATEGY_LEAST_BUSY] = "least-busy",
                [GW_STRATEGY_LOWEST_LATENCY] = "lowest-latency",
        };
        return (unsigned) s < _GW_STRATEGY_MAX ? names[s] : "?";
}
