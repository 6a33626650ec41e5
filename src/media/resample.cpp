// Resampling mono float audio with libswresample.
#include <fmt/format.h>

#include <cmath>

#include "media/detail/ffmpeg.h"

namespace dself::media {
using namespace detail;

std::vector<float> resample(std::span<const float> mono, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) throw internal_error(fmt::format("resample: {} Hz to {} Hz", from_rate, to_rate));
  const size_t wanted = static_cast<size_t>(std::llround(static_cast<double>(mono.size()) * to_rate / from_rate));
  if (from_rate == to_rate) return {mono.begin(), mono.end()};
  AVChannelLayout layout = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw = nullptr;
  int rc = swr_alloc_set_opts2(&raw, &layout, AV_SAMPLE_FMT_FLT, to_rate, &layout, AV_SAMPLE_FMT_FLT, from_rate, 0, nullptr);
  SwrPtr resampler(raw);
  if (rc >= 0) rc = swr_init(resampler.get());
  if (rc < 0) throw internal_error(fmt::format("resample {} Hz to {} Hz: {}", from_rate, to_rate, av_error_text(rc)));
  std::vector<float> out(static_cast<size_t>(swr_get_out_samples(resampler.get(), static_cast<int>(mono.size()))) + 64);
  size_t n_out = 0;
  auto convert = [&](const float* in, int n_in) {
    for (;;) {
      int capacity = swr_get_out_samples(resampler.get(), n_in);
      if (out.size() < n_out + static_cast<size_t>(capacity)) out.resize(n_out + static_cast<size_t>(capacity));
      auto* dst = reinterpret_cast<uint8_t*>(out.data() + n_out);
      auto* src = reinterpret_cast<const uint8_t*>(in);
      int n = swr_convert(resampler.get(), &dst, capacity, in ? &src : nullptr, n_in);
      if (n < 0) throw internal_error(fmt::format("swr_convert: {}", av_error_text(n)));
      n_out += static_cast<size_t>(n);
      if (in != nullptr || n == 0) return;  // flushing: until the filter's tail is out
      n_in = 0;
    }
  };
  convert(mono.data(), static_cast<int>(mono.size()));
  convert(nullptr, 0);
  out.resize(n_out);
  out.resize(wanted, 0.0f);  // the filter's tail may add or leave out a sample
  return out;
}


}  // namespace dself::media
