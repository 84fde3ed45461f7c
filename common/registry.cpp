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

namespace detail {
namespace {
std::vector<std::string>* plugin_registration_errors = nullptr;
}  // namespace

bool record_plugin_registration_error(const std::string& message) {
  if (plugin_registration_errors == nullptr) return false;
  plugin_registration_errors->push_back(message);
  return true;
}

void collect_plugin_registration_errors(std::vector<std::string>* errors) {
  plugin_registration_errors = errors;
}
}  // namespace detail

void throw_duplicate_name(const std::string& kind, const std::string& name) {
  if (name.empty()) throw_config_error("a " + kind + " cannot be registered without a name");
  throw_config_error(kind + " \"" + name + "\" is registered twice");
}

}  // namespace r1kit
