// Word meaning: WordNet 3.0 read from its data files, base forms, and question types.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <unordered_map>

#include "persona/detail/meaning.h"
#include "persona/detail/text.h"

namespace dself::persona {

namespace {

// Later senses are rare uses. Fewer (2, or only those seen in the tagged corpus) were tried and
// did worse on the development questions: a visitor's word often means one of the rarer senses.
constexpr int kSensesPerPos = 5;
constexpr std::array<const char*, 4> kPosNames = {"noun", "verb", "adj", "adv"};

// A read-only memory map of a whole file.
struct MappedFile {
  std::string_view text;
  bool open(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return false;
    struct stat st {};
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
      ::close(fd);
      return false;
    }
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return false;
    text = std::string_view(static_cast<const char*>(p), static_cast<size_t>(st.st_size));
    return true;
  }
  ~MappedFile() {
    if (!text.empty()) munmap(const_cast<char*>(text.data()), text.size());
  }
};

// The line of a sorted index file whose first field is key, by binary search over bytes (the
// files are sorted in byte order; license lines start with two spaces and sort first).
std::string_view find_line(std::string_view file, std::string_view key) {
  size_t lo = 0, hi = file.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    size_t start = mid == 0 ? 0 : file.rfind('\n', mid - 1);
    start = start == std::string_view::npos || mid == 0 ? 0 : start + 1;
    if (start < lo) start = lo;
    size_t end = file.find('\n', start);
    if (end == std::string_view::npos) end = file.size();
    std::string_view line = file.substr(start, end - start);
    if (line.size() >= 2 && line[0] == ' ' && line[1] == ' ') {
      lo = end + 1;
      continue;
    }
    std::string_view word = line.substr(0, line.find(' '));
    int cmp = word.compare(key);
    if (cmp == 0) return line;
    if (cmp < 0) {
      lo = end + 1;
    } else {
      hi = start;
    }
  }
  return {};
}

int pos_index(char c) {
  switch (c) {
    case 'n': return 0;
    case 'v': return 1;
    case 'a':
    case 's': return 2;
    case 'r': return 3;
    default: return -1;
  }
}

ConceptId concept_id(int pos, int64_t offset) { return (pos + 1) * 100000000LL + offset; }

}  // namespace

struct WordNet::Impl {
  std::array<MappedFile, 4> index;
  std::array<MappedFile, 4> data;
  std::array<std::unordered_map<std::string, std::vector<std::string>>, 4> exceptions;

  // Synset offsets of a lemma for one part of speech, most frequent sense first; `senses`: how
  // many it has.
  std::vector<int64_t> synsets(int pos, const std::string& lemma, int* senses = nullptr) const {
    std::vector<int64_t> out;
    auto line = find_line(index[pos].text, lemma);
    if (line.empty()) return out;
    auto f = split_spaces(line);
    // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
    if (f.size() < 4) return out;
    size_t p_cnt = static_cast<size_t>(std::atoi(std::string(f[3]).c_str()));
    size_t first = 4 + p_cnt + 2;
    if (first > f.size()) return out;
    if (senses) *senses = std::atoi(std::string(f[2]).c_str());
    size_t keep = static_cast<size_t>(kSensesPerPos);
    for (size_t i = first; i < f.size() && out.size() < keep; ++i) out.push_back(std::atoll(std::string(f[i]).c_str()));
    return out;
  }

  struct Pointer {
    std::string symbol;
    int pos;
    int64_t offset;
  };
  // The pointers of a synset (data line: offset lex_filenum ss_type w_cnt word lex_id ... p_cnt ptr...).
  std::vector<Pointer> pointers(int pos, int64_t offset) const {
    std::vector<Pointer> out;
    const auto& text = data[pos].text;
    if (offset < 0 || static_cast<size_t>(offset) >= text.size()) return out;
    size_t end = text.find('\n', static_cast<size_t>(offset));
    std::string_view line = text.substr(static_cast<size_t>(offset), end - static_cast<size_t>(offset));
    line = line.substr(0, line.find(" | "));
    auto f = split_spaces(line);
    if (f.size() < 4) return out;
    size_t w_cnt = std::strtoul(std::string(f[3]).c_str(), nullptr, 16);
    size_t i = 4 + 2 * w_cnt;
    if (i >= f.size()) return out;
    size_t p_cnt = static_cast<size_t>(std::atoi(std::string(f[i]).c_str()));
    ++i;
    for (size_t k = 0; k < p_cnt && i + 3 < f.size(); ++k, i += 4) {
      int p = pos_index(f[i + 2].empty() ? '?' : f[i + 2][0]);
      if (p < 0) continue;
      out.push_back(Pointer{std::string(f[i]), p, std::atoll(std::string(f[i + 1]).c_str())});
    }
    return out;
  }
};

const WordNet* WordNet::get() {
  static const WordNet* instance = [] () -> const WordNet* {
    const char* env = std::getenv("DSELF_WORDNET");
    std::filesystem::path dir = env && *env ? env : "/usr/share/wordnet";
    auto* wn = new WordNet();
    wn->impl_ = new Impl();
    for (size_t p = 0; p < 4; ++p) {
      if (!wn->impl_->index[p].open(dir / (std::string("index.") + kPosNames[p])) ||
          !wn->impl_->data[p].open(dir / (std::string("data.") + kPosNames[p]))) {
        delete wn;
        return nullptr;
      }
      std::ifstream exc(dir / (std::string(kPosNames[p]) + ".exc"));
      std::string line;
      while (std::getline(exc, line)) {
        auto f = split_spaces(line);
        for (size_t i = 1; i < f.size(); ++i) wn->impl_->exceptions[p][std::string(f[0])].emplace_back(f[i]);
      }
    }
    return wn;
  }();
  return instance;
}

WordNet::~WordNet() { delete impl_; }

int WordNet::senses(const std::string& lemma) const {
  int total = 0;
  for (int p = 0; p < 4; ++p) {
    int n = 0;
    impl_->synsets(p, lemma, &n);
    total += n;
  }
  return total;
}

bool WordNet::knows(const std::string& lemma) const {
  for (int p = 0; p < 4; ++p) {
    if (!find_line(impl_->index[p].text, lemma).empty()) return true;
  }
  return false;
}

std::vector<std::string> WordNet::base_forms(const std::string& word) const {
  // ref: morphy(7WN): the exception list first, then the detachment rules of each part of speech.
  static const std::array<std::vector<std::pair<std::string, std::string>>, 4> rules = {{
      {{"s", ""}, {"ses", "s"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}},
      {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
      {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
      {},
  }};
  std::vector<std::string> out;
  auto add = [&](int p, const std::string& form) {
    if (form.empty() || find_line(impl_->index[p].text, form).empty()) return;
    if (std::find(out.begin(), out.end(), form) == out.end()) out.push_back(form);
  };
  for (int p = 0; p < 4; ++p) {
    add(p, word);
    auto it = impl_->exceptions[p].find(word);
    if (it != impl_->exceptions[p].end()) {
      for (const auto& base : it->second) add(p, base);
    }
    for (const auto& [suffix, ending] : rules[p]) {
      if (word.size() <= suffix.size() + 1 || word.compare(word.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      std::string base = word.substr(0, word.size() - suffix.size()) + ending;
      add(p, base);
      // Doubled final consonants (running -> run, stopped -> stop) are not in morphy's rules.
      if (ending.empty() && base.size() >= 3 && base[base.size() - 1] == base[base.size() - 2]) {
        add(p, base.substr(0, base.size() - 1));
      }
    }
  }
  return out;
}

WordConcepts WordNet::concepts(const std::string& lemma) const {
  WordConcepts out;
  std::set<ConceptId> own, b1, b2;
  std::vector<std::pair<int, int64_t>> level1;
  for (int p = 0; p < 4; ++p) {
    auto offsets = impl_->synsets(p, lemma);
    for (int64_t offset : offsets) {
      own.insert(concept_id(p, offset));
      for (const auto& ptr : impl_->pointers(p, offset)) {
        // Word family (+ derivation, \ pertainym) counts as the word's own meaning; hypernyms (@,
        // @i instance) are the broader terms. Adjectives' "similar to" links reach too far (bad ~ big).
        if (ptr.symbol == "+" || ptr.symbol == "\\" || ptr.symbol == "&" || ptr.symbol == "^") {
          own.insert(concept_id(ptr.pos, ptr.offset));
        } else if (ptr.symbol == "@" || ptr.symbol == "@i") {
          b1.insert(concept_id(ptr.pos, ptr.offset));
          level1.emplace_back(ptr.pos, ptr.offset);
        }
      }
    }
  }
  for (const auto& [p, offset] : level1) {
    for (const auto& ptr : impl_->pointers(p, offset)) {
      if (ptr.symbol == "@" || ptr.symbol == "@i") b2.insert(concept_id(ptr.pos, ptr.offset));
    }
  }
  out.own.assign(own.begin(), own.end());
  for (auto c : b1) {
    if (!own.count(c)) out.broader1.push_back(c);
  }
  for (auto c : b2) {
    if (!own.count(c) && !b1.count(c)) out.broader2.push_back(c);
  }
  return out;
}

std::string lemma_key(const std::string& word) {
  const WordNet* wn = WordNet::get();
  if (wn) {
    auto forms = wn->base_forms(word);
    if (!forms.empty()) {
      // The shortest base form: "learning" and "learn" meet at learn, "baking" at bake.
      return *std::min_element(forms.begin(), forms.end(),
                               [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
    }
  }
  return stem(word);
}

std::vector<std::string> content_keys(std::string_view text, bool terms_replace_words) {
  auto words = words_of(text);
  std::vector<std::string> out;
  const WordNet* wn = WordNet::get();
  for (size_t i = 0; i < words.size(); ++i) {
    // A two-word term WordNet knows ("grown ups", "dutch oven") is one more key: beside its words
    // in what the person said (so either matches), instead of them in a question (where "grow"
    // and "up" would count as words of their own).
    if (wn && i + 1 < words.size() && !is_common_english(words[i]) && !is_common_english(words[i + 1])) {
      bool term = false;
      for (const char* glue : {"_", "-", ""}) {
        auto forms = wn->base_forms(words[i] + glue + words[i + 1]);
        if (!forms.empty()) {
          out.push_back(forms.front());
          term = true;
          break;
        }
      }
      if (term && terms_replace_words) {
        ++i;
        continue;
      }
    }
    if (words[i].size() < 2 || is_common_english(words[i])) continue;
    out.push_back(lemma_key(words[i]));
  }
  return out;
}

namespace {

bool has_word(const std::vector<std::string>& words, std::initializer_list<const char*> set) {
  for (const auto& w : words) {
    for (const char* s : set) {
      if (w == s) return true;
    }
  }
  return false;
}

bool has_pair(const std::vector<std::string>& words, const char* a, std::initializer_list<const char*> b) {
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i] != a) continue;
    for (const char* s : b) {
      if (words[i + 1] == s) return true;
    }
  }
  return false;
}

const std::set<std::string> kNumberWords = {
    "one",    "two",     "three",   "four",   "five",     "six",     "seven",   "eight",    "nine",
    "ten",    "eleven",  "twelve",  "thirty", "twenty",   "forty",   "fifty",   "sixty",    "seventy",
    "eighty", "ninety",  "hundred", "thousand", "million", "half",   "dozen",   "fifteen",  "nineteen",
    "thirteen", "fourteen", "sixteen", "seventeen", "eighteen", "once", "twice", "single", "couple"};
const std::set<std::string> kDurationUnits = {"second", "seconds", "minute", "minutes", "hour",  "hours",
                                              "day",    "days",    "week",   "weeks",   "month", "months",
                                              "year",   "years",   "ago",    "decade",  "decades"};
const std::set<std::string> kTimeWords = {
    "morning", "mornings", "evening",   "evenings",  "night",   "nights",  "winter",   "summer",  "spring",
    "autumn",  "ago",      "monday",    "tuesday",   "wednesday", "thursday", "friday", "saturday", "sunday",
    "january", "february", "march",     "april",     "may",     "june",    "july",     "august",  "september",
    "october", "november", "december",  "o'clock",   "dawn",    "dinner",  "breakfast", "year",   "when",
    "weekend", "christmas", "birthday", "afternoon", "midnight", "early",  "late",     "before",  "after"};
const std::set<std::string> kPersonWords = {"named", "called", "teacher", "grandmother", "grandfather", "mum",
                                            "dad",   "mother", "father",  "neighbour",   "friend",      "man",
                                            "woman", "nephew", "niece",   "viewer",      "sister",      "brother"};
const std::set<std::string> kPlaceWords = {"in", "at", "on", "from", "near", "behind", "next", "by", "along", "inside",
                                           "under", "above", "between", "town", "city", "shop", "house", "village"};
const std::set<std::string> kFrequencyWords = {"every", "each",    "daily", "weekly", "monthly", "once",
                                               "twice", "always",  "times", "usually", "often"};

bool has_number(const std::vector<std::string>& words) {
  for (const auto& w : words) {
    if (kNumberWords.count(w) || std::isdigit(static_cast<unsigned char>(w[0]))) return true;
  }
  return false;
}

}  // namespace

std::string question_type(std::string_view question) {
  auto w = words_of(question);
  if (has_pair(w, "how", {"old"}) || has_pair(w, "what", {"age"})) return "age";
  if (has_pair(w, "how", {"long"}) || has_pair(w, "since", {"when"})) return "duration";
  if (has_pair(w, "how", {"often", "frequently"})) return "frequency";
  if (has_pair(w, "how", {"much", "many", "far", "hot", "big", "fast", "heavy"}) ||
      has_pair(w, "what", {"temperature"})) {
    return "quantity";
  }
  if (has_word(w, {"who", "whom", "whose"})) return "person";
  if (has_word(w, {"when"}) || has_pair(w, "what", {"time", "date", "year", "day"})) return "time";
  if (has_word(w, {"where"})) return "place";
  if (has_word(w, {"why"})) return "reason";
  return "";
}

bool answers_type(const std::string& type, std::string_view sentence) {
  if (type.empty()) return true;
  auto w = words_of(sentence);
  bool number = has_number(w);
  if (type == "duration") {
    for (const auto& x : w) {
      if (kDurationUnits.count(x)) return number || x == "ago" || has_word(w, {"whole", "all", "full"});
    }
    return false;
  }
  if (type == "age") return (number && has_word(w, {"old", "was", "at", "aged", "age"})) || has_word(w, {"thirties", "twenties"});
  if (type == "quantity") return number;
  if (type == "frequency") {
    for (const auto& x : w) {
      if (kFrequencyWords.count(x)) return true;
    }
    return false;
  }
  if (type == "reason") return has_word(w, {"because", "so", "since", "means", "reason", "why"});
  if (type == "time") {
    for (const auto& x : w) {
      if (kTimeWords.count(x)) return true;
    }
    return number;
  }
  if (type == "place") {
    for (const auto& x : w) {
      if (kPlaceWords.count(x)) return true;
    }
    return false;
  }
  if (type == "person") {
    for (const auto& x : w) {
      if (kPersonWords.count(x)) return true;
    }
    // A capitalised word that does not start the sentence: a name.
    bool first = true;
    size_t pos = 0;
    while (pos < sentence.size()) {
      size_t start = sentence.find_first_not_of(" ,.;:!?\"", pos);
      if (start == std::string_view::npos) break;
      size_t end = sentence.find_first_of(" ,.;:!?\"", start);
      if (end == std::string_view::npos) end = sentence.size();
      if (!first && std::isupper(static_cast<unsigned char>(sentence[start])) && sentence.substr(start, end - start) != "I") {
        return true;
      }
      first = false;
      pos = end;
    }
    return false;
  }
  return true;
}

}  // namespace dself::persona
