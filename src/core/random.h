// Seeded randomness that is the same on every platform and standard library (std::
// distributions are not), so that a seed names one sample person, or one head motion, exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace dself {

class Random {
 public:
  // A stream of its own for each (seed, purpose, index): drawing more from one stream never
  // changes another, so adding a blink does not move the head.
  Random(uint64_t seed, std::string_view purpose, uint64_t index = 0) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the purpose
    for (char c : purpose) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    state_ = seed ^ (h + 0x9e3779b97f4a7c15ull * (index + 1));
  }

  // ref: SplitMix64, Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (2014)
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }

 private:
  uint64_t state_;
};

// The order of 0..n-1 in one training epoch: a Fisher-Yates shuffle seeded by (seed, epoch), so
// that a run resumed at any epoch draws what an unbroken one would (the voice, Whisper and the
// persona's LoRA train in it).
inline std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch) {
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ULL + uint64_t(epoch));
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

}  // namespace dself
