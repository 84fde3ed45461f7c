#include "common/tensorboard.h"

#include <unistd.h>

#include <bit>
#include <boost/crc.hpp>
#include <chrono>
#include <cstring>

#include "common/error.h"

namespace r1kit {

namespace fs = std::filesystem;

namespace {

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
constexpr uint32_t kWireVarint = 0;
constexpr uint32_t kWireFixed64 = 1;
constexpr uint32_t kWireLengthDelimited = 2;
constexpr uint32_t kWireFixed32 = 5;

// tensorflow/core/util/event.proto and summary.proto field numbers.
constexpr uint32_t kEventWallTime = 1;
constexpr uint32_t kEventStep = 2;
constexpr uint32_t kEventFileVersion = 3;
constexpr uint32_t kEventSummary = 5;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1;
constexpr uint32_t kValueSimpleValue = 2;

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

template <class T>
void put_little_endian(std::string& out, T value) {
  static_assert(std::endian::native == std::endian::little, "event files are little endian");
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_tag(std::string& out, uint32_t field, uint32_t wire_type) {
  put_varint(out, (field << 3) | wire_type);
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_tag(out, field, kWireLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// Event's wall_time and step, skipped at zero like any proto3 scalar.
void put_event_header(std::string& out, double wall_time, int64_t step) {
  if (wall_time != 0.0) {
    put_tag(out, kEventWallTime, kWireFixed64);
    put_little_endian(out, wall_time);
  }
  if (step != 0) {
    put_tag(out, kEventStep, kWireVarint);
    put_varint(out, static_cast<uint64_t>(step));  // negative int64 takes ten bytes, as in protobuf
  }
}

double seconds_since_epoch() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  // Castagnoli's polynomial 0x1EDC6F41 (0x82F63B78 reflected), all ones in and out.
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

uint32_t masked_crc32c(std::string_view data) {
  uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string frame_tfrecord(std::string_view data) {
  std::string record;
  record.reserve(data.size() + 16);
  put_little_endian(record, static_cast<uint64_t>(data.size()));
  put_little_endian(record, masked_crc32c(std::string_view(record).substr(0, 8)));
  record.append(data);
  put_little_endian(record, masked_crc32c(data));
  return record;
}

std::string encode_file_version_event(double wall_time, std::string_view file_version) {
  std::string event;
  put_event_header(event, wall_time, 0);
  put_bytes(event, kEventFileVersion, file_version);
  return event;
}

std::string encode_scalars_event(double wall_time, int64_t step,
                                 const std::map<std::string, double>& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string entry;
    put_bytes(entry, kValueTag, tag);
    // simple_value sits in a oneof, so protobuf writes it even when it is 0.
    put_tag(entry, kValueSimpleValue, kWireFixed32);
    put_little_endian(entry, static_cast<float>(value));
    put_bytes(summary, kSummaryValue, entry);
  }
  std::string event;
  put_event_header(event, wall_time, step);
  put_bytes(event, kEventSummary, summary);
  return event;
}

TensorBoardWriter::TensorBoardWriter(const fs::path& folder) {
  std::error_code error;
  fs::create_directories(folder, error);
  if (error)
    throw_io_error(folder.string() + ": cannot create the TensorBoard folder: " + error.message());
  double now = seconds_since_epoch();
  path_ = folder / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." +
                    host_name() + ".r1kit");
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw_io_error(path_.string() + ": cannot open the event file for writing");
  write_record(encode_file_version_event(now));
  flush();
}

void TensorBoardWriter::add_scalars(int64_t step, const std::map<std::string, double>& scalars) {
  write_record(encode_scalars_event(seconds_since_epoch(), step, scalars));
  flush();
}

void TensorBoardWriter::flush() {
  if (!out_.flush()) throw_io_error(path_.string() + ": writing the event file failed");
}

void TensorBoardWriter::write_record(std::string_view data) {
  std::string record = frame_tfrecord(data);
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
}

}  // namespace r1kit
