// Leveled logging to stderr with a rank prefix: `log_info() << "step " << k;`
// prints "[r1kit 12:03:04 I rank0] step 3" when the line ends. Thread-safe: a
// line is assembled privately and written in one call.
#pragma once

#include <sstream>
#include <string>

namespace r1kit {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below `level` are dropped. Default kInfo, or R1KIT_LOG_LEVEL.
void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warning", "error"; throws a usage error otherwise.
LogLevel parse_log_level(const std::string& name);
// The rank shown in the prefix; -1 (the default) hides it.
void set_log_rank(int rank);

class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  LogLine(const LogLine&) = delete;
  ~LogLine();

  template <class T>
  LogLine& operator<<(const T& value) {
    if (level_ >= log_level()) stream_ << value;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

inline LogLine log_debug() { return LogLine(LogLevel::kDebug); }
inline LogLine log_info() { return LogLine(LogLevel::kInfo); }
inline LogLine log_warning() { return LogLine(LogLevel::kWarning); }
inline LogLine log_error() { return LogLine(LogLevel::kError); }

}  // namespace r1kit
