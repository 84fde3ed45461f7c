#include "policy/char_tokenizer.h"

#include <fstream>

#include "common/error.h"
#include "policy/tokenizer_utf8.h"

namespace r1kit {
namespace {

const std::vector<std::string> kRoleTokens = {"<pad>", "<bos>", "<eos>", "<unk>"};

bool is_single_code_point(std::string_view token) {
  if (token.empty() || !utf8_is_valid(token)) return false;
  size_t pos = 0;
  utf8_next(token, pos);
  return pos == token.size();
}

}  // namespace

CharTokenizer::CharTokenizer(std::string_view alphabet,
                             const std::vector<std::string>& extra_tokens) {
  if (!utf8_is_valid(alphabet))
    throw_config_error("char tokenizer: the alphabet is not valid UTF-8");
  std::vector<AddedToken> added;
  auto add_special = [&](const std::string& token) {
    if (token.empty()) throw_config_error("char tokenizer: an extra token is empty");
    if (token_ids_.count(token)) throw_config_error("char tokenizer: duplicate token " + token);
    auto id = static_cast<int32_t>(id_to_token_.size());
    token_ids_.emplace(token, id);
    id_to_token_.push_back(token);
    added.push_back(AddedToken{.id = id, .content = token, .special = true});
  };
  for (const std::string& token : kRoleTokens) add_special(token);
  for (const std::string& token : extra_tokens) add_special(token);
  size_t pos = 0;
  while (pos < alphabet.size()) {
    size_t start = pos;
    utf8_next(alphabet, pos);
    std::string character(alphabet.substr(start, pos - start));
    if (token_ids_.count(character)) continue;
    token_ids_.emplace(character, static_cast<int32_t>(id_to_token_.size()));
    id_to_token_.push_back(character);
  }
  added_ = AddedVocabulary(std::move(added));
  unk_token_ = "<unk>";
  nlohmann::json bos_item = {{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}};
  nlohmann::json template_json = {
      {"type", "TemplateProcessing"},
      {"single", {bos_item, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {bos_item,
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens",
       {{"<bos>", {{"id", "<bos>"}, {"ids", {token_ids_.at("<bos>")}}, {"tokens", {"<bos>"}}}}}}};
  post_processor_ = PostProcessor::from_json(template_json, "char tokenizer");
  index();
  set_special_tokens({.bos = "<bos>", .eos = "<eos>", .pad = "<pad>", .unk = "<unk>"},
                     "char tokenizer");
}

void CharTokenizer::index() {
  special_.assign(id_to_token_.size(), 0);
  added_flag_.assign(id_to_token_.size(), 0);
  for (const AddedToken& token : added_.tokens()) {
    special_[token.id] = token.special ? 1 : 0;
    added_flag_[token.id] = 1;
  }
  char_ids_.clear();
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    if (added_flag_[id]) continue;
    size_t pos = 0;
    char_ids_.emplace(utf8_next(id_to_token_[id], pos), static_cast<int32_t>(id));
  }
  auto it = token_ids_.find(unk_token_);
  unk_id_ = it == token_ids_.end() ? -1 : it->second;
}

bool CharTokenizer::is_char_tokenizer_json(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("model")) return false;
  const nlohmann::json& model = json["model"];
  if (!model.is_object() || model.value("type", "") != "BPE") return false;
  if (!model.contains("merges") || !model["merges"].is_array() || !model["merges"].empty())
    return false;
  if (json.contains("pre_tokenizer") && !json["pre_tokenizer"].is_null()) return false;
  if (json.contains("normalizer") && !json["normalizer"].is_null()) return false;
  if (!json.contains("decoder") || !json["decoder"].is_object() ||
      json["decoder"].value("type", "") != "Fuse") {
    return false;
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) return false;
  std::unordered_map<std::string, bool> added;
  if (json.contains("added_tokens") && json["added_tokens"].is_array()) {
    for (const nlohmann::json& token : json["added_tokens"]) {
      if (token.is_object() && token.contains("content") && token["content"].is_string()) {
        added[token["content"].get<std::string>()] = true;
      }
    }
  }
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!added.count(token) && !is_single_code_point(token)) return false;
  }
  return true;
}

std::unique_ptr<CharTokenizer> CharTokenizer::from_json(const nlohmann::json& json,
                                                        const std::string& source) {
  if (!is_char_tokenizer_json(json)) {
    throw_data_error(source +
                     ": not a character tokenizer (a BPE model without merges, pre-tokenizer or "
                     "normalizer, with a Fuse decoder and single-character tokens)");
  }
  std::unique_ptr<CharTokenizer> tok(new CharTokenizer());
  try {
    const nlohmann::json& model = json["model"];
    int64_t max_id = -1;
    for (const auto& [token, id] : model["vocab"].items()) {
      if (!id.is_number_integer())
        throw_data_error(source + ": model.vocab[\"" + token + "\"] is not an integer id");
      max_id = std::max(max_id, id.get<int64_t>());
    }
    std::vector<AddedToken> added;
    size_t index = 0;
    for (const nlohmann::json& entry : json.value("added_tokens", nlohmann::json::array())) {
      added.push_back(
          AddedToken::from_json(entry, source + ": added_tokens[" + std::to_string(index++) + "]"));
      max_id = std::max(max_id, added.back().id);
    }
    if (max_id > (1 << 24))
      throw_data_error(source + ": implausible token id " + std::to_string(max_id));
    tok->id_to_token_.assign(max_id + 1, "");
    for (const auto& [token, id] : model["vocab"].items()) {
      if (id.get<int64_t>() < 0) throw_data_error(source + ": negative id for token " + token);
      tok->id_to_token_[id.get<int64_t>()] = token;
      tok->token_ids_[token] = id.get<int32_t>();
    }
    for (const AddedToken& token : added) {
      if (token.id < 0) throw_data_error(source + ": negative id for added token " + token.content);
      tok->id_to_token_[token.id] = token.content;
      tok->token_ids_[token.content] = static_cast<int32_t>(token.id);
    }
    for (size_t id = 0; id < tok->id_to_token_.size(); ++id) {
      if (tok->id_to_token_[id].empty())
        throw_data_error(source + ": no token has id " + std::to_string(id));
    }
    tok->added_ = AddedVocabulary(std::move(added));
    if (model.contains("unk_token") && model["unk_token"].is_string())
      tok->unk_token_ = model["unk_token"];
    tok->post_processor_ =
        PostProcessor::from_json(json.value("post_processor", nlohmann::json()), source);
  } catch (const nlohmann::json::exception& e) {
    throw_data_error(source + ": " + e.what());
  }
  tok->index();
  SpecialTokens roles;
  auto role = [&](const char* name) {
    return tok->token_ids_.count(name) ? std::string(name) : std::string();
  };
  roles.bos = role("<bos>");
  roles.eos = role("<eos>");
  roles.pad = role("<pad>");
  roles.unk = tok->unk_token_;
  tok->set_special_tokens(roles, source);
  return tok;
}

std::vector<int64_t> CharTokenizer::encode(std::string_view input, bool add_special_tokens) const {
  std::string repaired;
  std::string_view text = input;
  if (!utf8_is_valid(input)) {
    repaired = utf8_repair(input);
    text = repaired;
  }
  std::deque<std::string> arena;
  std::vector<TextPiece> pieces;
  added_.split(text, nullptr, arena, pieces);
  std::vector<int64_t> ids;
  ids.reserve(text.size() + 2);
  for (const TextPiece& piece : pieces) {
    if (piece.added_id >= 0) {
      ids.push_back(piece.added_id);
      continue;
    }
    size_t pos = 0;
    while (pos < piece.text.size()) {
      auto it = char_ids_.find(utf8_next(piece.text, pos));
      if (it != char_ids_.end()) {
        ids.push_back(it->second);
      } else if (unk_id_ >= 0) {
        ids.push_back(unk_id_);
      }
    }
  }
  if (add_special_tokens) post_processor_.apply(ids);
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::string text;
  for (int64_t id : ids) {
    const std::string token = id_to_token(id);
    if (skip_special_tokens && special_[id]) continue;
    text += token;
  }
  return text;
}

std::optional<int64_t> CharTokenizer::token_to_id(std::string_view token) const {
  auto it = token_ids_.find(std::string(token));
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

std::string CharTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw_data_error("token id " + std::to_string(id) + " is not in the vocabulary (size " +
                     std::to_string(vocab_size()) + ")");
  }
  return id_to_token_[id];
}

bool CharTokenizer::is_special(int64_t id) const {
  id_to_token(id);
  return special_[id] != 0;
}

nlohmann::json CharTokenizer::to_json() const {
  nlohmann::json added = nlohmann::json::array();
  for (const AddedToken& token : added_.tokens()) added.push_back(token.to_json());
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t id = 0; id < id_to_token_.size(); ++id) vocab[id_to_token_[id]] = id;
  nlohmann::json model = {
      {"type", "BPE"},
      {"dropout", nullptr},
      {"unk_token", unk_token_.empty() ? nlohmann::json() : nlohmann::json(unk_token_)},
      {"continuing_subword_prefix", nullptr},
      {"end_of_word_suffix", nullptr},
      {"fuse_unk", false},
      {"byte_fallback", false},
      {"ignore_merges", false},
      {"vocab", vocab},
      {"merges", nlohmann::json::array()}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", post_processor_.json()},
          {"decoder", {{"type", "Fuse"}}},
          {"model", model}};
}

void CharTokenizer::save(const std::filesystem::path& tokenizer_json) const {
  std::ofstream out(tokenizer_json, std::ios::binary);
  if (!out) throw_io_error("cannot write " + tokenizer_json.string());
  out << to_json().dump(2) << '\n';
  if (!out) throw_io_error("failed writing " + tokenizer_json.string());
}

std::string CharTokenizer::alphabet() const {
  std::string out;
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    if (!added_flag_[id]) out += id_to_token_[id];
  }
  return out;
}

}  // namespace r1kit
