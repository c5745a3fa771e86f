#!/usr/bin/env python3
"""fnbox skill search benchmark: the search figure of issue 6.

An index (controller/skills_search.c) of --docs generated skills (10,000),
spread over 10 namespaces, each with a realistic name ("parse-dates-iso"),
a one-paragraph description, code (python3, node or sh, 0.3 to 3 KiB, with
identifiers in snake_case and camelCase) and a 384-dim embedding; then
--queries varied queries (1,000): each about one generated skill, worded
with other synonyms than its description where there are some, a fifth of
them filtered to the skill's namespace. Each query runs lexical only and
hybrid (with the query's embedding), limit 5, one at a time, timed around
skill_index_search alone by the C driver (tests/bench/skills_load.c, built
here with cc; the embeddings are a hashing stand-in for a model, computed
before the clock starts, see there). Figures:

  latency   median, p99 and max per query, lexical and hybrid. Goal: median
            under 20 ms over 10,000 skills (both modes must meet it).
  quality   how often the best hit is relevant (the same action and object
            as the skill the query was made from; several skills share
            them), lexical and hybrid: a sanity figure, no goal.
  build     the time to put every skill (what a controller spends
            rebuilding its index from the store).

The generated library is deterministic (--seed). Prints one summary line
at the end; exits 1 only when something could not be measured. Needs cc.
Python 3 standard library only.

usage: skills_bench.py [--build DIR] [--docs N] [--queries N] [--seed N] [--json PATH]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DRIVER_SRCS = [os.path.join(HERE, "skills_load.c"), os.path.join(ROOT, "controller", "skills_search.c")]
DRIVER_DEPS = DRIVER_SRCS + [os.path.join(ROOT, "controller", "skills_search.h")]
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=format=2", "-Werror=missing-prototypes",
          "-Werror=shadow", "-Werror=strict-prototypes", "-I", ROOT]
GOAL_MEDIAN_MS = 20.0
DIM = 384
LIMIT = 5
NAMESPACES = ["team-%d" % i for i in range(10)]

# Concepts, each a list of surface words (the first is the canonical one,
# what the embedding stand-in sees): actions, objects, qualifiers.
ACTIONS = [
    ["convert", "transform", "translate", "turn"], ["parse", "read", "decode", "interpret"],
    ["validate", "check", "verify", "lint"], ["count", "tally", "measure"], ["sort", "order", "rank", "arrange"],
    ["filter", "select", "keep", "drop"], ["merge", "join", "combine", "concatenate"],
    ["split", "chunk", "partition", "break"], ["compress", "shrink", "pack", "zip"],
    ["hash", "digest", "fingerprint", "checksum"], ["fetch", "download", "retrieve", "get"],
    ["summarize", "condense", "abstract", "shorten"], ["extract", "pull", "scrape", "harvest"],
    ["format", "prettify", "render", "pretty-print"], ["normalize", "clean", "sanitize", "tidy"],
    ["detect", "identify", "recognize", "spot"], ["generate", "create", "produce", "make"],
    ["resize", "scale", "rescale", "shrink"], ["encrypt", "encipher", "seal", "protect"],
    ["deduplicate", "dedupe", "uniq", "unique"], ["compare", "diff", "contrast", "match"],
    ["aggregate", "group", "bucket", "rollup"], ["redact", "mask", "anonymize", "scrub"],
    ["translate", "localize", "internationalize", "render"], ["classify", "categorize", "label", "tag"],
]
OBJECTS = [
    ["csv", "comma-separated", "spreadsheet"], ["json", "javascript-object-notation"], ["xml", "markup"],
    ["yaml", "yml"], ["log", "logfile", "journal"], ["date", "datetime", "timestamp"], ["email", "mail"],
    ["url", "link", "address"], ["image", "picture", "photo", "png"], ["pdf", "document"],
    ["text", "prose", "paragraph"], ["word", "token", "term"], ["number", "integer", "figure"],
    ["price", "amount", "cost"], ["phone", "telephone", "mobile"], ["ip", "ipv4", "network-address"],
    ["markdown", "md"], ["html", "webpage", "page"], ["sql", "query", "statement"],
    ["matrix", "table", "grid"], ["temperature", "celsius", "fahrenheit"], ["currency", "money", "exchange-rate"],
    ["invoice", "bill", "receipt"], ["address", "postal-address", "location"], ["name", "person", "contact"],
    ["password", "secret", "credential"], ["uuid", "identifier", "guid"], ["color", "colour", "rgb"],
    ["audio", "sound", "wav"], ["archive", "tarball", "tar"], ["header", "http-header", "field"],
    ["cookie", "session", "token"], ["sentence", "line", "phrase"], ["duration", "interval", "timespan"],
    ["coordinate", "latitude", "gps"], ["isbn", "book-number"], ["vat", "tax-number"],
    ["cron", "schedule", "crontab"], ["semver", "version-number"], ["sitemap", "site-index"],
]
QUALIFIERS = [
    ["iso", "iso-8601", "standard"], ["utc", "universal-time"], ["frequency", "occurrence"],
    ["stdin", "standard-input"], ["batch", "bulk"], ["streaming", "incremental"], ["german", "deutsch"],
    ["french", "francais"], ["unicode", "utf8"], ["fast", "quick"], ["strict", "rigorous"],
    ["lenient", "tolerant"], ["nested", "hierarchical"], ["flat", "flattened"], ["sorted", "ordered"],
    ["lowercase", "lower-case"], ["gzip", "gzipped"], ["base64", "b64"], ["sha256", "sha-256"],
    ["monthly", "per-month"], ["daily", "per-day"], ["europe", "eu"], ["us", "american"],
]
FILLER = ["the", "input", "output", "given", "each", "every", "result", "values", "data", "records", "file",
          "returns", "one", "per", "with", "and", "into", "from", "as", "a", "of", "to", "when", "empty"]
RUNTIMES = ["python3", "node", "sh"]


def pick(rng, concept):
    return rng.choice(concept)


def snake(words):
    return "_".join(w.replace("-", "_") for w in words)


def camel(words):
    parts = [p for w in words for p in w.split("-")]
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def make_code(rng, runtime, act, obj, qual):
    """Code of 0.3 to 3 KiB using identifiers made of the skill's words."""
    a, o, q = act[0], obj[0], qual[0]
    helpers = [[pick(rng, act), pick(rng, obj)], [o, "items"], [q, "mode"], ["read", o], ["write", "result"],
               [a, q], ["parse", "args"], [o, "count"], ["max", o, "size"], ["default", q]]
    lines = []
    n = rng.randint(2, 14)
    if runtime == "python3":
        lines += ["import sys", "import json", "import re"]
        for i in range(n):
            h = rng.choice(helpers)
            lines += ["", "def %s(%s, limit=%d):" % (snake(h + [str(i)]), snake([o, "value"]), rng.randint(1, 999)),
                      "    %s = %s.strip()" % (snake([o, "text"]), snake([o, "value"])),
                      "    if not %s:" % snake([o, "text"]), "        return None",
                      "    return %s[:limit]  # %s the %s" % (snake([o, "text"]), a, o)]
        lines += ["", "def main():", "    data = sys.stdin.read()",
                  "    print(json.dumps(%s(data)))" % snake([a, o, "0"]), "", "main()"]
    elif runtime == "node":
        lines += ["const fs = require('fs');"]
        for i in range(n):
            h = rng.choice(helpers)
            lines += ["", "function %s(%s) {" % (camel(h) + str(i), camel([o, "input"])),
                      "  const %s = %s.trim();" % (camel([q, o]), camel([o, "input"])),
                      "  if (%s.length === 0) return null;" % camel([q, o]),
                      "  return %s.slice(0, %d); // %s the %s" % (camel([q, o]), rng.randint(1, 999), a, o), "}"]
        lines += ["", "const input = fs.readFileSync(0, 'utf8');",
                  "process.stdout.write(JSON.stringify(%s0(input)));" % camel([a, o])]
    else:
        lines += ["#!/bin/sh", "set -eu"]
        for i in range(n):
            h = rng.choice(helpers)
            lines += ["%s() {" % snake(h + [str(i)]), "  %s=\"$1\"" % snake([o, "arg"]),
                      "  printf '%%s\\n' \"$%s\" | tr -s ' '  # %s the %s" % (snake([o, "arg"]), a, o), "}"]
        lines += ["%s \"$(cat)\"" % snake([a, o, "0"])]
    return "\n".join(lines) + "\n"


def make_description(rng, act, obj, qual):
    a, o, q = pick(rng, act), pick(rng, obj), pick(rng, qual)
    first = rng.choice([
        "%s %s %s with %s handling." % (a.capitalize(), rng.choice(["a", "the", "each"]), o, q),
        "%s %s values, %s." % (a.capitalize(), o, q),
        "Takes %s on stdin and will %s it (%s)." % (o, a, q),
        "%s every %s in the input using %s rules." % (a.capitalize(), o, q),
    ])
    extra = " ".join(rng.choice(FILLER) for _ in range(rng.randint(8, 30)))
    return "%s Reads %s from stdin and writes the result to stdout; %s." % (first, o, extra)


def generate(n_docs, n_queries, seed):
    """(docs, queries): docs are dicts; queries (ns or None, text, embedding text, target index)."""
    rng = random.Random(seed)
    docs, names = [], set()
    while len(docs) < n_docs:
        ai, oi, qi = rng.randrange(len(ACTIONS)), rng.randrange(len(OBJECTS)), rng.randrange(len(QUALIFIERS))
        act, obj, qual = ACTIONS[ai], OBJECTS[oi], QUALIFIERS[qi]
        parts = [act[0], obj[0]] + ([qual[0]] if rng.random() < 0.6 else [])
        base = "-".join(parts)
        name, k = base, 2
        while name in names or len(name) > 40:
            name = "%s-%d" % (base, k)
            k += 1
        names.add(name)
        runtime = rng.choice(RUNTIMES)
        docs.append({"ns": rng.choice(NAMESPACES), "name": name, "runtime": runtime,
                     "description": make_description(rng, act, obj, qual),
                     "code": make_code(rng, runtime, act, obj, qual),
                     "emb": "%s %s %s" % (act[0], obj[0], qual[0]), "concepts": (ai, oi)})
    queries = []
    for _ in range(n_queries):
        t = rng.randrange(len(docs))
        d = docs[t]
        ai, oi = d["concepts"]
        act, obj = ACTIONS[ai], OBJECTS[oi]
        # other words than the canonical ones where there are some
        a = rng.choice(act[1:] if len(act) > 1 and rng.random() < 0.5 else act)
        o = rng.choice(obj[1:] if len(obj) > 1 and rng.random() < 0.5 else obj)
        text = rng.choice(["%s %s", "how do I %s a %s", "%s %s files", "something to %s %s quickly",
                           "%s the %s from the input"]) % (a, o)
        ns = d["ns"] if rng.random() < 0.2 else None
        queries.append((ns, text, "%s %s" % (act[0], obj[0]), t))
    return docs, queries


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def build_driver(build):
    """BUILD/bench/skills_load, compiled when missing or older than its sources."""
    out = os.path.join(build, "bench", "skills_load")
    if not os.path.exists(out) or any(os.path.getmtime(out) < os.path.getmtime(s) for s in DRIVER_DEPS):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.run(["cc"] + CFLAGS + ["-o", out] + DRIVER_SRCS + ["-lm"], check=True)
    return out


def pct(values, q):
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(us):
    ms = [x / 1000 for x in us]
    return {"n": len(ms), "min": min(ms), "p50": statistics.median(ms), "p99": pct(ms, 0.99), "max": max(ms)}


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    driver = build_driver(args.build)
    docs, queries = generate(args.docs, args.queries, args.seed)
    by_name = {d["name"]: d for d in docs}
    with tempfile.TemporaryDirectory(prefix="skills-bench-") as tmp:
        dpath, qpath = os.path.join(tmp, "docs.tsv"), os.path.join(tmp, "queries.tsv")
        with open(dpath, "w") as f:
            for d in docs:
                f.write("\t".join(esc(d[k]) for k in ("ns", "name", "runtime", "description", "code", "emb")) + "\n")
        with open(qpath, "w") as f:
            for ns, text, emb, _ in queries:
                f.write("\t".join(esc(x) for x in (ns or "-", text, emb)) + "\n")
        before = loadavg()
        p = subprocess.run([driver, "--docs", dpath, "--queries", qpath, "--dim", str(DIM), "--limit", str(LIMIT)],
                           stdout=subprocess.PIPE, check=False)
        after = loadavg()
    if p.returncode != 0:
        sys.stderr.write("skills_bench: the driver failed (exit %d)\n" % p.returncode)
        return 1
    r = json.loads(p.stdout)

    def relevant(top, target):
        d = by_name.get(top)
        return d is not None and d["concepts"] == docs[target]["concepts"]

    lex, hyb = summary(r["lexical_us"]), summary(r["hybrid_us"])
    quality = {k: sum(relevant(t, q[3]) for t, q in zip(r[k + "_top"], queries)) / len(queries)
               for k in ("lexical", "hybrid")}
    code_kib = sum(len(d["code"]) for d in docs) / len(docs) / 1024
    print()
    print("skill search: %d skills in %d namespaces (code %.1f KiB each on average, %d-dim embeddings), "
          "%d queries, limit %d" % (r["indexed"], len(NAMESPACES), code_kib, DIM, len(queries), LIMIT))
    print("  %-28s %5s %9s %9s %9s %9s   %s" % ("ms per query", "n", "min", "p50", "p99", "max", "best hit relevant"))
    for label, s, k in (("lexical only", lex, "lexical"), ("hybrid (lexical + cosine)", hyb, "hybrid")):
        print("  %-28s %5d %9.3f %9.3f %9.3f %9.3f   %.0f%%" % (label, s["n"], s["min"], s["p50"], s["p99"], s["max"],
                                                              100 * quality[k]))
    print("  index build: %.0f ms for %d puts (%.1f us each); hybrid searches with a semantic part: %d/%d"
          % (r["build_ms"], r["indexed"], 1000 * r["build_ms"] / max(1, r["indexed"]), r["hybrid_semantic"],
             len(queries)))
    print("  load average before %s, after %s" % (before, after))
    ok = lex["p50"] < GOAL_MEDIAN_MS and hyb["p50"] < GOAL_MEDIAN_MS
    print("skill search over %d skills: median %.3f ms lexical, %.3f ms hybrid (p99 %.3f / %.3f ms); "
          "goal median < %.0f ms: goal %s" % (r["indexed"], lex["p50"], hyb["p50"], lex["p99"], hyb["p99"],
                                              GOAL_MEDIAN_MS, "met" if ok else "NOT met"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"skills": r["indexed"], "queries": len(queries), "dim": DIM, "limit": LIMIT,
                       "lexical": lex, "hybrid": hyb, "quality": quality, "build_ms": r["build_ms"],
                       "goal_median_ms": GOAL_MEDIAN_MS, "goal_met": ok,
                       "loadavg": {"before": before, "after": after}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
