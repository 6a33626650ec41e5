// dself eval persona: retrieval recall on questions made from the person's own sentences.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "persona/persona.h"

namespace dself {

void add_eval_persona_command(CLI::App& eval, const GlobalOptions& globals) {
  struct Options {
    int questions = 200;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto* command = eval.add_subcommand(
      "persona", "Retrieval recall@1/@5 and extractive reply accuracy on held-out questions from the transcripts");
  command->add_option("--questions", options->questions, "Most questions asked (one per sampled sentence)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_flag("--json", options->json, "Print the JSON document only (format: docs/FORMATS.md)");
  command->callback([options, &globals] {
    persona::Memory memory(globals.avatar);
    nlohmann::json result = persona::to_json(persona::evaluate(memory, options->questions));
    if (options->json) {
      std::printf("%s\n", result.dump(2).c_str());
      return;
    }
    std::printf("questions %d  recall@1 %.3f  recall@5 %.3f  reply contains expected %.3f  mean reply %.2f ms\n",
                result["questions"].get<int>(), result["recall_at_1"].get<double>(),
                result["recall_at_5"].get<double>(), result["reply_contains_expected"].get<double>(),
                result["mean_reply_ms"].get<double>());
  });
}

}  // namespace dself
