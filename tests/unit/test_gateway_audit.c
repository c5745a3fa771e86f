/* tests/unit/test_gateway_audit.c: the gateway's audit records and their
 * shipper (activator/gateway/audit.c): the JSON shape the controller takes
 * (nulls, rules, bodies only when set, cut bodies marked, bad UTF-8
 * mended); then the shipper against a small HTTP server in this process:
 * a batch within the second, a full batch at once, retries while the
 * controller answers 503 or is away, the oldest dropped and counted past
 * the bound, and a prompt exit with the controller gone. */
#define _GNU_SOURCE
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "activator/gateway/policy.h"

static AuditRecord sample(const char *id) {
        AuditRecord r = {
                .at_ms = 1763700000123,
                .tokens_in = 12, .tokens_out = 34,
                .latency_ms = 56.5, .ttft_ms = -1,
                .status = 200,
                .rules = (1u << DATA_RULE_EMAIL) | (1u << DATA_RULE_IBAN),
                .chain_n = 2,
        };
        snprintf(r.request_id, sizeof r.request_id, "%s", id);
        snprintf(r.ns, sizeof r.ns, "team-a");
        snprintf(r.caller, sizeof r.caller, "fn:team-a/summarize@summarize-00003");
        snprintf(r.endpoint, sizeof r.endpoint, "chat.completions");
        snprintf(r.alias, sizeof r.alias, "small");
        snprintf(r.upstream, sizeof r.upstream, "local-llama");
        snprintf(r.chain[0], sizeof r.chain[0], "cloud-a");
        snprintf(r.chain[1], sizeof r.chain[1], "local-llama");
        return r;
}

static const char *jstr(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

TEST(audit_record_shape) {
        AuditRecord r = sample("req-1");
        json_t *j = audit_record_json(&r);
        ASSERT_TRUE(j != NULL);
        ASSERT_EQ_STR(jstr(j, "requestId"), "req-1");
        ASSERT_EQ_INT(json_integer_value(json_object_get(j, "timeMs")), 1763700000123);
        ASSERT_EQ_STR(jstr(j, "namespace"), "team-a");
        ASSERT_EQ_STR(jstr(j, "caller"), "fn:team-a/summarize@summarize-00003");
        ASSERT_EQ_STR(jstr(j, "endpoint"), "chat.completions");
        ASSERT_EQ_STR(jstr(j, "alias"), "small");
        ASSERT_EQ_STR(jstr(j, "upstream"), "local-llama");
        ASSERT_EQ_INT(json_array_size(json_object_get(j, "chain")), 2);
        ASSERT_EQ_STR(json_string_value(json_array_get(json_object_get(j, "chain"), 0)), "cloud-a");
        ASSERT_EQ_INT(json_integer_value(json_object_get(j, "tokensIn")), 12);
        ASSERT_EQ_INT(json_integer_value(json_object_get(j, "tokensOut")), 34);
        ASSERT_TRUE(json_is_false(json_object_get(j, "tokensCounted")));
        ASSERT_TRUE(json_real_value(json_object_get(j, "latencyMs")) == 56.5);
        ASSERT_TRUE(json_is_null(json_object_get(j, "ttftMs")));
        ASSERT_EQ_INT(json_integer_value(json_object_get(j, "status")), 200);
        ASSERT_TRUE(json_is_null(json_object_get(j, "errorType")));
        json_t *rules = json_object_get(j, "rules");
        ASSERT_EQ_INT(json_array_size(rules), 2);
        ASSERT_EQ_STR(json_string_value(json_array_get(rules, 0)), "email");
        ASSERT_EQ_STR(json_string_value(json_array_get(rules, 1)), "iban");
        ASSERT_TRUE(json_is_false(json_object_get(j, "stream")));
        /* no bodies unless set */
        ASSERT_TRUE(json_object_get(j, "requestBody") == NULL);
        ASSERT_TRUE(json_object_get(j, "responseBody") == NULL);
        ASSERT_EQ_INT(json_object_size(j), 17);
        json_decref(j);

        /* nothing answered: upstream null; an error type; streamed with a first token */
        r.upstream[0] = 0;
        r.ttft_ms = 12.25;
        r.stream = true;
        r.status = 429;
        r.tokens_counted = true;
        snprintf(r.error_type, sizeof r.error_type, "rate_limit_exceeded");
        r.chain_n = 0;
        r.rules = 0;
        j = audit_record_json(&r);
        ASSERT_TRUE(json_is_null(json_object_get(j, "upstream")));
        ASSERT_TRUE(json_real_value(json_object_get(j, "ttftMs")) == 12.25);
        ASSERT_EQ_STR(jstr(j, "errorType"), "rate_limit_exceeded");
        ASSERT_TRUE(json_is_true(json_object_get(j, "stream")));
        ASSERT_TRUE(json_is_true(json_object_get(j, "tokensCounted")));
        ASSERT_EQ_INT(json_array_size(json_object_get(j, "chain")), 0);
        ASSERT_EQ_INT(json_array_size(json_object_get(j, "rules")), 0);
        json_decref(j);
        ASSERT_TRUE(audit_record_json(NULL) == NULL);
}

TEST(audit_record_bodies) {
        AuditRecord r = sample("req-2");
        r.request_body = strdup("{\"messages\":[{\"content\":\"héllo\"}]}");
        r.response_body = malloc(AUDIT_BODY_MAX + 100);
        memset(r.response_body, 'x', AUDIT_BODY_MAX + 99);
        r.response_body[AUDIT_BODY_MAX + 99] = 0;
        memcpy(r.response_body + AUDIT_BODY_MAX - 1, "é", 2);     /* a character across the cut */
        json_t *j = audit_record_json(&r);
        ASSERT_EQ_STR(jstr(j, "requestBody"), "{\"messages\":[{\"content\":\"héllo\"}]}");
        ASSERT_TRUE(json_object_get(j, "requestBodyTruncated") == NULL);
        /* cut before the character, never inside it */
        ASSERT_EQ_UINT(json_string_length(json_object_get(j, "responseBody")), AUDIT_BODY_MAX - 1);
        ASSERT_TRUE(json_is_true(json_object_get(j, "responseBodyTruncated")));
        json_decref(j);

        /* bytes that are not UTF-8 become '?', and the JSON is still made */
        free(r.request_body);
        r.request_body = strdup("ok \xff\xfe bad \xc3 end \xed\xa0\x80 surrogate");
        j = audit_record_json(&r);
        ASSERT_TRUE(j != NULL);
        ASSERT_EQ_STR(jstr(j, "requestBody"), "ok ?? bad ? end ??? surrogate");
        json_decref(j);

        /* fixed fields without their NUL stay inside their size */
        memset(r.alias, 'a', sizeof r.alias);
        j = audit_record_json(&r);
        ASSERT_EQ_UINT(json_string_length(json_object_get(j, "alias")), sizeof r.alias);
        json_decref(j);
        free(r.request_body);
        free(r.response_body);
}

/* ---- a small controller ---------------------------------------------------------- */

typedef struct Server {
        int fd;
        int port;
        pthread_t thread;
        _Atomic int status;             /* what to answer */
        _Atomic int fail_first;         /* answer 503 to this many first */
        _Atomic int posts, records;
        _Atomic bool stop;
        char auth[256], path[256];
        char first_id[64], last_id[64];
        pthread_mutex_t lock;
} Server;

static void server_one(Server *s, int c) {
        char buf[1 << 16];
        size_t n = 0, want = SIZE_MAX, head = 0;
        char *body = NULL;
        for (;;) {
                if (head == 0) {
                        ssize_t k = read(c, buf + n, sizeof buf - 1 - n);
                        if (k <= 0)
                                return;
                        n += (size_t) k;
                        buf[n] = 0;
                        char *e = strstr(buf, "\r\n\r\n");
                        if (!e)
                                continue;
                        head = (size_t) (e - buf) + 4;
                        char *cl = strcasestr(buf, "Content-Length:");
                        want = cl ? strtoul(cl + 15, NULL, 10) : 0;
                        body = malloc(want + 1);
                        memcpy(body, buf + head, n - head);
                        n -= head;
                        pthread_mutex_lock(&s->lock);
                        char *a = strcasestr(buf, "Authorization: ");
                        if (a)
                                snprintf(s->auth, sizeof s->auth, "%.*s", (int) strcspn(a, "\r"), a);
                        snprintf(s->path, sizeof s->path, "%.*s", (int) strcspn(buf, "\r"), buf);
                        pthread_mutex_unlock(&s->lock);
                }
                if (n >= want)
                        break;
                ssize_t k = read(c, body + n, want - n);
                if (k <= 0) {
                        free(body);
                        return;
                }
                n += (size_t) k;
        }
        int status = atomic_load(&s->status);
        if (atomic_load(&s->fail_first) > 0) {
                atomic_fetch_sub(&s->fail_first, 1);
                status = 503;
        }
        if (status == 204) {
                json_t *j = json_loadb(body, want, 0, NULL);
                json_t *recs = json_object_get(j, "records");
                pthread_mutex_lock(&s->lock);
                if (atomic_load(&s->records) == 0)
                        snprintf(s->first_id, sizeof s->first_id, "%s",
                                 json_string_value(json_object_get(json_array_get(recs, 0), "requestId")));
                if (json_array_size(recs))
                        snprintf(s->last_id, sizeof s->last_id, "%s",
                                 json_string_value(json_object_get(json_array_get(recs, json_array_size(recs) - 1),
                                                                   "requestId")));
                pthread_mutex_unlock(&s->lock);
                atomic_fetch_add(&s->records, (int) json_array_size(recs));
                atomic_fetch_add(&s->posts, 1);
                json_decref(j);
        }
        free(body);
        char answer[128];
        int k = snprintf(answer, sizeof answer, "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
        (void) !write(c, answer, (size_t) k);
}

static void *server_loop(void *arg) {
        Server *s = arg;
        while (!atomic_load(&s->stop)) {
                int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                server_one(s, c);
                close(c);
        }
        return NULL;
}

/* On port (0: any). */
static Server *server_start(int port) {
        Server *s = calloc(1, sizeof *s);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int one = 1;
        pthread_mutex_init(&s->lock, NULL);
        s->status = 204;
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ASSERT_EQ_INT(bind(s->fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ASSERT_EQ_INT(listen(s->fd, 64), 0);
        getsockname(s->fd, (struct sockaddr *) &sa, &len);
        s->port = ntohs(sa.sin_port);
        struct timeval tv = { .tv_usec = 100000 };
        setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        pthread_create(&s->thread, NULL, server_loop, s);
        return s;
}

static void server_stop(Server *s) {
        atomic_store(&s->stop, true);
        pthread_join(s->thread, NULL);
        close(s->fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait up to limit seconds for *v to reach want. */
static bool wait_for(_Atomic int *v, int want, double limit) {
        double end = now_s() + limit;
        while (now_s() < end) {
                if (atomic_load(v) >= want)
                        return true;
                usleep(10000);
        }
        return atomic_load(v) >= want;
}

static char *url_of(int port) {
        char *u;
        ASSERT_TRUE(asprintf(&u, "http://127.0.0.1:%d/", port) > 0);
        return u;
}

static void submit_n(Audit *a, int from, int n) {
        for (int i = from; i < from + n; i++) {
                char id[32];
                snprintf(id, sizeof id, "r%d", i);
                AuditRecord r = sample(id);
                if (i % 2)
                        r.request_body = strdup("{\"prompt\":\"hi\"}");
                audit_submit(a, &r);
                ASSERT_TRUE(r.request_body == NULL);    /* taken */
        }
}

TEST(audit_ships_within_a_second) {
        Server *s = server_start(0);
        char *url = url_of(s->port);
        Audit *a = audit_new(url, "Authorization: Bearer abc.def");
        ASSERT_TRUE(a != NULL);
        submit_n(a, 0, 5);
        ASSERT_TRUE(wait_for(&s->records, 5, 3.0));
        ASSERT_EQ_INT(atomic_load(&s->posts), 1);               /* one batch */
        ASSERT_EQ_STR(s->auth, "Authorization: Bearer abc.def");
        ASSERT_EQ_STR(s->path, "POST /v1/internal/llm-audit HTTP/1.1");
        ASSERT_EQ_STR(s->first_id, "r0");
        AuditStats st;
        double t0 = now_s();
        do {
                audit_stats(a, &st);
        } while (st.sent < 5 && now_s() - t0 < 2);
        ASSERT_EQ_UINT(st.sent, 5);
        ASSERT_EQ_UINT(st.queued, 0);
        ASSERT_EQ_UINT(st.dropped, 0);
        audit_free(a);
        free(url);
        server_stop(s);
}

TEST(audit_full_batch_at_once) {
        Server *s = server_start(0);
        char *url = url_of(s->port);
        Audit *a = audit_new(url, NULL);
        usleep(50000);                  /* the thread is in its one-second wait */
        double t0 = now_s();
        submit_n(a, 0, AUDIT_BATCH_MAX);
        ASSERT_TRUE(wait_for(&s->records, AUDIT_BATCH_MAX, 3.0));
        double t = now_s() - t0;
        fprintf(stderr, "  %d records posted after %.0f ms\n", AUDIT_BATCH_MAX, t * 1000);
        ASSERT_TRUE(t < 0.9);           /* not at the next second's tick */
        ASSERT_EQ_INT(atomic_load(&s->posts), 1);
        ASSERT_EQ_STR(s->last_id, "r999");
        ASSERT_EQ_STR(s->auth, "");
        audit_free(a);
        free(url);
        server_stop(s);
}

TEST(audit_retries_on_503) {
        Server *s = server_start(0);
        s->fail_first = 2;
        char *url = url_of(s->port);
        Audit *a = audit_new(url, NULL);
        submit_n(a, 0, 3);
        ASSERT_TRUE(wait_for(&s->records, 3, 10.0));    /* 1 s, then 1 s and 2 s of back-off */
        AuditStats st;
        audit_stats(a, &st);
        ASSERT_EQ_UINT(st.failures, 2);
        ASSERT_EQ_INT(atomic_load(&s->records), 3);     /* once each */
        audit_free(a);
        free(url);
        server_stop(s);
}

TEST(audit_refused_batch_is_dropped) {
        Server *s = server_start(0);
        s->status = 400;
        char *url = url_of(s->port);
        Audit *a = audit_new(url, NULL);
        submit_n(a, 0, 3);
        AuditStats st = {};
        double t0 = now_s();
        while (st.rejected < 3 && now_s() - t0 < 3) {
                usleep(10000);
                audit_stats(a, &st);
        }
        ASSERT_EQ_UINT(st.rejected, 3);
        ASSERT_EQ_UINT(st.failures, 0);                 /* not retried: it would fail again */
        audit_free(a);
        free(url);
        server_stop(s);
}

/* The controller away: records wait, the oldest past the bound are
 * dropped and counted; when it comes back the rest arrive, newest last. */
TEST(audit_controller_away) {
        Server *probe = server_start(0);
        int port = probe->port;
        server_stop(probe);             /* nothing listens there now */
        char *url = url_of(port);
        Audit *a = audit_new(url, NULL);
        int total = AUDIT_QUEUE_MAX + 2 * AUDIT_BATCH_MAX;
        submit_n(a, 0, total);
        AuditStats st;
        audit_stats(a, &st);
        ASSERT_EQ_UINT(st.queued + st.dropped, total);
        ASSERT_TRUE(st.dropped >= AUDIT_BATCH_MAX);
        ASSERT_TRUE(st.queued <= AUDIT_QUEUE_MAX + AUDIT_BATCH_MAX);
        /* the thread tried at once (a full batch waits) and failed */
        double t1 = now_s();
        while (st.failures == 0 && now_s() - t1 < 3) {
                usleep(10000);
                audit_stats(a, &st);
        }
        ASSERT_TRUE(st.failures >= 1);
        ASSERT_EQ_UINT(st.sent, 0);
        uint64_t dropped = st.dropped;

        Server *s = server_start(port);
        ASSERT_TRUE(wait_for(&s->records, (int) st.queued, 25.0));
        char want[32];
        snprintf(want, sizeof want, "r%d", total - 1);
        ASSERT_EQ_STR(s->last_id, want);
        double t0 = now_s();
        do {
                usleep(10000);
                audit_stats(a, &st);
        } while (st.sent < (uint64_t) total - dropped && now_s() - t0 < 3);
        ASSERT_EQ_UINT(st.dropped, dropped);
        ASSERT_EQ_UINT(st.sent, (uint64_t) total - dropped);
        ASSERT_EQ_INT(atomic_load(&s->records), total - (int) dropped);    /* each once */
        audit_free(a);
        free(url);
        server_stop(s);
}

TEST(audit_exit_with_controller_gone) {
        Server *probe = server_start(0);
        int port = probe->port;
        server_stop(probe);
        char *url = url_of(port);
        Audit *a = audit_new(url, NULL);
        submit_n(a, 0, 10);
        double t0 = now_s();
        audit_free(a);
        double t = now_s() - t0;
        fprintf(stderr, "  exit with 10 unsent records: %.0f ms\n", t * 1000);
        ASSERT_TRUE(t < 3.0);
        ASSERT_TRUE(audit_new(NULL, NULL) == NULL);
        audit_submit(NULL, NULL);
        ASSERT_EQ_UINT(audit_dropped(NULL), 0);
        free(url);
}
