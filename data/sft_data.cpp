#include "data/sft_data.h"

#include <algorithm>
#include <fstream>

#include "common/error.h"
#include "common/jsonl.h"
#include "common/logging.h"

namespace r1kit {
namespace {

constexpr size_t kSortWindow = 1024;

// Appends `text`'s tokens with one mask value.
void append(SftExample& example, const Tokenizer& tokenizer, const std::string& text,
            uint8_t mask) {
  if (text.empty()) return;
  std::vector<int64_t> ids = tokenizer.encode(text);
  example.ids.insert(example.ids.end(), ids.begin(), ids.end());
  example.loss_mask.insert(example.loss_mask.end(), ids.size(), mask);
}

// Appends ids with one mask value.
void append_ids(SftExample& example, const std::vector<int64_t>& ids, uint8_t mask) {
  example.ids.insert(example.ids.end(), ids.begin(), ids.end());
  example.loss_mask.insert(example.loss_mask.end(), ids.size(), mask);
}

const std::string& string_at(const nlohmann::json& object, const std::string& key,
                             const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) throw_data_error(where + "no \"" + key + "\" key");
  if (!it->is_string()) throw_data_error(where + "\"" + key + "\" is not a string");
  return it->get_ref<const std::string&>();
}

std::vector<std::pair<std::string, std::string>> read_messages(
    const nlohmann::json& list, const std::string& key,
    std::vector<std::pair<std::string, std::string>> out) {
  if (!list.is_array()) throw_data_error("\"" + key + "\" is not a list of messages");
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = key + "[" + std::to_string(i) + "]: ";
    if (!list[i].is_object()) throw_data_error(where + "not an object");
    const std::string role =
        string_at(list[i], "role", where);  // a copy: g++ 13 flags a reference here
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      throw_data_error(where + "role \"" + role + "\" is not system, user, assistant or tool");
    }
    out.emplace_back(role, string_at(list[i], "content", where));
  }
  return out;
}

bool ends_with_eos_token(const Tokenizer& tokenizer, const std::string& end_marker) {
  std::vector<int64_t> ids = tokenizer.encode(end_marker);
  return ids.size() == 1 && tokenizer.eos_id() && ids[0] == *tokenizer.eos_id();
}

SftExample render_chat(const std::vector<std::pair<std::string, std::string>>& messages,
                       const Tokenizer& tokenizer) {
  size_t last_assistant = messages.size();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].first == "assistant") last_assistant = i;
  }
  if (last_assistant == messages.size()) throw_data_error("no assistant message to learn from");
  SftExample example;
  // Turns after the last assistant message teach nothing: they are left out.
  for (size_t i = 0; i <= last_assistant; ++i) {
    const auto& [role, content] = messages[i];
    bool learn = role == "assistant";
    append(example, tokenizer, "<|im_start|>" + role + "\n", 0);
    append(example, tokenizer, content + "<|im_end|>", learn ? 1 : 0);
    if (i < last_assistant) append(example, tokenizer, "\n", 0);
  }
  if (tokenizer.eos_id() && !ends_with_eos_token(tokenizer, "<|im_end|>")) {
    example.ids.push_back(*tokenizer.eos_id());
    example.loss_mask.push_back(1);
  }
  return example;
}

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

SftExample render_sft_example(const nlohmann::json& line, const Tokenizer& tokenizer,
                              bool add_special_tokens) {
  if (!line.is_object()) throw_data_error("not a JSON object");
  if (line.contains("messages"))
    return render_chat(read_messages(line["messages"], "messages", {}), tokenizer);
  if (!line.contains("prompt")) throw_data_error("no \"prompt\" or \"messages\" key");
  const char* response_key = line.contains("response") ? "response" : "completion";
  if (!line.contains(response_key)) throw_data_error("no \"response\" or \"completion\" key");
  if (line["prompt"].is_array()) {
    auto messages = read_messages(line["prompt"], "prompt", {});
    return render_chat(read_messages(line[response_key], response_key, std::move(messages)),
                       tokenizer);
  }
  if (!tokenizer.eos_id()) throw_data_error("the tokenizer has no eos token to end the response");
  SftExample example;
  const PostProcessor& post_processor = tokenizer.post_processor();
  if (add_special_tokens) append_ids(example, post_processor.prefix(), 0);
  append(example, tokenizer, string_at(line, "prompt", ""), 0);
  append(example, tokenizer, string_at(line, response_key, ""), 1);
  example.ids.push_back(*tokenizer.eos_id());
  example.loss_mask.push_back(1);
  // TRL counts what follows the prompt as completion: a suffix is learned.
  if (add_special_tokens) append_ids(example, post_processor.suffix(), 1);
  return example;
}

SftDataset load_sft_jsonl(const std::string& path, const Tokenizer& tokenizer,
                          const SftDataOptions& options) {
  JsonlReader reader(path);
  SftDataset data;
  int64_t line_number = 0;
  auto skip_message = [&](const std::string& message) {
    if (options.strict) throw_data_error(message);
    log_warning() << "skipped " << message;
    data.skipped.push_back(message);
  };
  auto skip = [&](const std::string& why) {
    skip_message(path + ":" + std::to_string(line_number) + ": " + why);
  };
  while (true) {
    std::optional<JsonlLine> parsed;
    try {
      parsed = reader.next();
    } catch (const Error& e) {
      skip_message(e.what());  // not valid JSON; the message names file and line
      continue;
    }
    if (!parsed) break;
    line_number = parsed->number;
    const nlohmann::json& line = parsed->value;
    SftExample example;
    try {
      example = render_sft_example(line, tokenizer, options.add_special_tokens);
    } catch (const Error& e) {
      skip(e.what());
      continue;
    }
    example.line = line_number;
    auto length = static_cast<int64_t>(example.ids.size());
    bool truncated = length > options.max_length;
    if (truncated) {
      if (options.truncation == "drop") {
        skip(std::to_string(length) + " tokens, longer than max_length " +
             std::to_string(options.max_length));
        continue;
      }
      example.ids.resize(options.max_length);
      example.loss_mask.resize(options.max_length);
    }
    // Position 0 is never a target (nothing precedes it).
    if (std::count(example.loss_mask.begin() + 1, example.loss_mask.end(), 1) == 0) {
      skip("no response tokens within max_length " + std::to_string(options.max_length));
      continue;
    }
    data.truncated += truncated;
    data.examples.push_back(std::move(example));
  }
  if (data.examples.empty()) {
    throw_data_error(path + ": no usable example (" + std::to_string(data.skipped.size()) +
                     " lines skipped)");
  }
  return data;
}

std::vector<SftExample> split_off_eval(SftDataset& data, double eval_fraction, int64_t max_eval) {
  std::vector<SftExample> eval, train;
  for (auto& example : data.examples) {
    bool held = static_cast<double>(mix64(static_cast<uint64_t>(example.line)) % 1000000) <
                eval_fraction * 1e6;
    if (held && static_cast<int64_t>(eval.size()) < max_eval) {
      eval.push_back(std::move(example));
    } else {
      train.push_back(std::move(example));
    }
  }
  data.examples = std::move(train);
  return eval;
}

std::vector<std::vector<size_t>> plan_sft_batches(const std::vector<SftExample>& examples,
                                                  int64_t max_tokens_per_batch,
                                                  std::mt19937_64* rng) {
  TORCH_CHECK(max_tokens_per_batch > 0, "max_tokens_per_batch ", max_tokens_per_batch);
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto longer = [&](size_t a, size_t b) {
    return examples[a].ids.size() != examples[b].ids.size()
               ? examples[a].ids.size() > examples[b].ids.size()
               : a < b;
  };
  size_t window = order.size();
  if (rng) {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[(*rng)() % i]);
    window = kSortWindow;
  }
  std::vector<std::vector<size_t>> batches;
  for (size_t begin = 0; begin < order.size(); begin += window) {
    size_t end = std::min(order.size(), begin + window);
    std::sort(order.begin() + begin, order.begin() + end, longer);
    std::vector<size_t> batch;
    int64_t longest = 0;
    for (size_t i = begin; i < end; ++i) {
      auto length = static_cast<int64_t>(examples[order[i]].ids.size());
      int64_t widest = std::max(longest, length);
      if (!batch.empty() &&
          widest * static_cast<int64_t>(batch.size() + 1) > max_tokens_per_batch) {
        batches.push_back(std::move(batch));
        batch.clear();
        widest = length;
      }
      batch.push_back(order[i]);
      longest = widest;
    }
    if (!batch.empty()) batches.push_back(std::move(batch));
  }
  if (rng) {
    for (size_t i = batches.size(); i > 1; --i) std::swap(batches[i - 1], batches[(*rng)() % i]);
  }
  return batches;
}

SftBatch collate_sft(const std::vector<SftExample>& examples, const std::vector<size_t>& rows,
                     int64_t pad_id) {
  TORCH_CHECK(!rows.empty(), "collate_sft: no rows");
  size_t width = 0;
  for (size_t row : rows) width = std::max(width, examples[row].ids.size());
  const auto batch = static_cast<int64_t>(rows.size());
  const auto length = static_cast<int64_t>(width);
  SftBatch out;
  out.tokens = at::full({batch, length}, pad_id, at::kLong);   // (B, L)
  out.attention_mask = at::zeros({batch, length}, at::kLong);  // (B, L)
  out.loss_mask = at::zeros({batch, length}, at::kLong);       // (B, L)
  auto tokens = out.tokens.accessor<int64_t, 2>();
  auto attention = out.attention_mask.accessor<int64_t, 2>();
  auto loss = out.loss_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const SftExample& example = examples[rows[b]];
    for (size_t t = 0; t < example.ids.size(); ++t) {
      tokens[b][t] = example.ids[t];
      attention[b][t] = 1;
      loss[b][t] = example.loss_mask[t];
      if (t > 0) out.loss_tokens += example.loss_mask[t];
    }
  }
  return out;
}

}  // namespace r1kit
