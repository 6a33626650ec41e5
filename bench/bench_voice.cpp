// The trained voice against the person's real held-out speech and against the espeak-ng fallback
// (DESIGN.md §4, voice): MCD, F0 RMSE and voicing error by vocoder::distance on every held-out
// utterance, and the trained voice's real-time factor on one thread. Usage:
//   bench_voice AVATAR...   (each with models/voice from `dself train voice`)
// Prints a table; asserts nothing.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "media/media.h"
#include "speech/speech.h"
#include "vocoder/vocoder.h"
#include "voice/detail/voice_data.h"
#include "voice/voice.h"

namespace fs = std::filesystem;
using namespace dself;

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  std::printf("%-28s %5s %9s %9s %9s %9s %7s %7s\n", "avatar", "utts", "mcd_dB", "fallback", "f0_rmse", "vuv_err",
              "rtf", "minutes");
  for (int a = 1; a < argc; ++a) {
    const fs::path avatar = argv[a];
    auto trained = voice::make_trained_voice(avatar / "models/voice");
    voice::EspeakOptions espeak;
    espeak.target_pitch_hz = voice::measure_avatar_pitch(avatar).median_hz;
    auto fallback = voice::make_espeak_voice(espeak);
    double mcd = 0, mcd_fallback = 0, f0 = 0, vuv = 0, synth_s = 0, audio_s = 0;
    int n = 0;
    for (const auto& dir : voice::speech_source_dirs(avatar)) {
      for (const auto& u : speech::read_dataset(dir).utterances) {
        if (u.split != speech::Split::held_out) continue;
        const auto real = vocoder::analyze(media::decode_audio(dir / u.wav, vocoder::kSampleRate));
        const auto start = std::chrono::steady_clock::now();
        const auto said = trained->say(u.text);
        synth_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        audio_s += said.duration_s();
        const auto d = vocoder::distance(real, vocoder::analyze(said.samples));
        const auto e = vocoder::distance(real, vocoder::analyze(fallback->say(u.text).samples));
        mcd += d.mcd_db, f0 += d.f0_rmse_hz, vuv += d.vuv_error, mcd_fallback += e.mcd_db;
        ++n;
      }
    }
    if (n == 0) continue;
    std::printf("%-28s %5d %9.2f %9.2f %9.1f %9.3f %7.4f %7.1f\n", avatar.filename().string().c_str(), n, mcd / n,
                mcd_fallback / n, f0 / n, vuv / n, synth_s / audio_s, audio_s / 60);
  }
  return 0;
}
