/* tests/unit/test_node_detect.c: the node's labels and capacity from a
 * fake /dev (runtime/detect.c): CUDA from nvidiaN nodes, ROCm from kfd and
 * render nodes, none otherwise; MemTotal from a meminfo file; label syntax. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/detect.h"

static char *fake_dev(void) {
        char *d = strdup("/tmp/fnbox-detect-XXXXXX");
        ASSERT_TRUE(mkdtemp(d) != NULL);
        return d;
}

static void touch(const char *dir, const char *name) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        close(fd);
}

static void rm_rf(const char *d) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
        ASSERT_EQ_INT(system(cmd), 0);
}

TEST(detect_accelerator_none) {
        char *d = fake_dev();
        touch(d, "null");
        touch(d, "nvidiactl");   /* the control node alone is no GPU */
        touch(d, "nvidia-uvm");
        touch(d, "kfd");          /* kfd without render nodes: no ROCm GPU */
        unsigned gpus = 99;
        ASSERT_EQ_INT(detect_accelerator(d, &gpus), ACCEL_NONE);
        ASSERT_EQ_UINT(gpus, 0);
        rm_rf(d);
        free(d);
}

TEST(detect_accelerator_cuda) {
        char *d = fake_dev();
        touch(d, "nvidia0");
        touch(d, "nvidia1");
        touch(d, "nvidia12");
        touch(d, "nvidiactl");
        touch(d, "nvidia-modeset");
        touch(d, "kfd");
        unsigned gpus = 0;
        ASSERT_EQ_INT(detect_accelerator(d, &gpus), ACCEL_CUDA);
        ASSERT_EQ_UINT(gpus, 3);
        ASSERT_EQ_STR(accelerator_to_string(ACCEL_CUDA), "cuda");
        rm_rf(d);
        free(d);
}

TEST(detect_accelerator_rocm) {
        char *d = fake_dev();
        char dri[512];
        snprintf(dri, sizeof dri, "%s/dri", d);
        ASSERT_EQ_INT(mkdir(dri, 0755), 0);
        touch(d, "kfd");
        touch(dri, "renderD128");
        touch(dri, "renderD129");
        touch(dri, "card0");
        unsigned gpus = 0;
        ASSERT_EQ_INT(detect_accelerator(d, &gpus), ACCEL_ROCM);
        ASSERT_EQ_UINT(gpus, 2);
        ASSERT_EQ_STR(accelerator_to_string(ACCEL_ROCM), "rocm");
        /* render nodes without kfd are not ROCm (an Intel or display GPU) */
        char kfd[600];
        snprintf(kfd, sizeof kfd, "%s/kfd", d);
        unlink(kfd);
        ASSERT_EQ_INT(detect_accelerator(d, &gpus), ACCEL_NONE);
        rm_rf(d);
        free(d);
}

TEST(detect_memory_meminfo) {
        char *d = fake_dev();
        char p[512];
        snprintf(p, sizeof p, "%s/meminfo", d);
        FILE *f = fopen(p, "w");
        fputs("MemFree:         1000 kB\nMemTotal:       16384 kB\nSwapTotal: 0 kB\n", f);
        fclose(f);
        uint64_t m = 0;
        ASSERT_EQ_INT(detect_memory(p, &m), 0);
        ASSERT_EQ_UINT(m, 16384ULL * 1024);
        f = fopen(p, "w");
        fputs("MemFree: 1000 kB\n", f);
        fclose(f);
        ASSERT_EQ_INT(detect_memory(p, &m), -ENODATA);
        ASSERT_TRUE(detect_memory("/nonexistent/meminfo", &m) < 0);
        NodeCapacity c;
        Accelerator a;
        ASSERT_EQ_INT(detect_capacity(d, "/proc/meminfo", &c, &a), 0);
        ASSERT_TRUE(c.cpu_millis >= 1000 && c.cpu_millis % 1000 == 0);
        ASSERT_TRUE(c.memory_bytes > 0);
        ASSERT_EQ_INT(a, ACCEL_NONE);
        rm_rf(d);
        free(d);
}

TEST(detect_label_syntax) {
        const char *k, *v;
        char a[] = "zone=eu-1", b[] = "fnbox.dev/pool=gpu_a", c[] = "empty=";
        ASSERT_EQ_INT(label_parse(a, &k, &v), 0);
        ASSERT_EQ_STR(k, "zone");
        ASSERT_EQ_STR(v, "eu-1");
        ASSERT_EQ_INT(label_parse(b, &k, &v), 0);
        ASSERT_EQ_STR(k, "fnbox.dev/pool");
        ASSERT_EQ_INT(label_parse(c, &k, &v), 0);
        ASSERT_EQ_STR(v, "");
        static const char *const bad[] = { "novalue", "=v", "-k=v", "k=v w", "k=v/x", "k\"=v", "k=v\n",
                "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=v" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char buf[128];
                snprintf(buf, sizeof buf, "%s", bad[i]);
                if (label_parse(buf, &k, &v) >= 0)
                        FAIL_AT("accepted label %s", bad[i]);
                ASSERT_EQ_STR(buf, bad[i]); /* left as it was */
        }
}
