// The CPU form of causal_attention (alignkit/attention.hpp says what it computes).
//
// Work is done a query row at a time with GCC vector extensions, 16 floats wide. The per-row and
// per-head loops are compiled three times, for AVX-512, AVX2 + FMA and the baseline, and the
// first the CPU supports is picked (GCC's target_clones would dispatch "arch=" on the CPU model
// rather than its features, so it is done here).
// Keys (and, in backward, values) are first transposed to [D, T] per key/value head so that a
// row's scores are 16 keys per vector: s[j..j+15] += q[d] * kT[d][j..j+15].
#include <alignkit/attention.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/autograd.h>

#pragma GCC diagnostic ignored "-Wpsabi"  // 64-byte vectors on the baseline clone: never passed across a call

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ALIGNKIT_X86_DISPATCH 1
#endif
#define ALIGNKIT_INLINE [[gnu::always_inline]] inline

namespace alignkit {
namespace {

constexpr std::int64_t W = 16;  // floats per vector
using Vec = float __attribute__((vector_size(W * sizeof(float))));
using IVec = std::int32_t __attribute__((vector_size(W * sizeof(std::int32_t))));
constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Loads and stores of 16 floats at any float's alignment. Through a vector of floats rather than
// memcpy, so the compiler knows they touch only floats and keeps strides and pointers in registers.
using UnalignedVec = float __attribute__((vector_size(W * sizeof(float)), aligned(alignof(float))));
ALIGNKIT_INLINE Vec load(const float* p) { return *reinterpret_cast<const UnalignedVec*>(p); }
ALIGNKIT_INLINE void store(float* p, Vec v) { *reinterpret_cast<UnalignedVec*>(p) = v; }
ALIGNKIT_INLINE Vec splat(float x) { return Vec{} + x; }
ALIGNKIT_INLINE float sum(Vec v) {
  float s = 0;
  for (std::int64_t l = 0; l < W; ++l) s += v[l];
  return s;
}

// e^x for x <= 0 (softmax arguments once a row's max is subtracted; -inf for a hidden key):
// Cephes' expf, a reduction by ln 2 and a degree-6 polynomial (about 1 ulp), and 0 below -87.34
// where fp32's normal range ends.
ALIGNKIT_INLINE Vec exp_nonpositive(Vec x) {
  const Vec low = splat(-87.33654f);
  const Vec xc = x < low ? low : x;
  const Vec fx = xc * 1.44269504088896341f + 0.5f;
  IVec n = __builtin_convertvector(fx, IVec);          // truncation toward zero...
  n += (__builtin_convertvector(n, Vec) > fx);        // ...made floor: comparisons give -1 where true
  const Vec nf = __builtin_convertvector(n, Vec);
  const Vec r = xc - nf * 0.693359375f + nf * 2.12194440e-4f;
  Vec y = splat(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  const Vec two_n = reinterpret_cast<Vec>((n + 127) << 23);
  return x < low ? Vec{} : y * two_n;
}

// A [.., T, D] tensor read in place: row (b, h, i) starts at data + b*sb + h*sh + i*st.
struct Rows {
  float* data;
  std::int64_t sb, sh, st;
  ALIGNKIT_INLINE float* row(std::int64_t b, std::int64_t h, std::int64_t i) const { return data + b * sb + h * sh + i * st; }
};
Rows rows_of(const torch::Tensor& t) { return {t.data_ptr<float>(), t.stride(0), t.stride(1), t.stride(2)}; }

struct Shape {
  std::int64_t B, H, Hk, G, T, D;
  std::int64_t Sp;  // row length of a transposed [D, Sp] key block: T rounded up, plus score_row's slack
  float scale;
};

// The keys query (b, i) may see: columns lo..hi of its row. A query that sees none (a padding
// position) is "dead": eager attention's scores there are all the dtype's lowest value, so its
// softmax is uniform over every column; lo..hi is then the whole row and the scores are 0.
struct Visible {
  std::int64_t lo, hi;
  bool dead;
};

class MaskIndex {
 public:
  MaskIndex(const CausalMask& mask, std::int64_t B, std::int64_t T) : T_(T), window_(mask.sliding_window) {
    if (!mask.key_ids.defined() || mask.key_ids.numel() == 0) return;  // empty: autograd's stand-in for none
    ids_ = mask.key_ids.to(torch::kInt64).contiguous();
    first_.resize(static_cast<std::size_t>(B * T));
    const auto* ids = ids_.data_ptr<std::int64_t>();
    for (std::int64_t b = 0; b < B; ++b) {
      std::unordered_map<std::int64_t, std::int64_t> first_column;
      for (std::int64_t i = 0; i < T; ++i) first_[b * T + i] = first_column.try_emplace(ids[b * T + i], i).first->second;
    }
  }
  ALIGNKIT_INLINE const std::int64_t* ids(std::int64_t b) const {
    return ids_.defined() ? ids_.data_ptr<std::int64_t>() + b * T_ : nullptr;
  }
  ALIGNKIT_INLINE Visible visible(std::int64_t b, std::int64_t i) const {
    const auto* row_ids = ids(b);
    if (row_ids && row_ids[i] == 0) return {0, T_ - 1, true};
    std::int64_t lo = row_ids ? first_[b * T_ + i] : 0;
    if (window_) lo = std::max(lo, i - *window_ + 1);
    return {lo, i, false};
  }
  const torch::Tensor& key_ids() const { return ids_; }

 private:
  std::int64_t T_;
  std::optional<std::int64_t> window_;
  torch::Tensor ids_;
  std::vector<std::int64_t> first_;  // [B*T]: the first column of the row holding the same id
};

// The [D, Sp] transpose of head (b, kh): out[d * Sp + j] = x[b, kh, j, d], zero past column T.
std::vector<float> transpose_heads(const Rows& x, const Shape& s, std::int64_t b, std::int64_t kh) {
  std::vector<float> out(static_cast<std::size_t>(s.D * s.Sp), 0.0f);
  for (std::int64_t j = 0; j < s.T; ++j) {
    const float* r = x.row(b, kh, j);
    for (std::int64_t d = 0; d < s.D; ++d) out[d * s.Sp + j] = r[d];
  }
  return out;
}

// Scores of query vector q against keys lo.. of a transposed block, `n` of them rounded up to
// four vectors: s[j] = scale * q . k_{lo+j}. Four independent accumulators, so the loop runs at
// the FMA units' throughput rather than their latency. Columns past the visible ones are masked
// by the caller.
ALIGNKIT_INLINE void score_row(const float* q, const float* kT, const Shape& s, std::int64_t lo, std::int64_t n, float scale,
                               float* out) {
  for (std::int64_t jb = 0; jb < n; jb += 4 * W) {
    Vec a0{}, a1{}, a2{}, a3{};
    const float* col = kT + lo + jb;
    for (std::int64_t d = 0; d < s.D; ++d, col += s.Sp) {
      const float qd = q[d];
      a0 += qd * load(col);
      a1 += qd * load(col + W);
      a2 += qd * load(col + 2 * W);
      a3 += qd * load(col + 3 * W);
    }
    store(out + jb, a0 * scale);
    store(out + jb + W, a1 * scale);
    store(out + jb + 2 * W, a2 * scale);
    store(out + jb + 3 * W, a3 * scale);
  }
}

// sum over j < n of w[j] * x_j[db..db+W), x_j = rows + j * stride: four rows per step, each into
// its own accumulator (the same latency argument as score_row).
ALIGNKIT_INLINE Vec weighted_rows(const float* w, const float* rows, std::int64_t stride, std::int64_t n) {
  Vec a0{}, a1{}, a2{}, a3{};
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4, rows += 4 * stride) {
    a0 += w[j] * load(rows);
    a1 += w[j + 1] * load(rows + stride);
    a2 += w[j + 2] * load(rows + 2 * stride);
    a3 += w[j + 3] * load(rows + 3 * stride);
  }
  for (; j < n; ++j, rows += stride) a0 += w[j] * load(rows);
  return (a0 + a1) + (a2 + a3);
}

// Scores of query (b, i) into `scores`, hidden keys at -inf, dead rows at 0; returns the
// visible range and the vector-rounded length.
ALIGNKIT_INLINE Visible query_scores(const float* q, const float* kT, const Shape& s, const MaskIndex& mask, std::int64_t b,
                                     std::int64_t i, float* scores, std::int64_t& padded) {
  const auto v = mask.visible(b, i);
  const std::int64_t n = v.hi - v.lo + 1;
  padded = (n + W - 1) / W * W;
  if (v.dead) {
    std::fill(scores, scores + n, 0.0f);
  } else {
    score_row(q, kT, s, v.lo, padded, s.scale, scores);
    if (const auto* ids = mask.ids(b))
      for (std::int64_t j = 0; j < n; ++j)
        if (ids[v.lo + j] != ids[i]) scores[j] = kMinusInf;
  }
  std::fill(scores + n, scores + padded, kMinusInf);
  return v;
}

ALIGNKIT_INLINE void forward_rows_body(const Rows& q, const Rows& v, const std::vector<std::vector<float>>& kT, const Shape& s,
                                  const MaskIndex& mask, const Rows& out, float* lse, std::int64_t begin, std::int64_t end) {
  std::vector<float> scores(static_cast<std::size_t>(s.Sp));
  for (std::int64_t row = begin; row < end; ++row) {
    const std::int64_t i = row % s.T, h = row / s.T % s.H, b = row / (s.T * s.H), kh = h / s.G;
    std::int64_t padded = 0;
    const auto vis = query_scores(q.row(b, h, i), kT[b * s.Hk + kh].data(), s, mask, b, i, scores.data(), padded);
    Vec m = splat(kMinusInf);
    for (std::int64_t j = 0; j < padded; j += W) {
      const Vec x = load(&scores[j]);
      m = x > m ? x : m;
    }
    float max = kMinusInf;
    for (std::int64_t l = 0; l < W; ++l) max = std::max(max, m[l]);
    Vec total{};
    for (std::int64_t j = 0; j < padded; j += W) {
      const Vec p = exp_nonpositive(load(&scores[j]) - max);
      store(&scores[j], p);
      total += p;
    }
    const float l = sum(total);
    const std::int64_t n = vis.hi - vis.lo + 1;
    float* o = out.row(b, h, i);
    for (std::int64_t db = 0; db < s.D; db += W) {
      store(o + db, weighted_rows(scores.data(), v.row(b, kh, vis.lo) + db, v.st, n) / l);
    }
    lse[row] = max + std::log(l);
  }
}

// Backward of one key/value head (b, kh): its G query heads' rows, recomputing each row's
// probabilities from the saved log-sum-exp. dK and dV rows of this head are only written here.
// Query rows go four at a time: each row's p and ds are laid out by key column over the block's
// joint range (0 outside the row's own), so every dK/dV row is read and written once per block
// rather than once per query row.
constexpr std::int64_t kRowBlock = 4;

ALIGNKIT_INLINE void backward_head_body(const Rows& q, const Rows& k, const Rows& v, const Rows& dout, const float* lse,
                                        const Shape& s, const MaskIndex& mask, std::int64_t b, std::int64_t kh,
                                        const Rows& dq, const Rows& dk, const Rows& dv) {
  const auto kT = transpose_heads(k, s, b, kh), vT = transpose_heads(v, s, b, kh);
  const auto width = static_cast<std::size_t>(s.Sp);
  std::vector<float> scratch_p(width), scratch_dp(width), block_p(kRowBlock * width), block_ds(kRowBlock * width);
  const float* kbase = k.row(b, kh, 0);
  float* dkbase = dk.row(b, kh, 0);
  float* dvbase = dv.row(b, kh, 0);
  const std::int64_t kst = k.st, dkst = dk.st, dvst = dv.st;
  for (std::int64_t g = 0; g < s.G; ++g) {
    const std::int64_t h = kh * s.G + g;
    for (std::int64_t i0 = 0; i0 < s.T; i0 += kRowBlock) {
      const std::int64_t rows = std::min(kRowBlock, s.T - i0);
      Visible vis[kRowBlock];
      std::int64_t lo = s.T, hi = -1;
      for (std::int64_t r = 0; r < rows; ++r) {
        vis[r] = mask.visible(b, i0 + r);
        lo = std::min(lo, vis[r].lo), hi = std::max(hi, vis[r].hi);
      }
      const float* qrow[kRowBlock];
      const float* grow[kRowBlock];
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t i = i0 + r;
        qrow[r] = q.row(b, h, i), grow[r] = dout.row(b, h, i);
        float* p = scratch_p.data();
        float* dp = scratch_dp.data();
        std::int64_t padded = 0;
        query_scores(qrow[r], kT.data(), s, mask, b, i, p, padded);
        const float row_lse = lse[(b * s.H + h) * s.T + i];
        score_row(grow[r], vT.data(), s, vis[r].lo, padded, 1.0f, dp);
        // softmax backward: ds = p * (dp - sum_j p_j dp_j), times the scale the scores carried.
        Vec weighted{};
        for (std::int64_t j = 0; j < padded; j += W) {
          const Vec pj = exp_nonpositive(load(p + j) - row_lse);
          store(p + j, pj);
          weighted += pj * load(dp + j);
        }
        const float delta = sum(weighted);
        for (std::int64_t j = 0; j < padded; j += W) store(dp + j, load(p + j) * (load(dp + j) - delta) * s.scale);
        const std::int64_t n = vis[r].hi - vis[r].lo + 1;
        float* dqi = dq.row(b, h, i);
        for (std::int64_t db = 0; db < s.D; db += W) store(dqi + db, weighted_rows(dp, kbase + vis[r].lo * kst + db, kst, n));
        // By key column over the block's range [lo, hi].
        float* bp = block_p.data() + r * width;
        float* bds = block_ds.data() + r * width;
        std::fill(bp + lo, bp + vis[r].lo, 0.0f), std::fill(bds + lo, bds + vis[r].lo, 0.0f);
        std::copy(p, p + n, bp + vis[r].lo), std::copy(dp, dp + n, bds + vis[r].lo);
        std::fill(bp + vis[r].hi + 1, bp + hi + 1, 0.0f), std::fill(bds + vis[r].hi + 1, bds + hi + 1, 0.0f);
      }
      for (std::int64_t r = rows; r < kRowBlock; ++r) {  // the last block's missing rows: zero weights
        qrow[r] = qrow[0], grow[r] = grow[0];
        std::fill(block_p.data() + r * width + lo, block_p.data() + r * width + hi + 1, 0.0f);
        std::fill(block_ds.data() + r * width + lo, block_ds.data() + r * width + hi + 1, 0.0f);
      }
      const float *p0 = block_p.data(), *p1 = p0 + width, *p2 = p1 + width, *p3 = p2 + width;
      const float *d0 = block_ds.data(), *d1 = d0 + width, *d2 = d1 + width, *d3 = d2 + width;
      for (std::int64_t db = 0; db < s.D; db += W) {
        const Vec q0 = load(qrow[0] + db), q1 = load(qrow[1] + db), q2 = load(qrow[2] + db), q3 = load(qrow[3] + db);
        const Vec g0 = load(grow[0] + db), g1 = load(grow[1] + db), g2 = load(grow[2] + db), g3 = load(grow[3] + db);
        for (std::int64_t j = lo; j <= hi; ++j) {
          float* dkj = dkbase + j * dkst + db;
          float* dvj = dvbase + j * dvst + db;
          store(dkj, load(dkj) + ((d0[j] * q0 + d1[j] * q1) + (d2[j] * q2 + d3[j] * q3)));
          store(dvj, load(dvj) + ((p0[j] * g0 + p1[j] * g1) + (p2[j] * g2 + p3[j] * g3)));
        }
      }
    }
  }
}

#define ALIGNKIT_FORWARD_ROWS_PARAMS                                                                                \
  const Rows &q, const Rows &v, const std::vector<std::vector<float>>&kT, const Shape &s, const MaskIndex &mask, \
      const Rows &out, float *lse, std::int64_t begin, std::int64_t end
#define ALIGNKIT_BACKWARD_HEAD_PARAMS                                                                              \
  const Rows &q, const Rows &k, const Rows &v, const Rows &dout, const float *lse, const Shape &s,                 \
      const MaskIndex &mask, std::int64_t b, std::int64_t kh, const Rows &dq, const Rows &dk, const Rows &dv
#define ALIGNKIT_KERNELS(suffix, ...)                                                                              \
  __VA_ARGS__ void forward_rows_##suffix(ALIGNKIT_FORWARD_ROWS_PARAMS) {                                          \
    forward_rows_body(q, v, kT, s, mask, out, lse, begin, end);                                                   \
  }                                                                                                                \
  __VA_ARGS__ void backward_head_##suffix(ALIGNKIT_BACKWARD_HEAD_PARAMS) {                                        \
    backward_head_body(q, k, v, dout, lse, s, mask, b, kh, dq, dk, dv);                                           \
  }
ALIGNKIT_KERNELS(baseline)
#ifdef ALIGNKIT_X86_DISPATCH
ALIGNKIT_KERNELS(avx2, __attribute__((target("avx2,fma"))))
ALIGNKIT_KERNELS(avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))))
#endif

struct Kernels {
  void (*forward_rows)(ALIGNKIT_FORWARD_ROWS_PARAMS);
  void (*backward_head)(ALIGNKIT_BACKWARD_HEAD_PARAMS);
};

const Kernels& kernels() {
  static const Kernels picked = [] {
#ifdef ALIGNKIT_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return Kernels{forward_rows_avx512, backward_head_avx512};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Kernels{forward_rows_avx2, backward_head_avx2};
#endif
    return Kernels{forward_rows_baseline, backward_head_baseline};
  }();
  return picked;
}

Shape shape_of(const torch::Tensor& q, const torch::Tensor& k, double scale) {
  Shape s{};
  s.B = q.size(0), s.H = q.size(1), s.T = q.size(2), s.D = q.size(3), s.Hk = k.size(1);
  s.G = s.H / s.Hk;
  s.Sp = (s.T + W - 1) / W * W + 4 * W;
  s.scale = static_cast<float>(scale);
  return s;
}

// A unit stride on D is all the row kernels need; anything else is copied once.
torch::Tensor rows_readable(const torch::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

std::pair<torch::Tensor, torch::Tensor> attention_forward(const torch::Tensor& q, const torch::Tensor& k,
                                                          const torch::Tensor& v, const MaskIndex& mask, const Shape& s) {
  const auto qr = rows_of(q), kr = rows_of(k), vr = rows_of(v);
  std::vector<std::vector<float>> kT(static_cast<std::size_t>(s.B * s.Hk));
  at::parallel_for(0, s.B * s.Hk, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t u = begin; u < end; ++u) kT[u] = transpose_heads(kr, s, u / s.Hk, u % s.Hk);
  });
  // [B, T, H, D] memory, returned as its [B, H, T, D] view.
  auto out = torch::empty({s.B, s.T, s.H, s.D}, q.options()).transpose(1, 2);
  auto lse = torch::empty({s.B, s.H, s.T}, q.options());
  const auto outr = rows_of(out);
  float* lse_data = lse.data_ptr<float>();
  // Rows of one (b, h) cost 1..T keys: chunks of a few rows keep both threads busy to the end.
  at::parallel_for(0, s.B * s.H * s.T, 16, [&](std::int64_t begin, std::int64_t end) {
    kernels().forward_rows(qr, vr, kT, s, mask, outr, lse_data, begin, end);
  });
  return {out, lse};
}

// The mask as autograd carries it: key ids (empty for none) and a window (0 for none).
MaskIndex mask_index(const torch::Tensor& key_ids, std::int64_t window, const Shape& s) {
  return MaskIndex({key_ids, window > 0 ? std::optional<std::int64_t>(window) : std::nullopt}, s.B, s.T);
}

class CausalAttentionFunction : public torch::autograd::Function<CausalAttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& key_ids, std::int64_t window, double scale) {
    const auto s = shape_of(q, k, scale);
    auto [out, lse] = attention_forward(q, k, v, mask_index(key_ids, window, s), s);
    ctx->save_for_backward({q, k, v, key_ids, lse});
    ctx->saved_data["window"] = window;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &key_ids = saved[3], &lse = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto s = shape_of(q, k, scale);
    const auto mask = mask_index(key_ids, ctx->saved_data["window"].toInt(), s);
    const auto dout = rows_readable(grads[0]);
    auto dq = torch::empty_like(q, torch::MemoryFormat::Contiguous);
    auto dk = torch::zeros_like(k, torch::MemoryFormat::Contiguous);
    auto dv = torch::zeros_like(v, torch::MemoryFormat::Contiguous);
    const auto qr = rows_of(q), kr = rows_of(k), vr = rows_of(v), gr = rows_of(dout);
    const auto dqr = rows_of(dq), dkr = rows_of(dk), dvr = rows_of(dv);
    const float* lse_data = lse.data_ptr<float>();
    at::parallel_for(0, s.B * s.Hk, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t u = begin; u < end; ++u)
        kernels().backward_head(qr, kr, vr, gr, lse_data, s, mask, u / s.Hk, u % s.Hk, dqr, dkr, dvr);
    });
    return {dq, dk, dv, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool fused_attention_supports(torch::ScalarType dtype, torch::Device device, std::int64_t head_dim) {
  return device.is_cpu() && dtype == torch::kFloat32 && head_dim > 0 && head_dim % W == 0;
}

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const CausalMask& mask, double scale) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    throw std::invalid_argument(fmt::format("causal_attention: q, k and v must be [B, H, T, D], got {}, {} and {} dimensions",
                                            q.dim(), k.dim(), v.dim()));
  if (!fused_attention_supports(q.scalar_type(), q.device(), q.size(3)) || k.scalar_type() != q.scalar_type() ||
      v.scalar_type() != q.scalar_type() || !k.device().is_cpu() || !v.device().is_cpu())
    throw std::invalid_argument(fmt::format(
        "causal_attention: takes fp32 CPU tensors with head_dim a multiple of {} (got {} on {}, head_dim {})", W,
        c10::toString(q.scalar_type()), q.device().str(), q.size(3)));
  const bool same = k.sizes() == v.sizes() && k.size(0) == q.size(0) && k.size(2) == q.size(2) && k.size(3) == q.size(3);
  if (!same || k.size(1) == 0 || q.size(1) % k.size(1) != 0)
    throw std::invalid_argument("causal_attention: k and v must be [B, Hkv, T, D] like q [B, H, T, D], H a multiple of Hkv");
  if (mask.key_ids.defined() && (mask.key_ids.dim() != 2 || mask.key_ids.size(0) != q.size(0) || mask.key_ids.size(1) != q.size(2)))
    throw std::invalid_argument("causal_attention: key_ids must be [B, T]");
  if (mask.sliding_window && *mask.sliding_window <= 0)
    throw std::invalid_argument("causal_attention: a sliding window must be positive");
  return CausalAttentionFunction::apply(rows_readable(q), rows_readable(k), rows_readable(v),
                                        mask.key_ids.defined() ? mask.key_ids.cpu() : torch::empty({0}, torch::kInt64),
                                        mask.sliding_window.value_or(0), scale);
}

}  // namespace alignkit
