#include "environments/prompt_template.h"

namespace r1kit {

Registry<PromptTemplateFactory>& prompt_template_registry() {
  static Registry<PromptTemplateFactory> registry("prompt template");
  return registry;
}

std::vector<std::string> registered_prompt_templates() {
  return prompt_template_registry().names();
}

std::unique_ptr<PromptTemplate> make_prompt_template(const std::string& name,
                                                     const std::string& system_prompt,
                                                     const std::string& source) {
  return prompt_template_registry().get(name, source)(system_prompt);
}

}  // namespace r1kit
