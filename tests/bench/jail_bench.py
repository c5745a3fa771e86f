#!/usr/bin/env python3
"""fnbox jail benchmark: jail start-up on both paths, against its peers.

`fnbox-runtime run` takes one of two paths, and both are measured, side by
side, in one run:

  one-shot  `run --no-daemon`: the run process builds the whole jail itself
            (namespaces, root, cgroup, user namespace, seccomp), runs the box
            and tears the jail down before it exits.
  daemon    `run --daemon --socket S`: the run process sends the request to a
            `fnbox-runtime serve` that this script starts (with --pool N
            prepared jails) and stops afterwards; the request runs in a jail
            that was prepared ahead (namespaces, root and cgroup made, no
            code), and the answer comes back before the jail's teardown.
            The wall time is still that of the whole `run` command.

Latency: every command below is run once per round, round-robin (the order is
rotated each round so that no command always follows the same one), so that
machine noise falls on all of them alike. The first --warmup rounds are thrown
away. Each sample is the wall time of the whole command, taken with
time.perf_counter_ns() around subprocess.run().

  fnbox-daemon       fnbox-runtime run --daemon ... --runtime exec --code /bin/true
  fnbox-oneshot      fnbox-runtime run --no-daemon --runtime exec --code /bin/true
  bwrap              bwrap --unshare-all ... /bin/true (the same isolation, roughly)
  unshare            unshare --fork --pid --mount --ipc --uts --net --cgroup
                             --user --map-root-user --mount-proc /bin/true
  fnbox-daemon-py    fnbox-runtime run --daemon ... --runtime python3 --code hello.py
  fnbox-oneshot-py   fnbox-runtime run --no-daemon --runtime python3 --code hello.py
  python-bare        /usr/bin/python3 -I hello.py (no jail; as the jail runs it)
  true               /bin/true (the cost of spawning anything at all)

Throughput: N workers (default 2 x nproc) each start jails back to back for a
fixed time; jails/s for fnbox through the daemon, fnbox one-shot, and bwrap.
The time is split in halves run A B C C B A so that slow drift of the
machine hits all alike. Under such load the daemon's pool runs dry and it
builds jails on demand: the report says how many requests its pool served.

Every run's exit status is checked (and the hello world's output); a command
that fails is reported and not timed, and the script then exits 1. Otherwise
it exits 0 whether the goals are met or not: a benchmark never fails the build.

Python 3 standard library only. Usage:
  python3 tests/bench/jail_bench.py --build build [--rounds 200]
      [--warmup 5] [--throughput-seconds 10] [--workers N] [--pool 8] [--json PATH]
"""

import argparse
import gc
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

GOAL_FNBOX_OVER_BWRAP_P50 = 0.5     # fnbox p50 / bwrap p50 at most this
GOAL_PYTHON_OVERHEAD_PCT = 25.0     # (jail python - bare python) / bare python
DAEMON_READY_S = 30

HELLO_SRC = 'print("hello")\n'
HELLO_OUT = b"hello\n"
BARE_PYTHON = "/usr/bin/python3"
TRUE = "/bin/true"

# Top-level directories that the jail recreates from the host (the same list
# as runtime/jail.c): a symlink on the host becomes a symlink, a real
# directory becomes a read-only bind.
TOPDIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


class Cmd:
    def __init__(self, key, label, argv, expect_out=None):
        self.key = key
        self.label = label
        self.argv = argv
        self.expect_out = expect_out   # bytes the command must print, or None
        self.samples = []              # ns
        self.failures = []             # (round, message)
        self.skipped = None            # why it is not measured

    def check(self, proc):
        """None when the run is good, else what went wrong."""
        if proc.returncode != 0:
            err = (proc.stderr or b"").decode(errors="replace").strip()
            return "exit status %d%s" % (proc.returncode,
                                         (": " + err[-400:]) if err else "")
        if self.expect_out is not None and proc.stdout != self.expect_out:
            return "unexpected output %r (wanted %r)" % (proc.stdout[:200], self.expect_out)
        return None


MAX_FAILURES = 3    # a command failing this often is dropped from the rounds
RUN_TIMEOUT_S = 60  # one run taking longer than this is a failure, not a sample


def run_once(argv):
    t0 = time.perf_counter_ns()
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        proc = subprocess.CompletedProcess(
                argv, -1, e.stdout or b"",
                ("still running after %d s, killed" % RUN_TIMEOUT_S).encode())
    t1 = time.perf_counter_ns()
    return t1 - t0, proc


def bwrap_argv(program):
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
    for name in TOPDIRS:
        path = "/" + name
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev", program]
    return argv


UNSHARE_ARGV = ["unshare", "--fork", "--pid", "--mount", "--ipc", "--uts", "--net",
                "--cgroup", "--user", "--map-root-user", "--mount-proc", TRUE]


def percentile(sorted_ns, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_ns:
        return float("nan")
    if len(sorted_ns) == 1:
        return float(sorted_ns[0])
    pos = (len(sorted_ns) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_ns) - 1)
    return sorted_ns[lo] + (sorted_ns[hi] - sorted_ns[lo]) * (pos - lo)


def stats_ms(samples):
    s = sorted(samples)
    return {
        "n": len(s),
        "min": s[0] / 1e6,
        "p50": statistics.median(s) / 1e6,
        "p90": percentile(s, 0.90) / 1e6,
        "p99": percentile(s, 0.99) / 1e6,
        "max": s[-1] / 1e6,
        "mean": statistics.fmean(s) / 1e6,
    }


def tool_version(argv):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        return p.stdout.decode(errors="replace").strip().splitlines()[0]
    except Exception as e:  # noqa: BLE001 - informative only
        return "unknown (%s)" % e


def progress(msg):
    """Progress goes to stderr, the report to stdout."""
    sys.stdout.flush()
    print(msg, file=sys.stderr, flush=True)


# ----- latency -----

def preflight(cmds):
    """Run each command once; a command that fails is not timed."""
    for c in cmds:
        if c.skipped:
            continue
        try:
            _, proc = run_once(c.argv)
        except OSError as e:
            c.skipped = "cannot start: %s" % e
            c.failures.append((-1, c.skipped))
            continue
        why = c.check(proc)
        if why:
            c.skipped = "FAILED before timing: " + why
            c.failures.append((-1, why))


def measure_latency(cmds, rounds, warmup):
    live = [c for c in cmds if not c.skipped]
    total = warmup + rounds
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(total):
            k = r % len(live) if live else 0
            for c in live[k:] + live[:k]:
                if c.skipped:
                    continue
                try:
                    dt, proc = run_once(c.argv)
                    why = c.check(proc)
                except OSError as e:
                    why = "cannot start: %s" % e
                if why:
                    c.failures.append((r, why))
                    if len(c.failures) >= MAX_FAILURES:
                        c.skipped = "stopped after %d failed runs" % MAX_FAILURES
                    continue
                if r >= warmup:
                    c.samples.append(dt)
            if (r + 1) % 50 == 0 or r + 1 == total:
                progress("  round %d/%d" % (r + 1, total))
    finally:
        if gc_was:
            gc.enable()


# ----- throughput -----

def _worker(argv, start_r, result_w, seconds):
    """Child process: wait for the start signal, then start argv back to back
    until the time is up; report 'ok failed' on result_w."""
    os.setpgid(0, 0)  # so that a stuck worker can be killed with its runs
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
               (os.POSIX_SPAWN_DUP2, devnull, 2)]
    path = shutil.which(argv[0]) or argv[0]
    env = dict(os.environ)
    ok = failed = 0
    os.read(start_r, 1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = os.posix_spawn(path, argv, env, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            ok += 1
        else:
            failed += 1
    os.write(result_w, b"%d %d\n" % (ok, failed))


def throughput(argv, workers, seconds):
    """Jails completed per second with `workers` loops running at once.
    Each worker is a forked process that spawns with posix_spawn (cheap, and
    the same for every command measured)."""
    start_r, start_w = os.pipe()
    result_r, result_w = os.pipe()
    pids = []
    sys.stdout.flush()
    sys.stderr.flush()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(start_w)
                os.close(result_r)
                _worker(argv, start_r, result_w, seconds)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(start_r)
    os.close(result_w)
    time.sleep(0.2)  # let every worker reach its read()
    t0 = time.perf_counter_ns()
    os.write(start_w, b"x" * workers)
    os.close(start_w)
    data = b""
    stuck = False
    give_up = time.monotonic() + seconds + RUN_TIMEOUT_S
    while True:
        left = give_up - time.monotonic()
        if left <= 0 or not select.select([result_r], [], [], left)[0]:
            stuck = True
            break
        chunk = os.read(result_r, 4096)
        if not chunk:
            break
        data += chunk
    t1 = time.perf_counter_ns()
    os.close(result_r)
    if stuck:
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    bad_exit = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            bad_exit += 1
    ok = failed = 0
    lines = data.split()
    for i in range(0, len(lines) - 1, 2):
        ok += int(lines[i])
        failed += int(lines[i + 1])
    reported = len(lines) // 2
    problems = []
    if failed:
        problems.append("%d run(s) exited non-zero" % failed)
    if reported != workers or bad_exit:
        problems.append("%d of %d workers reported%s" % (
                reported, workers, " (stuck, killed)" if stuck else ""))
    return {"ok": ok, "failed": failed, "elapsed_s": (t1 - t0) / 1e9, "problems": problems}


def measure_throughput(peers, workers, seconds):
    """peers: list of (key, argv). Each gets `seconds` in two halves, run in
    the order A B C C B A."""
    half = seconds / 2.0
    acc = {k: {"ok": 0, "failed": 0, "elapsed_s": 0.0, "problems": []} for k, _ in peers}
    for key, argv in peers + peers[::-1]:
        progress("  %s: %d workers for %.1f s" % (key, workers, half))
        r = throughput(argv, workers, half)
        a = acc[key]
        a["ok"] += r["ok"]
        a["failed"] += r["failed"]
        a["elapsed_s"] += r["elapsed_s"]
        a["problems"] += r["problems"]
    for a in acc.values():
        a["jails_per_s"] = a["ok"] / a["elapsed_s"] if a["elapsed_s"] > 0 else float("nan")
        a["workers"] = workers
        a["seconds"] = seconds
    return acc


# ----- report -----

def mark(ok):
    return "MET" if ok else "MISSED"


def fmt_ratio(v):
    return "n/a" if v is None else "%.3f" % v



# ----- the daemon -----

class Daemon:
    """A `fnbox-runtime serve` with a pool, for the daemon path."""

    def __init__(self, runtime, tmp, pool):
        self.socket = os.path.join(tmp, "runtime.sock")
        self.err_path = os.path.join(tmp, "serve.err")
        self.pool = pool
        self.proc = None
        self.ready_line = None
        self.last_words = ""
        self.argv = [runtime, "serve", "--socket", self.socket, "--pool", str(pool)]

    def start(self):
        """None when ready, else why not."""
        err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        err.close()
        ready, _, _ = select.select([self.proc.stdout], [], [], DAEMON_READY_S)
        line = self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if "ready" not in line:
            self.stop()
            return "fnbox-runtime serve did not get ready: %r %s" % (line, self.last_words)
        self.ready_line = line
        return None

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with open(self.err_path, "rb") as f:
            self.last_words = f.read().decode(errors="replace").strip()[-400:]
        self.proc.stdout.close()
        self.proc = None

    def run_argv(self, *args):
        return [self.argv[0], "run", "--daemon", "--socket", self.socket] + list(args)


# ----- report -----

def print_latency(cmds):
    st = {}
    print()
    print("Latency, wall time of the whole command (ms)")
    hdr = "  %-34s %5s %8s %8s %8s %8s %8s" % ("command", "n", "min", "p50", "p90", "p99", "max")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for c in cmds:
        if c.samples:
            s = stats_ms(c.samples)
            st[c.key] = s
            print("  %-34s %5d %8.2f %8.2f %8.2f %8.2f %8.2f" % (
                    c.label, s["n"], s["min"], s["p50"], s["p90"], s["p99"], s["max"]))
        else:
            print("  %-34s  %s" % (c.label, c.skipped or "no samples"))
    for c in cmds:
        if c.failures:
            print("  !! %s: %d failed run(s), not timed; first: %s" % (
                    c.label, len(c.failures), c.failures[0][1]))
    return st


def ratio(st, a, b, q):
    if a in st and b in st and st[b][q] > 0:
        return st[a][q] / st[b][q]
    return None


def overhead_pct(st, a, b, q):
    if a in st and b in st and st[b][q] > 0:
        return 100.0 * (st[a][q] - st[b][q]) / st[b][q]
    return None


def print_ratios(st):
    """The ratios for both paths; the goals are judged on each."""
    ratios, goals = {}, {}
    print()
    print("Ratios (p50, [p99])")
    for path, ex, py in (("daemon", "fnbox_daemon", "fnbox_daemon_py"),
                         ("one-shot", "fnbox_oneshot", "fnbox_oneshot_py")):
        key = path.replace("-", "")
        for peer in ("bwrap", "unshare"):
            r50, r99 = ratio(st, ex, peer, "p50"), ratio(st, ex, peer, "p99")
            ratios["%s_over_%s_p50" % (key, peer)] = r50
            ratios["%s_over_%s_p99" % (key, peer)] = r99
            line = "  fnbox %-8s / %-7s %s  [%s]" % (path, peer, fmt_ratio(r50), fmt_ratio(r99))
            if peer == "bwrap" and r50 is not None:
                goals["%s_over_bwrap_p50" % key] = r50 <= GOAL_FNBOX_OVER_BWRAP_P50
                line += "  (goal <= %.2f: %s)" % (GOAL_FNBOX_OVER_BWRAP_P50,
                                                   mark(goals["%s_over_bwrap_p50" % key]))
            print(line)
        o50, o99 = overhead_pct(st, py, "python_bare", "p50"), overhead_pct(st, py, "python_bare", "p99")
        ratios["%s_python_overhead_pct_p50" % key] = o50
        ratios["%s_python_overhead_pct_p99" % key] = o99
        if o50 is not None:
            goals["%s_python_overhead_p50" % key] = o50 <= GOAL_PYTHON_OVERHEAD_PCT
            print("  python in the %-8s jail: %+.1f%% of bare python's start-up  [%+.1f%%]  "
                  "(goal <= %.0f%%: %s)" % (path, o50, o99, GOAL_PYTHON_OVERHEAD_PCT,
                                            mark(goals["%s_python_overhead_p50" % key])))
            print("      = (%.2f ms - %.2f ms) / %.2f ms" % (st[py]["p50"], st["python_bare"]["p50"],
                                                           st["python_bare"]["p50"]))
        if ex in st and "true" in st:
            ratios["%s_minus_true_p50_ms" % key] = st[ex]["p50"] - st["true"]["p50"]
            print("  fnbox %s exec p50 minus direct /bin/true p50: %.2f ms" % (
                    path, ratios["%s_minus_true_p50_ms" % key]))
    return ratios, goals


def print_throughput(tput, workers, nproc, seconds, daemon_note):
    print()
    print("Throughput, %d concurrent workers on %d cpus, %.1f s per command (halves A B C C B A)" % (
            workers, nproc, seconds))
    for key, label in (("fnbox_daemon", "fnbox daemon /bin/true"), ("fnbox_oneshot", "fnbox one-shot /bin/true"),
                       ("bwrap", "bwrap /bin/true")):
        if key in tput:
            t = tput[key]
            print("  %-26s %8.1f jails/s  (%d runs in %.2f s%s)" % (
                    label, t["jails_per_s"], t["ok"], t["elapsed_s"],
                    (", %d FAILED" % t["failed"]) if t["failed"] else ""))
        else:
            print("  %-26s  n/a" % label)
    out = {}
    for key in ("fnbox_daemon", "fnbox_oneshot"):
        if key in tput and "bwrap" in tput and tput["bwrap"]["jails_per_s"] > 0:
            out[key] = tput[key]["jails_per_s"] / tput["bwrap"]["jails_per_s"]
            print("  %s / bwrap jails/s %.3f  (higher is better)" % (key.replace("_", " "), out[key]))
    if daemon_note:
        print("  daemon: %s" % daemon_note)
    for key, t in tput.items():
        if t["problems"]:
            print("  !! %s under load: %s" % (key, "; ".join(t["problems"])))
    return out


def build_cmds(runtime, daemon, hello):
    def oneshot(*args):
        return [runtime, "run", "--no-daemon"] + list(args)
    return [
        Cmd("fnbox_daemon", "fnbox daemon exec /bin/true", daemon.run_argv("--runtime", "exec", "--code", TRUE)),
        Cmd("fnbox_oneshot", "fnbox one-shot exec /bin/true", oneshot("--runtime", "exec", "--code", TRUE)),
        Cmd("bwrap", "bwrap /bin/true", bwrap_argv(TRUE)),
        Cmd("unshare", "unshare /bin/true", UNSHARE_ARGV),
        Cmd("fnbox_daemon_py", "fnbox daemon python3 hello",
            daemon.run_argv("--runtime", "python3", "--code", hello), HELLO_OUT),
        Cmd("fnbox_oneshot_py", "fnbox one-shot python3 hello",
            oneshot("--runtime", "python3", "--code", hello), HELLO_OUT),
        Cmd("python_bare", "bare python3 -I hello", [BARE_PYTHON, "-I", hello], HELLO_OUT),
        Cmd("true", "direct /bin/true", [TRUE]),
    ]


def print_header(build_runtime, nproc, args, by, have_bwrap, have_unshare, daemon):
    print("fnbox jail benchmark")
    print("  host     : %s %s, %d cpus, %s; load average %s" % (
            platform.system(), platform.release(), nproc, platform.machine(),
            " ".join("%.2f" % x for x in os.getloadavg())))
    print("  runtime  : %s (run from a copy taken at start)" % build_runtime)
    print("  daemon   : %s" % (daemon.ready_line or "NOT RUNNING"))
    print("  bwrap    : %s" % (tool_version(["bwrap", "--version"]) if have_bwrap
                               else "NOT INSTALLED (apt-get install bubblewrap, or `make deps`)"))
    print("  unshare  : %s" % (tool_version(["unshare", "--version"]) if have_unshare else "NOT INSTALLED"))
    print("  python   : %s" % tool_version([BARE_PYTHON, "--version"]))
    print("  latency  : %d rounds round-robin (+%d warm-up discarded)" % (args.rounds, args.warmup))
    print("  bwrap cmd: %s" % " ".join(by["bwrap"].argv))
    print("  unshare  : %s" % " ".join(UNSHARE_ARGV))
    print(flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--rounds", type=int, default=200, help="timed rounds (default 200)")
    ap.add_argument("--warmup", type=int, default=5, help="rounds thrown away first (default 5)")
    ap.add_argument("--throughput-seconds", type=float, default=10.0,
                    help="seconds of load per command for jails/s, 0 to skip (default 10)")
    ap.add_argument("--workers", type=int, default=0,
                    help="concurrent loops for jails/s (default 2 x nproc)")
    ap.add_argument("--pool", type=int, default=8, help="prepared jails in the daemon's pool (default 8)")
    ap.add_argument("--json", default=None,
                    help="where to write the numbers (default BUILD/bench/jail.json if BUILD exists)")
    args = ap.parse_args()
    if args.rounds < 1 or args.warmup < 0 or not 0 <= args.pool <= 64:
        ap.error("--rounds must be >= 1, --warmup >= 0, --pool 0..64")
    return args


def main():
    args = parse_args()
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = args.workers or 2 * nproc
    runtime = os.path.join(args.build, "bin", "fnbox-runtime")
    if not os.access(runtime, os.X_OK):
        print("jail_bench: %s not found or not executable: run `make all` first" % runtime, file=sys.stderr)
        return 1
    build_runtime = os.path.abspath(runtime)
    have_bwrap, have_unshare = shutil.which("bwrap"), shutil.which("unshare")

    tmp = tempfile.mkdtemp(prefix="fnbox-bench-")
    daemon = None
    tput = None
    try:
        os.chmod(tmp, 0o755)
        hello = os.path.join(tmp, "hello.py")
        with open(hello, "w") as f:
            f.write(HELLO_SRC)
        os.chmod(hello, 0o644)
        # A private copy, so that a rebuild while the benchmark runs cannot
        # swap (or half-write) the binary under it.
        runtime = os.path.join(tmp, "fnbox-runtime")
        shutil.copy2(build_runtime, runtime)
        os.chmod(runtime, 0o755)
        daemon = Daemon(runtime, tmp, args.pool)
        cmds = build_cmds(runtime, daemon, hello)
        by = {c.key: c for c in cmds}
        why = daemon.start()
        if why:
            for k in ("fnbox_daemon", "fnbox_daemon_py"):
                by[k].skipped = "DAEMON FAILED: " + why
                by[k].failures.append((-1, why))
        if not have_bwrap:
            by["bwrap"].skipped = ("NOT INSTALLED: bwrap is not on PATH; install the "
                                   "Debian package bubblewrap (`make deps`)")
        if not have_unshare:
            by["unshare"].skipped = "NOT INSTALLED: unshare is not on PATH (package util-linux)"
        print_header(build_runtime, nproc, args, by, have_bwrap, have_unshare, daemon)

        preflight(cmds)
        measure_latency(cmds, args.rounds, args.warmup)
        if args.throughput_seconds > 0:
            peers = [(k, by[k].argv) for k in ("fnbox_daemon", "fnbox_oneshot", "bwrap")
                     if not by[k].skipped and not by[k].failures]
            if peers:
                tput = measure_throughput(peers, workers, args.throughput_seconds)
    finally:
        if daemon:
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    st = print_latency(cmds)
    errors = [c for c in cmds if c.failures]
    ratios, goals = print_ratios(st)
    tput_ratios = {}
    if tput is not None:
        note = daemon.last_words.splitlines()[-1] if daemon.last_words else ""
        tput_ratios = print_throughput(tput, workers, nproc, args.throughput_seconds, note)
    print()
    if goals:
        print("Goals: " + ", ".join("%s %s" % (k, mark(v)) for k, v in goals.items()))
    print("The daemon path is what `fnbox-runtime run` takes when `fnbox-runtime serve` runs; "
          "the one-shot path is what it takes without one (or with --no-daemon).")
    if not have_bwrap:
        print("NOTE: bwrap is NOT INSTALLED, so the comparison with bwrap is missing; "
              "install bubblewrap (`make deps`).")

    failed = bool(errors) or bool(tput and any(t["problems"] for t in tput.values()))
    result = {
        "host": {"kernel": platform.release(), "cpus": nproc, "machine": platform.machine()},
        "versions": {
            "bwrap": tool_version(["bwrap", "--version"]) if have_bwrap else None,
            "unshare": tool_version(["unshare", "--version"]) if have_unshare else None,
            "python": tool_version([BARE_PYTHON, "--version"]),
        },
        "rounds": args.rounds,
        "warmup": args.warmup,
        "daemon": {"pool": args.pool, "ready": daemon.ready_line, "last_words": daemon.last_words},
        "commands": {c.key: {"argv": c.argv, "label": c.label, "skipped": c.skipped,
                             "failures": len(c.failures),
                             "first_failure": c.failures[0][1] if c.failures else None,
                             "stats_ms": st.get(c.key),
                             "samples_us": [round(x / 1000) for x in c.samples]}
                     for c in cmds},
        "ratios": ratios,
        "throughput_over_bwrap": tput_ratios,
        "goals": {
            "fnbox_over_bwrap_p50_max": GOAL_FNBOX_OVER_BWRAP_P50,
            "python_overhead_pct_max": GOAL_PYTHON_OVERHEAD_PCT,
            "met": goals,
        },
        "throughput": tput,
        "bwrap_installed": bool(have_bwrap),
        "ok": not failed,
    }
    json_path = args.json
    if json_path is None and os.path.isdir(args.build):
        json_path = os.path.join(args.build, "bench", "jail.json")
    if json_path:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print("Numbers written to %s" % json_path)
    if failed:
        print("jail_bench: some commands FAILED (see !! above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
