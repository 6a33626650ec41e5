// Content hashes (XXH3-128, hex) for identifying imported files and a stage's inputs.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace dself {

// Hash of a file's bytes, read in chunks (memory flat in file size).
std::string hash_file(const std::filesystem::path& path);

// Hash of a byte string.
std::string hash_bytes(std::string_view bytes);

}  // namespace dself
