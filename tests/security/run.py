#!/usr/bin/env python3
"""tests/security/run.py: the hostile security suite for fnbox's jail.

Each test runs real boxes (tests/security/boxes/*.c, built into
BUILD/tests/boxes, and tests/security/boxes_py/*) through
`fnbox-runtime run --json`, asserts the exact outcome of every attack (the
errno, the signal or the status), and then asserts that the host is
unchanged: no leftover jail processes, cgroups, mounts, network namespaces
or files in /tmp.

The suite runs once per path a jail can take: "oneshot"
(`run --no-daemon`: the jail is built by the run process itself) and
"daemon" (`run --daemon --socket S` against a `fnbox-runtime serve` that the
suite starts with a pool of prepared jails, waits for its "ready" line, and
stops with SIGTERM afterwards, checking that the daemon left no process,
cgroup, network namespace or file behind), and "zygote" (the request runs
in a child of a zygote, through BUILD/tests/zygote-run, which builds one
zygote for the box and runs --requests requests through it). A pooled jail
and a zygote's child must behave exactly like a one-shot jail, so every
expectation is the same; the zygote path adds attacks of its own (a
request's leftovers seen by the next, signals to the zygote and to
siblings, siblings seeing each other).

usage: run.py [--build DIR] [--quick] [--only NAME]... [--path P] [--mutate]

  --build DIR  where bin/fnbox-runtime and tests/boxes/ live (default build)
  --quick      a small representative subset (for the sanitizer build), on both paths
  --only NAME  run only the named tests (repeatable; prefix match)
  --path P     oneshot, daemon, zygote or all (default all)
  --mutate     self-check: perturb every expectation but the box's status;
               every test must then FAIL

Boxes report one line per step, "STEP: ok" or "STEP: errno=N"; see
tests/security/boxes/box.h. Python standard library only; needs root.
"""
import argparse
import base64
import errno
import glob
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

JAIL_UID = 65534          # the host uid a box runs as (fnbox's default)
TEST_LIMIT_S = 45         # wall-clock limit of one test
CALL_LIMIT_S = 30         # wall-clock limit of one fnbox-runtime call
SETTLE_S = 3.0            # how long a host difference may take to go away
TOKEN = secrets.token_hex(8)
HERE = os.path.dirname(os.path.abspath(__file__))

# Files other programs on a shared machine create in /tmp while we run
# (compilers, shells, mktemp, valgrind, the other fnbox suites' temp
# folders, another run of this one); they are not the jail's doing, and no
# box can write to the host's /tmp anyway. Our own folder is left out by name.
TMP_NOISE = re.compile(r"^(bash_tool_|cc[A-Za-z0-9]{6}\.|tmp\.|tmp[a-z0-9_]{8}$|vgdb-pipe-|"
                       r"fnbox-(cli|it|store|unit|bench|fuzz|sec)[-_])")  # fnbox-sec-: another run of this suite


class Fail(Exception):
    pass


class TestTimeout(Fail):
    pass


def E(name):
    """The value a box prints for a call that failed with errno NAME."""
    return f"errno={getattr(errno, name)}"


OK = "ok"

# ----- configuration of this run -----


class Ctx:
    build = "build"
    runtime = None       # absolute path of fnbox-runtime
    tmp = None           # our own temp dir under /tmp
    bin = None           # copies of the boxes, world-readable
    mutate = False
    runtime_pids = set()  # every fnbox-runtime we started
    path = "oneshot"     # the path under test: oneshot or daemon
    daemon = None        # the fnbox-runtime serve we started (Popen)
    socket = None        # its socket
    zygote_run = None    # BUILD/tests/zygote-run


def path_opts():
    """How `run` is told which path to take."""
    if C.path == "daemon":
        return ["--daemon", "--socket", C.socket]
    return ["--no-daemon"]


C = Ctx()

# ----- expectations -----


def mutated(expected):
    if not C.mutate:
        return expected
    if isinstance(expected, bool):
        return not expected
    if isinstance(expected, (int, float)):
        return expected + 1000
    return f"MUTATED({expected})"


def check(what, expected, got):
    expected = mutated(expected)
    if got != expected:
        raise Fail(f"{what} (expected {expected!r}, got {got!r})")


def check_true(what, cond, expected, got):
    """For bounds: cond says whether got is acceptable."""
    if C.mutate:
        cond = not cond
    if not cond:
        raise Fail(f"{what} (expected {expected}, got {got!r})")


def steps_of(text):
    """'STEP: value' lines as (step, value); a line without ': ' has value None."""
    out = []
    for line in text.splitlines():
        step, sep, value = line.partition(": ")
        out.append((step, value if sep else None))
    return out


def expect_steps(res, expected, more=False):
    """stdout must be exactly these steps, in this order, with these values
    (followed by other lines only if more is true)."""
    got = steps_of(res["stdout"])
    expected = list(expected)
    if C.mutate and expected:
        expected[0] = (expected[0][0], mutated(expected[0][1]))
    for i, (step, value) in enumerate(expected):
        if i >= len(got):
            raise Fail(f"box stopped before '{step}' (expected {value!r}, got no line); "
                       f"stderr {res['stderr'][-300:]!r}")
        if got[i][0] != step:
            raise Fail(f"line {i + 1} (expected step {step!r}, got {got[i][0]!r}: {got[i][1]!r})")
        if got[i][1] != value:
            raise Fail(f"{step} (expected {value!r}, got {got[i][1]!r})")
    if len(got) > len(expected) and not more:
        extra = got[len(expected)]
        raise Fail(f"unexpected line {len(expected) + 1} (expected none, got {extra[0]!r}: {extra[1]!r})")


def expect_status(res, status, exit_code=None, sig=None):
    # not perturbed by --mutate, so that the checks after it are the ones shown to fail
    def same(what, expected, got):
        if got != expected:
            raise Fail(f"{what} (expected {expected!r}, got {got!r}); stdout {res['stdout'][-300:]!r}")
    same("status", status, res["status"])
    if status == "exited":
        same("exit code", exit_code if exit_code is not None else 0, res["exit_code"])
    if sig is not None:
        same("signal", sig, res["signal"])


# ----- running boxes -----


def box_path(name):
    return os.path.join(C.bin, name)


def runtime_cmd(code, args=(), runtime="exec", opts=(), entry=None, requests=1, parallel=False):
    if C.path in ("zygote", "template"):
        cmd = [C.zygote_run, "--runtime", runtime, "--code", code, "--requests", str(requests)]
        cmd += ["--parallel"] if parallel else []
        cmd += ["--template"] if C.path == "template" else []
    else:
        cmd = [C.runtime, "run", "--json"] + path_opts() + ["--runtime", runtime, "--code", code]
    if entry:
        cmd += ["--entry", entry]
    cmd += list(opts) + ["--env", f"FNBOX_SEC_TOKEN={TOKEN}", "--"] + list(args)
    return cmd


def child_env():
    env = dict(os.environ)
    env["FNBOX_SEC_TOKEN"] = TOKEN
    return env


def decode(d, key):
    s = d.get(key) or ""
    if d.get(key + "_base64"):
        return base64.b64decode(s).decode("latin-1")
    return s


def parse_result(rc, out, err, n=1):
    if rc != 0:
        raise Fail(f"fnbox-runtime exited {rc} (expected 0 with --json); stderr {err[-400:]!r}")
    lines = out.splitlines()
    if len(lines) != n:
        raise Fail(f"fnbox-runtime printed {len(lines)} lines (expected {n} JSON line(s))")
    if n > 1:
        return [parse_line(line) for line in lines]
    return parse_line(lines[0])


def parse_line(line):
    d = json.loads(line)
    if d["status"] == "setup_error":
        raise Fail(f"the jail did not start: {d.get('error')}")
    d["stdout"] = decode(d, "stdout")
    d["stderr"] = decode(d, "stderr")
    return d


def spawn(cmd, stdin=subprocess.PIPE):
    p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    C.runtime_pids.add(p.pid)
    return p


def communicate(p, stdin=None):
    """(exit status, stdout, stderr); kills fnbox-runtime on a timeout or
    any other interruption (the test's own deadline included)."""
    try:
        out, err = p.communicate(stdin, timeout=CALL_LIMIT_S)
    except BaseException as e:
        p.kill()
        p.communicate()
        if isinstance(e, subprocess.TimeoutExpired):
            raise Fail(f"fnbox-runtime still running after {CALL_LIMIT_S}s (expected it to end by itself)")
        raise
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def run_box(code, args=(), runtime="exec", opts=(), entry=None, stdin=b""):
    """Run one box to completion and return fnbox-runtime's JSON result."""
    return parse_result(*communicate(spawn(runtime_cmd(code, args, runtime, opts, entry)), stdin))


def start_box(code, args=(), opts=()):
    """Start a box without waiting; finish it with finish_box()."""
    return spawn(runtime_cmd(code, args, "exec", opts), stdin=subprocess.DEVNULL)


def finish_box(p):
    return parse_result(*communicate(p))


def run_bad(args):
    """Run fnbox-runtime with bad options: (exit status, stdout, stderr)."""
    return communicate(spawn([C.runtime, "run", "--json"] + path_opts() + args, stdin=subprocess.DEVNULL))


# ----- the host, before and after -----


def read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return b"" if "b" in mode else ""


def processes():
    """{(pid, start time): (ppid, uid, comm)} for every process on the host."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        stat = read(f"/proc/{pid}/stat")
        status = read(f"/proc/{pid}/status")
        if not stat or not status:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        uid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), -1)
        out[(int(pid), int(fields[19]))] = (int(fields[1]), uid, comm)
    return out


def ours(pid):
    return TOKEN.encode() in read(f"/proc/{pid}/environ", "rb")


def cgroup_dirs():
    pats = ["/sys/fs/cgroup/*/fnbox/*", "/sys/fs/cgroup/fnbox/*"]
    return {d for pat in pats for d in glob.glob(pat) if os.path.isdir(d)}


def mount_points():
    out = set()
    for line in read("/proc/self/mountinfo").splitlines():
        f = line.split()
        sep = f.index("-")
        out.add((f[4], f[sep + 1], f[sep + 2]))
    return out


def net_namespaces(exclude=()):
    out = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) not in exclude:
            try:
                out.add(os.readlink(f"/proc/{pid}/ns/net"))
            except OSError:
                pass
    return out


def tmp_entries():
    own = os.path.basename(C.tmp)
    return {e for e in os.listdir("/tmp") if e != own and not TMP_NOISE.match(e)}


def snapshot():
    return {"procs": processes(), "cgroups": cgroup_dirs(), "mounts": mount_points(),
            "netns": net_namespaces(), "tmp": tmp_entries()}


def foreign_jail_pids(procs):
    """Processes of jails that other people run on this machine at the same
    time: descendants of a live fnbox-runtime (root) that we did not start."""
    parent = {pid: ppid for (pid, _), (ppid, _, _) in procs.items()}
    roots = {pid for (pid, _), (_, uid, comm) in procs.items()
             if comm == "fnbox-runtime" and uid == 0 and pid not in C.runtime_pids and not ours(pid)}
    out = set()
    for pid in parent:
        p, depth = pid, 0
        while p in parent and depth < 64:
            if p in roots:
                out.add(pid)
                break
            p, depth = parent[p], depth + 1
    return out


def daemon_idle_jails(procs):
    """The daemon's prepared jails that wait for a request: its direct
    children, still root (a used jail's init has become the box uid), with
    no process of their own. The pool replaces each jail a test used, so
    these come and go; anything else the daemon leaves is a leftover."""
    if C.daemon is None or C.daemon.poll() is not None:
        return set()
    dpid = C.daemon.pid
    parents = {ppid for (ppid, _, _) in procs.values()}
    return {pid for (pid, _), (ppid, uid, comm) in procs.items()
            if ppid == dpid and uid == 0 and comm == "fnbox-runtime" and pid not in parents}


def jail_cgroup_names(pids):
    """The jail-PID-N cgroups these processes live in."""
    names = set()
    for pid in pids:
        for line in read(f"/proc/{pid}/cgroup").splitlines():
            base = line.rsplit("/", 1)[-1]
            if base.startswith("jail-"):
                names.add(base)
    return names


def host_changes(before):
    """What differs from the snapshot in a way only our jails could cause;
    other people's jails that are still running, and the daemon's idle
    prepared jails, are left out."""
    problems = []
    procs = processes()
    foreign = foreign_jail_pids(procs)
    idle = daemon_idle_jails(procs)
    idle_cgroups = jail_cgroup_names(idle)
    for key in procs.keys() - before["procs"].keys():
        ppid, uid, comm = procs[key]
        if key[0] == os.getpid() or key[0] in foreign or key[0] in idle:
            continue
        if uid == JAIL_UID or ours(key[0]):
            problems.append(f"leftover process {key[0]} ({comm}, uid {uid}, parent {ppid})")
    live = {pid for (pid, _) in procs}
    for d in sorted(cgroup_dirs() - before["cgroups"]):
        m = re.match(r"jail-(\d+)-\d+$", os.path.basename(d))
        if os.path.basename(d) in idle_cgroups:
            continue  # a prepared jail waiting in the daemon's pool
        if m and int(m.group(1)) in live and int(m.group(1)) not in C.runtime_pids:
            continue  # another fnbox-runtime's jail, still running
        problems.append(f"leftover cgroup {d}")
    now = mount_points()
    for m in sorted(now - before["mounts"]):
        problems.append(f"new host mount {m[0]} ({m[1]})")
    for m in sorted(before["mounts"] - now):
        problems.append(f"host mount gone: {m[0]} ({m[1]})")
    for ns in sorted(net_namespaces(exclude=foreign | idle) - before["netns"]):
        problems.append(f"new network namespace {ns}")
    for e in sorted(tmp_entries() - before["tmp"]):
        problems.append(f"new file /tmp/{e}")
    return problems


def wait_host_unchanged(before):
    deadline = time.monotonic() + SETTLE_S
    while True:
        problems = host_changes(before)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.1)


def clean_up_after(problems):
    """Remove what a failed test left, so the next test starts clean."""
    keep = {C.daemon.pid} | daemon_idle_jails(processes()) if C.daemon and C.daemon.poll() is None else set()
    for key, (ppid, uid, comm) in processes().items():
        if key[0] != os.getpid() and key[0] not in keep and ours(key[0]):
            try:
                os.kill(key[0], signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.2)
    for d in cgroup_dirs():
        name = os.path.basename(d)
        if any(name.startswith(f"jail-{pid}-") for pid in C.runtime_pids):
            try:
                os.rmdir(d)
            except OSError:
                pass


# ----- tests -----

TESTS = []
PATHS = {}   # tests that make sense on some paths only


ALL_PATHS = ("oneshot", "daemon", "zygote", "template")
# "template": as "zygote", but a python3 box's zygote is a template
# (runtime/zygote.h) that its revision adopted; only the tests with
# python3 boxes take this path
DEFAULT_PATHS = ("oneshot", "daemon", "zygote")


def test(name, quick=False, paths=DEFAULT_PATHS):
    def register(fn):
        TESTS.append((name, fn, quick))
        PATHS[name] = paths
        return fn
    return register


@test("fork_bomb", quick=True)
def t_fork_bomb():
    # --pids 16: the box plus 15 children; the 16th fork is refused.
    r = run_box(box_path("procs"), ["forkcount"], opts=["--pids", "16"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("fork", "errno=11 after 15")])
    r = run_box(box_path("procs"), ["forkbomb"], opts=["--pids", "16", "--timeout", "10s"])
    expect_status(r, "exited", 0)
    got = steps_of(r["stdout"])
    check("bomb fork", ("bomb fork", E("EAGAIN")), got[0] if got else None)
    n = int(got[1][1]) if len(got) > 1 and got[1][0] == "bomb procs" else -1
    check_true("processes in the jail during the bomb", 2 <= n <= 16, "2..16", n)
    check_true("wall time", r["wall_ms"] < 5000, "< 5000 ms", r["wall_ms"])


@test("memory_hog", quick=True)
def t_memory_hog():
    for mode in ("chunks", "huge"):
        r = run_box(box_path("memhog"), [mode], opts=["--memory", "64M"])
        expect_status(r, "out_of_memory", sig=9)
        check(f"{mode}: stdout", "", r["stdout"])
        check_true(f"{mode}: max_rss_kb", r["max_rss_kb"] <= 64 * 1024 + 8192, "<= 72 MiB", r["max_rss_kb"])
    # /tmp is memory too: 60 MB of files under --memory 16M
    r = run_box(box_path("fs"), ["tmpwrite", "60000000"], opts=["--memory", "16M", "--tmp", "64M"])
    expect_status(r, "out_of_memory", sig=9)
    check("tmpwrite: stdout", "", r["stdout"])


@test("cpu_spin")
def t_cpu_spin():
    # Half a core for 1.5 s: the box may get ~750 ms of CPU, not 3000.
    r = run_box(box_path("procs"), ["cpuspin", "4", "1500"], opts=["--cpu", "0.5", "--timeout", "10s"])
    expect_status(r, "exited", 0)
    m = re.search(r"^cpu: (\d+) ms in (\d+) ms wall$", r["stdout"], re.M)
    if not m:
        raise Fail(f"no cpu line (expected 'cpu: X ms in Y ms wall', got {r['stdout']!r})")
    cpu, wall = int(m.group(1)), int(m.group(2))
    check_true("CPU time under --cpu 0.5", cpu <= 0.5 * wall + 150, f"<= {0.5 * wall + 150:.0f} ms", cpu)
    r = run_box(box_path("procs"), ["cpuspin", "4"], opts=["--cpu", "1", "--timeout", "2s"])
    expect_status(r, "timeout", sig=9)
    expect_steps(r, [("spinning", "4 threads")])
    check_true("wall time", 1900 <= r["wall_ms"] <= 4000, "1900..4000 ms", r["wall_ms"])


@test("daemon")
def t_daemon():
    # The grandchild sleeps 30 s holding stdout; the jail must end with the box.
    r = run_box(box_path("procs"), ["daemon"], opts=["--timeout", "20s"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("parent", "exiting")])
    check_true("wall time", r["wall_ms"] < 3000, "< 3000 ms", r["wall_ms"])


@test("ignore_signals", quick=True)
def t_ignore_signals():
    r = run_box(box_path("procs"), ["sigstop"], opts=["--timeout", "2s"])
    expect_status(r, "timeout", sig=9)
    expect_steps(r, [("raise SIGTERM", OK), ("after SIGTERM", "alive"), ("ignore SIGKILL", E("EINVAL")),
                     ("ignore SIGSTOP", E("EINVAL")), ("stopping", None)])
    check_true("wall time", 1900 <= r["wall_ms"] <= 4000, "1900..4000 ms", r["wall_ms"])


@test("fill_tmp")
def t_fill_tmp():
    # --tmp 1M: 16 files of 64 KiB, 256 inodes (one is /tmp itself), and
    # RLIMIT_FSIZE of 1 MiB for one file.
    r = run_box(box_path("fs"), ["tmpfill"], opts=["--tmp", "1M"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("fill", "errno=28 files=16"), ("inodes", "errno=28 files=255"),
                     ("huge", "errno=27 bytes=1048576")])
    r = run_box(box_path("fs"), ["hugefile"], opts=["--tmp", "1M"])
    expect_status(r, "signaled", sig=signal.SIGXFSZ)
    expect_steps(r, [("writing", None)])


@test("proc_self_fd", quick=True)
def t_proc_self_fd():
    r = run_box(box_path("fs"), ["fds"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("proc fds", "0 1 2"), ("open fds", "0 1 2")])


@test("fd_escape")
def t_fd_escape():
    r = run_box(box_path("fs"), ["fdescape"])
    expect_status(r, "exited", 0)
    steps = []
    for fd in range(3):
        steps += [(f"open /proc/self/fd/{fd}/..", E("ENOTDIR")), (f"openat fd {fd} ..", E("ENOTDIR"))]
    steps += [("fchdir held /tmp fd", OK), ("64 x .. from held fd", "root"), ("/tmp/../.. x64", "root"),
              ("/proc/self/root/..", "root"), ("/proc/self/cwd/../../..", "root"), ("/proc/2/root", "root"),
              ("open /proc/1/root", E("ENOENT")), ("open /proc/1/fd", E("ENOENT")),
              ("open /proc/1/cwd/..", E("ENOENT")), ("stat /work", E("ENOENT")), ("stat /root", E("ENOENT")),
              ("stat /home", E("ENOENT")), ("stat /var", E("ENOENT"))]
    expect_steps(r, steps)


def no_connection(sock, what):
    sock.setblocking(False)
    try:
        conn, _ = sock.accept()
        conn.close()
        got = "a connection"
    except BlockingIOError:
        got = "none"
    check(what, "none", got)


@test("net_connect")
def t_net_connect():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as host:
        host.bind(("127.0.0.1", 0))
        host.listen(8)
        port = host.getsockname()[1]
        targets = [f"127.0.0.1:{port}", "1.1.1.1:53", "8.8.8.8:443", "10.0.0.1:80"]
        r = run_box(box_path("net"), ["inet"] + targets)
        expect_status(r, "exited", 0)
        steps = [("socket AF_INET stream", E("EAFNOSUPPORT")), ("socket AF_INET dgram", E("EAFNOSUPPORT")),
                 ("socket AF_INET6 stream", E("EAFNOSUPPORT")), ("socket AF_INET high bits", E("EAFNOSUPPORT")),
                 ("socketpair AF_INET", E("EAFNOSUPPORT"))]
        steps += [(f"connect {t}", f"no socket, {E('EAFNOSUPPORT')}") for t in targets]
        steps += [("socket AF_UNIX", OK)]
        expect_steps(r, steps)
        no_connection(host, f"connections to the host's 127.0.0.1:{port}")


@test("socket_families", quick=True)
def t_socket_families():
    r = run_box(box_path("net"), ["families"])
    expect_status(r, "exited", 0)
    fams = ["AF_NETLINK route", "AF_NETLINK uevent", "AF_PACKET", "AF_INET SOCK_RAW", "AF_INET6 SOCK_RAW",
            "AF_VSOCK", "AF_ALG", "AF_KEY", "AF_XDP", "AF_BLUETOOTH", "AF_CAN", "AF_TIPC"]
    expect_steps(r, [(f"socket {f}", E("EAFNOSUPPORT")) for f in fams] + [("socket AF_UNIX", OK)])


def find_box_process(comm):
    for (pid, _), (_, uid, c) in processes().items():
        if c == comm and uid == JAIL_UID and ours(pid):
            return pid
    return None


def wait_abstract_bound(name, limit_s=10):
    """Readiness without sleeping blindly: the name shows up in the
    listening box's own /proc/PID/net/unix (its network namespace)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        pid = find_box_process("net")
        if pid and f"@{name}" in read(f"/proc/{pid}/net/unix"):
            return pid
        time.sleep(0.02)
    raise Fail(f"the listening jail never bound @{name} (expected it within {limit_s}s)")


@test("abstract_socket_two_jails")
def t_abstract_socket():
    name = f"fnbox-sec-{TOKEN}"
    listener = start_box(box_path("net"), ["abstract-listen", name, "2000"], opts=["--timeout", "10s"])
    try:
        wait_abstract_bound(name)
        r = run_box(box_path("net"), ["abstract-connect", name])
        # a refusal only counts while the listener is still there
        check("listener alive after the visit", True, listener.poll() is None)
    finally:
        a = finish_box(listener)
    expect_status(r, "exited", 0)
    expect_steps(r, [("connect", E("ECONNREFUSED"))])
    expect_status(a, "exited", 0)
    expect_steps(a, [("bind", OK), ("listen", OK), ("self connect", OK), ("self accept", OK),
                     ("visitor", "none")])


def unix_listener(path=None, abstract=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path if path else "\0" + abstract)
    if path:
        os.chmod(path, 0o777)
    s.listen(8)
    return s


@test("host_unix_socket")
def t_host_unix_socket():
    d = os.path.join(C.tmp, "sock")
    os.makedirs(d, mode=0o777, exist_ok=True)
    os.chmod(d, 0o777)
    paths = [os.path.join(d, "host.sock"), f"/run/fnbox-sec-{TOKEN}.sock"]
    socks = [unix_listener(path=p) for p in paths]
    hostname = f"fnbox-sec-host-{TOKEN}"
    socks.append(unix_listener(abstract=hostname))
    try:
        r = run_box(box_path("net"), ["unix"] + paths + ["/run/systemd/private", "/var/run/docker.sock"])
        expect_status(r, "exited", 0)
        expect_steps(r, [(f"connect {p}", E("ENOENT"))
                         for p in paths + ["/run/systemd/private", "/var/run/docker.sock"]])
        r = run_box(box_path("net"), ["abstract-connect", hostname])
        expect_status(r, "exited", 0)
        expect_steps(r, [("connect", E("ECONNREFUSED"))])
        for s, what in zip(socks, paths + ["@" + hostname]):
            no_connection(s, f"connections to the host's {what}")
    finally:
        for s in socks:
            s.close()
        for p in paths:
            if os.path.exists(p):
                os.unlink(p)


@test("tiocsti", quick=True)
def t_tiocsti():
    r = run_box(box_path("sys"), ["tiocsti"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("TIOCSTI fd 0", E("EPERM")), ("TIOCSTI fd 1", E("EPERM")), ("TIOCSTI fd 2", E("EPERM")),
                     ("TIOCSTI bit 32", E("EPERM")), ("TIOCLINUX", E("EPERM")), ("TIOCLINUX bit 32", E("EPERM")),
                     ("open /dev/tty", E("ENOENT")), ("open /dev/console", E("ENOENT"))])


@test("unshare", quick=True)
def t_unshare():
    r = run_box(box_path("sys"), ["unshare"])
    expect_status(r, "exited", 0)
    kinds = ["NEWUSER", "NEWNET", "NEWNS", "NEWUSER|NEWNS", "NEWPID", "NEWUTS", "NEWIPC", "NEWCGROUP", "NEWTIME"]
    expect_steps(r, [(f"unshare {k}", E("EPERM")) for k in kinds] +
                 [("clone NEWUSER", E("EPERM")), ("clone NEWNET", E("EPERM")), ("clone NEWNS", E("EPERM")),
                  ("clone3 NEWUSER", E("ENOSYS")), ("clone plain", OK)])


@test("setns_proc1")
def t_setns():
    r = run_box(box_path("sys"), ["setns"])
    expect_status(r, "exited", 0)
    ns = ["net", "mnt", "user", "pid", "uts", "ipc", "cgroup"]
    # /proc/1 is the jail's init; it is not dumpable and hidepid=invisible hides it
    expect_steps(r, [(f"setns {n}", E("EPERM")) for n in ns] +
                 [("open /proc/1/ns/net", E("ENOENT")), ("open /proc/1/root", E("ENOENT")),
                  ("open /proc/1/root/etc/passwd", E("ENOENT")), ("readlink /proc/1/root", E("ENOENT")),
                  ("stat /proc/1", E("ENOENT"))])


@test("mount_apis", quick=True)
def t_mount():
    r = run_box(box_path("sys"), ["mount"])
    expect_status(r, "exited", 0)
    denied = ["mount tmpfs", "bind / to /tmp/m", "remount /usr rw", "remount / rw", "mount cgroup v1",
              "mount cgroup2", "mount proc", "umount /proc", "fsopen tmpfs", "fsopen cgroup", "fspick /usr",
              "fsmount", "open_tree /usr", "move_mount", "mount_setattr", "pivot_root", "chroot",
              "mknod /tmp/mem", "mknod /tmp/sda"]
    expect_steps(r, [(s, E("EPERM")) for s in denied] +
                 [("write release_agent", E("ENOENT")), ("write /tmp/cg/release_agent", E("ENOENT"))])


@test("proc_sys_writes")
def t_proc_sys():
    r = run_box(box_path("fs"), ["procsys"])
    expect_status(r, "exited", 0)
    absent = ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sysrq-trigger",
              "/sys/kernel/uevent_helper", "/sys/fs/cgroup/memory/release_agent", "/sys/fs/cgroup/cgroup.procs"]
    expect_steps(r, [(f"write {p}", E("ENOENT")) for p in absent] +
                 [("write /proc/self/oom_score_adj", E("EACCES")), ("write /proc/self/setgroups", E("EACCES")),
                  ("write /proc/self/uid_map", E("EPERM")), ("stat /proc/sys", E("ENOENT")),
                  ("stat /sys", E("ENOENT")), ("stat /sys/fs/cgroup", E("ENOENT")), ("mkdir /sys", E("EROFS"))])


def folder(name, files, owner=None):
    """A code folder in our temp dir: {name in folder: (source, mode)}."""
    d = os.path.join(C.tmp, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(d, 0o755)
    for fname, (src, mode) in files.items():
        dst = os.path.join(d, fname)
        if src is None:
            with open(dst, "w") as f:
                f.write("data\n")
        else:
            shutil.copyfile(src, dst)
        if owner is not None:
            os.chown(dst, owner, owner)
        os.chmod(dst, mode)
    if owner is not None:
        os.chown(d, owner, owner)
    return d


@test("overwrite_interpreter", paths=DEFAULT_PATHS + ("template",))
def t_overwrite():
    # The code folder belongs to the box's own host uid, so only the
    # read-only mount protects /fn; the box's binary is busy (ETXTBSY).
    d = folder("own", {"fs": (box_path("fs"), 0o775), "data.txt": (None, 0o666)}, owner=JAIL_UID)
    r = run_box(d, ["overwrite"], entry="fs")
    expect_status(r, "exited", 0)
    expect_steps(r, [("write /usr/bin/python3", E("EACCES")), ("truncate /usr/bin/python3", E("EROFS")),
                     ("unlink /usr/bin/python3", E("EROFS")), ("rename /usr/bin/python3", E("EROFS")),
                     ("write libc", E("EACCES")), ("chmod libc", E("EROFS")),
                     ("create /usr/lib/evil.so", E("EROFS")), ("write /proc/self/exe", E("ETXTBSY")),
                     ("write /fn/fs", E("ETXTBSY")), ("unlink /fn/fs", E("EROFS")),
                     ("write /fn/data.txt", E("EROFS")), ("create /fn/new", E("EROFS")),
                     ("create /etc/ld.so.preload", E("EROFS"))])
    r = run_box(box_path("overwrite.py"), runtime="python3")
    expect_status(r, "exited", 0)
    expect_steps(r, [("write /usr/bin/python3", E("EACCES")), ("write sys.executable", E("EACCES")),
                     ("write /proc/self/exe", E("EACCES")), ("truncate /usr/bin/python3", E("EROFS")),
                     ("unlink /usr/bin/python3", E("EROFS")), ("write os.py", E("EACCES")),
                     ("create a stdlib module", E("EROFS")), ("create /etc/ld.so.preload", E("EROFS")),
                     ("write /fn/overwrite.py", E("EACCES"))])


def digest(path):
    return hashlib.sha256(read(path, "rb")).hexdigest()


@test("symlink_output", quick=True)
def t_symlink():
    before = {p: digest(p) for p in ("/etc/passwd", "/etc/shadow")}
    r = run_box(box_path("fs"), ["symlinks"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("symlink /tmp/out -> /etc/passwd", OK), ("write /tmp/out", E("EACCES")),
                     ("append /tmp/out", E("EACCES")), ("truncate /tmp/out", E("EROFS")),
                     ("link /tmp/hard -> /etc/passwd", E("EXDEV")),
                     ("rename /tmp/new over /etc/passwd", E("EXDEV")),
                     ("symlink /tmp/shadow -> /etc/shadow", OK), ("create through /tmp/shadow", E("EROFS")),
                     ("symlink /tmp/hostpw -> /proc/1/root/etc/passwd", OK), ("write /tmp/hostpw", E("ENOENT"))])
    for p, h in before.items():
        check(f"host {p} sha256", h, digest(p))


@test("ptrace")
def t_ptrace():
    r = run_box(box_path("sys"), ["ptrace"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("ptrace TRACEME", E("EPERM")), ("ptrace ATTACH", E("EPERM")), ("ptrace SEIZE", E("EPERM")),
                     ("process_vm_readv", E("EPERM")), ("process_vm_writev", E("EPERM")), ("pidfd_open", OK),
                     ("pidfd_getfd", E("EPERM")), ("kcmp", E("EPERM")), ("process_madvise", E("EPERM"))])


@test("keyrings")
def t_keyrings():
    r = run_box(box_path("sys"), ["keys"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("keyctl GET_KEYRING_ID", E("EPERM")), ("keyctl JOIN_SESSION_KEYRING", E("EPERM")),
                     ("add_key", E("EPERM")), ("request_key", E("EPERM"))])


@test("bpf_perf")
def t_bpf_perf():
    r = run_box(box_path("sys"), ["bpf"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("bpf MAP_CREATE", E("EPERM")), ("bpf PROG_LOAD", E("EPERM")),
                     ("perf_event_open self", E("EPERM")), ("perf_event_open cpu 0", E("EPERM"))])


@test("userfaultfd_io_uring")
def t_uffd_uring():
    r = run_box(box_path("sys"), ["uffd"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("userfaultfd", E("EPERM")), ("userfaultfd user-mode-only", E("EPERM")),
                     ("open /dev/userfaultfd", E("ENOENT")), ("io_uring_setup", E("EPERM")),
                     ("io_uring_enter", E("EPERM")), ("io_uring_register", E("EPERM"))])


@test("foreign_abi", quick=True)
def t_foreign_abi():
    for mode in ("int80", "x32"):
        r = run_box(box_path("abi"), [mode])
        expect_status(r, "signaled", sig=signal.SIGSYS)
        expect_steps(r, [(mode, "trying")])


@test("setuid")
def t_setuid():
    # suidprobe: a setuid- and setgid-root copy in the code folder.
    d = folder("suid", {"sys": (box_path("sys"), 0o755), "suidprobe": (box_path("suidprobe"), 0o6755)}, owner=0)
    progs = [p for p in ("/usr/bin/su", "/usr/bin/passwd") if os.stat(p).st_mode & 0o4000]
    r = run_box(d, ["setuid"] + progs + ["/fn/suidprobe"], entry="sys")
    expect_status(r, "exited", 0)
    steps = [("setuid 0", E("EINVAL")), ("setresuid 0", E("EINVAL")), ("setgid 0", E("EINVAL")),
             ("fsuid", "1000"), ("setgroups 0", E("EPERM")), ("setuid 65534", E("EINVAL")),
             ("setuid 1000", OK), ("resuid", "1000 1000 1000")]
    for p in progs + ["/fn/suidprobe"]:
        steps += [(f"{p} AT_UID", "1000"), (f"{p} AT_EUID", "1000"), (f"{p} AT_SECURE", "0")]
    steps += [("/fn/suidprobe suidprobe", "uid=1000 euid=1000 suid=1000 gid=1000 egid=1000")]
    expect_steps(r, steps)


JAIL_MOUNTS = {"/", "/usr", "/tmp", "/proc", "/fn", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} | \
    {f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom")}


def check_mountinfo(lines, code):
    points, roots = set(), set()
    for line in lines:
        f = line.split()
        points.add(f[4])
        roots.add(f[3])
    allowed = JAIL_MOUNTS | {"/fn/" + os.path.basename(code)}
    check("mount points outside the jail's own", [], sorted(points - allowed))
    check("jail mounts missing", [], sorted({"/", "/usr", "/tmp", "/proc"} - points))
    # the root field of a bind names its source; only the code may show a host path
    ok_roots = {"/", "/usr", code} | {f"/{n}" for n in ("null", "zero", "full", "random", "urandom", "bin",
                                                          "sbin", "lib", "lib32", "lib64", "libx32")}
    check("host paths in the box's mountinfo", [], sorted(roots - ok_roots))
    text = "\n".join(lines)
    leaks = [p for p in ("/work", "/root", "/home", "/old_root", os.path.abspath(C.build), HERE) if p in text]
    check("host paths in the box's mountinfo", [], leaks)


@test("kernel_info")
def t_kernel_info():
    code = box_path("sys")
    r = run_box(code, ["kernel"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("open /proc/kallsyms", E("ENOENT")), ("open /proc/modules", E("ENOENT")),
            ("open /dev/kmsg", E("ENOENT")), ("open /dev/mem", E("ENOENT")), ("syslog READ_ALL", E("EPERM")),
            ("syslog SIZE_BUFFER", E("EPERM")), ("syslog CONSOLE_OFF", E("EPERM"))], more=True)
    got = steps_of(r["stdout"])
    mountinfo = [v for s, v in got if s == "mountinfo"]
    check_mountinfo(mountinfo, code)
    check("init mountinfo", [E("ENOENT")], [v for s, v in got if s == "init mountinfo"])
    cg = [v for s, v in got if s == "cgroup"]
    check_true("cgroup lines", len(cg) > 0, "some", cg)
    check("cgroup paths not at the namespace root", [], [v for v in cg if not v.endswith(":/")])


@test("hostname_clock")
def t_hostname_clock():
    name, t0 = socket.gethostname(), time.time()
    r = run_box(box_path("sys"), ["machine"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("sethostname", E("EPERM")), ("setdomainname", E("EPERM")), ("settimeofday", E("EPERM")),
                     ("clock_settime", E("EPERM")), ("adjtimex", E("EPERM")), ("clock_adjtime", E("EPERM")),
                     ("nodename", "box")])
    check("host name", name, socket.gethostname())
    skew = time.time() - t0
    check_true("host clock", 0 <= skew < 60, "unchanged (moved by the test's own duration)", skew)


@test("output_flood", quick=True, paths=DEFAULT_PATHS + ("template",))
def t_output_flood():
    cap = 1 << 20
    for mode, stream, letter in (("stdout", "stdout", "o"), ("stderr", "stderr", "e")):
        r = run_box(box_path("flood"), [mode], opts=["--output", "1M", "--timeout", "20s"])
        expect_status(r, "output_limit", sig=9)
        check(f"{mode}: {stream}_truncated", True, r[f"{stream}_truncated"])
        check(f"{mode}: {stream} length", cap, len(r[stream]))
        check(f"{mode}: {stream} content", letter * cap, r[stream])
        check_true(f"{mode}: wall time", r["wall_ms"] < 5000, "< 5000 ms", r["wall_ms"])
    # the edge of the cap: exactly the cap is fine, one byte more is not
    r = run_box(box_path("flood"), ["exact", str(cap)], opts=["--output", "1M"])
    expect_status(r, "exited", 0)
    check("exact cap: stdout length", cap, len(r["stdout"]))
    check("exact cap: stdout_truncated", False, r["stdout_truncated"])
    r = run_box(box_path("flood"), ["exact", str(cap + 1)], opts=["--output", "1M"])
    expect_status(r, "output_limit", sig=9)
    check("cap + 1: stdout length", cap, len(r["stdout"]))
    check("cap + 1: stdout_truncated", True, r["stdout_truncated"])
    r = run_box(box_path("flood"), ["both"], opts=["--output", "1M", "--timeout", "20s"])
    expect_status(r, "output_limit", sig=9)
    full = [s for s in ("stdout", "stderr") if r[s + "_truncated"]]
    check_true("both: a truncated stream", len(full) >= 1, "at least one", full)
    for s in full:
        check(f"both: {s} length", cap, len(r[s]))
    check_true("both: lengths", len(r["stdout"]) <= cap and len(r["stderr"]) <= cap, "<= the cap",
               (len(r["stdout"]), len(r["stderr"])))
    r = run_box(box_path("flood.py"), runtime="python3", opts=["--output", "1M", "--timeout", "20s"])
    expect_status(r, "output_limit", sig=9)
    check("python3: stderr_truncated", True, r["stderr_truncated"])
    check("python3: stderr", "p" * cap, r["stderr"])


def swap_forever(link, targets, stop):
    tmp = link + ".new"
    i = 0
    while not stop.is_set():
        os.symlink(targets[i % 2], tmp)
        os.replace(tmp, link)
        i += 1


@test("code_path_swap", paths=("oneshot", "daemon"))
def t_code_path_swap():
    # --code is a symlink that another thread flips between a good folder and
    # /proc, which fnbox-runtime refuses. Whatever the timing, a jail must
    # either be refused or run the good code: never see /proc at /fn.
    entry = "sys/kernel/osrelease"   # exists in the good folder and in /proc
    good = folder("good", {})
    os.makedirs(os.path.join(good, "sys/kernel"), mode=0o755)
    for d in (good, os.path.join(good, "sys"), os.path.join(good, "sys/kernel")):
        os.chmod(d, 0o755)
    with open(os.path.join(good, entry), "w") as f:
        f.write("echo GOOD\n")
    os.chmod(os.path.join(good, entry), 0o644)
    link = os.path.join(C.tmp, "swapped")
    if os.path.lexists(link):  # left by the other path's run
        os.unlink(link)
    os.symlink(good, link)
    stop = threading.Event()
    flipper = threading.Thread(target=swap_forever, args=(link, [good, "/proc"], stop))
    flipper.start()
    escapes, runs, deadline = [], 0, time.monotonic() + 4
    try:
        while runs < 200 and time.monotonic() < deadline and not escapes:
            runs += 1
            cmd = runtime_cmd(link, (), "sh", ["--timeout", "5s"], entry)
            rc, out, _ = communicate(spawn(cmd, stdin=subprocess.DEVNULL))
            if rc != 0:
                continue  # refused, before or after the jail was set up
            d = parse_result(rc, out, "")
            if d["status"] != "exited" or d["stdout"] != "GOOD\n":
                escapes.append(f"run {runs}: status {d['status']}, stdout {d['stdout'][:80]!r}, "
                               f"stderr {d['stderr'][:160]!r}")
    finally:
        stop.set()
        flipper.join()
    release = os.uname().release
    what = "the host's /proc mounted at /fn" if escapes and release in escapes[0] else "other code at /fn"
    check_true(f"jails of {runs} runs that saw {what}", not escapes,
               "none (refused, or the good code)", escapes[0] if escapes else None)


# ----- zygotes: what one request of a zygote could do to another -----


def script(name, body):
    p = os.path.join(C.tmp, name)
    with open(p, "w") as f:
        f.write(body)
    os.chmod(p, 0o644)
    return p


def run_many(code, n, runtime="sh", opts=(), parallel=False):
    """n requests through one zygote: their results, in the order they ended."""
    cmd = runtime_cmd(code, (), runtime, opts, None, requests=n, parallel=parallel)
    return parse_result(*communicate(spawn(cmd, stdin=subprocess.DEVNULL)), n=n)


@test("zygote_leftovers_between_requests", quick=True, paths=("zygote",))
def t_zygote_leftovers():
    # each request leaves files, a folder, a SysV shared memory segment and
    # a background process; the next one must find none of them
    code = script("leftovers.sh", 'echo "tmp: $(ls -A /tmp | tr "\\n" " ")"\n'
                  'echo "shm: $(ipcs -m | grep -c ^0x)"\n'
                  'cd /proc; echo "procs:" [0-9]*; cd /\n'
                  'echo x > /tmp/f; mkdir /tmp/d; ipcmk -M 4096 >/dev/null\n'
                  '(sleep 30 &) ; echo done\n')
    for r in run_many(code, 4):
        expect_status(r, "exited", 0)
        expect_steps(r, [("tmp", ""), ("shm", "0"), ("procs", "2"), ("done", None)])


@test("zygote_signals_zygote_and_siblings", paths=("zygote",))
def t_zygote_signals():
    # four requests at once, each signalling everything it can name: every
    # other process of its pid namespace, its init, its process group; and
    # the pids the zygote and the siblings have elsewhere. Each ends by its
    # own hand; the zygote serves all of them (zygote-run exits 0 only then).
    code = script("signals.sh", 'sleep 0.3\n'
                  'cd /proc; echo "pids:" [0-9]*; cd /\n'
                  'for p in 1 3 4 5 6 7 8 9 10 100 1000; do kill -9 $p 2>/dev/null && echo "kill $p: delivered"; done\n'
                  'kill -9 -1 2>/dev/null; echo "kill -1: $?"\n'
                  'kill -9 0\n')
    results = run_many(code, 4, parallel=True)
    for r in results:
        expect_status(r, "signaled", sig=9)
        # kill 1 is "delivered" and ignored: pid 1 is the child's own init
        expect_steps(r, [("pids", "2"), ("kill 1", "delivered"), ("kill -1", "1")])
    r = run_many(code, 1)
    expect_status(r, "signaled", sig=9)


@test("zygote_python_state_between_requests", paths=("zygote", "template"))
def t_zygote_python_state():
    # module state, builtins and the random generator: a request that
    # changes them changes nothing for the next
    code = script("state.py", "import json, random, builtins, sys\n"
                  "print('marker:', getattr(json, 'fnbox_marker', None))\n"
                  "print('builtin:', hasattr(builtins, 'fnbox_leak'))\n"
                  "print('random:', random.random())\n"
                  "json.fnbox_marker = 'left'\nbuiltins.fnbox_leak = 1\nsys.modules['leak'] = json\n")
    results = run_many(code, 3, runtime="python3")
    seen = set()
    for r in results:
        expect_status(r, "exited", 0)
        got = steps_of(r["stdout"])
        check("module state", [("marker", "None"), ("builtin", "False")], got[:2])
        seen.add(got[2][1])
    check("distinct random numbers", 3, len(seen))


@test("zygote_python_child_init", paths=("zygote", "template"))
def t_zygote_python_init():
    # a python3 zygote's child is pid 1 of its namespace as a program of its
    # own (fnbox-zygote-init, exec'd from memory the zygote shares): the box
    # must find it as it finds a copy of the interpreter, hidden and out of
    # reach, its signals ignored, and the box itself pid 2
    code = script("init.py", "import errno, os, signal, sys\n"
                  "print('pids:', ' '.join(p for p in sorted(os.listdir('/proc')) if p.isdigit()))\n"
                  "print('me:', os.getpid(), os.getppid())\n"
                  "def step(name, fn, *a):\n"
                  "    try:\n"
                  "        fn(*a)\n"
                  "        print(name + ': ok')\n"
                  "    except OSError as e:\n"
                  "        print(name + ':', errno.errorcode[e.errno])\n"
                  "for p in ('/proc/1', '/proc/1/fd/3', '/proc/1/exe', '/proc/1/mem', '/proc/1/root'):\n"
                  "    step('open ' + p, lambda q: os.close(os.open(q, os.O_RDONLY)), p)\n"
                  "step('kill 1 TERM', os.kill, 1, signal.SIGTERM)\n"
                  "step('kill 1 KILL', os.kill, 1, signal.SIGKILL)\n"
                  "step('kill 1 STOP', os.kill, 1, signal.SIGSTOP)\n"
                  "print('fds:', ' '.join(sorted(os.listdir('/proc/self/fd'))))\n"
                  "sys.stdout.flush()\n")
    for r in run_many(code, 3, runtime="python3"):
        expect_status(r, "exited", 0)
        # the fds: stdio, the DONE pipe (no control socket), the listing's own
        expect_steps(r, [("pids", "2"), ("me", "2 1")] +
                     [(f"open {p}", "ENOENT") for p in ("/proc/1", "/proc/1/fd/3", "/proc/1/exe", "/proc/1/mem",
                                                         "/proc/1/root")] +
                     [("kill 1 TERM", "ok"), ("kill 1 KILL", "ok"), ("kill 1 STOP", "ok")], more=True)


# ----- the daemon's own door: requests that `run` would never send -----

PROTO_RUN, PROTO_STDIN, PROTO_GO, PROTO_RESULT, PROTO_END, PROTO_ERROR = 1, 2, 3, 16, 19, 20


def proto_str(b):
    return struct.pack("I", len(b)) + b + b"\0"


def run_frame(code, memory=128 << 20, runtime=0, args=()):
    limits = [memory, 10 * 10**9, 1000, 64, 16 << 20, 0, 1 << 20, 0, 1024, 8 << 20]
    p = struct.pack("6I", 1, runtime, 0, 0, len(args), 1) + struct.pack("10Q", *limits)
    p += proto_str(code.encode()) + proto_str(b"") + proto_str(b"")
    p += b"".join(proto_str(a.encode()) for a in args) + proto_str(f"FNBOX_SEC_TOKEN={TOKEN}".encode())
    return struct.pack("II", PROTO_RUN, len(p)) + p


def daemon_ask(frames, fds=()):
    """Send raw frames (fds with the first bytes), return the reply's frame
    types and the ERROR frame's status and text, if any."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    buf = b""
    try:
        s.connect(C.socket)
        data = b"".join(frames)
        if fds:
            socket.send_fds(s, [data], list(fds))
        else:
            s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass  # it answered and hung up on what we had still to send; keep the answer
    finally:
        s.close()
    types, error = [], None
    while len(buf) >= 8:
        t, n = struct.unpack("II", buf[:8])
        payload, buf = buf[8:8 + n], buf[8 + n:]
        types.append(t)
        if t == PROTO_ERROR:
            status, tlen = struct.unpack("II", payload[:8])
            error = (status, payload[8:8 + tlen].decode(errors="replace"))
    return types, error


def nobody_connects():
    """A non-root process connecting to the socket (made world-writable for
    the test): the daemon must hang up without an answer."""
    os.chmod(C.socket, 0o666)
    try:
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                os.setgroups([])
                os.setgid(JAIL_UID)
                os.setuid(JAIL_UID)
                types, _ = daemon_ask([struct.pack("II", PROTO_GO, 0)])
                code = 0 if types == [] else 1
            finally:
                os._exit(code)
        _, st = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(st)
    finally:
        os.chmod(C.socket, 0o600)


@test("daemon_checks_requests", quick=True, paths=("daemon",))
def t_daemon_checks():
    # The daemon checks the code's fd itself, as a one-shot run checks its
    # open file: a client cannot get /proc, or a file the box user may not
    # read, mounted by naming something harmless.
    go = struct.pack("II", PROTO_GO, 0)
    proc_fd = os.open("/proc/self", os.O_PATH)
    try:
        _, err = daemon_ask([run_frame("/srv/harmless"), go], [proc_fd])
    finally:
        os.close(proc_fd)
    check("/proc fd: refused", 2, err[0] if err else None)
    check_true("/proc fd: why", err and "/proc" in err[1], "a word on /proc", err)
    secret = root_only_file()
    fd = os.open(secret, os.O_PATH)
    try:
        _, err = daemon_ask([run_frame(secret), go], [fd])
        check("root-only code: refused", 2, err[0] if err else None)
        _, err = daemon_ask([run_frame(box_path("procs"), memory=1), go], [fd])
        check("--memory 1: refused", 2, err[0] if err else None)
        _, err = daemon_ask([run_frame(box_path("procs")), go])
        check("no code fd: refused", (2, "the request carried no code"), err)
        _, err = daemon_ask([run_frame(box_path("procs")), go], [fd, fd])
        check("two fds: refused", 125, err[0] if err else None)
        _, err = daemon_ask([go])
        check("GO first: refused", (125, "malformed request"), err)
        _, err = daemon_ask([struct.pack("II", 77, 0)])
        check("unknown type: refused", (125, "malformed request"), err)
        _, err = daemon_ask([struct.pack("II", PROTO_STDIN, (1 << 20) + 1)])
        check("oversize frame: refused", (125, "malformed request"), err)
    finally:
        os.close(fd)
    check("a non-root peer gets no answer", 0, nobody_connects())
    # and the pool still serves a good request afterwards
    r = run_box(box_path("procs"), ["forkcount"], opts=["--pids", "4"])
    expect_status(r, "exited", 0)
    expect_steps(r, [("fork", "errno=11 after 3")])


# ----- bad options: exit status 2, one line on stderr, nothing built -----


def bad_options_test(name, args_fn, quick=False):
    @test(f"bad_option_{name}", quick=quick, paths=("oneshot", "daemon"))
    def t():
        rc, out, err = run_bad(args_fn())
        check("exit status", 2, rc)
        check("stdout", "", out)
        check("lines on stderr", 1, err.count("\n") if err.endswith("\n") else -1)
        check_true("stderr", err.startswith("fnbox-runtime run: "), "'fnbox-runtime run: ...'", err)


def root_only_file():
    p = os.path.join(C.tmp, "secret")
    shutil.copyfile(box_path("procs"), p)
    os.chown(p, 0, 0)
    os.chmod(p, 0o600)
    return p


def closed_folder():
    d = folder("closed", {"main": (box_path("procs"), 0o755)}, owner=0)
    os.chmod(d, 0o700)
    return d


def symlink_to(target):
    p = os.path.join(C.tmp, "link-to-" + target.strip("/").replace("/", "-"))
    if not os.path.islink(p):
        os.symlink(target, p)
    return p


def valid():
    return ["--code", box_path("procs")]


BAD_OPTIONS = [
    ("unknown_runtime", lambda: ["--runtime", "cobol"] + valid(), False),
    ("missing_code", lambda: [], False),
    ("code_nonexistent", lambda: ["--code", "/nonexistent/fnbox-sec"], False),
    ("memory_negative", lambda: valid() + ["--memory", "-1"], False),
    ("memory_1T", lambda: valid() + ["--memory", "1T"], True),
    ("timeout_zero", lambda: valid() + ["--timeout", "0"], False),
    ("pids_zero", lambda: valid() + ["--pids", "0"], False),
    ("cpu_100", lambda: valid() + ["--cpu", "100"], False),
    ("code_unreadable", lambda: ["--code", root_only_file()], True),
    ("code_folder_closed", lambda: ["--code", closed_folder()], False),
    ("code_proc_self", lambda: ["--code", "/proc/self"], True),
    ("code_sys", lambda: ["--code", "/sys/kernel"], False),
    ("code_symlink_to_proc", lambda: ["--code", symlink_to("/proc")], False),
    ("entry_escape", lambda: ["--code", folder("entry", {"main": (box_path("procs"), 0o755)}),
                              "--entry", "../../../etc/passwd"], False),
    ("unknown_option", lambda: valid() + ["--privileged"], False),
    ("uid_zero", lambda: valid() + ["--uid", "0"], False),
    ("cgroup_parent_dotdot", lambda: valid() + ["--cgroup-parent", "fnbox/../../.."], False),
    ("cgroup_parent_absolute", lambda: valid() + ["--cgroup-parent", "/sys/fs/cgroup/memory"], False),
    ("env_bad_key", lambda: valid() + ["--env", "LD PRELOAD=/tmp/x"], False),
]

for _name, _fn, _quick in BAD_OPTIONS:
    bad_options_test(_name, _fn, _quick)

# More cases in files of their own next to this one (cases_*.py), each
# with register(module): they use this module's helpers.
sys.path.insert(0, HERE)
for _case_file in sorted(glob.glob(os.path.join(HERE, "cases_*.py"))):
    __import__(os.path.basename(_case_file)[:-3]).register(sys.modules[__name__])

# ----- the runner -----


def on_alarm(signum, frame):
    raise TestTimeout(f"test still running after {TEST_LIMIT_S}s")


def run_one(name, fn):
    """Run one test under a deadline, then check the host. None if it passed."""
    before = snapshot()
    why = None
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_LIMIT_S)
    try:
        fn()
    except Fail as e:
        why = str(e)
    except Exception as e:  # a bug in the test itself still fails it, with context
        why = f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
    problems = wait_host_unchanged(before)
    if problems:
        clean_up_after(problems)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        host = f"host changed: {problems[0]}{more} (expected the host unchanged)"
        why = f"{why}; {host}" if why else host
    return why


def prepare(build):
    C.build = build
    C.runtime = os.path.abspath(os.path.join(build, "bin", "fnbox-runtime"))
    C.zygote_run = os.path.abspath(os.path.join(build, "tests", "zygote-run"))
    boxes = os.path.join(build, "tests", "boxes")
    if not os.access(C.runtime, os.X_OK) or not os.path.isdir(boxes):
        return f"{C.runtime} or {boxes}/ missing: build first (make all)"
    C.tmp = tempfile.mkdtemp(prefix="fnbox-sec-", dir="/tmp")
    os.chmod(C.tmp, 0o755)
    C.bin = os.path.join(C.tmp, "bin")
    os.makedirs(C.bin)
    os.chmod(C.bin, 0o755)
    # world-readable copies: the box user must be able to read (and run) its code
    for src in glob.glob(os.path.join(boxes, "*")) + glob.glob(os.path.join(HERE, "boxes_py", "*")):
        dst = os.path.join(C.bin, os.path.basename(src))
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755 if os.access(src, os.X_OK) else 0o644)
    return None


DAEMON_POOL = 4
DAEMON_READY_S = 20


def daemon_start():
    """Start `fnbox-runtime serve` on a socket in our temp dir and wait for
    its ready line. stdin is inherited: closed under CI, as it may be."""
    C.socket = os.path.join(C.tmp, "runtime.sock")
    cmd = [C.runtime, "serve", "--socket", C.socket, "--pool", str(DAEMON_POOL)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    C.runtime_pids.add(p.pid)
    C.daemon = p
    ready, _, _ = select.select([p.stdout], [], [], DAEMON_READY_S)
    line = p.stdout.readline().decode(errors="replace") if ready else ""
    if "ready" not in line:
        p.kill()
        _, err = p.communicate()
        C.daemon = None
        raise Fail(f"fnbox-runtime serve did not say it was ready within {DAEMON_READY_S}s "
                   f"(got {line!r}; stderr {err.decode(errors='replace')[-300:]!r})")
    mode = oct(os.stat(C.socket).st_mode)
    if mode != "0o140600":  # a precondition, not perturbed by --mutate
        raise Fail(f"socket mode (expected 0o140600, got {mode})")


def daemon_stop(before):
    """SIGTERM, then: it exits 0, says so, and leaves nothing: no socket,
    no jail cgroup of its own, no process, no network namespace."""
    p, C.daemon = C.daemon, None
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise Fail("fnbox-runtime serve still running 15s after SIGTERM (expected it to stop)")
    err = err.decode(errors="replace")
    check("daemon exit status", 0, p.returncode)
    check_true("daemon's last words", "stopped" in err, "a 'stopped' line", err[-300:])
    check("socket after stop", False, os.path.exists(C.socket))
    left = [d for d in cgroup_dirs() if os.path.basename(d).startswith(f"jail-{p.pid}-")]
    check("daemon's cgroups after stop", [], sorted(left))
    problems = wait_host_unchanged(before)
    check("host after the daemon stopped", [], problems)


def run_path(path, a):
    """Every selected test through one path; (passed, failed)."""
    C.path = path
    passed = failed = 0
    if path == "daemon":
        before = snapshot()
        try:
            daemon_start()
        except Fail as e:
            print(f"FAIL [daemon] daemon_start: {e}", flush=True)
            return 0, 1
    for name, fn, quick in TESTS:
        if a.quick and not quick or path not in PATHS[name]:
            continue
        if a.only and not any(name.startswith(o) for o in a.only):
            continue
        why = run_one(name, fn)
        if why is None:
            passed += 1
            print(f"ok   [{path}] {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL [{path}] {name}: {why}", flush=True)
    if path == "daemon":
        try:
            daemon_stop(before)
            passed += 1
            print("ok   [daemon] daemon_stop_leaves_nothing", flush=True)
        except Fail as e:
            failed += 1
            print(f"FAIL [daemon] daemon_stop_leaves_nothing: {e}", flush=True)
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description="fnbox hostile security suite")
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--path", choices=ALL_PATHS + ("both", "all"), default="all")
    ap.add_argument("--mutate", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("security: these tests must run as root (the jail needs namespaces and cgroups); "
              "try: sudo make test-security", file=sys.stderr)
        print("security: 0 passed, 1 failed")
        return 1
    err = prepare(a.build)
    if err:
        print(f"security: {err}", file=sys.stderr)
        print("security: 0 passed, 1 failed")
        return 1
    C.mutate = a.mutate
    passed = failed = 0
    try:
        paths = {"all": ALL_PATHS, "both": ("oneshot", "daemon")}.get(a.path, (a.path,))
        for path in paths:
            if path in ("zygote", "template") and not os.access(C.zygote_run, os.X_OK):
                print(f"FAIL [{path}] {C.zygote_run} missing: build first (make all)", flush=True)
                failed += 1
                continue
            p, f = run_path(path, a)
            passed += p
            failed += f
    finally:
        if C.daemon is not None:
            C.daemon.kill()
            C.daemon.communicate()
        shutil.rmtree(C.tmp, ignore_errors=True)
    print(f"security: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
