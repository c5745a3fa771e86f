"""tests/dataplane/test_basic.py: deploy and call, scale from zero and back
to zero, the outcomes of a box as HTTP statuses, the activator's limits and
its queue."""
import re
import threading
import time

from fixture import ECHO_SERVICE, Platform, fn, http_request
from harness import (SCALE_FAST, check, documented_status, error_message, error_type, find_values,
                     metrics, raw_http, test, wait_for, wait_queued)


@test(limit=120)
def scale_from_zero_and_back(build):
    with Platform(build) as p:
        rev = p.deploy("hello", fn("box.py"), spec={"scale": dict(SCALE_FAST)})
        check(p.ready_instances(rev) == [], "an instance before any call", p.route(rev))

        # cold: `fnbox call` through the activator
        t0 = time.monotonic()
        rc, out, err = p.cli("call", "hello", "-d", "hi")
        cold = time.monotonic() - t0
        check(rc == 0 and out.rstrip("\n") == "echo:hi", "fnbox call hello -d hi: exit %d" % rc, out, err)

        # raw HTTP: the answer, X-Request-Id kept, one made when missing
        st, body, h = p.invoke("hello", b"raw", headers={"X-Request-Id": "dp-req-42"})
        check(st == 200 and body == b"echo:raw", "POST /fn/hello", st, body)
        check(h.get("x-request-id") == "dp-req-42", "X-Request-Id not echoed", h)
        st, body, h = p.invoke("hello", b"x")
        check(st == 200 and h.get("x-request-id"), "no X-Request-Id made for a request without one", h)
        st, body, h = p.invoke("hello", b"ns", path="/fn/default/hello")
        check(st == 200 and body == b"echo:ns", "POST /fn/default/hello", st, body)
        st, body, h = http_request(p.url, "GET", "/fn/hello", headers=p.auth_headers(), timeout=30)
        check(st == 200 and body == b"echo:", "GET /fn/hello (empty body)", st, body)
        st, body, h = http_request(p.url, "GET", "/fn/hello", timeout=30)
        check(st == 401 and error_type(body) == "unauthenticated", "GET /fn/hello without a token", st, body)

        # describe shows the ready instance
        p.wait_instances(rev, lambda i: len(i) >= 1, 10, "a ready instance in the route table")
        rc, out, err = p.cli("describe", "hello", "-o", "json")
        check(rc == 0, "fnbox describe hello -o json: exit %d" % rc, out, err)
        import json
        doc = json.loads(out)
        ready = [v for v in find_values(doc, "ready") if isinstance(v, int) and not isinstance(v, bool)]
        check(ready and max(ready) >= 1, "describe -o json shows no ready instance", out)
        table = p.cli_ok("describe", "hello")
        check(re.search(r"ready", table, re.I) and rev in table, "describe shows no ready instance", table)

        # idle: back to zero after scaleToZeroAfter (2 s), then cold again
        t_idle = time.monotonic()
        p.wait_instances(rev, lambda i: len(i) == 0, 40, "scale to zero after 2 s idle")
        to_zero = time.monotonic() - t_idle
        check(to_zero >= 1.5, "scaled to zero %.1fs after the last request, before scaleToZeroAfter" % to_zero)
        st, body, _ = p.invoke("hello", b"again")
        check(st == 200 and body == b"echo:again", "call after scale to zero", st, body)
        print("cold call %.2fs (CLI), scaled to zero %.1fs after the last request" % (cold, to_zero))


@test(limit=90)
def box_outcomes(build):
    with Platform(build) as p:
        p.deploy("outcomes", fn("box.py"),
                 spec={"limits": {"timeout": "1s", "memory": "32Mi", "output": "1Ki"}})
        st, body, _ = p.invoke("outcomes", b"warm")
        check(st == 200 and body == b"echo:warm", "a plain call", st, body)
        seen = {}
        for req, typ in [(b"exit 3", "function_error"), (b"sleep 5", "timeout"),
                         (b"oom 200", "out_of_memory"), (b"big 100000", "output_too_large")]:
            t0 = time.monotonic()
            st, body, h = p.invoke("outcomes", req)
            dt = time.monotonic() - t0
            want = documented_status(typ)
            check(st == want and error_type(body) == typ,
                  "%r: expected %d %s, got %s" % (req, want, typ, st), body[:500])
            check(error_message(body), "%r: the JSON error has no message" % req, body[:500])
            check(h.get("content-type", "").startswith("application/json"), "%r: not JSON" % req, h)
            seen[typ] = st
            if typ == "timeout":
                check(dt < 4, "the 1 s timeout took %.1fs to answer" % dt)
        st, body, _ = p.invoke("outcomes", b"after")
        check(st == 200 and body == b"echo:after", "a plain call after the failures", st, body)
        rc, out, err = p.cli("call", "outcomes", "-d", "exit 3")
        check(rc != 0, "fnbox call exits 0 on a function error", out, err)
        # the box's stderr reaches fnbox logs
        wait_for("the box's stderr in fnbox logs outcomes",
                 lambda: "box: exiting with 3" in p.cli_ok("logs", "outcomes"), 10)
        print("statuses: %s" % seen)


@test(limit=120)
def call_right_after_deploy(build):
    """A call that follows `fnbox deploy` at once finds the function (the
    activator fetches the table for a name it lacks, router.h), a new tag
    likewise; a name that is nowhere is still a prompt 404."""
    with Platform(build) as p:
        p.deploy("warm", fn("box.py"))
        st, body, _ = p.invoke("warm", b"x")
        check(st == 200, "a first function", st, body)
        for i in range(6):
            name = "now%d" % i
            p.deploy(name, fn("box.py"), spec={"scale": dict(SCALE_FAST)}, wait=False)
            st, body, _ = p.invoke(name, b"n%d" % i)
            check(st == 200 and body == b"echo:n%d" % i, "a call right after deploying %s" % name, st, body)
        for i in range(3):
            t0 = time.monotonic()
            st, body, _ = p.invoke("nowhere%d" % i, b"")
            took = time.monotonic() - t0
            check(st == 404 and error_type(body) == "not_found", "a function that is nowhere: 404", st, body)
            check(took < 2.0, "a 404 took %.2fs" % took)
        m = metrics(p.url)
        found = m.get('fnbox_activator_route_misses_total{outcome="found"}', 0)
        final = m.get('fnbox_activator_route_misses_total{outcome="not_found"}', 0)
        check(final >= 3, "the 404s were not checked against a fetched table", found, final)
        rc, out, err = p.cli("traffic", "now0", "1=100", "--tag", "1=blue")
        check(rc == 0, "fnbox traffic --tag", out, err)
        st, body, _ = p.invoke("now0", b"t", path="/fn/now0@blue")
        check(st == 200 and body == b"echo:t", "a call right after tagging", st, body)
        print("6 calls right after their deploys, all 200 (%d found by a fetch of the table)" % found)


@test(limit=60)
def request_limits(build):
    with Platform(build) as p:
        p.deploy("lim", fn("box.py"))
        st, body, _ = p.invoke("lim", b"ok")
        check(st == 200, "plain call", st, body)

        st, body, _ = p.invoke("no-such-function", b"")
        check(st == 404 and error_type(body) == "not_found", "unknown function: expected 404 not_found",
              st, body)
        st, body, _ = p.invoke("lim", b"", path="/fn/other-ns/lim")
        check(st == 404, "function in another namespace", st, body)
        st, body, _ = p.invoke("lim", b"", path="/fn/lim@no-such-tag")
        check(st == 404, "unknown tag", st, body)

        # headers over 16 KiB: 431 with its JSON error, and far over the same
        for size, json_body in ((20 << 10, True), (256 << 10, True)):
            head = (b"POST /fn/lim HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Big: " + b"a" * size
                    + b"\r\n\r\n")
            st, raw = raw_http(p.url, head)
            check(st == 431, "%d KiB of headers: expected 431" % (size >> 10), st, raw[:300])
            if json_body:
                check(b'"headers_too_large"' in raw, "431 without its JSON error", raw[:400])
        # a URL over 8 KiB: 414 with its JSON error, and far over the same
        for size, json_body in ((10 << 10, True), (256 << 10, True)):
            head = b"POST /fn/lim?q=" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            st, raw = raw_http(p.url, head)
            check(st == 414, "a %d KiB URL: expected 414" % (size >> 10), st, raw[:300])
            if json_body:
                check(b'"uri_too_long"' in raw, "414 without its JSON error", raw[:400])
        # a body over the limit, announced: 413 before it is all sent (the
        # token is checked first: without it, 401)
        auth = ("Authorization: Bearer %s\r\n" % p.token).encode()
        size = 4 << 30
        head = b"POST /fn/lim HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (auth, size)
        st, raw = raw_http(p.url, head, (b"z" * (1 << 20) for _ in range(256)))
        check(st == 413, "a 4 GiB body: expected 413", st, raw[:300])
        st, raw = raw_http(p.url, head.replace(auth, b""), (b"z" * (1 << 20) for _ in range(256)))
        check(st == 401 and b'"unauthenticated"' in raw, "a 4 GiB body without a token: expected 401",
              st, raw[:300])
        # the same, chunked (no length announced)
        head = b"POST /fn/lim HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n" % auth
        chunk = b"100000\r\n" + b"z" * 0x100000 + b"\r\n"
        st, raw = raw_http(p.url, head, (chunk for _ in range(1024)))
        check(st == 413, "a chunked body of 1 GiB: expected 413", st, raw[:300])
        # and the activator still answers
        st, body, _ = p.invoke("lim", b"still")
        check(st == 200 and body == b"echo:still", "a call after the refusals", st, body)


def _never_ready(p, name, startup="3s"):
    """A service that never passes its readiness probe. A request waits for
    it min(startupTimeout, limits.timeout + 10 s): here startupTimeout."""
    return p.deploy(name, ECHO_SERVICE,
                    spec={"mode": "service", "env": {"LOAD_SECONDS": "3600"}, "startupTimeout": startup,
                          "limits": {"timeout": "1s"}})


@test(limit=90)
def queue_full_and_deadline(build):
    with Platform(build, activator_args=["--queue-depth", "2"]) as p:
        rev = _never_ready(p, "stuck", startup="3s")
        results = []

        def call():
            t0 = time.monotonic()
            st, body, h = p.invoke("stuck", b"q", timeout=120)
            results.append((st, body, h, time.monotonic() - t0))
        threads = [threading.Thread(target=call, daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        # once the two are queued, a third finds the queue full
        wait_queued(p, rev, 2)
        deadline = time.monotonic() + 10
        while True:
            t0 = time.monotonic()
            st, body, h = p.invoke("stuck", b"third", timeout=30)
            dt = time.monotonic() - t0
            if st == 503 or time.monotonic() > deadline:
                break
        check(st == 503, "a third request with --queue-depth 2: expected 503", st, body, results)
        check(dt < 1.0, "the full queue took %.1fs to answer 503" % dt)
        check(h.get("retry-after", "").isdigit(), "503 without a Retry-After", h)
        check(error_type(body) == "queue_full", "503 without the JSON error queue_full", body)
        for t in threads:
            t.join(60)
        check(len(results) == 2, "queued requests did not end", results)
        for st, body, h, dt in results:
            check(st == 504 and error_type(body) == "queue_timeout", "a queued request past its "
                  "deadline: expected 504 queue_timeout", st, body)
            check(2.5 < dt < 8, "the 504 came after %.1fs (startupTimeout 3s)" % dt)
        print("504 after %s" % ", ".join("%.1fs" % r[3] for r in results))
