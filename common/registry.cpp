#include "common/registry.h"

#include "common/config.h"
#include "common/error.h"

namespace r1kit {

std::string unknown_name_message(const std::string& kind, const std::string& name,
                                 const std::vector<std::string>& known) {
  std::string message = "unknown " + kind + " \"" + name + "\"";
  const std::string guess = did_you_mean(name, known);
  if (!guess.empty()) message += " (did you mean \"" + guess + "\"?)";
  message += "; known: ";
  if (known.empty()) message += "none";
  for (size_t i = 0; i < known.size(); ++i) message += (i ? ", " : "") + known[i];
  return message;
}

void throw_unknown_name(const std::string& kind, const std::string& name,
                        const std::vector<std::string>& known, const std::string& context) {
  throw_config_error((context.empty() ? "" : context + ": ") +
                     unknown_name_message(kind, name, known));
}

void throw_duplicate_name(const std::string& kind, const std::string& name) {
  if (name.empty()) throw_config_error("a " + kind + " cannot be registered without a name");
  throw_config_error(kind + " \"" + name + "\" is registered twice");
}

}  // namespace r1kit
