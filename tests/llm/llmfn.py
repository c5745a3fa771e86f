"""tests/llm/llmfn.py: deploy functions/llm-local with a tiny model, for
any suite that needs a real local LLM behind fnbox (this one, the gateway's).

    import sys; sys.path.insert(0, "tests/llm"); sys.path.insert(0, "tests/dataplane")
    from fixture import Platform
    import llmfn
    with Platform(build) as p:
        rev, info = llmfn.deploy(p)      # a fresh tiny GGUF model, scaled from zero
        # POST /fn/llm-local/v1/chat/completions, /v1/embeddings, GET /v1/models
        # model id info["model"], embedding width info["n_embd"]

The model is made by make_gguf.py (random weights: gibberish, but the load,
tokenize, decode and embed paths of llama.cpp are real) and shipped inside
the function's code bundle next to server.mjs, so the box reads it
read-only at /fn/model.gguf. node-llama-cpp itself comes from the node's
/usr/local/lib/fnbox/llm-local (tests/deps.sh installs it).
"""
import os
import shutil
import subprocess
import tempfile

import make_gguf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVER = os.path.join(ROOT, "functions", "llm-local", "server.mjs")
MODULES = "/usr/local/lib/fnbox/llm-local/node_modules"
MODEL_ID = "tiny-llama"

# what the tests run it with: small and quick on a 2-core machine
ENV = {"LLM_MODEL": "/fn/model.gguf", "LLM_MODEL_NAME": MODEL_ID, "LLM_CONTEXT_SIZE": "512",
       "LLM_PARALLEL": "2", "LLM_MAX_TOKENS": "48", "LLM_THREADS": "1", "LLM_MAX_BODY": "1048576"}
SPEC = {"mode": "service", "entrypoint": "server.mjs",
        "limits": {"memory": "512Mi", "cpu": 1, "pids": 128, "timeout": "60s"},
        "concurrency": 8, "startupTimeout": "2m", "readiness": {"path": "/healthz", "period": "50ms"},
        "scale": {"min": 0, "initial": 0, "max": 1, "target": 8, "scaleToZeroAfter": "60s"}}


def missing():
    """None when node-llama-cpp and a Node.js it supports are installed,
    else a sentence saying what is missing."""
    if not os.path.isfile(os.path.join(MODULES, "node-llama-cpp", "package.json")):
        return "node-llama-cpp is not installed in %s (run `make deps` as root)" % os.path.dirname(MODULES)
    try:
        v = subprocess.run(["node", "-p", "process.versions.node"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=30).stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "no node: %s" % e
    if not v or int(v.split(".")[0]) < 20:
        return "node-llama-cpp needs Node.js 20 or later; /usr/bin/node is %s" % (v or "missing")
    return None


def code_dir(dest, seed=1, embd=64, layers=2):
    """Make DEST with server.mjs and a fresh model.gguf; returns the
    model's facts (make_gguf.build) with "model" (the id) and "dir"."""
    os.makedirs(dest, exist_ok=True)
    shutil.copy(SERVER, os.path.join(dest, "server.mjs"))
    info = make_gguf.build(os.path.join(dest, "model.gguf"), seed=seed, n_embd=embd, n_layers=layers)
    info.update(model=MODEL_ID, dir=dest)
    return info


def deploy(platform, name="llm-local", env=None, spec=None, seed=1):
    """Deploy llm-local on a fixture Platform; returns (revision, info).
    env and spec are merged over ENV and SPEC (spec one level deep)."""
    tmp = tempfile.mkdtemp(prefix="code-", dir=platform.tmp)
    info = code_dir(os.path.join(tmp, "llm-local"), seed=seed)
    s = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SPEC.items()}
    for k, v in (spec or {}).items():
        if isinstance(v, dict) and isinstance(s.get(k), dict):
            s[k].update(v)
        else:
            s[k] = v
    s["env"] = dict(ENV, **(env or {}))
    if "LLM_MODEL_NAME" in s["env"]:
        info["model"] = s["env"]["LLM_MODEL_NAME"]
    rev = platform.deploy(name, info["dir"], runtime="node", spec=s)
    return rev, info
