// The llm engine: the person's memory decides what may be answered, a local chat model says it.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <ATen/Parallel.h>

#include <map>
#include <nlohmann/json.hpp>
#include <mutex>

#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "hf/tokenizer.h"
#include "llm/llm.h"
#include "persona/detail/text.h"
#include "persona/persona.h"

namespace dself::persona {

namespace {

// What is read from a checkpoint directory once and shared by every engine on it.
struct LoadedModel {
  LoadedModel(llm::Model m, hf::Tokenizer t, llm::ChatTemplate c)
      : model(std::move(m)), tokenizer(std::move(t)), chat_template(std::move(c)) {}
  llm::Model model;
  hf::Tokenizer tokenizer;
  llm::ChatTemplate chat_template;
  std::vector<int64_t> stop_tokens;
  std::mutex mutex;  // one generation at a time on this model (the CPU is the limit anyway)
};

std::string fs_key(const LlmOptions& o) {
  auto norm = [](const std::filesystem::path& p) {
    return p.empty() ? std::string() : std::filesystem::absolute(p).lexically_normal().string();
  };
  return fmt::format("{}|{}|{}|{}", norm(o.model_dir), o.context_length, norm(o.adapter_dir), o.merge_adapter);
}

std::shared_ptr<LoadedModel> load_shared(const LlmOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<LoadedModel>> loaded;
  const std::string key = fs_key(options);
  std::lock_guard lock(mutex);
  if (auto existing = loaded[key].lock()) return existing;
  llm::LoadOptions load;
  load.context_length = options.context_length;
  auto template_ = llm::read_chat_template(options.model_dir);  // before the weights: a cheap refusal first
  auto tokenizer = hf::Tokenizer::load(options.model_dir);
  auto model = llm::Model::load(options.model_dir, load);
  if (!options.adapter_dir.empty()) {
    auto adapter = llm::load_adapter(options.adapter_dir, model);
    if (options.merge_adapter) {
      llm::merge_adapter(model, adapter);
    } else {
      llm::apply_adapter(model, adapter);
    }
    spdlog::info("llm: the LoRA adapter {} is {} (r {}, alpha {}, {})", options.adapter_dir.string(),
                 options.merge_adapter ? "merged into the weights" : "applied", adapter.config.rank,
                 adapter.config.alpha, fmt::join(adapter.config.target_modules, ","));
  }
  auto shared = std::make_shared<LoadedModel>(std::move(model), std::move(tokenizer), template_);
  for (int64_t id : shared->model.config().eos_token_ids) shared->stop_tokens.push_back(id);
  for (const auto& s : template_.stop_strings) {
    if (auto id = shared->tokenizer.token_to_id(s)) shared->stop_tokens.push_back(*id);
  }
  if (shared->stop_tokens.empty()) {
    throw InputError(fmt::format("{}: neither config.json's eos_token_id nor the chat template's end token ({}) is "
                                 "known to the tokenizer, so a reply could not end",
                                 options.model_dir.string(), template_.stop_strings.front()));
  }
  loaded[key] = shared;
  return shared;
}

bool ends_inside_a_character(const std::string& text) {
  // hf::Tokenizer::decode writes U+FFFD for bytes that do not yet make a character.
  return text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

class LlmEngine : public ChatEngine {
 public:
  LlmEngine(const Memory& memory, LlmOptions options)
      : memory_(memory), options_(std::move(options)), loaded_(load_shared(options_)),
        extractive_(make_extractive_engine(memory)) {}
  std::string name() const override { return "llm"; }

  Reply reply(const std::vector<Message>& history, const TextCallback& on_text) override {
    // The memory's judgement first: a greeting, a thanks, a question the person never talked
    // about are answered (or declined) as the extractive engine does.
    Reply judged = extractive_->reply(history, nullptr);
    if (!judged.grounded || judged.kind != "answer") {
      if (on_text && !on_text(judged.text)) judged.stopped = true;
      return judged;
    }
    std::string question;
    for (auto it = history.rbegin(); it != history.rend() && question.empty(); ++it) {
      if (it->role == "user") question = it->text;
    }
    auto hits = memory_.search(question, memory_.params().retrieve_k);

    auto& m = *loaded_;
    std::lock_guard lock(m.mutex);
    if (options_.threads > 0) at::set_num_threads(options_.threads);
    auto prompt = prompt_tokens(history, hits);

    llm::GenerateParams params;
    params.max_new_tokens = options_.max_tokens;
    params.sampling.temperature = options_.temperature;
    params.sampling.top_p = options_.top_p;
    params.sampling.top_k = options_.top_k;
    params.sampling.repetition_penalty = options_.repetition_penalty;
    params.sampling.seed = options_.seed;

    Reply reply;
    reply.kind = "answer";
    reply.grounded = true;
    for (const auto& h : hits) reply.sources.push_back(h.ref);
    std::vector<int32_t> generated;
    size_t emitted = 0;
    std::string text;
    auto g = llm::generate(m.model, cache(), prompt, m.stop_tokens, params, [&](int64_t token) {
      generated.push_back(int32_t(token));
      text = m.tokenizer.decode(generated, /*skip_special=*/true);
      if (ends_inside_a_character(text) || text.size() <= emitted) return true;
      const std::string piece = text.substr(emitted);
      emitted = text.size();
      return !on_text || on_text(piece);
    });
    reply.stopped = g.stop_reason == "callback";
    // The reply is over: bytes that never made a character are sent as they decode (U+FFFD).
    if (!reply.stopped && emitted < text.size() && on_text) {
      reply.stopped = !on_text(text.substr(emitted));
    }
    reply.text = text;
    if (g.stop_reason == "context") spdlog::warn("llm: the reply reached the context length and was cut");
    spdlog::debug("llm: {} prompt tokens ({} reused from the cache), {} generated, ended by {}", g.prompt_tokens,
                  g.reused_tokens, g.tokens.size(), g.stop_reason);
    return reply;
  }

 private:
  llm::KvCache& cache() {
    if (!cache_) cache_ = std::make_unique<llm::KvCache>(loaded_->model);
    return *cache_;
  }

  // The conversation in the checkpoint's chat format; when it does not fit the context with room
  // for the reply, the oldest turns are dropped (said in the log). The system prompt and the
  // question always stay.
  std::vector<int64_t> prompt_tokens(const std::vector<Message>& history, const std::vector<Hit>& hits) {
    auto& m = *loaded_;
    const int64_t room = m.model.context_length() - options_.max_tokens;
    size_t first = 0;
    while (true) {
      // The template's own markers are special tokens; nothing in the messages may pose as one.
      std::vector<llm::ChatMessage> messages = {
          {"system", llm::without_special_tokens(system_prompt(memory_.card(), hits))}};
      for (size_t i = first; i < history.size(); ++i)
        messages.push_back({history[i].role, llm::without_special_tokens(history[i].text)});
      const auto ids = m.tokenizer.encode(llm::format_chat(m.chat_template, messages), /*allow_special=*/true);
      if (int64_t(ids.size()) <= room) {
        if (first > 0) {
          spdlog::info("llm: the conversation is longer than the context ({} tokens with room for a {}-token "
                       "reply): the oldest {} message(s) were left out",
                       m.model.context_length(), options_.max_tokens, first);
        }
        return std::vector<int64_t>(ids.begin(), ids.end());
      }
      if (first + 1 >= history.size()) {
        throw InputError(fmt::format("the question with the persona and its passages takes {} tokens, more than the "
                                     "{} the context holds with room for a {}-token reply; ask a shorter question or "
                                     "raise --llm-context",
                                     ids.size(), m.model.context_length(), options_.max_tokens));
      }
      ++first;
    }
  }

  const Memory& memory_;
  LlmOptions options_;
  std::shared_ptr<LoadedModel> loaded_;
  std::unique_ptr<ChatEngine> extractive_;
  std::unique_ptr<llm::KvCache> cache_;  // this conversation's: the earlier turns are not recomputed
};

}  // namespace

std::filesystem::path person_adapter(const std::filesystem::path& avatar, const std::filesystem::path& model_dir) {
  const auto dir = workspace::model_dir(avatar, "persona");
  if (!std::filesystem::is_regular_file(dir / "metrics.json") ||
      !std::filesystem::is_regular_file(dir / "adapter_model.safetensors") ||
      !std::filesystem::is_regular_file(model_dir / "config.json")) {
    return {};
  }
  const auto metrics = nlohmann::json::parse(read_file(dir / "metrics.json"), nullptr, false);
  if (!metrics.is_object() || metrics.value("base_fingerprint", "") != llm::base_fingerprint(model_dir)) return {};
  return dir;
}

std::unique_ptr<ChatEngine> make_llm_engine(const Memory& memory, const LlmOptions& options) {
  if (options.model_dir.empty()) throw InputError("--engine llm needs --model DIR (a Hugging Face chat checkpoint)");
  if (options.max_tokens < 1) throw InputError("--llm-max-tokens must be at least 1");
  if (options.context_length < 64) throw InputError("--llm-context must be at least 64 tokens");
  LlmOptions o = options;
  if (o.no_adapter) {
    o.adapter_dir.clear();
  } else if (o.adapter_dir.empty()) {
    o.adapter_dir = person_adapter(memory.avatar(), o.model_dir);
  }
  return std::make_unique<LlmEngine>(memory, o);
}

}  // namespace dself::persona
