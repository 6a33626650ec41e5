#!/usr/bin/env python3
"""Writes the small byte-level BPE tokenizer of tests/hf_test.cpp and its expected ids.

The merges are learnt here by plain BPE training (most frequent adjacent pair first) on a small
corpus; the expected ids come from OpenAI's own GPT-2 encoder (src/encoder.py of
github.com/openai/gpt-2, run as-is: its Encoder.bpe, encode and decode), not from dself.
The Llama-3 pattern case swaps only the encoder's regex (Encoder.pat) for Llama 3's.
Special tokens are split off here before the encoder sees the text (encoder.py has none).

Usage (needs the `regex` module, as encoder.py does):
  git -C <mirror of openai/gpt-2> show HEAD:src/encoder.py > /tmp/encoder.py
  python3 tests/data/hf/make_bpe.py /tmp/encoder.py tests/data/hf/bpe
"""
import collections
import importlib.util
import json
import os
import sys

import regex as re

encoder_path, out_dir = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("encoder", encoder_path)
encoder = importlib.util.module_from_spec(spec)
spec.loader.exec_module(encoder)

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

corpus = """The quick brown fox jumps over the lazy dog. The dog didn't care; it's the fox's day.
We'll see what they've done, and I'm sure you'd like it. THE END, they're saying.
Numbers: 2024, 3.14159, 1000000 and 42 are the answers. Café, naïve, façade, Zürich, São Paulo.
日本語のテキストと中文文本。 Emoji 🙂🙂 and tabs\tand  double  spaces.
the the the then there these those that this thin thing things thinking
Hello hello HELLO world worlds wonderful won't wouldn't
"""

byte_encoder = encoder.bytes_to_unicode()
words = collections.Counter()
for piece in re.findall(GPT2, corpus):
    words[tuple(byte_encoder[b] for b in piece.encode("utf-8"))] += 1

merges = []
for _ in range(300):
    pairs = collections.Counter()
    for w, n in words.items():
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += n
    if not pairs:
        break
    best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
    if pairs[best] < 1:
        break
    merges.append(best)
    new = collections.Counter()
    for w, n in words.items():
        out, i = [], 0
        while i < len(w):
            if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                out.append(w[i] + w[i + 1])
                i += 2
            else:
                out.append(w[i])
                i += 1
        new[tuple(out)] += n
    words = new

vocab = {}
for b in range(256):
    vocab[byte_encoder[b]] = len(vocab)
for a, b in merges:
    vocab.setdefault(a + b, len(vocab))
specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|notimestamps|>", "<|0.00|>", "<|0.02|>"]
added = {s: len(vocab) + i for i, s in enumerate(specials)}

os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump(vocab, f, ensure_ascii=False)
with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
with open(os.path.join(out_dir, "added_tokens.json"), "w", encoding="utf-8") as f:
    json.dump(added, f, ensure_ascii=False)
added_list = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": False, "special": True} for s, i in added.items()]
gpt2_json = {
    "version": "1.0", "added_tokens": added_list, "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
              "fuse_unk": False, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
}
os.makedirs(os.path.join(out_dir, "json"), exist_ok=True)
with open(os.path.join(out_dir, "json", "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(gpt2_json, f, ensure_ascii=False)
llama_json = dict(gpt2_json)
llama_json["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
llama_json["model"] = dict(gpt2_json["model"], merges=[[a, b] for a, b in merges])
os.makedirs(os.path.join(out_dir, "llama3"), exist_ok=True)
with open(os.path.join(out_dir, "llama3", "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(llama_json, f, ensure_ascii=False)

texts = [
    "", "Hello world", " Hello world", "  leading spaces", "trailing spaces   ", "the then there thinking things",
    "don't you'll I'M we've THEY'RE it's", "2024 3.14159 1000000 12", "Café naïve Zürich São façade",
    "日本語のテキスト 中文", "🙂 emoji🙂🙂", "tabs\tand\nnew\n\nlines  \n", "quick brown foxes!!! ...?",
    "<|endoftext|>Hello<|en|> world<|0.02|>", "unseen Ωmega ǅ x",
]


def encode(enc, text, allow_special):
    if not allow_special:
        return enc.encode(text)
    ids, pos = [], 0
    pattern = "(" + "|".join(re.escape(s) for s in sorted(added, key=len, reverse=True)) + ")"
    for part in re.split(pattern, text):
        ids += [added[part]] if part in added else enc.encode(part)
    return ids


cases = []
for name, pat in (("gpt2", GPT2), ("llama3", LLAMA3)):
    enc = encoder.Encoder(encoder=vocab, bpe_merges=merges)
    enc.pat = re.compile(pat)
    for text in texts:
        for allow in (False, True):
            if allow and "<|" not in text:
                continue
            cases.append({"pattern": name, "text": text, "allow_special": allow, "ids": encode(enc, text, allow)})
# Decoding: whole tokens and cut UTF-8 sequences (invalid bytes become U+FFFD as Python replaces them).
enc = encoder.Encoder(encoder=vocab, bpe_merges=merges)
decodes = []
for ids in ([vocab[byte_encoder[0xe6]]], [vocab[byte_encoder[0xe6]], vocab[byte_encoder[0x97]], vocab["a"]],
            enc.encode("日本語")[:1] + enc.encode("x"), [vocab[byte_encoder[0xff]], vocab[byte_encoder[0xc3]]],
            [vocab[byte_encoder[0xed]], vocab[byte_encoder[0xa0]], vocab[byte_encoder[0x80]]],
            [vocab[byte_encoder[0xf0]], vocab[byte_encoder[0x9f]], vocab[byte_encoder[0x99]]],
            enc.encode("Café 🙂 don't")):
    decodes.append({"ids": ids, "text": enc.decode(ids)})
with open(os.path.join(out_dir, "expected.json"), "w", encoding="utf-8") as f:
    json.dump({"n_merges": len(merges), "encode": cases, "decode": decodes}, f, ensure_ascii=False, indent=1)
print(f"{len(vocab)} tokens, {len(merges)} merges, {len(cases)} encode cases, {len(decodes)} decode cases")
