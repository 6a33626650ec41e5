#!/usr/bin/env python3
"""Small random Llama-family checkpoints and the logits of one forward pass, computed
independently of dself's C++ (PyTorch tensor ops written here from the published formulas), for
test_llm. Run with Debian's python3-torch: `python3 tests/data/llm/make_expected.py`; it rewrites
tests/data/llm/<name>/{config.json,model.safetensors,expected.json}. The tests never run it.

Formulas (one decoder layer: x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))):
- RMSNorm (Zhang & Sennrich 2019): w * x / sqrt(mean(x^2) + eps).
- RoPE (Su et al. 2021) in the Hugging Face layout: inv_freq_i = theta^(-2i/d), angle = pos *
  inv_freq, cos/sin of [angle, angle], rotate_half(x) = [-x2, x1] over the two halves of a head.
- llama3 RoPE scaling (the Llama 3.1 release, transformers' _compute_llama3_parameters):
  wavelen = 2 pi / inv_freq; > original/low_freq_factor: inv_freq / factor; < original /
  high_freq_factor: unchanged; between: (1 - s) inv_freq / factor + s inv_freq with
  s = (original / wavelen - low) / (high - low).
- Grouped-query attention (Ainslie et al. 2023): query head h uses key/value head h // (H / KV);
  softmax(q k^T / sqrt(d) + causal mask) v.
- SwiGLU MLP (Shazeer 2020): down(silu(gate(x)) * up(x)).
- Qwen2: q/k/v projections have biases, o_proj none.
"""
import json
import math
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIGS = {
    # SmolLM-like: tied embeddings, grouped-query attention, plain RoPE.
    "llama_tied_gqa": dict(model_type="llama", hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                           rope_scaling=None, max_position_embeddings=64, vocab_size=64, tie_word_embeddings=True,
                           hidden_act="silu", bos_token_id=1, eos_token_id=2, dtype="F32"),
    # Llama 3.2-like: untied, every head its own keys (no GQA), llama3 RoPE scaling, large theta.
    "llama3_untied_mha": dict(model_type="llama", hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=500000.0,
                              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                              max_position_embeddings=64, vocab_size=64, tie_word_embeddings=False,
                              hidden_act="silu", bos_token_id=1, eos_token_id=[2, 3], dtype="F32"),
    # Qwen2-like: q/k/v biases, GQA, theta 1e6, weights stored as bf16.
    "qwen2_bias_bf16": dict(model_type="qwen2", hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=1000000.0,
                            rope_scaling=None, max_position_embeddings=64, vocab_size=64, tie_word_embeddings=False,
                            hidden_act="silu", bos_token_id=1, eos_token_id=2, dtype="BF16"),
}

TOKENS = [1, 17, 42, 5, 63, 8, 8, 30, 2, 11]


def random_weights(cfg, gen):
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = h // nh
    bias = cfg["model_type"] == "qwen2"

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=gen) * scale

    w = {"model.embed_tokens.weight": r(cfg["vocab_size"], h, scale=1.0)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + r(h, scale=0.1)
        w[p + "post_attention_layernorm.weight"] = 1 + r(h, scale=0.1)
        w[p + "self_attn.q_proj.weight"] = r(nh * d, h)
        w[p + "self_attn.k_proj.weight"] = r(nkv * d, h)
        w[p + "self_attn.v_proj.weight"] = r(nkv * d, h)
        w[p + "self_attn.o_proj.weight"] = r(h, nh * d)
        if bias:
            w[p + "self_attn.q_proj.bias"] = r(nh * d)
            w[p + "self_attn.k_proj.bias"] = r(nkv * d)
            w[p + "self_attn.v_proj.bias"] = r(nkv * d)
        w[p + "mlp.gate_proj.weight"] = r(inter, h)
        w[p + "mlp.up_proj.weight"] = r(inter, h)
        w[p + "mlp.down_proj.weight"] = r(h, inter)
    w["model.norm.weight"] = 1 + r(h, scale=0.1)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = r(cfg["vocab_size"], h)
    if cfg["dtype"] == "BF16":  # what the file holds is what the model computes with
        w = {k: v.to(torch.bfloat16).to(torch.float32) for k, v in w.items()}
    return w


def write_safetensors(path, tensors, dtype):
    # The format (github.com/huggingface/safetensors README): u64 header length, JSON header
    # {name: {dtype, shape, data_offsets}}, raw little-endian bytes.
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if dtype == "BF16":
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        else:
            raw = t.to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def inverse_frequencies(cfg, d):
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    s = cfg["rope_scaling"]
    if s:
        old = s["original_max_position_embeddings"]
        lo, hi, factor = s["low_freq_factor"], s["high_freq_factor"], s["factor"]
        out = []
        for f in inv.tolist():
            wavelen = 2 * math.pi / f
            if wavelen < old / hi:
                out.append(f)
            elif wavelen > old / lo:
                out.append(f / factor)
            else:
                sm = (old / wavelen - lo) / (hi - lo)
                out.append((1 - sm) * f / factor + sm * f)
        inv = torch.tensor(out, dtype=torch.float64)
    return inv.to(torch.float32)


def forward(cfg, w, tokens):
    h, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d, eps, n = h // nh, cfg["rms_norm_eps"], len(tokens)

    def norm(x, weight):
        return weight * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))

    def rope(x, cos, sin):  # x [heads, n, d]
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def lin(x, name):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    ang = torch.arange(n, dtype=torch.float32)[:, None] * inverse_frequencies(cfg, d)[None, :]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    causal = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = norm(x, w[p + "input_layernorm.weight"])
        q = lin(a, p + "self_attn.q_proj").view(n, nh, d).transpose(0, 1)
        k = lin(a, p + "self_attn.k_proj").view(n, nkv, d).transpose(0, 1)
        v = lin(a, p + "self_attn.v_proj").view(n, nkv, d).transpose(0, 1)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        heads = []
        for hh in range(nh):
            kv = hh // (nh // nkv)
            s = q[hh] @ k[kv].T / math.sqrt(d)
            s = s.masked_fill(causal, float("-inf"))
            heads.append(torch.softmax(s, -1) @ v[kv])
        x = x + lin(torch.cat(heads, -1), p + "self_attn.o_proj")
        m = norm(x, w[p + "post_attention_layernorm.weight"])
        g = lin(m, p + "mlp.gate_proj")
        x = x + lin(g * torch.sigmoid(g) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = norm(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def main():
    for seed, (name, cfg) in enumerate(CONFIGS.items()):
        gen = torch.Generator().manual_seed(1000 + seed)
        w = random_weights(cfg, gen)
        out = os.path.join(HERE, name)
        os.makedirs(out, exist_ok=True)
        config = {k: v for k, v in cfg.items() if k != "dtype"}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(out, "model.safetensors"), w, cfg["dtype"])
        with torch.no_grad():
            logits = forward(cfg, w, TOKENS).to(torch.float64)
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump({"tokens": TOKENS, "logits": [[round(v, 6) for v in row] for row in logits.tolist()]}, f)
            f.write("\n")
        print(name, "logits", tuple(logits.shape), "max |logit|", float(logits.abs().max()))


if __name__ == "__main__":
    main()
