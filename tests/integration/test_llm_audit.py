#!/usr/bin/env python3
"""tests/integration/test_llm_audit.py: the LLM gateway's audit log against
a real fnbox-controller: batches posted as activators post them (POST
/v1/internal/llm-audit, the shape of activator/gateway/audit.c), read back
with `fnbox llm log` (table, wide, json, yaml; --alias, --since, --limit,
-n, -A) and GET /v1/llm/log; a batch sent again adds nothing; every limit
(records, bytes, each field) answers 400 naming the field and stores none
of the batch; who may post and who may read; the bodies' truncation
marks; the retention (--llm-audit-retention, --llm-audit-prune-every):
old records pruned at start and periodically, new ones kept.

usage: test_llm_audit.py [--build DIR] [--store URL] [--only NAME]...
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import Controller, api, Tests, check, run_test  # noqa: E402

TESTS = Tests()
ARGS = None
CALL_LIMIT_S = 60
AUDIT_PATH = "/v1/internal/llm-audit"



test = TESTS.add




def record(rid, ns="team-a", alias="small", at_ms=None, **kw):
    """A record as activator/gateway/audit.c writes it."""
    r = {
        "requestId": rid, "timeMs": at_ms or int(time.time() * 1000), "namespace": ns,
        "caller": "token:0123456789abcdef", "endpoint": "chat.completions", "alias": alias,
        "upstream": "local-llama", "chain": ["cloud-a", "local-llama"], "tokensIn": 12, "tokensOut": 34,
        "tokensCounted": False, "latencyMs": 56.5, "ttftMs": None, "status": 200, "errorType": None,
        "rules": ["email"], "stream": False,
    }
    r.update(kw)
    return r


class T:
    def __init__(self, ctl, tmp):
        self.ctl = ctl
        self.bin = os.path.join(os.path.abspath(ARGS.build), "bin", "fnbox")
        self.home = os.path.join(tmp, "home")
        os.makedirs(self.home, exist_ok=True)
        self.admin = ctl.admin_token
        self.dev_a = self.token("developer", ["team-a"])
        self.invoker_a = self.token("invoker", ["team-a"])

    def token(self, role, namespaces):
        st, body = api("POST", self.ctl.url + "/v1/tokens", token=self.ctl.admin_token,
                       body={"role": role, "namespaces": namespaces})
        check(st == 201 or st == 200, "token create: %s" % st, body)
        return body["token"]

    def post(self, records, token=None, raw=None):
        body = raw if raw is not None else {"records": records}
        return api("POST", self.ctl.url + AUDIT_PATH, token=token or self.admin, body=body)

    def get(self, query, token=None):
        return api("GET", self.ctl.url + "/v1/llm/log" + query, token=token or self.admin)

    def run(self, *args, token=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FNBOX_")}
        env.update(HOME=self.home, XDG_CONFIG_HOME=os.path.join(self.home, ".config"), LC_ALL="C",
                   FNBOX_URL=self.ctl.url, FNBOX_TOKEN=token or self.admin)
        p = subprocess.run([self.bin] + [str(a) for a in args], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CALL_LIMIT_S)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        check("AddressSanitizer" not in err and "runtime error:" not in err, "sanitizer report", err)
        return p.returncode, out, err

    def ok(self, *args, token=None):
        rc, out, err = self.run(*args, token=token)
        check(rc == 0, "fnbox %s: exit %d" % (" ".join(map(str, args)), rc), out, err)
        return out

    def fails(self, code, *args, token=None):
        rc, out, err = self.run(*args, token=token)
        check(rc == code, "fnbox %s: exit %d, expected %d" % (" ".join(map(str, args)), rc, code), out, err)
        return err

    def log_json(self, *args, token=None):
        return json.loads(self.ok("llm", "log", "-o", "json", *args, token=token))


def raw_post_head(t, length):
    """POST the audit path with only headers (Expect: 100-continue) and a
    Content-Length; returns (status, body text)."""
    host = t.ctl.url[len("http://"):]
    h, port = host.rsplit(":", 1)
    head = ("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (AUDIT_PATH, host, t.admin, length))
    with socket.create_connection((h, int(port)), timeout=10) as sk:
        sk.sendall(head.encode())
        data = b""
        while True:
            chunk = sk.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                hdr, rest = data.split(b"\r\n\r\n", 1)
                m = [l for l in hdr.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if m and len(rest) >= int(m[0].split(b":")[1]):
                    break
    hdr, _, rest = data.partition(b"\r\n\r\n")
    return int(hdr.split()[1]), rest.decode("utf-8", "replace")


def expect_400(resp, field):
    st, body = resp
    check(st == 400, "expected 400 for %s, got %s" % (field, st), body)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    check(err.get("field") == field, "the error names %s" % field, body)
    check(field in err.get("message", ""), "the message names %s" % field, body)


# ---- the tests ---------------------------------------------------------------------

@test
def post_and_read_back(t):
    now = int(time.time() * 1000)
    recs = [
        record("it-1", at_ms=now - 3000),
        record("it-2", alias="big", at_ms=now - 2000, stream=True, ttftMs=12.25, tokensCounted=True,
               rules=["email", "iban"], requestBody='{"messages":[{"content":"héllo"}]}', responseBody="{}"),
        record("it-3", alias="big", at_ms=now - 1000, upstream=None, chain=["cloud-a"], status=429,
               errorType="rate_limit_exceeded", tokensOut=0, rules=[]),
    ]
    st, body = t.post(recs)
    check(st == 200 and body == {"received": 3, "added": 3}, "post: %s" % st, body)

    items = t.log_json("-n", "team-a")["items"]
    check([i["requestId"] for i in items] == ["it-3", "it-2", "it-1"], "newest first", items)
    two = items[1]
    check(two["alias"] == "big" and two["stream"] is True and two["ttftMs"] == 12.25
          and two["tokensCounted"] is True and two["rules"] == ["email", "iban"]
          and two["chain"] == ["cloud-a", "local-llama"] and two["latencyMs"] == 56.5
          and two["requestBody"] == '{"messages":[{"content":"héllo"}]}' and two["responseBody"] == "{}"
          and two["timeMs"] == now - 2000 and two["time"].endswith("Z"), "record it-2 round trip", two)
    check("requestBody" not in items[0] and "requestBody" not in items[2], "no bodies unless kept", items)
    check(items[0]["upstream"] is None and items[0]["errorType"] == "rate_limit_exceeded"
          and items[0]["status"] == 429 and items[0]["ttftMs"] is None, "record it-3", items[0])

    out = t.ok("llm", "log", "-n", "team-a")
    lines = out.strip().split("\n")
    check(lines[0].split()[:4] == ["TIME", "NAMESPACE", "CALLER", "ALIAS"], "table header", out)
    check(len(lines) == 4 and "429 rate_limit_exceeded" in lines[1] and "email,iban" in lines[2]
          and "34*" in lines[2] and "56ms" in lines[3], "table rows", out)
    wide = t.ok("llm", "log", "-n", "team-a", "-o", "wide")
    check("REQUEST ID" in wide and "cloud-a>local-llama" in wide and "12ms" in wide and "it-2" in wide,
          "wide table", wide)
    yml = t.ok("llm", "log", "-n", "team-a", "-o", "yaml")
    check("requestId: it-1" in yml or "requestId: \"it-1\"" in yml, "yaml", yml)


@test
def filters_and_limit(t):
    old = int(time.time() * 1000) - 3 * 3600 * 1000
    recs = [record("f-%d" % i, ns="team-f", alias="a%d" % (i % 2), at_ms=old + i) for i in range(6)]
    recs.append(record("f-new", ns="team-f", alias="a1"))
    st, body = t.post(recs)
    check(st == 200 and body["added"] == 7, "post", body)
    ids = [i["requestId"] for i in t.log_json("-n", "team-f", "--alias", "a1")["items"]]
    check(ids == ["f-new", "f-5", "f-3", "f-1"], "--alias a1", ids)
    ids = [i["requestId"] for i in t.log_json("-n", "team-f", "--since", "1h")["items"]]
    check(ids == ["f-new"], "--since 1h", ids)
    ids = [i["requestId"] for i in t.log_json("-n", "team-f", "--since", "1d")["items"]]
    check(len(ids) == 7, "--since 1d", ids)
    page = t.log_json("-n", "team-f", "--limit", "2")
    check([i["requestId"] for i in page["items"]] == ["f-new", "f-5"] and "next" in page, "--limit 2", page)
    st, body = t.get("?namespace=team-f&limit=2&before=" + page["next"])
    check(st == 200 and [i["requestId"] for i in body["items"]] == ["f-4", "f-3"], "the next page", body)
    # -A: every namespace (an admin may)
    every = {i["namespace"] for i in t.log_json("-A", "--limit", "1000")["items"]}
    check({"team-a", "team-f"} <= every, "-A sees every namespace", every)
    check("No LLM requests recorded that match" in t.fails(0, "llm", "log", "-n", "team-f", "--alias", "zzz"),
          "nothing matches")
    for bad in (["--limit", "0"], ["--limit", "1001"], ["--limit", "x"], ["--since", "yesterday"],
                ["--since", "5"], ["--alias", ""]):
        t.fails(2, "llm", "log", *bad)
    expect_400(t.get("?since=bogus"), "since")
    expect_400(t.get("?limit=0"), "limit")
    expect_400(t.get("?before=-1"), "before")
    expect_400(t.get("?alias=" + "x" * 200), "alias")


@test
def batch_sent_again_adds_nothing(t):
    recs = [record("again-%d" % i, ns="team-r", at_ms=1700000000000 + i) for i in range(5)]
    check(t.post(recs)[1]["added"] == 5, "first")
    st, body = t.post(recs)
    check(st == 200 and body == {"received": 5, "added": 0}, "again", body)
    check(len(t.log_json("-n", "team-r")["items"]) == 5, "five records")


@test
def limits_name_the_field(t):
    good = record("lim-ok", ns="team-l")
    cases = [
        ({"requestId": "x" * 129}, "records[1].requestId"),
        ({"requestId": ""}, "records[1].requestId"),
        ({"requestId": "a\nb"}, "records[1].requestId"),
        ({"timeMs": "now"}, "records[1].timeMs"),
        ({"namespace": "Team_L"}, "records[1].namespace"),
        ({"caller": "c" * 161}, "records[1].caller"),
        ({"endpoint": 7}, "records[1].endpoint"),
        ({"alias": "m" * 129}, "records[1].alias"),
        ({"upstream": "u" * 129}, "records[1].upstream"),
        ({"chain": ["a"] * 9}, "records[1].chain"),
        ({"chain": [""]}, "records[1].chain"),
        ({"tokensIn": -1}, "records[1].tokensIn"),
        ({"tokensOut": 1.5}, "records[1].tokensOut"),
        ({"tokensCounted": "yes"}, "records[1].tokensCounted"),
        ({"latencyMs": -3}, "records[1].latencyMs"),
        ({"ttftMs": "soon"}, "records[1].ttftMs"),
        ({"status": 600}, "records[1].status"),
        ({"errorType": "e" * 49}, "records[1].errorType"),
        ({"rules": ["Email!"]}, "records[1].rules"),
        ({"stream": None}, "records[1].stream"),
        ({"requestBody": "b" * (64 * 1024 + 1)}, "records[1].requestBody"),
        ({"responseBody": 5}, "records[1].responseBody"),
    ]
    for change, field in cases:
        bad = dict(good, requestId="lim-bad")
        bad.update(change)
        expect_400(t.post([dict(good), bad]), field)
    st, body = t.post(None, raw={"records": [good, 7]})
    expect_400((st, body), "records[1]")
    missing = dict(good)
    del missing["caller"]
    expect_400(t.post([missing]), "records[0].caller")
    expect_400(t.post([record("r%d" % i, ns="team-l") for i in range(1001)]), "records")
    expect_400(t.post(None, raw={"records": {}}), "records")
    st, body = t.post(None, raw=b"{not json")
    check(st == 400, "malformed JSON: %s" % st, body)
    # the byte limit of a batch: 413 from the Content-Length, before the body is sent
    st, body = raw_post_head(t, 4 * 1024 * 1024 + 1)
    check(st == 413 and json.loads(body)["error"]["type"] == "too_large", "over 4 MiB: %s" % st, body)
    # just under it: read and parsed (its records fail on their size, not the batch)
    big = [record("big-%d" % i, ns="team-l", requestBody="b" * 65536, responseBody="r" * 65536) for i in range(31)]
    check(len(json.dumps({"records": big})) < 4 * 1024 * 1024, "the big batch fits")
    st, body = t.post(big)
    check(st == 200 and body["added"] == 31, "a batch near 4 MiB: %s" % st, body)
    st, body = api("GET", t.ctl.url + "/v1/llm/log?namespace=team-l&limit=1000", token=t.admin)
    check(len(body["items"]) == 31 and len(body["items"][0]["requestBody"]) == 65536, "31 kept")
    # none of the refused batches left a record, not even the good one before the bad
    ids = {i["requestId"] for i in t.log_json("-n", "team-l", "--limit", "1000")["items"]}
    check("lim-ok" not in ids and "lim-bad" not in ids, "nothing of a refused batch stored", ids)


@test
def who_may(t):
    st, body = t.post([record("who-1", ns="team-a")], token=t.dev_a)
    check(st == 403, "a developer may not post audit records: %s" % st, body)
    st, body = api("POST", t.ctl.url + AUDIT_PATH, token=None, body={"records": [record("who-1", ns="team-a")]})
    check(st == 401, "no token: %s" % st, body)
    # a developer of team-a reads team-a, not team-b, not every namespace
    check(t.post([record("who-b", ns="team-b")])[0] == 200, "post team-b")
    items = t.log_json("-n", "team-a", token=t.dev_a)["items"]
    check(items and all(i["namespace"] == "team-a" for i in items), "developer reads team-a", items)
    check("team-b" in t.fails(5, "llm", "log", "-n", "team-b", token=t.dev_a), "team-b forbidden")
    t.fails(5, "llm", "log", "-A", token=t.dev_a)
    t.fails(5, "llm", "log", "-n", "team-a", token=t.invoker_a)     # invokers do not read the log
    t.fails(4, "llm", "log", "-n", "team-a", token="nope")


@test
def truncated_marks(t):
    recs = [record("cut-1", ns="team-t", requestBody="{\"mo", requestBodyTruncated=True, responseBody="{\"ch",
                   responseBodyTruncated=True),
            record("cut-2", ns="team-t", requestBody="{}", responseBody="{}", requestBodyTruncated=False),
            record("cut-3", ns="team-t", requestBodyTruncated=None)]
    st, body = t.post(recs)
    check(st == 200 and body["added"] == 3, "posted", st, body)
    items = {i["requestId"]: i for i in t.get("?namespace=team-t")[1]["items"]}
    check(items["cut-1"].get("requestBodyTruncated") is True and items["cut-1"].get("responseBodyTruncated") is True,
          "the marks kept", items["cut-1"])
    for rid in ("cut-2", "cut-3"):
        check("requestBodyTruncated" not in items[rid] and "responseBodyTruncated" not in items[rid],
              "no mark when not cut", items[rid])
    expect_400(t.post([record("cut-4", ns="team-t", responseBodyTruncated="yes")]), "records[0].responseBodyTruncated")


def controller_run(args, timeout=20):
    """Run fnbox-controller with args until it exits; (status, stderr)."""
    binary = os.path.join(os.path.abspath(ARGS.build), "bin", "fnbox-controller")
    with tempfile.TemporaryDirectory(prefix="fnbox-llm-ret-") as d:
        p = subprocess.run([binary, "--data-dir", os.path.join(d, "data"), "--listen", "127.0.0.1:0"] + args,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace")


@test
def retention_options_checked(t):
    for opt, value in (("--llm-audit-retention", "forever"), ("--llm-audit-retention", "-1d"),
                       ("--llm-audit-retention", "36501d"), ("--llm-audit-prune-every", "0"),
                       ("--llm-audit-prune-every", "10ms"), ("--llm-audit-prune-every", "8d")):
        rc, err = controller_run([opt, value])
        check(rc == 2 and opt in err and value in err, "%s %s refused, naming it" % (opt, value), rc, err)


@test
def retention_prunes_old_keeps_new(t):
    """A controller of its own (SQLite) keeping records for an hour, pruning
    every 200 ms: records older than an hour go, at start and later."""
    now = int(time.time() * 1000)
    with Controller(ARGS.build, extra_args=["--llm-audit-retention", "1h", "--llm-audit-prune-every", "200ms"]) as c:
        def post(recs):
            st, body = api("POST", c.url + AUDIT_PATH, token=c.admin_token, body={"records": recs})
            check(st == 200 and body["added"] == len(recs), "posted", st, body)

        def ids():
            st, body = api("GET", c.url + "/v1/llm/log?namespace=*&limit=1000", token=c.admin_token)
            check(st == 200, "read back", st, body)
            return sorted(i["requestId"] for i in body["items"])
        post([record("old-%d" % i, ns="team-o", at_ms=now - 2 * 3600 * 1000 - i * 60000) for i in range(3)] +
             [record("young", ns="team-o", at_ms=now - 30 * 60 * 1000), record("new", ns="team-n", at_ms=now)])
        deadline = time.monotonic() + 10
        while ids() != ["new", "young"] and time.monotonic() < deadline:
            time.sleep(0.1)
        check(ids() == ["new", "young"], "the old records pruned, the new kept", ids())
        check(re.search(r"llm audit retention: deleted 3 records older than 3600 s", c.log()), "the prune logged",
              c.log()[-2000:])
        # records already stored when a controller starts are pruned at start
        post([record("old-again", ns="team-o", at_ms=now - 5 * 3600 * 1000)])
        c.stop()
        c.extra_args = ["--llm-audit-retention", "1h", "--llm-audit-prune-every", "7d"]
        c.start()
        deadline = time.monotonic() + 10
        while "old-again" in ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        check(ids() == ["new", "young"], "pruned at start", ids())
    # 0 keeps everything
    with Controller(ARGS.build, extra_args=["--llm-audit-retention", "0", "--llm-audit-prune-every", "100ms"]) as c:
        st, body = api("POST", c.url + AUDIT_PATH, token=c.admin_token,
                       body={"records": [record("ancient", ns="team-o", at_ms=1000)]})
        check(st == 200, "posted", st, body)
        time.sleep(0.5)
        st, body = api("GET", c.url + "/v1/llm/log?namespace=team-o", token=c.admin_token)
        check([i["requestId"] for i in body["items"]] == ["ancient"], "0: nothing pruned", body)
        check("retention" not in c.log(), "no retention thread", c.log()[-1000:])


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--store", default=None)
    ap.add_argument("--only", action="append", default=[])
    ARGS = ap.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="fnbox-llm-it-") as tmp, \
            Controller(ARGS.build, store=ARGS.store) as ctl:
        t = T(ctl, tmp)
        for f in TESTS.chosen(ARGS.only):
            if run_test(f, t):
                passed += 1
            else:
                failed += 1
        rc = ctl.stop()
        log = ctl.log()
        m = re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:", log)
        if rc != 0 or m:
            failed += 1
            print("FAIL the controller exited %s:\n%s" % (rc, log[max(0, m.start() - 200) if m else -3000:][:6000]))
    print("llm_audit: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
