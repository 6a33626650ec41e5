// The trained voice: sentence -> phones with context (the training front end) -> acoustic model ->
// vocoder features -> vocoder::synthesize, with phones timed by the predicted durations.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "vocoder/vocoder.h"
#include "voice/detail/acoustic_model.h"
#include "voice/detail/voice_data.h"
#include "voice/detail/weights.h"
#include "voice/voice.h"

namespace dself::voice {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json(const fs::path& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON ({}); train the voice again with `dself train voice`",
                                 path.string(), e.what()));
  }
}

// The model's files loaded and checked: configuration, normalisation and weights.
struct LoadedModel {
  AcousticModel model{nullptr};
  Normalization normalization;
  double speech_s = 0;
};

LoadedModel load_model(const fs::path& model_dir) {
  const fs::path config_path = model_dir / "config.json";
  if (!fs::exists(config_path))
    throw InputError(fmt::format("{} is missing: no trained voice there (run `dself train voice`)",
                                 config_path.string()));
  const VoiceConfig config = parse_voice_config(read_file(config_path), config_path.string());
  if (config.phones != phone_names())
    throw InputError(fmt::format("{}: the model's phone set is not this dself's; train the voice again",
                                 config_path.string()));
  LoadedModel loaded;
  loaded.speech_s = config.speech_s;
  const AcousticModelOptions& options = config.model;
  const fs::path norm_path = model_dir / "normalization.json";
  loaded.normalization = normalization_from_json(read_json(norm_path), norm_path.string());
  loaded.model = AcousticModel(options);
  const fs::path weights = model_dir / "model.safetensors";
  load_module_tensors(*loaded.model, safetensors::read(weights), weights.string());
  loaded.model->eval();
  return loaded;
}

// Loaded weights and configuration; the per-request state is only the sentence's own tensors.
class TrainedVoice : public Voice {
 public:
  explicit TrainedVoice(const fs::path& model_dir) : model_(nullptr) {
    LoadedModel loaded = load_model(model_dir);
    model_ = loaded.model;
    normalization_ = std::move(loaded.normalization);
    speech_s_ = loaded.speech_s;
    // Last: the dictionary takes a while to load, and a broken model should fail fast.
    phonemizer_ = std::make_unique<speech::Phonemizer>();
  }

  std::string name() const override { return fmt::format("trained voice ({:.0f} min of speech)", speech_s_ / 60); }
  bool is_fallback() const override { return false; }

  Utterance say(std::string_view sentence) override {
    Utterance u;
    u.text = std::string(sentence);
    std::vector<std::string> warnings;
    const std::vector<FrontItem> items = front_end(*phonemizer_, sentence, &warnings);
    for (const auto& w : warnings) spdlog::warn("trained voice: \"{}\": {}", sentence, w);
    std::vector<int64_t> phones;
    std::vector<int64_t> context;
    for (const auto& item : items)
      for (const auto& p : item.phones) phones.push_back(phone_id(p));
    if (std::ranges::none_of(phones, [](int64_t p) { return p != kSilencePhone; }))
      throw InputError(fmt::format("nothing to say in \"{}\": no word in it has a pronunciation", sentence));
    for (const auto& c : phone_contexts(items)) context.insert(context.end(), c.begin(), c.end());

    const int64_t n = int64_t(phones.size());
    torch::Tensor durations, frames;
    {
      torch::InferenceMode inference;
      auto [d, f] = model_->infer(torch::tensor(phones, torch::kInt64).view({1, n}),
                                  torch::tensor(context, torch::kInt64).view({1, n, kContextColumnCount}));
      durations = d.contiguous();
      frames = f.contiguous();
    }
    const vocoder::Features features = to_features(frames);
    u.samples = vocoder::synthesize(features);
    for (float& s : u.samples) s = std::clamp(s, -1.0f, 1.0f);

    // Phones timed by the predicted durations on the 5 ms frame grid, covering the samples from
    // 0 (frame_count * hop samples); pauses the model made empty vanish.
    const auto d = durations.accessor<int64_t, 1>();
    int64_t frame = 0;
    auto at = [](int64_t f) { return double(f * vocoder::kHopSamples) / vocoder::kSampleRate; };
    for (int64_t i = 0; i < n; ++i) {
      if (d[i] == 0) continue;
      const std::string& name = phone_names()[size_t(phones[size_t(i)])];
      if (name == "sil" && !u.phones.empty() && u.phones.back().phone == "sil")
        u.phones.back().end_s = at(frame + d[i]);
      else
        u.phones.push_back({name, at(frame), at(frame + d[i])});
      frame += d[i];
    }
    return u;
  }

 private:
  // Normalised model outputs -> vocoder features: voiced where the voicing logit is positive.
  vocoder::Features to_features(const torch::Tensor& frames) const {
    const auto a = frames.accessor<float, 2>();
    vocoder::Features f;
    f.frame_count = int(frames.size(0));
    f.mcep.resize(size_t(f.frame_count) * kMcepDims);
    f.f0_hz.resize(size_t(f.frame_count));
    f.bap.resize(size_t(f.frame_count) * kBapDims);
    const Normalization& n = normalization_;
    for (int t = 0; t < f.frame_count; ++t) {
      for (int k = 0; k < kMcepDims; ++k) f.mcep[size_t(t) * kMcepDims + k] = a[t][k] * n.mcep_std[k] + n.mcep_mean[k];
      f.f0_hz[size_t(t)] = a[t][kVoicingIndex] > 0 ? std::exp(a[t][kLf0Index] * n.lf0_std + n.lf0_mean) : 0.0f;
      for (int k = 0; k < kBapDims; ++k)
        f.bap[size_t(t) * kBapDims + k] =
            std::clamp(a[t][kBapIndex + k] * n.bap_std[k] + n.bap_mean[k], 0.0f, 1.0f);
    }
    return f;
  }

  std::unique_ptr<speech::Phonemizer> phonemizer_;
  AcousticModel model_;
  Normalization normalization_;
  double speech_s_ = 0;
};

}  // namespace

std::unique_ptr<Voice> make_trained_voice(const fs::path& model_dir) { return std::make_unique<TrainedVoice>(model_dir); }

void check_trained_voice(const fs::path& model_dir) { load_model(model_dir); }

}  // namespace dself::voice
