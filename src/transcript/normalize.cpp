// Text normalisation: the words a person says for digits, symbols and abbreviations.
#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include "transcript/transcript.h"

namespace dself::transcript {
namespace {

const char* const ones[] = {"zero",    "one",     "two",       "three",    "four",     "five",    "six",
                            "seven",   "eight",   "nine",      "ten",      "eleven",   "twelve",  "thirteen",
                            "fourteen", "fifteen", "sixteen",  "seventeen", "eighteen", "nineteen"};
const char* const tens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};

std::string under_thousand(int n) {
  std::string out;
  if (n >= 100) {
    out = std::string(ones[n / 100]) + " hundred";
    n %= 100;
    if (n) out += " and ";
  }
  if (n >= 20) {
    out += tens[n / 10];
    if (n % 10) out += std::string(" ") + ones[n % 10];
  } else if (n > 0 || out.empty()) {
    out += ones[n];
  }
  return out;
}

std::string cardinal(long long n) {
  if (n < 0) return "minus " + cardinal(-n);
  if (n < 1000) return under_thousand(static_cast<int>(n));
  static const std::pair<long long, const char*> scales[] = {
      {1000000000000LL, "trillion"}, {1000000000LL, "billion"}, {1000000LL, "million"}, {1000LL, "thousand"}};
  std::string out;
  for (auto [scale, name] : scales) {
    if (n >= scale) {
      out += (out.empty() ? "" : " ") + cardinal(n / scale) + " " + name;
      n %= scale;
    }
  }
  if (n > 0) out += (n < 100 ? " and " : " ") + under_thousand(static_cast<int>(n));
  return out;
}

// Four-digit numbers (without a thousands comma or currency) from 1100 to 2099 read as years ("nineteen ninety five", "two thousand and
// nine"); that is how people say them far more often than as quantities.
std::string number_words(const std::string& digits, bool may_be_year) {
  if (digits.size() > 15) {
    std::string out;
    for (char c : digits) out += (out.empty() ? "" : " ") + std::string(ones[c - '0']);
    return out;
  }
  long long n = std::stoll(digits);
  if (may_be_year && digits.size() == 4 && n >= 1100 && n < 2100 && !(n >= 2000 && n < 2010) && n % 1000 >= 10) {
    int high = static_cast<int>(n / 100), low = static_cast<int>(n % 100);
    return under_thousand(high) + " " + (low == 0 ? "hundred" : low < 10 ? "oh " + under_thousand(low) : under_thousand(low));
  }
  return cardinal(n);
}

const std::map<std::string, std::string>& abbreviations() {
  static const std::map<std::string, std::string> table = {
      {"mr.", "mister"}, {"mrs.", "missus"}, {"ms.", "miz"},         {"dr.", "doctor"},     {"prof.", "professor"},
      {"st.", "saint"},  {"jr.", "junior"},  {"sr.", "senior"},      {"vs.", "versus"},     {"etc.", "et cetera"},
      {"e.g.", "for example"}, {"i.e.", "that is"}, {"approx.", "approximately"}, {"no.", "number"},
      {"&", "and"},      {"%", "percent"},   {"km", "kilometres"},   {"kg", "kilograms"},   {"+", "plus"}};
  return table;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One whitespace-separated token to spoken words, keeping its trailing punctuation.
std::string normalize_token(const std::string& token) {
  auto it = abbreviations().find(lower(token));
  if (it != abbreviations().end()) return it->second;
  // Split leading symbols, the core and trailing punctuation: "$5," -> "$", "5", ","
  size_t end = token.size();
  while (end > 0 && std::ispunct(static_cast<unsigned char>(token[end - 1])) && token[end - 1] != '%') --end;
  std::string trailing = token.substr(end);
  std::string core = token.substr(0, end);
  std::string currency;
  if (!core.empty() && (core[0] == '$' || core[0] == '#')) {
    currency = core[0] == '$' ? "dollars" : "number";
    core.erase(0, 1);
  }
  bool percent = !core.empty() && core.back() == '%';
  if (percent) core.pop_back();
  std::string digits;
  for (char c : core) {
    if (c != ',') digits += c;  // 1,000 -> 1000
  }
  bool numeric = !digits.empty() && std::isdigit(static_cast<unsigned char>(digits[0]));
  for (char c : digits) numeric = numeric && (std::isdigit(static_cast<unsigned char>(c)) || c == '.');
  if (!numeric || std::count(digits.begin(), digits.end(), '.') > 1 || digits.back() == '.') {
    auto abbreviation = abbreviations().find(lower(core));
    if (abbreviation != abbreviations().end() && currency.empty()) return abbreviation->second + trailing;
    return token;
  }
  std::string spoken;
  size_t point = digits.find('.');
  if (point == std::string::npos) {
    spoken = number_words(digits, /*may_be_year=*/core.find(',') == std::string::npos && currency.empty());
  } else {
    spoken = cardinal(std::stoll(digits.substr(0, point))) + " point";
    for (char c : digits.substr(point + 1)) spoken += std::string(" ") + ones[c - '0'];
  }
  if (percent) spoken += " percent";
  if (!currency.empty()) spoken = currency == "number" ? "number " + spoken : spoken + " " + currency;
  return spoken + trailing;
}

}  // namespace

std::string normalize_text(std::string_view text) {
  std::istringstream tokens{std::string(text)};
  std::string token, out;
  while (tokens >> token) out += (out.empty() ? "" : " ") + normalize_token(token);
  return out;
}

std::vector<std::string> scoring_words(std::string_view text) {
  std::istringstream tokens(normalize_text(text));
  std::vector<std::string> words;
  std::string token;
  while (tokens >> token) {
    std::string word;
    for (char c : token) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '\'') {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else if (c == '-' && !word.empty()) {
        words.push_back(word);  // "well-known" scores as two words, as recognisers write it
        word.clear();
      }
    }
    if (!word.empty()) words.push_back(word);
  }
  return words;
}

double word_error_rate(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis) {
  if (reference.empty()) return hypothesis.empty() ? 0.0 : 1.0;
  // Levenshtein distance over words, one row at a time.
  std::vector<size_t> previous(hypothesis.size() + 1), current(hypothesis.size() + 1);
  for (size_t j = 0; j <= hypothesis.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= reference.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= hypothesis.size(); ++j) {
      size_t substitution = previous[j - 1] + (reference[i - 1] == hypothesis[j - 1] ? 0 : 1);
      current[j] = std::min({substitution, previous[j] + 1, current[j - 1] + 1});
    }
    std::swap(previous, current);
  }
  return static_cast<double>(previous[hypothesis.size()]) / static_cast<double>(reference.size());
}

}  // namespace dself::transcript
