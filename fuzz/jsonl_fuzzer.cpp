// Fuzzes the JSON-lines reader (common/jsonl.h) as the callers that skip bad
// lines use it: every line is read, a malformed one is reported and passed
// over. The first input byte sets max_lines and a line filter; the rest is the
// file. The line numbers handed over must rise.
#include "common/jsonl.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  if (size == 0) return 0;
  const int64_t max_lines = data[0] & 0x0f;
  const int64_t modulus = (data[0] >> 4) + 1;
  const auto path = fuzz::write_temp_file("lines.jsonl", fuzz::as_text(data + 1, size - 1));
  JsonlReader reader(path, max_lines);
  auto wanted = [&](int64_t number) { return number % modulus != 0; };
  int64_t previous = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    std::optional<JsonlLine> line;
    try {
      line = modulus > 1 ? reader.next(wanted) : reader.next();
    } catch (const Error&) {
      continue;  // a malformed line; the reader stands after it
    }
    if (!line) break;
    if (line->number <= previous) std::abort();
    previous = line->number;
    (void)line->value.dump();
  }
  fuzz::accept_or_reject([&] { (void)read_jsonl(path); });
  return 0;
}
