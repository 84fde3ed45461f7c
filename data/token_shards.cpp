#include "data/token_shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/config.h"
#include "common/error.h"

namespace r1kit {

static_assert(std::endian::native == std::endian::little,
              "token shards are little-endian; add byte swaps");

namespace {

std::string shard_name(size_t index, const char* extension) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05zu.%s", index, extension);
  return name;
}

}  // namespace

std::string token_dtype_for(int64_t vocab_size) {
  return vocab_size <= 65536 ? "uint16" : "uint32";
}

struct ShardWriter::Open {
  std::ofstream tokens;
  std::ofstream index;
  ShardInfo info;
  std::vector<char> buffer;
};

ShardWriter::ShardWriter(std::filesystem::path folder, int64_t vocab_size, int64_t max_shard_tokens)
    : folder_(std::move(folder)),
      vocab_size_(vocab_size),
      max_shard_tokens_(max_shard_tokens),
      dtype_(token_dtype_for(vocab_size)) {
  TORCH_CHECK(max_shard_tokens > 0, "max_shard_tokens must be positive, got ", max_shard_tokens);
  std::filesystem::create_directories(folder_);
}

ShardWriter::~ShardWriter() = default;

void ShardWriter::open_shard() {
  open_ = std::make_unique<Open>();
  open_->info.file = shard_name(shards_.size(), "bin");
  open_->info.index = shard_name(shards_.size(), "idx");
  open_->tokens.open(folder_ / open_->info.file, std::ios::binary | std::ios::trunc);
  open_->index.open(folder_ / open_->info.index, std::ios::binary | std::ios::trunc);
  if (!open_->tokens || !open_->index) throw_io_error("cannot write shards in " + folder_.string());
}

void ShardWriter::close_shard() {
  uint64_t end = static_cast<uint64_t>(open_->info.tokens);
  open_->index.write(reinterpret_cast<const char*>(&end), sizeof(end));
  open_->tokens.close();
  open_->index.close();
  if (!open_->tokens || !open_->index)
    throw_io_error("cannot write shard " + (folder_ / open_->info.file).string());
  shards_.push_back(open_->info);
  open_.reset();
}

void ShardWriter::add_document(const std::vector<int64_t>& ids) {
  auto size = static_cast<int64_t>(ids.size());
  if (open_ && open_->info.tokens > 0 && open_->info.tokens + size > max_shard_tokens_)
    close_shard();
  if (!open_) open_shard();
  uint64_t start = static_cast<uint64_t>(open_->info.tokens);
  open_->index.write(reinterpret_cast<const char*>(&start), sizeof(start));
  size_t width = dtype_ == "uint16" ? 2 : 4;
  open_->buffer.resize(ids.size() * width);
  for (size_t i = 0; i < ids.size(); ++i) {
    TORCH_CHECK(ids[i] >= 0 && ids[i] < vocab_size_, "token id ", ids[i],
                " outside the vocabulary of ", vocab_size_);
    if (width == 2) {
      auto v = static_cast<uint16_t>(ids[i]);
      std::memcpy(open_->buffer.data() + 2 * i, &v, 2);
    } else {
      auto v = static_cast<uint32_t>(ids[i]);
      std::memcpy(open_->buffer.data() + 4 * i, &v, 4);
    }
  }
  open_->tokens.write(open_->buffer.data(), static_cast<std::streamsize>(open_->buffer.size()));
  open_->info.tokens += size;
  open_->info.documents += 1;
}

std::vector<ShardInfo> ShardWriter::finish() {
  if (open_) close_shard();
  return shards_;
}

nlohmann::json shard_manifest(const std::string& dtype, int64_t vocab_size, int64_t eos_id,
                              const std::vector<ShardInfo>& shards) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& shard : shards) {
    list.push_back({{"file", shard.file},
                    {"index", shard.index},
                    {"tokens", shard.tokens},
                    {"documents", shard.documents}});
  }
  return {{"format", kShardFormat}, {"version", kShardFormatVersion},
          {"dtype", dtype},         {"vocab_size", vocab_size},
          {"eos_id", eos_id},       {"shards", list}};
}

std::shared_ptr<const ShardSet> ShardSet::open(const std::filesystem::path& folder) {
  std::filesystem::path manifest_path = folder / "manifest.json";
  if (!std::filesystem::exists(manifest_path)) {
    throw_io_error(manifest_path.string() +
                   ": not found (prepare the corpus with `r1kit data prepare`)");
  }
  nlohmann::json manifest = read_json_file(manifest_path.string());
  std::shared_ptr<ShardSet> set(new ShardSet());
  try {
    if (manifest.value("format", "") != kShardFormat)
      throw_data_error("not a token shard manifest (format)");
    if (manifest.at("version").get<int64_t>() != kShardFormatVersion)
      throw_data_error("unsupported version");
    std::string dtype = manifest.at("dtype").get<std::string>();
    if (dtype != "uint16" && dtype != "uint32")
      throw_data_error("dtype must be uint16 or uint32, got " + dtype);
    set->bytes_per_token_ = dtype == "uint16" ? 2 : 4;
    set->vocab_size_ = manifest.at("vocab_size").get<int64_t>();
    set->eos_id_ = manifest.at("eos_id").get<int64_t>();
    for (const auto& shard : manifest.at("shards")) {
      Mapped mapped;
      mapped.path = folder / shard.at("file").get<std::string>();
      mapped.index_path = folder / shard.at("index").get<std::string>();
      mapped.tokens = shard.at("tokens").get<int64_t>();
      set->shards_.push_back(mapped);
    }
  } catch (const nlohmann::json::exception& e) {
    throw_data_error(manifest_path.string() + ": " + e.what());
  } catch (const Error& e) {
    throw with_context(e, manifest_path.string());
  }
  for (auto& mapped : set->shards_) {
    int fd = ::open(mapped.path.c_str(), O_RDONLY);
    if (fd < 0) throw_io_error(mapped.path.string() + ": cannot open");
    struct stat st {};
    ::fstat(fd, &st);
    mapped.bytes = static_cast<size_t>(st.st_size);
    if (mapped.bytes != static_cast<size_t>(mapped.tokens) * set->bytes_per_token_) {
      ::close(fd);
      throw_data_error(mapped.path.string() + ": " + std::to_string(mapped.bytes) +
                       " bytes, the manifest says " + std::to_string(mapped.tokens) +
                       " tokens of " + std::to_string(set->bytes_per_token_) + " bytes");
    }
    if (mapped.bytes > 0) {
      void* data = ::mmap(nullptr, mapped.bytes, PROT_READ, MAP_SHARED, fd, 0);
      if (data == MAP_FAILED) {
        ::close(fd);
        throw_io_error(mapped.path.string() + ": cannot map");
      }
      mapped.data = data;
    }
    ::close(fd);
  }
  return set;
}

ShardSet::~ShardSet() {
  for (auto& mapped : shards_) {
    if (mapped.data) ::munmap(const_cast<void*>(mapped.data), mapped.bytes);
  }
}

int64_t ShardSet::total_tokens() const {
  int64_t total = 0;
  for (const auto& mapped : shards_) total += mapped.tokens;
  return total;
}

int64_t ShardSet::token(size_t shard, int64_t i) const {
  int64_t value;
  read(shard, i, 1, &value);
  return value;
}

void ShardSet::read(size_t shard, int64_t begin, int64_t count, int64_t* out) const {
  TORCH_CHECK(shard < shards_.size(), "shard ", shard, " of ", shards_.size());
  const Mapped& mapped = shards_[shard];
  TORCH_CHECK(begin >= 0 && count >= 0 && begin + count <= mapped.tokens, "tokens [", begin, ", ",
              begin + count, ") outside shard ", shard, " of ", mapped.tokens, " tokens");
  if (bytes_per_token_ == 2) {
    const auto* data = static_cast<const uint16_t*>(mapped.data) + begin;
    for (int64_t i = 0; i < count; ++i) out[i] = data[i];
  } else {
    const auto* data = static_cast<const uint32_t*>(mapped.data) + begin;
    for (int64_t i = 0; i < count; ++i) out[i] = data[i];
  }
}

std::vector<int64_t> ShardSet::document_offsets(size_t shard) const {
  TORCH_CHECK(shard < shards_.size(), "shard ", shard, " of ", shards_.size());
  std::ifstream in(shards_[shard].index_path, std::ios::binary | std::ios::ate);
  if (!in) throw_io_error(shards_[shard].index_path.string() + ": cannot open");
  auto bytes = static_cast<size_t>(in.tellg());
  std::vector<uint64_t> raw(bytes / sizeof(uint64_t));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(raw.data()),
          static_cast<std::streamsize>(raw.size() * sizeof(uint64_t)));
  if (raw.empty() || static_cast<int64_t>(raw.back()) != shards_[shard].tokens) {
    throw_data_error(shards_[shard].index_path.string() +
                     ": does not end at the shard's token count");
  }
  return {raw.begin(), raw.end()};
}

}  // namespace r1kit
