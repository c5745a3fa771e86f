/* runtime/nodeconf.c: the node config file (nodeconf.h), on lib/yamltree. */
#define _GNU_SOURCE
#include "nodeconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/quantity.h"
#include "lib/util.h"
#include "lib/yamltree.h"

/* Folders a driver may live in; never the jail's synthetic /etc, nor
 * /proc, /sys, /dev, /run, /tmp, /var or /home. */
static const char *const driver_roots[] = { "/usr/", "/opt/", "/lib/", "/lib64/", "/lib32/" };

static int parse_labels(YtCtx *y, const YtNode *n, NodeConf *c) {
        int r = yt_want(y, n, YT_MAP, "labels");
        if (r < 0)
                return r;
        if (n->n > 32)
                return yt_fail(y, n->line, "labels", "at most 32 labels");
        if (!(c->labels = json_object()))
                return -ENOMEM;
        for (size_t i = 0; i < n->n; i++) {
                char f[128], kv[160];
                const char *k, *v;
                yt_fieldf(f, sizeof f, "labels.%s", n->keys[i]);
                if ((r = yt_want(y, n->kids[i], YT_SCALAR, f)) < 0)
                        return r;
                snprintf(kv, sizeof kv, "%s=%s", n->keys[i], n->kids[i]->value);
                if (strlen(n->keys[i]) > 63 || strlen(n->kids[i]->value) > 63 || label_parse(kv, &k, &v) < 0)
                        return yt_fail(y, n->kids[i]->line, f,
                                       "a label is KEY=VALUE: key [A-Za-z0-9._/-], value [A-Za-z0-9._-], 63 characters each");
                if (json_object_set_new(c->labels, k, json_string(v)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* A device: "PATH", or {device: PATH, path: NAME-UNDER-/dev}. */
static int parse_dev(YtCtx *y, const YtNode *n, const char *field, GpuDev *ret, const YtNode **ret_map) {
        char why[300], f[128];
        const YtNode *dev = n, *path = NULL;
        *ret_map = NULL;
        if (n->kind == YT_MAP) {
                *ret_map = n;
                dev = yt_get(n, "device");
                path = yt_get(n, "path");
                if (!dev)
                        return yt_fail(y, n->line, field, "needs device: the host's device node");
        }
        yt_fieldf(f, sizeof f, "%s%s", field, n->kind == YT_MAP ? ".device" : "");
        int r = yt_want(y, dev, YT_SCALAR, f);
        if (r < 0)
                return r;
        if (path && (r = yt_want(y, path, YT_SCALAR, field)) < 0)
                return r;
        if ((r = gpu_dev_from_path(dev->value, path ? path->value : NULL, ret, why, sizeof why)) < 0)
                return yt_fail(y, dev->line, f, "%s", why);
        if (jail_device_check(&ret->dev, why, sizeof why) < 0) {
                yt_fieldf(f, sizeof f, "%s%s", field, path ? ".path" : "");
                return yt_fail(y, (path ? path : dev)->line, f, "%s", why);
        }
        return 0;
}

static int copy_str(YtCtx *y, const YtNode *n, const char *field, char *buf, size_t size) {
        _cleanup_free_ char *s = NULL;
        int r = yt_string(y, n, field, size - 1, &s);
        if (r < 0)
                return r;
        snprintf(buf, size, "%s", s);
        return 0;
}

static int parse_gpu(YtCtx *y, const YtNode *n, size_t i, Gpu *g) {
        static const char *const keys[] = { "device", "path", "product", "memory", "uuid", NULL };
        char f[64], f2[96];
        const YtNode *map, *v;
        yt_fieldf(f, sizeof f, "gpus[%zu]", i);
        int r = parse_dev(y, n, f, &g->dev, &map);
        if (r < 0 || !map)
                return r;
        if ((r = yt_keys_check(y, map, f, keys)) < 0)
                return r;
        if ((v = yt_get(map, "product")) && (yt_fieldf(f2, sizeof f2, "%s.product", f),
                                              r = copy_str(y, v, f2, g->product, sizeof g->product)) < 0)
                return r;
        if ((v = yt_get(map, "memory")) && (yt_fieldf(f2, sizeof f2, "%s.memory", f),
                                             r = yt_bytes(y, v, f2, 1, 1ULL << 50, &g->memory_bytes)) < 0)
                return r;
        if ((v = yt_get(map, "uuid"))) {
                yt_fieldf(f2, sizeof f2, "%s.uuid", f);
                if ((r = copy_str(y, v, f2, g->uuid, sizeof g->uuid)) < 0)
                        return r;
                if (strspn(g->uuid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != strlen(g->uuid))
                        return yt_fail(y, v->line, f2, "letters, digits and '-' only (like GPU-5f2c...)");
        }
        return 0;
}

static int parse_list(YtCtx *y, const YtNode *n, const char *field, size_t max) {
        int r = yt_want(y, n, YT_SEQ, field);
        if (r < 0)
                return r;
        return n->n > max ? yt_fail(y, n->line, field, "at most %zu entries", max) : 0;
}

static int parse_driver_path(YtCtx *y, const YtNode *n, const char *field, char *out, size_t size) {
        _cleanup_free_ char *s = NULL;
        struct stat st;
        int r = yt_string(y, n, field, size - 1, &s);
        if (r < 0)
                return r;
        bool under = false;
        for (size_t i = 0; i < ELEMENTSOF(driver_roots); i++)
                under |= strncmp(s, driver_roots[i], strlen(driver_roots[i])) == 0;
        if (!under || strstr(s, "/../") || strstr(s, "/./") || strstr(s, "//") || s[strlen(s) - 1] == '/' ||
            strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/+") != strlen(s))
                return yt_fail(y, n->line, field, "a plain absolute folder under /usr, /opt, /lib, /lib64 or /lib32");
        if (stat(s, &st) < 0 || !S_ISDIR(st.st_mode))
                return yt_fail(y, n->line, field, "%s: not a folder on this host", s);
        snprintf(out, size, "%s", s);
        return 0;
}

int nodeconf_parse(const char *file, const char *buf, size_t len, NodeConf *ret, char *err, size_t err_len) {
        static const char *const top[] = { "labels", "accelerator", "gpus", "sharedDevices", "driverPaths", NULL };
        YtCtx y = { .file = file, .err = err, .err_len = err_len };
        YtNode *root = NULL;
        NodeConf c = { 0 };
        const YtNode *n;
        int r = yt_parse(&y, buf, len, &root);
        if (r < 0)
                return r;
        if ((r = yt_want(&y, root, YT_MAP, "")) < 0 || (r = yt_keys_check(&y, root, "", top)) < 0)
                goto out;
        if ((n = yt_get(root, "labels")) && (r = parse_labels(&y, n, &c)) < 0)
                goto out;
        if ((n = yt_get(root, "accelerator"))) {
                if ((r = yt_want(&y, n, YT_SCALAR, "accelerator")) < 0)
                        goto out;
                c.has_accel = true;
                if (strcmp(n->value, "cuda") == 0)
                        c.accel = ACCEL_CUDA;
                else if (strcmp(n->value, "rocm") == 0)
                        c.accel = ACCEL_ROCM;
                else if (strcmp(n->value, "none") == 0)
                        c.accel = ACCEL_NONE;
                else {
                        r = yt_fail(&y, n->line, "accelerator", "expected cuda, rocm or none, not \"%s\"", n->value);
                        goto out;
                }
        }
        if ((n = yt_get(root, "gpus"))) {
                if ((r = parse_list(&y, n, "gpus", GPU_MAX)) < 0)
                        goto out;
                if (!c.has_accel || (c.accel == ACCEL_NONE && n->n > 0)) {
                        r = yt_fail(&y, n->line, "gpus", "needs accelerator: cuda or rocm beside it");
                        goto out;
                }
                c.has_gpus = true;
                for (size_t i = 0; i < n->n; i++) {
                        if ((r = parse_gpu(&y, n->kids[i], i, &c.inv.gpu[i])) < 0)
                                goto out;
                        for (size_t k = 0; k < i; k++)
                                if (strcmp(c.inv.gpu[k].dev.dev.path, c.inv.gpu[i].dev.dev.path) == 0) {
                                        r = yt_fail(&y, n->kids[i]->line, "gpus", "/dev/%s named twice",
                                                    c.inv.gpu[i].dev.dev.path);
                                        goto out;
                                }
                        c.inv.n = (unsigned) i + 1;
                }
        }
        if ((n = yt_get(root, "sharedDevices"))) {
                if ((r = parse_list(&y, n, "sharedDevices", GPU_SHARED_MAX)) < 0)
                        goto out;
                c.has_shared = true;
                for (size_t i = 0; i < n->n; i++) {
                        char f[64];
                        const YtNode *map;
                        yt_fieldf(f, sizeof f, "sharedDevices[%zu]", i);
                        if ((r = parse_dev(&y, n->kids[i], f, &c.inv.shared[i], &map)) < 0)
                                goto out;
                        if (map && (r = yt_keys_check(&y, map, f, (const char *const[]) { "device", "path", NULL })) < 0)
                                goto out;
                        c.inv.n_shared = (unsigned) i + 1;
                }
        }
        if ((n = yt_get(root, "driverPaths"))) {
                if ((r = parse_list(&y, n, "driverPaths", NODECONF_DRIVER_PATHS_MAX)) < 0)
                        goto out;
                for (size_t i = 0; i < n->n; i++) {
                        char f[64];
                        yt_fieldf(f, sizeof f, "driverPaths[%zu]", i);
                        if ((r = parse_driver_path(&y, n->kids[i], f, c.driver_paths[i], sizeof c.driver_paths[i])) < 0)
                                goto out;
                        c.n_driver_paths = i + 1;
                }
        }
        c.inv.accel = c.accel;
        *ret = c;
        c.labels = NULL;
out:
        json_decref(c.labels);
        yt_free(root);
        return r;
}

int nodeconf_load(const char *path, NodeConf *ret, char *err, size_t err_len) {
        _cleanup_free_ char *buf = malloc(NODECONF_MAX_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t n = read_file_small(path, buf, NODECONF_MAX_BYTES + 1);
        if (n < 0) {
                snprintf(err, err_len, "%s: %s", path, strerror((int) -n));
                return (int) n;
        }
        if ((size_t) n > NODECONF_MAX_BYTES) {
                snprintf(err, err_len, "%s: larger than %u KiB", path, NODECONF_MAX_BYTES >> 10);
                return -EFBIG;
        }
        return nodeconf_parse(path, buf, (size_t) n, ret, err, err_len);
}

void nodeconf_clear(NodeConf *c) {
        json_decref(c->labels);
        *c = (NodeConf) { 0 };
}

void nodeconf_apply(const NodeConf *c, const GpuInventory *det, GpuInventory *ret) {
        GpuInventory inv = *det;
        if (c->has_accel && c->accel != det->accel) {
                /* another kind than detected: only what the config lists */
                inv = (GpuInventory) { .accel = c->accel };
        }
        if (c->has_gpus) {
                memcpy(inv.gpu, c->inv.gpu, sizeof inv.gpu);
                inv.n = c->inv.n;
        }
        if (c->has_shared) {
                memcpy(inv.shared, c->inv.shared, sizeof inv.shared);
                inv.n_shared = c->inv.n_shared;
        }
        if (inv.accel == ACCEL_NONE)
                inv.n = inv.n_shared = 0;
        *ret = inv;
}
