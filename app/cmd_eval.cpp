// dself eval: measure a stage against ground truth and print the figures.
#include <cstdio>
#include <memory>

#include "app/commands.h"
#include "prepare/prepare.h"

namespace dself {
namespace {

struct EvalPrepareOptions {
  std::filesystem::path truth;  // the sample person's --out directory
  bool json = false;
  bool faces_only = false;  // --faces-only
};

}  // namespace

void add_eval_command(CLI::App& app, const GlobalOptions& globals) {
  auto* eval = app.add_subcommand("eval", "Measure a stage of the avatar against ground truth");
  eval->require_subcommand(1);

  add_eval_persona_command(*eval, globals);
  add_eval_say_command(*eval, globals);
  add_eval_voice_command(*eval, globals);
  add_eval_stt_command(*eval, globals);

  auto options = std::make_shared<EvalPrepareOptions>();
  auto* prepare = eval->add_subcommand(
      "prepare", "Transcripts (WER per engine), phone alignment, face track against a sample person's truth");
  prepare->add_option("--truth", options->truth, "The --out directory of `dself sample` whose videos were ingested")
      ->required();
  prepare->add_flag("--faces-only", options->faces_only,
                    "Measure only the face track and who is who (no speech recognition, no alignment)");
  prepare->add_flag("--json", options->json, "Print the JSON document (format: docs/FORMATS.md) instead of a summary");
  prepare->callback([options, &globals] {
    prepare::PrepareOptions prepare_options;
    prepare_options.avatar = globals.avatar;
    nlohmann::json result = prepare::evaluate(prepare_options, options->truth, options->faces_only);
    if (options->json) {
      std::printf("%s\n", result.dump(2).c_str());
      return;
    }
    const auto& stt = result["stt"];
    if (!options->faces_only) std::printf("transcripts   captions WER %.1f%%, PocketSphinx WER %.1f%% (%d reference words)\n",
                100 * stt["captions"]["wer"].get<double>(), 100 * stt["pocketsphinx"]["wer"].get<double>(),
                stt["pocketsphinx"]["reference_words"].get<int>());
    if (!options->faces_only) std::printf("alignment     mean phone-boundary error %.1f ms (%d boundaries)\n",
                result["alignment"]["mean_boundary_error_ms"].get<double>(),
                result["alignment"]["boundaries"].get<int>());
    std::printf("face          found in %.1f%% of frames, landmark error %.2f%% of inter-ocular distance\n",
                100 * result["face"]["found_share"].get<double>(),
                result["face"]["landmark_error_iod_pct"].get<double>());
    const auto& who = result["who"];
    std::printf("who is who    identity purity %.2f%% of %lld frames kept, person's frames kept %.2f%%, %lld of %lld "
                "tracks cross a shot change, %lld shots found (%lld true), %d identities\n",
                100 * who["identity_purity"].get<double>(), who["kept_frames"].get<long long>(),
                100 * who["person_kept"].get<double>(), who["shot_crossing_tracks"].get<long long>(),
                who["tracks"].get<long long>(), who["found_shots"].get<long long>(), who["true_shots"].get<long long>(),
                who.value("identities", 0));
    if (result["librivox"]["pocketsphinx"].contains("wer")) {
      std::printf("baseline      PocketSphinx WER %.1f%% on LibriVox (pocketsphinx-testdata)\n",
                  100 * result["librivox"]["pocketsphinx"]["wer"].get<double>());
    }
  });
}

}  // namespace dself
