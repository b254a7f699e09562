// Training-mode batch norm fused with ReLU (and with a residual add before the ReLU), for
// channels-last fp32 or bf16 activations on the CPU: cnnlab.kernels.bn_act builds this file
// with the host compiler and wraps it in an autograd Function.
//
// Why: in eager PyTorch on a 2-core CPU, batch norm forward and backward, ReLU's backward and
// the residual add are a quarter of resnet20's bf16 training step, each a separate pass that
// converts every bf16 element to fp32 and back (10-20 GB/s, against 180 GB/s for a copy of the
// same tensor). Here the forward is two passes (statistics; normalize + add + ReLU) and the
// backward two (per-channel sums; input gradient), over an (M, C) view of the NHWC tensor.
//
// Numbers: statistics are fp32 sums over blocks of rows, added in double; mean and variance,
// the affine factors and the backward's factors are computed in double and applied in fp32;
// every element is computed in fp32 and stored rounded to nearest even (bf16), as PyTorch's
// own kernels do. The ReLU mask of the backward is the forward's output > 0 (or NaN), recomputed from
// the input with the same fused multiply-add when there is no residual, read from the saved
// output when there is.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t kBlockRows = 256;  // rows summed in fp32 before the sums are added in double

inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const c10::BFloat16* p, int64_t i) {
  uint16_t bits;
  std::memcpy(&bits, p + i, 2);
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline void store(float* p, int64_t i, float v) { p[i] = v; }
inline void store(c10::BFloat16* p, int64_t i, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;  // round to nearest even
  uint16_t bits = v != v ? uint16_t(0x7FC0) : static_cast<uint16_t>(rounded);  // NaN stays NaN
  std::memcpy(p + i, &bits, 2);
}

// Calls f with a value of the element type: float or c10::BFloat16 (check_input allows no other).
template <typename F>
void dispatch(at::ScalarType type, F&& f) {
  if (type == at::kFloat)
    f(float{});
  else
    f(c10::BFloat16{});
}

inline float affine(float x, float scale, float shift) { return std::fma(x, scale, shift); }

// The loops run over tiles of whole rows, flat: with C = 16 a row is one vector, and a loop per
// row spent more time on its own overhead than on the work. A tile is tile_rows(C) rows (256
// values where C divides 256), and the per-channel factors are repeated to the tile's length.
inline int64_t tile_rows(int64_t C) { return (C < 256 && 256 % C == 0) ? 256 / C : 1; }

std::vector<float> tiled(const float* v, int64_t C) {
  std::vector<float> out(tile_rows(C) * C);
  for (size_t i = 0; i < out.size(); ++i) out[i] = v[i % C];
  return out;
}

// Sums over each block of kBlockRows rows, per channel, in fp32 (two sums at once); then the
// blocks' sums added in double in a fixed order, so the result does not depend on the threads.
// term(offset, n, s, q) adds rows [offset / C, offset / C + n / C) to the tile accumulators s, q.
template <typename Term>
void block_sums(int64_t rows, int64_t C, Term term, std::vector<double>& sum1, std::vector<double>& sum2) {
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows, tr = tile_rows(C), n = tr * C;
  std::vector<double> part1(blocks * C, 0.0), part2(blocks * C, 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> s_buf(n), q_buf(n);
    float* __restrict__ s = s_buf.data();
    float* __restrict__ q = q_buf.data();
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(s, s + n, 0.f);
      std::fill(q, q + n, 0.f);
      const int64_t r1 = std::min(rows, (b + 1) * kBlockRows);
      int64_t r = b * kBlockRows;
      for (; r + tr <= r1; r += tr) term(r * C, n, s, q);
      for (; r < r1; ++r) term(r * C, C, s, q);  // leftover rows: the tile's first row
      for (int64_t t = 0; t < tr; ++t)  // fold the tile's rows (no i % C: a division per value cost more than the sums)
        for (int64_t c = 0; c < C; ++c) {
          part1[b * C + c] += s[t * C + c];
          part2[b * C + c] += q[t * C + c];
        }
    }
  });
  sum1.assign(C, 0.0);
  sum2.assign(C, 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t c = 0; c < C; ++c) {
      sum1[c] += part1[b * C + c];
      sum2[c] += part2[b * C + c];
    }
}

// Per-channel sums of x and x*x over the rows.
template <typename T>
void channel_sums(const T* __restrict__ x, int64_t rows, int64_t C, std::vector<double>& sum, std::vector<double>& sq) {
  block_sums(rows, C, [&](int64_t o, int64_t n, float* __restrict__ s, float* __restrict__ q) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float v = load(x + o, i);
      s[i] += v;
      q[i] += v * v;
    }
  }, sum, sq);
}

// The ReLU's mask applied to dy: from the saved output y when there is one (with a residual),
// else from the output recomputed from x with the forward's own multiply-add.
template <bool kRelu, bool kSavedOutput, typename T>
inline float masked_grad(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ y, int64_t i,
                         float scale, float shift) {
  const float g = load(dy, i);
  if (!kRelu) return g;
  const float out = kSavedOutput ? load(y, i) : affine(load(x, i), scale, shift);
  return out <= 0.f ? 0.f : g;  // as threshold_backward: a NaN output passes the gradient
}

// Per-channel sums of g and g*x, where g is dy masked by the ReLU (output > 0).
// scale, shift: tiled (tile_rows(C) * C values).
template <bool kRelu, bool kSavedOutput, typename T>
void grad_sums(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ y,
               const float* __restrict__ scale, const float* __restrict__ shift, int64_t rows, int64_t C,
               std::vector<double>& sum_g, std::vector<double>& sum_gx) {
  block_sums(rows, C, [&](int64_t o, int64_t n, float* __restrict__ s, float* __restrict__ q) {
    const T* yo = kSavedOutput ? y + o : nullptr;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float g = masked_grad<kRelu, kSavedOutput>(dy + o, x + o, yo, i, scale[i], shift[i]);
      s[i] += g;
      q[i] += g * load(x + o, i);
    }
  }, sum_g, sum_gx);
}

// Calls body(offset, n) over rows [r0, r1) in tiles of tile_rows(C) rows, then single rows.
template <typename Body>
inline void over_tiles(int64_t r0, int64_t r1, int64_t C, Body body) {
  const int64_t tr = tile_rows(C);
  int64_t r = r0;
  for (; r + tr <= r1; r += tr) body(r * C, tr * C);
  for (; r < r1; ++r) body(r * C, C);
}

// y = relu(x * scale + shift [+ residual]) over rows [r0, r1); scale, shift tiled.
template <bool kRelu, bool kResidual, typename T>
void normalize_rows(const T* __restrict__ x, const T* __restrict__ res, T* __restrict__ y,
                    const float* __restrict__ scale, const float* __restrict__ shift, int64_t r0, int64_t r1,
                    int64_t C) {
  over_tiles(r0, r1, C, [&](int64_t o, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float v = affine(load(x + o, i), scale[i], shift[i]);
      if (kResidual) v += load(res + o, i);
      if (kRelu) v = v < 0.f ? 0.f : v;  // as torch.relu: NaN stays NaN
      store(y + o, i, v);
    }
  });
}

// dx = k1 g + k2 x + k3 (and dres = g) over rows [r0, r1); all factors tiled.
template <bool kRelu, bool kSavedOutput, typename T>
void grad_rows(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ dx,
               T* __restrict__ dres, const float* __restrict__ scale, const float* __restrict__ shift,
               const float* __restrict__ k1, const float* __restrict__ k2, const float* __restrict__ k3, int64_t r0,
               int64_t r1, int64_t C) {
  over_tiles(r0, r1, C, [&](int64_t o, int64_t n) {
    const T* yo = kSavedOutput ? y + o : nullptr;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float g = masked_grad<kRelu, kSavedOutput>(dy + o, x + o, yo, i, scale[i], shift[i]);
      if (kSavedOutput) store(dres + o, i, g);
      store(dx + o, i, std::fma(k1[i], g, std::fma(k2[i], load(x + o, i), k3[i])));
    }
  });
}

void check_input(const at::Tensor& x, const char* what) {
  TORCH_CHECK(x.dim() == 4, what, " must be 4-D (N, C, H, W)");
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), what, " must be channels-last contiguous");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, what, " must be fp32 or bf16");
  TORCH_CHECK(x.device().is_cpu(), what, " must be on the CPU");
}

// Forward: returns (y, mean, rstd, scale, shift); updates running_mean/running_var in place
// (running_var with the unbiased variance, as nn.BatchNorm2d).
std::vector<at::Tensor> bn_act_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                       const at::Tensor& running_mean, const at::Tensor& running_var,
                                       double momentum, double eps, const std::optional<at::Tensor>& residual,
                                       bool relu) {
  check_input(x, "input");
  const int64_t C = x.size(1), rows = x.numel() / C;
  TORCH_CHECK(rows > 1, "batch norm needs more than one value per channel");
  TORCH_CHECK(weight.scalar_type() == at::kFloat && bias.scalar_type() == at::kFloat, "weight and bias must be fp32");
  TORCH_CHECK(weight.numel() == C && bias.numel() == C, "weight and bias must have one value per channel");
  TORCH_CHECK(running_mean.scalar_type() == at::kFloat && running_var.scalar_type() == at::kFloat &&
                  running_mean.is_contiguous() && running_var.is_contiguous() && running_mean.numel() == C &&
                  running_var.numel() == C,
              "running_mean and running_var must be contiguous fp32 with one value per channel");
  if (residual) {
    check_input(*residual, "residual");
    TORCH_CHECK(residual->sizes() == x.sizes() && residual->scalar_type() == x.scalar_type(),
                "residual must match the input's shape and dtype");
  }
  const auto fopt = at::TensorOptions().dtype(at::kFloat);
  at::Tensor mean = at::empty({C}, fopt), rstd = at::empty({C}, fopt);
  at::Tensor scale = at::empty({C}, fopt), shift = at::empty({C}, fopt);
  at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  const at::Tensor w = weight.contiguous(), b = bias.contiguous();

  dispatch(x.scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    std::vector<double> sum, sq;
    channel_sums(xp, rows, C, sum, sq);
    const float* wp = w.const_data_ptr<float>();
    const float* bp = b.const_data_ptr<float>();
    float* mp = mean.mutable_data_ptr<float>();
    float* rp = rstd.mutable_data_ptr<float>();
    float* sp = scale.mutable_data_ptr<float>();
    float* hp = shift.mutable_data_ptr<float>();
    std::vector<double> var(C);
    for (int64_t c = 0; c < C; ++c) {
      const double m = sum[c] / rows;
      var[c] = std::max(sq[c] / rows - m * m, 0.0);
      const double r = 1.0 / std::sqrt(var[c] + eps);
      mp[c] = static_cast<float>(m);
      rp[c] = static_cast<float>(r);
      sp[c] = static_cast<float>(wp[c] * r);
      hp[c] = static_cast<float>(bp[c] - m * wp[c] * r);
    }
    float* rm = running_mean.mutable_data_ptr<float>();
    float* rv = running_var.mutable_data_ptr<float>();
    for (int64_t c = 0; c < C; ++c) {
      rm[c] = static_cast<float>((1 - momentum) * rm[c] + momentum * (sum[c] / rows));
      rv[c] = static_cast<float>((1 - momentum) * rv[c] + momentum * var[c] * rows / (rows - 1));
    }
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const scalar_t* res = residual ? residual->const_data_ptr<scalar_t>() : nullptr;
    const std::vector<float> st = tiled(sp, C), ht = tiled(hp, C);
    at::parallel_for(0, rows, kBlockRows, [&](int64_t r0, int64_t r1) {
      if (res && relu) normalize_rows<true, true>(xp, res, yp, st.data(), ht.data(), r0, r1, C);
      else if (res) normalize_rows<false, true>(xp, res, yp, st.data(), ht.data(), r0, r1, C);
      else if (relu) normalize_rows<true, false>(xp, res, yp, st.data(), ht.data(), r0, r1, C);
      else normalize_rows<false, false>(xp, res, yp, st.data(), ht.data(), r0, r1, C);
    });
  });
  return {y, mean, rstd, scale, shift};
}

// Backward: returns (dx, dweight, dbias, dresidual); dresidual is the masked dy (empty
// without a residual). y is the forward's output, needed only with a residual.
std::vector<at::Tensor> bn_act_backward(const at::Tensor& dy_in, const at::Tensor& x, const std::optional<at::Tensor>& y,
                                        const at::Tensor& weight, const at::Tensor& mean, const at::Tensor& rstd,
                                        const at::Tensor& scale, const at::Tensor& shift, bool relu) {
  check_input(x, "input");
  const at::Tensor dy = dy_in.contiguous(at::MemoryFormat::ChannelsLast).to(x.scalar_type());
  const int64_t C = x.size(1), rows = x.numel() / C;
  const bool has_residual = y.has_value() && y->defined();
  if (has_residual) check_input(*y, "output");
  const auto fopt = at::TensorOptions().dtype(at::kFloat);
  at::Tensor dweight = at::empty({C}, fopt), dbias = at::empty({C}, fopt);
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  // Without a residual, an empty tensor stands for "no gradient" (a list of tensors cannot hold None).
  at::Tensor dres = has_residual ? at::empty_like(x, at::MemoryFormat::ChannelsLast) : at::empty({0}, x.options());

  dispatch(x.scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = has_residual ? y->const_data_ptr<scalar_t>() : nullptr;
    const std::vector<float> st = tiled(scale.const_data_ptr<float>(), C);
    const std::vector<float> ht = tiled(shift.const_data_ptr<float>(), C);
    const float* sp = st.data();
    const float* hp = ht.data();
    std::vector<double> sum_g, sum_gx;
    if (relu && yp) grad_sums<true, true>(dyp, xp, yp, sp, hp, rows, C, sum_g, sum_gx);
    else if (relu) grad_sums<true, false>(dyp, xp, yp, sp, hp, rows, C, sum_g, sum_gx);
    else grad_sums<false, false>(dyp, xp, yp, sp, hp, rows, C, sum_g, sum_gx);  // no mask: y unread
    const float* wp = weight.const_data_ptr<float>();
    const float* mp = mean.const_data_ptr<float>();
    const float* rp = rstd.const_data_ptr<float>();
    float* dwp = dweight.mutable_data_ptr<float>();
    float* dbp = dbias.mutable_data_ptr<float>();
    std::vector<float> k1(C), k2(C), k3(C);
    for (int64_t c = 0; c < C; ++c) {
      const double m = mp[c], r = rp[c], w = wp[c];
      const double dw = r * (sum_gx[c] - m * sum_g[c]);  // sum of g * x_hat
      dwp[c] = static_cast<float>(dw);
      dbp[c] = static_cast<float>(sum_g[c]);
      // dx = w r (g - mean(g) - x_hat mean(g x_hat)) = k1 g + k2 x + k3
      k1[c] = static_cast<float>(w * r);
      k2[c] = static_cast<float>(-w * r * r * dw / rows);
      k3[c] = static_cast<float>(-w * r * sum_g[c] / rows + w * r * r * m * dw / rows);
    }
    scalar_t* dxp = dx.mutable_data_ptr<scalar_t>();
    scalar_t* drp = has_residual ? dres.mutable_data_ptr<scalar_t>() : nullptr;
    const std::vector<float> k1t = tiled(k1.data(), C), k2t = tiled(k2.data(), C), k3t = tiled(k3.data(), C);
    const float *k1p = k1t.data(), *k2p = k2t.data(), *k3p = k3t.data();
    at::parallel_for(0, rows, kBlockRows, [&](int64_t r0, int64_t r1) {
      if (relu && yp) grad_rows<true, true>(dyp, xp, yp, dxp, drp, sp, hp, k1p, k2p, k3p, r0, r1, C);
      else if (relu) grad_rows<true, false>(dyp, xp, yp, dxp, drp, sp, hp, k1p, k2p, k3p, r0, r1, C);
      else if (yp) grad_rows<false, true>(dyp, xp, yp, dxp, drp, sp, hp, k1p, k2p, k3p, r0, r1, C);  // dres = dy
      else grad_rows<false, false>(dyp, xp, yp, dxp, drp, sp, hp, k1p, k2p, k3p, r0, r1, C);
    });
  });
  return {dx, dweight, dbias, dres};
}

}  // namespace

TORCH_LIBRARY(cnnlab_kernels, m) {
  m.def("bn_act_forward(Tensor x, Tensor weight, Tensor bias, Tensor running_mean, Tensor running_var, "
        "float momentum, float eps, Tensor? residual, bool relu) -> Tensor[]");
  m.def("bn_act_backward(Tensor dy, Tensor x, Tensor? y, Tensor weight, Tensor mean, Tensor rstd, "
        "Tensor scale, Tensor shift, bool relu) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(cnnlab_kernels, CPU, m) {
  m.impl("bn_act_forward", bn_act_forward);
  m.impl("bn_act_backward", bn_act_backward);
}
