// The vocoder (DESIGN.md §1, train → voice): speech <-> per-frame acoustic features, a source-filter
// model. Analysis gives the voice's training targets; synthesis turns what the acoustic model
// predicts back into speech; the same features measure how close two recordings are (MCD, F0).
// Features: SPTK 3.9 mel-cepstrum (order 24, all-pass constant 0.42, 25 ms Blackman window, 5 ms
// hop), F0 in Hz (0 = unvoiced) and band aperiodicity; synthesis excites SPTK's MLSA filter with
// a pulse train mixed with noise per band. Method and measured floor: docs/VOICE.md.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace dself::vocoder {

constexpr int kSampleRate = 16000;   // Hz of all audio here
constexpr int kHopSamples = 80;      // 5 ms between frames
constexpr int kWindowSamples = 400;  // 25 ms analysis window
constexpr int kMcepOrder = 24;       // c0..c24: kMcepOrder + 1 values a frame
constexpr double kAlpha = 0.42;      // all-pass constant (frequency warping) for 16 kHz
// Bumped whenever analysis changes what it gives for the same audio: cached features and models
// trained on them are then out of date.
constexpr int kAnalysisVersion = 2;
constexpr int kBandCount = 5;        // aperiodicity bands (edges in docs/VOICE.md)
// Band edges in Hz: the five bands of HTS's STRAIGHT-based aperiodicity (0-1, 1-2, 2-4, 4-6, 6-8 kHz).
// ref: Zen et al., "Details of the Nitech HMM-based speech synthesis system for the Blizzard
// Challenge 2005", IEICE Trans. Inf. & Syst. E90-D(1), 2007, §2.1
constexpr double kBandEdgesHz[kBandCount + 1] = {0, 1000, 2000, 4000, 6000, 8000};

// A recording as frames: frame t is centred on sample t * kHopSamples.
struct Features {
  int frame_count = 0;
  std::vector<float> mcep;  // frame_count × (kMcepOrder + 1), row-major
  std::vector<float> f0_hz; // frame_count; 0 where unvoiced
  std::vector<float> bap;   // frame_count × kBandCount: aperiodicity in [0, 1] (0 periodic, 1 noise)
  std::span<const float> mcep_frame(int t) const { return {mcep.data() + size_t(t) * (kMcepOrder + 1), kMcepOrder + 1}; }
};

struct AnalysisOptions {
  double min_f0_hz = 60;   // F0 search range
  double max_f0_hz = 400;
  double yin_threshold = 0.2;       // YIN's absolute threshold on the normalised difference
  double min_rms = 1e-3;            // frames quieter than -60 dBFS are unvoiced
  double relative_floor_db = 35;    // and frames this far below the recording's loudest one
};

// F0 in Hz per 5 ms frame (frame t centred on sample t * kHopSamples; samples / kHopSamples + 1
// frames), 0 where unvoiced: YIN over a 40 ms frame, voiced when loud enough and periodic.
std::vector<float> track_f0(std::span<const float> audio_16k, const AnalysisOptions& options = {});

// 16 kHz mono audio in [-1, 1] -> its features, frame_count = samples / kHopSamples + 1.
// Thread-safe (SPTK's mcep() keeps static buffers, so its calls take turns under a lock).
Features analyze(std::span<const float> audio_16k, const AnalysisOptions& options = {});

struct SynthesisOptions {
  unsigned long noise_seed = 1;  // the noise excitation's seed: same features + seed, same samples
};

// Features -> 16 kHz audio, frame_count * kHopSamples samples. Runs well above real time on one core.
// Throws InputError when the vectors' sizes do not match frame_count.
std::vector<float> synthesize(const Features& features, const SynthesisOptions& options = {});

// The MLSA filter alone: `excitation` through the filters of per-frame mel-cepstra (frame_count ×
// (kMcepOrder + 1)), interpolated per sample, as `mlsadf -m 24 -a 0.42 -p 80 -P 5` does.
std::vector<double> mlsa_filter(std::span<const double> excitation, std::span<const float> mcep, int frame_count);

// Which frames hold speech: c0 (log gain) within kSpeechMarginDb of the recording's loud frames
// (its 95th percentile of c0).
constexpr double kSpeechMarginDb = 30;
std::vector<bool> speech_frames(const Features& features);

// How far one recording is from another of the same text (DESIGN.md §4, voice): frames aligned by
// DTW on c1..c24 of the speech frames of each.
struct Distance {
  double mcd_db = 0;          // 10/ln10 · sqrt(2 Σ_{d=1..24} (Δc_d)²), averaged over the DTW path
  double f0_rmse_hz = 0;      // over path pairs voiced in both
  double vuv_error = 0;       // share of path pairs whose voicing differs
  int path_length = 0;        // pairs on the DTW path
  int voiced_pair_count = 0;  // path pairs voiced in both (what f0_rmse_hz is over)
};
Distance distance(const Features& reference, const Features& candidate);

}  // namespace dself::vocoder
