// fnbox.js: a box's way out, in node (docs/boxes.md). The broker is an
// HTTP/1.1 server on the unix socket named by FNBOX_BROKER; it serves
// /fn/NAME and /skills/NAME[@VERSION] (functions and skills of the box's
// own namespace) and /v1/... (the LLM gateway). Built-in modules only.
//
//   const fnbox = require("/run/fnbox/fnbox.js");
//   const text = (await fnbox.call("shout", "hello")).toString();
//   const total = await fnbox.call("skill:csv-sum@2", csv);  // or fnbox.skill("csv-sum", csv)
//   const reply = await fnbox.chat("local", [{ role: "user", content: "hi" }]);
"use strict";
const http = require("http");

const BROKER = process.env.FNBOX_BROKER || "/run/fnbox/broker.sock";

class BrokerError extends Error {
  constructor(status, body) {
    let msg = body.toString("utf8", 0, 300), code = null;
    try {
      const e = JSON.parse(body).error;
      if (e && typeof e === "object") { msg = e.message || msg; code = e.code || null; }
    } catch (_) { /* not JSON */ }
    super(`HTTP ${status}: ${msg}`);
    this.status = status; this.body = body; this.code = code;
  }
}

// One call: {status, headers, body (a Buffer)}.
function request(method, path, body, headers, timeoutMs) {
  const h = Object.assign({}, headers || {});
  const data = body === undefined || body === null ? null : Buffer.from(body);
  if (data) h["Content-Length"] = data.length;
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: BROKER, method, path, headers: h, timeout: timeoutMs }, (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(data || undefined);
  });
}

// The broker's path for NAME (/fn/NAME), skill:NAME[@V] (/skills/NAME[@V])
// or a /path (as it is).
function target(name) {
  if (name.startsWith("/")) return name;
  if (name.startsWith("skill:")) return "/skills/" + name.slice(6).replace(/^\/+/, "");
  return "/fn/" + name;
}

// Call the function NAME (or NAME/sub/path), or the skill
// skill:NAME[@VERSION], of this box's namespace: the answer's body, or a
// BrokerError.
async function call(name, body = "", opts = {}) {
  const r = await request(opts.method || "POST", target(name.replace(/^\/+/, "")), body, opts.headers, opts.timeoutMs);
  if (r.status < 200 || r.status >= 300) throw new BrokerError(r.status, r.body);
  return r.body;
}

// Call the skill NAME: its newest promoted version, or opts.version.
async function skill(name, body = "", opts = {}) {
  const v = opts.version === undefined || opts.version === null ? "" : "@" + parseInt(opts.version, 10);
  return call("skill:" + name + v, body, opts);
}

// POST a JSON payload to the gateway's /v1/PATH: the decoded answer.
async function openai(path, payload, opts = {}) {
  const r = await request("POST", "/v1/" + path.replace(/^\/+/, ""), JSON.stringify(payload),
    { "Content-Type": "application/json" }, opts.timeoutMs);
  if (r.status < 200 || r.status >= 300) throw new BrokerError(r.status, r.body);
  return JSON.parse(r.body);
}

async function chat(model, messages, extra = {}) {
  const a = await openai("chat/completions", Object.assign({ model, messages }, extra));
  return a.choices[0].message.content;
}

module.exports = { BROKER, BrokerError, request, target, call, skill, openai, chat };
