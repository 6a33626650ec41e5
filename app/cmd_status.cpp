// dself status: what the avatar's workspace holds — sources, media, hours of video, stages done.
#include <cstdio>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "server/server.h"

namespace dself {
namespace {

struct StatusOptions {
  bool json = false;  // print the stable JSON document (docs/FORMATS.md) instead of text
};

std::string format_hms(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

void print_text(const nlohmann::json& status) {
  const auto& totals = status["totals"];
  std::printf("avatar   %s\n", status["avatar"].get<std::string>().c_str());
  std::printf("sources  %d (%d videos, %d caption files, %s of video, %.1f MiB)\n",
              totals["sources"].get<int>(), totals["videos"].get<int>(), totals["captions"].get<int>(),
              format_hms(totals["video_hours"].get<double>() * 3600).c_str(),
              totals["bytes"].get<double>() / 1048576.0);
  // What prepare made, per source, from the stage summaries.
  std::map<std::pair<int64_t, std::string>, nlohmann::json> summaries;
  for (const auto& run : status["stages"]) {
    summaries[{run["source_id"].get<int64_t>(), run["stage"].get<std::string>()}] = run["summary"];
  }
  auto summary = [&](int64_t id, const char* stage) {
    auto it = summaries.find({id, stage});
    return it == summaries.end() || !it->second.is_object() ? nlohmann::json() : it->second;
  };
  double speech_s = 0;
  int64_t utterances = 0, words = 0, phones = 0, face_frames = 0, frames = 0;
  std::map<std::string, int64_t> dropped;
  for (const auto& source : status["sources"]) {
    int64_t id = source["id"].get<int64_t>();
    std::string prepared = "not prepared";
    nlohmann::json speech = summary(id, "prepare.speech"), face = summary(id, "prepare.face");
    if (!speech.is_null() && !face.is_null()) {
      prepared = fmt::format("speech {} in {} utterances, {} words, {} phones; face on {} of {} frames",
                             format_hms(speech.value("speech_s", 0.0)), speech.value("utterances", 0),
                             speech.value("words", 0), speech.value("phones", 0), face.value("face_frames", 0),
                             face.value("frames", 0));
      speech_s += speech.value("speech_s", 0.0);
      utterances += speech.value("utterances", 0);
      words += speech.value("words", 0);
      phones += speech.value("phones", 0);
      face_frames += face.value("face_frames", 0);
      frames += face.value("frames", 0);
      for (const auto& [reason, count] : speech["dropped"].items()) dropped[reason] += count.get<int64_t>();
    }
    std::printf("  %3lld  %-5s %s  %s\n       %s\n", static_cast<long long>(id),
                source["kind"].get<std::string>().c_str(), format_hms(source["duration_s"].get<double>()).c_str(),
                source["title"].get<std::string>().empty() ? source["origin"].get<std::string>().c_str()
                                                           : source["title"].get<std::string>().c_str(),
                prepared.c_str());
  }
  if (frames > 0) {
    std::string reasons;
    for (const auto& [reason, count] : dropped) reasons += fmt::format("{}{} {}", reasons.empty() ? "" : ", ", count, reason);
    std::printf("prepared speech %s kept in %lld utterances, %lld words, %lld phones; dropped: %s\n",
                format_hms(speech_s).c_str(), static_cast<long long>(utterances), static_cast<long long>(words),
                static_cast<long long>(phones), reasons.empty() ? "nothing" : reasons.c_str());
    std::printf("         face on %lld of %lld frames (%.1f%%)\n", static_cast<long long>(face_frames),
                static_cast<long long>(frames), 100.0 * face_frames / frames);
  }
  if (status.contains("identities")) {
    const auto& who = status["identities"];
    int person = who.value("person", 0);
    std::printf("identities %zu; %s\n", who["identities"].size(),
                person > 0 ? fmt::format("the person is {} ({})", person, who.value("chosen_by", "")).c_str()
                           : "no one dominates: choose with `dself prepare --person N`");
    for (const auto& identity : who["identities"]) {
      std::printf("  %3d  on screen %s, speaking on screen %s, %d tracks%s\n", identity["number"].get<int>(),
                  format_hms(identity["screen_s"].get<double>()).c_str(),
                  format_hms(identity["speaking_s"].get<double>()).c_str(), identity["tracks"].get<int>(),
                  identity["number"].get<int>() == person ? "  (the person)" : "");
    }
  }
  std::map<std::string, int> done_per_stage;
  for (const auto& run : status["stages"]) ++done_per_stage[run["stage"].get<std::string>()];
  const auto& persona = status["persona"];
  if (persona.is_object()) {
    auto first_texts = [](const nlohmann::json& list, size_t n) {
      std::string out;
      for (size_t i = 0; i < list.size() && i < n; ++i) out += (i ? ", " : "") + list[i].value("text", std::string());
      return out.empty() ? std::string("-") : out;
    };
    std::printf("persona  talks about: %s\n", first_texts(persona.value("distinctive_terms", nlohmann::json::array()), 8).c_str());
    std::printf("         greets: \"%s\"; signs off: \"%s\"\n",
                first_texts(persona.value("greetings", nlohmann::json::array()), 1).c_str(),
                first_texts(persona.value("sign_offs", nlohmann::json::array()), 1).c_str());
    std::printf("         %zu first-person facts, sentences of about %.0f words\n",
                persona.value("facts", nlohmann::json::array()).size(), persona.value("median_sentence_words", 0.0));
  }
  // Headline figures of each model's metrics.json (written by `dself eval say`).
  const auto& models = status["models"];
  auto figure = [](const nlohmann::json& doc, std::initializer_list<const char*> path) {
    const nlohmann::json* at = &doc;
    for (const char* key : path) {
      if (!at->is_object() || !at->contains(key)) return std::string("-");
      at = &(*at)[key];
    }
    return at->is_number() ? fmt::format("{:.3g}", at->get<double>()) : std::string("-");
  };
  const auto& trained_voice = status["trained"]["voice"];
  const std::string voice_state = trained_voice.value("state", std::string("none"));
  if (voice_state == "none") {
    std::printf("voice    the espeak-ng fallback voice: no trained voice yet (run `dself train voice`)\n");
  } else {
    const auto& summary = trained_voice["summary"];
    std::printf("voice    trained voice, %s%s%s", voice_state.c_str(),
                voice_state == "stale" ? ": " : "", voice_state == "stale" ? trained_voice.value("why", std::string()).c_str() : "");
    if (summary.is_object()) {
      std::printf(" (%.1f min of speech, %d steps, held-out loss %.4g)", summary.value("speech_s", 0.0) / 60,
                  summary.value("steps", 0), summary.value("held_out_loss", 0.0));
      for (const auto& warning : summary.value("warnings", nlohmann::json::array())) {
        std::printf("\n         warning: %s", warning.get<std::string>().c_str());
      }
    }
    std::printf("\n");
  }
  if (models.contains("voice")) {
    std::printf("         evaluated: %s: WER %s (PocketSphinx on held-out sentences)\n",
                models["voice"].value("voice", std::string("-")).c_str(), figure(models["voice"], {"wer"}).c_str());
  }
  const auto& trained_stt = status["trained"]["stt"];
  const std::string stt_state = trained_stt.value("state", std::string("none"));
  if (stt_state == "none") {
    std::printf("stt      PocketSphinx's generic en-us model: not adapted yet (run `dself train stt`)\n");
  } else {
    const auto& summary = trained_stt["summary"];
    std::printf("stt      adapted to the person, %s%s%s", stt_state.c_str(), stt_state == "stale" ? ": " : "",
                stt_state == "stale" ? trained_stt.value("why", std::string()).c_str() : "");
    if (summary.is_object()) {
      std::printf(" (%.1f min of speech, %d words added, LM weight %.2f, %s)", summary.value("train_speech_s", 0.0) / 60,
                  summary.value("added_words", 0), summary.value("lm_weight", 0.0),
                  summary.value("map", false) ? "MAP" : summary.value("mllr", false) ? "MLLR" : "language model only");
    }
    std::printf("\n");
  }
  if (models.contains("stt")) {
    std::printf("         evaluated: held-out WER %s (generic %s), real-time factor %s\n",
                figure(models["stt"], {"held_out_wer"}).c_str(), figure(models["stt"], {"generic_wer"}).c_str(),
                figure(models["stt"], {"real_time_factor"}).c_str());
  }
  // The engine prepare and the server use, and the Whisper checkpoint chosen (whisper::find_model).
  if (status.contains("stt")) {
    const auto& stt = status["stt"];
    std::printf("         engine %s; Whisper model %s%s\n", stt.value("engine", std::string("auto")).c_str(),
                stt["whisper_model"].is_string() ? stt["whisper_model"].get<std::string>().c_str() : "none",
                stt["whisper_model_from"].is_string()
                    ? fmt::format(" ({})", stt["whisper_model_from"].get<std::string>() == "trained"
                                                ? "fine-tuned on the person"
                                                : "set with `dself config whisper_model`")
                          .c_str()
                    : " (set one with `dself config whisper_model DIR`)");
    if (stt.contains("error")) std::printf("         warning: %s\n", stt["error"].get<std::string>().c_str());
  }
  if (models.contains("motion")) {
    std::printf("motion   landmark distance %s%% IOD on held-out frames (rest face: %s%%)\n",
                figure(models["motion"], {"tracked", "lmd_iod_pct"}).c_str(),
                figure(models["motion"], {"tracked", "rest_lmd_iod_pct"}).c_str());
  }
  if (models.contains("render")) {
    std::printf("render   lip sync: face found %s, mouth error %s%% IOD, opening r %s; reenactment PSNR %s dB\n",
                figure(models["render"], {"lip_sync", "face_found_share"}).c_str(),
                figure(models["render"], {"lip_sync", "mouth_error_iod_pct"}).c_str(),
                figure(models["render"], {"lip_sync", "opening_correlation"}).c_str(),
                figure(models["render"], {"reenactment", "face", "psnr_db"}).c_str());
  }
  // The persona's LoRA adapter (`dself train persona`), applied by `--engine llm --model BASE`.
  if (models.contains("persona") && status["trained"].contains("persona")) {
    const auto& persona_model = models["persona"];
    const auto& trained_persona = status["trained"]["persona"];
    const std::string state = trained_persona.value("state", std::string("none"));
    std::printf("persona  LoRA adapter, %s%s%s: held-out perplexity %s -> %s; `--engine llm --model %s` applies it\n",
                state.c_str(), state == "stale" ? ": " : "",
                state == "stale" ? trained_persona.value("why", std::string()).c_str() : "",
                figure(persona_model, {"held_out_perplexity_before"}).c_str(),
                figure(persona_model, {"held_out_perplexity_after"}).c_str(),
                persona_model.value("base", std::string("BASE")).c_str());
  }
  std::printf("stages  ");
  if (done_per_stage.empty()) std::printf(" none done yet");
  for (const auto& [stage, count] : done_per_stage) std::printf(" %s: %d done", stage.c_str(), count);
  std::printf("\n");
  if (!status["jobs"].empty()) {
    const auto& last = status["jobs"][0];
    std::printf("last job %s %s (%s)%s%s\n", last["command"].get<std::string>().c_str(),
                last["state"].get<std::string>().c_str(), last["started_at"].get<std::string>().c_str(),
                last["message"].get<std::string>().empty() ? "" : ": ", last["message"].get<std::string>().c_str());
  }
}

}  // namespace

void add_status_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<StatusOptions>();
  auto* command = app.add_subcommand("status", "Show the avatar's sources, media, hours of video and stages done");
  command->add_flag("--json", options->json, "Print a JSON document (format: docs/FORMATS.md)");
  command->callback([options, &globals] {
    workspace::require_avatar(globals.avatar);
    Catalog catalog(globals.avatar);
    nlohmann::json status = server::status_document(globals.avatar, catalog);
    if (options->json) {
      std::printf("%s\n", status.dump(2).c_str());
    } else {
      print_text(status);
    }
  });
}

}  // namespace dself
