// A progress bar for long loops. On a terminal it redraws one line in place;
// when stderr is not a terminal (CI, a pipe) it prints a plain line at most
// every `plain_interval_seconds` and at the end. Not thread-safe: one owner.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace r1kit {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, double plain_interval_seconds = 10.0);
  ~ProgressBar();

  // Moves to `done` of total; `status` is shown after the counts ("loss 2.31").
  void update(int64_t done, const std::string& status = "");
  // Draws the final state and ends the line. Called by the destructor.
  void finish();

 private:
  void draw(bool final_line);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::string status_;
  bool terminal_;
  bool finished_ = false;
  double plain_interval_seconds_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace r1kit
