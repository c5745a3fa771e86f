#!/usr/bin/env python3
"""tests/integration/test_cli.py: the `fnbox` CLI against a real controller.

Starts fnbox-controller (tests/integration/fixture.py) on a port the kernel
picks and drives BUILD/bin/fnbox as a user would: deploys of the example
functions and of temporary manifests (created, unchanged, new revision,
multi-document files, folders, invalid manifests that upload nothing, code
paths that escape through symlinks), list/describe/revisions as tables and
JSON/YAML, traffic splits and tags, delete, tokens (create, list, revoke;
revoked -> exit 4, other namespace -> exit 5), --help everywhere, usage
errors, settings precedence (flag > env > config file), an unreachable
server (exit 8), and racing deploys that must not lose a revision.

usage: test_cli.py [--build DIR] [--only NAME]... [--valgrind]

  --valgrind  run every fnbox call under valgrind (memcheck, definite leaks
              are errors); slow, so use it with --only.

Prints "cli: N passed, N failed"; exits non-zero when a test failed.
Python standard library only (PyYAML, when installed, checks -o yaml).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from fixture import Controller, api, Fail, Tests, check, run_test  # noqa: E402

CALL_LIMIT_S = 60
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"]

try:
    import yaml  # optional
except ImportError:  # pragma: no cover
    yaml = None


def diff(want, got):
    """The lines that differ between two texts, as a unified diff."""
    import difflib
    return "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), "want", "got", lineterm=""))


class Env:
    """The controller, the fnbox binary and a clean environment for it."""

    def __init__(self, build, ctl, tmp, valgrind):
        self.build = build
        self.bin = os.path.join(build, "bin", "fnbox")
        self.ctl = ctl
        self.tmp = tmp
        self.valgrind = valgrind
        self.home = os.path.join(tmp, "home")
        os.makedirs(self.home, exist_ok=True)

    def base_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FNBOX_") and not k.startswith("XDG_")}
        env.update(HOME=self.home, XDG_CONFIG_HOME=os.path.join(self.home, ".config"),
                   XDG_DATA_HOME=os.path.join(self.home, ".local", "share"), LC_ALL="C")
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        return env

    def run(self, *args, env=None, auth=True, stdin=None):
        """fnbox ARGS with FNBOX_URL and the admin token unless auth is False
        or env overrides them; returns (rc, stdout, stderr)."""
        e = self.base_env()
        if auth:
            e.update(FNBOX_URL=self.ctl.url, FNBOX_TOKEN=self.ctl.admin_token)
        e.update(env or {})
        e = {k: v for k, v in e.items() if v is not None}
        argv = ([*VALGRIND] if self.valgrind else []) + [self.bin] + [str(a) for a in args]
        p = subprocess.run(argv, env=e, stdin=subprocess.DEVNULL if stdin is None else stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CALL_LIMIT_S)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        check(p.returncode != 99 or not self.valgrind, "valgrind found errors", err)
        check("ERROR: AddressSanitizer" not in err and "runtime error:" not in err
              and "LeakSanitizer" not in err, "sanitizer report", err)
        return p.returncode, out, err

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        check(rc == 0, "fnbox %s: exit %d" % (" ".join(map(str, args)), rc), out, err)
        return out

    def fails(self, code, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        check(rc == code, "fnbox %s: exit %d, expected %d" % (" ".join(map(str, args)), rc, code), out, err)
        check(err.strip(), "no message on stderr")
        return err

    def json(self, *args, **kw):
        out = self.ok(*args, "-o", "json", **kw)
        try:
            return json.loads(out)
        except ValueError as e:
            raise Fail("not JSON: %s\n%s" % (e, out))

    def api(self, method, path, body=None, token=None):
        return api(method, self.ctl.url + path, token=token or self.ctl.admin_token, body=body)

    def folder(self, name, files):
        """A temporary folder of files ({relative path: text})."""
        d = os.path.join(self.tmp, name)
        for rel, text in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        return d


def manifest(name, code="main.py", runtime="python3", namespace=None, extra=""):
    ns = "  namespace: %s\n" % namespace if namespace else ""
    return ("apiVersion: fnbox.dev/v1\nkind: Function\nmetadata:\n  name: %s\n%s"
            "spec:\n  runtime: %s\n  code: %s\n%s" % (name, ns, runtime, code, extra))


TESTS = Tests()


test = TESTS.add


# ---- help and usage ------------------------------------------------------

VERBS = ["deploy", "list", "describe", "delete", "revisions", "traffic", "nodes", "token",
         "token create", "token list", "token revoke", "version"]


@test
def help_everywhere(t):
    out = t.ok("--help", auth=False)
    for v in ["deploy", "list", "describe", "delete", "revisions", "traffic", "nodes", "token"]:
        check(re.search(r"^  %s\b" % v, out, re.M), "fnbox --help does not list " + v, out)
    for v in VERBS:
        out = t.ok(*v.split(), "--help", auth=False)
        check(out.startswith("usage: fnbox " + v), "fnbox %s --help: no usage line" % v, out)
        t.ok(*v.split(), "-h", auth=False)


@test
def usage_errors(t):
    err = t.fails(2, "delpoy", auth=False)
    check("unknown command 'delpoy'" in err and "did you mean 'deploy'" in err, "unknown verb message", err)
    err = t.fails(2, "list", "--nmespace", "x", auth=False)
    check("unknown option '--nmespace'" in err and "--namespace" in err, "unknown option message", err)
    t.fails(2, "list", "--bogus", auth=False)
    t.fails(2, "describe", auth=False)                      # NAME missing
    t.fails(2, "describe", "a", "b", auth=False)            # one too many
    t.fails(2, "list", "-o", "xml", auth=False)
    t.fails(2, "list", "--timeout", "soon", auth=False)
    t.fails(2, "describe", "Not_A_Name")
    t.fails(2, "token", auth=False)
    t.fails(2, "token", "frobnicate", auth=False)
    t.fails(2, "token", "-o", "json", auth=False)
    t.ok("token", "-o", "json", "list", "--help", auth=False)
    err = t.fails(2, "replay", auth=False)                  # SESSION missing
    check("expected SESSION" in err, "replay usage message", err)
    t.fails(2, auth=False)
    t.fails(2, "deploy", "-f")                              # value missing
    t.fails(2, "token", "create", "--role", "king", "-n", "a")
    t.fails(2, "token", "create", "--role", "developer")    # no namespace


# ---- deploy ----------------------------------------------------------------

@test
def deploy_examples(t):
    for name in ["hello", "shout", "wordcount"]:
        path = os.path.join(ROOT, "functions", name, "manifest.yaml")
        out = t.ok("deploy", "-f", path)
        check(out == "%s: created revision %s-00001\n" % (name, name), "first deploy of " + name, out)
        out = t.ok("deploy", "-f", path)
        check(out == "%s: unchanged (revision %s-00001)\n" % (name, name), "second deploy of " + name, out)
    fib = os.path.join(t.build, "functions", "fib", "manifest.yaml")
    if os.path.exists(fib):
        out = t.ok("deploy", fib)
        check(out == "fib: created revision fib-00001\n", "deploy of the native fib", out)


@test
def deploy_new_revision_when_code_changes(t):
    d = os.path.join(t.tmp, "hello-copy")
    shutil.copytree(os.path.join(ROOT, "functions", "hello"), d)
    out = t.ok("deploy", "-f", os.path.join(d, "manifest.yaml"))
    check(out == "hello: unchanged (revision hello-00001)\n", "the same tree elsewhere is the same code", out)
    with open(os.path.join(d, "main.py"), "a") as f:
        f.write("# changed\n")
    out = t.ok("deploy", "-f", d)
    check(out == "hello: created revision hello-00002\n", "changed code makes revision 2", out)


MULTI = """# two functions in one file
apiVersion: fnbox.dev/v1
kind: Function
metadata:
  name: alpha
spec:
  runtime: python3
  code: alpha.py
  env: {NOTE: "--- not a marker inside a flow"}
---
# the second document
apiVersion: fnbox.dev/v1
kind: Function
metadata:
  name: beta
spec:
  runtime: sh
  code: ./beta.sh
  env:
    TEXT: |
      a block scalar
      ---x is content, not a marker
...
"""


@test
def deploy_multi_document_and_folder(t):
    d = t.folder("multi", {"a.yaml": MULTI, "alpha.py": "print('a')\n", "beta.sh": "echo b\n",
                           "b.yml": manifest("gamma", code="g"), "g/main.py": "print('g')\n",
                           "notes.txt": "not a manifest\n", ".hidden.yaml": "not: [valid\n"})
    out = t.ok("deploy", "-f", d)
    check(out.splitlines() == ["alpha: created revision alpha-00001", "beta: created revision beta-00001",
                               "gamma: created revision gamma-00001"], "folder deploy", out)
    out = t.ok("deploy", "-f", os.path.join(d, "a.yaml"))
    check(out.splitlines() == ["alpha: unchanged (revision alpha-00001)",
                               "beta: unchanged (revision beta-00001)"], "multi-document redeploy", out)
    beta = t.json("describe", "beta")
    check(beta["spec"]["env"]["TEXT"] == "a block scalar\n---x is content, not a marker\n",
          "the second document went up whole", beta["spec"])
    alpha = t.json("describe", "alpha")
    check(alpha["spec"]["env"]["NOTE"] == "--- not a marker inside a flow", "alpha's env", alpha["spec"])


@test
def deploy_invalid_uploads_nothing(t):
    bad = manifest("bad", extra="  limits: {memory: lots}\n")
    d = t.folder("invalid", {"a-good.yaml": manifest("goodfn"), "b-bad.yaml": bad, "main.py": "print(1)\n"})
    err = t.fails(3, "deploy", "-f", d)
    check(re.search(r"^\S*b-bad\.yaml:\d+:\d+: spec\.limits\.memory: ", err, re.M),
          "no FILE:LINE:COL: field: message line", err)
    check("nothing was uploaded" in err, "summary line", err)
    status, _ = t.api("GET", "/v1/functions/goodfn")
    check(status == 404, "the valid function of a refused deploy was deployed", status)
    t.fails(3, "deploy", "-f", os.path.join(d, "b-bad.yaml"))
    # a manifest in a multi-document file that fails stops the whole file
    d2 = t.folder("invalid2", {"m.yaml": manifest("fine1") + "---\n" + bad, "main.py": "x\n"})
    err = t.fails(3, "deploy", d2 + "/m.yaml")
    check(re.search(r"m\.yaml:1[0-9]:\d+: spec\.limits\.memory", err), "line of the second document", err)
    status, _ = t.api("GET", "/v1/functions/fine1")
    check(status == 404, "fine1 deployed from a refused file", status)


@test
def deploy_refuses_code_outside_the_folder(t):
    d = t.folder("escape", {"m.yaml": manifest("escaper", code="link")})
    os.symlink("/etc/passwd", os.path.join(d, "link"))
    err = t.fails(3, "deploy", "-f", d)
    check("outside the manifest's folder" in err and "spec.code" in err, "escape message", err)
    d = t.folder("escape2", {"sub/m.yaml": manifest("escaper2", code="code"), "secret.py": "s\n"})
    os.symlink("..", os.path.join(d, "sub", "code"))
    err = t.fails(3, "deploy", "-f", os.path.join(d, "sub"))
    check("outside the manifest's folder" in err, "escape through a folder symlink", err)
    d = t.folder("missing", {"m.yaml": manifest("nocode", code="nothere.py")})
    err = t.fails(3, "deploy", "-f", d)
    check("nothere.py" in err, "missing code named", err)
    for n in ["escaper", "escaper2", "nocode"]:
        check(t.api("GET", "/v1/functions/" + n)[0] == 404, n + " was deployed")


@test
def deploy_usage(t):
    t.fails(2, "deploy")
    t.fails(2, "deploy", "-f", "a", "b")
    t.fails(2, "deploy", "-f", os.path.join(t.tmp, "does-not-exist"))
    empty = t.folder("empty", {"readme.txt": "x"})
    t.fails(3, "deploy", "-f", empty)


@test
def racing_deploys_lose_no_revision(t):
    """Four deploys of different code to one function at once: each gets
    its own revision (the 409 retry at work)."""
    dirs = []
    for i in range(4):
        dirs.append(t.folder("race%d" % i, {"m.yaml": manifest("racer"), "main.py": "print(%d)\n" % i}))
    results = [None] * len(dirs)

    def one(i):
        results[i] = t.run("deploy", "-f", dirs[i])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(dirs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for rc, out, err in results:
        check(rc == 0 and "racer: created revision racer-0000" in out, "a racing deploy failed", out, err)
    revs = t.json("revisions", "racer")["items"]
    check(len(revs) == 4, "expected 4 revisions", [r["name"] for r in revs])


# ---- reading ---------------------------------------------------------------

@test
def list_describe_revisions(t):
    out = t.ok("list")
    lines = out.splitlines()
    check(lines and lines[0].split()[:2] == ["NAME", "LATEST"], "list header", out)
    check(any(l.split()[:2] == ["hello", "hello-00002"] for l in lines), "hello in list", out)
    col = lines[0].index("LATEST")
    check(all(l[col - 2:col] == "  " for l in lines[1:]), "columns are not aligned", out)
    check(not any(l.endswith(" ") for l in lines), "trailing blanks", out)
    check("\x1b[" not in out, "colours when stdout is not a terminal", out)
    items = t.json("list")["items"]
    check("hello" in [f["name"] for f in items], "hello in list -o json", items)
    check(all(f["namespace"] == "default" for f in items), "list shows another namespace", items)
    out = t.ok("describe", "hello")
    check(re.search(r"^Name:\s+hello$", out, re.M) and re.search(r"^Latest revision:\s+hello-00002$", out, re.M),
          "describe table", out)
    f = t.json("describe", "hello")
    check(f["name"] == "hello" and isinstance(f["resourceVersion"], int), "describe -o json", f)
    raw = t.ok("describe", "hello", "-o", "json")
    # Formatting is checked on the answer itself: the autoscaler may add a
    # decision between two calls, so two answers need not be equal.
    want = json.dumps(json.loads(raw), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    check(raw == want, "JSON is not pretty-printed with sorted keys", diff(want, raw))
    out = t.ok("revisions", "hello")
    names = [l.split()[0] for l in out.splitlines()[1:]]
    check(names == ["hello-00002", "hello-00001"], "revisions newest first", out)
    revs = t.json("revisions", "hello")["items"]
    check([r["name"] for r in revs] == names, "revisions -o json", revs)
    err = t.fails(6, "describe", "nosuchfn")
    check("404" in err and "nosuchfn" in err, "404 message", err)
    t.fails(6, "revisions", "nosuchfn")


@test
def yaml_output(t):
    out = t.ok("describe", "wordcount", "-o", "yaml")
    check(re.search(r"^name: wordcount$", out, re.M), "yaml name", out)
    check(re.search(r'^createdAt: "', out, re.M), "timestamps must be quoted", out)
    if yaml is not None:
        # status is live (the autoscaler may decide between the two calls):
        # it must have the same shape, the rest must be equal.
        got = yaml.safe_load(out)
        want = t.json("describe", "wordcount")
        gs, ws = got.pop("status", None), want.pop("status", None)
        check(got == want, "YAML and JSON differ", diff(json.dumps(want, indent=1, sort_keys=True),
                                                        json.dumps(got, indent=1, sort_keys=True)))
        check(isinstance(gs, dict) and isinstance(ws, dict) and sorted(gs) == sorted(ws),
              "YAML and JSON status differ", gs, ws)
        lst = yaml.safe_load(t.ok("list", "-o", "yaml"))
        check(lst == t.json("list"), "list YAML and JSON differ")


# ---- traffic and delete ----------------------------------------------------

@test
def traffic_split(t):
    out = t.ok("traffic", "hello", "1=90", "@latest=10", "--tag", "1=stable", "--tag", "@latest=canary")
    check(re.search(r"^hello-00001\s+90%\s+stable$", out, re.M), "traffic output", out)
    f = t.json("describe", "hello")
    want = [{"revision": "hello-00001", "percent": 90, "tag": "stable"},
            {"latestRevision": True, "revision": "hello-00002", "percent": 10, "tag": "canary"}]
    check(f["traffic"] == want, "traffic after the split", f["traffic"])
    out = t.ok("describe", "hello")
    check(re.search(r"^hello-00002\s+10%\s+canary\s+yes$", out, re.M), "describe shows the split", out)
    # tags stay with their revision when the split changes
    t.ok("traffic", "hello", "hello-00001=50", "@latest=50")
    f = t.json("describe", "hello")
    check([e.get("tag") for e in f["traffic"]] == ["stable", "canary"], "tags kept", f["traffic"])
    out = t.ok("revisions", "hello")
    check(re.search(r"^hello-00001\s+[0-9a-f]{12}\s+50%\s+stable", out, re.M), "revisions traffic column", out)
    t.ok("traffic", "hello", "--tag", "@latest=")
    check("tag" not in t.json("traffic", "hello")["traffic"][1], "tag removed")
    t.fails(2, "traffic", "hello", "1=50", "@latest=40")
    t.fails(2, "traffic", "hello", "1=50", "1=50")
    t.fails(2, "traffic", "hello", "x=y")
    t.fails(2, "traffic", "hello", "1=100", "--tag", "2=nope")
    rc, _, err = t.run("traffic", "hello", "7=100")
    check(rc in (1, 3) and "traffic[0].revision" in err, "unknown revision", rc, err)
    t.fails(6, "traffic", "nosuchfn", "@latest=100")
    t.ok("traffic", "hello", "@latest=100")


@test
def delete_function(t):
    out = t.ok("delete", "shout")
    check(out == "shout: deleted\n", "delete output", out)
    t.fails(6, "describe", "shout")
    err = t.fails(6, "delete", "shout")
    check("404" in err, "second delete", err)


# ---- tokens and authorisation --------------------------------------------

@test
def tokens(t):
    tok = t.json("token", "create", "--role", "developer", "--namespace", "team-a", "--description", "ci")
    check(tok["token"].startswith("fnb_") and tok["role"] == "developer", "token create", tok)
    out = t.ok("token", "list")
    row = [l for l in out.splitlines() if l.startswith(tok["id"])]
    check(row and "developer" in row[0] and "team-a" in row[0] and tok["token"] not in out, "token list", out)
    dev = {"FNBOX_TOKEN": tok["token"]}
    d = t.folder("team-a", {"m.yaml": manifest("teamfn"), "main.py": "print(1)\n"})
    out = t.ok("deploy", "-n", "team-a", "-f", d, env=dev)
    check(out == "teamfn: created revision teamfn-00001\n", "developer deploy", out)
    check([f["name"] for f in t.json("list", "-n", "team-a", env=dev)["items"]] == ["teamfn"], "team-a list")
    err = t.fails(5, "list", "-n", "team-b", env=dev)
    check("403" in err and "role or namespaces do not allow this" in err, "403 explanation", err)
    t.fails(5, "describe", "hello", env=dev)                 # default is not team-a's
    t.fails(5, "token", "list", env=dev)                     # admin only
    t.fails(5, "nodes", env=dev)
    d = t.folder("team-b", {"m.yaml": manifest("other", namespace="team-b"), "main.py": "x\n"})
    t.fails(5, "deploy", "-f", d, env=dev)
    out = t.ok("token", "revoke", tok["id"])
    check(tok["id"] in out and "revoked" in out, "revoke output", out)
    err = t.fails(4, "list", "-n", "team-a", env=dev)
    check("401" in err and "missing, malformed, unknown or revoked" in err and "came from FNBOX_TOKEN" in err,
          "401 explanation", err)
    err = t.fails(4, "list", "-n", "team-a", "--token", tok["token"])
    check("came from --token" in err, "401 names where the token came from", err)
    row = [l for l in t.ok("token", "list").splitlines() if l.startswith(tok["id"])]
    check(row and row[0].rstrip().endswith("yes"), "revoked column", row)
    t.fails(4, "list", env={"FNBOX_TOKEN": "fnb_nope_nope"})
    t.fails(2, "list", env={"FNBOX_TOKEN": "bad token with spaces"})
    if not os.path.exists("/var/lib/fnbox/admin.token"):
        err = t.fails(4, "list", env={"FNBOX_TOKEN": None})
        check("no token was given" in err, "no-token explanation", err)


@test
def nodes(t):
    rc, out, err = t.run("nodes")
    check(rc == 0, "nodes", out, err)
    check(t.json("nodes")["items"] == [], "no runtime registered in this test")


# ---- settings --------------------------------------------------------------

@test
def settings_precedence(t):
    dead = "http://127.0.0.1:9"           # the discard port: nothing listens
    cfg = os.path.join(t.tmp, "config.yaml")

    def write_cfg(text):
        with open(cfg, "w") as f:
            f.write(text)
        os.chmod(cfg, 0o600)
    good = "url: %s\ntoken: '%s'\n" % (t.ctl.url, t.ctl.admin_token)
    write_cfg("# fnbox\n" + good + "namespace: team-a   # a comment\n")
    items = t.json("list", env={"FNBOX_CONFIG": cfg}, auth=False)["items"]
    check([f["name"] for f in items] == ["teamfn"], "config file namespace", items)
    t.fails(8, "list", env={"FNBOX_CONFIG": cfg, "FNBOX_URL": dead}, auth=False)    # env > config
    t.ok("list", "--url", t.ctl.url, env={"FNBOX_CONFIG": cfg, "FNBOX_URL": dead}, auth=False)  # flag > env
    items = t.json("list", "-n", "default", env={"FNBOX_CONFIG": cfg, "FNBOX_NAMESPACE": "team-a"}, auth=False)
    check("hello" in [f["name"] for f in items["items"]], "flag namespace over env")
    items = t.json("list", env={"FNBOX_CONFIG": cfg, "FNBOX_NAMESPACE": "default"}, auth=False)
    check("hello" in [f["name"] for f in items["items"]], "env namespace over config")
    t.fails(4, "list", env={"FNBOX_CONFIG": cfg, "FNBOX_TOKEN": "fnb_x_y"}, auth=False)  # env token > config
    t.fails(4, "list", "--token", "fnb_x_y", auth=True)                                # flag > env
    # the default path, ~/.config/fnbox/config.yaml (XDG_CONFIG_HOME here)
    os.makedirs(os.path.join(t.home, ".config", "fnbox"), exist_ok=True)
    home_cfg = os.path.join(t.home, ".config", "fnbox", "config.yaml")
    shutil.copy(cfg, home_cfg)
    try:
        items = t.json("list", auth=False)["items"]
        check([f["name"] for f in items] == ["teamfn"], "default config path", items)
    finally:
        os.unlink(home_cfg)
    # strict parsing
    for text, why in [("colour: blue\n", "unknown key"), ("url: a\nurl: b\n", "set twice"),
                      ("  url: x\n", "nested"), ("url: [a]\n", "plain or quoted"),
                      ("url %s\n" % t.ctl.url, "expected 'key: value'")]:
        write_cfg(text)
        err = t.fails(2, "list", env={"FNBOX_CONFIG": cfg}, auth=False)
        check(why in err and cfg in err, "config error for %r" % text, err)
    write_cfg("url: ftp://example.com\n")
    err = t.fails(2, "list", env={"FNBOX_CONFIG": cfg}, auth=False)
    check("invalid URL" in err, "bad scheme", err)
    t.fails(2, "list", env={"FNBOX_CONFIG": os.path.join(t.tmp, "nope.yaml")}, auth=False)
    write_cfg(good)
    os.chmod(cfg, 0o644)
    rc, _, err = t.run("list", env={"FNBOX_CONFIG": cfg}, auth=False)
    check(rc == 0 and "others can read it" in err, "warning for a readable token file", rc, err)


@test
def unreachable_server(t):
    err = t.fails(8, "list", "--url", "http://127.0.0.1:9")
    check("cannot reach the server at http://127.0.0.1:9" in err and "fnbox up" in err, "message", err)
    t.fails(8, "deploy", "-f", os.path.join(ROOT, "functions", "hello"), "--url", "http://127.0.0.1:9")
    t.fails(2, "list", "--url", "file:///etc/passwd")
    t.fails(2, "list", "--url", "http://x/\r\nInjected: 1")


class FakeServer:
    """A misbehaving HTTP server on a kernel-picked port: "hang" accepts and
    never answers, "huge" sends 17 MiB, "html" a 502 page from a proxy,
    "pages" three pages of a list, "loop" pages whose cursor never ends."""

    def __init__(self, mode):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(h):
                if mode == "hang":
                    time.sleep(5)
                    return
                if mode in ("pages", "loop"):
                    from urllib.parse import urlparse, parse_qs
                    q = parse_qs(urlparse(h.path).query)
                    after = q.get("after", [None])[0]
                    pages = {None: ("a", "c1"), "c1": ("b", "c 2/&x"), "c 2/&x": ("c", None)}
                    item, nxt = pages.get(after, ("?", None)) if mode == "pages" else ("x", "same")
                    body = json.dumps({"items": [{"name": item, "limit": q.get("limit")}], "next": nxt}).encode()
                    status, ctype = 200, "application/json"
                elif mode == "huge":
                    body = b'{"items": [], "pad": "' + b"x" * (17 << 20) + b'"}'
                    status, ctype = 200, "application/json"
                else:
                    body, status, ctype = b"<html>\n<b>Bad gateway</b>\x1b[31m\n</html>", 502, "text/html"
                h.send_response(status)
                h.send_header("Content-Type", ctype)
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                try:
                    h.wfile.write(body)
                except OSError:
                    pass

            def log_message(h, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@test
def misbehaving_server(t):
    for mode, code, words in [("hang", 8, "no answer from"), ("huge", 1, "larger than 16 MiB"),
                              ("html", 1, "502")]:
        srv = FakeServer(mode)
        try:
            t0 = time.monotonic()
            err = t.fails(code, "list", "--url", srv.url, "--timeout", "1s")
            check(words in err, mode, err)
            check(len(err.strip().splitlines()) == 1 and "\x1b" not in err, "one clean line", err)
            check(time.monotonic() - t0 < 4 or t.valgrind, "--timeout 1s was not kept")
        finally:
            srv.close()


@test
def pagination(t):
    srv = FakeServer("pages")
    try:
        items = t.json("list", "--url", srv.url)["items"]
        check([i["name"] for i in items] == ["a", "b", "c"], "pages merged in order", items)
        check(items[0]["limit"] == ["1000"], "page size", items)
    finally:
        srv.close()
    srv = FakeServer("loop")
    try:
        err = t.fails(1, "list", "--url", srv.url)
        check("do not end" in err, "a cursor that repeats", err)
    finally:
        srv.close()


@test
def deploy_json_output(t):
    d = t.folder("json-out", {"m.yaml": manifest("jsonout"), "main.py": "print(1)\n"})
    items = t.json("deploy", "-f", d)["items"]
    check(len(items) == 1 and items[0]["revision"] == "jsonout-00001" and items[0]["revisionCreated"] is True
          and items[0]["function"]["name"] == "jsonout", "deploy -o json", items)
    items = t.json("deploy", "-f", d)["items"]
    check(items[0]["revisionCreated"] is False, "second deploy -o json", items)


@test
def bash_completion(t):
    script = os.path.join(ROOT, "cli", "fnbox.bash")

    def complete(*words):
        prog = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fnbox; '
                'printf "%s\\n" "${COMPREPLY[@]}"')
        env = t.base_env()
        env.update(PATH=os.path.join(t.build, "bin") + ":" + env.get("PATH", ""),
                   FNBOX_URL=t.ctl.url, FNBOX_TOKEN=t.ctl.admin_token)
        p = subprocess.run(["bash", "-c", prog, "bash", script, *words], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CALL_LIMIT_S)
        check(p.returncode == 0, "completion failed", p.stderr.decode())
        return p.stdout.decode().split()
    check(complete("fnbox", "de") == ["deploy", "describe", "delete"], "verbs", complete("fnbox", "de"))
    check(complete("fnbox", "-o", "json", "li") == ["list"], "verb after a global option")
    check(complete("fnbox", "list", "-o", "") == ["table", "wide", "json", "yaml"], "-o values")
    check(complete("fnbox", "ca") == ["call"], "call")
    check("--activator" in complete("fnbox", "call", "hello", "--"), "call options")
    check("--api-listen" in complete("fnbox", "up", "--"), "up options")
    check("hello" in complete("fnbox", "logs", ""), "function names for logs")
    check(complete("fnbox", "token", "") == ["create", "list", "revoke"], "token sub-verbs")
    check("--role" in complete("fnbox", "token", "create", "--"), "token create options")
    check(complete("fnbox", "list", "--all") == ["--all-namespaces"], "list options")
    names = complete("fnbox", "describe", "")
    check("hello" in names and "wordcount" in names, "function names from the server", names)


# ---- call, logs, nodes, describe's status (no data plane needed) ----------

class FakeHTTP:
    """An HTTP server on a kernel-picked port whose answers come from
    handler(method, path, headers, body) -> (status, headers dict, body bytes);
    it records each request as (method, path, headers, body)."""

    def __init__(self, handler):
        import http.server
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do(h):
                n = int(h.headers.get("Content-Length") or 0)
                body = h.rfile.read(n) if n else b""
                seen.append((h.command, h.path, dict(h.headers), body))
                status, hdrs, out = handler(h.command, h.path, h.headers, body)
                h.send_response(status)
                for k, v in hdrs.items():
                    h.send_header(k, v)
                h.send_header("Content-Length", str(len(out)))
                h.end_headers()
                if h.command != "HEAD":
                    try:
                        h.wfile.write(out)
                    except OSError:
                        pass
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do

            def log_message(h, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# (error type, status, fnbox's exit code, what stderr says)
CALL_ERRORS = [("function_error", 500, 9, "500 function_error: because function_error"),
               ("timeout", 504, 9, "504 timeout"), ("out_of_memory", 507, 9, "507 out_of_memory"),
               ("output_too_large", 502, 9, "502 output_too_large"), ("not_found", 404, 6, "404 not_found"),
               ("unschedulable", 503, 1, "503 unschedulable"), ("queue_timeout", 504, 1, "504 queue_timeout"),
               ("queue_full", 503, 1, "503 queue_full"), ("node_failed", 502, 1, "502 node_failed"),
               ("unauthenticated", 401, 4, "401"), ("forbidden", 403, 5, "403"), ("bad_request", 400, 1, "400")]


def activator_answer(method, path, headers, body):
    """A stand-in activator: /fn/err-N answers the JSON error ERRORS[N],
    /fn/own-STATUS a plain body of the function's own, /fn/big 20 MiB,
    anything else echoes the request as JSON."""
    name = path.split("/")[-1].split("?")[0]
    rid = {"X-Request-Id": "req-42"}
    if name.startswith("err-"):
        typ, status, _, _ = CALL_ERRORS[int(name[4:])]
        return status, rid, json.dumps({"error": {"type": typ, "message": "because " + typ}}).encode()
    if name.startswith("own-"):
        return int(name.split("-")[1]), rid, b"the function's own answer\n"
    if name == "big":
        return 200, {}, b"x" * (20 << 20)
    echo = {"method": method, "path": path, "headers": {k.lower(): v for k, v in headers.items()},
            "body": body.decode("latin-1")}
    return 200, rid, json.dumps(echo).encode()


@test
def call_usage(t):
    for args in [["call"], ["call", "a", "b"], ["call", "Bad_Name"], ["call", "f", "--tag", "Not A Tag"],
                 ["call", "f", "--path", "no-slash"], ["call", "f", "--path", "/a b"], ["call", "f", "--path", "/a#b"],
                 ["call", "f", "-X", "GE T"], ["call", "f", "-H", "no-colon"], ["call", "f", "-H", ": novalue"],
                 ["call", "f", "-H", "Bad Name: x"], ["call", "f", "-H", "Content-Length: 3"],
                 ["call", "f", "-H", "X-A: a\x01b"], ["call", "f", "-d", "@" + os.path.join(t.tmp, "missing")],
                 ["call", "f", "-d", "@" + t.tmp], ["call", "f", "--activator", "ftp://x"],
                 ["call", "f", "-d"], ["logs"], ["logs", "f", "--tail", "0"], ["logs", "f", "--tail", "1001"],
                 ["logs", "f", "--tail", "x"], ["nodes", "extra"], ["up", "--ready-timeout", "soon"],
                 ["up", "--label", "novalue"], ["up", "extra"], ["nodes", "-o", "wider"]]:
        err = t.fails(2, *args, "--activator" if "--activator" not in args else "--timeout",
                      "http://127.0.0.1:9" if "--activator" not in args else "5s")
        check(len(err.strip().splitlines()) == 1, "one line for %s" % args, err)
    err = t.fails(2, "call", "f", "-H", "Content-Length: 3")
    check("-H 'Content-Length: 3'" in err and "from -d" in err, "-H message", err)
    for v in ["call", "logs", "up"]:
        out = t.ok(v, "--help", auth=False)
        check(out.startswith("usage: fnbox " + v), "%s --help" % v, out)


@test
def call_unreachable(t):
    dead = "http://127.0.0.1:9"
    err = t.fails(8, "call", "hello", "--activator", dead)
    check("cannot reach the activator at " + dead in err and "fnbox up" in err, "message", err)
    t.fails(8, "call", "hello", env={"FNBOX_ACTIVATOR": dead})
    cfg = os.path.join(t.tmp, "act.yaml")
    with open(cfg, "w") as f:
        f.write("activator: %s\n" % dead)
    t.fails(8, "call", "hello", env={"FNBOX_CONFIG": cfg})
    srv = FakeHTTP(activator_answer)
    try:
        t.ok("call", "hello", env={"FNBOX_CONFIG": cfg, "FNBOX_ACTIVATOR": srv.url})       # env > config
        t.ok("call", "hello", "--activator", srv.url + "/", env={"FNBOX_ACTIVATOR": dead})  # flag > env
        t.fails(2, "call", "hello", env={"FNBOX_ACTIVATOR": "not a url"})
        t.ok("list", env={"FNBOX_ACTIVATOR": "not a url"})      # only call reads it
    finally:
        srv.close()


@test
def call_request(t):
    srv = FakeHTTP(activator_answer)
    try:
        def echo(*args, **kw):
            out = t.ok("call", *args, "--activator", srv.url, **kw)
            return json.loads(out)
        e = echo("hello")
        check(e["method"] == "GET" and e["path"] == "/fn/hello" and e["body"] == "", "plain GET", e)
        e = echo("hello", "-d", "hi there", "--tag", "canary", "--path", "/sub/x?q=1&r=%20")
        check(e["method"] == "POST" and e["path"] == "/fn/hello@canary/sub/x?q=1&r=%20" and e["body"] == "hi there"
              and e["headers"]["content-type"] == "application/octet-stream", "-d, --tag, --path", e)
        e = echo("hello", "-n", "team-a", "-X", "PUT")
        check(e["method"] == "PUT" and e["path"] == "/fn/team-a/hello", "namespace and -X", e)
        e = echo("hello", "-H", "X-One:  spaced  ", "-H", "X-Url: http://a:1/b", "-H", "X-Empty:",
                 "-H", "Content-Type: text/plain", "-d", "x")
        h = e["headers"]
        check(h.get("x-one") == "spaced  " and h.get("x-url") == "http://a:1/b" and h.get("x-empty") == ""
              and h.get("content-type") == "text/plain", "-H parsing", h)
        blob = bytes(range(256)) * 41
        f = os.path.join(t.tmp, "blob.bin")
        with open(f, "wb") as fh:
            fh.write(blob)
        e = echo("hello", "-d", "@" + f)
        check(e["body"].encode("latin-1") == blob, "-d @FILE sends the file's bytes exactly")
        with open(f, "rb") as fh:
            e = echo("hello", "-d", "@-", stdin=fh)
        check(e["body"].encode("latin-1") == blob and e["method"] == "POST", "-d @- sends stdin")
        empty = os.path.join(t.tmp, "empty-body")
        open(empty, "w").close()
        e = echo("hello", "-d", "@" + empty)
        check(e["method"] == "POST" and e["body"] == "", "-d @EMPTY is an empty POST", e)
        rc, out, err = t.run("call", "big", "--activator", srv.url)
        check(rc == 0 and len(out) == 20 << 20, "a 20 MiB answer streams to stdout", rc, len(out), err)
    finally:
        srv.close()


@test
def call_errors(t):
    srv = FakeHTTP(activator_answer)
    try:
        for i, (_, _, code, words) in enumerate(CALL_ERRORS):
            name = "err-%d" % i
            rc, out, err = t.run("call", name, "--activator", srv.url)
            check(rc == code and out == "" and words in err and "req-42" in err, "%s: exit %d" % (name, code),
                  rc, out, err)
            check(len(err.strip().splitlines()) == 1, "one line", err)
            check(("fnbox logs " + name in err) == (code == 9), "logs hint only when the function failed", err)
        rc, out, err = t.run("call", "own-404", "--activator", srv.url)
        check(rc == 6 and out == "the function's own answer\n" and "answered 404" in err,
              "the function's own error answer goes to stdout", rc, out, err)
        rc, out, err = t.run("call", "own-500", "--activator", srv.url)
        check(rc == 1 and out.startswith("the function's own"), "own 500", rc, out, err)
    finally:
        srv.close()


def iso_ago(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds))


def controller_answer(method, path, headers, body):
    """A stand-in controller for the data plane's read-outs."""
    if path.startswith("/v1/nodes"):
        return 200, {}, json.dumps({"items": [
            {"name": "node-a", "state": "ready", "labels": {"accelerator": "cuda", "arch": "x86_64"},
             "capacity": {"cpuMillis": 16000, "memoryBytes": 64 << 30, "gpus": 2},
             "instances": [{"id": "a-1", "state": "ready"}, {"id": "a-2", "state": "starting"}],
             "invoke": "tcp:10.0.0.5:8090", "bootId": "9c1e2f3a4b5c", "heartbeatAt": "2026-11-21T20:15:52.983Z",
             "registeredAt": "2026-11-21T20:00:00.000Z"},
            {"name": "node-b", "state": "lost", "labels": {}, "capacity": {}, "instances": 4, "readyInstances": 3},
            {"name": "node-c", "state": "ready", "labels": {}, "capacity": {}, "instances": 2, "readyInstances": 2}],
            "next": None}).encode()
    if path.startswith("/v1/functions/hello/logs"):
        return 200, {}, json.dumps({"items": [
            {"instance": "hello-00001-3fa2c1", "time": "2025-11-21T04:40:00.123Z", "line": "Traceback\x1b[31m"},
            {"instance": "hello-00001-3fa2c1", "time": "2025-11-21T04:40:01.000Z", "line": "ValueError: x"}],
            "dropped": 3, "query": path}).encode()
    if path.startswith("/v1/functions/quiet/logs"):
        return 200, {}, json.dumps({"items": []}).encode()
    if path.startswith("/v1/functions/hello"):
        return 200, {}, json.dumps({
            "name": "hello", "namespace": "default", "latestRevision": "hello-00002", "resourceVersion": 3,
            "spec": {"runtime": "python3", "mode": "fresh"},
            "traffic": [{"revision": "hello-00002", "percent": 100, "latestRevision": True}],
            "status": {"revisions": [
                {"revision": "hello-00002", "routed": True, "desired": 3, "ready": 2, "starting": 1, "draining": 0,
                 "inflight": 7, "queued": 4, "concurrency": 6.5, "panic": True,
                 "unschedulable": "no node matches nodeSelector accelerator=tpu", "failuresInARow": 0,
                 "instances": [{"id": "hello-00002-3fa2c1", "node": "node-a", "state": "ready", "reason": "ready",
                                "variant": None, "drain": False, "inflight": 5}],
                 "decisions": [{"at": iso_ago(5), "desired": 3, "ready": 1, "reason": "panic: demand 6.0 >= 2x ready"}]},
                {"revision": "hello-00001", "desired": 0, "ready": 0, "instances": [],
                 "decisions": [{"at": iso_ago(300), "desired": 0, "ready": 1, "reason": "no traffic for 60s"}]}]}}).encode()
    if path.startswith("/v1/functions/plain"):
        return 200, {}, json.dumps({"name": "plain", "namespace": "default", "spec": {}, "traffic": []}).encode()
    return 404, {}, json.dumps({"error": {"type": "not_found", "message": "no such thing"}}).encode()


@test
def data_plane_readouts(t):
    srv = FakeHTTP(controller_answer)
    try:
        out = t.ok("nodes", "--url", srv.url)
        lines = out.splitlines()
        check(lines[0].split() == ["NAME", "STATE", "LABELS", "CAPACITY", "INSTANCES", "HEARTBEAT"], "nodes header",
              out)
        check("accelerator=cuda,arch=x86_64" in out and "cpu=16,memory=64Gi,gpus=2" in out and "2 (1 ready)" in out
              and "lost" in out and re.search(r"node-b\s+lost\s+-\s+-\s+4 \(3 ready\)", out)
              and re.search(r"node-c\s+ready\s+-\s+-\s+2\s", out), "nodes rows", out)
        out = t.ok("nodes", "--url", srv.url, "-o", "wide")
        check("INVOKE" in out and "tcp:10.0.0.5:8090" in out and "9c1e2f3a" in out, "nodes -o wide", out)
        check(t.json("nodes", "--url", srv.url)["items"][1]["state"] == "lost", "nodes -o json")
        out = t.ok("describe", "hello", "--url", srv.url)
        check(re.search(r"hello-00002\s+3\s+2\s+1\s+0\s+7\s+4\s+yes\s+no node matches nodeSelector accelerator=tpu",
                        out), "describe: desired and ready per revision", out)
        check(re.search(r"hello-00002-3fa2c1\s+node-a\s+ready\s+ready\s+5", out), "describe: instances", out)
        dec = out[out.index("Scaling decisions:"):].splitlines()
        check(re.match(r"5m\s+hello-00001\s+0\s+1\s+no traffic for 60s", dec[2])
              and re.match(r"\ds\s+hello-00002\s+3\s+1\s+panic: demand 6.0 >= 2x ready", dec[3]),
              "describe: scaling decisions, oldest first", out)
        out = t.ok("describe", "plain", "--url", srv.url)
        check("Revisions:" not in out and "Scaling decisions:" not in out, "describe without status", out)
        out = t.ok("logs", "hello", "--url", srv.url, "--tail", "2", "-n", "team-a")
        check(out.splitlines() == ["2025-11-21T04:40:00.123Z hello-00001-3fa2c1 Traceback?[31m",
                                   "2025-11-21T04:40:01.000Z hello-00001-3fa2c1 ValueError: x"], "logs lines", out)
        q = [p for m, p, h, b in srv.seen if "/logs" in p][-1]
        check(q == "/v1/functions/hello/logs?namespace=team-a&limit=2", "logs query", q)
        rc, out, err = t.run("logs", "quiet", "--url", srv.url)
        check(rc == 0 and out == "" and "No log lines" in err, "no lines", rc, out, err)
        t.fails(6, "logs", "nosuch", "--url", srv.url)
    finally:
        srv.close()


# ---- fnbox up, with stand-in daemons ----------------------------------------

FAKE_DAEMON = r"""#!/usr/bin/env python3
import os, signal, sys, time
name = os.path.basename(sys.argv[0])
mode = os.environ.get("FAKE_" + name.split("-")[1].upper(), "ok")
log = os.environ["FAKE_LOG"]
def note(s):
    with open(log, "a") as f:
        f.write(s + "\n")
def opt(k):
    return sys.argv[sys.argv.index(k) + 1] if k in sys.argv else None
def stop(sig, frame):
    note("%s stop %d" % (name, sig))
    if mode != "stubborn":
        time.sleep(0.2)
        sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
note("%s start uid=%d %s" % (name, os.getuid(), " ".join(sys.argv[1:])))
print("%s: starting" % name, file=sys.stderr, flush=True)
if mode == "fail":
    print("%s: cannot open the thing: Permission denied" % name, file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "silent":
    while True:
        time.sleep(1)
if name == "fnbox-controller":
    tok = os.path.join(opt("--data-dir"), "admin.token")
    if mode != "notoken" and not os.path.exists(tok):
        os.makedirs(opt("--data-dir"), exist_ok=True)
        with open(tok, "w") as f:
            f.write("fnb_fake_token\n")
    print("fnbox-controller: listening on http://%s" % opt("--listen").replace(":0", ":9"), flush=True)
elif name == "fnbox-activator":
    # fnbox up picks the activator's port itself (its boxes' broker is told
    # it before the activator starts): the stand-in answers on a dead one
    print("fnbox-activator: listening on http://%s:19" % opt("--listen").rsplit(":", 1)[0], flush=True)
else:
    print("fnbox-runtime: node %s registering" % opt("--node"), flush=True)
    print("fnbox-runtime: node %s ready (invoke unix:%s)" % (opt("--node"), opt("--invoke-socket")), flush=True)
if mode == "die":
    time.sleep(0.5)
    print("%s: lost my mind" % name, file=sys.stderr, flush=True)
    sys.exit(1)
while True:
    time.sleep(1)
"""


class FakeUp:
    """A folder holding a copy of fnbox and stand-in daemons next to it."""

    def __init__(self, t):
        self.t = t
        self.dir = tempfile.mkdtemp(prefix="fnbox-cli-up-")      # 0755: nobody runs fnbox from it too
        os.chmod(self.dir, 0o755)
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        shutil.copy(t.bin, os.path.join(self.bin, "fnbox"))
        for d in ["controller", "runtime", "activator"]:
            p = os.path.join(self.bin, "fnbox-" + d)
            with open(p, "w") as f:
                f.write(FAKE_DAEMON)
            os.chmod(p, 0o755)
        self.log = os.path.join(self.dir, "log")
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for pid, _ in running_fakes(self):      # only after a failed check
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def events(self):
        try:
            with open(self.log) as f:
                return [line.split() for line in f.read().splitlines()]
        except FileNotFoundError:
            return []

    def start(self, *args, modes=None, argv0=None):
        env = {k: v for k, v in self.t.base_env().items() if not k.startswith("XDG_")}
        env.update(HOME=self.home, FAKE_LOG=self.log, **(modes or {}))
        argv = (argv0 or []) + [os.path.join(self.bin, "fnbox"), "up", "--data-dir", os.path.join(self.dir, "data"),
                                "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--node", "n1",
                                "--run-dir", os.path.join(self.dir, "run")] + list(args)
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def run(self, *args, modes=None, argv0=None, timeout=40):
        p = self.start(*args, modes=modes, argv0=argv0)
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(), err.decode()

    def wait_for(self, p, text, timeout=20):
        """Read p's stdout until text shows up; returns what was read."""
        import select
        got, deadline = b"", time.monotonic() + timeout
        while text.encode() not in got and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                got += chunk
        check(text.encode() in got, "fnbox up never printed %r" % text, got.decode())
        return got.decode()


def running_fakes(up):
    """(pid, command line) of the stand-in daemons still running."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], stdout=subprocess.PIPE).stdout.decode()
    rows = [line.strip().split(None, 1) for line in out.splitlines()]
    return [(int(r[0]), r[1]) for r in rows if len(r) == 2 and up.bin + "/fnbox-" in r[1]]


@test
def up_starts_and_stops(t):
    if os.geteuid() != 0:
        return
    with FakeUp(t) as up:
        up_run_and_stop(t, up)


def up_run_and_stop(t, up):
    p = up.start("--label", "zone=a", "--label", "disk=ssd")
    try:
        out = up.wait_for(p, "Try it")
        check("invoke     http://127.0.0.1:19/fn/NAME" in out, "invocation URL", out)
        check(re.search(r"API\s+http://127.0.0.1:9\s+\(admin token in %s\)" %
                        re.escape(os.path.join(up.dir, "data", "admin.token")), out), "API URL and token", out)
        check("n1 ready (invoke unix:%s/invoke.sock)" % os.path.join(up.dir, "run") in out, "node line", out)
        check(" call hello -d fnbox" in out and "deploy -f" in out, "try it", out)
        cfg = os.path.join(up.home, ".config", "fnbox", "config.yaml")
        with open(cfg) as f:
            text = f.read()
        check(text.startswith("# written by fnbox up") and 'url: "http://127.0.0.1:9"' in text
              and 'activator: "http://127.0.0.1:19"' in text and 'token: "fnb_fake_token"' in text,
              "the CLI config", text)
        check(os.stat(cfg).st_mode & 0o077 == 0, "the config is private")
        starts = {e[0]: e for e in up.events() if e[1] == "start"}
        ctl, rt, act = starts["fnbox-controller"], starts["fnbox-runtime"], starts["fnbox-activator"]
        check("--user" in ctl and ctl[ctl.index("--user") + 1] == "fnbox" and "--listen" in ctl, "controller argv", ctl)
        check(rt[2] == "uid=0" and rt[3] == "serve" and "http://127.0.0.1:9" in rt and "--label" in rt
              and "zone=a" in rt and "disk=ssd" in rt and "--token-file" in rt
              and rt[rt.index("--invoke-uid") + 1] == "fnbox", "runtime argv", rt)
        check("http://127.0.0.1:9" in act and "--token-file" in act, "activator argv", act)
        # fnbox in "another terminal" finds the stand-in API through the config
        env = {"HOME": up.home, "XDG_CONFIG_HOME": None, "FNBOX_URL": None, "FNBOX_TOKEN": None}
        rc, _, err = t.run("list", env=env, auth=False)
        check(rc == 8 and "http://127.0.0.1:9" in err, "the CLI uses what fnbox up wrote", rc, err)
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=30)
        check(p.returncode == 0, "exit %s after SIGINT" % p.returncode, err.decode()[-2000:])
        ev = [e[0] + " " + e[1] for e in up.events()]
        stops = [e for e in ev if e.endswith(" stop")]
        check(stops and stops[-1] == "fnbox-controller stop" and len(set(stops)) == 3, "stop order", ev)
        check(not running_fakes(up), "daemons left", running_fakes(up))
        check("fnbox-controller: starting" in err.decode(), "the daemons' output is passed on", err.decode())
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@test
def up_failures(t):
    if os.geteuid() != 0:
        return
    with FakeUp(t) as up:
        up_fail_cases(t, up)


def up_fail_cases(t, up):
    rc, out, err = up.run(modes={"FAKE_CONTROLLER": "fail"})
    check(rc == 1 and "fnbox-controller exited with status 3 before it was ready" in err
          and "    fnbox-controller: cannot open the thing: Permission denied" in err, "a controller that fails",
          rc, err)
    check(not any(e[0] != "fnbox-controller" for e in up.events()), "nothing else started", up.events())
    rc, out, err = up.run("--ready-timeout", "2s", modes={"FAKE_ACTIVATOR": "silent"})
    check(rc == 1 and "fnbox-activator was not ready within 2s" in err and "fnbox-activator: starting" in err,
          "a daemon that never gets ready", rc, err)
    check(not running_fakes(up), "daemons left after a failed start", running_fakes(up))
    p = up.start(modes={"FAKE_RUNTIME": "die"})
    try:
        up.wait_for(p, "Try it")
        _, err = p.communicate(timeout=30)
        err = err.decode()
        check(p.returncode == 1 and "fnbox-runtime exited with status 1; stopping the others" in err
              and "fnbox-runtime: lost my mind" in err, "a daemon that dies", p.returncode, err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(not running_fakes(up), "daemons left after one died", running_fakes(up))
    shutil.rmtree(os.path.join(up.dir, "data"))
    rc, out, err = up.run(modes={"FAKE_CONTROLLER": "notoken"})
    check(rc == 1 and "no admin token" in err, "no admin token", rc, err)
    rc, out, err = up.run("--user", "no-such-user-here")
    check(rc == 1 and "no user 'no-such-user-here'" in err, "unknown user", rc, err)
    rc, out, err = up.run(argv0=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
    check(rc == 1 and "needs root" in err, "not root", rc, err)
    os.unlink(os.path.join(up.bin, "fnbox-activator"))
    rc, out, err = up.run()
    check(rc == 2 and "no fnbox-activator next to this fnbox" in err, "a missing daemon", rc, err)


@test
def up_config_file(t):
    if os.geteuid() != 0:
        return
    with FakeUp(t) as up:
        up_config_cases(t, up)


def up_config_cases(t, up):
    cfg = os.path.join(up.home, ".config", "fnbox", "config.yaml")
    os.makedirs(os.path.dirname(cfg))
    with open(cfg, "w") as f:
        f.write("url: http://mine:8081\n")
    p = up.start()
    try:
        out = up.wait_for(p, "Try it")
        check("export FNBOX_URL=http://127.0.0.1:9 FNBOX_ACTIVATOR=http://127.0.0.1:19 FNBOX_TOKEN=$(cat "
              in out, "the env line instead", out)
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    check(p.returncode == 0, "SIGTERM stops it with 0", p.returncode, err)
    check("left alone" in err.decode(), "says it left the file alone", err)
    with open(cfg) as f:
        check(f.read() == "url: http://mine:8081\n", "someone else's config is kept")
    p = up.start("--no-config")
    try:
        out = up.wait_for(p, "Try it")
        check("export FNBOX_URL=" in out, "--no-config prints the env line", out)
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)


# ---- the runner -------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--valgrind", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if not os.access(os.path.join(build, "bin", "fnbox"), os.X_OK):
        print("cli: no %s/bin/fnbox (build it first)" % build)
        print("cli: 0 passed, 1 failed")
        return 1
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="fnbox-cli-")
    try:
        with Controller(build) as ctl:
            t = Env(build, ctl, tmp, args.valgrind)
            for fn in TESTS.chosen(args.only):
                if run_test(fn, t):
                    passed += 1
                else:
                    failed += 1
            if failed:
                print("--- controller log (tail) ---\n" + ctl.log()[-3000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("cli: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
