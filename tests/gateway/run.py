#!/usr/bin/env python3
"""tests/gateway/run.py: the LLM gateway suite. One platform
(tests/dataplane/fixture.py: controller, one node, an activator started
with --gateway-config) and scripted OpenAI-compatible upstreams
(upstream.py) that each test tells what to do: chat, streams with and
without usage, completions, embeddings, models, fallback before the first
byte, a failure mid-stream, retries, cooldown into 429, timeouts, bad
input, data rules, quotas, hot reload, metrics, and an fn: upstream (a
python3 service box scaled from zero). Prints a line per test, then
"gateway: N passed, N failed"; exits non-zero when one failed.

usage: run.py [--build DIR] [--only SUBSTRING]...     (root; stdlib only)
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "dataplane"))

import fixture  # noqa: E402
from upstream import Upstream  # noqa: E402

KEY = "sk-gw-test-6f1e2d"       # the cloud upstream's API key: it must reach the upstream and nowhere else
UPSTREAMS = ("cloud-a", "cloud-b", "local-a", "flaky")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Fail(Exception):
    pass


def check(cond, what, *ctx):
    if not cond:
        raise Fail(what + "".join("\n    " + str(c)[:1500] for c in ctx))


def config(ups, extra_aliases=""):
    u = {n: ups[n].base_url for n in UPSTREAMS}
    return """\
upstreams:
  - name: cloud-a
    base_url: %(cloud-a)s
    api_key_env: GW_TEST_KEY
    models: [gpt-a]
  - name: cloud-b
    base_url: %(cloud-b)s
    models: [gpt-b]
  - name: local-a
    base_url: %(local-a)s
    local: true
    models: [local-model]
  - name: flaky
    base_url: %(flaky)s
    timeouts: {connect: 1s, first_byte: 1500ms, total: 3s}
  - name: fnbox-llm
    base_url: fn:gw-llm
    local: true
    timeouts: {first_byte: 60s, total: 90s}
aliases:
  - name: solo
    upstreams: [{upstream: cloud-a, model: gpt-a-2024}]
  - name: fb
    upstreams: [flaky]
    retries: 0
    fallbacks: [solo]
    cooldown: {failures: 0}
  - name: retry
    upstreams: [cloud-b]
    retries: 2
    cooldown: {failures: 0}
  - name: cool
    upstreams: [flaky]
    retries: 0
    cooldown: {failures: 2, seconds: 3}
  - name: mixed
    upstreams: [cloud-a, local-a]
    strategy: least-busy
  - name: fnchat
    upstreams: [fnbox-llm]
%(extra)s
limits:
  max_body: 64Ki
  max_tokens: 100000
quotas:
  namespaces:
    team-q: {requests_per_minute: 2}
""" % dict(u, extra=extra_aliases)


class Ctx:
    def __init__(self, p, ups, cfg_path):
        self.p, self.ups, self.cfg_path = p, ups, cfg_path
        u = urllib.parse.urlparse(p.url)
        self.host, self.port = u.hostname, u.port

    def request(self, method, path, body=None, headers=None, token=True, raw=None, timeout=30):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + self.p.token
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()

    def post(self, path, body, **kw):
        st, data, h = self.request("POST", path, body, **kw)
        try:
            j = json.loads(data)
        except ValueError:
            j = None
        return st, j, data, h

    def chat(self, model, text="hi there", headers=None, token=True, timeout=30, **extra):
        b = {"model": model, "messages": [{"role": "user", "content": text}]}
        b.update(extra)
        return self.post("/v1/chat/completions", b, headers=headers, token=token, timeout=timeout)

    def events(self, data):
        """The data payloads of an SSE body, in order."""
        out = []
        for block in data.decode().split("\n\n"):
            for line in block.split("\n"):
                if line.startswith("data: "):
                    out.append(line[6:])
        return out

    def error_of(self, j):
        check(isinstance(j, dict) and isinstance(j.get("error"), dict), "an OpenAI error body", j)
        e = j["error"]
        for k in ("message", "type", "param", "code"):
            check(k in e, "error has %s" % k, j)
        return e


# ---- the tests ------------------------------------------------------------------------------

@test
def models(x):
    st, data, h = x.request("GET", "/v1/models")
    check(st == 200, "GET /v1/models 200", st, data)
    ids = {m["id"] for m in json.loads(data)["data"]}
    check({"solo", "fb", "gpt-a", "gpt-b", "local-model"} <= ids, "aliases and models listed", ids)
    st, j, data, h = x.post("/v1/models", {})
    check(st == 405, "POST /v1/models is 405", st, data)
    check(h.get("allow") == "GET", "405 names GET", h)
    # one model: by its name (a slash in a name as itself or as %2F)
    st, data, h = x.request("GET", "/v1/models/gpt-a")
    j = json.loads(data)
    check(st == 200 and j == {"id": "gpt-a", "object": "model", "created": 0, "owned_by": "fnbox"},
          "GET /v1/models/gpt-a", st, data)
    for path, what in (("/v1/models/no-such", "an unknown model"), ("/v1/models/%zz", "a bad escape"),
                       ("/v1/models/a%00b", "a NUL"), ("/v1/models/" + "m" * 200, "a name over 127 bytes"),
                       ("/v1/models/%2F", "a lone slash")):
        st, data, h = x.request("GET", path)
        e = x.error_of(json.loads(data)) if st == 404 else {}
        check(st == 404 and e.get("code") == "model_not_found" and e.get("param") == "model",
              "%s: 404 model_not_found" % what, st, data)
    st, j, data, h = x.post("/v1/models/gpt-a", {})
    check(st == 405 and h.get("allow") == "GET", "POST /v1/models/ID is 405", st, data, h)


@test
def chat_whole(x):
    st, j, data, h = x.chat("solo", "hello gateway")
    check(st == 200, "200", st, data)
    check(j["choices"][0]["message"]["content"] == "echo: hello gateway", "the upstream's answer", j)
    check(j["usage"]["total_tokens"] > 0, "usage passed on", j)
    check(h.get("x-fnbox-upstream") == "cloud-a", "answered by cloud-a", h)
    req = x.ups["cloud-a"].requests[-1]
    check(req["body"]["model"] == "gpt-a-2024", "the member's model name upstream", req["body"])
    check(req["headers"].get("Authorization") == "Bearer " + KEY, "the upstream's key, not the caller's token",
          req["headers"].get("Authorization"))
    check(x.p.token not in json.dumps(req["headers"]), "the fnbox token never reaches a cloud upstream")


@test
def chat_stream_usage(x):
    st, j, data, h = x.chat("solo", "one two three", stream=True, stream_options={"include_usage": True})
    check(st == 200 and h.get("content-type", "").startswith("text/event-stream"), "a 200 event stream", st, h)
    ev = x.events(data)
    check(ev[-1] == "[DONE]", "ends with [DONE]", ev)
    chunks = [json.loads(e) for e in ev[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    check(text == "echo: one two three", "the words in order", text)
    check(chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0, "a usage chunk last", chunks[-1])
    # without include_usage the caller gets no usage chunk (the gateway still asked for one)
    st, j, data, h = x.chat("solo", "one two", stream=True)
    ev = x.events(data)
    check(all("usage" not in json.loads(e) for e in ev[:-1]), "no usage chunk unasked", ev)
    up = x.ups["cloud-a"].requests[-1]["body"]
    check(up.get("stream_options", {}).get("include_usage") is True, "usage asked of the upstream", up)


@test
def stream_counted_usage(x):
    x.ups["cloud-a"].script([{"usage": False}])
    st, j, data, h = x.chat("solo", "count these words please", stream=True, stream_options={"include_usage": True})
    ev = x.events(data)
    last = json.loads(ev[-2])
    check(ev[-1] == "[DONE]" and last.get("usage", {}).get("completion_tokens", 0) > 0,
          "a counted usage chunk when the upstream gave none", ev)


@test
def completions_and_embeddings(x):
    st, j, data, h = x.post("/v1/completions", {"model": "gpt-b", "prompt": "say it", "max_tokens": 5})
    check(st == 200 and j["choices"][0]["text"] == "echo: say it", "completions", st, data)
    st, j, data, h = x.post("/v1/completions", {"model": "gpt-b", "prompt": "a b", "stream": True})
    check(st == 200 and x.events(data)[-1] == "[DONE]", "streamed completions", data)
    st, j, data, h = x.post("/v1/embeddings", {"model": "gpt-a", "input": ["abc", "defgh"]})
    check(st == 200 and len(j["data"]) == 2 and len(j["data"][0]["embedding"]) == 4, "embeddings", st, data)
    st, j, data, h = x.post("/v1/embeddings", {"model": "gpt-a", "input": "x", "stream": True})
    check(st == 400, "embeddings are not streamed", st, data)


@test
def fallback_before_first_byte(x):
    x.ups["flaky"].script([{"status": 500}])
    st, j, data, h = x.chat("fb", "fall back")
    check(st == 200 and h.get("x-fnbox-upstream") == "cloud-a", "fell back to solo's cloud-a", st, h, data)
    x.ups["flaky"].script([{"status": 503}])
    st, j, data, h = x.chat("fb", "fall back streaming", stream=True)
    check(st == 200 and h.get("x-fnbox-upstream") == "cloud-a" and x.events(data)[-1] == "[DONE]",
          "a stream falls back before its first byte", st, h, data)
    x.ups["flaky"].script([{"garbage": True}])
    st, j, data, h = x.chat("fb", "garbage then fallback")
    check(st == 200 and h.get("x-fnbox-upstream") == "cloud-a", "garbage falls back", st, data)


@test
def retries(x):
    b = x.ups["cloud-b"]
    b.reset()
    b.script([{"status": 500}, {"status": 502}])
    st, j, data, h = x.chat("retry", "third time")
    check(st == 200, "the third attempt answers", st, data)
    check(len(b.requests) == 3, "three attempts", len(b.requests))
    b.script([{"status": 500}] * 3)
    st, j, data, h = x.chat("retry", "all fail")
    e = x.error_of(j)
    check(st == 502 and e["type"] == "upstream_error", "502 upstream_error when every retry fails", st, data)
    b.script([{"status": 400, "body": {"error": {"message": "context too long", "type": "invalid_request_error",
                                                 "param": "messages"}}}])
    n = len(b.requests)
    st, j, data, h = x.chat("retry", "caller's fault")
    check(st == 400 and "context too long" in x.error_of(j)["message"] and len(b.requests) == n + 1,
          "an upstream 400 is the caller's: passed on, not retried", st, data, len(b.requests) - n)


@test
def midstream_failure(x):
    x.ups["cloud-b"].reset()
    x.ups["cloud-a"].script([{"reply": "a b c d e f", "fail_after": 2}])
    st, j, data, h = x.chat("solo", "break", stream=True)
    check(st == 200, "the stream started", st, data)
    ev = x.events(data)
    check(ev[-1] == "[DONE]", "still ends with [DONE]", ev)
    err = json.loads(ev[-2])
    check("error" in err and err["error"]["type"] == "upstream_error", "an error event before [DONE]", ev)
    words = [json.loads(e)["choices"][0]["delta"]["content"] for e in ev[:-2]]
    check(words == ["a", " b"], "what came before the cut", words)
    check(not x.ups["cloud-b"].requests, "no fallback once bytes went out")


@test
def cooldown_429(x):
    f = x.ups["flaky"]
    f.reset()
    check(x.chat("cool", "a success resets the count")[0] == 200, "cool answers")
    f.default = {"status": 500}
    for i in range(2):
        st, j, data, h = x.chat("cool", "fail %d" % i)
        check(st == 502, "failure %d is 502" % i, st, data)
    n = len(f.requests)
    st, j, data, h = x.chat("cool", "cooling")
    e = x.error_of(j)
    check(st == 429 and e["type"] == "rate_limit_exceeded" and int(h.get("retry-after", "0")) >= 1,
          "429 with Retry-After while every upstream cools down", st, h, data)
    check(len(f.requests) == n, "the cooling upstream is not called")
    f.default = {}
    time.sleep(3.2)
    st, j, data, h = x.chat("cool", "warm again")
    check(st == 200, "answers again after the cooldown", st, data)


@test
def timeouts(x):
    f = x.ups["flaky"]
    f.reset()
    f.script([{"delay": 5}])
    t0 = time.time()
    st, j, data, h = x.chat("cool", "slow")
    check(st == 504 and x.error_of(j)["type"] == "timeout" and time.time() - t0 < 4, "504 at the first-byte deadline",
          st, data, time.time() - t0)
    f.script([{"hang": True}])
    t0 = time.time()
    st, j, data, h = x.chat("cool", "never ends", stream=True)
    ev = x.events(data)
    check(st == 200 and ev[-1] == "[DONE]" and "error" in json.loads(ev[-2]) and time.time() - t0 < 6,
          "a stream that never ends gets an error event at the total deadline", st, ev)
    time.sleep(0.2)
    f.reset()


@test
def client_hangup(x):
    """A caller that leaves mid-stream: the upstream call stops, nothing stays in flight."""
    import socket
    x.ups["local-a"].reset()
    x.ups["local-a"].script([{"hang": True}])
    body = json.dumps({"model": "local-model", "stream": True, "messages": [{"role": "user", "content": "a b c"}]}).encode()
    s = socket.create_connection((x.host, x.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (x.p.token.encode(), len(body), body))
    got = b""
    while b"data: " not in got:
        got += s.recv(4096)
    s.close()

    def idle():
        st, data, h = x.request("GET", "/metrics", token=False)
        return 'fnbox_llm_upstream_inflight{upstream="local-a"} 0' in data.decode()
    fixture.wait_for("local-a idle again", idle, 5)
    check(x.chat("local-model")[0] == 200, "it still answers")


@test
def bad_input(x):
    st, j, data, h = x.post("/v1/chat/completions", None, raw=b'{"model": "solo", "messages": [')
    check(st == 400 and x.error_of(j)["type"] == "invalid_request_error" and "JSON" in j["error"]["message"],
          "malformed JSON", st, data)
    st, j, data, h = x.post("/v1/chat/completions", {"model": "solo", "messages": "hi"})
    check(st == 400 and j["error"]["param"] == "messages", "messages of the wrong type", st, data)
    st, j, data, h = x.post("/v1/chat/completions", {"model": 7, "messages": []})
    check(st == 400 and j["error"]["param"] == "model", "model of the wrong type", st, data)
    for mt in (-1, 0, 10 ** 12, "many"):
        st, j, data, h = x.chat("solo", max_tokens=mt)
        check(st == 400 and j["error"]["param"] == "max_tokens", "max_tokens %r" % (mt,), st, data)
    st, j, data, h = x.chat("no-such-model")
    check(st == 404 and j["error"]["code"] == "model_not_found", "unknown model 404", st, data)
    st, j, data, h = x.chat("solo", "x" * (70 << 10))
    check(st == 413 and x.error_of(j)["code"] == "request_too_large", "a body over the limit", st, data[:300])
    st, j, data, h = x.post("/v1/nothing", {})
    check(st == 404, "an unknown endpoint", st, data)
    st, j, data, h = x.chat("solo", token=False)
    check(st == 401 and x.error_of(j)["type"] == "authentication_error", "no API key: 401", st, data)
    st, j, data, h = x.chat("solo", headers={"Authorization": "Bearer sk-not-fnbox"}, token=False)
    check(st == 401, "a foreign key: 401", st, data)
    st, j, data, h = x.chat("solo", headers={"X-Fnbox-Broker-Auth": "v1 1 " + "0" * 64, "X-Fnbox-Caller": "fn:default/a@a-00001"})
    check(st == 401, "a forged broker signature: 401", st, data)


@test
def data_rules(x):
    st, j, data, h = x.chat("solo", "write to jane.doe@example.com please")
    e = x.error_of(j)
    check(st == 403 and e["type"] == "data_policy" and "email" in e["message"], "personal data never goes to a cloud-only alias",
          st, data)
    x.ups["local-a"].reset()
    x.ups["cloud-a"].reset()
    for _ in range(3):
        st, j, data, h = x.chat("mixed", "my card is 4111 1111 1111 1111")
        check(st == 200 and h.get("x-fnbox-upstream") == "local-a", "a sensitive request goes to the local upstream", st, h)
    check(not x.ups["cloud-a"].requests, "never to the cloud one")


@test
def quotas(x):
    hdr = {"X-Fnbox-Namespace": "team-q"}
    for i in range(2):
        st, j, data, h = x.chat("solo", "q %d" % i, headers=hdr)
        check(st == 200, "request %d within the quota" % i, st, data)
    st, j, data, h = x.chat("solo", "over", headers=hdr)
    check(st == 429 and x.error_of(j)["type"] == "rate_limit_exceeded" and h.get("retry-after"),
          "429 past requests_per_minute", st, h, data)


@test
def metrics(x):
    st, data, h = x.request("GET", "/metrics", token=False)
    text = data.decode()
    check('fnbox_llm_tokens_total{alias="solo",upstream="cloud-a",direction="out"}' in text, "tokens by alias and upstream",
          text[-3000:])
    check('fnbox_llm_request_duration_seconds_count{alias="solo",upstream="cloud-a"}' in text, "latency by alias and upstream")
    check(KEY not in text, "no key in the metrics")


@test
def hot_reload(x):
    log = x.p.log("activator")
    with open(x.cfg_path + ".new", "w") as f:
        f.write(config(x.ups, "  - name: added\n    upstreams: [cloud-b]\n"))
    os.rename(x.cfg_path + ".new", x.cfg_path)
    fixture.wait_for("the added alias", lambda: x.chat("added")[0] == 200, 5)
    with open(x.cfg_path, "w") as f:
        f.write("upstreams:\n  - name: broken\n    base_url: ftp://nope\n")
    fixture.wait_for("the bad reload logged", lambda: "keeping the previous configuration" in x.p.log("activator"), 5)
    check("base_url" in x.p.log("activator").split("keeping the previous")[0][-400:], "the error names the field",
          x.p.log("activator")[-600:])
    check(x.chat("added")[0] == 200, "the old config still serves")
    with open(x.cfg_path, "w") as f:
        f.write(config(x.ups))
    fixture.wait_for("the alias gone again", lambda: x.chat("added")[0] == 404, 5)
    x.p.activator.send(signal.SIGHUP)
    fixture.wait_for("a SIGHUP reload", lambda: x.p.log("activator").count("gateway: reloaded") >= 3, 5)
    check(KEY not in x.p.log("activator"), "the key is never logged")
    del log


@test
def fn_upstream(x):
    x.p.deploy("gw-llm", os.path.join(HERE, "functions", "fnllm.py"),
               spec={"mode": "service", "limits": {"memory": "64Mi", "timeout": "30s"},
                     "scale": {"min": 0, "max": 1, "scaleToZeroAfter": "60s"}})
    t0 = time.time()
    st, j, data, h = x.chat("fnchat", "from a function", timeout=90)
    check(st == 200 and j["choices"][0]["message"]["content"] == "fn: from a function",
          "an fnbox function answers as an upstream, scaled from zero", st, data)
    check(h.get("x-fnbox-upstream") == "fnbox-llm", "through fn:", h)
    print("     (cold start and first answer: %.1fs)" % (time.time() - t0))
    st, j, data, h = x.chat("fnchat", "my email is a@b.co", timeout=30)
    check(st == 200, "a local fn: upstream takes sensitive requests", st, data, time.time() - t0)


BROKER_BOX = r"""
import json, sys
sys.path.insert(0, "/run/fnbox")
import fnbox
req = json.loads(sys.stdin.read())
st, _, hdrs, data = fnbox.request("POST", "/v1/chat/completions", json.dumps(req).encode(),
                                  {"Content-Type": "application/json", "Authorization": "Bearer sk-box-own"})
sys.stdout.write(json.dumps({"status": st, "headers": dict((k.lower(), v) for k, v in hdrs),
                             "body": data.decode("utf-8", "replace")}))
"""


@test
def broker_box(x):
    """A box's call through its broker socket: the gateway takes the
    broker's signed identity (no token), answers it, and the upstream sees
    neither the signature nor anything the box sent as a key."""
    code = os.path.join(x.p.tmp, "gw_broker_box.py")
    with open(code, "w") as f:
        f.write(BROKER_BOX)
    os.chmod(code, 0o644)
    x.p.deploy("gw-box", code, spec={"scale": {"min": 0, "scaleToZeroAfter": "30s"}})
    x.ups["cloud-a"].reset()
    st, body, h = x.p.invoke("gw-box", json.dumps({"model": "solo", "messages": [
        {"role": "user", "content": "from a box"}]}).encode(), timeout=60)
    check(st == 200, "the box ran", st, body)
    out = json.loads(body)
    check(out["status"] == 200 and json.loads(out["body"])["choices"][0]["message"]["content"] == "echo: from a box"
          and out["headers"].get("x-fnbox-upstream") == "cloud-a", "the gateway answered the box", out)
    up = x.ups["cloud-a"].requests[-1]["headers"]
    check(up.get("Authorization") == "Bearer " + KEY and not any(k.lower().startswith("x-fnbox") for k in up),
          "the upstream saw its own key and no fnbox header", up)


def node_client(x, phase):
    """Run tests/gateway/openai_client.mjs PHASE (the official openai npm
    client against this gateway); its JSON output."""
    import subprocess
    if not os.path.isfile(os.path.join(HERE, "node_modules", "openai", "package.json")):
        raise Fail("the openai npm package is not in tests/gateway/node_modules (run `make deps` as root)")
    env = dict(os.environ, GW_BASE_URL="http://%s:%d/v1" % (x.host, x.port), GW_TOKEN=x.p.token)
    r = subprocess.run(["node", os.path.join(HERE, "openai_client.mjs"), phase], cwd=HERE, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check(r.returncode == 0, "openai_client.mjs %s: exit %d" % (phase, r.returncode), r.stderr.decode()[-3000:],
          r.stdout.decode()[-1000:])
    return json.loads(r.stdout)


def client_error(e, cls, status, type_, code, param="-"):
    check(e.get("class") == cls and e.get("isAPIError") and e.get("status") == status and e.get("type") == type_
          and e.get("code") == code and (param == "-" or e.get("param") == param),
          "expected %s %d type %s code %s%s" % (cls, status, type_, code, "" if param == "-" else " param %s" % param),
          e)
    check(e.get("requestID"), "the client read no X-Request-Id", e)


@test
def openai_client(x):
    """The official openai npm client, unchanged: answers, streams, embeddings,
    models and the client's error classes."""
    for n in ("cloud-a", "cloud-b", "flaky"):
        x.ups[n].reset()
    b = node_client(x, "basic")
    ch = b["chat"]
    check(ch["content"] == "echo: hello from the openai client" and ch["role"] == "assistant" and
          ch["object"] == "chat.completion" and ch["finish"] == "stop", "chat.completions.create", ch)
    check(ch["usage"]["total_tokens"] == ch["usage"]["prompt_tokens"] + ch["usage"]["completion_tokens"] > 0,
          "usage", ch)
    check(ch["upstream"] == "cloud-a" and ch["requestID"], "headers through withResponse()", ch)
    st = b["stream"]
    check(st["text"] == "echo: one two three four", "the streamed words", st)
    check(st["withUsage"] == 1 and st["chunks"][-1] == {"object": "chat.completion.chunk", "nChoices": 0,
                                                         "hasUsage": True}, "one usage chunk, last", st)
    check(st["usage"]["completion_tokens"] == 5, "the stream's usage", st["usage"])
    check(not b["streamNoUsage"]["sawUsage"], "a usage chunk nobody asked for", b["streamNoUsage"])
    cm = b["completion"]
    check(cm["text"] == "echo: say this" and cm["object"] == "text_completion", "completions.create", cm)
    em = b["embeddings"]
    want = [[0.3, 0.5, -0.25, 0.0], [0.5, 0.5, -0.25, 1.0]]
    check([d["index"] for d in em["data"]] == [0, 1] and
          all(abs(a - w) < 1e-6 for d, ws in zip(em["data"], want) for a, w in zip(d["embedding"], ws)) and
          all(len(d["embedding"]) == 4 for d in em["data"]), "embeddings (the client's default, base64)", em)
    up = x.ups["cloud-a"].requests
    check(any(r["body"].get("encoding_format") == "base64" for r in up), "base64 asked of the upstream")
    check(b["embeddingsFloat"]["embedding"] == [0.3, 0.5, -0.25, 0.0], "embeddings as floats", b["embeddingsFloat"])
    ids = {m["id"] for m in b["models"]}
    check({"solo", "fb", "retry", "cool", "mixed", "fnchat", "gpt-a", "gpt-b", "local-model"} <= ids and
          all(m["object"] == "model" for m in b["models"]), "models.list", b["models"])
    check(b["model"] == {"id": "gpt-a", "object": "model", "owned_by": "fnbox"}, "models.retrieve", b["model"])
    print("     (openai %s)" % b["clientVersion"])

    e = node_client(x, "errors")
    client_error(e["unknownModel"], "NotFoundError", 404, "invalid_request_error", "model_not_found", "model")
    client_error(e["unknownModelRetrieve"], "NotFoundError", 404, "invalid_request_error", "model_not_found", "model")
    client_error(e["badMaxTokens"], "BadRequestError", 400, "invalid_request_error", "invalid_value", "max_tokens")
    client_error(e["noKey"], "AuthenticationError", 401, "authentication_error", "invalid_api_key")
    client_error(e["foreignKey"], "AuthenticationError", 401, "authentication_error", "invalid_api_key")
    client_error(e["dataPolicy"], "PermissionDeniedError", 403, "data_policy", "sensitive_data")
    check("email" in e["dataPolicy"]["message"], "the rule named", e["dataPolicy"])
    client_error(e["dataPolicyStream"], "PermissionDeniedError", 403, "data_policy", "sensitive_data")
    client_error(e["tooLarge"], "APIError", 413, "invalid_request_error", "request_too_large")
    q = e["quota"]
    check(q["answered"] <= 2 and "error" in q, "team-q's 2 requests a minute", q)
    client_error(q["error"], "RateLimitError", 429, "rate_limit_exceeded", "quota_exceeded")
    check(1 <= int(q["error"]["retryAfter"]) <= 60, "Retry-After on a quota's 429", q)

    x.ups["cloud-a"].script([{"reply": "a b c d e f", "fail_after": 2}])
    m = node_client(x, "midstream")
    check(m["words"] == ["a", " b"], "the words before the cut", m)
    check(m["error"] and m["error"]["class"] == "APIError" and m["error"]["type"] == "upstream_error",
          "the error event thrown from the for-await loop as an APIError", m)

    f = x.ups["flaky"]
    fixture.wait_for("alias cool answering", lambda: x.chat("cool", "warm up")[0] == 200, 10, 0.5)
    f.reset()
    f.script([{"status": 500}, {"status": 500}])
    c = node_client(x, "cooldown")
    for i, fe in enumerate(c["failures"]):
        client_error(fe, "InternalServerError", 502, "upstream_error", "bad_gateway")
    client_error(c["cooling"], "RateLimitError", 429, "rate_limit_exceeded", "upstreams_cooling_down")
    check(1 <= int(c["cooling"]["retryAfter"]) <= 3, "Retry-After within the cooldown of 3 s", c["cooling"])
    check(c["retried"]["content"] == "echo: after the wait" and c["retried"]["ms"] >= 500,
          "the client's retry after Retry-After answers", c["retried"])
    check(len(f.requests) == 3, "the cooling upstream saw only the two failures and the answer",
          [r["body"].get("messages") for r in f.requests])
    print("     (the client's retry through the cooldown: %.1fs)" % (c["retried"]["ms"] / 1000))


import test_audit_limits; test_audit_limits.register(sys.modules[__name__])  # noqa: E402,E702 (its tests run last)


# ---- the runner ---------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    a = ap.parse_args()
    ups = {n: Upstream(n).start() for n in UPSTREAMS}
    os.environ["GW_TEST_KEY"] = KEY
    tmp = tempfile.mkdtemp(prefix="fnbox-dp-gw-")
    os.chmod(tmp, 0o755)
    cfg = os.path.join(tmp, "gateway.yaml")
    with open(cfg, "w") as f:
        f.write(config(ups))
    os.chmod(cfg, 0o644)
    passed = failed = 0
    try:
        with fixture.Platform(a.build, nodes=[fixture.Node("node-a")],
                              activator_args=["--gateway-config", cfg]) as p:
            x = Ctx(p, ups, cfg)
            for fn in TESTS:
                if a.only and not any(s in fn.__name__ for s in a.only):
                    continue
                t0 = time.time()
                try:
                    fn(x)
                    passed += 1
                    print("ok   %-28s %.1fs" % (fn.__name__, time.time() - t0), flush=True)
                except Exception as e:
                    failed += 1
                    print("FAIL %-28s %.1fs\n  %s" % (fn.__name__, time.time() - t0,
                                                     e if isinstance(e, Fail) else traceback.format_exc()), flush=True)
            if failed:
                print(p.log("activator")[-4000:])
    except Exception:
        failed += 1
        traceback.print_exc()
        for t in fixture.FAILED_LOGS:
            sys.stdout.write(t)
    finally:
        for u in ups.values():
            u.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("gateway: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
