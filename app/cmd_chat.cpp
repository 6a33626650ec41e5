// dself chat: talk with the persona, one reply or an interactive session.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "core/catalog.h"
#include "core/error.h"
#include "persona/persona.h"

namespace dself {

namespace {

struct ChatOptions {
  std::string message;
  std::string engine = "extractive";
  int64_t conversation = 0;
  bool json = false;
  persona::PersonaParams params;
  persona::OpenAiOptions openai;
  persona::LlmOptions llm;
};

std::string clock_of(double s) {
  int total = static_cast<int>(s);
  return fmt::format("{}:{:02}.{}", total / 60, total % 60, static_cast<int>((s - total) * 10));
}

nlohmann::json reply_json(const persona::Reply& reply, int64_t conversation_id, const std::string& engine) {
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& s : reply.sources) {
    sources.push_back(
        {{"source_id", s.source_id}, {"title", s.title}, {"start_s", s.start_s}, {"end_s", s.end_s}, {"text", s.text}});
  }
  return {{"conversation_id", conversation_id}, {"engine", engine},    {"kind", reply.kind},
          {"grounded", reply.grounded},         {"reply", reply.text}, {"sources", sources}};
}

std::string sources_json(const std::vector<persona::SourceRef>& sources) {
  nlohmann::json refs = nlohmann::json::array();
  for (const auto& s : sources) {
    refs.push_back({{"source_id", s.source_id}, {"title", s.title}, {"start_s", s.start_s}, {"end_s", s.end_s}});
  }
  return refs.dump();
}

// One turn: streams the reply (text mode) and prints its sources; records both messages in the
// catalog.
void turn(Catalog& catalog, persona::ChatEngine& engine, int64_t conversation_id,
          std::vector<persona::Message>& history, const std::string& message, bool json) {
  history.push_back({"user", message, {}});
  catalog.add_message({conversation_id, "user", message, "[]", ""});
  persona::Reply reply = engine.reply(history, [json](std::string_view piece) {
    if (json) return true;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (json) {
    std::printf("%s\n", reply_json(reply, conversation_id, engine.name()).dump().c_str());
  } else {
    std::printf("\n");
    for (const auto& s : reply.sources) {
      std::printf("  source: %s (source %lld) %s-%s\n", s.title.c_str(), static_cast<long long>(s.source_id),
                  clock_of(s.start_s).c_str(), clock_of(s.end_s).c_str());
    }
  }
  std::fflush(stdout);
  history.push_back({"assistant", reply.text, reply.sources});
  catalog.add_message({conversation_id, "assistant", reply.text, sources_json(reply.sources), ""});
}

}  // namespace

void add_llm_options(CLI::App& command, persona::LlmOptions& o) {
  command.add_option("--model", o.model_dir,
                     "llm engine: a Hugging Face chat checkpoint directory (Llama, Qwen2, SmolLM: config.json, "
                     "model.safetensors, tokenizer.json, tokenizer_config.json); never downloaded");
  command.add_option("--llm-max-tokens", o.max_tokens, "llm engine: longest reply, tokens")
      ->check(CLI::Range(1, 8192))
      ->capture_default_str();
  command.add_option("--llm-temperature", o.temperature, "llm engine: sampling temperature (0: greedy)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  command.add_option("--llm-top-p", o.top_p, "llm engine: nucleus sampling, share of probability kept")
      ->check(CLI::Range(0.001, 1.0))
      ->capture_default_str();
  command.add_option("--llm-top-k", o.top_k, "llm engine: keep the k most likely tokens (0: all)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  command.add_option("--llm-repetition-penalty", o.repetition_penalty, "llm engine: >1 discourages repeats (1: off)")
      ->check(CLI::Range(0.01, 10.0))
      ->capture_default_str();
  command.add_option("--llm-seed", o.seed, "llm engine: sampling seed (same seed, same reply)")->capture_default_str();
  command.add_option("--llm-context", o.context_length,
                     "llm engine: tokens of conversation kept (at most the model's own; older turns are dropped)")
      ->check(CLI::Range(64, 1 << 20))
      ->capture_default_str();
  command.add_option("--llm-threads", o.threads, "llm engine: CPU threads (0: libtorch's default)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  command.add_option("--adapter", o.adapter_dir,
                     "llm engine: a LoRA adapter directory (PEFT layout) to apply; default: the person's own "
                     "(models/persona, from `dself train persona`) when it was trained on --model");
  command.add_flag("--no-adapter", o.no_adapter, "llm engine: the base model alone, even when the person's adapter fits it");
  command.add_flag("--merge-adapter", o.merge_adapter,
                   "llm engine: merge the adapter into the weights at load (W + alpha/r * B A: no cost per token)");
}

void add_chat_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<ChatOptions>();
  auto* command = app.add_subcommand("chat", "Talk with the persona: one reply to MESSAGE, or a session on stdin");
  command->add_option("message", options->message, "What to say; without it, read lines from stdin until EOF or /quit");
  command->add_option("--engine", options->engine,
                      "Chat engine: extractive (the person's own sentences), openai (a server), llm (a local model)")
      ->check(CLI::IsMember({"extractive", "openai", "llm"}))
      ->capture_default_str();
  add_llm_options(*command, options->llm);
  command->add_option("--llm-url", options->openai.url,
                      "openai engine: the server's base URL, e.g. http://127.0.0.1:8000/v1 (key: $DSELF_LLM_API_KEY)");
  command->add_option("--llm-model", options->openai.model, "openai engine: the model name");
  command->add_option("--llm-timeout", options->openai.timeout_s, "openai engine: seconds for a whole reply")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--conversation", options->conversation,
                      "Continue conversation ID (from an earlier reply's conversation_id): follow-ups lean on it and "
                      "nothing said in it is repeated");
  command->add_flag("--json", options->json, "Print each reply as one JSON line (format: docs/FORMATS.md)");
  command->add_option("--max-message-chars", options->params.max_message_chars, "Longest message accepted, characters")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  command->footer(
      "Replies are the person's own sentences, each with where it was said (source, start-end).\n"
      "Needs `dself prepare` first. The conversation is kept in the catalog (<avatar>/dself.db).");
  command->callback([options, command, &globals] {
    // `dself chat ""` is an empty message (an error); `dself chat` alone is a session.
    bool interactive = command->count("message") == 0;
    if (!interactive) persona::check_message(options->message, options->params);
    if (options->engine == "openai") persona::check_openai_options(options->openai);  // before anything loads
    if (options->engine == "llm" && options->llm.model_dir.empty()) {
      throw InputError("--engine llm needs --model DIR: a Hugging Face chat checkpoint directory (docs/LLM.md)");
    }
    persona::Memory memory(globals.avatar, options->params);
    std::unique_ptr<persona::ChatEngine> engine;
    if (options->engine == "openai") {
      if (const char* key = std::getenv("DSELF_LLM_API_KEY")) options->openai.api_key = key;
      engine = persona::make_openai_engine(memory, options->openai);
    } else if (options->engine == "llm") {
      engine = persona::make_llm_engine(memory, options->llm);
    } else {
      engine = persona::make_extractive_engine(memory);
    }
    Catalog catalog(globals.avatar);
    std::vector<persona::Message> history;
    int64_t conversation_id = options->conversation;
    if (conversation_id != 0) {
      history = persona::conversation_history(globals.avatar, conversation_id);
    } else {
      conversation_id = catalog.start_conversation(engine->name());
    }
    if (!interactive) {
      turn(catalog, *engine, conversation_id, history, options->message, options->json);
      if (!options->json && isatty(STDERR_FILENO)) {
        std::fprintf(stderr, "(conversation %lld: go on with --conversation %lld)\n",
                     static_cast<long long>(conversation_id), static_cast<long long>(conversation_id));
      }
      return;
    }
    bool tty = isatty(STDIN_FILENO);
    if (tty && !options->json) std::fprintf(stderr, "Talking with the persona; /quit or Ctrl-D to end.\n");
    std::string line;
    while (true) {
      if (tty) std::fprintf(stderr, "you> ");
      if (!std::getline(std::cin, line)) break;
      if (line == "/quit" || line == "/exit") break;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        persona::check_message(line, options->params);
      } catch (const InputError& e) {
        if (options->json) {
          std::printf("%s\n", nlohmann::json{{"error", e.what()}}.dump().c_str());
        } else {
          std::printf("error: %s\n", e.what());
        }
        std::fflush(stdout);
        continue;
      }
      turn(catalog, *engine, conversation_id, history, line, options->json);
    }
  });
}

}  // namespace dself
