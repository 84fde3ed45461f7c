#include "common/run_dir.h"

#include <fstream>

#include "common/error.h"
#include "common/process_memory.h"

namespace r1kit {

namespace fs = std::filesystem;

RunDir::RunDir(fs::path path, bool append, bool writes) : path_(std::move(path)), writes_(writes) {
  if (!writes_) return;
  std::error_code error;
  fs::create_directories(path_, error);
  if (error) throw_io_error(path_.string() + ": cannot create the run folder: " + error.message());
  metrics_ = AppendOnlyFile(path_ / "metrics.jsonl", /*truncate=*/!append);
  samples_ = AppendOnlyFile(path_ / "samples.jsonl", /*truncate=*/!append);
}

void RunDir::write_config(const nlohmann::json& resolved_recipe) {
  if (!writes_) return;
  write_file_atomically(path_ / "config.json", resolved_recipe.dump(2) + "\n");
}

void RunDir::log_metrics(const nlohmann::json& step_metrics) {
  if (!writes_) return;
  nlohmann::json line = step_metrics;
  if (line.is_object()) add_memory_metrics(line);
  metrics_.append(line.dump() + '\n');
}

void RunDir::log_samples(const std::vector<nlohmann::json>& samples) {
  if (!writes_) return;
  std::string lines;
  for (const auto& sample : samples) lines += sample.dump() + '\n';
  if (!lines.empty()) samples_.append(lines);
}

void write_file_atomically(const fs::path& path, const std::string& text) {
  fs::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw_io_error(temporary.string() + ": cannot open for writing");
    out << text;
    if (!out.flush()) throw_io_error(temporary.string() + ": write failed");
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) throw_io_error(path.string() + ": cannot rename into place: " + error.message());
}

}  // namespace r1kit
