#include "common/error.h"

namespace r1kit {

void throw_usage_error(const std::string& message) { throw Error(message, ErrorKind::kUsage); }
void throw_config_error(const std::string& message) { throw Error(message, ErrorKind::kConfig); }
void throw_data_error(const std::string& message) { throw Error(message, ErrorKind::kData); }
void throw_io_error(const std::string& message) { throw Error(message, ErrorKind::kIo); }

Error with_context(const Error& e, const std::string& context) {
  return Error(context + ": " + e.what(), e.kind());
}

}  // namespace r1kit
