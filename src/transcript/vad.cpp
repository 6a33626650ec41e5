// Energy-based voice activity detection, used to cut long audio into chunks at pauses.
#include <algorithm>
#include <cmath>

#include "transcript/transcript.h"

namespace dself::transcript {
namespace {

constexpr double frame_s = 0.01;           // 10 ms analysis frames
constexpr double min_pause_s = 0.15;       // shorter dips are stops inside words, not pauses
constexpr double speech_margin_db = 12.0;  // above the noise floor counts as speech

}  // namespace

std::vector<SpeechChunk> find_speech_chunks(std::span<const float> audio, int sample_rate, double max_chunk_s) {
  const size_t hop = static_cast<size_t>(sample_rate * frame_s);
  const size_t frame_count = hop ? audio.size() / hop : 0;
  if (frame_count == 0) return {};
  std::vector<double> energy_db(frame_count);
  for (size_t f = 0; f < frame_count; ++f) {
    double sum = 0;
    for (size_t i = f * hop; i < (f + 1) * hop; ++i) sum += double(audio[i]) * audio[i];
    energy_db[f] = 10 * std::log10(sum / double(hop) + 1e-10);
  }
  // The floor is the quiet end of the recording; loud recordings get a threshold relative to
  // their speech level too, so that breaths and room tone are not speech.
  std::vector<double> sorted = energy_db;
  std::sort(sorted.begin(), sorted.end());
  double floor_db = sorted[sorted.size() / 10];
  double loud_db = sorted[sorted.size() * 95 / 100];
  double threshold_db = std::max(floor_db + speech_margin_db, loud_db - 40.0);
  if (loud_db < -60) return {};  // digital silence

  std::vector<bool> speech(frame_count);
  for (size_t f = 0; f < frame_count; ++f) speech[f] = energy_db[f] > threshold_db;

  // Pauses: runs of non-speech frames at least min_pause_s long, as [begin, end) frames.
  std::vector<std::pair<size_t, size_t>> pauses;
  const size_t min_pause_frames = static_cast<size_t>(min_pause_s / frame_s);
  for (size_t f = 0; f < frame_count;) {
    if (speech[f]) {
      ++f;
      continue;
    }
    size_t end = f;
    while (end < frame_count && !speech[end]) ++end;
    if (end - f >= min_pause_frames || f == 0 || end == frame_count) pauses.push_back({f, end});
    f = end;
  }

  // Speech runs between pauses, merged into chunks up to max_chunk_s, cut in the middle of a pause.
  std::vector<SpeechChunk> chunks;
  const size_t max_frames = static_cast<size_t>(max_chunk_s / frame_s);
  size_t chunk_start = 0;
  bool open = false;
  size_t last_speech_end = 0;
  auto close_chunk = [&](size_t end_frame) {
    // Keep a little of the pause on each side: recognisers need the onset and release.
    double start_s = std::max(0.0, chunk_start * frame_s - 0.1);
    double end_s = std::min(frame_count * frame_s, end_frame * frame_s + 0.1);
    chunks.push_back(SpeechChunk{start_s, end_s});
    open = false;
  };
  size_t p = 0;
  for (size_t f = 0; f < frame_count;) {
    if (p < pauses.size() && pauses[p].first == f) {
      f = pauses[p].second;
      ++p;
      continue;
    }
    // f starts a speech run that ends at the next pause (or the end).
    size_t run_end = p < pauses.size() ? pauses[p].first : frame_count;
    if (!open) {
      chunk_start = f;
      open = true;
    } else if (run_end - chunk_start > max_frames) {
      close_chunk(last_speech_end);
      chunk_start = f;
      open = true;
    }
    // A single run longer than the limit (no pause at all) is cut hard.
    while (run_end - chunk_start > max_frames) {
      close_chunk(chunk_start + max_frames);
      chunk_start += max_frames;
      open = true;
    }
    last_speech_end = run_end;
    f = run_end;
  }
  if (open) close_chunk(last_speech_end);
  return chunks;
}

}  // namespace dself::transcript
