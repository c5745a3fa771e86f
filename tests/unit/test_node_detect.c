/* tests/unit/test_node_detect.c: the node's capacity (runtime/detect.c):
 * MemTotal from a meminfo file; label syntax. Its GPUs: test_gpu.c. */
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

static void rm_rf(const char *d) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
        ASSERT_EQ_INT(system(cmd), 0);
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
        ASSERT_EQ_INT(detect_capacity("/proc/meminfo", &c), 0);
        ASSERT_TRUE(c.cpu_millis >= 1000 && c.cpu_millis % 1000 == 0);
        ASSERT_TRUE(c.memory_bytes > 0);
        ASSERT_EQ_UINT(c.gpus, 0);
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
