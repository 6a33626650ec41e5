// `dself eval voice`: the voices judged against the person's held-out recordings (DESIGN.md §4):
// the person's trained voice (when there is one), the fallback voice (the baseline) and the
// vocoder's copy-synthesis floor. `eval say` judges the voice with the same function, so both
// leave the same models/voice/metrics.json.
#include <spdlog/spdlog.h>

#include <cmath>
#include <memory>

#include "core/fs.h"
#include "core/workspace.h"
#include "train/train.h"

namespace dself::train {

nlohmann::json evaluate_voice(const std::filesystem::path& avatar, const voice::VoiceEvaluationOptions& options) {
  const voice::PitchProfile person = voice::measure_avatar_pitch(avatar);
  std::unique_ptr<voice::Voice> fallback = voice::make_fallback_voice(person, options.voice);
  std::vector<voice::JudgedVoice> voices = {{"fallback", fallback.get()}};
  std::unique_ptr<voice::Voice> trained;
  std::string why;
  const std::string state = model_state(avatar, Model::voice, &why);
  if (state == "current" || state == "stale") {
    if (state == "stale") spdlog::warn("the trained voice is stale: {}", why);
    trained = voice::make_trained_voice(workspace::model_dir(avatar, "voice"));
    voices.push_back({"trained", trained.get()});
  } else if (state == "broken") {
    spdlog::warn("the trained voice is not judged: {}", why);
  }
  nlohmann::json result = voice::evaluate_voices(avatar, voices, options);
  // The headline of the voice that speaks (the trained one when there is one), flat, as status and
  // the Studio's Models panel read it; the whole judgement beside it.
  const nlohmann::json& speaking = result["voices"][trained ? "trained" : "fallback"];
  for (const char* key : {"voice", "wer", "mcd_db", "f0_rmse_hz", "real_time_factor", "voice_pitch"}) {
    if (speaking.contains(key)) result[key] = speaking[key];
  }
  result["fallback"] = !trained;
  result["real_wer"] = result["real"]["wer"];
  result["person_pitch"] = {{"median_hz", person.median_hz}, {"p10_hz", person.p10_hz}, {"p90_hz", person.p90_hz},
                            {"voiced_frames", person.voiced_frame_count}};
  const double spoken_hz = speaking["voice_pitch"].value("median_hz", 0.0);
  result["pitch_difference_semitones"] =
      person.median_hz > 0 && spoken_hz > 0 ? 12 * std::log2(spoken_hz / person.median_hz) : 0.0;
  std::filesystem::create_directories(workspace::model_dir(avatar, "voice"));
  write_file_atomic(workspace::metrics_path(avatar, "voice"), result.dump(2) + "\n");
  return result;
}

}  // namespace dself::train
