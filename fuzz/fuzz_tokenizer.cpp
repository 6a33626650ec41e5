// Fuzzes the tokenizer.json reader (src/hf/tokenizer.cpp): any file either loads or throws
// InputError; a tokenizer that loads encodes and decodes text without crashing, and what it
// encodes from plain ASCII decodes back to the same text (byte-level BPE loses nothing).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "hf/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader takes a path: the input goes to a file of this process's own.
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("dself-fuzz-tokenizer-" + std::to_string(getpid()) + ".json");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const dself::hf::Tokenizer tokenizer = dself::hf::Tokenizer::from_tokenizer_json(path);
    const std::string text = "Hello world, it's 2026! <|endoftext|> caf\xc3\xa9";
    for (bool special : {false, true}) {
      try {
        const auto ids = tokenizer.encode(text, special);
        (void)tokenizer.decode(ids, special);
      } catch (const dself::InputError&) {  // a vocabulary without some byte's token
      }
    }
    try {
      const std::string ascii = "The quick brown fox.";
      const auto ids = tokenizer.encode(ascii);
      if (tokenizer.decode(ids) != ascii) std::abort();
    } catch (const dself::InputError&) {
    }
    for (int32_t id = -2; id < tokenizer.vocab_size() + 2 && id < 512; ++id) (void)tokenizer.id_to_token(id);
  } catch (const dself::InputError&) {
  }
  return 0;
}
