// The train stage: for each model, a list of steps — is its data ready, is it up to date, train
// (or resume) it, record what it learned from.
#include "train/train.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "stt/stt.h"
#include "train/detail/persona.h"
#include "voice/voice.h"
#include "whisper/finetune.h"

namespace dself::train {
namespace {

namespace fs = std::filesystem;

std::string stage_name(Model model) { return std::string("train.") + model_name(model); }

void require_prepared(const fs::path& avatar, const Catalog& catalog) {
  for (const Source& source : catalog.sources()) {
    if (catalog.stage_run("prepare.speech", source.id)) return;
  }
  throw InputError(fmt::format("the avatar at {} has no speech dataset yet: run `dself --avatar {} prepare` first",
                               avatar.string(), avatar.string()));
}

// The files a finished model must have; a model missing one is retrained.
bool model_files_present(const fs::path& avatar, Model model) {
  const fs::path dir = workspace::model_dir(avatar, model_name(model));
  if (model == Model::stt) return fs::is_regular_file(dir / "config.json") && fs::is_regular_file(dir / "person.arpa");
  if (model == Model::persona) {
    return fs::is_regular_file(dir / "adapter_config.json") && fs::is_regular_file(dir / "adapter_model.safetensors") &&
           fs::is_regular_file(dir / "metrics.json");
  }
  return fs::is_regular_file(dir / "config.json") && fs::is_regular_file(dir / "model.safetensors");
}

std::string data_hash(const fs::path& avatar, Model model) {
  switch (model) {
    case Model::voice:
      return voice::voice_data_hash(avatar);
    case Model::stt:
      return stt::stt_data_hash(avatar);
    case Model::persona: {
      // The person's sentences (what `status` can judge without the training options).
      std::string text;
      for (const auto& s : persona::Memory(avatar).all_sentences()) text += s.text + "\n";
      return hash_bytes(text);
    }
  }
  return {};
}

ModelOutcome train_voice(const TrainOptions& options, Catalog& catalog, bool named) {
  ModelOutcome outcome;
  outcome.model = Model::voice;
  const std::string hash = data_hash(options.avatar, Model::voice);
  auto previous = catalog.stage_run(stage_name(Model::voice), 0);
  if (!options.force && previous && previous->input_hash == hash && model_files_present(options.avatar, Model::voice)) {
    outcome.state = "up_to_date";
    outcome.message = "the voice was trained on the speech dataset as it is now";
    return outcome;
  }
  voice::VoiceTrainOptions voice_options;
  voice_options.avatar = options.avatar;
  voice_options.steps = options.steps;
  voice_options.time_budget_s = options.time_budget_s;
  voice_options.threads = options.threads;
  voice_options.seed = options.seed;
  voice_options.min_speech_s = options.voice_min_speech_s;
  voice_options.progress = options.progress;
  voice_options.should_stop = options.should_stop;
  voice::VoiceTrainResult result;
  try {
    result = voice::train_voice(voice_options);
  } catch (const InputError& e) {
    // Too little speech is a reason not to train when the user did not ask for the voice by name.
    if (named) throw;
    outcome.state = "not_ready";
    outcome.message = e.what();
    return outcome;
  }
  outcome.warnings = result.warnings;
  if (!result.complete) {
    outcome.state = "stopped";
    outcome.message = fmt::format("stopped at step {} of {} (checkpointed): run `dself train voice` again to resume",
                                  result.steps_done, result.step_count);
    return outcome;
  }
  nlohmann::json summary = {{"steps", result.steps_done},
                            {"train_loss", result.train_loss},
                            {"held_out_loss", result.held_out_loss},
                            {"speech_s", result.speech_s},
                            {"warnings", result.warnings}};
  catalog.mark_stage_done(StageRun{stage_name(Model::voice), 0, hash, "", summary.dump()});
  outcome.state = "trained";
  outcome.message = fmt::format("trained on {:.1f} minutes of speech in {} steps (held-out loss {:.4f})",
                                result.speech_s / 60, result.steps_done, result.held_out_loss);
  return outcome;
}

// The person's speech recognition: their language model and dictionary, and the acoustic model
// adapted to their voice (src/stt). Not checkpointed: it is minutes, and a re-run starts over.
ModelOutcome train_stt(const TrainOptions& options, Catalog& catalog, bool named) {
  ModelOutcome outcome;
  outcome.model = Model::stt;
  // The data only: another choice of --lm-only / --map is made with --force.
  const std::string hash = data_hash(options.avatar, Model::stt);
  auto previous = catalog.stage_run(stage_name(Model::stt), 0);
  if (!options.force && previous && previous->input_hash == hash && model_files_present(options.avatar, Model::stt)) {
    outcome.state = "up_to_date";
    outcome.message = "the speech model was adapted to the speech dataset as it is now";
    return outcome;
  }
  stt::AdaptOptions adapt_options;
  adapt_options.avatar = options.avatar;
  adapt_options.acoustic = options.stt_acoustic;
  adapt_options.map = options.stt_map;
  adapt_options.progress = options.progress;
  adapt_options.should_stop = options.should_stop;
  stt::AdaptResult result;
  try {
    result = stt::adapt(adapt_options);
  } catch (const InputError& e) {
    if (named) throw;
    outcome.state = "not_ready";
    outcome.message = e.what();
    return outcome;
  }
  outcome.warnings = result.notes;
  nlohmann::json summary = {{"train_speech_s", result.train_speech_s},
                            {"added_words", result.added_words},
                            {"lm_weight", result.lm_weight},
                            {"dev_wer_generic", result.dev_wer_generic},
                            {"dev_wer_person_lm", result.dev_wer_person_lm},
                            {"mllr", result.mllr},
                            {"map", result.map}};
  catalog.mark_stage_done(StageRun{stage_name(Model::stt), 0, hash, "", summary.dump()});
  outcome.state = "trained";
  outcome.message = fmt::format(
      "adapted to {:.1f} minutes of speech: {} words added, person LM weight {:.2f} (development WER {:.1f}% -> "
      "{:.1f}%), {}",
      result.train_speech_s / 60, result.added_words, result.lm_weight, 100 * result.dev_wer_generic,
      100 * result.dev_wer_person_lm,
      result.map ? "MAP acoustic adaptation" : result.mllr ? "MLLR acoustic adaptation" : "no acoustic adaptation");
  return outcome;
}

// What a Whisper fine-tune learns from: the base checkpoint (its identity, as prepare's hashes
// take it: no reading of gigabytes of weights), the person's utterances and the options that
// change the weights.
std::string whisper_run_hash(const TrainOptions& options, const whisper::FineTuneParams& params) {
  std::string key = "dself-whisper-finetune v1 decoder\n" + whisper::model_identity(options.whisper) + "\n";
  std::vector<fs::path> dirs;
  const fs::path speech = workspace::speech_root(options.avatar);
  if (fs::is_directory(speech))
    for (const auto& e : fs::directory_iterator(speech))
      if (fs::exists(e.path() / "utterances.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs)
    key += dir.filename().string() + " " + hash_bytes(read_file(dir / "utterances.json")) + "\n";
  key += fmt::format("steps {} epochs {} lr {} wd {} seed {} threads {} language {}\n", params.steps, params.epochs,
                     params.learning_rate, params.weight_decay, params.seed, params.n_threads, params.language);
  return hash_bytes(key);
}

// The person's Whisper: the checkpoint the user gave, its decoder fine-tuned on the person's train
// utterances, judged on the held-out ones, written to models/whisper/ (resumable from
// models/whisper.checkpoint/). Its errors are always errors: the user asked for it by --whisper.
ModelOutcome train_whisper(const TrainOptions& options, Catalog& catalog) {
  ModelOutcome outcome;
  outcome.model = Model::stt;
  const fs::path base = options.whisper;
  if (!fs::is_directory(base))
    throw InputError(fmt::format("{}: not a directory (--whisper takes a Hugging Face Whisper checkpoint directory: "
                                 "config.json, model.safetensors and the tokenizer files)",
                                 base.string()));
  std::vector<whisper::LabelledAudio> train_clips, held_out;
  whisper::person_utterances(options.avatar, train_clips, held_out);

  whisper::FineTuneParams params;
  params.n_threads = options.threads;
  params.steps = options.steps;
  params.learning_rate = options.whisper_learning_rate;
  params.seed = options.seed;
  params.time_budget_s = options.time_budget_s;
  params.progress = options.progress;
  params.should_stop = options.should_stop;
  const fs::path out_dir = workspace::model_dir(options.avatar, "whisper");
  params.checkpoint_dir = out_dir.parent_path() / "whisper.checkpoint";
  const std::string hash = whisper_run_hash(options, params);
  params.run_hash = hash;
  params.metrics_extra = {{"input_hash", hash}};

  auto previous = catalog.stage_run("train.whisper", 0);
  if (!options.force && previous && previous->input_hash == hash && fs::is_regular_file(out_dir / "config.json") &&
      fs::is_regular_file(out_dir / "model.safetensors")) {
    outcome.state = "up_to_date";
    outcome.message = fmt::format("{} was fine-tuned from {} on the speech dataset as it is now (--force: again)",
                                  out_dir.string(), base.string());
    return outcome;
  }
  const auto result = whisper::fine_tune(base, train_clips, held_out, out_dir, params);
  if (!result.complete) {
    outcome.state = "stopped";
    outcome.message = fmt::format(
        "Whisper fine-tune stopped at step {} of {} (checkpointed): run `dself train stt --whisper {}` again to resume",
        result.steps_done, result.step_count, base.string());
    return outcome;
  }
  const bool worse = result.worse_than_base;
  if (result.n_held_out == 0)
    outcome.warnings.push_back("no held-out utterances: the fine-tuned Whisper is not judged (prepare more speech)");
  else if (worse)
    outcome.warnings.push_back(fmt::format(
        "the fine-tuned Whisper is WORSE than its base on the {} held-out utterances (WER {:.1f}% -> {:.1f}%, token "
        "loss {:.3f} -> {:.3f}); it is kept in {} all the same (docs/STT.md): to use the base, give --model {}",
        result.n_held_out, 100 * result.held_out_wer_before, 100 * result.held_out_wer_after,
        result.held_out_loss_before, result.held_out_loss_after, out_dir.string(), base.string()));
  nlohmann::json summary = {{"base", base.string()},
                            {"steps", result.step_count},
                            {"held_out_wer_before", result.held_out_wer_before},
                            {"held_out_wer_after", result.held_out_wer_after},
                            {"held_out_loss_before", result.held_out_loss_before},
                            {"held_out_loss_after", result.held_out_loss_after},
                            {"worse_than_base", worse}};
  catalog.mark_stage_done(StageRun{"train.whisper", 0, hash, "", summary.dump()});
  outcome.state = "trained";
  outcome.message = fmt::format(
      "Whisper fine-tuned on {} utterances in {} steps{}: held-out WER {:.1f}% -> {:.1f}%, token loss {:.3f} -> "
      "{:.3f} ({} held out{}); {}",
      result.n_train, result.step_count, result.resumed_at > 0 ? fmt::format(" (resumed at {})", result.resumed_at) : "",
      100 * result.held_out_wer_before, 100 * result.held_out_wer_after, result.held_out_loss_before,
      result.held_out_loss_after, result.n_held_out, worse ? ", WORSE than the base" : "", out_dir.string());
  return outcome;
}

// The persona's LoRA adapter (src/train/persona_train.cpp): needs a base checkpoint (--base).
ModelOutcome train_persona(const TrainOptions& options, Catalog& catalog, bool named) {
  ModelOutcome outcome;
  outcome.model = Model::persona;
  if (options.persona.base.empty()) {
    if (named) {
      throw InputError("train persona needs --base DIR: a Hugging Face chat checkpoint directory (docs/LLM.md)");
    }
    outcome.state = "not_ready";
    outcome.message = "no --base chat checkpoint given";
    return outcome;
  }
  PersonaTrainOptions o;
  o.avatar = options.avatar;
  o.base = options.persona.base;
  o.lora.rank = options.persona.lora_rank;
  o.lora.alpha = options.persona.lora_alpha;
  o.lora.dropout = options.persona.lora_dropout;
  o.lora.target_modules = options.persona.lora_targets;
  o.learning_rate = options.persona.learning_rate;
  o.max_tokens = options.persona.max_tokens;
  o.steps = options.steps;
  o.time_budget_s = options.time_budget_s;
  o.threads = options.threads;
  o.seed = options.seed;
  o.progress = options.progress;
  o.should_stop = options.should_stop;
  llm::check_lora_config(o.lora, "--lora-rank/--lora-alpha/--lora-dropout/--lora-targets");
  if (!fs::is_directory(o.base)) {
    throw InputError(fmt::format("--base {}: not a directory (a Hugging Face chat checkpoint directory)",
                                 o.base.string()));
  }
  const std::string hash = persona_input_hash(persona::Memory(options.avatar), o);
  auto previous = catalog.stage_run(stage_name(Model::persona), 0);
  if (!options.force && previous && previous->input_hash == hash &&
      model_files_present(options.avatar, Model::persona)) {
    outcome.state = "up_to_date";
    outcome.message = "the persona adapter was trained on this base and the person's sentences as they are now";
    return outcome;
  }
  const auto result = train_persona_adapter(o);
  if (!result.complete) {
    outcome.state = "stopped";
    outcome.message = fmt::format("stopped at step {} of {} (checkpointed): run `dself train persona` again to resume",
                                  result.steps_done, result.step_count);
    return outcome;
  }
  nlohmann::json summary = {{"steps", result.steps_done},
                            {"conversations", result.conversations},
                            {"held_out_sentences", result.held_out_sentences},
                            {"held_out_perplexity_before", result.perplexity_before},
                            {"held_out_perplexity_after", result.perplexity_after},
                            {"tokens_per_s", result.tokens_per_s},
                            {"sentences_hash", data_hash(options.avatar, Model::persona)}};
  catalog.mark_stage_done(StageRun{stage_name(Model::persona), 0, hash, "", summary.dump()});
  outcome.state = "trained";
  outcome.message = fmt::format(
      "LoRA on {} conversations in {} steps: held-out perplexity {:.2f} -> {:.2f} ({} sentences), {:.0f} tokens/s",
      result.conversations, result.steps_done, result.perplexity_before, result.perplexity_after,
      result.held_out_sentences, result.tokens_per_s);
  return outcome;
}

}  // namespace

const char* model_name(Model model) {
  switch (model) {
    case Model::voice:
      return "voice";
    case Model::stt:
      return "stt";
    case Model::persona:
      return "persona";
  }
  return "?";
}

std::vector<ModelOutcome> train(const TrainOptions& options) {
  workspace::require_ingested(options.avatar);
  Catalog catalog(options.avatar);
  require_prepared(options.avatar, catalog);
  workspace::Lock lock(options.avatar, "train");
  // Holding the lock, no other train runs: a job still marked running was killed.
  catalog.interrupt_stale_jobs("train");
  const bool named = !options.models.empty();
  std::vector<Model> models = named ? options.models : std::vector<Model>{Model::voice, Model::stt};
  if (!named && !options.persona.base.empty()) models.push_back(Model::persona);

  std::string arguments;
  for (Model model : models) arguments += std::string(arguments.empty() ? "" : " ") + model_name(model);
  const int64_t job = catalog.start_job("train", arguments);
  std::vector<ModelOutcome> outcomes;
  try {
    for (Model model : models) {
      switch (model) {
        case Model::voice:
          outcomes.push_back(train_voice(options, catalog, named));
          break;
        case Model::stt:
          outcomes.push_back(options.whisper.empty() ? train_stt(options, catalog, named)
                                                     : train_whisper(options, catalog));
          break;
        case Model::persona:
          outcomes.push_back(train_persona(options, catalog, named));
          break;
      }
    }
  } catch (const Stopped& e) {
    catalog.interrupt_job(job, e.what());
    throw;
  } catch (const std::exception& e) {
    catalog.finish_job(job, false, describe(e));
    throw;
  }
  bool stopped = false;
  for (const auto& outcome : outcomes) stopped = stopped || outcome.state == "stopped";
  if (stopped) {
    catalog.interrupt_job(job, "stopped (checkpointed): the next `dself train` resumes");
  } else {
    catalog.finish_job(job, true, "");
  }
  return outcomes;
}

std::string model_state(const fs::path& avatar, Model model, std::string* why) {
  if (!model_files_present(avatar, model)) return "none";
  try {
    switch (model) {
      case Model::voice:
        voice::check_trained_voice(workspace::model_dir(avatar, model_name(model)));
        break;
      case Model::stt:
        stt::person_recognizer_options(avatar);
        break;
      case Model::persona:
        if (!nlohmann::json::parse(read_file(workspace::model_dir(avatar, "persona") / "adapter_config.json"))
                 .is_object()) {
          throw InputError("adapter_config.json is not a JSON object");
        }
        break;
    }
  } catch (const std::exception& e) {
    if (why) {
      *why = describe(e) + (model == Model::persona ? ": the llm engine runs without it; run `dself train persona --force`"
                                                     : ": the fallback voice speaks; run `dself train voice --force`");
    }
    return "broken";
  }
  Catalog catalog(avatar);
  auto run = catalog.stage_run(stage_name(model), 0);
  if (!run) {
    if (why) *why = "the catalog has no record of its training";
    return "stale";
  }
  if (model == Model::persona) {
    const auto summary = nlohmann::json::parse(run->summary, nullptr, false);
    if (summary.is_discarded() || summary.value("sentences_hash", "") != data_hash(avatar, model)) {
      if (why) *why = "the person's transcripts changed since the adapter was trained: run `dself train persona` again";
      return "stale";
    }
    return "current";
  }
  if (run->input_hash != data_hash(avatar, model)) {
    if (why) *why = "the speech dataset changed since it was trained: run `dself train` again";
    return "stale";
  }
  return "current";
}

}  // namespace dself::train
