#include "rollout/fused_ops.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "common/avx512_math.h"

namespace r1kit {
namespace {

bool kernel_fits(const at::Tensor& x) {
#ifdef R1KIT_HAVE_AVX512_KERNEL
  return cpu_has_avx512() && x.device().is_cpu() &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16);
#else
  (void)x;
  return false;
#endif
}

#ifdef R1KIT_HAVE_AVX512_KERNEL
template <class T>
R1KIT_AVX512 void rms_rows(const T* x, T* out, int64_t begin, int64_t end, int64_t width,
                           float eps) {
  for (int64_t n = begin; n < end; ++n) {
    const T* row = x + n * width;
    __m512 sum = _mm512_setzero_ps();
    for (int64_t d = 0; d < width; d += 16) {
      const __m512 v = load16(row + d);
      sum = _mm512_fmadd_ps(v, v, sum);
    }
    const __m512 scale = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(sum) / width + eps));
    for (int64_t d = 0; d < width; d += 16)
      store16(out + n * width + d, _mm512_mul_ps(load16(row + d), scale));
  }
}

template <class T>
R1KIT_AVX512 void rotate_rows(const T* x, int64_t token_stride, const T* cos, const T* sin, T* out,
                              int64_t begin, int64_t end, int64_t heads, int64_t width) {
  const int64_t half = width / 2;
  for (int64_t n = begin; n < end; ++n) {
    for (int64_t h = 0; h < heads; ++h) {
      const T* in = x + n * token_stride + h * width;
      T* to = out + (n * heads + h) * width;
      for (int64_t d = 0; d < half; d += 16) {
        const __m512 low = load16(in + d), high = load16(in + half + d);
        store16(to + d, _mm512_fmadd_ps(high, load16(sin + n * width + d),
                                        _mm512_mul_ps(low, load16(cos + n * width + d))));
        store16(to + half + d,
                _mm512_fmadd_ps(low, load16(sin + n * width + half + d),
                                _mm512_mul_ps(high, load16(cos + n * width + half + d))));
      }
    }
  }
}

template <class T>
R1KIT_AVX512 void silu_mul_rows(const T* gate_up, T* out, int64_t begin, int64_t end,
                                int64_t inner) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t n = begin; n < end; ++n) {
    const T* gate = gate_up + n * 2 * inner;
    const T* up = gate + inner;
    for (int64_t d = 0; d < inner; d += 16) {
      const __m512 g = load16(gate + d);
      // g / (1 + exp(-g)) with a reciprocal estimate and one Newton step (~1e-7).
      const __m512 denominator = _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g)));
      __m512 inverse = _mm512_rcp14_ps(denominator);
      inverse =
          _mm512_mul_ps(inverse, _mm512_fnmadd_ps(denominator, inverse, _mm512_set1_ps(2.0f)));
      const __m512 silu = _mm512_mul_ps(g, inverse);
      store16(out + n * inner + d, _mm512_mul_ps(silu, load16(up + d)));
    }
  }
}

// Runs `body(begin, end)` over rows, in parallel only from ~64k elements per
// task: below that, waking a second thread costs more than it saves.
template <class Body>
void over_rows(int64_t rows, int64_t row_size, const Body& body) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(row_size, 1)), body);
}
#endif

}  // namespace

at::Tensor rms_normalize(const at::Tensor& x, double eps) {
  TORCH_CHECK(x.dim() == 2, "rms_normalize: x must be (N, H), got ", x.sizes());
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (kernel_fits(x) && x.size(1) % 16 == 0) {
    const at::Tensor input = x.contiguous();
    at::Tensor out = at::empty_like(input);
    const int64_t rows = input.size(0), width = input.size(1);
    AT_DISPATCH_SWITCH(input.scalar_type(), "rms_normalize", AT_DISPATCH_CASE(at::kFloat, [&] {
                         over_rows(rows, width, [&](int64_t begin, int64_t end) {
                           rms_rows<float>(input.const_data_ptr<float>(),
                                           out.mutable_data_ptr<float>(), begin, end, width,
                                           static_cast<float>(eps));
                         });
                       }) AT_DISPATCH_CASE(at::kBFloat16, [&] {
                         over_rows(rows, width, [&](int64_t begin, int64_t end) {
                           rms_rows<c10::BFloat16>(input.const_data_ptr<c10::BFloat16>(),
                                                   out.mutable_data_ptr<c10::BFloat16>(), begin,
                                                   end, width, static_cast<float>(eps));
                         });
                       }));
    return out;
  }
#endif
  const at::Tensor x32 = x.to(at::kFloat);
  return (x32 * x32.square().mean(-1, /*keepdim=*/true).add_(eps).rsqrt_()).to(x.scalar_type());
}

at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& signed_sin) {
  TORCH_CHECK(x.dim() == 3 && x.stride(2) == 1 && x.stride(1) == x.size(2) &&
                  cos.sizes() == signed_sin.sizes() && cos.dim() == 2 && cos.size(0) == x.size(0) &&
                  cos.size(1) == x.size(2),
              "rotate: x ", x.sizes(), " strides ", x.strides(), " does not fit cos ", cos.sizes());
  const int64_t tokens = x.size(0), heads = x.size(1), width = x.size(2);
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (kernel_fits(x) && width % 32 == 0 && cos.scalar_type() == x.scalar_type() &&
      signed_sin.scalar_type() == x.scalar_type()) {
    const at::Tensor c = cos.contiguous(), s = signed_sin.contiguous();
    at::Tensor out = at::empty({tokens, heads, width}, x.options());
    const int64_t stride = x.stride(0);
    AT_DISPATCH_SWITCH(x.scalar_type(), "rotate", AT_DISPATCH_CASE(at::kFloat, [&] {
                         over_rows(tokens, heads * width, [&](int64_t begin, int64_t end) {
                           rotate_rows<float>(x.const_data_ptr<float>(), stride,
                                              c.const_data_ptr<float>(), s.const_data_ptr<float>(),
                                              out.mutable_data_ptr<float>(), begin, end, heads,
                                              width);
                         });
                       }) AT_DISPATCH_CASE(at::kBFloat16, [&] {
                         over_rows(tokens, heads * width, [&](int64_t begin, int64_t end) {
                           rotate_rows<c10::BFloat16>(
                               x.const_data_ptr<c10::BFloat16>(), stride,
                               c.const_data_ptr<c10::BFloat16>(), s.const_data_ptr<c10::BFloat16>(),
                               out.mutable_data_ptr<c10::BFloat16>(), begin, end, heads, width);
                         });
                       }));
    return out;
  }
#endif
  const at::Tensor swapped =
      x.reshape({tokens, heads, 2, width / 2}).flip(2).view({tokens, heads, width});
  return at::addcmul(x * cos.unsqueeze(1), swapped, signed_sin.unsqueeze(1));
}

at::Tensor silu_mul(const at::Tensor& gate_up) {
  TORCH_CHECK(gate_up.dim() == 2 && gate_up.size(1) % 2 == 0,
              "silu_mul: gate_up must be (N, 2 I), got ", gate_up.sizes());
  const int64_t rows = gate_up.size(0), inner = gate_up.size(1) / 2;
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (kernel_fits(gate_up) && inner % 16 == 0) {
    const at::Tensor input = gate_up.contiguous();
    at::Tensor out = at::empty({rows, inner}, input.options());
    AT_DISPATCH_SWITCH(input.scalar_type(), "silu_mul", AT_DISPATCH_CASE(at::kFloat, [&] {
                         over_rows(rows, inner, [&](int64_t begin, int64_t end) {
                           silu_mul_rows<float>(input.const_data_ptr<float>(),
                                                out.mutable_data_ptr<float>(), begin, end, inner);
                         });
                       }) AT_DISPATCH_CASE(at::kBFloat16, [&] {
                         over_rows(rows, inner, [&](int64_t begin, int64_t end) {
                           silu_mul_rows<c10::BFloat16>(input.const_data_ptr<c10::BFloat16>(),
                                                        out.mutable_data_ptr<c10::BFloat16>(),
                                                        begin, end, inner);
                         });
                       }));
    return out;
  }
#endif
  return at::silu(gate_up.narrow(1, 0, inner)).mul_(gate_up.narrow(1, inner, inner));
}

}  // namespace r1kit
