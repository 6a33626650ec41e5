// The avatar's status document and model metrics, shared by `dself status --json` and the server.
#include <filesystem>
#include <string>

#include "core/avatar_config.h"
#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "server/server.h"
#include "train/train.h"

namespace dself::server {

nlohmann::json status_document(const std::filesystem::path& avatar, const Catalog& catalog) {
  nlohmann::json sources = nlohmann::json::array();
  double total_video_s = 0;
  int64_t total_bytes = 0;
  int video_count = 0;
  int captions_count = 0;
  for (const Source& source : catalog.sources()) {
    nlohmann::json files = nlohmann::json::array();
    double duration_s = 0;
    for (const MediaFile& file : catalog.media(source.id)) {
      files.push_back({{"path", file.path},
                       {"role", file.role},
                       {"size_bytes", file.size_bytes},
                       {"duration_s", file.duration_s},
                       {"width", file.width},
                       {"height", file.height},
                       {"fps", file.fps},
                       {"has_video", file.has_video},
                       {"has_audio", file.has_audio}});
      total_bytes += file.size_bytes;
      if (file.role == "video") {
        duration_s += file.duration_s;
        ++video_count;
      } else if (file.role == "captions") {
        ++captions_count;
      }
    }
    total_video_s += duration_s;
    sources.push_back({{"id", source.id},
                       {"key", source.key},
                       {"kind", source.kind},
                       {"origin", source.origin},
                       {"title", source.title},
                       {"added_at", source.added_at},
                       {"duration_s", duration_s},
                       {"files", files}});
  }
  nlohmann::json stages = nlohmann::json::array();
  for (const StageRun& run : catalog.stage_runs()) {
    stages.push_back({{"stage", run.stage},
                      {"source_id", run.source_id},
                      {"finished_at", run.finished_at},
                      {"summary", nlohmann::json::parse(run.summary, nullptr, false)}});
  }
  nlohmann::json jobs = nlohmann::json::array();
  for (const Job& job : catalog.jobs()) {
    jobs.push_back({{"id", job.id},
                    {"command", job.command},
                    {"arguments", job.arguments},
                    {"state", job.state},
                    {"message", job.message},
                    {"started_at", job.started_at},
                    {"finished_at", job.finished_at}});
  }
  // The persona card, once `dself chat` has built the persona's memory.
  nlohmann::json persona = nullptr;
  if (std::filesystem::exists(workspace::persona_card_path(avatar))) {
    persona = nlohmann::json::parse(read_file(workspace::persona_card_path(avatar)), nullptr, false);
    if (persona.is_discarded()) persona = nullptr;
  }
  // What each trainable model was trained on, and whether that is still the data there now.
  nlohmann::json trained = nlohmann::json::object();
  for (train::Model model : {train::Model::voice, train::Model::stt, train::Model::persona}) {
    std::string why;
    const std::string state = train::model_state(avatar, model, &why);
    nlohmann::json entry = {{"state", state}, {"why", why}, {"summary", nullptr}};
    if (auto run = catalog.stage_run(std::string("train.") + train::model_name(model), 0)) {
      entry["summary"] = nlohmann::json::parse(run->summary, nullptr, false);
      entry["trained_at"] = run->finished_at;
    }
    trained[train::model_name(model)] = entry;
  }
  nlohmann::json status = {{"format", "dself-status"},
          {"version", 1},
          {"avatar", std::filesystem::absolute(avatar).lexically_normal().string()},
          {"totals",
           {{"sources", sources.size()},
            {"videos", video_count},
            {"captions", captions_count},
            {"video_hours", total_video_s / 3600.0},
            {"bytes", total_bytes}}},
          {"sources", sources},
          {"stages", stages},
          {"persona", persona},
          {"models", model_metrics(avatar)},
          {"trained", trained},
          {"stt", stt_status(avatar)},
          {"jobs", jobs}};
  // Who is who (prepare's faces/identities.json): each identity's screen time, and the person.
  const std::filesystem::path identities = workspace::faces_root(avatar) / "identities.json";
  if (std::filesystem::exists(identities)) {
    status["identities"] = nlohmann::json::parse(read_file(identities), nullptr, false);
  }
  return status;
}

nlohmann::json stt_status(const std::filesystem::path& avatar) {
  nlohmann::json stt = {{"engine", "auto"}, {"whisper_model", nullptr}, {"whisper_model_from", nullptr}};
  try {
    stt["engine"] = read_avatar_config(avatar).stt.value_or("auto");
    if (auto choice = whisper::find_model(avatar)) {
      stt["whisper_model"] = choice->dir.string();
      stt["whisper_model_from"] = whisper::model_source_name(choice->source);
    }
  } catch (const InputError& e) {
    stt["error"] = e.what();
  }
  return stt;
}

nlohmann::json model_metrics(const std::filesystem::path& avatar) {
  nlohmann::json models = nlohmann::json::object();
  std::error_code ec;
  const std::filesystem::path root = workspace::models_dir(avatar);
  if (!std::filesystem::is_directory(root, ec)) return models;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    std::filesystem::path file = entry.path() / "metrics.json";
    if (!std::filesystem::is_regular_file(file, ec)) continue;
    nlohmann::json metrics = nlohmann::json::parse(read_file(file), nullptr, false);
    if (!metrics.is_discarded()) models[entry.path().filename().string()] = metrics;
  }
  return models;
}

}  // namespace dself::server
