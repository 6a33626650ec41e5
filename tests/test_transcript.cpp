// Caption parsing: WebVTT (manual and YouTube's automatic style), SRT, and bad caption files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "transcript/transcript.h"

namespace dself::transcript {
namespace {

std::vector<std::string> texts(const Transcript& t) {
  std::vector<std::string> out;
  for (const auto& w : t.words) out.push_back(w.text);
  return out;
}

TEST(Captions, ManualWebVttSpreadsWordsOverTheCue) {
  auto t = parse_captions(
      "WEBVTT\nKind: captions\nLanguage: en\n\n"
      "1\n00:00:01.000 --> 00:00:03.000\nHello &amp; welcome back.\n\n"
      "00:00:03.500 --> 00:00:04.500 align:start position:0%\n<v Ada>Thanks, <i>everyone</i>!\n",
      "a.vtt");
  EXPECT_EQ(texts(t), (std::vector<std::string>{"Hello", "&", "welcome", "back.", "Thanks,", "everyone!"}));
  ASSERT_EQ(t.segments.size(), 2u);
  EXPECT_EQ(t.segments[0].text, "Hello & welcome back.");
  EXPECT_DOUBLE_EQ(t.words[0].start_s, 1.0);
  EXPECT_DOUBLE_EQ(t.words[1].start_s, 1.5);
  EXPECT_DOUBLE_EQ(t.words[3].start_s, 2.5);
  EXPECT_DOUBLE_EQ(t.words[3].end_s, 3.0);
  EXPECT_DOUBLE_EQ(t.words[4].start_s, 3.5);
  EXPECT_EQ(t.engine, "captions");
}

// Shaped like YouTube's automatic captions: each cue repeats the previous line, new words carry
// inline timings, and 10 ms cues only repeat what was said.
TEST(Captions, YoutubeAutomaticCaptionsGiveEachWordOnceWithItsTime) {
  auto t = parse_captions(
      "WEBVTT\nKind: captions\nLanguage: en\n\n"
      "00:00:00.030 --> 00:00:02.470 align:start position:0%\n"
      " \n"
      "hey<00:00:00.480><c> everyone</c><00:00:00.780><c> welcome</c>\n\n"
      "00:00:02.470 --> 00:00:02.480 align:start position:0%\n"
      "hey everyone welcome\n \n\n"
      "00:00:02.480 --> 00:00:05.000 align:start position:0%\n"
      "hey everyone welcome\n"
      "back<00:00:02.900><c> to</c><00:00:03.100><c> the</c><00:00:03.300><c> workshop</c>\n\n"
      "00:00:05.000 --> 00:00:05.010 align:start position:0%\n"
      "back to the workshop\n \n\n"
      "00:00:05.010 --> 00:00:07.000 align:start position:0%\n"
      "back to the workshop\n"
      "[Music]\n",
      "auto.en.vtt");
  EXPECT_EQ(texts(t), (std::vector<std::string>{"hey", "everyone", "welcome", "back", "to", "the", "workshop"}));
  EXPECT_DOUBLE_EQ(t.words[0].start_s, 0.03);
  EXPECT_DOUBLE_EQ(t.words[0].end_s, 0.48);
  EXPECT_DOUBLE_EQ(t.words[1].start_s, 0.48);
  EXPECT_DOUBLE_EQ(t.words[3].start_s, 2.48);
  EXPECT_DOUBLE_EQ(t.words[6].start_s, 3.3);
  EXPECT_DOUBLE_EQ(t.words[6].end_s, 5.0);
  EXPECT_EQ(t.segments.size(), 2u);
}

TEST(Captions, SrtIsRead) {
  auto t = parse_captions("1\n00:00:01,000 --> 00:00:02,000\nOne two.\n\n2\n00:00:02,500 --> 00:00:03,500\n>> Three\n",
                          "a.srt");
  EXPECT_EQ(texts(t), (std::vector<std::string>{"One", "two.", "Three"}));
  EXPECT_DOUBLE_EQ(t.words[2].start_s, 2.5);
}

TEST(Captions, MalformedTimingNamesTheLine) {
  try {
    parse_captions("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nhello\n", "bad.vtt");
    FAIL() << "malformed timing accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.vtt line 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_captions("WEBVTT\n\nhello there\nno timing\n", "bad.vtt"), InputError);
  EXPECT_THROW(parse_captions("just some text\n", "notes.txt"), InputError);
  EXPECT_THROW(parse_captions("", "empty.vtt"), InputError);
  EXPECT_THROW(parse_captions("WEBVTT\n\n00:00:03.000 --> 00:00:01.000\nbackwards\n", "bad.vtt"), InputError);
}

TEST(Captions, AnotherLanguageIsRefused) {
  try {
    parse_captions("WEBVTT\nLanguage: de\n\n00:00:01.000 --> 00:00:02.000\nHallo zusammen\n", "de.vtt");
    FAIL() << "German captions accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'de'"), std::string::npos) << e.what();
  }
  std::string german = "1\n00:00:01,000 --> 00:00:09,000\n";
  for (int i = 0; i < 5; ++i) german += "Heute backen wir zusammen ein schönes Brot mit Sauerteig. ";
  EXPECT_THROW(parse_captions(german, "de.srt"), InputError);
}

TEST(Captions, JsonRoundTrip) {
  auto t = parse_captions("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello there\n", "a.vtt");
  auto back = transcript_from_json(to_json(t));
  EXPECT_EQ(texts(back), texts(t));
  EXPECT_DOUBLE_EQ(back.words[1].start_s, t.words[1].start_s);
  EXPECT_EQ(back.model, "a.vtt");
}

}  // namespace
}  // namespace dself::transcript
