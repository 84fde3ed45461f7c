// AVX-512 building blocks of the hand-written kernels (rollout's decode steps,
// the learner's fused norm and rotary): float32 and bfloat16 loads and stores
// of 16 lanes, and exp. Every function carries the target attribute, so callers
// check cpu_has_avx512() at run time and the rest of the build needs no
// -mavx512 flags. Include from .cpp files only.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <c10/util/BFloat16.h>
#include <immintrin.h>

#define R1KIT_HAVE_AVX512_KERNEL 1

// GCC 12 reports -Wmaybe-uninitialized inside the masked AVX-512 intrinsics it
// inlines into these kernels (the _mm512_undefined_* pass-through operands);
// the kernels' own variables are all initialised (GCC PR 105593, fixed in
// GCC 13). Kernel .cpp files only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace r1kit {
namespace {

inline bool cpu_has_avx512() {
  static const bool supported = __builtin_cpu_supports("avx512f") &&
                                __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512dq");
  return supported;
}

#define R1KIT_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq")))

R1KIT_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }

// bfloat16 is the top half of a float32: widen and shift.
R1KIT_AVX512 inline __m512 load16(const c10::BFloat16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// exp(x), x clamped to [-87, 88]: Cody-Waite range reduction and a degree-6
// Taylor polynomial, relative error ~2e-7.
R1KIT_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

R1KIT_AVX512 inline void store16(float* p, __m512 v) { _mm512_storeu_ps(p, v); }

// Round to nearest even, as c10::BFloat16 does (NaN payloads aside).
R1KIT_AVX512 inline void store16(c10::BFloat16* p, __m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
}

}  // namespace
}  // namespace r1kit
#endif
