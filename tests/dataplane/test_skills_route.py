"""tests/dataplane/test_skills_route.py: skills on the data plane
(docs/invoke.md, "Skills"). /skills/NAME@V calls the function
skill-NAME-vV, scaled from zero like any function, with the same tokens;
NAME alone is the newest promoted version that is not deprecated (404
for a skill with none); X-Fnbox-Stderr gives a developer (never an
invoker, never a broker call) the stderr tail and exit status of a
failed fresh box; a box calls a skill through its broker with
`fnbox-call skill:NAME@V` and the python helper.

The skill versions are made the only way there is: a generate job with a
scripted model (tests/gateway/upstream.py) and a promotion, which deploys
skill-NAME-vN (a user's deploy of such a name is refused). The library
itself (rounds, evidence, search) is tests/skills' subject."""
import contextlib
import json
import os
import sys
import tempfile
import time

from fixture import Node, Platform, fn, http_request
from harness import check, error_message, error_type, metrics, test, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gateway"))
from upstream import Upstream  # noqa: E402

SCALE = {"min": 0, "scaleToZeroAfter": "2s"}
with open(fn("skill_box.py")) as _f:
    SKILL_BOX = _f.read()
SKILL_BOX_FILE = fn("skill_box.py")


@contextlib.contextmanager
def skills_platform(build):
    """A platform whose controller writes skills with a scripted model
    (the alias "coder" on the activator's gateway); yields (p, upstream)."""
    up = Upstream("model").start()
    try:
        with tempfile.TemporaryDirectory(prefix="fnbox-dp-skills-") as tmp:
            os.chmod(tmp, 0o755)
            cfg = os.path.join(tmp, "gateway.yaml")
            with open(cfg, "w") as f:
                f.write("upstreams:\n  - name: model\n    base_url: %s\n    local: true\n    models: [coder-1]\n"
                        "aliases:\n  - name: coder\n    upstreams: [{upstream: model, model: coder-1}]\n"
                        % up.base_url)
            os.chmod(cfg, 0o644)
            with Platform(build, nodes=[Node("node-a")], activator_args=["--gateway-config", cfg],
                          controller_args=["--skill-model", "coder"]) as p:
                yield p, up
    finally:
        up.stop()


def skill_version(p, up, name, version, promote=True):
    """Version `version` of skill NAME, answering "vVERSION:BODY"
    (functions/skill_box.py): a generate job whose scripted answer passes
    its test, then (promote) its promotion, which deploys
    skill-NAME-vVERSION."""
    code = SKILL_BOX.replace('os.environ.get("VERSION", "?")', '"%d"' % version)
    tests = [{"name": "echo", "input": "t", "expected": "v%d:t" % version}]
    reply = ("Here is the box.\n\n```python\n%s```\n\nDescription: Echoes its input, version %d.\n\n"
             "Tests:\n```json\n%s\n```\n" % (code, version, json.dumps(tests)))
    up.reset()
    up.script([{"reply": reply}], only="/chat/completions")
    st, job = p.api("POST", "/v1/skills/generate", {"task": "echo the input (%s v%d)" % (name, version),
                                                     "name": name, "model": "coder", "rounds": 1})
    check(st == 202, "POST /v1/skills/generate %s" % name, st, job)
    deadline = time.monotonic() + 120
    while job.get("state") == "running" and time.monotonic() < deadline:
        st, job = p.api("GET", "/v1/skills/jobs/%s?wait=10" % job["id"], timeout=20)
        check(st == 200, "GET the job", st, job)
    check(job.get("state") == "passed" and job.get("version") == version, "the candidate %s@%d" % (name, version),
          job)
    if promote:
        st, body = p.api("POST", "/v1/skills/%s/promote" % name, {"version": version}, timeout=120)
        check(st == 200 and body.get("state") == "promoted", "promote %s@%d" % (name, version), st, body)


def token(p, role, namespaces):
    """A new token, once the activator knows it (it comes with the next
    route table)."""
    st, body = p.api("POST", "/v1/tokens", {"role": role, "namespaces": namespaces, "description": "dp skills"})
    check(st == 201, "POST /v1/tokens %s %s" % (role, namespaces), st, body)
    tok = body["token"]
    wait_for("token %s at the activator" % body["id"],
             lambda: http_request(p.url, "GET", "/fn/nope-%d" % time.monotonic_ns(), b"",
                                  {"Authorization": "Bearer " + tok}, 10)[0] != 401, 10)
    return tok


def call(p, path, body=b"", tok=None, headers=None, timeout=30):
    h = dict(headers or {})
    h.update({"Authorization": "Bearer " + tok} if tok else p.auth_headers())
    return http_request(p.url, "POST", path, body, h, timeout)


def err_of(body):
    try:
        e = json.loads(body).get("error")
    except ValueError:
        return {}
    return e if isinstance(e, dict) else {}


@test(limit=300)
def skills_by_version(build):
    with skills_platform(build) as (p, up):
        skill_version(p, up, "sum", 1)
        skill_version(p, up, "sum", 2)
        skill_version(p, up, "cand", 1, promote=False)
        for path, want in (("/skills/sum@1", b"v1:a"), ("/skills/sum@2", b"v2:a"),
                           ("/skills/sum@002", b"v2:a"), ("/skills/default/sum@1", b"v1:a"),
                           ("/skills/sum@2/sub/x?q=1", b"v2:a path=/sub/x"),
                           ("/skills/default/sum@1/y", b"v1:a path=/y")):
            st, body, h = call(p, path, b"a")
            check(st == 200 and body == want, "POST %s" % path, st, body)
            check(h.get("x-request-id"), "no X-Request-Id on %s" % path, h)
        # the function's own name still works
        st, body, _ = call(p, "/fn/skill-sum-v2", b"b")
        check(st == 200 and body == b"v2:b", "POST /fn/skill-sum-v2", st, body)

        # NAME alone: the route table's newest promoted version that is not deprecated
        routes = p.routes()
        check({"namespace": "default", "name": "sum", "version": 2} in routes.get("skills", []),
              "sum@2 in the route table's skills", routes.get("skills"))
        st, body, _ = call(p, "/skills/sum", b"a")
        check(st == 200 and body == b"v2:a", "POST /skills/sum: the newest promoted", st, body)
        st, body, _ = call(p, "/skills/default/sum/z", b"a")
        check(st == 200 and body == b"v2:a path=/z", "POST /skills/default/sum/z", st, body)
        st, body = p.api("POST", "/v1/skills/sum/deprecate", {"version": 2})
        check(st == 200, "deprecate sum@2", st, body)
        wait_for("/skills/sum back to v1", lambda: call(p, "/skills/sum", b"a")[1] == b"v1:a", 15)
        st, body, _ = call(p, "/skills/sum@2", b"a")
        check(st == 200 and body == b"v2:a", "a deprecated version by its number", st, body)
        # a candidate has no promoted version and no function
        check(not any(e.get("name") == "cand" for e in p.routes().get("skills", [])), "cand in the table's skills")
        st, body, _ = call(p, "/skills/cand", b"a")
        check(st == 404 and error_type(body) == "not_found" and
              error_message(body) == "skill cand has no promoted version", "POST /skills/cand (a candidate)", st, body)
        st, body, _ = call(p, "/skills/cand@1", b"a")
        check(st == 404 and error_type(body) == "not_found" and "no version 1" in error_message(body),
              "POST /skills/cand@1 (not promoted)", st, body)
        st, body, _ = call(p, "/skills/sum@3", b"a")
        check(st == 404 and error_type(body) == "not_found" and "no version 3" in error_message(body),
              "POST /skills/sum@3", st, body)
        st, body, _ = call(p, "/skills/nope@1", b"a")
        check(st == 404 and error_type(body) == "not_found", "POST /skills/nope@1", st, body)
        for bad in ("/skills/sum@latest", "/skills/Sum@1", "/skills/sum@0", "/skills/", "/skills/a_b@1",
                    "/skills/" + "a" * 41 + "@1"):
            st, body, _ = call(p, bad, b"a")
            check(st == 404 and error_type(body) == "not_found" and "not a skill URL" in error_message(body),
                  "POST %s: the 404 of a malformed skill URL" % bad, st, body)

        # the same tokens as /fn: 401 without, 403 for another namespace, 404 only where it may look
        st, body, h = http_request(p.url, "POST", "/skills/sum@1", b"a", {}, 30)
        check(st == 401 and error_type(body) == "unauthenticated" and "www-authenticate" in h,
              "POST /skills/sum@1 without a token", st, body)
        team = token(p, "invoker", ["team"])
        st, body, _ = call(p, "/skills/sum@1", b"a", tok=team)
        check(st == 403 and error_type(body) == "forbidden", "invoker(team) -> /skills/sum@1", st, body)
        st, body, _ = call(p, "/skills/team/sum@1", b"a", tok=team)
        check(st == 404 and error_type(body) == "not_found", "invoker(team) -> /skills/team/sum@1", st, body)
        inv = token(p, "invoker", ["default"])
        st, body, _ = call(p, "/skills/sum@2", b"c", tok=inv)
        check(st == 200 and body == b"v2:c", "invoker(default) -> /skills/sum@2", st, body)

        # counted as the function's requests
        m = metrics(p.url)
        check(any('function="skill-sum-v1"' in k and 'code="200"' in k for k in m if
                  k.startswith("fnbox_activator_requests_total")), "no requests_total for skill-sum-v1",
              [k for k in m if "requests_total" in k])


@test(limit=240)
def stderr_for_developers(build):
    with skills_platform(build) as (p, up):
        skill_version(p, up, "err", 1)
        p.deploy("slow", SKILL_BOX_FILE, spec={"scale": dict(SCALE), "limits": {"timeout": "2s"}})
        inv = token(p, "invoker", ["default"])
        dev = token(p, "developer", ["default"])
        ask = {"X-Fnbox-Stderr": "1"}

        st, body, _ = call(p, "/skills/err@1", b"fail", tok=dev, headers=ask)
        e = err_of(body)
        check(st == 500 and e.get("type") == "function_error", "developer: the failed box", st, body)
        check(e.get("stderr") == "Traceback (most recent call last):\nValueError: bad \ufffd input\n",
              "developer: the stderr (invalid UTF-8 replaced)", body)
        check(e.get("exitCode") == 3 and "signal" not in e, "developer: exitCode 3", body)
        check(b"dropped" not in body, "the failed box's stdout in the answer", body)

        # not for an invoker, nor without the header, nor with another value
        for tok, hdr, what in ((inv, ask, "invoker with the header"), (dev, {}, "developer without the header"),
                               (dev, {"X-Fnbox-Stderr": "yes"}, "X-Fnbox-Stderr: yes")):
            st, body, _ = call(p, "/skills/err@1", b"fail", tok=tok, headers=hdr)
            e = err_of(body)
            check(st == 500 and e.get("type") == "function_error" and "stderr" not in e and "exitCode" not in e,
                  "%s: no stderr, no exit code" % what, st, body)
        # the admin (the default token) may; on /fn/ too
        st, body, _ = call(p, "/fn/skill-err-v1", b"fail", headers=ask)
        check(st == 500 and err_of(body).get("exitCode") == 3 and "ValueError" in err_of(body).get("stderr", ""),
              "admin on /fn/: stderr and exitCode", st, body)

        # only the last 4 KiB
        st, body, _ = call(p, "/skills/err@1", b"noisy 10000", tok=dev, headers=ask)
        s = err_of(body).get("stderr", "")
        check(st == 500 and len(s) == 4096 and s.endswith("END") and not s.startswith("B"),
              "the stderr's last 4 KiB", st, len(s), s[:40], s[-40:])
        # killed by a signal: "signal", no exit code
        st, body, _ = call(p, "/skills/err@1", b"die", tok=dev, headers=ask)
        e = err_of(body)
        check(st == 500 and e.get("signal") == 9 and "exitCode" not in e and e.get("stderr") == "about to die\n",
              "a box killed by SIGKILL", st, body)
        # a timeout (a plain function: /fn/ is the same)
        st, body, _ = call(p, "/fn/slow", b"sleep 10", tok=dev, headers=ask)
        e = err_of(body)
        check(st == 504 and e.get("type") == "timeout" and e.get("stderr") == "sleeping\n", "a box past its timeout",
              st, body)
        st, body, _ = call(p, "/fn/slow", b"sleep 10", tok=inv, headers=ask)
        check(st == 504 and "stderr" not in err_of(body), "an invoker's timeout: no stderr", st, body)
        # success is untouched (the stderr that comes along is dropped), and the connection is reused after
        for _ in range(3):
            st, body, h = call(p, "/skills/err@1", b"ok", tok=dev, headers=ask)
            check(st == 200 and body == b"v1:ok" and h.get("content-type") == "application/octet-stream",
                  "developer asking for stderr, box exits 0", st, body, h)

        # the stderr still reaches fnbox logs
        seen = {}

        def logged():
            rc, seen["out"], _ = p.cli("logs", "skill-err-v1")
            return rc == 0 and "ValueError: bad \ufffd input" in seen["out"] and "about to die" in seen["out"]
        try:
            wait_for("the box's stderr in fnbox logs skill-err-v1", logged, 15)
        except Exception:
            check(False, "the box's stderr is not in fnbox logs skill-err-v1", seen.get("out"))
        # stderr that is not UTF-8 costs its node nothing (its status reports go on)
        time.sleep(6)
        node = p.nodes().get("node-a", {})
        check(str(node.get("state", node.get("status", ""))).lower() == "ready", "node-a after a box's bad stderr",
              node)


@test(limit=240)
def box_calls_skill_through_broker(build):
    with skills_platform(build) as (p, up):
        p.deploy("caller", fn("broker_box.py"), spec={"scale": dict(SCALE), "limits": {"timeout": "20s"}})
        skill_version(p, up, "sum", 1)
        skill_version(p, up, "cand", 1, promote=False)

        def ask(req):
            st, body, _ = p.invoke("caller", json.dumps(req).encode(), timeout=60)
            check(st == 200, "the caller box: %r" % req, st, body)
            return body

        j = json.loads(ask({"cli": ["skill:sum@1", "from a box"]}))
        check(j["rc"] == 0 and j["out"] == "v1:from a box", "fnbox-call skill:sum@1", j)
        out = ask({"call": "skill:sum@1", "body": "python"})
        check(out == b"v1:python", "fnbox.call('skill:sum@1')", out)
        j = json.loads(ask({"raw": ["POST", "/skills/default/sum@1/p", {}, "ns"]}))
        check(j["status"] == 200 and j["body"] == "v1:ns path=/p", "POST /skills/default/sum@1/p", j)

        j = json.loads(ask({"cli": ["skill:sum", "x"]}))
        check(j["rc"] == 0 and j["out"] == "v1:x", "fnbox-call skill:sum: the newest promoted", j)
        j = json.loads(ask({"cli": ["skill:cand", "x"]}))
        check(j["rc"] == 1 and "no promoted version" in j["out"] and "not_found" in j["out"],
              "fnbox-call skill:cand without a promoted version: exit 1, the 404", j)
        j = json.loads(ask({"cli": ["skill:sum@7", "x"]}))
        check(j["rc"] == 1 and "not_found" in j["out"], "fnbox-call skill:sum@7: exit 1, the 404", j)
        # another namespace's skill is out of reach: the broker names the box's own
        j = json.loads(ask({"raw": ["POST", "/skills/other/sum@1", {}, "x"]}))
        check(j["status"] == 404, "POST /skills/other/sum@1 through the broker", j)

        # X-Fnbox-Stderr from a box counts for nothing
        j = json.loads(ask({"raw": ["POST", "/skills/sum@1", {"X-Fnbox-Stderr": "1"}, "fail"]}))
        e = err_of(j["body"].encode())
        check(j["status"] == 500 and e.get("type") == "function_error" and "stderr" not in e and "exitCode" not in e,
              "a broker call with X-Fnbox-Stderr: no stderr", j)

        # audited like any call
        log = p.log("node-a")
        check("fn:default/caller@caller-00001 POST /skills/sum@1" in log, "no audit line for the skill call",
              log[-3000:])
