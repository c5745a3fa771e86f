#!/usr/bin/env python3
"""fnbox skill verification benchmark: the throughput figure of issue 6.

How fast the skill library verifies a box: test cases per second, each a
fresh jail. The platform is the data-plane suite's (tests/dataplane/
fixture.py: one controller, one runtime node, the activator with its LLM
gateway) with a scripted OpenAI-compatible upstream (tests/gateway/
upstream.py) playing the model: each generate job's one chat call gets a
correct python3 box (it reverses the words of its input) and 50 tests
(SKILL_TESTS_MAX), so the job passes in round 1. The controller then does
what it does for any round: stores the code, deploys it as a new revision
of skill-NAME-try, and runs the 50 tests through the activator, 4 at a
time (SKILLS_TEST_PARALLEL), each a fresh jail with the function's limits.

Per job:

  wall        POST /v1/skills/generate to the job seen "passed" (long polls
              on GET /v1/skills/jobs/ID?wait=30&after=CHANGES, answered at
              each change)
  round       from the job's "round 1: running 50 tests" (said just before
              the deploy) to "all 50 tests passed" (said after the last
              result): the deploy, the new revision's cold start and the 50
              calls; tests/s = 50 / round
  per test    the results' durationMs (the controller's own clock around
              each call, the cold start included in the first ones)

Jobs: --jobs (3) on fresh names (skill-NAME-try does not exist yet), then
one more on the first name again (its try function exists; the round is
still a new revision). The medians of the fresh ones are the figure.

Peer, in the same run, after each job: the same box run directly, 50 times,
`/usr/bin/python3 main.py < input` (a subprocess each, no jail), one at a
time and 4 at a time (as the controller runs 4 tests at once), and 4 at a
time with `-I -S` (what the python3 zygote starts with: no site module).
fnbox can beat the plain peer: its zygote has the interpreter started
already, and each test is a fork of it in a fresh jail.

It never fails on a figure: exits 1 only when something could not be
measured (the platform did not start, a job did not pass). Needs root.
Python 3 standard library only.

usage: skills_verify_bench.py [--build DIR] [--jobs N] [--json PATH]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "dataplane"))
sys.path.insert(0, os.path.join(ROOT, "tests", "gateway"))
from fixture import Node, Platform, PlatformError  # noqa: E402
from upstream import Upstream  # noqa: E402

N_TESTS = 50            # SKILL_TESTS_MAX: the most tests an answer may carry
PARALLEL = 4            # SKILLS_TEST_PARALLEL: the controller's test calls in flight
JOB_TIMEOUT_S = 300
PYTHON = "/usr/bin/python3"

BOX = "import sys\nwords = sys.stdin.read().split()\nprint(' '.join(reversed(words)))\n"


def make_tests():
    tests = []
    for i in range(N_TESTS):
        words = ["w%d" % (i * 7 + k) for k in range(i % 9 + 1)]
        tests.append({"name": "case-%d" % (i + 1), "input": " ".join(words),
                      "expected": " ".join(reversed(words))})
    return tests


def answer(code, tests):
    """The model's answer in the shape the prompt asks for (docs/skills.md)."""
    return ("Here is the box.\n\n```python\n%s```\n\nDescription: Reverses the order of the words of its input.\n\n"
            "Tests:\n```json\n%s\n```\n" % (code, json.dumps(tests)))


def gateway_config(up):
    return """\
upstreams:
  - name: model
    base_url: %s
    local: true
    models: [coder-1]
aliases:
  - name: coder
    upstreams: [{upstream: model, model: coder-1}]
""" % up.base_url


def progress(msg):
    sys.stderr.write("skills_verify_bench: %s\n" % msg)
    sys.stderr.flush()


# ---- a job ----------------------------------------------------------------------------

def api(p, method, path, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(p.api_url + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + p.token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode("utf-8", "replace")


def run_job(p, up, name, tests):
    """One generate job that passes in round 1; its figures."""
    up.reset()
    up.script([{"reply": answer(BOX, tests)}], only="/chat/completions")
    t0 = time.monotonic()
    st, job = api(p, "POST", "/v1/skills/generate", {"task": "reverse the order of the words of the input",
                                                      "name": name, "model": "coder", "rounds": 1})
    if st != 202:
        raise PlatformError("generate %s: %s %r" % (name, st, job))
    jid, changes, marks = job["id"], None, {}
    while True:
        if time.monotonic() - t0 > JOB_TIMEOUT_S:
            raise PlatformError("job %s did not end in %d s: %r" % (jid, JOB_TIMEOUT_S, job.get("message")))
        q = "?wait=0" if changes is None else "?wait=30&after=%d" % changes
        st, job = api(p, "GET", "/v1/skills/jobs/" + jid + q, timeout=40)
        now = time.monotonic()
        if st != 200:
            raise PlatformError("job %s: %s %r" % (jid, st, job))
        msg = job.get("message") or ""
        if "running" in msg and "running" not in marks:
            marks["running"] = now
        if "tests passed" in msg and "tested" not in marks:
            marks["tested"] = now
        if job["state"] != "running":
            marks["end"] = now
            break
        # a long poll's answer has no "changes" (only an immediate one does):
        # then the next request asks at once, and the one after waits
        changes = job.get("changes")
    if job["state"] != "passed":
        raise PlatformError("job %s ended %s: %s\n%s" % (name, job["state"], job.get("message"),
                                                         json.dumps(job.get("evidence"))[:3000]))
    res = job["evidence"][-1]["results"]
    if len(res) != N_TESTS or not all(r["passed"] for r in res):
        raise PlatformError("job %s: %d results, %d passed" % (name, len(res), sum(r["passed"] for r in res)))
    if "running" not in marks or "tested" not in marks:
        raise PlatformError("job %s: its progress was not seen: %r" % (name, marks))
    round_s = marks["tested"] - marks["running"]
    dur = [r["durationMs"] for r in res]
    return {"name": name, "wall_s": marks["end"] - t0, "round_s": round_s, "tests_per_s": N_TESTS / round_s,
            "duration_ms": {"median": statistics.median(dur), "min": min(dur), "max": max(dur),
                            "first4": dur[:PARALLEL], "sum": sum(dur)},
            "version": job.get("version")}


# ---- the peer --------------------------------------------------------------------------

def run_direct(main_py, tests, parallel, flags=()):
    """The box run directly N_TESTS times: tests per second."""
    def one(t):
        r = subprocess.run([PYTHON] + list(flags) + [main_py], input=t["input"].encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0 or r.stdout.decode().strip() != t["expected"]:
            raise OSError("direct run of %s: exit %d, %r" % (t["name"], r.returncode, r.stdout[:200]))
    t0 = time.monotonic()
    if parallel <= 1:
        for t in tests:
            one(t)
    else:
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            list(ex.map(one, tests))
    return N_TESTS / (time.monotonic() - t0)


# ---- main --------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--jobs", type=int, default=3, help="jobs on fresh names (default 3)")
    ap.add_argument("--json")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("skills_verify_bench: needs root (the runtime makes namespaces and cgroups)")
        return 1
    print("fnbox skill verification benchmark: %d CPUs, load %s, build %s" % (
        os.cpu_count(), open("/proc/loadavg").read().split()[0], build))
    tests = make_tests()
    tmp = tempfile.mkdtemp(prefix="fnbox-bench-skills-")
    os.chmod(tmp, 0o755)
    main_py = os.path.join(tmp, "main.py")
    with open(main_py, "w") as f:
        f.write(BOX)
    cfg = os.path.join(tmp, "gateway.yaml")
    up = Upstream("model").start()
    with open(cfg, "w") as f:
        f.write(gateway_config(up))
    os.chmod(cfg, 0o644)
    tag = "%04x" % (os.getpid() & 0xffff)
    fresh, warm, peer_seq, peer_par, peer_is = [], None, [], [], []
    failed = None
    try:
        with Platform(build, nodes=[Node("node-a")], activator_args=["--gateway-config", cfg],
                      controller_args=["--skill-model", "coder"]) as p:
            names = ["verify-%s-%d" % (tag, i + 1) for i in range(args.jobs)] + ["verify-%s-1" % tag]
            for i, name in enumerate(names):
                progress("job %d of %d (%s%s) ..." % (i + 1, len(names), name, ", warm" if i >= args.jobs else ""))
                fig = run_job(p, up, name, tests)
                if i < args.jobs:
                    fresh.append(fig)
                else:
                    warm = fig
                peer_seq.append(run_direct(main_py, tests, 1))
                peer_par.append(run_direct(main_py, tests, PARALLEL))
                peer_is.append(run_direct(main_py, tests, PARALLEL, ["-I", "-S"]))
    except (PlatformError, OSError, subprocess.SubprocessError) as e:
        failed = str(e)
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key, jobs):
        return statistics.median(j[key] for j in jobs) if jobs else float("nan")

    print()
    print("verification through fresh jails: one generate job, %d python3 tests, %d at a time" % (N_TESTS, PARALLEL))
    print("  %-26s %8s %9s %9s %12s %12s" % ("job", "wall s", "round s", "tests/s", "test p50 ms", "test max ms"))
    for j in fresh + ([warm] if warm else []):
        print("  %-26s %8.2f %9.2f %9.1f %12.1f %12.1f" % (
            j["name"] + (" (warm name)" if j is warm else ""), j["wall_s"], j["round_s"], j["tests_per_s"],
            j["duration_ms"]["median"], j["duration_ms"]["max"]))
    figures = {"tests": N_TESTS, "parallel": PARALLEL, "fresh": fresh, "warm": warm,
               "direct_seq_tests_per_s": peer_seq, "direct_par_tests_per_s": peer_par,
               "direct_par_isolated_tests_per_s": peer_is}
    if fresh:
        tps, seq, par = med("tests_per_s", fresh), statistics.median(peer_seq), statistics.median(peer_par)
        figures.update(median_wall_s=med("wall_s", fresh), median_round_s=med("round_s", fresh),
                       median_tests_per_s=tps, direct_seq=seq, direct_par=par)
        print("  %-26s %8.2f %9.2f %9.1f" % ("median of the fresh names", med("wall_s", fresh), med("round_s", fresh),
                                             tps))
        print()
        print("peer: the same box run directly (%s main.py < input, a subprocess each, no jail)" % PYTHON)
        print("  one at a time            %9.1f tests/s   fnbox/direct %.2fx" % (seq, tps / seq))
        print("  %d at a time              %9.1f tests/s   fnbox/direct %.2fx" % (PARALLEL, par, tps / par))
        iso = statistics.median(peer_is)
        figures.update(direct_par_isolated=iso)
        print("  %d at a time, -I -S        %9.1f tests/s   fnbox/direct %.2fx   (the interpreter flags the jail's "
              "zygote uses)" % (PARALLEL, iso, tps / iso))
        print()
        print("skills_verify_bench: %.1f tests/s through fresh jails (median of %d jobs; %.2f s a job of %d tests, "
              "%.2f s wall), %.2fx direct python3 %d at a time%s" % (
                  tps, len(fresh), med("round_s", fresh), N_TESTS, med("wall_s", fresh), tps / par, PARALLEL,
                  "; warm name %.1f tests/s" % warm["tests_per_s"] if warm else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    if failed:
        print("skills_verify_bench: not measured: %s" % failed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
