// Reads and writes the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header size, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw bytes. Reading memory-maps the file; the
// returned tensors view the mapping and keep it alive. Stateless functions, safe
// to call from many threads.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace r1kit {

// The tensors of one file, by name, plus its optional "__metadata__" strings.
struct SafetensorsContents {
  std::map<std::string, at::Tensor> tensors;  // CPU tensors viewing the mapping
  std::map<std::string, std::string> metadata;
};

// One tensor's entry in a header, without its data.
struct SafetensorsEntry {
  at::ScalarType dtype = at::kFloat;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section, end exclusive
  uint64_t end = 0;
};

// Upper bound on the JSON header, as in the reference implementation (100 MB).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Maps `path` and returns every tensor. The header is fully validated (size,
// JSON, dtype names, shape x element size == byte range, ranges inside the file,
// no overlaps or gaps); any problem throws Error(kData) naming the file and the
// tensor. The tensors are copy-on-write: writing to one never touches the file.
SafetensorsContents read_safetensors(const std::filesystem::path& path);

// Reads and validates only the header of `path` (name -> entry), no mapping.
std::map<std::string, SafetensorsEntry> read_safetensors_header(
    const std::filesystem::path& path, std::map<std::string, std::string>* metadata = nullptr);

// Writes `tensors` (any device, layout or dtype the format has) to `path` through
// a temporary file and a rename. Data is laid out like the reference writer:
// larger dtypes first, then by name, header padded with spaces to 8 bytes.
void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The format's name of a dtype ("F32", "BF16", ...) and back; unknown names throw.
std::string safetensors_dtype_name(at::ScalarType dtype);
at::ScalarType safetensors_dtype_from_name(const std::string& name);

}  // namespace r1kit
