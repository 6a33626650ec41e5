// dself report: one HTML page on what prepare made, for a person to read in a browser.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "face/face_track.h"
#include "prepare/prepare.h"
#include "prepare/svg.h"
#include "speech/speech.h"

namespace dself::prepare {
namespace {

using svg::escape;

// A source's stage summaries, as the catalog keeps them.
nlohmann::json summary_of(const Catalog& catalog, const std::string& stage, int64_t source_id) {
  auto run = catalog.stage_run(stage, source_id);
  if (!run) return nullptr;
  return nlohmann::json::parse(run->summary, nullptr, false);
}

std::string format_minutes(double seconds) {
  return fmt::format("{}:{:02}", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
}

constexpr const char* style = R"css(
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .note { color: #666; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } .failed { color: #b00; }
figure { margin: 1rem 0; } svg { max-width: 100%; height: auto; }
.sheet { display: flex; flex-wrap: wrap; gap: 0.5rem; } .sheet img { height: 128px; border: 1px solid #ccc; }
)css";

// The face track of one source: detection rate over time, the reference frames and the mouth atlas.
std::string face_report_section(const PrepareOptions& options, int64_t source_id, const std::string& title) {
  const std::filesystem::path dir = workspace::face_dir(options.avatar, source_id);
  if (!std::filesystem::exists(dir / "summary.json")) return "";
  face::FaceTrack track = face::read_landmarks(dir / "landmarks.bin");
  // Share of frames with the face in windows of about a second.
  const size_t window = std::max<size_t>(1, static_cast<size_t>(track.fps > 0 ? track.fps : 25));
  std::vector<double> times, rates;
  for (size_t start = 0; start < track.frames.size(); start += window) {
    size_t end = std::min(track.frames.size(), start + window), found = 0;
    for (size_t i = start; i < end; ++i) found += (track.frames[i].flags & face::kFaceFound) ? 1 : 0;
    times.push_back(track.frames[end - 1].time_s);
    rates.push_back(100.0 * static_cast<double>(found) / static_cast<double>(end - start));
  }
  std::string html = "<h3>" + escape(title) + "</h3><figure>" +
                     svg::line_chart("Face found (% of frames, per second)", times, rates, 0, 100, "s", "%") +
                     "</figure><p>Reference frames</p><div class=sheet>";
  const std::string prefix = "faces/" + std::to_string(source_id) + "/";
  nlohmann::json references = nlohmann::json::parse(read_file(dir / "references" / "references.json"));
  for (const auto& r : references["references"]) {
    html += fmt::format("<img src='{}' alt='reference frame {}' loading=lazy>", escape(prefix + r["file"].get<std::string>()),
                        r["frame"].get<int64_t>());
  }
  html += "</div>";
  if (std::filesystem::exists(dir / "mouths.png")) {
    html += "<p>Mouth crops, from closed to open</p><div class=sheet><img style='height:auto;max-width:100%' src='" +
            escape(prefix + "mouths.png") + "' alt='mouth atlas'></div>";
  }
  return html;
}

// Who is who: each identity's thumbnail, screen time and time speaking on screen; which one
// the avatar is made of (faces/identities.json), or that prepare is waiting for --person.
std::string identities_section(const PrepareOptions& options) {
  std::filesystem::path path = workspace::faces_root(options.avatar) / "identities.json";
  if (!std::filesystem::exists(path)) return "";
  nlohmann::json identities = nlohmann::json::parse(read_file(path));
  int person = identities.value("person", 0);
  std::string html = "<h2>Who is who</h2><p class=note>";
  html += person > 0 ? fmt::format("The avatar is made of identity {} ({}); frames of the others are left out.",
                                    person, escape(identities.value("chosen_by", "")))
                     : "No one dominates: choose the person with <code>dself prepare --person N</code>.";
  html += "</p><table><tr><th>identity</th><th>face</th><th>on screen</th><th>speaking on screen</th><th>tracks</th></tr>";
  for (const auto& identity : identities["identities"]) {
    int number = identity["number"];
    std::string thumbnail = identity.value("thumbnail", "");
    html += fmt::format("<tr><td>{}{}</td><td>{}</td><td class=n>{:.1f} s</td><td class=n>{:.1f} s</td><td class=n>{}</td></tr>",
                        number, number == person ? " (the person)" : "",
                        thumbnail.empty() ? "–" : fmt::format("<img src='faces/{}' alt='identity {}' width=64 height=64>", escape(thumbnail), number),
                        identity["screen_s"].get<double>(), identity["speaking_s"].get<double>(),
                        identity["tracks"].get<int>());
  }
  return html + "</table>";
}

// Captions checked against the audio: how many, the flagged ones, or why none were checked.
std::string captions_section(int captioned, int checked, int flagged, const std::string& flagged_rows) {
  if (captioned == 0 && checked == 0) return "";
  std::string html = "<h2>Captions checked against the audio</h2><p class=note>";
  if (checked == 0) {
    return html + fmt::format("The {} utterances made from captions were not checked against the audio: no Whisper "
                              "model was available. Set one with <code>dself config whisper_model DIR</code> and run "
                              "<code>dself prepare</code> again.</p>",
                              captioned);
  }
  html += fmt::format("{} of {} caption utterances checked; {} flagged: their text is less likely, by more than the "
                      "margin, than Whisper's own transcript of the same clip (average log-probability per token; "
                      "docs/STT.md).",
                      checked, captioned, flagged);
  if (checked < captioned) html += fmt::format(" {} could not be checked (too long for the model).", captioned - checked);
  html += "</p>";
  if (flagged > 0) {
    html += "<table><tr><th>source</th><th>utterance</th><th>time</th><th>caption</th><th>Whisper heard</th>"
            "<th>caption log-prob/token</th><th>Whisper's</th></tr>\n" +
            flagged_rows + "</table>";
  }
  return html;
}

}  // namespace

std::filesystem::path write_report(const PrepareOptions& options) {
  workspace::require_avatar(options.avatar);
  Catalog catalog(options.avatar);
  std::string rows;
  std::vector<svg::Bar> speech_bars;
  std::vector<double> utterance_lengths;
  std::string face_sections;
  double total_video_s = 0, total_speech_s = 0;
  int prepared_count = 0;
  // Captions checked against the audio (prepare, with a Whisper model): counts, and the flagged ones.
  int captioned_count = 0, checked_count = 0, flagged_count = 0;
  std::string flagged_rows;
  std::vector<Source> sources = catalog.sources();
  Progress progress("report", static_cast<int64_t>(sources.size()), "sources", options.progress);
  for (const Source& source : sources) {
    stop_if_requested(options.should_stop, "report");
    double video_s = 0;
    for (const auto& file : catalog.media(source.id)) video_s += file.role == "video" ? file.duration_s : 0;
    total_video_s += video_s;
    std::string title = source.title.empty() ? source.origin : source.title;
    nlohmann::json transcript = summary_of(catalog, "prepare.transcript", source.id);
    nlohmann::json speech = summary_of(catalog, "prepare.speech", source.id);
    nlohmann::json face = summary_of(catalog, "prepare.face", source.id);
    double speech_s = speech.is_object() ? speech.value("speech_s", 0.0) : 0.0;
    total_speech_s += speech_s;
    speech_bars.push_back({title, speech_s / 60.0});
    std::string dropped;
    if (speech.is_object()) {
      for (const auto& [reason, count] : speech["dropped"].items()) dropped += fmt::format("{} {}; ", count.get<int>(), reason);
    }
    bool prepared = speech.is_object() && face.is_object();
    prepared_count += prepared ? 1 : 0;
    auto number = [](const nlohmann::json& j, const char* key) {
      return j.is_object() && j.contains(key) ? fmt::format("{}", j[key].dump()) : std::string("–");
    };
    rows += fmt::format(
        "<tr><td>{}</td><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>"
        "<td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>\n",
        escape(title), format_minutes(video_s), transcript.is_object() ? escape(transcript.value("engine", "")) : "–",
        number(transcript, "words"), number(speech, "utterances"), format_minutes(speech_s), number(speech, "phones"),
        face.is_object() ? fmt::format("{:.1f}%", 100 * face.value("found_share", 0.0)) : "–",
        prepared ? (dropped.empty() ? "none" : escape(dropped)) : "<span class=failed>not prepared</span>");

    std::filesystem::path speech_path = workspace::speech_dir(options.avatar, source.id);
    if (std::filesystem::exists(workspace::utterances_path(options.avatar, source.id))) {
      const bool from_captions = transcript.is_object() && transcript.value("engine", "") == "captions";
      for (const auto& u : speech::read_dataset(speech_path).utterances) {
        utterance_lengths.push_back(u.source_end_s - u.source_start_s);
        captioned_count += from_captions ? 1 : 0;
        if (!u.caption_check) continue;
        const speech::CaptionCheck& c = *u.caption_check;
        ++checked_count;
        if (!c.flagged) continue;
        ++flagged_count;
        flagged_rows += fmt::format(
            "<tr><td>{}</td><td>{}</td><td class=n>{}–{}</td><td>{}</td><td>{}</td><td class=n>{:.2f}</td>"
            "<td class=n>{:.2f}</td></tr>\n",
            escape(title), escape(u.id), format_minutes(u.source_start_s), format_minutes(u.source_end_s),
            escape(u.text), escape(c.whisper_text), c.caption_logprob, c.whisper_logprob);
      }
    }
    face_sections += face_report_section(options, source.id, title);
    progress.advance();
  }

  std::string html = fmt::format(
      "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name=viewport "
      "content='width=device-width,initial-scale=1'><title>dself: what prepare made</title><style>{}</style></head>"
      "<body><h1>What prepare made</h1><p class=note>Avatar {} · {} sources, {} prepared · {} of video, {} of "
      "speech kept · written {}</p>",
      style, escape(std::filesystem::absolute(options.avatar).lexically_normal().string()), sources.size(),
      prepared_count, format_minutes(total_video_s), format_minutes(total_speech_s), utc_now());
  html += "<h2>Sources</h2><table><tr><th>source</th><th>video</th><th>transcript</th><th>words</th>"
          "<th>utterances</th><th>speech kept</th><th>phones</th><th>face found</th><th>dropped</th></tr>\n" +
          rows + "</table>";
  html += "<h2>Speech</h2><figure>" + svg::bar_chart("Speech kept per source", speech_bars, "min") + "</figure>";
  html += "<figure>" + svg::histogram("Utterance lengths", utterance_lengths, 0, 16, 16, "seconds") + "</figure>";
  html += captions_section(captioned_count, checked_count, flagged_count, flagged_rows);
  html += identities_section(options);
  html += "<h2>Faces</h2>" + face_sections + "</body></html>\n";
  std::filesystem::path path = workspace::report_path(options.avatar);
  write_file_atomic(path, html);
  return path;
}

}  // namespace dself::prepare
