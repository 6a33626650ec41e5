// The prepare stage: turns every ingested source into the data that training and the avatar
// use — 16 kHz audio, a transcript, the speech dataset and the face track (DESIGN.md §1).
// Resumable: a step whose inputs have not changed since it last finished is skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress.h"

namespace dself::prepare {

// Where a source's transcript comes from.
enum class SttEngine {
  configured,    // the avatar's setting (`dself config stt`), else automatic
  automatic,     // its captions when it has them, otherwise PocketSphinx
  captions,      // its captions only; a source without them fails
  pocketsphinx,  // speech recognition, even when captions exist
  whisper,       // Whisper on a checkpoint (whisper::resolve_model), even when captions exist
};

// The engine `configured` stands for on this avatar (InputError naming a malformed config.json).
SttEngine configured_engine(const std::filesystem::path& avatar);

struct PrepareOptions {
  std::filesystem::path avatar = "avatar";
  SttEngine stt = SttEngine::configured;
  // --model: a Whisper checkpoint for --stt whisper and for checking captions against the audio;
  // empty: the person's fine-tuned one, else the avatar's setting (whisper::find_model). With a
  // model, captions are checked (speech/utterances.json "caption_check"); without, they are not.
  std::filesystem::path whisper_model;
  std::filesystem::path pocketsphinx_model = "/usr/share/pocketsphinx/model/en-us";  // Debian's en-us model
  // PocketSphinx uses the person's adapted model (models/stt, `dself train stt`) when there is one.
  // With retranscribe, sources transcribed by PocketSphinx with another model are transcribed again
  // with it, and their speech datasets rebuilt; sources with captions are left as they are.
  bool retranscribe = false;
  int person = 0;  // --person N: the identity the avatar is made of (1-based, as `status` lists them);
                   // 0: the one who speaks most on screen, when one dominates
  ProgressSink progress;  // every step's progress (besides the display)
  // Asked between sources, steps, frames, utterances and recognition chunks: when it says so,
  // the step in progress is abandoned (it stays not done), the job is marked "interrupted" and
  // prepare (or write_report) throws Stopped.
  StopRequested should_stop;
};

// The steps, in order; each writes its own directory of the workspace (core/workspace.h).
// tracks: shots and every face followed through them; face: the person's face (after the
// identities of all sources are known, faces/identities.json).
enum class Step { audio, transcript, speech, tracks, face };
const char* step_name(Step step);

struct SourceOutcome {
  int64_t source_id = 0;
  std::string title;
  bool succeeded = false;
  std::string error;                  // why it failed: names the file and the step
  ErrorKind error_kind = ErrorKind::user_input;  // who can fix it: the input, or the environment (exit 2)
  std::vector<std::string> done;      // steps run this time
  std::vector<std::string> skipped;   // steps already up to date
};

struct PrepareReport {
  std::vector<SourceOutcome> sources;
  int failed_count() const;
};

using OutcomeListener = std::function<void(const SourceOutcome&)>;

// Prepares every source in the catalog, one after another; a source that fails is reported
// and the others go on. Between the tracks and the face steps the faces of all sources are
// grouped by identity and the person chosen (prepare/identity.h); when no one dominates and no
// --person was given, throws InputError listing the identities (faces/identities.json written). Records the run as a "prepare" job. Throws InputError when the
// avatar has no sources, EnvironmentError when another prepare is working on it (one at a
// time: workspace::Lock "prepare"), Stopped when options.should_stop said so.
PrepareReport prepare(const PrepareOptions& options, const OutcomeListener& on_outcome = {});

// Writes <avatar>/report.html: per source, what was kept and dropped; plots of speech per source,
// utterance lengths and the face-detection rate over time; reference frames and mouth crops.
// It reads only what prepare wrote (and the catalog). Returns the page's path.
std::filesystem::path write_report(const PrepareOptions& options);

// Measures the prepared avatar against a sample person's ground truth (the --out directory of
// `dself sample`): word error rate per engine, phone-boundary error, face found share and
// landmark error. The document's fields are described in docs/FORMATS.md.
// With the hard sample: identity purity of the frames kept, the person's frames kept and tracks
// that cross a true shot change ("who"). faces_only: skip speech recognition and alignment.
nlohmann::json evaluate(const PrepareOptions& options, const std::filesystem::path& truth_dir, bool faces_only = false);

}  // namespace dself::prepare
