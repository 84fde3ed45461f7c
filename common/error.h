// The one error type of r1kit: a user-facing message with its context (file,
// key path, line, rank) and a kind that the CLI maps to an exit code. Thrown
// for user mistakes and I/O failures; broken invariants use TORCH_CHECK instead.
#pragma once

#include <stdexcept>
#include <string>

namespace r1kit {

// What went wrong, which decides the command's exit code.
enum class ErrorKind {
  kUsage = 2,    // bad command line: unknown subcommand, option or value
  kConfig = 3,   // recipe: unknown key, wrong type, out of range, missing
  kData = 4,     // input data: malformed JSONL line, bad checkpoint, bad prompt
  kIo = 5,       // the file system or the network
  kRuntime = 1,  // anything else that stops a run (NaN streak, dead rank)
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::kRuntime)
      : std::runtime_error(message), kind_(kind) {}

  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

// Shorthands that read well at the throw site.
[[noreturn]] void throw_usage_error(const std::string& message);
[[noreturn]] void throw_config_error(const std::string& message);
[[noreturn]] void throw_data_error(const std::string& message);
[[noreturn]] void throw_io_error(const std::string& message);

// Returns `e`'s message prefixed with `context` ("file.jsonl:12: ..."), same kind.
Error with_context(const Error& e, const std::string& context);

}  // namespace r1kit
