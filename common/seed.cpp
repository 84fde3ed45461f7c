#include "common/seed.h"

#include <ATen/Context.h>

namespace r1kit {

void seed_torch(uint64_t seed) { at::manual_seed(seed); }

std::mt19937_64 make_rng(uint64_t seed, std::string_view purpose) {
  // FNV-1a of the purpose, mixed with the seed by splitmix64.
  uint64_t hash = 1469598103934665603ull;
  for (char c : purpose) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  uint64_t z = seed + hash + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  std::seed_seq sequence{static_cast<uint32_t>(z), static_cast<uint32_t>(z >> 32)};
  return std::mt19937_64(sequence);
}

}  // namespace r1kit
