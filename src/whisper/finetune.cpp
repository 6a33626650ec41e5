// Fine-tuning Whisper's decoder on the person's clips: the data (encoded once), the loop, its
// checkpoints and the Hugging Face directory it writes. docs/STT.md, "Fine-tuning Whisper".
#include "whisper/finetune.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>

#include "core/random.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/workspace.h"
#include "hf/checkpoint.h"
#include "hf/torch.h"
#include "media/media.h"
#include "speech/speech.h"
#include "transcript/transcript.h"
#include "whisper/detail/decode.h"
#include "whisper/detail/frontend.h"

namespace dself::whisper {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kCheckpointVersion = 1;

std::vector<float> first_window_of(const fs::path& wav, size_t n_samples) {
  if (!fs::exists(wav)) throw InputError(fmt::format("{}: no such clip", wav.string()));
  auto samples = media::decode_audio(wav, kSampleRate);
  if (samples.size() > n_samples) samples.resize(n_samples);
  return samples;
}

// A clip ready for teacher forcing: the frozen encoder's features, input = prompt + text, target =
// text + end of text, the prompt's positions ignored (ref: Hugging Face's Whisper fine-tuning
// recipe, labels after the decoder's start tokens).
struct Example {
  torch::Tensor features;  // [1, S, d]
  torch::Tensor input;     // [1, T] int64
  torch::Tensor target;    // [T] int64, -100 where not scored
};

std::vector<Example> examples_of(Model::Impl& m, const std::vector<LabelledAudio>& clips, const std::string& language,
                                 const StopRequested& should_stop) {
  const auto& c = m.net->config;
  const size_t window = size_t(c.n_frames()) * kHop;
  const auto prompt = sot_sequence(m, language, /*timestamps=*/false);
  std::vector<Example> out;
  torch::NoGradGuard no_grad;
  for (const auto& clip : clips) {
    stop_if_requested(should_stop, "whisper fine-tune");
    const auto mel = log_mel(first_window_of(clip.wav, window), c.n_mels, c.n_frames()).unsqueeze(0);
    auto text = m.tokenizer.encode(" " + clip.text);
    const size_t room = size_t(c.max_target_positions) - prompt.size();
    if (text.size() + 1 > room) text.resize(room - 1);
    std::vector<int64_t> in(prompt.begin(), prompt.end()), target(prompt.size() - 1, -100);
    in.insert(in.end(), text.begin(), text.end());
    target.insert(target.end(), text.begin(), text.end());
    target.push_back(m.special.eot);
    out.push_back({m.net->encoder->forward(mel), torch::tensor(in).unsqueeze(0), torch::tensor(target)});
  }
  return out;
}

torch::Tensor example_loss(Model::Impl& m, const Example& e) {
  auto cache = m.net->decoder->start(e.features);
  const auto logits = m.net->decoder->forward(e.input, cache)[0];
  return torch::nn::functional::cross_entropy(logits, e.target,
                                              torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

struct HeldOut {
  double wer = 0;
  double loss = 0;  // mean over clips of the mean token cross-entropy
};

// Greedy decoding without timestamps (temperature 0, no fallback) against the labels, and the
// labels' teacher-forced loss.
HeldOut held_out_figures(Model::Impl& m, const std::vector<LabelledAudio>& clips, const std::vector<Example>& examples,
                         const FineTuneParams& p) {
  HeldOut out;
  if (clips.empty()) return out;
  TranscribeParams params;
  params.timestamps = false;
  params.temperatures = {0.0f};
  params.language = p.language;
  torch::Generator generator = at::detail::createCPUGenerator(p.seed);
  std::vector<std::string> ref, hyp;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < clips.size(); ++i) {
    const auto r = decode_window(m, examples[i].features, sot_sequence(m, p.language, false), 0.0f, params, generator);
    for (auto& w : transcript::scoring_words(clips[i].text)) ref.push_back(w);
    for (auto& w : transcript::scoring_words(text_of(m, r.tokens))) hyp.push_back(w);
    out.loss += example_loss(m, examples[i]).item<double>() / double(clips.size());
  }
  out.wer = transcript::word_error_rate(ref, hyp);
  return out;
}

// AdamW's state is keyed by the parameter's TensorImpl (torch/optim/adamw.cpp).
std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// The checkpoint: decoder.safetensors (the decoder's weights, F32), optimizer.safetensors
// ("exp_avg.<name>", "exp_avg_sq.<name>", AdamW's step in the metadata) and state.json {"version",
// "hash", "step", "step_count", "training_s", "step_loss", "held_out_wer_before",
// "held_out_loss_before"}; built beside the directory and swapped in whole.
void write_checkpoint(const fs::path& dir, Model::Impl& m, torch::optim::AdamW& optimizer, const json& state) {
  const fs::path next = dir.parent_path() / ("." + dir.filename().string() + ".staging");
  fs::remove_all(next);
  fs::create_directories(next);
  safetensors::File weights, moments;
  for (const auto& p : m.net->decoder->named_parameters()) {
    weights.tensors[p.key()] = hf::from_torch(p.value());
    auto it = optimizer.state().find(state_key(p.value()));
    if (it == optimizer.state().end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    moments.tensors["exp_avg." + p.key()] = hf::from_torch(s.exp_avg());
    moments.tensors["exp_avg_sq." + p.key()] = hf::from_torch(s.exp_avg_sq());
    moments.metadata["step"] = std::to_string(s.step());
  }
  safetensors::write(next / "decoder.safetensors", weights);
  safetensors::write(next / "optimizer.safetensors", moments);
  write_file_atomic(next / "state.json", state.dump(1));
  replace_directory(next, dir);
}

// The checkpoint's state when it is a run with this hash (the weights and AdamW's state loaded);
// nothing otherwise (none, another run's, unreadable: a fresh run, said in the log).
std::optional<json> read_checkpoint(const fs::path& dir, const std::string& hash, Model::Impl& m,
                                    torch::optim::AdamW& optimizer) {
  const fs::path state_path = dir / "state.json";
  if (!fs::exists(state_path)) return std::nullopt;
  try {
    auto state = json::parse(read_file(state_path));
    if (state.at("version").get<int>() != kCheckpointVersion || state.at("hash").get<std::string>() != hash) {
      spdlog::info("whisper fine-tune: {} is a run on other data, base or settings; starting afresh",
                   state_path.string());
      return std::nullopt;
    }
    const auto weights = safetensors::read(dir / "decoder.safetensors");
    const auto moments = safetensors::read(dir / "optimizer.safetensors");
    const std::string where = (dir / "decoder.safetensors").string();
    torch::NoGradGuard no_grad;
    for (auto& p : m.net->decoder->named_parameters()) {
      const std::vector<int64_t> shape(p.value().sizes().begin(), p.value().sizes().end());
      p.value().copy_(hf::to_torch(safetensors::expect(weights, p.key(), shape, where), where));
    }
    if (!moments.tensors.empty()) {
      const std::string owhere = (dir / "optimizer.safetensors").string();
      const int64_t step = std::stoll(moments.metadata.at("step"));
      for (const auto& p : m.net->decoder->named_parameters()) {
        const std::vector<int64_t> shape(p.value().sizes().begin(), p.value().sizes().end());
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(step);
        s->exp_avg(hf::to_torch(safetensors::expect(moments, "exp_avg." + p.key(), shape, owhere), owhere));
        s->exp_avg_sq(hf::to_torch(safetensors::expect(moments, "exp_avg_sq." + p.key(), shape, owhere), owhere));
        optimizer.state()[state_key(p.value())] = std::move(s);
      }
    }
    return state;
  } catch (const std::exception& e) {
    spdlog::warn("whisper fine-tune: ignoring unreadable checkpoint {}: {}", dir.string(), e.what());
    return std::nullopt;
  }
}

// config.json, model.safetensors (F32), the base's tokenizer and generation files, metrics.json:
// written into a directory beside out_dir, then swapped in whole.
void write_model(const fs::path& base, const fs::path& out_dir, Model::Impl& m, const json& metrics) {
  const fs::path staging = out_dir.parent_path() / ("." + out_dir.filename().string() + ".staging");
  fs::remove_all(staging);
  fs::create_directories(staging);
  auto config = m.net->config.json;
  config["torch_dtype"] = "float32";
  hf::write_checkpoint(staging, config, whisper_tensors(m.net));
  for (const char* name :
       {"tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json",
        "tokenizer_config.json", "normalizer.json", "generation_config.json", "preprocessor_config.json"})
    if (fs::exists(base / name)) fs::copy_file(base / name, staging / name, fs::copy_options::overwrite_existing);
  write_file_atomic(staging / "metrics.json", metrics.dump(1));
  replace_directory(staging, out_dir);
}

}  // namespace

FineTuneResult fine_tune(const fs::path& base, const std::vector<LabelledAudio>& train,
                         const std::vector<LabelledAudio>& held_out, const fs::path& out_dir, const FineTuneParams& p) {
  if (train.empty()) throw InputError("whisper fine-tune: no train utterances (run `dself prepare` first)");
  const auto started = Clock::now();
  torch::set_num_threads(std::max(1, p.n_threads));
  auto model = Model::load(base);
  auto& m = *model.impl;
  FineTuneResult result;
  result.n_train = int(train.size());
  result.n_held_out = int(held_out.size());
  result.step_count = p.steps > 0 ? p.steps : std::max(1, p.epochs) * int(train.size());

  // The frozen encoder runs once per clip; its parameters take no gradient.
  m.net->encoder->eval();
  for (auto& param : m.net->encoder->parameters()) param.set_requires_grad(false);
  const auto held = examples_of(m, held_out, p.language, p.should_stop);
  const auto examples = examples_of(m, train, p.language, p.should_stop);

  torch::optim::AdamW optimizer(m.net->decoder->parameters(),
                                torch::optim::AdamWOptions(p.learning_rate).weight_decay(p.weight_decay));
  int step = 0;
  double training_before = 0;
  HeldOut before;
  std::optional<json> state;
  if (!p.checkpoint_dir.empty()) state = read_checkpoint(p.checkpoint_dir, p.run_hash, m, optimizer);
  if (state) {
    step = (*state)["step"];
    training_before = (*state)["training_s"];
    result.step_loss = (*state)["step_loss"].get<std::vector<double>>();
    before = {(*state)["held_out_wer_before"], (*state)["held_out_loss_before"]};
    result.resumed_at = step;
    spdlog::info("whisper fine-tune: resuming at step {} of {}", step, result.step_count);
  } else {
    m.net->decoder->eval();
    before = held_out_figures(m, held_out, held, p);
  }
  result.held_out_wer_before = before.wer;
  result.held_out_loss_before = before.loss;

  const auto loop_started = Clock::now();
  auto training_s = [&] {
    return training_before + std::chrono::duration<double>(Clock::now() - loop_started).count();
  };
  auto checkpoint = [&] {
    if (p.checkpoint_dir.empty()) return;
    write_checkpoint(p.checkpoint_dir, m, optimizer,
                     {{"version", kCheckpointVersion},
                      {"hash", p.run_hash},
                      {"step", step},
                      {"step_count", result.step_count},
                      {"training_s", training_s()},
                      {"step_loss", result.step_loss},
                      {"held_out_wer_before", before.wer},
                      {"held_out_loss_before", before.loss}});
  };
  Progress progress("whisper fine-tune", result.step_count, "steps", p.progress);
  progress.set_done(step);
  const int log_every = std::max(1, result.step_count / 20);
  auto last_checkpoint = Clock::now();
  std::vector<size_t> order;
  int64_t order_epoch = -1;
  m.net->decoder->train();
  for (; step < result.step_count; ++step) {
    const bool out_of_time =
        p.time_budget_s > 0 && std::chrono::duration<double>(Clock::now() - loop_started).count() >= p.time_budget_s;
    if ((p.should_stop && p.should_stop()) || out_of_time) {
      checkpoint();
      result.steps_done = step;
      result.training_s = training_s();
      spdlog::info("whisper fine-tune: stopped at step {} of {} (checkpointed; run again to resume)", step,
                   result.step_count);
      return result;
    }
    const bool due = (p.checkpoint_every_s > 0 &&
                      std::chrono::duration<double>(Clock::now() - last_checkpoint).count() >= p.checkpoint_every_s) ||
                     (p.checkpoint_every_steps > 0 && step > result.resumed_at && step % p.checkpoint_every_steps == 0);
    if (due) {
      checkpoint();
      last_checkpoint = Clock::now();
    }
    const int64_t epoch = step / int64_t(examples.size());
    if (epoch != order_epoch) order = epoch_order(examples.size(), p.seed, order_epoch = epoch);
    const auto loss = example_loss(m, examples[order[size_t(step) % examples.size()]]);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    result.step_loss.push_back(loss.item<double>());
    progress.advance();
    if ((step + 1) % log_every == 0 || step + 1 == result.step_count)
      spdlog::info("whisper fine-tune: step {}/{}: loss {:.4f}", step + 1, result.step_count, result.step_loss.back());
  }
  progress.finish();
  m.net->decoder->eval();
  const auto after = held_out_figures(m, held_out, held, p);
  result.held_out_wer_after = after.wer;
  result.held_out_loss_after = after.loss;
  result.steps_done = result.step_count;
  result.training_s = training_s();
  result.complete = true;

  const bool worse = after.wer > before.wer || (after.wer == before.wer && !(after.loss <= before.loss));
  result.worse_than_base = worse;
  json metrics = {{"format", "dself-whisper-finetune"},
                  {"method", "decoder"},
                  {"base", fs::absolute(base).lexically_normal().string()},
                  {"base_model", model.describe()},
                  {"steps", result.step_count},
                  {"learning_rate", p.learning_rate},
                  {"weight_decay", p.weight_decay},
                  {"seed", p.seed},
                  {"threads", p.n_threads},
                  {"language", p.language.empty() ? "en" : p.language},
                  {"train_utterances", result.n_train},
                  {"held_out_utterances", result.n_held_out},
                  {"held_out_wer_before", before.wer},
                  {"held_out_wer_after", after.wer},
                  {"held_out_loss_before", before.loss},
                  {"held_out_loss_after", after.loss},
                  {"worse_than_base", worse},
                  {"training_s", result.training_s},
                  {"run_s", std::chrono::duration<double>(Clock::now() - started).count()},
                  {"loss_curve", result.step_loss}};
  for (const auto& [key, value] : p.metrics_extra.items()) metrics[key] = value;
  write_model(base, out_dir, m, metrics);
  if (!p.checkpoint_dir.empty()) fs::remove_all(p.checkpoint_dir);
  return result;
}

void person_utterances(const fs::path& avatar, std::vector<LabelledAudio>& train,
                       std::vector<LabelledAudio>& held_out) {
  const auto root = workspace::speech_root(avatar);
  if (!fs::is_directory(root))
    throw InputError(fmt::format("{}: no speech datasets (run `dself prepare` first)", root.string()));
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "utterances.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs)
    for (const auto& u : speech::read_dataset(dir).utterances)
      (u.split == speech::Split::train ? train : held_out).push_back({dir / u.wav, u.text});
  if (train.empty())
    throw InputError(
        fmt::format("{}: no train-split utterances in speech/*/utterances.json (run `dself prepare` "
                    "first, on videos where the person speaks)",
                    root.string()));
}

}  // namespace dself::whisper
