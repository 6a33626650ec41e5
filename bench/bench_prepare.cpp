// Prepare throughput on the sample person: × real time for the captions path and the
// PocketSphinx path, split by step, and peak memory for a short and a long video (it should be
// flat in video length). Prints tables; asserts nothing.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_support.h"

namespace {

namespace fs = std::filesystem;
using dself::bench::Measured;

Measured run(const std::vector<std::string>& args) { return dself::bench::run_dself(args); }
bool must(const Measured& m, const char* what) { return dself::bench::must(m, "bench_prepare", what); }

struct Row {
  double video_s = 0, wall_s = 0;
  std::map<std::string, double> step_s;
  long max_rss_kib = 0;
};

// Ingests the sample at `sample` into a fresh avatar and prepares it with the given engine.
bool prepare_sample(const fs::path& sample, const fs::path& avatar, const std::string& stt, Row& row) {
  fs::remove_all(avatar);
  if (!must(run({"--quiet", "--avatar", avatar, "ingest", sample}), "ingest")) return false;
  Measured prepared = run({"--quiet", "--avatar", avatar, "prepare", "--stt", stt});
  if (!must(prepared, "prepare")) return false;
  Measured status = run({"--avatar", avatar, "status", "--json"});
  if (!must(status, "status")) return false;
  auto json = nlohmann::json::parse(status.output);
  row.video_s = json["totals"]["video_hours"].get<double>() * 3600;
  row.wall_s = prepared.wall_s;
  row.max_rss_kib = prepared.max_rss_kib;
  for (const auto& stage : json["stages"]) {
    row.step_s[stage["stage"].get<std::string>().substr(8)] += stage["summary"].value("elapsed_s", 0.0);
  }
  return true;
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() / "dself-bench-prepare";
  fs::create_directories(dir);
  std::printf("prepare on the sample person (512x512, 25 fps); %u hardware threads\n\n",
              std::thread::hardware_concurrency());

  const fs::path sample = dir / "sample";
  if (!fs::exists(sample / "sample.json") &&
      !must(run({"--quiet", "sample", "--out", sample, "--minutes", "2", "--videos", "2", "--seed", "3"}), "sample")) {
    return 1;
  }
  // The hard sample (an interview: two faces, cuts, b-roll, music; issue 15) on the captions path.
  const fs::path hard = dir / "hard";
  if (!fs::exists(hard / "sample.json") &&
      !must(run({"--quiet", "sample", "--out", hard, "--hard", "--minutes", "2", "--videos", "2", "--seed", "3"}),
            "hard sample")) {
    return 1;
  }
  std::printf("%-13s %8s %8s %8s | %8s %10s %8s %8s %8s\n", "path", "video s", "wall s", "x RT", "audio s",
              "transcript s", "speech s", "tracks s", "face s");
  const std::vector<std::tuple<std::string, fs::path, std::string>> paths = {
      {"captions", sample, "captions"}, {"pocketsphinx", sample, "pocketsphinx"}, {"hard captions", hard, "captions"}};
  for (const auto& [name, from, stt] : paths) {
    Row row;
    if (!prepare_sample(from, dir / ("avatar-" + name), stt, row)) return 1;
    std::printf("%-13s %8.1f %8.1f %8.1f | %8.2f %10.2f %8.2f %8.2f %8.2f\n", name.c_str(), row.video_s, row.wall_s,
                row.video_s / row.wall_s, row.step_s["audio"], row.step_s["transcript"], row.step_s["speech"],
                row.step_s["tracks"], row.step_s["face"]);
  }

  std::printf("\npeak memory of prepare (captions path) against video length:\n%-10s %8s %12s\n", "video", "wall s",
              "peak MiB");
  for (const char* minutes : {"1", "4"}) {
    const fs::path one = dir / (std::string("single-") + minutes);
    if (!fs::exists(one / "sample.json") &&
        !must(run({"--quiet", "sample", "--out", one, "--minutes", minutes, "--videos", "1", "--seed", "5"}), "sample")) {
      return 1;
    }
    Row row;
    if (!prepare_sample(one, dir / (std::string("avatar-single-") + minutes), "captions", row)) return 1;
    std::printf("%-10s %8.1f %12.1f\n", (std::string(minutes) + " min").c_str(), row.wall_s, row.max_rss_kib / 1024.0);
  }
  std::printf("\n(samples are kept in %s between runs; delete it to remake them)\n", dir.c_str());
  return 0;
}
