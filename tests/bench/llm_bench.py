#!/usr/bin/env python3
"""fnbox llm-local benchmark: the figure of issue 7, time to ready from zero.

Time to ready for functions/llm-local started by fnbox from zero, against
the same server started directly, in one run, rounds alternated:

  direct  `/usr/bin/node functions/llm-local/server.mjs` spawned with
          LLM_PORT, the tests' settings (tests/llm/llmfn.py: LLM_THREADS=1,
          context 512 x 2) and the same tiny GGUF model (tests/llm/
          make_gguf.py, 0.6 MB, made at run time): from the spawn until
          GET /healthz answers 200 (the model loaded), asking every
          --poll-ms, by default as often as fnbox's readiness probe asks
          (10 ms): each ask is a request the server's event loop serves
          while it loads, and asking every 2 ms slowed the direct load by
          ~180 ms on a 2-CPU machine, which would flatter fnbox. The server
          is then stopped.
  fnbox   the platform of the data-plane suite (tests/dataplane/fixture.py:
          controller, one runtime node, activator checking bearer tokens),
          llm-local deployed as tests/llm deploys it (the model in the code
          bundle) with scale.min 0, scale.initial 0 and a short
          scaleToZeroAfter: from sending GET /fn/llm-local/healthz to the
          activator, with no instance anywhere, until its 200. That one call
          waits in the activator's queue while the controller places an
          instance, the runtime builds its jail, node starts and the model
          loads, and the runtime's readiness probe (every --probe-ms) sees
          /healthz answer 200. Before each round the bench waits until the
          instance is gone (scaled to zero, its jail torn down).

The first round of each is a warm-up and not counted (the node fetches and
unpacks the code once; the page cache). Also printed: the box's own "model
loaded in" time (node-llama-cpp's binary and the model, from its stderr) in
both, and each round's total less that ("the rest": for direct, node's
start, the imports and the first answer; for fnbox, those plus the queue,
placement, the jail and the probe), which separates the load itself from
what surrounds it. Goal: fnbox at
most 1.2x direct and under 200 ms added (the medians).

It never fails on a figure: it exits 1 only when something could not be
measured (the platform did not start, a call failed, node-llama-cpp is not
installed). Needs root (the runtime). Python 3 standard library only.

usage: llm_bench.py [--build DIR] [--rounds N] [--cpu N] [--probe-ms N]
                    [--poll-ms N] [--json PATH]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "llm"), os.path.join(ROOT, "tests", "dataplane")]
import llmfn  # noqa: E402
from fixture import Node, Platform, PlatformError, wait_for  # noqa: E402

GOAL_RATIO = 1.2
GOAL_ADDED_MS = 200.0
NAME = "llm-local"
READY_TIMEOUT_S = 120
LOADED_RE = re.compile(r"model \S+ loaded in (\d+) ms")


def progress(msg):
    sys.stderr.write("llm_bench: %s\n" % msg)
    sys.stderr.flush()


def pct(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(ms):
    nan = float("nan")
    return {"n": len(ms), "min": min(ms) if ms else nan, "p50": statistics.median(ms) if ms else nan,
            "p90": pct(ms, 0.9), "max": max(ms) if ms else nan, "samples": [round(x, 2) for x in ms]}


def row(label, s):
    print("  %-46s %3d %9.1f %9.1f %9.1f %9.1f" % (label, s["n"], s["min"], s["p50"], s["p90"], s["max"]))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def healthz(port, timeout=2):
    """The status of GET /healthz on 127.0.0.1:PORT, or None when nothing
    answers (not listening yet)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None
    finally:
        c.close()


# ---- direct --------------------------------------------------------------------------

def direct_round(model, tmp, poll_s):
    """Spawn server.mjs as it would run in the jail (the same settings, a
    clean environment) and time it to its first 200 on /healthz. Returns
    (ms, the box's own load ms or None)."""
    port = free_port()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"}
    env.update(llmfn.ENV, LLM_MODEL=model, LLM_PORT=str(port))
    log_path = os.path.join(tmp, "direct.log")
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/node", llmfn.SERVER], env=env, cwd=tmp, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
    try:
        deadline = t0 + READY_TIMEOUT_S
        while True:
            st = healthz(port)
            if st == 200:
                dt = time.perf_counter() - t0
                break
            if proc.poll() is not None:
                raise PlatformError("the direct server exited %s:\n%s" % (proc.returncode, open(log_path).read()))
            if time.perf_counter() > deadline:
                raise PlatformError("the direct server was not ready in %ds" % READY_TIMEOUT_S)
            time.sleep(poll_s)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    m = LOADED_RE.findall(open(log_path).read())
    return dt * 1000, float(m[-1]) if m else None


# ---- through fnbox --------------------------------------------------------------------

def node_instances(p):
    return sum(n.get("instances", 0) for n in p.nodes().values())


def wait_zero(p, rev):
    """No routed instance of rev and none on the node (its jail gone)."""
    wait_for("%s scaled to zero" % rev, lambda: p.ready_instances(rev) == [] and node_instances(p) == 0, 120,
             interval=0.05)


def fnbox_loaded_ms(p, seen):
    """The newest "model loaded in" of the function's logs, if a new one
    arrived (seen: how many were there before)."""
    rc, out, err = p.cli("logs", NAME, "--tail", "1000")
    m = LOADED_RE.findall(out)
    return (float(m[-1]) if len(m) > seen else None), len(m)


def fnbox_round(p, rev, seen):
    wait_zero(p, rev)
    time.sleep(0.3)     # let the teardown's work settle, as the direct round starts on a quiet machine
    t0 = time.perf_counter()
    st, body, _ = p.invoke(NAME, b"", method="GET", path="/fn/%s/healthz" % NAME, timeout=READY_TIMEOUT_S)
    dt = time.perf_counter() - t0
    if st != 200:
        raise PlatformError("GET /fn/%s/healthz from zero: %s %r" % (NAME, st, body[:300]))
    loaded, seen = fnbox_loaded_ms(p, seen)
    return dt * 1000, loaded, seen


# ---- the run ----------------------------------------------------------------------------

def bench(p, tmp, args):
    info = llmfn.code_dir(os.path.join(tmp, "direct-code"))
    model = os.path.join(info["dir"], "model.gguf")
    os.chmod(tmp, 0o755)
    spec = {"limits": {"cpu": args.cpu}, "readiness": {"path": "/healthz", "period": "%dms" % args.probe_ms},
            "scale": {"min": 0, "initial": 0, "max": 1, "scaleToZeroAfter": "1s"}}
    rev, _ = llmfn.deploy(p, name=NAME, spec=spec)
    direct, direct_load, fnb, fnb_load, direct_rest, fnb_rest = [], [], [], [], [], []
    seen = 0
    for i in range(args.rounds + 1):
        d, dl = direct_round(model, tmp, args.poll_ms / 1000)
        f, fl, seen = fnbox_round(p, rev, seen)
        progress("round %d: direct %.0f ms, fnbox %.0f ms%s" % (i, d, f, " (warm-up)" if i == 0 else ""))
        if i == 0:
            continue
        direct.append(d)
        fnb.append(f)
        if dl is not None:
            direct_load.append(dl)
            direct_rest.append(d - dl)
        if fl is not None:
            fnb_load.append(fl)
            fnb_rest.append(f - fl)
    wait_zero(p, rev)
    return [summary(x) for x in (direct, fnb, direct_load, fnb_load, direct_rest, fnb_rest)]


def report(direct, fnb, direct_load, fnb_load, direct_rest, fnb_rest, args, load_before, load_after):
    print()
    print("llm-local, time to ready from zero (ms): a tiny GGUF model, LLM_THREADS=1, fnbox limits.cpu %s, "
          "readiness probe every %d ms, direct /healthz polled every %d ms" % (args.cpu, args.probe_ms,
                                                                               args.poll_ms))
    print("  %-46s %3s %9s %9s %9s %9s" % ("", "n", "min", "p50", "p90", "max"))
    row("direct: node server.mjs to /healthz 200", direct)
    row("fnbox: GET /fn/llm-local/healthz from zero", fnb)
    row("  the box's own load, direct (its stderr)", direct_load)
    row("  the box's own load, in fnbox (fnbox logs)", fnb_load)
    row("  the rest, direct (node, imports, listen)", direct_rest)
    row("  the rest, fnbox (that + queue, jail, probe)", fnb_rest)
    ratio = fnb["p50"] / direct["p50"]
    added = fnb["p50"] - direct["p50"]
    ratio90 = fnb["p90"] / direct["p90"]
    ok = ratio <= GOAL_RATIO and added < GOAL_ADDED_MS
    print("  fnbox / direct = %.2fx p50 (%.2fx p90); fnbox adds %.0f ms p50 (%.0f ms p90)" % (
        ratio, ratio90, added, fnb["p90"] - direct["p90"]))
    print("  goal <= %.1fx and < %.0f ms added: %s" % (GOAL_RATIO, GOAL_ADDED_MS, "met" if ok else "NOT met"))
    print("  machine: %d CPUs, load average %s before, %s after" % (os.cpu_count(), load_before, load_after))
    return {"direct": direct, "fnbox": fnb, "box_load_direct": direct_load, "box_load_fnbox": fnb_load,
            "rest_direct": direct_rest, "rest_fnbox": fnb_rest,
            "ratio_p50": ratio, "ratio_p90": ratio90, "added_ms_p50": added, "added_ms_p90": fnb["p90"] - direct["p90"],
            "goal": {"ratio": GOAL_RATIO, "added_ms": GOAL_ADDED_MS, "met": ok},
            "settings": {"rounds": args.rounds, "cpu": args.cpu, "probe_ms": args.probe_ms, "poll_ms": args.poll_ms,
                         "env": llmfn.ENV},
            "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=7, help="counted rounds each way (default 7, at least 5)")
    ap.add_argument("--cpu", default="2", help="the instance's limits.cpu (default 2, as manifest.yaml)")
    ap.add_argument("--probe-ms", type=int, default=10, help="readiness period (default 10 ms, the least)")
    ap.add_argument("--poll-ms", type=int, help="the direct server's /healthz poll (default: --probe-ms)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.rounds < 5:
        ap.error("--rounds: at least 5")
    if args.probe_ms < 10:
        ap.error("--probe-ms: at least 10 (the manifest's least readiness period)")
    if args.poll_ms is None:
        args.poll_ms = args.probe_ms
    if args.poll_ms < 1:
        ap.error("--poll-ms: at least 1")
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("llm_bench: needs root (the runtime makes namespaces and cgroups)")
        return 1
    why = llmfn.missing()
    if why:
        print("llm_bench: not measured: %s" % why)
        return 1
    load_before = loadavg()
    print("fnbox llm-local benchmark: %d CPUs, load %s, build %s" % (os.cpu_count(), load_before, build))
    tmp = tempfile.mkdtemp(prefix="fnbox-llmbench-")
    figures, failed = {}, None
    try:
        with Platform(build, nodes=[Node("bench")], netns=False) as p:
            try:
                res = bench(p, tmp, args)
                figures = report(*res, args, load_before, loadavg())
            except (PlatformError, OSError, subprocess.SubprocessError) as e:
                failed = str(e)
                print("\nllm-local: could not be measured: %s" % e)
                print(p.all_logs(3000))
    except PlatformError as e:
        failed = str(e)
        print("llm_bench: %s" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1, default=str)
    print()
    print("llm_bench: %s" % ("measured" if not failed else "not measured"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
