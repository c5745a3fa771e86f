#!/usr/bin/env python3
"""tests/skills/run.py: the skill library, end to end (docs/skills.md).

One platform (tests/dataplane/fixture.py: controller, one runtime, the
activator with its LLM gateway) and a scripted OpenAI-compatible upstream
(tests/gateway/upstream.py) that plays the model: each test scripts the
answers, and the platform does the rest for real. Generate jobs deploy each
round's code and run its tests in fresh jails through the activator; what
failed goes back to the model; a passing round becomes a candidate;
promotion runs the tests again and serves the skill at /skills/NAME; a
skill calls another through its broker; search ranks a library of a few
hundred skills written into the store.

Prints one line per test and "skills: N passed, N failed"; exits non-zero
when a test failed. Needs root. Python standard library only.

usage: run.py [--build DIR] [--only SUBSTRING]...
"""
import argparse
import hashlib
import json
import re
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "dataplane"))
sys.path.insert(0, os.path.join(ROOT, "tests", "gateway"))
import fixture  # noqa: E402
from upstream import Upstream  # noqa: E402

TESTS = []


class Fail(Exception):
    pass


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, msg, *detail):
    if not cond:
        raise Fail(msg + "".join("\n    " + str(d)[:3000] for d in detail))


def gateway_config(up):
    return """\
upstreams:
  - name: model
    base_url: %s
    local: true
    models: [coder-1, embed-1]
aliases:
  - name: coder
    upstreams: [{upstream: model, model: coder-1}]
  - name: embed
    upstreams: [{upstream: model, model: embed-1}]
""" % up.base_url


def answer(code, tests, desc="Counts the words of its input.", lang="python"):
    """A model's answer in the shape the prompt asks for."""
    return ("Here is the box.\n\n```%s\n%s```\n\nDescription: %s\n\nTests:\n```json\n%s\n```\n"
            % (lang, code, desc, json.dumps(tests)))


WC_GOOD = "import sys\nprint(len(sys.stdin.read().split()))\n"
WC_BAD = "import sys\nsys.stdin.read()\nprint(0)\n"
WC_TESTS = [{"name": "two", "input": "a b", "expected": "2"},
            {"name": "none", "input": "", "expected": "0"}]


class Ctx:
    def __init__(self, p, up):
        self.p, self.up = p, up

    def generate(self, body, timeout=180):
        """Start a job and poll it to its end: the job's last JSON."""
        st, job = self.p.api("POST", "/v1/skills/generate", body)
        check(st == 202, "generate: expected 202", st, job)
        return self.generate_wait(job["id"], timeout)

    def generate_wait(self, job_id, timeout=180):
        job = {"id": job_id}
        deadline = time.monotonic() + timeout
        changes = None
        seen = []
        while time.monotonic() < deadline:
            q = "?wait=10" + ("&after=%d" % changes if changes is not None else "")
            st, job = self.p.api("GET", "/v1/skills/jobs/" + job["id"] + q, timeout=20)
            check(st == 200, "job: expected 200", st, job)
            seen.append(job.get("message"))
            if job["state"] != "running":
                job["_seen"] = seen
                return job
            changes = job.get("changes")
        raise Fail("the job did not end in %ds: %s" % (timeout, job))


# ---- generate and verify ----------------------------------------------------------

@test
def first_fails_second_passes(x):
    x.up.reset()
    x.up.script([{"reply": answer(WC_BAD, WC_TESTS)}, {"reply": answer(WC_GOOD, WC_TESTS)}], only="/chat/completions")
    job = x.generate({"task": "count the words of the input", "name": "wordcount", "model": "coder",
                      "examples": [{"input": "x y z", "output": "3"}]})
    check(job["state"] == "passed" and job["version"] == 1, "expected a candidate wordcount@1", job)
    ev = job["evidence"]
    check(len(ev) == 2 and job["round"] == 2, "expected two rounds of evidence", ev)
    r1 = {r["name"]: r for r in ev[0]["results"]}
    check(r1["two"]["passed"] is False and r1["two"]["actual"].strip() == "0" and r1["two"]["expected"] == "2",
          "round 1's failing test with its expected and actual output", r1)
    check(r1["none"]["passed"] is True, "round 1: the test that passed anyway", r1)
    check(all(r["passed"] for r in ev[1]["results"]) and len(ev[1]["results"]) == 3,
          "round 2: the two tests and the example pass", ev[1]["results"])
    check(job["testsPassed"] == 3 and job["testsTotal"] == 3, "progress: tests passed", job)
    check(job["tokensIn"] > 0 and job["tokensOut"] > 0, "tokens counted", job)
    check(len(set(filter(None, job["_seen"]))) >= 2, "progress visible while it ran", job["_seen"])
    # the second prompt says what failed
    reqs = [r for r in x.up.requests if r["path"].endswith("/chat/completions")]
    check(len(reqs) == 2, "two chat calls", [r["path"] for r in x.up.requests])
    second = json.dumps(reqs[1]["body"]["messages"])
    check("WC_BAD" not in second and "print(0)" in second and '\\"two\\"' in second or "two" in second,
          "the second prompt carries the failed code and test", second[:2000])
    st, v = x.p.api("GET", "/v1/skills/wordcount?version=1")
    check(st == 200 and v["state"] == "candidate" and v["runtime"] == "python3", "the candidate", st, v)
    check(v["code"] == WC_GOOD and len(v["tests"]) == 3 and len(v["evidence"]) == 2, "code, tests, evidence", v)
    prov = v["provenance"]
    check(prov["model"] and prov["upstream"] == "model" and len(prov["promptDigest"]) == 64 and prov["rounds"] == 2,
          "provenance: model, upstream, prompt digest, rounds", prov)
    check(v["codeDigest"].startswith("sha256:"), "code digest", v)
    st, body = x.p.api("GET", "/v1/skills/wordcount")
    check(st == 404 and "no promoted version" in json.dumps(body), "NAME alone: newest promoted only", st, body)


@test
def answer_without_code(x):
    x.up.reset()
    x.up.script([{"reply": "I am sorry, I cannot write code for that."}, {"reply": answer(WC_GOOD, WC_TESTS)}], only="/chat/completions")
    job = x.generate({"task": "count words again", "name": "wc-two", "model": "coder", "rounds": 2})
    check(job["state"] == "passed", "expected a pass in round 2", job)
    e0 = job["evidence"][0]
    check(e0.get("parseError") and not e0.get("code"), "round 1: the unusable answer is a failed round", e0)
    reqs = [r for r in x.up.requests if r["path"].endswith("/chat/completions")]
    check("no" in json.dumps(reqs[1]["body"]["messages"]).lower(), "round 2's prompt says why", reqs[1])


@test
def loop_and_escape_are_failed_rounds(x):
    x.up.reset()
    loop = "while True:\n    pass\n"
    escape = ("import socket, sys\n"
              "try:\n    open('/etc/shadow').read()\n    print('read shadow')\nexcept OSError as e:\n"
              "    print('shadow:', e, file=sys.stderr)\n"
              "s = socket.create_connection(('10.1.2.3', 80), timeout=2)\nprint('connected')\n")
    tests = [{"name": "one", "input": "a", "expected": "1"}]
    x.up.script([{"reply": answer(loop, tests)}, {"reply": answer(escape, tests)}], only="/chat/completions")
    t0 = time.monotonic()
    job = x.generate({"task": "count words, badly", "name": "bad-box", "model": "coder", "rounds": 2,
                      "limits": {"timeoutMs": 1000}})
    check(job["state"] == "failed" and job["version"] is None, "no candidate", job)
    r1 = job["evidence"][0]["results"][0]
    check(r1["error"] == "timeout" and r1["status"] == 504, "the loop: stopped at its timeout", r1)
    r2 = job["evidence"][1]["results"][0]
    check(r2["error"] == "function_error" and not r2["passed"], "the escape: a failed round", r2)
    check("connected" not in json.dumps(r2) and "read shadow" not in json.dumps(r2), "nothing escaped", r2)
    if "stderr" in r2:
        check("shadow:" in r2["stderr"], "stderr comes back for the next round", r2)
    check(time.monotonic() - t0 < 60, "the job ended promptly")


# ---- the library ----------------------------------------------------------------------

def skill_call(x, path, body=b"", token=fixture.ADMIN):
    return x.p.invoke(None, body, path=path, token=token, timeout=60)


@test
def promote_call_deprecate(x):
    st, body = x.p.api("POST", "/v1/skills/wordcount/promote", {"version": 1}, timeout=120)
    check(st == 200 and body["state"] == "promoted" and body["promotedBy"].startswith("token:"),
          "promotion", st, body)
    check(all(r["passed"] for r in body["results"]), "promotion re-ran the tests", body["results"])
    st, body = x.p.api("POST", "/v1/skills/wordcount/promote", {"version": 1})
    check(st == 409, "promoting twice: 409", st, body)
    st, v = x.p.api("GET", "/v1/skills/wordcount")
    check(st == 200 and v["version"] == 1, "NAME alone: the promoted version", st, v)
    status, out, _ = fixture.wait_for("/skills/wordcount", lambda: (lambda r: r if r[0] == 200 else None)(
        skill_call(x, "/skills/wordcount", b"one two three four")), 30)
    check(out.strip() == b"4", "/skills/wordcount answers", out)
    status, out, _ = skill_call(x, "/skills/default/wordcount@1", b"a b")
    check(status == 200 and out.strip() == b"2", "/skills/NAMESPACE/NAME@1", status, out)
    st, lst = x.p.api("GET", "/v1/skills")
    names = {i["name"]: i for i in lst["items"]}
    check(names.get("wordcount", {}).get("version") == 1, "list: wordcount@1 promoted", lst)
    # an invoker may call and read but not promote
    st, tok = x.p.api("POST", "/v1/tokens", {"role": "invoker", "namespaces": ["default"]})
    check(st == 201, "invoker token", st, tok)
    inv = tok["token"]
    req = urllib.request.Request(x.p.api_url + "/v1/skills/wc-two/promote", data=b"{}", method="POST",
                                 headers={"Authorization": "Bearer " + inv})
    try:
        urllib.request.urlopen(req, timeout=10)
        check(False, "an invoker promoted a skill")
    except urllib.error.HTTPError as e:
        check(e.code == 403, "invoker promote: 403", e.code)
    st, body = x.p.api("POST", "/v1/skills/wordcount/deprecate", {})
    check(st == 200 and body["deprecated"] == [1], "deprecate", st, body)
    st, v = x.p.api("GET", "/v1/skills/wordcount?version=1")
    check(v["state"] == "deprecated", "deprecated state", v)

    def gone():
        s, b, _ = skill_call(x, "/skills/wordcount", b"a")
        return (s, b) if s == 404 else None
    fixture.wait_for("/skills/wordcount to be gone", gone, 20)
    status, out, _ = skill_call(x, "/skills/wordcount@1", b"a b c")
    check(status == 200 and out.strip() == b"3", "a deprecated version still answers by number", status, out)
    st, body = x.p.api("POST", "/v1/functions", {"manifest": "apiVersion: fnbox.dev/v1\nkind: Function\n"
                                                 "metadata: {name: skill-x-v1}\nspec: {runtime: python3, code: main.py}\n",
                                                 "codeDigest": v["codeDigest"]})
    check(st == 422 and "skill" in json.dumps(body), "a user deploy named skill-*: refused", st, body)


@test
def skill_calls_skill(x):
    x.up.reset()
    double = ("import subprocess, sys\n"
              "data = sys.stdin.read()\n"
              "out = subprocess.run(['python3', '/run/fnbox/fnbox-call', 'skill:wordcount@1', '-'], input=data,\n"
              "                     capture_output=True, text=True)\n"
              "if out.returncode != 0:\n"
              "    sys.exit('wordcount: ' + out.stdout + out.stderr)\n"
              "print(2 * int(out.stdout.strip()))\n")
    tests = [{"name": "three", "input": "a b c", "expected": "6"}]
    x.up.script([{"reply": answer(double, tests, desc="Twice the word count, through the wordcount skill.")}], only="/chat/completions")
    job = x.generate({"task": "twice the word count, reusing wordcount", "name": "double-count", "model": "coder",
                      "rounds": 1})
    check(job["state"] == "passed", "a skill that calls a skill through its broker", job)
    st, body = x.p.api("POST", "/v1/skills/double-count/promote", {}, timeout=120)
    check(st == 200, "promote double-count", st, body)
    status, out, _ = fixture.wait_for("/skills/double-count", lambda: (lambda r: r if r[0] == 200 else None)(
        skill_call(x, "/skills/double-count", b"x y z w")), 30)
    check(out.strip() == b"8", "/skills/double-count", out)
    # the prompt of a later job shows the library's skills
    x.up.reset()
    x.up.script([{"reply": "no code"}], only="/chat/completions")
    x.generate({"task": "count the words of a text twice", "name": "another", "model": "coder", "rounds": 1})
    reqs = [r for r in x.up.requests if r["path"].endswith("/chat/completions")]
    check("double-count" in json.dumps(reqs[0]["body"]["messages"]), "the prompt lists existing skills", reqs[0])


@test
def the_cli(x):
    """fnbox skill list, show, search and call against the library built above."""
    out = x.p.cli_ok("skill", "list")
    check("double-count" in out and "wordcount" in out, "fnbox skill list", out)
    v = json.loads(x.p.cli_ok("skill", "show", "double-count", "-o", "json"))
    check(v["name"] == "double-count" and v["state"] == "promoted", "fnbox skill show -o json", v)
    out = x.p.cli_ok("skill", "search", "twice the word count")
    check("double-count" in out.splitlines()[1], "fnbox skill search: double-count first", out)
    out = x.p.cli_ok("skill", "call", "double-count", "-d", "a b")
    check(out.strip() == "4", "fnbox skill call", out)
    rc, out, err = x.p.cli("skill", "call", "nosuch-skill", "-d", "x")
    check(rc != 0 and "nosuch-skill" in out + err, "fnbox skill call of no skill fails", rc, out, err)


@test
def pandas_in_the_jail(x):
    """python3 boxes can use pandas and numpy from the system's packages."""
    x.up.reset()
    code = ("import io, sys\nimport numpy as np\nimport pandas as pd\n"
            "df = pd.read_csv(io.StringIO(sys.stdin.read()))\n"
            "print(int(np.round(df['tax'].sum())))\n")
    tests = [{"name": "two rows", "input": "item,tax\na,1.5\nb,2.5\n", "expected": "4"}]
    x.up.script([{"reply": answer(code, tests, desc="Sums the tax column of a CSV.")}], only="/chat/completions")
    job = x.generate({"task": "sum the tax column of a CSV", "name": "csv-tax", "model": "coder", "rounds": 1,
                      "limits": {"timeoutMs": 20000}})
    check(job["state"] == "passed", "a pandas box passes in the jail", job)


SALES_CODE = ("import pandas as pd\n"
              "df = pd.read_csv('/input/sales.csv')\n"
              "by = df.groupby('region')['amount'].sum().sort_index()\n"
              "with open('/output/report.txt', 'w') as f:\n"
              "    for region, amount in by.items():\n"
              "        f.write('%s %d\\n' % (region, amount))\n"
              "print('total %d' % df['amount'].sum())\n")
SALES_CSV = "region,amount\nnorth,10\nsouth,20\nnorth,30\n"


@test
def file_analysis_session_replay(x):
    """The seed use case: a box written for an input file (generate --file),
    verified with the file at /input, promoted, called with the file; its
    /output comes back; the session replays exactly."""
    x.up.reset()
    tests = [{"name": "total", "input": "", "expected": "total 60"}]
    x.up.script([{"reply": answer(SALES_CODE, tests, desc="Totals sales.csv by region into report.txt.")}],
                only="/chat/completions")
    work = tempfile.mkdtemp(prefix="fnbox-sales-", dir=x.p.tmp)
    csv = os.path.join(work, "sales.csv")
    with open(csv, "w") as f:
        f.write(SALES_CSV)
    out = x.p.cli_ok("skill", "generate", "total the sales in sales.csv by region", "--name", "sales-total",
                     "--model", "coder", "--rounds", "1", "--file", csv, timeout=240)
    st, v = x.p.api("GET", "/v1/skills/sales-total?version=1")
    check(st == 200 and v["state"] == "candidate", "a candidate from a generate with a file", st, v, out)
    chat = [r for r in x.up.requests if r["path"].endswith("/chat/completions")]
    prompt = json.dumps(chat[0]["body"]["messages"])
    check("/input/sales.csv" in prompt and "region,amount" in prompt,
          "the prompt names the input file and shows its first lines", prompt[:3000])
    st, body = x.p.api("POST", "/v1/skills/sales-total/promote", {}, timeout=120)
    check(st == 200, "promotion re-runs the tests with the input file", st, body)
    d1 = os.path.join(work, "out1")
    rc, out, err = x.p.cli("skill", "call", "sales-total", "--file", csv, "--output-dir", d1)
    check(rc == 0 and out.strip() == "total 60", "fnbox skill call --file: stdout", rc, out, err)
    with open(os.path.join(d1, "report.txt")) as f:
        report = f.read()
    check(report == "north 40\nsouth 20\n", "/output came back", report)
    m = re.search(r"session (s-[0-9a-f]{32})", err)
    check(m, "the call names its session", err)
    sid = m.group(1)
    st, s = x.p.api("GET", "/v1/sessions/" + sid)
    check(st == 200 and s["state"] == "done" and s["revision"].startswith("skill-sales-total-v1-") and
          [f["name"] for f in s["input"]["files"]] == ["sales.csv"] and
          [f["name"] for f in s["output"]["files"]] == ["report.txt"] and s["codeDigest"].startswith("sha256:"),
          "the session keeps the inputs, the code that ran and the outputs", st, s)
    d2 = os.path.join(work, "out2")
    rc, out, err = x.p.cli("replay", sid, "--check", "--output-dir", d2)
    check(rc == 0 and out.strip() == "total 60" and "stdout same, output same, status same" in err,
          "fnbox replay --check: the same", rc, out, err)
    with open(os.path.join(d2, "report.txt")) as f:
        check(f.read() == report, "the replay's /output is the same")


WORDS = ["csv", "json", "parse", "sum", "average", "median", "sort", "filter", "dedupe", "count", "words", "lines",
         "upper", "lower", "reverse", "hash", "base64", "url", "encode", "decode", "date", "time", "tax", "invoice",
         "email", "phone", "number", "column", "row", "table", "markdown", "html", "strip", "tags", "split"]


@test
def search_ranks_a_library(x):
    """A few hundred promoted skills written straight into the store (as a
    second controller would): the ticker picks them up; search ranks."""
    db = os.path.join(x.p.tmp, "controller-data", "fnbox.db")
    blob = b"a skill's code, for the library's rows"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    req = urllib.request.Request(x.p.api_url + "/v1/artifacts/" + digest, data=blob, method="PUT",
                                 headers={"Authorization": "Bearer " + x.p.token,
                                          "Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req, timeout=10).read()
    con = sqlite3.connect(db, timeout=30)
    rows = []
    import random
    rnd = random.Random(7)
    for i in range(300):
        a, b = rnd.sample(WORDS, 2)
        name = "gen-%s-%s-%d" % (a, b, i)
        desc = "Reads its input and does %s then %s on it." % (a, b)
        code = "def %s_%s(text):\n    return text\n" % (a, b)
        emb = json.dumps([rnd.random() for _ in range(4)])
        rows.append(("default", name, 1, "promoted", "python3", digest, desc, json.dumps({"code": code, "tests": []}),
                     emb, 0, 1, 1, 0, "test", "test", ""))
    rows.append(("default", "invoice-tax-total", 1, "promoted", "python3", digest,
                 "Sums the tax column of an invoice CSV and prints the total.",
                 json.dumps({"code": "def invoice_tax_total(rows):\n    return sum(r['tax'] for r in rows)\n"}),
                 "[0.5, 0.5, 0.5, 0.5]", 0, 1, 1, 0, "test", "test", ""))
    with con:
        con.executemany("INSERT INTO skill_versions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.execute("UPDATE skill_stamp SET value = value + 1 WHERE id = 1")
    con.close()

    def found():
        s, b = x.p.api("GET", "/v1/skills/search?" + urllib.parse.urlencode({"q": "total tax of an invoice",
                                                                             "limit": 5}))
        return b if s == 200 and b["items"] and b["items"][0]["name"] == "invoice-tax-total" else None
    body = fixture.wait_for("the invoice skill to rank first", found, 15)
    top = body["items"][0]
    check(top["score"] >= body["items"][-1]["score"] and top["lexical"] > 0, "scores", body)
    check(body["semantic"] is True, "the embedding model took part", body)
    s, b = x.p.api("GET", "/v1/skills/search?q=" + urllib.parse.quote("markdown html"))
    check(s == 200 and all("markdown" in i["name"] or "html" in i["name"] for i in b["items"][:3]),
          "markdown/html skills first", b)
    s, b = x.p.api("GET", "/v1/skills/search?q=")
    check(s == 400, "empty query: 400", s, b)


@test
def bad_requests(x):
    cases = [({"task": ""}, 400), ({}, 400), ({"task": "x", "runtime": "cobol"}, 400),
             ({"task": "x", "rounds": 0}, 400), ({"task": "x", "rounds": 99}, 400),
             ({"task": "x", "name": "Bad_Name"}, 400), ({"task": "x", "examples": [{"input": 1}]}, 400),
             ({"task": "x" * 9000}, 400), ({"task": "x", "name": "search"}, 400),
             ({"task": "x", "colour": "red"}, 400), ({"task": "x", "limits": 5}, 400),
             ({"task": "x", "limits": {"cpu": 1}}, 400), ({"task": "x", "limits": {"timeoutMs": 10}}, 400),
             ({"task": "x", "examples": [{"input": "a\u0000b", "output": "1"}]}, 400)]
    for body, want in cases:
        st, b = x.p.api("POST", "/v1/skills/generate", body)
        check(st == want and b.get("error", {}).get("type"), "generate %s: %d" % (json.dumps(body)[:80], want), st, b)
    st, b = x.p.api("GET", "/v1/skills/jobs/" + "0" * 32)
    check(st == 404, "unknown job: 404", st, b)
    st, b = x.p.api("GET", "/v1/skills/nosuch")
    check(st == 404, "unknown skill: 404", st, b)
    st, b = x.p.api("POST", "/v1/skills/nosuch/promote", {})
    check(st == 404, "promote unknown: 404", st, b)
    st, b = x.p.api("GET", "/v1/skills/wordcount@x")
    check(st == 400, "NAME@x: 400", st, b)
    st, b = x.p.api("GET", "/v1/skills/wordcount@" + "9" * 20)
    check(st == 400, "NAME@ a 20-digit version: 400", st, b)
    st, job = x.p.api("POST", "/v1/skills/generate", {"task": "search", "model": "coder", "rounds": 1})
    check(st == 202 and job["name"] == "search-skill", "a name made from the task avoids the reserved words", st, job)
    st, b = x.p.api("GET", "/v1/skills/jobs/%s?after=abc" % job["id"])
    check(st == 400 and b["error"]["field"] == "after", "after=abc: 400", st, b)
    x.generate_wait(job["id"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    a = ap.parse_args()
    up = Upstream("model").start()
    tmp = tempfile.mkdtemp(prefix="fnbox-dp-skills-")
    os.chmod(tmp, 0o755)
    cfg = os.path.join(tmp, "gateway.yaml")
    with open(cfg, "w") as f:
        f.write(gateway_config(up))
    os.chmod(cfg, 0o644)
    passed = failed = 0
    try:
        with fixture.Platform(a.build, nodes=[fixture.Node("node-a")], activator_args=["--gateway-config", cfg],
                              controller_args=["--skill-model", "coder", "--skill-embedding-model", "embed"]) as p:
            x = Ctx(p, up)
            for fn in TESTS:
                if a.only and not any(s in fn.__name__ for s in a.only):
                    continue
                t0 = time.time()
                try:
                    fn(x)
                    passed += 1
                    print("ok   %-34s %.1fs" % (fn.__name__, time.time() - t0), flush=True)
                except Exception as e:
                    failed += 1
                    print("FAIL %-34s %.1fs\n  %s" % (fn.__name__, time.time() - t0,
                                                     e if isinstance(e, Fail) else traceback.format_exc()), flush=True)
            if failed:
                print("--- controller log (tail) ---\n" + p.log("controller")[-3000:])
                print("--- activator log (tail) ---\n" + p.log("activator")[-3000:])
    except Exception:
        failed += 1
        traceback.print_exc()
        for t in fixture.FAILED_LOGS:
            sys.stdout.write(t[-8000:])
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("skills: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    import urllib.request  # noqa: E402
    import urllib.error  # noqa: E402
    sys.exit(main())
