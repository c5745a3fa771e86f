#!/usr/bin/env python3
"""tests/integration/test_api.py: the control API of docs/api.md against a
real fnbox-controller (SQLite in a temporary folder, or --store URL).

Every endpoint, status and error type: 401 (missing, malformed, unknown,
revoked) against 403 (a developer of team-a touching team-b), 404, 405, 409,
413, 422, 431; deploys and revisions, traffic, pagination, tokens; a deploy
acknowledged just before kill -9 is there after a restart; two racing
deploys lose nothing.

usage: test_api.py [--build DIR] [--store URL] [--only NAME]... [--wrap CMD]

  --wrap CMD   run the controller under CMD (for example
               "valgrind --leak-check=full --error-exitcode=99")

Every controller the suite stops with SIGTERM must exit 0 with no sanitizer
or valgrind report in its log.
"""
import argparse
import hashlib
import io
import json
import os
import re
import shlex
import socket
import stat
import sys
import tarfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import Controller, api, api_full, Fail, Tests, check, run_test  # noqa: E402

MiB = 1 << 20
TESTS = Tests()
ARGS = None



test = TESTS.add




def expect(resp, status, etype=None, field=None):
    """resp is (status, body); check the status and the error shape."""
    st, body = resp
    check(st == status, "expected %s, got %s" % (status, st), body)
    if etype:
        check(isinstance(body, dict) and isinstance(body.get("error"), dict),
              "expected the error shape", body)
        err = body["error"]
        check(err.get("type") == etype, "expected type %s" % etype, body)
        check(isinstance(err.get("message"), str) and err["message"], "expected a message", body)
        if field is not None:
            check(err.get("field") == field, "expected field %s" % field, body)
    return body


# ---- helpers --------------------------------------------------------------------

def tar_of(files):
    """A small ustar archive of {name: text}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(name, namespace=None, env=None, traffic=None, extra=""):
    lines = ["apiVersion: fnbox.dev/v1", "kind: Function", "metadata:", "  name: %s" % name]
    if namespace:
        lines.append("  namespace: %s" % namespace)
    lines += ["spec:", "  runtime: python3", "  code: ./main.py"]
    if env:
        lines.append("  env: {%s}" % ", ".join("%s: %s" % kv for kv in sorted(env.items())))
    if traffic:
        lines.append("  traffic:")
        for t in traffic:
            lines.append("    - {%s}" % ", ".join("%s: %s" % (k, json.dumps(v) if isinstance(v, bool) else v)
                                                  for k, v in t.items()))
    return "\n".join(lines) + "\n" + extra


class Client:
    """The API as one token sees it."""

    def __init__(self, ctl, token):
        self.ctl, self.token = ctl, token

    def req(self, method, path, body=None, headers=None):
        return api(method, self.ctl.url + path, token=self.token, body=body, headers=headers)

    def upload(self, files):
        data = tar_of(files)
        d = digest_of(data)
        st, body = self.req("PUT", "/v1/artifacts/" + d, data, {"Content-Type": "application/x-tar"})
        check(st in (200, 201), "upload: %s" % st, body)
        return d

    def deploy(self, text, digest, namespace=None, rv=None, source="fn.yaml"):
        body = {"manifest": text, "source": source, "codeDigest": digest}
        if rv is not None:
            body["resourceVersion"] = rv
        q = "?namespace=" + namespace if namespace else ""
        return self.req("POST", "/v1/functions" + q, body)


def new_token(c, role, namespaces):
    st, body = c.req("POST", "/v1/tokens", {"role": role, "namespaces": namespaces, "description": "test"})
    check(st == 201, "token create: %s" % st, body)
    return body


def raw_http(url, head, body_parts=(), read_first=False, timeout=20):
    """Send a raw request (head: the request line and headers, without the
    blank line); returns (status, headers text, body text). With read_first,
    read the answer before sending any body (Expect: 100-continue)."""
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        s.sendall(head.encode() + b"\r\n\r\n")
        if not read_first:
            for part in body_parts:
                s.sendall(part)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            m = re.search(rb"\r\n\r\n", data)
            if m:
                headers = data[:m.start()].decode("latin-1")
                cl = re.search(r"(?im)^content-length:\s*(\d+)", headers)
                if cl and len(data) - m.end() >= int(cl.group(1)):
                    break
    finally:
        s.close()
    head_end = data.find(b"\r\n\r\n")
    check(head_end > 0, "no HTTP answer", data[:200])
    headers = data[:head_end].decode("latin-1")
    status = int(headers.split(" ", 2)[1])
    return status, headers, data[head_end + 4:].decode("utf-8", "replace")


def controller(**kw):
    wrapper = shlex.split(ARGS.wrap) if ARGS.wrap else ()
    timeout = 120 if wrapper else 20
    return Controller(ARGS.build, store=ARGS.store, wrapper=wrapper, start_timeout=timeout, **kw)


SANITIZER_RE = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|ERROR SUMMARY: [1-9]")


def admin_of(ctl, S):
    """The admin token of a second controller: its own first token, or with
    a shared --store (which already had tokens) the shared one's."""
    try:
        return ctl.admin_token
    except OSError:
        check(ARGS.store, "no admin.token in %s" % ctl.data_dir)
        return S.admin.token


def stop_checked(ctl):
    """Stop a controller with SIGTERM: it must exit 0 and no sanitizer or
    valgrind report may be in its log (LeakSanitizer and valgrind's
    --error-exitcode also turn a leak into a non-zero status)."""
    rc = ctl.stop()
    log = ctl.log()
    m = SANITIZER_RE.search(log)
    check(rc == 0 and not m, "controller%s exited %s" % (" under " + ARGS.wrap if ARGS.wrap else "", rc),
          log[max(0, m.start() - 200) if m else -3000:][:6000])


# ---- health and routing ------------------------------------------------------------

@test
def health(S):
    st, body = api("GET", S.ctl.url + "/healthz")
    check(st == 200 and body == {"status": "ok"}, "healthz", st, body)
    st, body = api("GET", S.ctl.url + "/readyz")
    check(st == 200 and body.get("status") == "ready", "readyz", st, body)
    check(body.get("store") in ("sqlite", "postgres") and isinstance(body.get("schema"), int) and
          body["schema"] >= 1, "readyz names the store and schema", body)


@test
def not_found_and_method(S):
    a = S.admin
    expect(a.req("GET", "/v1/nope"), 404, "not_found")
    expect(a.req("GET", "/v1/functions/x/y/z/w"), 404, "not_found")
    expect(a.req("GET", "/"), 404, "not_found")
    expect(a.req("GET", "/v1/functions/no-such-fn"), 404, "not_found")
    expect(a.req("GET", "/v1/functions/no-such-fn/revisions"), 404, "not_found")
    expect(a.req("GET", "/v1/functions/no-such-fn/traffic"), 404, "not_found")
    expect(a.req("DELETE", "/v1/functions/no-such-fn"), 404, "not_found")
    expect(a.req("DELETE", "/v1/tokens/0123456789abcdef"), 404, "not_found")
    expect(a.req("DELETE", "/v1/tokens/not-an-id"), 404, "not_found")
    st, body, hdrs = api_full("PATCH", S.ctl.url + "/v1/functions", token=S.admin.token)
    expect((st, body), 405, "method_not_allowed")
    check("GET" in hdrs.get("Allow", "") and "POST" in hdrs.get("Allow", ""), "405 has Allow", hdrs)
    expect(a.req("DELETE", "/v1/nodes"), 405, "method_not_allowed")
    expect(a.req("POST", "/healthz", {}), 405, "method_not_allowed")


# ---- authentication: 401 ----------------------------------------------------------------

@test
def unauthenticated(S):
    url = S.ctl.url + "/v1/functions"
    st, body, hdrs = api_full("GET", url)
    expect((st, body), 401, "unauthenticated")
    check(hdrs.get("WWW-Authenticate", "").startswith("Bearer"), "401 says Bearer", hdrs)
    for bad in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", "Bearer fnb_", "Bearer xyz",
                "Bearer " + S.admin.token + "x", "Bearer " + S.admin.token.upper(), "bearer-" + S.admin.token):
        expect(api("GET", url, headers={"Authorization": bad}), 401, "unauthenticated")
    # well-formed, never issued
    expect(api("GET", url, token="fnb_0123456789abcdef_" + "A" * 43), 401, "unauthenticated")
    # a real id with a wrong secret
    real_id = S.admin.token.split("_")[1]
    expect(api("GET", url, token="fnb_%s_%s" % (real_id, "B" * 43)), 401, "unauthenticated")
    # the scheme is case-insensitive
    expect(api("GET", url, headers={"Authorization": "bearer " + S.admin.token}), 200)


@test
def revoked_token(S):
    t = new_token(S.admin, "developer", ["team-a"])
    c = Client(S.ctl, t["token"])
    expect(c.req("GET", "/v1/functions?namespace=team-a"), 200)
    body = expect(S.admin.req("DELETE", "/v1/tokens/" + t["id"]), 200)
    check(body == {"revoked": t["id"]}, "revoke answer", body)
    body = expect(c.req("GET", "/v1/functions?namespace=team-a"), 401, "unauthenticated")
    check("revoked" in body["error"]["message"], "says revoked", body)
    expect(S.admin.req("DELETE", "/v1/tokens/" + t["id"]), 200)    # idempotent
    items = expect(S.admin.req("GET", "/v1/tokens"), 200)["items"]
    mine = [i for i in items if i["id"] == t["id"]]
    check(len(mine) == 1 and mine[0]["revoked"] is True, "listed as revoked", mine)


# ---- authorisation: 403 ------------------------------------------------------------------

@test
def tenants(S):
    a = S.admin
    d = a.upload({"main.py": "print('tenants')\n"})
    expect(a.deploy(manifest("secret", "team-b"), d), 201)
    expect(a.deploy(manifest("mine", "team-a"), d), 201)
    dev = Client(S.ctl, new_token(a, "developer", ["team-a"])["token"])
    inv = Client(S.ctl, new_token(a, "invoker", ["team-a"])["token"])

    # cannot see team-b, whether the function exists or not: the same answer
    e1 = expect(dev.req("GET", "/v1/functions/secret?namespace=team-b"), 403, "forbidden")
    e2 = expect(dev.req("GET", "/v1/functions/nothing?namespace=team-b"), 403, "forbidden")
    check(e1 == e2, "403 does not tell whether it exists", e1, e2)
    expect(dev.req("GET", "/v1/functions?namespace=team-b"), 403, "forbidden")
    expect(dev.req("GET", "/v1/functions/secret/revisions?namespace=team-b"), 403, "forbidden")
    expect(dev.req("GET", "/v1/functions/secret/revisions/secret-00001?namespace=team-b"), 403, "forbidden")
    expect(dev.req("GET", "/v1/functions/secret/traffic?namespace=team-b"), 403, "forbidden")
    # cannot change team-b
    expect(dev.deploy(manifest("secret"), d, namespace="team-b"), 403, "forbidden")
    expect(dev.deploy(manifest("secret", "team-b"), d, namespace="team-a"), 403, "forbidden",
           "metadata.namespace")
    expect(dev.req("PUT", "/v1/functions/secret/traffic?namespace=team-b",
                   {"traffic": [{"latestRevision": True, "percent": 100}]}), 403, "forbidden")
    expect(dev.req("DELETE", "/v1/functions/secret?namespace=team-b"), 403, "forbidden")
    expect(a.req("GET", "/v1/functions/secret?namespace=team-b"), 200)      # still there
    # admin-only routes
    expect(dev.req("GET", "/v1/tokens"), 403, "forbidden")
    expect(dev.req("POST", "/v1/tokens", {"role": "admin"}), 403, "forbidden")
    expect(dev.req("GET", "/v1/nodes"), 403, "forbidden")
    # namespace=* shows only what the token may see
    items = expect(dev.req("GET", "/v1/functions?namespace=*"), 200)["items"]
    check(items and all(i["namespace"] == "team-a" for i in items), "only team-a", items)
    # in its own namespace the developer may work
    expect(dev.req("GET", "/v1/functions/mine?namespace=team-a"), 200)
    expect(dev.deploy(manifest("mine", env={"A": "1"}), d, namespace="team-a"), 200)
    # an invoker reads but does not change
    expect(inv.req("GET", "/v1/functions/mine?namespace=team-a"), 200)
    expect(inv.req("GET", "/v1/functions/mine/revisions?namespace=team-a"), 200)
    expect(inv.deploy(manifest("mine"), d, namespace="team-a"), 403, "forbidden")
    expect(inv.req("DELETE", "/v1/functions/mine?namespace=team-a"), 403, "forbidden")
    expect(inv.req("PUT", "/v1/artifacts/" + d, b"x"), 403, "forbidden")
    expect(inv.req("HEAD", "/v1/artifacts/" + d)[:1] + (None,), 403)
    expect(inv.req("GET", "/v1/functions/secret?namespace=team-b"), 403, "forbidden")


# ---- artifacts ------------------------------------------------------------------------------

@test
def artifacts(S):
    a = S.admin
    data = tar_of({"main.py": "print('artifact')\n"})
    d = digest_of(data)
    st, _ = a.req("HEAD", "/v1/artifacts/" + d)
    check(st == 404, "HEAD before upload: %s" % st)
    body = expect(a.req("PUT", "/v1/artifacts/" + d, data), 201)
    check(body == {"digest": d, "size": len(data)}, "PUT answer", body)
    expect(a.req("PUT", "/v1/artifacts/" + d, data), 200)
    st, _ = a.req("HEAD", "/v1/artifacts/" + d)
    check(st == 200, "HEAD after upload: %s" % st)
    expect(a.req("PUT", "/v1/artifacts/" + digest_of(b"other"), data), 400, "digest_mismatch")
    expect(a.req("PUT", "/v1/artifacts/sha256:XYZ", data), 400, "bad_request")
    expect(a.req("PUT", "/v1/artifacts/" + d.upper(), data), 400, "bad_request")
    expect(a.req("PUT", "/v1/artifacts/md5:abc", data), 400, "bad_request")


# ---- deploys and revisions ---------------------------------------------------------------------

@test
def deploy_revisions(S):
    a = S.admin
    d1 = a.upload({"main.py": "print(1)\n"})
    d2 = a.upload({"main.py": "print(2)\n"})
    st, body = a.deploy(manifest("hello"), d1)
    check(st == 201, "first deploy creates: %s" % st, body)
    check(body["revision"] == "hello-00001" and body["revisionCreated"] is True, "revision 1", body)
    f = body["function"]
    check(f["name"] == "hello" and f["namespace"] == "default" and f["latestRevision"] == "hello-00001",
          "function", f)
    check(f["resourceVersion"] >= 1 and f["spec"]["runtime"] == "python3", "function fields", f)
    for k in ("createdAt", "updatedAt"):
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", f[k]), "timestamp " + k, f[k])
    check(f["traffic"] == [{"latestRevision": True, "revision": "hello-00001", "percent": 100}],
          "default traffic", f["traffic"])

    st, body = a.deploy(manifest("hello"), d1)
    check(st == 200 and body["revisionCreated"] is False and body["revision"] == "hello-00001",
          "unchanged deploy creates none", st, body)
    st, body = a.deploy(manifest("hello"), d2)
    check(st == 200 and body["revisionCreated"] is True and body["revision"] == "hello-00002",
          "changed code creates -00002", st, body)
    st, body = a.deploy(manifest("hello", env={"GREETING": "hi"}), d2)
    check(body["revision"] == "hello-00003" and body["revisionCreated"], "changed spec creates -00003", body)
    st, body = a.deploy(manifest("hello", env={"GREETING": "hi"},
                                 traffic=[{"revision": "hello-00002", "percent": 50, "tag": "old"},
                                          {"latestRevision": True, "percent": 50}]), d2)
    check(st == 200 and body["revisionCreated"] is False, "a traffic change makes no revision", st, body)
    check(body["function"]["traffic"][1]["revision"] == "hello-00003", "latest resolved", body)

    revs = expect(a.req("GET", "/v1/functions/hello/revisions"), 200)
    names = [r["name"] for r in revs["items"]]
    check(names == ["hello-00003", "hello-00002", "hello-00001"] and revs["next"] is None,
          "revisions newest first", revs)
    r2 = expect(a.req("GET", "/v1/functions/hello/revisions/hello-00002"), 200)
    check(r2["number"] == 2 and r2["codeDigest"] == d2 and r2["function"] == "hello" and
          r2["namespace"] == "default" and re.match(r"^[0-9a-f]{64}$", r2["specDigest"]), "revision", r2)
    check("traffic" not in r2["spec"], "a revision's spec has no traffic", r2["spec"])
    r1 = expect(a.req("GET", "/v1/functions/hello/revisions/hello-00001"), 200)
    check(r1["specDigest"] != r2["specDigest"], "code is part of the spec digest", r1, r2)
    for bad in ("hello-1", "hello-00009", "other-00001", "hello-000001"):
        expect(a.req("GET", "/v1/functions/hello/revisions/" + bad), 404, "not_found")
    # revisions page too
    p1 = expect(a.req("GET", "/v1/functions/hello/revisions?limit=2"), 200)
    check([r["number"] for r in p1["items"]] == [3, 2] and p1["next"], "revision page 1", p1)
    p2 = expect(a.req("GET", "/v1/functions/hello/revisions?limit=2&after=" + p1["next"]), 200)
    check([r["number"] for r in p2["items"]] == [1] and p2["next"] is None, "revision page 2", p2)
    p3 = expect(a.req("GET", "/v1/functions/hello/revisions?limit=3"), 200)
    check(len(p3["items"]) == 3 and p3["next"] is None, "an exact page has no next", p3)
    p4 = expect(a.req("GET", "/v1/functions/hello/revisions?limit=1000"), 200)
    check(len(p4["items"]) == 3 and p4["next"] is None, "limit 1000", p4)
    expect(a.req("GET", "/v1/functions/hello/revisions?after=nope-00001"), 400, "bad_request", "after")
    expect(a.req("GET", "/v1/functions/hello/revisions?limit=1001"), 400, "bad_request", "limit")


@test
def deploy_namespaces(S):
    a = S.admin
    d = a.upload({"main.py": "print('ns')\n"})
    # no metadata.namespace: the query decides
    body = expect(a.deploy(manifest("nsq"), d, namespace="team-q"), 201)
    check(body["function"]["namespace"] == "team-q", "query namespace", body)
    # metadata.namespace wins over the query
    body = expect(a.deploy(manifest("nsm", "team-m"), d, namespace="team-q"), 201)
    check(body["function"]["namespace"] == "team-m", "manifest namespace wins", body)
    expect(a.req("GET", "/v1/functions/nsm?namespace=team-q"), 404, "not_found")
    # neither: default
    body = expect(a.deploy(manifest("nsd"), d), 201)
    check(body["function"]["namespace"] == "default", "default namespace", body)
    expect(a.deploy(manifest("x"), d, namespace="Bad_NS"), 400, "bad_request", "namespace")
    expect(a.deploy(manifest("x"), d, namespace="*"), 400, "bad_request", "namespace")


@test
def deploy_errors(S):
    a = S.admin
    d = a.upload({"main.py": "print('errors')\n"})
    bad = manifest("broken").replace("runtime: python3", "runtime: python3\n  limits: {memory: lots}")
    body = expect(a.deploy(bad, d, source="broken.yaml"), 422, "invalid_manifest", "spec.limits.memory")
    check(re.match(r"^broken\.yaml:\d+:\d+: ", body["error"]["message"]), "file:line:col", body)
    body = expect(a.deploy(manifest("broken", extra="  color: blue\n"), d, source="c.yaml"), 422,
                  "invalid_manifest")
    check(re.match(r"^c\.yaml:\d+:\d+: ", body["error"]["message"]), "unknown field has file:line:col", body)
    expect(a.deploy("apiVersion: [unclosed\n", d), 422, "invalid_manifest")
    two = manifest("one") + "---\n" + manifest("two")
    expect(a.deploy(two, d), 400, "bad_request")
    body = expect(a.deploy(manifest("ghost"), digest_of(b"never uploaded")), 422, "missing_artifact",
                  "codeDigest")
    expect(a.req("GET", "/v1/functions/ghost"), 404, "not_found")
    expect(a.deploy(manifest("x"), "sha256:short"), 400, "bad_request", "codeDigest")
    expect(a.req("POST", "/v1/functions", {"codeDigest": d}), 400, "bad_request", "manifest")
    expect(a.req("POST", "/v1/functions", {"manifest": manifest("x"), "codeDigest": d,
                                           "resourceVersion": "3"}), 400, "bad_request", "resourceVersion")
    expect(a.req("POST", "/v1/functions", b"{not json"), 400, "bad_request")
    expect(a.req("POST", "/v1/functions", b"[1, 2]"), 400, "bad_request")
    expect(a.req("POST", "/v1/functions", b""), 400, "bad_request")
    expect(a.req("POST", "/v1/functions", b'{"a": 1, "a": 2}'), 400, "bad_request")
    # a traffic entry naming a revision that will not exist
    t = [{"revision": "tr-00007", "percent": 100}]
    expect(a.deploy(manifest("tr", traffic=t), d), 422, "invalid_manifest", "spec.traffic[0].revision")


# ---- optimistic concurrency: 409 ---------------------------------------------------------------

@test
def conflicts(S):
    a = S.admin
    d1 = a.upload({"main.py": "print('c1')\n"})
    d2 = a.upload({"main.py": "print('c2')\n"})
    body = expect(a.deploy(manifest("cas"), d1, rv=0), 201)
    rv = body["function"]["resourceVersion"]
    expect(a.deploy(manifest("cas"), d2, rv=0), 409, "conflict")            # must not exist yet
    expect(a.deploy(manifest("cas"), d2, rv=rv + 5), 409, "conflict")
    body = expect(a.deploy(manifest("cas"), d2, rv=rv), 200)
    rv2 = body["function"]["resourceVersion"]
    check(rv2 > rv, "resourceVersion grows", rv, rv2)
    expect(a.deploy(manifest("cas", env={"X": "1"}), d2, rv=rv), 409, "conflict")   # stale
    t = {"traffic": [{"latestRevision": True, "percent": 100}], "resourceVersion": rv}
    expect(a.req("PUT", "/v1/functions/cas/traffic", t), 409, "conflict")
    expect(a.req("DELETE", "/v1/functions/cas?resourceVersion=%d" % rv), 409, "conflict")
    expect(a.req("DELETE", "/v1/functions/cas?resourceVersion=x"), 400, "bad_request")
    body = expect(a.req("DELETE", "/v1/functions/cas?resourceVersion=%d" % rv2), 200)
    check(body == {"deleted": "cas"}, "delete answer", body)
    expect(a.req("GET", "/v1/functions/cas"), 404, "not_found")
    expect(a.req("GET", "/v1/functions/cas/revisions"), 404, "not_found")


@test
def racing_deploys(S):
    a = S.admin
    base = a.upload({"main.py": "print('race')\n"})
    codes = [a.upload({"main.py": "print('race %d')\n" % i}) for i in range(2)]
    rv = expect(a.deploy(manifest("race"), base), 201)["function"]["resourceVersion"]
    barrier = threading.Barrier(2)
    results = [None, None]

    def run(i):
        barrier.wait()
        results[i] = a.deploy(manifest("race"), codes[i], rv=rv)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r[0] for r in results)
    check(statuses == [200, 409], "one wins, one gets 409", results)
    loser = 0 if results[0][0] == 409 else 1
    check(results[loser][1]["error"]["type"] == "conflict", "409 is a conflict", results[loser])
    # the CLI's retry: re-read, deploy again with the new version
    now = expect(a.req("GET", "/v1/functions/race"), 200)["resourceVersion"]
    body = expect(a.deploy(manifest("race"), codes[loser], rv=now), 200)
    check(body["revisionCreated"], "the retry makes its revision", body)
    revs = expect(a.req("GET", "/v1/functions/race/revisions"), 200)["items"]
    digests = {r["codeDigest"] for r in revs}
    check(len(revs) == 3 and set(codes) <= digests, "no revision lost", revs)

    # without resourceVersion racing deploys are serialised: none is lost
    more = [a.upload({"main.py": "print('free %d')\n" % i}) for i in range(4)]
    barrier = threading.Barrier(4)
    results = [None] * 4

    def run_free(i):
        barrier.wait()
        results[i] = a.deploy(manifest("race"), more[i])

    threads = [threading.Thread(target=run_free, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(all(r[0] == 200 and r[1]["revisionCreated"] for r in results), "all four land", results)
    revs = expect(a.req("GET", "/v1/functions/race/revisions"), 200)["items"]
    check(len(revs) == 7 and [r["number"] for r in revs] == list(range(7, 0, -1)), "seven revisions", revs)


# ---- traffic --------------------------------------------------------------------------------------

@test
def traffic(S):
    a = S.admin
    d1 = a.upload({"main.py": "print('t1')\n"})
    d2 = a.upload({"main.py": "print('t2')\n"})
    expect(a.deploy(manifest("split"), d1), 201)
    expect(a.deploy(manifest("split"), d2), 200)
    got = expect(a.req("GET", "/v1/functions/split/traffic"), 200)
    check(got["traffic"] == [{"latestRevision": True, "revision": "split-00002", "percent": 100}],
          "traffic GET", got)
    t = [{"revision": "split-00001", "percent": 90, "tag": "stable"},
         {"latestRevision": True, "percent": 10, "tag": "canary"}]
    body = expect(a.req("PUT", "/v1/functions/split/traffic",
                        {"traffic": t, "resourceVersion": got["resourceVersion"]}), 200)
    check(body["resourceVersion"] == got["resourceVersion"] + 1, "version + 1", body)
    check(body["traffic"] == [{"revision": "split-00001", "percent": 90, "tag": "stable"},
                              {"latestRevision": True, "revision": "split-00002", "percent": 10,
                               "tag": "canary"}], "traffic answer", body)
    f = expect(a.req("GET", "/v1/functions/split"), 200)
    check(f["traffic"] == body["traffic"], "the function shows the split", f)
    bad = [
        ([{"revision": "split-00001", "percent": 50}], "traffic"),
        ([{"revision": "split-00009", "percent": 100}], "traffic[0].revision"),
        ([{"revision": "other-00001", "percent": 100}], "traffic[0].revision"),
        ([{"percent": 100}], "traffic[0].revision"),
        ([{"revision": "split-00001", "latestRevision": True, "percent": 100}], "traffic[0].revision"),
        ([{"latestRevision": True, "percent": 101}], "traffic[0].percent"),
        ([{"latestRevision": True, "percent": "100"}], "traffic[0].percent"),
        ([{"revision": "split-00001", "percent": 50, "tag": "x"},
          {"latestRevision": True, "percent": 50, "tag": "x"}], "traffic[1].tag"),
        ([{"latestRevision": True, "percent": 100, "tag": "Not_A_Label"}], "traffic[0].tag"),
        ([{"latestRevision": True, "percent": 100, "weight": 3}], "traffic[0]"),
        ([], "traffic"),
        ("all", "traffic"),
    ]
    for t, field in bad:
        expect(a.req("PUT", "/v1/functions/split/traffic", {"traffic": t}), 422, "invalid_traffic", field)
    expect(a.req("PUT", "/v1/functions/nope/traffic",
                 {"traffic": [{"latestRevision": True, "percent": 100}]}), 404, "not_found")
    expect(a.req("PUT", "/v1/functions/split/traffic", b"nope"), 400, "bad_request")
    f2 = expect(a.req("GET", "/v1/functions/split"), 200)
    check(f2["traffic"] == body["traffic"], "refused changes left the split alone", f2)


# ---- lists and pagination --------------------------------------------------------------------------

@test
def pagination(S):
    a = S.admin
    d = a.upload({"main.py": "print('page')\n"})
    names = ["p%03d" % i for i in range(250)]
    for n in names:
        st, body = a.deploy(manifest(n), d, namespace="pages")
        check(st == 201, "deploy %s: %s" % (n, st), body)
    seen, after, pages = [], None, 0
    while True:
        q = "/v1/functions?namespace=pages&limit=100" + ("&after=" + urllib.parse.quote(after) if after else "")
        page = expect(a.req("GET", q), 200)
        pages += 1
        check(len(page["items"]) <= 100, "page size", len(page["items"]))
        seen += [i["name"] for i in page["items"]]
        after = page["next"]
        if not after:
            break
        check(pages < 10, "pagination ends")
    check(seen == names and pages == 3, "250 functions in 3 ordered pages", pages, seen[:5], len(seen))
    page = expect(a.req("GET", "/v1/functions?namespace=pages"), 200)
    check(len(page["items"]) == 100 and page["next"], "default limit 100", len(page["items"]))
    page = expect(a.req("GET", "/v1/functions?namespace=pages&limit=1000"), 200)
    check(len(page["items"]) == 250 and page["next"] is None, "limit 1000", len(page["items"]))
    for bad in ("0", "1001", "-1", "x", ""):
        expect(a.req("GET", "/v1/functions?namespace=pages&limit=" + bad), 400, "bad_request", "limit")
    expect(a.req("GET", "/v1/functions?namespace=pages&after=garbage"), 400, "bad_request", "after")
    expect(a.req("GET", "/v1/functions?namespace=pages&after=other/p001"), 400, "bad_request", "after")
    # an admin's namespace=* walks every namespace
    every, after = [], None
    while True:
        q = "/v1/functions?namespace=*&limit=70" + ("&after=" + urllib.parse.quote(after) if after else "")
        page = expect(a.req("GET", q), 200)
        every += [(i["namespace"], i["name"]) for i in page["items"]]
        after = page["next"]
        if not after:
            break
    check(every == sorted(every) and len(set(every)) == len(every), "ordered, no repeats", every[:5])
    check(sum(1 for ns, _ in every if ns == "pages") == 250, "all of pages in *", len(every))


@test
def pagination_token_namespaces(S):
    a = S.admin
    d = a.upload({"main.py": "print('multi')\n"})
    for ns, n in (("multi-a", 3), ("multi-b", 4), ("multi-c", 2)):
        for i in range(n):
            expect(a.deploy(manifest("f%d" % i), d, namespace=ns), 201)
    c = Client(S.ctl, new_token(a, "invoker", ["multi-c", "multi-a"])["token"])
    seen, after = [], None
    for _ in range(10):
        q = "/v1/functions?namespace=*&limit=2" + ("&after=" + urllib.parse.quote(after) if after else "")
        page = expect(c.req("GET", q), 200)
        seen += [(i["namespace"], i["name"]) for i in page["items"]]
        after = page["next"]
        if not after:
            break
    want = [("multi-a", "f%d" % i) for i in range(3)] + [("multi-c", "f%d" % i) for i in range(2)]
    check(seen == want, "a token's own namespaces, in order, across pages", seen)


# ---- tokens and nodes ---------------------------------------------------------------------------------

@test
def tokens(S):
    a = S.admin
    t = new_token(a, "developer", ["team-x", "team-y"])
    check(re.match(r"^fnb_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$", t["token"]), "token form", t)
    check(t["role"] == "developer" and t["namespaces"] == ["team-x", "team-y"] and
          t["description"] == "test" and t["revoked"] is False and t["token"].split("_")[1] == t["id"],
          "create answer", t)
    listing = expect(a.req("GET", "/v1/tokens"), 200)
    text = json.dumps(listing)
    check(t["token"] not in text and t["token"][21:] not in text, "the list never shows a secret")
    check(all(set(i) == {"id", "role", "namespaces", "description", "createdAt", "revoked"}
              for i in listing["items"]), "list fields", listing["items"][:2])
    check(any(i["id"] == t["id"] for i in listing["items"]), "listed", listing)
    adm = new_token(a, "admin", ["*"])
    check(adm["namespaces"] == ["*"], "admin *", adm)
    adm2 = expect(a.req("POST", "/v1/tokens", {"role": "admin"}), 201)
    check(adm2["namespaces"] == ["*"], "admin defaults to *", adm2)
    expect(Client(S.ctl, adm["token"]).req("GET", "/v1/nodes"), 200)
    for body, field in (({"role": "root", "namespaces": ["a"]}, "role"),
                        ({"namespaces": ["a"]}, "role"),
                        ({"role": "developer"}, "namespaces"),
                        ({"role": "developer", "namespaces": []}, "namespaces"),
                        ({"role": "developer", "namespaces": "team-a"}, "namespaces"),
                        ({"role": "developer", "namespaces": ["Team_A"]}, "namespaces[0]"),
                        ({"role": "developer", "namespaces": ["a", "a"]}, "namespaces[1]"),
                        ({"role": "developer", "namespaces": ["a,b"]}, "namespaces[0]"),
                        ({"role": "admin", "namespaces": ["team-a"]}, "namespaces[0]"),
                        ({"role": "developer", "namespaces": ["a"], "description": 5}, "description"),
                        ({"role": "developer", "namespaces": ["a"], "description": "x" * 300}, "description"),
                        ({"role": "developer", "namespaces": ["a"], "description": "a\nb"}, "description")):
        expect(a.req("POST", "/v1/tokens", body), 400, "bad_request", field)
    star = Client(S.ctl, new_token(a, "developer", ["*"])["token"])
    expect(star.req("GET", "/v1/functions?namespace=anything"), 200)
    expect(star.req("GET", "/v1/tokens"), 403, "forbidden")


@test
def nodes(S):
    body = expect(S.admin.req("GET", "/v1/nodes"), 200)
    check(isinstance(body["items"], list) and body["next"] is None, "nodes list", body)


@test
def refusals_keep_connection(S):
    """A request refused from its headers with a small body is answered after
    the body is read, so the connection stays usable."""
    import http.client
    u = urllib.parse.urlparse(S.ctl.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        body = json.dumps({"manifest": "x" * 5000, "codeDigest": "sha256:" + "0" * 64})
        for path, token, want in (("/v1/functions", None, 401), ("/v1/functions", "fnb_bad", 401),
                                  ("/v1/nope", S.admin.token, 404), ("/healthz", None, 405)):
            hdrs = {"Content-Type": "application/json"}
            if token:
                hdrs["Authorization"] = "Bearer " + token
            conn.request("POST", path, body=body, headers=hdrs)
            r = conn.getresponse()
            got = json.loads(r.read())
            check(r.status == want and "error" in got, "%s %s" % (path, r.status), got)
            check((r.getheader("Connection") or "").lower() != "close", "kept open", r.getheaders())
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        check(r.status == 200 and json.loads(r.read()) == {"status": "ok"}, "same connection still works")
    finally:
        conn.close()
    # a big body from a stranger is not read: answered from the headers
    host = S.ctl.url[len("http://"):]
    head = "PUT /v1/artifacts/sha256:%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" \
           "Expect: 100-continue" % ("0" * 64, host, 32 * MiB)
    st, hdrs, body = raw_http(S.ctl.url, head, read_first=True)
    check(st == 401 and json.loads(body)["error"]["type"] == "unauthenticated", "big body, no token", st, body)


# ---- limits: 413 and 431 ---------------------------------------------------------------------------------

@test
def body_limits(S):
    host = S.ctl.url[len("http://"):]
    auth = "Authorization: Bearer " + S.admin.token
    # a JSON body over 1 MiB, refused from its Content-Length before it is sent
    head = "POST /v1/functions HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Type: application/json\r\n" \
           "Content-Length: %d\r\nExpect: 100-continue" % (host, auth, MiB + 1)
    st, hdrs, body = raw_http(S.ctl.url, head, read_first=True)
    check(st == 413 and json.loads(body)["error"]["type"] == "too_large", "JSON over 1 MiB", st, body)
    # the same without Expect, sent whole but small enough to be buffered by the socket
    big = b'{"manifest": "' + b"x" * (MiB + 100) + b'"}'
    head = "POST /v1/functions HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Length: %d\r\nExpect: 100-continue" \
           % (host, auth, len(big))
    st, _, body = raw_http(S.ctl.url, head, read_first=True)
    check(st == 413, "JSON over 1 MiB (2)", st, body)
    # chunked, with no Content-Length: read and dropped, then 413
    chunks = []
    for _ in range(24):
        piece = b"y" * (64 << 10)
        chunks.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    chunks.append(b"0\r\n\r\n")
    head = "POST /v1/functions HTTP/1.1\r\nHost: %s\r\n%s\r\nTransfer-Encoding: chunked" % (host, auth)
    st, _, body = raw_http(S.ctl.url, head, chunks)
    check(st == 413 and json.loads(body)["error"]["type"] == "too_large", "chunked JSON over 1 MiB", st, body)
    # an artifact over 64 MiB
    d = "sha256:" + "0" * 64
    head = "PUT /v1/artifacts/%s HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Type: application/x-tar\r\n" \
           "Content-Length: %d\r\nExpect: 100-continue" % (d, host, auth, 64 * MiB + 1)
    st, _, body = raw_http(S.ctl.url, head, read_first=True)
    check(st == 413 and json.loads(body)["error"]["type"] == "too_large", "artifact over 64 MiB", st, body)
    # a GET has no body
    head = "GET /v1/functions HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Length: 10" % (host, auth)
    st, _, body = raw_http(S.ctl.url, head, [b"0123456789"])
    check(st == 413, "a body where none belongs", st, body)
    # an artifact of exactly a few MiB is fine
    data = os.urandom(3 * MiB)
    expect(S.admin.req("PUT", "/v1/artifacts/" + digest_of(data), data), 201)
    # the controller still answers
    expect(S.admin.req("GET", "/v1/functions"), 200)


@test
def body_budget(S):
    """Bodies held in memory by all connections together are bounded: past
    256 MiB declared, the next upload gets 503 at once; the budget comes
    back when those connections go."""
    host = S.ctl.url[len("http://"):]
    u = urllib.parse.urlparse(S.ctl.url)
    head = ("PUT /v1/artifacts/sha256:%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
            "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % ("0" * 64, host, S.admin.token, 60 * MiB))
    holders = []
    try:
        for _ in range(4):
            h = socket.create_connection((u.hostname, u.port), timeout=10)
            holders.append(h)
            h.sendall(head.encode())
            got = h.recv(4096)
            check(got.startswith(b"HTTP/1.1 100"), "100 Continue", got)
        st, _, body = raw_http(S.ctl.url, head[:-4], read_first=True)
        check(st == 503 and json.loads(body)["error"]["type"] == "unavailable", "over the budget", st, body)
    finally:
        for h in holders:
            h.close()
    for _ in range(100):            # the server notices the closed connections
        data = os.urandom(MiB)
        st, body = S.admin.req("PUT", "/v1/artifacts/" + digest_of(data), data)
        if st == 201:
            break
        time.sleep(0.05)
    check(st == 201, "the budget comes back", st, body)


@test
def header_limits(S):
    url = S.ctl.url + "/v1/functions"
    st, body = api("GET", url, token=S.admin.token, headers={"X-Filler": "z" * (20 << 10)})
    expect((st, body), 431, "headers_too_large")
    hdrs = {"X-F%d" % i: "z" * 1000 for i in range(18)}
    expect(api("GET", url, token=S.admin.token, headers=hdrs), 431, "headers_too_large")
    expect(api("GET", url + "?namespace=default&pad=" + "q" * (17 << 10), token=S.admin.token), 431,
           "headers_too_large")
    # far over: libmicrohttpd refuses it itself; still 431 (or a closed connection)
    host = S.ctl.url[len("http://"):]
    try:
        st, _, _ = raw_http(S.ctl.url, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Big: %s" % (host, "w" * (200 << 10)))
        check(st in (413, 414, 431), "huge headers: %s" % st)
    except (ConnectionError, Fail):
        pass
    # just under the limit is fine
    expect(api("GET", url, token=S.admin.token, headers={"X-Filler": "z" * (12 << 10)}), 200)


# ---- the process: first start, logs, durability ------------------------------------------------------------

@test
def first_start(S):
    if ARGS.store:
        print("skip first_start: --store is shared, not a first start")
        return
    with controller() as c:
        tok_path = os.path.join(c.data_dir, "admin.token")
        st = os.stat(tok_path)
        check(stat.S_IMODE(st.st_mode) == 0o600, "admin.token is 0600: %o" % stat.S_IMODE(st.st_mode))
        check(stat.S_IMODE(os.stat(c.data_dir).st_mode) == 0o700, "data dir is 0700")
        tok = c.admin_token
        check(re.match(r"^fnb_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$", tok), "token form")
        check(tok_path in c.log() and tok not in c.log(), "logs the path, never the token", c.log())
        items = expect(Client(c, tok).req("GET", "/v1/tokens"), 200)["items"]
        check(len(items) == 1 and items[0]["role"] == "admin" and items[0]["namespaces"] == ["*"],
              "one admin token", items)
        mtime = st.st_mtime_ns
        c.restart()
        check(os.stat(tok_path).st_mtime_ns == mtime and c.admin_token == tok, "a restart keeps the token")
        check(c.log().count("created the first admin token") == 1, "made once", c.log())
        expect(Client(c, tok).req("GET", "/v1/functions"), 200)
        stop_checked(c)


@test
def kill9_durability(S):
    with controller() as c:
        a = Client(c, admin_of(c, S))
        d = a.upload({"main.py": "print('durable')\n"})
        body = expect(a.deploy(manifest("durable"), d), 201)
        check(body["revision"] == "durable-00001", "deployed", body)
        extra = new_token(a, "developer", ["team-d"])
        c.kill9()               # right after the acknowledgement
        c.start()
        a = Client(c, admin_of(c, S))
        f = expect(a.req("GET", "/v1/functions/durable"), 200)
        check(f["latestRevision"] == "durable-00001", "the revision survived", f)
        expect(a.req("GET", "/v1/functions/durable/revisions/durable-00001"), 200)
        st, _ = a.req("HEAD", "/v1/artifacts/" + d)
        check(st == 200, "the artifact survived")
        expect(Client(c, extra["token"]).req("GET", "/v1/functions?namespace=team-d"), 200)
        # and a traffic change, then kill -9 again
        expect(a.deploy(manifest("durable"), a.upload({"main.py": "print(2)\n"})), 200)
        t = {"traffic": [{"revision": "durable-00001", "percent": 100, "tag": "pinned"}]}
        expect(a.req("PUT", "/v1/functions/durable/traffic", t), 200)
        c.kill9()
        c.start()
        f = expect(Client(c, admin_of(c, S)).req("GET", "/v1/functions/durable"), 200)
        check(f["traffic"] == t["traffic"] and f["latestRevision"] == "durable-00002", "traffic survived", f)
        stop_checked(c)


@test
def request_log(S):
    log = S.ctl.log()
    check(re.search(r"(?m)^fnbox-controller: GET /v1/functions 200 \d+\.\dms$", log), "one line per request",
          log[-2000:])
    check("fnb_" not in log, "no token in the log")
    check("print(" not in log, "no body in the log")


@test
def sigterm(S):
    with controller() as c:
        expect(Client(c, admin_of(c, S)).req("GET", "/v1/functions"), 200)
        stop_checked(c)
        check(re.search(r"(?m)^fnbox-controller: .*: stopping$", c.log()), "says it stops", c.log())


# ---- runner --------------------------------------------------------------------------------------------------

class Shared:
    def __init__(self, ctl):
        self.ctl = ctl
        self.admin = Client(ctl, ctl.admin_token)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--store", default=None, help="a store URL (default: SQLite in a temporary folder)")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--wrap", default=None)
    ARGS = ap.parse_args()
    passed = failed = 0
    with controller() as ctl:
        shared = Shared(ctl)
        for t in TESTS.chosen(ARGS.only):
            if run_test(t, shared):
                passed += 1
            else:
                failed += 1
            if ctl.proc.poll() is not None:
                print("the shared controller died (%s):\n%s" % (ctl.proc.returncode, ctl.log()[-3000:]))
                failed += 1
                break
        try:
            stop_checked(ctl)
        except Fail as e:
            failed += 1
            print("FAIL shared controller: %s" % e)
    print("api: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
