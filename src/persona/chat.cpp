// The extractive chat engine: answers with the person's own sentences, found by retrieval.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/catalog.h"
#include "core/error.h"
#include "persona/detail/text.h"
#include "persona/persona.h"

namespace dself::persona {

void check_message(std::string_view message, const PersonaParams& params) {
  if (message.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw InputError("the message is empty: say something, e.g. dself chat \"How did you start baking?\"");
  }
  // Characters as people count them: UTF-8 code points (every byte but continuation bytes).
  size_t characters = 0;
  for (char c : message) characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  if (characters > params.max_message_chars) {
    throw InputError(fmt::format("the message is {} characters long; the limit is {} characters: say it in fewer "
                                 "words, or in several messages",
                                 characters, params.max_message_chars));
  }
}

namespace {

const std::set<std::string> kGreetingWords = {"hi",      "hello",     "hey",     "hiya", "howdy", "greetings",
                                              "morning", "afternoon", "evening", "yo",   "sup",   "heya"};
const std::set<std::string> kThanksWords = {"thanks",   "thank", "thx", "cheers", "bye",        "goodbye",
                                            "farewell", "later", "cya", "night",  "appreciate", "appreciated"};
// Words that can sit around a greeting or a thanks without adding a topic.
const std::set<std::string> kSocialWords = {
    "there",  "everyone", "all",   "guys", "folks", "friend", "good", "you",   "how",    "are",  "doing",
    "much",   "so",       "very",  "a",    "lot",   "for",    "that", "this",  "the",    "it",   "and",
    "see",    "nice",     "great", "talk", "to",    "chat",   "ing",  "again", "i",      "your", "help",
    "answer", "answers",  "today", "man",  "dude",  "buddy",  "mate", "s",     "what's", "up",   "is",
    "going",  "have",     "day",   "time", "next",  "now",    "soon", "ok",    "okay"};
const std::set<std::string> kMoreWords = {"more", "continue", "on",   "go",    "else",   "and",   "then", "tell", "me",
                                          "what", "next",     "keep", "going", "please", "about", "that", "it"};

bool only_words_from(const std::vector<std::string>& words, const std::set<std::string>& a,
                     const std::set<std::string>& b) {
  for (const auto& w : words) {
    if (!a.count(w) && !b.count(w)) return false;
  }
  return true;
}

bool any_word_in(const std::vector<std::string>& words, const std::set<std::string>& set) {
  for (const auto& w : words) {
    if (set.count(w)) return true;
  }
  return false;
}

// Mostly letters outside ASCII, or several words none of which is English: another language.
bool looks_foreign(std::string_view text, const std::vector<std::string>& words) {
  size_t ascii = 0, other = 0;
  for (unsigned char c : text) {
    if (std::isalpha(c)) ++ascii;
    if (c >= 0xC0) ++other;  // lead byte of a multi-byte UTF-8 character
  }
  if (other > ascii) return true;
  if (words.size() < 3) return false;
  for (const auto& w : words) {
    if (is_common_english(w)) return false;
  }
  return true;
}

SourceRef ref_of(const std::vector<Sentence>& span, const std::set<std::string>& names) {
  SourceRef ref{span.front().source_id, span.front().title, span.front().start_s, span.back().end_s, ""};
  for (const auto& s : span) {
    if (!ref.text.empty()) ref.text += ' ';
    ref.text += readable(s.text, names);
  }
  return ref;
}

class ExtractiveEngine : public ChatEngine {
 public:
  explicit ExtractiveEngine(const Memory& memory) : memory_(memory) {}
  std::string name() const override { return "extractive"; }

  Reply reply(const std::vector<Message>& history, const TextCallback& on_text) override {
    Reply r = answer(history);
    // Stream sentence by sentence: the first sentence is ready before the rest is sent.
    size_t pos = 0;
    while (pos < r.text.size()) {
      size_t end = r.text.find_first_of(".?!", pos);
      end = end == std::string::npos ? r.text.size() : end + 1;
      if (on_text && !on_text(std::string_view(r.text).substr(pos, end - pos))) {
        r.text.resize(end);
        r.stopped = true;
        break;
      }
      pos = end;
    }
    return r;
  }

 private:
  Reply canned(const std::string& kind, const std::string& text) const { return Reply{text, {}, false, kind}; }

  Reply unknown() const {
    std::string text = "I don't think I've talked about that in my videos, so I'd rather not guess.";
    const auto& terms = memory_.card().distinctive_terms;
    if (!terms.empty()) {
      text += " I mostly talk about things like ";
      size_t n = std::min<size_t>(terms.size(), 3);
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) text += i + 1 == n ? " and " : ", ";
        text += terms[i].text;
      }
      text += ".";
    }
    return canned("unknown", text);
  }

  Reply from_refs(const std::string& kind, const std::vector<SourceRef>& refs, const std::string& fallback) const {
    if (refs.empty()) return canned(kind, fallback);
    Reply r{readable(refs.front().text, memory_.names()), {refs.front()}, true, kind};
    return r;
  }

  Reply answer(const std::vector<Message>& history) const {
    std::string message;
    const Message* last_answer = nullptr;
    std::string previous_question;
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
      if (it->role == "user" && message.empty() && !last_answer) {
        message = it->text;
      } else if (it->role == "assistant" && !last_answer) {
        last_answer = &*it;
      } else if (it->role == "user" && previous_question.empty()) {
        previous_question = it->text;
      }
    }
    auto words = words_of(message);
    if (words.empty()) return canned("unknown", "Sorry, I didn't catch a question there.");
    // Keywords the person said are never "another language", even with no English around them.
    if (looks_foreign(message, words) && memory_.search(message, 1).empty()) {
      return canned("language", "Sorry, I only speak English, and I don't think I've talked about that.");
    }
    if (any_word_in(words, kGreetingWords) && only_words_from(words, kGreetingWords, kSocialWords)) {
      return from_refs("greeting", memory_.card().greetings, "Hello!");
    }
    if (any_word_in(words, kThanksWords) && only_words_from(words, kThanksWords, kSocialWords)) {
      return from_refs("thanks", memory_.card().sign_offs, "Thanks, it was nice talking to you.");
    }
    // What this conversation already answered is not said again, unless the visitor asks for it.
    bool again = any_word_in(words, {"again", "repeat", "remind"});
    std::string said;
    for (const auto& m : history) {
      if (m.role != "assistant" || again) continue;
      said += ' ';
      said += normalized(m.text);
      said += ' ';
    }
    if (last_answer && !last_answer->sources.empty() && only_words_from(words, kMoreWords, {}) &&
        any_word_in(words, {"more", "continue", "on", "else", "next", "keep"})) {
      Reply more = continue_after(last_answer->sources.back(), said);
      if (more.grounded) return more;
    }
    // A follow-up leans on the last answer: where it was said and what was asked.
    MatchContext context;
    if (last_answer && !last_answer->sources.empty()) {
      const auto& ref = last_answer->sources.front();
      context.text = previous_question + " " + last_answer->text;
      context.source_id = ref.source_id;
      for (const auto& s : memory_.sentences(ref.source_id, 0, 1 << 30)) {
        if (s.start_s >= ref.start_s - 0.01) {
          context.sentence_index = s.index;
          break;
        }
      }
    }
    Reply r = retrieve(message, said, context.source_id != 0 ? &context : nullptr);
    return r.grounded ? r : unknown();
  }

  Reply continue_after(const SourceRef& ref, const std::string& said) const {
    auto all = memory_.sentences(ref.source_id, 0, 1 << 30);
    std::vector<Sentence> span;
    for (const auto& s : all) {
      if (s.start_s >= ref.end_s - 0.01 && !already_said(said, s.text) &&
          static_cast<int>(span.size()) < memory_.params().max_reply_sentences) {
        span.push_back(s);
      }
    }
    if (span.empty()) return canned("unknown", "That's about all I said about it.");
    SourceRef out = ref_of(span, memory_.names());
    return Reply{out.text, {out}, true, "answer"};
  }

  static bool already_said(const std::string& said, const std::string& text) {
    std::string padded = ' ' + normalized(text) + ' ';
    return said.find(padded) != std::string::npos;
  }

  // The best sentence by meaning (Memory::match) that this conversation has not said yet, when
  // the memory is sure enough of it, plus the sentence after it when the best is short.
  Reply retrieve(const std::string& question, const std::string& said, const MatchContext* context) const {
    const auto& params = memory_.params();
    const Sentence* best = nullptr;
    auto matches = memory_.match(question, 12, context);
    for (const auto& m : matches) {
      if (m.confidence < params.min_confidence) break;
      if (already_said(said, m.sentence.text)) continue;
      best = &m.sentence;
      break;
    }
    if (!best) return Reply{};
    std::vector<Sentence> span = {*best};
    auto next = memory_.sentences(best->source_id, best->index + 1, params.max_reply_sentences - 1);
    for (const auto& s : next) {
      // Only a short answer gets the sentence after it: a longer one is the answer, and what
      // follows is left for "what else?" and follow-ups.
      bool short_best = words_of(span.front().text).size() < 8;
      if (!already_said(said, s.text) && short_best) {
        span.push_back(s);
      } else {
        break;
      }
    }
    SourceRef ref = ref_of(span, memory_.names());
    return Reply{ref.text, {ref}, true, "answer"};
  }

  const Memory& memory_;
};

}  // namespace

std::unique_ptr<ChatEngine> make_extractive_engine(const Memory& memory) {
  return std::make_unique<ExtractiveEngine>(memory);
}

std::vector<Message> conversation_history(const std::filesystem::path& avatar, int64_t conversation_id) {
  Catalog catalog(avatar);
  if (conversation_id <= 0 || catalog.conversations(conversation_id, 1).empty()) {
    throw InputError(fmt::format("unknown conversation {} in {}: give the conversation_id of an earlier reply",
                                 conversation_id, avatar.string()));
  }
  std::vector<Message> history;
  for (const auto& m : catalog.messages(conversation_id)) {
    Message message{m.role, m.text, {}};
    auto sources = nlohmann::json::parse(m.sources_json.empty() ? "[]" : m.sources_json, nullptr, false);
    if (sources.is_array()) {
      for (const auto& s : sources) {
        if (!s.is_object()) continue;
        message.sources.push_back({s.value("source_id", int64_t{0}), s.value("title", std::string()),
                                   s.value("start_s", 0.0), s.value("end_s", 0.0), ""});
      }
    }
    history.push_back(std::move(message));
  }
  return history;
}

}  // namespace dself::persona
