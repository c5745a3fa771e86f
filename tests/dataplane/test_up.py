"""tests/dataplane/test_up.py: `fnbox up` end to end, as a user runs it: it
starts the three daemons, prints where they are, a function is deployed and
called through what it printed, and Ctrl-C (SIGINT) stops everything with
nothing left behind."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

from fixture import descendants, http_request, mount_points, processes
from harness import check, test

ECHO = b"import sys\nsys.stdout.write('up:' + sys.stdin.read())\n"


@test(limit=90)
def fnbox_up(build):
    tmp = tempfile.mkdtemp(prefix="fnbox-dp-up-")
    os.chmod(tmp, 0o755)
    fnbox = os.path.join(build, "bin", "fnbox")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FNBOX_", "XDG_"))}
    env.update(HOME=os.path.join(tmp, "home"), LC_ALL="C")
    os.makedirs(env["HOME"])
    mounts = mount_points()
    argv = [fnbox, "up", "--data-dir", os.path.join(tmp, "data"), "--listen", "127.0.0.1:0",
            "--api-listen", "127.0.0.1:0", "--run-dir", os.path.join(tmp, "run"), "--node", "up-node",
            "--no-config"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    out = b""
    try:
        deadline = time.monotonic() + 40
        while b"Try it" not in out and time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 1)
            if r:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        text = out.decode("utf-8", "replace")
        inv = re.search(r"invoke\s+(http://\S+)/fn/NAME", text)
        api = re.search(r"API\s+(http://\S+)\s+\(admin token in (\S+)\)", text)
        check(inv and api, "fnbox up did not print the invocation URL, the API URL and the token", text)
        act_url, api_url, token_file = inv.group(1), api.group(1), api.group(2)
        # the runtime's brokers were told the activator's port (--listen :0 picked before)
        check("broker calls go to %s" % act_url in text, "fnbox up: the runtime's broker is not pointed at %s" % act_url,
              text)
        with open(token_file) as f:
            token = f.read().strip()
        daemons = descendants([proc.pid])
        check(len(daemons) >= 3, "fnbox up runs fewer than three processes", daemons)

        fdir = os.path.join(tmp, "fn")
        os.makedirs(fdir)
        with open(os.path.join(fdir, "main.py"), "wb") as f:
            f.write(ECHO)
        with open(os.path.join(fdir, "manifest.yaml"), "w") as f:
            json.dump({"apiVersion": "fnbox.dev/v1", "kind": "Function", "metadata": {"name": "upfn"},
                       "spec": {"runtime": "python3", "code": "main.py"}}, f)
        cenv = dict(env, FNBOX_URL=api_url, FNBOX_TOKEN=token, FNBOX_ACTIVATOR=act_url)
        p = subprocess.run([fnbox, "deploy", "-f", os.path.join(fdir, "manifest.yaml")], env=cenv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(p.returncode == 0, "fnbox deploy", p.stdout, p.stderr)
        p = subprocess.run([fnbox, "call", "upfn", "-d", "hi"], env=cenv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        check(p.returncode == 0 and p.stdout.rstrip(b"\n") == b"up:hi", "fnbox call upfn", p.stdout, p.stderr)
        auth = {"Authorization": "Bearer " + token}
        st, body, _ = http_request(act_url, "POST", "/fn/upfn", b"raw", auth)
        check(st == 200 and body == b"up:raw", "curl-like POST /fn/upfn", st, body)
        st, body, _ = http_request(act_url, "POST", "/fn/upfn", b"raw")
        check(st == 401, "POST /fn/upfn without a token", st, body)
        # the curl line it printed works as printed (for upfn instead of hello)
        curl = re.search(r"^\s*(curl .*/fn/hello)\s*$", text, re.M)
        check(curl and "Authorization: Bearer $(cat %s)" % token_file in curl.group(1)
              and act_url + "/fn/hello" in curl.group(1),
              "fnbox up printed no curl line with the admin token for %s/fn/hello" % act_url, text)
        if shutil.which("curl"):
            line = curl.group(1).replace("/fn/hello", "/fn/upfn") + " -sS"
            rp = subprocess.run(["bash", "-c", line], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=30)
            check(rp.returncode == 0 and rp.stdout == b"up:fnbox", "the printed curl line: " + line,
                  rp.stdout, rp.stderr)
        rp = subprocess.run([fnbox, "nodes"], env=cenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(rp.returncode == 0 and b"up-node" in rp.stdout and b"ready" in rp.stdout, "fnbox nodes",
              rp.stdout, rp.stderr)
        daemons.update(descendants([proc.pid]))

        # Ctrl-C
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            check(False, "fnbox up did not stop within 30 s of SIGINT", out[-3000:])
        dt = time.monotonic() - t0
        check(proc.returncode == 0, "fnbox up exited with %s on SIGINT" % proc.returncode, (out + rest)[-3000:])
        alive = processes()
        left = [pid for pid, st in daemons.items() if pid in alive and alive[pid][1] == st]
        check(not left, "processes left after fnbox up stopped", left)
        new_mounts = [m for m in mount_points() - mounts if tmp in m or "fnbox" in m]
        check(not new_mounts, "mounts left after fnbox up stopped", new_mounts)
        socks = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(tmp, "run")) for f in fs]
        check(not socks, "files left in the run folder", socks)
        print("fnbox up stopped %.1fs after SIGINT" % dt)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
