// The folder of one run: the resolved recipe (config.json), one JSON line of
// metrics per step (metrics.jsonl), logged completions (samples.jsonl) and
// checkpoints/. Lines are written whole and at once, so a killed run loses
// nothing; a failed write (a full disk) stops the run with an I/O error and
// leaves no partial line. Written by rank 0 only; not thread-safe.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/append_only_file.h"
#include "common/jsonl.h"  // the run's files are read back with read_jsonl

namespace r1kit {

class RunDir {
 public:
  // Creates `path` (and parents). With `append`, existing metrics and samples
  // files are kept and appended to (resume); otherwise they start empty.
  // Without `writes` (ranks other than 0) nothing is opened or written and the
  // write calls do nothing, so ranks never race on the same files.
  explicit RunDir(std::filesystem::path path, bool append = false, bool writes = true);

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path checkpoints() const { return path_ / "checkpoints"; }

  // Writes config.json (pretty-printed, atomically).
  void write_config(const nlohmann::json& resolved_recipe);
  // Appends one line to metrics.jsonl, with the process's peak memory so far
  // (memory/peak_rss_gb; on CUDA also memory/max_allocated_gb).
  void log_metrics(const nlohmann::json& step_metrics);
  // Appends one line per sample to samples.jsonl.
  void log_samples(const std::vector<nlohmann::json>& samples);

 private:
  std::filesystem::path path_;
  bool writes_;
  AppendOnlyFile metrics_;
  AppendOnlyFile samples_;
};

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace r1kit
