// The person's speech recognition (src/stt): the Kneser-Ney language model against hand-computed
// values, the sendump converter, and the adaptation on the small sample person.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "media/media.h"
#include "stt/stt.h"
#include "support.h"
#include "transcript/transcript.h"

namespace dself {
namespace {

namespace fs = std::filesystem;
using Sentences = std::vector<std::vector<std::string>>;

// Hand-computed (Chen & Goodman eq. 17, adjusted counts as KenLM): corpus "a b", "a c", "b c",
// order 2. Bigram counts <s>a 2, ab 1, b</s> 1, ac 1, c</s> 2, <s>b 1, bc 1: n1 5, n2 2, n3 0, so
// the fixed discounts 0.5 / 1 / 1.5 stand in. Unigram continuation counts: a 1 ({<s>}), b 2, c 2,
// </s> 2 ({b, c}); total 7, n1 1, n2 3: γ = (0.5·1 + 1·3)/7 = 0.5; uniform over 4 words.
//   p(a) = 0.5/7 + 0.5/4 = 0.1964286     p(b) = p(c) = p(</s>) = 1/7 + 0.125 = 0.2678571
//   context <s>: a 2, b 1 (total 3): γ = (0.5 + 1)/3 = 0.5
//     p(a|<s>) = 1/3 + 0.5 p(a) = 0.4315476    p(b|<s>) = 0.5/3 + 0.5 p(b) = 0.3005952
//     p(c|<s>) = 0.5 p(c) = 0.1339286 (back-off)
//   context a: b 1, c 1: γ = 0.5, p(b|a) = 0.25 + 0.5 p(b) = 0.3839286
//   context c: </s> 2: γ = 1/2, p(</s>|c) = 1/2 + 0.5 p(</s>) = 0.6339286; p(a|c) = 0.5 p(a) = 0.0982143
TEST(KneserNey, BigramMatchesHandComputedValues) {
  const stt::NgramModel m = stt::estimate_kneser_ney({{"a", "b"}, {"a", "c"}, {"b", "c"}}, 2);
  EXPECT_DOUBLE_EQ(m.discounts[1][0], 0.5);
  EXPECT_NEAR(m.probability({}, "a"), 0.1964286, 1e-6);
  EXPECT_NEAR(m.probability({}, "b"), 0.2678571, 1e-6);
  EXPECT_NEAR(m.probability({}, "</s>"), 0.2678571, 1e-6);
  EXPECT_NEAR(m.probability({"<s>"}, "a"), 0.4315476, 1e-6);
  EXPECT_NEAR(m.probability({"<s>"}, "b"), 0.3005952, 1e-6);
  EXPECT_NEAR(m.probability({"<s>"}, "c"), 0.1339286, 1e-6);
  EXPECT_NEAR(m.probability({"a"}, "b"), 0.3839286, 1e-6);
  EXPECT_NEAR(m.probability({"c"}, "</s>"), 0.6339286, 1e-6);
  EXPECT_NEAR(m.probability({"c"}, "a"), 0.0982143, 1e-6);
  EXPECT_EQ(m.probability({"a"}, "zebra"), 0);
}

// Modified discounts from count-of-counts (Chen & Goodman eq. 26). Order 1, one sentence
// "p q r r s s s t t t t": counts p 1, q 1, r 2, s 3, t 4, </s> 1, so n1 3, n2 1, n3 1, n4 1,
// Y = 3/5: D1 = 1 - 2Y/3 = 0.6, D2 = 2 - 3Y = 0.2, D3+ = 3 - 4Y = 0.6. Total 12, γ = (0.6·3 +
// 0.2·1 + 0.6·2)/12 = 3.2/12, six words: p(t) = 3.4/12 + 3.2/72 = 0.3277778.
TEST(KneserNey, ModifiedDiscountsFromCountOfCounts) {
  const stt::NgramModel m = stt::estimate_kneser_ney({{"p", "q", "r", "r", "s", "s", "s", "t", "t", "t", "t"}}, 1);
  EXPECT_NEAR(m.discounts[0][0], 0.6, 1e-12);
  EXPECT_NEAR(m.discounts[0][1], 0.2, 1e-12);
  EXPECT_NEAR(m.discounts[0][2], 0.6, 1e-12);
  EXPECT_NEAR(m.probability({}, "t"), 0.3277778, 1e-6);
  EXPECT_NEAR(m.probability({}, "p"), 0.4 / 12 + 3.2 / 72, 1e-9);
}

// Every context's distribution sums to one over the vocabulary, seen contexts and unseen ones.
TEST(KneserNey, TrigramDistributionsSumToOne) {
  const Sentences corpus = {{"the", "cat", "sat", "on", "the", "mat"},
                            {"the", "dog", "sat", "on", "the", "log"},
                            {"a", "cat", "and", "a", "dog"},
                            {"the", "cat", "sat"},
                            {"on", "the", "mat", "the", "cat", "sat", "down"}};
  const stt::NgramModel m = stt::estimate_kneser_ney(corpus, 3);
  std::vector<std::string> vocabulary = {"</s>"};
  for (const auto& [gram, entry] : m.grams[0]) {
    if (gram[0] != "<s>" && gram[0] != "</s>") vocabulary.push_back(gram[0]);
  }
  const Sentences histories = {{}, {"<s>"}, {"<s>", "the"}, {"the", "cat"}, {"cat", "sat"}, {"sat", "the"},
                               {"dog", "dog"}, {"on", "the"}, {"a"}};
  for (const auto& history : histories) {
    double sum = 0;
    for (const auto& w : vocabulary) sum += m.probability(history, w);
    EXPECT_NEAR(sum, 1.0, 1e-9) << "after " << ::testing::PrintToString(history);
  }
  EXPECT_GT(m.probability({"the", "cat"}, "sat"), m.probability({"the", "cat"}, "down"));
}

TEST(KneserNey, ArpaHasCountsBeginAndBackoffs) {
  const std::string arpa = stt::to_arpa(stt::estimate_kneser_ney({{"a", "b"}, {"a", "c"}, {"b", "c"}}, 2));
  EXPECT_NE(arpa.find("ngram 1=5\nngram 2=7\n"), std::string::npos) << arpa;
  // <s> is never predicted; its back-off weight is γ(<s>) = 0.5.
  EXPECT_NE(arpa.find("-99.000000\t<s>\t-0.301030\n"), std::string::npos) << arpa;
  EXPECT_NE(arpa.find("-0.364971\t<s> a\n"), std::string::npos) << arpa;  // log10 p(a|<s>)
  EXPECT_NE(arpa.find("\\end\\"), std::string::npos);
}

TEST(KneserNey, RejectsAnEmptyCorpus) {
  EXPECT_THROW(stt::estimate_kneser_ney({{}}, 3), InputError);
}

// A sendump as ptm_mgau.c reads it: 2 densities, 3 senones, 1 stream.
std::string tiny_sendump() {
  std::string out;
  auto put = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto put_string = [&](const std::string& s) {
    put(static_cast<uint32_t>(s.size() + 1));
    out += s;
    out += '\0';
  };
  put_string("BEGIN FILE FORMAT DESCRIPTION");
  put_string("cluster_count 0");
  put_string("feature_count 1");
  put(0);
  put(2);  // densities
  put(3);  // senones
  out += std::string("\x00\x05\x02", 3);  // density 0, senones 0..2
  out += std::string("\x01\x00\x02", 3);  // density 1
  return out;
}

TEST(Sendump, ReadsQuantisedWeightsBack) {
  test::TempDir dir;
  write_file_atomic(dir / "sendump", tiny_sendump());
  const stt::MixtureWeights m = stt::read_sendump(dir / "sendump");
  ASSERT_EQ(m.senone_count, 3);
  ASSERT_EQ(m.feature_count, 1);
  ASSERT_EQ(m.density_count, 2);
  // w = 1.0001^-(q·1024), renormalised: senone 1 has q 5 and 0.
  const double a = std::pow(1.0001, -5 * 1024.0), b = 1;
  EXPECT_NEAR(m.at(1, 0, 0), a / (a + b), 1e-6);
  EXPECT_NEAR(m.at(1, 0, 1), b / (a + b), 1e-6);
  EXPECT_NEAR(m.at(2, 0, 0), 0.5, 1e-6);
  const double c = std::pow(1.0001, -1024.0);
  EXPECT_NEAR(m.at(0, 0, 1), c / (1 + c), 1e-6);
}

TEST(Sendump, RejectsACutFile) {
  test::TempDir dir;
  const std::string bytes = tiny_sendump();
  write_file_atomic(dir / "sendump", bytes.substr(0, bytes.size() - 2));
  EXPECT_THROW(stt::read_sendump(dir / "sendump"), InputError);
}

// Debian's en-us model: 5126 senones, 3 streams of 128 Gaussians. The S3 file written from it
// reads back, and sphinxtrain's own printp reads it too.
TEST(Sendump, DebianModelRoundTripsThroughS3MixtureWeights) {
  const fs::path sendump = "/usr/share/pocketsphinx/model/en-us/en-us/sendump";
  if (!fs::exists(sendump)) GTEST_SKIP() << "pocketsphinx-en-us is not installed";
  const stt::MixtureWeights m = stt::read_sendump(sendump);
  EXPECT_EQ(m.senone_count, 5126);
  EXPECT_EQ(m.feature_count, 3);
  EXPECT_EQ(m.density_count, 128);
  double sum = 0;
  for (int d = 0; d < 128; ++d) sum += m.at(100, 1, d);
  EXPECT_NEAR(sum, 1.0, 1e-5);
  test::TempDir dir;
  stt::write_mixture_weights(dir / "mixture_weights", m);
  const stt::MixtureWeights back = stt::read_mixture_weights(dir / "mixture_weights");
  ASSERT_EQ(back.weights.size(), m.weights.size());
  EXPECT_NEAR(back.at(4000, 2, 17), m.at(4000, 2, 17), 1e-7);
  const fs::path printp = "/usr/lib/sphinxtrain/printp";
  if (fs::exists(printp)) {
    // A small file, so that printp's listing stays short.
    stt::MixtureWeights small = m;
    small.senone_count = 2;
    small.weights.resize(2 * 3 * 128);
    stt::write_mixture_weights(dir / "small", small);
    const test::CommandResult r = test::run_program({printp.string(), "-mixwfn", (dir / "small").string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("mixw 2 3 128"), std::string::npos) << r.output.substr(0, 2000);
  }
}

}  // namespace
}  // namespace dself

namespace dself {
namespace {

// The small sample person (about 25 s of train-split speech): too little for the acoustic model,
// so the language model and dictionary only, with a note saying how much is needed.
TEST(SttAdapt, TooLittleSpeechAdaptsTheLanguageModelOnly) {
  test::TempDir dir;
  const fs::path avatar = test::copy_avatar(dir.path());
  stt::AdaptOptions options;
  options.avatar = avatar;
  const stt::AdaptResult result = stt::adapt(options);
  EXPECT_GT(result.train_speech_s, 5);
  EXPECT_FALSE(result.mllr);
  EXPECT_FALSE(result.map);
  bool noted = false;
  for (const auto& note : result.notes) noted = noted || note.find("it needs 60 s") != std::string::npos;
  EXPECT_TRUE(noted) << ::testing::PrintToString(result.notes);
  const fs::path model = avatar / "models" / "stt";
  const std::string arpa = read_file(model / "person.arpa");
  EXPECT_NE(arpa.find("\\3-grams:"), std::string::npos);
  // Every word of the train split is in the person's dictionary, and none of the held-out-only ones
  // is in the LM (the held-out split is never learned from).
  const std::string dict = read_file(model / "person.dict");
  const nlohmann::json utterances = nlohmann::json::parse(read_file(avatar / "speech" / "1" / "utterances.json"));
  for (const auto& u : utterances["utterances"]) {
    if (u["split"] != "train") continue;
    for (const auto& w : transcript::scoring_words(u["text"].get<std::string>())) {
      EXPECT_NE(dict.find("\n" + w + " "), std::string::npos) << w;
    }
  }
  // The adapted recogniser loads and transcribes a train clip close to its text.
  auto sphinx = stt::person_recognizer_options(avatar);
  ASSERT_TRUE(sphinx.has_value());
  EXPECT_TRUE(sphinx->mllr.empty());
  transcript::PocketSphinxRecognizer recognizer(*sphinx);
  for (const auto& u : utterances["utterances"]) {
    if (u["split"] != "train") continue;
    const auto heard = recognizer.transcribe(media::decode_audio(avatar / "speech" / "1" / u["wav"].get<std::string>()));
    std::vector<std::string> words;
    for (const auto& w : heard.words) words.push_back(w.text);
    EXPECT_LT(transcript::word_error_rate(transcript::scoring_words(u["text"].get<std::string>()), words), 0.5)
        << u["text"];
    break;
  }
}

TEST(SttAdapt, MissingSphinxtrainIsAnEnvironmentErrorNamingThePackage) {
  test::TempDir dir;
  const fs::path avatar = test::copy_avatar(dir.path());
  stt::AdaptOptions options;
  options.avatar = avatar;
  options.min_acoustic_speech_s = 1;
  options.sphinxtrain_dir = dir / "no-sphinxtrain";
  try {
    stt::adapt(options);
    FAIL() << "adapted without sphinxtrain";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find("install the Debian package sphinxtrain"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(avatar / "models" / "stt" / "config.json"));
}

// sphinx_fe, bw, mllr_solve and map_adapt on the small person's train split (about 20 s of speech;
// the test takes about 7 s).
TEST(SttAdapt, MllrAndMapAdaptationRunsAndLoads) {
  test::TempDir dir;
  const fs::path avatar = test::copy_avatar(dir.path());
  stt::AdaptOptions options;
  options.avatar = avatar;
  options.min_acoustic_speech_s = 1;
  const stt::AdaptResult result = stt::adapt(options);
  EXPECT_TRUE(result.mllr);
  EXPECT_TRUE(result.map);
  const fs::path model = avatar / "models" / "stt";
  for (const char* f : {"mllr_matrix", "hmm/means", "hmm/variances", "hmm/mixture_weights", "hmm/mdef", "logs/bw.log",
                        "logs/map_adapt.log"}) {
    EXPECT_TRUE(fs::exists(model / f)) << f;
  }
  auto sphinx = stt::person_recognizer_options(avatar);
  ASSERT_TRUE(sphinx.has_value());
  EXPECT_EQ(sphinx->acoustic_model, model / "hmm");
  transcript::PocketSphinxRecognizer recognizer(*sphinx);
  const auto heard = recognizer.transcribe(media::decode_audio(avatar / "speech" / "1" / "0000.wav"));
  EXPECT_FALSE(heard.words.empty());
}

// dself transcribe: text, JSON with words and times, a silent file, a missing one.
TEST(TranscribeCli, TranscribesSaysWhichModelAndHandlesSilenceAndMissingFiles) {
  test::TempDir dir;
  const fs::path clip = test::prepared_avatar_dir() / "speech" / "1" / "0000.wav";
  // With --avatar, an avatar without an adapted model: the generic model, and a note saying so.
  const auto json_run =
      test::run_dself({"--avatar", test::prepared_avatar_dir().string(), "transcribe", "--json", clip.string()});
  ASSERT_EQ(json_run.exit_code, 0) << json_run.output;
  EXPECT_NE(json_run.output.find("generic one is used"), std::string::npos) << json_run.output;
  const nlohmann::json j = nlohmann::json::parse(json_run.output.substr(json_run.output.find('{')));
  EXPECT_EQ(j["engine"], "pocketsphinx");
  EXPECT_EQ(j["adaptation"], "generic");
  ASSERT_FALSE(j["words"].empty());
  EXPECT_LT(j["words"][0]["start_s"].get<double>(), j["words"][0]["end_s"].get<double>());
  EXPECT_GE(j["words"][0]["confidence"].get<double>(), 0.0);

  std::vector<float> silence(32000, 0.0f);
  media::write_wav(dir / "silence.wav", silence, 16000);
  const auto quiet = test::run_dself({"transcribe", "--json", (dir / "silence.wav").string()});
  EXPECT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_NE(quiet.output.find("no speech was recognised"), std::string::npos) << quiet.output;

  const auto missing = test::run_dself({"transcribe", (dir / "nothing.mp4").string()});
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("nothing.mp4"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace dself
