#!/usr/bin/env python3
"""tests/dataplane/run.py: the data-plane suite. The whole platform, for
real: a controller, runtimes as separate nodes (each in a network namespace
of its own where the machine allows it), an activator, the CLI; deploy and
call, scale from zero and back, box outcomes and limits, scale up and a
draining scale-down, service mode, label routing over several nodes, faults
(a runtime killed under load, the activator restarted, the controller
stopped, a zygote killed) and `fnbox up`.

Each test runs in a child process of its own with a fresh platform
(tests/dataplane/fixture.py), a time limit (SIGINT at the limit, so that the
platform still stops and checks; SIGKILL 20 s later), and fails when it
leaves anything behind. Prints one line per test, then
"dataplane: N passed, N failed"; exits non-zero when a test failed.

usage: run.py [--build DIR] [--only SUBSTRING]... [--list] [--keep]

  --keep   keep each test's temporary folder (daemon logs) even when it passed
Needs root. Python standard library only.
"""
import argparse
import glob
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def load_tests():
    import harness
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        importlib.import_module(os.path.basename(path)[:-3])
    return harness.TESTS


def child(name, build):
    """Run one test in this process; exit 0 on success."""
    import fixture
    rc = _child(name, build)
    for text in fixture.FAILED_LOGS:
        sys.stdout.write(text)
    return rc


def _child(name, build):
    import harness
    tests = load_tests()
    fn, _ = tests[name]

    def on_sigint(*_):
        raise KeyboardInterrupt("time limit")
    signal.signal(signal.SIGINT, on_sigint)
    try:
        fn(build)
    except harness.Fail as e:
        print("FAIL: %s" % e)
        return 1
    except KeyboardInterrupt:
        print("FAIL: the test ran past its time limit")
        traceback.print_exc(limit=6, file=sys.stdout)
        return 1
    except Exception as e:
        print("FAIL: %s: %s" % (type(e).__name__, e))
        traceback.print_exc(limit=8, file=sys.stdout)
        return 1
    return 0


def stray_network(tags):
    """Network namespaces and links named for the platforms of a test (the
    fixture writes each platform's tag to FNBOX_DP_TAGFILE) that are still
    there: what a test killed at its limit could not remove."""
    names = set(os.listdir("/sys/class/net"))
    try:
        names |= {"netns:" + n for n in os.listdir("/run/netns")}
    except OSError:
        pass
    return sorted(n for n in names for t in tags if n.startswith(("fnbd" + t, "netns:fnbd-" + t)))


def run_one(name, limit, build, keep):
    argv = [sys.executable, os.path.abspath(__file__), "--build", build, "--child", name]
    env = dict(os.environ)
    if keep:
        env["FNBOX_DP_KEEP"] = "1"
    tagfile = tempfile.NamedTemporaryFile(prefix="fnbox-dp-tags-", delete=False)
    tagfile.close()
    env["FNBOX_DP_TAGFILE"] = tagfile.name
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
    timed_out = False
    try:
        out, _ = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
    out = out.decode("utf-8", "replace")
    ok = p.returncode == 0 and not timed_out
    with open(tagfile.name) as f:
        tags = f.read().split()
    os.unlink(tagfile.name)
    stray = stray_network(tags)
    for n in stray:
        if n.startswith("netns:"):
            subprocess.run(["ip", "netns", "del", n[6:]], stderr=subprocess.DEVNULL)
        else:
            subprocess.run(["ip", "link", "del", n], stderr=subprocess.DEVNULL)
    if stray:
        ok = False
        out += "\nleft behind: %s\n" % ", ".join(stray)
    dt = time.monotonic() - t0
    print("%s %s (%.1fs)%s" % ("PASS" if ok else "FAIL", name, dt,
                               " [time limit %ss]" % limit if timed_out else ""))
    if not ok or os.environ.get("FNBOX_DP_VERBOSE"):
        for line in out.rstrip("\n").splitlines():
            print("    " + line)
    sys.stdout.flush()
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if args.child:
        return child(args.child, build)
    if os.geteuid() != 0:
        print("dataplane: needs root (namespaces, cgroups)")
        print("dataplane: 0 passed, 1 failed")
        return 1
    tests = load_tests()
    names = [n for n in tests if not args.only or any(o in n for o in args.only)]
    if args.list:
        for n in names:
            print("%s (limit %ss)" % (n, tests[n][1]))
        return 0
    passed = failed = 0
    t0 = time.monotonic()
    for n in names:
        if run_one(n, tests[n][1], build, args.keep):
            passed += 1
        else:
            failed += 1
    print("dataplane: %d tests in %.0fs" % (len(names), time.monotonic() - t0))
    print("dataplane: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and names else 1


if __name__ == "__main__":
    sys.exit(main())
