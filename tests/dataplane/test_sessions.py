"""tests/dataplane/test_sessions.py: sessions on the data plane
(docs/sessions.md). Input files at /input (read-only), /output returned
and kept, the session claimed once and only by its own namespace and
function, hostile archives and headers refused, a box that fills /output
or leaves a symlink out of it reported, nothing left on the node, and a
replay on the original revision after the traffic moved on."""
import http.client
import io
import json
import os
import tarfile
import tempfile
import time

from fixture import Node, Platform, http_request
from harness import check, test

BOX = r"""
import errno, os, sys
mode = sys.stdin.read()
names = sorted(os.listdir('/input'))
try:
    open('/input/new', 'w')
    ro = 'writable'
except OSError as e:
    ro = errno.errorcode[e.errno]
if mode == 'flood':
    try:
        for n in range(4):    # one file is at most the box's tmp size (RLIMIT_FSIZE, 16 MiB)
            with open('/output/big%d' % n, 'wb') as f:
                for _ in range(10):
                    f.write(b'x' * (1 << 20))
    except OSError as e:
        print('flood', errno.errorcode[e.errno])
        sys.exit(3)
elif mode == 'link':
    os.symlink('/etc/shadow', '/output/shadow')
else:
    os.makedirs('/output/a', exist_ok=True)
    with open('/output/a/b.txt', 'w') as f:
        f.write(open('/input/data.txt').read().upper())
print(VERSION, names, ro, open('/input/data.txt').read())
"""


def tar_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def api_raw(p, method, path, body=b"", ctype="application/x-tar"):
    st, raw, _ = http_request(p.api_url, method, path, body,
                              {"Authorization": "Bearer " + p.token, "Content-Type": ctype}, 30)
    try:
        return st, json.loads(raw)
    except ValueError:
        return st, raw


def new_session(p, function=None, files=None):
    q = "/v1/sessions?namespace=default" + ("&function=" + function if function else "")
    st, s = api_raw(p, "POST", q, tar_of(files if files is not None else {"data.txt": b"hello"}))
    check(st == 201 and s["state"] == "created", "POST %s" % q, st, s)
    return s["id"]


def call(p, name, sid, body=b""):
    return p.invoke(name, body, headers={"X-Fnbox-Session": sid} if sid else None)


def deploy(p, name, version):
    with tempfile.NamedTemporaryFile("w", suffix=".py", dir=p.tmp, delete=False) as f:
        f.write(BOX.replace("VERSION", repr(version)))
    return p.deploy(name, f.name, spec={"limits": {"timeout": "20s", "memory": "256Mi"}})


def leftovers(sid):
    d = os.path.join("/run/fnbox/sessions", sid)
    with open("/proc/self/mountinfo") as f:
        mounts = [line for line in f if sid in line]
    return os.path.exists(d), mounts


@test(limit=300)
def sessions_end_to_end(build):
    with Platform(build, nodes=[Node("node-a")]) as p:
        deploy(p, "reader", "v1")
        deploy(p, "other", "o1")

        sid = new_session(p, "reader")
        st, body, h = call(p, "reader", sid)
        check(st == 200 and body.startswith(b"v1 ['data.txt'] EROFS hello"), "a call with a session", st, body)
        check(h.get("x-fnbox-session") == sid, "the answer names its session", h)
        st, s = api_raw(p, "GET", "/v1/sessions/" + sid)
        check(st == 200 and s["state"] == "done" and s["revision"] == "reader-00001" and
              [f["name"] for f in s["output"]["files"]] == ["a/b.txt"] and s["result"]["status"] == "exited" and
              s["result"]["exitCode"] == 0 and s["stdout"]["size"] == len(body), "the session's record", st, s)
        st, out = api_raw(p, "GET", "/v1/sessions/%s/output" % sid)
        with tarfile.open(fileobj=io.BytesIO(out)) as t:
            check(t.extractfile("a/b.txt").read() == b"HELLO", "the output archive")
        check(leftovers(sid) == (False, []), "nothing of the session left on the node", leftovers(sid))

        # once only, own function only, fresh only, well-formed only
        st, body, _ = call(p, "reader", sid)
        check(st >= 500 and b"already run" in body, "a session runs once", st, body)
        sid2 = new_session(p, "reader")
        st, body, _ = call(p, "other", sid2)
        check(st >= 500 and b"is for function reader" in body, "another function cannot claim it", st, body)
        for bad in ("s-123", "../../etc", "s-" + "g" * 32):
            st, body, _ = call(p, "reader", bad)
            check(st == 400 and b"X-Fnbox-Session" in body, "X-Fnbox-Session %r" % bad, st, body)
        st, body, _ = call(p, "reader", "s-" + "0" * 32)
        check(st >= 500 and b"no session" in body, "an unknown session", st, body)

        # hostile and oversized archives, unknown functions
        evil = bytearray(tar_of({"x": b"1"}))
        evil[0:1] = b"/"                       # an absolute path (the checksum no longer matches either)
        for what, data in (("garbage", b"x" * 512), ("absolute", bytes(evil)),
                           ("dotdot", tar_of({"../evil": b"1"}))):
            st, e = api_raw(p, "POST", "/v1/sessions?namespace=default", data)
            check(st == 400 and "input" in json.dumps(e), "a %s archive" % what, st, e)
        # over 32 MiB: refused on its Content-Length, before the body
        host, port = p.api_url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.putrequest("POST", "/v1/sessions?namespace=default")
        conn.putheader("Authorization", "Bearer " + p.token)
        conn.putheader("Content-Length", str((32 << 20) + 512))
        conn.endheaders()
        r = conn.getresponse()
        check(r.status == 413, "an archive over 32 MiB", r.status, r.read())
        conn.close()
        st, e = api_raw(p, "POST", "/v1/sessions?namespace=default&function=nosuch", tar_of({"a": b"1"}))
        check(st == 404, "a session of no function", st, e)
        st, e = api_raw(p, "POST", "/v1/sessions?namespace=default&retention=400d", b"")
        check(st == 400, "a retention past the controller's", st, e)
        st, e = api_raw(p, "POST", "/v1/sessions/%s/replay" % sid2, b"")
        check(st == 409, "a replay of a session that never ran", st, e)
        # retention: an expired session is gone at once (and pruned within a minute)
        st, s = api_raw(p, "POST", "/v1/sessions?namespace=default&retention=1s", tar_of({"data.txt": b"x"}))
        check(st == 201, "a session kept one second", st, s)
        time.sleep(1.5)
        st, e = api_raw(p, "GET", "/v1/sessions/" + s["id"])
        check(st == 404, "an expired session is gone", st, e)

        # a box that fills /output, one that leaves a link out of it
        sid3 = new_session(p, "reader")
        st, body, _ = call(p, "reader", sid3, b"flood")
        check(st == 500 and b"status 3" in body, "a box that fills /output gets ENOSPC", st, body)
        st, s = api_raw(p, "GET", "/v1/sessions/" + sid3)
        check(s["state"] == "done" and s["result"]["exitCode"] == 3 and (31 << 20) < s["output"]["size"] <= (33 << 20),
              "its session", s)
        check(leftovers(sid3) == (False, []), "nothing left of the flood", leftovers(sid3))
        sid4 = new_session(p, "reader")
        st, body, _ = call(p, "reader", sid4, b"link")
        st, s = api_raw(p, "GET", "/v1/sessions/" + sid4)
        check(s["state"] == "failed" and "shadow" in s["result"].get("outputError", "") and
              s["output"]["size"] == 0, "a symlink out of /output is refused, not followed", s)
        check(leftovers(sid4) == (False, []), "nothing left of the link", leftovers(sid4))

        # a replay runs the original's revision after the traffic moved on
        deploy(p, "reader", "v2")
        st, body, _ = call(p, "reader", new_session(p, "reader"))
        check(st == 200 and body.startswith(b"v2 "), "the new revision serves", st, body)
        st, r = api_raw(p, "POST", "/v1/sessions/%s/replay" % sid, b"")
        check(st == 200 and r["replayOf"] == sid and r["session"]["revision"] == "reader-00001" and
              r["same"] == {"stdout": True, "output": True, "status": True, "code": True},
              "the replay ran revision 1 again, the same", st, r)
        st, t = api_raw(p, "GET", "/v1/functions/reader/traffic?namespace=default")
        check("fnbox-" not in json.dumps(t), "the replay's tag is not in the user's traffic", t)
        st, lst = api_raw(p, "GET", "/v1/sessions?namespace=default&limit=2")
        check(st == 200 and len(lst["items"]) == 2 and lst["next"] and
              lst["items"][0]["id"] == r["session"]["id"], "sessions list newest first, paged", st, lst)
