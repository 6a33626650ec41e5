#!/usr/bin/env python3
"""Expected log-mel spectrograms for tests/test_whisper.cpp, computed directly from the formulas
(numpy, float64), not by dself, and not with an FFT: a plain DFT sum per frame.

  - the test signal: test_signal(n) below (1 s), zero-padded to 150 frames (1.5 s);
  - periodic Hann window of 400, frames every 160 samples centred (reflect padding of 200 each
    side), |DFT|^2 of bins 0..200, the last frame dropped;
  - Slaney mel filters written from librosa's formulas (hz_to_mel, mel_to_hz, area norm), and
    checked here against OpenAI's own mel_filters.npz (librosa's output, whisper/assets);
  - log10(max(., 1e-10)), max with (max - 8), (x + 4) / 4.

Usage: git -C <mirror of openai/whisper> show HEAD:whisper/assets/mel_filters.npz > /tmp/mel_filters.npz
       python3 tests/data/whisper/make_frontend.py /tmp/mel_filters.npz tests/data/whisper
Writes frontend_80.f32 and frontend_128.f32 (float32 little-endian, [n_mels][150] row-major).
"""
import sys

import numpy as np

SR, N_FFT, HOP, N_FRAMES = 16000, 400, 160, 150


def test_signal():
    # dself's test writes the same: t = n / 16000, in double, then cast to float32.
    t = np.arange(SR, dtype=np.float64) / SR
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * (300 + 2000 * t) * t) \
        + 0.05 * np.sin(2 * np.pi * 5500 * t) * (t > 0.5)
    return x.astype(np.float32)


def hz_to_mel(f):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    return np.where(f < min_log_hz, f / f_sp, min_log_hz / f_sp + np.log(np.maximum(f, 1e-12) / min_log_hz) / (np.log(6.4) / 27))


def mel_to_hz(m):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m < min_log_mel, f_sp * m, min_log_hz * np.exp(np.log(6.4) / 27 * (m - min_log_mel)))


def mel_filters(n_mels):
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SR / 2), n_mels + 2))
    freqs = np.linspace(0, SR / 2, N_FFT // 2 + 1)
    w = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lower = (freqs - mel_f[i]) / (mel_f[i + 1] - mel_f[i])
        upper = (mel_f[i + 2] - freqs) / (mel_f[i + 2] - mel_f[i + 1])
        w[i] = np.maximum(0, np.minimum(lower, upper)) * 2.0 / (mel_f[i + 2] - mel_f[i])
    return w


def log_mel(x, n_mels):
    audio = np.zeros(N_FRAMES * HOP)
    audio[: len(x)] = x.astype(np.float64)
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    k = np.arange(N_FFT // 2 + 1)
    basis = np.exp(-2j * np.pi * np.outer(k, n) / N_FFT)
    power = np.zeros((len(k), N_FRAMES))
    for f in range(N_FRAMES):  # the last frame (N_FRAMES + 1 th) dropped
        frame = padded[f * HOP: f * HOP + N_FFT] * window
        power[:, f] = np.abs(basis @ frame) ** 2
    mel = mel_filters(n_mels) @ power
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


reference = np.load(sys.argv[1])
out = sys.argv[2]
x = test_signal()
for n_mels in (80, 128):
    diff = np.abs(mel_filters(n_mels).astype(np.float32) - reference[f"mel_{n_mels}"]).max()
    assert diff < 1e-7, f"the filters differ from librosa's by {diff}"
    print(f"mel_{n_mels}: max difference from OpenAI's mel_filters.npz {diff:.2e}")
    np.asarray(log_mel(x, n_mels), dtype="<f4").tofile(f"{out}/frontend_{n_mels}.f32")
