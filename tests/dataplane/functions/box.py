# tests/dataplane/functions/box.py: a fresh-mode box whose body says what to
# do, so that one function covers the outcomes the tests need:
#   "exit N"     writes to stderr and exits with status N
#   "sleep S"    sleeps S seconds, then answers "slept S"
#   "oom M"      fills M MiB of memory (more than its limit: out_of_memory)
#   "big N"      writes N bytes of "x" (more than its output cap)
#   "variant"    answers the VARIANT variable ("none" when unset)
#   anything     answers "echo:" and the body
import os
import sys
import time

data = sys.stdin.buffer.read()
cmd, _, arg = data.partition(b" ")
cmd = cmd.strip().decode("ascii", "replace")
if cmd == "exit":
    sys.stderr.write("box: exiting with %d\n" % int(arg))
    sys.exit(int(arg))
elif cmd == "sleep":
    time.sleep(float(arg))
    sys.stdout.write("slept %s" % arg.decode())
elif cmd == "oom":
    hog = []
    for _ in range(int(arg)):
        hog.append(b"x" * (1 << 20))
    sys.stdout.write("survived %d MiB" % len(hog))
elif cmd == "big":
    n = int(arg)
    chunk = "x" * 65536
    while n > 0:
        sys.stdout.write(chunk[:n])
        n -= len(chunk)
elif cmd == "variant":
    sys.stdout.write(os.environ.get("VARIANT", "none"))
else:
    sys.stdout.buffer.write(b"echo:" + data)
