// functions/llm-local/server.mjs: a local LLM as an fnbox `service` box.
// node-llama-cpp (llama.cpp's CPU build) loads one GGUF model and the box
// serves OpenAI's API on the unix socket the runtime names in FNBOX_SOCKET:
// POST /v1/chat/completions (whole or streamed as server-sent events),
// POST /v1/embeddings, GET /v1/models; GET /healthz is 200 only once the
// model is loaded (the readiness probe). Settings come from the environment
// (README.md). node-llama-cpp is not in the code bundle: it is installed once
// on the node under /usr (tests/deps.sh), which every jail sees read-only.
// LLM_GPU=cuda or vulkan loads node-llama-cpp's GPU build instead of the CPU
// one (installed by install-gpu.sh); the box stops if it does not load.
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

const env = process.env;

function intEnv(name, def, min, max) {
    const raw = env[name];
    if (raw === undefined || raw === "")
        return def;
    if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max)
        fatal(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    return Number(raw);
}

function enumEnv(name, def, allowed) {
    const raw = env[name];
    if (raw === undefined || raw === "")
        return def;
    if (!allowed.includes(raw))
        fatal(`${name}: expected one of ${allowed.join(", ")}, got ${JSON.stringify(raw.slice(0, 100))}`);
    return raw;
}

// LLM_GPU_LAYERS: "max" (every layer on the GPU, or the load fails), "auto"
// (as many as fit, node-llama-cpp's estimate) or a number of layers
function gpuLayersEnv() {
    const raw = env.LLM_GPU_LAYERS;
    if (raw === undefined || raw === "" || raw === "max" || raw === "auto")
        return raw || "max";
    if (!/^[0-9]+$/.test(raw) || Number(raw) > 100000)
        fatal(`LLM_GPU_LAYERS: expected max, auto or a number of layers from 0 to 100000, got ${JSON.stringify(raw.slice(0, 100))}`);
    return Number(raw);
}

function fatal(msg) {
    process.stderr.write(`llm-local: ${msg}\n`);
    process.exit(1);
}

const CFG = {
    socket: env.FNBOX_SOCKET || "",
    port: intEnv("LLM_PORT", 0, 0, 65535),           // outside fnbox: 127.0.0.1:PORT
    model: env.LLM_MODEL || "",
    modules: env.LLM_NODE_MODULES || "/usr/local/lib/fnbox/llm-local/node_modules",
    contextSize: intEnv("LLM_CONTEXT_SIZE", 2048, 64, 1 << 20),
    parallel: intEnv("LLM_PARALLEL", 2, 1, 64),
    maxTokens: intEnv("LLM_MAX_TOKENS", 512, 1, 1 << 20),
    threads: intEnv("LLM_THREADS", 0, 0, 1024),
    maxBody: intEnv("LLM_MAX_BODY", 4 << 20, 1024, 1 << 30),
    maxQueue: intEnv("LLM_MAX_QUEUE", 64, 0, 100000),
    maxInputs: intEnv("LLM_MAX_EMBED_INPUTS", 256, 1, 100000),
    gpu: enumEnv("LLM_GPU", "none", ["none", "cuda", "vulkan"]),
    gpuLayers: gpuLayersEnv(),
    gpuFallback: enumEnv("LLM_GPU_FALLBACK", "none", ["none", "cpu"]),
};
if (!CFG.model)
    fatal("LLM_MODEL is not set (the path of a GGUF model, e.g. /fn/model.gguf)");
CFG.modelId = env.LLM_MODEL_NAME || path.basename(CFG.model).replace(/\.gguf$/i, "");
if (!/^[\x21-\x7e]{1,256}$/.test(CFG.modelId))
    fatal(`LLM_MODEL_NAME: 1 to 256 printable characters without spaces, got ${JSON.stringify(CFG.modelId)}`);
if (!CFG.socket && !CFG.port)
    fatal("no FNBOX_SOCKET (set by the fnbox runtime) and no LLM_PORT");

const CREATED = Math.floor(Date.now() / 1000);

// ----- errors in OpenAI's shape -----

class ApiError extends Error {
    constructor(status, message, type = "invalid_request_error", param = null, code = null) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }
}

const bad = (message, param = null, code = null) => new ApiError(400, message, "invalid_request_error", param, code);

function errorBody(e) {
    return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

function sendJson(res, status, obj, headers = {}) {
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": body.length, ...headers });
    res.end(body);
}

function sendError(res, e) {
    if (!(e instanceof ApiError)) {
        process.stderr.write(`llm-local: internal error: ${e && e.stack ? e.stack : e}\n`);
        e = new ApiError(500, "internal error in llm-local", "server_error");
    }
    if (res.headersSent) {
        res.destroy();
        return;
    }
    sendJson(res, e.status, errorBody(e), e.status === 503 ? { "Retry-After": "1" } : {});
}

// ----- the model -----

const state = { ready: false, failed: null, llama: null, model: null, context: null, free: [], waiting: [],
                embed: null, embedLock: Promise.resolve() };

async function loadModel() {
    const pkgDir = path.join(CFG.modules, "node-llama-cpp");
    let pkg;
    try {
        pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
    } catch (e) {
        throw new Error(`node-llama-cpp is not installed in ${CFG.modules} (make deps installs it): ${e.message}`);
    }
    const exp = pkg.exports && pkg.exports["."];
    const entry = (exp && (exp.import || exp.default)) || pkg.main || "index.js";
    const lib = await import(pathToFileURL(path.join(pkgDir, entry)).href);
    try {
        fs.accessSync(CFG.model, fs.constants.R_OK);
    } catch (e) {
        throw new Error(`LLM_MODEL ${CFG.model}: ${e.code === "ENOENT" ? "no such file" : e.message}`);
    }
    const t0 = process.hrtime.bigint();
    state.lib = lib;
    const binary = await loadLlama(lib, pkg.version);
    state.llama = binary.llama;
    const tLlama = process.hrtime.bigint();
    state.model = await state.llama.loadModel({ modelPath: CFG.model, gpuLayers: binary.gpuLayers });
    state.nVocab = vocabularySize(state.model);
    const train = state.model.trainContextSize || CFG.contextSize;
    state.ctxSize = Math.min(CFG.contextSize, train);
    const threads = CFG.threads || Math.max(1, os.availableParallelism());
    state.context = await state.model.createContext({ contextSize: state.ctxSize, sequences: CFG.parallel,
                                                      threads, batchSize: Math.min(512, state.ctxSize) });
    // the chat template, resolved once (matching it to a known wrapper takes
    // a second, far too long to do for every request)
    const wrapper = env.LLM_CHAT_WRAPPER || "auto";
    if (!lib.resolvableChatWrapperTypeNames.includes(wrapper))
        throw new Error(`LLM_CHAT_WRAPPER: expected one of ${lib.resolvableChatWrapperTypeNames.join(", ")}, got ` +
                        JSON.stringify(wrapper.slice(0, 100)));
    state.chatWrapper = lib.resolveChatWrapper(state.model, { type: wrapper });
    for (let i = 0; i < CFG.parallel; i++)
        state.free.push(state.context.getSequence());
    state.threads = threads;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const llamaMs = Number(tLlama - t0) / 1e6;
    process.stderr.write(`llm-local: model ${CFG.modelId} loaded in ${ms.toFixed(0)} ms (llama.cpp's binary ` +
                         `${llamaMs.toFixed(0)} ms, the model ${(ms - llamaMs).toFixed(0)} ms; ${CFG.model}, ` +
                         `width ${state.model.embeddingVectorSize}, context ${state.ctxSize} x ${CFG.parallel}, ` +
                         `${threads} threads, chat template ${state.chatWrapper.wrapperName}; ${binary.where})\n`);
    state.ready = true;
}

// The npm package that holds each GPU build of llama.cpp (install-gpu.sh
// installs it next to node-llama-cpp, at node-llama-cpp's own version).
const GPU_PACKAGES = { cuda: "@node-llama-cpp/linux-x64-cuda", vulkan: "@node-llama-cpp/linux-x64-vulkan" };

// Why the GPU build LLM_GPU names cannot be used, or null when its package
// is there at the version node-llama-cpp wants (it ignores any other).
function gpuPackageMissing(version) {
    const name = GPU_PACKAGES[CFG.gpu];
    const file = path.join(CFG.modules, name, "package.json");
    let pkg;
    try {
        pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (e) {
        return `${name} is not installed in ${CFG.modules} (${e.code === "ENOENT" ? "no " + file : e.message}); ` +
               `on this node run: functions/llm-local/install-gpu.sh ${CFG.gpu}`;
    }
    if (pkg.version !== version)
        return `${name} is version ${pkg.version}, node-llama-cpp is ${version}; ` +
               `run functions/llm-local/install-gpu.sh ${CFG.gpu} again`;
    return null;
}

// Why the GPU backend library does not load, for the message: dlopen it
// in a child process (node-llama-cpp only says NoBinaryFoundError), which
// names the first missing library (libcuda.so.1 is the driver's;
// libcudart and libcublas the CUDA toolkit's, 13 for the main CUDA build
// and 12 for its fallback; libvulkan.so.1 the Vulkan loader's).
function gpuLoadDiagnosis() {
    const pkgDir = path.join(CFG.modules, GPU_PACKAGES[CFG.gpu]);
    const main = path.join(pkgDir, "bins", CFG.gpu === "cuda" ? "linux-x64-cuda" : "linux-x64-vulkan");
    const libs = CFG.gpu === "cuda"
        ? [["CUDA 13 build", path.join(main, "libggml-cuda.so")],
           ["CUDA 12 build", path.join(CFG.modules, GPU_PACKAGES.cuda + "-ext", "bins", "linux-x64-cuda", "fallback",
                                       "libggml-cuda.so")]]
        : [["Vulkan build", path.join(main, "libggml-vulkan.so")]];
    const out = [];
    for (const [label, lib] of libs) {
        if (!fs.existsSync(lib)) {
            out.push(`${label}: not installed`);
            continue;
        }
        const r = spawnSync(process.execPath, ["-e", "try { process.dlopen({ exports: {} }, process.argv[1]); } " +
                                               "catch (e) { process.stdout.write(e.message); }", lib],
                            { env: { ...env, LD_LIBRARY_PATH: main }, encoding: "utf8", timeout: 20000 });
        const msg = (r.stdout || "").trim();
        // a library that is not a Node.js addon fails to register: it loaded
        out.push(`${label}: ` + (!msg || /self-register|not a valid|napi/i.test(msg)
                                 ? "its libraries load, so the driver found no usable device"
                                 : msg.replace(/^.*?: (?=lib)/, "").slice(0, 200)));
    }
    return out.join("; ");
}

// llama.cpp's binary, always prebuilt (build: "never": nothing compiled or
// downloaded at run time). LLM_GPU unset or none: the CPU build, gpu: false,
// no layers offloaded. LLM_GPU=cuda or vulkan: that GPU build, with
// LLM_GPU_LAYERS offloaded; it must load and see a device, else the box
// stops saying why (a GPU box silently running on the CPU would be many
// times slower and hold a GPU it does not use), unless LLM_GPU_FALLBACK=cpu
// allows the CPU build, which it then says on stderr.
async function loadLlama(lib, version) {
    const opts = { build: "never", usePrebuiltBinaries: true, progressLogs: false,
                   logLevel: lib.LlamaLogLevel.warn, logger: llamaLog };
    if (CFG.gpu === "none")
        return { llama: await lib.getLlama({ gpu: false, ...opts }), gpuLayers: 0, where: "CPU" };
    let why = gpuPackageMissing(version);
    if (!why) {
        try {
            const llama = await lib.getLlama({ gpu: CFG.gpu, ...opts });
            const devices = llama.gpu === CFG.gpu ? await llama.getGpuDeviceNames() : [];
            if (llama.gpu === CFG.gpu && devices.length > 0)
                return { llama, gpuLayers: CFG.gpuLayers,
                         where: `${CFG.gpu} on ${devices.join(", ")}, gpu layers ${CFG.gpuLayers}` };
            why = llama.gpu !== CFG.gpu ? `node-llama-cpp loaded its ${llama.gpu || "CPU"} build instead`
                                        : `the ${CFG.gpu} build loaded but sees no GPU device`;
            await llama.dispose();
        } catch (e) {
            // NoBinaryFoundError: the binary failed its test run (a missing
            // driver library such as libcuda.so.1 or libvulkan.so.1, no device)
            why = `the ${CFG.gpu} build of llama.cpp does not load here (${String(e.message || e).slice(0, 200)}: ` +
                  `${gpuLoadDiagnosis()}); check the driver, its libraries and the device nodes (docs/gpu.md)`;
        }
    }
    if (CFG.gpuFallback !== "cpu")
        throw new Error(`LLM_GPU=${CFG.gpu}: ${why} (LLM_GPU_FALLBACK=cpu would run on the CPU instead)`);
    process.stderr.write(`llm-local: LLM_GPU=${CFG.gpu}: ${why}; LLM_GPU_FALLBACK=cpu: running on the CPU\n`);
    return { llama: await lib.getLlama({ gpu: false, ...opts }), gpuLayers: 0,
             where: `CPU (fallback from ${CFG.gpu})` };
}

// llama.cpp refuses (and logs) a token id past the vocabulary: requests
// with token ids are checked against this first.
function vocabularySize(model) {
    const info = model.fileInfo || {};
    const embd = (info.tensorInfo || []).find((t) => t.name === "token_embd.weight");
    if (embd && embd.dimensions && embd.dimensions.length === 2)
        return Number(embd.dimensions[1]);
    const toks = info.metadata && info.metadata.tokenizer && info.metadata.tokenizer.ggml &&
        info.metadata.tokenizer.ggml.tokens;
    if (Array.isArray(toks))
        return toks.length;
    throw new Error("the model's vocabulary size is in neither token_embd.weight nor tokenizer.ggml.tokens");
}

function checkTokenIds(tokens, param) {
    for (const t of tokens)
        if (t >= state.nVocab)
            throw bad(`'${param}': token id ${t} is out of range (the vocabulary has ${state.nVocab} tokens)`,
                      param, "invalid_value");
}

function llamaLog(level, message) {
    const text = String(message).trim();
    if (text)
        process.stderr.write(`llm-local: llama.cpp ${level}: ${text.slice(0, 900)}\n`);
}

// One context sequence per generation; the rest wait in a bounded queue.
function takeSequence(signal) {
    if (state.free.length > 0)
        return Promise.resolve(state.free.pop());
    if (state.waiting.length >= CFG.maxQueue)
        return Promise.reject(new ApiError(429, `llm-local is busy: ${CFG.parallel} generations running and ` +
                                          `${state.waiting.length} waiting`, "rate_limit_error", null, "busy"));
    return new Promise((resolve, reject) => {
        const w = { resolve, reject };
        state.waiting.push(w);
        signal.addEventListener("abort", () => {
            const i = state.waiting.indexOf(w);
            if (i >= 0) {
                state.waiting.splice(i, 1);
                reject(new ApiError(499, "client closed the request", "invalid_request_error"));
            }
        }, { once: true });
    });
}

async function giveSequence(seq) {
    try {
        await seq.clearHistory();
    } catch (e) {
        process.stderr.write(`llm-local: clearing a sequence: ${e.message}\n`);
    }
    const w = state.waiting.shift();
    if (w)
        w.resolve(seq);
    else
        state.free.push(seq);
}

async function embeddingContext() {
    if (!state.embed)
        state.embed = state.model.createEmbeddingContext({ contextSize: state.ctxSize, threads: state.threads });
    try {
        return await state.embed;
    } catch (e) {
        state.embed = null;
        throw e;
    }
}

// ----- request checking -----

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function optNumber(body, name, min, max) {
    const v = body[name];
    if (v === undefined || v === null)
        return undefined;
    if (typeof v !== "number" || !Number.isFinite(v))
        throw bad(`'${name}' must be a number`, name, "invalid_type");
    if (v < min || v > max)
        throw bad(`'${name}' must be from ${min} to ${max}, got ${v}`, name, "invalid_value");
    return v;
}

function optInt(body, name, min, max) {
    const v = optNumber(body, name, min, max);
    if (v !== undefined && !Number.isInteger(v))
        throw bad(`'${name}' must be an integer`, name, "invalid_type");
    return v;
}

function checkModel(body) {
    if (body.model === undefined || body.model === null)
        return;
    if (typeof body.model !== "string")
        throw bad("'model' must be a string", "model", "invalid_type");
    if (body.model !== CFG.modelId)
        throw new ApiError(404, `The model '${body.model.slice(0, 200)}' does not exist; this server has ` +
                           `'${CFG.modelId}'`, "invalid_request_error", "model", "model_not_found");
}

function messageText(m, i) {
    const p = `messages[${i}].content`;
    if (typeof m.content === "string")
        return m.content;
    if (m.content === null || m.content === undefined) {
        if (m.role === "assistant")
            return "";
        throw bad(`'${p}' is required`, p, "missing_required_parameter");
    }
    if (!Array.isArray(m.content))
        throw bad(`'${p}' must be a string or an array of content parts`, p, "invalid_type");
    return m.content.map((part, j) => {
        if (!isObj(part) || part.type !== "text" || typeof part.text !== "string")
            throw bad(`'${p}[${j}]': only parts of type 'text' with a string 'text' are supported`,
                      `${p}[${j}]`, "invalid_value");
        return part.text;
    }).join("");
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function chatHistory(body) {
    const msgs = body.messages;
    if (!Array.isArray(msgs) || msgs.length === 0)
        throw bad(Array.isArray(msgs) ? "'messages' must not be empty" : "'messages' must be an array of messages",
                  "messages", msgs === undefined ? "missing_required_parameter" : "invalid_value");
    if (msgs.length > 10000)
        throw bad("'messages': at most 10000 messages", "messages", "invalid_value");
    const history = [];
    msgs.forEach((m, i) => {
        if (!isObj(m) || typeof m.role !== "string" || !ROLES.has(m.role))
            throw bad(`'messages[${i}].role' must be one of system, developer, user, assistant, tool`,
                      `messages[${i}].role`, "invalid_value");
        const text = messageText(m, i);
        if (m.role === "system" || m.role === "developer")
            history.push({ type: "system", text });
        else if (m.role === "assistant")
            history.push({ type: "model", response: [text] });
        else
            history.push({ type: "user", text });
    });
    history.push({ type: "model", response: [] });
    return history;
}

function stopTriggers(body) {
    const s = body.stop;
    if (s === undefined || s === null)
        return [];
    const list = typeof s === "string" ? [s] : s;
    if (!Array.isArray(list) || list.length > 4 || list.some((x) => typeof x !== "string" || x.length === 0 ||
                                                              x.length > 256))
        throw bad("'stop' must be a string or an array of at most 4 non-empty strings", "stop", "invalid_value");
    return list;
}

// What /v1/chat/completions and /v1/completions share: streaming, the
// token budget and the sampling options.
function generationOptions(body) {
    checkModel(body);
    if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean")
        throw bad("'stream' must be a boolean", "stream", "invalid_type");
    const so = body.stream_options;
    if (so !== undefined && so !== null && (!isObj(so) || (so.include_usage !== undefined &&
                                                            typeof so.include_usage !== "boolean")))
        throw bad("'stream_options' must be an object with a boolean 'include_usage'", "stream_options",
                  "invalid_value");
    if (so && !body.stream)
        throw bad("'stream_options' is only allowed with 'stream': true", "stream_options", "invalid_value");
    optInt(body, "n", 1, 1);                  // one choice per request
    let maxTokens = optInt(body, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER);
    if (maxTokens === undefined)
        maxTokens = optInt(body, "max_tokens", 1, Number.MAX_SAFE_INTEGER);
    const o = {
        stream: body.stream === true,
        includeUsage: !!(so && so.include_usage),
        maxTokens: Math.min(maxTokens ?? CFG.maxTokens, CFG.maxTokens),
        temperature: optNumber(body, "temperature", 0, 2),
        topP: optNumber(body, "top_p", 0, 1),
        seed: optInt(body, "seed", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
        presence: optNumber(body, "presence_penalty", -2, 2),
        frequency: optNumber(body, "frequency_penalty", -2, 2),
        stop: stopTriggers(body),
    };
    if (o.seed !== undefined)
        o.seed = Math.abs(o.seed) % 4294967296;
    return o;
}

function completionPrompt(body) {
    let p = body.prompt;
    if (Array.isArray(p) && p.length === 1 && typeof p[0] === "string")
        p = p[0];
    const isTokens = Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t) && t >= 0);
    if (typeof p !== "string" && !isTokens)
        throw bad("'prompt' must be a string, an array of one string, or an array of token ids", "prompt",
                  p === undefined ? "missing_required_parameter" : "invalid_value");
    for (const [name, off] of [["echo", false], ["suffix", null], ["logprobs", null], ["best_of", 1]])
        if (body[name] !== undefined && body[name] !== null && body[name] !== off)
            throw bad(`'${name}' is not supported by this server`, name, "unsupported_parameter");
    return p;
}

// ----- generation: one context sequence per request -----

// Take a sequence (waiting while all are busy), run fn(seq, abort) and give
// the sequence back however it ends. A client that hangs up aborts.
async function withSequence(res, fn) {
    const abort = new AbortController();
    res.on("close", () => { if (!res.writableFinished) abort.abort(); });
    const seq = await takeSequence(abort.signal);
    try {
        await fn(seq, abort);
    } finally {
        await giveSequence(seq);
    }
}

function checkRoom(promptTokens, param) {
    const room = state.ctxSize - promptTokens;
    if (room < 1)
        throw bad(`This model's context is ${state.ctxSize} tokens; the ${param} take ${promptTokens}`, param,
                  "context_length_exceeded");
    return room;
}

function samplerOptions(o, maxTokens, abort, limit) {
    const repeat = (o.presence !== undefined || o.frequency !== undefined)
        ? { presencePenalty: o.presence ?? 0, frequencyPenalty: o.frequency ?? 0 } : undefined;
    return { maxTokens, temperature: o.temperature ?? 1, topP: o.topP, seed: o.seed, repeatPenalty: repeat,
             customStopTriggers: o.stop.length ? o.stop : undefined, signal: abort.signal,
             stopOnAbortSignal: true, onToken: limit.onToken, onTextChunk: limit.onTextChunk };
}

// node-llama-cpp holds back a token that ends inside a UTF-8 character and
// releases it with the next one, and checks maxTokens only after that: an
// answer can run one token past max_tokens. This cuts the released tokens
// at the limit, in the stream and in the whole answer, so that OpenAI's
// promise (never more than max_tokens) holds. The library calls onToken
// with a release's tokens just before onTextChunk with their text.
function tokenLimit(maxTokens, onTextChunk) {
    const kept = [];
    let cut = null;         // {whole, part}: the release that crossed the limit, as text
    return {
        onToken(tokens) {
            const room = Math.max(maxTokens - kept.length, 0);
            if (tokens.length > room && cut === null) {
                cut = { whole: state.model.detokenize(tokens, false, kept),
                        part: state.model.detokenize(tokens.slice(0, room), false, kept) };
            }
            for (const t of tokens.slice(0, room))
                kept.push(t);
        },
        onTextChunk(text) {
            if (cut !== null && text === cut.whole)
                text = cut.part;
            if (onTextChunk && text)
                onTextChunk(text);
        },
        // the whole answer, cut the same way
        text(whole) {
            if (cut === null || !whole.endsWith(cut.whole))
                return whole;
            return whole.slice(0, whole.length - cut.whole.length) + cut.part;
        },
    };
}

// One answer, whole or as server-sent events. kind: "chat" or "text";
// run(onTextChunk) generates and returns {text, stopReason, maxTokens}; the
// sequence meter's growth, at most maxTokens, is the completion's tokens
// (the sequence serves one request at a time; onToken would miss a byte
// token still waiting for the rest of its character when generation stops).
async function answer(res, o, kind, seq, promptTokens, abort, run) {
    const chat = kind === "chat";
    const id = (chat ? "chatcmpl-" : "cmpl-") + crypto.randomBytes(12).toString("hex");
    const created = Math.floor(Date.now() / 1000);
    const base = { id, object: chat ? "chat.completion.chunk" : "text_completion", created, model: CFG.modelId,
                   system_fingerprint: null };
    const event = (obj) => `data: ${JSON.stringify(obj)}\n\n`;
    const chunk = (content, finish, role) => {
        const choice = chat ? { index: 0, delta: content === null ? {} : role ? { role, content } : { content } }
                            : { index: 0, text: content ?? "" };
        const c = { ...base, choices: [{ ...choice, logprobs: null, finish_reason: finish }] };
        if (o.includeUsage)
            c.usage = null;
        return event(c);
    };
    if (o.stream) {
        res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                             "X-Accel-Buffering": "no" });
        if (chat)
            res.write(chunk("", null, "assistant"));
    }
    const before = seq.tokenMeter.usedOutputTokens;
    let result;
    try {
        result = await run(o.stream ? (text) => { if (text) res.write(chunk(text, null)); } : undefined);
    } catch (e) {
        if (!o.stream || abort.signal.aborted)
            throw e;
        // mid-stream: an error event, and the stream ends without [DONE]
        process.stderr.write(`llm-local: generation failed mid-stream: ${e.stack || e}\n`);
        res.end(event(errorBody(new ApiError(500, "generation failed: " + String(e.message || e).slice(0, 300),
                                             "server_error"))));
        return;
    }
    if (abort.signal.aborted)
        return;
    // at most max_tokens, though the library may have sampled one more (tokenLimit)
    const completionTokens = Math.min(seq.tokenMeter.usedOutputTokens - before, result.maxTokens);
    const finish = result.stopReason === "maxTokens" ? "length" : "stop";
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens,
                    total_tokens: promptTokens + completionTokens };
    if (!o.stream) {
        const choice = chat ? { index: 0, message: { role: "assistant", content: result.text, refusal: null } }
                            : { index: 0, text: result.text };
        sendJson(res, 200, { ...base, object: chat ? "chat.completion" : "text_completion",
                             choices: [{ ...choice, logprobs: null, finish_reason: finish }], usage });
        return;
    }
    res.write(chunk(null, finish));
    if (o.includeUsage)
        res.write(event({ ...base, choices: [], usage }));
    res.end("data: [DONE]\n\n");
}

// ----- /v1/chat/completions and /v1/completions -----

async function chatCompletions(req, res, body) {
    const o = generationOptions(body);
    const history = chatHistory(body);
    await withSequence(res, async (seq, abort) => {
        const chat = new state.lib.LlamaChat({ contextSequence: seq, chatWrapper: state.chatWrapper,
                                              autoDisposeSequence: false });
        try {
            const text = chat.chatWrapper.generateContextState({ chatHistory: history }).contextText;
            const promptTokens = text.tokenize(state.model.tokenizer).length;
            const maxTokens = Math.min(o.maxTokens, checkRoom(promptTokens, "messages"));
            await answer(res, o, "chat", seq, promptTokens, abort, async (onTextChunk) => {
                const limit = tokenLimit(maxTokens, onTextChunk);
                const r = await chat.generateResponse(history, samplerOptions(o, maxTokens, abort, limit));
                return { text: limit.text(r.response), stopReason: r.metadata && r.metadata.stopReason,
                         maxTokens };
            });
        } finally {
            chat.dispose({ disposeSequence: false });
        }
    });
}

async function completions(req, res, body) {
    const o = generationOptions(body);
    if (body.max_tokens === undefined && body.max_completion_tokens === undefined)
        o.maxTokens = Math.min(16, CFG.maxTokens);            // OpenAI's default for /v1/completions
    const prompt = completionPrompt(body);
    if (typeof prompt !== "string")
        checkTokenIds(prompt, "prompt");
    await withSequence(res, async (seq, abort) => {
        const comp = new state.lib.LlamaCompletion({ contextSequence: seq, autoDisposeSequence: false });
        try {
            // as LlamaCompletion does it: a BOS token first where the model
            // wants one, and then the text without its leading space
            const bos = state.model.tokens.shouldPrependBosToken && state.model.tokens.bos !== null;
            const tokens = typeof prompt === "string"
                ? state.model.tokenize(prompt, false, bos ? "trimLeadingSpace" : undefined) : prompt;
            const promptTokens = tokens.length + (bos ? 1 : 0);
            const maxTokens = Math.min(o.maxTokens, checkRoom(promptTokens, "prompt"));
            await answer(res, o, "text", seq, promptTokens, abort, async (onTextChunk) => {
                const limit = tokenLimit(maxTokens, onTextChunk);
                const r = await comp.generateCompletionWithMeta(prompt, samplerOptions(o, maxTokens, abort, limit));
                return { text: limit.text(r.response), stopReason: r.metadata && r.metadata.stopReason,
                         maxTokens };
            });
        } finally {
            comp.dispose({ disposeSequence: false });
        }
    });
}

// ----- /v1/embeddings -----

function embeddingInputs(body) {
    checkModel(body);
    const inp = body.input;
    const tokenList = (a) => Array.isArray(a) && a.length > 0 && a.every((t) => Number.isInteger(t) && t >= 0);
    let inputs;
    if (typeof inp === "string")
        inputs = [inp];
    else if (tokenList(inp))
        inputs = [inp];
    else if (Array.isArray(inp) && inp.length > 0 && inp.every((x) => typeof x === "string" || tokenList(x)))
        inputs = inp;
    else
        throw bad("'input' must be a string, an array of strings, an array of token ids, or an array of " +
                  "arrays of token ids, and not empty", "input", inp === undefined ? "missing_required_parameter"
                                                                  : "invalid_value");
    if (inputs.length > CFG.maxInputs)
        throw bad(`'input': at most ${CFG.maxInputs} inputs, got ${inputs.length}`, "input", "invalid_value");
    const fmt = body.encoding_format ?? "float";
    if (fmt !== "float" && fmt !== "base64")
        throw bad("'encoding_format' must be 'float' or 'base64'", "encoding_format", "invalid_value");
    const dims = optInt(body, "dimensions", 1, 1 << 20);
    if (dims !== undefined && dims !== state.model.embeddingVectorSize)
        throw bad(`'dimensions': this model's embeddings have ${state.model.embeddingVectorSize} dimensions`,
                  "dimensions", "invalid_value");
    return { inputs, fmt };
}

async function embeddings(req, res, body) {
    const { inputs, fmt } = embeddingInputs(body);
    const tokenized = inputs.map((x, i) => {
        const toks = typeof x === "string" ? state.model.tokenize(x) : x;
        if (typeof x !== "string")
            checkTokenIds(toks, "input");
        if (toks.length > state.ctxSize)
            throw bad(`'input[${i}]' is ${toks.length} tokens; this model takes at most ${state.ctxSize}`,
                      "input", "context_length_exceeded");
        return { text: typeof x === "string" ? x : null, tokens: toks };
    });
    const ctx = await embeddingContext();
    const data = [];
    let total = 0;
    // one embedding at a time: the context has one sequence
    const run = state.embedLock.then(async () => {
        for (let i = 0; i < tokenized.length; i++) {
            const t = tokenized[i];
            const e = await ctx.getEmbeddingFor(t.text !== null ? t.text : t.tokens);
            total += t.tokens.length;
            const v = Float32Array.from(e.vector);
            data.push({ object: "embedding", index: i,
                        embedding: fmt === "base64" ? Buffer.from(v.buffer).toString("base64") : Array.from(v) });
        }
    });
    state.embedLock = run.catch(() => {});
    await run;
    sendJson(res, 200, { object: "list", data, model: CFG.modelId,
                         usage: { prompt_tokens: total, total_tokens: total } });
}

// ----- HTTP -----

function modelObject() {
    return { id: CFG.modelId, object: "model", created: CREATED, owned_by: "fnbox" };
}

// The body, at most LLM_MAX_BODY bytes. Past that the rest is read and
// dropped, so that the 413 reaches a client still sending (the activator
// bounds what it forwards).
function readBody(req) {
    return new Promise((resolve, reject) => {
        const parts = [];
        let n = 0;
        req.on("data", (d) => {
            n += d.length;
            if (n <= CFG.maxBody)
                parts.push(d);
        });
        req.on("end", () => {
            if (n > CFG.maxBody)
                reject(new ApiError(413, `the request body is ${n} bytes, over the limit of ${CFG.maxBody}`,
                                    "invalid_request_error", null, "request_too_large"));
            else
                resolve(Buffer.concat(parts));
        });
        req.on("error", reject);
    });
}

async function jsonBody(req) {
    const raw = await readBody(req);
    let body;
    try {
        body = JSON.parse(raw.toString("utf8"));
    } catch (e) {
        throw bad(`We could not parse the JSON body of your request: ${e.message.slice(0, 200)}`, null,
                  "invalid_json");
    }
    if (!isObj(body))
        throw bad("the request body must be a JSON object", null, "invalid_json");
    return body;
}

const ROUTES = {
    "/v1/chat/completions": { POST: chatCompletions },
    "/v1/completions": { POST: completions },
    "/v1/embeddings": { POST: embeddings },
};

async function handle(req, res) {
    const url = req.url.split("?")[0];
    if (url === "/healthz" || url === "/readyz") {
        const status = state.ready ? 200 : 503;
        res.writeHead(status, { "Content-Type": "text/plain", ...(state.ready ? {} : { "Retry-After": "1" }) });
        res.end(state.ready ? "ok\n" : state.failed ? `failed: ${state.failed}\n` : "loading\n");
        return;
    }
    if (url === "/v1/models" || url.startsWith("/v1/models/")) {
        if (req.method !== "GET")
            throw new ApiError(405, `${req.method} is not allowed on ${url}`, "invalid_request_error", null,
                               "method_not_allowed");
        if (url === "/v1/models")
            return sendJson(res, 200, { object: "list", data: [modelObject()] });
        const id = decodeURIComponent(url.slice("/v1/models/".length));
        if (id !== CFG.modelId)
            throw new ApiError(404, `The model '${id.slice(0, 200)}' does not exist`, "invalid_request_error",
                               "model", "model_not_found");
        return sendJson(res, 200, modelObject());
    }
    const route = ROUTES[url];
    if (!route)
        throw new ApiError(404, `no such path: ${req.method} ${url.slice(0, 200)}`, "invalid_request_error", null,
                           "not_found");
    const fn = route[req.method];
    if (!fn)
        throw new ApiError(405, `${req.method} is not allowed on ${url}; use POST`, "invalid_request_error", null,
                           "method_not_allowed");
    const body = await jsonBody(req);
    if (!state.ready)
        throw new ApiError(503, state.failed ? `the model failed to load: ${state.failed}` : "the model is loading",
                           "server_error", null, "model_not_ready");
    await fn(req, res, body);
}

function listen(server) {
    if (CFG.socket) {
        try {
            fs.unlinkSync(CFG.socket);
        } catch (e) {
            if (e.code !== "ENOENT")
                fatal(`${CFG.socket}: ${e.message}`);
        }
        server.listen(CFG.socket, () => process.stderr.write(`llm-local: serving on ${CFG.socket}\n`));
    } else {
        server.listen(CFG.port, "127.0.0.1", () =>
            process.stderr.write(`llm-local: serving on http://127.0.0.1:${server.address().port}\n`));
    }
}

function main() {
    const server = http.createServer((req, res) => {
        handle(req, res).catch((e) => {
            if (e instanceof ApiError && e.status === 499)
                return res.destroy();
            if (e instanceof ApiError && e.status === 413)
                res.setHeader("Connection", "close");
            sendError(res, e);
        });
    });
    server.keepAliveTimeout = 60000;
    server.headersTimeout = 30000;
    server.requestTimeout = 0;            // a long generation is not a slow client
    listen(server);
    loadModel().catch((e) => {
        state.failed = e.message;
        fatal(`cannot load the model: ${e.message}`);
    });
    for (const sig of ["SIGTERM", "SIGINT"])
        process.on(sig, () => {
            server.close();
            process.exit(0);
        });
}

main();
