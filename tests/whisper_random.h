// Small random Whisper checkpoints in the Hugging Face layout, for the tests.
#pragma once

#include <cstdint>
#include <filesystem>

namespace dself::test {

// A random Whisper checkpoint with 2 s windows (100 audio positions) and a Whisper-style
// tokenizer: the small BPE of tests/data/hf/bpe, then Whisper's special tokens in Whisper's order
// and the timestamps <|0.00|> … <|2.00|>.
std::filesystem::path write_random_whisper(const std::filesystem::path& dir, bool multilingual, uint64_t seed);

}  // namespace dself::test
