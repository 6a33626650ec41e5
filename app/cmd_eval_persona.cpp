// dself eval persona: hand-written questions (a file), and retrieval recall on questions made
// from the person's own sentences.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "persona/persona.h"

namespace dself {

void add_eval_persona_command(CLI::App& eval, const GlobalOptions& globals) {
  struct Options {
    std::string questions;
    int generated = 200;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto* command = eval.add_subcommand(
      "persona",
      "Answers to hand-written questions (--questions FILE), and retrieval recall on questions generated from the "
      "transcripts");
  command->add_option("--questions", options->questions,
                      "Questions file: question<TAB>expected sentence, or - when out of scope (docs/FORMATS.md)");
  command->add_option("--generated", options->generated, "Most generated questions (one per sampled sentence)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_flag("--json", options->json, "Print the JSON document only (format: docs/FORMATS.md)");
  command->callback([options, &globals] {
    std::vector<persona::Question> questions;
    // A bad questions file is reported before the memory is opened (or built).
    if (!options->questions.empty()) questions = persona::read_questions(options->questions);
    persona::Memory memory(globals.avatar);
    nlohmann::json result = persona::to_json(persona::evaluate(memory, options->generated));
    if (!options->questions.empty()) {
      auto file = persona::to_json(persona::evaluate_questions(memory, questions));
      file["file"] = options->questions;
      result["questions_file"] = file;
    }
    if (options->json) {
      std::printf("%s\n", result.dump(2).c_str());
      return;
    }
    std::printf("generated: questions %d  recall@1 %.3f  recall@5 %.3f  reply contains expected %.3f  mean reply %.2f ms\n",
                result["questions"].get<int>(), result["recall_at_1"].get<double>(),
                result["recall_at_5"].get<double>(), result["reply_contains_expected"].get<double>(),
                result["mean_reply_ms"].get<double>());
    if (result.contains("questions_file")) {
      const auto& f = result["questions_file"];
      std::printf(
          "%s: in scope %d (not in memory %d)  answered with the expected sentence %.3f  declined %.3f  "
          "out of scope %d  declined %.3f  mean reply %.2f ms\n",
          options->questions.c_str(), f["in_scope"].get<int>(), f["not_in_memory"].get<int>(),
          f["accuracy"].get<double>(), f["in_scope_declined"].get<double>(), f["out_of_scope"].get<int>(),
          f["out_of_scope_declined"].get<double>(), f["mean_reply_ms"].get<double>());
      for (const auto& m : f["misses"]) {
        std::printf("  miss line %d: %s\n    expected: %s\n    reply:    %s\n", m["line"].get<int>(),
                    m["question"].get<std::string>().c_str(), m["expected"].get<std::string>().c_str(),
                    m["reply"].get<std::string>().c_str());
      }
    }
  });
}

}  // namespace dself
