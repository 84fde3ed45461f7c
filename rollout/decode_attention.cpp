#include "rollout/decode_attention.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <cmath>
#include <limits>

#include "common/avx512_math.h"

namespace r1kit {

#ifdef R1KIT_HAVE_AVX512_KERNEL
namespace {

// The largest of row[0..count), vectorized: a scalar max is a chain of
// dependent instructions as long as the row (it took a quarter of the kernel).
R1KIT_AVX512 inline float row_max(const float* row, int64_t count) {
  __m512 top = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t s = 0; s < count; s += 16) {
    const __mmask16 lanes =
        count - s >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (count - s)) - 1);
    top = _mm512_mask_max_ps(top, lanes, top, _mm512_maskz_loadu_ps(lanes, row + s));
  }
  return _mm512_reduce_max_ps(top);
}

// One (row, key head): queries q[j] (j < groups, kChunks * 16 wide, already
// scaled), keys/values (visible, width) contiguous; writes out[j]. The width
// is a template parameter so the compiler keeps a key's chunks and the
// accumulators in registers.
// The cache is read once per step and is larger than the caches, so the loop
// over keys also prefetches this item's values and the next item's keys and
// values (`next_keys`/`next_values`, null for none) one key row at a time.
template <class T, int kChunks>
R1KIT_AVX512 void attend_group(const float* q, const T* keys, const T* values, int64_t visible,
                               int64_t groups, float* scores, T* out, const T* next_keys,
                               const T* next_values) {
  constexpr int64_t width = kChunks * 16;
  constexpr int64_t kLine = 64 / sizeof(T);  // elements per cache line
  for (int64_t s = 0; s < visible; ++s) {
    for (int64_t e = 0; e < width; e += kLine) {
      _mm_prefetch(reinterpret_cast<const char*>(values + s * width + e), _MM_HINT_T0);
      if (next_keys) {
        _mm_prefetch(reinterpret_cast<const char*>(next_keys + s * width + e), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(next_values + s * width + e), _MM_HINT_T1);
      }
    }
    __m512 key[kChunks];
#pragma GCC unroll 8
    for (int c = 0; c < kChunks; ++c) key[c] = load16(keys + s * width + c * 16);
    for (int64_t j = 0; j < groups; ++j) {
      __m512 sum = _mm512_mul_ps(_mm512_loadu_ps(q + j * width), key[0]);
#pragma GCC unroll 8
      for (int c = 1; c < kChunks; ++c)
        sum = _mm512_fmadd_ps(_mm512_loadu_ps(q + j * width + c * 16), key[c], sum);
      scores[j * visible + s] = _mm512_reduce_add_ps(sum);
    }
  }
  for (int64_t j = 0; j < groups; ++j) {
    float* row = scores + j * visible;
    const __m512 shift = _mm512_set1_ps(row_max(row, visible));
    __m512 total = _mm512_setzero_ps();
    for (int64_t s = 0; s < visible; s += 16) {
      const __mmask16 lanes =
          visible - s >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (visible - s)) - 1);
      const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, row + s), shift));
      _mm512_mask_storeu_ps(row + s, lanes, e);
      total = _mm512_add_ps(total, _mm512_maskz_mov_ps(lanes, e));
    }
    const __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(total));
    __m512 accumulator[kChunks];
#pragma GCC unroll 8
    for (int c = 0; c < kChunks; ++c) accumulator[c] = _mm512_setzero_ps();
    for (int64_t s = 0; s < visible; ++s) {
      const __m512 weight = _mm512_set1_ps(row[s]);
#pragma GCC unroll 8
      for (int c = 0; c < kChunks; ++c) {
        accumulator[c] =
            _mm512_fmadd_ps(weight, load16(values + s * width + c * 16), accumulator[c]);
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < kChunks; ++c)
      store16(out + j * width + c * 16, _mm512_mul_ps(accumulator[c], inverse));
  }
}

template <class T>
void run(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
         const std::vector<int64_t>& rows, const std::vector<int64_t>& visible, at::Tensor& out) {
  const int64_t batch = q.size(0), heads = q.size(1), width = q.size(2);
  const int64_t kv_heads = keys.size(1), length = keys.size(2), groups = heads / kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(width));
  const T* q_data = q.const_data_ptr<T>();
  const T* key_data = keys.const_data_ptr<T>();
  const T* value_data = values.const_data_ptr<T>();
  T* out_data = out.mutable_data_ptr<T>();
  const int64_t q_stride = q.stride(0);
  int64_t longest = 0;
  for (int64_t v : visible) longest = std::max(longest, v);
  // Items of less than ~64k multiply-adds together stay on one thread.
  const int64_t item_work = std::max<int64_t>(1, 2 * groups * longest * width);
  at::parallel_for(
      0, batch * kv_heads, std::max<int64_t>(1, 65536 / item_work),
      [&](int64_t begin, int64_t end) {
        std::vector<float> queries(groups * width), scores(groups * longest);
        for (int64_t item = begin; item < end; ++item) {
          const int64_t b = item / kv_heads, kv = item % kv_heads;
          const T* q_group = q_data + b * q_stride + kv * groups * width;
          for (int64_t i = 0; i < groups * width; ++i)
            queries[i] = static_cast<float>(q_group[i]) * scale;
          const int64_t offset = (rows[b] * kv_heads + kv) * length * width;
          const T* k = key_data + offset;
          const T* v = value_data + offset;
          const T *next_k = nullptr, *next_v = nullptr;
          if (item + 1 < end) {
            const int64_t next_offset =
                (rows[(item + 1) / kv_heads] * kv_heads + (item + 1) % kv_heads) * length * width;
            next_k = key_data + next_offset;
            next_v = value_data + next_offset;
          }
          T* out_group = out_data + (b * heads + kv * groups) * width;
          auto kernel = width == 16   ? attend_group<T, 1>
                        : width == 32 ? attend_group<T, 2>
                        : width == 64
                            ? attend_group<T, 4>
                            : attend_group<T, 8>;  // 128, checked by decode_attention_supported
          kernel(queries.data(), k, v, visible[b], groups, scores.data(), out_group, next_k,
                 next_v);
        }
      });
}

}  // namespace
#endif

bool decode_attention_supported(const at::Tensor& storage) {
#ifdef R1KIT_HAVE_AVX512_KERNEL
  return cpu_has_avx512() && storage.device().is_cpu() && storage.is_contiguous() &&
         (storage.scalar_type() == at::kFloat || storage.scalar_type() == at::kBFloat16) &&
         (storage.size(-1) == 16 || storage.size(-1) == 32 || storage.size(-1) == 64 ||
          storage.size(-1) == 128);
#else
  (void)storage;
  return false;
#endif
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                            const std::vector<int64_t>& rows, const std::vector<int64_t>& visible) {
  TORCH_CHECK(
      decode_attention_supported(keys) && values.sizes() == keys.sizes() && values.is_contiguous(),
      "decode_attention: unsupported cache storage ", keys.sizes(), " ", keys.scalar_type());
  TORCH_CHECK(q.dim() == 3 && q.scalar_type() == keys.scalar_type() && q.size(2) == keys.size(3) &&
                  q.stride(2) == 1 && q.stride(1) == q.size(2) && q.size(1) % keys.size(1) == 0,
              "decode_attention: q ", q.sizes(), " strides ", q.strides(),
              " does not fit the cache ", keys.sizes());
  TORCH_CHECK(static_cast<int64_t>(rows.size()) == q.size(0) && rows.size() == visible.size(),
              "decode_attention: need one row and one visible length per query row");
  for (size_t b = 0; b < rows.size(); ++b) {
    TORCH_CHECK(
        rows[b] >= 0 && rows[b] < keys.size(0) && visible[b] >= 1 && visible[b] <= keys.size(2),
        "decode_attention: row ", rows[b], " with ", visible[b],
        " visible keys is outside the cache ", keys.sizes());
  }
  at::Tensor out = at::empty({q.size(0), q.size(1) * q.size(2)}, q.options());
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (q.scalar_type() == at::kFloat) {
    run<float>(q, keys, values, rows, visible, out);
  } else {
    run<c10::BFloat16>(q, keys, values, rows, visible, out);
  }
#endif
  return out;
}

}  // namespace r1kit
