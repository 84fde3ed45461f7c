#include "common/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "common/error.h"

namespace r1kit {
namespace {

LogLevel initial_level() {
  const char* env = std::getenv("R1KIT_LOG_LEVEL");
  if (!env) return LogLevel::kInfo;
  try {
    return parse_log_level(env);
  } catch (const Error&) {
    return LogLevel::kInfo;
  }
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

std::atomic<int> g_rank{-1};

}  // namespace

void set_log_level(LogLevel level) { level_storage() = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(level_storage().load()); }
void set_log_rank(int rank) { g_rank = rank; }

LogLevel parse_log_level(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  throw_usage_error("unknown log level \"" + name + "\"; expected debug, info, warning or error");
}

LogLine::~LogLine() {
  if (level_ < log_level()) return;
  static const char kLetters[] = {'D', 'I', 'W', 'E'};
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char prefix[64];
  int rank = g_rank.load();
  if (rank >= 0) {
    std::snprintf(prefix, sizeof prefix, "[r1kit %02d:%02d:%02d %c rank%d] ", local.tm_hour,
                  local.tm_min, local.tm_sec, kLetters[static_cast<int>(level_)], rank);
  } else {
    std::snprintf(prefix, sizeof prefix, "[r1kit %02d:%02d:%02d %c] ", local.tm_hour, local.tm_min,
                  local.tm_sec, kLetters[static_cast<int>(level_)]);
  }
  std::string line = prefix + stream_.str() + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace r1kit
