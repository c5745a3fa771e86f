/* runtime/instance.c: instances of revisions on this node (instance.h).
 * The spec comes from the controller's assignment and is checked here
 * before anything is built; the code comes unpacked from the code cache.
 * fresh mode: a zygote per instance and a fixed number of slots; while
 * the zygote is missing (dead, or it could not be built) requests run in
 * prepared jails from the node's pool, which is the same jail. service mode lives in instance_service.c. */
#define _GNU_SOURCE
#include "instance.h"
#include "instance_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "jail_internal.h"
#include "session_run.h"
#include "lib/list.h"
#include "lib/util.h"

#define ZYGOTE_RETRY_MIN_MS 100
#define ZYGOTE_RETRY_MAX_MS 10000
#define ZYGOTE_SUSPECT_MS 1000    /* pool jails after a child was lost (child_lost) */
#define ZYGOTE_HANDOFF_MS 50      /* a child lost this soon is run again (call_retry) */
#define LOG_LINES_PER_RESULT 64

uint64_t instance_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

uint64_t instance_mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static const char *const state_names[_INSTANCE_STATE_MAX] = {
        [INSTANCE_STARTING] = "starting", [INSTANCE_READY] = "ready", [INSTANCE_DRAINING] = "draining",
        [INSTANCE_STOPPED] = "stopped", [INSTANCE_FAILED] = "failed",
};

const char *instance_state_to_string(InstanceState s) {
        return s >= 0 && s < _INSTANCE_STATE_MAX ? state_names[s] : "unknown";
}

void instance_set_state(Instance *i, InstanceState s, const char *fmt, ...) {
        char reason[INSTANCE_REASON_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        reason[strcspn(reason, "\n")] = 0;
        if (i->state == s && strcmp(i->reason, reason) == 0)
                return;
        i->state = s;
        snprintf(i->reason, sizeof i->reason, "%s", reason);
        i->since_ms = instance_now_ms();
        if (i->h.changed)
                i->h.changed(i, i->h.userdata);
}

/* "exited 1", "signaled 9", "timeout", ... : the reason a jail ended. */
void instance_result_reason(const JailResult *r, char *buf, size_t len) {
        switch (r->status) {
        case JAIL_EXITED: snprintf(buf, len, "exited %d", r->exit_code); break;
        case JAIL_SIGNALED: snprintf(buf, len, "signaled %d", r->signal); break;
        case JAIL_SETUP_ERROR: snprintf(buf, len, "setup_error: %s", r->error); break;
        default: snprintf(buf, len, "%s", jail_status_to_string(r->status)); break;
        }
}

/* Hand the stderr of a fresh request's result to the node's logs, a line
 * at a time (at most LOG_LINES_PER_RESULT). */
static void instance_log_output(Instance *i, const JailOutput *o) {
        if (!i->h.log || !o->data)
                return;
        const char *p = o->data, *end = o->data + o->len;
        for (unsigned n = 0; p < end && n < LOG_LINES_PER_RESULT; n++) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = (size_t) ((nl ? nl : end) - p);
                i->h.log(i, p, len > INSTANCE_LOG_LINE_MAX ? INSTANCE_LOG_LINE_MAX : len, i->h.userdata);
                p += len + (nl ? 1 : 0);
        }
}

/* ----- the spec ----- */

static uint64_t json_uint(json_t *o, const char *key, uint64_t def, uint64_t min, uint64_t max, bool *bad) {
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v))
                return def;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) < min ||
            (uint64_t) json_integer_value(v) > max) {
                *bad = true;
                return def;
        }
        return (uint64_t) json_integer_value(v);
}

static char *json_strdup(json_t *o, const char *key, size_t max, bool *bad) {
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v))
                return NULL;
        if (!json_is_string(v) || json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
                *bad = true;
                return NULL;
        }
        char *s = strdup(json_string_value(v));
        if (!s)
                *bad = true;
        return s;
}

/* What a fresh box learns of its request (docs/invoke.md): set per
 * request, so a spec's env of these names is left out in fresh mode. */
static const char *const request_env_names[] = {
        "FNBOX_REQUEST_ID", "FNBOX_TRACEPARENT", "FNBOX_METHOD", "FNBOX_PATH", "FNBOX_QUERY",
};
#define REQUEST_ENV_N ELEMENTSOF(request_env_names)
/* every INVOKE's fields fit: names, '=', the longest values, NULs */
_Static_assert(sizeof "FNBOX_REQUEST_ID=FNBOX_TRACEPARENT=FNBOX_METHOD=FNBOX_PATH=FNBOX_QUERY=" + 5 +
                               PROTO_REQID_MAX + PROTO_TRACE_MAX + PROTO_METHOD_MAX + 2 * PROTO_URLPART_MAX <=
                       ZYGOTE_ENV_BYTES && REQUEST_ENV_N <= ZYGOTE_ENV_MAX,
               "an INVOKE's environment fits a zygote request's");

static bool request_env_name(const char *k) {
        for (size_t n = 0; n < REQUEST_ENV_N; n++)
                if (strcmp(k, request_env_names[n]) == 0)
                        return true;
        return false;
}

static int spec_env(Instance *i, json_t *env, bool service) {
        if (env && !json_is_null(env) && !json_is_object(env))
                return -EINVAL;
        size_t n = env ? json_object_size(env) : 0;
        if (n + 2 > 256)
                return -EINVAL;
        if (!(i->env = calloc(n + 3, sizeof *i->env)))
                return -ENOMEM;
        const char *k;
        json_t *v;
        json_object_foreach(env, k, v) {
                if (!service && request_env_name(k))
                        continue;
                if (!json_is_string(v) || asprintf(&i->env[i->n_env], "%s=%s", k, json_string_value(v)) < 0)
                        return -EINVAL;
                i->n_env++;
        }
        if (service && !(i->env[i->n_env++] = strdup("FNBOX_SOCKET=" INSTANCE_SOCKET_IN_JAIL)))
                return -ENOMEM;
        if (i->h.broker && !(i->env[i->n_env++] = strdup("FNBOX_BROKER=" BROKER_SOCKET_IN_JAIL)))
                return -ENOMEM;
        /* a jail takes 256 entries: the request's must fit too (a pool jail
         * gets them as a JailConfig's env) */
        if (!service && i->n_env + REQUEST_ENV_N > 256)
                return -E2BIG;
        return 0;
}

/* The entry's "gpus": the node's GPU indices the controller gave it, as
 * many as its spec's limits ask for; their devices and environment. */
static int spec_gpus(Instance *i, json_t *entry, json_t *spec, char *why, size_t len) {
        json_t *l = json_object_get(spec, "limits"), *list = json_object_get(entry, "gpus");
        json_t *want = json_is_object(l) ? json_object_get(l, "gpus") : NULL;
        size_t asked = json_is_integer(want) && json_integer_value(want) > 0 ? (size_t) json_integer_value(want) : 0;
        size_t n = json_is_array(list) ? json_array_size(list) : 0;
        if (list && !json_is_array(list))
                return snprintf(why, len, "gpus: not a list"), -EINVAL;
        if (n != asked)
                return snprintf(why, len, "gpus: the spec asks for %zu, %zu assigned", asked, n), -EINVAL;
        if (n == 0)
                return 0;
        const GpuInventory *inv = i->h.gpus;
        if (!inv || n > inv->n)
                return snprintf(why, len, "gpus: %zu asked for, the node has %u", n, inv ? inv->n : 0), -EINVAL;
        for (size_t k = 0; k < n; k++) {
                json_t *v = json_array_get(list, k);
                if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= GPU_MAX)
                        return snprintf(why, len, "gpus: not GPU indices"), -EINVAL;
                i->gpus[k] = (unsigned) json_integer_value(v);
        }
        char env[GPU_ENV_MAX][GPU_ENV_LEN], gwhy[200];
        size_t n_env;
        if (gpu_assign(inv, i->gpus, n, i->devices, &i->n_devices, env, &n_env, gwhy, sizeof gwhy) < 0)
                return snprintf(why, len, "gpus: %s", gwhy), -EINVAL;
        i->n_gpus = n;
        char **e = realloc(i->env, (i->n_env + n_env + 1) * sizeof *e);
        if (!e)
                return -ENOMEM;
        i->env = e;
        for (size_t k = 0; k < n_env; k++) {
                /* the spec's own entry of that name gives way */
                size_t kl = strcspn(env[k], "=") + 1;
                for (size_t j = 0; j < i->n_env; j++)
                        if (strncmp(i->env[j], env[k], kl) == 0) {
                                free(i->env[j]);
                                i->env[j] = i->env[--i->n_env];
                                break;
                        }
                if (!(i->env[i->n_env] = strdup(env[k])))
                        return -ENOMEM;
                i->env[++i->n_env] = NULL;
        }
        if (!i->service && i->n_env + REQUEST_ENV_N > 256)
                return snprintf(why, len, "env: too many entries with the GPUs'"), -EINVAL;
        return 0;
}

static int spec_limits(Instance *i, json_t *l, bool *bad) {
        if (l && !json_is_object(l))
                return -EINVAL;
        JailLimits *d = &i->limits;
        jail_limits_default(d);
        d->memory_bytes = json_uint(l, "memoryBytes", d->memory_bytes, 4ULL << 20, 1ULL << 40, bad);
        d->timeout_ns = json_uint(l, "timeoutMs", 10000, 1, 86400000, bad) * 1000000ULL;
        d->cpu_millis = json_uint(l, "cpuMillis", d->cpu_millis, 10, 64000, bad);
        d->pids = json_uint(l, "pids", d->pids, 1, 32768, bad);
        d->tmp_bytes = json_uint(l, "tmpBytes", d->tmp_bytes, 64ULL << 10, 512ULL << 30, bad);
        d->output_bytes = json_uint(l, "outputBytes", d->output_bytes, 0, 1ULL << 30, bad);
        return 0;
}

/* The part of the canonical spec the runtime uses (lib/manifest.h), with
 * the defaults that older revisions lack. */
static int spec_parse(Instance *i, json_t *spec, char *why, size_t len) {
        bool bad = false;
        if (!json_is_object(spec))
                return snprintf(why, len, "the spec is not an object"), -EINVAL;
        json_t *mode = json_object_get(spec, "mode"), *rt = json_object_get(spec, "runtime");
        int runtime = jail_runtime_from_string(json_string_value(rt));
        if (runtime < 0)
                return snprintf(why, len, "unknown runtime"), -EINVAL;
        i->runtime = (JailRuntime) runtime;
        if (!json_is_string(mode) || (strcmp(json_string_value(mode), "fresh") && strcmp(json_string_value(mode), "service")))
                return snprintf(why, len, "unknown mode"), -EINVAL;
        i->service = strcmp(json_string_value(mode), "service") == 0;
        i->entrypoint = json_strdup(spec, "entrypoint", 200, &bad);
        char *code = json_strdup(spec, "code", 1024, &bad);
        const char *slash = code ? strrchr(code, '/') : NULL;
        i->code_name = code ? strdup(slash ? slash + 1 : code) : NULL;
        free(code);
        json_t *scale = json_object_get(spec, "scale"), *rd = json_object_get(spec, "readiness");
        uint64_t target = json_uint(json_is_object(scale) ? scale : NULL, "target", 10, 1, 1000, &bad);
        i->slots = (unsigned) json_uint(spec, "concurrency", target, 1, 1000, &bad);
        if (i->slots > INSTANCE_SLOTS_MAX)
                i->slots = INSTANCE_SLOTS_MAX;
        i->startup_ms = json_uint(spec, "startupTimeoutMs", 600000, 1000, 3600000, &bad);
        if (rd && !json_is_object(rd))
                bad = true;
        i->probe_path = json_strdup(json_is_object(rd) ? rd : NULL, "path", 200, &bad);
        i->probe_ms = json_uint(json_is_object(rd) ? rd : NULL, "periodMs", 100, 10, 60000, &bad);
        if (!bad && !i->probe_path && !(i->probe_path = strdup("/healthz")))
                return -ENOMEM;
        if (!bad && (i->probe_path[0] != '/' || strcspn(i->probe_path, " \r\n\t") != strlen(i->probe_path)))
                bad = true;
        int r = spec_limits(i, json_object_get(spec, "limits"), &bad);
        if (r >= 0)
                r = spec_env(i, json_object_get(spec, "env"), i->service);
        if (r == -E2BIG)
                return snprintf(why, len, "env: at most %zu entries in fresh mode (%zu are the request's)",
                                256 - REQUEST_ENV_N - (i->h.broker ? 1 : 0), REQUEST_ENV_N), -EINVAL;
        if (r < 0 || bad)
                return snprintf(why, len, "the spec has a field out of range"), -EINVAL;
        return 0;
}

static bool id_valid(const char *s, size_t max) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > max)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
                        return false;
        return true;
}

static void on_handle_closed(uv_handle_t *h) {
        Instance *i = h->data;
        if (--i->open_handles > 0)
                return;
        for (size_t k = 0; k < i->n_env; k++)
                free(i->env[k]);
        free(i->env);
        free(i->id);
        free(i->ns);
        free(i->function);
        free(i->revision);
        free(i->entrypoint);
        free(i->code_name);
        free(i->code_path);
        free(i->probe_path);
        free(i->run_dir);
        free(i->endpoint);
        free(i);
}

int instance_new(const InstanceHost *h, json_t *entry, char *why, size_t why_len, Instance **ret) {
        const char *id = json_string_value(json_object_get(entry, "id"));
        const char *ns = json_string_value(json_object_get(entry, "namespace"));
        const char *fn = json_string_value(json_object_get(entry, "function"));
        const char *rev = json_string_value(json_object_get(entry, "revision"));
        const char *digest = json_string_value(json_object_get(entry, "codeDigest"));
        if (!id_valid(id, PROTO_ID_MAX) || !id_valid(ns, 63) || !id_valid(fn, 63) || !id_valid(rev, 70))
                return snprintf(why, why_len, "bad id, namespace, function or revision"), -EINVAL;
        if (!digest || strlen(digest) != 71 || strncmp(digest, "sha256:", 7) != 0 ||
            strspn(digest + 7, "0123456789abcdef") != 64)
                return snprintf(why, why_len, "bad codeDigest"), -EINVAL;
        Instance *i = calloc(1, sizeof *i);
        if (!i)
                return -ENOMEM;
        i->h = *h;
        i->state = INSTANCE_STARTING;
        snprintf(i->reason, sizeof i->reason, "started");
        i->since_ms = instance_now_ms();
        i->created_ns = instance_mono_ns();
        snprintf(i->digest, sizeof i->digest, "%s", digest);
        uv_timer_t *timers[] = { &i->zygote_timer, &i->drain_timer, &i->probe_timer, &i->startup_timer };
        for (size_t k = 0; k < ELEMENTSOF(timers); k++) {
                uv_timer_init(h->loop, timers[k]);
                timers[k]->data = i;
                i->open_handles++;
        }
        if (!(i->id = strdup(id)) || !(i->ns = strdup(ns)) || !(i->function = strdup(fn)) ||
            asprintf(&i->revision, "%s/%s", ns, rev) < 0) {
                i->revision = NULL;
                instance_free(i);
                return -ENOMEM;
        }
        /* a spec this node cannot run: the instance exists, failed, so that
         * the controller hears why */
        if (spec_parse(i, json_object_get(entry, "spec"), why, why_len) < 0 ||
            spec_gpus(i, entry, json_object_get(entry, "spec"), why, why_len) < 0) {
                i->state = INSTANCE_FAILED;
                snprintf(i->reason, sizeof i->reason, "setup_error: %s", why);
        }
        *ret = i;
        return 0;
}

const char *instance_id(const Instance *i) { return i->id; }
const char *instance_digest(const Instance *i) { return i->digest; }
const char *instance_revision(const Instance *i) { return i->revision; }
InstanceState instance_state(const Instance *i) { return i->state; }
const unsigned *instance_gpus(const Instance *i, size_t *ret_n) {
        *ret_n = i->n_gpus;
        return i->gpus;
}
unsigned instance_inflight(const Instance *i) { return i->inflight; }

bool instance_finished(const Instance *i) {
        return (i->state == INSTANCE_STOPPED || i->state == INSTANCE_FAILED) && !i->calls && !i->zygote &&
               !i->jail_live && !i->probing;
}

json_t *instance_status_json(const Instance *i) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:s?,s:I}", "id", i->id, "state", instance_state_to_string(i->state),
                              "reason", i->reason, "inflight", (int) i->inflight, "endpoint",
                              i->state == INSTANCE_READY || i->state == INSTANCE_DRAINING ? i->endpoint : NULL,
                              "sinceMs", (json_int_t) i->since_ms);
        if (o && i->n_gpus > 0) {
                /* what it holds, so that a restarted controller knows */
                json_t *g = json_array();
                for (size_t k = 0; g && k < i->n_gpus; k++)
                        json_array_append_new(g, json_integer(i->gpus[k]));
                if (!g || json_object_set_new(o, "gpus", g) < 0)
                        o = (json_decref(o), NULL);
        }
        return o;
}

void instance_free(Instance *i) {
        if (!i || i->freeing)
                return;
        i->freeing = true;
        /* the node frees an instance once it is finished: no call is left */
        if (i->zygote)
                zygote_free(TAKE_PTR(i->zygote));
        if (i->jail) {
                jail_set_events(i->jail, NULL, NULL);
                i->jail = jail_free(i->jail);
        }
        broker_box_close(TAKE_PTR(i->broker_box)); /* its socket goes now */
        instance_service_cleanup(i);
        uv_timer_t *timers[] = { &i->zygote_timer, &i->drain_timer, &i->probe_timer, &i->startup_timer };
        for (size_t k = 0; k < ELEMENTSOF(timers); k++)
                uv_close((uv_handle_t *) timers[k], on_handle_closed);
}

/* ----- the code ----- */

/* A folder artifact runs its entry; a single-file artifact (the spec's
 * code named a file) runs that file: the folder has no entry then, but
 * one regular file with the code's name. */
static int code_resolve(Instance *i, const char *dir) {
        const char *entry = i->entrypoint ? i->entrypoint : jail_runtimes[i->runtime].default_entry;
        struct stat st;
        char *p = NULL;
        if (!i->entrypoint && i->code_name && *i->code_name && !strchr(i->code_name, '/') &&
            asprintf(&p, "%s/%s", dir, i->code_name) >= 0) {
                char *e = NULL;
                bool has_entry = asprintf(&e, "%s/%s", dir, entry) >= 0 && stat(e, &st) == 0;
                free(e);
                if (!has_entry && lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                        i->code_path = p;
                        return 0;
                }
                free(p);
        }
        return (i->code_path = strdup(dir)) ? 0 : -ENOMEM;
}

void instance_config(const Instance *i, JailConfig *c) {
        jail_config_init(c);
        c->runtime = i->runtime;
        c->code = i->code_path;
        c->entry = i->code_path && i->entrypoint ? i->entrypoint : NULL;
        c->env = i->env;
        c->n_env = i->n_env;
        c->limits = i->limits;
        c->host_uid = c->host_gid = i->h.box_uid;
        c->cgroup_parent = i->h.cgroup_parent;
        /* the instance's folder: a service's is its own (read-write); a
         * fresh instance's holds the broker socket, read-only */
        c->run_dir = i->run_dir;
        c->run_dir_readonly = !i->service;
        c->devices = i->devices;
        c->n_devices = i->n_devices;
}

static int instance_fresh_folder(Instance *i);

/* ----- fresh mode: the zygote ----- */

static void zygote_schedule(Instance *i);
static void on_zygote_dead(uv_timer_t *t);

static void fresh_ready(Instance *i) {
        if (i->state != INSTANCE_STARTING)
                return;
        if (i->h.instance_ready)
                i->h.instance_ready(i, (double) (instance_mono_ns() - i->created_ns) / 1e9, i->h.userdata);
        instance_set_state(i, INSTANCE_READY, "ready");
}

static void on_zygote_event(Zygote *z, ZygoteEvent ev, int error, void *userdata) {
        Instance *i = userdata;
        (void) error;
        if (z != i->zygote)
                return;
        if (ev == ZYGOTE_EVENT_READY) {
                i->zygote_failures = 0;
                if (i->h.zygote_ready)
                        i->h.zygote_ready(i, (double) (instance_mono_ns() - i->zygote_started_ns) / 1e9,
                                          i->h.userdata);
                fresh_ready(i);
                return;
        }
        /* died: its running requests end on their own; build another one
         * (the dead one is released first, out of its own callback). Until
         * then requests run in pool jails. */
        fprintf(stderr, "fnbox-runtime: instance %s: %s; another follows\n", i->id, zygote_error(z));
        i->zygote_failures++;
        fresh_ready(i);
        if (i->state == INSTANCE_DRAINING && !i->calls)
                instance_fresh_drained(i);
        else
                uv_timer_start(&i->zygote_timer, on_zygote_dead, 0, 0);
}

static void zygote_build(Instance *i) {
        if (i->zygote || (i->state != INSTANCE_STARTING && i->state != INSTANCE_READY))
                return;
        JailConfig c;
        instance_config(i, &c);
        i->zygote_started_ns = instance_mono_ns();
        /* the node's template, started ahead, when the revision fits it */
        if (i->h.templates && i->n_devices == 0 && templates_adopt(*i->h.templates, &c, on_zygote_event, i, &i->zygote) == 0) {
                on_zygote_event(i->zygote, ZYGOTE_EVENT_READY, 0, i);
                return;
        }
        i->zygote = NULL;
        int r = zygote_new(i->h.loop, &c, on_zygote_event, i, &i->zygote);
        if (r < 0) {
                i->zygote = NULL;
                i->zygote_failures++;
                fresh_ready(i);
                zygote_schedule(i);
        }
}

static void on_zygote_timer(uv_timer_t *t) {
        zygote_build(t->data);
}

static void on_zygote_dead(uv_timer_t *t) {
        Instance *i = t->data;
        if (i->zygote)
                zygote_free(TAKE_PTR(i->zygote));
        zygote_schedule(i);
}

static void zygote_schedule(Instance *i) {
        if (i->freeing || (i->state != INSTANCE_STARTING && i->state != INSTANCE_READY))
                return;
        uint64_t delay = ZYGOTE_RETRY_MIN_MS << (i->zygote_failures > 7 ? 7 : i->zygote_failures);
        uv_timer_start(&i->zygote_timer, on_zygote_timer, delay > ZYGOTE_RETRY_MAX_MS ? ZYGOTE_RETRY_MAX_MS : delay, 0);
}

void instance_start(Instance *i, const char *code_dir) {
        char why[256] = "";
        if (i->state != INSTANCE_STARTING || i->code_path)
                return; /* not waiting for its code */
        if (code_resolve(i, code_dir) < 0) {
                instance_set_state(i, INSTANCE_FAILED, "setup_error: out of memory");
                return;
        }
        JailConfig c;
        instance_config(i, &c);
        if (jail_config_check(&c, why, sizeof why) < 0) {
                instance_set_state(i, INSTANCE_FAILED, "setup_error: %s", why);
                return;
        }
        if (i->service) {
                instance_service_start(i);
                return;
        }
        int r = instance_fresh_folder(i);
        if (r < 0) {
                instance_set_state(i, INSTANCE_FAILED, "setup_error: the broker socket: %s", strerror(-r));
                return;
        }
        zygote_build(i);
}

void instance_fail(Instance *i, const char *reason) {
        if (i->state == INSTANCE_STARTING)
                instance_set_state(i, INSTANCE_FAILED, "%s", reason);
}

/* ----- fresh mode: requests ----- */

/* The request's environment (request_env_names, in that order; no
 * traceparent when it has none), from the INVOKE's fields. The invoke
 * decoder checked them; they are checked again here, as they become a
 * box's environment: NUL-terminated within their bounds, no control
 * characters. The strings live in buf. */
typedef struct RequestEnv {
        char *buf;
        const char *env[REQUEST_ENV_N];
        size_t n;
} RequestEnv;

static void request_env_clear(RequestEnv *e) {
        free(e->buf);
        *e = (RequestEnv) { 0 };
}

static int request_env_add(RequestEnv *e, char **p, size_t n, const char *value, size_t max) {
        size_t len = strnlen(value, max + 1);
        if (len > max)
                return -E2BIG;
        for (size_t k = 0; k < len; k++)
                if ((unsigned char) value[k] < 0x20 || value[k] == 0x7f)
                        return -EINVAL;
        e->env[e->n++] = *p;
        *p = stpcpy(stpcpy(stpcpy(*p, request_env_names[n]), "="), value) + 1;
        return 0;
}

static int request_env(const ProtoInvoke *inv, RequestEnv *e) {
        const char *values[REQUEST_ENV_N] = { inv->request_id, inv->traceparent, inv->method, inv->path, inv->query };
        static const size_t max[REQUEST_ENV_N] = { PROTO_REQID_MAX, PROTO_TRACE_MAX, PROTO_METHOD_MAX,
                                                   PROTO_URLPART_MAX, PROTO_URLPART_MAX };
        *e = (RequestEnv) { .buf = malloc(ZYGOTE_ENV_BYTES) };
        if (!e->buf)
                return -ENOMEM;
        char *p = e->buf;
        for (size_t n = 0; n < REQUEST_ENV_N; n++) {
                if (n == 1 && !*values[n])
                        continue; /* no traceparent */
                int r = request_env_add(e, &p, n, values[n], max[n]);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct InstanceCall {
        Instance *inst;
        InstanceCall *prev, *next;
        char *body;
        size_t len;
        Jail *jail;
        ZygoteChild *child;
        bool cancelled;
        bool killed;                     /* by the drain */
        bool retried;                    /* run again after its zygote died under it */
        instance_reply_fn fn;
        void *userdata;
        uint64_t start_ns;
        uint64_t timeout_ns;
        unsigned depth;                  /* broker calls nested above this request */
        RequestEnv env;
        /* a request with a session (docs/sessions.md): claimed before the
         * box, recorded after it (session_run.h) */
        SessionRun *sess;
        bool sess_ended;                 /* recorded (or given up): the reply may go */
        JailResult res;                  /* the box's result while the session is recorded */
};

static Jail *call_jail(const InstanceCall *c) {
        return c->child ? zygote_child_jail(c->child) : c->jail;
}

static void call_limits(const InstanceCall *c, BrokerCaller *ret) {
        ret->depth = c->depth;
        ret->deadline_ns = c->start_ns + c->timeout_ns;
}

static void call_free(InstanceCall *c) {
        request_env_clear(&c->env);
        session_run_free(c->sess);
        jail_result_clear(&c->res);
        free(c->body);
        free(c);
}

static int call_in_pool(Instance *i, InstanceCall *c, uint64_t timeout_ns, const RequestEnv *e, char *why,
                        size_t len);

static void call_finish(InstanceCall *c, JailResult *r);

static void on_session_ended(SessionRun *s, int r, const char *why, void *userdata) {
        InstanceCall *c = userdata;
        (void) s;
        c->sess_ended = true;
        if (r < 0)
                if (c->inst->h.log)
                        c->inst->h.log(c->inst, why, strlen(why), c->inst->h.userdata);
        call_finish(c, c->res.status == _JAIL_STATUS_MAX ? NULL : &c->res);
}

/* Record the session's outcome first: the result (NULL: the box did not
 * run, why) waits in c->res. */
static void call_session_end(InstanceCall *c, JailResult *r, const char *why) {
        if (r && r != &c->res) {
                c->res = *r;
                r->out = (JailOutput) { 0 };  /* its buffers are the call's now */
                r->err = (JailOutput) { 0 };
        } else if (r)
                ; /* held since the jail's result (on_call_jail_done) */
        else
                c->res = (JailResult) { .status = _JAIL_STATUS_MAX };
        if (session_run_end(c->sess, r ? &c->res : NULL, why, c->body, c->len, on_session_ended, c) < 0)
                on_session_ended(c->sess, -ENOMEM, "session: out of memory recording the outcome", c);
}

/* The request is over (r NULL: cancelled before a result). */
static void call_finish(InstanceCall *c, JailResult *r) {
        Instance *i = c->inst;
        if (c->sess && !c->sess_ended) {
                call_session_end(c, r, c->cancelled ? "the client went away" : "the box did not run");
                return;
        }
        LIST_REMOVE(i->calls, c);
        i->inflight--;
        if (r)
                instance_log_output(i, &r->err);
        if (i->h.request_done)
                i->h.request_done(i, r ? jail_status_to_string(r->status) : "cancelled",
                                  (double) (instance_mono_ns() - c->start_ns) / 1e9, i->h.userdata);
        if (r && !c->cancelled && c->fn)
                c->fn(r, c->userdata);
        if (i->h.pool && *i->h.pool)
                pool_refill(*i->h.pool); /* the reply is out: replace the jail now */
        call_free(c);
        if (i->state == INSTANCE_DRAINING && !i->calls)
                instance_fresh_drained(i);
}

/* A session's jail is entirely gone (no process of the box can write
 * /output any more): record the session now. */
static void on_session_jail_end(Jail *j, JailEvent ev, int error, void *userdata) {
        InstanceCall *c = userdata;
        (void) j, (void) error;
        if (ev != JAIL_EVENT_END)
                return;
        call_session_end(c, &c->res, NULL);
}

static void on_call_jail_done(Jail *j, JailResult *r, void *userdata) {
        InstanceCall *c = userdata;
        c->jail = NULL;
        if (c->sess && !c->sess_ended && !c->cancelled) {
                /* keep the result; pack /output once what the box left
                 * behind is gone too (the teardown kills it) */
                c->res = *r;
                r->out = (JailOutput) { 0 };
                r->err = (JailOutput) { 0 };
                jail_set_events(j, on_session_jail_end, c);
                jail_free(j);
                return;
        }
        jail_free(j); /* its teardown goes on */
        call_finish(c, r);
}

/* A zygote's child that was killed, but not by us (a drain or a client
 * that left), or that never got going: its zygote may be dying (the host
 * killed it, or it crashed) before the zygote's own end can be seen (that
 * comes once every process of its jail is gone), and its spares with it.
 * For a while no request is handed to it: they run in pool jails, and a
 * zygote that was dying is replaced meanwhile. One that was not (a spare
 * alone died) is used again after ZYGOTE_SUSPECT_MS; nothing of it is
 * killed for it. */
static bool child_lost(const InstanceCall *c, const JailResult *r) {
        return (r->status == JAIL_KILLED && !c->cancelled && !c->killed) || r->status == JAIL_SETUP_ERROR;
}

/* A request lost that way within ZYGOTE_HANDOFF_MS of being handed over
 * was handed to a zygote (or a spare) in the instant it died: the host's
 * kill and the request crossed, and the box, if it ran at all, was killed
 * before its status could be reported (its output, if any, cannot be
 * trusted). It runs again, once, in a pool jail, instead of ending as
 * killed. A request that ran longer keeps its error. */
static bool call_retry(Instance *i, InstanceCall *c) {
        char why[256];
        if (c->retried || c->cancelled || c->killed ||
            instance_mono_ns() - c->start_ns > ZYGOTE_HANDOFF_MS * 1000000ULL)
                return false;
        c->retried = true;
        return call_in_pool(i, c, c->timeout_ns, &c->env, why, sizeof why) >= 0;
}

static void on_call_child_done(Jail *j, JailResult *r, void *userdata) {
        InstanceCall *c = userdata;
        (void) j;
        c->child = NULL;
        if (child_lost(c, r)) {
                c->inst->zygote_suspect_ns = instance_mono_ns() + ZYGOTE_SUSPECT_MS * 1000000ULL;
                if (call_retry(c->inst, c))
                        return; /* the pool jail's result is the request's */
        }
        call_finish(c, r);
}

static int call_in_pool(Instance *i, InstanceCall *c, uint64_t timeout_ns, const RequestEnv *e, char *why,
                        size_t len) {
        JailConfig cfg;
        instance_config(i, &cfg);
        if (c->sess) {
                cfg.input_dir = session_run_input(c->sess);
                cfg.output_dir = session_run_output(c->sess);
        }
        /* the revision's environment, then the request's (copied by the start) */
        _cleanup_free_ char **env = calloc(i->n_env + e->n + 1, sizeof *env);
        if (!env)
                return snprintf(why, len, "out of memory"), -ENOMEM;
        memcpy(env, i->env, i->n_env * sizeof *env);
        memcpy(env + i->n_env, e->env, e->n * sizeof *env);
        cfg.env = env;
        cfg.n_env = i->n_env + e->n;
        cfg.stdin_data = c->body;
        cfg.stdin_len = c->len;
        cfg.limits.timeout_ns = timeout_ns;
        Pool *pool = i->h.pool ? *i->h.pool : NULL;
        Jail *j = pool ? pool_take(pool) : NULL;
        int r;
        if (j) {
                if ((r = jail_start(j, &cfg, on_call_jail_done, c, why, len)) < 0) {
                        pool_put(pool, j);
                        return r;
                }
        } else if ((r = jail_spawn(i->h.loop, &cfg, on_call_jail_done, c, &j)) < 0) {
                snprintf(why, len, "could not start the jail: %s", strerror(-r));
                return r;
        }
        c->jail = j;
        return 0;
}

/* A session's failure before its box ran, as the request's result. */
static void call_setup_failed(InstanceCall *c, const char *why) {
        JailResult e = { .status = JAIL_SETUP_ERROR };
        snprintf(e.error, sizeof e.error, "%s", why);
        call_finish(c, &e);
}

static void on_session_begun(SessionRun *s, int r, bool claimed, const char *why, void *userdata) {
        InstanceCall *c = userdata;
        Instance *i = c->inst;
        char jwhy[256];
        (void) s;
        if (!claimed) {
                /* nothing to record: the controller never gave it to us */
                c->sess_ended = true;
                if (c->cancelled)
                        call_finish(c, NULL);
                else
                        call_setup_failed(c, why);
                return;
        }
        if (c->cancelled) {
                call_finish(c, NULL);      /* recorded as failed */
                return;
        }
        if (r < 0) {
                snprintf(jwhy, sizeof jwhy, "%s", why);
                call_session_end(c, NULL, jwhy);
                return;
        }
        if (call_in_pool(i, c, c->timeout_ns, &c->env, jwhy, sizeof jwhy) < 0)
                call_session_end(c, NULL, jwhy);
}

int instance_invoke(Instance *i, const ProtoInvoke *inv, const char *body, size_t len, instance_reply_fn fn,
                    void *userdata, InstanceCall **ret, char *why, size_t why_len) {
        if (i->state != INSTANCE_READY || i->service)
                return snprintf(why, why_len, "instance %s is %s", i->id, instance_state_to_string(i->state)),
                       PROTO_INVOKE_NOT_READY;
        if (i->inflight >= i->slots)
                return snprintf(why, why_len, "instance %s has no free slot (%u in flight)", i->id, i->inflight),
                       PROTO_INVOKE_BUSY;
        _cleanup_(request_env_clear) RequestEnv e = { 0 };
        int r = request_env(inv, &e);
        if (r < 0)
                return snprintf(why, why_len, "%s", r == -ENOMEM ? "out of memory" : "bad request metadata"),
                       PROTO_INVOKE_FAILED;
        InstanceCall *c = calloc(1, sizeof *c);
        char *copy = c ? malloc(len ? len : 1) : NULL;
        if (!copy) {
                free(c);
                return snprintf(why, why_len, "out of memory"), PROTO_INVOKE_FAILED;
        }
        if (len)
                memcpy(copy, body, len);
        /* a request's timeout applies when it is shorter than the revision's */
        uint64_t timeout_ns = i->limits.timeout_ns;
        if (inv->timeout_ms && inv->timeout_ms < timeout_ns / 1000000)
                timeout_ns = inv->timeout_ms * 1000000ULL;
        *c = (InstanceCall) { .inst = i, .body = copy, .len = len, .fn = fn, .userdata = userdata,
                              .start_ns = instance_mono_ns(), .timeout_ns = timeout_ns, .depth = inv->depth,
                              .env = e };
        e = (RequestEnv) { 0 }; /* the call's now */
        if (inv->session[0]) {
                /* input files: no zygote (its jail is made); claim first */
                const char *rev = strchr(i->revision, '/');
                r = i->h.sessions ? session_run_begin(i->h.loop, i->h.sessions, inv->session, i->ns, i->function,
                                                      rev ? rev + 1 : i->revision, i->digest, on_session_begun, c,
                                                      &c->sess)
                                  : -EOPNOTSUPP;
                if (r < 0) {
                        snprintf(why, why_len, "%s", r == -EOPNOTSUPP ? "this node does not run sessions"
                                                                       : "out of memory");
                        call_free(c);
                        return PROTO_INVOKE_FAILED;
                }
                goto linked;
        }
        r = -ENOTCONN;
        if (i->zygote && zygote_is_ready(i->zygote) && instance_mono_ns() >= i->zygote_suspect_ns) {
                ZygoteRequest q = { .stdin_data = c->body, .stdin_len = len, .env = c->env.env, .n_env = c->env.n,
                                    .timeout_ns = timeout_ns };
                r = zygote_fork(i->zygote, &q, on_call_child_done, c, &c->child);
        }
        if (r < 0 && (r = call_in_pool(i, c, timeout_ns, &c->env, why, why_len)) < 0) {
                call_free(c);
                return PROTO_INVOKE_FAILED;
        }
linked:
        LIST_PREPEND(i->calls, c);
        i->inflight++;
        *ret = c;
        return 0;
}

void instance_call_cancel(InstanceCall *c) {
        if (c->cancelled)
                return;
        c->cancelled = true;
        if (c->child)
                zygote_child_kill(c->child); /* done follows, without a reply */
        else if (c->jail) {
                c->jail = jail_free(c->jail); /* killed; done will not fire */
                call_finish(c, NULL);
        }
}

/* ----- the broker ----- */

/* "/NAME" as a whole path component in a /proc/PID/cgroup text. */
static bool cgroup_text_has(const char *text, const char *name) {
        size_t n = strlen(name);
        for (const char *p = text; (p = strstr(p, name)); p += n)
                if (p > text && p[-1] == '/' && (p[n] == '\n' || p[n] == '/' || p[n] == 0))
                        return true;
        return false;
}

/* Which request a process that called the broker serves: the request
 * whose jail's cgroup the process is in. One that matches none (it went,
 * or it is no request's) gets the strictest of the running ones: the
 * deepest depth and the nearest deadline. A service cannot tell its
 * requests apart. */
static void broker_caller(pid_t pid, BrokerCaller *ret, void *userdata) {
        Instance *i = userdata;
        char path[64], text[4096];
        *ret = (BrokerCaller) { .known = !i->service };
        if (i->service)
                return;
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int) pid);
        ssize_t n = read_file_small(path, text, sizeof text);
        for (InstanceCall *c = i->calls; n > 0 && c; c = c->next) {
                const char *name = jail_cgroup_name(call_jail(c));
                if (name && cgroup_text_has(text, name)) {
                        call_limits(c, ret);
                        return;
                }
        }
        for (InstanceCall *c = i->calls; c; c = c->next) {
                BrokerCaller one;
                call_limits(c, &one);
                if (one.depth > ret->depth)
                        ret->depth = one.depth;
                if (!ret->deadline_ns || one.deadline_ns < ret->deadline_ns)
                        ret->deadline_ns = one.deadline_ns;
        }
}

/* Bind the instance's broker socket in its folder (which exists). */
int instance_broker_open(Instance *i) {
        if (!i->h.broker)
                return 0;
        const char *slash = strchr(i->revision, '/');
        BrokerIdentity id = { .instance = i->id, .ns = i->ns, .function = i->function,
                              .revision = slash ? slash + 1 : i->revision };
        return broker_box_open(i->h.broker, i->run_dir, i->h.box_uid, &id, broker_caller, i, &i->broker_box);
}

/* A fresh instance's folder, RUN_BASE/ID: root's, 0755, bound read-only
 * in its zygote and pool jails; the broker socket in it. */
static int instance_fresh_folder(Instance *i) {
        if (!i->h.broker || !i->h.run_base)
                return 0;
        if (asprintf(&i->run_dir, "%s/%s", i->h.run_base, i->id) < 0) {
                i->run_dir = NULL;
                return -ENOMEM;
        }
        instance_run_dir_remove(i->run_dir); /* a leftover of a runtime that died */
        if (mkdir(i->run_dir, 0755) < 0 || chmod(i->run_dir, 0755) < 0)
                return negative_errno();
        return instance_broker_open(i);
}

/* ----- draining ----- */

static void on_zygote_release(uv_timer_t *t) {
        Instance *i = t->data;
        if (i->zygote)
                zygote_free(TAKE_PTR(i->zygote));
        if (instance_finished(i) && i->h.changed)
                i->h.changed(i, i->h.userdata);
}

/* A fresh instance has nothing left running: it is stopped. Its zygote
 * goes on the next loop iteration: this may run inside one of the
 * zygote's own callbacks. */
void instance_fresh_drained(Instance *i) {
        uv_timer_stop(&i->drain_timer);
        uv_timer_stop(&i->zygote_timer);
        if (i->zygote)
                uv_timer_start(&i->zygote_timer, on_zygote_release, 0, 0);
        instance_set_state(i, INSTANCE_STOPPED, "drained");
}

static void kill_calls(Instance *i) {
        for (InstanceCall *c = i->calls, *next; c; c = next) {
                next = c->next;
                c->killed = true;
                if (c->child)
                        zygote_child_kill(c->child);
                else if (c->jail)
                        jail_kill(c->jail);
        }
}

static void on_drain_timer(uv_timer_t *t) {
        Instance *i = t->data;
        if (i->service)
                instance_service_kill(i);
        else
                kill_calls(i);
}

void instance_drain(Instance *i, bool now) {
        if (i->state == INSTANCE_STOPPED || i->state == INSTANCE_FAILED) {
                if (now && i->service)
                        instance_service_kill(i);
                return;
        }
        if (i->state == INSTANCE_STARTING && i->service && !i->jail) {
                instance_set_state(i, INSTANCE_STOPPED, "drained"); /* never started */
                return;
        }
        if (i->state != INSTANCE_DRAINING)
                instance_set_state(i, INSTANCE_DRAINING, "draining");
        uv_timer_stop(&i->zygote_timer);
        if (i->service) {
                instance_service_drain(i, now);
                return;
        }
        if (!i->calls) {
                instance_fresh_drained(i);
                return;
        }
        uint64_t ms = i->limits.timeout_ns / 1000000 + 1000;
        if (now)
                kill_calls(i);
        else if (!uv_is_active((uv_handle_t *) &i->drain_timer))
                uv_timer_start(&i->drain_timer, on_drain_timer, ms > INSTANCE_DRAIN_MAX_MS ? INSTANCE_DRAIN_MAX_MS : ms, 0);
}

void instance_drain_idle(Instance *i) {
        if (i->service && i->state == INSTANCE_DRAINING)
                instance_service_kill(i); /* stopped, drained */
}
