#include "whisper/finetune.h"

#include <fmt/format.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "core/workspace.h"
#include "hf/checkpoint.h"
#include "media/media.h"
#include "speech/speech.h"
#include "transcript/transcript.h"
#include "whisper/detail/decode.h"
#include "whisper/detail/frontend.h"

namespace dself::whisper {

namespace fs = std::filesystem;

namespace {

std::vector<float> first_window_of(const fs::path& wav, size_t n_samples) {
  if (!fs::exists(wav)) throw InputError(fmt::format("{}: no such clip", wav.string()));
  auto samples = media::decode_audio(wav, kSampleRate);
  if (samples.size() > n_samples) samples.resize(n_samples);
  return samples;
}

double held_out_wer(const Model& model, const std::vector<LabelledAudio>& clips, const std::vector<torch::Tensor>& mels,
                    const FineTuneParams& p) {
  if (clips.empty()) return 0;
  auto& m = *model.impl;
  TranscribeParams params;
  params.timestamps = false;
  params.temperatures = {0.0f};
  params.language = p.language;
  torch::Generator generator = at::detail::createCPUGenerator(p.seed);
  std::vector<std::string> ref, hyp;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < clips.size(); ++i) {
    const auto audio = m.net->encoder->forward(mels[i]);
    const auto r = decode_window(m, audio, sot_sequence(m, p.language, false), 0.0f, params, generator);
    for (auto& w : transcript::scoring_words(clips[i].text)) ref.push_back(w);
    for (auto& w : transcript::scoring_words(text_of(m, r.tokens))) hyp.push_back(w);
  }
  return transcript::word_error_rate(ref, hyp);
}

}  // namespace

FineTuneResult fine_tune(const fs::path& base, const std::vector<LabelledAudio>& train,
                         const std::vector<LabelledAudio>& held_out, const fs::path& out_dir, const FineTuneParams& p) {
  if (train.empty()) throw InputError("whisper fine-tune: no train utterances (prepare the person's videos first)");
  torch::set_num_threads(std::max(1, p.n_threads));
  auto model = Model::load(base);
  auto& m = *model.impl;
  const auto& c = m.net->config;
  const size_t window = size_t(c.n_frames()) * kHop;
  auto mel_of = [&](const LabelledAudio& clip) {
    return log_mel(first_window_of(clip.wav, window), c.n_mels, c.n_frames()).unsqueeze(0);
  };
  std::vector<torch::Tensor> held_mels;
  for (const auto& clip : held_out) held_mels.push_back(mel_of(clip));
  FineTuneResult result;
  result.n_train = int(train.size());
  result.n_held_out = int(held_out.size());
  result.held_out_wer_before = held_out_wer(model, held_out, held_mels, p);

  // The frozen encoder's features of each train clip, and its teacher-forcing sequence:
  // input = prompt + text, target = text + end of text (ref: Hugging Face's Whisper fine-tuning
  // recipe, labels after the decoder's start tokens).
  const auto prompt = sot_sequence(m, p.language, /*timestamps=*/false);
  std::vector<torch::Tensor> features, inputs, targets;
  {
    torch::NoGradGuard no_grad;
    for (const auto& clip : train) {
      stop_if_requested(p.should_stop, "whisper fine-tune");
      features.push_back(m.net->encoder->forward(mel_of(clip)));
      auto text = m.tokenizer.encode(" " + clip.text);
      const size_t room = size_t(c.max_target_positions) - prompt.size();
      if (text.size() + 1 > room) text.resize(room - 1);
      std::vector<int64_t> in(prompt.begin(), prompt.end()), out(prompt.size() - 1, -100);
      in.insert(in.end(), text.begin(), text.end());
      out.insert(out.end(), text.begin(), text.end());
      out.push_back(m.special.eot);
      inputs.push_back(torch::tensor(in).unsqueeze(0));
      targets.push_back(torch::tensor(out));
    }
  }
  m.net->encoder->eval();
  m.net->decoder->train();
  for (auto& param : m.net->encoder->parameters()) param.set_requires_grad(false);
  torch::optim::AdamW optimizer(m.net->decoder->parameters(),
                                torch::optim::AdamWOptions(p.learning_rate).weight_decay(p.weight_decay));
  std::mt19937_64 rng(p.seed);
  std::vector<size_t> order(train.size());
  const int64_t total_steps = int64_t(p.epochs) * int64_t(train.size());
  int64_t step = 0;
  for (int epoch = 0; epoch < p.epochs; ++epoch) {
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t k : order) {
      stop_if_requested(p.should_stop, "whisper fine-tune");
      auto cache = m.net->decoder->start(features[k]);
      const auto logits = m.net->decoder->forward(inputs[k], cache)[0];
      const auto loss = torch::nn::functional::cross_entropy(
          logits, targets[k], torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      result.step_loss.push_back(loss.item<double>());
      if (p.progress) {
        ProgressEvent e;
        e.task = "whisper: fine-tune";
        e.unit = "steps";
        e.done = ++step;
        e.total = total_steps;
        p.progress(e);
      }
    }
  }
  m.net->decoder->eval();
  for (auto& param : m.net->encoder->parameters()) param.set_requires_grad(true);
  result.held_out_wer_after = held_out_wer(model, held_out, held_mels, p);

  // The tuned model, beside the base's tokenizer and generation files.
  auto config = c.json;
  config["torch_dtype"] = "float32";
  hf::write_checkpoint(out_dir, config, whisper_tensors(m.net));
  for (const char* name :
       {"tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json",
        "tokenizer_config.json", "normalizer.json", "generation_config.json", "preprocessor_config.json"})
    if (fs::exists(base / name)) fs::copy_file(base / name, out_dir / name, fs::copy_options::overwrite_existing);
  return result;
}

void person_utterances(const fs::path& avatar, std::vector<LabelledAudio>& train,
                       std::vector<LabelledAudio>& held_out) {
  const auto root = workspace::speech_root(avatar);
  if (!fs::is_directory(root))
    throw InputError(fmt::format("{}: no speech datasets (run dself prepare first)", root.string()));
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "utterances.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs)
    for (const auto& u : speech::read_dataset(dir).utterances)
      (u.split == speech::Split::train ? train : held_out).push_back({dir / u.wav, u.text});
}

}  // namespace dself::whisper
