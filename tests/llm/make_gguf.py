#!/usr/bin/env python3
"""tests/llm/make_gguf.py: write a tiny llama-architecture GGUF model.

    python3 tests/llm/make_gguf.py OUT.gguf [--seed N] [--embd 64] [--layers 2]

The weights are random (seeded, so the same arguments give the same bytes)
and what the model says is gibberish, but the file is a complete llama
model as llama.cpp reads it: the hyperparameters, a SentencePiece-style
vocabulary ("llama" tokenizer: word pieces with scores, control tokens and
the 256 byte-fallback tokens), a ChatML chat template, and every tensor of
each block (attention, feed-forward, norms). So loading, tokenizing,
decoding and embedding run the real code paths, in a couple of seconds and
a file of well under a few MB. Python standard library only.

The GGUF layout (version 3): the magic, the version, the tensor and
key-value counts, the key-values, the tensor infos (name, dimensions with
the fastest-varying first, type, offset in the data section), padding to
general.alignment (32), and the tensor data, each tensor aligned.
"""
import argparse
import array
import os
import random
import struct
import sys

ALIGN = 32

# GGUF value types
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9
# ggml tensor type
GGML_F32 = 0
# llama.cpp token types
TOK_NORMAL, TOK_UNKNOWN, TOK_CONTROL, TOK_BYTE = 1, 2, 3, 6

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or "
         "one had by word but not what all were we when your can said there use an each which she do how "
         "their if will up other about out many then them these so some her would make like him into time "
         "has look two more write go see number no way could people my than first water been call who oil "
         "its now find long down day did get come made may part hello world model token fnbox box llama "
         "local answer question yes ok").split()


def vocabulary():
    """(tokens, scores, types): control tokens, bytes, then pieces."""
    toks = [("<unk>", TOK_UNKNOWN), ("<s>", TOK_CONTROL), ("</s>", TOK_CONTROL),
            ("<|im_start|>", TOK_CONTROL), ("<|im_end|>", TOK_CONTROL)]
    toks += [("<0x%02X>" % b, TOK_BYTE) for b in range(256)]
    pieces = ["\u2581"]
    pieces += [chr(c) for c in range(0x21, 0x7f)]                      # printable ASCII
    pieces += ["\u2581" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces += ["\u2581" + w for w in WORDS]
    pieces += ["user", "assistant", "system", "\u2581user", "\u2581assistant"]
    seen = set()
    for p in pieces:
        if p not in seen:
            seen.add(p)
            toks.append((p, TOK_NORMAL))
    # SentencePiece merges prefer higher scores: longer pieces score higher
    scores = [0.0 if t != TOK_NORMAL else -1000.0 + 10.0 * len(s) for s, t in toks]
    return [s for s, _ in toks], scores, [t for _, t in toks]


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []        # (name, dims, float array)

    @staticmethod
    def _str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def _value(self, vtype, value):
        if vtype == T_UINT32:
            return struct.pack("<I", value)
        if vtype == T_INT32:
            return struct.pack("<i", value)
        if vtype == T_FLOAT32:
            return struct.pack("<f", value)
        if vtype == T_BOOL:
            return struct.pack("<B", 1 if value else 0)
        if vtype == T_STRING:
            return self._str(value)
        if vtype == T_ARRAY:
            etype, items = value
            return struct.pack("<IQ", etype, len(items)) + b"".join(self._value(etype, v) for v in items)
        raise ValueError("type %d" % vtype)

    def tensor(self, name, dims, data):
        n = 1
        for d in dims:
            n *= d
        assert len(data) == n, name
        self.tensors.append((name, dims, data))

    def write(self, path):
        head = [b"GGUF", struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))]
        for key, vtype, value in self.kv:
            head.append(self._str(key) + struct.pack("<I", vtype) + self._value(vtype, value))
        offset = 0
        blobs = []
        for name, dims, data in self.tensors:
            head.append(self._str(name) + struct.pack("<I", len(dims)) +
                        b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", GGML_F32, offset))
            raw = data.tobytes() if sys.byteorder == "little" else _swapped(data)
            pad = (-len(raw)) % ALIGN
            blobs.append(raw + b"\0" * pad)
            offset += len(raw) + pad
        header = b"".join(head)
        header += b"\0" * ((-len(header)) % ALIGN)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(header)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)


def _swapped(data):
    a = array.array("f", data)
    a.byteswap()
    return a.tobytes()


def build(path, seed=1, n_embd=64, n_layers=2, n_head=4, n_head_kv=2, n_ff=128, n_ctx=2048):
    rnd = random.Random(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    head_dim = n_embd // n_head
    n_embd_kv = head_dim * n_head_kv

    w = Writer()
    w.add("general.architecture", T_STRING, "llama")
    w.add("general.name", T_STRING, "fnbox-tiny-random")
    w.add("general.alignment", T_UINT32, ALIGN)
    w.add("general.file_type", T_UINT32, 0)                  # all F32
    w.add("llama.context_length", T_UINT32, n_ctx)
    w.add("llama.embedding_length", T_UINT32, n_embd)
    w.add("llama.block_count", T_UINT32, n_layers)
    w.add("llama.feed_forward_length", T_UINT32, n_ff)
    w.add("llama.attention.head_count", T_UINT32, n_head)
    w.add("llama.attention.head_count_kv", T_UINT32, n_head_kv)
    w.add("llama.rope.dimension_count", T_UINT32, head_dim)
    w.add("llama.rope.freq_base", T_FLOAT32, 10000.0)
    w.add("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, 1e-5)
    w.add("llama.vocab_size", T_UINT32, n_vocab)
    w.add("tokenizer.ggml.model", T_STRING, "llama")
    w.add("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokens))
    w.add("tokenizer.ggml.scores", T_ARRAY, (T_FLOAT32, scores))
    w.add("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, types))
    w.add("tokenizer.ggml.unknown_token_id", T_UINT32, 0)
    w.add("tokenizer.ggml.bos_token_id", T_UINT32, 1)
    w.add("tokenizer.ggml.eos_token_id", T_UINT32, 4)        # <|im_end|> ends a turn
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", T_BOOL, False)
    w.add("tokenizer.chat_template", T_STRING, CHAT_TEMPLATE)

    def rand(n, std):
        return array.array("f", (rnd.gauss(0.0, std) for _ in range(n)))

    def ones(n):
        return array.array("f", [1.0]) * n

    std = 0.5 / (n_embd ** 0.5)
    w.tensor("token_embd.weight", (n_embd, n_vocab), rand(n_embd * n_vocab, 1.0))
    for i in range(n_layers):
        b = "blk.%d." % i
        w.tensor(b + "attn_norm.weight", (n_embd,), ones(n_embd))
        w.tensor(b + "attn_q.weight", (n_embd, n_embd), rand(n_embd * n_embd, std))
        w.tensor(b + "attn_k.weight", (n_embd, n_embd_kv), rand(n_embd * n_embd_kv, std))
        w.tensor(b + "attn_v.weight", (n_embd, n_embd_kv), rand(n_embd * n_embd_kv, std))
        w.tensor(b + "attn_output.weight", (n_embd, n_embd), rand(n_embd * n_embd, std))
        w.tensor(b + "ffn_norm.weight", (n_embd,), ones(n_embd))
        w.tensor(b + "ffn_gate.weight", (n_embd, n_ff), rand(n_embd * n_ff, std))
        w.tensor(b + "ffn_up.weight", (n_embd, n_ff), rand(n_embd * n_ff, std))
        w.tensor(b + "ffn_down.weight", (n_ff, n_embd), rand(n_ff * n_embd, std))
    w.tensor("output_norm.weight", (n_embd,), ones(n_embd))
    w.tensor("output.weight", (n_embd, n_vocab), rand(n_embd * n_vocab, 1.0))
    w.write(path)
    return {"path": path, "n_vocab": n_vocab, "n_embd": n_embd, "n_layers": n_layers, "n_ctx": n_ctx}


def main():
    ap = argparse.ArgumentParser(description="write a tiny random llama GGUF model")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=2048)
    a = ap.parse_args()
    if a.embd < 8 or a.embd % 4 or a.embd > 4096:
        ap.error("--embd: a multiple of 4 from 8 to 4096")
    if not 1 <= a.layers <= 64:
        ap.error("--layers: 1 to 64")
    info = build(a.out, a.seed, a.embd, a.layers, n_ctx=a.ctx)
    print("%s: llama, %d tokens, width %d, %d layers, %d bytes" %
          (a.out, info["n_vocab"], info["n_embd"], info["n_layers"], os.path.getsize(a.out)))


if __name__ == "__main__":
    main()
