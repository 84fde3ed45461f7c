#include "policy/training_kernels.h"

#include <torch/autograd.h>

#include <cmath>

#include "common/avx512_math.h"
#include "policy/decoder_layer.h"

namespace r1kit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#ifdef R1KIT_HAVE_AVX512_KERNEL
bool fits(const at::Tensor& x, int64_t width) {
  return cpu_has_avx512() && x.device().is_cpu() && x.scalar_type() == at::kFloat &&
         width % 16 == 0;
}

// y = weight * (x * r), r = 1 / sqrt(mean(x^2) + eps) per row, rounded as the plain expression.
R1KIT_AVX512 void rms_norm_rows(const float* x, const float* weight, float* y, float* inverse,
                                int64_t rows, int64_t width, float eps) {
  for (int64_t n = 0; n < rows; ++n) {
    const float* row = x + n * width;
    __m512 sum = _mm512_setzero_ps();
    for (int64_t d = 0; d < width; d += 16)
      sum = _mm512_fmadd_ps(load16(row + d), load16(row + d), sum);
    const float r = 1.0f / std::sqrt(_mm512_reduce_add_ps(sum) / static_cast<float>(width) + eps);
    inverse[n] = r;
    const __m512 scale = _mm512_set1_ps(r);
    for (int64_t d = 0; d < width; d += 16)
      store16(y + n * width + d,
              _mm512_mul_ps(load16(weight + d), _mm512_mul_ps(load16(row + d), scale)));
  }
}

// g = dy * weight: dx = r * g - x * r^3 * mean(g * x); dweight = sum_n dy * x * r.
R1KIT_AVX512 void rms_norm_backward_rows(const float* x, const float* weight, const float* inverse,
                                         const float* dy, float* dx, float* dweight, int64_t rows,
                                         int64_t width) {
  for (int64_t d = 0; d < width; ++d) dweight[d] = 0.0f;
  for (int64_t n = 0; n < rows; ++n) {
    const float* row = x + n * width;
    const float* grad = dy + n * width;
    const __m512 r = _mm512_set1_ps(inverse[n]);
    __m512 dot = _mm512_setzero_ps();
    for (int64_t d = 0; d < width; d += 16) {
      const __m512 xv = load16(row + d), gv = load16(grad + d);
      dot = _mm512_fmadd_ps(_mm512_mul_ps(gv, load16(weight + d)), xv, dot);
      store16(dweight + d, _mm512_fmadd_ps(gv, _mm512_mul_ps(xv, r), load16(dweight + d)));
    }
    const float rn = inverse[n];
    const __m512 correction =
        _mm512_set1_ps(rn * rn * rn * _mm512_reduce_add_ps(dot) / static_cast<float>(width));
    for (int64_t d = 0; d < width; d += 16) {
      const __m512 g = _mm512_mul_ps(load16(grad + d), load16(weight + d));
      store16(dx + n * width + d,
              _mm512_fnmadd_ps(load16(row + d), correction, _mm512_mul_ps(g, r)));
    }
  }
}

// out = x * cos + rotate_half(x) * sin over each head; `backward` applies the
// transpose: dx = dy * cos + rotate_half^T(dy * sin).
R1KIT_AVX512 void rotary_rows(const float* x, int64_t row_stride, const float* cos,
                              const float* sin, float* out, int64_t tokens, int64_t heads,
                              int64_t width, bool backward) {
  const int64_t half = width / 2;
  for (int64_t n = 0; n < tokens; ++n) {
    const float* c = cos + n * width;
    const float* s = sin + n * width;
    for (int64_t h = 0; h < heads; ++h) {
      const float* in = x + n * row_stride + h * width;
      float* to = out + (n * heads + h) * width;
      for (int64_t d = 0; d < half; d += 16) {
        const __m512 low = load16(in + d), high = load16(in + half + d);
        if (!backward) {  // [low * c - high * s, high * c + low * s]
          store16(to + d, _mm512_fnmadd_ps(high, load16(s + d), _mm512_mul_ps(low, load16(c + d))));
          store16(to + half + d, _mm512_fmadd_ps(low, load16(s + half + d),
                                                 _mm512_mul_ps(high, load16(c + half + d))));
        } else {  // [low * c + high * s', high * c' - low * s]
          store16(to + d,
                  _mm512_fmadd_ps(high, load16(s + half + d), _mm512_mul_ps(low, load16(c + d))));
          store16(to + half + d,
                  _mm512_fnmadd_ps(low, load16(s + d), _mm512_mul_ps(high, load16(c + half + d))));
        }
      }
    }
  }
}

// out = silu(g) * u; backward: du = dy * silu(g), dg = dy * u * s * (1 + g * (1 - s)), s =
// sigmoid(g). gate and up rows `stride` apart (the halves of one gate_up matmul), the rest (rows,
// width) packed.
R1KIT_AVX512 inline __m512 sigmoid16(__m512 g) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

R1KIT_AVX512 void swiglu_rows(const float* gate, const float* up, int64_t stride, float* out,
                              int64_t rows, int64_t width) {
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t i = 0; i < width; i += 16) {
      const __m512 g = load16(gate + n * stride + i);
      store16(out + n * width + i,
              _mm512_mul_ps(_mm512_mul_ps(g, sigmoid16(g)), load16(up + n * stride + i)));
    }
  }
}

R1KIT_AVX512 void swiglu_backward_rows(const float* gate, const float* up, int64_t stride,
                                       const float* dy, float* dgate, float* dup, int64_t rows,
                                       int64_t width) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t i = 0; i < width; i += 16) {
      const __m512 g = load16(gate + n * stride + i), u = load16(up + n * stride + i);
      const __m512 grad = load16(dy + n * width + i), s = sigmoid16(g);
      store16(dup + n * width + i, _mm512_mul_ps(grad, _mm512_mul_ps(g, s)));
      const __m512 slope = _mm512_mul_ps(s, _mm512_fmadd_ps(g, _mm512_sub_ps(one, s), one));
      store16(dgate + n * width + i, _mm512_mul_ps(_mm512_mul_ps(grad, u), slope));
    }
  }
}

struct RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            double eps) {
    const at::Tensor input = x.contiguous(), scale = weight.contiguous();
    const int64_t rows = input.numel() / input.size(-1), width = input.size(-1);
    at::Tensor y = at::empty_like(input);
    at::Tensor inverse = at::empty({rows}, input.options());
    rms_norm_rows(input.const_data_ptr<float>(), scale.const_data_ptr<float>(),
                  y.mutable_data_ptr<float>(), inverse.mutable_data_ptr<float>(), rows, width,
                  static_cast<float>(eps));
    ctx->save_for_backward({input, scale, inverse});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &scale = saved[1], &inverse = saved[2];
    const at::Tensor dy = grads[0].contiguous();
    const int64_t width = input.size(-1), rows = input.numel() / width;
    at::Tensor dx = at::empty_like(input), dweight = at::empty({width}, input.options());
    rms_norm_backward_rows(input.const_data_ptr<float>(), scale.const_data_ptr<float>(),
                           inverse.const_data_ptr<float>(), dy.const_data_ptr<float>(),
                           dx.mutable_data_ptr<float>(), dweight.mutable_data_ptr<float>(), rows,
                           width);
    return {dx, dweight, at::Tensor()};
  }
};

struct RotaryFunction : public torch::autograd::Function<RotaryFunction> {
  // x (N, heads, D) with its heads packed (stride D, then 1); rows may be strided.
  static at::Tensor apply_rows(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                               bool backward) {
    const bool packed_heads = x.stride(2) == 1 && x.stride(1) == x.size(2);
    const at::Tensor input = packed_heads ? x : x.contiguous();
    at::Tensor out = at::empty(input.sizes(), input.options());
    rotary_rows(input.const_data_ptr<float>(), input.stride(0), cos.const_data_ptr<float>(),
                sin.const_data_ptr<float>(), out.mutable_data_ptr<float>(), input.size(0),
                input.size(1), input.size(2), backward);
    return out;
  }
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    const at::Tensor c = cos.contiguous(), s = sin.contiguous();
    ctx->save_for_backward({c, s});
    return apply_rows(x, c, s, /*backward=*/false);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    return {apply_rows(grads[0], saved[0], saved[1], /*backward=*/true), at::Tensor(),
            at::Tensor()};
  }
};

struct SwigluFunction : public torch::autograd::Function<SwigluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    // Unit inner stride and one row stride for both (the halves of one matmul), else copies.
    const bool strided_rows =
        gate.stride(1) == 1 && up.stride(1) == 1 && gate.stride(0) == up.stride(0);
    const at::Tensor g = strided_rows ? gate : gate.contiguous();
    const at::Tensor u = strided_rows ? up : up.contiguous();
    at::Tensor out = at::empty(g.sizes(), g.options());
    swiglu_rows(g.const_data_ptr<float>(), u.const_data_ptr<float>(), g.stride(0),
                out.mutable_data_ptr<float>(), g.size(0), g.size(1));
    ctx->save_for_backward({g, u});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &g = saved[0], &u = saved[1];
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dgate = at::empty(g.sizes(), g.options()), dup = at::empty(u.sizes(), u.options());
    swiglu_backward_rows(g.const_data_ptr<float>(), u.const_data_ptr<float>(), g.stride(0),
                         dy.const_data_ptr<float>(), dgate.mutable_data_ptr<float>(),
                         dup.mutable_data_ptr<float>(), g.size(0), g.size(1));
    return {dgate, dup};
  }
};
#endif

}  // namespace

at::Tensor swiglu_trainable(const at::Tensor& gate, const at::Tensor& up) {
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (gate.dim() == 2 && fits(gate, gate.size(1)) && up.scalar_type() == at::kFloat &&
      up.sizes() == gate.sizes())
    return SwigluFunction::apply(gate, up);
#endif
  return at::silu(gate) * up;
}

at::Tensor rms_norm_trainable(const at::Tensor& x, const at::Tensor& weight, double eps) {
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (fits(x, x.size(-1)) && weight.scalar_type() == at::kFloat && weight.dim() == 1)
    return RmsNormFunction::apply(x, weight, eps);
#endif
  return rms_norm(x, weight, eps);
}

at::Tensor rotary_trainable(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (x.dim() == 3 && fits(x, x.size(2) / 2) && x.size(2) % 2 == 0 &&
      cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat && cos.dim() == 2 &&
      cos.size(0) == x.size(0) && cos.size(1) == x.size(2) && !cos.requires_grad() &&
      !sin.requires_grad())
    return RotaryFunction::apply(x, cos, sin);
#endif
  // apply_rotary's layout: (B, heads, T, D) with cos (B, T, D).
  return apply_rotary(x.transpose(0, 1).unsqueeze(0), cos.unsqueeze(0), sin.unsqueeze(0))
      .squeeze(0)
      .transpose(0, 1);
}

}  // namespace r1kit
