#!/usr/bin/env python3
"""fnbox data-plane benchmark: the figures of issue 4, side by side in one run.

The platform is the data-plane suite's (tests/dataplane/fixture.py): one
fnbox-controller, one fnbox-runtime node and one fnbox-activator on this
machine (loopback; the node's network namespace plays no part in a request:
the activator reaches the node's invoke socket, a unix socket). The
activator checks bearer tokens as users run it (`--auth token`): every
request carries the admin token. Every figure is printed with its peer,
measured in the same run:

  cold start   zero to first response through the activator, for a native
               box (functions/fib) and a python3 box, each sample a function
               with no instance yet (a new revision of the same code: the
               code is fetched and unpacked once); against running the same
               program directly (/usr/bin/python3 -I main.py, the fib
               binary). Samples alternate with the peer's. Goal: python3
               cold start <= 1.3x bare python3 start-up.
  warm fresh   a python3 box with one warm instance (its zygote ready): one
               request at a time over a kept-alive connection (latency), and
               wrk with a few connections (req/s, p50, p99); a new jail for
               every request. Goal: median < 3 ms. Also what a request
               costs the machine: CPU time of the jails' cgroup and of the
               daemons over the measured requests, per request (steadier
               on a shared VM than the median, which moves with whatever
               else runs).
  service      wrk through the activator to an echo instance (service mode),
               against nginx reverse-proxying the same instance's unix socket
               (keep-alive upstream; passing the backend what the activator
               passes: X-Forwarded-For, X-Request-Id and traceparent, and
               not the caller's token). Each proxy runs with one worker and
               with one per CPU: nginx with worker_processes 1 and auto, the
               platform's activator (its default, one per CPU) and a second
               activator beside it with --threads 1. Runs alternated
               A B C D D C B A. Also each proxy's own CPU per request
               (utime+stime of the activator, of nginx's processes, over
               each wrk run). Two backends:
               - tests/dataplane/functions/echo-native (C, built here): it
                 answers faster than either proxy forwards, so the proxy is
                 what sets the rate. Goal: activator >= 1.0x nginx's req/s,
                 each compared with the nginx that has as many workers.
               - functions/echo-service (python3: one process, a thread per
                 connection, one GIL): it answers ~4k req/s whoever forwards
                 to it, and both proxies pass it the same bytes (the same
                 syscalls per request on its side). Its ratio shows that the
                 activator costs the backend nothing against nginx; it moves
                 a few percent either way from run to run with the backend's
                 own rate, which the spread of nginx-1 against nginx-auto
                 (printed beside it) shows. Printed, not held to the goal.
  burst        1,000 concurrent requests at a python3 function scaled to zero:
               how many answered 200, time to the first and to the last.
  queue memory the activator's RSS with 10,000 requests queued for a service
               that never becomes ready, against its RSS idle.
  broker       the broker's added latency from inside a jail: a service box
               calls an echo service (functions/echo-service) through its
               FNBOX_BROKER socket, one call at a time, a new connection each
               (as the broker itself opens one to the activator per call);
               against the same call from the host straight to the
               activator over TCP, a new connection each, with the token.
               Both on raw sockets; the difference of the medians is what
               the broker adds (the box's unix hop, the checks, the signed
               headers, the hop to the activator). The node's broker rate
               limit is raised for the run.

It never fails on a figure: it exits 1 only when something could not be
measured at all (the platform did not start, a request failed outright).
Needs root (the runtime) and wrk and nginx (tests/deps.sh installs them).
Python 3 standard library only.

usage: data_bench.py [--build DIR] [--rounds N] [--seconds S] [--burst N]
                     [--queued N] [--only SECTION]... [--json PATH]
"""
import argparse
import asyncio
import http.client
import json
import os
import resource
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
sys.path.insert(0, os.path.join(ROOT, "tests", "dataplane"))
from fixture import ECHO_SERVICE, Node, Platform, PlatformError, cgroup_roots, fn, wait_for  # noqa: E402

GOAL_COLD_PY_RATIO = 1.3
GOAL_WARM_P50_MS = 3.0
GOAL_SERVICE_RATIO = 1.0
PY_BOX = b"import sys\nsys.stdout.write('hello ' + sys.stdin.read())\n"
SECTIONS = ("cold", "warm", "service", "burst", "queue", "broker")


# ---- numbers -------------------------------------------------------------------

def pct(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary_ms(samples_s):
    ms = [x * 1000 for x in samples_s]
    return {"n": len(ms), "p50": statistics.median(ms) if ms else float("nan"),
            "p99": pct(ms, 0.99), "min": min(ms) if ms else float("nan"),
            "max": max(ms) if ms else float("nan")}


def row(label, s):
    print("  %-40s %5d %9.2f %9.2f %9.2f %9.2f" % (label, s["n"], s["min"], s["p50"], s["p99"], s["max"]))


def header(title):
    print()
    print(title)
    print("  %-40s %5s %9s %9s %9s %9s" % ("", "n", "min", "p50", "p99", "max"))


def verdict(ok):
    return "met" if ok else "NOT met"


def progress(msg):
    sys.stderr.write("data_bench: %s\n" % msg)
    sys.stderr.flush()


# ---- requests ---------------------------------------------------------------------

def auth(token):
    """The headers that carry a bearer token (none for None): the activator
    wants one on /fn/ (docs/invoke.md), and the bench keeps that check on,
    as users run it."""
    return {"Authorization": "Bearer " + token} if token else {}


def post(url, path, body, conn=None, timeout=60, token=None):
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    c = conn or http.client.HTTPConnection(host, int(port), timeout=timeout)
    c.request("POST", path, body=body, headers=auth(token))
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, data


def write_fn(tmp, name, files):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    for rel, data in files.items():
        with open(os.path.join(d, rel), "wb") as f:
            f.write(data)
    return d


def remove(p, name):
    """Delete a function and wait until its instances are gone (placement
    counts each instance's limits.cpu against its node)."""
    p.cli_ok("delete", name)
    wait_for("%s's instances gone from the nodes" % name,
             lambda: sum(n.get("instances", 0) for n in p.nodes().values()) == 0, 30)


# ---- cold start ---------------------------------------------------------------------

def bench_cold(p, build, tmp, rounds):
    fib_dir = os.path.join(build, "functions", "fib")
    py = write_fn(tmp, "coldpy", {"main.py": PY_BOX})
    kinds = [("python3", os.path.join(py, "main.py"), "python3", b"x",
              ["/usr/bin/python3", "-I", os.path.join(py, "main.py")])]
    if os.path.exists(os.path.join(fib_dir, "main")):
        kinds.append(("native (fib)", os.path.join(fib_dir, "main"), "exec", b"30",
                      [os.path.join(fib_dir, "main")]))
    else:
        print("  (no %s/main: build it with make for the native figure)" % fib_dir)
    res = {}
    for label, code, runtime, body, direct in kinds:
        platform_s, direct_s = [], []
        for i in range(rounds + 2):
            name = "cold-%s-%d" % ("py" if runtime == "python3" else "ex", i)
            p.deploy(name, code, runtime=runtime, spec={"scale": {"scaleToZeroAfter": "1s"}})
            t0 = time.perf_counter()
            st, out = post(p.url, "/fn/" + name, body, token=p.token)
            dt = time.perf_counter() - t0
            if st != 200:
                raise PlatformError("cold call of %s: %s %r" % (name, st, out[:300]))
            t0 = time.perf_counter()
            r = subprocess.run(direct, input=body, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            dd = time.perf_counter() - t0
            if r.returncode != 0:
                raise PlatformError("direct run of %s failed" % direct)
            if i >= 2:      # the first ones fetch and unpack the code
                platform_s.append(dt)
                direct_s.append(dd)
            remove(p, name)
        res[label] = (summary_ms(platform_s), summary_ms(direct_s))
    header("Cold start, zero to first response (ms)")
    for label, (a, b) in res.items():
        row("fnbox %s, through the activator" % label, a)
        row("%s run directly" % label, b)
    out = {}
    for label, (a, b) in res.items():
        r50 = a["p50"] / b["p50"]
        out[label] = {"fnbox": a, "direct": b, "ratio_p50": r50}
        line = "  %s: fnbox / direct = %.2fx p50, %.2fx p99" % (label, r50, a["p99"] / b["p99"])
        if label == "python3":
            line += "  (goal <= %.1fx: %s)" % (GOAL_COLD_PY_RATIO, verdict(r50 <= GOAL_COLD_PY_RATIO))
        print(line)
    return out


# ---- wrk ------------------------------------------------------------------------------

def wrk(url, seconds, conns, threads=2, body=b"ping", token=None):
    script = os.path.join(tempfile.gettempdir(), "fnbox-bench-wrk-%d.lua" % os.getpid())
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\n' % json.dumps(body.decode()))
    try:
        hdrs = []
        for k, v in auth(token).items():
            hdrs += ["-H", "%s: %s" % (k, v)]
        r = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % seconds, "--latency",
                            "-s", script] + hdrs + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=seconds + 60)
    finally:
        os.unlink(script)
    out = r.stdout.decode("utf-8", "replace")
    res = {"rps": None, "p50": None, "p99": None, "errors": 0, "non2xx": 0, "requests": 0}

    def ms(v):
        for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1000.0)):
            if v.endswith(unit):
                return float(v[:-len(unit)]) * f
        return float(v)
    for line in out.splitlines():
        w = line.split()
        if line.startswith("Requests/sec:"):
            res["rps"] = float(w[1])
        elif len(w) == 2 and w[0] == "50%":
            res["p50"] = ms(w[1])
        elif len(w) == 2 and w[0] == "99%":
            res["p99"] = ms(w[1])
        elif "Non-2xx" in line:
            res["non2xx"] = int(w[-1])
        elif line.strip().startswith("Socket errors"):
            res["errors"] = sum(int(x.strip(",")) for x in w if x.strip(",").isdigit())
        elif "requests in" in line:
            res["requests"] = int(w[0])
    if res["rps"] is None:
        raise PlatformError("wrk said:\n" + out)
    return res


def wrk_line(label, r):
    bad = ""
    if r["non2xx"] or r["errors"]:
        bad = "  (!! %d non-2xx, %d socket errors)" % (r["non2xx"], r["errors"])
    print("  %-40s %10.0f %9.2f %9.2f%s" % (label, r["rps"], r["p50"], r["p99"], bad))


# ---- warm fresh mode ------------------------------------------------------------------

def jails_cpu_seconds(p):
    """CPU time of every jail under the platform's cgroup parent (v1
    cpuacct.usage, or v2 cpu.stat's usage_usec), or None."""
    for root in cgroup_roots():
        base = os.path.join(root, "fnbox-dp-%s" % p.tag)
        try:
            with open(os.path.join(base, "cpuacct.usage")) as f:
                return int(f.read()) / 1e9
        except OSError:
            pass
        try:
            with open(os.path.join(base, "cpu.stat")) as f:
                for line in f:
                    k, v = line.split()
                    if k == "usage_usec":
                        return int(v) / 1e6
        except OSError:
            pass
    return None


def platform_pids(p):
    """The daemons' pids: the controller, the activator, the runtimes."""
    return [d.pid for d in [p.controller, p.activator] + list(p.runtimes.values()) if d is not None and d.pid]


def bench_warm(p, tmp, rounds, seconds):
    d = write_fn(tmp, "warmpy", {"main.py": PY_BOX})
    rev = p.deploy("warm", os.path.join(d, "main.py"), spec={"scale": {"min": 1, "target": 100}})
    p.wait_instances(rev, lambda i: len(i) == 1, 60)
    host, port = p.url.split("://", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    lat, bare = [], []
    pids = platform_pids(p)
    for i in range(rounds + 10):
        if i == 10:     # the CPU the measured requests cost the machine (bare python3 is not in it)
            j0, d0 = jails_cpu_seconds(p), cpu_seconds(pids)
        t0 = time.perf_counter()
        st, out = post(p.url, "/fn/warm", b"x", conn=conn, token=p.token)
        dt = time.perf_counter() - t0
        if st != 200 or out != b"hello x":
            raise PlatformError("warm call: %s %r" % (st, out[:300]))
        if i >= 10:
            lat.append(dt)
        if i % 5 == 0:
            t0 = time.perf_counter()
            subprocess.run(["/usr/bin/python3", "-I", os.path.join(d, "main.py")], input=b"x",
                           stdout=subprocess.DEVNULL)
            bare.append(time.perf_counter() - t0)
    time.sleep(0.2)     # the last box's teardown, which is not on its request's path but is on the CPUs
    j1, d1 = jails_cpu_seconds(p), cpu_seconds(pids)
    conn.close()
    a, b = summary_ms(lat), summary_ms(bare)
    cpu_jails = (j1 - j0) if j0 is not None and j1 is not None else float("nan")
    cpu_daemons = d1 - d0
    header("Warm fresh mode, python3, a new jail per request, one at a time (ms)")
    row("fnbox /fn/warm (keep-alive)", a)
    row("bare python3 -I main.py", b)
    cpu = {"jails_ms": cpu_jails * 1e3 / rounds, "daemons_ms": cpu_daemons * 1e3 / rounds}
    print("  CPU per request: %.2f ms in the jail (the box, its init, their setup and teardown), %.2f ms in "
          "the daemons; bare python3 start-up is the peer above" % (cpu["jails_ms"], cpu["daemons_ms"]))
    rs = {}
    print()
    print("  %-40s %10s %9s %9s" % ("wrk %ds" % seconds, "req/s", "p50 ms", "p99 ms"))
    for c in (1, 4, 16):
        r = wrk(p.url + "/fn/warm", seconds, c, threads=min(c, 2), body=b"x", token=p.token)
        rs[c] = r
        wrk_line("fnbox, %d connection%s" % (c, "s" if c > 1 else ""), r)
    remove(p, "warm")
    print("  median %.2f ms (goal < %.0f ms: %s); %.1fx faster than bare python3 start-up" % (
        a["p50"], GOAL_WARM_P50_MS, verdict(a["p50"] < GOAL_WARM_P50_MS), b["p50"] / a["p50"]))
    return {"latency": a, "bare_python": b, "wrk": rs, "cpu_per_request": cpu}


# ---- service mode vs nginx --------------------------------------------------------------

NGINX_CONF = """
daemon off;
user root;
worker_processes %(workers)s;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    upstream backend { server unix:%(sock)s; keepalive 64; }
    # the same job as the activator's: the client's address, a request id
    # and a trace context to the backend, the caller's token not
    map $request_id $span_id { "~^(?<s>.{16})" $s; }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header traceparent 00-$request_id-$span_id-01;
            proxy_set_header Authorization "";
            proxy_buffering off;
        }
    }
}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    def __init__(self, tmp, sock, workers):
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=tmp)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"dir": self.dir, "sock": sock, "port": self.port, "workers": workers})
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = "http://127.0.0.1:%d" % self.port

        def up():
            if self.proc.poll() is not None:
                raise PlatformError("nginx exited: %s" % self.proc.stderr.read().decode())
            try:
                return post(self.url, "/", b"up", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for("nginx on %s" % self.url, up, 10)

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pids):
    """utime + stime of these processes (those gone count nothing)."""
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                w = f.read().rsplit(")", 1)[1].split()
            t += (int(w[11]) + int(w[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return t


def proc_tree(pid):
    """pid and its descendants (nginx: the master and its workers)."""
    out = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = f.read().split()
    except OSError:
        kids = []
    for k in kids:
        out += proc_tree(int(k))
    return out


def build_native_echo(tmp):
    src = os.path.join(ROOT, "tests", "dataplane", "functions", "echo-native", "main.c")
    d = os.path.join(tmp, "echo-native")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, "main")
    subprocess.run(["cc", "-O2", "-o", out, src], check=True)
    return out


def bench_service(p, tmp, seconds, conns):
    """Each proxy with one worker and with one per CPU: the platform's
    activator (its default, one per CPU) and a second one with --threads 1,
    against nginx with worker_processes 1 and auto."""
    # (label, function, code, runtime, whether the proxy sets the rate)
    backends = [("python3 echo-service", "echo-py", ECHO_SERVICE, "python3", False)]
    try:
        backends.append(("native echo", "echo-c", build_native_echo(tmp), "exec", True))
    except (subprocess.CalledProcessError, OSError) as e:
        print("  (native echo not built: %s)" % e)
    out = {}
    print()
    print("Service mode, wrk %ds, %d connections: through the activator vs nginx to the same instance" % (
        seconds, conns))
    print("  (each with one worker, and with one per CPU: %d here)" % os.cpu_count())
    print("  %-40s %10s %9s %9s" % ("", "req/s", "p50 ms", "p99 ms"))
    urls = {"activator-auto": p.url}
    pids = {"activator-auto": [p.activator.pid]}
    try:
        urls["activator-1"] = p.start_another_activator("act-bench-1", ["--threads", "1"])
        pids["activator-1"] = [p.more_activators[-1].pid]
    except PlatformError as e:
        print("  (activator with one worker: %s)" % e)
    try:
        for label, name, code, runtime, proxy_bound in backends:
            out[label] = service_backend(p, tmp, seconds, conns, urls, pids, label, name, code, runtime,
                                         proxy_bound)
    finally:
        for dm in p.more_activators:
            dm.stop()
    return out


def service_backend(p, tmp, seconds, conns, urls, pids, label, name, code, runtime, proxy_bound):
    rev = p.deploy(name, code, runtime=runtime,
                   spec={"mode": "service", "scale": {"min": 1, "max": 1, "target": 1000},
                         "concurrency": 1000, "limits": {"timeout": "5s", "pids": 1024}})
    inst = p.wait_instances(rev, lambda i: len(i) == 1, 60)
    sock = inst[0]["endpoint"][len("unix:"):]
    for u in urls.values():
        wait_for("%s routed by %s" % (name, u),
                 lambda u=u: post(u, "/fn/" + name, b"ping", token=p.token) == (200, b"ping"), 30)
    peers = {}
    for workers in ("1", "auto"):
        try:
            peers["nginx-%s" % workers] = Nginx(tmp, sock, workers)
        except PlatformError as e:
            print("  (nginx %s: %s)" % (workers, e))
    order = list(urls) + list(peers)
    runs = {k: [] for k in order}
    for seq in (order, list(reversed(order))):      # A B C D D C B A
        for k in seq:
            url = (urls[k] if k in urls else peers[k].url) + "/fn/" + name
            ps = pids[k] if k in pids else proc_tree(peers[k].proc.pid)
            c0 = cpu_seconds(ps)
            # the same request bytes for both: nginx passes the header on
            r = wrk(url, seconds, conns, token=p.token)
            # the proxy's own CPU per request: what decides the ratio
            # on a machine that wrk and the backend share with it
            r["cpu_us"] = (cpu_seconds(ps) - c0) * 1e6 / r["requests"] if r["requests"] else None
            runs[k].append(r)
    for n in peers.values():
        n.stop()
    remove(p, name)
    res = {}
    for k, rs in runs.items():
        cpu = [r["cpu_us"] for r in rs if r["cpu_us"] is not None]
        res[k] = {"rps": sum(r["rps"] for r in rs) / len(rs), "p50": statistics.median(r["p50"] for r in rs),
                  "p99": max(r["p99"] for r in rs), "non2xx": sum(r["non2xx"] for r in rs),
                  "errors": sum(r["errors"] for r in rs),
                  "cpu_us": statistics.median(cpu) if cpu else None}
        wrk_line("%s: %s" % (label, k), res[k])
    print("    CPU per request (median, us): " + ", ".join(
        "%s %.1f" % (k, res[k]["cpu_us"]) for k in runs if res[k]["cpu_us"] is not None))
    # the goal compares like with like: as many workers on each side
    for w in ("1", "auto"):
        a, n = "activator-" + w, "nginx-" + w
        if a not in res or n not in res:
            continue
        ratio = res[a]["rps"] / res[n]["rps"]
        if proxy_bound:
            judged = "goal >= %.1fx: %s" % (GOAL_SERVICE_RATIO, verdict(ratio >= GOAL_SERVICE_RATIO))
        else:
            judged = "the backend sets the rate: no goal, read it by the nginx spread below"
        print("    %s / %s: %.2fx req/s, p99 %.2f vs %.2f ms  (%s)" % (
            a, n, ratio, res[a]["p99"], res[n]["p99"], judged))
        res["ratio_%s_over_%s" % (a, n)] = ratio
    if "activator-auto" in res and "nginx-1" in res:
        ratio = res["activator-auto"]["rps"] / res["nginx-1"]["rps"]
        res["ratio_activator-auto_over_nginx-1"] = ratio
        print("    (activator-auto / nginx-1: %.2fx; more workers than nginx's one, on CPUs the backend"
              " and wrk share)" % ratio)
    nginx_rps = [res[k]["rps"] for k in peers]
    spread = max(nginx_rps) / min(nginx_rps) - 1 if len(nginx_rps) > 1 else None
    res["nginx_spread"] = spread
    if spread is not None:
        print("    (nginx-1 and nginx-auto differ by %.0f%% between themselves in this run)" % (spread * 100))
    return res


# ---- many requests at once, asyncio -------------------------------------------------------

async def _one_async(host, port, path, body, results, t0, opened=None, token=None):
    head = "".join("%s: %s\r\n" % kv for kv in auth(token).items()).encode()
    try:
        r, w = await asyncio.open_connection(host, port)
        if opened is not None:
            opened.append(1)
        w.write(b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
            path.encode(), head, len(body), body))
        await w.drain()
        data = await r.read()
        w.close()
        st = int(data[9:12]) if data.startswith(b"HTTP/1.") else None
        results.append((st, time.perf_counter() - t0))
    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
        results.append((type(e).__name__, time.perf_counter() - t0))


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(n, soft), hard), hard))


def bench_burst(p, tmp, n):
    d = write_fn(tmp, "burstpy", {"main.py": PY_BOX})
    rev = p.deploy("burst", os.path.join(d, "main.py"), spec={"scale": {"scaleToZeroAfter": "1s"}})
    st, _ = post(p.url, "/fn/burst", b"warm", token=p.token)      # code fetched, then back to zero
    p.wait_instances(rev, lambda i: len(i) == 0, 60, "burst function at zero")
    host, port = p.url.split("://", 1)[1].rsplit(":", 1)
    raise_nofile(n + 256)
    results = []

    async def go():
        t0 = time.perf_counter()
        await asyncio.gather(*[_one_async(host, int(port), "/fn/burst", b"b", results, t0, token=p.token)
                               for _ in range(n)])
    asyncio.run(go())
    ok = [t for s, t in results if s == 200]
    bad = {}
    for s, _ in results:
        if s != 200:
            bad[s] = bad.get(s, 0) + 1
    peak = max(len(p.ready_instances(rev)), 0)
    remove(p, "burst")
    print()
    print("Burst: %d concurrent requests at a python3 function scaled to zero" % n)
    print("  %d of %d answered 200%s" % (len(ok), n, "" if not bad else "; others: %s" % bad))
    if ok:
        print("  first 200 after %.0f ms, last after %.0f ms, p50 %.0f ms; %d instance(s) ready after" % (
            min(ok) * 1000, max(ok) * 1000, statistics.median(ok) * 1000, peak))
    return {"n": n, "ok": len(ok), "other": {str(k): v for k, v in bad.items()},
            "last_ms": max(ok) * 1000 if ok else None, "first_ms": min(ok) * 1000 if ok else None}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def bench_queue(p, tmp, n):
    rev = p.deploy("never", ECHO_SERVICE, spec={"mode": "service", "env": {"LOAD_SECONDS": "3600"},
                                                "limits": {"timeout": "10m"}, "startupTimeout": "10m"})
    pid = p.activator.pid
    idle = rss_kb(pid)
    host, port = p.url.split("://", 1)[1].rsplit(":", 1)
    raise_nofile(n + 256)
    results, opened = [], []
    loop = asyncio.new_event_loop()
    tasks = []

    async def start():
        t0 = time.perf_counter()
        for i in range(n):
            tasks.append(asyncio.ensure_future(_one_async(host, int(port), "/fn/never", b"q", results, t0, opened,
                                                                  token=p.token)))
            if i % 500 == 499:
                await asyncio.sleep(0.05)
        # until every connection is open and the activator has had the requests
        deadline = time.monotonic() + 60
        while (len(opened) + len(results)) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    loop.run_until_complete(start())
    full = rss_kb(pid)
    queued_answered = len(results)
    for t in tasks:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()
    remove(p, "never")      # its starting instance holds CPU on the node that later sections need
    print()
    print("Activator memory with %d requests waiting for a service that never becomes ready" % n)
    print("  RSS idle %.1f MiB, with the requests %.1f MiB: %.2f KiB per queued request" % (
        idle / 1024, full / 1024, (full - idle) / max(n, 1)))
    if queued_answered:
        codes = {}
        for s, _ in results:
            codes[s] = codes.get(s, 0) + 1
        print("  (%d answered while they should have waited: %s)" % (queued_answered, codes))
    return {"n": n, "idle_kib": idle, "full_kib": full, "answered_early": queued_answered, "revision": rev}


# ---- main -----------------------------------------------------------------------------------

# ---- the broker ---------------------------------------------------------------------------

BROKER_BOX = b"""
import http.server, json, os, socket, socketserver, time
BROKER = os.environ["FNBOX_BROKER"]


def one(path, body):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(BROKER)
    s.sendall(b"POST %s HTTP/1.1\\r\\nHost: b\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (path, len(body), body))
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, b):
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        self.reply(b"ok")

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        out = []
        body, want = req.get("body", "ping").encode(), req.get("expect", "ping").encode()
        for _ in range(req["n"]):
            t0 = time.perf_counter()
            r = one(req["path"].encode(), body)
            out.append(time.perf_counter() - t0)
            if not r.startswith(b"HTTP/1.1 200 ") or not r.endswith(want):
                self.reply(json.dumps({"error": r[:300].decode("latin1")}).encode())
                return
            time.sleep(0.002)
        self.reply(json.dumps(out).encode())

    def log_message(self, *a):
        pass


class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


S(os.environ["FNBOX_SOCKET"], H).serve_forever()
"""


def direct_calls(url, path, n, token, body=b"ping", want=b"ping"):
    """The same call from the host straight to the activator: raw socket,
    a new TCP connection each, the bearer token."""
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    head = ("POST %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (path, host, port, token, len(body))).encode() + body
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(head)
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        out.append(time.perf_counter() - t0)
        if not data.startswith(b"HTTP/1.1 200 ") or not data.endswith(want):
            raise PlatformError("direct call: %r" % data[:300])
        time.sleep(0.002)
    return out


def broker_box(p, tmp):
    """Deploy bbox, the service box that calls through its broker (BROKER_BOX):
    its revision."""
    d = write_fn(tmp, "brokerbox", {"main.py": BROKER_BOX})
    return p.deploy("bbox", os.path.join(d, "main.py"), spec={"mode": "service", "scale": {"min": 1}})


def broker_compare(p, path, rounds, body=b"ping", want=b"ping"):
    """POST body to path from inside bbox through its broker and from the
    host straight to the activator, rounds times each, in alternating
    batches (drift hits both alike); every answer a 200 that ends with
    want. Returns (inside, direct) latencies in seconds."""
    inside, direct = [], []
    for _ in range(4):
        st, out = post(p.url, "/fn/bbox", json.dumps({"n": rounds // 4, "path": path, "body": body.decode(),
                                                      "expect": want.decode()}).encode(), token=p.token, timeout=300)
        j = json.loads(out) if st == 200 else None
        if not isinstance(j, list):
            raise PlatformError("broker calls from the box: %s %r" % (st, out[:300]))
        inside += j[2:]
        direct += direct_calls(p.url, path, rounds // 4, p.token, body, want)[2:]
    return inside, direct


def bench_broker(p, tmp, rounds):
    echo = p.deploy("becho", ECHO_SERVICE, spec={"mode": "service", "scale": {"min": 1}})
    box = broker_box(p, tmp)
    p.wait_instances(echo, lambda i: len(i) == 1, 60)
    p.wait_instances(box, lambda i: len(i) == 1, 60)
    inside, direct = broker_compare(p, "/fn/becho", rounds)
    a, b = summary_ms(inside), summary_ms(direct)
    header("Broker: a call from inside a jail vs the same call from the host (ms)")
    row("box -> broker -> activator -> echo", a)
    row("host -> activator -> echo (TCP)", b)
    added = a["p50"] - b["p50"]
    print("  the broker adds %.2f ms at the median, %.2f ms at p99" % (added, a["p99"] - b["p99"]))
    p.cli_ok("delete", "bbox")
    remove(p, "becho")
    return {"inside": a, "direct": b, "added_p50_ms": added}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=20, help="cold starts per kind (default 20)")
    ap.add_argument("--warm-rounds", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=5, help="each wrk run (default 5)")
    ap.add_argument("--conns", type=int, default=32, help="wrk connections for service mode")
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--queued", type=int, default=10000)
    ap.add_argument("--broker-rounds", type=int, default=400, help="broker calls each way (default 400)")
    ap.add_argument("--only", action="append", choices=SECTIONS)
    ap.add_argument("--json")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("data_bench: needs root (the runtime makes namespaces and cgroups)")
        return 1
    missing = [t for t in ("wrk", "nginx") if not shutil.which(t)]
    if missing:
        print("data_bench: %s missing: run make deps" % " and ".join(missing))
    sections = args.only or list(SECTIONS)
    raise_nofile(max(args.queued, args.burst) + 512)
    print("fnbox data-plane benchmark: %d CPUs, load %s, build %s" % (
        os.cpu_count(), open("/proc/loadavg").read().split()[0], build))
    figures = {}
    failed = []
    tmp = tempfile.mkdtemp(prefix="fnbox-bench-")
    try:
        qdepth = str(max(args.queued, args.burst) + 100)
        # the broker's rate limit (20/s) would throttle its own benchmark
        node = Node("bench", pool=4, args=["--broker-rate", "1000000", "--broker-burst", "1000000"])
        with Platform(build, nodes=[node], netns=False,
                      activator_args=["--queue-depth", qdepth]) as p:
            for name, fnc, a in (("cold", bench_cold, (p, build, tmp, args.rounds)),
                                 ("warm", bench_warm, (p, tmp, args.warm_rounds, args.seconds)),
                                 ("service", bench_service, (p, tmp, args.seconds, args.conns)),
                                 ("burst", bench_burst, (p, tmp, args.burst)),
                                 ("queue", bench_queue, (p, tmp, args.queued)),
                                 ("broker", bench_broker, (p, tmp, args.broker_rounds))):
                if name not in sections or (name == "service" and missing):
                    continue
                progress("%s ..." % name)
                try:
                    figures[name] = fnc(*a)
                except (PlatformError, OSError, subprocess.SubprocessError) as e:
                    failed.append(name)
                    print("\n%s: could not be measured: %s" % (name, e))
                    print(p.all_logs(1500))
            if failed:
                print(p.all_logs(1500))
    except PlatformError as e:
        print("data_bench: %s" % e)
        failed.append("platform")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1, default=str)
    print()
    print("data_bench: %s" % ("all figures measured" if not failed else "not measured: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
