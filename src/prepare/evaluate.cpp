// dself eval prepare: the prepare stage measured against a sample person's ground truth.
#include <fstream>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "face/face_track.h"
#include "media/media.h"
#include "prepare/prepare.h"
#include "speech/speech.h"
#include "transcript/transcript.h"

namespace dself::prepare {
namespace {

// Word error rate pooled over sources: total edits over total reference words.
struct WerTally {
  double edits = 0;
  size_t reference_words = 0;
  int sources = 0;
  void add(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis) {
    edits += transcript::word_error_rate(reference, hypothesis) * static_cast<double>(reference.size());
    reference_words += reference.size();
    ++sources;
  }
  nlohmann::json json() const {
    return {{"wer", reference_words ? edits / static_cast<double>(reference_words) : 0.0},
            {"reference_words", reference_words},
            {"sources", sources}};
  }
};

std::vector<std::string> words_of(const transcript::Transcript& t) {
  std::vector<std::string> words;
  for (const auto& w : t.words) {
    for (auto& s : transcript::scoring_words(w.text)) words.push_back(std::move(s));
  }
  return words;
}

// The truth file of a source: its original file name's stem, e.g. video_000 for
// ".../video_000.mp4" (a file path or a URL).
std::filesystem::path truth_file_for(const Source& source, const std::filesystem::path& truth_dir) {
  std::string name = source.origin.substr(source.origin.find_last_of('/') + 1);
  name = name.substr(0, name.find_first_of("?#"));
  return truth_dir / (std::filesystem::path(name).stem().string() + ".truth.json");
}

// PocketSphinx on the LibriVox recordings of Debian's pocketsphinx-testdata: real read speech,
// a baseline for stronger recognisers.
nlohmann::json librivox_wer(transcript::PocketSphinxRecognizer& recognizer) {
  const std::filesystem::path dir = "/usr/share/pocketsphinx/test/data/librivox";
  std::ifstream list(dir / "transcription");
  if (!list) return {{"skipped", "pocketsphinx-testdata is not installed"}};
  WerTally tally;
  std::string line;
  while (std::getline(list, line)) {
    // "<s> words </s> (file-id)"
    size_t open = line.rfind('(');
    std::string id = line.substr(open + 1, line.rfind(')') - open - 1);
    std::string text = line.substr(0, line.find("</s>"));
    if (text.rfind("<s>", 0) == 0) text = text.substr(3);
    auto audio = media::decode_audio(dir / (id + ".wav"), 16000);
    tally.add(transcript::scoring_words(text), words_of(recognizer.transcribe(audio)));
  }
  return tally.json();
}

// Phone boundaries of the speech dataset against the truth, utterance by utterance (each
// compared with the true phones inside its stretch of the source), pooled over boundaries.
struct AlignmentTally {
  double error_sum_ms = 0;
  int boundaries = 0;
  int utterances = 0;
  void add_source(const speech::SpeechDataset& dataset, const nlohmann::json& truth) {
    std::vector<speech::TimedPhone> truth_phones;
    for (const auto& p : truth.at("phones")) {
      truth_phones.push_back({p.at("phone").get<std::string>(), p.at("start_s").get<double>(), p.at("end_s").get<double>()});
    }
    for (const auto& u : dataset.utterances) {
      std::vector<speech::TimedPhone> aligned;
      for (const auto& p : u.alignment.phones) {
        aligned.push_back({p.phone, u.source_start_s + p.start_s, u.source_start_s + p.end_s});
      }
      std::vector<speech::TimedPhone> inside;
      for (const auto& p : truth_phones) {
        if (p.end_s > u.source_start_s && p.start_s < u.source_end_s) inside.push_back(p);
      }
      speech::BoundaryError e = speech::phone_boundary_error(inside, aligned);
      error_sum_ms += e.mean_ms * e.boundary_count;
      boundaries += e.boundary_count;
      ++utterances;
    }
  }
  nlohmann::json json() const {
    return {{"mean_boundary_error_ms", boundaries ? error_sum_ms / boundaries : 0.0},
            {"boundaries", boundaries},
            {"utterances", utterances}};
  }
};

// The face track against the commanded landmarks: share of frames found, and the mean point
// distance in % of the true inter-ocular distance, over frames found.
struct FaceTally {
  int64_t frames = 0;
  int64_t found = 0;
  double error_iod_sum = 0;
  double mouth_error_iod_sum = 0;
  void add_source(const face::FaceTrack& track, const nlohmann::json& truth) {
    const auto& commanded = truth.at("landmarks");
    size_t n = std::min(track.frames.size(), commanded.size());
    for (const auto& row : commanded) frames += row.empty() ? 0 : 1;  // the hard sample: the person off screen
    for (size_t i = 0; i < n; ++i) {
      const auto& f = track.frames[i];
      if (!(f.flags & face::kFaceFound) || commanded[i].empty()) continue;
      std::array<cv::Point2f, face::kLandmarkCount> expected;
      for (int k = 0; k < face::kLandmarkCount; ++k) {
        expected[k] = {commanded[i][2 * k].get<float>(), commanded[i][2 * k + 1].get<float>()};
      }
      double iod = face::inter_ocular_distance(expected);
      double sum = 0, mouth = 0;
      for (int k = 0; k < face::kLandmarkCount; ++k) {
        double d = cv::norm(f.points[k] - expected[k]);
        sum += d;
        if (k >= 48) mouth += d;
      }
      error_iod_sum += 100 * sum / face::kLandmarkCount / iod;
      mouth_error_iod_sum += 100 * mouth / 20 / iod;
      ++found;
    }
  }
  nlohmann::json json() const {
    return {{"found_share", frames ? static_cast<double>(found) / static_cast<double>(frames) : 0.0},
            {"landmark_error_iod_pct", found ? error_iod_sum / static_cast<double>(found) : 0.0},
            {"mouth_error_iod_pct", found ? mouth_error_iod_sum / static_cast<double>(found) : 0.0},
            {"frames", frames}};
  }
};

// Who is who against the truth: each frame the face track keeps is the person's (the sample's
// host: its centre within half an inter-ocular distance of the commanded face's) or not;
// identity purity = the person's kept frames / kept frames; person kept = the person's kept
// frames / frames where the truth shows the person (dissolves left out); a track crosses a shot
// when its frames fall in two true shots.
struct WhoTally {
  int64_t kept = 0;
  int64_t kept_person = 0;
  int64_t kept_person_on_screen = 0;  // ...outside dissolves, as person_on_screen counts
  int64_t person_on_screen = 0;
  int64_t tracks = 0;
  int64_t crossing_tracks = 0;
  int64_t true_shots = 0;
  int64_t found_shots = 0;

  static int truth_shot(const nlohmann::json& truth, int64_t frame) {
    if (!truth.contains("shots")) return 0;
    int index = 0;
    for (const auto& shot : truth["shots"]) {
      int64_t start = shot["start_frame"], end = shot["end_frame"];
      if (start <= frame && frame < end) return frame - start < shot["fade_frames"].get<int64_t>() ? -1 : index;
      ++index;
    }
    return -1;
  }

  void add_source(const face::FaceTrack& person, const face::FaceTrack& found, const nlohmann::json& truth) {
    const auto& commanded = truth.at("landmarks");
    for (size_t i = 0; i < commanded.size(); ++i) {
      if (!commanded[i].empty() && truth_shot(truth, static_cast<int64_t>(i)) >= 0) ++person_on_screen;
    }
    for (size_t i = 0; i < person.frames.size() && i < commanded.size(); ++i) {
      const auto& f = person.frames[i];
      if (!(f.flags & face::kFaceFound)) continue;
      ++kept;
      if (commanded[i].empty()) continue;
      std::array<cv::Point2f, face::kLandmarkCount> expected;
      for (int k = 0; k < face::kLandmarkCount; ++k) {
        expected[k] = {commanded[i][2 * k].get<float>(), commanded[i][2 * k + 1].get<float>()};
      }
      double iod = face::inter_ocular_distance(expected);
      if (cv::norm(face::centroid(f.points, 0, face::kLandmarkCount) - face::centroid(expected, 0, face::kLandmarkCount)) <
          0.5 * iod) {
        ++kept_person;
        if (truth_shot(truth, static_cast<int64_t>(i)) >= 0) ++kept_person_on_screen;
      }
    }
    true_shots += truth.contains("shots") ? static_cast<int64_t>(truth["shots"].size()) : 1;
    found_shots += static_cast<int64_t>(found.shots.size());
    for (const auto& track : found.tracks) {
      ++tracks;
      std::set<int> shots;
      for (int64_t f = track.first_frame; f < track.end_frame(); ++f) {
        int s = truth_shot(truth, f);
        if (s >= 0) shots.insert(s);
      }
      crossing_tracks += shots.size() > 1 ? 1 : 0;
    }
  }
  nlohmann::json json() const {
    return {{"identity_purity", kept ? static_cast<double>(kept_person) / static_cast<double>(kept) : 0.0},
            {"person_kept", person_on_screen ? static_cast<double>(kept_person_on_screen) / static_cast<double>(person_on_screen)
                                             : 0.0},
            {"kept_frames", kept},
            {"person_frames_kept", kept_person},
            {"person_frames_on_screen", person_on_screen},
            {"tracks", tracks},
            {"shot_crossing_tracks", crossing_tracks},
            {"true_shots", true_shots},
            {"found_shots", found_shots}};
  }
};

// The tally with the identities prepare found (faces/identities.json).
nlohmann::json who_json(nlohmann::json tally, const std::filesystem::path& avatar) {
  std::filesystem::path path = workspace::faces_root(avatar) / "identities.json";
  if (std::filesystem::exists(path)) {
    nlohmann::json identities = nlohmann::json::parse(read_file(path));
    tally["identities"] = identities["identities"].size();
    tally["person"] = identities["person"];
  }
  return tally;
}

}  // namespace

nlohmann::json evaluate(const PrepareOptions& options, const std::filesystem::path& truth_dir, bool faces_only) {
  if (!std::filesystem::is_directory(truth_dir)) {
    throw InputError(fmt::format("--truth {}: not a directory; give the --out directory of `dself sample`",
                                 truth_dir.string()));
  }
  workspace::require_avatar(options.avatar);
  Catalog catalog(options.avatar);
  transcript::PocketSphinxOptions sphinx;
  sphinx.model_dir = options.pocketsphinx_model;
  std::unique_ptr<transcript::PocketSphinxRecognizer> recognizer;
  if (!faces_only) recognizer = std::make_unique<transcript::PocketSphinxRecognizer>(sphinx);
  WhoTally who;

  WerTally captions, pocketsphinx;
  AlignmentTally alignment;
  FaceTally faces;
  nlohmann::json per_source = nlohmann::json::array();
  for (const Source& source : catalog.sources()) {
    std::filesystem::path truth_path = truth_file_for(source, truth_dir);
    if (!std::filesystem::exists(truth_path)) continue;  // not a sample video
    nlohmann::json truth = nlohmann::json::parse(read_file(truth_path));
    std::string text;
    for (const auto& sentence : truth.at("sentences")) text += sentence.at("text").get<std::string>() + " ";
    std::vector<std::string> reference = transcript::scoring_words(text);
    nlohmann::json row = {{"source_id", source.id}, {"truth", truth_path.filename().string()}};

    std::filesystem::path audio = workspace::audio_path(options.avatar, source.id);
    if (!std::filesystem::exists(audio)) {
      throw InputError(fmt::format("source {} has no audio yet: run `dself prepare` first", source.id));
    }
    if (!faces_only) {
      std::vector<std::string> recognised = words_of(recognizer->transcribe(media::decode_audio(audio, 16000)));
      row["pocketsphinx_wer"] = transcript::word_error_rate(reference, recognised);
      pocketsphinx.add(reference, recognised);
    }
    for (const MediaFile& file : catalog.media(source.id)) {
      if (faces_only) break;
      if (file.role != "captions") continue;
      std::vector<std::string> from_captions = words_of(transcript::read_captions(options.avatar / file.path));
      row["captions_wer"] = transcript::word_error_rate(reference, from_captions);
      captions.add(reference, from_captions);
      break;
    }
    std::filesystem::path speech = workspace::speech_dir(options.avatar, source.id);
    if (!faces_only && std::filesystem::exists(speech / "utterances.json")) {
      AlignmentTally one;
      speech::SpeechDataset dataset = speech::read_dataset(speech);
      one.add_source(dataset, truth);
      alignment.add_source(dataset, truth);
      row["alignment"] = one.json();
    }
    std::filesystem::path landmarks = workspace::landmarks_path(options.avatar, source.id);
    if (std::filesystem::exists(landmarks)) {
      face::FaceTrack track = face::read_landmarks(landmarks);
      FaceTally one;
      one.add_source(track, truth);
      faces.add_source(track, truth);
      row["face"] = one.json();
      std::filesystem::path dir = workspace::face_dir(options.avatar, source.id);
      if (std::filesystem::exists(dir / "tracks.json")) {
        face::FaceTrack tracks = face::read_tracks(dir);
        WhoTally one_who;
        one_who.add_source(track, tracks, truth);
        who.add_source(track, tracks, truth);
        row["who"] = one_who.json();
      }
    }
    per_source.push_back(row);
  }
  if (per_source.empty()) {
    throw InputError(fmt::format("no source of the avatar at {} has a truth file in {}: ingest that sample's videos",
                                 options.avatar.string(), truth_dir.string()));
  }
  return {{"format", "dself-eval-prepare"},
          {"version", 1},
          {"truth", truth_dir.string()},
          {"stt", {{"captions", captions.json()}, {"pocketsphinx", pocketsphinx.json()}}},
          {"alignment", alignment.json()},
          {"face", faces.json()},
          {"who", who_json(who.json(), options.avatar)},
          {"librivox", {{"pocketsphinx", faces_only ? nlohmann::json{{"skipped", "--faces-only"}}
                                                    : librivox_wer(*recognizer)}}},
          {"sources", per_source}};
}

}  // namespace dself::prepare
