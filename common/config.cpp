#include "common/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/error.h"

namespace r1kit {
namespace {

using nlohmann::json;

std::string describe(const json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  switch (value.type()) {
    case json::value_t::string:
      return text;
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list " + text;
    case json::value_t::null:
      return "null";
    default:
      return text;
  }
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// One object being read: its JSON, its key path, the keys the struct knows.
struct Frame {
  const json* object;
  std::string path;
  std::vector<std::string> known_keys;
};

class JsonReader final : public ConfigVisitor {
 public:
  JsonReader(const json& root, std::string source, UnknownKeyHint hint)
      : source_(std::move(source)), hint_(std::move(hint)) {
    if (!root.is_object()) {
      throw_config_error(source_ + ": expected a JSON object at the top level, got " +
                         describe(root));
    }
    frames_.push_back({&root, "", {}});
  }

  void finish() { check_unknown_keys(); }

  void field(std::string_view key, bool& value, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    if (!node->is_boolean()) type_error(key, "true or false", *node);
    value = node->get<bool>();
  }

  void field(std::string_view key, int64_t& value, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    value = to_integer(key, *node);
    check_range(key, static_cast<double>(value), rule);
  }

  void field(std::string_view key, double& value, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    if (!node->is_number()) type_error(key, "a number", *node);
    value = node->get<double>();
    if (!std::isfinite(value)) fail(key, "expected a finite number");
    check_range(key, value, rule);
  }

  void field(std::string_view key, std::string& value, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    if (!node->is_string()) type_error(key, "a string", *node);
    value = node->get<std::string>();
    check_choice(key, value, rule);
  }

  void field(std::string_view key, std::vector<int64_t>& value, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    if (!node->is_array()) type_error(key, "a list of integers", *node);
    value.clear();
    for (size_t i = 0; i < node->size(); ++i) {
      std::string item_key = std::string(key) + "[" + std::to_string(i) + "]";
      value.push_back(to_integer(item_key, (*node)[i]));
      check_range(item_key, static_cast<double>(value.back()), rule);
    }
  }

  void field(std::string_view key, std::vector<double>& value, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    if (!node->is_array()) type_error(key, "a list of numbers", *node);
    value.clear();
    for (size_t i = 0; i < node->size(); ++i) {
      std::string item_key = std::string(key) + "[" + std::to_string(i) + "]";
      if (!(*node)[i].is_number()) type_error(item_key, "a number", (*node)[i]);
      value.push_back((*node)[i].get<double>());
      check_range(item_key, value.back(), rule);
    }
  }

  void field(std::string_view key, std::vector<std::string>& value,
             const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    if (!node->is_array()) type_error(key, "a list of strings", *node);
    value.clear();
    for (size_t i = 0; i < node->size(); ++i) {
      std::string item_key = std::string(key) + "[" + std::to_string(i) + "]";
      if (!(*node)[i].is_string()) type_error(item_key, "a string", (*node)[i]);
      value.push_back((*node)[i].get<std::string>());
      check_choice(item_key, value.back(), rule);
    }
  }

  void field(std::string_view key, json& value, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return;
    value = *node;
  }

  [[noreturn]] void fail(std::string_view key, const std::string& message) override {
    throw_config_error(source_ + ": " + path_of(key) + ": " + message);
  }

 protected:
  bool begin_section(std::string_view key) override {
    const json* node = lookup(key, {});
    if (!node) return false;
    if (!node->is_object()) type_error(key, "an object", *node);
    frames_.push_back({node, path_of(key), {}});
    return true;
  }

  void end_section() override {
    check_unknown_keys();
    frames_.pop_back();
  }

  std::optional<size_t> begin_list(std::string_view key, size_t, const FieldRule& rule) override {
    const json* node = lookup(key, rule);
    if (!node) return std::nullopt;
    if (!node->is_array()) type_error(key, "a list", *node);
    list_stack_.push_back({node, path_of(key)});
    return node->size();
  }

  void begin_item(size_t index) override {
    const auto& [list, path] = list_stack_.back();
    const json& item = (*list)[index];
    std::string item_path = path + "[" + std::to_string(index) + "]";
    if (!item.is_object()) {
      throw_config_error(source_ + ": " + item_path + ": expected an object, got " +
                         describe(item));
    }
    frames_.push_back({&item, item_path, {}});
  }

  void end_item() override { end_section(); }
  void end_list() override { list_stack_.pop_back(); }

 private:
  std::string path_of(std::string_view key) const {
    const std::string& base = frames_.back().path;
    return base.empty() ? std::string(key) : base + "." + std::string(key);
  }

  const json* lookup(std::string_view key, const FieldRule& rule) {
    Frame& frame = frames_.back();
    frame.known_keys.emplace_back(key);
    auto it = frame.object->find(std::string(key));
    if (it == frame.object->end()) {
      if (rule.required) fail(key, "required key is missing");
      return nullptr;
    }
    return &*it;
  }

  [[noreturn]] void type_error(std::string_view key, const std::string& expected, const json& got) {
    fail(key, "expected " + expected + ", got " + describe(got));
  }

  int64_t to_integer(std::string_view key, const json& node) {
    if (node.is_number_unsigned() &&
        node.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(key, "must be at most " + std::to_string(std::numeric_limits<int64_t>::max()) +
                    ", got " + std::to_string(node.get<uint64_t>()));
    }
    if (node.is_number_integer()) return node.get<int64_t>();
    if (node.is_number_float()) {
      double value = node.get<double>();
      if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9.0e15) {
        return static_cast<int64_t>(value);
      }
    }
    type_error(key, "an integer", node);
  }

  void check_range(std::string_view key, double value, const FieldRule& rule) {
    std::ostringstream bound;
    if (rule.min && (rule.min_exclusive ? value <= *rule.min : value < *rule.min)) {
      bound << "must be " << (rule.min_exclusive ? "> " : ">= ") << *rule.min << ", got " << value;
      fail(key, bound.str());
    }
    if (rule.max && value > *rule.max) {
      bound << "must be <= " << *rule.max << ", got " << value;
      fail(key, bound.str());
    }
  }

  void check_choice(std::string_view key, const std::string& value, const FieldRule& rule) {
    if (rule.choices.empty()) return;
    if (std::find(rule.choices.begin(), rule.choices.end(), value) != rule.choices.end()) return;
    std::string message = "unknown value \"" + value + "\"";
    std::string guess = did_you_mean(value, rule.choices);
    if (!guess.empty()) message += " (did you mean \"" + guess + "\"?)";
    fail(key, message + "; expected one of: " + join(rule.choices));
  }

  void check_unknown_keys() {
    const Frame& frame = frames_.back();
    for (const auto& [key, _] : frame.object->items()) {
      if (std::find(frame.known_keys.begin(), frame.known_keys.end(), key) !=
          frame.known_keys.end()) {
        continue;
      }
      std::string path = frame.path.empty() ? key : frame.path + "." + key;
      std::string message = source_ + ": " + path + ": unknown key";
      std::string hint = hint_ ? hint_(path) : "";
      if (hint.empty()) {
        std::string guess = did_you_mean(key, frame.known_keys);
        if (!guess.empty()) hint = "did you mean \"" + guess + "\"?";
      }
      if (!hint.empty()) message += " (" + hint + ")";
      throw_config_error(message);
    }
  }

  std::string source_;
  UnknownKeyHint hint_;
  std::vector<Frame> frames_;
  std::vector<std::pair<const json*, std::string>> list_stack_;
};

class JsonWriter final : public ConfigVisitor {
 public:
  JsonWriter() { stack_.push_back(&root_); }
  json take() { return std::move(root_); }

  void field(std::string_view key, bool& v, const FieldRule&) override { put(key, v); }
  void field(std::string_view key, int64_t& v, const FieldRule&) override { put(key, v); }
  void field(std::string_view key, double& v, const FieldRule&) override { put(key, v); }
  void field(std::string_view key, std::string& v, const FieldRule&) override { put(key, v); }
  void field(std::string_view key, std::vector<int64_t>& v, const FieldRule&) override {
    put(key, v);
  }
  void field(std::string_view key, std::vector<double>& v, const FieldRule&) override {
    put(key, v);
  }
  void field(std::string_view key, std::vector<std::string>& v, const FieldRule&) override {
    put(key, v);
  }
  void field(std::string_view key, json& v, const FieldRule&) override { put(key, v); }

  [[noreturn]] void fail(std::string_view key, const std::string& message) override {
    throw_config_error(std::string(key) + ": " + message);
  }

 protected:
  bool begin_section(std::string_view key) override {
    json& child = (*stack_.back())[std::string(key)] = json::object();
    stack_.push_back(&child);
    return true;
  }
  void end_section() override { stack_.pop_back(); }
  std::optional<size_t> begin_list(std::string_view key, size_t current_size,
                                   const FieldRule&) override {
    json& list = (*stack_.back())[std::string(key)] = json::array();
    lists_.push_back(&list);
    return current_size;
  }
  void begin_item(size_t) override {
    lists_.back()->push_back(json::object());
    stack_.push_back(&lists_.back()->back());
  }
  void end_item() override { stack_.pop_back(); }
  void end_list() override { lists_.pop_back(); }

 private:
  template <class T>
  void put(std::string_view key, const T& value) {
    (*stack_.back())[std::string(key)] = value;
  }

  json root_ = json::object();
  std::vector<json*> stack_;
  std::vector<json*> lists_;
};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

void read_config_into(const json& json_value, const std::string& source,
                      const std::function<void(ConfigVisitor&)>& visit,
                      const UnknownKeyHint& hint) {
  JsonReader reader(json_value, source, hint);
  visit(reader);
  reader.finish();
}

json write_config_from(const std::function<void(ConfigVisitor&)>& visit) {
  JsonWriter writer;
  visit(writer);
  return writer.take();
}

namespace {

// Rejects a key that appears twice in one object (JSON parsers silently keep
// the last). Tracks the key path for the message.
class DuplicateKeyCheck {
 public:
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        count_element();
        frames_.push_back({.is_object = true});
        break;
      case json::parse_event_t::array_start:
        count_element();
        frames_.push_back({.is_object = false});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& frame = frames_.back();
        frame.key = parsed.get<std::string>();
        if (!frame.keys.insert(frame.key).second) duplicate_ = path();
        break;
      }
      case json::parse_event_t::value:
        count_element();
        break;
    }
    return true;
  }

  // The key path of the first duplicate ("trainer.max_steps"), or "".
  const std::string& duplicate() const { return duplicate_; }

 private:
  struct Frame {
    bool is_object = true;
    std::set<std::string> keys;
    std::string key;     // objects: the key being read
    int64_t index = -1;  // arrays: the element being read
  };

  void count_element() {
    if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().index;
  }

  std::string path() const {
    std::string text;
    for (const Frame& frame : frames_) {
      if (frame.is_object)
        text += (text.empty() ? "" : ".") + frame.key;
      else
        text += "[" + std::to_string(frame.index) + "]";
    }
    return text;
  }

  std::vector<Frame> frames_;
  std::string duplicate_;
};

[[noreturn]] void throw_json_error(const std::string& path, const std::string& text,
                                   const json::exception& e, size_t byte) {
  std::string what = e.what();
  for (const char* start : {"parse error", "number overflow"}) {
    if (size_t cut = what.find(start); cut != std::string::npos) {
      what = what.substr(cut);
      break;
    }
  }
  if (byte == 0) throw_config_error(path + ": invalid JSON (" + what + ")");
  size_t offset = std::min<size_t>(byte - 1, text.size());
  size_t line = 1 + std::count(text.begin(), text.begin() + offset, '\n');
  size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  size_t column = offset - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
  throw_config_error(path + ":" + std::to_string(line) + ":" + std::to_string(column) +
                     ": invalid JSON (" + what + ")");
}

}  // namespace

json read_json_file(const std::string& path, bool reject_duplicate_keys) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
    throw_io_error(path + ": is a folder, not a JSON file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_io_error(path + ": cannot open file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_io_error(path + ": cannot read file");
  DuplicateKeyCheck duplicates;
  json value;
  try {
    if (reject_duplicate_keys)
      value = json::parse(text, std::ref(duplicates));
    else
      value = json::parse(text);
  } catch (const json::parse_error& e) {
    throw_json_error(path, text, e, e.byte == 0 ? 1 : e.byte);
  } catch (const json::exception& e) {
    throw_json_error(path, text, e, 0);  // a number out of range: no position
  }
  if (!duplicates.duplicate().empty())
    throw_config_error(path + ": " + duplicates.duplicate() +
                       ": the key appears twice in one object; keep one");
  return value;
}

void apply_override(json& root, const std::string& assignment) {
  size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw_usage_error("--set " + assignment + ": expected KEY.PATH=VALUE");
  }
  try {
    (void)json(assignment).dump();  // the recipe is written back as JSON, which must be UTF-8
  } catch (const json::type_error&) {
    throw_usage_error("--set " +
                      json(assignment).dump(-1, ' ', false, json::error_handler_t::replace) +
                      ": not valid UTF-8");
  }
  std::string path = assignment.substr(0, equals);
  std::string text = assignment.substr(equals + 1);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;

  if (std::string problem = set_key_path(root, path, value); !problem.empty()) {
    throw_usage_error("--set " + assignment + ": " + problem);
  }
}

std::string set_key_path(json& root, const std::string& key_path, const json& value) {
  // rewards[0].weight reads as rewards.0.weight.
  std::string dotted;
  for (char c : key_path) {
    if (c == '[')
      dotted += '.';
    else if (c != ']')
      dotted += c;
  }
  json* node = &root;
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    std::string key =
        dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) return "empty key in \"" + key_path + "\"";
    const std::string so_far = dotted.substr(0, start == 0 ? 0 : start - 1);
    json* next = nullptr;
    if (node->is_array()) {
      const bool digits = std::all_of(key.begin(), key.end(), ::isdigit);
      const size_t index = digits && key.size() < 10 ? std::stoul(key) : node->size();
      if (index >= node->size())
        return "\"" + so_far + "\" is a list of " + std::to_string(node->size()) + " items; \"" +
               key + "\" is not an index of it";
      next = &(*node)[index];
    } else {
      if (node->is_null()) *node = json::object();
      if (!node->is_object()) return "\"" + so_far + "\" is not an object";
      if (dot == std::string::npos) {
        (*node)[key] = value;
        return "";
      }
      next = &(*node)[key];
    }
    if (dot == std::string::npos) {
      *next = value;
      return "";
    }
    node = next;
    start = dot + 1;
  }
}

std::vector<std::string> leaf_key_paths(const json& value) {
  std::vector<std::string> paths;
  std::function<void(const json&, const std::string&)> walk = [&](const json& node,
                                                                  const std::string& path) {
    if (node.is_object() && !node.empty()) {
      for (const auto& [key, child] : node.items())
        walk(child, path.empty() ? key : path + "." + key);
    } else if (node.is_array() && !node.empty() && node.front().is_object()) {
      walk(node.front(), path + "[]");
    } else if (!path.empty()) {
      paths.push_back(path);
    }
  };
  walk(value, "");
  return paths;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

}  // namespace r1kit
