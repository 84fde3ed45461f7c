#include "data/prepare.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <unordered_set>

#include "common/error.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/run_dir.h"
#include "common/thread_pool.h"
#include "data/text_cleaning.h"
#include "policy/tokenizer.h"

namespace r1kit {

void DataPrepareConfig::visit(ConfigVisitor& v) {
  v.field("inputs", inputs, {.required = true});
  v.field("output_dir", output_dir, {.required = true});
  v.field("tokenizer", tokenizer, {.required = true});
  v.field("format", format, {.choices = {"auto", "text", "jsonl"}});
  v.field("text_split", text_split, {.choices = {"blank_line", "line", "file"}});
  v.field("text_field", text_field);
  v.field("min_chars", min_chars, {.min = 0.0});
  v.field("max_chars", max_chars, {.min = 0.0});
  v.field("normalize", normalize);
  v.field("deduplicate", deduplicate);
  v.field("add_special_tokens", add_special_tokens);
  v.field("max_shard_tokens", max_shard_tokens, {.min = 1.0});
  v.field("num_threads", num_threads, {.min = 0.0});
  v.field("max_examples", max_examples, {.min = 0.0});
}

namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkDocuments = 4096;
constexpr size_t kChunkBytes = 16u << 20;

// A document as read, before cleaning.
struct RawDocument {
  std::string text;  // the block, line or file; for jsonl the raw line
  size_t file = 0;   // index into the input files
  int64_t line = 0;  // 1-based line where it starts
  bool jsonl = false;
};

// A document after cleaning: either kept text with its hash or a drop reason.
struct CleanDocument {
  std::string text;
  ContentHash hash;
  std::string reason;  // "" = passes the filters
  std::string why;     // detail for invalid_json
};

// Input files in order: a folder contributes its regular files, sorted by name.
std::vector<fs::path> list_inputs(const std::vector<std::string>& inputs,
                                  const std::string& source) {
  std::vector<fs::path> files;
  for (const auto& input : inputs) {
    fs::path path(input);
    if (fs::is_directory(path)) {
      std::vector<fs::path> inside;
      for (const auto& entry : fs::directory_iterator(path)) {
        if (entry.is_regular_file()) inside.push_back(entry.path());
      }
      std::sort(inside.begin(), inside.end());
      files.insert(files.end(), inside.begin(), inside.end());
    } else if (fs::is_regular_file(path)) {
      files.push_back(path);
    } else {
      throw_io_error(source + ": inputs: \"" + input + "\" is not a file or folder");
    }
  }
  if (files.empty()) throw_config_error(source + ": inputs: no input files");
  return files;
}

bool is_jsonl(const fs::path& file, const std::string& format) {
  if (format != "auto") return format == "jsonl";
  std::string extension = file.extension().string();
  return extension == ".jsonl" || extension == ".json";
}

// Streams documents from the input files, a chunk at a time.
class DocumentReader {
 public:
  DocumentReader(const std::vector<fs::path>& files, const DataPrepareConfig& config)
      : files_(files), config_(config) {}

  // Fills `out` with the next documents; false when the inputs are exhausted.
  bool next_chunk(std::vector<RawDocument>& out) {
    out.clear();
    size_t bytes = 0;
    while (out.size() < kChunkDocuments && bytes < kChunkBytes) {
      if (!in_.is_open()) {
        if (next_file_ >= files_.size()) break;
        open_next();
      }
      RawDocument document;
      if (!read_document(document)) {
        in_.close();
        continue;
      }
      bytes += document.text.size();
      out.push_back(std::move(document));
    }
    return !out.empty();
  }

  int64_t bytes_read() const { return bytes_read_; }

 private:
  void open_next() {
    current_ = next_file_++;
    in_.open(files_[current_], std::ios::binary);
    if (!in_) throw_io_error(files_[current_].string() + ": cannot open");
    line_ = 0;
    jsonl_ = is_jsonl(files_[current_], config_.format);
  }

  bool read_line(std::string& line) {
    if (!std::getline(in_, line)) return false;
    ++line_;
    bytes_read_ += static_cast<int64_t>(line.size()) + 1;
    return true;
  }

  static bool blank(const std::string& line) {
    return std::all_of(line.begin(), line.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
  }

  // Reads the next document of the open file; false at its end.
  bool read_document(RawDocument& document) {
    document.file = current_;
    document.jsonl = jsonl_;
    std::string line;
    if (jsonl_ || config_.text_split == "line") {
      while (read_line(line)) {
        if (blank(line)) continue;  // an empty line separates, it is not a document
        document.text = std::move(line);
        document.line = line_;
        return true;
      }
      return false;
    }
    bool whole_file = config_.text_split == "file";
    bool started = false;
    while (read_line(line)) {
      if (!whole_file && blank(line)) {
        if (started) return true;
        continue;
      }
      if (!started) document.line = line_;
      if (started) document.text += '\n';
      document.text += line;
      started = true;
    }
    return started;
  }

  const std::vector<fs::path>& files_;
  const DataPrepareConfig& config_;
  std::ifstream in_;
  size_t next_file_ = 0;
  size_t current_ = 0;
  int64_t line_ = 0;
  bool jsonl_ = false;
  int64_t bytes_read_ = 0;
};

CleanDocument clean_document(const RawDocument& raw, const DataPrepareConfig& config) {
  CleanDocument out;
  std::string_view text = raw.text;
  nlohmann::json parsed;
  if (raw.jsonl) {
    parsed = nlohmann::json::parse(raw.text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      out.reason = "invalid_json";
      out.why = "not valid JSON";
      return out;
    }
    auto field = parsed.is_object() ? parsed.find(config.text_field) : parsed.end();
    if (!parsed.is_object() || field == parsed.end() || !field->is_string()) {
      out.reason = "invalid_json";
      out.why = !parsed.is_object()     ? "not a JSON object"
                : field == parsed.end() ? "no \"" + config.text_field + "\" key"
                                        : "\"" + config.text_field + "\" is not a string";
      return out;
    }
    text = field->get_ref<const std::string&>();
  }
  out.text = clean_text(text, config.normalize);
  int64_t length = utf8_length(out.text);
  if (length == 0) {
    out.reason = "empty";
  } else if (length < config.min_chars) {
    out.reason = "too_short";
  } else if (config.max_chars > 0 && length > config.max_chars) {
    out.reason = "too_long";
  } else if (config.deduplicate) {
    out.hash = content_hash(out.text);
  }
  return out;
}

// Runs fn(i) for i in [0, n) on the pool in contiguous slices; rethrows the first error.
template <class Fn>
void parallel_for(ThreadPool& pool, size_t n, Fn fn) {
  size_t slices = std::min(n, pool.size() * 4);
  std::vector<std::future<void>> done;
  for (size_t s = 0; s < slices; ++s) {
    size_t begin = n * s / slices, end = n * (s + 1) / slices;
    done.push_back(pool.submit([&fn, begin, end] {
      for (size_t i = begin; i < end; ++i) fn(i);
    }));
  }
  for (auto& future : done) future.get();
}

void remove_old_output(const fs::path& folder) {
  if (!fs::is_directory(folder)) return;
  for (const auto& entry : fs::directory_iterator(folder)) {
    std::string name = entry.path().filename().string();
    if (name == "manifest.json" || name.rfind("shard-", 0) == 0) fs::remove(entry.path());
  }
}

}  // namespace

DataPrepareReport prepare_corpus(const DataPrepareConfig& config, const std::string& source) {
  if (config.max_chars > 0 && config.max_chars < config.min_chars) {
    throw_config_error(source + ": max_chars (" + std::to_string(config.max_chars) +
                       ") is below min_chars (" + std::to_string(config.min_chars) + ")");
  }
  std::vector<fs::path> files = list_inputs(config.inputs, source);
  std::shared_ptr<Tokenizer> tokenizer = load_tokenizer(config.tokenizer);
  if (!tokenizer->eos_id()) {
    throw_config_error(
        source + ": tokenizer: \"" + config.tokenizer +
        "\" has no eos token to separate documents (set eos_token in tokenizer_config.json)");
  }
  const int64_t eos = *tokenizer->eos_id();

  fs::path output(config.output_dir);
  remove_old_output(output);
  ShardWriter writer(output, tokenizer->vocab_size(), config.max_shard_tokens);

  DataPrepareReport report;
  for (const auto& reason : drop_reasons()) {
    report.dropped[reason] = 0;
    report.examples[reason] = {};
  }
  auto drop = [&](const std::string& reason, const RawDocument& raw, const std::string& why) {
    ++report.dropped[reason];
    auto& examples = report.examples[reason];
    if (static_cast<int64_t>(examples.size()) < config.max_examples) {
      std::string where = files[raw.file].string() + ":" + std::to_string(raw.line);
      examples.push_back(why.empty() ? where : where + ": " + why);
    }
  };

  int64_t total_bytes = 0;
  for (const auto& file : files) total_bytes += static_cast<int64_t>(fs::file_size(file));
  ProgressBar progress("prepare", std::max<int64_t>(total_bytes, 1));
  ThreadPool pool(static_cast<size_t>(config.num_threads));
  DocumentReader reader(files, config);
  std::unordered_set<ContentHash, ContentHashOf> seen;

  std::vector<RawDocument> raw;
  std::vector<CleanDocument> clean;
  std::vector<size_t> kept;
  std::vector<std::vector<int64_t>> ids;
  while (reader.next_chunk(raw)) {
    clean.assign(raw.size(), {});
    parallel_for(pool, raw.size(), [&](size_t i) { clean[i] = clean_document(raw[i], config); });
    // Filters and de-duplication run in input order: the first occurrence wins.
    kept.clear();
    for (size_t i = 0; i < raw.size(); ++i) {
      ++report.documents_read;
      if (!clean[i].reason.empty()) {
        drop(clean[i].reason, raw[i], clean[i].why);
      } else if (config.deduplicate && !seen.insert(clean[i].hash).second) {
        drop("duplicate", raw[i], "");
      } else {
        kept.push_back(i);
      }
    }
    ids.assign(kept.size(), {});
    parallel_for(pool, kept.size(), [&](size_t k) {
      ids[k] = tokenizer->encode(clean[kept[k]].text, config.add_special_tokens);
      ids[k].push_back(eos);
    });
    for (const auto& document : ids) {
      writer.add_document(document);
      report.tokens += static_cast<int64_t>(document.size());
    }
    report.documents_kept += static_cast<int64_t>(kept.size());
    progress.update(reader.bytes_read(), std::to_string(report.documents_kept) + " docs, " +
                                             std::to_string(report.tokens) + " tokens");
  }
  progress.update(std::max<int64_t>(total_bytes, 1));
  progress.finish();
  report.shards = writer.finish();

  nlohmann::json manifest =
      shard_manifest(writer.dtype(), tokenizer->vocab_size(), eos, report.shards);
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& file : files) inputs.push_back(file.string());
  DataPrepareConfig resolved = config;
  manifest["inputs"] = inputs;
  manifest["config"] = write_config(resolved);
  manifest["documents_read"] = report.documents_read;
  manifest["documents_kept"] = report.documents_kept;
  manifest["tokens"] = report.tokens;
  manifest["dropped"] = report.dropped;
  manifest["dropped_examples"] = report.examples;
  write_file_atomically(output / "manifest.json", manifest.dump(2) + "\n");
  report.manifest = std::move(manifest);

  log_info() << "prepare: kept " << report.documents_kept << " of " << report.documents_read
             << " documents, " << report.tokens << " tokens in " << report.shards.size()
             << " shard(s) -> " << output.string();
  return report;
}

}  // namespace r1kit
