#include "whisper/detail/frontend.h"

#include <torch/types.h>

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

namespace dself::whisper {

namespace {

// ref: librosa convert.hz_to_mel(htk=False): linear below 1 kHz, logarithmic above.
double hz_to_mel(double f) {
  constexpr double f_sp = 200.0 / 3, min_log_hz = 1000, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27;
  return f < min_log_hz ? f / f_sp : min_log_mel + std::log(f / min_log_hz) / logstep;
}

double mel_to_hz(double m) {
  constexpr double f_sp = 200.0 / 3, min_log_hz = 1000, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27;
  return m < min_log_mel ? f_sp * m : min_log_hz * std::exp(logstep * (m - min_log_mel));
}

}  // namespace

torch::Tensor mel_filters(int n_mels) {
  // ref: librosa filters.mel: triangles between mel-spaced points from 0 to sr/2, each scaled
  // by 2 / (its upper - lower edge in Hz); computed in double, stored as float.
  const double fmax = kSampleRate / 2.0;
  std::vector<double> mel_f(n_mels + 2);
  const double lo = hz_to_mel(0), hi = hz_to_mel(fmax);
  for (int i = 0; i < n_mels + 2; ++i) mel_f[i] = mel_to_hz(lo + (hi - lo) * i / (n_mels + 1));
  auto out = torch::zeros({n_mels, kNBins}, torch::kFloat);
  auto w = out.accessor<float, 2>();
  for (int i = 0; i < n_mels; ++i) {
    const double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
    for (int k = 0; k < kNBins; ++k) {
      const double f = fmax * k / (kNBins - 1);
      const double lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
      const double upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
      w[i][k] = float(std::max(0.0, std::min(lower, upper)) * enorm);
    }
  }
  return out;
}

torch::Tensor log_mel(std::span<const float> samples, int n_mels, int n_frames) {
  const int64_t n_samples = int64_t(n_frames) * kHop;
  auto audio = torch::zeros({n_samples}, torch::kFloat);
  const int64_t n = std::min<int64_t>(n_samples, int64_t(samples.size()));
  if (n > 0) std::memcpy(audio.data_ptr<float>(), samples.data(), size_t(n) * sizeof(float));
  // In double: float32 rounding in the FFT moves quiet bins (those near the max - 8 floor) by
  // more than 1e-5 after the log; the cost is small beside the encoder's.
  audio = audio.to(torch::kDouble);
  // ref: whisper/audio.py log_mel_spectrogram (torch.stft: centred, reflect padding; the last
  // frame dropped so that n_frames * 160 samples give n_frames frames).
  const auto window = torch::hann_window(kNFft, torch::TensorOptions().dtype(torch::kDouble));
  const auto stft = torch::stft(audio, kNFft, kHop, kNFft, window, /*center=*/true, "reflect", /*normalized=*/false,
                                /*onesided=*/true, /*return_complex=*/true);
  const auto power = torch::abs(stft.narrow(1, 0, n_frames)).pow(2);  // [201, n_frames]
  static thread_local std::map<int, torch::Tensor> filters;           // computed once per size and thread
  auto& f = filters[n_mels];
  if (!f.defined()) f = mel_filters(n_mels).to(torch::kDouble);
  auto log_spec = torch::matmul(f, power).clamp_min(1e-10).log10();
  log_spec = torch::maximum(log_spec, log_spec.max() - 8.0);
  return ((log_spec + 4.0) / 4.0).to(torch::kFloat);
}

}  // namespace dself::whisper
