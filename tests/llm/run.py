#!/usr/bin/env python3
"""tests/llm/run.py: functions/llm-local, a real local LLM, end to end.

First the model generator alone (make_gguf.py: a well-formed GGUF, the same
bytes for the same seed). Then the whole platform (tests/dataplane/fixture.py:
controller, one runtime node, activator) with llm-local deployed from zero
and a tiny random llama model in its code bundle: the first call scales it
from zero and waits through the model's load (its cold start, zero to
first token, is printed); chat and text completions whole and streamed (server-sent
events ending in `data: [DONE]`, the usage chunk of
stream_options.include_usage, the same greedy text both ways), max_tokens
clamped, embeddings of the model's width (floats and base64), /v1/models,
OpenAI-shaped errors for bad input, concurrent requests, a client that
leaves mid-stream. The platform's own exit check then finds nothing left
behind. Then test_e2e.py: a box calls llm-local through its broker and the
gateway, from zero, and the audit log names it. Last, test_skills.py: a
`fnbox skill generate` job on llm-local ends cleanly whatever it writes.

Prints one line per test and "llm: N passed, N failed"; exits non-zero
when a test failed. usage: run.py [--build DIR] [--only SUBSTRING]...
Needs root. Python standard library only.
"""
import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "dataplane"))

import fixture  # noqa: E402
import llmfn  # noqa: E402
import make_gguf  # noqa: E402
from suite import Fail, check, run_one  # noqa: E402
import test_e2e  # noqa: E402
import test_skills  # noqa: E402

PATH = "/fn/llm-local"
TIME_LIMIT_S = 600


# ---- HTTP to the activator ----------------------------------------------------------

def conn_of(p, timeout=120):
    host, port = p.url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def call(p, method, sub, body=None, timeout=120, raw=None):
    """(status, parsed JSON or None, raw bytes, headers) of METHOD /fn/llm-local/SUB."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    hdrs = dict(p.auth_headers(), **{"Content-Type": "application/json"})
    st, out, h = fixture.http_request(p.url, method, PATH + sub, data, hdrs, timeout)
    return st, fixture.json_of(out), out, h


def chat(p, messages=None, timeout=120, **kw):
    body = {"model": llmfn.MODEL_ID, "messages": messages or [{"role": "user", "content": "hello there"}]}
    body.update(kw)
    return call(p, "POST", "/v1/chat/completions", body, timeout)


def stream(p, body, timeout=120, stop_after=None, path="/v1/chat/completions"):
    """POST a streaming chat completion; returns (status, events, t_first,
    t_end, raw) where events are the parsed `data:` payloads ("[DONE]"
    kept as a string), t_first the seconds to the first content delta.
    stop_after: hang up after that many events."""
    c = conn_of(p, timeout)
    t0 = time.monotonic()
    try:
        c.request("POST", PATH + path, json.dumps(body).encode(),
                  dict(p.auth_headers(), **{"Content-Type": "application/json"}))
        r = c.getresponse()
        if r.status != 200:
            return r.status, [], None, time.monotonic() - t0, r.read()
        events, t_first, buf = [], None, b""
        while True:
            line = r.fp.readline()
            if not line:
                break
            buf += line
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip().decode()
            ev = payload if payload == "[DONE]" else json.loads(payload)
            events.append(ev)
            if t_first is None and isinstance(ev, dict) and any(
                    (ch.get("delta") or {}).get("content") or ch.get("text") for ch in ev.get("choices", [])):
                t_first = time.monotonic() - t0
            if stop_after and len(events) >= stop_after:
                break
            if ev == "[DONE]":
                break
        return 200, events, t_first, time.monotonic() - t0, buf
    finally:
        c.close()


def openai_error(st, j, status, code=None):
    check(st == status, "expected %d, got %d" % (status, st), j)
    check(isinstance(j, dict) and isinstance(j.get("error"), dict), "not an OpenAI error object", j)
    e = j["error"]
    for k in ("message", "type", "param", "code"):
        check(k in e, "the error has no %r" % k, j)
    check(isinstance(e["message"], str) and e["message"], "an empty error message", j)
    if code:
        check(e["code"] == code, "error code %r, expected %r" % (e["code"], code), j)


# ---- tests ----------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def parse_gguf(path):
    """(version, {key: value}, [(name, dims, type, offset)], data start): a
    reader independent of the writer, strict about the layout."""
    with open(path, "rb") as f:
        b = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("Q")
        s = b[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take({0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
                     12: "d"}[t])
    check(b[:4] == b"GGUF", "no GGUF magic")
    pos = 4
    version, n_t, n_kv = take("I"), take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    tensors = []
    for _ in range(n_t):
        name = string()
        nd = take("I")
        dims = [take("Q") for _ in range(nd)]
        tensors.append((name, dims, take("I"), take("Q")))
    start = pos + (-pos) % kv.get("general.alignment", 32)
    return version, kv, tensors, start, len(b)


@test
def gguf_generator(build, ctx):
    d = tempfile.mkdtemp(prefix="fnbox-llm-gguf-")
    try:
        a, b2, c = (os.path.join(d, n) for n in ("a.gguf", "b.gguf", "c.gguf"))
        info = make_gguf.build(a, seed=7)
        make_gguf.build(b2, seed=7)
        make_gguf.build(c, seed=8)
        with open(a, "rb") as f1, open(b2, "rb") as f2, open(c, "rb") as f3:
            ba, bb, bc = f1.read(), f2.read(), f3.read()
        check(ba == bb, "the same seed gave different bytes")
        check(ba != bc and len(ba) == len(bc), "another seed gave the same weights")
        check(len(ba) < 4 << 20, "the tiny model is %d bytes" % len(ba))
        version, kv, tensors, start, size = parse_gguf(a)
        check(version == 3, "GGUF version %d" % version)
        check(kv["general.architecture"] == "llama", "architecture", kv.get("general.architecture"))
        n_vocab, n_embd = info["n_vocab"], info["n_embd"]
        check(len(kv["tokenizer.ggml.tokens"]) == n_vocab == len(kv["tokenizer.ggml.scores"])
              == len(kv["tokenizer.ggml.token_type"]), "the vocabulary's arrays differ in length")
        check(sum(1 for t in kv["tokenizer.ggml.tokens"] if t.startswith("<0x")) == 256, "no 256 byte tokens")
        names = {t[0]: t for t in tensors}
        check(names["token_embd.weight"][1] == [n_embd, n_vocab], "token_embd dims", names["token_embd.weight"])
        for i in range(info["n_layers"]):
            for part in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                         "ffn_up", "ffn_down"):
                check("blk.%d.%s.weight" % (i, part) in names, "no tensor blk.%d.%s" % (i, part))
        end = 0
        for name, dims, typ, off in tensors:
            check(off % 32 == 0 and typ == 0, "tensor %s: offset %d type %d" % (name, off, typ))
            n = 1
            for x in dims:
                n *= x
            end = max(end, off + 4 * n)
        check(start + end <= size, "tensor data past the end of the file")
    finally:
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)


@test
def cold_start_stream(build, ctx):
    """The first call scales llm-local from zero: it waits while the jail
    starts and the model loads, then streams."""
    p = ctx["p"]
    check(p.ready_instances(ctx["rev"]) == [], "an instance before any call", p.route(ctx["rev"]))
    body = {"model": llmfn.MODEL_ID, "messages": [{"role": "user", "content": "tell me about fnbox"}],
            "max_tokens": 12, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    st, events, t_first, t_end, raw = stream(p, body)
    check(st == 200, "cold streaming call: %d" % st, raw)
    check(t_first is not None, "no content delta in the stream", raw)
    print("    cold start, zero to first token: %.2fs (whole answer %.2fs)" % (t_first, t_end))
    ctx["cold"] = t_first
    check(events and events[-1] == "[DONE]", "the stream does not end with data: [DONE]", raw[-500:])
    chunks = [e for e in events if isinstance(e, dict)]
    check(all(e.get("object") == "chat.completion.chunk" for e in chunks), "a chunk of another object", raw)
    check(len({e["id"] for e in chunks}) == 1, "chunks with different ids", raw)
    check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "the first delta has no role", chunks[0])
    usage = chunks[-1]
    check(usage["choices"] == [] and isinstance(usage.get("usage"), dict), "no final usage chunk", usage)
    check(all(e.get("usage") is None for e in chunks[:-1]), "usage before the last chunk", raw)
    finish = [c["finish_reason"] for e in chunks for c in e["choices"] if c.get("finish_reason")]
    check(len(finish) == 1 and finish[0] in ("length", "stop"), "finish_reason", finish)
    u = usage["usage"]
    check(u["prompt_tokens"] > 0 and 1 <= u["completion_tokens"] <= 12 and
          u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], "usage", u)
    if finish[0] == "length":
        check(u["completion_tokens"] == 12, "finish_reason length after %d of 12 tokens" % u["completion_tokens"])
    ctx["stream_text"] = "".join(c["delta"].get("content") or "" for e in chunks for c in e["choices"])
    ctx["stream_body"] = body


@test
def chat_completion(build, ctx):
    p = ctx["p"]
    body = dict(ctx["stream_body"])
    del body["stream"], body["stream_options"]
    st, j, raw, h = call(p, "POST", "/v1/chat/completions", body)
    check(st == 200 and j, "chat completion: %d" % st, raw)
    check(h.get("content-type", "").startswith("application/json"), "content type", h)
    check(j["object"] == "chat.completion" and j["id"].startswith("chatcmpl-") and j["model"] == llmfn.MODEL_ID,
          "the completion's object, id or model", j)
    ch = j["choices"]
    check(len(ch) == 1 and ch[0]["message"]["role"] == "assistant", "choices", j)
    text = ch[0]["message"]["content"]
    check(isinstance(text, str) and text, "no text came back", j)
    check(text == ctx["stream_text"], "greedy decoding gave other text streamed than whole",
          repr(text), repr(ctx["stream_text"]))
    u = j["usage"]
    check(u["prompt_tokens"] > 0 and 1 <= u["completion_tokens"] <= 12, "usage", u)
    print("    %d prompt tokens, %d completion tokens: %r" % (u["prompt_tokens"], u["completion_tokens"], text[:60]))

    # a conversation with every role, content as parts, sampling options
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "and "}, {"type": "text", "text": "now?"}]}]
    st, j, raw, _ = chat(p, msgs, max_tokens=6, temperature=0.8, top_p=0.9, seed=42, stop=["\n\n"],
                         presence_penalty=0.5, frequency_penalty=0.5, n=1, user="someone", logit_bias=None)
    check(st == 200 and j["choices"][0]["finish_reason"] in ("stop", "length"), "multi-turn chat: %d" % st, raw)
    check(j["usage"]["prompt_tokens"] > u["prompt_tokens"] - 20, "the longer conversation counts fewer tokens",
          j["usage"], u)
    st2, j2, raw2, _ = chat(p, msgs, max_tokens=6, temperature=0.8, top_p=0.9, seed=42)
    st3, j3, raw3, _ = chat(p, msgs, max_tokens=6, temperature=0.8, top_p=0.9, seed=42)
    check(st2 == st3 == 200 and j2["choices"][0]["message"] == j3["choices"][0]["message"],
          "the same seed sampled different text", raw2, raw3)


@test
def text_completions(build, ctx):
    p = ctx["p"]
    body = {"model": llmfn.MODEL_ID, "prompt": "once upon a time", "max_tokens": 6, "temperature": 0}
    st, j, raw, _ = call(p, "POST", "/v1/completions", body)
    check(st == 200 and j and j["object"] == "text_completion" and j["id"].startswith("cmpl-"),
          "completion: %d" % st, raw)
    text = j["choices"][0]["text"]
    u = j["usage"]
    check(isinstance(text, str) and text and 1 <= u["completion_tokens"] <= 6 and u["prompt_tokens"] > 1,
          "no text or usage", j)
    st, events, t_first, _, raw = stream(p, dict(body, stream=True, stream_options={"include_usage": True}),
                                         path="/v1/completions")
    check(st == 200 and events[-1] == "[DONE]", "streamed completion: %d" % st, raw)
    chunks = [e for e in events if isinstance(e, dict)]
    check(all(e["object"] == "text_completion" for e in chunks), "chunk objects", raw)
    streamed = "".join(c.get("text", "") for e in chunks for c in e["choices"])
    check(streamed == text, "greedy text differs streamed and whole", repr(streamed), repr(text))
    check(chunks[-1]["usage"] == u, "the streamed usage differs", chunks[-1], u)
    st, j2, raw, _ = call(p, "POST", "/v1/completions", {"prompt": [5, 300, 301], "max_tokens": 2})
    check(st == 200 and j2["usage"]["prompt_tokens"] >= 3, "token-id prompt: %d" % st, raw)
    st, j2, raw, _ = call(p, "POST", "/v1/completions", {"prompt": "x"})
    check(st == 200 and j2["usage"]["completion_tokens"] <= 16, "max_tokens defaults to 16", raw)
    for what, b in [("no prompt", {}), ("echo", {"prompt": "x", "echo": True}),
                    ("two prompts", {"prompt": ["a", "b"]}), ("best_of 3", {"prompt": "x", "best_of": 3}),
                    ("a token id past the vocabulary", {"prompt": [5, ctx["info"]["n_vocab"]]})]:
        st, j2, raw, _ = call(p, "POST", "/v1/completions", b)
        try:
            openai_error(st, j2, 400)
        except Fail as e:
            raise Fail("%s: %s" % (what, e))


@test
def max_tokens_clamped(build, ctx):
    p = ctx["p"]
    cap = int(llmfn.ENV["LLM_MAX_TOKENS"])
    for mt in (100000, None):
        kw = {"max_tokens": mt} if mt else {}
        st, j, raw, _ = chat(p, temperature=0, **kw)
        check(st == 200, "max_tokens %s: %d" % (mt, st), raw)
        n, fin = j["usage"]["completion_tokens"], j["choices"][0]["finish_reason"]
        check(n <= cap, "max_tokens %s gave %d tokens, over the cap of %d" % (mt, n, cap), j["usage"])
        check(fin == "stop" or n == cap, "finish_reason %s after %d tokens" % (fin, n))
    st, j, raw, _ = chat(p, temperature=0, max_completion_tokens=3)
    check(st == 200 and j["usage"]["completion_tokens"] <= 3, "max_completion_tokens 3", raw)


@test
def max_tokens_never_exceeded(build, ctx):
    """node-llama-cpp holds a token that ends inside a UTF-8 character back
    and releases it with the next, past max_tokens; random weights sample
    such byte tokens often. Many small sampled answers, whole and streamed
    with the same seed: never more tokens than asked, the same text both
    ways."""
    p = ctx["p"]
    cut = 0
    for seed in range(48):
        mt = 1 + seed % 3
        chat_kind = seed % 4 == 3
        if chat_kind:
            sub, body = "/v1/chat/completions", {"model": llmfn.MODEL_ID, "messages": [
                {"role": "user", "content": "say something %d" % seed}]}
        else:
            sub, body = "/v1/completions", {"model": llmfn.MODEL_ID, "prompt": "x%d" % seed}
        body.update(max_tokens=mt, temperature=1.5, seed=seed)
        st, j, raw, _ = call(p, "POST", sub, body)
        check(st == 200, "seed %d: %d" % (seed, st), raw)
        n = j["usage"]["completion_tokens"]
        check(n <= mt, "seed %d: %d completion tokens for max_tokens %d" % (seed, n, mt), raw)
        ch = j["choices"][0]
        whole = ch["message"]["content"] if chat_kind else ch["text"]
        st, events, _, _, raw2 = stream(p, dict(body, stream=True, stream_options={"include_usage": True}), path=sub)
        check(st == 200 and events and events[-1] == "[DONE]", "seed %d streamed: %d" % (seed, st), raw2)
        chunks = [e for e in events if isinstance(e, dict)]
        streamed = "".join((c.get("delta") or {}).get("content") or "" if chat_kind else c.get("text", "")
                           for e in chunks for c in e["choices"])
        check(streamed == whole, "seed %d: streamed %r, whole %r" % (seed, streamed, whole))
        check(chunks[-1]["usage"] == j["usage"], "seed %d: streamed usage differs" % seed, chunks[-1], j["usage"])
        cut += whole.endswith("\ufffd")
    print("    %d of 48 answers ended inside a character" % cut)


@test
def embeddings(build, ctx):
    p = ctx["p"]
    width = ctx["info"]["n_embd"]
    st, j, raw, _ = call(p, "POST", "/v1/embeddings", {"model": llmfn.MODEL_ID, "input": ["hello world", "fnbox",
                                                                                         "hello world"]})
    check(st == 200 and j and j["object"] == "list", "embeddings: %d" % st, raw)
    d = j["data"]
    check([e["index"] for e in d] == [0, 1, 2] and all(e["object"] == "embedding" for e in d), "the data", raw)
    check(all(len(e["embedding"]) == width for e in d), "vectors are not of the model's width %d" % width,
          [len(e["embedding"]) for e in d])
    check(all(isinstance(x, float) for x in d[0]["embedding"]), "not floats", d[0]["embedding"][:5])
    check(d[0]["embedding"] == d[2]["embedding"], "the same text gave two vectors")
    check(d[0]["embedding"] != d[1]["embedding"], "two texts gave one vector")
    check(j["usage"]["prompt_tokens"] > 0 and j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"], "usage",
          j["usage"])
    st, j2, raw, _ = call(p, "POST", "/v1/embeddings", {"input": "hello world", "encoding_format": "base64"})
    check(st == 200, "base64 embeddings: %d" % st, raw)
    v = struct.unpack("<%df" % width, base64.b64decode(j2["data"][0]["embedding"]))
    check(all(abs(a - b) < 1e-6 for a, b in zip(v, d[0]["embedding"])), "base64 and float vectors differ")
    st, j3, raw, _ = call(p, "POST", "/v1/embeddings", {"input": [[5, 300, 301]]})
    check(st == 200 and len(j3["data"][0]["embedding"]) == width, "token-id input: %d" % st, raw)
    print("    %d-dimensional vectors" % width)


@test
def models(build, ctx):
    p = ctx["p"]
    st, j, raw, _ = call(p, "GET", "/v1/models")
    check(st == 200 and j["object"] == "list" and [m["id"] for m in j["data"]] == [llmfn.MODEL_ID], "models", raw)
    check(j["data"][0]["object"] == "model", "model object", raw)
    st, j, raw, _ = call(p, "GET", "/v1/models/" + llmfn.MODEL_ID)
    check(st == 200 and j["id"] == llmfn.MODEL_ID, "GET /v1/models/ID: %d" % st, raw)
    st, j, raw, _ = call(p, "GET", "/v1/models/gpt-17")
    openai_error(st, j, 404, "model_not_found")


@test
def bad_input(build, ctx):
    p = ctx["p"]
    cases = [
        ("malformed JSON", b'{"messages": [', 400, "invalid_json"),
        ("not an object", b'[1, 2]', 400, "invalid_json"),
        ("empty body", b'', 400, "invalid_json"),
    ]
    for what, raw_body, status, code in cases:
        st, j, raw, _ = call(p, "POST", "/v1/chat/completions", raw=raw_body)
        openai_error(st, j, status, code)
    msg = [{"role": "user", "content": "x"}]
    bodies = [
        ("no messages", {}, 400, "missing_required_parameter"),
        ("messages not a list", {"messages": "hi"}, 400, None),
        ("empty messages", {"messages": []}, 400, None),
        ("a bad role", {"messages": [{"role": "wizard", "content": "x"}]}, 400, None),
        ("content a number", {"messages": [{"role": "user", "content": 5}]}, 400, None),
        ("an image part", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, None),
        ("negative max_tokens", {"messages": msg, "max_tokens": -1}, 400, None),
        ("zero max_tokens", {"messages": msg, "max_tokens": 0}, 400, None),
        ("max_tokens a string", {"messages": msg, "max_tokens": "10"}, 400, "invalid_type"),
        ("max_tokens a fraction", {"messages": msg, "max_tokens": 1.5}, 400, "invalid_type"),
        ("temperature 3", {"messages": msg, "temperature": 3}, 400, None),
        ("n 2", {"messages": msg, "n": 2}, 400, None),
        ("stream a string", {"messages": msg, "stream": "yes"}, 400, "invalid_type"),
        ("stream_options without stream", {"messages": msg, "stream_options": {"include_usage": True}}, 400, None),
        ("five stops", {"messages": msg, "stop": ["a", "b", "c", "d", "e"]}, 400, None),
        ("an unknown model", {"messages": msg, "model": "gpt-17"}, 404, "model_not_found"),
        ("a model that is a number", {"messages": msg, "model": 5}, 400, "invalid_type"),
    ]
    for what, body, status, code in bodies:
        st, j, raw, _ = call(p, "POST", "/v1/chat/completions", body)
        try:
            openai_error(st, j, status, code)
        except Fail as e:
            raise Fail("%s: %s" % (what, e))
    for what, body in [("no input", {}), ("empty input", {"input": []}), ("input a number", {"input": 5}),
                       ("bad encoding_format", {"input": "x", "encoding_format": "hex"}),
                       ("other dimensions", {"input": "x", "dimensions": 3}),
                       ("a token id past the vocabulary", {"input": [[5, 10 ** 6]]})]:
        st, j, raw, _ = call(p, "POST", "/v1/embeddings", body)
        try:
            openai_error(st, j, 400)
        except Fail as e:
            raise Fail("embeddings, %s: %s" % (what, e))
    # a prompt longer than the context
    long = " ".join(["word"] * 2000)
    st, j, raw, _ = chat(p, [{"role": "user", "content": long}])
    openai_error(st, j, 400, "context_length_exceeded")
    st, j, raw, _ = call(p, "POST", "/v1/embeddings", {"input": long})
    openai_error(st, j, 400, "context_length_exceeded")
    # a body over the box's LLM_MAX_BODY (1 MiB; the activator takes 6 MiB)
    st, j, raw, _ = call(p, "POST", "/v1/chat/completions", raw=b'{"x": "' + b"a" * (1 << 20) + b'"}')
    openai_error(st, j, 413)
    # paths and methods
    st, j, raw, _ = call(p, "GET", "/v1/chat/completions")
    openai_error(st, j, 405)
    st, j, raw, _ = call(p, "POST", "/v1/nothing", {})
    openai_error(st, j, 404)
    # and it still answers
    st, j, raw, _ = chat(p, max_tokens=2)
    check(st == 200, "a good request after the bad ones: %d" % st, raw)


@test
def concurrent_and_hangups(build, ctx):
    p = ctx["p"]
    # a client that leaves mid-stream frees its sequence: with LLM_PARALLEL
    # 2, three hang-ups and then four calls at once all complete
    for _ in range(3):
        st, events, *_ = stream(p, {"messages": [{"role": "user", "content": "go"}], "max_tokens": 48,
                                    "stream": True}, stop_after=2)
        check(st == 200 and len(events) == 2, "a stream to leave", events)

    def one(i):
        return chat(p, [{"role": "user", "content": "request %d" % i}], max_tokens=8, temperature=0)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        res = list(ex.map(one, range(4)))
    dt = time.monotonic() - t0
    for st, j, raw, _ in res:
        check(st == 200 and j["choices"][0]["message"]["content"] is not None, "a concurrent call: %d" % st, raw)
    print("    4 concurrent calls (2 generating at once) in %.2fs" % dt)


@test
def logs(build, ctx):
    """The box's stderr reaches `fnbox logs`: the model loaded from /fn."""
    p = ctx["p"]
    log = ""
    for name in p.runtimes:
        log += p.log(name)
    rc, out, err = p.cli("logs", "llm-local")
    check("model %s loaded" % llmfn.MODEL_ID in out + err + log, "no 'model loaded' line in the logs",
          (out + err)[-2000:])
    check("/fn/model.gguf" in out + err + log, "the model was not read from /fn", (out + err)[-2000:])
    for line in (out + err).splitlines():
        if "loaded in" in line:
            print("    " + line.strip()[-160:])
            break


def run_platform_tests(build, only):
    names = [t for t in TESTS if t.__name__ != "gguf_generator" and (not only or any(o in t.__name__
                                                                                     for o in only))]
    if not names:
        return
    why = llmfn.missing()
    if why:
        for t in names:
            yield (t.__name__, False, why, 0.0)
        return
    t0 = time.monotonic()
    try:
        with fixture.Platform(build) as p:
            rev, info = llmfn.deploy(p)
            ctx = {"p": p, "rev": rev, "info": info}
            for t in names:
                yield run_one(t, build, ctx)
            t0 = time.monotonic()
    except (Exception, KeyboardInterrupt) as e:
        yield ("platform", False, "%s: %s\n%s" % (type(e).__name__, e, "".join(fixture.FAILED_LOGS)[-8000:]),
               time.monotonic() - t0)
    else:
        yield ("platform_stops_and_leaves_nothing", True, "", time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", action="append", default=[])
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("llm: needs root (namespaces, cgroups)")
        print("llm: 0 passed, 1 failed")
        return 1

    def on_alarm(*_):
        raise KeyboardInterrupt("the llm suite ran past %d s" % TIME_LIMIT_S)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIME_LIMIT_S)
    t0 = time.monotonic()
    results = []
    if not args.only or any(o in "gguf_generator" for o in args.only):
        results.append(run_one(gguf_generator, build, {}))
        report(results[-1])
    for r in run_platform_tests(build, args.only):
        report(r)
        results.append(r)
    for r in test_e2e.run(build, args.only):     # box -> broker -> gateway -> llm-local, audit
        report(r)
        results.append(r)
    for r in test_skills.run(build, args.only):  # fnbox skill generate's loop on llm-local
        report(r)
        results.append(r)
    passed = sum(1 for r in results if r[1])
    failed = len(results) - passed
    print("llm: %d tests in %.0fs" % (len(results), time.monotonic() - t0))
    print("llm: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and results else 1


def report(r):
    name, ok, detail, dt = r
    print("%s %s (%.1fs)" % ("PASS" if ok else "FAIL", name, dt))
    if not ok:
        for line in detail.rstrip("\n").splitlines():
            print("    " + line)
    sys.stdout.flush()


if __name__ == "__main__":
    socket.setdefaulttimeout(180)
    sys.exit(main())
