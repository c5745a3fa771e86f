# tests/dataplane/functions/skill_box.py: the box behind a skill version in
# test_skills_route.py. Its VERSION variable says which version it is; the
# body says what to do:
#   "fail"        writes a traceback-like text (and a byte that is not
#                 UTF-8) to stderr, then exits 3
#   "noisy N"     writes N bytes of stderr ending in "END", then exits 1
#   "die"         kills itself with SIGKILL
#   "sleep S"     sleeps S seconds (past its timeout)
#   anything      answers "vVERSION:" and the body (and FNBOX_PATH when not
#                 /), with a line on stderr
import os
import signal
import sys
import time

data = sys.stdin.buffer.read()
cmd, _, arg = data.partition(b" ")
if data == b"fail":
    sys.stderr.buffer.write(b"Traceback (most recent call last):\nValueError: bad \xff input\n")
    sys.stdout.write("this stdout is dropped")
    sys.exit(3)
elif cmd == b"noisy":
    n = int(arg)
    sys.stderr.write("B" + "x" * (n - 4) + "END")
    sys.exit(1)
elif data == b"die":
    sys.stderr.write("about to die\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
elif cmd == b"sleep":
    sys.stderr.write("sleeping\n")
    sys.stderr.flush()
    time.sleep(float(arg))
else:
    sys.stderr.write("answering\n")
    path = os.environ.get("FNBOX_PATH", "/")
    sys.stdout.buffer.write(b"v" + os.environ.get("VERSION", "?").encode() + b":" + data +
                            (b"" if path == "/" else b" path=" + path.encode()))
