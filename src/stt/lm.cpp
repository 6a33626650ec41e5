// The person's n-gram language model: interpolated modified Kneser-Ney, written as ARPA.
// ref: S. F. Chen and J. Goodman, "An Empirical Study of Smoothing Techniques for Language
// Modeling", TR-10-98, Harvard, 1998, §3.5 (modified KN, three discounts per order, eq. 17-19);
// adjusted counts for n-grams that begin with <s> as KenLM's lmplz does (Heafield et al., "Scalable
// Modified Kneser-Ney Language Model Estimation", ACL 2013, §3.1).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "stt/stt.h"

namespace dself::stt {
namespace {

using Gram = std::vector<std::string>;

constexpr const char* kBegin = "<s>";
constexpr const char* kEnd = "</s>";
constexpr double kLog10Zero = -99;  // ARPA's "never" (the probability of <s>)

Gram context_of(const Gram& gram) { return Gram(gram.begin(), gram.end() - 1); }
Gram lower_of(const Gram& gram) { return Gram(gram.begin() + 1, gram.end()); }

// Chen & Goodman eq. 26: D_k = k - (k+1) Y n_{k+1} / n_k, Y = n_1 / (n_1 + 2 n_2). With too few
// distinct counts (a small corpus) the estimate is undefined or out of [0, k]; then the usual
// fixed discounts stand in (0.5, 1, 1.5), each kept in [0, k].
std::array<double, 3> discounts_for(const std::map<int, int>& count_of_counts) {
  auto n = [&](int k) {
    auto it = count_of_counts.find(k);
    return it == count_of_counts.end() ? 0.0 : static_cast<double>(it->second);
  };
  std::array<double, 3> fallback = {0.5, 1.0, 1.5};
  if (n(1) == 0 || n(2) == 0 || n(3) == 0 || n(4) == 0) return fallback;
  const double y = n(1) / (n(1) + 2 * n(2));
  std::array<double, 3> d = {1 - 2 * y * n(2) / n(1), 2 - 3 * y * n(3) / n(2), 3 - 4 * y * n(4) / n(3)};
  for (int k = 0; k < 3; ++k) {
    if (!(d[k] > 0 && d[k] <= k + 1)) return fallback;
  }
  return d;
}

}  // namespace

double NgramModel::discount(int order, long count) const {
  if (count <= 0) return 0;
  const auto& d = discounts.at(order - 1);
  return d[std::min<long>(count, 3) - 1];
}

NgramModel estimate_kneser_ney(const std::vector<std::vector<std::string>>& sentences, int order) {
  if (order < 1 || order > 5) throw InputError(fmt::format("an n-gram order of {} is not supported (1-5)", order));
  NgramModel model;
  model.order = order;
  // Raw counts of the highest order; the n-grams of every order, with their adjusted counts.
  std::vector<std::map<Gram, long>> adjusted(order);
  std::vector<std::map<Gram, std::set<std::string>>> left_words(order);  // n-gram -> distinct words before it
  size_t token_count = 0;
  for (const auto& words : sentences) {
    if (words.empty()) continue;
    Gram s = {kBegin};
    s.insert(s.end(), words.begin(), words.end());
    s.push_back(kEnd);
    token_count += words.size() + 1;
    for (size_t end = 1; end < s.size(); ++end) {  // n-grams ending at s[end] (none ends at <s>)
      for (int n = 1; n <= order && n <= static_cast<int>(end) + 1; ++n) {
        Gram gram(s.begin() + (end + 1 - n), s.begin() + end + 1);
        if (n == order || gram.front() == kBegin) {
          ++adjusted[n - 1][gram];  // raw count
        } else {
          left_words[n - 1][gram].insert(s[end - n]);
        }
      }
    }
  }
  if (token_count == 0) throw InputError("a language model needs at least one sentence with words");
  for (int n = 1; n < order; ++n) {
    for (const auto& [gram, lefts] : left_words[n - 1]) adjusted[n - 1][gram] = static_cast<long>(lefts.size());
  }
  // Discounts per order from the count-of-counts of the adjusted counts.
  model.discounts.resize(order);
  for (int n = 1; n <= order; ++n) {
    std::map<int, int> count_of_counts;
    for (const auto& [gram, count] : adjusted[n - 1]) {
      if (count <= 4) ++count_of_counts[static_cast<int>(count)];
    }
    model.discounts[n - 1] = discounts_for(count_of_counts);
  }
  // Per context: the sum of adjusted counts and how many words follow it with count 1, 2, 3+.
  struct ContextStats {
    long total = 0;
    std::array<long, 3> n_k = {0, 0, 0};
  };
  std::vector<std::map<Gram, ContextStats>> contexts(order);
  for (int n = 1; n <= order; ++n) {
    for (const auto& [gram, count] : adjusted[n - 1]) {
      ContextStats& c = contexts[n - 1][context_of(gram)];
      c.total += count;
      ++c.n_k[std::min<long>(count, 3) - 1];
    }
  }
  auto gamma = [&](int n, const Gram& context) {
    auto it = contexts[n - 1].find(context);
    if (it == contexts[n - 1].end()) return 1.0;  // unseen context: all mass to the lower order
    const ContextStats& c = it->second;
    const auto& d = model.discounts[n - 1];
    return (d[0] * c.n_k[0] + d[1] * c.n_k[1] + d[2] * c.n_k[2]) / static_cast<double>(c.total);
  };
  // The vocabulary: every word seen (and </s>); <s> is only ever a context.
  std::set<std::string> vocabulary;
  for (const auto& [gram, count] : adjusted[0]) vocabulary.insert(gram[0]);
  vocabulary.erase(kBegin);
  const double uniform = 1.0 / static_cast<double>(vocabulary.size());

  // Interpolated probabilities, lowest order first (eq. 17): p(w|h) = max(a(hw) - D, 0) / Σa(h·)
  // + γ(h) p(w|h'), the lowest order interpolated with the uniform distribution over the vocabulary.
  model.grams.resize(order);
  const ContextStats& root = contexts[0][Gram{}];
  for (const std::string& w : vocabulary) {
    const long a = adjusted[0].count(Gram{w}) ? adjusted[0][Gram{w}] : 0;
    const double p = std::max(a - model.discount(1, a), 0.0) / root.total + gamma(1, Gram{}) * uniform;
    model.grams[0][Gram{w}] = {p, 0};
  }
  model.grams[0][Gram{kBegin}] = {0, 0};
  for (int n = 2; n <= order; ++n) {
    for (const auto& [gram, a] : adjusted[n - 1]) {
      const Gram context = context_of(gram);
      const double lower = model.grams[n - 2].at(lower_of(gram)).probability;
      const double p = std::max(a - model.discount(n, a), 0.0) / contexts[n - 1][context].total +
                       gamma(n, context) * lower;
      model.grams[n - 1][gram] = {p, 0};
    }
  }
  // Back-off weights: for a context h, a word unseen after it gets γ(h) p(w|h') — exactly the
  // interpolated estimate, since its own discounted count is zero.
  for (int n = 1; n < order; ++n) {
    for (auto& [gram, entry] : model.grams[n - 1]) {
      if (contexts[n].count(gram)) entry.backoff = gamma(n + 1, gram);
      else entry.backoff = 1;
    }
  }
  return model;
}

double NgramModel::probability(const std::vector<std::string>& history, const std::string& word) const {
  // ARPA's back-off: the longest n-gram present, times the back-off weights of the contexts skipped.
  Gram context(history.end() - std::min<size_t>(history.size(), order - 1), history.end());
  double backoff = 1;
  while (true) {
    Gram gram = context;
    gram.push_back(word);
    const auto& table = grams[gram.size() - 1];
    auto it = table.find(gram);
    if (it != table.end()) return backoff * it->second.probability;
    if (context.empty()) return 0;  // a word outside the vocabulary
    auto c = grams[context.size() - 1].find(context);
    if (c != grams[context.size() - 1].end()) backoff *= c->second.backoff;
    context.erase(context.begin());
  }
}

std::string to_arpa(const NgramModel& model) {
  auto log10_of = [](double p) { return p > 0 ? std::log10(p) : kLog10Zero; };
  std::string out = "\\data\\\n";
  for (int n = 1; n <= model.order; ++n) out += fmt::format("ngram {}={}\n", n, model.grams[n - 1].size());
  for (int n = 1; n <= model.order; ++n) {
    out += fmt::format("\n\\{}-grams:\n", n);
    for (const auto& [gram, entry] : model.grams[n - 1]) {
      std::string words;
      for (const auto& w : gram) words += (words.empty() ? "" : " ") + w;
      out += fmt::format("{:.6f}\t{}", log10_of(entry.probability), words);
      if (n < model.order) out += fmt::format("\t{:.6f}", log10_of(entry.backoff));
      out += "\n";
    }
  }
  out += "\n\\end\\\n";
  return out;
}

}  // namespace dself::stt
