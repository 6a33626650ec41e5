// Training the person's voice: the loop (train_voice), its checkpoints and the model it writes.
// The model is in acoustic_model.cpp, the data in voice_data.cpp; docs/VOICE.md, "Training".
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "core/random.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "vocoder/vocoder.h"
#include "voice/detail/acoustic_model.h"
#include "voice/detail/voice_data.h"
#include "voice/detail/weights.h"
#include "voice/voice.h"

namespace dself::voice {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFormatVersion = 2;  // 2: training examples carry their aligned phones (1 had only pauses)
constexpr int64_t kBatchFrames = 6000;  // frames a batch (padding included): 30 s of speech
constexpr double kPeakLearningRate = 1e-3;
constexpr double kClipNorm = 1.0;

// Steps for this much speech (docs/VOICE.md, "Training": measured so that 10 minutes of speech
// trains within 15 minutes on 2 cores; more speech gets more steps, sub-linearly).
int default_steps(double speech_s) {
  const double minutes = speech_s / 60;
  return int(std::clamp(380.0 * std::sqrt(std::max(1.0, minutes)), 400.0, 6000.0));
}

AcousticModelOptions model_options(const VoiceTrainOptions& options) {
  AcousticModelOptions o;
  o.phone_count = int64_t(phone_names().size());
  if (options.model_dim > 0) {
    o.dim = options.model_dim;
    o.predictor_dim = std::min(o.predictor_dim, int64_t(options.model_dim));
  }
  if (options.reduction > 0) o.reduction = options.reduction;
  return o;
}

// Linear warm-up, then cosine decay to a tenth of the peak at the last step.
// ref: FastSpeech 2 §3.1 warms up (4000 steps, Noam); the cosine tail as in Loshchilov & Hutter,
// "SGDR", ICLR 2017.
double learning_rate(int step, int step_count) {
  const int warmup = std::max(1, std::min(400, step_count / 10));
  if (step < warmup) return kPeakLearningRate * (step + 1) / warmup;
  const double progress = double(step - warmup) / std::max(1, step_count - warmup);
  return kPeakLearningRate * (0.1 + 0.45 * (1 + std::cos(M_PI * std::min(1.0, progress))));
}

double held_out_loss(AcousticModel& model, const std::vector<VoiceExample>& examples,
                     const std::vector<std::vector<size_t>>& batches) {
  if (examples.empty()) return std::nan("");
  torch::NoGradGuard no_grad;
  model->eval();
  double sum = 0, frames = 0;
  for (const auto& indices : batches) {
    const auto batch = collate(examples, indices, model->options().reduction);
    const double n = batch.frame_mask.sum().item<double>();
    sum += acoustic_loss(model->forward(batch), batch).total.item<double>() * n;
    frames += n;
  }
  model->train();
  return sum / frames;
}

// AdamW's moments per parameter ("exp_avg.<name>", "exp_avg_sq.<name>"; its step in the metadata).
std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

safetensors::File optimizer_tensors(torch::optim::AdamW& optimizer, AcousticModel& model) {
  safetensors::File file;
  for (const auto& p : model->named_parameters()) {
    auto it = optimizer.state().find(state_key(p.value()));
    if (it == optimizer.state().end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    file.tensors["exp_avg." + p.key()] = to_safetensor(s.exp_avg());
    file.tensors["exp_avg_sq." + p.key()] = to_safetensor(s.exp_avg_sq());
    file.metadata["step"] = std::to_string(s.step());
  }
  return file;
}

void load_optimizer(torch::optim::AdamW& optimizer, AcousticModel& model, const safetensors::File& file,
                    const std::string& where) {
  if (file.tensors.empty()) return;
  const int64_t step = std::stoll(file.metadata.at("step"));
  for (const auto& p : model->named_parameters()) {
    const std::vector<int64_t> shape(p.value().sizes().begin(), p.value().sizes().end());
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(step);
    state->exp_avg(from_safetensor(safetensors::expect(file, "exp_avg." + p.key(), shape, where), where));
    state->exp_avg_sq(from_safetensor(safetensors::expect(file, "exp_avg_sq." + p.key(), shape, where), where));
    optimizer.state()[state_key(p.value())] = std::move(state);
  }
}

json curve_json(const std::vector<json>& curve) { return {{"format", "dself-voice-curve"}, {"points", curve}}; }

// checkpoint/: weights.safetensors, optimizer.safetensors, state.json {"hash", "step", "step_count",
// "elapsed_s", "loss_sum", "loss_count", "curve"}; written whole into checkpoint.new/, then swapped in.
void write_checkpoint(const fs::path& model_dir, AcousticModel& model, torch::optim::AdamW& optimizer,
                      const json& state) {
  const fs::path next = model_dir / "checkpoint.new", dir = model_dir / "checkpoint";
  fs::remove_all(next);
  fs::create_directories(next);
  safetensors::write(next / "weights.safetensors", module_tensors(*model));
  safetensors::write(next / "optimizer.safetensors", optimizer_tensors(optimizer, model));
  write_file_atomic(next / "state.json", state.dump(1));
  fs::remove_all(dir);
  fs::rename(next, dir);
}

// The checkpoint's state when it is a run of this training (same hash), its weights and optimizer
// state loaded; nothing otherwise.
std::optional<json> read_checkpoint(const fs::path& model_dir, const std::string& hash, AcousticModel& model,
                                    torch::optim::AdamW& optimizer) {
  fs::path dir = model_dir / "checkpoint";
  // A swap interrupted between its remove and its rename leaves only the complete new one.
  if (!fs::exists(dir / "state.json") && fs::exists(model_dir / "checkpoint.new" / "state.json"))
    dir = model_dir / "checkpoint.new";
  if (!fs::exists(dir / "state.json")) return std::nullopt;
  const fs::path state_path = dir / "state.json";
  json state;
  try {
    state = json::parse(read_file(state_path));
    if (state.at("hash").get<std::string>() != hash) {
      spdlog::info("train voice: {} is a run on other data or settings; starting afresh", state_path.string());
      return std::nullopt;
    }
  } catch (const json::exception& e) {
    spdlog::warn("train voice: ignoring unreadable checkpoint {}: {}", state_path.string(), e.what());
    return std::nullopt;
  }
  load_module_tensors(*model, safetensors::read(dir / "weights.safetensors"), (dir / "weights.safetensors").string());
  const fs::path opt = dir / "optimizer.safetensors";
  load_optimizer(optimizer, model, safetensors::read(opt), opt.string());
  return state;
}

// The model: model.safetensors, normalization.json, curve.json, then config.json last (removed
// first), so that a directory with a config.json holds a whole model.
void write_model(const fs::path& model_dir, AcousticModel& model, const Normalization& normalization,
                 const json& config, const std::vector<json>& curve) {
  fs::remove(model_dir / "config.json");
  safetensors::File weights = module_tensors(*model);
  weights.metadata["format"] = "dself-voice";
  safetensors::write(model_dir / "model.safetensors", weights);
  write_file_atomic(model_dir / "normalization.json", to_json(normalization).dump(1));
  write_file_atomic(model_dir / "curve.json", curve_json(curve).dump(1));
  write_file_atomic(model_dir / "config.json", config.dump(1));
}

}  // namespace

std::string voice_data_hash(const fs::path& avatar) {
  AcousticModelOptions model;
  model.phone_count = int64_t(phone_names().size());
  std::string key = fmt::format("dself-voice v{} vocoder analysis v{}\n{}\n", kFormatVersion,
                                vocoder::kAnalysisVersion, to_json(model).dump());
  for (const auto& dir : speech_source_dirs(avatar))
    key += dir.filename().string() + " " + hash_bytes(read_file(dir / "utterances.json")) + "\n";
  return hash_bytes(key);
}

VoiceTrainResult train_voice(const VoiceTrainOptions& options) {
  const auto started = Clock::now();
  const fs::path model_dir = options.avatar / "models" / "voice";
  VoiceTrainResult result;
  result.model_dir = model_dir;
  if (speech_source_dirs(options.avatar).empty())
    throw InputError(fmt::format("{} has no prepared speech (speech/*/utterances.json): run `dself prepare` first",
                                 options.avatar.string()));
  const auto [train_s, held_out_s] = speech_seconds(options.avatar);
  if (train_s < options.min_speech_s)
    throw InputError(fmt::format("{}: {:.1f} minutes of train-split speech ({:.1f} held out); the voice needs at least "
                                 "{:.1f}: add videos with the person speaking and run `dself prepare`",
                                 options.avatar.string(), train_s / 60, held_out_s / 60, options.min_speech_s / 60));
  if (train_s < kLowVoiceSpeechS)
    result.warnings.push_back(fmt::format("only {:.1f} minutes of speech: quality will be low (10 or more is good)",
                                          train_s / 60));
  torch::set_num_threads(std::max(1, options.threads));
  fs::create_directories(model_dir);
  VoiceData data;
  try {
    data = load_voice_data(options.avatar, model_dir / "features", options.threads, options.progress,
                           options.should_stop);
  } catch (const Stopped&) {
    return result;  // sources analysed in full are cached; the rest are analysed next time
  }
  result.speech_s = data.train_speech_s;

  const AcousticModelOptions model_options_ = model_options(options);
  const std::string data_hash = voice_data_hash(options.avatar);
  const std::string hash =
      hash_bytes(fmt::format("{} {} {}", data_hash, to_json(model_options_).dump(), options.seed));
  torch::manual_seed(options.seed);
  AcousticModel model(model_options_);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(kPeakLearningRate)
                                                         .betas({0.9, 0.98})
                                                         .eps(1e-9)
                                                         .weight_decay(1e-4));
  const int step_count = options.steps > 0 ? options.steps : default_steps(data.train_speech_s);
  result.step_count = step_count;
  int step = 0;
  double elapsed_before = 0, loss_sum = 0;
  int loss_count = 0;
  std::vector<json> curve;
  if (auto state = read_checkpoint(model_dir, hash, model, optimizer)) {
    step = (*state)["step"];
    elapsed_before = (*state)["elapsed_s"];
    loss_sum = (*state)["loss_sum"];
    loss_count = (*state)["loss_count"];
    curve = (*state)["curve"].get<std::vector<json>>();
    spdlog::info("train voice: resuming at step {} of {}", step, step_count);
  }
  const auto batches = length_batches(data.train, kBatchFrames);
  const auto held_out_batches = length_batches(data.held_out, kBatchFrames);
  const int eval_every = std::max(25, step_count / 20);
  double train_loss = curve.empty() ? 0 : curve.back()["train_loss"].get<double>();
  double held_loss = curve.empty() ? 0 : curve.back().value("held_out_loss", 0.0);
  auto elapsed = [&] { return elapsed_before + std::chrono::duration<double>(Clock::now() - started).count(); };
  auto checkpoint = [&] {
    write_checkpoint(model_dir, model, optimizer,
                     {{"hash", hash}, {"data_hash", data_hash}, {"step", step}, {"step_count", step_count},
                      {"seed", options.seed}, {"threads", options.threads}, {"elapsed_s", elapsed()},
                      {"loss_sum", loss_sum}, {"loss_count", loss_count}, {"curve", curve}});
  };
  Progress progress("train voice", step_count, "steps", [&](const ProgressEvent& event) {
    if (!options.progress) return;
    ProgressEvent e = event;
    e.task = fmt::format("train voice (loss {:.3f}, held-out {:.3f})", train_loss, held_loss);
    options.progress(e);
  });
  progress.set_done(step);
  auto last_checkpoint = Clock::now();
  const auto run_started = Clock::now();

  model->train();
  std::vector<size_t> order;
  int64_t order_epoch = -1;
  for (; step < step_count; ++step) {
    const bool out_of_time = options.time_budget_s > 0 &&
                             std::chrono::duration<double>(Clock::now() - run_started).count() >= options.time_budget_s;
    if ((options.should_stop && options.should_stop()) || out_of_time) {
      checkpoint();
      result.steps_done = step;
      result.train_loss = train_loss;
      result.held_out_loss = held_loss;
      spdlog::info("train voice: stopped at step {} of {} (checkpointed; run again to resume)", step, step_count);
      return result;
    }
    if (options.checkpoint_every_s > 0 &&
        std::chrono::duration<double>(Clock::now() - last_checkpoint).count() >= options.checkpoint_every_s) {
      checkpoint();
      last_checkpoint = Clock::now();
    }
    const int64_t epoch = step / int64_t(batches.size());
    if (epoch != order_epoch) order = epoch_order(batches.size(), options.seed, order_epoch = epoch);
    // Dropout draws from a generator seeded per step: a resumed run draws what an unbroken one would.
    torch::manual_seed(options.seed * 1000003ULL + uint64_t(step));
    const auto batch = collate(data.train, batches[order[step % batches.size()]], model_options_.reduction);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learning_rate(step, step_count));
    optimizer.zero_grad();
    const auto loss = acoustic_loss(model->forward(batch), batch).total;
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), kClipNorm);
    optimizer.step();
    loss_sum += loss.item<double>();
    ++loss_count;
    progress.advance();
    if ((step + 1) % eval_every == 0 || step + 1 == step_count) {
      train_loss = loss_sum / loss_count;
      held_loss = held_out_loss(model, data.held_out, held_out_batches);
      loss_sum = 0;
      loss_count = 0;
      json point = {{"step", step + 1}, {"train_loss", train_loss}, {"elapsed_s", elapsed()}};
      point["held_out_loss"] = std::isnan(held_loss) ? json(nullptr) : json(held_loss);
      curve.push_back(point);
      spdlog::info("train voice: step {}/{}: loss {:.4f}, held-out {:.4f}", step + 1, step_count, train_loss, held_loss);
    }
  }
  progress.finish();

  json config = {{"format", "dself-voice"},
                 {"version", kFormatVersion},
                 {"model", to_json(model_options_)},
                 {"phones", phone_names()},
                 {"sample_rate", vocoder::kSampleRate},
                 {"frame_rate", vocoder::kSampleRate / vocoder::kHopSamples},
                 {"data_hash", data_hash},
                 {"speech_s", data.train_speech_s},
                 {"held_out_speech_s", data.held_out_speech_s},
                 {"train_utterances", data.train.size()},
                 {"held_out_utterances", data.held_out.size()},
                 {"steps", step_count},
                 {"seed", options.seed},
                 {"threads", options.threads},
                 {"train_loss", train_loss},
                 {"held_out_loss", std::isnan(held_loss) ? json(nullptr) : json(held_loss)},
                 {"training_s", elapsed()}};
  write_model(model_dir, model, data.normalization, config, curve);
  fs::remove_all(model_dir / "checkpoint");
  result.complete = true;
  result.steps_done = step_count;
  result.train_loss = train_loss;
  result.held_out_loss = std::isnan(held_loss) ? 0 : held_loss;
  return result;
}

}  // namespace dself::voice
