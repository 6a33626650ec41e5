// Whisper's front end: log-mel spectrogram of a window of 16 kHz audio.
// ref: openai/whisper whisper/audio.py (log_mel_spectrogram); Hugging Face's
// WhisperFeatureExtractor (one 30 s window at a time, the max - 8 clamp within it).
#pragma once

#include <ATen/core/Tensor.h>

#include <span>

namespace dself::whisper {

constexpr int kSampleRate = 16000;
constexpr int kNFft = 400;  // 25 ms
constexpr int kHop = 160;   // 10 ms
constexpr int kNBins = kNFft / 2 + 1;

// Slaney-style mel filterbank [n_mels, 201] for 16 kHz and n_fft 400, area-normalised, as
// librosa.filters.mel(sr=16000, n_fft=400, n_mels) (htk=False, norm="slaney").
// ref: librosa 0.10 filters.mel and convert.hz_to_mel / mel_to_hz (Slaney's Auditory Toolbox).
at::Tensor mel_filters(int n_mels);

// The log-mel spectrogram [n_mels, n_frames] of `samples` padded with zeros (or cut) to
// n_frames * 160 samples: periodic Hann window of 400, centred frames (reflect padding of 200),
// |STFT|² (the last frame dropped), mel filters, log10(max(., 1e-10)), clamped to max - 8 over
// the window, then (x + 4) / 4.
at::Tensor log_mel(std::span<const float> samples, int n_mels, int n_frames);

}  // namespace dself::whisper
