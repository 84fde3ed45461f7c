// `jsonl`: tasks from a JSON-lines file, streamed (the file is read as tasks
// are drawn, never loaded whole) with a shuffle buffer. Formats, per line:
//   gsm8k  {"question": ..., "answer": "... #### 72"}   reference = after ####
//   math   {"problem": ..., "solution": "... \boxed{..}"}  reference = last box
//   chat   {"messages": [{"role", "content"}, ...], "answer"?}  a final assistant turn is the
//   solution prompt {<prompt_key>: ..., <answer_key>: ...}
// "auto" picks per line by its keys. A bad line is skipped with a warning that
// names the file and line (or, with strict, is an error); the counts are kept.
#include <fstream>
#include <functional>
#include <optional>

#include "common/config.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "common/logging.h"
#include "environments/environment.h"

namespace r1kit {
namespace {

struct JsonlOptions {
  std::string path;                   // the training file; required
  std::string format = "auto";        // auto, gsm8k, math, chat or prompt
  std::string prompt_key = "prompt";  // prompt format: the question's key (verl's data.prompt_key)
  std::string answer_key = "answer";  // prompt format: the reference's key
  std::string eval_path;              // a held-out file; "" = take eval_fraction of `path`
  double eval_fraction = 0.0;         // share of `path` held out (by a hash of the line number)
  int64_t max_eval = 500;             // at most this many held-out tasks
  int64_t shuffle_buffer = 1024;  // tasks drawn at random from a window this big; 1 = file order
  bool strict = false;            // a bad line is an error instead of a warning

  void visit(ConfigVisitor& v) {
    v.field("path", path, {.required = true});
    v.field("format", format, {.choices = {"auto", "gsm8k", "math", "chat", "prompt"}});
    v.field("prompt_key", prompt_key);
    v.field("answer_key", answer_key);
    v.field("eval_path", eval_path);
    v.field("eval_fraction", eval_fraction, {.min = 0.0, .max = 1.0});
    v.field("max_eval", max_eval, {.min = 0.0});
    v.field("shuffle_buffer", shuffle_buffer, {.min = 1.0});
    v.field("strict", strict);
  }
};

// The content of the last \boxed{...} in `text`, braces matched; "" if none.
// (rewards/answer_extraction.h does the same for completions.)
std::string last_boxed_content(const std::string& text) {
  size_t at = text.rfind("\\boxed{");
  while (at != std::string::npos) {
    int depth = 0;
    for (size_t i = at + 6; i < text.size(); ++i) {
      if (text[i] == '{') ++depth;
      if (text[i] == '}' && --depth == 0) return text.substr(at + 7, i - at - 7);
    }
    at = at == 0 ? std::string::npos : text.rfind("\\boxed{", at - 1);
  }
  return "";
}

std::string string_field(const nlohmann::json& line, const std::string& key) {
  auto it = line.find(key);
  if (it == line.end()) throw_data_error("no \"" + key + "\" key");
  if (!it->is_string()) throw_data_error("\"" + key + "\" is not a string");
  return it->get<std::string>();
}

// bool: whether the line is held out, from a fixed hash of its number.
bool held_out(int64_t line_number, double fraction) {
  uint64_t h = static_cast<uint64_t>(line_number) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  return static_cast<double>(h % 1000000) < fraction * 1000000.0;
}

class JsonlEnvironment : public Environment {
 public:
  JsonlEnvironment(const nlohmann::json& options, const std::string& source)
      : options_(read_config<JsonlOptions>(options, source)) {
    std::ifstream probe(options_.path);
    if (!probe) throw_io_error(source + ": path: cannot open \"" + options_.path + "\"");
    if (!options_.eval_path.empty() && !std::ifstream(options_.eval_path)) {
      throw_io_error(source + ": eval_path: cannot open \"" + options_.eval_path + "\"");
    }
  }

  std::vector<Task> next_tasks(size_t n, std::mt19937_64& rng) override {
    std::vector<Task> tasks;
    while (tasks.size() < n) {
      while (buffer_.size() < static_cast<size_t>(options_.shuffle_buffer)) {
        std::optional<Task> task = read_training_task();
        if (!task) break;
        buffer_.push_back(std::move(*task));
      }
      if (buffer_.empty()) throw_data_error(options_.path + ": no usable training lines");
      size_t pick =
          static_cast<size_t>(uniform_int(rng, 0, static_cast<int64_t>(buffer_.size()) - 1));
      std::swap(buffer_[pick], buffer_.back());
      tasks.push_back(std::move(buffer_.back()));
      buffer_.pop_back();
    }
    return tasks;
  }

  const std::vector<Task>& eval_tasks() override {
    if (eval_ready_) return eval_;
    eval_ready_ = true;
    bool separate = !options_.eval_path.empty();
    if (!separate && options_.eval_fraction <= 0.0) return eval_;
    JsonlReader reader(separate ? options_.eval_path : options_.path);
    auto wanted = [&](int64_t number) {
      return separate || held_out(number, options_.eval_fraction);
    };
    while (static_cast<int64_t>(eval_.size()) < options_.max_eval) {
      std::optional<Task> task = next_task(reader, wanted);
      if (!task) break;
      eval_.push_back(std::move(*task));
    }
    return eval_;
  }

  // Lines skipped so far (malformed or missing keys), over all passes.
  int64_t skipped_lines() const { return skipped_; }

 private:
  // The next training task, reopening the file at its end (a new epoch);
  // nullopt when a whole pass found none.
  std::optional<Task> read_training_task() {
    auto wanted = [&](int64_t number) {
      return !(options_.eval_path.empty() && options_.eval_fraction > 0.0 &&
               held_out(number, options_.eval_fraction));
    };
    for (int attempts = 0; attempts < 2; ++attempts) {
      if (!in_) {
        in_.emplace(options_.path);
        tasks_this_pass_ = 0;
      }
      if (std::optional<Task> task = next_task(*in_, wanted)) {
        ++tasks_this_pass_;
        note_reference(*task);
        return task;
      }
      in_.reset();
      if (tasks_this_pass_ == 0) {
        log_warning() << options_.path << ": a whole pass found no usable line (" << skipped_
                      << " skipped)";
        return std::nullopt;
      }
      ++epoch_;
      if (!reference_checked_ && tasks_without_reference_ > 0) warn_without_reference();
    }
    return std::nullopt;
  }

  // The task of the next line of `reader` that `wanted` accepts; nullopt at the
  // end of the file. Bad lines on the way are skipped (or, with strict, thrown).
  std::optional<Task> next_task(JsonlReader& reader, const std::function<bool(int64_t)>& wanted) {
    const std::string file = reader.path().string();
    while (true) {
      std::optional<JsonlLine> line;
      try {
        line = reader.next(wanted);
      } catch (const Error& e) {
        skip(file, e.what());  // not valid JSON; the message names file and line
        continue;
      }
      if (!line) return std::nullopt;
      try {
        if (!line->value.is_object()) throw_data_error("expected a JSON object");
        return to_task(line->value, file, line->number);
      } catch (const Error& e) {
        skip(file, file + ":" + std::to_string(line->number) + ": " + e.what());
      }
    }
  }

  // Warns once when the first training tasks (up to 100, or a whole short
  // file) all lack a reference answer: rewards that compare with one (math_answer,
  // exact_match, ...) would score every sample "not applicable" and learn nothing.
  void note_reference(const Task& task) {
    if (reference_checked_) return;
    if (!task.reference.empty()) {
      reference_checked_ = true;
      return;
    }
    if (++tasks_without_reference_ >= 100) warn_without_reference();
  }

  void warn_without_reference() {
    reference_checked_ = true;
    log_warning() << options_.path << ": none of the first " << tasks_without_reference_
                  << " tasks has a reference answer (format \"" << options_.format
                  << "\", answer_key \"" << options_.answer_key
                  << "\"); rewards that compare with a reference score them as not applicable. "
                     "Set environment.options.answer_key to the field that holds the answer";
  }

  void skip(const std::string& file, const std::string& message) {
    ++skipped_;
    if (options_.strict) throw_data_error(message);
    if (skipped_ <= 10) log_warning() << message << "; line skipped";
    if (skipped_ == 10) log_warning() << file << ": further skipped lines are counted, not shown";
  }

  Task to_task(const nlohmann::json& line, const std::string& file, int64_t number) const {
    std::string format = options_.format;
    if (format == "auto") {
      format = line.contains("messages")   ? "chat"
               : line.contains("problem")  ? "math"
               : line.contains("question") ? "gsm8k"
                                           : "prompt";
    }
    Task task;
    task.metadata = {{"source", file}, {"line", number}};
    if (format == "gsm8k") {
      task.prompt = string_field(line, "question");
      std::string answer = string_field(line, "answer");
      size_t hashes = answer.rfind("####");
      if (hashes == std::string::npos) throw_data_error("\"answer\" has no \"#### <answer>\" line");
      task.reference = answer.substr(hashes + 4);
      task.reference.erase(0, task.reference.find_first_not_of(" \t"));
      task.reference.erase(task.reference.find_last_not_of(" \t\r\n") + 1);
      task.solution = answer;
    } else if (format == "math") {
      task.prompt = string_field(line, "problem");
      task.solution = string_field(line, "solution");
      task.reference = last_boxed_content(task.solution);
      if (task.reference.empty()) throw_data_error("\"solution\" has no \\boxed{...} answer");
    } else if (format == "chat") {
      auto messages = line.find("messages");
      if (messages == line.end() || !messages->is_array() || messages->empty()) {
        throw_data_error("\"messages\" must be a non-empty list");
      }
      for (const nlohmann::json& m : *messages) {
        if (!m.is_object()) throw_data_error("a message is not an object");
        task.messages.push_back({string_field(m, "role"), string_field(m, "content")});
      }
      if (task.messages.back().role == "assistant") {
        task.solution = task.messages.back().content;
        task.messages.pop_back();
      }
      if (task.messages.empty()) throw_data_error("\"messages\" holds no prompt");
      if (line.contains("answer")) task.reference = string_field(line, "answer");
    } else {
      task.prompt = string_field(line, options_.prompt_key);
      auto answer = line.find(options_.answer_key);
      if (answer != line.end())
        task.reference = answer->is_string() ? answer->get<std::string>() : answer->dump();
    }
    for (const auto& [key, value] : line.items()) {
      if (key == "metadata" && value.is_object()) task.metadata.update(value);
    }
    return task;
  }

  JsonlOptions options_;
  std::optional<JsonlReader> in_;  // the training file's current pass
  int64_t tasks_this_pass_ = 0;
  int64_t epoch_ = 0;
  int64_t skipped_ = 0;
  int64_t tasks_without_reference_ = 0;  // leading training tasks without a reference
  bool reference_checked_ = false;       // a reference was seen, or the warning given
  std::vector<Task> buffer_;
  bool eval_ready_ = false;
  std::vector<Task> eval_;
};

}  // namespace

REGISTER_ENVIRONMENT("jsonl", JsonlEnvironment);

}  // namespace r1kit
