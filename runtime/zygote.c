/* runtime/zygote.c: zygotes on the runtime's side (runtime/zygote.h). A
 * zygote is a jail that became a waiting interpreter (jail_zygote_spawn);
 * its children are asked for ahead of the requests (spares), each with
 * its own cgroup, pipes and control socket (jail_zchild_new), and set
 * themselves up as complete jails while they wait; a request hands one its
 * GO (jail_zchild_go) with the request's environment and a replacement is
 * asked for. The jail side is in
 * zygote_child.c; docs/jail.md ("Zygotes") says what each step is for. */
#define _GNU_SOURCE
#include "zygote.h"
#include "jail_internal.h"
#include "zygote_child.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "lib/list.h"
#include "lib/util.h"

_Static_assert(ZYGOTE_ENV_MAX == ZYGOTE_GO_ENV_MAX && ZYGOTE_ENV_BYTES == ZYGOTE_GO_ENV_BYTES,
               "zygote.h and zygote_child.h agree on a request's environment");

#define SPARES_MAX 16
#define BACKOFF_MAX_MS 2000
/* the zygote's own cgroup: the interpreter, and children until they have
 * moved to their own cgroups */
#define ZYGOTE_MEMORY_MIN (64ULL << 20)
#define ZYGOTE_PIDS (8 + 2 * SPARES_MAX)

/* Ended children's cgroups and network namespaces kept for the next ones:
 * mkdir and rmdir of a cgroup cost the kernel milliseconds of work (v1's
 * memory controller most), a new network namespace a loopback device and
 * a deferred cleanup; reusing them costs a few system calls. */
#define ZYGOTE_KEPT 16

/* A zygote not ready by then is killed (and its instance builds another,
 * running requests in pool jails meanwhile): python3's start-up takes a
 * fraction of a second; minutes would only hold its instance back. */
unsigned zygote_start_ms = 20000;

struct ZygoteChild {
        Zygote *z;
        Jail *j;
        jail_done_fn done;
        void *userdata;
        void *stdin_copy;
        bool started, finished;
        bool jail_freed;          /* jail_free() called: it releases itself at END */
        ZygoteChild *prev, *next;
};

struct Zygote {
        uv_loop_t *loop;
        Jail *jail;
        JailConfig cfg;           /* a deep copy; cfg.code_fd is ours */
        char **strings;           /* what cfg points into, freed with it */
        size_t n_strings;
        zygote_event_fn fn;
        void *userdata;
        bool ready, dead, freed;
        bool start_timed_out;     /* killed for not being ready in time */
        bool template_;           /* no revision yet: adopted once (zygote_adopt) */
        unsigned spares, n_spares, n_running;
        unsigned failures;        /* spares in a row that died before being used */
        ZygoteChild *children;    /* spares and running children */
        Cgroup cgroups[ZYGOTE_KEPT];   /* ended children's, for the next ones */
        unsigned n_cgroups;
        int netns[ZYGOTE_KEPT];        /* ... and their network namespaces */
        unsigned n_netns;
        uv_timer_t timer;         /* the start deadline, then refills */
        unsigned refs;            /* the timer, the zygote's jail, each child */
        char error[256];
};

static void config_clear(Zygote *z) {
        for (size_t i = 0; i < z->n_strings; i++)
                free(z->strings[i]);
        free(z->strings);
        free((void *) z->cfg.args);
        free((void *) z->cfg.env);
        safe_close(z->cfg.code_fd);
        z->strings = NULL;
        z->n_strings = 0;
        z->cfg.args = z->cfg.env = NULL;
        z->cfg.code_fd = -1;
}

static void zygote_unref(Zygote *z) {
        if (--z->refs > 0)
                return;
        while (z->n_cgroups > 0)
                (void) cgroup_destroy(&z->cgroups[--z->n_cgroups]);
        while (z->n_netns > 0)
                safe_close(z->netns[--z->n_netns]);
        config_clear(z);
        free(z);
}

/* ----- the copy of the config ----- */

static char *keep_str(Zygote *z, const char *s) {
        if (!s)
                return NULL;
        char *c = strdup(s);
        if (c)
                z->strings[z->n_strings++] = c;
        return c;
}

static int copy_strv(Zygote *z, char *const *v, size_t n, char *const **ret) {
        char **c = calloc(n + 1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *ret = c;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = keep_str(z, v[i])))
                        return -ENOMEM;
        return 0;
}

static int copy_config(Zygote *z, const JailConfig *c) {
        z->cfg = *c;
        z->cfg.args = NULL;
        z->cfg.env = NULL;
        z->cfg.stdin_data = NULL;
        z->cfg.stdin_len = 0;
        z->cfg.code_fd = -1;
        if (!(z->strings = calloc(c->n_args + c->n_env + 6, sizeof *z->strings)))
                return -ENOMEM;
        int r;
        if ((r = copy_strv(z, c->args, c->n_args, &z->cfg.args)) < 0 ||
            (r = copy_strv(z, c->env, c->n_env, &z->cfg.env)) < 0)
                return r;
        z->cfg.code = keep_str(z, c->code);
        z->cfg.entry = keep_str(z, c->entry);
        z->cfg.cgroup_parent = keep_str(z, c->cgroup_parent);
        /* the instance's folder (its broker socket), read-only: bound in
         * the zygote's jail, so that every child, which copies the
         * zygote's mount namespace, sees it */
        z->cfg.run_dir = keep_str(z, c->run_dir);
        z->cfg.run_dir_readonly = true;
        if ((c->code && !z->cfg.code) || (c->entry && !z->cfg.entry) || (c->cgroup_parent && !z->cfg.cgroup_parent) ||
            (c->run_dir && !z->cfg.run_dir))
                return -ENOMEM;
        /* the code as checked now: every child sees this one */
        if (c->code_fd >= 0 && (z->cfg.code_fd = fcntl(c->code_fd, F_DUPFD_CLOEXEC, 3)) < 0)
                return negative_errno();
        return 0;
}

/* ----- children ----- */

static void child_unlink(ZygoteChild *c) {
        Zygote *z = c->z;
        LIST_REMOVE(z->children, c);
}

static void refill(Zygote *z);

static void child_release(ZygoteChild *c) {
        if (c->jail_freed)
                return;
        c->jail_freed = true;
        jail_free(c->j);
}

/* A child's cgroup and network namespace after its END: kept for the
 * next child while the zygote lives and they can be reused, else removed
 * (the namespace: let go; the child checks that it is empty before using
 * it, zygote_child.c). */
static void keep(Zygote *z, Jail *j) {
        JailKept k;
        jail_take_kept(j, &k);
        bool live = !z->dead && !z->freed;
        if (k.cg.n > 0) {
                if (live && z->n_cgroups < ZYGOTE_KEPT && cgroup_recycle(&k.cg) >= 0)
                        z->cgroups[z->n_cgroups++] = k.cg;
                else
                        (void) cgroup_destroy(&k.cg);
        }
        if (k.netns >= 0) {
                if (live && z->n_netns < ZYGOTE_KEPT)
                        z->netns[z->n_netns++] = k.netns;
                else
                        safe_close(k.netns);
        }
}

static void child_event(Jail *j, JailEvent ev, int error, void *userdata) {
        ZygoteChild *c = userdata;
        Zygote *z = c->z;
        (void) error;
        if (ev == JAIL_EVENT_READY) {
                z->failures = 0;
                return;
        }
        /* END: the child and its pid namespace are gone; its cgroup, now
         * empty, serves a later child (or is removed) */
        child_unlink(c);
        keep(z, j);
        if (!c->started) {
                z->n_spares--;
                if (!z->freed && !z->dead)
                        z->failures++;
        } else if (!c->finished)
                z->n_running--;
        (void) j;
        child_release(c);
        free(c->stdin_copy);
        free(c);
        refill(z);
        zygote_unref(z);
}

static void child_done(Jail *j, JailResult *r, void *userdata) {
        ZygoteChild *c = userdata;
        /* a child gone without a word while its zygote died: the zygote's
         * end killed it (its pidfd may fire before the zygote's own) */
        if (r->status == JAIL_SETUP_ERROR && strcmp(r->error, "jail init ended early") == 0 &&
            (c->z->dead || !c->z->jail || jail_has_exited(c->z->jail))) {
                r->status = JAIL_KILLED;
                r->signal = SIGKILL;
                r->error[0] = 0;
        }
        c->finished = true;
        c->z->n_running--;
        if (c->done)
                c->done(j, r, c->userdata);
        c->done = NULL;
        refill(c->z);
}

Jail *zygote_child_jail(const ZygoteChild *c) {
        return c ? c->j : NULL;
}

static int spare_new(Zygote *z, ZygoteChild **ret) {
        ZygoteChild *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        JailKept k = { .netns = z->n_netns > 0 ? z->netns[--z->n_netns] : -1 };
        if (z->n_cgroups > 0)
                k.cg = z->cgroups[--z->n_cgroups];
        else
                cgroup_init(&k.cg);
        int r = jail_zchild_new(z->jail, &z->cfg, &k, &c->j);
        (void) cgroup_destroy(&k.cg); /* only if it was not taken */
        safe_close(k.netns);            /* sent with FORK, or not */
        if (r < 0) {
                free(c);
                return r;
        }
        c->z = z;
        z->refs++;
        jail_set_events(c->j, child_event, c);
        LIST_PREPEND(z->children, c);
        z->n_spares++;
        *ret = c;
        return 0;
}

static void on_timer(uv_timer_t *t) {
        Zygote *z = t->data;
        while (z->ready && !z->template_ && !z->dead && !z->freed && z->n_spares < z->spares) {
                ZygoteChild *c;
                if (spare_new(z, &c) < 0) {
                        z->failures++;
                        break;
                }
        }
        if (z->n_spares < z->spares)
                refill(z);
}

/* Ask for spares until there are z->spares, on the loop; after a request
 * that used one, once its result is out (so that making a replacement does
 * not compete with it), unless none is left; more and more slowly while
 * they keep dying. */
static void refill(Zygote *z) {
        if (!z->ready || z->template_ || z->dead || z->freed || z->n_spares >= z->spares ||
            uv_is_active((uv_handle_t *) &z->timer))
                return;
        uint64_t delay = 0;
        if (z->failures > 0) {
                unsigned shift = z->failures > 8 ? 8 : z->failures;
                delay = 10ULL << shift;
                if (delay > BACKOFF_MAX_MS)
                        delay = BACKOFF_MAX_MS;
        }
        uv_timer_start(&z->timer, on_timer, delay, 0);
}

/* ----- the zygote itself ----- */

static void zygote_msg(Jail *j, const JailMsg *m, void *userdata) {
        Zygote *z = userdata;
        (void) j;
        if (m->type != JAIL_MSG_ZYGOTE_READY || z->ready || z->dead)
                return;
        z->ready = true;
        uv_timer_stop(&z->timer); /* the start deadline */
        refill(z);
        if (z->fn && !z->freed)
                z->fn(z, ZYGOTE_EVENT_READY, 0, z->userdata);
}

static void kill_children(Zygote *z) {
        for (ZygoteChild *c = z->children; c; c = c->next) {
                if (c->started)
                        jail_kill(c->j); /* done follows: JAIL_KILLED */
                else
                        child_release(c); /* a spare: END follows */
        }
}

/* The zygote is gone (it died, or it was killed): say why, once. */
static void zygote_done(Jail *j, JailResult *r, void *userdata) {
        Zygote *z = userdata;
        (void) j;
        z->dead = true;
        uv_timer_stop(&z->timer);
        if (z->start_timed_out)
                snprintf(z->error, sizeof z->error, "zygote not ready within %u ms", zygote_start_ms);
        else if (r->status == JAIL_SETUP_ERROR)
                snprintf(z->error, sizeof z->error, "zygote setup failed: %s", r->error);
        else if (r->status == JAIL_EXITED)
                snprintf(z->error, sizeof z->error, "zygote exited %d", r->exit_code);
        else
                snprintf(z->error, sizeof z->error, "zygote ended: %s", jail_status_to_string(r->status));
        if (r->err.len > 0) {
                /* the end of what it said, e.g. a python traceback */
                size_t n = strlen(z->error), take = r->err.len > 120 ? 120 : r->err.len;
                snprintf(z->error + n, sizeof z->error - n, ": %.*s", (int) take, r->err.data + r->err.len - take);
        }
        kill_children(z);
        if (z->fn && !z->freed)
                z->fn(z, ZYGOTE_EVENT_DIED, z->ready ? 0 : -EIO, z->userdata);
}

static void zygote_jail_event(Jail *j, JailEvent ev, int error, void *userdata) {
        Zygote *z = userdata;
        (void) error;
        if (ev != JAIL_EVENT_END)
                return;
        jail_free(j);
        z->jail = NULL;
        zygote_unref(z);
}

static void on_start_deadline(uv_timer_t *t) {
        Zygote *z = t->data;
        if (z->ready || z->dead || !z->jail)
                return;
        z->start_timed_out = true;
        jail_kill(z->jail); /* zygote_done follows */
}

static void on_timer_closed(uv_handle_t *h) {
        zygote_unref(h->data);
}

/* A zygote's children share its binds: a request's files (a session's
 * /input and /output) never go to one. */
static int refuse_files(const JailConfig *c, char *why, size_t why_len) {
        if (!c->input_dir && !c->output_dir)
                return 0;
        snprintf(why, why_len, "a zygote takes no input or output folder (a session runs in a jail of its own)");
        return -EINVAL;
}

static int zygote_spawn(uv_loop_t *loop, const JailConfig *c, int kind, zygote_event_fn fn, void *userdata,
                        Zygote **ret) {
        char why[256] = "";
        if (refuse_files(c, why, sizeof why) < 0)
                return -EINVAL;
        Zygote *z = calloc(1, sizeof *z);
        if (!z)
                return -ENOMEM;
        *z = (Zygote) { .loop = loop, .fn = fn, .userdata = userdata, .spares = ZYGOTE_SPARES_DEFAULT, .refs = 1,
                        .template_ = kind == JAIL_ZYGOTE_TEMPLATE };
        int r = copy_config(z, c);
        if (r >= 0 && z->cfg.code_fd < 0)
                r = jail_config_check_open(&z->cfg, why, sizeof why, &z->cfg.code_fd);
        if (r < 0) {
                zygote_unref(z);
                return r;
        }
        CgroupLimits cg = { c->limits.memory_bytes, ZYGOTE_PIDS, c->limits.cpu_millis };
        if (cg.memory_bytes < ZYGOTE_MEMORY_MIN)
                cg.memory_bytes = ZYGOTE_MEMORY_MIN;
        r = jail_zygote_spawn(loop, &z->cfg, &cg, kind, zygote_done, z, zygote_msg, z, why, sizeof why, &z->jail);
        if (r < 0) {
                snprintf(z->error, sizeof z->error, "%s", why);
                zygote_unref(z);
                return r;
        }
        z->refs++; /* the jail, until its END */
        jail_set_events(z->jail, zygote_jail_event, z);
        uv_timer_init(loop, &z->timer);
        z->timer.data = z;
        uv_timer_start(&z->timer, on_start_deadline, zygote_start_ms, 0);
        *ret = z;
        return 0;
}

int zygote_new(uv_loop_t *loop, const JailConfig *c, zygote_event_fn fn, void *userdata, Zygote **ret) {
        int kind = c->runtime == JAIL_RUNTIME_PYTHON3 ? JAIL_ZYGOTE_PYTHON : JAIL_ZYGOTE_EXEC;
        return zygote_spawn(loop, c, kind, fn, userdata, ret);
}

int zygote_template_new(uv_loop_t *loop, const JailConfig *c, zygote_event_fn fn, void *userdata, Zygote **ret) {
        if (c->runtime != JAIL_RUNTIME_PYTHON3 || c->n_args > 0 || c->n_env > 0)
                return -EINVAL;
        return zygote_spawn(loop, c, JAIL_ZYGOTE_TEMPLATE, fn, userdata, ret);
}

/* What the interpreter read from its environment as it started, before
 * any revision was known: a revision that sets one of these gets a
 * zygote of its own. */
static bool env_read_at_start(const char *kv) {
        static const char *const prefixes[] = { "LANG=", "LC_", "TZ=", "PYTHON", "LANGUAGE=" };
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(kv, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

bool zygote_template_fits(const JailConfig *c) {
        if (c->runtime != JAIL_RUNTIME_PYTHON3 || c->input_dir || c->output_dir)
                return false;
        for (size_t i = 0; i < c->n_env; i++)
                if (!c->env[i] || env_read_at_start(c->env[i]))
                        return false;
        return true;
}

int zygote_adopt(Zygote *z, const JailConfig *c, zygote_event_fn fn, void *userdata, char *why, size_t why_len) {
        if (!z->template_ || !zygote_is_ready(z)) {
                snprintf(why, why_len, "not a ready template");
                return -ENOTCONN;
        }
        if (refuse_files(c, why, why_len) < 0)
                return -EINVAL;
        if (!zygote_template_fits(c)) {
                snprintf(why, why_len, "the revision's environment sets what python3 reads as it starts");
                return -EINVAL;
        }
        /* from here on the template is the revision's, or useless */
        z->template_ = false;
        config_clear(z);
        int r = copy_config(z, c);
        if (r >= 0 && z->cfg.code_fd < 0)
                r = jail_config_check_open(&z->cfg, why, why_len, &z->cfg.code_fd);
        if (r >= 0)
                r = jail_zygote_adopt(z->jail, &z->cfg, why, why_len);
        if (r < 0) {
                z->dead = true;
                snprintf(z->error, sizeof z->error, "adopting a template: %s", why);
                return r;
        }
        z->fn = fn;
        z->userdata = userdata;
        refill(z);
        return 0;
}

int zygote_set_spares(Zygote *z, unsigned n) {
        if (n < 1 || n > SPARES_MAX)
                return -EINVAL;
        z->spares = n;
        refill(z);
        return 0;
}

/* A spare for a request: one that waits (ready), else one still setting
 * itself up (its GO waits in its socket), else a new one. */
static int spare_take(Zygote *z, ZygoteChild **ret) {
        ZygoteChild *pick = NULL;
        /* a spare that died (its control socket hung up) is not one: it
         * would end the request as killed */
        for (ZygoteChild *c = z->children; c; c = c->next)
                if (!c->started && !c->jail_freed && jail_has_exited(c->j))
                        child_release(c); /* its END follows */
        for (ZygoteChild *c = z->children; c && !pick; c = c->next)
                if (!c->started && !c->jail_freed && jail_is_ready(c->j))
                        pick = c;
        for (ZygoteChild *c = z->children; c && !pick; c = c->next)
                if (!c->started && !c->jail_freed && !jail_is_started(c->j))
                        pick = c;
        if (!pick) {
                int r = spare_new(z, &pick);
                if (r < 0)
                        return r;
        }
        *ret = pick;
        return 0;
}

/* One NAME=VALUE of a request's environment: a name as the shell and
 * execve take it, a value without control characters (no NUL, no newline). */
static bool env_entry_valid(const char *s) {
        if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        const char *p = s;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
                p++;
        if (*p++ != '=')
                return false;
        for (; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* The request's environment, checked and packed as GO carries it
 * (zygote_child.h): NAME=VALUE strings with their NULs (NULL when empty). */
static int env_pack(const ZygoteRequest *q, char **ret, size_t *ret_len) {
        size_t len = 0;
        if (q->n_env > ZYGOTE_ENV_MAX)
                return -E2BIG;
        if (q->n_env > 0 && !q->env)
                return -EINVAL;
        for (size_t i = 0; i < q->n_env; i++) {
                if (!env_entry_valid(q->env[i]))
                        return -EINVAL;
                len += strnlen(q->env[i], ZYGOTE_ENV_BYTES) + 1;
                if (len > ZYGOTE_ENV_BYTES)
                        return -E2BIG;
        }
        char *buf = NULL;
        if (len > 0 && !(buf = malloc(len)))
                return -ENOMEM;
        char *p = buf;
        for (size_t i = 0; i < q->n_env; i++)
                p = stpcpy(p, q->env[i]) + 1;
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* The request's limits: the revision's, with its own shorter timeout. */
static JailConfig request_config(const Zygote *z, const ZygoteRequest *q) {
        JailConfig c = z->cfg;
        if (q->timeout_ns > 0 && q->timeout_ns < c.limits.timeout_ns)
                c.limits.timeout_ns = q->timeout_ns;
        return c;
}

int zygote_fork(Zygote *z, const ZygoteRequest *q, jail_done_fn done, void *userdata, ZygoteChild **ret) {
        _cleanup_free_ char *env = NULL;
        size_t env_len = 0;
        if (!z->ready || z->template_ || z->dead || z->freed)
                return -ENOTCONN;
        if (z->n_running >= ZYGOTE_CHILDREN_MAX)
                return -EBUSY;
        if (q->stdin_len > JAIL_STDIN_MAX)
                return -E2BIG;
        if (q->stdin_len > 0 && !q->stdin_data)
                return -EINVAL;
        int r = env_pack(q, &env, &env_len);
        if (r < 0)
                return r;
        JailConfig cfg = request_config(z, q);
        void *copy = malloc(q->stdin_len ? q->stdin_len : 1);
        if (!copy)
                return -ENOMEM;
        if (q->stdin_len > 0)
                memcpy(copy, q->stdin_data, q->stdin_len);
        for (int tries = 0; tries < 3; tries++) {
                ZygoteChild *c;
                if ((r = spare_take(z, &c)) < 0) {
                        free(copy);
                        return r;
                }
                if (jail_zchild_go(c->j, &cfg, copy, q->stdin_len, env, env_len, child_done, c) < 0) {
                        child_release(c); /* died meanwhile: its END is coming */
                        continue;
                }
                c->started = true;
                c->done = done;
                c->userdata = userdata;
                c->stdin_copy = copy;
                z->n_spares--;
                z->n_running++;
                if (z->n_spares == 0)
                        refill(z);
                *ret = c;
                return 0;
        }
        free(copy);
        return -EIO;
}

int zygote_child_kill(ZygoteChild *c) {
        return c ? jail_kill(c->j) : -ESRCH;
}

/* Its jail's end is seen some time after the zygote died (once every
 * process of the jail is gone): its control socket's hang-up comes first. */
bool zygote_is_ready(const Zygote *z) {
        return z->ready && !z->dead && !z->freed && z->jail && !jail_has_exited(z->jail);
}
unsigned zygote_children(const Zygote *z) { return z->n_running; }
const char *zygote_error(const Zygote *z) { return z->error; }

void zygote_free(Zygote *z) {
        if (!z || z->freed)
                return;
        z->freed = true;
        z->fn = NULL;
        kill_children(z);
        if (z->jail)
                jail_kill(z->jail); /* END releases it */
        uv_close((uv_handle_t *) &z->timer, on_timer_closed);
}
