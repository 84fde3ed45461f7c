// Attention of one new token per row over that row's KV cache (a decode step),
// as a hand-written AVX-512 kernel: one pass per (row, key head) computes the
// scores of the group's query heads, a softmax and the weighted sum of values
// straight from the cache storage, with no copies and no mask. ATen's
// scaled_dot_product_attention spends most of its time on set-up at these
// shapes (3 queries x ~100 keys). Stateless; parallel over rows with ATen's
// thread pool.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace r1kit {

// Whether decode_attention runs for this cache storage (R, nkv, L, D): CPU
// with AVX-512, contiguous float32 or bfloat16, D one of 16, 32, 64, 128.
bool decode_attention_supported(const at::Tensor& storage);

// q (B, nh, D) in the storage dtype, inner two dimensions contiguous; keys and
// values (R, nkv, L, D); row b attends to the first visible[b] positions of
// cache row rows[b]. Returns (B, nh * D) in the storage dtype, scaled by
// 1 / sqrt(D) as Llama's attention.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                            const std::vector<int64_t>& rows, const std::vector<int64_t>& visible);

}  // namespace r1kit
