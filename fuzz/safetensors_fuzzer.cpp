// Fuzzes the safetensors reader (common/safetensors.h): the input is a whole
// file (8-byte header size, JSON header, data). Every tensor it accepts is read
// end to end, so a byte range the validation let through that reaches past the
// mapping faults here.
#include <cstring>
#include <vector>

#include "common/safetensors.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  const auto path = fuzz::write_temp_file("model.safetensors", fuzz::as_text(data, size));
  fuzz::accept_or_reject([&] {
    std::map<std::string, std::string> metadata;
    const auto header = read_safetensors_header(path, &metadata);
    SafetensorsContents contents = read_safetensors(path);
    if (contents.tensors.size() != header.size()) std::abort();
    std::vector<unsigned char> copy;
    for (const auto& [name, tensor] : contents.tensors) {
      const auto& entry = header.at(name);
      const size_t bytes = static_cast<size_t>(tensor.numel()) * tensor.element_size();
      if (bytes != entry.end - entry.begin) std::abort();
      copy.resize(bytes);
      if (bytes > 0) std::memcpy(copy.data(), tensor.data_ptr(), bytes);
    }
  });
  return 0;
}
