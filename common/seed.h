// One seed fixes a CPU run: it seeds torch's default generator and derives the
// std generators that data, environments and sampling draw from, one stream
// per purpose so adding a draw in one place never shifts another.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>

namespace r1kit {

// Seeds torch's CPU (and CUDA, when present) default generators.
void seed_torch(uint64_t seed);

// A generator for one named purpose ("environment", "sampling", ...) derived
// from the run seed; the same (seed, purpose) always gives the same stream.
std::mt19937_64 make_rng(uint64_t seed, std::string_view purpose);

}  // namespace r1kit
