// dself eval persona: hand-written questions (a file), and retrieval recall on questions made
// from the person's own sentences.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <cmath>
#include <fstream>

#include "app/commands.h"
#include "core/error.h"
#include "hf/tokenizer.h"
#include "llm/llm.h"
#include "persona/persona.h"

namespace dself {

namespace {

// Each line of `file` scored as plain text by the model: token ids, total log-probability, tokens
// scored (the first token of a line is context only); blank lines are skipped.
// With an adapter, the model with the adapter applied.
nlohmann::json score_lines(const std::string& file, const std::string& model_dir, const std::string& adapter_dir) {
  std::ifstream in(file);
  if (!in) throw InputError(fmt::format("--perplexity {}: cannot read the file", file));
  auto tokenizer = hf::Tokenizer::load(model_dir);
  auto model = llm::Model::load(model_dir);
  if (!adapter_dir.empty()) llm::apply_adapter(model, llm::load_adapter(adapter_dir, model));
  nlohmann::json lines = nlohmann::json::array();
  double total = 0;
  int64_t count = 0;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    auto ids32 = tokenizer.encode(text);
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    if (ids.size() < 2) continue;  // one token: nothing to predict
    llm::TextScore score;
    try {
      score = llm::score_tokens(model, ids);
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}:{}: {}", file, number, e.what()));
    }
    total += score.log_probability;
    count += score.token_count;
    lines.push_back({{"line", number}, {"tokens", ids}, {"log_probability", score.log_probability},
                     {"token_count", score.token_count}});
  }
  if (count == 0) throw InputError(fmt::format("--perplexity {}: no line of two tokens or more to score", file));
  return {{"file", file},
          {"model", model_dir},
          {"adapter", adapter_dir.empty() ? nlohmann::json(nullptr) : nlohmann::json(adapter_dir)},
          {"lines", lines},
          {"total_log_probability", total},
          {"total_tokens", count},
          {"perplexity", std::exp(-total / double(count))}};
}

}  // namespace

void add_eval_persona_command(CLI::App& eval, const GlobalOptions& globals) {
  struct Options {
    std::string questions;
    std::string perplexity;
    std::string model;
    std::string adapter;
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
  command->add_option("--perplexity", options->perplexity,
                      "Score each line of FILE as plain text under --model (token ids, log-probability, tokens) "
                      "instead; no avatar needed");
  command->add_option("--model", options->model, "With --perplexity: a Hugging Face chat checkpoint directory");
  command->add_option("--adapter", options->adapter,
                      "With --perplexity: a LoRA adapter directory (PEFT layout, e.g. models/persona) applied to --model");
  command->add_flag("--json", options->json, "Print the JSON document only (format: docs/FORMATS.md)");
  command->callback([options, &globals] {
    if (!options->perplexity.empty() || !options->model.empty() || !options->adapter.empty()) {
      if (options->perplexity.empty() || options->model.empty()) {
        throw InputError("--perplexity FILE and --model DIR go together (and --adapter DIR goes with them)");
      }
      auto result = score_lines(options->perplexity, options->model, options->adapter);
      if (options->json) {
        std::printf("%s\n", result.dump(2).c_str());
      } else {
        std::printf("%s: %d lines, %lld tokens, log-probability %.3f, perplexity %.3f\n", options->perplexity.c_str(),
                    int(result["lines"].size()), static_cast<long long>(result["total_tokens"].get<int64_t>()),
                    result["total_log_probability"].get<double>(), result["perplexity"].get<double>());
      }
      return;
    }
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
