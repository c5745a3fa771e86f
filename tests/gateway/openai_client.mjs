// tests/gateway/openai_client.mjs: the official `openai` npm client
// (tests/gateway/node_modules, installed by tests/deps.sh), unchanged,
// against fnbox's LLM gateway. tests/gateway/run.py (test openai_client)
// scripts the upstreams, runs one phase, and checks what this prints.
//
//   node openai_client.mjs PHASE        with GW_BASE_URL (http://HOST:PORT/v1)
//                                       and GW_TOKEN (an fnbox token) set
//
// Phases:
//   basic     chat whole, chat streamed (for await, include_usage),
//             completions, embeddings (the client's default base64 and
//             floats), models.list, models.retrieve
//   errors    unknown model, bad max_tokens, no key, a foreign key, personal
//             data for a cloud-only alias, a body over the limit, a quota
//   midstream a stream the upstream cuts after two chunks
//   cooldown  two upstream failures, 429 while cooling down, then the
//             client's own retry after Retry-After
//
// Prints one JSON object on stdout; exits 1 with a message on stderr when
// the client did something this script did not expect (an exception where
// an answer was due, an error of a class outside the client's hierarchy).
import OpenAI from "openai";
import { VERSION } from "openai/version";

const base = process.env.GW_BASE_URL;
const token = process.env.GW_TOKEN;
if (!base || !token) {
    console.error("openai_client.mjs: set GW_BASE_URL and GW_TOKEN");
    process.exit(2);
}

function client(opts = {}) {
    return new OpenAI({ baseURL: base, apiKey: token, maxRetries: 0, timeout: 30000, ...opts });
}

// An error of the client as plain data: which class, and what it read.
function describe(e) {
    if (!(e instanceof OpenAI.APIError))
        throw e;
    return {
        class: e.constructor.name,
        isAPIError: e instanceof OpenAI.APIError,
        status: e.status ?? null,
        code: e.code ?? null,
        type: e.type ?? null,
        param: e.param ?? null,
        message: e.message,
        requestID: e.requestID ?? null,
        retryAfter: e.headers?.get("retry-after") ?? null,
    };
}

// The error a call ends with; a call that answers is a failure of this script.
async function failure(what, fn) {
    try {
        const r = await fn();
        return { class: null, unexpected: `${what} answered instead of failing`, answer: r };
    } catch (e) {
        return describe(e);
    }
}

const msg = (text) => [{ role: "user", content: text }];

async function basic() {
    const c = client();
    const out = {};

    const { data: chat, response, request_id } = await c.chat.completions
        .create({ model: "solo", messages: msg("hello from the openai client"), max_tokens: 20 })
        .withResponse();
    out.chat = {
        content: chat.choices[0].message.content, role: chat.choices[0].message.role,
        finish: chat.choices[0].finish_reason, object: chat.object, usage: chat.usage, id: chat.id,
        requestID: request_id, chatRequestID: chat._request_id ?? null,
        upstream: response.headers.get("x-fnbox-upstream"),
    };

    const stream = await c.chat.completions.create({
        model: "solo", messages: msg("one two three four"), stream: true,
        stream_options: { include_usage: true },
    });
    const chunks = [];
    let text = "", usage = null, withUsage = 0;
    for await (const chunk of stream) {
        chunks.push({ object: chunk.object, nChoices: chunk.choices.length, hasUsage: !!chunk.usage });
        for (const ch of chunk.choices)
            text += ch.delta?.content ?? "";
        if (chunk.usage) {
            usage = chunk.usage;
            withUsage++;
        }
    }
    out.stream = { text, usage, chunks, withUsage };

    // the same stream without include_usage: no usage chunk
    let sawUsage = false;
    for await (const chunk of await c.chat.completions.create({ model: "solo", messages: msg("a b"), stream: true }))
        sawUsage ||= !!chunk.usage;
    out.streamNoUsage = { sawUsage };

    const cmpl = await c.completions.create({ model: "gpt-b", prompt: "say this", max_tokens: 5 });
    out.completion = { text: cmpl.choices[0].text, object: cmpl.object, usage: cmpl.usage };

    const emb = await c.embeddings.create({ model: "gpt-a", input: ["abc", "defgh"] });
    out.embeddings = {
        object: emb.object, usage: emb.usage,
        data: emb.data.map((d) => ({ index: d.index, object: d.object, embedding: Array.from(d.embedding) })),
    };
    const embf = await c.embeddings.create({ model: "gpt-a", input: "abc", encoding_format: "float" });
    out.embeddingsFloat = { embedding: embf.data[0].embedding };

    const ids = [];
    for await (const m of c.models.list())
        ids.push({ id: m.id, object: m.object, owned_by: m.owned_by });
    out.models = ids;
    const one = await c.models.retrieve("gpt-a");
    out.model = { id: one.id, object: one.object, owned_by: one.owned_by };
    return out;
}

async function errors() {
    const c = client();
    const out = {};
    out.unknownModel = await failure("an unknown model", () =>
        c.chat.completions.create({ model: "no-such-model", messages: msg("hi") }));
    out.unknownModelRetrieve = await failure("models.retrieve of an unknown model", () =>
        c.models.retrieve("no-such-model"));
    out.badMaxTokens = await failure("max_tokens -1", () =>
        c.chat.completions.create({ model: "solo", messages: msg("hi"), max_tokens: -1 }));
    out.noKey = await failure("no API key", () =>
        client({ apiKey: "unused", defaultHeaders: { Authorization: null } })
            .chat.completions.create({ model: "solo", messages: msg("hi") }));
    out.foreignKey = await failure("a foreign API key", () =>
        client({ apiKey: "sk-not-an-fnbox-token" }).chat.completions.create({ model: "solo", messages: msg("hi") }));
    out.dataPolicy = await failure("personal data for a cloud-only alias", () =>
        c.chat.completions.create({ model: "solo", messages: msg("mail jane.doe@example.com the results") }));
    out.dataPolicyStream = await failure("personal data, streamed", () =>
        c.chat.completions.create({ model: "solo", messages: msg("card 4111 1111 1111 1111"), stream: true }));
    out.tooLarge = await failure("a body over limits.max_body", () =>
        c.chat.completions.create({ model: "solo", messages: msg("x".repeat(70 << 10)) }));
    // team-q allows 2 requests a minute: within 3 calls one is refused
    const q = client({ defaultHeaders: { "X-Fnbox-Namespace": "team-q" } });
    out.quota = { answered: 0 };
    for (let i = 0; i < 3; i++) {
        try {
            await q.chat.completions.create({ model: "solo", messages: msg(`quota ${i}`) });
            out.quota.answered++;
        } catch (e) {
            out.quota.error = describe(e);
            break;
        }
    }
    return out;
}

async function midstream() {
    const c = client();
    const stream = await c.chat.completions.create({ model: "solo", messages: msg("break"), stream: true });
    const words = [];
    try {
        for await (const chunk of stream)
            for (const ch of chunk.choices)
                words.push(ch.delta?.content ?? "");
        return { words, error: null };
    } catch (e) {
        return { words, error: describe(e) };
    }
}

async function cooldown() {
    const c = client();
    const out = { failures: [] };
    for (let i = 0; i < 2; i++)
        out.failures.push(await failure(`upstream failure ${i}`, () =>
            c.chat.completions.create({ model: "cool", messages: msg(`fail ${i}`) })));
    out.cooling = await failure("a call while cooling down", () =>
        c.chat.completions.create({ model: "cool", messages: msg("cooling") }));
    // the client's own retry: it waits what Retry-After says, then succeeds
    const t0 = Date.now();
    const r = await client({ maxRetries: 3 }).chat.completions.create({ model: "cool", messages: msg("after the wait") });
    out.retried = { content: r.choices[0].message.content, ms: Date.now() - t0 };
    return out;
}

const phases = { basic, errors, midstream, cooldown };
const phase = phases[process.argv[2]];
if (!phase) {
    console.error(`openai_client.mjs: no phase ${process.argv[2]} (${Object.keys(phases).join(", ")})`);
    process.exit(2);
}
try {
    const out = await phase();
    out.clientVersion = VERSION;
    process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
    console.error(`openai_client.mjs ${process.argv[2]}: ${e?.constructor?.name}: ${e?.message}\n${e?.stack ?? ""}`);
    process.exit(1);
}
