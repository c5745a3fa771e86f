/* tests/unit/test_gpu.c: the node's GPUs (runtime/gpu.c) from a fake /dev
 * of stand-in device nodes (numbers of the "local use" range) and a fake
 * sysfs: CUDA from nvidiaN, ROCm from kfd and AMD render nodes, none
 * otherwise; nvidia-smi's answer matched by minor number; an assignment's
 * devices and environment; the node config file (runtime/nodeconf.c) and
 * its errors; which GPUs the controller picks; the retention hold. Root
 * (mknod). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "controller/kpa.h"
#include "controller/scheduler.h"
#include "runtime/gpu.h"
#include "runtime/nodeconf.h"

static char *tmpdir(void) {
        char *d = strdup("/tmp/fnbox-gpu-XXXXXX");
        ASSERT_TRUE(mkdtemp(d) != NULL);
        return d;
}

static void rm_rf(const char *d) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
        ASSERT_EQ_INT(system(cmd), 0);
}

static void node(const char *dir, const char *name, unsigned maj, unsigned min) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        ASSERT_EQ_INT(mknod(p, S_IFCHR | 0666, makedev(maj, min)), 0);
}

static void put(const char *dir, const char *name, const char *text) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        for (char *c = p + strlen(dir) + 1; *c; c++)
                if (*c == '/') {
                        *c = 0;
                        (void) mkdir(p, 0755);
                        *c = '/';
                }
        FILE *f = fopen(p, "w");
        ASSERT_TRUE(f != NULL);
        fputs(text, f);
        fclose(f);
}

TEST(gpu_detect_none_cuda_rocm) {
        char *d = tmpdir(), *sys = tmpdir(), dri[512];
        GpuInventory inv;
        node(d, "nvidiactl", 240, 255);  /* control nodes alone are no GPU */
        node(d, "kfd", 241, 0);          /* kfd without render nodes is no ROCm GPU */
        ASSERT_EQ_INT(gpu_detect(d, sys, NULL, &inv), 0);
        ASSERT_EQ_INT(inv.accel, ACCEL_NONE);
        ASSERT_EQ_UINT(inv.n, 0);

        /* ROCm: AMD render nodes (vendor 0x1002), not another vendor's */
        snprintf(dri, sizeof dri, "%s/dri", d);
        ASSERT_EQ_INT(mkdir(dri, 0755), 0);
        node(dri, "renderD128", 242, 128);
        node(dri, "renderD129", 242, 129);
        node(dri, "renderD130", 242, 130);
        node(dri, "card0", 242, 0);
        put(sys, "class/drm/renderD128/device/vendor", "0x1002\n");
        put(sys, "class/drm/renderD128/device/product_name", "AMD Instinct MI210\n");
        put(sys, "class/drm/renderD128/device/mem_info_vram_total", "68702699520\n");
        put(sys, "class/drm/renderD128/device/unique_id", "8c4f4e7a1b2c3d4e\n");
        put(sys, "class/drm/renderD129/device/vendor", "0x8086\n");   /* an Intel iGPU */
        ASSERT_EQ_INT(gpu_detect(d, sys, NULL, &inv), 0);
        ASSERT_EQ_INT(inv.accel, ACCEL_ROCM);
        ASSERT_EQ_UINT(inv.n, 2);                  /* 128 (AMD) and 130 (vendor unknown) */
        ASSERT_EQ_STR(inv.gpu[0].dev.dev.path, "dri/renderD128");
        ASSERT_EQ_UINT(inv.gpu[0].dev.dev.major, 242);
        ASSERT_EQ_STR(inv.gpu[0].product, "AMD Instinct MI210");
        ASSERT_EQ_UINT(inv.gpu[0].memory_bytes, 68702699520ULL);
        ASSERT_EQ_STR(inv.gpu[0].uuid, "GPU-8c4f4e7a1b2c3d4e");
        ASSERT_EQ_STR(inv.gpu[1].dev.dev.path, "dri/renderD130");
        ASSERT_EQ_UINT(inv.n_shared, 1);
        ASSERT_EQ_STR(inv.shared[0].dev.path, "kfd");

        /* CUDA wins, in numeric order; nvidia-modeset is no GPU */
        node(d, "nvidia12", 243, 12);
        node(d, "nvidia0", 243, 0);
        node(d, "nvidia1", 243, 1);
        node(d, "nvidia-uvm", 244, 0);
        node(d, "nvidia-modeset", 243, 254);
        ASSERT_EQ_INT(gpu_detect(d, sys, "/nonexistent/nvidia-smi", &inv), 0);
        ASSERT_EQ_INT(inv.accel, ACCEL_CUDA);
        ASSERT_EQ_UINT(inv.n, 3);
        ASSERT_EQ_STR(inv.gpu[0].dev.dev.path, "nvidia0");
        ASSERT_EQ_STR(inv.gpu[2].dev.dev.path, "nvidia12");
        ASSERT_EQ_UINT(inv.n_shared, 2);           /* nvidiactl, nvidia-uvm (no -tools here) */
        ASSERT_EQ_STR(inv.shared[1].dev.path, "nvidia-uvm");

        /* nvidia-smi's answer, matched by each GPU's minor number */
        char *proc = tmpdir();
        put(proc, "driver/nvidia/gpus/0000:17:00.0/information", "Model: X\nDevice Minor: \t 12\n");
        put(proc, "driver/nvidia/gpus/0000:65:00.0/information", "Device Minor: 0\n");
        gpu_apply_smi(&inv, "00000000:17:00.0, GPU-0a1b2c3d-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559\n"
                            "00000000:65:00.0, GPU-bad uuid!, NVIDIA A10, 23028\n"
                            "garbage line\n", proc);
        ASSERT_EQ_STR(inv.gpu[2].uuid, "GPU-0a1b2c3d-1111-2222-3333-444455556666");
        ASSERT_EQ_STR(inv.gpu[2].product, "NVIDIA H100 80GB HBM3");
        ASSERT_EQ_UINT(inv.gpu[2].memory_bytes, 81559ULL << 20);
        ASSERT_EQ_STR(inv.gpu[0].product, "NVIDIA A10");
        ASSERT_EQ_STR(inv.gpu[0].uuid, "");        /* not a UUID: left out */
        ASSERT_EQ_STR(inv.gpu[1].product, "");

        json_t *labels = json_object();
        ASSERT_EQ_INT(gpu_labels(&inv, labels), 0);
        ASSERT_EQ_STR(json_string_value(json_object_get(labels, "gpu.count")), "3");
        ASSERT_EQ_STR(json_string_value(json_object_get(labels, "gpu.product")), "NVIDIA-A10");
        ASSERT_EQ_STR(json_string_value(json_object_get(labels, "gpu.memory")), "22Gi");
        json_decref(labels);
        json_t *js = gpu_inventory_json(&inv);
        ASSERT_EQ_UINT(json_array_size(js), 3);
        ASSERT_EQ_STR(json_string_value(json_object_get(json_array_get(js, 2), "device")), "/dev/nvidia12");
        json_decref(js);
        rm_rf(d), rm_rf(sys), rm_rf(proc);
        free(d), free(sys), free(proc);
}

TEST(gpu_assign_devices_and_env) {
        char *d = tmpdir();
        GpuInventory inv;
        node(d, "nvidia0", 243, 0);
        node(d, "nvidia1", 243, 1);
        node(d, "nvidiactl", 243, 255);
        ASSERT_EQ_INT(gpu_detect(d, d, NULL, &inv), 0);
        JailDevice devs[JAIL_DEVICES_MAX];
        char env[GPU_ENV_MAX][GPU_ENV_LEN], why[200];
        size_t nd, ne;
        unsigned one[] = { 1 };
        ASSERT_EQ_INT(gpu_assign(&inv, one, 1, devs, &nd, env, &ne, why, sizeof why), 0);
        ASSERT_EQ_UINT(nd, 2);
        ASSERT_EQ_STR(devs[0].path, "nvidia1");
        ASSERT_EQ_STR(devs[1].path, "nvidiactl");
        ASSERT_EQ_UINT(ne, 2);
        ASSERT_EQ_STR(env[0], "CUDA_VISIBLE_DEVICES=0");  /* no UUIDs: the jail's numbering */
        ASSERT_EQ_STR(env[1], "FNBOX_GPUS=1");
        snprintf(inv.gpu[0].uuid, sizeof inv.gpu[0].uuid, "GPU-aaaa");
        snprintf(inv.gpu[1].uuid, sizeof inv.gpu[1].uuid, "GPU-bbbb");
        unsigned both[] = { 1, 0 };
        ASSERT_EQ_INT(gpu_assign(&inv, both, 2, devs, &nd, env, &ne, why, sizeof why), 0);
        ASSERT_EQ_STR(env[0], "CUDA_VISIBLE_DEVICES=GPU-bbbb,GPU-aaaa");
        ASSERT_EQ_STR(env[1], "FNBOX_GPUS=1,0");
        inv.accel = ACCEL_ROCM;
        inv.gpu[0].uuid[0] = 0;
        ASSERT_EQ_INT(gpu_assign(&inv, both, 2, devs, &nd, env, &ne, why, sizeof why), 0);
        ASSERT_EQ_STR(env[0], "ROCR_VISIBLE_DEVICES=0,1");
        ASSERT_EQ_STR(env[1], "HIP_VISIBLE_DEVICES=0,1");
        unsigned bad[] = { 2 }, twice[] = { 0, 0 };
        ASSERT_EQ_INT(gpu_assign(&inv, bad, 1, devs, &nd, env, &ne, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "GPU 2") != NULL);
        ASSERT_EQ_INT(gpu_assign(&inv, twice, 2, devs, &nd, env, &ne, why, sizeof why), -EINVAL);
        ASSERT_EQ_INT(gpu_assign(&inv, NULL, 0, devs, &nd, env, &ne, why, sizeof why), 0);
        ASSERT_EQ_UINT(nd, 0);
        ASSERT_EQ_UINT(ne, 0);
        rm_rf(d);
        free(d);
}

static int conf(const char *text, NodeConf *c, char *err, size_t len) {
        return nodeconf_parse("node.yaml", text, strlen(text), c, err, len);
}

TEST(nodeconf_parse_and_errors) {
        char *d = tmpdir(), err[NODECONF_ERROR_MAX], text[2048];
        node(d, "g0", 245, 0);
        node(d, "g1", 245, 1);
        node(d, "ctl", 245, 255);
        NodeConf c;
        snprintf(text, sizeof text,
                 "labels: {zone: a, gpu.kind: test}\n"
                 "accelerator: cuda\n"
                 "gpus:\n"
                 "  - %s/g0\n"
                 "  - {device: %s/g1, path: nvidia1, product: Stand-in GPU, memory: 16Gi, uuid: GPU-1234}\n"
                 "sharedDevices: [%s/ctl]\n"
                 "driverPaths: [/usr/lib]\n", d, d, d);
        ASSERT_EQ_INT(conf(text, &c, err, sizeof err), 0);
        ASSERT_EQ_UINT(c.inv.n, 2);
        ASSERT_EQ_STR(c.inv.gpu[0].dev.dev.path, "g0");
        ASSERT_EQ_STR(c.inv.gpu[1].dev.dev.path, "nvidia1");
        ASSERT_EQ_UINT(c.inv.gpu[1].memory_bytes, 16ULL << 30);
        ASSERT_EQ_STR(c.inv.shared[0].dev.path, "ctl");
        ASSERT_EQ_STR(json_string_value(json_object_get(c.labels, "zone")), "a");
        ASSERT_EQ_UINT(c.n_driver_paths, 1);
        /* the config replaces what was detected */
        GpuInventory det = { .accel = ACCEL_ROCM, .n = 1 }, out;
        nodeconf_apply(&c, &det, &out);
        ASSERT_EQ_INT(out.accel, ACCEL_CUDA);
        ASSERT_EQ_UINT(out.n, 2);
        ASSERT_EQ_UINT(out.n_shared, 1);
        nodeconf_clear(&c);

        static const struct { const char *text, *want; } bad[] = {
                { "gpus: []\n", "node.yaml:1: gpus: needs accelerator" },
                { "accelerator: tpu\n", "node.yaml:1: accelerator: expected cuda, rocm or none" },
                { "accelerator: cuda\ngpus:\n  - /nonexistent/nvidia0\n", "node.yaml:3: gpus[0]: /nonexistent/nvidia0" },
                { "accelerator: cuda\ngpus:\n  - /etc/passwd\n", "node.yaml:3: gpus[0]: /etc/passwd: not a device node" },
                { "accelerator: cuda\ngpus:\n  - {path: x}\n", "node.yaml:3: gpus[0]: needs device" },
                { "labels: {\"bad key\": x}\n", "node.yaml:1: labels.bad key: a label is" },
                { "driverPaths: [/etc]\n", "node.yaml:1: driverPaths[0]: a plain absolute folder" },
                { "driverPaths: [/usr/../etc]\n", "node.yaml:1: driverPaths[0]: a plain absolute folder" },
                { "driverPaths: [/opt/nonexistent-fnbox]\n", "node.yaml:1: driverPaths[0]: /opt/nonexistent-fnbox: not a folder" },
                { "colour: blue\n", "node.yaml:1: colour: unknown field" },
                { "accelerator: [cuda\n", "node.yaml:" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                err[0] = 0;
                ASSERT_EQ_INT(conf(bad[i].text, &c, err, sizeof err), -EINVAL);
                if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
                        FAIL_AT("%s: got \"%s\", want \"%s...\"", bad[i].text, err, bad[i].want);
        }
        snprintf(text, sizeof text, "accelerator: cuda\ngpus:\n  - {device: %s/g0, path: ../x}\n", d);
        ASSERT_EQ_INT(conf(text, &c, err, sizeof err), -EINVAL);
        ASSERT_TRUE(strstr(err, "gpus[0].path") != NULL);
        snprintf(text, sizeof text, "accelerator: cuda\ngpus: [%s/g0, %s/g0]\n", d, d);
        ASSERT_EQ_INT(conf(text, &c, err, sizeof err), -EINVAL);
        ASSERT_TRUE(strstr(err, "named twice") != NULL);
        ASSERT_EQ_INT(nodeconf_load("/nonexistent/node.yaml", &c, err, sizeof err), -ENOENT);
        rm_rf(d);
        free(d);
}

TEST(scheduler_pick_gpus_lowest_free) {
        uint64_t m = 0;
        ASSERT_EQ_INT(scheduler_pick_gpus(0, 4, 1, &m), 0);
        ASSERT_EQ_UINT(m, 0x1);
        ASSERT_EQ_INT(scheduler_pick_gpus(0x5, 4, 2, &m), 0);   /* 0 and 2 taken */
        ASSERT_EQ_UINT(m, 0xa);
        ASSERT_EQ_INT(scheduler_pick_gpus(0xe, 4, 2, &m), -ENOSPC);
        ASSERT_EQ_INT(scheduler_pick_gpus(0, 0, 1, &m), -ENOSPC);
        ASSERT_EQ_INT(scheduler_pick_gpus(0, 64, 64, &m), 0);
        ASSERT_EQ_UINT(m, UINT64_MAX);
}

TEST(kpa_retention_holds_the_last) {
        KpaConfig cfg = { .min = 0, .max = 4, .initial = 1, .target = 10, .stable_window_ms = 60000,
                          .panic_window_ms = 6000, .scale_to_zero_after_ms = 2000, .retention_ms = 30000,
                          .max_scale_up_rate = 1000, .max_scale_down_rate = 2 };
        KpaState s;
        kpa_state_init(&s);
        KpaDecision d;
        s.initial_reached = true;
        s.initial_reached_ms = 0;
        /* ready since t=1s, no traffic: held until ready for 30 s */
        KpaInput in = { .now_ms = 10000, .ready = 1, .reachable = true, .ready_since_ms = 1000 };
        kpa_decide(&s, &cfg, &in, &d);
        ASSERT_EQ_UINT(d.desired, 1);
        ASSERT_TRUE(strstr(d.reason, "retention") != NULL);
        in.now_ms = 31500;
        kpa_decide(&s, &cfg, &in, &d);
        ASSERT_EQ_UINT(d.desired, 0);
        cfg.retention_ms = 0;
        in.now_ms = 10000;
        kpa_decide(&s, &cfg, &in, &d);
        ASSERT_EQ_UINT(d.desired, 0);
}
