// How fast the sample person is made: render speed in multiples of real time (video seconds
// per wall-clock second), with and without the encoder, at two frame sizes. Prints a table;
// asserts nothing (STYLE.md).
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>

#include "core/log.h"
#include "core/progress.h"
#include "sample/sample.h"

namespace {

constexpr double kVideoSeconds = 10;

struct Row {
  int size;
  double video_s;
  dself::sample::SampleResult result;
  double cpu_s;
};

Row run(int size, const std::filesystem::path& out) {
  dself::sample::SampleOptions options;
  options.out = out;
  options.minutes = kVideoSeconds / 60;
  options.videos = 1;
  options.size = size;
  std::clock_t cpu_start = std::clock();
  Row row{size, 0, dself::sample::make_sample(options), 0};
  row.cpu_s = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  for (const auto& video : row.result.videos) row.video_s += video.duration_s;
  return row;
}

}  // namespace

int main() {
  dself::init_logging(dself::Verbosity::quiet);
  dself::set_progress_display(false);
  std::filesystem::path out =
      std::filesystem::temp_directory_path() / ("dself-bench-sample-" + std::to_string(std::random_device{}()));
  std::printf("sample person: ~%.0f s of video (voice rms, grace_hopper.jpg), x real time = video s / s spent\n\n",
              kVideoSeconds);
  std::printf("%-6s %8s %8s %8s %8s %8s | %10s %14s %10s %12s\n", "size", "video s", "speech s", "render s", "encode s",
              "total s", "render x", "render+enc x", "total x", "total x/core");
  for (int size : {256, 512}) {
    Row row = run(size, out / std::to_string(size));
    const auto& r = row.result;
    std::printf("%-6d %8.2f %8.2f %8.2f %8.2f %8.2f | %10.1f %14.1f %10.1f %12.1f\n", row.size, row.video_s, r.speech_s,
                r.render_s, r.encode_s, r.total_s, row.video_s / r.render_s, row.video_s / (r.render_s + r.encode_s),
                row.video_s / r.total_s, row.video_s / row.cpu_s);
  }
  std::printf(
      "\nrender: motion, piecewise-affine warp, mouth, head warp (OpenCV may use several threads);\n"
      "encode: H.264 + AAC; total: also loading dlib, framing the portrait, flite and files;\n"
      "x/core: video seconds per CPU second over all threads.\n");
  std::filesystem::remove_all(out);
  return 0;
}
