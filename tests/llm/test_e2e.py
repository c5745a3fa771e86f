"""tests/llm/test_e2e.py: the whole path of issue 5 in one platform, run by
tests/llm/run.py after its own tests.

A python3 fresh box (BOX below, deployed with the CLI like any function)
asks the LLM gateway for a chat completion through its broker socket
(FNBOX_BROKER, with the helpers of docs/boxes.md: fnbox.py and
/run/fnbox/fnbox-call). The alias `chat` has one upstream, `fn:llm-local`:
functions/llm-local with the tiny random GGUF model, deployed scaled to
zero, so the box's first call scales it from zero and waits through its
cold start. The tokens come back to the box, and the box hands them out to
the caller. Then a streamed call (server-sent events byte for byte through
the broker, with stream_options.include_usage) and a call carrying an
e-mail address (a data rule fires; llm-local is `local: true`, so it may
take it). Last, `fnbox llm log` (-o json and the table) reads back one
audit record per call: the caller is the box's function and revision as
the broker signed it, the alias, the upstream and its chain, tokens in and
out equal to the usage the box got, status 200, the latency (and the time
to the first token of the stream), the data rule that fired.

    import test_e2e
    for name, ok, detail, seconds in test_e2e.run(build, only):
        ...

Needs root (the platform), node-llama-cpp (llmfn.missing()) and node.
"""
import json
import os
import tempfile
import time

import fixture
import llmfn
from suite import Fail, check, run_one  # noqa: F401

BOX_NAME = "e2e-box"
ALIAS = "chat"
UPSTREAM = "llm-local"

GATEWAY_YAML = """\
upstreams:
  - name: %(up)s
    base_url: fn:llm-local
    local: true
    timeouts: {first_byte: 90s, total: 120s}
aliases:
  - name: %(alias)s
    upstreams: [{upstream: %(up)s, model: %(model)s}]
    cooldown: {failures: 0}
""" % {"up": UPSTREAM, "alias": ALIAS, "model": llmfn.MODEL_ID}

# The box. Its body says how to call the gateway:
#   {"how": "fnbox.py", "body": {...}}     fnbox.request POST /v1/chat/completions
#   {"how": "fnbox-call", "body": {...}}   /run/fnbox/fnbox-call -i /v1/chat/completions BODY
#   {"how": "fnbox.chat", "model", "messages", "max_tokens"}   the helper's text
# and it answers {"status", "headers", "body", "ms"} (or {"text", "ms"}).
BOX = r'''
import json
import subprocess
import sys
import time

sys.path.insert(0, "/run/fnbox")
import fnbox  # noqa: E402

req = json.loads(sys.stdin.buffer.read())
t0 = time.monotonic()
if req["how"] == "fnbox.py":
    st, _, hdrs, data = fnbox.request("POST", "/v1/chat/completions", json.dumps(req["body"]).encode(),
                                      {"Content-Type": "application/json"}, timeout=100)
    out = {"status": st, "headers": {k.lower(): v for k, v in hdrs}, "body": data.decode("utf-8", "replace")}
elif req["how"] == "fnbox-call":
    p = subprocess.run(["/run/fnbox/fnbox-call", "-i", "-t", "100", "/v1/chat/completions", json.dumps(req["body"])],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=110)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    out = {"rc": p.returncode, "err": p.stderr.decode("utf-8", "replace"), "status": int(lines[0].split()[1]),
           "headers": {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]},
           "body": body.decode("utf-8", "replace")}
else:
    out = {"text": fnbox.chat(req["model"], req["messages"], max_tokens=req["max_tokens"], temperature=0)}
out["ms"] = (time.monotonic() - t0) * 1000
sys.stdout.write(json.dumps(out))
'''


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def box(ctx, req, timeout=150):
    """Invoke the box from outside with REQ; its answer, decoded."""
    t0 = time.monotonic()
    st, body, _ = ctx["p"].invoke(BOX_NAME, json.dumps(req).encode(), timeout=timeout)
    check(st == 200, "the box answered %d" % st, body)
    out = json.loads(body)
    out["outside_ms"] = (time.monotonic() - t0) * 1000
    return out


def sse(body):
    """The data payloads of an event stream, JSON decoded ("[DONE]" kept)."""
    events = []
    for block in body.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                d = line[6:]
                events.append(d if d == "[DONE]" else json.loads(d))
    return events


PROMPT = [{"role": "user", "content": "tell me about the broker"}]


@test
def box_calls_llm_local_from_zero(build, ctx):
    """The box's chat completion scales llm-local from zero; its tokens come
    back through the broker to the box and out to the caller."""
    p = ctx["p"]
    check(p.ready_instances(ctx["llm_rev"]) == [], "llm-local has an instance before any call",
          p.route(ctx["llm_rev"]))
    out = box(ctx, {"how": "fnbox.py", "body": {"model": ALIAS, "messages": PROMPT, "max_tokens": 10,
                                                "temperature": 0}})
    check(out["status"] == 200, "the gateway answered the box %d" % out["status"], out)
    h = out["headers"]
    check(h.get("x-fnbox-upstream") == UPSTREAM, "answered by the upstream %s" % UPSTREAM, h)
    check(h.get("x-request-id"), "no X-Request-Id reached the box", h)
    j = json.loads(out["body"])
    check(j["object"] == "chat.completion" and j["model"] == llmfn.MODEL_ID, "a chat completion of the model", j)
    text = j["choices"][0]["message"]["content"]
    u = j["usage"]
    check(isinstance(text, str) and text and u["prompt_tokens"] > 0 and 1 <= u["completion_tokens"] <= 10 and
          u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], "text and usage", j)
    check(len(p.ready_instances(ctx["llm_rev"])) == 1, "llm-local was not scaled from zero by the call",
          p.route(ctx["llm_rev"]))
    print("    box -> broker -> gateway -> llm-local from zero: %.2fs in the box, %.2fs from outside; %r" %
          (out["ms"] / 1000, out["outside_ms"] / 1000, text[:40]))
    ctx["calls"]["whole"] = {"id": h["x-request-id"], "usage": u, "ms": out["ms"], "stream": False}
    ctx["text"] = text


@test
def box_streams_through_broker(build, ctx):
    """fnbox-call with stream: true and include_usage: the events reach the
    box byte for byte, the same greedy text as the whole answer."""
    out = box(ctx, {"how": "fnbox-call", "body": {"model": ALIAS, "messages": PROMPT, "max_tokens": 10,
                                                  "temperature": 0, "stream": True,
                                                  "stream_options": {"include_usage": True}}})
    check(out["rc"] == 0 and out["status"] == 200, "fnbox-call in the box: exit %d, %d" % (out["rc"], out["status"]),
          out)
    h = out["headers"]
    check(h.get("content-type", "").startswith("text/event-stream") and h.get("x-fnbox-upstream") == UPSTREAM,
          "an event stream from %s" % UPSTREAM, h)
    events = sse(out["body"])
    check(events and events[-1] == "[DONE]", "the stream does not end with [DONE]", out["body"][-500:])
    chunks = [e for e in events if isinstance(e, dict)]
    check(all("error" not in e for e in chunks), "an error event", out["body"])
    text = "".join((c.get("delta") or {}).get("content") or "" for e in chunks for c in e["choices"])
    check(text == ctx.get("text"), "greedy decoding streamed other text than whole", repr(text), repr(ctx.get("text")))
    usage = [e for e in chunks if e.get("usage")]
    check(len(usage) == 1 and usage[0] is chunks[-1] and usage[0]["choices"] == [], "one usage chunk, last", chunks)
    u = usage[0]["usage"]
    check(u == ctx["calls"]["whole"]["usage"], "the stream's usage differs from the whole answer's", u,
          ctx["calls"]["whole"]["usage"])
    ctx["calls"]["stream"] = {"id": h["x-request-id"], "usage": u, "ms": out["ms"], "stream": True}


@test
def box_sensitive_to_local(build, ctx):
    """fnbox.chat with an e-mail address in it: the email rule fires, and the
    local llm-local may take it (200, not 403)."""
    out = box(ctx, {"how": "fnbox.chat", "model": ALIAS, "max_tokens": 4,
                    "messages": [{"role": "user", "content": "write to jane.doe@example.com about it"}]})
    check(isinstance(out.get("text"), str) and out["text"], "fnbox.chat gave no text", out)
    ctx["calls"]["sensitive"] = {"ms": out["ms"], "stream": False}


def audit_records(p, caller):
    rc, out, err = p.cli("llm", "log", "-o", "json", "--alias", ALIAS)
    check(rc == 0, "fnbox llm log -o json: exit %d" % rc, out, err)
    return [r for r in json.loads(out)["items"] if r.get("caller") == caller]


@test
def audit_log_names_the_box(build, ctx):
    """One record per call, read back with `fnbox llm log`."""
    p = ctx["p"]
    caller = "fn:default/%s@%s" % (BOX_NAME, ctx["box_rev"])
    calls = ctx["calls"]
    check(len(calls) == 3, "an earlier test failed: only %s were made" % sorted(calls))
    got = {}

    def arrived():
        got["v"] = audit_records(p, caller)
        return len(got["v"]) >= 3
    fixture.wait_for("the three audit records at the controller", arrived, 15, 0.3)
    recs = got["v"]
    check(len(recs) == 3, "%d records for the box's 3 calls" % len(recs), recs)
    by_id = {r["requestId"]: r for r in recs}
    for what in ("whole", "stream"):
        c = calls[what]
        r = by_id.get(c["id"])
        check(r, "no record with the request id the box got (%s)" % what, c["id"], recs)
        check(r["namespace"] == "default" and r["caller"] == caller, "the caller is the box's function and revision",
              r)
        check(r["endpoint"] == "chat.completions" and r["alias"] == ALIAS and r["upstream"] == UPSTREAM and
              r["chain"] == [UPSTREAM], "endpoint, alias, upstream and chain", r)
        check(r["status"] == 200 and r["errorType"] is None, "status 200", r)
        check(r["tokensIn"] == c["usage"]["prompt_tokens"] and r["tokensOut"] == c["usage"]["completion_tokens"] and
              r["tokensCounted"] is False, "tokens in and out from the usage the box got", r, c["usage"])
        check(0 < r["latencyMs"] <= c["ms"] + 50, "latency within the box's own time for the call", r, c["ms"])
        check(r["stream"] is c["stream"], "stream", r)
        if c["stream"]:
            check(r["ttftMs"] is not None and 0 < r["ttftMs"] <= r["latencyMs"], "time to first token", r)
        else:
            check(r["ttftMs"] is None, "a time to first token for a whole answer", r)
        check(r["rules"] == [], "a data rule fired on a plain prompt", r)
        check("requestBody" not in r and "responseBody" not in r, "bodies kept without audit.bodies", r)
    cold = by_id[calls["whole"]["id"]]
    check(cold["latencyMs"] > 500, "the cold call's latency does not include the cold start", cold)
    sens = [r for r in recs if r["requestId"] not in (calls["whole"]["id"], calls["stream"]["id"])]
    check(len(sens) == 1 and sens[0]["rules"] == ["email"] and sens[0]["upstream"] == UPSTREAM and
          sens[0]["status"] == 200 and 1 <= sens[0]["tokensOut"] <= 4, "the sensitive call's record", sens)
    # the table names the same
    rc, out, err = p.cli("llm", "log", "--alias", ALIAS)
    check(rc == 0, "fnbox llm log: exit %d" % rc, out, err)
    rows = [l for l in out.splitlines() if caller in l]
    check(len(rows) == 3 and all(UPSTREAM in l and " 200 " in l for l in rows), "the table's rows", out)
    u = calls["stream"]["usage"]
    check(any("%d/%d " % (u["prompt_tokens"], u["completion_tokens"]) in l for l in rows), "tokens in/out", out)
    check(any("email" in l for l in rows), "the rule in the table", out)
    log = "".join(p.log(n) for n in p.runtimes)
    check(log.count("broker: ") >= 3 and "%s POST /v1/chat/completions depth 1 -> 200" % caller in log,
          "the runtime's broker line for the box's calls", log[-2000:])
    print("    audit: cold call %.0f ms, stream %.0f ms (first token %.0f ms), %d/%d tokens" %
          (cold["latencyMs"], by_id[calls["stream"]["id"]]["latencyMs"], by_id[calls["stream"]["id"]]["ttftMs"],
           cold["tokensIn"], cold["tokensOut"]))


# ---- the runner ---------------------------------------------------------------------------

def run(build, only=()):
    """Yield (name, passed, detail, seconds) for each test, then for the
    platform's own exit check (e2e_platform_stops_and_leaves_nothing)."""
    tests = [t for t in TESTS if not only or any(o in t.__name__ for o in only)]
    if not tests:
        return
    why = llmfn.missing()
    if why:
        for t in tests:
            yield (t.__name__, False, why, 0.0)
        return
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="fnbox-llm-e2e-")
    os.chmod(tmp, 0o755)
    cfg, code = os.path.join(tmp, "gateway.yaml"), os.path.join(tmp, "main.py")
    for path, text in ((cfg, GATEWAY_YAML), (code, BOX)):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
    try:
        with fixture.Platform(build, activator_args=["--gateway-config", cfg]) as p:
            llm_rev, info = llmfn.deploy(p)
            box_rev = p.deploy(BOX_NAME, code, spec={"limits": {"timeout": "120s", "memory": "128Mi"},
                                                     "scale": {"min": 0, "scaleToZeroAfter": "60s"}})
            ctx = {"p": p, "llm_rev": llm_rev, "box_rev": box_rev, "info": info, "calls": {}}
            for t in tests:
                yield run_one(t, build, ctx)
            t0 = time.monotonic()
    except (Exception, KeyboardInterrupt) as e:
        yield ("e2e_platform", False, "%s: %s\n%s" % (type(e).__name__, e, "".join(fixture.FAILED_LOGS)[-8000:]),
               time.monotonic() - t0)
    else:
        yield ("e2e_platform_stops_and_leaves_nothing", True, "", time.monotonic() - t0)
    finally:
        for n in os.listdir(tmp):
            os.unlink(os.path.join(tmp, n))
        os.rmdir(tmp)
