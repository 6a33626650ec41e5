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
};

}  // namespace

void add_eval_command(CLI::App& app, const GlobalOptions& globals) {
  auto* eval = app.add_subcommand("eval", "Measure a stage of the avatar against ground truth");
  eval->require_subcommand(1);

  auto options = std::make_shared<EvalPrepareOptions>();
  auto* prepare = eval->add_subcommand(
      "prepare", "Transcripts (WER per engine), phone alignment, face track against a sample person's truth");
  prepare->add_option("--truth", options->truth, "The --out directory of `dself sample` whose videos were ingested")
      ->required();
  prepare->add_flag("--json", options->json, "Print the JSON document only (format: docs/FORMATS.md)");
  prepare->callback([options, &globals] {
    prepare::PrepareOptions prepare_options;
    prepare_options.avatar = globals.avatar;
    nlohmann::json result = prepare::evaluate(prepare_options, options->truth);
    std::printf("%s\n", result.dump(options->json ? 2 : 2).c_str());
  });
}

}  // namespace dself
