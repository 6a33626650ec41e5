// The persona model's training loop: the base checkpoint frozen, a LoRA adapter trained by AdamW
// on the person's conversations, one conversation per step; checkpointed (adapter, optimizer
// moments, step) so that a stopped run resumes exactly where it was.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/workspace.h"
#include "hf/tokenizer.h"
#include "hf/torch.h"
#include "train/detail/persona.h"

namespace dself::train {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kFormatVersion = 1;
constexpr int kMaxDefaultSteps = 600;
constexpr double kClipNorm = 1.0;
// The first line of the llm engine's system prompt (persona/openai.cpp system_prompt): the adapter
// learns to answer in the person's words under the instruction it is given at chat time. The
// engine's passages are left out here: they would make each step several times longer.
const char* const kSystem =
    "You are speaking as the person in these videos, in the first person, in their own words and style.";

int default_steps(size_t conversations) { return int(std::min<size_t>(2 * conversations, kMaxDefaultSteps)); }

std::vector<llm::TrainingExample> encode(const std::vector<PersonaConversation>& conversations,
                                         const hf::Tokenizer& tokenizer, const llm::ChatTemplate& tmpl,
                                         int max_tokens) {
  const std::string& end_marker = tmpl.stop_strings.front();
  const auto end = tokenizer.token_to_id(end_marker);
  if (!end) {
    throw InputError(fmt::format("{}: the chat template's end-of-turn token {} is not in the vocabulary",
                                 tokenizer.source().string(), end_marker));
  }
  std::vector<llm::TrainingExample> examples;
  for (const auto& c : conversations) {
    const auto prompt = tokenizer.encode(
        llm::format_chat(tmpl, {{"system", kSystem}, {"user", llm::without_special_tokens(c.question)}}),
        /*allow_special=*/true);
    const auto reply = tokenizer.encode(llm::without_special_tokens(c.reply));
    if (int(prompt.size()) + 2 > max_tokens) continue;
    llm::TrainingExample e;
    for (int32_t t : prompt) e.tokens.push_back(t), e.predicted.push_back(0);
    for (int32_t t : reply) e.tokens.push_back(t), e.predicted.push_back(1);
    e.tokens.push_back(*end), e.predicted.push_back(1);
    if (int(e.tokens.size()) > max_tokens) {
      e.tokens.resize(size_t(max_tokens));
      e.predicted.resize(size_t(max_tokens));
    }
    examples.push_back(std::move(e));
  }
  return examples;
}

// exp(−mean log-probability per token) of the sentences as plain text (as `dself eval persona
// --perplexity` scores a file's lines).
double perplexity(const llm::Model& model, const hf::Tokenizer& tokenizer, const std::vector<std::string>& lines,
                  int64_t* token_count = nullptr) {
  double total = 0;
  int64_t count = 0;
  for (const auto& line : lines) {
    const auto ids32 = tokenizer.encode(line);
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    if (ids.size() < 2) continue;
    if (int64_t(ids.size()) > model.context_length()) ids.resize(size_t(model.context_length()));
    const auto score = llm::score_tokens(model, ids);
    total += score.log_probability;
    count += score.token_count;
  }
  if (token_count) *token_count = count;
  return count > 0 ? std::exp(-total / double(count)) : 0;
}

void write_checkpoint(const fs::path& dir, const llm::Adapter& adapter, const llm::AdamW& adam, const json& state) {
  fs::create_directories(dir);
  safetensors::File file;
  for (const auto& [name, t] : adapter.tensors) file.tensors["adapter." + name] = hf::from_torch(t.detach());
  for (const auto& [name, t] : adam.m) file.tensors["m." + name] = hf::from_torch(t);
  for (const auto& [name, t] : adam.v) file.tensors["v." + name] = hf::from_torch(t);
  safetensors::write(dir / "state.safetensors", file);
  write_file_atomic(dir / "state.json", state.dump(2) + "\n");
}

// The checkpoint when it was made for this input; nothing otherwise.
std::optional<json> read_checkpoint(const fs::path& dir, const std::string& hash, llm::Adapter& adapter,
                                    llm::AdamW& adam) {
  if (!fs::is_regular_file(dir / "state.json") || !fs::is_regular_file(dir / "state.safetensors")) return {};
  try {
    auto state = json::parse(read_file(dir / "state.json"));
    if (state.value("hash", "") != hash) return {};
    const auto file = safetensors::read(dir / "state.safetensors");
    for (auto& [name, t] : adapter.tensors) {
      auto loaded = hf::to_torch(file.tensors.at("adapter." + name));
      if (loaded.sizes() != t.sizes()) return {};
      t = loaded;
    }
    for (const auto& [name, t] : file.tensors) {
      if (name.rfind("m.", 0) == 0) adam.m[name.substr(2)] = hf::to_torch(t);
      if (name.rfind("v.", 0) == 0) adam.v[name.substr(2)] = hf::to_torch(t);
    }
    adam.step = state.at("adam_step").get<int64_t>();
    return state;
  } catch (const std::exception& e) {
    spdlog::warn("train persona: the checkpoint in {} cannot be read ({}): starting over", dir.string(), e.what());
    return {};
  }
}

}  // namespace

std::string persona_input_hash(const persona::Memory& memory, const PersonaTrainOptions& o) {
  std::string text = fmt::format("dself-persona {}\n", kFormatVersion);
  for (const auto& s : memory.all_sentences()) text += s.text + "\n";
  const json options = {{"base", llm::base_fingerprint(o.base)},
                        {"r", o.lora.rank},
                        {"alpha", o.lora.alpha},
                        {"dropout", o.lora.dropout},
                        {"targets", o.lora.target_modules},
                        {"steps", o.steps},
                        {"learning_rate", o.learning_rate},
                        {"max_tokens", o.max_tokens},
                        {"seed", o.seed}};
  return hash_bytes(text + options.dump());
}

PersonaTrainResult train_persona_adapter(const PersonaTrainOptions& o) {
  llm::check_lora_config(o.lora, "--lora-rank/--lora-alpha/--lora-dropout/--lora-targets");
  if (o.max_tokens < 16) throw InputError("--persona-max-tokens must be at least 16");
  if (!(o.learning_rate > 0)) throw InputError("--learning-rate must be a positive number");
  torch::set_num_threads(o.threads);
  // Cheap refusals first: the template and the tokenizer before the weights.
  const auto tmpl = llm::read_chat_template(o.base);
  const auto tokenizer = hf::Tokenizer::load(o.base);
  persona::Memory memory(o.avatar);
  const PersonaData data = persona_data(memory);
  if (data.train.size() < 2 || data.held_out.empty()) {
    throw InputError(
        fmt::format("the avatar at {} has {} sentences: too few to fine-tune on (at least 3 are needed, "
                    "one held out)",
                    o.avatar.string(), memory.sentence_count()));
  }
  llm::LoadOptions load;
  load.context_length = std::max(o.max_tokens, 512);
  auto model = llm::Model::load(o.base, load);
  const auto examples = encode(data.train, tokenizer, tmpl, o.max_tokens);
  if (examples.empty()) {
    throw InputError(fmt::format("--persona-max-tokens {} leaves no room for a reply after the prompt", o.max_tokens));
  }
  const std::string hash = persona_input_hash(memory, o);
  const int step_count = o.steps > 0 ? o.steps : default_steps(examples.size());
  const fs::path model_dir = workspace::model_dir(o.avatar, "persona");
  const fs::path checkpoint_dir = model_dir / "checkpoint";

  llm::LoraConfig lora = o.lora;
  lora.base_model = fs::absolute(o.base).lexically_normal().string();
  llm::Adapter adapter = llm::new_adapter(model, lora, o.seed);
  llm::AdamW adam;
  PersonaTrainResult result;
  result.step_count = step_count;
  result.conversations = int(examples.size());
  result.held_out_sentences = int(data.held_out.size());

  int step = 0;
  double elapsed_before = 0;
  int64_t tokens_before = 0;
  json curve = json::array();
  double loss_sum = 0;  // since the last point of the curve
  int loss_count = 0;
  double ppl_before = 0;
  int64_t held_out_tokens = 0;
  if (auto state = read_checkpoint(checkpoint_dir, hash, adapter, adam)) {
    step = (*state)["step"];
    elapsed_before = (*state)["elapsed_s"];
    tokens_before = (*state)["tokens"];
    curve = (*state)["curve"];
    ppl_before = (*state)["perplexity_before"];
    held_out_tokens = (*state)["held_out_tokens"];
    loss_sum = (*state)["loss_sum"];
    loss_count = (*state)["loss_count"];
    spdlog::info("train persona: resuming at step {} of {}", step, step_count);
  } else {
    ppl_before = perplexity(model, tokenizer, data.held_out, &held_out_tokens);
  }
  for (auto& [name, t] : adapter.tensors) t.set_requires_grad(true);
  llm::apply_adapter(model, adapter);

  const auto started = Clock::now();
  int64_t tokens_run = 0;
  auto run_s = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  auto checkpoint = [&] {
    write_checkpoint(checkpoint_dir, adapter, adam,
                     {{"hash", hash},
                      {"step", step},
                      {"step_count", step_count},
                      {"adam_step", adam.step},
                      {"seed", o.seed},
                      {"threads", o.threads},
                      {"elapsed_s", elapsed_before + run_s()},
                      {"tokens", tokens_before + tokens_run},
                      {"curve", curve},
                      {"loss_sum", loss_sum},
                      {"loss_count", loss_count},
                      {"perplexity_before", ppl_before},
                      {"held_out_tokens", held_out_tokens}});
  };
  Progress progress("train persona", step_count, "steps", o.progress);
  progress.set_done(step);
  auto last_checkpoint = Clock::now();
  const int curve_every = std::max(1, step_count / 50);
  const int warmup = std::max(1, step_count / 20);
  std::vector<size_t> order;
  int64_t order_epoch = -1;
  for (; step < step_count; ++step) {
    const bool out_of_time = o.time_budget_s > 0 && run_s() >= o.time_budget_s;
    if ((o.should_stop && o.should_stop()) || out_of_time) {
      checkpoint();
      result.steps_done = step;
      spdlog::info("train persona: stopped at step {} of {} (checkpointed; run again to resume)", step, step_count);
      return result;
    }
    if (o.checkpoint_every_s > 0 &&
        std::chrono::duration<double>(Clock::now() - last_checkpoint).count() >= o.checkpoint_every_s) {
      checkpoint();
      last_checkpoint = Clock::now();
    }
    const int64_t epoch = step / int64_t(examples.size());
    if (epoch != order_epoch) order = epoch_order(examples.size(), o.seed, order_epoch = epoch);
    const auto& example = examples[order[size_t(step) % examples.size()]];
    // Dropout draws from a generator seeded per step: a resumed run draws what an unbroken one would.
    auto generator = at::detail::createCPUGenerator(o.seed * 1000003ULL + uint64_t(step));
    auto loss = llm::training_loss(model, example, lora.dropout, &generator);
    loss.backward();
    std::vector<torch::Tensor> params;
    for (auto& [name, t] : adapter.tensors) params.push_back(t);
    torch::nn::utils::clip_grad_norm_(params, kClipNorm);
    const double lr = o.learning_rate * std::min(1.0, double(step + 1) / warmup);
    adam.update(adapter.tensors, lr);
    tokens_run += int64_t(example.tokens.size());
    loss_sum += loss.item<double>();
    ++loss_count;
    progress.advance();
    if ((step + 1) % curve_every == 0 || step + 1 == step_count) {
      curve.push_back({{"step", step + 1}, {"train_loss", loss_sum / loss_count}});
      spdlog::debug("train persona: step {}/{}: loss {:.4f}", step + 1, step_count, loss_sum / loss_count);
      loss_sum = 0;
      loss_count = 0;
    }
  }
  progress.finish();
  const double training_s = run_s();
  for (auto& [name, t] : adapter.tensors) t.set_requires_grad(false);
  const double ppl_after = perplexity(model, tokenizer, data.held_out);

  save_adapter(model_dir, adapter);
  std::string held_out_text;
  for (const auto& s : data.held_out) held_out_text += s + "\n";
  write_file_atomic(model_dir / "held_out.txt", held_out_text);
  result.perplexity_before = ppl_before;
  result.perplexity_after = ppl_after;
  result.tokens_per_s = training_s > 0 ? double(tokens_run) / training_s : 0;
  const json metrics = {
      {"format", "dself-persona"},
      {"version", kFormatVersion},
      {"base", lora.base_model},
      {"base_fingerprint", llm::base_fingerprint(o.base)},
      {"lora",
       {{"r", lora.rank}, {"alpha", lora.alpha}, {"dropout", lora.dropout}, {"target_modules", lora.target_modules}}},
      {"conversations", examples.size()},
      {"held_out_sentences", data.held_out.size()},
      {"held_out_tokens", held_out_tokens},
      {"held_out_perplexity_before", ppl_before},
      {"held_out_perplexity_after", ppl_after},
      {"steps", step_count},
      {"learning_rate", o.learning_rate},
      {"seed", o.seed},
      {"threads", o.threads},
      {"loss_curve", curve},
      {"train_tokens", tokens_before + tokens_run},
      {"tokens_per_s", result.tokens_per_s},
      {"training_s", elapsed_before + training_s}};
  write_file_atomic(model_dir / "metrics.json", metrics.dump(2) + "\n");
  fs::remove_all(checkpoint_dir);
  result.complete = true;
  result.steps_done = step_count;
  return result;
}

}  // namespace dself::train
