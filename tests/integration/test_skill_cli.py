#!/usr/bin/env python3
"""tests/integration/test_skill_cli.py: `fnbox skill` (cli/skill_cmd.c).

Starts a real fnbox-controller (tests/integration/fixture.py) on a port the
kernel picks, as test_cli.py does, and drives BUILD/bin/fnbox skill: --help
of every verb, usage errors (each one line, exit 2, nothing sent: the URL
points at a dead port), 401 and 404 from the real controller, and, against
stand-in HTTP servers (test_cli.FakeHTTP), what the CLI sends and prints:
a generate job followed to a candidate, to a failure with the last round's
results, to an error, with -o json; list over pages, list NAME, show, search,
promote (with a 409 tests_failed), deprecate, and call's URLs and exit codes.
Tests that need the controller's skill API are skipped while it answers 404
on GET /v1/skills.

usage: test_skill_cli.py [--build DIR] [--only NAME]... [--valgrind]

Prints "skill-cli: N passed, N failed" (after "(N skipped)" when any were); exits non-zero when a
test failed. Python standard library only (PyYAML, when installed, checks
-o yaml).
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from fixture import Controller, Fail, Tests, check, run_test  # noqa: E402
from test_cli import Env, FakeHTTP, activator_answer, CALL_ERRORS  # noqa: E402

try:
    import yaml  # optional
except ImportError:  # pragma: no cover
    yaml = None

DEAD = "http://127.0.0.1:9"
TESTS = Tests()
test = TESTS.add
NEEDS_API = set()       # tests that need the controller's /v1/skills


def needs_api(fn):
    NEEDS_API.add(fn.__name__)
    return fn


def jdump(v):
    return json.dumps(v).encode()


# ---- help and usage ------------------------------------------------------

SUBS = ["generate", "list", "show", "search", "promote", "deprecate", "call"]


@test
def help_everywhere(t):
    out = t.ok("--help", auth=False)
    check(re.search(r"^  skill\b", out, re.M), "fnbox --help does not list skill", out)
    out = t.ok("skill", "--help", auth=False)
    check(out.startswith("usage: fnbox skill "), "skill --help", out)
    for s in SUBS:
        check(re.search(r"^  %s\b" % s, out, re.M), "skill --help does not list " + s, out)
        out2 = t.ok("skill", s, "--help", auth=False)
        check(out2.startswith("usage: fnbox skill " + s), "skill %s --help" % s, out2)
        t.ok("skill", s, "-h", auth=False)
    out = t.ok("skill", "generate", "--help", auth=False)
    for opt in ["--runtime", "--example", "--model", "--rounds", "--name"]:
        check(opt in out, "generate --help lacks " + opt, out)
    check("--limit" in t.ok("skill", "search", "--help", auth=False), "search --limit")
    out = t.ok("skill", "call", "--help", auth=False)
    check("--data" in out and "--activator" in out and "--tag" not in out, "call's options", out)


USAGE = [
    ["skill"], ["skill", "frobnicate"], ["skill", "-o", "json"],
    ["skill", "generate"], ["skill", "generate", ""], ["skill", "generate", "a", "b"],
    ["skill", "generate", "x" * 8193],
    ["skill", "generate", "t", "--runtime", "ruby"], ["skill", "generate", "t", "--runtime", "python"],
    ["skill", "generate", "t", "--rounds", "0"], ["skill", "generate", "t", "--rounds", "21"],
    ["skill", "generate", "t", "--rounds", "x"], ["skill", "generate", "t", "--rounds", "-1"],
    ["skill", "generate", "t", "--name", "Bad_Name"], ["skill", "generate", "t", "--name", "a" * 41],
    ["skill", "generate", "t", "--name", "-a"], ["skill", "generate", "t", "--model", ""],
    ["skill", "generate", "t", "--model", "m" * 129], ["skill", "generate", "t", "--example", "no arrow"],
    ["skill", "generate", "t", "--example", "x" * 65537 + "=>y"],
    ["skill", "generate", "t", "--example"],
    ["skill", "generate", "t"] + ["--example", "a=>b"] * 21,
    ["skill", "list", "a", "b"], ["skill", "list", "Bad"], ["skill", "list", "a@1"],
    ["skill", "show"], ["skill", "show", "a", "b"], ["skill", "show", "Bad"], ["skill", "show", "a@0"],
    ["skill", "show", "a@x"], ["skill", "show", "a@1234567"], ["skill", "show", "a@-1"], ["skill", "show", "a@"],
    ["skill", "show", "a@1@2"], ["skill", "show", "a" * 41], ["skill", "show", "@1"],
    ["skill", "search"], ["skill", "search", ""], ["skill", "search", "q", "--limit", "0"],
    ["skill", "search", "q", "--limit", "101"], ["skill", "search", "q", "--limit", "x"],
    ["skill", "search", "q" * 1025], ["skill", "search", "a", "b"],
    ["skill", "promote"], ["skill", "promote", "Bad"], ["skill", "promote", "a@0"],
    ["skill", "deprecate"], ["skill", "deprecate", "x y"],
    ["skill", "call"], ["skill", "call", "Bad"], ["skill", "call", "a@b"], ["skill", "call", "a", "--tag", "t"],
    ["skill", "call", "a", "--path", "nope"], ["skill", "call", "a", "-H", "no colon"],
    ["skill", "call", "a", "-X", "GE T"], ["skill", "call", "a", "--activator", "ftp://x"],
    ["skill", "list", "-o", "xml"],
]


@test
def usage_errors(t):
    """Every bad command line is exit 2 with one line, and nothing reaches
    the server: --url points at a dead port, which would be exit 8."""
    for args in USAGE:
        rc, out, err = t.run(*args, "--url", DEAD, "--activator" if "--activator" not in args else "--timeout",
                             DEAD if "--activator" not in args else "5s")
        shown = [a if len(a) < 40 else a[:20] + "...(%d)" % len(a) for a in args]
        check(rc == 2, "%s: exit %d, expected 2" % (shown, rc), err)
        check(len(err.strip().splitlines()) == 1 or args == ["skill"] or args[:3] == ["skill", "-o", "json"],
              "%s: not one line" % shown, err)
        check(out == "" or args == ["skill"], "%s: stdout" % shown, out)
    err = t.fails(2, "skill", "frobnicate", auth=False)
    check("unknown command 'frobnicate'" in err, "unknown sub-verb message", err)
    err = t.fails(2, "skill", "shwo", "x", auth=False)
    check("did you mean 'show'" in err, "suggestion", err)
    err = t.fails(2, "skill", "generate", "t", "--runtime", "ruby", "--url", DEAD)
    check("--runtime 'ruby': expected python3, node or sh" in err, "runtime message", err)
    err = t.fails(2, "skill", "generate", "t", "--example", "plain", "--url", DEAD)
    check("--example 'plain': expected INPUT=>OUTPUT" in err, "example message", err)
    err = t.fails(2, "skill", "show", "a@0", "--url", DEAD)
    check("'a@0' is not a skill" in err and "NAME@VERSION" in err, "version message", err)
    err = t.fails(2, "skill", "generate", "t", "--rounds", "99", "--url", DEAD)
    check("--rounds: expected a number from 1 to 20" in err, "rounds message", err)
    err = t.fails(2, "skill", "show", "a\x1b[31m", "--url", DEAD)
    check("\x1b" not in err, "control characters echoed", err)


@test
def unreachable(t):
    err = t.fails(8, "skill", "list", "--url", DEAD)
    check("cannot reach the server at " + DEAD in err, "message", err)
    t.fails(8, "skill", "generate", "t", "--url", DEAD)
    t.fails(8, "skill", "promote", "a", "--url", DEAD)
    err = t.fails(8, "skill", "call", "a", "--activator", DEAD)
    check("cannot reach the activator" in err, "call message", err)


# ---- against the real controller -------------------------------------------

@test
def real_controller_errors(t):
    """Answers of the real controller that hold with or without its skill
    API: an unknown token is 401 (exit 4), an unknown skill 404 (exit 6)."""
    err = t.fails(4, "skill", "show", "nosuch", env={"FNBOX_TOKEN": "fnb_0000000000000000_nope"})
    check("401" in err and "FNBOX_TOKEN" in err, "401 message", err)
    for args in [["show", "nosuch"], ["show", "nosuch@3"], ["list", "nosuch"], ["promote", "nosuch"],
                 ["deprecate", "nosuch@1"]]:
        err = t.fails(6, "skill", *args)
        check("404" in err and "nosuch" in err, "404 for %s" % args, err)
        check(len(err.strip().splitlines()) == 1, "one line", err)


@test
@needs_api
def real_controller_empty_library(t):
    rc, out, err = t.run("skill", "list")
    check(rc == 0 and out == "" and "No skills in namespace default." in err, "empty list", rc, out, err)
    check(t.json("skill", "list") == {"items": []}, "empty list -o json")
    rc, out, err = t.run("skill", "search", "count words")
    check(rc == 0 and out == "" and "No skill in namespace default matches 'count words'." in err,
          "empty search", rc, out, err)
    s = t.json("skill", "search", "count words")
    check(s.get("items") == [] and isinstance(s.get("semantic"), bool), "search -o json", s)
    err = t.fails(6, "skill", "show", "nosuch")
    check("nosuch" in err, "404 names the skill", err)


@test
@needs_api
def real_controller_generate_without_gateway(t):
    """A real generate job whose model cannot be reached: followed through
    the controller's own job answers to its end, state error, exit 1."""
    with Controller(t.build, extra_args=["--activator", DEAD]) as ctl:
        env = {"FNBOX_URL": ctl.url, "FNBOX_TOKEN": ctl.admin_token}
        rc, out, err = t.run("skill", "generate", "count the words", "--name", "wc", "--example", "a b=>2",
                             "--timeout", "20s", env=env)
        check(rc == 1 and out == "", "exit 1", rc, out, err)
        lines = err.splitlines()
        check(re.match(r"^job [0-9a-f]{32}: generating skill wc in namespace default$", lines[0]), "first line", err)
        check(re.search(r"^fnbox skill generate: wc: job [0-9a-f]{32} ended in state error: .*" + re.escape(DEAD), err,
                        re.M), "the error and the gateway it could not reach", err)
        rc, out, err = t.run("skill", "generate", "count the words", "-o", "json", "--timeout", "20s", env=env)
        j = json.loads(out)
        check(rc == 1 and j["state"] == "error" and j["name"] == "count-the-words" and j["round"] == 1,
              "-o json: the job", rc, j)


# ---- a stand-in controller ---------------------------------------------------

class FakeController:
    """A stand-in control API. jobs: {id: [JOB...]}, each GET of the job
    answers the next one (the last one again at the end); routes: {(method,
    path without query): (status, body)}; every request is recorded."""

    def __init__(self, jobs=None, routes=None, generate=None):
        self.jobs = {k: list(v) for k, v in (jobs or {}).items()}
        self.routes = routes or {}
        self.generate = generate
        self.lock = threading.Lock()
        self.srv = FakeHTTP(self.answer)
        self.url = self.srv.url
        self.seen = self.srv.seen

    def answer(self, method, path, headers, body):
        u = urllib.parse.urlsplit(path)
        with self.lock:
            if method == "POST" and u.path == "/v1/skills/generate" and self.generate:
                status, out = self.generate
                return status, {"Content-Type": "application/json"}, jdump(out)
            m = re.match(r"^/v1/skills/jobs/([^/]+)$", u.path)
            if method == "GET" and m:
                q = self.jobs.get(urllib.parse.unquote(m.group(1)))
                if not q:
                    return 404, {}, jdump({"error": {"type": "not_found", "message": "no job " + m.group(1)}})
                return 200, {}, jdump(q.pop(0) if len(q) > 1 else q[0])
            r = self.routes.get((method, u.path))
            if r is None:
                return 404, {}, jdump({"error": {"type": "not_found", "message": "no route %s %s" % (method, u.path)}})
            status, out = r(u, body) if callable(r) else r
            return status, {}, out if isinstance(out, bytes) else jdump(out)

    def requests(self, method=None, prefix=""):
        return [(m, p, json.loads(b) if b else None) for m, p, _, b in self.seen
                if (method is None or m == method) and p.startswith(prefix)]

    def close(self):
        self.srv.close()


def job(state="running", rnd=0, passed=0, total=0, tin=0, tout=0, msg="", **extra):
    j = {"id": "j-1", "job": "j-1", "namespace": "default", "name": "word-count", "state": state, "round": rnd,
         "rounds": 3, "testsPassed": passed, "testsTotal": total, "tokensIn": tin, "tokensOut": tout,
         "message": msg}
    j.update(extra)
    return j


RESULTS = [
    {"name": "two", "input": "a b", "expected": "2", "actual": "2\n", "passed": True, "status": 200},
    {"name": "slow", "input": "x", "expected": "1", "actual": "", "passed": False, "status": 504, "error": "timeout"},
    {"name": "crash", "input": "", "expected": "0", "actual": "", "passed": False, "status": 500,
     "error": "function_error", "exitCode": 3, "stderr": "IndexError"},
    {"name": "wrong", "input": "a\nb", "expected": "line1\nline2", "actual": "7", "passed": False, "status": 200},
    {"name": "big", "input": "y", "expected": None, "passed": False, "status": 507, "error": "out_of_memory"},
]


@test
def generate_to_candidate(t):
    first = job(msg="asking the model")
    seq = [job(rnd=1, msg="asking the model"), job(rnd=1, passed=3, total=5, tin=1100, tout=312),
           job(rnd=1, passed=3, total=5, tin=1100, tout=312),          # unchanged: no new line
           job(rnd=2, passed=5, total=5, tin=2410, tout=640),
           job("passed", rnd=2, passed=5, total=5, tin=2410, tout=640, msg="candidate word-count@1", version=1,
               evidence=[{"round": 1, "results": RESULTS}, {"round": 2, "results": RESULTS[:1]}])]
    fake = FakeController(jobs={"j-1": seq}, generate=(202, first))
    try:
        rc, out, err = t.run("skill", "generate", "Count the words", "--example", "hello world=>2",
                             "--example", "a=>b=>c", "--example", "=>0", "--runtime", "node", "--model", "small",
                             "--rounds", "3", "--name", "word-count", "-n", "team-a", env={"FNBOX_URL": fake.url})
        check(rc == 0, "exit %d" % rc, out, err)
        check(out == "word-count@1: candidate, passed 5/5 tests in 2 rounds (3050 tokens)\n", "stdout", out)
        lines = err.splitlines()
        want = ["job j-1: generating skill word-count in namespace team-a",
                "starting: asking the model",
                "round 1/3: 0/0 tests passed, 0 tokens (0 in, 0 out): asking the model",
                "round 1/3: 3/5 tests passed, 1412 tokens (1100 in, 312 out)",
                "round 2/3: 5/5 tests passed, 3050 tokens (2410 in, 640 out)",
                "round 2/3: 5/5 tests passed, 3050 tokens (2410 in, 640 out): candidate word-count@1",
                "Promote it with: fnbox skill promote word-count@1"]
        check(lines == want, "progress lines", "\n".join(lines))
        posts = fake.requests("POST")
        check(len(posts) == 1 and posts[0][1] == "/v1/skills/generate?namespace=team-a", "POST path", posts)
        body = posts[0][2]
        check(body == {"task": "Count the words", "runtime": "node", "model": "small", "rounds": 3,
                       "name": "word-count",
                       "examples": [{"input": "hello world", "output": "2"}, {"input": "a", "output": "b=>c"},
                                    {"input": "", "output": "0"}]}, "POST body", body)
        gets = fake.requests("GET")
        check(len(gets) == 5 and all(g[1] == "/v1/skills/jobs/j-1?wait=30" for g in gets), "long polls", gets)
    finally:
        fake.close()
    # a controller that counts changes is told the last one the CLI saw
    seq = [job(rnd=1, changes=4), job(rnd=1, passed=1, total=2, changes=7),
           job("passed", rnd=1, passed=2, total=2, version=2, changes=9)]
    fake = FakeController(jobs={"j-1": seq}, generate=(202, job(changes=2)))
    try:
        rc, out, err = t.run("skill", "generate", "t", env={"FNBOX_URL": fake.url})
        check(rc == 0, "exit", rc, err)
        gets = [g[1] for g in fake.requests("GET")]
        check(gets == ["/v1/skills/jobs/j-1?wait=30&after=%d" % n for n in (2, 4, 7)], "after=CHANGES", gets)
    finally:
        fake.close()


@test
def generate_defaults_and_wait(t):
    fake = FakeController(jobs={"j-1": [job("passed", rnd=1, passed=2, total=2, version=4)]},
                          generate=(202, job()))
    try:
        rc, out, err = t.run("skill", "generate", "échange", "--timeout", "10s", env={"FNBOX_URL": fake.url})
        check(rc == 0 and out.startswith("word-count@4: candidate"), "exit/stdout", rc, out, err)
        body = fake.requests("POST")[0][2]
        check(body == {"task": "échange", "examples": []}, "only the task is sent by default", body)
        check(fake.requests("GET")[0][1] == "/v1/skills/jobs/j-1?wait=5", "wait is half of --timeout",
              fake.requests("GET"))
    finally:
        fake.close()


@test
def generate_fails(t):
    seq = [job(rnd=1, passed=1, total=5),
           job("failed", rnd=3, passed=1, total=5, msg="no round passed its tests",
               evidence=[{"round": 1, "results": []}, {"round": 3, "results": RESULTS}])]
    fake = FakeController(jobs={"j-1": seq}, generate=(202, job()))
    try:
        rc, out, err = t.run("skill", "generate", "t", env={"FNBOX_URL": fake.url})
        check(rc == 9 and out == "", "exit 9, nothing on stdout", rc, out, err)
        check("fnbox skill generate: word-count: no candidate after 3 rounds: no round passed its tests" in err,
              "failure line", err)
        for row in [r"^two\s+ok\s+2\s+2\\n$", r"^slow\s+FAIL timeout\s+1\s*$", r"^crash\s+FAIL exit 3\s+0\s*$",
                    r"^wrong\s+FAIL wrong output\s+line1\\nline2\s+7$", r"^big\s+FAIL out_of_memory\s+\(exit 0\)\s+-$"]:
            check(re.search(row, err, re.M), "results row " + row, err)
        rc, out, err = t.run("skill", "generate", "t", "-o", "json", env={"FNBOX_URL": fake.url})
        check(rc == 9, "exit 9 with -o json", rc, err)
        j = json.loads(out)
        check(j["state"] == "failed" and j["evidence"][1]["results"] == RESULTS, "the whole job on stdout", j)
    finally:
        fake.close()


@test
def generate_unusable_answer_and_error(t):
    seq = [job("failed", rnd=2, msg="rounds used up",
               evidence=[{"round": 2, "parseError": "no code: the answer has no fenced code block", "results": []}])]
    fake = FakeController(jobs={"j-1": seq}, generate=(202, job()))
    try:
        rc, out, err = t.run("skill", "generate", "t", env={"FNBOX_URL": fake.url})
        check(rc == 9 and "the last answer could not be used: no code: the answer has no fenced code block" in err,
              "parse error shown", rc, err)
    finally:
        fake.close()
    fake = FakeController(jobs={"j-1": [job("error", msg="no upstream for model small")]}, generate=(202, job()))
    try:
        rc, out, err = t.run("skill", "generate", "t", env={"FNBOX_URL": fake.url})
        check(rc == 1 and "job j-1 ended in state error: no upstream for model small" in err, "error state", rc, err)
        if yaml is not None:
            rc, out, err = t.run("skill", "generate", "t", "-o", "yaml", env={"FNBOX_URL": fake.url})
            check(rc == 1 and yaml.safe_load(out)["state"] == "error", "-o yaml", rc, out)
    finally:
        fake.close()


@test
def generate_server_errors(t):
    for status, typ, code in [(401, "unauthenticated", 4), (403, "forbidden", 5), (400, "invalid_request", 1),
                              (503, "unavailable", 1)]:
        fake = FakeController(generate=(status, {"error": {"type": typ, "message": "because", "field": "model"}}))
        try:
            err = t.fails(code, "skill", "generate", "t", env={"FNBOX_URL": fake.url})
            check("%d %s: because (field model)" % (status, typ) in err, "message for %d" % status, err)
        finally:
            fake.close()
    for answer in [{"state": "running"}, {"job": "bad id/../x"}, {"job": ""}]:
        fake = FakeController(generate=(202, answer))
        try:
            err = t.fails(1, "skill", "generate", "t", env={"FNBOX_URL": fake.url})
            check("names no valid job" in err, "no job id", err)
        finally:
            fake.close()
    # the job is lost while followed (a controller that restarted)
    fake = FakeController(generate=(202, job()))
    try:
        err = t.fails(6, "skill", "generate", "t", env={"FNBOX_URL": fake.url})
        check("job: 404 not_found: no job j-1" in err, "lost job", err)
    finally:
        fake.close()


# ---- list, show, search, promote, deprecate ----------------------------------

SKILLS = [{"name": "csv-stats", "namespace": "default", "version": None, "latestVersion": 3, "latestState": "candidate",
           "runtime": "python3", "description": "Reads a CSV\non stdin and prints per-column statistics " + "x" * 80,
           "createdAt": "2026-01-01T00:00:00.000Z"},
          {"name": "word-count", "namespace": "default", "version": 1, "latestVersion": 1, "latestState": "promoted",
           "runtime": "python3", "description": "Counts words.", "createdAt": "2026-01-01T00:00:00.000Z"}]

VERSION = {"name": "word-count", "namespace": "default", "version": 2, "state": "promoted", "runtime": "python3",
           "codeDigest": "sha256:" + "ab" * 32, "description": "Counts words.\x1b[31m", "parent": 1,
           "createdAt": "2026-01-01T00:00:00.000Z", "createdBy": "token:0123456789abcdef",
           "promotedAt": 1767225600000, "promotedBy": "token:fedcba9876543210", "deprecatedAt": None,
           "doc": {"tests": [{"name": "two", "input": "a b", "expected": "2"},
                             {"name": "runs", "input": "", "expected": None}],
                   "provenance": {"model": "small", "upstream": "local", "promptDigest": "sha256:" + "cd" * 32,
                                  "rounds": 2, "tokensIn": 2410, "tokensOut": 640},
                   "evidence": [{"round": 1, "model": "small", "tokensIn": 1100, "tokensOut": 312, "results": RESULTS},
                                {"round": 2, "model": "small", "tokensIn": 1310, "tokensOut": 328,
                                 "results": RESULTS[:1]}]}}


def list_pages(u, body):
    q = urllib.parse.parse_qs(u.query)
    if q.get("after") == ["p2"]:
        return 200, {"items": SKILLS[1:]}
    return 200, {"items": SKILLS[:1], "next": "p2"}


@test
def list_and_show(t):
    fake = FakeController(routes={("GET", "/v1/skills"): list_pages,
                                  ("GET", "/v1/skills/word-count/versions"): (200, {"items": [VERSION]}),
                                  ("GET", "/v1/skills/word-count"): (200, VERSION)})
    env = {"FNBOX_URL": fake.url}
    try:
        out = t.ok("skill", "list", env=env)
        lines = out.splitlines()
        check(lines[0].split() == ["NAME", "VERSION", "LATEST", "STATE", "RUNTIME", "AGE", "DESCRIPTION"], "header", out)
        check(re.match(r"^csv-stats\s+-\s+3\s+candidate\s+python3\s+\S+\s+Reads a CSV\\non stdin", lines[1]), "row 1", out)
        check(lines[1].endswith("...") and re.match(r"^word-count\s+1\s+1\s+promoted", lines[2]), "rows", out)
        check(t.json("skill", "list", env=env) == {"items": SKILLS}, "-o json has every page")
        gets = [p for m, p, _ in fake.requests("GET", "/v1/skills?")]
        check(gets[:2] == ["/v1/skills?namespace=default&limit=1000", "/v1/skills?namespace=default&limit=1000&after=p2"],
              "pages", gets)
        if yaml is not None:
            check(yaml.safe_load(t.ok("skill", "list", "-o", "yaml", env=env)) == {"items": SKILLS}, "-o yaml")
        out = t.ok("skill", "list", "word-count", env=env)
        check(re.search(r"^2\s+promoted\s+python3\s+abababababab\s+\S+\s+Counts words\.\?\[31m$", out, re.M),
              "versions table", out)
        out = t.ok("skill", "show", "word-count@2", env=env, auth=True)
        check(fake.requests("GET", "/v1/skills/word-count?")[-1][1] == "/v1/skills/word-count?namespace=default&version=2",
              "show path", fake.requests("GET"))
        for want in [r"^Name:\s+word-count$", r"^Version:\s+2 \(promoted\)$", r"^Description:\s+Counts words\.\?\[31m$",
                     r"^Code:\s+sha256:(ab){32}$", r"^Parent:\s+1$",
                     r"^Created:\s+2026-01-01T00:00:00.000Z \(\S+ ago\) by token:0123456789abcdef$",
                     r"^Promoted:\s+2026-01-01T00:00:00.000Z \(\S+ ago\) by token:fedcba9876543210$",
                     r"^Deprecated:\s+-$", r"^Model:\s+small$", r"^Tokens in:\s+2410$",
                     r"^two\s+a b\s+2$", r"^runs\s+\(exit 0\)$", r"^1\s+small\s+1100/312\s+1/5",
                     r"^2\s+small\s+1310/328\s+1/1"]:
            check(re.search(want, out, re.M), "show: " + want, out)
        check("\x1b" not in out, "control characters from the server", out)
        t.ok("skill", "show", "word-count", env=env)
        check(fake.requests("GET", "/v1/skills/word-count?")[-1][1] == "/v1/skills/word-count?namespace=default",
              "NAME alone sends no version")
        check(t.json("skill", "show", "word-count", env=env) == VERSION, "show -o json")
        err = t.fails(6, "skill", "show", "other@3", env=env)
        check("other@3: 404 not_found" in err, "404 names NAME@VERSION", err)
    finally:
        fake.close()


@test
def search(t):
    hits = {"items": [{"name": "word-count", "version": 1, "description": "Counts words.", "runtime": "python3",
                       "score": 0.9123, "lexical": 0.87, "semantic": 0.954}], "semantic": False, "tookMs": 0.4}
    fake = FakeController(routes={("GET", "/v1/skills/search"):
                                  lambda u, b: (200, hits if "words" in urllib.parse.parse_qs(u.query)["q"][0]
                                                else {"items": [], "semantic": False})})
    env = {"FNBOX_URL": fake.url}
    try:
        rc, out, err = t.run("skill", "search", "how many words & lines?", "--limit", "3", env=env)
        check(rc == 0 and re.search(r"^word-count\s+1\s+0\.912\s+0\.870\s+0\.954\s+python3\s+Counts words\.$", out, re.M),
              "search table", rc, out, err)
        check("lexical ranking only" in err, "lexical note", err)
        p = fake.requests("GET")[-1][1]
        check(p == "/v1/skills/search?namespace=default&q=how%20many%20words%20%26%20lines%3F&limit=3", "query", p)
        check(t.json("skill", "search", "words", env=env) == hits, "-o json")
        rc, out, err = t.run("skill", "search", "nothing", "-n", "team-a", env=env)
        check(rc == 0 and out == "" and "No skill in namespace team-a matches 'nothing'." in err, "empty", rc, out, err)
        check("limit" not in fake.requests("GET")[-1][1], "no --limit, no limit sent")
    finally:
        fake.close()


def promote(u, body):
    b = json.loads(body)
    if b.get("version") == 3:
        return 409, {"error": {"type": "tests_failed", "message": "1 of 2 tests failed"}, "results": RESULTS[:2]}
    if b.get("version") == 4:
        return 409, {"error": {"type": "conflict", "message": "already promoted"}}
    return 200, dict(VERSION, version=b.get("version", 2), results=RESULTS[:1] if b else [])


@test
def promote_and_deprecate(t):
    fake = FakeController(routes={("POST", "/v1/skills/word-count/promote"): promote,
                                  ("POST", "/v1/skills/word-count/deprecate"):
                                  lambda u, b: (200, {"name": "word-count", "deprecated": json.loads(b).get("version") != 5 and
                                                      [json.loads(b).get("version")] or []})
                                  if json.loads(b) else (200, {"name": "word-count", "deprecated": [1, 2]})})
    env = {"FNBOX_URL": fake.url}
    try:
        out = t.ok("skill", "promote", "word-count@2", env=env)
        check(out == "word-count@2: promoted (1/1 tests passed again)\n", "promote", out)
        check(fake.requests("POST")[-1][2] == {"version": 2}, "version sent", fake.requests("POST"))
        check(t.ok("skill", "promote", "word-count", env=env) == "word-count@2: promoted\n", "promote NAME")
        check(fake.requests("POST")[-1][2] == {}, "no version: {}", fake.requests("POST"))
        rc, out, err = t.run("skill", "promote", "word-count@3", env=env)
        check(rc == 9 and out == "" and "word-count@3: 409 tests_failed: 1 of 2 tests failed" in err
              and re.search(r"^slow\s+FAIL timeout", err, re.M) and re.search(r"^two\s+ok", err, re.M),
              "tests_failed", rc, out, err)
        err = t.fails(7, "skill", "promote", "word-count@4", env=env)
        check("409 conflict: already promoted" in err, "another 409", err)
        err = t.fails(6, "skill", "promote", "other", env=env)
        check("other: 404" in err, "404", err)
        j = t.json("skill", "promote", "word-count@2", env=env)
        check(j["version"] == 2 and j["name"] == "word-count", "promote -o json", j)
        check(t.ok("skill", "deprecate", "word-count@2", env=env) == "word-count@2: deprecated\n", "deprecate @2")
        check(fake.requests("POST")[-1][2] == {"version": 2}, "deprecate version", fake.requests("POST"))
        out = t.ok("skill", "deprecate", "word-count", env=env)
        check(out == "word-count: deprecated versions 1, 2\n", "deprecate all", out)
        out = t.ok("skill", "deprecate", "word-count@5", env=env)
        check(out == "word-count@5: already deprecated\n", "deprecate again", out)
        check(fake.requests("POST")[-1][1] == "/v1/skills/word-count/deprecate?namespace=default", "path")
        t.ok("skill", "deprecate", "word-count", "-n", "team-b", env=env)
        check(fake.requests("POST")[-1][1] == "/v1/skills/word-count/deprecate?namespace=team-b", "namespace")
    finally:
        fake.close()


# ---- call ----------------------------------------------------------------------

def skills_activator(method, path, headers, body):
    """test_cli's stand-in activator, with /skills/NAME@V answered as NAME."""
    return activator_answer(method, path, headers, body) if "/err-" not in path else \
        activator_answer(method, re.sub(r"@\d+$", "", path), headers, body)


@test
def call(t):
    srv = FakeHTTP(skills_activator)
    try:
        def echo(*args, **kw):
            return json.loads(t.ok("skill", "call", *args, "--activator", srv.url, **kw))
        e = echo("word-count", "-d", "hello there")
        check(e["method"] == "POST" and e["path"] == "/skills/word-count" and e["body"] == "hello there"
              and e["headers"]["authorization"] == "Bearer " + t.ctl.admin_token, "plain call", e)
        e = echo("word-count@3")
        check(e["method"] == "GET" and e["path"] == "/skills/word-count@3", "NAME@V", e)
        e = echo("word-count@12", "-n", "team-a", "--path", "/sub?x=1", "-X", "PUT", "-H", "X-A: b")
        check(e["path"] == "/skills/team-a/word-count@12/sub?x=1" and e["method"] == "PUT"
              and e["headers"].get("x-a") == "b", "namespace, --path, -X, -H", e)
        f = os.path.join(t.tmp, "in.bin")
        with open(f, "wb") as fh:
            fh.write(bytes(range(256)))
        e = echo("word-count", "-d", "@" + f)
        check(e["body"].encode("latin-1") == bytes(range(256)), "-d @FILE")
        for i, (_, _, code, words) in enumerate(CALL_ERRORS):
            rc, out, err = t.run("skill", "call", "err-%d" % i, "--activator", srv.url)
            check(rc == code and words in err and "fnbox skill call: err-%d: " % i in err, "error %d" % i, rc, err)
            check("fnbox logs" not in err, "no logs hint without a version", err)
        rc, out, err = t.run("skill", "call", "err-0@2", "--activator", srv.url)
        check(rc == 9 and "its stderr: fnbox logs skill-err-0-v2" in err, "logs hint with a version", rc, err)
    finally:
        srv.close()


@test
def bash_completion(t):
    script = os.path.join(ROOT, "cli", "fnbox.bash")
    fake = FakeController(routes={("GET", "/v1/skills"): (200, {"items": SKILLS})})

    def complete(*words):
        import subprocess
        prog = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fnbox; '
                'printf "%s\\n" "${COMPREPLY[@]}"')
        env = t.base_env()
        env.update(PATH=os.path.join(t.build, "bin") + ":" + env.get("PATH", ""),
                   FNBOX_URL=fake.url, FNBOX_TOKEN=t.ctl.admin_token)
        p = subprocess.run(["bash", "-c", prog, "bash", script, *words], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check(p.returncode == 0, "completion failed", p.stderr.decode())
        return p.stdout.decode().split()
    try:
        check(complete("fnbox", "sk") == ["skill"], "skill verb")
        check(complete("fnbox", "skill", "") == SUBS, "sub-verbs", complete("fnbox", "skill", ""))
        check(complete("fnbox", "-o", "json", "skill", "se") == ["search"], "after a global option")
        check(complete("fnbox", "skill", "generate", "t", "--runtime", "") == ["python3", "node", "sh"], "runtimes")
        check("--example" in complete("fnbox", "skill", "generate", "t", "--"), "generate options")
        check(complete("fnbox", "skill", "search", "q", "--l") == ["--limit"], "search options")
        check("--activator" in complete("fnbox", "skill", "call", "x", "--"), "call options")
        check(complete("fnbox", "skill", "show", "") == ["csv-stats", "word-count"], "skill names",
              complete("fnbox", "skill", "show", ""))
        check(complete("fnbox", "skill", "call", "w") == ["word-count"], "call completes skill names")
        check(complete("fnbox", "skill", "generate", "") == [], "no names for generate's task")
    finally:
        fake.close()


def api_available(ctl):
    from fixture import api
    status, _ = api("GET", ctl.url + "/v1/skills?namespace=default", token=ctl.admin_token)
    return status != 404


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--valgrind", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if not os.access(os.path.join(build, "bin", "fnbox"), os.X_OK):
        print("skill-cli: no %s/bin/fnbox (build it first)" % build)
        print("skill-cli: 0 passed, 1 failed")
        return 1
    passed = failed = skipped = 0
    tmp = tempfile.mkdtemp(prefix="fnbox-skill-cli-")
    try:
        with Controller(build) as ctl:
            t = Env(build, ctl, tmp, args.valgrind)
            has_api = api_available(ctl)
            for fn in TESTS.chosen(args.only):
                if fn.__name__ in NEEDS_API and not has_api:
                    print("skip %s (the controller has no /v1/skills yet)" % fn.__name__)
                    skipped += 1
                elif run_test(fn, t):
                    passed += 1
                else:
                    failed += 1
            if failed:
                print("--- controller log (tail) ---\n" + ctl.log()[-3000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if skipped:
        print("(%d skipped)" % skipped)
    print("skill-cli: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
