#include "rollout/amx_linear.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <cstring>
#include <vector>

#include "common/avx512_math.h"

#if defined(R1KIT_HAVE_AVX512_KERNEL) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define R1KIT_HAVE_AMX 1
#endif

namespace r1kit {

#ifdef R1KIT_HAVE_AMX
namespace {

constexpr int64_t kTileRows = 16;  // rows of every tile
constexpr int64_t kTileK = 32;     // bfloat16 values per A-tile row (64 bytes)

// The tile configuration: tiles 0-3 accumulate C (16 x 16 float32), 4-5 hold
// A (16 rows x 32 bfloat16), 6-7 hold B (16 pair-rows x 16 columns x 2).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = 64;
    config.rows[t] = kTileRows;
  }
  return config;
}

// C[rows mb, mb + 1][cols nb, nb + 1] for every K block: two 16-row blocks of
// x (padded to a multiple of 32 rows) against two 16-column blocks of W.
__attribute__((target("amx-tile,amx-bf16"))) void tile_block(
    const c10::BFloat16* x, int64_t x_stride, const c10::BFloat16* b0, const c10::BFloat16* b1,
    int64_t k_blocks, float* c, int64_t c_stride) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kb = 0; kb < k_blocks; ++kb) {
    _tile_loadd(4, x + kb * kTileK, x_stride * 2);
    _tile_loadd(5, x + kTileRows * x_stride + kb * kTileK, x_stride * 2);
    _tile_loadd(6, b0 + kb * kTileRows * kTileK, 64);
    _tile_loadd(7, b1 + kb * kTileRows * kTileK, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, c_stride * 4);
  _tile_stored(1, c + 16, c_stride * 4);
  _tile_stored(2, c + kTileRows * c_stride, c_stride * 4);
  _tile_stored(3, c + kTileRows * c_stride + 16, c_stride * 4);
}

__attribute__((target("amx-tile,amx-bf16"))) void load_tile_config(const TileConfig& config) {
  _tile_loadconfig(&config);
}

__attribute__((target("amx-tile,amx-bf16"))) void release_tiles() { _tile_release(); }

// out[m][n] = bf16(c[m][n] + residual[m][n]) over columns [n0, n1).
R1KIT_AVX512 void finish_rows(const float* c, int64_t c_stride, const c10::BFloat16* residual,
                              c10::BFloat16* out, int64_t rows, int64_t n, int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t j = n0; j < n1; j += 16) {
      __m512 value = _mm512_loadu_ps(c + m * c_stride + j);
      if (residual) value = _mm512_add_ps(value, load16(residual + m * n + j));
      store16(out + m * n + j, value);
    }
  }
}

}  // namespace

bool amx_available() {
  static const bool available = [] {
    if (!cpu_has_avx512() || !__builtin_cpu_supports("amx-bf16") ||
        !__builtin_cpu_supports("amx-tile"))
      return false;
    constexpr int kRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr int kTileData = 18;               // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  return available;
}

bool amx_fits(const at::Tensor& weight) {
  return weight.dim() == 2 && weight.scalar_type() == at::kBFloat16 && weight.device().is_cpu() &&
         weight.size(1) % kTileK == 0 && weight.size(0) % (2 * kTileRows) == 0;
}

at::Tensor amx_pack(const at::Tensor& weight) {
  TORCH_CHECK(amx_fits(weight),
              "amx_pack: need a (N, K) bfloat16 weight with K % 32 == 0 and N % 32 == 0, got ",
              weight.sizes(), " ", weight.scalar_type());
  const int64_t n = weight.size(0), k = weight.size(1);
  // (N/16, 16, K/32, 16, 2) -> (N/16, K/32, 16 pair-rows, 16 columns, 2)
  return weight.contiguous()
      .view({n / kTileRows, kTileRows, k / kTileK, kTileK / 2, 2})
      .permute({0, 2, 3, 1, 4})
      .contiguous()
      .view({n / kTileRows, k / kTileK, kTileRows, kTileK});
}

at::Tensor amx_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& residual) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kBFloat16 && packed.dim() == 4 &&
                  x.size(1) == packed.size(1) * kTileK,
              "amx_linear: x ", x.sizes(), " does not fit packed ", packed.sizes());
  const int64_t rows = x.size(0), k = x.size(1), n = packed.size(0) * kTileRows;
  const int64_t padded = (rows + 2 * kTileRows - 1) / (2 * kTileRows) * (2 * kTileRows);
  TORCH_CHECK(
      !residual.defined() || (residual.sizes() == at::IntArrayRef{rows, n} &&
                              residual.is_contiguous() && residual.scalar_type() == at::kBFloat16),
      "amx_linear: residual ", residual.sizes(), " must be a contiguous bfloat16 (", rows, ", ", n,
      ")");
  // x padded with zero rows to whole pairs of tiles, and the float32 tiles:
  // buffers of the calling thread, kept between calls (fresh large buffers
  // cost page faults on every call).
  thread_local std::vector<c10::BFloat16> x_padded;
  thread_local std::vector<float> accumulator;
  if (x_padded.size() < static_cast<size_t>(padded * k))
    x_padded.resize(static_cast<size_t>(padded * k));
  if (accumulator.size() < static_cast<size_t>(padded * n))
    accumulator.resize(static_cast<size_t>(padded * n));
  const at::Tensor x_rows = x.contiguous();
  std::memcpy(x_padded.data(), x_rows.const_data_ptr<c10::BFloat16>(),
              static_cast<size_t>(rows * k) * 2);
  std::memset(static_cast<void*>(x_padded.data() + rows * k), 0,
              static_cast<size_t>((padded - rows) * k) * 2);
  at::Tensor out = at::empty({rows, n}, x.options());
  const c10::BFloat16* x_data = x_padded.data();
  const c10::BFloat16* w_data = packed.const_data_ptr<c10::BFloat16>();
  const c10::BFloat16* r_data =
      residual.defined() ? residual.const_data_ptr<c10::BFloat16>() : nullptr;
  c10::BFloat16* o_data = out.mutable_data_ptr<c10::BFloat16>();
  const int64_t k_blocks = k / kTileK, column_pairs = n / (2 * kTileRows);
  static const TileConfig config = make_config();
  // Pointers, not the thread_local buffers: inside the parallel body the
  // names would refer to each worker thread's own (empty) buffers.
  float* c_data = accumulator.data();
  at::parallel_for(0, column_pairs, 8, [&](int64_t begin, int64_t end) {
    load_tile_config(config);  // the tile state is per thread
    for (int64_t pair = begin; pair < end; ++pair) {
      const c10::BFloat16* b0 = w_data + (2 * pair) * k_blocks * kTileRows * kTileK;
      const c10::BFloat16* b1 = b0 + k_blocks * kTileRows * kTileK;
      for (int64_t m = 0; m < padded; m += 2 * kTileRows) {
        tile_block(x_data + m * k, k, b0, b1, k_blocks, c_data + m * n + pair * 32, n);
      }
    }
    release_tiles();
    finish_rows(c_data, n, r_data, o_data, rows, n, begin * 32, end * 32);
  });
  return out;
}

#else

bool amx_available() { return false; }
bool amx_fits(const at::Tensor&) { return false; }
at::Tensor amx_pack(const at::Tensor&) {
  TORCH_CHECK(false, "amx_pack: this build has no AMX kernels");
}
at::Tensor amx_linear(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  TORCH_CHECK(false, "amx_linear: this build has no AMX kernels");
}

#endif

}  // namespace r1kit
