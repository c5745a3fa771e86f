#!/usr/bin/env python3
"""fnbox LLM gateway benchmark: the figures of issue 5, side by side in one run.

The platform is the data-plane suite's (tests/dataplane/fixture.py): one
fnbox-controller, one fnbox-runtime node, one fnbox-activator started with
--gateway-config (as tests/gateway/run.py starts it), checking bearer
tokens as users run it. The upstream is a scripted OpenAI-compatible
server in C (tests/bench/gwload.c, `gwload upstream`: a fixed 8-word answer,
whole or streamed a word per event with a usage chunk and [DONE]), because
tests/gateway/upstream.py (python, a thread per connection, headers and
body in separate writes without TCP_NODELAY) answers about 180 requests a
second, not 1,000. Figures:

  overhead  `gwload load`: an open-loop load at --rate requests a second
            (1,000), paced by a timer: request i is due at start + i/rate
            whatever the answers do; it goes out on the first free one of
            --conns kept-alive connections (8), and latency counts from its
            due time (waiting for a connection included). Non-streamed chat
            completions (time to the last byte) and streamed ones (time to
            the first byte of the body, the first event, and to the last).
            The same request bytes and the same number of connections
            straight to the upstream and through the gateway (the alias
            `bench` over that upstream), in runs alternated A B B A of
            --seconds/2 each way, after --warmup seconds not counted.
            Goal: the gateway adds < 0.3 ms at p50 and < 1 ms at p99.
            Also the activator's CPU time per request (all its threads),
            the upstream connections the gateway opened (from the
            upstream's own count: a gateway that keeps its connections
            opens a few, not one per request), and a note when the
            generator itself was late (its send lag at p99 over 0.25 ms:
            the CPUs were contended).
  broker    the broker's added latency for a gateway call: a service box
            calls /v1/chat/completions through its FNBOX_BROKER socket,
            one call at a time, against the same call from the host
            straight to the activator (data_bench's broker helpers; its own
            broker figure, for /fn/ calls, is printed by data_bench).

Each figure comes with the load average before and after it: do not judge
one taken while the machine was busy. It never fails on a figure: it exits
1 only when something could not be measured at all. Needs root (the
runtime) and cc. Python 3 standard library only.

usage: gateway_bench.py [--build DIR] [--quick] [--seconds S] [--rate R]
                        [--conns C] [--only overhead|broker]... [--json PATH]
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "dataplane"))
from fixture import Node, Platform, PlatformError  # noqa: E402
from data_bench import broker_box, broker_compare, header, pct, row, summary_ms, verdict  # noqa: E402

GOAL_P50_MS = 0.3
GOAL_P99_MS = 1.0
LATE_MS = 0.25              # the generator's send lag at p99 beyond which a run was disturbed
SECTIONS = ("overhead", "broker")
HELPER_SRC = os.path.join(HERE, "gwload.c")
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=format=2", "-Werror=missing-prototypes",
          "-Werror=shadow", "-Werror=strict-prototypes"]
PROMPT_TOKENS = 8           # what gwload upstream counts for any prompt


def progress(msg):
    sys.stderr.write("gateway_bench: %s\n" % msg)
    sys.stderr.flush()


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def build_helper(build):
    """BUILD/bench/gwload, compiled when missing or older than its source."""
    out = os.path.join(build, "bench", "gwload")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(HELPER_SRC):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.run(["cc"] + CFLAGS + ["-o", out, HELPER_SRC], check=True)
    return out


class Upstream:
    """gwload upstream on 127.0.0.1, a port the kernel picks."""

    def __init__(self, helper, words):
        self.proc = subprocess.Popen([helper, "upstream", "--words", str(words)], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("gwload: upstream listening on "):
            self.stop()
            raise PlatformError("gwload upstream did not start: %r" % line)
        self.port = int(line.split()[-1])

    def stats(self):
        """{"connections": accepted, "requests": answered} so far."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", "/stats")
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


GATEWAY_YAML = """\
upstreams:
  - name: bench
    base_url: http://127.0.0.1:%d/v1
    models: [bench-model]
aliases:
  - name: bench
    upstreams: [bench]
"""


def chat_body(stream):
    b = {"model": "bench", "messages": [{"role": "user", "content": "hello gateway"}], "max_tokens": 64}
    if stream:
        b["stream"] = True
    return json.dumps(b, separators=(",", ":")).encode()


def one_call(port, body, token):
    """A single request (http.client), to check an endpoint answers: (status, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/v1/chat/completions", body=body,
                  headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ---- the overhead -----------------------------------------------------------------------

def load_run(helper, tmp, port, body, stream, seconds, args, token):
    """One gwload load run: (ttfb ms list, ttlb ms list, summary dict)."""
    bf = os.path.join(tmp, "body-%s.json" % ("stream" if stream else "whole"))
    with open(bf, "wb") as f:
        f.write(body)
    out = os.path.join(tmp, "samples.txt")
    argv = [helper, "load", "--port", str(port), "--path", "/v1/chat/completions", "--body-file", bf,
            "--rate", str(args.rate), "--seconds", "%g" % seconds, "--conns", str(args.conns),
            "--warmup", "%g" % args.warmup, "--header", "Authorization: Bearer " + token, "--out", out]
    if stream:
        argv.append("--stream")
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=seconds + args.warmup + 60)
    try:
        summ = json.loads(r.stdout)
    except ValueError:
        raise PlatformError("gwload load failed (%d): %s %s" % (r.returncode, r.stdout[-500:], r.stderr[-500:]))
    ttfb, ttlb = [], []
    with open(out) as f:
        for line in f:
            lag, fb, lb, ok = line.split()
            ttfb.append(float(fb) / 1000)
            ttlb.append(float(lb) / 1000)
    return ttfb, ttlb, summ


def stats(ms):
    return {"n": len(ms), "p50": pct(ms, 0.5), "p90": pct(ms, 0.9), "p99": pct(ms, 0.99),
            "max": max(ms) if ms else float("nan")}


def stat_row(label, s):
    print("  %-44s %6d %8.3f %8.3f %8.3f %8.2f" % (label, s["n"], s["p50"], s["p90"], s["p99"], s["max"]))


def health(summ):
    """The generator's own account of a run: errors, unanswered, lag."""
    bad = summ["errors"] + summ["unanswered"]
    return "%d sent, %d measured, %d failed; send lag p99 %.3f ms, max %.2f ms" % (
        summ["sent"], summ["measured"], bad, summ["lag_p99_us"] / 1000, summ["lag_max_us"] / 1000)


def cpu_s(pid):
    """User and system CPU seconds a process has used (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        w = f.read().rsplit(")", 1)[1].split()
    return (int(w[11]) + int(w[12])) / os.sysconf("SC_CLK_TCK")


def bench_overhead(p, helper, tmp, up, args):
    half = args.seconds / 2.0
    out = {}
    for kind, stream in (("whole", False), ("stream", True)):
        body = chat_body(stream)
        for label, port in (("direct", up.port), ("gateway", p.port)):
            st, data = one_call(port, body, p.token)
            if st != 200 or (b"[DONE]" not in data if stream else b"chat.completion" not in data):
                raise PlatformError("%s %s call: %s %r" % (label, kind, st, data[:300]))
        runs = {"direct": [[], [], []], "gateway": [[], [], []]}
        before = loadavg()
        act_cpu, act_sent, up_conns, up_reqs = 0.0, 0, 0, 0
        for label in ("direct", "gateway", "gateway", "direct"):
            progress("overhead: %s %s, %gs at %d/s" % (kind, label, half, args.rate))
            c0, u0 = cpu_s(p.activator.pid), up.stats()
            fb, lb, summ = load_run(helper, tmp, up.port if label == "direct" else p.port, body, stream, half, args,
                                    p.token)
            if label == "gateway":
                act_cpu += cpu_s(p.activator.pid) - c0
                act_sent += summ["sent"]
                u1 = up.stats()
                up_conns += u1["connections"] - u0["connections"]
                up_reqs += u1["requests"] - u0["requests"]
            runs[label][0] += fb
            runs[label][1] += lb
            runs[label][2].append(summ)
        after = loadavg()
        res = {"load_before": before, "load_after": after}
        print()
        print("Gateway overhead, %s chat completions: %d req/s open loop, %d kept-alive connections, %gs each way"
              % ("streamed" if stream else "non-streamed", args.rate, args.conns, args.seconds))
        print("  (ms from each request's scheduled send time; load average %s before, %s after)" % (before, after))
        print("  %-44s %6s %8s %8s %8s %8s" % ("", "n", "p50", "p90", "p99", "max"))
        for label in ("direct", "gateway"):
            fb, lb, summs = runs[label]
            name = "straight to the upstream" if label == "direct" else "through the gateway"
            res[label] = {"ttlb": stats(lb), "runs": summs}
            if stream:
                res[label]["ttfb"] = stats(fb)
                stat_row("%s, first byte" % name, res[label]["ttfb"])
            stat_row("%s%s" % (name, ", last byte" if stream else ""), res[label]["ttlb"])
        late = 0.0
        for label in ("direct", "gateway"):
            for s in runs[label][2]:
                print("    load %-7s %s" % (label, health(s)))
                late = max(late, s["lag_p99_us"] / 1000)
        if late > LATE_MS:
            print("    (the generator itself was late by %.2f ms at p99 in a run: CPU contention on this machine,"
                  " the platform's own included; read the p99 figures with that in mind)" % late)
        res["activator_cpu_us_per_request"] = act_cpu / max(act_sent, 1) * 1e6
        print("  the activator used %.0f us of CPU per request (all its threads; the audit's included)" %
              res["activator_cpu_us_per_request"])
        res["gateway_upstream_connections"], res["gateway_upstream_requests"] = up_conns, up_reqs
        print("  the gateway opened %d upstream connections for %d upstream requests%s" % (
            up_conns, up_reqs, " (one per request or more: it does not keep them)" if up_conns >= up_reqs > 0 else ""))
        d, g = res["direct"]["ttlb"], res["gateway"]["ttlb"]
        a50, a99 = g["p50"] - d["p50"], g["p99"] - d["p99"]
        res["added_p50_ms"], res["added_p99_ms"] = a50, a99
        res["goal_met"] = a50 < GOAL_P50_MS and a99 < GOAL_P99_MS
        print("  the gateway adds %.3f ms at p50 (goal < %.1f ms: %s), %.3f ms at p99 (goal < %.0f ms: %s)%s" % (
            a50, GOAL_P50_MS, verdict(a50 < GOAL_P50_MS), a99, GOAL_P99_MS, verdict(a99 < GOAL_P99_MS),
            ", to the last byte" if stream else ""))
        if stream:
            df, gf = res["direct"]["ttfb"], res["gateway"]["ttfb"]
            res["added_ttfb_p50_ms"], res["added_ttfb_p99_ms"] = gf["p50"] - df["p50"], gf["p99"] - df["p99"]
            print("  to the first byte: %.3f ms at p50, %.3f ms at p99" % (gf["p50"] - df["p50"], gf["p99"] - df["p99"]))
        out[kind] = res
    return out


# ---- the broker ------------------------------------------------------------------------------

def bench_broker(p, tmp, args):
    box = broker_box(p, tmp)
    p.wait_instances(box, lambda i: len(i) == 1, 60)
    want = b'"total_tokens":%d}}' % (PROMPT_TOKENS + args.words)
    before = loadavg()
    inside, direct = broker_compare(p, "/v1/chat/completions", args.broker_rounds, chat_body(False), want)
    after = loadavg()
    a, b = summary_ms(inside), summary_ms(direct)
    header("Broker: a gateway call from inside a jail vs the same call from the host (ms; load %s before, %s after)"
           % (before, after))
    row("box -> broker -> gateway -> upstream", a)
    row("host -> gateway -> upstream (TCP)", b)
    added = a["p50"] - b["p50"]
    print("  the broker adds %.2f ms at the median, %.2f ms at p99 (a new connection per call both ways;"
          % (added, a["p99"] - b["p99"]))
    print("  the broker's figure for /fn/ calls is data_bench's)")
    p.cli_ok("delete", "bbox")
    return {"inside": a, "direct": b, "added_p50_ms": added, "load_before": before, "load_after": after}


# ---- main ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="2 s each way, 80 broker calls")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds each way (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds before each run that do not count")
    ap.add_argument("--rate", type=int, default=1000, help="requests per second (default 1000)")
    ap.add_argument("--conns", type=int, default=8, help="kept-alive connections (default 8)")
    ap.add_argument("--words", type=int, default=8, help="words in the upstream's answer (stream events)")
    ap.add_argument("--broker-rounds", type=int, default=400, help="broker calls each way (default 400)")
    ap.add_argument("--only", action="append", choices=SECTIONS)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.broker_rounds = 2.0, 0.5, 80
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("gateway_bench: needs root (the runtime makes namespaces and cgroups)")
        return 1
    sections = args.only or list(SECTIONS)
    print("fnbox gateway benchmark: %d CPUs, load %s, build %s" % (os.cpu_count(), loadavg(), build))
    figures, failed = {}, []
    tmp = tempfile.mkdtemp(prefix="fnbox-bench-gw-")
    os.chmod(tmp, 0o755)
    up = None
    try:
        helper = build_helper(build)
        up = Upstream(helper, args.words)
        cfg = os.path.join(tmp, "gateway.yaml")
        with open(cfg, "w") as f:
            f.write(GATEWAY_YAML % up.port)
        os.chmod(cfg, 0o644)
        # the broker's rate limit (20/s) would throttle its own benchmark
        node = Node("bench", args=["--broker-rate", "1000000", "--broker-burst", "1000000"])
        with Platform(build, nodes=[node], netns=False, activator_args=["--gateway-config", cfg]) as p:
            p.port = int(p.url.rsplit(":", 1)[1])
            for name, fnc, a in (("overhead", bench_overhead, (p, helper, tmp, up, args)),
                                 ("broker", bench_broker, (p, tmp, args))):
                if name not in sections:
                    continue
                progress("%s ..." % name)
                try:
                    figures[name] = fnc(*a)
                except (PlatformError, OSError, subprocess.SubprocessError, ValueError) as e:
                    failed.append(name)
                    print("\n%s: could not be measured: %s" % (name, e))
                    print(p.all_logs(1500))
    except (PlatformError, OSError, subprocess.SubprocessError) as e:
        print("gateway_bench: %s" % e)
        failed.append("platform")
    finally:
        if up:
            up.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1, default=str)
    print()
    print("gateway_bench: %s" % ("all figures measured" if not failed else "not measured: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
