// Media benchmark: H.264 + AAC encode and decode speed at the sizes dself uses. Prints a table;
// timings are for comparing runs on one machine, never asserted.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>
#include <vector>

#include "media/media.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// A textured background twice the frame size; frame i is a window sliding over it with a
// moving disc, so the encoder sees motion like a talking head's, not a static image.
cv::Mat make_background(cv::Size size) {
  cv::Mat background(size.height * 2, size.width * 2, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(background, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(background, background, cv::Size(0, 0), 6);
  cv::normalize(background, background, 0, 255, cv::NORM_MINMAX);
  return background;
}

void render_frame(const cv::Mat& background, cv::Size size, int i, cv::Mat& frame) {
  int x = static_cast<int>((size.width / 2) * (1 + std::sin(i * 0.05)) / 2);
  int y = static_cast<int>((size.height / 2) * (1 + std::cos(i * 0.04)) / 2);
  background(cv::Rect(x, y, size.width, size.height)).copyTo(frame);
  cv::circle(frame, cv::Point(size.width / 2, size.height / 2), size.height / 6 + (i % 10), cv::Scalar(40, 90, 200),
             cv::FILLED, cv::LINE_AA);
}

struct Row {
  cv::Size size;
  int frames = 0;
  double encode_fps = 0;
  double decode_fps = 0;
  double audio_decode_rt = 0;  // seconds of audio decoded per second
  double kib = 0;
};

Row run(const fs::path& dir, cv::Size size, int n_frames) {
  constexpr double fps = 25;
  const fs::path path = dir / fmt::format("bench_{}x{}.mp4", size.width, size.height);
  cv::Mat background = make_background(size);
  cv::Mat frame;
  std::vector<float> audio(static_cast<size_t>(16000 / fps));

  dself::media::EncoderOptions options;
  options.width = size.width;
  options.height = size.height;
  options.fps = fps;
  double encode_s = 0;
  {
    auto start = Clock::now();
    dself::media::VideoWriter writer(path, options);
    encode_s += seconds_since(start);
    for (int i = 0; i < n_frames; ++i) {
      render_frame(background, size, i, frame);  // not timed: the renderer's cost, not ours
      for (size_t n = 0; n < audio.size(); ++n) {
        double t = (i * audio.size() + n) / 16000.0;
        audio[n] = static_cast<float>(0.3 * std::sin(2 * std::numbers::pi * 220 * t));
      }
      start = Clock::now();
      writer.write_frame(frame);
      writer.write_audio(audio);
      encode_s += seconds_since(start);
    }
    start = Clock::now();
    writer.finish();
    encode_s += seconds_since(start);
  }

  Row row;
  row.size = size;
  row.frames = n_frames;
  row.encode_fps = n_frames / encode_s;
  row.kib = static_cast<double>(fs::file_size(path)) / 1024;

  auto start = Clock::now();
  dself::media::VideoReader reader(path);
  dself::media::VideoFrame decoded;
  int n_decoded = 0;
  while (reader.read(decoded)) ++n_decoded;
  row.decode_fps = n_decoded / seconds_since(start);

  start = Clock::now();
  size_t n_samples = 0;
  dself::media::decode_audio(path, 16000, [&](std::span<const float> chunk) { n_samples += chunk.size(); });
  row.audio_decode_rt = (n_samples / 16000.0) / seconds_since(start);
  return row;
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() / fmt::format("dself-bench-media-{}", ::getpid());
  fs::create_directories(dir);
  std::vector<Row> rows;
  rows.push_back(run(dir, {512, 512}, 500));
  rows.push_back(run(dir, {1280, 720}, 250));
  fs::remove_all(dir);

  dself::media::EncoderOptions defaults;
  fmt::print("media: H.264 (libx264 preset {}, crf {}) + AAC {} kbit/s, 25 fps; {} hardware threads\n\n",
             defaults.preset, defaults.crf, defaults.audio_bitrate / 1000, std::thread::hardware_concurrency());
  fmt::print("{:<10} {:>7} {:>11} {:>11} {:>18} {:>9}\n", "size", "frames", "encode fps", "decode fps",
             "audio decode x RT", "file KiB");
  for (const Row& row : rows) {
    fmt::print("{:<10} {:>7} {:>11.1f} {:>11.1f} {:>18.0f} {:>9.0f}\n",
               fmt::format("{}x{}", row.size.width, row.size.height), row.frames, row.encode_fps, row.decode_fps,
               row.audio_decode_rt, row.kib);
  }
  fmt::print(
      "\nencode: BGR frames + 16 kHz audio in, MP4 out; decode: MP4 to BGR frames; audio decode: AAC to "
      "16 kHz mono\n");
  return 0;
}
