// The voice's side of the Studio's Train panel: the training curve, the held-out utterances (the
// person's real recordings the voice never trained on) and the trained voice saying their texts.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace dself::voice {
class Voice;
}

namespace dself::server::detail {

// GET /api/models/voice/curve: models/voice/curve.json once trained; while a run is under way or
// stopped, the curve in its checkpoint (marked "partial"). HttpError 404 when there is neither.
nlohmann::json voice_curve(const std::filesystem::path& avatar);

// GET /api/voice/samples: the voice in use (trained or fallback, and why), how much speech there
// is against what training needs, and every held-out utterance with its audio URLs.
nlohmann::json voice_samples(const std::filesystem::path& avatar);

// A held-out utterance named by its source id and utterance id, as the URLs give them: HttpError
// 400 for an id that is not one (a path, a dot), 404 for one no utterances.json lists as held out.
struct HeldOutClip {
  std::filesystem::path wav;  // speech/<source>/<wav>
  std::string text;
};
HeldOutClip held_out_clip(const std::filesystem::path& avatar, const std::string& source, const std::string& id);

// The trained voice saying held-out texts, as WAV files cached under renders/voice-samples/ (one
// per utterance and model). The model is loaded once and reloaded when it changes; one synthesis
// at a time (a Voice is not thread-safe).
class TrainedVoiceSamples {
 public:
  explicit TrainedVoiceSamples(std::filesystem::path avatar);
  ~TrainedVoiceSamples();
  // The WAV of the trained voice saying the clip's text; HttpError 404 when there is no trained
  // voice (or it cannot be loaded, saying why).
  std::filesystem::path wav(const std::string& source, const std::string& id);

 private:
  std::filesystem::path avatar_;
  std::mutex mutex_;
  std::unique_ptr<voice::Voice> voice_;
  std::string loaded_stamp_;  // which model voice_ is (model.safetensors' time and size)
};

}  // namespace dself::server::detail
