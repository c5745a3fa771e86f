#!/usr/bin/env python3
"""tests/integration/test_cluster_api.py: the controller's half of the data
plane (docs/internals.md) against a real fnbox-controller, with this
script playing the node agents and an activator over HTTP.

Fake nodes report status every 250 ms and do what their assignment says
(a "run" instance is reported starting, then ready, or failed for a
crashing node; a "drain" instance is reported stopped). The controller runs
with --node-lease 1s. Covered: registration and its checks, an assignment
after a poke, the ready instance in /v1/routes, both long polls waking on a
change (and not before), the artifact's bytes, describe's status and logs,
lease expiry -> lost -> rescheduled on another node, unschedulable reasons
(no matching node, a crash loop), drain on scale-down (out of the routes
first, then "drain"), a deleted function's instances drained, /metrics,
the live tokens in /v1/routes (created and revoked ones waking the long
poll), and the controller running as the fnbox user.

usage: test_cluster_api.py [--build DIR] [--only NAME]...
"""
import argparse
import hashlib
import http.client
import io
import json
import os
import pwd
import sys
import tarfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import Controller, api, api_full, Fail, Tests, check, run_test  # noqa: E402

TESTS = Tests()
ARGS = None
HEARTBEAT_S = 0.25



test = TESTS.add




def wait_for(what, fn, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise Fail("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def tar_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Cluster:
    """One controller; the admin's view of its API."""

    def __init__(self, ctl):
        self.ctl, self.token = ctl, ctl.admin_token

    def req(self, method, path, body=None, headers=None, timeout=30):
        return api(method, self.ctl.url + path, token=self.token, body=body, headers=headers, timeout=timeout)

    def ok(self, method, path, body=None, status=200):
        st, b = self.req(method, path, body)
        check(st == status, "%s %s: expected %s, got %s" % (method, path, status, st), b)
        return b

    def deploy(self, name, spec_extra="", files=None):
        data = tar_of(files or {"main.py": "print('hi')\n"})
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, b = self.req("PUT", "/v1/artifacts/" + digest, data, {"Content-Type": "application/x-tar"})
        check(st in (200, 201), "upload", st, b)
        text = ("apiVersion: fnbox.dev/v1\nkind: Function\nmetadata: {name: %s}\n"
                "spec:\n  runtime: python3\n  code: main.py\n%s" % (name, spec_extra))
        b = self.ok("POST", "/v1/functions", {"manifest": text, "codeDigest": digest}, status=201)
        return b["revision"], digest, data

    def routes(self):
        return self.ok("GET", "/v1/routes?after=0&waitMs=0")

    def route(self, rev):
        return self.routes()["revisions"].get("default/" + rev) or {}

    def status(self, fn, rev):
        b = self.ok("GET", "/v1/functions/" + fn)
        for r in (b.get("status") or {}).get("revisions", []):
            if r["revision"] == rev:
                return r
        return {}

    def poke(self, rev):
        return self.req("POST", "/v1/activator/poke", {"namespace": "default", "revision": rev})

    def nodes(self):
        return {n["name"]: n for n in self.ok("GET", "/v1/nodes")["items"]}


class FakeNode:
    """A node agent: reports status every HEARTBEAT_S and follows its
    assignment. behaviour: "ready" (instances become ready) or "fail"
    (instances fail with "exited 1" before ever being ready)."""

    def __init__(self, cluster, name, labels=None, cpu=4000, memory=8 << 30, gpus=0, behaviour="ready"):
        self.c, self.name, self.behaviour = cluster, name, behaviour
        self.labels = dict({"arch": "x86_64", "accelerator": "none"}, **(labels or {}))
        self.capacity = {"cpuMillis": cpu, "memoryBytes": memory, "gpus": gpus}
        self.instances = {}         # id -> {"state", "reason", "desired", "revision"}
        self.logs = []
        self.assignment = None
        self.history = []           # (time, id, desired) as first seen
        self.lock = threading.Lock()
        self.paused = threading.Event()
        self.stop_ev = threading.Event()
        self.thread = None

    def body(self):
        with self.lock:
            insts = [{"id": i, "state": s["state"], "reason": s["reason"], "inflight": 0, "endpoint": None,
                      "sinceMs": int(time.time() * 1000)} for i, s in self.instances.items()]
            logs, self.logs = self.logs, []
        return {"name": self.name, "bootId": "boot-" + self.name, "invoke": "unix:/run/fnbox/%s.sock" % self.name,
                "labels": self.labels, "capacity": self.capacity, "instances": insts, "logs": logs}

    def report(self):
        st, a = self.c.req("PUT", "/v1/nodes/%s/status" % self.name, self.body())
        check(st == 200, "status of %s: %s" % (self.name, st), a)
        self.follow(a)
        return a

    def follow(self, a):
        with self.lock:
            self.assignment = a
            listed = {i["id"]: i for i in a["instances"]}
            for iid, inst in listed.items():
                s = self.instances.get(iid)
                if s is None and inst["desired"] == "run":
                    self.history.append((time.monotonic(), iid, "run"))
                    self.instances[iid] = {"state": "starting", "reason": "started", "desired": "run",
                                           "revision": inst["revision"], "spec": inst["spec"]}
                elif s is not None:
                    if inst["desired"] == "drain" and s["desired"] != "drain":
                        self.history.append((time.monotonic(), iid, "drain"))
                    s["desired"] = inst["desired"]
            for iid, s in list(self.instances.items()):
                if iid not in listed:
                    if s["state"] in ("stopped", "failed"):
                        del self.instances[iid]
                    else:
                        s.update(state="stopped", reason="killed")
                elif s["desired"] == "drain":
                    s.update(state="stopped", reason="drained")
                elif s["state"] == "starting" and self.behaviour == "fail":
                    s.update(state="failed", reason="exited 1")
                elif s["state"] == "starting":
                    s.update(state="ready", reason="ready")

    def add_log(self, iid, line):
        with self.lock:
            self.logs.append({"instance": iid, "timeMs": int(time.time() * 1000), "line": line})

    def run_ids(self, revision=None):
        with self.lock:
            return sorted(i for i, s in self.instances.items()
                          if s["desired"] == "run" and (revision is None or s["revision"] == revision))

    def _loop(self):
        while not self.stop_ev.is_set():
            if not self.paused.is_set():
                try:
                    self.report()
                except Exception as e:  # noqa: BLE001 (the test reads failures elsewhere)
                    print("  fake node %s: %s" % (self.name, e))
            self.stop_ev.wait(HEARTBEAT_S)

    def start(self):
        self.report()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        if self.thread:
            self.thread.join(5)


class FakeActivator:
    """Reports in-flight requests per revision every 0.5 s."""

    def __init__(self, cluster, name="act-1"):
        self.c, self.name = cluster, name
        self.load = {}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def send(self):
        revs = [{"namespace": "default", "revision": r, "inflight": n, "queued": 0} for r, n in self.load.items()]
        st, b = self.c.req("POST", "/v1/activator/stats", {"activator": self.name, "revisions": revs})
        check(st == 204, "stats: %s" % st, b)

    def _loop(self):
        while not self.stop_ev.is_set():
            try:
                self.send()
            except Exception as e:  # noqa: BLE001
                print("  fake activator: %s" % e)
            self.stop_ev.wait(0.5)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)


class Poll(threading.Thread):
    """A long poll in the background: .result is (status, body, seconds)."""

    def __init__(self, cluster, path):
        super().__init__(daemon=True)
        self.c, self.path, self.result = cluster, path, None
        self.start()

    def run(self):
        t0 = time.monotonic()
        st, b = self.c.req("GET", self.path, timeout=40)
        self.result = (st, b, time.monotonic() - t0)


# ---- the tests ------------------------------------------------------------------------------

@test
def registration(S):
    c = S.c
    st, b = c.req("GET", "/v1/nodes/reg-x/assignments?after=0&waitMs=0")
    check(st == 404, "assignments of a node that never reported", st, b)
    n = FakeNode(c, "reg-a", labels={"zone": "a"})
    a = n.report()
    check(a["leaseMs"] == 1000 and a["heartbeatMs"] == 200 and a["instances"] == [] and a["version"] > 0,
          "the first assignment", a)
    node = c.nodes()["reg-a"]
    check(node["state"] == "ready" and node["labels"]["zone"] == "a" and node["capacity"]["cpuMillis"] == 4000
          and node["instances"] == 0, "GET /v1/nodes", node)
    bad = n.body()
    for field, value, want in (("name", "other", "name"), ("invoke", "http://x", "invoke"),
                               ("bootId", "", "bootId"), ("capacity", {"gpus": -1}, "capacity.gpus"),
                               ("instances", [{"id": "x", "state": "odd"}], "instances[0].state"),
                               ("logs", [{"instance": "x", "timeMs": 1, "line": "y" * 2000}], "logs[0]")):
        body = dict(bad, **{field: value})
        st, b = c.req("PUT", "/v1/nodes/reg-a/status", body)
        check(st == 400 and want in b["error"]["message"], "status with a bad %s" % field, st, b)
    # over 1 MiB: refused from its Content-Length, before the body is sent
    u = urllib.parse.urlparse(c.ctl.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("PUT", "/v1/nodes/reg-a/status")
    conn.putheader("Authorization", "Bearer " + c.token)
    conn.putheader("Content-Length", str((1 << 20) + 1))
    conn.endheaders()
    resp = conn.getresponse()
    check(resp.status == 413, "a status over 1 MiB", resp.status)
    conn.close()
    st, b = c.req("GET", "/v1/nodes/reg-a/assignments?after=0&waitMs=30001")
    check(st == 400, "waitMs over 30000", st, b)
    dev = S.developer
    st, b = api("PUT", c.ctl.url + "/v1/nodes/reg-a/status", token=dev, body=n.body())
    check(st == 403, "a developer reporting node status", st, b)


@test
def poke_assign_route(S):
    c = S.c
    rev, digest, data = c.deploy("echo", "  scale: {initial: 0, scaleToZeroAfter: 1s}\n  concurrency: 4\n")
    node = FakeNode(c, "node-a", cpu=4000).start()
    S.nodes.append(node)
    # nothing yet: initial 0 and no traffic
    time.sleep(1.2)
    check(node.run_ids(rev) == [], "an instance before any request", node.assignment)
    check(c.route(rev).get("instances") == [], "the route before any request", c.route(rev))
    # a waiting assignment long poll wakes on the poke, not before
    v = node.assignment["version"]
    poll = Poll(c, "/v1/nodes/node-a/assignments?after=%d&waitMs=20000" % v)
    routes_v = c.routes()["version"]
    rpoll = Poll(c, "/v1/routes?after=%d&waitMs=20000" % routes_v)
    time.sleep(0.5)
    check(poll.result is None and rpoll.result is None, "long polls answered with nothing new")
    t0 = time.monotonic()
    st, b = c.poke(rev)
    check(st == 202, "poke", st, b)
    poll.join(10)
    check(poll.result and poll.result[0] == 200, "the assignment long poll", poll.result)
    a = poll.result[1]
    check(time.monotonic() - t0 < 2 and a["version"] != v, "the long poll woke on the poke", a)
    insts = [i for i in a["instances"] if i["revision"] == rev]
    check(len(insts) == 1 and insts[0]["desired"] == "run" and insts[0]["codeDigest"] == digest and
          insts[0]["function"] == "echo" and insts[0]["namespace"] == "default" and insts[0]["variant"] is None
          and insts[0]["id"].startswith(rev + "-") and len(insts[0]["id"]) == len(rev) + 7,
          "one instance to run", a)
    spec = insts[0]["spec"]
    check(spec["concurrency"] == 4 and spec["readiness"] == {"path": "/healthz", "periodMs": 100}
          and spec["scale"]["scaleToZeroAfterMs"] == 1000, "the instance's spec", spec)
    # the node reports it ready: the routes long poll wakes with it
    S.activator.load[rev] = 1
    node.report()
    node.report()
    rpoll.join(10)
    check(rpoll.result and rpoll.result[0] == 200, "the routes long poll", rpoll.result)
    r = wait_for("the ready instance in /v1/routes", lambda: c.route(rev).get("instances"))
    check(r == [{"id": insts[0]["id"], "node": "node-a", "invoke": "unix:/run/fnbox/node-a.sock", "endpoint": None}],
          "the route's instances", r)
    route = c.route(rev)
    check(route["mode"] == "fresh" and route["concurrency"] == 4 and route["unschedulable"] is None and
          route["timeoutMs"] == 10000 and route["startupTimeoutMs"] == 600000, "the route", route)
    fn = [f for f in c.routes()["functions"] if f["name"] == "echo"][0]
    check(fn["traffic"] == [{"revision": rev, "percent": 100}], "the function's resolved traffic", fn)
    # the code, for the node
    st, body, h = api_full("GET", c.ctl.url + "/v1/artifacts/" + digest, token=c.token)
    check(st == 200 and body == data or (isinstance(body, str) and body.encode("latin-1") == data),
          "GET the artifact's bytes", st)
    check(h.get("Content-Type", h.get("content-type")) == "application/x-tar", "artifact type", h)
    st, b = api("GET", c.ctl.url + "/v1/artifacts/" + digest, token=S.developer)
    check(st == 403, "a developer reading artifact bytes", st)
    # describe: desired, ready, a decision with its reason; logs
    s = wait_for("describe's status", lambda: (lambda x: x if x.get("ready") == 1 else None)(c.status("echo", rev)))
    check(s["desired"] == 1 and s["unschedulable"] is None and s["instances"][0]["node"] == "node-a" and
          any("a request is waiting" in d["reason"] for d in s["decisions"]), "the revision's status", s)
    node.add_log(insts[0]["id"], "hello from stderr")
    node.report()
    logs = c.ok("GET", "/v1/functions/echo/logs")
    check([x["line"] for x in logs["items"]] == ["hello from stderr"] and logs["items"][0]["instance"] ==
          insts[0]["id"], "logs", logs)
    S.echo = (rev, insts[0]["id"])


@test
def lease_lost_rescheduled(S):
    c = S.c
    rev, iid = S.echo
    a = S.nodes[0]
    b = FakeNode(c, "node-b", cpu=2000).start()
    S.nodes.append(b)
    a.paused.set()                                  # node-a goes silent
    t0 = time.monotonic()
    wait_for("node-a lost", lambda: c.nodes()["node-a"]["state"] == "lost", 5)
    lost_after = time.monotonic() - t0
    check(0.8 < lost_after < 3.5, "lost after %.1fs with a 1 s lease" % lost_after)
    new = wait_for("a new instance on node-b", lambda: b.run_ids(rev), 5)
    check(iid not in new, "the instance was placed again", new)
    r = wait_for("the new instance routed", lambda: [i for i in c.route(rev).get("instances", [])
                                                     if i["node"] == "node-b"], 5)
    check(all(i["node"] == "node-b" for i in c.route(rev)["instances"]), "node-a's instance left the routes", r)
    # node-a comes back: ready, and a fresh assignment without its old instance
    a.paused.clear()
    wait_for("node-a ready again", lambda: c.nodes()["node-a"]["state"] == "ready", 5)
    wait_for("node-a's old instance gone", lambda: a.run_ids(rev) == [] and iid not in a.instances, 5)
    check(all(i["node"] == "node-b" for i in c.route(rev)["instances"]), "routes after node-a's return")
    S.echo = (rev, new[0])


@test
def drain_on_scale_down(S):
    c = S.c
    rev, iid = S.echo
    b = S.nodes[1]
    S.activator.load[rev] = 0                       # no more traffic: to zero after 1 s
    t_routes = wait_for("the instance out of the routes", lambda: (not c.route(rev).get("instances")) and
                        time.monotonic(), 8)
    drains = [t for t, i, d in b.history if i == iid and d == "drain"]
    check(not drains, "the node was told to drain before the instance left the routes", b.history)
    wait_for("drain in the assignment", lambda: [t for t, i, d in b.history if i == iid and d == "drain"], 5)
    t_drain = [t for t, i, d in b.history if i == iid and d == "drain"][0]
    check(t_drain >= t_routes, "drain came after the routes change (%.2fs)" % (t_drain - t_routes))
    wait_for("the drained instance forgotten", lambda: iid not in b.instances, 5)
    s = c.status("echo", rev)
    check(s["desired"] == 0 and s["ready"] == 0 and any("scale to zero" in d["reason"] for d in s["decisions"]),
          "describe after scale to zero", s)


@test
def unschedulable_selector(S):
    c = S.c
    rev, _, _ = c.deploy("gpu", "  scale: {initial: 0}\n  nodeSelector: {accelerator: cuda}\n")
    st, b = c.poke(rev)
    check(st == 202, "poke", st, b)
    reason = wait_for("the unschedulable reason", lambda: c.route(rev).get("unschedulable"), 5)
    check(reason == "no node matches accelerator=cuda", "reason", reason)
    check(c.status("gpu", rev)["unschedulable"] == reason, "describe shows the reason")
    # a matching node arrives: the reason goes and a poke places it there
    cuda = FakeNode(c, "node-cuda", labels={"accelerator": "cuda"}, gpus=1).start()
    S.nodes.append(cuda)
    wait_for("the reason cleared", lambda: c.route(rev).get("unschedulable") is None, 5)
    c.poke(rev)
    wait_for("an instance on the cuda node", lambda: cuda.run_ids(rev), 5)


@test
def crash_loop(S):
    c = S.c
    for n in S.nodes:
        n.stop()
    crash = FakeNode(c, "node-crash", labels={"crash": "yes"}, behaviour="fail").start()
    S.nodes.append(crash)
    rev, _, _ = c.deploy("crash", "  scale: {min: 1}\n  nodeSelector: {crash: \"yes\"}\n")
    reason = wait_for("the crash loop", lambda: c.route(rev).get("unschedulable"), 15)
    check(reason == "instance failed: exited 1 (3 times in a row)", "crash loop reason", reason)
    s = c.status("crash", rev)
    check(s["unschedulable"] == reason and any("crash loop" in d["reason"] for d in s["decisions"]),
          "describe shows the crash loop", s)
    time.sleep(1)
    check(crash.run_ids(rev) == [], "no new instance during the back-off", crash.instances)


@test
def delete_drains(S):
    c = S.c
    for n in S.nodes:
        n.stop()
    node = FakeNode(c, "node-del").start()
    S.nodes.append(node)
    rev, _, _ = c.deploy("gone", "  scale: {min: 1}\n")
    ids = wait_for("the min-scale instance", lambda: node.run_ids(rev), 5)
    c.ok("DELETE", "/v1/functions/gone")
    wait_for("its instance drained", lambda: ids[0] not in node.instances or
             node.instances[ids[0]]["desired"] == "drain", 5)
    check(all(f["name"] != "gone" for f in c.routes()["functions"]), "the function left the routes")


@test
def metrics_and_user(S):
    c = S.c
    st, text, h = api_full("GET", c.ctl.url + "/metrics")
    check(st == 200 and isinstance(text, str), "GET /metrics", st)
    for want in ('fnbox_controller_requests_total{endpoint="PUT /v1/nodes/*/status",status="200"}',
                 'fnbox_controller_instances_desired{namespace="default",revision="',
                 'fnbox_controller_instances_ready{', 'fnbox_controller_nodes{state="ready"}',
                 'fnbox_controller_nodes{state="lost"}', "fnbox_controller_scaling_decisions_total "):
        check(want in text, "metrics lack %s" % want, text[:2000])
    if os.geteuid() == 0:
        try:
            uid = pwd.getpwnam("fnbox").pw_uid
        except KeyError:
            return
        with open("/proc/%d/status" % c.ctl.proc.pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        check(all(int(u) == uid for u in uids), "the controller runs as fnbox", uids)
        check(os.stat(c.ctl.data_dir).st_uid == uid, "the data folder belongs to fnbox")


def token_entry(tok):
    """The route table's entry for a token string: id and the SHA-256 of its secret."""
    _, tid, secret = tok.split("_", 2)
    return tid, secret, hashlib.sha256(secret.encode()).hexdigest()


@test
def routes_carry_tokens(S):
    """The live tokens ride in the route table (for the activators' own
    check of /fn/): id, secret hash, role, namespaces; never a secret. A
    new token and a revoked one each wake the routes long poll."""
    c = S.c
    doc = c.routes()
    tokens = {t["id"]: t for t in doc.get("tokens", [])}
    aid, asecret, ahash = token_entry(c.token)
    did, dsecret, dhash = token_entry(S.developer)
    check(tokens.get(aid) == {"id": aid, "secretHash": ahash, "role": "admin", "namespaces": ["*"]},
          "the admin token's entry", tokens.get(aid))
    check(tokens.get(did) == {"id": did, "secretHash": dhash, "role": "developer", "namespaces": ["default"]},
          "the developer token's entry", tokens.get(did))
    text = json.dumps(doc)
    check(asecret not in text and dsecret not in text, "a secret in /v1/routes")
    # only admins read it (the activators' token)
    st, b = api("GET", c.ctl.url + "/v1/routes?after=0&waitMs=0", token=S.developer)
    check(st == 403, "a developer token reads /v1/routes", st, b)

    # a new token: the long poll wakes with it
    poll = Poll(c, "/v1/routes?after=%d&waitMs=20000" % doc["version"])
    t0 = time.monotonic()
    b = c.ok("POST", "/v1/tokens", {"role": "invoker", "namespaces": ["default", "team-a"]}, status=201)
    poll.join(10)
    check(poll.result and poll.result[0] == 200 and time.monotonic() - t0 < 2, "the long poll on a new token",
          poll.result)
    iid, isecret, ihash = token_entry(b["token"])
    new = {t["id"]: t for t in poll.result[1]["tokens"]}
    check(new.get(iid) == {"id": iid, "secretHash": ihash, "role": "invoker", "namespaces": ["default", "team-a"]},
          "the new token's entry", new.get(iid))
    check(isecret not in json.dumps(poll.result[1]), "the new secret in /v1/routes")

    # revoked: gone with the next version
    v = poll.result[1]["version"]
    poll = Poll(c, "/v1/routes?after=%d&waitMs=20000" % v)
    t0 = time.monotonic()
    c.ok("DELETE", "/v1/tokens/" + iid)
    poll.join(10)
    check(poll.result and poll.result[0] == 200 and time.monotonic() - t0 < 2, "the long poll on a revocation",
          poll.result)
    ids = [t["id"] for t in poll.result[1]["tokens"]]
    check(iid not in ids and aid in ids and did in ids, "the revoked token left the table", ids)


def missing_user(build):
    """A --user that does not exist stops the start with a sentence naming --user."""
    if os.geteuid() != 0:
        return
    try:
        with Controller(build, extra_args=["--user", "no-such-user-x"]):
            raise Fail("started with a missing --user")
    except Fail:
        raise
    except Exception as e:  # noqa: BLE001
        check("--user no-such-user-x: no such user" in str(e), "the error names --user", str(e)[-600:])


class State:
    pass


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    ARGS = ap.parse_args()
    passed = failed = 0
    with Controller(ARGS.build, extra_args=["--node-lease", "1s"]) as ctl:
        S = State()
        S.c = Cluster(ctl)
        st, b = S.c.req("POST", "/v1/tokens", {"role": "developer", "namespaces": ["default"]})
        check(st == 201, "developer token", st, b)
        S.developer = b["token"]
        S.nodes = []
        S.activator = FakeActivator(S.c)
        try:
            for t in TESTS.chosen(ARGS.only):
                if run_test(t, S):
                    passed += 1
                else:
                    failed += 1
                    print(ctl.log()[-3000:])
        finally:
            S.activator.stop()
            for n in S.nodes:
                n.stop()
        rc = ctl.stop()
        if rc != 0:
            failed += 1
            print("FAIL the controller exited %s on SIGTERM" % rc)
    if not ARGS.only or "missing_user" in ARGS.only:
        try:
            missing_user(ARGS.build)
            passed += 1
            print("ok   missing_user")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL missing_user: %s" % e)
    print("cluster_api: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
