/* tests/unit/test_quantity.c: sizes, durations and CPU amounts. */
#include "test.h"

#include <errno.h>

#include "lib/quantity.h"

TEST(quantity_bytes) {
        uint64_t v;
        ASSERT_EQ_INT(quantity_parse_bytes("128M", &v), 0);
        ASSERT_EQ_UINT(v, 128ULL << 20);
        ASSERT_EQ_INT(quantity_parse_bytes("16Mi", &v), 0);
        ASSERT_EQ_UINT(v, 16ULL << 20);
        ASSERT_EQ_INT(quantity_parse_bytes("1.5K", &v), 0);
        ASSERT_EQ_UINT(v, 1536);
        ASSERT_EQ_INT(quantity_parse_bytes("4096", &v), 0);
        ASSERT_EQ_UINT(v, 4096);
}

TEST(quantity_bytes_refused) {
        uint64_t v;
        ASSERT_EQ_INT(quantity_parse_bytes("", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_bytes("-1", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_bytes(" 5", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_bytes("5X", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_bytes("1e9", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_bytes("0x10", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_bytes("99999999999999999999", &v), -ERANGE);
        ASSERT_EQ_INT(quantity_parse_bytes("99999999999T", &v), -ERANGE);
        ASSERT_EQ_INT(quantity_parse_bytes(NULL, &v), -EINVAL);
}

TEST(quantity_duration) {
        uint64_t v;
        ASSERT_EQ_INT(quantity_parse_duration("10s", &v), 0);
        ASSERT_EQ_UINT(v, 10000000000ULL);
        ASSERT_EQ_INT(quantity_parse_duration("250ms", &v), 0);
        ASSERT_EQ_UINT(v, 250000000ULL);
        ASSERT_EQ_INT(quantity_parse_duration("1.5", &v), 0);
        ASSERT_EQ_UINT(v, 1500000000ULL);
        ASSERT_EQ_INT(quantity_parse_duration("2m", &v), 0);
        ASSERT_EQ_UINT(v, 120000000000ULL);
        ASSERT_EQ_INT(quantity_parse_duration("10x", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_duration("s", &v), -EINVAL);
}

TEST(quantity_cpu) {
        uint64_t v;
        ASSERT_EQ_INT(quantity_parse_cpu("1", &v), 0);
        ASSERT_EQ_UINT(v, 1000);
        ASSERT_EQ_INT(quantity_parse_cpu("0.25", &v), 0);
        ASSERT_EQ_UINT(v, 250);
        ASSERT_EQ_INT(quantity_parse_cpu("500m", &v), 0);
        ASSERT_EQ_UINT(v, 500);
        ASSERT_EQ_INT(quantity_parse_cpu("1.", &v), -EINVAL);
        ASSERT_EQ_INT(quantity_parse_uint("1.5", &v), -EINVAL);
}
