// The token shards of a prepared corpus, on disk and mapped back: per shard a
// flat little-endian array of token ids (`shard-NNNNN.bin`, uint16 when the
// vocabulary fits, else uint32; each document ends with the eos id) and its
// index (`shard-NNNNN.idx`, uint64 token offsets of each document's start plus
// the end), listed in the folder's manifest.json. The writer has one owner;
// a ShardSet is read-only after open() and safe to read from many threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace r1kit {

inline constexpr const char* kShardFormat = "r1kit-token-shards";
inline constexpr int64_t kShardFormatVersion = 1;

struct ShardInfo {
  std::string file;       // token file name, relative to the folder
  std::string index;      // index file name, relative to the folder
  int64_t tokens = 0;     // tokens in the file (eos separators included)
  int64_t documents = 0;  // documents in the file
};

// "uint16" when every id of a `vocab_size` vocabulary fits in 16 bits, else "uint32".
std::string token_dtype_for(int64_t vocab_size);

// Writes documents into shards of about `max_shard_tokens` tokens: a shard is
// closed before the document that would overflow it, so no document is split
// (a single longer document gets a shard of its own).
class ShardWriter {
 public:
  ShardWriter(std::filesystem::path folder, int64_t vocab_size, int64_t max_shard_tokens);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one document; `ids` already ends with the separator (eos).
  void add_document(const std::vector<int64_t>& ids);
  // Closes the last shard and returns every shard written.
  std::vector<ShardInfo> finish();
  const std::string& dtype() const { return dtype_; }

 private:
  void open_shard();
  void close_shard();

  std::filesystem::path folder_;
  int64_t vocab_size_;
  int64_t max_shard_tokens_;
  std::string dtype_;
  struct Open;
  std::unique_ptr<Open> open_;
  std::vector<ShardInfo> shards_;
};

// The "shards" part of a manifest (format, version, dtype, vocab_size, eos_id,
// shards); prepare adds its counts beside it.
nlohmann::json shard_manifest(const std::string& dtype, int64_t vocab_size, int64_t eos_id,
                              const std::vector<ShardInfo>& shards);

// A prepared folder mapped read-only (mmap): tokens are read in place.
class ShardSet {
 public:
  // Reads <folder>/manifest.json and maps every shard; a missing or
  // inconsistent file (size not matching the manifest) is an error naming it.
  static std::shared_ptr<const ShardSet> open(const std::filesystem::path& folder);
  ~ShardSet();

  size_t num_shards() const { return shards_.size(); }
  int64_t shard_tokens(size_t shard) const { return shards_[shard].tokens; }
  int64_t total_tokens() const;
  int64_t vocab_size() const { return vocab_size_; }
  int64_t eos_id() const { return eos_id_; }
  // Token `i` of `shard`.
  int64_t token(size_t shard, int64_t i) const;
  // Copies tokens [begin, begin + count) of `shard` into `out`.
  void read(size_t shard, int64_t begin, int64_t count, int64_t* out) const;
  // The document start offsets of `shard` plus its end (documents + 1 values).
  std::vector<int64_t> document_offsets(size_t shard) const;

 private:
  ShardSet() = default;
  struct Mapped {
    std::filesystem::path path;
    const void* data = nullptr;
    size_t bytes = 0;
    int64_t tokens = 0;
    std::filesystem::path index_path;
  };
  std::vector<Mapped> shards_;
  int bytes_per_token_ = 2;
  int64_t vocab_size_ = 0;
  int64_t eos_id_ = -1;
};

}  // namespace r1kit
