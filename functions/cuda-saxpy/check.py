#!/usr/bin/env python3
"""functions/cuda-saxpy/check.py: runs the saxpy box (the nvcc build, or
with --cpu the CPU reference built without CUDA) and checks its answers
against Python's own computation: y = a*x + y over the box's known inputs,
each element rounded once to float32 (as fmaf and the GPU's __fmaf_rn do),
the checksum their sum in order as doubles; the box's own GPU-versus-CPU
comparison must find no mismatch; bad input must exit 2.

usage: check.py [--cpu] BINARY       (exits 1 on the first failure)
"""
import json
import struct
import subprocess
import sys


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def expected(n, a):
    """(checksum, y[0], y[n-1]) as the box must print them. The inputs are
    quarters and halves of small integers and a has few bits, so a*x + y
    is exact in double and rounding it once to float32 is the FMA's result."""
    a = f32(a)
    total, first, last = 0.0, None, None
    for i in range(n):
        x = (i % 1000) * 0.25 - 100.0
        y = f32(f32(a * x + (i % 77) * 0.5))
        total += y
        if i == 0:
            first = y
        last = y
    return total, first, last


def run(binary, stdin, timeout=120):
    r = subprocess.run([binary], input=stdin.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def fail(msg):
    print("cuda-saxpy check: FAIL: " + msg)
    sys.exit(1)


def main():
    args = sys.argv[1:]
    cpu = "--cpu" in args
    args = [a for a in args if a != "--cpu"]
    if len(args) != 1:
        print(__doc__)
        return 2
    binary = args[0]
    for n, a in ((1, 2.0), (1000, 2.0), (4099, -0.5), (100003, 3.25)):
        rc, out, err = run(binary, "%d %r\n" % (n, a))
        if rc != 0:
            fail("%d %r: exit %d, stderr %r" % (n, a, rc, err[-500:]))
        try:
            got = json.loads(out)
        except ValueError:
            fail("%d %r: not one JSON line: %r" % (n, a, out[:500]))
        total, first, last = expected(n, a)
        want = {"n": n, "a": a, "mismatches": 0, "checksum": total, "y": [first, last]}
        for k, v in want.items():
            if got.get(k) != v:
                fail("%d %r: %s is %r, expected %r" % (n, a, k, got.get(k), v))
        if cpu and got["device"] != "none":
            fail("the CPU build names a device: %r" % got["device"])
        if not cpu and (got["device"] in ("", "none") or not got["compute"]):
            fail("no device name or compute capability: %r" % got)
        print("  n=%-7d a=%-5g ok  device %s%s, kernel %.3f ms, checksum %.17g" % (
            n, a, got["device"], " (compute %s)" % got["compute"] if got["compute"] else "",
            got["kernel_ms"], got["checksum"]))
    # the default size, and bad input
    rc, out, err = run(binary, "")
    if rc != 0 or json.loads(out).get("n") != 1 << 20:
        fail("empty stdin: exit %d, %r %r" % (rc, out[:300], err[-300:]))
    for bad in ("0", "16777217", "x", "10 y", "10 2 3", "-5", "10 nan", "10 inf"):
        rc, out, err = run(binary, bad)
        if rc != 2 or "expected" not in err:
            fail("input %r: exit %d (expected 2), stderr %r" % (bad, rc, err[-300:]))
    print("cuda-saxpy check: all passed (%s)" % ("CPU reference only" if cpu else "GPU against the CPU"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
