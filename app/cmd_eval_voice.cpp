// dself eval voice: the voices judged against the person's held-out recordings (DESIGN.md §4):
// the person's trained voice (when there is one), the fallback voice (the baseline) and the
// vocoder's copy-synthesis floor. The figures are kept in models/voice/metrics.json.
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "train/train.h"
#include "voice/voice.h"

namespace dself {

void add_eval_voice_command(CLI::App& eval, const GlobalOptions& globals) {
  struct Options {
    voice::VoiceEvaluationOptions evaluation;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto* command = eval.add_subcommand(
      "voice", "MCD, F0, voicing, phone durations and WER of the voices against the person's held-out recordings");
  command->add_option("--voice", options->evaluation.voice, "espeak-ng voice to judge as the fallback (default: the one "
                                                            "picked for the person's pitch)");
  command->add_option("--max-utterances", options->evaluation.max_utterances, "Held-out utterances judged at most")
      ->capture_default_str();
  command->add_flag("--json", options->json, "Print the JSON document only (format: docs/FORMATS.md)");
  command->callback([options, &globals] {
    nlohmann::json result = train::evaluate_voice(globals.avatar, options->evaluation);
    if (options->json) {
      std::printf("%s\n", result.dump(2).c_str());
      return;
    }
    std::printf("%d %s utterances, %d words; PocketSphinx WER on the real recordings %.1f%%\n\n",
                result["utterance_count"].get<int>(), result["split"].get<std::string>().c_str(),
                result["reference_words"].get<int>(), 100 * result["real"]["wer"].get<double>());
    std::printf("%-48s %8s %10s %8s %12s %7s %8s\n", "", "MCD dB", "F0 RMSE Hz", "V/UV %", "phone dur ms", "WER %",
                "RTF");
    auto row = [](const std::string& name, const nlohmann::json& f) {
      const std::string duration = f.contains("duration_mae_ms") ? fmt::format("{:.1f}", f["duration_mae_ms"].get<double>()) : "-";
      std::printf("%-48s %8.2f %10.1f %8.1f %12s %7.1f %8.4f\n", name.c_str(), f["mcd_db"].get<double>(),
                  f["f0_rmse_hz"].get<double>(), 100 * f["vuv_error"].get<double>(), duration.c_str(),
                  100 * f["wer"].get<double>(), f["real_time_factor"].get<double>());
    };
    if (result.contains("copy_synthesis")) row("copy synthesis (vocoder floor)", result["copy_synthesis"]);
    for (const auto& [role, figures] : result["voices"].items()) row(role + ": " + figures["voice"].get<std::string>(), figures);
  });
}

}  // namespace dself
