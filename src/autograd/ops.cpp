#include "autograd/ops.h"

#include <cstring>
#include <memory>

#include "base/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/typed_linear.h"
#include "kernels/cpu/xent.h"

namespace pf {

namespace {
void check_contig(const Var& v, const char* op) {
  PF_CHECK(v.value().is_contiguous(), op, ": input must be contiguous");
}
void check_same(const Var& a, const Var& b, const char* op) {
  PF_CHECK(a.shape() == b.shape(), op, ": shapes ", shape_str(a.shape()), " and ",
           shape_str(b.shape()), " differ");
}
Var make_out(const Shape& shape, bool zero = false) {
  return Var(zero ? Tensor::zeros(shape) : Tensor::empty(shape));
}
}  // namespace

Var linear(const Var& x, const Var& W) {
  check_contig(x, "linear");
  PF_CHECK(W.value().dim() == 2 && x.shape().back() == W.shape()[1], "linear: input ",
           shape_str(x.shape()), " does not match weight ", shape_str(W.shape()));
  const int64_t K = W.shape()[1], N = W.shape()[0], M = x.value().numel() / K;
  Shape os = x.shape();
  os.back() = N;
  Var y = make_out(os);
  cpu::linear_fwd(M, N, K, x.data(), W.value(), 0.0f, y.data());
  if (needs_grad({&x, &W})) {
    PF_CHECK(W.value().dtype() == DType::F32, "training needs f32 weights, but ",
             shape_str(W.shape()), " is ", dtype_name(W.value().dtype()),
             " (low-precision weights are for inference)");
    y.set_requires_grad(true);
    Tape::active()->record([x, W, y, M, N, K] {
      const float* dy = y.grad().data();
      // dx(M,K) += dy(M,N) W(N,K); dW(N,K) += dy^T(N,M) x(M,K)
      if (x.requires_grad())
        cpu::gemm(false, false, M, K, N, 1.0f, dy, N, W.data(), K, 1.0f, x.grad().data(), K);
      if (W.requires_grad())
        cpu::gemm(true, false, N, K, M, 1.0f, dy, N, x.data(), K, 1.0f, W.grad().data(), K);
    });
  }
  return y;
}

Var matmul(const Var& a, const Var& b) {
  check_contig(a, "matmul");
  check_contig(b, "matmul");
  const bool batched = a.value().dim() == 3;
  PF_CHECK(a.value().dim() == b.value().dim() && (a.value().dim() == 2 || batched),
           "matmul: expects two 2-D or two 3-D tensors, got ", shape_str(a.shape()), " and ",
           shape_str(b.shape()));
  const int64_t G = batched ? a.shape()[0] : 1;
  const int64_t M = a.shape()[batched], K = a.shape()[batched + 1], N = b.shape()[batched + 1];
  PF_CHECK(b.shape()[batched] == K && (!batched || b.shape()[0] == G), "matmul: shapes ",
           shape_str(a.shape()), " and ", shape_str(b.shape()), " do not chain");
  Var y = make_out(batched ? Shape{G, M, N} : Shape{M, N});
  cpu::gemm_batched(G, false, false, M, N, K, 1.0f, a.data(), K, M * K, b.data(), N, K * N, 0.0f,
                    y.data(), N, M * N);
  if (needs_grad({&a, &b})) {
    y.set_requires_grad(true);
    Tape::active()->record([a, b, y, G, M, N, K] {
      const float* dy = y.grad().data();
      // da(M,K) += dy(M,N) b^T; db(K,N) += a^T dy
      if (a.requires_grad())
        cpu::gemm_batched(G, false, true, M, K, N, 1.0f, dy, N, M * N, b.data(), N, K * N, 1.0f,
                          a.grad().data(), K, M * K);
      if (b.requires_grad())
        cpu::gemm_batched(G, true, false, K, N, M, 1.0f, a.data(), K, M * K, dy, N, M * N, 1.0f,
                          b.grad().data(), N, K * N);
    });
  }
  return y;
}

Var embedding(const Var& W, const std::vector<int32_t>& ids, int64_t B, int64_t T) {
  PF_CHECK(static_cast<int64_t>(ids.size()) == B * T, "embedding: ", ids.size(),
           " ids for B*T = ", B * T);
  const int64_t V = W.shape()[0], D = W.shape()[1];
  Var y = make_out({B, T, D});
  if (W.value().dtype() == DType::F32)
    cpu::embedding_fwd(B * T, V, D, ids.data(), W.data(), y.data());
  else
    cpu::embedding_fwd(B * T, ids.data(), W.value(), y.data());
  if (needs_grad({&W})) {
    PF_CHECK(W.value().dtype() == DType::F32, "training needs an f32 embedding");
    y.set_requires_grad(true);
    auto idp = std::make_shared<std::vector<int32_t>>(ids);
    Tape::active()->record([W, y, idp, D] {
      cpu::embedding_bwd(static_cast<int64_t>(idp->size()), D, idp->data(), y.grad().data(),
                         W.grad().data());
    });
  }
  return y;
}

Var reshape(const Var& x, const Shape& shape) {
  Var y(x.value().view(shape));
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    y.impl()->grad = x.grad().view(shape);
  }
  return y;
}

Var rows(const Var& x, int64_t begin, int64_t end) {
  PF_CHECK(x.value().dim() == 2 && x.value().is_contiguous(),
           "rows: expects a contiguous 2-D tensor");
  Var y(x.value().slice(0, begin, end));
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    y.impl()->grad = x.grad().slice(0, begin, end);
  }
  return y;
}

Var checkpoint(const std::function<Var(const Var&)>& f, const Var& x) {
  Tape* tape = Tape::active();
  if (!tape) return f(x);
  Tensor out;
  {
    NoGradScope no_grad;
    out = f(x).value();
  }
  Var y(out, true);
  tape->record([f, x, y] {
    Tape local;
    Var xd(x.value(), x.requires_grad());  // a leaf sharing x's value
    Var again;
    {
      TapeScope scope(local);
      again = f(xd);
    }
    local.backward_from(again, y.grad());
    if (x.requires_grad()) cpu::axpy(x.value().numel(), 1.0f, xd.grad().data(), x.grad().data());
  });
  return y;
}

Var concat_rows(const std::vector<Var>& parts) {
  PF_CHECK(!parts.empty(), "concat_rows: nothing to concatenate");
  const int64_t cols = parts[0].shape().back();
  int64_t total = 0;
  for (const Var& p : parts) {
    check_contig(p, "concat_rows");
    PF_CHECK(p.value().dim() == 2 && p.shape()[1] == cols, "concat_rows: ", shape_str(p.shape()),
             " does not have ", cols, " columns");
    total += p.shape()[0];
  }
  const DType dt = parts[0].value().dtype();
  if (dt != DType::F32) {
    // Compact weights (inference only): the values and Q8 scales are concatenated as stored.
    Tensor out = Tensor::empty_typed({total, cols}, dt, parts[0].value().group());
    int64_t off = 0;
    for (const Var& p : parts) {
      PF_CHECK(!needs_grad({&p}) && p.value().dtype() == dt &&
                   p.value().group() == parts[0].value().group(),
               "concat_rows: parts of different dtypes, or compact weights that need gradients");
      out.slice(0, off, off + p.shape()[0]).copy_from(p.value());
      off += p.shape()[0];
    }
    return Var(out);
  }
  Var y = make_out({total, cols});
  int64_t off = 0;
  bool grad = false;
  for (const Var& p : parts) {
    std::memcpy(y.data() + off * cols, p.data(), p.value().numel() * sizeof(float));
    off += p.shape()[0];
    grad = grad || needs_grad({&p});
  }
  if (grad) {
    y.set_requires_grad(true);
    Tape::active()->record([parts, y, cols] {
      int64_t o = 0;
      for (const Var& p : parts) {
        const int64_t n = p.value().numel();
        if (p.requires_grad()) cpu::axpy(n, 1.0f, y.grad().data() + o * cols, p.grad().data());
        o += p.shape()[0];
      }
    });
  }
  return y;
}

std::vector<Var> split_last(const Var& x, const std::vector<int64_t>& sizes) {
  check_contig(x, "split_last");
  const int64_t C = x.shape().back(), rows = x.value().numel() / C;
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  PF_CHECK(total == C, "split_last: sizes add up to ", total, ", last dim is ", C);
  std::vector<Var> out;
  int64_t off = 0;
  const bool grad = needs_grad({&x});
  for (int64_t s : sizes) {
    Shape sh = x.shape();
    sh.back() = s;
    Var y = make_out(sh);
    const float* src = x.data() + off;
    float* dst = y.data();
#pragma omp parallel for schedule(static) if (rows * s > 65536)
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * s, src + r * C, s * sizeof(float));
    if (grad) {
      y.set_requires_grad(true);
      Tape::active()->record([x, y, rows, C, s, off] {
        float* dx = x.grad().data() + off;
        const float* dy = y.grad().data();
#pragma omp parallel for schedule(static) if (rows * s > 65536)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < s; ++j) dx[r * C + j] += dy[r * s + j];
      });
    }
    out.push_back(y);
    off += s;
  }
  return out;
}

Var seq_tail(const Var& x, int64_t n) {
  check_contig(x, "seq_tail");
  PF_CHECK(x.value().dim() == 3 && n > 0 && n <= x.shape()[1], "seq_tail: ", n, " positions of ",
           shape_str(x.shape()));
  const int64_t B = x.shape()[0], T = x.shape()[1], C = x.shape()[2];
  Var y = make_out({B, n, C});
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(x.data() + (b * T + T - n) * C, n * C, y.data() + b * n * C);
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, y, B, T, C, n] {
      for (int64_t b = 0; b < B; ++b)
        cpu::axpy(n * C, 1.0f, y.grad().data() + b * n * C, x.grad().data() + (b * T + T - n) * C);
    });
  }
  return y;
}

Var repeat_batch(const Var& x, int64_t B) {
  check_contig(x, "repeat_batch");
  PF_CHECK(x.value().dim() == 2 && B > 0, "repeat_batch: ", B, " copies of ",
           shape_str(x.shape()));
  const int64_t n = x.value().numel();
  Var y = make_out({B, x.shape()[0], x.shape()[1]});
  for (int64_t b = 0; b < B; ++b) std::copy_n(x.data(), n, y.data() + b * n);
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, y, B, n] {
      for (int64_t b = 0; b < B; ++b) cpu::axpy(n, 1.0f, y.grad().data() + b * n, x.grad().data());
    });
  }
  return y;
}

Var seq_mean(const Var& x) {
  check_contig(x, "seq_mean");
  PF_CHECK(x.value().dim() == 3 && x.shape()[1] > 0, "seq_mean: ", shape_str(x.shape()));
  const int64_t B = x.shape()[0], T = x.shape()[1], C = x.shape()[2];
  Var y = make_out({B, C}, /*zero=*/true);
  const float inv = 1.0f / static_cast<float>(T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) cpu::axpy(C, inv, x.data() + (b * T + t) * C, y.data() + b * C);
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, y, B, T, C, inv] {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          cpu::axpy(C, inv, y.grad().data() + b * C, x.grad().data() + (b * T + t) * C);
    });
  }
  return y;
}

Var add(const Var& a, const Var& b) {
  check_same(a, b, "add");
  Var y = make_out(a.shape());
  const int64_t n = y.value().numel();
  cpu::add_fwd(n, a.data(), b.data(), y.data());
  if (needs_grad({&a, &b})) {
    y.set_requires_grad(true);
    Tape::active()->record([a, b, y, n] {
      if (a.requires_grad()) cpu::axpy(n, 1.0f, y.grad().data(), a.grad().data());
      if (b.requires_grad()) cpu::axpy(n, 1.0f, y.grad().data(), b.grad().data());
    });
  }
  return y;
}

Var mul(const Var& a, const Var& b) {
  check_same(a, b, "mul");
  Var y = make_out(a.shape());
  const int64_t n = y.value().numel();
  cpu::mul_fwd(n, a.data(), b.data(), y.data());
  if (needs_grad({&a, &b})) {
    y.set_requires_grad(true);
    Tape::active()->record([a, b, y, n] {
      cpu::mul_bwd(n, a.data(), b.data(), y.grad().data(),
                   a.requires_grad() ? a.grad().data() : nullptr,
                   b.requires_grad() ? b.grad().data() : nullptr);
    });
  }
  return y;
}

Var scale(const Var& a, float s) {
  Var y = make_out(a.shape());
  const int64_t n = y.value().numel();
  cpu::scale_fwd(n, s, a.data(), y.data());
  if (needs_grad({&a})) {
    y.set_requires_grad(true);
    Tape::active()->record([a, y, n, s] { cpu::axpy(n, s, y.grad().data(), a.grad().data()); });
  }
  return y;
}

namespace {
// Shared shape of unary activations: y = f(x), dx += f'(x) dy.
template <typename Fwd, typename Bwd>
Var unary(const Var& x, Fwd fwd, Bwd bwd) {
  Var y = make_out(x.shape());
  const int64_t n = y.value().numel();
  fwd(n, x.data(), y.data());
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, y, n, bwd] { bwd(n, x.data(), y.grad().data(), x.grad().data()); });
  }
  return y;
}
}  // namespace

Var gelu(const Var& x) { return unary(x, cpu::gelu_fwd, cpu::gelu_bwd); }
Var silu(const Var& x) { return unary(x, cpu::silu_fwd, cpu::silu_bwd); }

Var swiglu(const Var& gate, const Var& up) {
  check_same(gate, up, "swiglu");
  Var y = make_out(gate.shape());
  const int64_t n = y.value().numel();
  cpu::swiglu_fwd(n, gate.data(), up.data(), y.data());
  if (needs_grad({&gate, &up})) {
    y.set_requires_grad(true);
    Tape::active()->record([gate, up, y, n] {
      // Both grads are needed in practice; allocate them even if one side is frozen.
      cpu::swiglu_bwd(n, gate.data(), up.data(), y.grad().data(), gate.grad().data(),
                      up.grad().data());
    });
  }
  return y;
}

Var dropout(const Var& x, float p, uint64_t seed) {
  if (p <= 0.0f) return x;
  PF_CHECK(p < 1.0f, "dropout probability must be < 1, got ", p);
  Var y = make_out(x.shape());
  const int64_t n = y.value().numel();
  cpu::dropout_fwd(n, p, seed, x.data(), y.data());
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    Tape::active()->record(
        [x, y, n, p, seed] { cpu::dropout_bwd(n, p, seed, y.grad().data(), x.grad().data()); });
  }
  return y;
}

Var rmsnorm(const Var& x, const Var& w, float eps) {
  check_contig(x, "rmsnorm");
  const int64_t D = x.shape().back(), rows = x.value().numel() / D;
  Var y = make_out(x.shape());
  Tensor rstd = Tensor::empty({rows});
  cpu::rmsnorm_fwd(rows, D, eps, x.data(), w.defined() ? w.data() : nullptr, y.data(), rstd.data());
  if (needs_grad({&x, &w})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, w, y, rstd, rows, D] {
      const bool wg = w.defined() && w.requires_grad();
      cpu::rmsnorm_bwd(rows, D, x.data(), w.defined() ? w.data() : nullptr, rstd.data(),
                       y.grad().data(), x.grad().data(), wg ? w.grad().data() : nullptr);
    });
  }
  return y;
}

Var layernorm(const Var& x, const Var& w, const Var& b, float eps) {
  check_contig(x, "layernorm");
  const int64_t D = x.shape().back(), rows = x.value().numel() / D;
  Var y = make_out(x.shape());
  Tensor mean = Tensor::empty({rows}), rstd = Tensor::empty({rows});
  cpu::layernorm_fwd(rows, D, eps, x.data(), w.defined() ? w.data() : nullptr,
                     b.defined() ? b.data() : nullptr, y.data(), mean.data(), rstd.data());
  if (needs_grad({&x, &w, &b})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, w, b, y, mean, rstd, rows, D] {
      const bool wg = w.defined() && w.requires_grad(), bg = b.defined() && b.requires_grad();
      cpu::layernorm_bwd(rows, D, x.data(), w.defined() ? w.data() : nullptr, mean.data(),
                         rstd.data(), y.grad().data(), x.grad().data(),
                         wg ? w.grad().data() : nullptr, bg ? b.grad().data() : nullptr);
    });
  }
  return y;
}

Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets) {
  check_contig(logits, "cross_entropy");
  const int64_t V = logits.shape().back(), N = logits.value().numel() / V;
  PF_CHECK(static_cast<int64_t>(targets.size()) == N, "cross_entropy: ", targets.size(),
           " targets for ", N, " rows");
  Tensor lse = Tensor::empty({N});
  int64_t count = 0;
  double total = cpu::xent_fwd(N, V, logits.data(), targets.data(), lse.data(), &count);
  Var y(Tensor::full({1}, count ? static_cast<float>(total / count) : 0.0f));
  if (needs_grad({&logits}) && count > 0) {
    y.set_requires_grad(true);
    auto tp = std::make_shared<std::vector<int32_t>>(targets);
    Tape::active()->record([logits, y, lse, tp, N, V, count] {
      const float g = y.grad().data()[0] / static_cast<float>(count);
      cpu::xent_bwd(N, V, logits.data(), tp->data(), lse.data(), g, logits.grad().data());
    });
  }
  return y;
}

Var rope(const Var& x, int64_t pos0, float theta) {
  return rope(x, pos0, cpu::RopeStyle{theta, false, false});
}

Var rope(const Var& x, int64_t pos0, const cpu::RopeStyle& style) {
  check_contig(x, "rope");
  PF_CHECK(x.value().dim() == 4 && x.shape()[3] % 2 == 0, "rope: expects (B, T, H, even hd), got ",
           shape_str(x.shape()));
  const int64_t B = x.shape()[0], T = x.shape()[1], H = x.shape()[2], hd = x.shape()[3];
  Var y = make_out(x.shape());
  cpu::rope_fwd(B, T, H, hd, pos0, style, x.data(), y.data());
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, y, B, T, H, hd, pos0, style] {
      cpu::rope_bwd(B, T, H, hd, pos0, style, y.grad().data(), x.grad().data());
    });
  }
  return y;
}

Var scale_rows(const Var& x, const Tensor& factors) {
  check_contig(x, "scale_rows");
  const int64_t rows = factors.numel(), n = x.value().numel() / rows;
  PF_CHECK(rows * n == x.value().numel(), "scale_rows: ", rows, " factors for shape ",
           shape_str(x.shape()));
  Var y = make_out(x.shape());
  const float* f = factors.data();
#pragma omp parallel for schedule(static) if (rows * n > 65536)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) y.data()[r * n + j] = x.data()[r * n + j] * f[r];
  if (needs_grad({&x})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, y, factors, rows, n] {
      const float* g = y.grad().data();
      float* dx = x.grad().data();
      const float* fr = factors.data();
#pragma omp parallel for schedule(static) if (rows * n > 65536)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) dx[r * n + j] += g[r * n + j] * fr[r];
    });
  }
  return y;
}

Var attention(const Var& q, const Var& k, const Var& v) {
  PF_CHECK(q.value().dim() == 4 && k.value().dim() == 4 && q.shape()[1] == k.shape()[1],
           "attention: q ", shape_str(q.shape()), " and k ", shape_str(k.shape()), " do not match");
  return attention(q, k, v, cpu::AttnMask::Causal, 0);
}

Var attention(const Var& q, const Var& k, const Var& v, cpu::AttnMask mask, int64_t q_pos0) {
  check_contig(q, "attention");
  check_contig(k, "attention");
  check_contig(v, "attention");
  check_same(k, v, "attention");
  PF_CHECK(q.value().dim() == 4 && k.value().dim() == 4 && q.shape()[0] == k.shape()[0] &&
               q.shape()[3] == k.shape()[3],
           "attention: q ", shape_str(q.shape()), " and k ", shape_str(k.shape()), " do not match");
  const int64_t B = q.shape()[0], Tq = q.shape()[1], H = q.shape()[2], hd = q.shape()[3];
  const int64_t Tk = k.shape()[1], KV = k.shape()[2];
  const cpu::AttnShape s = cpu::attn_shape(B, Tq, Tk, H, KV, hd, mask, q_pos0);
  Var y = make_out(q.shape());
  Tensor lse = Tensor::empty({B, H, Tq});
  cpu::attention_fwd(s, q.data(), k.data(), v.data(), y.data(), lse.data());
  if (needs_grad({&q, &k, &v})) {
    y.set_requires_grad(true);
    Tape::active()->record([q, k, v, y, lse, s] {
      cpu::attention_bwd(s, q.data(), k.data(), v.data(), y.data(), lse.data(), y.grad().data(),
                         q.grad().data(), k.grad().data(), v.grad().data());
    });
  }
  return y;
}

}  // namespace pf
