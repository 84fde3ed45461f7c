// Recipes as validated JSON. A config struct lists its fields once in
// `void visit(ConfigVisitor& v)`; the same list reads JSON (with type, range,
// choice and unknown-key checks that name the file and key path), writes the
// resolved recipe back, and takes `--set a.b=value` overrides.
//
//   struct SamplingConfig {
//     double temperature = 1.0;  // softmax temperature; 0 = greedy
//     void visit(ConfigVisitor& v) { v.field("temperature", temperature, {.min = 0.0}); }
//   };
//   auto sampling = read_config<SamplingConfig>(json, "recipe.json");
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit {

// Checks on one field; every member is optional.
struct FieldRule {
  std::optional<double> min;         // inclusive lower bound for numbers
  std::optional<double> max;         // inclusive upper bound for numbers
  bool min_exclusive = false;        // makes `min` exclusive (e.g. > 0)
  std::vector<std::string> choices;  // allowed values of a string field
  bool required = false;             // the key must be present
};

// Walks the fields of a config struct. Readers and writers implement it.
class ConfigVisitor {
 public:
  virtual ~ConfigVisitor() = default;

  virtual void field(std::string_view key, bool& value, const FieldRule& rule = {}) = 0;
  virtual void field(std::string_view key, int64_t& value, const FieldRule& rule = {}) = 0;
  virtual void field(std::string_view key, double& value, const FieldRule& rule = {}) = 0;
  virtual void field(std::string_view key, std::string& value, const FieldRule& rule = {}) = 0;
  virtual void field(std::string_view key, std::vector<int64_t>& value,
                     const FieldRule& rule = {}) = 0;
  virtual void field(std::string_view key, std::vector<double>& value,
                     const FieldRule& rule = {}) = 0;
  virtual void field(std::string_view key, std::vector<std::string>& value,
                     const FieldRule& rule = {}) = 0;
  // Free-form JSON handed to a plug-in (a reward's `options`); checked by it.
  virtual void field(std::string_view key, nlohmann::json& value, const FieldRule& rule = {}) = 0;

  // A nested object: `v.section("sampling", sampling)`.
  template <class Section>
  void section(std::string_view key, Section& section_value) {
    if (!begin_section(key)) return;
    section_value.visit(*this);
    end_section();
  }

  // A list of objects: `v.list("rewards", rewards)`.
  template <class Item>
  void list(std::string_view key, std::vector<Item>& items, const FieldRule& rule = {}) {
    std::optional<size_t> count = begin_list(key, items.size(), rule);
    if (!count) return;
    items.resize(*count);
    for (size_t i = 0; i < *count; ++i) {
      begin_item(i);
      items[i].visit(*this);
      end_item();
    }
    end_list();
  }

  // Raises a config error naming the current key path: for cross-field checks.
  [[noreturn]] virtual void fail(std::string_view key, const std::string& message) = 0;

 protected:
  // Returns false when the section is absent (defaults stay).
  virtual bool begin_section(std::string_view key) = 0;
  virtual void end_section() = 0;
  // Returns the number of items to visit, or nullopt when the key is absent.
  virtual std::optional<size_t> begin_list(std::string_view key, size_t current_size,
                                           const FieldRule& rule) = 0;
  virtual void begin_item(size_t index) = 0;
  virtual void end_item() = 0;
  virtual void end_list() = 0;
};

// For an unknown key's message: given its key path ("learning_rate",
// "grpo.kl_coef"), a hint such as `did you mean "optimizer.learning_rate"?`,
// or "" to fall back on the closest known key of the same object.
using UnknownKeyHint = std::function<std::string(const std::string& key_path)>;

// Reads `json` into a struct through its visit(); `source` names the file in
// errors. Throws Error(kConfig) on the first problem.
void read_config_into(const nlohmann::json& json, const std::string& source,
                      const std::function<void(ConfigVisitor&)>& visit,
                      const UnknownKeyHint& hint = {});

// Writes a struct's fields (the resolved recipe, defaults included) as JSON.
nlohmann::json write_config_from(const std::function<void(ConfigVisitor&)>& visit);

template <class Config>
Config read_config(const nlohmann::json& json, const std::string& source,
                   const UnknownKeyHint& hint = {}) {
  Config config;
  read_config_into(
      json, source, [&](ConfigVisitor& v) { config.visit(v); }, hint);
  return config;
}

template <class Config>
nlohmann::json write_config(Config& config) {
  return write_config_from([&](ConfigVisitor& v) { config.visit(v); });
}

// Parses a JSON file; a syntax error names the file, line and column. With
// `reject_duplicate_keys` (recipes), a key written twice in one object is a
// config error naming its key path instead of silently keeping the last.
nlohmann::json read_json_file(const std::string& path, bool reject_duplicate_keys = false);

// Applies `a.b.c=value` to `json`: value is parsed as JSON when it parses
// (numbers, true, [1,2], {"k":1}), else taken as a string. A list item is
// reached by its index: `rewards.0.weight=2` or `rewards[0].weight=2`.
void apply_override(nlohmann::json& json, const std::string& assignment);

// Sets `value` at the dotted `key_path` of `root`, creating objects on the
// way; a numeric part (`rewards.0.weight`, or `rewards[0].weight`) indexes an
// existing list. Returns "" or what is wrong with the path (for the caller's
// error).
std::string set_key_path(nlohmann::json& root, const std::string& key_path,
                         const nlohmann::json& value);

// Every key path of `json` that leads to a value that is not an object
// ("optimizer.learning_rate"), lists' object items as `name[]`.
std::vector<std::string> leaf_key_paths(const nlohmann::json& json);

// The closest of `candidates` to `word` within a small edit distance, or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace r1kit
