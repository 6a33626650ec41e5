// Persona benchmark: index build time per hour of transcript, and the extractive engine's time
// to first reply text on an index of 10 hours. Transcripts are made from the sample monologue
// (src/sample/monologue.txt), sentence order shuffled per copy, spoken at 150 words a minute as
// automatic captions (no punctuation; each word ends where the next starts).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "persona/persona.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::string> monologue_sentences() {
  std::ifstream in(DSELF_MONOLOGUE_PATH);
  std::vector<std::string> sentences;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    sentences.push_back(line);
  }
  return sentences;
}

// Writes transcripts/<id>.json of about 10 minutes each until `hours` are written.
void write_transcripts(const fs::path& avatar, double hours, const std::vector<std::string>& sentences) {
  fs::create_directories(avatar / "transcripts");
  std::mt19937 rng(7);
  const double word_s = 0.4;  // 150 words a minute
  const double pause_s = 0.7;
  double total_s = 0;
  int id = 1;
  while (total_s < hours * 3600) {
    std::vector<std::string> order = sentences;
    std::shuffle(order.begin(), order.end(), rng);
    nlohmann::json words = nlohmann::json::array();
    double t = 0.1;
    for (const auto& sentence : order) {
      std::istringstream in(sentence);
      std::string w;
      std::vector<std::string> ws;
      while (in >> w) {
        while (!w.empty() && std::ispunct(static_cast<unsigned char>(w.back())) && w.back() != '\'') w.pop_back();
        if (!w.empty()) ws.push_back(w);
      }
      for (size_t i = 0; i < ws.size(); ++i) {
        double next = t + word_s + (i + 1 == ws.size() ? pause_s : 0);
        words.push_back({{"text", ws[i]}, {"start_s", t}, {"end_s", next}, {"confidence", 1.0}});
        t = next;
      }
      if (t > 600) break;
    }
    nlohmann::json transcript = {{"format", "dself-transcript"},
                                 {"version", 1},
                                 {"engine", "captions"},
                                 {"model", "bench"},
                                 {"language", "en"},
                                 {"segments", nlohmann::json::array()},
                                 {"words", words}};
    std::ofstream(avatar / "transcripts" / (std::to_string(id++) + ".json")) << transcript.dump();
    total_s += t;
  }
}

}  // namespace

int main() {
  auto sentences = monologue_sentences();
  if (sentences.empty()) {
    std::fprintf(stderr, "cannot read %s\n", DSELF_MONOLOGUE_PATH);
    return 2;
  }
  fs::path root = fs::temp_directory_path() / ("dself-bench-persona-" + std::to_string(::getpid()));
  const std::vector<std::string> questions = {"How did you start baking bread?",
                                              "What is your sourdough starter called?",
                                              "hello!",
                                              "What do you feed your starter?",
                                              "How long is bulk fermentation?",
                                              "What is the weather like on Mars?",
                                              "Tell me about the night train",
                                              "What cello do you play?",
                                              "Thanks a lot!",
                                              "How do you solder a joint?"};

  std::printf("%-6s %-10s %-12s %-14s %-12s %-16s %-16s\n", "hours", "sentences", "build_s", "build_s/hour", "open_s",
              "first_text_ms", "first_text_p95");
  for (double hours : {1.0, 10.0}) {
    fs::path avatar = root / std::to_string(static_cast<int>(hours));
    write_transcripts(avatar, hours, sentences);
    auto t0 = Clock::now();
    double build_s = 0;
    int n_sentences = 0;
    {
      dself::persona::Memory memory(avatar);
      build_s = seconds_since(t0);
      n_sentences = memory.sentence_count();
    }
    t0 = Clock::now();
    dself::persona::Memory memory(avatar);  // unchanged: hash check only, as every `dself chat` does
    double open_s = seconds_since(t0);
    auto engine = dself::persona::make_extractive_engine(memory);
    std::vector<double> first_ms;
    for (int round = 0; round < 5; ++round) {
      for (const auto& q : questions) {
        auto start = Clock::now();
        double first = -1;
        engine->reply({{"user", q, {}}}, [&](std::string_view) {
          if (first < 0) first = seconds_since(start) * 1000;
          return true;
        });
        first_ms.push_back(first < 0 ? seconds_since(start) * 1000 : first);
      }
    }
    std::sort(first_ms.begin(), first_ms.end());
    std::printf("%-6.0f %-10d %-12.2f %-14.2f %-12.3f %-16.2f %-16.2f\n", hours, n_sentences, build_s, build_s / hours,
                open_s, first_ms[first_ms.size() / 2], first_ms[first_ms.size() * 95 / 100]);
  }
  fs::remove_all(root);
  return 0;
}
