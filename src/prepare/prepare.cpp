#include "prepare/prepare.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/avatar_config.h"
#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/workspace.h"
#include "face/face_track.h"
#include "media/media.h"
#include "prepare/identity.h"
#include "speech/speech.h"
#include "stt/stt.h"
#include "transcript/transcript.h"
#include "whisper/whisper.h"

namespace dself::prepare {
namespace {

constexpr int audio_rate = 16000;  // Hz: what the recognisers, aligner and voice models take

// Bump a step's version when its output changes for the same input, so that old results are redone.
constexpr const char* step_versions[] = {"audio-1", "transcript-1", "speech-1", "tracks-1", "face-2"};
// The caption check's version, part of the speech step's input when captions are checked.
constexpr const char* caption_check_version = "caption-check-1";

// A caption is flagged when its average log-probability per token is more than this below that of
// Whisper's own transcript of the same clip (nats per token). The clip's own transcript is the
// reference, so the threshold follows the audio and the model (a small model on noisy speech
// scores every text low); the margin is Whisper's own limit for a decoding it trusts: an average
// log-probability below -1 makes it decode again. ref: openai/whisper transcribe.py
// (logprob_threshold = -1.0).
constexpr double caption_margin = 1.0;

struct SourceFiles {
  Source source;
  MediaFile video;
  std::optional<MediaFile> captions;
};

std::vector<SourceFiles> list_sources(const Catalog& catalog) {
  std::vector<SourceFiles> result;
  for (const Source& source : catalog.sources()) {
    SourceFiles files{source, {}, std::nullopt};
    for (const MediaFile& file : catalog.media(source.id)) {
      if (file.role == "video") files.video = file;
      if (file.role == "captions" && !files.captions) files.captions = file;
    }
    if (!files.video.path.empty()) result.push_back(std::move(files));
  }
  return result;
}

// Whether a WAV file is whole: RIFF/WAVE, and its data chunk ends within the file (a truncated
// file's header claims more than is there). ref: http://soundfile.sapp.org/doc/WaveFormat/
bool wav_is_whole(const std::filesystem::path& path) {
  std::string bytes = read_file(path);
  if (bytes.size() < 12 || bytes.compare(0, 4, "RIFF") != 0 || bytes.compare(8, 4, "WAVE") != 0) return false;
  size_t at = 12;
  while (at + 8 <= bytes.size()) {
    uint32_t size = 0;
    std::memcpy(&size, bytes.data() + at + 4, 4);  // little-endian, as the host (static_assert in media)
    if (bytes.compare(at, 4, "data") == 0) return at + 8 + static_cast<size_t>(size) <= bytes.size();
    at += 8 + static_cast<size_t>(size) + (size & 1);
  }
  return false;
}

// Throws InputError naming the file unless it is a JSON document.
nlohmann::json read_json(const std::filesystem::path& path) {
  nlohmann::json json = nlohmann::json::parse(read_file(path), nullptr, false);
  if (json.is_discarded()) throw InputError(fmt::format("{} is not whole JSON", path.string()));
  return json;
}

// The recogniser takes a second to load: load it once, and only if some source needs it.
// The person's adapted model (models/stt) when `dself train stt` made one, else the generic one.
class LazyRecognizer {
 public:
  LazyRecognizer(std::filesystem::path avatar, std::filesystem::path model_dir)
      : avatar_(std::move(avatar)), model_dir_(std::move(model_dir)) {}
  transcript::PocketSphinxRecognizer& get() {
    if (!recognizer_) {
      std::optional<transcript::PocketSphinxOptions> sphinx = stt::person_recognizer_options(avatar_, model_dir_);
      if (sphinx) {
        spdlog::info("transcripts: PocketSphinx with the person's adapted model ({})", sphinx->name);
      } else {
        sphinx = transcript::PocketSphinxOptions{};
        sphinx->model_dir = model_dir_;
      }
      recognizer_ = std::make_unique<transcript::PocketSphinxRecognizer>(*sphinx);
    }
    return *recognizer_;
  }

 private:
  std::filesystem::path avatar_;
  std::filesystem::path model_dir_;
  std::unique_ptr<transcript::PocketSphinxRecognizer> recognizer_;
};

// The Whisper checkpoint of this run (for transcripts, or for checking captions), loaded once and
// only if some source needs it; its identity (whisper::model_identity) is part of the input hashes.
class LazyWhisper {
 public:
  LazyWhisper() = default;
  LazyWhisper(whisper::ModelChoice choice, std::string identity)
      : choice_(std::move(choice)), identity_(std::move(identity)) {}
  bool available() const { return choice_.has_value(); }
  const std::string& identity() const { return identity_; }
  const std::filesystem::path& dir() const { return choice_->dir; }
  const whisper::Model& get() {
    if (!model_) {
      model_ = whisper::Model::load(choice_->dir);
      spdlog::info("whisper: {} ({}, {})", choice_->dir.string(), model_->describe(),
                   whisper::model_source_name(choice_->source));
    }
    return *model_;
  }

 private:
  std::optional<whisper::ModelChoice> choice_;
  std::string identity_;
  std::optional<whisper::Model> model_;
};

// Models loaded once per run: dictionaries, the acoustic model, dlib's detector and predictor.
struct Tools {
  speech::Phonemizer phonemizer;
  speech::Aligner aligner;
  face::FaceDetector face_detector;
  explicit Tools(const PrepareOptions& options)
      : phonemizer(), aligner(speech::AlignerOptions{options.pocketsphinx_model}), face_detector() {}
};

// One source's run through the steps: each step is skipped when the catalog says it finished
// with the same input hash and its outputs are on disk and readable (a damaged one is made again).
class SourcePreparer {
 public:
  SourcePreparer(const PrepareOptions& options, Catalog& catalog, const SourceFiles& files,
                 LazyRecognizer& recognizer, LazyWhisper& whisper, Tools& tools)
      : options_(options),
        catalog_(catalog),
        files_(files),
        recognizer_(recognizer),
        whisper_(whisper),
        tools_(tools) {}

  // The steps before the identities are known; whether they all succeeded.
  bool run_before_identities() {
    outcome_.source_id = files_.source.id;
    outcome_.title = files_.source.title.empty() ? files_.source.origin : files_.source.title;
    return attempt([&] {
      step(Step::audio, [&] { return extract_audio(); });
      step(Step::transcript, [&] { return make_transcript(); });
      step(Step::speech, [&] { return make_speech_dataset(); });
      step(Step::tracks, [&] { return find_face_tracks(); });
    });
  }

  // The person's face track, from the person's tracks in this source.
  SourceOutcome run_face(int person, const std::vector<int>& person_tracks) {
    person_ = person;
    person_tracks_ = person_tracks;
    if (attempt([&] {
          step(Step::face, [&] { return make_face_track(); });
        })) {
      outcome_.succeeded = true;
    }
    return outcome_;
  }

  const SourceOutcome& outcome() const { return outcome_; }

 private:
  std::filesystem::path audio_path() const { return workspace::audio_path(options_.avatar, files_.source.id); }
  std::filesystem::path transcript_path() const { return workspace::transcript_path(options_.avatar, files_.source.id); }
  std::filesystem::path speech_dir() const { return workspace::speech_dir(options_.avatar, files_.source.id); }
  std::filesystem::path face_dir() const { return workspace::face_dir(options_.avatar, files_.source.id); }

  bool attempt(const std::function<void()>& steps) {
    try {
      steps();
      return true;
    } catch (const Stopped&) {
      throw;
    } catch (const std::exception& e) {
      outcome_.error = describe(e);
      outcome_.error_kind = kind_of(e);
      return false;
    }
  }

  std::string engine_for_source() const {
    switch (options_.stt) {
      case SttEngine::captions:
        if (!files_.captions) {
          throw InputError(fmt::format("{} has no captions: prepare it with --stt auto or --stt pocketsphinx",
                                       files_.video.path));
        }
        return "captions";
      case SttEngine::pocketsphinx:
        return "pocketsphinx";
      case SttEngine::whisper:
        return "whisper";
      case SttEngine::configured:  // resolved by prepare() before any source
      case SttEngine::automatic:
        return files_.captions ? "captions" : "pocketsphinx";
    }
    return "pocketsphinx";
  }

  // What a step's result depends on: the video, the steps it reads from, and its own version.
  // The face track reads only the video; the others form a chain audio → transcript → speech.
  // With `adapted` (or --retranscribe), a PocketSphinx transcript also depends on the person's
  // adapted model: one that --retranscribe made stays up to date in a later plain prepare.
  std::string input_hash(Step s, bool adapted = false) const {
    std::string inputs = files_.video.content_hash;
    // The tracks read only the video; the face reads them and which of them are the person's.
    if (s == Step::tracks) return hash_bytes(inputs + "|" + step_versions[static_cast<int>(Step::tracks)]);
    if (s == Step::face) {
      inputs += std::string("|") + step_versions[static_cast<int>(Step::tracks)] + "|" +
                step_versions[static_cast<int>(Step::face)] + fmt::format("|person {}|", person_);
      for (int t : person_tracks_) inputs += fmt::format("{},", t);
      return hash_bytes(inputs);
    }
    for (int i = 0; i <= static_cast<int>(s); ++i) inputs += std::string("|") + step_versions[i];
    if (s >= Step::transcript) {
      std::string engine = engine_for_source();
      inputs += "|" + engine;
      inputs += engine == "captions" ? files_.captions->content_hash
                : engine == "whisper"  ? whisper_.identity()
                                       : options_.pocketsphinx_model.string();
      // --retranscribe: a transcript made by another model than the person's adapted one is out of date.
      const auto person_config = workspace::model_dir(options_.avatar, "stt") / "config.json";
      if (engine == "pocketsphinx" && (options_.retranscribe || adapted) && std::filesystem::exists(person_config)) {
        inputs += "|person " + hash_file(person_config);
      }
      // Captions checked against the audio: the dataset depends on the model that checked them.
      if (s >= Step::speech && checks_captions()) {
        inputs += std::string("|") + caption_check_version + " " + whisper_.identity();
      }
    }
    return hash_bytes(inputs);
  }

  // Throws (InputError, naming the file) unless the step's outputs are all there and readable,
  // so that a file truncated or garbled since (a full disk, a bad copy) is made again rather than
  // kept as "up to date" forever. Reads what the next stages read, not more: the landmarks and
  // JSON files in full, the WAV's header against its size, the clips' presence.
  void check_outputs(Step s) const {
    switch (s) {
      case Step::audio:
        if (!wav_is_whole(audio_path())) throw InputError(fmt::format("{} is not a whole WAV file", audio_path().string()));
        return;
      case Step::transcript:
        transcript::transcript_from_json(read_json(transcript_path()));
        return;
      case Step::speech: {
        speech::SpeechDataset dataset = speech::read_dataset(speech_dir());
        for (const auto& u : dataset.utterances) {
          std::filesystem::path clip = speech_dir() / u.wav;
          if (!std::filesystem::is_regular_file(clip)) throw InputError(fmt::format("{} is missing", clip.string()));
        }
        return;
      }
      case Step::tracks:
        face::read_tracks(face_dir());
        return;
      case Step::face: {
        read_json(workspace::face_summary_path(options_.avatar, files_.source.id));
        face::read_landmarks(workspace::landmarks_path(options_.avatar, files_.source.id));
        nlohmann::json references = read_json(face_dir() / "references" / "references.json");
        if (references.contains("references") && references["references"].is_array()) {
          for (const auto& r : references["references"]) {
            std::filesystem::path png = face_dir() / r.value("file", std::string());
            if (!std::filesystem::is_regular_file(png)) throw InputError(fmt::format("{} is missing", png.string()));
          }
        }
        nlohmann::json mouths = read_json(face_dir() / "mouths.json");
        std::string atlas = mouths.value("atlas", std::string());
        if (!atlas.empty() && !std::filesystem::is_regular_file(face_dir() / atlas)) {
          throw InputError(fmt::format("{} is missing", (face_dir() / atlas).string()));
        }
        return;
      }
    }
  }

  // Whether the step's outputs can be used as they are; says why not when they cannot.
  bool outputs_usable(Step s) const {
    try {
      check_outputs(s);
      return true;
    } catch (const std::exception& e) {
      spdlog::warn("prepare: the {} step of {} is made again: {}", step_name(s), files_.video.path, describe(e));
      return false;
    }
  }

  // Runs body unless the step is up to date; body returns a summary of what it made (counts),
  // kept in the catalog for `dself status`.
  void step(Step s, const std::function<nlohmann::json()>& body) {
    stop_if_requested(options_.should_stop, "prepare");
    const std::string stage = std::string("prepare.") + step_name(s);
    const std::string hash = input_hash(s);
    auto previous = catalog_.stage_run(stage, files_.source.id);
    const bool current = previous && (previous->input_hash == hash ||
                                      (!options_.retranscribe && previous->input_hash == input_hash(s, true)));
    if (current && outputs_usable(s)) {
      outcome_.skipped.push_back(step_name(s));
      return;
    }
    nlohmann::json summary;
    auto start = std::chrono::steady_clock::now();
    try {
      summary = body();
      summary["elapsed_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } catch (const Stopped&) {
      throw;
    } catch (const std::exception& e) {
      // Named with the step and the file, of the failure's own kind: a full or unwritable disk
      // is the environment's (exit 2), not the video's. Other exceptions (a parser's) are the
      // input's, as a corrupt file is the likely cause.
      ErrorKind kind = dynamic_cast<const std::filesystem::filesystem_error*>(&e) != nullptr ? ErrorKind::environment
                       : dynamic_cast<const Error*>(&e) != nullptr                      ? kind_of(e)
                                                                                          : ErrorKind::user_input;
      std::throw_with_nested(Error(kind, fmt::format("{}: {}", step_name(s), files_.video.path)));
    }
    catalog_.mark_stage_done(StageRun{stage, files_.source.id, hash, "", summary.dump()});
    outcome_.done.push_back(step_name(s));
  }

  const std::vector<float>& audio() {
    if (!audio_) audio_ = media::decode_audio(audio_path(), audio_rate);
    return *audio_;
  }

  nlohmann::json extract_audio() {
    std::filesystem::create_directories(audio_path().parent_path());
    std::vector<float> samples;
    media::MediaInfo info = media::probe(options_.avatar / files_.video.path);
    Progress progress(fmt::format("audio {}", outcome_.title), static_cast<int64_t>(info.duration_s), "s",
                      options_.progress);
    media::decode_audio(options_.avatar / files_.video.path, audio_rate, [&](std::span<const float> chunk) {
      samples.insert(samples.end(), chunk.begin(), chunk.end());
      progress.set_done(static_cast<int64_t>(samples.size() / audio_rate));
    });
    media::write_wav(audio_path(), samples, audio_rate);
    // The later steps read the WAV as written (16-bit), not these floats: a run resumed after a
    // kill reads it too, and must make the same transcript and clips as an uninterrupted one.
    audio_.reset();
    return {{"audio_s", static_cast<double>(samples.size()) / audio_rate}};
  }

  // Whether this source's speech dataset has its captions checked by Whisper.
  bool checks_captions() const { return engine_for_source() == "captions" && whisper_.available(); }

  nlohmann::json make_transcript() {
    transcript::Transcript result;
    if (engine_for_source() == "captions") {
      result = transcript::read_captions(options_.avatar / files_.captions->path);
      result.model = files_.captions->path;
    } else if (engine_for_source() == "whisper") {
      const whisper::Model& model = whisper_.get();
      const auto& samples = audio();
      // Named as PocketSphinx's task: the server's jobs place a source's progress by its steps' names.
      Progress progress(fmt::format("speech recognition {}", outcome_.title),
                        static_cast<int64_t>(samples.size() / audio_rate), "s", options_.progress);
      whisper::TranscribeParams params;
      params.should_stop = options_.should_stop;  // asked before every 30 s window
      params.progress = [&](const ProgressEvent& e) { progress.set_done(e.done); };
      result = whisper::to_transcript(model, whisper::transcribe_samples(model, samples, params));
    } else {
      auto& recognizer = recognizer_.get();
      const auto& samples = audio();
      Progress progress(fmt::format("speech recognition {}", outcome_.title), 0, "chunks", options_.progress);
      result = recognizer.transcribe(samples, [&](size_t done, size_t count) {
        stop_if_requested(options_.should_stop, "prepare");
        progress.set_total(static_cast<int64_t>(count));
        progress.set_done(static_cast<int64_t>(done));
      });
    }
    std::filesystem::create_directories(transcript_path().parent_path());
    write_file_atomic(transcript_path(), transcript::to_json(result).dump(1));
    return {{"engine", result.engine}, {"words", result.words.size()}, {"segments", result.segments.size()}};
  }

  nlohmann::json make_speech_dataset() {
    transcript::Transcript words =
        transcript::transcript_from_json(nlohmann::json::parse(read_file(transcript_path())));
    if (words.words.empty()) {
      throw InputError(fmt::format("no speech was found in {} (its transcript is empty): the avatar needs videos "
                                   "of the person talking",
                                   files_.video.path));
    }
    std::filesystem::create_directories(speech_dir());
    Progress progress(fmt::format("align {}", outcome_.title), 0, "utterances", options_.progress);
    speech::SpeechDataset dataset = speech::write_dataset(
        speech_dir(), words, audio(), tools_.phonemizer, tools_.aligner, {},
        [&](size_t done, size_t count) {
          stop_if_requested(options_.should_stop, "prepare");
          progress.set_total(static_cast<int64_t>(count));
          progress.set_done(static_cast<int64_t>(done));
        });
    nlohmann::json captions_summary;
    if (checks_captions() && !dataset.utterances.empty()) {
      captions_summary = check_captions(dataset);
      write_file_atomic(workspace::utterances_path(options_.avatar, files_.source.id),
                        speech::to_json(dataset).dump(1));
    }
    if (dataset.utterances.empty()) {
      std::string reasons;
      for (const auto& [reason, count] : dataset.dropped) reasons += fmt::format(" {} {},", count, reason);
      throw InputError(fmt::format("no usable speech in {}: every utterance was dropped ({})", files_.video.path,
                                   reasons.empty() ? "none found" : reasons.substr(1, reasons.size() - 2)));
    }
    double speech_s = 0;
    size_t word_count = 0, phone_count = 0, held_out = 0;
    for (const auto& u : dataset.utterances) {
      speech_s += u.source_end_s - u.source_start_s;
      word_count += u.alignment.words.size();
      for (const auto& p : u.alignment.phones) phone_count += p.phone == "sil" ? 0 : 1;
      held_out += u.split == speech::Split::held_out ? 1 : 0;
    }
    nlohmann::json summary = {{"utterances", dataset.utterances.size()},
                              {"held_out", held_out},
                              {"speech_s", speech_s},
                              {"words", word_count},
                              {"phones", phone_count},
                              {"dropped", dataset.dropped}};
    if (!captions_summary.is_null()) summary["caption_check"] = captions_summary;
    return summary;
  }

  // Scores each utterance's caption text, and Whisper's own transcript of the clip, with the
  // model's teacher-forced log-probability, and flags captions the audio does not support (see
  // caption_margin). An utterance whose text the model cannot score (longer than its positions)
  // is left unchecked. Returns {"model", "checked", "flagged", "margin"}.
  nlohmann::json check_captions(speech::SpeechDataset& dataset) {
    const whisper::Model& model = whisper_.get();
    const auto& samples = audio();
    Progress progress(fmt::format("check captions {}", outcome_.title), static_cast<int64_t>(dataset.utterances.size()),
                      "utterances", options_.progress);
    whisper::TranscribeParams params;
    params.timestamps = false;
    params.temperatures = {0.0f};  // the model's likeliest text, the reference the caption is compared with
    size_t checked = 0, flagged = 0;
    for (auto& u : dataset.utterances) {
      stop_if_requested(options_.should_stop, "prepare");
      const auto first = std::min(samples.size(), static_cast<size_t>(std::max(0.0, u.source_start_s) * audio_rate));
      const auto last = std::min(samples.size(), static_cast<size_t>(std::max(0.0, u.source_end_s) * audio_rate));
      // Scores are given the clip's first window (all of it for the published models' 30 s, as
      // utterances are at most 15 s), so Whisper's own transcript is of that window too.
      const size_t window = static_cast<size_t>(model.window_s() * audio_rate);
      const std::span<const float> clip(samples.data() + first, std::min(last - first, window));
      try {
        const whisper::Transcript own = whisper::transcribe_samples(model, clip, params);
        const whisper::Score caption = whisper::score_samples(model, clip, u.text, params);
        const whisper::Score reference = whisper::score_samples(model, clip, own.text, params);
        speech::CaptionCheck c;
        c.model = whisper_.dir().string();
        c.caption_logprob = caption.total_logprob / static_cast<double>(caption.tokens.size());
        c.whisper_logprob = reference.total_logprob / static_cast<double>(reference.tokens.size());
        c.whisper_text = own.text;
        c.margin = caption_margin;
        c.flagged = c.caption_logprob < c.whisper_logprob - c.margin;
        u.caption_check = c;
        ++checked;
        flagged += c.flagged ? 1 : 0;
      } catch (const InputError& e) {
        spdlog::warn("prepare: the caption of utterance {} of {} was not checked: {}", u.id, files_.video.path,
                     describe(e));
      }
      progress.advance();
    }
    return {{"model", whisper_.dir().string()}, {"checked", checked}, {"flagged", flagged}, {"margin", caption_margin}};
  }

  nlohmann::json find_face_tracks() {
    face::TrackOptions track_options;
    Progress progress(fmt::format("face tracks {}", outcome_.title), 0, "frames", options_.progress);
    face::FaceTrack track = face::find_tracks(options_.avatar / files_.video.path, tools_.face_detector, track_options,
                                              [&](int64_t done, int64_t count) {
                                                stop_if_requested(options_.should_stop, "prepare");
                                                progress.set_total(count);
                                                progress.set_done(done);
                                              });
    if (track.tracks.empty()) {
      throw InputError(fmt::format("no face was found in {} ({} frames): the avatar needs videos where the "
                                   "person's face is visible, frontal and not too small",
                                   files_.video.path, track.frame_count));
    }
    std::filesystem::remove(face_dir() / "tracks.json");
    face::write_tracks(face_dir(), track, track_options);
    return {{"frames", track.frame_count}, {"shots", track.shots.size()}, {"tracks", track.tracks.size()}};
  }

  nlohmann::json make_face_track() {
    face::TrackOptions track_options;
    face::FaceTrack track = face::read_tracks(face_dir());
    Progress progress(fmt::format("face track {}", outcome_.title), 0, "frames", options_.progress);
    face::follow_tracks(options_.avatar / files_.video.path, track, person_tracks_, track_options,
                        [&](int64_t done, int64_t count) {
                          stop_if_requested(options_.should_stop, "prepare");
                          progress.set_total(count);
                          progress.set_done(done);
                        });
    // Remove the summary first so that a crash while writing leaves the step not done.
    std::filesystem::remove(workspace::face_summary_path(options_.avatar, files_.source.id));
    face::write_face_track(face_dir(), track, track_options);
    size_t found = 0, all_faces = 0;
    for (const auto& f : track.frames) found += (f.flags & face::kFaceFound) ? 1 : 0;
    for (const auto& t : track.tracks) all_faces += t.frames.size();
    return {{"frames", track.frames.size()},
            {"face_frames", found},
            {"found_share", track.found_share()},
            {"person", person_},
            {"person_tracks", person_tracks_.size()},
            {"tracks", track.tracks.size()},
            {"shots", track.shots.size()},
            {"other_face_frames", all_faces >= found ? all_faces - found : 0},
            {"references", track.references.size()},
            {"mouth_crops", track.mouths.size()}};
  }

  const PrepareOptions& options_;
  Catalog& catalog_;
  const SourceFiles& files_;
  LazyRecognizer& recognizer_;
  LazyWhisper& whisper_;
  Tools& tools_;
  SourceOutcome outcome_;
  std::optional<std::vector<float>> audio_;
  int person_ = 0;
  std::vector<int> person_tracks_;
};

}  // namespace

const char* step_name(Step step) {
  switch (step) {
    case Step::audio:
      return "audio";
    case Step::transcript:
      return "transcript";
    case Step::speech:
      return "speech";
    case Step::tracks:
      return "tracks";
    case Step::face:
      return "face";
  }
  return "?";
}

int PrepareReport::failed_count() const {
  int count = 0;
  for (const auto& s : sources) count += s.succeeded ? 0 : 1;
  return count;
}

SttEngine configured_engine(const std::filesystem::path& avatar) {
  const std::string stt = read_avatar_config(avatar).stt.value_or("auto");
  if (stt == "captions") return SttEngine::captions;
  if (stt == "pocketsphinx") return SttEngine::pocketsphinx;
  if (stt == "whisper") return SttEngine::whisper;
  return SttEngine::automatic;
}

namespace {

// The Whisper checkpoint of a run: the one transcripts are made with (required for --stt whisper:
// InputError saying how to set one), or the one captions are checked with (when there is one).
LazyWhisper choose_whisper(const PrepareOptions& options) {
  if (options.stt == SttEngine::whisper) {
    whisper::ModelChoice choice = whisper::resolve_model(options.avatar, options.whisper_model, "--model");
    whisper::check_checkpoint(choice.dir);
    return LazyWhisper(choice, whisper::model_identity(choice.dir));
  }
  std::optional<whisper::ModelChoice> choice = whisper::find_model(options.avatar, options.whisper_model);
  if (!choice || options.stt == SttEngine::pocketsphinx) return {};
  try {
    whisper::check_checkpoint(choice->dir);
    return LazyWhisper(*choice, whisper::model_identity(choice->dir));
  } catch (const InputError& e) {
    // An explicit --model must be right; a setting that went stale only costs the check.
    if (choice->source == whisper::ModelSource::flag) throw;
    spdlog::warn("prepare: captions are not checked against the audio: {}", describe(e));
    return {};
  }
}

}  // namespace

PrepareReport prepare(const PrepareOptions& given, const OutcomeListener& on_outcome) {
  workspace::require_ingested(given.avatar);
  PrepareOptions options = given;
  if (options.stt == SttEngine::configured) options.stt = configured_engine(options.avatar);
  workspace::Lock lock(options.avatar, "prepare");
  Catalog catalog(options.avatar);
  catalog.interrupt_stale_jobs("prepare");  // holding the lock: one still "running" was killed
  std::vector<SourceFiles> sources = list_sources(catalog);
  if (sources.empty()) {
    throw InputError(fmt::format("the avatar at {} has no videos yet: add some with `dself ingest`",
                                 options.avatar.string()));
  }
  LazyWhisper whisper = choose_whisper(options);
  int64_t job = catalog.start_job("prepare", "");
  PrepareReport report;
  LazyRecognizer recognizer(options.avatar, options.pocketsphinx_model);
  Tools tools(options);
  try {
    std::vector<std::unique_ptr<SourcePreparer>> preparers;
    std::vector<int64_t> tracked;
    for (size_t i = 0; i < sources.size(); ++i) {
      stop_if_requested(options.should_stop, "prepare");
      spdlog::info("prepare [{}/{}] {}", i + 1, sources.size(),
                   sources[i].source.title.empty() ? sources[i].video.path : sources[i].source.title);
      preparers.push_back(std::make_unique<SourcePreparer>(options, catalog, sources[i], recognizer, whisper, tools));
      if (preparers.back()->run_before_identities()) tracked.push_back(sources[i].source.id);
    }
    // Who is who, over every source whose faces were tracked; then each source's person.
    PersonChoice choice;
    if (!tracked.empty()) {
      try {
        choice = choose_person(options.avatar, tracked, options.person);
      } catch (const InputError& e) {
        catalog.finish_job(job, false, e.what());
        throw;
      }
      spdlog::info("prepare: the person is identity {} of {}", choice.person, choice.identities["identities"].size());
    }
    for (auto& preparer : preparers) {
      stop_if_requested(options.should_stop, "prepare");
      int64_t id = preparer->outcome().source_id;
      bool ready = std::find(tracked.begin(), tracked.end(), id) != tracked.end();
      report.sources.push_back(ready ? preparer->run_face(choice.person, choice.tracks[id]) : preparer->outcome());
      if (on_outcome) on_outcome(report.sources.back());
    }
  } catch (const Stopped& e) {
    catalog.interrupt_job(job, fmt::format("interrupted: {} after {} of {} sources", e.what(), report.sources.size(),
                                           sources.size()));
    throw;
  }
  int failed = report.failed_count();
  std::string message = fmt::format("{} prepared, {} failed", report.sources.size() - failed, failed);
  for (const auto& s : report.sources) {
    if (!s.succeeded) message += fmt::format("\n{}: {}", s.title, s.error);
  }
  catalog.finish_job(job, failed == 0, message);
  return report;
}

}  // namespace dself::prepare
