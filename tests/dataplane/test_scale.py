"""tests/dataplane/test_scale.py: scale up under load, a scale-down that
drains without dropping a request, and service mode (an echo service, its
readiness probe, a slow-loading service that gets no request early)."""
import time

from fixture import ECHO_SERVICE, Platform, fn
from harness import SCALE_FAST, Load, burst, check, statuses, test, wait_for


@test(limit=150)
def scale_up_and_drain(build):
    with Platform(build) as p:
        scale = dict(SCALE_FAST, target=2, max=4)
        # 250m: four instances fit on a 2-CPU node (placement counts limits.cpu)
        rev = p.deploy("busy", fn("box.py"), spec={"scale": scale, "concurrency": 2,
                                                    "limits": {"cpu": "250m"}})
        st, body, _ = p.invoke("busy", b"warm")
        check(st == 200, "first call", st, body)

        load = Load(p, "busy", b"sleep 0.3", workers=8)
        most = []
        try:
            p.wait_instances(rev, lambda i: len(i) > 1, 40, "more than one instance under 8 concurrent "
                             "requests with target 2")
            # keep the load until it levels off, then lower it step by step:
            # every instance that goes must finish what it has first
            t_end = time.monotonic() + 5
            while time.monotonic() < t_end:
                most.append(len(p.ready_instances(rev)))
                time.sleep(0.2)
            peak = max(most)
            load.set_workers(1)
            p.wait_instances(rev, lambda i: len(i) < peak, 60,
                             "a scale-down from %d instances once the load fell to 1" % peak)
            mid = load.snapshot()
        finally:
            results = load.stop()
        bad = [r for r in results if r.status != 200 or not r.body.startswith(b"slept")]
        check(not bad, "%d of %d requests failed while scaling (%s)" % (len(bad), len(results), statuses(bad)),
              bad[:10])
        p.wait_instances(rev, lambda i: len(i) == 0, 40, "scale to zero once idle")
        st, body, _ = p.invoke("busy", b"after")
        check(st == 200, "a call after scale to zero", st, body)
        print("peak %d instances; %d requests, all 200 (%d before the scale-down)" % (
            peak, len(results), len(mid)))


@test(limit=120)
def service_mode(build):
    with Platform(build) as p:
        rev = p.deploy("echo", ECHO_SERVICE, spec={"mode": "service", "scale": dict(SCALE_FAST),
                                                   "limits": {"cpu": "500m"},
                                                   "readiness": {"path": "/healthz", "period": "50ms"}})
        st, body, h = p.invoke("echo", b"ping", headers={"Content-Type": "text/plain"})
        check(st == 200 and body == b"ping", "POST /fn/echo", st, body)
        inst = p.wait_instances(rev, lambda i: len(i) == 1, 10)
        check(inst[0].get("endpoint", "") and inst[0]["endpoint"].startswith("unix:"),
              "a service instance's endpoint", inst)
        big = bytes(range(256)) * 4096
        st, body, _ = p.invoke("echo", big)
        check(st == 200 and body == big, "a 1 MiB binary body through the service", st, len(body))
        rs = burst(p, "echo", [b"n%d" % i for i in range(32)])
        bad = [r for r in rs if r.status != 200 or r.body != b"n%d" % r.tag]
        check(not bad, "32 concurrent calls to the service", bad[:5])

        # a slow-loading service: no request reaches it before /healthz says so
        rev2 = p.deploy("slow", ECHO_SERVICE, spec={"mode": "service", "env": {"LOAD_SECONDS": "2"},
                                                    "limits": {"cpu": "500m"},
                                                    "readiness": {"path": "/healthz", "period": "50ms"},
                                                    "scale": dict(SCALE_FAST)})
        t0 = time.monotonic()
        rs = burst(p, "slow", [b"s%d" % i for i in range(8)], timeout=60)
        dt = time.monotonic() - t0
        bad = [r for r in rs if r.status != 200 or r.body != b"s%d" % r.tag]
        check(not bad, "calls to a service while it loads", bad)
        check(dt >= 1.9, "a service that loads for 2 s answered after %.2fs" % dt)
        early = [l for d in p.runtimes.values() for l in d.lines() if "before it was ready" in l]
        logs = {}

        def got_logs():
            rc, out, err = p.cli("logs", "slow")
            check(rc == 0, "fnbox logs slow: exit %d" % rc, out, err)
            logs["out"] = out
            return "serving on" in out
        try:
            wait_for("the service's stderr in fnbox logs", got_logs, 10)
        except Exception:
            check(False, "fnbox logs slow does not show the service's stderr within 10 s", logs.get("out"))
        check("before it was ready" not in logs["out"] and not early, "the slow service got a request "
              "before it was ready", logs["out"], early)
        print("slow service: first answers after %.2fs" % dt)


@test(limit=90)
def service_idle_drain(build):
    # an idle service instance stops as soon as every activator has said it
    # has no request on it (the controller marks the drain idle), not when
    # the request timeout (here 60 s, a drain waits up to 30 s) runs out
    with Platform(build) as p:
        rev = p.deploy("idle", ECHO_SERVICE, spec={"mode": "service", "scale": dict(SCALE_FAST),
                                                   "limits": {"cpu": "500m", "timeout": "60s"},
                                                   "readiness": {"path": "/healthz", "period": "50ms"}})
        st, body, _ = p.invoke("idle", b"ping")
        check(st == 200 and body == b"ping", "POST /fn/idle", st, body)
        p.wait_instances(rev, lambda i: len(i) == 0, 30, "scale to zero once idle")
        t0 = time.monotonic()
        wait_for("the drained service instance gone from its node",
                 lambda: sum(n.get("instances", 0) for n in p.nodes().values()) == 0, 25)
        dt = time.monotonic() - t0
        check(dt < 10, "the idle service instance stopped %.1fs after leaving the routes" % dt)
        st, body, _ = p.invoke("idle", b"again")
        check(st == 200 and body == b"again", "a call after the drain", st, body)
        print("idle service instance stopped %.1fs after leaving the routes" % dt)
