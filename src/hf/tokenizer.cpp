#include "hf/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/fs.h"

namespace dself::hf {

namespace fs = std::filesystem;

// ref: openai/gpt-2 src/encoder.py, Encoder.pat
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// A token id as the file writes it: a whole number from 0 to 2^31 - 1 (a float or a huge
// number would not convert: found by fuzz_tokenizer).
int32_t token_id(const nlohmann::json& value, const std::string& where) {
  if (!value.is_number_integer() || (value.is_number_unsigned() ? value.get<uint64_t>() > INT32_MAX
                                                                 : value.get<int64_t>() < 0 || value.get<int64_t>() > INT32_MAX)) {
    throw InputError(fmt::format("{}: a token id must be a whole number from 0 to {}, not {}", where, INT32_MAX,
                                 value.dump()));
  }
  return static_cast<int32_t>(value.get<int64_t>());
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

// The length of the valid UTF-8 sequence at s[i], or 0 with `bad` = the length of its maximal
// invalid subpart (ref: Unicode 15 §3.9, "U+FFFD Substitution of Maximal Subparts"; Table 3-7).
size_t utf8_sequence(std::string_view s, size_t i, size_t& bad) {
  const auto b = [&](size_t k) { return uint8_t(s[k]); };
  const uint8_t c = b(i);
  bad = 1;
  if (c < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c == 0xe0)
    n = 3, lo = 0xa0;
  else if (c >= 0xe1 && c <= 0xec)
    n = 3;
  else if (c == 0xed)
    n = 3, hi = 0x9f;
  else if (c >= 0xee && c <= 0xef)
    n = 3;
  else if (c == 0xf0)
    n = 4, lo = 0x90;
  else if (c >= 0xf1 && c <= 0xf3)
    n = 4;
  else if (c == 0xf4)
    n = 4, hi = 0x8f;
  else
    return 0;
  for (size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    const uint8_t x = b(i + k);
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xbf;
    if (x < l || x > h) return 0;
    bad = k + 1;
  }
  return n;
}

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t bad;
    const size_t n = utf8_sequence(s, i, bad);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      i += bad;
    }
  }
  return out;
}

// The code points of a (valid) UTF-8 string.
std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = uint8_t(s[i]);
    size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3f);
    out.push_back(cp);
    i += n;
  }
  return out;
}

// One pre-tokenizer step: a regex split (matches and the text between them are pieces: HF's
// "Isolated" behaviour), optionally with a leading space added to the whole text first.
struct Split {
  std::shared_ptr<pcre2_code> regex;
  bool add_prefix_space = false;
};

std::shared_ptr<pcre2_code> compile(const std::string& pattern, const std::string& where) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &offset, nullptr);
  if (!re) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code, message, sizeof message);
    throw InputError(fmt::format("{}: the pre-tokenizer's pattern does not compile at offset {}: {}", where, offset,
                                 reinterpret_cast<const char*>(message)));
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // a speed-up where the JIT is available; fine without
  return std::shared_ptr<pcre2_code>(re, pcre2_code_free);
}

std::vector<std::string> split_isolated(const pcre2_code* re, const std::string& text) {
  std::vector<std::string> out;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
  size_t start = 0, gap = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // an empty match: step over one character
      start = b + 1;
      while (start < text.size() && (uint8_t(text[start]) & 0xc0) == 0x80) ++start;
      continue;
    }
    if (b > gap) out.emplace_back(text.substr(gap, b - gap));
    out.emplace_back(text.substr(b, e - b));
    gap = start = e;
  }
  pcre2_match_data_free(md);
  if (gap < text.size()) out.emplace_back(text.substr(gap));
  return out;
}

}  // namespace

struct Tokenizer::Impl {
  fs::path source;
  std::unordered_map<std::string, int32_t> vocab;   // byte-level spelling -> id
  std::unordered_map<int32_t, std::string> tokens;  // id -> spelling (vocab and added)
  std::unordered_map<std::string, int32_t> ranks;   // "a b" -> merge rank
  bool ignore_merges = false;
  std::vector<Split> pre;  // applied in order
  struct Added {
    std::string content;
    int32_t id;
    bool special;
  };
  std::vector<Added> added;  // longest first
  std::unordered_map<int32_t, bool> added_special;
  std::string byte_char[256];                       // byte -> its printable stand-in (UTF-8)
  std::unordered_map<uint32_t, uint8_t> char_byte;  // stand-in code point -> byte
  int32_t n_vocab = 0;

  Impl() {
    // ref: openai/gpt-2 src/encoder.py, bytes_to_unicode()
    std::vector<int> bs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xa1; b <= 0xac; ++b) bs.push_back(b);
    for (int b = 0xae; b <= 0xff; ++b) bs.push_back(b);
    std::vector<uint32_t> cs(bs.begin(), bs.end());
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b)
      if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
        bs.push_back(b);
        cs.push_back(256 + n++);
      }
    for (size_t i = 0; i < bs.size(); ++i) {
      append_utf8(byte_char[bs[i]], cs[i]);
      char_byte[cs[i]] = uint8_t(bs[i]);
    }
  }

  // Every id names one token (else decoding could not tell them apart: found by fuzz_tokenizer).
  void add_to_vocab(const std::string& token, int32_t id, const std::string& where) {
    if (id < 0) throw InputError(fmt::format("{}: token \"{}\" has the negative id {}", where, token, id));
    auto [it, added_now] = tokens.emplace(id, token);
    if (!added_now) {
      throw InputError(fmt::format("{}: tokens \"{}\" and \"{}\" share the id {}: the vocabulary is damaged", where,
                                   it->second, token, id));
    }
    vocab[token] = id;
  }

  void finish() {
    std::stable_sort(added.begin(), added.end(),
                     [](const Added& a, const Added& b) { return a.content.size() > b.content.size(); });
    for (const auto& a : added) {
      tokens[a.id] = a.content;
      added_special[a.id] = a.special;
    }
    for (const auto& [id, t] : tokens) n_vocab = std::max(n_vocab, id + 1);
  }

  // ref: openai/gpt-2 src/encoder.py, Encoder.bpe: merge the lowest-ranked adjacent pair, all its
  // occurrences left to right, until no pair has a rank.
  void bpe(const std::string& word, std::vector<int32_t>& out) const {
    if (ignore_merges) {
      auto it = vocab.find(word);
      if (it != vocab.end()) return out.push_back(it->second);
    }
    std::vector<std::string> parts;
    for (size_t i = 0; i < word.size();) {
      size_t bad;
      size_t n = utf8_sequence(word, i, bad);
      n = n ? n : 1;
      parts.emplace_back(word.substr(i, n));
      i += n;
    }
    while (parts.size() > 1) {
      int best = INT_MAX;
      std::string best_first, best_second;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = ranks.find(parts[i] + " " + parts[i + 1]);
        if (it != ranks.end() && it->second < best) {
          best = it->second;
          best_first = parts[i];
          best_second = parts[i + 1];
        }
      }
      if (best == INT_MAX) break;
      std::vector<std::string> merged;
      for (size_t i = 0; i < parts.size();) {
        if (i + 1 < parts.size() && parts[i] == best_first && parts[i + 1] == best_second) {
          merged.push_back(parts[i] + parts[i + 1]);
          i += 2;
        } else {
          merged.push_back(parts[i++]);
        }
      }
      parts = std::move(merged);
    }
    for (const auto& p : parts) {
      auto it = vocab.find(p);
      if (it == vocab.end())
        throw InputError(fmt::format("{}: the vocabulary lacks the symbol \"{}\" (not a byte-level BPE vocabulary?)",
                                     source.string(), p));
      out.push_back(it->second);
    }
  }

  void encode_text(const std::string& text, std::vector<int32_t>& out) const {
    std::vector<std::string> pieces{text};
    for (const auto& step : pre) {
      std::vector<std::string> next;
      for (auto& piece : pieces) {
        // As Hugging Face's ByteLevel: every piece so far (the stretch between added tokens, each
        // earlier split) gets its leading space.
        if (step.add_prefix_space && !piece.empty() && piece[0] != ' ') piece = " " + piece;
        if (!step.regex) {
          next.push_back(piece);
          continue;
        }
        for (auto& p : split_isolated(step.regex.get(), piece)) next.push_back(std::move(p));
      }
      pieces = std::move(next);
    }
    for (const auto& piece : pieces) {
      std::string word;
      for (unsigned char c : piece) word += byte_char[c];
      if (!word.empty()) bpe(word, out);
    }
  }
};

Tokenizer Tokenizer::load(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw InputError(fmt::format("{}: not a directory (a tokenizer's files expected)", dir.string()));
  if (fs::exists(dir / "tokenizer.json")) return from_tokenizer_json(dir / "tokenizer.json");
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
    return from_vocab_merges(dir / "vocab.json", dir / "merges.txt",
                             fs::exists(dir / "added_tokens.json") ? dir / "added_tokens.json" : fs::path());
  throw InputError(
      fmt::format("{}: no tokenizer: neither tokenizer.json nor vocab.json + merges.txt is there", dir.string()));
}

namespace {

nlohmann::json parse_json_file(const fs::path& path) {
  if (!fs::exists(path)) throw InputError(fmt::format("{}: missing", path.string()));
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON: {}", path.string(), e.what()));
  }
}

}  // namespace

Tokenizer Tokenizer::from_tokenizer_json(const fs::path& path) {
  const auto json = parse_json_file(path);
  auto impl = std::make_shared<Impl>();
  impl->source = path;
  const std::string where = path.string();
  try {
    const auto& model = json.at("model");
    if (model.value("type", std::string("BPE")) != "BPE")
      throw InputError(fmt::format("{}: model type \"{}\" is not BPE", where, model.value("type", std::string())));
    if (model.value("byte_fallback", false))
      throw InputError(fmt::format("{}: a SentencePiece-style BPE (byte_fallback), not a byte-level BPE", where));
    impl->ignore_merges = model.value("ignore_merges", false);
    for (const auto& [token, id] : model.at("vocab").items()) impl->add_to_vocab(token, token_id(id, where), where);
    int rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string key;
      if (m.is_string()) {
        key = m.get<std::string>();
        if (key.find(' ') == std::string::npos)
          throw InputError(fmt::format("{}: merge \"{}\" is not \"a b\"", where, key));
      } else if (m.is_array() && m.size() == 2) {
        key = m[0].get<std::string>() + " " + m[1].get<std::string>();
      } else {
        throw InputError(fmt::format("{}: merge {} is neither \"a b\" nor [a, b]", where, m.dump()));
      }
      impl->ranks.emplace(key, rank++);
    }
    // Pre-tokenizers: ByteLevel, Split (Isolated, not inverted), or a Sequence of them.
    bool byte_level = false;
    std::function<void(const nlohmann::json&)> add_step = [&](const nlohmann::json& p) {
      if (p.is_null()) return;
      const auto type = p.at("type").get<std::string>();
      if (type == "Sequence") {
        for (const auto& q : p.at("pretokenizers")) add_step(q);
      } else if (type == "ByteLevel") {
        byte_level = true;
        Split s;
        s.add_prefix_space = p.value("add_prefix_space", false);
        if (p.value("use_regex", true)) s.regex = compile(kGpt2Pattern, where);
        impl->pre.push_back(std::move(s));
      } else if (type == "Split") {
        if (p.value("behavior", std::string("Isolated")) != "Isolated" || p.value("invert", false))
          throw InputError(fmt::format("{}: Split pre-tokenizer with behavior \"{}\"{}: dself reads only Isolated",
                                       where, p.value("behavior", std::string()),
                                       p.value("invert", false) ? ", inverted" : ""));
        const auto& pattern = p.at("pattern");
        Split s;
        if (pattern.contains("Regex")) {
          s.regex = compile(pattern["Regex"].get<std::string>(), where);
        } else {
          // A literal string: quote it for PCRE2.
          s.regex = compile("\\Q" + pattern.at("String").get<std::string>() + "\\E", where);
        }
        impl->pre.push_back(std::move(s));
      } else {
        throw InputError(
            fmt::format("{}: pre-tokenizer \"{}\" is not supported (dself reads byte-level BPE: ByteLevel, "
                        "Split)",
                        where, type));
      }
    };
    if (json.contains("pre_tokenizer")) add_step(json["pre_tokenizer"]);
    const auto decoder_type =
        json.contains("decoder") && json["decoder"].is_object() ? json["decoder"].value("type", std::string()) : "";
    if (!byte_level && decoder_type != "ByteLevel")
      throw InputError(fmt::format("{}: not a byte-level BPE (no ByteLevel pre-tokenizer or decoder)", where));
    if (json.contains("normalizer") && !json["normalizer"].is_null()) {
      // NFC is the only normaliser these checkpoints use (Qwen2); text dself feeds is NFC already
      // (captions, transcripts), so it is accepted and not re-applied.
      const auto type = json["normalizer"].value("type", std::string());
      if (type != "NFC") throw InputError(fmt::format("{}: normalizer \"{}\" is not supported", where, type));
    }
    if (json.contains("added_tokens"))
      for (const auto& a : json["added_tokens"])
        impl->added.push_back(
            {a.at("content").get<std::string>(), token_id(a.at("id"), where), a.value("special", false)});
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a tokenizer.json: {}", where, e.what()));
  }
  impl->finish();
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

Tokenizer Tokenizer::from_vocab_merges(const fs::path& vocab, const fs::path& merges, const fs::path& added_tokens) {
  auto impl = std::make_shared<Impl>();
  impl->source = vocab;
  const auto json = parse_json_file(vocab);
  try {
    for (const auto& [token, id] : json.items()) impl->add_to_vocab(token, token_id(id, vocab.string()), vocab.string());
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a {{token: id}} object: {}", vocab.string(), e.what()));
  }
  std::ifstream in(merges);
  if (!in) throw InputError(fmt::format("{}: missing or unreadable", merges.string()));
  std::string line;
  int rank = 0, line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_number == 1 && line.rfind("#version", 0) == 0)) continue;
    if (std::count(line.begin(), line.end(), ' ') != 1)
      throw InputError(fmt::format("{}:{}: \"{}\" is not a merge \"a b\"", merges.string(), line_number, line));
    impl->ranks.emplace(line, rank++);
  }
  Split s;
  s.regex = compile(kGpt2Pattern, vocab.string());
  impl->pre.push_back(std::move(s));
  if (!added_tokens.empty()) {
    const auto added = parse_json_file(added_tokens);
    try {
      for (const auto& [content, id] : added.items()) impl->added.push_back({content, token_id(id, added_tokens.string()), true});
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("{}: not a {{token: id}} object: {}", added_tokens.string(), e.what()));
    }
  }
  // Tokens of the vocabulary that look like <|...|> are Whisper's and GPT-2's specials (<|endoftext|>).
  for (const auto& [token, token_id] : impl->vocab) {
    const int32_t id = token_id;  // a structured binding cannot be captured before clang 16
    if (token.size() > 4 && token.rfind("<|", 0) == 0 && token.substr(token.size() - 2) == "|>" &&
        std::none_of(impl->added.begin(), impl->added.end(), [&](const Impl::Added& a) { return a.id == id; }))
      impl->added.push_back({token, id, true});
  }
  impl->finish();
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text_view, bool allow_special) const {
  const std::string text(text_view);
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    // The earliest added token from pos (the longest at that place).
    size_t best = std::string::npos;
    const Impl::Added* found = nullptr;
    for (const auto& a : impl_->added) {
      if (a.special && !allow_special) continue;
      if (a.content.empty()) continue;
      const size_t at = text.find(a.content, pos);
      if (at < best) {
        best = at;
        found = &a;
      }
    }
    if (!found) break;
    if (best > pos) impl_->encode_text(text.substr(pos, best - pos), out);
    out.push_back(found->id);
    pos = best + found->content.size();
  }
  if (pos < text.size()) impl_->encode_text(text.substr(pos), out);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  auto it = impl_->tokens.find(id);
  if (it == impl_->tokens.end())
    throw InputError(
        fmt::format("token id {} is not in the vocabulary of {} ({} ids)", id, impl_->source.string(), impl_->n_vocab));
  if (impl_->added_special.count(id)) return it->second;
  std::string bytes;
  for (uint32_t cp : code_points(it->second)) {
    auto b = impl_->char_byte.find(cp);
    if (b != impl_->char_byte.end())
      bytes += char(b->second);
    else
      append_utf8(bytes, cp);
  }
  return bytes;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  return valid_utf8(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const auto& a : impl_->added)
    if (a.content == token) return a.id;
  auto it = impl_->vocab.find(std::string(token));
  if (it == impl_->vocab.end()) return std::nullopt;
  return it->second;
}

int32_t Tokenizer::id(std::string_view token) const {
  auto id = token_to_id(token);
  if (!id)
    throw InputError(
        fmt::format("{}: no token \"{}\" (a tokenizer that does not fit the model?)", impl_->source.string(), token));
  return *id;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  auto it = impl_->tokens.find(id);
  return it == impl_->tokens.end() ? std::string() : it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_special.find(id);
  return it != impl_->added_special.end() && it->second;
}

int32_t Tokenizer::vocab_size() const { return impl_->n_vocab; }
const fs::path& Tokenizer::source() const { return impl_->source; }

}  // namespace dself::hf
