// Compiled CPU recurrences of durnn_plugin (built on first use by ops/cpu_extension.py).
//
// IndRNN, on the undilated view (ops/time_dilation.py), a (T, M) with M = R·N columns, u (N,),
// h0 (M,), column c = r·N + n:
//     h_t = relu(a_t + u ⊙ h_{t-1})
//     ∂a_t = 1[h_t > 0] ⊙ (g_t + u ⊙ ∂a_{t+1}),  ∂u_c = Σ_t ∂a_t,c h_{t-1},c,  ∂h0 = u ⊙ ∂a_0
// Every column recurs on its own, so the columns are split once over the threads and each
// thread runs the whole time loop on its range: no synchronisation between steps.
//
// DuRNN short-term, p (T, B, N) = W_s x_t + b_s, U (N, N), s0 (B, N):
//     s_t = φ(p_t + s_{t-1} Uᵀ)                     φ = relu or tanh
//     ∂z_t = φ'(z_t) ⊙ (g_t + ∂z_{t+1} U)           φ' = 1[s_t > 0] or 1 - s_t²
// Every batch row recurs on its own, so the rows are split once over the threads, each running
// one small GEMM per step on its rows (torch's addmm, single-threaded inside the region).
//
// One decoding step of a whole post-norm stack layer (x (B, D) -> y (B, C)): the cell, the
// residual and the norm in one call, so a token costs a handful of ATen calls instead of a few
// dozen Python-level ops (modules/layer_step.py states the equations and when it runs).
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

constexpr int64_t kColumnGrain = 1024;  // columns per task: below this one thread runs them

template <typename scalar_t>
void indrnn_forward_range(const scalar_t* a, const scalar_t* u_rep, const scalar_t* h0,
                          scalar_t* h, int64_t T, int64_t M, int64_t c0, int64_t c1) {
  const scalar_t* prev = h0;
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* __restrict__ at = a + t * M;
    scalar_t* __restrict__ ht = h + t * M;
    for (int64_t c = c0; c < c1; ++c) {
      const scalar_t z = at[c] + u_rep[c] * prev[c];
      ht[c] = z < scalar_t(0) ? scalar_t(0) : z;  // NaN passes, as in torch.relu
    }
    prev = ht;
  }
}

template <typename scalar_t>
void indrnn_backward_range(const scalar_t* g, const scalar_t* h, const scalar_t* u_rep,
                           const scalar_t* h0, const scalar_t* zeros, scalar_t* ga,
                           scalar_t* gu_col, scalar_t* gh0, int64_t T, int64_t M, int64_t c0,
                           int64_t c1) {
  // ∂u is summed over up to T steps per column: in double, so long sequences lose no digits
  std::vector<double> gu(c1 - c0, 0.0);
  double* __restrict__ acc = gu.data() - c0;
  for (int64_t t = T - 1; t >= 0; --t) {
    const scalar_t* __restrict__ gt = g + t * M;
    const scalar_t* __restrict__ ht = h + t * M;
    const scalar_t* __restrict__ hprev = t > 0 ? h + (t - 1) * M : h0;
    scalar_t* __restrict__ gat = ga + t * M;
    // ∂a_{T} = 0: the last step reads a zero row instead of a branch per element
    const scalar_t* __restrict__ gnext = t + 1 < T ? ga + (t + 1) * M : zeros;
    for (int64_t c = c0; c < c1; ++c) {
      const scalar_t v = ht[c] > scalar_t(0) ? gt[c] + u_rep[c] * gnext[c] : scalar_t(0);
      gat[c] = v;
      acc[c] += static_cast<double>(v * hprev[c]);
    }
  }
  for (int64_t c = c0; c < c1; ++c) gu_col[c] = static_cast<scalar_t>(acc[c]);
  for (int64_t c = c0; c < c1; ++c) gh0[c] = T > 0 ? u_rep[c] * ga[c] : scalar_t(0);
}

// u (N,) repeated over the R rows of the view: (R·N,), so the inner loops are contiguous.
torch::Tensor repeat_over_rows(const torch::Tensor& u, int64_t M) {
  return u.contiguous().repeat({M / u.size(0)});
}

void check_indrnn(const torch::Tensor& a, const torch::Tensor& u, const torch::Tensor& h0) {
  TORCH_CHECK(a.dim() == 2 && u.dim() == 1 && h0.dim() == 1, "indrnn: a (T, M), u (N,), h0 (M,)");
  TORCH_CHECK(a.size(1) == h0.size(0) && a.size(1) % u.size(0) == 0,
              "indrnn: M must equal h0's size and be a multiple of N");
  TORCH_CHECK(a.device().is_cpu(), "indrnn: CPU tensors only");
}

}  // namespace

// a (T, M), u (N,), h0 (M,), all one dtype (fp32/fp64) -> h (T, M)
torch::Tensor indrnn_forward(torch::Tensor a, torch::Tensor u, torch::Tensor h0) {
  check_indrnn(a, u, h0);
  a = a.contiguous();
  h0 = h0.contiguous();
  const int64_t T = a.size(0), M = a.size(1);
  auto h = torch::empty_like(a);
  auto u_rep = repeat_over_rows(u, M);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "indrnn_forward", [&] {
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pu = u_rep.data_ptr<scalar_t>();
    const scalar_t* p0 = h0.data_ptr<scalar_t>();
    scalar_t* ph = h.data_ptr<scalar_t>();
    at::parallel_for(0, M, kColumnGrain, [&](int64_t c0, int64_t c1) {
      indrnn_forward_range(pa, pu, p0, ph, T, M, c0, c1);
    });
  });
  return h;
}

// grad_h (T, M), h (T, M), u (N,), h0 (M,) -> {∂a (T, M), ∂u per column (M,), ∂h0 (M,)}
std::vector<torch::Tensor> indrnn_backward(torch::Tensor grad_h, torch::Tensor h, torch::Tensor u,
                                           torch::Tensor h0) {
  check_indrnn(h, u, h0);
  grad_h = grad_h.contiguous();
  h0 = h0.contiguous();
  const int64_t T = h.size(0), M = h.size(1);
  auto grad_a = torch::empty_like(h);
  auto grad_u_col = torch::empty_like(h0);
  auto grad_h0 = torch::empty_like(h0);
  auto u_rep = repeat_over_rows(u, M);
  auto zeros = torch::zeros_like(h0);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "indrnn_backward", [&] {
    const scalar_t* pg = grad_h.data_ptr<scalar_t>();
    const scalar_t* ph = h.data_ptr<scalar_t>();
    const scalar_t* pu = u_rep.data_ptr<scalar_t>();
    const scalar_t* p0 = h0.data_ptr<scalar_t>();
    scalar_t* pga = grad_a.data_ptr<scalar_t>();
    scalar_t* pgu = grad_u_col.data_ptr<scalar_t>();
    scalar_t* pg0 = grad_h0.data_ptr<scalar_t>();
    at::parallel_for(0, M, kColumnGrain, [&](int64_t c0, int64_t c1) {
      indrnn_backward_range(pg, ph, pu, p0, zeros.data_ptr<scalar_t>(), pga, pgu, pg0, T, M,
                            c0, c1);
    });
  });
  return {grad_a, grad_u_col, grad_h0};
}

namespace {

bool is_relu(const std::string& activation) {
  TORCH_CHECK(activation == "relu" || activation == "tanh",
              "short_rnn: activation must be relu or tanh, got ", activation);
  return activation == "relu";
}

template <typename scalar_t>
void relu_rows_(scalar_t* z, int64_t count) {
  for (int64_t i = 0; i < count; ++i) z[i] = z[i] < scalar_t(0) ? scalar_t(0) : z[i];
}

}  // namespace

// p (T, B, N), U (N, N), s0 (B, N) -> s (T, B, N)
torch::Tensor short_rnn_forward(torch::Tensor p, torch::Tensor U, torch::Tensor s0,
                                const std::string& activation) {
  const bool relu = is_relu(activation);
  TORCH_CHECK(p.dim() == 3 && U.dim() == 2 && s0.dim() == 2, "short_rnn: p (T, B, N), U, s0");
  p = p.contiguous();
  s0 = s0.contiguous();
  const int64_t T = p.size(0), B = p.size(1), N = p.size(2);
  auto s = torch::empty_like(p);
  auto Ut = U.t();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    at::NoGradGuard no_grad;  // worker threads start with autograd's default mode
    const int64_t rows = b1 - b0;
    torch::Tensor prev = s0.narrow(0, b0, rows);
    for (int64_t t = 0; t < T; ++t) {
      auto out = s.select(0, t).narrow(0, b0, rows);
      at::addmm_out(out, p.select(0, t).narrow(0, b0, rows), prev, Ut);
      if (relu) {
        AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "short_rnn_relu", [&] {
          relu_rows_(out.data_ptr<scalar_t>(), rows * N);
        });
      } else {
        out.tanh_();
      }
      prev = out;
    }
  });
  return s;
}

// grad_s (T, B, N), s (T, B, N), U (N, N) -> ∂p (T, B, N) (= ∂z); ∂U and ∂s0 are GEMMs outside
torch::Tensor short_rnn_backward(torch::Tensor grad_s, torch::Tensor s, torch::Tensor U,
                                 const std::string& activation) {
  const bool relu = is_relu(activation);
  grad_s = grad_s.contiguous();
  const int64_t T = s.size(0), B = s.size(1), N = s.size(2);
  auto grad_p = torch::empty_like(s);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    at::NoGradGuard no_grad;
    const int64_t rows = b1 - b0;
    for (int64_t t = T - 1; t >= 0; --t) {
      auto out = grad_p.select(0, t).narrow(0, b0, rows);
      auto g = grad_s.select(0, t).narrow(0, b0, rows);
      if (t == T - 1) {
        out.copy_(g);
      } else {
        at::addmm_out(out, g, grad_p.select(0, t + 1).narrow(0, b0, rows), U);
      }
      auto st = s.select(0, t).narrow(0, b0, rows);
      AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "short_rnn_slope", [&] {
        scalar_t* po = out.data_ptr<scalar_t>();
        const scalar_t* ps = st.data_ptr<scalar_t>();
        const int64_t count = rows * N;
        if (relu) {
          for (int64_t i = 0; i < count; ++i) po[i] = ps[i] > scalar_t(0) ? po[i] : scalar_t(0);
        } else {
          for (int64_t i = 0; i < count; ++i) po[i] *= scalar_t(1) - ps[i] * ps[i];
        }
      });
    }
  });
  return grad_p;
}

namespace {

// y + skip(x) (identity, a projection, or none), then the layer norm (or none); y (B, C)
torch::Tensor residual_and_norm(torch::Tensor y, const torch::Tensor& x, const std::string& skip,
                                const c10::optional<torch::Tensor>& skip_weight,
                                const c10::optional<torch::Tensor>& norm_weight,
                                const c10::optional<torch::Tensor>& norm_bias, double norm_eps) {
  if (skip == "identity") {
    y.add_(x);
  } else if (skip == "linear") {
    y.addmm_(x, skip_weight->t());
  } else {
    TORCH_CHECK(skip == "none", "layer step: skip must be identity, linear or none");
  }
  if (norm_weight.has_value()) {
    return at::layer_norm(y, {y.size(1)}, norm_weight, norm_bias, norm_eps);
  }
  return y;
}

void activate_(torch::Tensor& z, bool relu) {
  if (relu) {
    z.relu_();
  } else {
    z.tanh_();
  }
}

}  // namespace

// DuRNN layer, one step: x (B, D), s0 (B, N_s), h0 (B, N_l); W_x = [W_g; W_li] (N_gx + N_lx,
// D) or none -> {y (B, C), s (B, N_s), h (B, N_l)}
std::vector<torch::Tensor> durnn_layer_step(
    torch::Tensor x, torch::Tensor s0, torch::Tensor h0, torch::Tensor W_s,
    c10::optional<torch::Tensor> W_x, torch::Tensor b_s, torch::Tensor U_s,
    c10::optional<torch::Tensor> V_g, c10::optional<torch::Tensor> b_g, torch::Tensor W_l,
    torch::Tensor b_l, torch::Tensor u, int64_t gate_x_size, int64_t long_x_size, bool relu,
    bool concat_output, const std::string& skip, c10::optional<torch::Tensor> skip_weight,
    c10::optional<torch::Tensor> norm_weight, c10::optional<torch::Tensor> norm_bias,
    double norm_eps) {
  at::NoGradGuard no_grad;
  auto s = at::addmm(b_s, x, W_s.t());
  s.addmm_(s0, U_s.t());
  activate_(s, relu);
  torch::Tensor x_side;  // W_x x: the gate's and the long-term input's x terms in one GEMM
  if (W_x.has_value()) x_side = at::mm(x, W_x->t());
  torch::Tensor selected = s;
  if (b_g.has_value()) {  // selection != none
    torch::Tensor g = V_g.has_value() ? at::addmm(*b_g, s, V_g->t()) : b_g->expand_as(s);
    if (gate_x_size > 0) g = g + x_side.narrow(1, 0, gate_x_size);
    selected = g.sigmoid_().mul_(s);
  }
  auto h = at::addmm(b_l, selected, W_l.t());
  if (long_x_size > 0) h.add_(x_side.narrow(1, gate_x_size, long_x_size));
  h.addcmul_(u, h0).relu_();
  auto y = concat_output ? at::cat({s, h}, 1) : h.clone();
  return {residual_and_norm(y, x, skip, skip_weight, norm_weight, norm_bias, norm_eps), s, h};
}

// IndRNN layer, one step: x (B, D), h0 (B, N) -> {y (B, N), h (B, N)}
std::vector<torch::Tensor> indrnn_layer_step(
    torch::Tensor x, torch::Tensor h0, torch::Tensor W, torch::Tensor b, torch::Tensor u,
    const std::string& skip, c10::optional<torch::Tensor> skip_weight,
    c10::optional<torch::Tensor> norm_weight, c10::optional<torch::Tensor> norm_bias,
    double norm_eps) {
  at::NoGradGuard no_grad;
  auto h = at::addmm(b, x, W.t());
  h.addcmul_(u, h0).relu_();
  return {residual_and_norm(h.clone(), x, skip, skip_weight, norm_weight, norm_bias, norm_eps),
          h};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("indrnn_forward", &indrnn_forward, "IndRNN recurrence, forward (CPU)");
  m.def("indrnn_backward", &indrnn_backward, "IndRNN recurrence, backward (CPU)");
  m.def("short_rnn_forward", &short_rnn_forward, "DuRNN short-term recurrence, forward (CPU)");
  m.def("short_rnn_backward", &short_rnn_backward, "DuRNN short-term recurrence, backward (CPU)");
  m.def("durnn_layer_step", &durnn_layer_step, "one decoding step of a DuRNN stack layer");
  m.def("indrnn_layer_step", &indrnn_layer_step, "one decoding step of an IndRNN stack layer");
}
