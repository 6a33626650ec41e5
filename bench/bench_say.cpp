// `dself say` end to end on the sample person: time from start to a finished MP4 for one
// sentence (the target: 2 s), real-time factor on a paragraph, and peak memory for a short
// and a long text (it should be flat: sentences are streamed). Prints tables; asserts nothing.
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_support.h"

namespace {

namespace fs = std::filesystem;
using dself::bench::Measured;

Measured run(const std::vector<std::string>& args) { return dself::bench::run_dself(args); }
bool must(const Measured& m, const char* what) { return dself::bench::must(m, "bench_say", what); }

const char* kSentence = "I ride to the coast every Sunday when the weather is kind.";

std::string paragraph(int sentences) {
  const std::vector<std::string> lines = {
      "I ride to the coast every Sunday when the weather is kind.",
      "The bread takes two days from start to finish, and most of that is waiting.",
      "My grandmother taught me that a recipe is only a suggestion.",
      "When the tide goes out the whole bay turns silver.",
      "I have been mending the same bicycle for eleven years.",
  };
  std::string text;
  for (int i = 0; i < sentences; ++i) text += lines[i % lines.size()] + " ";
  return text;
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() / "dself-bench-say";
  fs::create_directories(dir);
  std::printf("say on the sample person; %u hardware threads\n\n", std::thread::hardware_concurrency());
  const fs::path sample = dir / "sample", avatar = dir / "avatar";
  if (!fs::exists(avatar / "dself.db")) {
    if (!must(run({"--quiet", "sample", "--out", sample, "--minutes", "1", "--videos", "1", "--seed", "4"}), "sample") ||
        !must(run({"--quiet", "--avatar", avatar, "ingest", sample}), "ingest") ||
        !must(run({"--quiet", "--avatar", avatar, "prepare"}), "prepare")) {
      return 1;
    }
  }
  // The first say builds and keeps the renderer's library and the voice choice.
  Measured first = run({"--quiet", "--avatar", avatar, "say", kSentence, "-o", dir / "first.mp4"});
  if (!must(first, "first say")) return 1;
  std::printf("first say (builds the models it keeps): %.2f s\n\n", first.wall_s);

  std::printf("%-22s %8s %10s %8s %10s\n", "text", "wall s", "speech s", "x RT", "peak MiB");
  for (int sentences : {1, 5, 40}) {
    std::string text = sentences == 1 ? kSentence : paragraph(sentences);
    Measured m = run({"--quiet", "--avatar", avatar, "say", text, "-o", dir / "out.mp4", "--json"});
    if (!must(m, "say")) return 1;
    double speech_s = nlohmann::json::parse(m.output)["duration_s"].get<double>();
    std::printf("%-22s %8.2f %10.1f %8.2f %10.1f\n", (std::to_string(sentences) + " sentence(s)").c_str(), m.wall_s,
                speech_s, speech_s / m.wall_s, m.max_rss_kib / 1024.0);
  }
  std::printf("\n(the avatar is kept in %s between runs; delete it to remake it)\n", dir.c_str());
  return 0;
}
