#include "policy/tokenizer.h"

#include <fstream>

#include "common/config.h"
#include "common/error.h"
#include "common/logging.h"
#include "policy/bpe_tokenizer.h"
#include "policy/char_tokenizer.h"
#include "policy/tokenizer_utf8.h"

namespace r1kit {
namespace {

// A role in tokenizer_config.json: "<s>", {"content": "<s>", ...} or null.
std::string role_token(const nlohmann::json& value, const std::string& source,
                       const std::string& key) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  throw_data_error(source + ": " + key + " must be a string, {\"content\": ...} or null, got " +
                   value.dump());
}

nlohmann::json read_json(const std::filesystem::path& path) {
  try {
    return read_json_file(path.string());
  } catch (const Error& e) {
    // A broken tokenizer file is bad input data, not a bad recipe.
    throw Error(e.what(), e.kind() == ErrorKind::kConfig ? ErrorKind::kData : e.kind());
  }
}

}  // namespace

void Tokenizer::set_special_tokens(const SpecialTokens& tokens, const std::string& source) {
  auto resolve = [&](const std::string& token, const char* role) -> std::optional<int64_t> {
    if (token.empty()) return std::nullopt;
    std::optional<int64_t> id = token_to_id(token);
    if (!id) throw_data_error(source + ": " + role + " \"" + token + "\" is not in the vocabulary");
    return id;
  };
  bos_id_ = resolve(tokens.bos, "bos_token");
  eos_id_ = resolve(tokens.eos, "eos_token");
  pad_id_ = resolve(tokens.pad, "pad_token");
  unk_id_ = resolve(tokens.unk, "unk_token");
  special_tokens_ = tokens;
}

void Tokenizer::apply_config(const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw_data_error(source + ": expected a JSON object");
  SpecialTokens tokens = special_tokens_;
  if (config.contains("bos_token"))
    tokens.bos = role_token(config["bos_token"], source, "bos_token");
  if (config.contains("eos_token"))
    tokens.eos = role_token(config["eos_token"], source, "eos_token");
  if (config.contains("pad_token"))
    tokens.pad = role_token(config["pad_token"], source, "pad_token");
  if (config.contains("unk_token"))
    tokens.unk = role_token(config["unk_token"], source, "unk_token");
  set_special_tokens(tokens, source);
  if (config.contains("chat_template")) {
    const nlohmann::json& chat = config["chat_template"];
    if (chat.is_string()) {
      chat_template_ = chat.get<std::string>();
    } else if (chat.is_array()) {
      // Several named templates: the one named "default", else the first.
      for (const nlohmann::json& entry : chat) {
        if (chat_template_.empty() || entry.value("name", "") == "default") {
          chat_template_ = entry.value("template", "");
        }
      }
    } else if (!chat.is_null()) {
      throw_data_error(source + ": chat_template must be a string or a list of {name, template}");
    }
  }
  config_json_ = config;
}

void Tokenizer::save_folder(const std::filesystem::path& folder) const {
  save(folder / "tokenizer.json");
  nlohmann::json config = config_json_.is_object() ? config_json_ : nlohmann::json::object();
  auto role = [](const std::string& token) {
    return token.empty() ? nlohmann::json() : nlohmann::json(token);
  };
  config["bos_token"] = role(special_tokens_.bos);
  config["eos_token"] = role(special_tokens_.eos);
  config["pad_token"] = role(special_tokens_.pad);
  config["unk_token"] = role(special_tokens_.unk);
  if (!chat_template_.empty()) config["chat_template"] = chat_template_;
  if (!config.contains("tokenizer_class")) config["tokenizer_class"] = "PreTrainedTokenizerFast";
  std::filesystem::path path = folder / "tokenizer_config.json";
  std::ofstream out(path, std::ios::binary);
  if (!out) throw_io_error("cannot write " + path.string());
  out << config.dump(2) << '\n';
  if (!out) throw_io_error("failed writing " + path.string());
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& json,
                                               const std::string& source) {
  if (!json.is_object()) throw_data_error(source + ": expected a tokenizer.json object");
  if (!json.contains("model") || json["model"].is_null())
    throw_data_error(source + ": missing \"model\"");
  const nlohmann::json& model = json["model"];
  if (!model.is_object() || !model.contains("type") || !model["type"].is_string()) {
    throw_data_error(source + ": model has no \"type\" (expected \"BPE\")");
  }
  std::string type = model["type"].get<std::string>();
  if (type != "BPE") {
    throw_data_error(source + ": unsupported model type \"" + type +
                     "\" (supported: BPE, loaded as byte-level BPE or as a character tokenizer)");
  }
  if (CharTokenizer::is_char_tokenizer_json(json)) return CharTokenizer::from_json(json, source);
  std::unique_ptr<BpeTokenizer> bpe = BpeTokenizer::from_json(json, source);
  // Without tokenizer_config.json: <bos> from the post-processor, GPT-2's end of text as eos.
  SpecialTokens roles;
  if (auto leading = bpe->post_processor_leading_id()) roles.bos = bpe->id_to_token(*leading);
  if (bpe->token_to_id("<|endoftext|>")) roles.eos = "<|endoftext|>";
  bpe->set_special_tokens(roles, source);
  return bpe;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& folder_or_file) {
  std::filesystem::path file = folder_or_file;
  if (std::filesystem::is_directory(file)) file /= "tokenizer.json";
  if (!std::filesystem::exists(file)) throw_io_error(file.string() + ": no such tokenizer file");
  std::unique_ptr<Tokenizer> tokenizer = tokenizer_from_json(read_json(file), file.string());
  std::filesystem::path config = file.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config)) tokenizer->apply_config(read_json(config), config.string());
  return tokenizer;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::push(int64_t id) {
  try {
    if (skip_special_tokens_ && tokenizer_.is_special(id)) return "";
    pending_ += tokenizer_.token_bytes(id);
  } catch (const Error& e) {
    // `tokenizers` leaves ids it cannot decode out of the text: one bad id
    // must not cost the whole batch its completions.
    if (undecodable_ids_++ == 0) log_warning() << e.what() << "; left out of the decoded text";
    return "";
  }
  size_t complete = utf8_complete_prefix(pending_);
  std::string text = utf8_repair(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return text;
}

std::string StreamDecoder::push(const std::vector<int64_t>& ids) {
  std::string text;
  for (int64_t id : ids) text += push(id);
  return text;
}

std::string StreamDecoder::finish() {
  std::string text = utf8_repair(pending_);
  pending_.clear();
  return text;
}

}  // namespace r1kit
