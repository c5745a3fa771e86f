"""tests/dataplane/test_auth.py: bearer tokens on /fn/ (docs/invoke.md,
"Authentication"): no, a malformed or an unknown token is 401 with
WWW-Authenticate; a token calls the namespaces it has (403 elsewhere, the
admin everywhere); `fnbox call` sends the CLI's token; a service box never
sees the caller's token; a token created or revoked reaches the activator
with the next route table; calls keep working (and revoked tokens keep
failing) while the controller is down; /metrics and /healthz stay open;
`--auth none` lets anyone call."""
import json
import os
import time

from fixture import Platform, fn, http_request
from harness import SCALE_FAST, check, error_type, test, wait_for

HEADERS_BOX = r'''
import http.server, json, os, socketserver, socket

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"ok" if self.path == "/healthz" else json.dumps(dict(self.headers.items())).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a):
        pass

class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        c, _ = self.socket.accept()
        return c, ("local", 0)

path = os.environ["FNBOX_SOCKET"]
S(path, H).serve_forever()
'''


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def token(p, role, namespaces):
    st, body = p.api("POST", "/v1/tokens", {"role": role, "namespaces": namespaces, "description": "dp auth"})
    check(st == 201, "POST /v1/tokens %s %s" % (role, namespaces), st, body)
    return body["token"], body["id"]


def deploy_in(p, ns, name, code):
    d = os.path.join(p.tmp, "deploy-%s-%s" % (ns, name))
    os.makedirs(d)
    with open(code) as src, open(os.path.join(d, "box.py"), "w") as dst:
        dst.write(src.read())
    doc = {"apiVersion": "fnbox.dev/v1", "kind": "Function", "metadata": {"name": name, "namespace": ns},
           "spec": {"runtime": "python3", "code": "box.py", "scale": dict(SCALE_FAST)}}
    with open(os.path.join(d, "manifest.yaml"), "w") as f:
        json.dump(doc, f)
    p.cli_ok("deploy", "-f", os.path.join(d, "manifest.yaml"))
    wait_for("%s/%s in the routes" % (ns, name),
             lambda: any(f["namespace"] == ns and f["name"] == name for f in p.routes()["functions"]), 10)


def call(p, path, tok=None, body=b"x", headers=None):
    h = dict(headers or {})
    if tok:
        h.update(bearer(tok))
    return http_request(p.url, "POST", path, body, h, timeout=30)


def wait_status(p, path, tok, want, timeout=10):
    seen = {}

    def ok():
        seen["st"] = call(p, path, tok)[0]
        return seen["st"] == want
    t0 = time.monotonic()
    wait_for("%s -> %d (last %s)" % (path, want, seen), ok, timeout)
    return time.monotonic() - t0


@test(limit=150)
def tokens_on_fn(build):
    with Platform(build) as p:
        p.deploy("hello", fn("box.py"), spec={"scale": dict(SCALE_FAST)})
        deploy_in(p, "team", "resize", fn("box.py"))
        inv, inv_id = token(p, "invoker", ["default"])
        team, _ = token(p, "invoker", ["team"])
        dev, _ = token(p, "developer", ["*"])
        routes = p.routes()
        check(any(t["id"] == inv_id and t["role"] == "invoker" and t["namespaces"] == ["default"]
                  for t in routes.get("tokens", [])), "the new token in /v1/routes", routes.get("tokens"))
        check(inv not in json.dumps(routes) and inv.split("_", 2)[2] not in json.dumps(routes),
              "a secret in /v1/routes")

        # no token, a malformed one, an unknown one: 401 with WWW-Authenticate
        wait_status(p, "/fn/hello", inv, 200, 30)
        for tok, what in ((None, "no token"), ("fnb_nope", "malformed"),
                          ("fnb_0123456789abcdef_" + "A" * 43, "unknown")):
            st, body, h = call(p, "/fn/hello", tok)
            check(st == 401 and error_type(body) == "unauthenticated", "%s: %s" % (what, st), body)
            check(h.get("www-authenticate", "").startswith("Bearer"), "%s: WWW-Authenticate" % what, h)
        st, body, _ = call(p, "/fn/hello", headers={"Authorization": "Basic YTpi"})
        check(st == 401, "Basic auth", st, body)
        forged = inv[:-1] + ("B" if inv[-1] != "B" else "C")
        st, body, _ = call(p, "/fn/hello", forged)
        check(st == 401, "the right id with a wrong secret", st, body)

        # namespaces: 403 outside the token's, the admin and "*" everywhere
        st, body, _ = call(p, "/fn/hello", inv)
        check(st == 200 and body == b"echo:x", "invoker in default", st, body)
        st, body, _ = call(p, "/fn/team/resize", inv)
        check(st == 403 and error_type(body) == "forbidden", "invoker(default) -> team/resize", st, body)
        wait_status(p, "/fn/team/resize", team, 200, 30)
        st, body, _ = call(p, "/fn/hello", team)
        check(st == 403, "invoker(team) -> hello", st, body)
        st, body, _ = call(p, "/fn/team/nope", team)
        check(st == 404, "invoker(team) -> team/nope", st, body)
        st, body, _ = call(p, "/fn/other/nope", team)
        check(st == 403, "invoker(team) -> other/nope: not a 404 about a namespace it cannot call", st, body)
        for tok in (dev, p.token):
            for path in ("/fn/hello", "/fn/team/resize"):
                st, body, _ = call(p, path, tok)
                check(st == 200, "%s with a developer(*)/admin token" % path, st, body)
        # a 401 before the body is read: the body limit does not matter
        st, body, _ = call(p, "/fn/hello", None, body=b"y" * 100000)
        check(st == 401, "unauthenticated with a body", st, body)

        # open: /metrics, /healthz
        st, body, _ = http_request(p.url, "GET", "/healthz")
        check(st == 200, "/healthz without a token", st, body)
        st, body, _ = http_request(p.url, "GET", "/metrics")
        check(st == 200 and b'code="401"' in body and b'code="403"' in body, "/metrics", st, body[:2000])

        # fnbox call: the CLI's token; 401 and 403 as exit codes with a hint
        rc, out, err = p.cli("call", "hello", "-d", "cli", env={"FNBOX_TOKEN": inv})
        check(rc == 0 and out.strip() == "echo:cli", "fnbox call with an invoker token", rc, out, err)
        rc, out, err = p.cli("call", "hello", "-d", "cli", env={"FNBOX_TOKEN": team})
        check(rc != 0 and "403 forbidden" in err and "FNBOX_TOKEN" in err, "fnbox call 403", rc, out, err)
        rc403 = rc
        rc, out, err = p.cli("call", "hello", "-d", "cli", env={"FNBOX_TOKEN": forged})
        check(rc != 0 and rc != rc403 and "401 unauthenticated" in err, "fnbox call 401", rc, out, err)
        rc, out, err = p.cli("call", "resize", "-n", "team", "-d", "t", env={"FNBOX_TOKEN": team})
        check(rc == 0 and out.strip() == "echo:t", "fnbox call -n team resize", rc, out, err)
        rc, out, err = p.cli("call", "hello", "-d", "h", "-H", "Authorization: Bearer " + inv,
                             env={"FNBOX_TOKEN": team})
        check(rc == 0, "fnbox call -H Authorization wins", rc, out, err)

        # revoked: 401 with the next route table
        st, body = p.api("DELETE", "/v1/tokens/" + inv_id)
        check(st == 200, "revoke", st, body)
        took = wait_status(p, "/fn/hello", inv, 401, 5)
        print("a revocation reached the activator in %.2fs" % took)
        # a token made now works as soon as the table comes
        new, _ = token(p, "invoker", ["default"])
        took = wait_status(p, "/fn/hello", new, 200, 5)
        print("a new token worked after %.2fs" % took)

        # the controller down: warm calls go on, the revoked token stays out
        p.controller.stop()
        st, body, _ = call(p, "/fn/hello", new)
        check(st == 200, "a call with the controller stopped", st, body)
        st, body, _ = call(p, "/fn/hello", inv)
        check(st == 401, "the revoked token with the controller stopped", st, body)
        p.restart_controller(stop_first=False)
        wait_status(p, "/fn/hello", new, 200, 15)


@test(limit=120)
def service_never_sees_the_token(build):
    with Platform(build) as p:
        d = os.path.join(p.tmp, "hdr.py")
        with open(d, "w") as f:
            f.write(HEADERS_BOX)
        p.deploy("hdr", d, spec={"mode": "service", "scale": dict(SCALE_FAST), "limits": {"timeout": "2s"}})
        st, body, _ = http_request(p.url, "GET", "/fn/hdr", headers={**bearer(p.token), "X-Api-Key": "k1"},
                                   timeout=60)
        check(st == 200, "GET /fn/hdr", st, body)
        seen = {k.lower(): v for k, v in json.loads(body).items()}
        check("authorization" not in seen and seen.get("x-api-key") == "k1", "headers the box saw", seen)


@test(limit=120)
def auth_none(build):
    with Platform(build, activator_args=["--auth", "none"]) as p:
        check("--auth none" in p.log("activator"), "no warning for --auth none", p.log("activator"))
        d = os.path.join(p.tmp, "hdr.py")
        with open(d, "w") as f:
            f.write(HEADERS_BOX)
        p.deploy("hdr", d, spec={"mode": "service", "scale": dict(SCALE_FAST), "limits": {"timeout": "2s"}})
        st, body, _ = http_request(p.url, "GET", "/fn/hdr", timeout=60)
        check(st == 200, "no token with --auth none", st, body)
        st, body, _ = http_request(p.url, "GET", "/fn/hdr", headers=bearer(p.token), timeout=60)
        seen = {k.lower(): v for k, v in json.loads(body).items()}
        check(st == 200 and "authorization" not in seen, "an fnbox token still stays out of the box", seen)
        st, body, _ = http_request(p.url, "GET", "/fn/hdr", headers={"Authorization": "Basic YTpi"}, timeout=60)
        seen = {k.lower(): v for k, v in json.loads(body).items()}
        check(st == 200 and seen.get("authorization") == "Basic YTpi", "another Authorization reaches the box", seen)
