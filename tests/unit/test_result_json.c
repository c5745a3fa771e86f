/* tests/unit/test_result_json.c: the JSON shape of a jail result, and
 * base64 for output that is not UTF-8. */
#include "test.h"

#include <errno.h>

#include "lib/base64.h"
#include "runtime/result_json.h"

TEST(base64_vectors) {
        static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
        static const char *const out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
        for (size_t i = 0; i < 7; i++) {
                char *e = base64_encode(in[i], strlen(in[i]));
                ASSERT_EQ_STR(e, out[i]);
                free(e);
        }
}

TEST(base64_decode_round_trip) {
        static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
        for (size_t i = 0; i < 7; i++) {
                char *e = base64_encode(in[i], strlen(in[i]));
                void *d = NULL;
                size_t n = 0;
                ASSERT_EQ_INT(base64_decode(e, strlen(e), &d, &n), 0);
                ASSERT_EQ_UINT(n, strlen(in[i]));
                ASSERT_TRUE(memcmp(d, in[i], n) == 0);
                free(d), free(e);
        }
        static const char *const bad[] = { "Zg=", "Z===", "Zm9v!", "Zg==Zg==", "=Zg=", "Zm 9" };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                void *d = NULL;
                size_t n = 0;
                if (base64_decode(bad[i], strlen(bad[i]), &d, &n) != -EINVAL)
                        FAIL_AT("%s decoded", bad[i]);
        }
}

TEST(result_json_shape) {
        JailResult r = { .status = JAIL_EXITED, .exit_code = 3, .wall_ms = 1.5 };
        r.out.data = strdup("hi\n");
        r.out.len = 3;
        r.err.data = strdup("\xff\xfe");
        r.err.len = 2;
        json_t *j = jail_result_to_json(&r);
        ASSERT_TRUE(j != NULL);
        ASSERT_EQ_STR(json_string_value(json_object_get(j, "status")), "exited");
        ASSERT_EQ_INT(json_integer_value(json_object_get(j, "exit_code")), 3);
        ASSERT_TRUE(json_is_null(json_object_get(j, "signal")));
        ASSERT_EQ_STR(json_string_value(json_object_get(j, "stdout")), "hi\n");
        ASSERT_TRUE(json_is_false(json_object_get(j, "stdout_base64")));
        ASSERT_EQ_STR(json_string_value(json_object_get(j, "stderr")), "//4=");
        ASSERT_TRUE(json_is_true(json_object_get(j, "stderr_base64")));
        ASSERT_TRUE(json_is_false(json_object_get(j, "stdout_truncated")));
        json_decref(j);
        jail_result_clear(&r);
}
