/* tests/unit/test_broker.c: the broker's identity headers as the runtime
 * signs them (runtime/broker.c) and the activator checks them
 * (activator/auth.c, auth_broker_verify): a good signature passes with
 * its namespace and depth; another secret, caller, depth or a stale time
 * fail; malformed headers and a missing secret are told apart. The
 * runtime's --activator URLs, and the INVOKE's depth on the wire. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "activator/auth.h"
#include "runtime/broker.h"
#include "runtime/proto.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define CALLER "fn:team-a/summarize@summarize-00003"
#define NOW 1763700000LL

static int verify(const char *secret, const char *caller, const char *depth, const char *sig, char *ns, unsigned *d) {
        return auth_broker_verify(secret, caller, depth, sig, NOW, ns, 64, d);
}

static void sign(const char *caller, const char *ns, unsigned depth, long long t, char *out, size_t len) {
        char mac[65];
        broker_identity_mac(SECRET, caller, ns, depth, t, mac);
        snprintf(out, len, "v1 %lld %s", t, mac);
}

TEST(broker_signature_accepted) {
        char sig[128], ns[64] = "";
        unsigned d = 99;
        sign(CALLER, "team-a", 3, NOW - 10, sig, sizeof sig);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "3", sig, ns, &d), 0);
        ASSERT_EQ_STR(ns, "team-a");
        ASSERT_EQ_UINT(d, 3);
        /* no depth header: 0 */
        sign(CALLER, "team-a", 0, NOW, sig, sizeof sig);
        ASSERT_EQ_INT(verify(SECRET, CALLER, NULL, sig, ns, &d), 0);
        ASSERT_EQ_UINT(d, 0);
}

TEST(broker_signature_refused) {
        char sig[128], ns[64];
        unsigned d;
        sign(CALLER, "team-a", 1, NOW, sig, sizeof sig);
        ASSERT_EQ_INT(verify("another secret", CALLER, "1", sig, ns, &d), -EPERM);
        ASSERT_EQ_INT(verify(SECRET, "fn:team-b/summarize@summarize-00003", "1", sig, ns, &d), -EPERM);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "0", sig, ns, &d), -EPERM);   /* a lower depth */
        ASSERT_EQ_INT(verify(SECRET, CALLER, NULL, sig, ns, &d), -EPERM);
        sign(CALLER, "team-a", 1, NOW - 301, sig, sizeof sig);             /* stale */
        ASSERT_EQ_INT(verify(SECRET, CALLER, "1", sig, ns, &d), -EPERM);
        sign(CALLER, "team-a", 1, NOW + 301, sig, sizeof sig);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "1", sig, ns, &d), -EPERM);
        /* signed for another namespace than the caller's */
        sign(CALLER, "default", 1, NOW, sig, sizeof sig);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "1", sig, ns, &d), -EPERM);
}

TEST(broker_signature_malformed) {
        char sig[128], ns[64];
        unsigned d;
        sign(CALLER, "team-a", 1, NOW, sig, sizeof sig);
        ASSERT_EQ_INT(verify(NULL, CALLER, "1", sig, ns, &d), -ENOKEY);
        ASSERT_EQ_INT(verify("", CALLER, "1", sig, ns, &d), -ENOKEY);
        ASSERT_EQ_INT(verify(SECRET, NULL, "1", sig, ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, "token:abc", "1", sig, ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, "fn:Team/x@x-1", "1", sig, ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, "fn:team-a/x", "1", sig, ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "-1", sig, ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "65", sig, ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "1x", sig, ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "1", "v2 1 abc", ns, &d), -EBADMSG);
        ASSERT_EQ_INT(verify(SECRET, CALLER, "1", "v1 1763700000 0123", ns, &d), -EBADMSG);
        strcat(sig, " more");
        ASSERT_EQ_INT(verify(SECRET, CALLER, "1", sig, ns, &d), -EBADMSG);
}

TEST(broker_activator_url) {
        char host[64];
        unsigned port = 0;
        ASSERT_EQ_INT(broker_parse_activator("http://127.0.0.1:8080", host, sizeof host, &port), 0);
        ASSERT_EQ_STR(host, "127.0.0.1");
        ASSERT_EQ_UINT(port, 8080);
        ASSERT_EQ_INT(broker_parse_activator("http://[::1]:80/", host, sizeof host, &port), 0);
        ASSERT_EQ_STR(host, "[::1]");
        ASSERT_EQ_INT(broker_parse_activator("https://127.0.0.1:8080", host, sizeof host, &port), -EINVAL);
        ASSERT_EQ_INT(broker_parse_activator("http://127.0.0.1", host, sizeof host, &port), -EINVAL);
        ASSERT_EQ_INT(broker_parse_activator("http://127.0.0.1:0", host, sizeof host, &port), -EINVAL);
        ASSERT_EQ_INT(broker_parse_activator("http://127.0.0.1:65536", host, sizeof host, &port), -EINVAL);
        ASSERT_EQ_INT(broker_parse_activator("http://127.0.0.1:80/fn", host, sizeof host, &port), -EINVAL);
        ASSERT_EQ_INT(broker_parse_activator(NULL, host, sizeof host, &port), -EINVAL);
}

TEST(broker_invoke_depth) {
        ProtoInvoke got;
        static const char ok[] = "{\"instance\":\"a-00001-000000\",\"depth\":7}";
        static const char bad[] = "{\"instance\":\"a-00001-000000\",\"depth\":65}";
        static const char neg[] = "{\"instance\":\"a-00001-000000\",\"depth\":-1}";
        ASSERT_EQ_INT(proto_invoke_decode((const uint8_t *) ok, strlen(ok), &got), 0);
        ASSERT_EQ_UINT(got.depth, 7);
        ASSERT_TRUE(proto_invoke_decode((const uint8_t *) bad, strlen(bad), &got) < 0);
        ASSERT_TRUE(proto_invoke_decode((const uint8_t *) neg, strlen(neg), &got) < 0);
}
