// dself train: the person's models from the prepared data (resumable; skipped when up to date).
#include <cstdio>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "app/commands.h"
#include "core/error.h"
#include "train/train.h"

namespace dself {

void add_train_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<train::TrainOptions>();
  auto model = std::make_shared<std::string>("all");
  auto* command = app.add_subcommand("train", "Train the person's models on the prepared data (resumable)");
  command->add_option("model", *model,
                      "Which model: voice, stt (speech recognition adapted to the person), persona (a LoRA adapter "
                      "of a chat checkpoint, --base), or all (every model whose data is ready)")
      ->check(CLI::IsMember({"voice", "stt", "persona", "all"}))
      ->capture_default_str();
  command->add_option("--steps", options->steps, "Training steps per model; 0: the model's default for the data")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command->add_option("--time-budget", options->time_budget_s,
                      "Stop after this many seconds per model (checkpointed; the next run resumes); 0: no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command->add_option("--threads", options->threads, "CPU threads (same seed, data and threads: the same model)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  command->add_option("--seed", options->seed, "Random seed")->capture_default_str();
  auto min_speech_minutes = std::make_shared<double>(options->voice_min_speech_s / 60);
  command->add_option("--min-speech-minutes", *min_speech_minutes,
                      "voice: the least train-split speech to train on, minutes (below the default the voice is "
                      "poor; lower it to train on what there is)")
      ->check(CLI::Range(0.1, 100000.0))
      ->capture_default_str();
  command->add_flag("--force", options->force, "Train again even when the model is up to date");
  auto lm_only = std::make_shared<bool>(false);
  command->add_flag("--lm-only", *lm_only,
                    "stt: only the person's language model and dictionary (no acoustic adaptation)");
  auto mllr_only = std::make_shared<bool>(false);
  command->add_flag("--mllr-only", *mllr_only,
                    "stt: adapt the acoustic model by MLLR alone (the default, MAP, measured better: docs/STT.md)");
  auto whisper = std::make_shared<std::string>();
  auto learning_rate = std::make_shared<double>(0.0);
  command->add_option("--whisper", *whisper,
                      fmt::format("stt: fine-tune this Hugging Face Whisper checkpoint directory on the person "
                                  "(decoder, encoder frozen) into <avatar>/models/whisper/, instead of adapting "
                                  "PocketSphinx; --steps 0: {} passes over the train utterances",
                                  whisper::FineTuneParams{}.epochs))
      ->type_name("DIR");
  auto& p = options->persona;
  command->add_option("--base", p.base,
                      "persona: the Hugging Face chat checkpoint to fine-tune (Llama, Qwen2, SmolLM; docs/LLM.md)");
  command->add_option("--lora-rank", p.lora_rank, "persona: LoRA rank r")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--lora-alpha", p.lora_alpha, "persona: LoRA alpha (the update is scaled by alpha / r)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--lora-dropout", p.lora_dropout, "persona: dropout on the adapter's input while training")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  command->add_option("--lora-targets", p.lora_targets,
                      "persona: projections to adapt, comma-separated, of q_proj,k_proj,v_proj,o_proj,gate_proj,"
                      "up_proj,down_proj")
      ->delimiter(',')
      ->default_str(fmt::format("{}", fmt::join(p.lora_targets, ",")));
  command->add_option("--learning-rate", *learning_rate,
                      fmt::format("AdamW's learning rate; 0: the model's own (stt --whisper {}, persona {})",
                                  options->whisper_learning_rate, p.learning_rate))
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command->add_option("--persona-max-tokens", p.max_tokens, "persona: longest training conversation, tokens")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  command->footer(
      "persona is trained by `all` only when --base is given (docs/PERSONA.md, \"Fine-tuning\").\n"
      "A model already trained on the data as it is now is skipped. Training checkpoints as it goes:\n"
      "Ctrl-C (or --time-budget) stops it at the next step, and running train again resumes there\n"
      "(a second Ctrl-C ends the process at once: at most the time since the last checkpoint is lost).\n"
      "The PocketSphinx adaptation (stt without --whisper) takes minutes and starts over instead.\n"
      "stt --whisper DIR: held-out WER before and after in <avatar>/models/whisper/metrics.json.\n"
      "Exit status: 0 trained, up to date or stopped by the budget; 1 bad input (e.g. too little\n"
      "speech, not prepared, a bad --whisper directory); 2 a dependency or the environment failed;\n"
      "130 interrupted.");
  command->callback([options, model, lm_only, mllr_only, whisper, learning_rate, min_speech_minutes, &globals] {
    options->voice_min_speech_s = *min_speech_minutes * 60;
    if (*learning_rate > 0) options->whisper_learning_rate = options->persona.learning_rate = *learning_rate;
    options->avatar = globals.avatar;
    options->whisper = *whisper;
    if (!whisper->empty() && *model == "voice")
      throw InputError("--whisper is for the speech recognition: `dself train stt --whisper DIR`");
    options->stt_acoustic = !*lm_only;
    options->stt_map = !*mllr_only;
    options->models.clear();
    if (*model == "voice") options->models.push_back(train::Model::voice);
    if (*model == "stt") options->models.push_back(train::Model::stt);
    if (*model == "persona") options->models.push_back(train::Model::persona);
    options->should_stop = stop_on_interrupt();
    auto outcomes = train::train(*options);
    for (const auto& outcome : outcomes) {
      for (const auto& warning : outcome.warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
      std::printf("%-6s %-10s %s\n", train::model_name(outcome.model), outcome.state.c_str(), outcome.message.c_str());
    }
    std::fflush(stdout);
    // Ctrl-C checkpointed the model and marked the job interrupted; main says so and exits 130.
    if (options->should_stop()) throw Stopped("train: checkpointed");
  });
}

}  // namespace dself
