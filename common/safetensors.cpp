#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"

namespace r1kit {
namespace {

using json = nlohmann::json;

struct DtypeName {
  const char* name;
  at::ScalarType dtype;
};

// The format's dtypes that torch can hold; the order is the writer's sort
// order (wider first) so every tensor's data stays aligned.
constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble},
    {"I64", at::kLong},
    {"U64", at::kUInt64},
    {"F32", at::kFloat},
    {"I32", at::kInt},
    {"U32", at::kUInt32},
    {"F16", at::kHalf},
    {"BF16", at::kBFloat16},
    {"I16", at::kShort},
    {"U16", at::kUInt16},
    {"F8_E4M3", at::kFloat8_e4m3fn},
    {"F8_E5M2", at::kFloat8_e5m2},
    {"I8", at::kChar},
    {"U8", at::kByte},
    {"BOOL", at::kBool},
};

int dtype_rank(at::ScalarType dtype) {
  for (size_t i = 0; i < std::size(kDtypes); ++i) {
    if (kDtypes[i].dtype == dtype) return static_cast<int>(i);
  }
  return static_cast<int>(std::size(kDtypes));
}

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& message) {
  throw_data_error(path.string() + ": invalid safetensors file: " + message);
}

// An open file descriptor that closes itself.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// A read-only private mapping shared by all tensors of one file.
struct Mapping {
  void* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data != nullptr && data != MAP_FAILED) ::munmap(data, size);
  }
};

uint64_t read_le_u64(const unsigned char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// Parses and validates the header text against a data section of `data_bytes`.
std::map<std::string, SafetensorsEntry> parse_header(const std::filesystem::path& path,
                                                     const std::string& text, uint64_t data_bytes,
                                                     std::map<std::string, std::string>* metadata) {
  if (text.empty() || text[0] != '{') fail(path, "the header does not start with '{'");
  // nlohmann keeps the last of duplicate keys silently; the reference rejects them.
  std::set<std::string> top_keys;
  std::string duplicate;
  json header;
  try {
    header = json::parse(text, [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key) {
        const std::string key = parsed.get<std::string>();
        if (!top_keys.insert(key).second && duplicate.empty()) duplicate = key;
      }
      return true;
    });
  } catch (const json::exception& e) {
    fail(path, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail(path, "tensor '" + duplicate + "' appears twice in the header");
  if (!header.is_object()) fail(path, "the header is not a JSON object");

  std::map<std::string, SafetensorsEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(path, "__metadata__ is not an object of strings");
      for (const auto& [key, text_value] : value.items()) {
        if (!text_value.is_string()) fail(path, "__metadata__." + key + " is not a string");
        if (metadata != nullptr) (*metadata)[key] = text_value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!value.is_object()) fail(path, where + "entry is not an object");
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
      if (!value.contains(key)) fail(path, where + "missing \"" + key + "\"");
    }
    for (const auto& [key, unused] : value.items()) {
      if (key != "dtype" && key != "shape" && key != "data_offsets")
        fail(path, where + "unknown key \"" + key + "\"");
    }
    SafetensorsEntry entry;
    if (!value["dtype"].is_string()) fail(path, where + "dtype is not a string");
    try {
      entry.dtype = safetensors_dtype_from_name(value["dtype"].get<std::string>());
    } catch (const Error& e) {
      fail(path, where + e.what());
    }
    const json& shape = value["shape"];
    if (!shape.is_array()) fail(path, where + "shape is not an array");
    uint64_t elements = 1;
    for (const json& dim : shape) {
      if (!dim.is_number_unsigned())
        fail(path, where + "shape " + shape.dump() + " has a non-integer or negative size");
      const uint64_t size = dim.get<uint64_t>();
      if (size > (uint64_t{1} << 62) || (size != 0 && elements > (uint64_t{1} << 62) / size)) {
        fail(path, where + "shape " + shape.dump() + " is too large");
      }
      elements *= size;
      entry.shape.push_back(static_cast<int64_t>(size));
    }
    const json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      fail(path, where + "data_offsets is not a pair of non-negative integers: " + offsets.dump());
    }
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    if (entry.end < entry.begin)
      fail(path, where + "data_offsets " + offsets.dump() + " end before they begin");
    if (entry.end > data_bytes) {
      fail(path, where + "data_offsets " + offsets.dump() +
                     " reach past the end of the file (data section is " +
                     std::to_string(data_bytes) + " bytes; truncated?)");
    }
    const uint64_t expected = elements * c10::elementSize(entry.dtype);
    if (entry.end - entry.begin != expected) {
      fail(path, where + "shape " + shape.dump() + " of " + value["dtype"].get<std::string>() +
                     " needs " + std::to_string(expected) + " bytes but data_offsets " +
                     offsets.dump() + " hold " + std::to_string(entry.end - entry.begin));
    }
    entries.emplace(name, std::move(entry));
  }

  // Byte ranges must tile the data section exactly: no overlap, no gap.
  std::vector<std::pair<const std::string*, const SafetensorsEntry*>> by_offset;
  for (const auto& [name, entry] : entries) by_offset.emplace_back(&name, &entry);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->begin, a.second->end) < std::tie(b.second->begin, b.second->end);
  });
  uint64_t cursor = 0;
  const std::string* previous = nullptr;
  for (const auto& [name, entry] : by_offset) {
    if (entry->begin < cursor) {
      fail(path, "tensor '" + *name + "' overlaps tensor '" + *previous + "' (bytes " +
                     std::to_string(entry->begin) + " < " + std::to_string(cursor) + ")");
    }
    if (entry->begin > cursor) {
      fail(path, "tensor '" + *name + "' leaves a gap of " + std::to_string(entry->begin - cursor) +
                     " bytes before it in the data section");
    }
    cursor = entry->end;
    previous = name;
  }
  if (cursor != data_bytes) {
    fail(path, "the data section has " + std::to_string(data_bytes - cursor) +
                   " bytes that no tensor covers (file is " + std::to_string(data_bytes) +
                   " data bytes)");
  }
  return entries;
}

// Opens `path`, reads the 8-byte size and the header; returns entries and the
// data section's file offset.
std::map<std::string, SafetensorsEntry> open_and_parse(
    const std::filesystem::path& path, FileDescriptor& file, uint64_t& file_size,
    uint64_t& data_start, std::map<std::string, std::string>* metadata) {
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) throw_io_error(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(file.fd, &info) != 0)
    throw_io_error(path.string() + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) throw_io_error(path.string() + ": not a regular file");
  file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8)
    fail(path,
         "the file has " + std::to_string(file_size) + " bytes, fewer than the 8-byte header size");
  unsigned char size_bytes[8];
  if (::pread(file.fd, size_bytes, 8, 0) != 8)
    throw_io_error(path.string() + ": cannot read the header size");
  const uint64_t header_bytes = read_le_u64(size_bytes);
  if (header_bytes > kSafetensorsMaxHeaderBytes) {
    fail(path, "header size " + std::to_string(header_bytes) + " exceeds the limit of " +
                   std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  }
  if (header_bytes > file_size - 8) {
    fail(path, "header size " + std::to_string(header_bytes) +
                   " is larger than the rest of the file (" + std::to_string(file_size - 8) +
                   " bytes; truncated?)");
  }
  std::string text(header_bytes, '\0');
  if (header_bytes > 0 &&
      ::pread(file.fd, text.data(), header_bytes, 8) != static_cast<ssize_t>(header_bytes)) {
    throw_io_error(path.string() + ": cannot read the header");
  }
  data_start = 8 + header_bytes;
  return parse_header(path, text, file_size - data_start, metadata);
}

}  // namespace

std::string safetensors_dtype_name(at::ScalarType dtype) {
  for (const auto& entry : kDtypes) {
    if (entry.dtype == dtype) return entry.name;
  }
  throw_data_error(std::string("safetensors has no dtype for ") + c10::toString(dtype));
}

at::ScalarType safetensors_dtype_from_name(const std::string& name) {
  for (const auto& entry : kDtypes) {
    if (name == entry.name) return entry.dtype;
  }
  std::string known;
  for (const auto& entry : kDtypes) known += std::string(known.empty() ? "" : ", ") + entry.name;
  throw_data_error("unknown dtype \"" + name + "\" (known: " + known + ")");
}

std::map<std::string, SafetensorsEntry> read_safetensors_header(
    const std::filesystem::path& path, std::map<std::string, std::string>* metadata) {
  FileDescriptor file;
  uint64_t file_size = 0, data_start = 0;
  return open_and_parse(path, file, file_size, data_start, metadata);
}

SafetensorsContents read_safetensors(const std::filesystem::path& path) {
  SafetensorsContents contents;
  FileDescriptor file;
  uint64_t file_size = 0, data_start = 0;
  const auto entries = open_and_parse(path, file, file_size, data_start, &contents.metadata);

  auto mapping = std::make_shared<Mapping>();
  mapping->size = file_size;
  // PROT_WRITE with MAP_PRIVATE: a caller that writes into a tensor gets its own
  // copy of the page instead of a crash, and the file is never modified.
  mapping->data = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.fd, 0);
  if (mapping->data == MAP_FAILED)
    throw_io_error(path.string() + ": cannot map: " + std::strerror(errno));
  auto* base = static_cast<unsigned char*>(mapping->data) + data_start;
  for (const auto& [name, entry] : entries) {
    const auto options = at::TensorOptions().dtype(entry.dtype);
    void* data = base + entry.begin;
    const size_t element_size = c10::elementSize(entry.dtype);
    if (reinterpret_cast<uintptr_t>(data) % element_size != 0) {
      // A foreign writer may leave data unaligned; aligned copies are safe for every kernel.
      at::Tensor aligned = at::empty(entry.shape, options);
      std::memcpy(aligned.data_ptr(), data, entry.end - entry.begin);
      contents.tensors.emplace(name, std::move(aligned));
      continue;
    }
    contents.tensors.emplace(name, at::from_blob(
                                       data, entry.shape, [mapping](void*) {}, options));
  }
  return contents;
}

void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, at::Tensor>> ordered;
  for (const auto& [name, tensor] : tensors) {
    TORCH_CHECK(tensor.defined(), "write_safetensors: tensor '", name, "' is undefined");
    if (name == "__metadata__")
      throw_data_error(path.string() + ": '__metadata__' is reserved, not a tensor name");
    safetensors_dtype_name(tensor.scalar_type());  // throws for dtypes the format lacks
    ordered.emplace_back(name, tensor.to(at::kCPU).contiguous());
  }
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return dtype_rank(a.second.scalar_type()) < dtype_rank(b.second.scalar_type());
  });

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : ordered) {
    const uint64_t bytes = tensor.numel() * tensor.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(tensor.scalar_type())},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw_io_error(temporary.string() + ": cannot open for writing");
    unsigned char size_bytes[8];
    uint64_t size = text.size();
    for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<unsigned char>(size >> (8 * i));
    out.write(reinterpret_cast<const char*>(size_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, tensor] : ordered) {
      out.write(static_cast<const char*>(tensor.data_ptr()),
                tensor.numel() * tensor.element_size());
    }
    out.flush();
    if (!out) throw_io_error(temporary.string() + ": write failed (disk full?)");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error)
    throw_io_error(path.string() + ": cannot rename from " + temporary.string() + ": " +
                   error.message());
}

}  // namespace r1kit
