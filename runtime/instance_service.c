/* runtime/instance_service.c: `service` instances. One long-lived jail
 * whose box serves HTTP on FNBOX_SOCKET (/run/fnbox/http.sock in the jail,
 * RUN_BASE/ID/http.sock on the host). The runtime probes it over that
 * socket until the readiness path answers 2xx, then hands the socket to the
 * activator's group and reports the instance ready with its endpoint. The
 * box's folder belongs to the box until then and to root afterwards: the
 * box can no longer swap the socket for something else once the activator
 * may connect to it. */
#define _GNU_SOURCE
#include "instance_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "ctlclient_http.h"
#include "lib/util.h"

#define PROBE_TIMEOUT_MS 2000
#define RM_DEPTH_MAX 16

/* ----- the folder ----- */

/* Remove what is in dir_fd, never following a symlink, at most
 * RM_DEPTH_MAX folders deep (the box made it: it is hostile input). */
static void rm_contents(int dir_fd, int depth) {
        DIR *d = fdopendir(dir_fd);
        if (!d) {
                close(dir_fd);
                return;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno != EISDIR || depth >= RM_DEPTH_MAX)
                        continue;
                int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0)
                        rm_contents(sub, depth + 1);
                (void) unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        }
        closedir(d);
}

void instance_run_dir_remove(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                rm_contents(fd, 0);
        (void) rmdir(path);
}

void instance_service_cleanup(Instance *i) {
        if (i->run_dir && !i->jail_live)
                instance_run_dir_remove(i->run_dir);
}

/* RUN_BASE/ID, 0700 and the box's: it binds its socket there. */
static int run_dir_make(Instance *i) {
        if (asprintf(&i->run_dir, "%s/%s", i->h.run_base, i->id) < 0) {
                i->run_dir = NULL;
                return -ENOMEM;
        }
        instance_run_dir_remove(i->run_dir); /* a leftover of a runtime that died */
        if (mkdir(i->run_dir, 0700) < 0)
                return negative_errno();
        _cleanup_close_ int fd = open(i->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchown(fd, i->h.box_uid, i->h.box_uid) < 0)
                return negative_errno();
        return 0;
}

/* The box answered its probe: the folder becomes root's (0750, the
 * activator's group; 0751 with a broker socket, which the box must still
 * reach: others may enter, not list) so that the box cannot replace the
 * socket any more,
 * then the socket itself (checked to be a socket, never followed) is given
 * to that group, 0660. */
static int socket_publish(Instance *i) {
        _cleanup_close_ int dfd = open(i->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fchown(dfd, 0, i->h.socket_gid) < 0 || fchmod(dfd, i->broker_box ? 0751 : 0750) < 0)
                return negative_errno();
        _cleanup_close_ int sfd = openat(dfd, INSTANCE_SOCKET_NAME, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (sfd < 0 || fstat(sfd, &st) < 0)
                return negative_errno();
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", sfd);
        if (fchownat(sfd, "", 0, i->h.socket_gid, AT_EMPTY_PATH) < 0 || chmod(proc, 0660) < 0)
                return negative_errno();
        return asprintf(&i->endpoint, "unix:%s/%s", i->run_dir, INSTANCE_SOCKET_NAME) < 0 ? -ENOMEM : 0;
}

/* ----- the probe ----- */

typedef struct Probe {
        uv_work_t work;
        Instance *i;
        HttpTarget target;
        char path[256];
        struct stat pidns;       /* the jail's pid namespace */
        int r, status;
} Probe;

/* The peer must be a process of this instance's jail: the box could have
 * made the socket's name a symlink to another socket of the host. */
static int probe_verify(int fd, void *userdata) {
        Probe *p = userdata;
        struct ucred cred;
        socklen_t len = sizeof cred;
        char path[64];
        struct stat st;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return negative_errno();
        snprintf(path, sizeof path, "/proc/%d/ns/pid", (int) cred.pid);
        if (cred.pid <= 0 || stat(path, &st) < 0 || st.st_ino != p->pidns.st_ino || st.st_dev != p->pidns.st_dev)
                return -EPERM;
        return 0;
}

static void probe_work(uv_work_t *w) {
        Probe *p = w->data;
        HttpRequest rq = { .method = "GET", .path = p->path, .max_body = 65536, .timeout_ms = PROBE_TIMEOUT_MS,
                           .cancel_fd = -1, .verify = probe_verify, .verify_data = p };
        HttpResponse res = { 0 };
        p->r = http_do(&p->target, &rq, &res);
        p->status = res.status;
        http_response_clear(&res);
}

static void service_ready(Instance *i) {
        int r = socket_publish(i);
        if (r < 0) {
                snprintf(i->stop_reason, sizeof i->stop_reason, "setup_error: the socket: %s", strerror(-r));
                i->stop_state = INSTANCE_FAILED;
                instance_service_kill(i);
                return;
        }
        uv_timer_stop(&i->probe_timer);
        uv_timer_stop(&i->startup_timer);
        if (i->h.instance_ready)
                i->h.instance_ready(i, (double) (instance_mono_ns() - i->created_ns) / 1e9, i->h.userdata);
        instance_set_state(i, INSTANCE_READY, "ready");
}

static void probe_done(uv_work_t *w, int status) {
        Probe *p = w->data;
        Instance *i = p->i;
        i->probing = false;
        if (status == 0 && i->state == INSTANCE_STARTING && i->jail && !i->stopping_on_purpose) {
                i->last_probe = p->r < 0 ? p->r : p->status;
                if (p->r >= 0 && p->status >= 200 && p->status < 300)
                        service_ready(i);
        }
        free(p);
        if (instance_finished(i) && i->h.changed)
                i->h.changed(i, i->h.userdata); /* the node may forget it now */
}

static void on_probe_timer(uv_timer_t *t) {
        Instance *i = t->data;
        char ns[64];
        if (i->probing || !i->jail || i->state != INSTANCE_STARTING)
                return;
        Probe *p = calloc(1, sizeof *p);
        if (!p)
                return;
        snprintf(ns, sizeof ns, "/proc/%d/ns/pid", (int) jail_pid(i->jail));
        char url[300];
        snprintf(url, sizeof url, "unix:%s/%s", i->run_dir, INSTANCE_SOCKET_NAME);
        if (stat(ns, &p->pidns) < 0 || http_target_parse(url, &p->target) < 0) {
                free(p);
                return;
        }
        snprintf(p->path, sizeof p->path, "%s", i->probe_path);
        p->i = i;
        p->work.data = p;
        if (uv_queue_work(i->h.loop, &p->work, probe_work, probe_done) < 0) {
                free(p);
                return;
        }
        i->probing = true;
}

static void on_startup_timeout(uv_timer_t *t) {
        Instance *i = t->data;
        if (i->state != INSTANCE_STARTING)
                return;
        /* missed the startup deadline: say what the probe last saw */
        if (i->last_probe > 0)
                snprintf(i->stop_reason, sizeof i->stop_reason,
                         "startup_timeout: not ready after %llus (the readiness probe answered %d)",
                         (unsigned long long) (i->startup_ms / 1000), i->last_probe);
        else
                snprintf(i->stop_reason, sizeof i->stop_reason,
                         "startup_timeout: not ready after %llus (the readiness probe got no answer)",
                         (unsigned long long) (i->startup_ms / 1000));
        i->stop_state = INSTANCE_FAILED;
        instance_service_kill(i);
}

/* ----- the box's output: the node's logs, a line at a time ----- */

static void line_emit(Instance *i, InstanceLine *l) {
        if (l->len > 0 && i->h.log)
                i->h.log(i, l->buf, l->len, i->h.userdata);
        l->len = 0;
}

/* What the box wrote, as it arrives (jail_output_fn): whole lines go to
 * the node's logs at once, a line longer than INSTANCE_LOG_LINE_MAX with
 * its first bytes only; empty lines are left out. Nothing is capped and
 * nothing stops the box: the node's log queue keeps the newest lines and
 * counts the oldest it drops. */
static void on_service_output(int fd, const char *data, size_t len, void *userdata) {
        Instance *i = userdata;
        InstanceLine *l = &i->lines[fd == 1 ? 0 : 1];
        const char *p = data, *end = data + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = (size_t) ((nl ? nl : end) - p);
                if (!l->skipping) {
                        size_t take = n < sizeof l->buf - l->len ? n : sizeof l->buf - l->len;
                        memcpy(l->buf + l->len, p, take);
                        l->len += take;
                        if (l->len == sizeof l->buf) {
                                line_emit(i, l);
                                l->skipping = true;
                        }
                }
                if (nl) {
                        line_emit(i, l);
                        l->skipping = false;
                }
                p += n + (nl ? 1 : 0);
        }
}

/* ----- the jail ----- */

static void on_service_done(Jail *j, JailResult *r, void *userdata) {
        Instance *i = userdata;
        char reason[INSTANCE_REASON_MAX];
        i->jail = NULL;
        jail_free(j); /* the teardown goes on; END follows */
        uv_timer_stop(&i->probe_timer);
        uv_timer_stop(&i->startup_timer);
        uv_timer_stop(&i->drain_timer);
        for (size_t k = 0; k < ELEMENTSOF(i->lines); k++)
                line_emit(i, &i->lines[k]); /* a last line without its newline */
        if (i->stopping_on_purpose) {
                instance_set_state(i, i->stop_state, "%s", i->stop_reason);
                return;
        }
        instance_result_reason(r, reason, sizeof reason);
        instance_set_state(i, INSTANCE_FAILED, "%s", reason);
}

static void on_service_event(Jail *j, JailEvent ev, int error, void *userdata) {
        Instance *i = userdata;
        (void) j;
        (void) error;
        if (ev != JAIL_EVENT_END)
                return;
        i->jail_live = false;
        instance_service_cleanup(i);
        if (instance_finished(i) && i->h.changed)
                i->h.changed(i, i->h.userdata);
}

void instance_service_start(Instance *i) {
        int r = run_dir_make(i);
        if (r < 0) {
                instance_set_state(i, INSTANCE_FAILED, "setup_error: %s: %s", i->run_dir ? i->run_dir : "run folder",
                                   strerror(-r));
                return;
        }
        if ((r = instance_broker_open(i)) < 0) {
                instance_set_state(i, INSTANCE_FAILED, "setup_error: the broker socket: %s", strerror(-r));
                return;
        }
        JailConfig c;
        instance_config(i, &c);
        c.limits.timeout_ns = INSTANCE_SERVICE_TIMEOUT_NS;
        c.run_dir = i->run_dir;
        c.output_fn = on_service_output; /* a log: streamed, never capped */
        c.output_userdata = i;
        if ((r = jail_spawn(i->h.loop, &c, on_service_done, i, &i->jail)) < 0) {
                i->jail = NULL;
                instance_set_state(i, INSTANCE_FAILED, "setup_error: could not start the jail: %s", strerror(-r));
                return;
        }
        i->jail_live = true;
        jail_set_events(i->jail, on_service_event, i);
        uv_timer_start(&i->probe_timer, on_probe_timer, i->probe_ms, i->probe_ms);
        uv_timer_start(&i->startup_timer, on_startup_timeout, i->startup_ms, 0);
}

void instance_service_kill(Instance *i) {
        if (!i->stopping_on_purpose) {
                i->stopping_on_purpose = true;
                if (!i->stop_reason[0]) {
                        snprintf(i->stop_reason, sizeof i->stop_reason, "drained");
                        i->stop_state = INSTANCE_STOPPED;
                }
        }
        if (i->jail)
                jail_kill(i->jail);
}

static void on_service_drain_timer(uv_timer_t *t) {
        instance_service_kill(t->data);
}

/* The activator stops sending once it sees `draining`; requests it sent
 * before get the rest of the request timeout, then the jail is killed. */
void instance_service_drain(Instance *i, bool now) {
        uv_timer_stop(&i->probe_timer);
        uv_timer_stop(&i->startup_timer);
        if (now || !i->endpoint || !i->jail) {
                instance_service_kill(i);
                return;
        }
        uint64_t ms = i->limits.timeout_ns / 1000000 + 1000;
        if (!uv_is_active((uv_handle_t *) &i->drain_timer))
                uv_timer_start(&i->drain_timer, on_service_drain_timer,
                               ms > INSTANCE_DRAIN_MAX_MS ? INSTANCE_DRAIN_MAX_MS : ms, 0);
}
