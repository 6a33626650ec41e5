// Chat templates: dself does not run Jinja; it recognises the family of the checkpoint's
// template and renders that family's format, which for the messages dself sends (system, user,
// assistant; no tools) is what the template renders.
// ref: the chat_template of the checkpoints' tokenizer_config.json:
// - ChatML (SmolLM2, Qwen2/2.5): "<|im_start|>" + role + "\n" + content + "<|im_end|>\n" per
//   message, a default system message first when messages[0] is not one, and
//   "<|im_start|>assistant\n" as the generation prompt;
// - Llama 3 (3.0): bos_token, then "<|start_header_id|>" + role + "<|end_header_id|>\n\n" +
//   content|trim + "<|eot_id|>" per message, "<|start_header_id|>assistant<|end_header_id|>\n\n";
// - Llama 3.1/3.2 additionally always open with a system block holding "Cutting Knowledge Date:
//   December 2023\nToday Date: " + date_string + "\n\n" + the system message (trimmed);
//   date_string is "26 Jul 2024" unless the template calls strftime_now("%d %b %Y") (3.2).
#include <fmt/format.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hf/checkpoint.h"
#include "llm/llm.h"

namespace dself::llm {

namespace {

std::string trim(const std::string& s) {
  // Jinja's trim strips Python whitespace.
  const char* ws = " \t\n\r\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The literal text after `opener` up to `closer`, at the first place where it is a literal (no
// quote inside): the template's default system message.
std::string literal_after(const std::string& jinja, const std::string& opener, const std::string& closer) {
  for (auto at = jinja.find(opener); at != std::string::npos; at = jinja.find(opener, at + 1)) {
    auto from = at + opener.size();
    auto end = jinja.find(closer, from);
    if (end == std::string::npos) break;
    auto text = jinja.substr(from, end - from);
    if (!text.empty() && text.find('\'') == std::string::npos && text.find('"') == std::string::npos &&
        text.find('{') == std::string::npos) {
      return text;
    }
  }
  return "";
}

std::string today_utc(const char* format) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace

ChatTemplate recognise_template(const std::string& jinja, const std::string& where) {
  ChatTemplate t;
  if (jinja.find("<|im_start|>") != std::string::npos && jinja.find("<|im_end|>") != std::string::npos) {
    t.family = TemplateFamily::chatml;
    t.stop_strings = {"<|im_end|>", "<|endoftext|>"};
    // The template's text spells a newline as the two characters \n inside a Jinja string, or
    // as a real newline.
    t.default_system = literal_after(jinja, "<|im_start|>system\\n", "<|im_end|>");
    if (t.default_system.empty()) t.default_system = literal_after(jinja, "<|im_start|>system\n", "<|im_end|>");
    return t;
  }
  if (jinja.find("<|start_header_id|>") != std::string::npos && jinja.find("<|eot_id|>") != std::string::npos) {
    t.family = TemplateFamily::llama3;
    t.bos_token = "<|begin_of_text|>";
    t.stop_strings = {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"};
    if (jinja.find("Cutting Knowledge Date") != std::string::npos) {
      t.llama3_knowledge_header = true;
      t.date_string = jinja.find("strftime_now") != std::string::npos ? today_utc("%d %b %Y") : "26 Jul 2024";
    }
    return t;
  }
  throw InputError(fmt::format(
      "{}: the chat template is of a family dself does not format (it knows ChatML — SmolLM2, Qwen2 — and "
      "Llama 3); use a checkpoint with one of those templates",
      where));
}

ChatTemplate read_chat_template(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "tokenizer_config.json";
  if (!std::filesystem::exists(path)) {
    throw InputError(fmt::format("{}: no tokenizer_config.json (it holds the chat template; a chat checkpoint has one)",
                                 model_dir.string()));
  }
  const nlohmann::json json = hf::read_json(path, "the tokenizer's configuration and chat template");
  if (!json.contains("chat_template")) {
    throw InputError(path.string() + ": no \"chat_template\" (a base model without one cannot chat; use an -Instruct "
                                     "checkpoint)");
  }
  std::string jinja;
  const auto& ct = json["chat_template"];
  if (ct.is_string()) {
    jinja = ct.get<std::string>();
  } else if (ct.is_array()) {
    // Several named templates: the "default" one.
    for (const auto& item : ct) {
      if (item.is_object() && item.value("name", "") == "default" && item.contains("template") &&
          item["template"].is_string()) {
        jinja = item["template"].get<std::string>();
      }
    }
  }
  if (jinja.empty()) throw InputError(path.string() + ": \"chat_template\" is not a template string");
  return recognise_template(jinja, path.string());
}

std::string format_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  for (const auto& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant") {
      throw InputError(fmt::format("a chat message's role must be system, user or assistant, not \"{}\"", m.role));
    }
  }
  std::string out;
  if (t.family == TemplateFamily::chatml) {
    if (!t.default_system.empty() && (messages.empty() || messages[0].role != "system")) {
      out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
    }
    for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    out += "<|im_start|>assistant\n";
    return out;
  }
  out += t.bos_token;
  size_t first = 0;
  if (t.llama3_knowledge_header) {
    std::string system;
    if (!messages.empty() && messages[0].role == "system") {
      system = trim(messages[0].content);
      first = 1;
    }
    out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: " +
           t.date_string + "\n\n" + system + "<|eot_id|>";
  }
  for (size_t i = first; i < messages.size(); ++i) {
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" + trim(messages[i].content) + "<|eot_id|>";
  }
  out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string without_special_tokens(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    if (text[i] == '<' && i + 1 < text.size() && text[i + 1] == '|') out += ' ';
  }
  return out;
}

}  // namespace dself::llm
