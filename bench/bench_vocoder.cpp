// The vocoder's speed on one thread: real-time factor (seconds of compute per second of audio) of
// analysis (and of its F0 tracker alone), synthesis and the MCD/DTW distance, on the LibriVox
// recordings in pocketsphinx-testdata. Thread CPU time beside wall time, so that other work on the
// machine does not hide in the figures. Prints a table; asserts nothing.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "media/media.h"
#include "vocoder/vocoder.h"

namespace {

namespace fs = std::filesystem;
using namespace dself::vocoder;

struct Timing {
  double wall_s = 0;
  double cpu_s = 0;
};

// Best of `repeats` runs (the least disturbed by other processes).
Timing time_it(const std::function<void()>& work, int repeats = 3) {
  Timing best{1e30, 1e30};
  for (int r = 0; r < repeats; ++r) {
    timespec cpu0{}, cpu1{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    const auto start = std::chrono::steady_clock::now();
    work();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    const double cpu = double(cpu1.tv_sec - cpu0.tv_sec) + 1e-9 * double(cpu1.tv_nsec - cpu0.tv_nsec);
    best.wall_s = std::min(best.wall_s, wall);
    best.cpu_s = std::min(best.cpu_s, cpu);
  }
  return best;
}

}  // namespace

int main() {
  const fs::path dir = "/usr/share/pocketsphinx/test/data/librivox";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".wav") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "bench_vocoder: no WAV files in %s (install pocketsphinx-testdata)\n", dir.c_str());
    return 1;
  }
  std::printf("vocoder on one thread: real-time factor = compute s / audio s (thread CPU; wall in brackets)\n\n");
  std::printf("%-10s %7s %16s %16s %16s %16s\n", "recording", "audio s", "analyze RTF", "  of which F0", "synthesize RTF",
              "distance RTF");
  double audio_total = 0, analyze_total = 0, synth_total = 0;
  for (const auto& file : files) {
    const std::vector<float> audio = dself::media::decode_audio(file, kSampleRate);
    const double audio_s = double(audio.size()) / kSampleRate;
    Features features;
    std::vector<float> speech;
    const Timing analysis = time_it([&] { features = analyze(audio); });
    const Timing f0 = time_it([&] { track_f0(audio); });
    const Timing synthesis = time_it([&] { speech = synthesize(features); });
    const Features copy = analyze(speech);
    const Timing dtw = time_it([&] { distance(features, copy); });
    const std::string name = file.stem().string().substr(file.stem().string().size() - 4);
    auto cell = [&](const Timing& t) {
      static char text[4][32];
      static int next = 0;
      char* out = text[next++ % 4];
      std::snprintf(out, 32, "%.4f (%.4f)", t.cpu_s / audio_s, t.wall_s / audio_s);
      return out;
    };
    std::printf("%-10s %7.2f %16s %16s %16s %16s\n", name.c_str(), audio_s, cell(analysis), cell(f0), cell(synthesis),
                cell(dtw));
    audio_total += audio_s;
    analyze_total += analysis.cpu_s;
    synth_total += synthesis.cpu_s;
  }
  std::printf("\nall %zu recordings, %.1f s of audio: analyze RTF %.4f, synthesize RTF %.4f (target for synthesis: <= 0.02)\n",
              files.size(), audio_total, analyze_total / audio_total, synth_total / audio_total);
  return 0;
}
