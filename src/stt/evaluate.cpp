// `dself eval stt`: the person's held-out utterances decoded by the generic model, with the
// person's language model, with the acoustic adaptation, and with both; the acoustic adaptation
// on other speakers (Debian's LibriVox recordings); the decoder's real-time factor.
#include <chrono>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/fs.h"
#include "core/workspace.h"
#include "media/media.h"
#include "stt/detail/person.h"
#include "stt/stt.h"

namespace dself::stt {
namespace {

// The generic recogniser with the person's language model and dictionary: their words, not their voice.
transcript::PocketSphinxOptions with_person_lm(transcript::PocketSphinxOptions generic,
                                               const transcript::PocketSphinxOptions& person) {
  generic.dictionary = person.dictionary;
  generic.person_lm = person.person_lm;
  generic.person_lm_weight = person.person_lm_weight;
  return generic;
}

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Judged {
  WerCount count;
  double audio_s = 0;
  double decode_s = 0;
  json to_json() const {
    return {{"wer", count.wer()},
            {"errors", count.errors},
            {"reference_words", count.reference_words},
            {"audio_s", audio_s},
            {"real_time_factor", audio_s > 0 ? decode_s / audio_s : 0.0}};
  }
};

Judged judge(const transcript::PocketSphinxOptions& options,
             const std::vector<std::pair<fs::path, std::vector<std::string>>>& items) {
  transcript::PocketSphinxRecognizer recognizer(options);
  Judged judged;
  for (const auto& [wav, words] : items) {
    const std::vector<float> audio = media::decode_audio(wav, 16000);
    const auto start = Clock::now();
    const transcript::Transcript t = recognizer.transcribe(audio);
    judged.decode_s += std::chrono::duration<double>(Clock::now() - start).count();
    judged.audio_s += audio.size() / 16000.0;
    judged.count.add(words, hypothesis_words(t));
  }
  return judged;
}

// Debian's pocketsphinx-testdata LibriVox recordings with their transcripts.
std::vector<std::pair<fs::path, std::vector<std::string>>> librivox_items() {
  const fs::path dir = "/usr/share/pocketsphinx/test/data/librivox";
  std::vector<std::pair<fs::path, std::vector<std::string>>> items;
  std::ifstream list(dir / "transcription");
  std::string line;
  while (std::getline(list, line)) {
    // "<s> words </s> (file-id)"
    const size_t open = line.rfind('(');
    if (open == std::string::npos) continue;
    const std::string id = line.substr(open + 1, line.rfind(')') - open - 1);
    std::string text = line.substr(0, line.find("</s>"));
    if (text.rfind("<s>", 0) == 0) text = text.substr(3);
    items.push_back({dir / (id + ".wav"), transcript::scoring_words(text)});
  }
  return items;
}

}  // namespace

json evaluate_stt(const fs::path& avatar, bool librivox) {
  const PersonData data = read_person_data(avatar);
  std::vector<std::pair<fs::path, std::vector<std::string>>> held_out;
  for (const auto& u : data.held_out) held_out.push_back({u.wav, u.words});
  json result = {{"held_out_utterances", held_out.size()}};
  const transcript::PocketSphinxOptions generic;
  const std::optional<transcript::PocketSphinxOptions> person = person_recognizer_options(avatar);
  json wer;
  wer["generic"] = judge(generic, held_out).to_json();
  if (person) {
    wer["person_lm"] = judge(with_person_lm(generic, *person), held_out).to_json();
    const fs::path dir = workspace::model_dir(avatar, "stt");
    // Every acoustic adaptation on disk, alone and with the person LM.
    std::vector<std::pair<std::string, transcript::PocketSphinxOptions>> acoustic;
    transcript::PocketSphinxOptions a = generic;
    a.dictionary = person->dictionary;
    if (fs::exists(dir / "mllr_matrix")) {
      a.mllr = dir / "mllr_matrix";
      acoustic.push_back({"mllr", a});
    }
    if (fs::exists(dir / "hmm" / "means")) {
      a.acoustic_model = dir / "hmm";
      a.mllr.clear();
      acoustic.push_back({"map", a});
    }
    for (auto& [name, options] : acoustic) {
      wer["acoustic_" + name] = judge(options, held_out).to_json();
      transcript::PocketSphinxOptions both = options;
      both.person_lm = person->person_lm;
      both.person_lm_weight = person->person_lm_weight;
      wer["both_" + name] = judge(both, held_out).to_json();
    }
    // The headline: the model `train stt` kept (config.json).
    const bool has_acoustic = !person->mllr.empty() || !person->acoustic_model.empty();
    const std::string kept = person->acoustic_model.empty() ? "mllr" : "map";
    if (has_acoustic && wer.contains("acoustic_" + kept)) {
      wer["acoustic"] = wer["acoustic_" + kept];
      wer["both"] = wer["both_" + kept];
    }
    result["person_model"] = {{"lm_weight", person->person_lm_weight},
                              {"mllr", !person->mllr.empty()},
                              {"map", !person->acoustic_model.empty()}};
    if (librivox) {
      const auto items = librivox_items();
      if (items.empty()) {
        result["librivox"] = {{"skipped", "pocketsphinx-testdata is not installed"}};
      } else {
        json l = {{"generic", judge(generic, items).to_json()}};
        l["person_lm"] = judge(with_person_lm(generic, *person), items).to_json();
        if (has_acoustic) {
          transcript::PocketSphinxOptions adapted = generic;
          adapted.dictionary = person->dictionary;
          adapted.mllr = person->mllr;
          adapted.acoustic_model = person->acoustic_model;
          l["acoustic"] = judge(adapted, items).to_json();
          l["both"] = judge(*person, items).to_json();
        }
        // Other speakers (a visitor's voice messages) keep the generic acoustic model unless the
        // adaptation costs them at most 2 points of WER here.
        const double cost = has_acoustic ? l["acoustic"]["wer"].get<double>() - l["generic"]["wer"].get<double>() : 0.0;
        l["acoustic_cost_points"] = 100 * cost;
        result["other_voices_acoustic"] = has_acoustic && cost <= 0.02 ? "adapted" : "generic";
        result["librivox"] = l;
      }
    }
  }
  result["wer"] = wer;
  const std::string headline = wer.contains("both") ? "both" : wer.contains("person_lm") ? "person_lm" : "generic";
  result["model"] = headline;
  result["held_out_wer"] = wer[headline]["wer"];
  result["generic_wer"] = wer["generic"]["wer"];
  result["real_time_factor"] = wer[headline]["real_time_factor"];
  if (person) write_file_atomic(workspace::metrics_path(avatar, "stt"), result.dump(2) + "\n");
  return result;
}

}  // namespace dself::stt
