#include "common/registry.h"

#include "common/config.h"
#include "common/error.h"

namespace r1kit {

void throw_unknown_name(const std::string& kind, const std::string& name,
                        const std::vector<std::string>& known, const std::string& context) {
  std::string message = context.empty() ? "" : context + ": ";
  message += "unknown " + kind + " \"" + name + "\"";
  const std::string guess = did_you_mean(name, known);
  if (!guess.empty()) message += " (did you mean \"" + guess + "\"?)";
  message += "; known: ";
  if (known.empty()) message += "none";
  for (size_t i = 0; i < known.size(); ++i) message += (i ? ", " : "") + known[i];
  throw_config_error(message);
}

void throw_duplicate_name(const std::string& kind, const std::string& name) {
  if (name.empty()) throw_config_error("a " + kind + " cannot be registered without a name");
  throw_config_error(kind + " \"" + name + "\" is registered twice");
}

}  // namespace r1kit
