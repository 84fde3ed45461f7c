#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

namespace r1kit {

ProgressBar::ProgressBar(std::string label, int64_t total, double plain_interval_seconds)
    : label_(std::move(label)),
      total_(total),
      terminal_(isatty(STDERR_FILENO) != 0),
      plain_interval_seconds_(plain_interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& status) {
  done_ = done;
  status_ = status;
  auto now = std::chrono::steady_clock::now();
  double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (terminal_ ? since_draw >= 0.1 : since_draw >= plain_interval_seconds_) {
    draw(false);
    last_draw_ = now;
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 0.0;
  double eta = fraction > 0 ? elapsed * (1.0 - fraction) / fraction : 0.0;
  char counts[160];
  std::snprintf(counts, sizeof counts, "%lld/%lld %5.1f%% %.0fs<%.0fs",
                static_cast<long long>(done_), static_cast<long long>(total_), 100.0 * fraction,
                elapsed, eta);
  std::string line = label_ + " ";
  if (terminal_) {
    constexpr int kWidth = 24;
    int filled = static_cast<int>(fraction * kWidth);
    line = "\r" + line + "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
  }
  line += counts;
  if (!status_.empty()) line += "  " + status_;
  if (terminal_) line += "\x1b[K";
  if (final_line || !terminal_) line += "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace r1kit
