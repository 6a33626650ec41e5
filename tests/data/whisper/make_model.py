#!/usr/bin/env python3
"""Small random Whisper checkpoints in the Hugging Face layout, and the logits of one forward pass
computed by OpenAI's own whisper/model.py (github.com/openai/whisper, run as-is on the same
weights, names mapped from Hugging Face's), not by dself.

Three configurations: "tiny" (tiny's shape: 4 + 4 layers, 6 heads, 80 mels; narrow, stored F16),
"multilingual" (2 + 2 layers, F32), "mels128" (128 mels, 1 + 2 layers, BF16). The mel input is a
formula (mel_input below; dself's test computes the same), the tokens are fixed.

Usage (python3-torch; model.py's sibling modules decoding/transcribe are stubbed, not used):
  git -C <mirror of openai/whisper> show HEAD:whisper/model.py > /tmp/whisper_model.py
  python3 tests/data/whisper/make_model.py /tmp/whisper_model.py tests/data/whisper
"""
import importlib.util
import json
import os
import struct
import sys
import types

import numpy as np
import torch

model_path, out_dir = sys.argv[1], sys.argv[2]
package = types.ModuleType("whisper")
package.__path__ = []
sys.modules["whisper"] = package
for name, attrs in (("decoding", ("decode", "detect_language")), ("transcribe", ("transcribe",))):
    stub = types.ModuleType(f"whisper.{name}")
    for a in attrs:
        setattr(stub, a, None)
    sys.modules[f"whisper.{name}"] = stub
spec = importlib.util.spec_from_file_location("whisper.model", model_path)
wm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wm)

CONFIGS = [
    dict(name="tiny", n_mels=80, d=24, heads=6, enc=4, dec=4, vocab=128, src=16, tgt=16, dtype="F16", seed=1),
    dict(name="multilingual", n_mels=80, d=16, heads=4, enc=2, dec=2, vocab=140, src=12, tgt=12, dtype="F32", seed=2),
    dict(name="mels128", n_mels=128, d=16, heads=2, enc=1, dec=2, vocab=100, src=10, tgt=10, dtype="BF16", seed=3),
]
TOKENS = [3, 50, 7, 99, 12]


def mel_input(n_mels, n_frames):
    # dself's test writes the same: in double, then float32.
    c = np.arange(n_mels, dtype=np.float64)[:, None]
    t = np.arange(n_frames, dtype=np.float64)[None, :]
    return (0.8 * np.sin(0.1 * c + 0.37 * t) + 0.2 * np.cos(0.05 * c * t)).astype(np.float32)


def hf_weights(cfg):
    g = torch.Generator().manual_seed(cfg["seed"])
    d, f = cfg["d"], 4 * cfg["d"]
    w = {}

    def lin(name, n_out, n_in, bias=True):
        w[name + ".weight"] = torch.randn(n_out, n_in, generator=g) / n_in ** 0.5
        if bias:
            w[name + ".bias"] = 0.1 * torch.randn(n_out, generator=g)

    def norm(name):
        w[name + ".weight"] = 1 + 0.1 * torch.randn(d, generator=g)
        w[name + ".bias"] = 0.1 * torch.randn(d, generator=g)

    def attn(prefix):
        lin(prefix + ".q_proj", d, d)
        lin(prefix + ".k_proj", d, d, bias=False)
        lin(prefix + ".v_proj", d, d)
        lin(prefix + ".out_proj", d, d)

    e = "model.encoder"
    w[e + ".conv1.weight"] = torch.randn(d, cfg["n_mels"], 3, generator=g) / (3 * cfg["n_mels"]) ** 0.5
    w[e + ".conv1.bias"] = 0.1 * torch.randn(d, generator=g)
    w[e + ".conv2.weight"] = torch.randn(d, d, 3, generator=g) / (3 * d) ** 0.5
    w[e + ".conv2.bias"] = 0.1 * torch.randn(d, generator=g)
    w[e + ".embed_positions.weight"] = wm.sinusoids(cfg["src"], d)
    for i in range(cfg["enc"]):
        p = f"{e}.layers.{i}"
        attn(p + ".self_attn")
        norm(p + ".self_attn_layer_norm")
        lin(p + ".fc1", f, d)
        lin(p + ".fc2", d, f)
        norm(p + ".final_layer_norm")
    norm(e + ".layer_norm")
    dd = "model.decoder"
    w[dd + ".embed_tokens.weight"] = 0.5 * torch.randn(cfg["vocab"], d, generator=g)
    w[dd + ".embed_positions.weight"] = 0.1 * torch.randn(cfg["tgt"], d, generator=g)
    for i in range(cfg["dec"]):
        p = f"{dd}.layers.{i}"
        attn(p + ".self_attn")
        norm(p + ".self_attn_layer_norm")
        attn(p + ".encoder_attn")
        norm(p + ".encoder_attn_layer_norm")
        lin(p + ".fc1", f, d)
        lin(p + ".fc2", d, f)
        norm(p + ".final_layer_norm")
    norm(dd + ".layer_norm")
    return w


def stored(t, dtype):
    """The tensor as the file stores it, and its bytes."""
    if dtype == "F32":
        v = t.float()
        return v, v.numpy().astype("<f4").tobytes()
    if dtype == "F16":
        v = t.half()
        return v.float(), v.numpy().astype("<f2").tobytes()
    v = t.bfloat16()
    return v.float(), v.view(torch.int16).numpy().astype("<i2").tobytes()


def write_safetensors(path, tensors, dtype):
    header, blobs, offset, values = {}, [], 0, {}
    for name in sorted(tensors):
        v, b = stored(tensors[name], dtype)
        values[name] = v
        header[name] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return values


def openai_name(hf):
    n = hf.replace("model.", "", 1)
    for a, b in ((".layers.", ".blocks."), ("self_attn_layer_norm", "attn_ln"), ("encoder_attn_layer_norm", "cross_attn_ln"),
                 ("final_layer_norm", "mlp_ln"), (".self_attn.", ".attn."), (".encoder_attn.", ".cross_attn."),
                 ("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value"), ("out_proj", "out"),
                 (".fc1.", ".mlp.0."), (".fc2.", ".mlp.2."), ("decoder.embed_tokens.weight", "decoder.token_embedding.weight"),
                 ("encoder.embed_positions.weight", "encoder.positional_embedding"),
                 ("decoder.embed_positions.weight", "decoder.positional_embedding"),
                 ("encoder.layer_norm.", "encoder.ln_post."), ("decoder.layer_norm.", "decoder.ln.")):
        n = n.replace(a, b)
    return n


expected = {}
for cfg in CONFIGS:
    d = os.path.join(out_dir, cfg["name"])
    os.makedirs(d, exist_ok=True)
    values = write_safetensors(os.path.join(d, "model.safetensors"), hf_weights(cfg), cfg["dtype"])
    config = {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"], "num_mel_bins": cfg["n_mels"],
              "d_model": cfg["d"], "encoder_layers": cfg["enc"], "encoder_attention_heads": cfg["heads"],
              "decoder_layers": cfg["dec"], "decoder_attention_heads": cfg["heads"], "encoder_ffn_dim": 4 * cfg["d"],
              "decoder_ffn_dim": 4 * cfg["d"], "vocab_size": cfg["vocab"], "max_source_positions": cfg["src"],
              "max_target_positions": cfg["tgt"], "activation_function": "gelu", "scale_embedding": False,
              "tie_word_embeddings": True, "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[cfg["dtype"]]}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    dims = wm.ModelDimensions(n_mels=cfg["n_mels"], n_audio_ctx=cfg["src"], n_audio_state=cfg["d"], n_audio_head=cfg["heads"],
                              n_audio_layer=cfg["enc"], n_vocab=cfg["vocab"], n_text_ctx=cfg["tgt"], n_text_state=cfg["d"],
                              n_text_head=cfg["heads"], n_text_layer=cfg["dec"])
    model = wm.Whisper(dims)
    state = {openai_name(k): v for k, v in values.items()}
    missing = set(model.state_dict()) - set(state) - {"alignment_heads"}
    assert not missing, missing
    model.load_state_dict({**model.state_dict(), **state})
    model.eval()
    mel = torch.from_numpy(mel_input(cfg["n_mels"], 2 * cfg["src"]))[None]
    with torch.no_grad():
        audio = model.encoder(mel)
        logits = model.decoder(torch.tensor([TOKENS]), audio)[0]
    expected[cfg["name"]] = {"tokens": TOKENS, "encoder_first_row": audio[0, 0].tolist(), "encoder_last_row": audio[0, -1].tolist(),
                             "logits": logits.tolist()}
    print(cfg["name"], "logits", tuple(logits.shape), "bytes", os.path.getsize(os.path.join(d, "model.safetensors")))
with open(os.path.join(out_dir, "expected_forward.json"), "w") as f:
    json.dump(expected, f)
