/* runtime/template.c: the node's python3 template zygote (template.h). */
#define _GNU_SOURCE
#include "template.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

#define TEMPLATE_DELAY_MS 200        /* after an adoption: the first request goes first */
#define TEMPLATE_RETRY_MIN_MS 1000
#define TEMPLATE_RETRY_MAX_MS 60000

typedef struct Slot {
        Templates *t;
        Zygote *z;                   /* starting or ready; NULL: none yet */
        bool ready;
        unsigned failures;
        uv_timer_t timer;
} Slot;

struct Templates {
        uv_loop_t *loop;
        JailConfig cfg;              /* the template's: empty code and run folders */
        char *code_dir, *run_dir;
        Slot slots[TEMPLATES_MAX];
        unsigned n, open_timers;
        uint64_t adopted;
        bool closing;
};

static void start_later(Slot *s, uint64_t ms);

static void on_event(Zygote *z, ZygoteEvent ev, int error, void *userdata) {
        Slot *s = userdata;
        (void) error;
        if (z != s->z)
                return;
        if (ev == ZYGOTE_EVENT_READY) {
                s->ready = true;
                s->failures = 0;
                return;
        }
        /* died before it was adopted: another, more and more slowly */
        fprintf(stderr, "fnbox-runtime: a template zygote: %s\n", zygote_error(z));
        s->ready = false;
        s->failures++;
        uint64_t ms = TEMPLATE_RETRY_MIN_MS << (s->failures > 6 ? 6 : s->failures - 1);
        start_later(s, ms > TEMPLATE_RETRY_MAX_MS ? TEMPLATE_RETRY_MAX_MS : ms);
}

static void start(Slot *s) {
        Templates *t = s->t;
        if (t->closing)
                return;
        if (s->z)
                zygote_free(TAKE_PTR(s->z));
        s->ready = false;
        int r = zygote_template_new(t->loop, &t->cfg, on_event, s, &s->z);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime: a template zygote: %s\n", strerror(-r));
                s->z = NULL;
                s->failures++;
                start_later(s, TEMPLATE_RETRY_MAX_MS);
        }
}

static void on_timer(uv_timer_t *h) {
        start(h->data);
}

static void start_later(Slot *s, uint64_t ms) {
        if (!s->t->closing)
                uv_timer_start(&s->timer, on_timer, ms, 0);
}

/* An empty folder, root's, that the box user may enter and read. */
static int empty_dir(const char *path) {
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        struct stat st;
        if (lstat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0)
                return -EEXIST;
        return chmod(path, 0755) < 0 ? negative_errno() : 0;
}

/* The entry a python3 code folder must have (jail_config_check): empty,
 * never run (the template's driver waits for its revision's). */
static int entry_file(const char *dir) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/main.py", dir) < 0)
                return -ENOMEM;
        int fd = open(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        int r = fchmod(fd, 0644) < 0 ? negative_errno() : 0;
        close(fd);
        return r;
}

int templates_new(uv_loop_t *loop, const char *dir, unsigned n, const char *cgroup_parent, uid_t box_uid,
                  Templates **ret) {
        if (n < 1 || n > TEMPLATES_MAX)
                return -EINVAL;
        Templates *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->loop = loop;
        t->n = n;
        int r = 0;
        _cleanup_free_ char *base = NULL;
        if (asprintf(&base, "%s/template", dir) < 0 || asprintf(&t->code_dir, "%s/fn", base) < 0 ||
            asprintf(&t->run_dir, "%s/run", base) < 0)
                r = -ENOMEM;
        if (r >= 0 && (r = empty_dir(base)) >= 0 && (r = empty_dir(t->code_dir)) >= 0 &&
            (r = empty_dir(t->run_dir)) >= 0)
                r = entry_file(t->code_dir);
        if (r < 0) {
                free(t->code_dir);
                free(t->run_dir);
                free(t);
                return r;
        }
        jail_config_init(&t->cfg);
        t->cfg.runtime = JAIL_RUNTIME_PYTHON3;
        t->cfg.code = t->code_dir;
        t->cfg.run_dir = t->run_dir;
        t->cfg.run_dir_readonly = true;
        t->cfg.host_uid = t->cfg.host_gid = box_uid;
        t->cfg.cgroup_parent = cgroup_parent;
        for (unsigned k = 0; k < n; k++) {
                Slot *sl = &t->slots[k];
                sl->t = t;
                uv_timer_init(loop, &sl->timer);
                sl->timer.data = sl;
                t->open_timers++;
                start(sl);
        }
        *ret = t;
        return 0;
}

int templates_adopt(Templates *t, const JailConfig *c, zygote_event_fn fn, void *userdata, Zygote **ret) {
        char why[256];
        if (!t || t->closing || !zygote_template_fits(c))
                return -EAGAIN;
        Slot *s = NULL;
        for (unsigned k = 0; k < t->n && !s; k++)
                if (t->slots[k].ready && t->slots[k].z && zygote_is_ready(t->slots[k].z))
                        s = &t->slots[k];
        if (!s)
                return -EAGAIN;
        Zygote *z = TAKE_PTR(s->z);
        s->ready = false;
        int r = zygote_adopt(z, c, fn, userdata, why, sizeof why);
        start_later(s, TEMPLATE_DELAY_MS);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime: a template zygote: %s\n", why);
                zygote_free(z);
                return r;
        }
        t->adopted++;
        *ret = z;
        return 0;
}

uint64_t templates_adopted(const Templates *t) {
        return t ? t->adopted : 0;
}

static void on_closed(uv_handle_t *h) {
        Templates *t = ((Slot *) h->data)->t;
        if (--t->open_timers > 0)
                return;
        free(t->code_dir);
        free(t->run_dir);
        free(t);
}

void templates_free(Templates *t) {
        if (!t || t->closing)
                return;
        t->closing = true;
        for (unsigned k = 0; k < t->n; k++) {
                if (t->slots[k].z)
                        zygote_free(TAKE_PTR(t->slots[k].z));
                uv_close((uv_handle_t *) &t->slots[k].timer, on_closed);
        }
}
