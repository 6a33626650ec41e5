// dself eval stt: the person's speech recognition against their held-out utterances (generic,
// + person LM, + acoustic adaptation, both), on other speakers (LibriVox), and its speed.
// The figures are kept in models/stt/metrics.json.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "stt/stt.h"

namespace dself {

void add_eval_stt_command(CLI::App& eval, const GlobalOptions& globals) {
  struct Options {
    bool json = false;
    bool no_librivox = false;
  };
  auto options = std::make_shared<Options>();
  auto* command = eval.add_subcommand(
      "stt", "WER of the generic and the person-adapted speech recognition on the person's held-out utterances");
  command->add_flag("--json", options->json, "Print the JSON document only (format: docs/FORMATS.md)");
  command->add_flag("--no-librivox", options->no_librivox,
                    "Skip the other speakers (Debian's LibriVox recordings in pocketsphinx-testdata)");
  command->callback([options, &globals] {
    nlohmann::json result = stt::evaluate_stt(globals.avatar, !options->no_librivox);
    if (options->json) {
      std::printf("%s\n", result.dump(2).c_str());
      return;
    }
    std::printf("%d held-out utterances\n%-28s %8s %8s %10s\n", result["held_out_utterances"].get<int>(), "", "WER %",
                "words", "RTF");
    for (const auto& [name, f] : result["wer"].items()) {
      std::printf("%-28s %8.1f %8.0f %10.3f\n", name.c_str(), 100 * f["wer"].get<double>(),
                  f["reference_words"].get<double>(), f["real_time_factor"].get<double>());
    }
    if (result.contains("librivox")) {
      for (const auto& [name, f] : result["librivox"].items()) {
        if (f.is_object() && f.contains("wer")) {
          std::printf("%-28s %8.1f %8.0f %10.3f\n", ("librivox " + name).c_str(), 100 * f["wer"].get<double>(),
                      f["reference_words"].get<double>(), f["real_time_factor"].get<double>());
        }
      }
    }
  });
}

}  // namespace dself
