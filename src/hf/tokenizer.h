// A byte-level BPE tokenizer (GPT-2's scheme, used by Whisper, Llama 3, Qwen2 ...), loaded from a
// Hugging Face tokenizer.json, or from the older vocab.json + merges.txt (+ added_tokens.json).
// ref: Radford et al. 2019 and OpenAI's gpt-2 src/encoder.py (bytes_to_unicode, bpe); Hugging
// Face tokenizers' tokenizer.json layout (model, pre_tokenizer, added_tokens).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dself::hf {

class Tokenizer {
 public:
  // tokenizer.json when the directory has one, else vocab.json + merges.txt (+ added_tokens.json,
  // whose tokens are all special). Throws InputError naming the file: missing, malformed, not a
  // byte-level BPE (a SentencePiece model, say), a pattern PCRE2 rejects.
  static Tokenizer load(const std::filesystem::path& dir);
  static Tokenizer from_tokenizer_json(const std::filesystem::path& path);
  // The older layout; `added_tokens` may be empty (no file). The pre-tokenizer is GPT-2's.
  static Tokenizer from_vocab_merges(const std::filesystem::path& vocab, const std::filesystem::path& merges,
                                     const std::filesystem::path& added_tokens = {});

  // The ids of `text` (UTF-8; invalid bytes are encoded as bytes). Added tokens that are not
  // special are always recognised; special ones only when `allow_special`, else they are text.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const;
  // The text of `ids`: their bytes joined, invalid UTF-8 replaced by U+FFFD (one per maximal
  // invalid subpart, as Python's errors="replace"). Special tokens are left out when `skip_special`.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes of one token (may be part of a UTF-8 sequence). Throws InputError for an unknown id.
  std::string token_bytes(int32_t id) const;

  // A token as the vocabulary spells it (byte-level form, or an added token's content).
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // As token_to_id, but throws InputError naming the tokenizer's file when the token is absent.
  int32_t id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" for an unknown id
  bool is_special(int32_t id) const;
  int32_t vocab_size() const;  // the largest id + 1
  const std::filesystem::path& source() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// GPT-2's pre-tokenizer pattern (also ByteLevel's with use_regex).
extern const char* const kGpt2Pattern;

}  // namespace dself::hf
