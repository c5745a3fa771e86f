#!/usr/bin/env python3
"""tests/integration/test_sessions_cli.py: sessions through the CLI
(cli/session_cmd.c): `fnbox call --file`, `fnbox replay`, `fnbox sessions`.

Starts the whole platform once (tests/dataplane/fixture.py: a controller, a
runtime as one node, the activator; root) and drives BUILD/bin/fnbox as a
user would: a python3 fresh box that reads /input/data.csv with pandas and
writes /output/summary.txt is called with --file; its stdout, the output
folder (given, and the default ./fnbox-output/SESSION), `fnbox sessions`
and `sessions show` (table and JSON), `replay --check` (the same stdout,
output and status, stdin included), `replay -o json`; a box that writes
random output, whose replay differs (`--check` exits 1); a box that fails
and still hands back its output (exit 9); delete; and the usage errors
that send nothing (a missing file, two files with the same name, a folder,
a non-empty --output-dir); bash completion of the new verbs and options.

usage: test_sessions_cli.py [--build DIR] [--only NAME]...

Prints "sessions-cli: N passed, N failed"; exits non-zero when a test
failed. Needs root (the runtime's jails). Python standard library only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from fixture import Fail, Tests, check, run_test  # noqa: E402


def _load_platform_fixture():
    """tests/dataplane/fixture.py (the whole platform), under a name of its
    own: this folder's fixture.py is already "fixture"."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("dataplane_fixture",
                                                  os.path.join(ROOT, "tests", "dataplane", "fixture.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


dp = _load_platform_fixture()

TESTS = Tests()
test = TESTS.add
CLI_LIMIT_S = 120
SESSION_RE = r"s-[0-9a-f]{32}"

CSV = "a,b\n1,2\n3,4\n5,6\n"
SUMMARY = "rows: 3, mean b: 4.0\n"

CSV_BOX = """\
import sys
import pandas as pd
df = pd.read_csv("/input/data.csv")
text = "rows: %d, mean b: %.1f\\n" % (len(df), df["b"].mean())
with open("/output/summary.txt", "w") as f:
    f.write(text)
sys.stdout.write(text)
extra = sys.stdin.read()
if extra:
    sys.stdout.write("stdin: " + extra + "\\n")
"""

RANDOM_BOX = """\
import os
import sys
with open("/output/random.bin", "wb") as f:
    f.write(os.urandom(32))
sys.stdout.write("wrote random bytes\\n")
"""

FAILING_BOX = """\
import sys
with open("/output/partial.txt", "w") as f:
    f.write("half done\\n")
sys.stderr.write("giving up\\n")
sys.exit(3)
"""


class Env:
    """The platform, the CLI and a scratch folder (the CLI's working folder)."""

    def __init__(self, p, tmp):
        self.p = p
        self.tmp = tmp
        self.bin = os.path.join(p.bin, "fnbox")
        self.n = 0

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, rel, text):
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def fresh_dir(self, name):
        """A folder (in the scratch folder) for the CLI to run in."""
        self.n += 1
        d = self.path("%s-%d" % (name, self.n))
        os.makedirs(d)
        return d

    def run(self, *args, cwd=None, stdin=None):
        e = self.p.cli_env()
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        proc = subprocess.run([self.bin] + [str(a) for a in args], env=e, cwd=cwd or self.tmp,
                              input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CLI_LIMIT_S)
        out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        check("ERROR: AddressSanitizer" not in err and "runtime error:" not in err and "LeakSanitizer" not in err,
              "sanitizer report", err)
        return proc.returncode, out, err

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        check(rc == 0, "fnbox %s: exit %d" % (" ".join(map(str, args)), rc), out, err)
        return out, err

    def fails(self, code, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        check(rc == code, "fnbox %s: exit %d, expected %d" % (" ".join(map(str, args)), rc, code), out, err)
        check(err.strip(), "no message on stderr")
        return out, err

    def json(self, *args, **kw):
        out, _ = self.ok(*args, "-o", "json", **kw)
        try:
            return json.loads(out)
        except ValueError as e:
            raise Fail("not JSON: %s\n%s" % (e, out))

    def sessions(self):
        return self.json("sessions")["items"]


def session_of(err):
    m = re.search(r"^session (%s): (\d+) output files? in (.+)$" % SESSION_RE, err, re.M)
    check(m, "no 'session ID: N output files in DIR' line", err)
    return m.group(1), int(m.group(2)), m.group(3)


def read(path):
    with open(path) as f:
        return f.read()


def listing(d):
    return sorted(os.listdir(d))


# ---- the tests ---------------------------------------------------------------

@test
def call_with_file(t):
    data = t.write("in/data.csv", CSV)
    out_dir = t.path("out-given")
    out, err = t.ok("call", "csvsum", "--file", data, "--output-dir", out_dir)
    check(out == SUMMARY, "stdout is the box's", out, err)
    sid, n, where = session_of(err)
    check(n == 1 and where == out_dir, "one file in the folder given", err)
    check(listing(out_dir) == ["summary.txt"], "the output folder", listing(out_dir))
    check(read(os.path.join(out_dir, "summary.txt")) == SUMMARY, "summary.txt")


@test
def default_output_dir(t):
    cwd = t.fresh_dir("cwd")
    shutil.copy(t.write("in/data.csv", CSV), os.path.join(cwd, "data.csv"))
    out, err = t.ok("call", "csvsum", "--file", "data.csv", cwd=cwd)
    sid, n, where = session_of(err)
    check(out == SUMMARY and n == 1 and where == "fnbox-output/" + sid, "default folder", out, err)
    check(read(os.path.join(cwd, "fnbox-output", sid, "summary.txt")) == SUMMARY, "summary.txt in the default folder")


@test
def sessions_list_and_show(t):
    _, err = t.ok("call", "csvsum", "--file", t.write("in/data.csv", CSV), "--output-dir", t.path("listed"))
    sid, _, _ = session_of(err)
    out, err = t.ok("sessions")
    lines = out.splitlines()
    check(lines and lines[0].split() == ["ID", "FUNCTION", "STATE", "REVISION", "STATUS", "CREATED", "EXPIRES"],
          "the table's header", out)
    row = [ln for ln in lines if ln.startswith(sid)]
    check(row, "the session is listed", out)
    cells = row[0].split()
    check(cells[1:6] == ["csvsum", "done", "csvsum-00001", "exited", "0"], "its row", row[0])
    check("ago" in row[0] and "in " in row[0], "created and expires relative to now", row[0])
    items = t.sessions()
    ids = [s["id"] for s in items]
    check(sid in ids and ids == sorted(ids, reverse=True), "-o json lists it, newest first", ids)
    out, _ = t.ok("sessions", "show", sid)
    for want in [r"^ID: +%s$" % sid, r"^Function: +csvsum$", r"^State: +done$", r"^Revision: +csvsum-00001$",
                 r"^Code: +sha256:[0-9a-f]{64}$", r"^Result: +exited 0 in \d+ ms$", r"^Input files:$",
                 r"^data\.csv +%d$" % len(CSV), r"^Output files:$", r"^summary\.txt +%d$" % len(SUMMARY)]:
        check(re.search(want, out, re.M), "show lacks %r" % want, out)
    s = t.json("sessions", "show", sid)
    check(s["id"] == sid and s["state"] == "done" and s["input"]["files"] == [{"name": "data.csv", "size": len(CSV)}],
          "show -o json: the input files", s)
    check([f["name"] for f in s["output"]["files"]] == ["summary.txt"], "show -o json: the output files", s)
    check(s["result"]["status"] == "exited" and s["result"]["exitCode"] == 0, "the result", s)
    check(re.match(r"^sha256:[0-9a-f]{64}$", s["codeDigest"]), "the code digest", s)


@test
def replay_same(t):
    data = t.write("in/data.csv", CSV)
    out_dir = t.path("orig-stdin")
    out, err = t.ok("call", "csvsum", "--file", data, "-d", "hello", "--output-dir", out_dir)
    check(out == SUMMARY + "stdin: hello\n", "stdin reaches the box", out, err)
    sid, _, _ = session_of(err)
    cwd = t.fresh_dir("replay")
    out, err = t.ok("replay", sid, "--check", cwd=cwd)
    check(out == SUMMARY + "stdin: hello\n", "the replay's stdout (same stdin)", out, err)
    new, n, where = session_of(err)
    check(new != sid and n == 1 and where == "fnbox-output/" + new, "the replay's output folder", err)
    check(read(os.path.join(cwd, where, "summary.txt")) == SUMMARY, "the replay's summary.txt")
    m = re.search(r"^replay (%s) of (%s) \(revision (\S+), code (\S+)\): stdout (\w+), output (\w+), status (\w+)$"
                  % (SESSION_RE, SESSION_RE), err, re.M)
    check(m, "the replay line", err)
    check(m.group(1) == new and m.group(2) == sid and m.group(3) == "csvsum-00001", "ids and revision", err)
    check(m.group(5, 6, 7) == ("same", "same", "same"), "all the same", err)
    s = t.json("sessions", "show", new)
    check(s["replayOf"] == sid and s["revision"] == "csvsum-00001", "the new session replays the old", s)
    # -o json: the answer instead of stdout; the output is still written
    out_dir = t.path("replay-json")
    j = t.json("replay", sid, "--output-dir", out_dir)
    check(j["replayOf"] == sid and j["same"]["stdout"] is True and j["same"]["output"] is True
          and j["session"]["id"] != sid, "replay -o json", j)
    check(listing(out_dir) == ["summary.txt"], "replay -o json writes the output", listing(out_dir))


@test
def replay_differs(t):
    out_dir = t.path("random-1")
    out, err = t.ok("call", "randbox", "--output-dir", out_dir)
    sid, n, _ = session_of(err)
    check(out == "wrote random bytes\n" and n == 1 and listing(out_dir) == ["random.bin"], "random box", out, err)
    cwd = t.fresh_dir("replay-random")
    out, err = t.fails(1, "replay", sid, "--check", cwd=cwd)
    check(out == "wrote random bytes\n", "stdout still printed", out)
    check(re.search(r"stdout same, output differs, status same$", err, re.M), "says the output differs", err)
    new, n, where = session_of(err)
    check(n == 1 and os.path.getsize(os.path.join(cwd, where, "random.bin")) == 32, "the replay's output", err)
    # without --check a replay that differs is still exit 0
    out, err = t.ok("replay", sid, "--output-dir", t.path("random-2"))
    check("output differs" in err, "without --check", err)


@test
def failing_box_keeps_output(t):
    out_dir = t.path("failing")
    out, err = t.fails(9, "call", "failbox", "--file", t.write("in/data.csv", CSV), "--output-dir", out_dir)
    check("function_error" in err, "the box's failure", err)
    sid, n, _ = session_of(err)
    check(n == 1 and read(os.path.join(out_dir, "partial.txt")) == "half done\n", "its output still comes back", err)
    s = t.json("sessions", "show", sid)
    check(s["result"]["status"] == "exited" and s["result"]["exitCode"] == 3, "the result says exit 3", s)
    out, err = t.ok("replay", sid, "--check", "--output-dir", t.path("failing-replay"))
    check("stdout same, output same, status same" in err, "a failure replays the same", err)


@test
def usage_errors_send_nothing(t):
    before = len(t.sessions())
    data = t.write("in/data.csv", CSV)
    other = t.write("other/data.csv", "x,y\n1,2\n")
    full = t.path("full")
    os.makedirs(full, exist_ok=True)
    t.write("full/keep.txt", "mine\n")
    cases = [
        (["--file", t.path("in", "missing.csv")], "missing.csv: No such file or directory"),
        (["--file", data, "--file", other], "have the same name 'data.csv'"),
        (["--file", t.path("in")], "is a folder"),
        (["--file", data, "--output-dir", full], "--output-dir '%s': exists and is not empty" % full),
        (["--file", data, "--output-dir", data], "exists and is not a folder"),
        (["--file", "/dev/null"], "is not a regular file"),
    ]
    for args, words in cases:
        out, err = t.fails(2, "call", "csvsum", *args)
        check(words in err and out == "", "%s: message" % args, err)
        check(len(err.strip().splitlines()) == 1, "%s: one line" % args, err)
    check(listing(full) == ["keep.txt"], "the non-empty folder is left alone", listing(full))
    for args in [["replay"], ["replay", "s-123"], ["sessions", "show"], ["sessions", "show", "nope"],
                 ["sessions", "frob"], ["replay", "s-" + "0" * 32, "--output-dir", full]]:
        t.fails(2, *args)
    check(len(t.sessions()) == before, "no session was created by a refused command")
    # errors the server gives
    _, err = t.fails(6, "call", "nosuch", "--file", data)
    check("session: 404" in err, "no such function: 404 from the session's creation", err)
    _, err = t.fails(6, "sessions", "show", "s-" + "0" * 32)
    check("404" in err, "no such session", err)
    _, err = t.fails(6, "replay", "s-" + "0" * 32)
    check("404" in err, "replay of no such session", err)


@test
def delete_session(t):
    out, err = t.ok("call", "csvsum", "--file", t.write("in/data.csv", CSV), "--output-dir", t.path("to-delete"))
    sid, _, _ = session_of(err)
    out, _ = t.ok("sessions", "delete", sid)
    check(out.strip() == "session %s deleted" % sid, "delete says so", out)
    t.fails(6, "sessions", "show", sid)
    check(sid not in [s["id"] for s in t.sessions()], "no longer listed")


@test
def bash_completion(t):
    _, err = t.ok("call", "csvsum", "--file", t.write("in/data.csv", CSV), "--output-dir", t.path("completed"))
    sid, _, _ = session_of(err)
    script = os.path.join(ROOT, "cli", "fnbox.bash")

    def complete(*words):
        prog = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fnbox; '
                'printf "%s\\n" "${COMPREPLY[@]}"')
        e = t.p.cli_env()
        e["PATH"] = t.p.bin + ":" + e.get("PATH", "")
        proc = subprocess.run(["bash", "-c", prog, "bash", script, *words], env=e, cwd=t.tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check(proc.returncode == 0, "completion failed", proc.stderr.decode())
        return proc.stdout.decode().split()
    check(complete("fnbox", "rep") == ["replay"], "replay verb")
    check(complete("fnbox", "sess") == ["sessions"], "sessions verb")
    check(complete("fnbox", "sessions", "") == ["list", "show", "delete"], "sessions' sub-verbs")
    check(sid in complete("fnbox", "replay", ""), "session ids for replay", complete("fnbox", "replay", ""))
    check(sid in complete("fnbox", "sessions", "show", "s-"), "session ids for sessions show")
    check(complete("fnbox", "replay", sid, "--c") == ["--check"], "replay's options")
    check({"--file", "--output-dir"} <= set(complete("fnbox", "call", "csvsum", "--")), "call's options")
    check("--file" in complete("fnbox", "skill", "generate", "t", "--"), "generate --file")
    check(complete("fnbox", "call", "csvsum", "--file", "in/da") == ["in/data.csv"], "--file completes paths")
    check("in" in complete("fnbox", "call", "csvsum", "--output-dir", "i"), "--output-dir completes folders")


# ---- the suite ---------------------------------------------------------------

def deploy_all(p, tmp):
    for name, code in [("csvsum", CSV_BOX), ("randbox", RANDOM_BOX), ("failbox", FAILING_BOX)]:
        path = os.path.join(tmp, "%s.py" % name)
        with open(path, "w") as f:
            f.write(code)
        p.deploy(name, path, spec={"mode": "fresh"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    args, _ = ap.parse_known_args()
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("skip: sessions-cli needs root (the runtime's jails)")
        print("sessions-cli: 0 passed, 0 failed")
        return 0
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="fnbox-it-sessions-")
    os.chmod(tmp, 0o755)
    try:
        with dp.Platform(build) as p:
            deploy_all(p, tmp)
            t = Env(p, tmp)
            for fn in TESTS.chosen(args.only):
                if run_test(fn, t):
                    passed += 1
                else:
                    failed += 1
            if failed:
                print("--- the daemons' logs (tail) ---\n" + p.all_logs(3000))
    except Exception as e:
        print("FAIL platform: %s" % e)
        failed += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("sessions-cli: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
