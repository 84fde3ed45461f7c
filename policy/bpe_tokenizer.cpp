#include "policy/bpe_tokenizer.h"

#include <c10/util/Exception.h>

#include <fstream>
#include <queue>

#include "common/error.h"
#include "common/unicode_nfc.h"
#include "policy/tokenizer_utf8.h"

namespace r1kit {
namespace {

// Words longer than this are not cached (as `tokenizers`, which caps at 256).
constexpr size_t kMaxCachedWord = 256;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// A model token's bytes under the byte-level mapping, or nullopt when one of
// its characters is not in the byte table (e.g. an added token with a space).
std::optional<std::string> unmap_bytes(std::string_view token) {
  std::string bytes;
  size_t pos = 0;
  while (pos < token.size()) {
    int b = unicode_to_byte(utf8_next(token, pos));
    if (b < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

std::string map_bytes(std::string_view raw) {
  std::string mapped;
  for (char c : raw) utf8_append(mapped, byte_to_unicode()[static_cast<uint8_t>(c)]);
  return mapped;
}

}  // namespace

bool BpeTokenizer::WordCache::get(std::string_view word, size_t hash,
                                  std::vector<int64_t>& out) const {
  Shard& shard = shards_[hash % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.words.find(word);
  if (it == shard.words.end()) return false;
  out.insert(out.end(), it->second.begin(), it->second.end());
  return true;
}

void BpeTokenizer::WordCache::put(std::string_view word, size_t hash, const int64_t* ids,
                                  size_t count) const {
  Shard& shard = shards_[hash % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.words.size() >= kShardCapacity) shard.words.clear();
  shard.words.emplace(std::string(word), std::vector<int32_t>(ids, ids + count));
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json(const nlohmann::json& json,
                                                      const std::string& source) {
  std::unique_ptr<BpeTokenizer> tok(new BpeTokenizer());
  try {
    tok->parse_model(json_at(json, "model", source), source);

    std::vector<AddedToken> added;
    if (json.contains("added_tokens") && !json["added_tokens"].is_null()) {
      size_t index = 0;
      for (const nlohmann::json& entry : json["added_tokens"]) {
        added.push_back(AddedToken::from_json(
            entry, source + ": added_tokens[" + std::to_string(index++) + "]"));
      }
    }
    for (const AddedToken& token : added) {
      if (token.id < 0)
        throw_data_error(source + ": added token " + token.content + " has a negative id");
      if (token.id >= static_cast<int64_t>(tok->id_to_token_.size())) {
        tok->id_to_token_.resize(token.id + 1);
        tok->in_model_.resize(token.id + 1, 0);
      }
      tok->id_to_token_[token.id] = token.content;
    }
    tok->special_.assign(tok->id_to_token_.size(), 0);
    for (const AddedToken& token : added) tok->special_[token.id] = token.special ? 1 : 0;
    tok->added_ = AddedVocabulary(std::move(added));

    const nlohmann::json null_json;
    auto section = [&](const char* key) -> const nlohmann::json& {
      auto it = json.find(key);
      return it == json.end() ? null_json : *it;
    };
    // Normalizers: none, NFC (Qwen2), or a Sequence of those.
    const nlohmann::json& normalizer = section("normalizer");
    std::vector<nlohmann::json> steps;
    if (normalizer.is_object() && normalizer.value("type", "") == "Sequence" &&
        normalizer.contains("normalizers") && normalizer["normalizers"].is_array()) {
      for (const auto& step : normalizer["normalizers"]) steps.push_back(step);
    } else if (!normalizer.is_null()) {
      steps.push_back(normalizer);
    }
    for (const auto& step : steps) {
      if (step.is_object() && step.value("type", "") == "NFC") {
        tok->nfc_ = true;
        continue;
      }
      throw_data_error(source + ": unsupported normalizer " + step.dump().substr(0, 80) +
                       " (supported: NFC, or none)");
    }
    tok->pre_tokenizer_ = PreTokenizer::from_json(section("pre_tokenizer"), source);
    tok->post_processor_ = PostProcessor::from_json(section("post_processor"), source);

    const nlohmann::json& decoder = section("decoder");
    nlohmann::json decoder_step = decoder;
    if (decoder.is_object() && decoder.value("type", "") == "Sequence") {
      const nlohmann::json& steps = json_at(decoder, "decoders", source);
      if (steps.size() != 1)
        throw_data_error(source + ": unsupported decoder Sequence " + decoder.dump());
      decoder_step = steps[0];
    }
    if (decoder_step.is_null()) {
      tok->decoder_ = Decoder::kJoinWithSpace;
    } else {
      std::string type = json_at(decoder_step, "type", source).get<std::string>();
      if (type == "ByteLevel") {
        tok->decoder_ = Decoder::kByteLevel;
      } else if (type == "Fuse") {
        tok->decoder_ = Decoder::kFuse;
      } else {
        throw_data_error(source + ": unsupported decoder type \"" + type +
                         "\" (supported: ByteLevel, Fuse)");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw_data_error(source + ": " + e.what());
  }
  tok->byte_level_ = tok->pre_tokenizer_.byte_level();

  // Precomputed views of the vocabulary for the hot loops.
  size_t n = tok->id_to_token_.size();
  tok->id_bytes_.resize(n);
  for (size_t id = 0; id < n; ++id) {
    const std::string& token = tok->id_to_token_[id];
    std::optional<std::string> raw =
        tok->decoder_ == Decoder::kByteLevel ? unmap_bytes(token) : std::optional<std::string>();
    tok->id_bytes_[id] = raw ? *raw : token;
  }
  tok->byte_symbol_.fill(-1);
  if (tok->byte_level_) {
    for (int b = 0; b < 256; ++b) {
      std::string symbol;
      utf8_append(symbol, byte_to_unicode()[b]);
      auto it = tok->model_vocab_.find(symbol);
      if (it != tok->model_vocab_.end()) tok->byte_symbol_[b] = it->second;
    }
    for (const auto& [token, id] : tok->model_vocab_) {
      if (auto raw = unmap_bytes(token)) tok->raw_vocab_.emplace(*raw, id);
    }
  }

  tok->document_ = json;
  tok->document_["model"].erase("vocab");
  tok->document_["model"].erase("merges");
  return tok;
}

void BpeTokenizer::parse_model(const nlohmann::json& model, const std::string& where) {
  if (!model.is_object()) throw_data_error(where + ": \"model\" must be an object");
  if (!model.contains("type")) throw_data_error(where + ": model has no \"type\"");
  std::string type = model["type"].get<std::string>();
  if (type != "BPE")
    throw_data_error(where + ": unsupported model type \"" + type + "\" (supported: BPE)");
  // A named context: g++ 13 warns of a dangling reference when a temporary is an argument.
  const std::string model_where = where + ": model";
  const nlohmann::json& vocab = json_at(model, "vocab", model_where);
  if (!vocab.is_object())
    throw_data_error(where + ": model.vocab must be an object of token -> id");

  int64_t max_id = -1;
  for (const auto& [token, id_json] : vocab.items()) {
    if (!id_json.is_number_integer())
      throw_data_error(where + ": model.vocab[\"" + token + "\"] is not an integer id");
    auto id = id_json.get<int64_t>();
    if (id < 0 || id > INT32_MAX)
      throw_data_error(where + ": model.vocab[\"" + token + "\"] has id " + std::to_string(id));
    max_id = std::max(max_id, id);
    model_vocab_.emplace(token, static_cast<int32_t>(id));
  }
  id_to_token_.assign(max_id + 1, "");
  in_model_.assign(max_id + 1, 0);
  for (const auto& [token, id] : model_vocab_) {
    id_to_token_[id] = token;
    in_model_[id] = 1;
  }

  auto string_or_empty = [&](const char* key) {
    auto it = model.find(key);
    return it == model.end() || it->is_null() ? std::string() : it->get<std::string>();
  };
  auto flag = [&](const char* key) {
    auto it = model.find(key);
    return it != model.end() && !it->is_null() && it->get<bool>();
  };
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() != 0.0) {
    throw_data_error(
        where +
        ": model.dropout is a training-time option; r1kit encodes deterministically (set null)");
  }
  std::string unk = string_or_empty("unk_token");
  if (!unk.empty()) {
    auto it = model_vocab_.find(unk);
    if (it == model_vocab_.end())
      throw_data_error(where + ": model.unk_token \"" + unk + "\" is not in model.vocab");
    unk_id_ = it->second;
  }
  continuing_subword_prefix_ = string_or_empty("continuing_subword_prefix");
  end_of_word_suffix_ = string_or_empty("end_of_word_suffix");
  fuse_unk_ = flag("fuse_unk");
  byte_fallback_ = flag("byte_fallback");
  ignore_merges_ = flag("ignore_merges");

  const nlohmann::json& merges = json_at(model, "merges", model_where);
  if (!merges.is_array()) throw_data_error(where + ": model.merges must be a list");
  merges_.reserve(merges.size() * 2);
  merge_pairs_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const nlohmann::json& merge = merges[rank];
    std::string left, right;
    if (merge.is_string()) {
      // The legacy "a b" form: exactly one space (tokens never hold one).
      auto text = merge.get<std::string>();
      size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        throw_data_error(where + ": model.merges[" + std::to_string(rank) + "] \"" + text +
                         "\" is not two tokens separated by one space");
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      throw_data_error(where + ": model.merges[" + std::to_string(rank) +
                       "] must be \"a b\" or [\"a\", \"b\"], got " + merge.dump());
    }
    auto find = [&](const std::string& token) {
      auto it = model_vocab_.find(token);
      if (it == model_vocab_.end()) {
        throw_data_error(where + ": model.merges[" + std::to_string(rank) + "] uses \"" + token +
                         "\", which is not in model.vocab");
      }
      return it->second;
    };
    int32_t left_id = find(left);
    int32_t right_id = find(right);
    int32_t new_id = find(left + right);
    // The first (best-ranked) occurrence of a pair wins, as in `tokenizers`.
    merges_.emplace(pair_key(left_id, right_id), Merge{static_cast<int32_t>(rank), new_id});
    merge_pairs_.emplace_back(left_id, right_id);
  }
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view input, bool add_special_tokens) const {
  std::string repaired;
  std::string_view text = input;
  if (!utf8_is_valid(input)) {
    repaired = utf8_repair(input);
    text = repaired;
  }
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::deque<std::string> arena;
  std::vector<TextPiece> pieces;
  static const std::function<std::string(std::string_view)> kNfc = [](std::string_view piece) {
    return unicode_nfc(piece);
  };
  added_.split(text, nfc_ ? &kNfc : nullptr, arena, pieces);
  std::vector<std::string_view> words;
  for (const TextPiece& piece : pieces) {
    if (piece.added_id >= 0) {
      ids.push_back(piece.added_id);
      continue;
    }
    words.clear();
    pre_tokenizer_.split(piece.text, arena, words);
    for (std::string_view word : words) encode_word(word, ids);
  }
  if (add_special_tokens) post_processor_.apply(ids);
  return ids;
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int64_t>& ids) const {
  bool cacheable = word.size() <= kMaxCachedWord;
  size_t hash = cacheable ? StringHash{}(word) : 0;
  if (cacheable && cache_.get(word, hash, ids)) return;

  thread_local std::vector<int32_t> symbols;
  symbols.clear();
  bool done = false;
  if (byte_level_) {
    if (ignore_merges_) {
      auto it = raw_vocab_.find(word);
      if (it != raw_vocab_.end()) {
        symbols.push_back(it->second);
        done = true;
      }
    }
    if (!done) {
      bool all_known = continuing_subword_prefix_.empty() && end_of_word_suffix_.empty();
      for (size_t i = 0; i < word.size() && all_known; ++i) {
        int32_t id = byte_symbol_[static_cast<uint8_t>(word[i])];
        all_known = id >= 0;
        symbols.push_back(id);
      }
      if (!all_known) {
        symbols.clear();
        word_symbols(map_bytes(word), symbols);
      }
      merge_all(symbols);
    }
  } else {
    auto it = ignore_merges_ ? model_vocab_.find(word) : model_vocab_.end();
    if (it != model_vocab_.end()) {
      symbols.push_back(it->second);
    } else {
      word_symbols(word, symbols);
      merge_all(symbols);
    }
  }
  size_t first = ids.size();
  ids.insert(ids.end(), symbols.begin(), symbols.end());
  if (cacheable) cache_.put(word, hash, ids.data() + first, symbols.size());
}

void BpeTokenizer::word_symbols(std::string_view word, std::vector<int32_t>& symbols) const {
  int32_t pending_unk = -1;  // an unknown run waiting to be pushed (fuse_unk joins runs)
  std::string symbol;
  size_t pos = 0;
  while (pos < word.size()) {
    size_t start = pos;
    utf8_next(word, pos);
    symbol.clear();
    if (start > 0) symbol += continuing_subword_prefix_;
    symbol.append(word.substr(start, pos - start));
    if (pos == word.size()) symbol += end_of_word_suffix_;
    auto it = model_vocab_.find(symbol);
    if (it != model_vocab_.end()) {
      if (pending_unk >= 0) symbols.push_back(pending_unk);
      pending_unk = -1;
      symbols.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      for (char c : symbol) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>",
                      static_cast<unsigned>(static_cast<uint8_t>(c)));
        auto byte_it = model_vocab_.find(std::string_view(name));
        if (byte_it == model_vocab_.end()) break;
        bytes.push_back(byte_it->second);
      }
      if (bytes.size() == symbol.size()) {
        // `tokenizers` pushes byte tokens without flushing a pending unk first.
        symbols.insert(symbols.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && !fuse_unk_) symbols.push_back(pending_unk);
      pending_unk = unk_id_;
    }
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
}

void BpeTokenizer::merge_all(std::vector<int32_t>& symbols) const {
  if (symbols.size() < 2 || merges_.empty()) return;
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool removed;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // std::priority_queue pops the largest: make the best rank, then the leftmost, the largest.
    bool operator<(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  thread_local std::vector<Symbol> word;
  thread_local std::vector<Candidate> heap_storage;
  const int32_t n = static_cast<int32_t>(symbols.size());
  word.resize(n);
  heap_storage.clear();
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(heap_storage));
  for (int32_t i = 0; i < n; ++i) {
    word[i] = {symbols[i], i - 1, i + 1 < n ? i + 1 : -1, false};
    if (i + 1 < n) {
      auto it = merges_.find(pair_key(symbols[i], symbols[i + 1]));
      if (it != merges_.end()) queue.push({it->second.rank, i, it->second.new_id});
    }
  }
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& current = word[top.pos];
    if (current.removed || current.next < 0) continue;
    Symbol& right = word[current.next];
    // Skip entries made stale by an earlier merge.
    auto it = merges_.find(pair_key(current.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    current.id = top.new_id;
    right.removed = true;
    current.next = right.next;
    if (right.next >= 0) word[right.next].prev = top.pos;
    if (current.prev >= 0) {
      auto left = merges_.find(pair_key(word[current.prev].id, current.id));
      if (left != merges_.end()) queue.push({left->second.rank, current.prev, left->second.new_id});
    }
    if (current.next >= 0) {
      auto next = merges_.find(pair_key(current.id, word[current.next].id));
      if (next != merges_.end()) queue.push({next->second.rank, top.pos, next->second.new_id});
    }
  }
  symbols.clear();
  for (int32_t i = 0; i >= 0; i = word[i].next) symbols.push_back(word[i].id);
}

void BpeTokenizer::check_id(int64_t id) const {
  if (id < 0 || id >= vocab_size() || id_to_token_[id].empty()) {
    throw_data_error("token id " + std::to_string(id) + " is not in the vocabulary (size " +
                     std::to_string(vocab_size()) + ")");
  }
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  bool first = true;
  for (int64_t id : ids) {
    check_id(id);
    if (skip_special_tokens && special_[id]) continue;
    if (decoder_ == Decoder::kJoinWithSpace && !first) bytes.push_back(' ');
    bytes += id_bytes_[id];
    first = false;
  }
  return utf8_repair(bytes);
}

std::optional<int64_t> BpeTokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* added = added_.find(token)) return added->id;
  auto it = model_vocab_.find(token);
  if (it == model_vocab_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::id_to_token(int64_t id) const {
  check_id(id);
  return id_to_token_[id];
}

bool BpeTokenizer::is_special(int64_t id) const {
  check_id(id);
  return special_[id] != 0;
}

std::string BpeTokenizer::token_bytes(int64_t id) const {
  check_id(id);
  return id_bytes_[id];
}

void BpeTokenizer::save(const std::filesystem::path& tokenizer_json) const {
  nlohmann::json json = document_;
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    if (in_model_[id]) vocab[id_to_token_[id]] = id;
  }
  nlohmann::json merges = nlohmann::json::array();
  for (auto [left, right] : merge_pairs_)
    merges.push_back({id_to_token_[left], id_to_token_[right]});
  json["model"]["vocab"] = std::move(vocab);
  json["model"]["merges"] = std::move(merges);
  std::ofstream out(tokenizer_json, std::ios::binary);
  if (!out) throw_io_error("cannot write " + tokenizer_json.string());
  out << json.dump() << '\n';
  if (!out) throw_io_error("failed writing " + tokenizer_json.string());
}

}  // namespace r1kit
