#!/usr/bin/env python3
"""tests/integration/run.py: run every integration suite (test_*.py here).

Each suite is a standalone script that takes --build DIR, starts the real
daemons it needs on ports the kernel picks, prints "NAME: N passed, N
failed" and exits non-zero when anything failed. This runner starts each
with stdin closed (/dev/null), a time limit, and prints the total
"integration: N passed, N failed"; it exits non-zero when any suite failed
or did not report.

usage: run.py [--build DIR] [--only NAME]... [-- ARGS...]
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE_LIMIT_S = 600
SUMMARY_RE = re.compile(r"^(\S+): (\d+) passed, (\d+) failed\s*$", re.M)


def run_suite(path, build, extra):
    """Run one suite; returns (passed, failed, ok)."""
    name = os.path.basename(path)[:-3]
    argv = [sys.executable, path, "--build", build] + extra
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=SUITE_LIMIT_S, cwd=HERE)
        out, rc = proc.stdout.decode("utf-8", "replace"), proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        out += "\n%s: timed out after %ss\n" % (name, SUITE_LIMIT_S)
        rc = -1
    sys.stdout.write(out)
    if not out.endswith("\n"):
        sys.stdout.write("\n")
    m = list(SUMMARY_RE.finditer(out))
    passed = int(m[-1].group(2)) if m else 0
    failed = int(m[-1].group(3)) if m else 0
    ok = rc == 0 and bool(m) and failed == 0
    if not ok and failed == 0:
        failed = 1          # a suite that crashed or said nothing counts as a failure
    print("%s: %s in %.1fs" % (name, "ok" if ok else "FAILED (exit %s)" % rc, time.monotonic() - t0))
    sys.stdout.flush()
    return passed, failed, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[], help="run only suites whose name contains this")
    ap.add_argument("extra", nargs="*", help="passed on to every suite")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    suites = sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    if args.only:
        suites = [s for s in suites if any(o in os.path.basename(s) for o in args.only)]
    total_p = total_f = 0
    all_ok = True
    for s in suites:
        p, f, ok = run_suite(s, build, args.extra)
        total_p += p
        total_f += f
        all_ok = all_ok and ok
    print("integration: %d passed, %d failed" % (total_p, total_f))
    return 0 if all_ok and suites else 1


if __name__ == "__main__":
    sys.exit(main())
