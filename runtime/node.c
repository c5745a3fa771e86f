/* runtime/node.c: the node agent (node.h). It owns the node's instances on
 * the daemon's loop: it starts those the controller's assignment says to
 * run, drains the others, forgets the stopped ones once the controller
 * has seen them stop, and reports every transition at once. The controller
 * calls themselves are in ctlclient.c. */
#define _GNU_SOURCE
#include "node_internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "codecache.h"
#include "lib/util.h"
#include "node_notify.h"
#include "nodeconf.h"

#define SECRET_FILE_MAX 4096
#define HEARTBEAT_DEFAULT_MS 1000

static uint64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* ----- setup helpers ----- */

/* A token or secret file: at most 4 KiB, one line of printable ASCII
 * (trailing whitespace dropped). */
static int read_secret_file(const char *path, char **ret) {
        char buf[SECRET_FILE_MAX + 2];
        ssize_t n = read_file_small(path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        if (n > SECRET_FILE_MAX)
                return -EFBIG;
        while (n > 0 && isspace((unsigned char) buf[n - 1]))
                buf[--n] = 0;
        if (n == 0)
                return -ENODATA;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] < 0x21 || buf[i] > 0x7e)
                        return -EINVAL;
        return (*ret = strdup(buf)) ? 0 : -ENOMEM;
}

/* A user by name or number, from /etc/passwd (a static binary has no NSS
 * modules, and the daemon needs nothing more). -ESRCH when unknown. */
static int node_user_lookup(const char *user, uid_t *ret_uid, gid_t *ret_gid) {
        _cleanup_(fclosep_) FILE *f = fopen("/etc/passwd", "re");
        char line[1024];
        char *end;
        unsigned long want = strtoul(user, &end, 10);
        bool numeric = *user && !*end;
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof line, f)) {
                char *fields[4], *p = line;
                size_t k = 0;
                for (char *t; k < 4 && (t = strsep(&p, ":")); k++)
                        fields[k] = t;
                if (k < 4)
                        continue;
                unsigned long uid = strtoul(fields[2], &end, 10), gid;
                if (*end || !*fields[2])
                        continue;
                gid = strtoul(fields[3], &end, 10);
                if (*end || !*fields[3])
                        continue;
                if (numeric ? uid == want : strcmp(fields[0], user) == 0) {
                        *ret_uid = (uid_t) uid;
                        *ret_gid = (gid_t) gid;
                        return 0;
                }
        }
        if (numeric && want < 0xfffffffeUL) {
                *ret_uid = (uid_t) want; /* a uid without a passwd entry: its own group number */
                *ret_gid = (gid_t) want;
                return 0;
        }
        return -ESRCH;
}

static bool node_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63 || !isalnum((unsigned char) s[0]))
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '-' && *c != '.' && *c != '_')
                        return false;
        return true;
}

/* A folder of root's, 0711: others may pass through, never list or write. */
static int dir_0711(const char *path) {
        struct stat st;
        if (mkdir(path, 0711) < 0 && errno != EEXIST)
                return negative_errno();
        if (lstat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0)
                return -EPERM;
        return (st.st_mode & 07777) == 0711 || chmod(path, 0711) == 0 ? 0 : negative_errno();
}

/* nvidia-smi where the driver's packages put it, if anywhere */
static const char *smi_path(void) {
        static const char *const paths[] = { "/usr/bin/nvidia-smi", "/usr/local/bin/nvidia-smi",
                                             "/usr/local/nvidia/bin/nvidia-smi" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

/* Labels, most specific last: what was detected (arch, accelerator, the
 * GPUs), the node config's, then --label. */
static int labels_build(Node *n, const NodeOptions *o) {
        char arch[64];
        GpuInventory det;
        int r = detect_arch(arch, sizeof arch);
        if (r < 0 || (r = detect_capacity("/proc/meminfo", &n->capacity)) < 0 ||
            (r = gpu_detect("/dev", "/sys", smi_path(), &det)) < 0)
                return r;
        if (o->conf)
                nodeconf_apply(o->conf, &det, &n->gpus);
        else
                n->gpus = det;
        n->capacity.gpus = n->gpus.n;
        n->labels = json_pack("{s:s,s:s}", "arch", arch, "accelerator", accelerator_to_string(n->gpus.accel));
        if (n->labels && gpu_labels(&n->gpus, n->labels) < 0)
                return -ENOMEM;
        if (n->labels && o->conf && o->conf->labels && json_object_update(n->labels, o->conf->labels) < 0)
                return -ENOMEM;
        for (size_t i = 0; n->labels && i < o->n_labels; i++) {
                _cleanup_free_ char *kv = strdup(o->labels[i]);
                const char *k, *v;
                if (!kv || label_parse(kv, &k, &v) < 0 || json_object_set_new(n->labels, k, json_string(v)) < 0)
                        return -EINVAL;
        }
        return n->labels ? 0 : -ENOMEM;
}

/* ----- instances ----- */

static NodeInstance *inst_find(Node *n, const char *id) {
        for (size_t k = 0; k < n->n_inst; k++)
                if (strcmp(instance_id(n->inst[k].i), id) == 0)
                        return &n->inst[k];
        return NULL;
}

static bool terminal(const Instance *i) {
        return instance_state(i) == INSTANCE_STOPPED || instance_state(i) == INSTANCE_FAILED;
}

static Instance *invoke_find(const char *id, void *userdata) {
        NodeInstance *ni = inst_find(userdata, id);
        return ni && !terminal(ni->i) ? ni->i : NULL;
}

static void on_instance_changed(Instance *i, void *userdata) {
        Node *n = userdata;
        (void) i;
        if (!n->final_sent)
                ctl_status_send(n);
        node_maybe_close(n);
}

/* A log line as valid UTF-8 (a box writes any bytes to stderr): each byte
 * that does not start a valid sequence becomes U+FFFD. A line that is not
 * would make the whole status report unencodable (json_pack refuses it),
 * and the node would be lost for want of reports. */
static char *log_line_dup(const char *s, size_t len) {
        char *out = malloc(len * 3 + 1), *o = out;
        for (size_t i = 0; out && i < len;) {
                const unsigned char *u = (const unsigned char *) s + i;
                size_t n = u[0] < 0x80 ? 1 : u[0] >= 0xc2 && u[0] <= 0xdf ? 2 : u[0] >= 0xe0 && u[0] <= 0xef ? 3
                           : u[0] >= 0xf0 && u[0] <= 0xf4 ? 4 : 0;
                for (size_t k = 1; k < n; k++)
                        if (i + k >= len || (u[k] & 0xc0) != 0x80)
                                n = 0;
                if (n > 2 && ((u[0] == 0xe0 && u[1] < 0xa0) || (u[0] == 0xed && u[1] > 0x9f) ||
                              (u[0] == 0xf0 && u[1] < 0x90) || (u[0] == 0xf4 && u[1] > 0x8f)))
                        n = 0;
                if (n == 1 && u[0] == 0) {      /* a NUL would end the line */
                        *o++ = '?';
                        i++;
                        continue;
                }
                if (n == 0) {
                        memcpy(o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                        continue;
                }
                memcpy(o, s + i, n);
                o += n;
                i += n;
        }
        if (out)
                *o = 0;
        return out;
}

static void on_instance_log(Instance *i, const char *line, size_t len, void *userdata) {
        Node *n = userdata;
        if (n->log_n == NODE_LOGS_QUEUE_MAX) { /* full: the oldest goes */
                NodeLog *old = &n->logs[n->log_head];
                free(old->instance);
                free(old->line);
                n->log_head = (n->log_head + 1) % NODE_LOGS_QUEUE_MAX;
                n->log_n--;
                n->logs_dropped++;
        }
        NodeLog *l = &n->logs[(n->log_head + n->log_n) % NODE_LOGS_QUEUE_MAX];
        *l = (NodeLog) { .seq = ++n->log_seq, .time_ms = wall_ms(), .instance = strdup(instance_id(i)),
                         .line = log_line_dup(line, len) };
        if (!l->instance || !l->line) {
                free(l->instance);
                free(l->line);
                n->logs_dropped++;
                return;
        }
        n->log_n++;
}

static void on_request_done(Instance *i, const char *outcome, double seconds, void *userdata) {
        Node *n = userdata;
        node_metrics_request(n->metrics, instance_revision(i), outcome, seconds);
}

static void on_zygote_ready(Instance *i, double seconds, void *userdata) {
        (void) i;
        node_metrics_zygote_start(((Node *) userdata)->metrics, seconds);
}

static void on_instance_ready(Instance *i, double seconds, void *userdata) {
        node_metrics_cold_start(((Node *) userdata)->metrics, instance_revision(i), seconds);
}

static void on_invoke_refused(Instance *i, int code, void *userdata) {
        Node *n = userdata;
        static const char *const names[] = { "", "no_instance", "not_ready", "busy", "failed" };
        node_metrics_request(n->metrics, i ? instance_revision(i) : NULL, code >= 1 && code <= 4 ? names[code] : "failed",
                             -1);
}

/* Start the code's fetch unless the code is here (then start the
 * instance) or a fetch for the same digest is under way. */
static void inst_code(Node *n, Instance *i) {
        char dir[4096];
        if (codecache_dir(n->state_dir, instance_digest(i), dir, sizeof dir) < 0) {
                instance_fail(i, "code_unavailable: bad digest");
                return;
        }
        if (codecache_has(n->state_dir, instance_digest(i))) {
                instance_start(i, dir);
                return;
        }
        for (size_t k = 0; k < n->n_inst; k++)
                if (n->inst[k].fetching && strcmp(instance_digest(n->inst[k].i), instance_digest(i)) == 0)
                        return; /* fetching already: node_fetch_done starts this one too */
        int r = ctl_fetch(n, instance_digest(i));
        if (r < 0) {
                instance_fail(i, "code_unavailable: could not queue the fetch");
                return;
        }
        inst_find(n, instance_id(i))->fetching = true;
}

void node_fetch_done(Node *n, const char *digest, int r, const char *why) {
        char dir[4096];
        codecache_dir(n->state_dir, digest, dir, sizeof dir);
        for (size_t k = 0; k < n->n_inst; k++) {
                Instance *i = n->inst[k].i;
                if (strcmp(instance_digest(i), digest) != 0)
                        continue;
                n->inst[k].fetching = false;
                if (instance_state(i) != INSTANCE_STARTING)
                        continue;
                if (r >= 0)
                        instance_start(i, dir);
                else {
                        char reason[INSTANCE_REASON_MAX];
                        snprintf(reason, sizeof reason, "code_unavailable: %s", why);
                        instance_fail(i, reason);
                }
        }
}

/* A GPU is one instance's until that one is over (its process gone):
 * should the controller ever hand one out twice, the newcomer fails. */
static void gpu_check_free(Node *n, Instance *i) {
        size_t ng, mg;
        const unsigned *g = instance_gpus(i, &ng);
        for (size_t k = 0; k < n->n_inst && ng > 0 && instance_state(i) == INSTANCE_STARTING; k++) {
                Instance *o = n->inst[k].i;
                if (o == i || instance_finished(o))
                        continue;
                const unsigned *og = instance_gpus(o, &mg);
                for (size_t a = 0; a < ng; a++)
                        for (size_t b = 0; b < mg; b++)
                                if (g[a] == og[b]) {
                                        char reason[INSTANCE_REASON_MAX];
                                        snprintf(reason, sizeof reason, "gpu_busy: GPU %u is still instance %s's", g[a],
                                                 instance_id(o));
                                        instance_fail(i, reason);
                                        return;
                                }
        }
}

static void inst_add(Node *n, json_t *entry) {
        InstanceHost h = {
                .loop = n->loop, .pool = n->pool, .templates = &n->templates, .cgroup_parent = n->cgroup_parent, .box_uid = n->box_uid,
                .socket_gid = n->invoke_gid, .run_base = NODE_RUN_BASE, .changed = on_instance_changed,
                .log = on_instance_log, .request_done = on_request_done, .zygote_ready = on_zygote_ready,
                .instance_ready = on_instance_ready, .broker = n->broker, .gpus = &n->gpus, .userdata = n,
                .sessions = &n->sessions,
        };
        char why[256];
        Instance *i;
        if (n->n_inst == n->cap_inst) {
                size_t cap = n->cap_inst ? n->cap_inst * 2 : 16;
                NodeInstance *a = realloc(n->inst, cap * sizeof *a);
                if (!a)
                        return;
                n->inst = a;
                n->cap_inst = cap;
        }
        if (instance_new(&h, entry, why, sizeof why, &i) < 0) {
                fprintf(stderr, "fnbox-runtime: node %s: refused instance %s: %s\n", n->name,
                        json_string_value(json_object_get(entry, "id")), why);
                return;
        }
        n->inst[n->n_inst++] = (NodeInstance) { .i = i };
        gpu_check_free(n, i);
        ctl_status_send(n); /* `starting` (or `failed` for a spec it cannot run) */
        if (instance_state(i) == INSTANCE_STARTING)
                inst_code(n, i);
}

/* ----- the assignment ----- */

static json_t *entry_for(json_t *list, const char *id) {
        size_t k;
        json_t *e;
        json_array_foreach(list, k, e)
                if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0)
                        return e;
        return NULL;
}

/* Forget an instance that is over and that the controller saw over. */
static void inst_drop(Node *n, size_t k) {
        instance_free(n->inst[k].i);
        n->inst[k] = n->inst[--n->n_inst];
}

void node_apply_assignment(Node *n, json_t *a, bool authoritative) {
        uint64_t version = (uint64_t) json_integer_value(json_object_get(a, "version"));
        if (n->stopping || (!authoritative && n->have_version && version <= n->version))
                return;
        n->version = version;
        n->have_version = true;
        json_t *hb = json_object_get(a, "heartbeatMs"), *list = json_object_get(a, "instances");
        uint64_t want = json_is_integer(hb) ? (uint64_t) json_integer_value(hb) : HEARTBEAT_DEFAULT_MS;
        if (want != n->heartbeat_ms) {
                n->heartbeat_ms = want;
                uv_timer_set_repeat(&n->heartbeat, want);
        }
        size_t k;
        json_t *e;
        json_array_foreach(list, k, e) {
                const char *id = json_string_value(json_object_get(e, "id"));
                bool run = strcmp(json_string_value(json_object_get(e, "desired")), "run") == 0;
                NodeInstance *ni = inst_find(n, id);
                if (!ni && run)
                        inst_add(n, e);
                else if (ni && !run) {
                        instance_drain(ni->i, false);
                        if (json_is_true(json_object_get(e, "idle")))
                                instance_drain_idle(ni->i);
                }
        }
        for (size_t j = n->n_inst; j-- > 0;) {
                Instance *i = n->inst[j].i;
                if (entry_for(list, instance_id(i)))
                        continue;
                if (!terminal(i))
                        instance_drain(i, false);
                else if (n->inst[j].terminal_gen && n->inst[j].terminal_gen <= n->acked_gen &&
                         instance_finished(i) && !n->inst[j].fetching)
                        inst_drop(n, j);
        }
}

/* ----- status reports ----- */

json_t *node_status_body(Node *n, uint64_t *ret_last_log_seq, uint64_t *ret_dropped) {
        json_t *insts = json_array(), *logs = json_array();
        n->status_gen++;
        for (size_t k = 0; insts && k < n->n_inst; k++) {
                if (terminal(n->inst[k].i) && !n->inst[k].terminal_gen)
                        n->inst[k].terminal_gen = n->status_gen;
                if (json_array_append_new(insts, instance_status_json(n->inst[k].i)) < 0)
                        insts = (json_decref(insts), NULL);
        }
        uint64_t last = 0;
        for (size_t k = 0; logs && k < n->log_n && k < NODE_LOGS_PER_REPORT; k++) {
                const NodeLog *l = &n->logs[(n->log_head + k) % NODE_LOGS_QUEUE_MAX];
                if (json_array_append_new(logs, json_pack("{s:s,s:I,s:s}", "instance", l->instance, "timeMs",
                                                          (json_int_t) l->time_ms, "line", l->line)) < 0)
                        logs = (json_decref(logs), NULL);
                last = l->seq;
        }
        uint64_t dropped = n->logs_dropped;
        json_t *gpus = gpu_inventory_json(&n->gpus);
        json_t *b = insts && logs && gpus
                            ? json_pack("{s:s,s:s,s:s,s:O,s:{s:I,s:I,s:i},s:o,s:o,s:o,s:I}", "name", n->name, "bootId",
                                        n->boot_id, "invoke", n->invoke_addr, "labels", n->labels, "capacity",
                                        "cpuMillis", (json_int_t) n->capacity.cpu_millis, "memoryBytes",
                                        (json_int_t) n->capacity.memory_bytes, "gpus", (int) n->capacity.gpus,
                                        "gpuDevices", gpus, "instances", insts, "logs", logs, "logsDropped",
                                        (json_int_t) dropped)
                            : NULL;
        if (!b) {
                json_decref(insts);
                json_decref(logs);
                json_decref(gpus);
                return NULL;
        }
        n->last_status_ms = mono_ms();
        *ret_last_log_seq = last;
        *ret_dropped = dropped;
        return b;
}

void node_status_acked(Node *n, uint64_t gen, uint64_t last_log_seq, uint64_t dropped) {
        if (gen > n->acked_gen)
                n->acked_gen = gen;
        while (n->log_n > 0 && n->logs[n->log_head].seq <= last_log_seq) {
                free(n->logs[n->log_head].instance);
                free(n->logs[n->log_head].line);
                n->log_head = (n->log_head + 1) % NODE_LOGS_QUEUE_MAX;
                n->log_n--;
        }
        n->logs_dropped -= dropped < n->logs_dropped ? dropped : n->logs_dropped;
}

void node_registered(Node *n) {
        n->registered = true;
        if (!n->said_ready && !n->stopping) {
                n->said_ready = true;
                printf("fnbox-runtime: node %s ready (invoke %s)\n", n->name, n->invoke_addr);
                fflush(stdout);
                (void) node_notify("READY=1");
        }
        ctl_poll_start(n);
}

static void on_heartbeat(uv_timer_t *t) {
        Node *n = t->data;
        if (n->stopping || n->status_busy)
                return;
        if (mono_ms() - n->last_status_ms + 5 < ctl_status_backoff_ms(n))
                return; /* the controller failed: send less often, up to 5 s apart */
        ctl_status_send(n);
}

/* ----- metrics gauges ----- */

static void write_gauges(FILE *f, void *userdata) {
        Node *n = userdata;
        unsigned counts[_INSTANCE_STATE_MAX] = { 0 };
        for (size_t k = 0; k < n->n_inst; k++)
                counts[instance_state(n->inst[k].i)]++;
        fputs("# HELP fnbox_runtime_instances Instances on this node by state.\n"
              "# TYPE fnbox_runtime_instances gauge\n", f);
        for (int s = 0; s < _INSTANCE_STATE_MAX; s++)
                fprintf(f, "fnbox_runtime_instances{state=\"%s\"} %u\n", instance_state_to_string((InstanceState) s),
                        counts[s]);
        fprintf(f, "# HELP fnbox_runtime_pool_prepared Prepared jails waiting in the pool.\n"
                   "# TYPE fnbox_runtime_pool_prepared gauge\nfnbox_runtime_pool_prepared %u\n",
                n->pool && *n->pool ? pool_ready(*n->pool) : 0);
}

/* ----- start and stop ----- */

static int node_identity(Node *n, const NodeOptions *o) {
        char host[256] = "";
        const char *name = o->name;
        if (!name) {
                if (gethostname(host, sizeof host - 1) < 0)
                        return negative_errno();
                name = host;
        }
        if (!node_name_valid(name)) {
                fprintf(stderr, "fnbox-runtime serve: node name '%s': expected [A-Za-z0-9._-], at most 63, "
                                "starting with a letter or digit (--node)\n", name);
                return -EINVAL;
        }
        snprintf(n->name, sizeof n->name, "%s", name);
        uint8_t rnd[16];
        if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
                return -EIO;
        for (size_t k = 0; k < sizeof rnd; k++)
                snprintf(n->boot_id + 2 * k, 3, "%02x", rnd[k]);
        return 0;
}

#define FAIL(r, ...) (fprintf(stderr, "fnbox-runtime serve: " __VA_ARGS__), (r))

/* The broker of every box on this node, with --activator. */
static int node_broker(Node *n, const NodeOptions *o) {
        char why[256];
        if (!o->activator)
                return 0;
        BrokerOptions bo = { .activator = o->activator, .secret = n->secret, .max_depth = o->broker_depth,
                             .rate = o->broker_rate, .burst = o->broker_burst };
        int r = broker_new(n->loop, &bo, why, sizeof why, &n->broker);
        if (r < 0)
                return FAIL(r, "the broker: %s\n", why);
        fprintf(stderr, "fnbox-runtime: node %s: broker calls go to %s\n", n->name[0] ? n->name : "(this node)",
                o->activator);
        return 0;
}

static int node_files(Node *n, const NodeOptions *o) {
        int r = http_target_parse(o->controller, &n->ctl);
        if (r < 0)
                return FAIL(r, "--controller %s: expected http://HOST[:PORT]\n", o->controller);
        if (!o->token_file)
                return FAIL(-EINVAL, "--controller needs --token-file\n");
        if ((r = read_secret_file(o->token_file, &n->token)) < 0)
                return FAIL(r, "--token-file %s: %s\n", o->token_file, strerror(-r));
        if (o->invoke_listen && !o->invoke_secret_file)
                return FAIL(-EINVAL, "--invoke-listen needs --invoke-secret-file\n");
        if (o->invoke_secret_file && (r = read_secret_file(o->invoke_secret_file, &n->secret)) < 0)
                return FAIL(r, "--invoke-secret-file %s: %s\n", o->invoke_secret_file, strerror(-r));
        if (o->invoke_user && (r = node_user_lookup(o->invoke_user, &n->invoke_uid, &n->invoke_gid)) < 0)
                return FAIL(r, "--invoke-uid %s: no such user\n", o->invoke_user);
        if (!o->invoke_user && node_user_lookup("fnbox", &n->invoke_uid, &n->invoke_gid) < 0)
                n->invoke_uid = n->invoke_gid = 0; /* no fnbox user: root only */
        if (!(n->state_dir = strdup(o->state_dir ? o->state_dir : NODE_STATE_DIR_DEFAULT)))
                return -ENOMEM;
        if ((r = codecache_init(n->state_dir)) < 0)
                return FAIL(r, "--state-dir %s: %s\n", n->state_dir, strerror(-r));
        if ((r = dir_0711("/run/fnbox")) < 0 || (r = dir_0711(NODE_RUN_BASE)) < 0)
                return FAIL(r, "%s: %s\n", NODE_RUN_BASE, strerror(-r));
        return node_broker(n, o);
}

static int node_listen(Node *n, const NodeOptions *o) {
        InvokeConfig ic = {
                .unix_path = o->invoke_listen ? NULL : (o->invoke_socket ? o->invoke_socket : NODE_INVOKE_SOCKET_DEFAULT),
                .tcp_listen = o->invoke_listen, .allowed_uid = n->invoke_uid, .socket_gid = n->invoke_gid,
                .secret = n->secret, .find = invoke_find, .refused = on_invoke_refused, .userdata = n,
        };
        int r = invoke_server_new(n->loop, &ic, &n->invoke, n->invoke_addr, sizeof n->invoke_addr);
        if (r < 0)
                return FAIL(r, "the invoke socket %s: %s\n", ic.unix_path ? ic.unix_path : ic.tcp_listen,
                            r == -EADDRINUSE ? "another node agent is listening there" : strerror(-r));
        unsigned port = 0;
        if ((r = node_metrics_new(n->loop, o->metrics_listen, write_gauges, n, &n->metrics, &port)) < 0)
                return FAIL(r, "--metrics-listen %s: %s\n", o->metrics_listen, strerror(-r));
        if (o->metrics_listen)
                fprintf(stderr, "fnbox-runtime: node %s: metrics on http://%.*s:%u/metrics\n", n->name,
                        (int) (strrchr(o->metrics_listen, ':') - o->metrics_listen), o->metrics_listen, port);
        return 0;
}

static void node_handles_closed(uv_handle_t *h) {
        Node *n = h->data;
        if (--n->handles_open > 0)
                return; /* the heartbeat, the poll timer and the reporter's async: all closed */
        if (n->rep_sync) {
                uv_mutex_destroy(&n->rep_lock);
                uv_cond_destroy(&n->rep_cond);
        }
        for (size_t k = 0; k < n->log_n; k++) {
                NodeLog *l = &n->logs[(n->log_head + k) % NODE_LOGS_QUEUE_MAX];
                free(l->instance);
                free(l->line);
        }
        json_decref(n->labels);
        free(n->inst);
        free(n->token);
        free(n->secret);
        free(n->state_dir);
        safe_close(n->cancel_fd);
        free(n);
}

static void node_free(Node *n) {
        while (n->n_inst > 0)
                inst_drop(n, n->n_inst - 1);
        invoke_server_free(TAKE_PTR(n->invoke));
        templates_free(TAKE_PTR(n->templates));
        broker_free(TAKE_PTR(n->broker)); /* gone once its last box is */
        node_metrics_free(TAKE_PTR(n->metrics));
        ctl_reporter_stop(n);
        uv_close((uv_handle_t *) &n->heartbeat, node_handles_closed);
        uv_close((uv_handle_t *) &n->poll_timer, node_handles_closed);
        if (n->handles_open == 3)
                uv_close((uv_handle_t *) &n->rep_async, node_handles_closed);
}

int node_new(uv_loop_t *loop, const NodeOptions *o, Pool **pool, const char *cgroup_parent, uid_t box_uid,
             Node **ret) {
        Node *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        *n = (Node) { .loop = loop, .pool = pool, .cgroup_parent = cgroup_parent, .box_uid = box_uid,
                      .heartbeat_ms = HEARTBEAT_DEFAULT_MS };
        n->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        uv_timer_init(loop, &n->heartbeat);
        uv_timer_init(loop, &n->poll_timer);
        n->heartbeat.data = n->poll_timer.data = n->rep_async.data = n;
        n->handles_open = 2;
        if (uv_mutex_init(&n->rep_lock) >= 0) {
                if (uv_cond_init(&n->rep_cond) >= 0)
                        n->rep_sync = true;
                else
                        uv_mutex_destroy(&n->rep_lock);
        }
        if (n->rep_sync && uv_async_init(loop, &n->rep_async, ctl_reporter_answer) >= 0)
                n->handles_open++; /* ctl_reporter_start checks both */
        /* the controller calls, code fetches and probes run on libuv's
         * pool; the long poll holds one thread all the time */
        setenv("UV_THREADPOOL_SIZE", "16", 0);
        int r = n->cancel_fd < 0 ? negative_errno() : node_identity(n, o);
        if (r >= 0)
                r = node_files(n, o);
        if (r >= 0 && (r = labels_build(n, o)) < 0)
                fprintf(stderr, "fnbox-runtime serve: labels and capacity: %s\n", strerror(-r));
        if (r >= 0 && o->templates > 0 &&
            (r = templates_new(loop, n->state_dir, o->templates, cgroup_parent, box_uid, &n->templates)) < 0)
                fprintf(stderr, "fnbox-runtime serve: %s/template: %s\n", n->state_dir, strerror(-r));
        if (r >= 0)
                r = node_listen(n, o);
        n->sessions = (SessionHost) { .ctl = &n->ctl, .token = n->token, .box_uid = box_uid, .box_gid = box_uid,
                                      .cancel_fd = n->cancel_fd };
        if (r >= 0 && (r = ctl_reporter_start(n)) < 0)
                fprintf(stderr, "fnbox-runtime serve: the status reporter thread: %s\n", strerror(-r));
        if (r < 0) {
                node_free(n);
                return r;
        }
        uv_timer_start(&n->heartbeat, on_heartbeat, n->heartbeat_ms, n->heartbeat_ms);
        ctl_status_send(n); /* the registration */
        *ret = n;
        n->owner_ref = ret;
        return 0;
}

void node_maybe_close(Node *n) {
        if (!n->stopping || n->closed)
                return;
        for (size_t k = 0; k < n->n_inst; k++)
                if (!instance_finished(n->inst[k].i))
                        return;
        if (!n->final_sent) {
                if (n->status_busy) {
                        n->status_again = true; /* sent when the one under way is back */
                        return;
                }
                n->final_sent = true;
                ctl_status_send(n); /* every instance stopped */
                if (n->status_busy)
                        return;
        }
        if (n->status_busy || n->poll_busy || n->fetches > 0)
                return;
        n->closed = true;
        if (n->owner_ref)
                *n->owner_ref = NULL;
        fprintf(stderr, "fnbox-runtime: node %s stopped\n", n->name);
        node_free(n);
        (void) rmdir(NODE_RUN_BASE); /* when no other node agent uses it */
}

void node_stop(Node *n, bool now) {
        if (!n || n->closed)
                return;
        if (n->stopping && !now)
                return;
        if (!n->stopping) {
                n->stopping = true;
                (void) node_notify("STOPPING=1");
                uv_timer_stop(&n->heartbeat);
                uv_timer_stop(&n->poll_timer);
                invoke_server_shutdown(n->invoke);
                templates_free(TAKE_PTR(n->templates));
                uint64_t one = 1;
                (void) !write(n->cancel_fd, &one, sizeof one); /* ends the long poll and fetches */
        }
        for (size_t k = 0; k < n->n_inst; k++)
                instance_drain(n->inst[k].i, now);
        if (!n->final_sent)
                ctl_status_send(n);
        node_maybe_close(n);
}
