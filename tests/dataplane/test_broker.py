"""tests/dataplane/test_broker.py: the broker, each box's only way out
(docs/boxes.md). A box calls another function through FNBOX_BROKER and
gets its answer; it cannot claim another identity; a box calling itself
forever is stopped at the depth limit; the rate limit answers 429;
nothing but /fn/NAME and /v1/... is reachable; fresh and service jails
both have the socket, and it goes with its instance."""
import json
import os
import time

from fixture import Platform, fn
from harness import check, test, wait_for

SCALE = {"min": 0, "scaleToZeroAfter": "2s"}
BROKER_BOX = fn("broker_box.py")
SERVICE = fn("broker_service.py")


def deploy_box(p, name, timeout_ms=20000, spec=None):
    s = {"scale": dict(SCALE), "limits": {"timeout": "%dms" % timeout_ms}}
    s.update(spec or {})
    return p.deploy(name, BROKER_BOX, spec=s)


def deploy_service(p, name):
    return p.deploy(name, SERVICE, spec={"mode": "service", "scale": dict(SCALE)})


def ask(p, name, req, timeout=60):
    st, body, _ = p.invoke(name, json.dumps(req).encode(), timeout=timeout)
    return st, body


def instance_dirs(ids):
    return [os.path.join("/run/fnbox/instances", i) for i in ids]


@test(limit=120)
def call_another_function(build):
    with Platform(build) as p:
        deploy_box(p, "caller")
        p.deploy("hello", fn("box.py"), spec={"scale": dict(SCALE)})
        st, body = ask(p, "caller", {"call": "hello", "body": "through the broker"})
        check(st == 200 and body == b"echo:through the broker", "a box calling hello through its broker", st, body)
        # the explicit form with the box's own namespace, and fnbox-call
        st, body = ask(p, "caller", {"raw": ["POST", "/fn/default/hello", {}, "ns"]})
        j = json.loads(body)
        check(st == 200 and j["status"] == 200 and j["body"] == "echo:ns", "POST /fn/default/hello", st, body)
        st, body = ask(p, "caller", {"cli": ["hello", "from the cli"]})
        j = json.loads(body)
        check(st == 200 and j["rc"] == 0 and j["out"] == "echo:from the cli", "fnbox-call hello", st, body)
        st, body = ask(p, "caller", {"cli": ["nosuch", "x"]})
        j = json.loads(body)
        check(j["rc"] == 1 and "not_found" in j["out"], "fnbox-call of a missing function: exit 1, the error", body)
        # the call is in the runtime's log, attributed to the caller
        log = p.log("node-a")
        check("broker: " in log and "fn:default/caller@caller-00001 POST /fn/hello" in log,
              "no audit line for the broker call in the runtime's log", log[-3000:])


@test(limit=120)
def identity_cannot_be_forged(build):
    with Platform(build) as p:
        deploy_box(p, "mallory")
        deploy_service(p, "whoami")
        forged = {"X-Fnbox-Caller": "fn:default/admin@admin-00001", "X-Fnbox-Namespace": "other",
                  "X-Fnbox-Depth": "0", "X-Fnbox-Broker-Auth": "v1 %d %s" % (int(time.time()), "0" * 64),
                  "Authorization": "Bearer fnb_0123456789abcdef_" + "A" * 43, "X-Forwarded-For": "10.9.9.9"}
        st, body = ask(p, "mallory", {"raw": ["POST", "/fn/whoami/x", forged, "hi"]})
        check(st == 200, "the call through the broker", st, body)
        j = json.loads(body)
        check(j["status"] == 200, "whoami answered", j)
        seen = json.loads(j["body"])["headers"]
        check(seen.get("x-fnbox-caller") == "fn:default/mallory@mallory-00001",
              "the callee saw a caller other than the box's own identity", seen)
        check(seen.get("x-fnbox-depth") == "1", "the depth of a box's first call is 1", seen)
        check("authorization" not in seen and "x-fnbox-broker-auth" not in seen and
              seen.get("x-forwarded-for", "").find("10.9.9.9") < 0 and seen.get("x-fnbox-namespace") == "default",
              "headers of the box reached the callee, or the signature did", seen)
        # a call with a made-up signature straight to the activator is refused
        st, body, _ = p.invoke("whoami", b"x", headers={k: v for k, v in forged.items() if k != "Authorization"},
                               token=None)
        check(st == 401, "a forged broker signature at the activator", st, body)


@test(limit=150)
def recursion_stopped_at_depth_limit(build):
    with Platform(build) as p:
        deploy_box(p, "loop", timeout_ms=60000, spec={"concurrency": 20})
        t0 = time.monotonic()
        st, body = ask(p, "loop", {"recurse": "loop"}, timeout=120)
        took = time.monotonic() - t0
        text = body.decode()
        check(st == 200 and text.endswith("stopped 508 depth_exceeded"),
              "a box calling itself forever is not stopped with 508 depth_exceeded", st, body)
        # the box called from outside is depth 0; its call depth 1; ... the
        # box at depth 8 is refused its call (9 > 8): eight calls went through
        check(text.count("+") == 8, "expected 8 nested calls before the limit (default 8)", text)
        print("recursion stopped after %d nested calls in %.1fs" % (text.count("+"), took))


@test(limit=90)
def rate_limited(build):
    with Platform(build) as p:
        deploy_box(p, "chatty")
        st, body = ask(p, "chatty", {"many": 80, "path": "/fn/nosuch"})
        check(st == 200, "the box ran", st, body)
        sts = json.loads(body)["statuses"]
        check(all(s in (404, 429) for s in sts), "answers other than 404 (no such function) and 429", sts)
        check(sts[:40].count(429) == 0, "429 within the burst of 40", sts)
        check(sts.count(429) >= 10, "80 calls at once: fewer than 10 over the rate of 20/s", sts)
        st, body = ask(p, "chatty", {"raw": ["POST", "/fn/nosuch", {}, "x"]})
        j = json.loads(body)
        if j["status"] == 429:
            check(j["headers"].get("retry-after") and json.loads(j["body"])["error"]["code"] == "rate_limited",
                  "a 429 without Retry-After or its code", j)


@test(limit=90)
def nothing_else_reachable(build):
    with Platform(build) as p:
        deploy_box(p, "prober")
        cases = [
            ("GET", "/", 404), ("GET", "/metrics", 404), ("GET", "/v2/anything", 404),
            ("POST", "/fn/", 404), ("GET", "/fn/../v1/models", 400), ("GET", "/v1/../fn/x", 400),
            ("GET", "/fn/%2e%2e/x", 400), ("GET", "/healthz", 404),
            # another namespace's function: the name is read in the box's own
            ("POST", "/fn/team-b/secret", 404),
        ]
        for method, path, want in cases:
            st, body = ask(p, "prober", {"raw": [method, path, {}, None]})
            j = json.loads(body)
            check(st == 200 and j["status"] == want, "%s %s through the broker: want %d" % (method, path, want), j)
            check(isinstance(json.loads(j["body"]).get("error"), (dict, str)), "%s %s: not a JSON error" % (method, path), j)
        # HTTP versions: a well-formed one other than 1.1 and 1.0 is 505, a malformed one 400
        for line, want in (("GET /fn/x HTTP/2.0", 505), ("GET /fn/x HTTP/0.9", 505), ("GET /fn/x HTTP/1.1x", 400),
                           ("GET /fn/x HTTP/11.1", 400), ("GET /fn/x HTTP/", 400)):
            st, body = ask(p, "prober", {"bytes": line + "\r\nHost: x\r\n\r\n"})
            j = json.loads(body)
            err = json.loads(j["body"]).get("error", {}) if j["body"].startswith("{") else {}
            check(st == 200 and j["status"] == want and
                  err.get("code") == ("http_version_not_supported" if want == 505 else "bad_request"),
                  "%r through the broker: want %d" % (line, want), j)
        # a huge header, a body over the broker's 8 MiB
        st, body = ask(p, "prober", {"raw": ["GET", "/fn/x", {"X-Big": "a" * 20000}, None]})
        check(json.loads(body)["status"] == 431, "20 KB of headers", body)
        st, body = ask(p, "prober", {"raw": ["POST", "/fn/nosuch", {}, ""], "big": 9 << 20}, timeout=60)
        check(json.loads(body)["status"] == 413, "a 9 MiB body", body[:300])


@test(limit=120)
def socket_in_fresh_and_service_jails_and_gone_after(build):
    with Platform(build) as p:
        rev = deploy_box(p, "fresh-one")
        srev = deploy_service(p, "svc")
        st, body = ask(p, "fresh-one", {"env": True})
        j = json.loads(body)
        check(st == 200 and j["broker"] == "/run/fnbox/broker.sock" and j["socket"],
              "a fresh box has no broker socket at FNBOX_BROKER", body)
        check({"fnbox-call", "fnbox.py", "fnbox.js"} <= set(j["run"]), "the helpers are not in /run/fnbox", j)
        st, body, _ = p.invoke("svc", b"", method="GET", path="/fn/svc/env")
        j = json.loads(body)
        check(st == 200 and j["broker"] == "/run/fnbox/broker.sock" and j["socket"],
              "a service has no broker socket at FNBOX_BROKER", st, body)
        # a service calls through its broker too, passing its depth on
        st, body, _ = p.invoke("svc", b'{"env": true}', path="/fn/svc/call/fresh-one")
        j = json.loads(body)
        check(st == 200 and j["status"] == 200 and json.loads(j["body"])["socket"], "a service calling a fresh box",
              st, body)
        ids = [i["id"] for i in p.ready_instances(rev)] + [i["id"] for i in p.ready_instances(srev)]
        check(len(ids) == 2, "two ready instances", ids)
        for d in instance_dirs(ids):
            check(os.path.exists(os.path.join(d, "broker.sock")), "no broker socket on the host", d)
        # scaled to zero: the sockets and their folders go
        p.wait_instances(rev, lambda i: len(i) == 0, 40, "fresh-one back to zero")
        p.wait_instances(srev, lambda i: len(i) == 0, 40, "svc back to zero")
        wait_for("the instances' folders removed", lambda: not any(os.path.exists(d) for d in instance_dirs(ids)), 20)
