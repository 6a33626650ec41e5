// `dself train stt`: the person's dictionary and language model, then the acoustic adaptation
// with sphinxtrain, each a named step. Method and measured figures: docs/STT.md.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/subprocess.h"
#include "core/workspace.h"
#include "media/media.h"
#include "speech/speech.h"
#include "stt/detail/person.h"
#include "stt/stt.h"

namespace dself::stt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The phones of the en-us acoustic model (its mdef's CI phones, fillers aside).
const std::set<std::string>& model_phones() {
  static const std::set<std::string> phones = {
      "AA", "AE", "AH", "AO", "AW", "AY", "B",  "CH", "D",  "DH", "EH", "ER", "EY", "F",  "G",  "HH", "IH", "IY", "JH", "K",
      "L",  "M",  "N",  "NG", "OW", "OY", "P",  "R",  "S",  "SH", "T",  "TH", "UH", "UW", "V",  "W",  "Y",  "Z",  "ZH"};
  return phones;
}

// The words of the generic dictionary (its first column, variants "(2)" folded).
std::set<std::string> dictionary_words(const fs::path& dict) {
  std::ifstream in(dict);
  if (!in) throw EnvironmentError(fmt::format("cannot read the dictionary {}: install pocketsphinx-en-us", dict.string()));
  std::set<std::string> words;
  std::string line;
  while (std::getline(in, line)) {
    std::string word = line.substr(0, line.find_first_of(" \t"));
    words.insert(word.substr(0, word.find('(')));
  }
  return words;
}

// Runs a sphinxtrain / sphinxbase tool with its stdout and stderr kept in `log`. Throws
// EnvironmentError naming the tool and the log when it fails.
void run_tool(const std::vector<std::string>& argv, const fs::path& log, const StopRequested& should_stop) {
  std::vector<std::string> shell = {"sh", "-c", "log=$1; shift; exec \"$@\" >\"$log\" 2>&1", "sh", log.string()};
  shell.insert(shell.end(), argv.begin(), argv.end());
  spdlog::debug("stt: {} (log {})", argv[0], log.string());
  SubprocessResult result = run_subprocess(shell, [](const std::string&) {}, should_stop);
  if (result.exit_code != 0) {
    throw EnvironmentError(fmt::format("{} failed (exit {}): see {}", fs::path(argv[0]).filename().string(),
                                       result.exit_code, log.string()));
  }
}

// The tools the acoustic adaptation runs, each with the Debian package that has it.
struct Tools {
  fs::path sphinx_fe, mdef_convert, bw, mllr_solve, map_adapt;
};

Tools find_tools(const fs::path& sphinxtrain_dir) {
  auto need = [](const std::optional<fs::path>& path, const std::string& name, const std::string& package) {
    if (!path) {
      throw EnvironmentError(fmt::format("{} is missing: install the Debian package {} (scripts/setup.sh)", name,
                                         package));
    }
    return *path;
  };
  auto in_sphinxtrain = [&](const std::string& name) {
    fs::path p = sphinxtrain_dir / name;
    return fs::exists(p) ? std::optional<fs::path>(p) : std::nullopt;
  };
  Tools t;
  t.bw = need(in_sphinxtrain("bw"), (sphinxtrain_dir / "bw").string(), "sphinxtrain");
  t.mllr_solve = need(in_sphinxtrain("mllr_solve"), (sphinxtrain_dir / "mllr_solve").string(), "sphinxtrain");
  t.map_adapt = need(in_sphinxtrain("map_adapt"), (sphinxtrain_dir / "map_adapt").string(), "sphinxtrain");
  t.sphinx_fe = need(find_executable("sphinx_fe"), "sphinx_fe", "sphinxbase-utils");
  t.mdef_convert = need(find_executable("pocketsphinx_mdef_convert"), "pocketsphinx_mdef_convert", "pocketsphinx");
  return t;
}

// Decodes utterances with one recogniser configuration; the pooled WER.
double wer_of(const transcript::PocketSphinxOptions& options, const std::vector<PersonUtterance>& utterances) {
  transcript::PocketSphinxRecognizer recognizer(options);
  WerCount count;
  for (const auto& u : utterances) {
    const transcript::Transcript t = recognizer.transcribe(media::decode_audio(u.wav, 16000));
    count.add(u.words, hypothesis_words(t));
  }
  return count.wer();
}

// Step: the person's dictionary: the generic one, and every word of the train split it lacks
// with its pronunciations from espeak-ng (mapped to the model's phones).
int write_person_dictionary(const fs::path& generic_dict, const std::vector<PersonUtterance>& train,
                            const fs::path& out, std::vector<std::string>& notes) {
  const std::set<std::string> known = dictionary_words(generic_dict);
  std::set<std::string> missing;
  for (const auto& u : train) {
    for (const auto& w : u.words) {
      if (!known.count(w)) missing.insert(w);
    }
  }
  std::string added;
  int added_count = 0;
  if (!missing.empty()) {
    speech::PhonemizerOptions phonemizer_options;
    phonemizer_options.dictionary = generic_dict;
    speech::Phonemizer phonemizer(phonemizer_options);
    for (const auto& word : missing) {
      const speech::Pronunciation p = phonemizer.pronounce(word);
      int variant = 0;
      for (const auto& phones : p.arpabet) {
        std::string line = variant == 0 ? word : fmt::format("{}({})", word, variant + 1);
        bool usable = !phones.empty();
        for (const auto& phone : phones) {
          std::string upper = phone;
          std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
          usable = usable && model_phones().count(upper);
          line += " " + upper;
        }
        if (!usable) continue;
        added += line + "\n";
        ++variant;
      }
      if (variant > 0) {
        ++added_count;
      } else {
        notes.push_back(fmt::format("no pronunciation for \"{}\": the recogniser cannot say it", word));
      }
    }
  }
  write_file_atomic(out, read_file(generic_dict) + added);
  return added_count;
}

// Step: the language model: KN trigram from sentences, as ARPA.
void write_person_lm(const std::vector<PersonUtterance>& utterances, const fs::path& out) {
  std::vector<std::vector<std::string>> sentences;
  for (const auto& u : utterances) sentences.push_back(u.words);
  write_file_atomic(out, to_arpa(estimate_kneser_ney(sentences, 3)));
}

// Step: features and Baum-Welch statistics of the train split under the generic model, in work/.
// ref: the CMU Sphinx tutorial "Adapting the default acoustic model" (sphinx_fe with the
// model's feat.params, bw with -ts2cbfn .ptm. and the model's -svspec, mllr_solve, map_adapt).
void accumulate_statistics(const Tools& tools, const fs::path& generic_hmm, const fs::path& dictionary,
                           const std::vector<PersonUtterance>& train, const fs::path& work, const fs::path& logs,
                           const StopRequested& should_stop) {
  const fs::path hmm = work / "hmm", wav = work / "wav", feat = work / "feat", accum = work / "accum";
  for (const auto& dir : {hmm, wav, feat, accum}) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  for (const char* name : {"means", "variances", "transition_matrices", "feat.params", "noisedict", "mdef"}) {
    fs::copy_file(generic_hmm / name, hmm / name);
  }
  run_tool({tools.mdef_convert.string(), "-text", (generic_hmm / "mdef").string(), (hmm / "mdef.txt").string()},
           logs / "mdef_convert.log", should_stop);
  write_mixture_weights(hmm / "mixture_weights", read_sendump(generic_hmm / "sendump"));
  std::string fileids, transcription;
  for (const auto& u : train) {
    fs::create_symlink(fs::absolute(u.wav), wav / (u.id + ".wav"));
    fileids += u.id + "\n";
    std::string words;
    for (const auto& w : u.words) words += w + " ";
    transcription += fmt::format("<s> {}</s> ({})\n", words, u.id);
  }
  write_file_atomic(work / "train.fileids", fileids);
  write_file_atomic(work / "train.transcription", transcription);
  run_tool({tools.sphinx_fe.string(), "-argfile", (hmm / "feat.params").string(), "-samprate", "16000", "-c",
            (work / "train.fileids").string(), "-di", wav.string(), "-do", feat.string(), "-ei", "wav", "-eo", "mfc",
            "-mswav", "yes"},
           logs / "sphinx_fe.log", should_stop);
  run_tool({tools.bw.string(), "-hmmdir", hmm.string(), "-moddeffn", (hmm / "mdef.txt").string(), "-ts2cbfn", ".ptm.",
            "-feat", "1s_c_d_dd", "-svspec", "0-12/13-25/26-38", "-cmn", "batch", "-agc", "none", "-varnorm", "no",
            "-dictfn", dictionary.string(), "-fdictfn", (hmm / "noisedict").string(), "-ctlfn",
            (work / "train.fileids").string(), "-lsnfn", (work / "train.transcription").string(), "-cepdir",
            feat.string(), "-accumdir", accum.string()},
           logs / "bw.log", should_stop);
}

// Step: MLLR, one global transform of the means.
void solve_mllr(const Tools& tools, const fs::path& work, const fs::path& out, const fs::path& logs,
                const StopRequested& should_stop) {
  const fs::path hmm = work / "hmm";
  run_tool({tools.mllr_solve.string(), "-meanfn", (hmm / "means").string(), "-varfn", (hmm / "variances").string(),
            "-outmllrfn", out.string(), "-accumdir", (work / "accum").string()},
           logs / "mllr_solve.log", should_stop);
}

// Step: MAP re-estimation of means, variances and mixture weights into `out` (a whole HMM dir).
void solve_map(const Tools& tools, const fs::path& work, const fs::path& out, const fs::path& logs,
               const StopRequested& should_stop) {
  const fs::path hmm = work / "hmm";
  fs::remove_all(out);
  fs::create_directories(out);
  for (const char* name : {"feat.params", "noisedict", "mdef"}) fs::copy_file(hmm / name, out / name);
  run_tool({tools.map_adapt.string(), "-moddeffn", (hmm / "mdef.txt").string(), "-ts2cbfn", ".ptm.", "-meanfn",
            (hmm / "means").string(), "-varfn", (hmm / "variances").string(), "-mixwfn",
            (hmm / "mixture_weights").string(), "-tmatfn", (hmm / "transition_matrices").string(), "-accumdir",
            (work / "accum").string(), "-mapmeanfn", (out / "means").string(), "-mapvarfn",
            (out / "variances").string(), "-mapmixwfn", (out / "mixture_weights").string(), "-maptmatfn",
            (out / "transition_matrices").string()},
           logs / "map_adapt.log", should_stop);
}

}  // namespace

AdaptResult adapt(const AdaptOptions& options) {
  const fs::path dir = workspace::model_dir(options.avatar, "stt");
  const fs::path logs = dir / "logs", work = dir / "work";
  PersonData data = read_person_data(options.avatar);
  if (data.train.empty()) {
    throw InputError(fmt::format("{} has no train-split utterances in its speech dataset: run `dself prepare` on "
                                 "videos where the person speaks",
                                 options.avatar.string()));
  }
  AdaptResult result;
  result.train_utterances = static_cast<int>(data.train.size());
  for (const auto& u : data.train) result.train_speech_s += u.duration_s;
  fs::create_directories(logs);
  fs::create_directories(work);
  // Nothing of a previous model counts until the new config.json is written.
  fs::remove(dir / "config.json");
  const fs::path generic_hmm = options.generic_model_dir / "en-us";
  const fs::path generic_dict = options.generic_model_dir / "cmudict-en-us.dict";

  Progress progress("train stt", 6, "steps", options.progress);
  stop_if_requested(options.should_stop, "train stt");
  result.added_words = write_person_dictionary(generic_dict, data.train, dir / "person.dict", result.notes);
  progress.advance();

  // The LM weight is tuned on a development split carved out of train; the held-out split is not seen.
  auto [fit, dev] = split_development(data.train, options.dev_share);
  // Each weight decodes the development split once: keep it short, what is left over is fitted on.
  double dev_s = 0;
  for (size_t i = 0; i < dev.size(); ++i) {
    dev_s += dev[i].duration_s;
    if (dev_s > options.max_dev_s) {
      fit.insert(fit.end(), dev.begin() + i, dev.end());
      dev.resize(i);
      break;
    }
  }
  transcript::PocketSphinxOptions base;
  base.model_dir = options.generic_model_dir;
  base.dictionary = dir / "person.dict";
  result.lm_weight = options.default_lm_weight;
  if (dev.size() >= options.min_dev_utterances && !fit.empty()) {
    write_person_lm(fit, work / "dev.arpa");
    result.dev_wer_generic = wer_of(base, dev);
    double best = 2;
    for (double weight : options.lm_weights) {
      stop_if_requested(options.should_stop, "train stt");
      transcript::PocketSphinxOptions with_lm = base;
      with_lm.person_lm = work / "dev.arpa";
      with_lm.person_lm_weight = weight;
      const double wer = wer_of(with_lm, dev);
      spdlog::info("stt: person LM weight {:.2f}: development WER {:.2f}%", weight, 100 * wer);
      if (wer < best) {
        best = wer;
        result.lm_weight = weight;
      }
    }
    result.dev_wer_person_lm = best;
  } else {
    result.notes.push_back(fmt::format("too few train utterances for a development split: the person LM weight is "
                                       "not tuned ({:.2f})",
                                       result.lm_weight));
  }
  write_person_lm(data.train, dir / "person.arpa");
  progress.advance();

  json config = {{"format", "dself-stt"},
                 {"version", 1},
                 {"dictionary", "person.dict"},
                 {"lm", "person.arpa"},
                 {"lm_weight", result.lm_weight},
                 {"lm_order", 3},
                 {"mllr", nullptr},
                 {"hmm", nullptr},
                 {"train_speech_s", result.train_speech_s},
                 {"train_utterances", result.train_utterances},
                 {"added_words", result.added_words},
                 {"dev_wer_generic", result.dev_wer_generic},
                 {"dev_wer_person_lm", result.dev_wer_person_lm}};
  fs::remove(dir / "mllr_matrix");
  fs::remove_all(dir / "hmm");
  if (!options.acoustic) {
    result.notes.push_back("acoustic adaptation not asked for: the language model only");
  } else if (result.train_speech_s < options.min_acoustic_speech_s) {
    result.notes.push_back(fmt::format(
        "{:.0f} s of train-split speech is too little for acoustic adaptation (it needs {:.0f} s): the language "
        "model only",
        result.train_speech_s, options.min_acoustic_speech_s));
  } else {
    const Tools tools = find_tools(options.sphinxtrain_dir);
    accumulate_statistics(tools, generic_hmm, dir / "person.dict", data.train, work, logs, options.should_stop);
    progress.advance();
    solve_mllr(tools, work, dir / "mllr_matrix", logs, options.should_stop);
    result.mllr = true;
    config["mllr"] = "mllr_matrix";
    progress.advance();
    if (options.map) {
      // MAP from the generic model's statistics; the MLLR transform stays on disk for `eval stt`
      // but is not applied on top (it was estimated against the generic means, not the MAP ones).
      solve_map(tools, work, dir / "hmm", logs, options.should_stop);
      result.map = true;
      config["hmm"] = "hmm";
      config["mllr"] = nullptr;
    }
    progress.advance();
  }
  config["notes"] = result.notes;
  config["data_hash"] = stt_data_hash(options.avatar);
  write_file_atomic(dir / "config.json", config.dump(2) + "\n");
  progress.finish();
  return result;
}

std::optional<transcript::PocketSphinxOptions> person_recognizer_options(const fs::path& avatar,
                                                                          const fs::path& generic_model_dir) {
  const fs::path dir = workspace::model_dir(avatar, "stt");
  const fs::path path = dir / "config.json";
  if (!fs::exists(path)) return std::nullopt;
  json config = json::parse(read_file(path), nullptr, false);
  if (config.is_discarded() || config.value("format", "") != "dself-stt") {
    throw InputError(fmt::format("{} is not a dself STT model config: run `dself train stt --force`", path.string()));
  }
  transcript::PocketSphinxOptions options;
  options.model_dir = generic_model_dir;
  try {
    options.dictionary = dir / config.at("dictionary").get<std::string>();
    options.person_lm = dir / config.at("lm").get<std::string>();
    options.person_lm_weight = config.at("lm_weight").get<double>();
    if (config.at("mllr").is_string()) options.mllr = dir / config["mllr"].get<std::string>();
    if (config.at("hmm").is_string()) options.acoustic_model = dir / config["hmm"].get<std::string>();
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{} is incomplete ({}): run `dself train stt --force`", path.string(), e.what()));
  }
  options.name = fs::weakly_canonical(dir).string();
  return options;
}

std::optional<transcript::PocketSphinxOptions> visitor_recognizer_options(const fs::path& avatar) {
  std::optional<transcript::PocketSphinxOptions> options = person_recognizer_options(avatar);
  if (!options) return options;
  bool keep_acoustic = false;
  const fs::path metrics = workspace::metrics_path(avatar, "stt");
  if (fs::exists(metrics)) {
    const json m = json::parse(read_file(metrics), nullptr, false);
    keep_acoustic = !m.is_discarded() && m.value("other_voices_acoustic", "") == "adapted";
  }
  if (!keep_acoustic) {
    options->mllr.clear();
    options->acoustic_model.clear();
    options->name += " (language model; generic acoustic model for other voices)";
  }
  return options;
}

std::string stt_data_hash(const fs::path& avatar) {
  std::string key = "dself-stt v1\n";
  for (const auto& dir : speech_source_dirs(avatar)) {
    key += dir.filename().string() + " " + hash_bytes(read_file(dir / "utterances.json")) + "\n";
  }
  return hash_bytes(key);
}

}  // namespace dself::stt
