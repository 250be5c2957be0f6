// Fused losses: logits in, per-row loss and gradient out, one pass over the logits.
//
// Layout: blockDim = (T, R). Either one warp per row (T = 32, R = 8 rows per block) while a row
// fits one warp batch (C ≤ 32·EQL_ROW_ITEMS), or one block per row (R = 1) with T a multiple of
// 32 chosen so that C ≤ EQL_ROW_ITEMS·T (T ≤ 1024); src/device/cuda/kernels.ts picks the shape
// (C = 1230: T = 160). Thread t owns columns t, t + T, t + 2T, ... and loads them as one batch of
// EQL_ROW_ITEMS, every load issued before any is used. Loads across a warp are consecutive floats
// (fully coalesced), which works for any C and any row alignment (C = 1230 rows start on 8-byte
// boundaries, so 16-byte vector loads would not apply). The softmax keeps its exponentials in
// registers between its two passes; rows longer than EQL_ROW_ITEMS·1024 are streamed in batches
// and re-read (from L1/L2) for the second pass.
//
// Each option set has its own entry point (templates below), so the common cases run without
// per-element tests, and a batch's per-class values (suppress, logitBias) are loaded with its
// logits. Batch bodies are branch-free: columns past the row end compute on zeros and are masked.
//
// Accuracy: float32 arithmetic with the accurate expf; the softmax exponent z + bias − max is
// formed exactly (error-free additions) so each exponential carries only expf's error; the
// sigmoid's log1p and reciprocals use the short forms in loss_math.cuh (≤ 2 ulp, checked on the
// host against float64). Row sums are float32 trees of positive terms (~1e-7 relative); the
// softmax loss is log1p(others / own) in float64, exact for confident rows.
//
// Labels outside their range (0..C for sigmoid, 0..C-1 for softmax) cannot be reported from a
// kernel; such a row gets NaN in its row loss and gradient, so the caller's finiteness check on
// the loss catches it. Like the CPU device, a row with a NaN or infinite logit (masked classes
// included) gets a NaN row loss.
#include "loss_math.cuh"
#include "mask.cuh"
#include "reduce.cuh"

// Columns per thread per batch; kernels.ts mirrors it (ROW_ITEMS) to size its blocks.
#ifndef EQL_ROW_ITEMS
#define EQL_ROW_ITEMS 8
#endif
// Register caps of the row-wise loss kernels, from H100 measurements of 40, 48, 56 and 64: 48 for
// most (40 warps per SM resident), 40 for plain sigmoid CE (the lightest body; 48 warps), 64 for
// the variants with the most per-element state, which spill at 48. All let a 1024-thread block
// launch.
#ifndef EQL_LOSS_BOUNDS
#define EQL_LOSS_BOUNDS __maxnreg__(48)
#endif
#ifndef EQL_LOSS_BOUNDS_WIDE
#define EQL_LOSS_BOUNDS_WIDE __maxnreg__(64)
#endif
#ifndef EQL_LOSS_BOUNDS_NARROW
#define EQL_LOSS_BOUNDS_NARROW __maxnreg__(40)
#endif

__device__ __forceinline__ float eql_nan() { return __int_as_float(0x7fffffff); }

// Returns p unchanged but hides where it came from, so that `p + j` (j a 32-bit column) compiles
// to one wide multiply-add instead of the compiler folding the row offset into a 64-bit index
// that it rebuilds for every access (measured: ~15 fewer instructions per element).
template <class T>
__device__ __forceinline__ T* row_pointer(T* p) {
  size_t bits = reinterpret_cast<size_t>(p);
  asm("" : "+l"(bits));
  return reinterpret_cast<T*>(bits);
}

// Marks a row as invalid: NaN everywhere in its gradient and its loss.
__device__ __forceinline__ void poison_row(float* __restrict__ gRow, float* __restrict__ rowLoss,
                                           int row, unsigned c) {
  for (unsigned j = threadIdx.x; j < c; j += blockDim.x) gRow[j] = eql_nan();
  if (threadIdx.x == 0) rowLoss[row] = eql_nan();
}

// Loads one batch of a thread's columns: v[k] = src[j0 + k·T] (0 past the end of the row).
template <class V>
__device__ __forceinline__ void load_batch(const V* __restrict__ src, unsigned c, unsigned j0,
                                           unsigned T, V (&v)[EQL_ROW_ITEMS]) {
#pragma unroll
  for (int k = 0; k < EQL_ROW_ITEMS; ++k) {
    const unsigned j = j0 + k * T;
    v[k] = j < c ? __ldg(src + j) : V(0);
  }
}

// ── sigmoid family ────────────────────────────────────────────────────────────────────────

struct SigmoidArgs {
  const float* __restrict__ logits;
  const int* __restrict__ labels;
  float* __restrict__ grad;
  float* __restrict__ rowLoss;
  int n, c;
  float scale;
  const float* __restrict__ suppress;
  int backgroundExempt;
  const float* __restrict__ classWeight;
  float focalGamma, focalAlpha;
  const int* __restrict__ imageOfRow;
  const int* __restrict__ keepMask;
};

// One row of the sigmoid family. The template flags select the code for the options in use
// (suppression weights, image keep masks, focal modulation), so the common cases run without
// per-element tests, and the per-class values of a batch are loaded together with its logits.
template <bool kSuppress, bool kKeep, bool kFocal>
__device__ __forceinline__ void sigmoid_row(const SigmoidArgs& a, int row, float* scratch) {
  const unsigned C = (unsigned)a.c, T = blockDim.x, step = T * EQL_ROW_ITEMS;
  const size_t base = (size_t)row * C;
  const float* __restrict__ zRow = row_pointer(a.logits + base);
  float* __restrict__ gRow = row_pointer(a.grad + base);
  const float* __restrict__ supRow = kSuppress ? row_pointer(a.suppress) : nullptr;
  float z[EQL_ROW_ITEMS], sup[EQL_ROW_ITEMS];
  int kept[EQL_ROW_ITEMS];
  // The first batch's loads go out before the row's label is known.
  load_batch(zRow, C, threadIdx.x, T, z);
  if (kSuppress) load_batch(supRow, C, threadIdx.x, T, sup);
  const int label = a.labels[row];
  const int image = kKeep ? a.imageOfRow[row] : 0;
  if (label < 0 || label > a.c || image < 0) {
    poison_row(gRow, a.rowLoss, row, C);
    return;
  }
  const int* __restrict__ keep = kKeep ? row_pointer(a.keepMask + (size_t)image * C) : nullptr;
  const bool foreground = label < a.c;
  const float rowWeight = (a.classWeight != nullptr && foreground) ? a.classWeight[label] : 1.0f;
  // w = rowWeight − (rowWeight · E) · suppress_j off the target: E ∈ {0, 1}, one rounding.
  const float rowWeightE = (foreground || a.backgroundExempt == 0) ? rowWeight : 0.0f;
  const float gradScale = a.scale * rowWeight;  // the gradient's factor where w = rowWeight
  // Per-thread partial sums of at most a few dozen positive terms, then a tree over the group:
  // float32 keeps the row loss within ~1e-7 relative (no cancellation can occur).
  float sum = 0.0f;
  for (unsigned j0 = threadIdx.x;;) {
    if (kKeep) load_batch(keep, C, j0, T, kept);
    // Branch-free body: columns past the row end compute on zeros and are masked out.
#pragma unroll
    for (int k = 0; k < EQL_ROW_ITEMS; ++k) {
      const unsigned j = j0 + k * T;
      const bool valid = j < C;
      const bool target = j == (unsigned)label;
      float w = rowWeight;
      if (kSuppress) {
        const bool kept_ = kKeep && kept[k] != 0;
        w = (target || kept_) ? rowWeight : fmaf(-rowWeightE, sup[k], rowWeight);
      }
      SigmoidTerm term;
      if (kFocal || kSuppress) {
        term = sigmoid_term(z[k], target, w, a.scale, kFocal, a.focalGamma, a.focalAlpha);
      } else {
        term = sigmoid_term(z[k], target, 1.0f, gradScale, false, 0.0f, -1.0f);
        term.loss *= rowWeight;
      }
      if (valid) gRow[j] = term.grad;
      // z·0 is 0 for a finite logit and NaN otherwise: it poisons the row loss.
      sum += valid ? fmaf(z[k], 0.0f, term.loss) : 0.0f;
    }
    j0 += step;
    if (j0 >= C) break;
    load_batch(zRow, C, j0, T, z);
    if (kSuppress) load_batch(supRow, C, j0, T, sup);
  }
  sum = group_sum(sum, scratch);
  if (threadIdx.x == 0) a.rowLoss[row] = sum;
}

// Sigmoid family (sigmoid CE, EQL with threshold or decay weights, image keep sets, focal loss,
// class-balanced weights) over logits [N, C] with labels in 0..C (C = background). Single pass:
// each element's loss term and gradient depend on that element alone.
//
// Element weight w_ij = rowWeight_i · (1 − E_i · suppress_j · (1 − y_ij)), rowWeight_i =
// classWeight[label_i] for foreground rows and 1 for background rows, E_i = 1 for foreground rows
// and for every row when backgroundExempt is 0; keepMask[imageOfRow_i · C + j] != 0 restores
// w_ij = rowWeight_i. rowLoss[i] = Σ_j w_ij · α_t · q^γ · BCE (unscaled);
// grad = scale · ∂rowLoss/∂z.
//
// Six entry points share this parameter list; kernels.ts picks the one for the options in use:
//   sigmoid_loss            no suppression, no focal term  (suppress, keepMask unused)
//   sigmoid_loss_suppress   suppress given                 (keepMask unused)
//   sigmoid_loss_keep       suppress, imageOfRow and keepMask given
//   sigmoid_loss_focal, sigmoid_loss_focal_suppress, sigmoid_loss_focal_keep: the same with the
//   focal factors (focalGamma != 0 or focalAlpha >= 0).
// classWeight may be null in every variant.
#define EQL_SIGMOID_ENTRY(NAME, SUPPRESS, KEEP, FOCAL, BOUNDS)                                      \
  extern "C" __global__ void BOUNDS NAME(                                                       \
      const float* __restrict__ logits, const int* __restrict__ labels,                        \
      float* __restrict__ grad, float* __restrict__ rowLoss, int n, int c, float scale,        \
      const float* __restrict__ suppress, int backgroundExempt,                                \
      const float* __restrict__ classWeight, float focalGamma, float focalAlpha,               \
      const int* __restrict__ imageOfRow, const int* __restrict__ keepMask) {                  \
    __shared__ float scratch[32];                                                              \
    const int row = blockIdx.x * blockDim.y + threadIdx.y;                                     \
    if (row >= n) return; /* whole warps (T = 32) or whole blocks (R = 1) leave together */    \
    const SigmoidArgs a{logits,      labels,     grad,       rowLoss,    n,                    \
                        c,           scale,      suppress,   backgroundExempt, classWeight,    \
                        focalGamma,  focalAlpha, imageOfRow, keepMask};                        \
    sigmoid_row<SUPPRESS, KEEP, FOCAL>(a, row, scratch);                                       \
  }
EQL_SIGMOID_ENTRY(sigmoid_loss, false, false, false, EQL_LOSS_BOUNDS_NARROW)
EQL_SIGMOID_ENTRY(sigmoid_loss_suppress, true, false, false, EQL_LOSS_BOUNDS)
EQL_SIGMOID_ENTRY(sigmoid_loss_keep, true, true, false, EQL_LOSS_BOUNDS_WIDE)
EQL_SIGMOID_ENTRY(sigmoid_loss_focal, false, false, true, EQL_LOSS_BOUNDS)
EQL_SIGMOID_ENTRY(sigmoid_loss_focal_suppress, true, false, true, EQL_LOSS_BOUNDS)
EQL_SIGMOID_ENTRY(sigmoid_loss_focal_keep, true, true, true, EQL_LOSS_BOUNDS_WIDE)

// ── softmax family ────────────────────────────────────────────────────────────────────────

struct SoftmaxArgs {
  const float* __restrict__ logits;
  const int* __restrict__ labels;
  float* __restrict__ grad;
  float* __restrict__ rowLoss;
  int n, c;
  float scale;
  const float* __restrict__ suppress;
  unsigned gammaThreshold, seed, counter;
  const float* __restrict__ classWeight;
  const float* __restrict__ logitBias;
};

// exp(raw + bias − m) with the difference formed exactly (error-free additions), so the result
// carries only expf's own error rather than |z − m| · 2^-24 more.
#ifndef EQL_EXACT_EXP
#define EQL_EXACT_EXP 1
#endif
template <bool kBias>
__device__ __forceinline__ float exp_offset(float raw, float bias, float m) {
  if (!EQL_EXACT_EXP) return expf((kBias ? raw + bias : raw) - m);
  float d, lo;
  two_sum(raw, -m, d, lo);
  if (kBias) {
    float lo2;
    two_sum(d, bias, d, lo2);
    lo += lo2;
  }
  return exp_hilo(d, lo);
}

// One row of the softmax family; kMask: softmax-EQL masking in use, kBias: logit offsets given.
//
// Pass 1 streams the row once, keeping a running maximum m and the sum of exp(z − m) over the
// unmasked non-target classes ("others"), rescaled per batch when the maximum grows; the group
// then agrees on the maximum M and the total. With the target's own term e_t = exp(z_t − M):
// loss = log1p(others / e_t) (exact near 0 for a confident row), target gradient −g · others
// and gradient g · exp(z_k − M) elsewhere, g = scale · weight / (e_t + others). When the row fits
// one batch per thread (C ≤ EQL_ROW_ITEMS·T, the usual case) pass 2 scales the exponentials
// kept in registers; otherwise it re-reads the row, which the same threads just loaded.
template <bool kMask, bool kBias>
__device__ __forceinline__ void softmax_row(const SoftmaxArgs& a, int row, unsigned callKey,
                                            float* scratchF, int* scratchI) {
  const unsigned C = (unsigned)a.c, T = blockDim.x, step = T * EQL_ROW_ITEMS;
  const size_t base = (size_t)row * C;
  const float* __restrict__ zRow = row_pointer(a.logits + base);
  float* __restrict__ gRow = row_pointer(a.grad + base);
  const float* __restrict__ supRow = kMask ? row_pointer(a.suppress) : nullptr;
  const float* __restrict__ biasRow = kBias ? row_pointer(a.logitBias) : nullptr;
  float v[EQL_ROW_ITEMS];  // raw logits, then exp(z − m) (0 where masked)
  float sup[EQL_ROW_ITEMS], bias[EQL_ROW_ITEMS];
  // The first batch's loads go out before the row's label is known.
  load_batch(zRow, C, threadIdx.x, T, v);
  if (kMask) load_batch(supRow, C, threadIdx.x, T, sup);
  if (kBias) load_batch(biasRow, C, threadIdx.x, T, bias);
  const int label = a.labels[row];
  if (label < 0 || label >= a.c) {
    poison_row(gRow, a.rowLoss, row, C);
    return;
  }
  const unsigned target = (unsigned)label;
  const unsigned rowKey = kMask ? mask_row_key(callKey, (unsigned)row) : 0u;
  const float weight = a.classWeight != nullptr ? a.classWeight[label] : 1.0f;

  // Masked: a non-target tail class (suppress == 1) whose draw is below the threshold. Evaluated
  // without branches so that a batch's eight draws interleave.
  auto masked = [&](unsigned j, float s) {
    const bool tail = s == 1.0f, other = j != target;
    const bool drawn = mask_draw_from_row(rowKey, j) < a.gammaThreshold;
    return tail & other & drawn;
  };

  // ── pass 1 ──────────────────────────────────────────────────────────────────────────────
  // Branch-free batch bodies: columns past the row end (loaded as 0) are masked out by selects.
  const bool single = C <= step;
  float m = -EQL_FLT_MAX, poison = 0.0f;
  float others = 0.0f, own = 0.0f;  // exp(z − m) summed over the other classes / the target
  for (unsigned j0 = threadIdx.x;;) {
    bool live[EQL_ROW_ITEMS];
    float batchMax = -EQL_FLT_MAX;
#pragma unroll
    for (int k = 0; k < EQL_ROW_ITEMS; ++k) {
      const unsigned j = j0 + k * T;
      poison = fmaf(v[k], 0.0f, poison);  // NaN for a non-finite logit, masked or not
      live[k] = j < C && !(kMask && masked(j, sup[k]));
      const float z = kBias ? v[k] + bias[k] : v[k];
      batchMax = live[k] ? fmaxf(batchMax, z) : batchMax;
    }
    if (batchMax > m) {
      const float f = exp_shifted(m, 0.0f, batchMax);
      others *= f;
      own *= f;
      m = batchMax;
    }
#pragma unroll
    for (int k = 0; k < EQL_ROW_ITEMS; ++k) {
      const unsigned j = j0 + k * T;
      const float e = live[k] ? exp_offset<kBias>(v[k], kBias ? bias[k] : 0.0f, m) : 0.0f;
      v[k] = e;
      if (j == target) own += e;
      else others += e;
    }
    j0 += step;
    if (j0 >= C) break;
    load_batch(zRow, C, j0, T, v);
    if (kMask) load_batch(supRow, C, j0, T, sup);
    if (kBias) load_batch(biasRow, C, j0, T, bias);
  }
  bool bad = poison != 0.0f;  // a NaN poison compares unequal to 0
  const float M = group_max_any(m, bad, scratchF, scratchI);
  // exp(m − M) carries this thread's terms from its own maximum to the row's.
  const float toRow = m == M ? 1.0f : exp_shifted(m, 0.0f, M);
  others *= toRow;
  own *= toRow;
  group_sum2(others, own, scratchF + 32);
  if (threadIdx.x == 0) {
    // log(total / own) = logsumexp − z_t; the log1p form while own is a normal float.
    const double dT = (double)__ldg(zRow + label) +
                      (kBias ? (double)__ldg(a.logitBias + label) : 0.0) - (double)M;
    const double loss = dT > -80.0 ? log1p((double)others / (double)own)
                                   : log((double)own + (double)others) - dT;
    a.rowLoss[row] = bad ? eql_nan() : (float)((double)weight * loss);
  }
  const float g = a.scale * weight / (own + others);
  const float gTarget = -g * others;

  // ── pass 2: gradient ────────────────────────────────────────────────────────────────────
  if (single) {
    const float factor = g * toRow;  // v holds exp(z − m): the gradient is v · g · exp(m − M)
#pragma unroll
    for (int k = 0; k < EQL_ROW_ITEMS; ++k) {
      const unsigned j = threadIdx.x + k * T;
      if (j < C) gRow[j] = j == target ? gTarget : v[k] * factor;
    }
    return;
  }
  for (unsigned j0 = threadIdx.x; j0 < C; j0 += step) {
    load_batch(zRow, C, j0, T, v);  // the same threads just read these columns: L1/L2 hits
    if (kMask) load_batch(supRow, C, j0, T, sup);
    if (kBias) load_batch(biasRow, C, j0, T, bias);
#pragma unroll
    for (int k = 0; k < EQL_ROW_ITEMS; ++k) {
      const unsigned j = j0 + k * T;
      const bool off = kMask && masked(j, sup[k]);
      const float e = off ? 0.0f : exp_offset<kBias>(v[k], kBias ? bias[k] : 0.0f, M);
      if (j < C) gRow[j] = j == target ? gTarget : g * e;
    }
  }
}

// Softmax family (softmax CE, softmax EQL with its seeded per-(row, class) mask, class weights,
// logit adjustment) over logits [N, C] with labels in 0..C-1.
//
// z = logits + logitBias (optional). Class k != label with suppress[k] == 1 is masked when
// mask_draw(seed, counter, row, k) < gammaThreshold; a masked class takes no probability and gets
// a zero gradient. rowLoss[i] = classWeight[label] · (logsumexp over unmasked z − z_label) and
// grad = scale · classWeight[label] · (softmax over unmasked − onehot).
//
// Four entry points share this parameter list; kernels.ts picks the one for the options in use:
//   softmax_loss             no mask, no offsets (suppress, logitBias unused)
//   softmax_loss_bias        logitBias given
//   softmax_loss_mask        suppress given and gammaThreshold > 0
//   softmax_loss_mask_bias   both
// classWeight may be null in every variant.
#define EQL_SOFTMAX_ENTRY(NAME, MASK, BIAS, BOUNDS)                                                 \
  extern "C" __global__ void BOUNDS NAME(                                                       \
      const float* __restrict__ logits, const int* __restrict__ labels,                        \
      float* __restrict__ grad, float* __restrict__ rowLoss, int n, int c, float scale,        \
      const float* __restrict__ suppress, unsigned gammaThreshold, unsigned seed,              \
      unsigned counter, const float* __restrict__ classWeight,                                 \
      const float* __restrict__ logitBias) {                                                   \
    __shared__ float scratchF[96];                                                             \
    __shared__ int scratchI[32];                                                               \
    const int row = blockIdx.x * blockDim.y + threadIdx.y;                                     \
    if (row >= n) return;                                                                      \
    const SoftmaxArgs a{logits, labels,         grad, rowLoss, n,           c,        scale,   \
                        suppress, gammaThreshold, seed, counter, classWeight, logitBias};      \
    const unsigned callKey = MASK ? mask_call_key(seed, counter) : 0u;                         \
    softmax_row<MASK, BIAS>(a, row, callKey, scratchF, scratchI);                              \
  }
EQL_SOFTMAX_ENTRY(softmax_loss, false, false, EQL_LOSS_BOUNDS)
EQL_SOFTMAX_ENTRY(softmax_loss_bias, false, true, EQL_LOSS_BOUNDS)
EQL_SOFTMAX_ENTRY(softmax_loss_mask, true, false, EQL_LOSS_BOUNDS_WIDE)
EQL_SOFTMAX_ENTRY(softmax_loss_mask_bias, true, true, EQL_LOSS_BOUNDS_WIDE)

// ── EQLv2 ─────────────────────────────────────────────────────────────────────────────────

// EQLv2 over logits [N, C] with labels in 0..C-1 (EQLv2's objectness column is the last one, so
// background rows carry label C-1): element (i, j) with target y = [j == label] has the weight
// posWeight[j] (target) or negWeight[j] (otherwise); rowLoss[i] = Σ_j w·BCE(z, y) (unscaled),
// grad = scale·w·(σ(z) − y). Row layout as the sigmoid family (rowLaunchShape). A label outside
// 0..C-1 gives a NaN row.
extern "C" __global__ void __launch_bounds__(1024) eqlv2_loss(
    const float* __restrict__ logits, const int* __restrict__ labels, float* __restrict__ grad,
    float* __restrict__ rowLoss, int n, int c, float scale, const float* __restrict__ posWeight,
    const float* __restrict__ negWeight) {
  __shared__ float scratch[32];
  const int row = blockIdx.x * blockDim.y + threadIdx.y;
  if (row >= n) return;
  const unsigned C = (unsigned)c;
  const size_t base = (size_t)row * C;
  const float* __restrict__ zRow = row_pointer(logits + base);
  float* __restrict__ gRow = row_pointer(grad + base);
  const int label = labels[row];
  if (label < 0 || label >= c) {
    poison_row(gRow, rowLoss, row, C);
    return;
  }
  float sum = 0.0f;
  for (unsigned j = threadIdx.x; j < C; j += blockDim.x) {
    const float z = __ldg(zRow + j);
    const bool target = j == (unsigned)label;
    const float w = target ? __ldg(posWeight + j) : __ldg(negWeight + j);
    const SigmoidTerm t = sigmoid_term(z, target, w, scale, false, 0.0f, -1.0f);
    gRow[j] = t.grad;
    sum += fmaf(z, 0.0f, t.loss);  // z·0 poisons the row for a non-finite logit
  }
  sum = group_sum(sum, scratch);
  if (threadIdx.x == 0) rowLoss[row] = sum;
}

// The gradient statistics of EQLv2, per column j: stats[j] = Σ_i w·|σ(z_ij) − y_ij| over the
// rows labelled j and stats[C + j] the same over the other rows. blockDim = (32, 32), grid.x =
// ceil(C / 32): thread (x, y) sums column 32·blockIdx.x + x over the rows y, y + 32, ... in
// double (coalesced: a warp reads 32 consecutive columns of one row), then the block adds its 32
// partial sums per column in a fixed order, so the result is the same on every run. Rows with a
// label outside 0..C-1 count as negatives everywhere (their loss is NaN already).
extern "C" __global__ void __launch_bounds__(1024)
    eqlv2_stats(const float* __restrict__ logits, const int* __restrict__ labels,
                float* __restrict__ stats, int n, int c, const float* __restrict__ posWeight,
                const float* __restrict__ negWeight) {
  __shared__ double partPos[32][33], partNeg[32][33];
  const unsigned j = blockIdx.x * 32 + threadIdx.x;
  const bool valid = j < (unsigned)c;
  double pos = 0.0, neg = 0.0;
  if (valid) {
    const float pw = __ldg(posWeight + j), nw = __ldg(negWeight + j);
    for (int i = threadIdx.y; i < n; i += 32) {
      const float z = __ldg(logits + (size_t)i * (unsigned)c + j);
      const bool target = __ldg(labels + i) == (int)j;
      const float e = expf(-fabsf(z));
      const float inv = rcp_refined(1.0f + e);
      const float zs = target ? -z : z;
      const float a = zs >= 0.0f ? inv : e * inv;  // |σ(z) − y|
      if (target) pos += (double)(pw * a);
      else neg += (double)(nw * a);
    }
  }
  partPos[threadIdx.y][threadIdx.x] = pos;
  partNeg[threadIdx.y][threadIdx.x] = neg;
  __syncthreads();
  if (threadIdx.y == 0 && valid) {
    double p = 0.0, q = 0.0;
    for (int k = 0; k < 32; ++k) {
      p += partPos[k][threadIdx.x];
      q += partNeg[k][threadIdx.x];
    }
    stats[j] = (float)p;
    stats[(unsigned)c + j] = (float)q;
  }
}

// ── Seesaw ────────────────────────────────────────────────────────────────────────────────

// Seesaw over logits [N, C + 2] (c = C + 2 columns; column C is the objectness pair's
// foreground logit, C + 1 its background one) with labels in 0..C (C = background). For a
// foreground row with label l, non-target class j's logit is raised by
// min(0, p·(logCount_j − logCount_l)) + q·max(0, z_j − t), t = max(z_l, lse + logEps) with lse
// the log-sum-exp of the class logits (the logs of the mitigation and compensation factors),
// then a softmax cross-entropy over the adjusted logits; every row adds the objectness pair's
// 2-way cross-entropy. rowLoss unscaled, grad = scale·∂. Row layout as the other losses; the row
// is read once per pass (passes 2-4 hit L1/L2). A label outside 0..C gives a NaN row.
extern "C" __global__ void __launch_bounds__(1024) seesaw_loss(
    const float* __restrict__ logits, const int* __restrict__ labels, float* __restrict__ grad,
    float* __restrict__ rowLoss, int n, int c, float scale, const float* __restrict__ logCount,
    float p, float q, float logEps) {
  __shared__ float scratchF[64];
  __shared__ int scratchI[32];
  const int row = blockIdx.x * blockDim.y + threadIdx.y;
  if (row >= n) return;
  const unsigned C = (unsigned)c, classes = C - 2;
  const size_t base = (size_t)row * C;
  const float* __restrict__ zRow = row_pointer(logits + base);
  float* __restrict__ gRow = row_pointer(grad + base);
  const int label = labels[row];
  if (label < 0 || label > c - 2) {
    poison_row(gRow, rowLoss, row, C);
    return;
  }
  const bool fg = (unsigned)label < classes;
  // Pass 1: the maximum of the class logits, and whether any logit of the row is not finite.
  float m = -EQL_FLT_MAX, poison = 0.0f;
  for (unsigned j = threadIdx.x; j < C; j += blockDim.x) {
    const float z = __ldg(zRow + j);
    poison = fmaf(z, 0.0f, poison);
    if (j < classes) m = fmaxf(m, z);
  }
  bool bad = poison != 0.0f;
  const float M = group_max_any(m, bad, scratchF, scratchI);
  // The objectness pair, in double on one thread.
  double obj = 0.0;
  if (threadIdx.x == 0) {
    const double zf = __ldg(zRow + classes), zb = __ldg(zRow + classes + 1);
    const double dz = fg ? zb - zf : zf - zb;
    obj = dz > 0.0 ? dz + log1p(exp(-dz)) : log1p(exp(dz));
    const double po = dz > 0.0 ? 1.0 / (1.0 + exp(-dz)) : exp(dz) / (1.0 + exp(dz));
    gRow[classes] = (float)(scale * (fg ? -po : po));
    gRow[classes + 1] = (float)(scale * (fg ? po : -po));
  }
  if (!fg) {
    for (unsigned j = threadIdx.x; j < classes; j += blockDim.x) gRow[j] = 0.0f;
    if (threadIdx.x == 0) rowLoss[row] = bad ? eql_nan() : (float)obj;
    return;
  }
  // Pass 2: the log-sum-exp of the class logits.
  float s = 0.0f;
  for (unsigned j = threadIdx.x; j < classes; j += blockDim.x) {
    s += exp_shifted(__ldg(zRow + j), 0.0f, M);
  }
  s = group_sum(s, scratchF);
  const float zl = __ldg(zRow + label);
  const float t = fmaxf(zl, M + logf(s) + logEps);
  const float own = __ldg(logCount + label);
  auto adjusted = [&](unsigned j, float z) {
    const float mit = fminf(0.0f, p * (__ldg(logCount + j) - own));
    return j == (unsigned)label ? z : z + mit + q * fmaxf(0.0f, z - t);
  };
  // Pass 3: the maximum of the adjusted logits (the target's included).
  float am = zl;
  for (unsigned j = threadIdx.x; j < classes; j += blockDim.x) {
    am = fmaxf(am, adjusted(j, __ldg(zRow + j)));
  }
  bool none = false;
  const float AM = group_max_any(am, none, scratchF, scratchI);
  // Pass 4: the non-target mass, exponentials kept in the gradient row.
  float others = 0.0f;
  for (unsigned j = threadIdx.x; j < classes; j += blockDim.x) {
    const float e = expf(adjusted(j, __ldg(zRow + j)) - AM);
    gRow[j] = e;
    if (j != (unsigned)label) others += e;
  }
  others = group_sum(others, scratchF + 32);
  const float eOwn = expf(zl - AM);
  const float g = scale / (eOwn + others);
  // Pass 5: the gradient (each thread rescales the values it wrote).
  for (unsigned j = threadIdx.x; j < classes; j += blockDim.x) {
    gRow[j] = j == (unsigned)label ? -g * others : gRow[j] * g;
  }
  if (threadIdx.x == 0) {
    const double dT = (double)zl - (double)AM;
    const double loss = dT > -80.0 ? log1p((double)others / (double)eOwn)
                                   : log((double)eOwn + (double)others) - dT;
    rowLoss[row] = bad ? eql_nan() : (float)(loss + obj);
  }
}

// Smooth-L1 over [N, D] with a weight per row: rowLoss[i] = rowWeight[i] · Σ_j l(pred − target)
// and grad = scale · rowWeight[i] · l'(pred − target), l from smooth_l1_term (beta = 0: plain L1).
// One warp per row (blockDim = (32, R)); D is small (4 box deltas) in every use.
extern "C" __global__ void __launch_bounds__(1024)
    smooth_l1_loss(const float* __restrict__ pred, const float* __restrict__ target,
                   const float* __restrict__ rowWeight, float* __restrict__ grad,
                   float* __restrict__ rowLoss, int n, int d, float beta, float scale) {
  const int row = blockIdx.x * blockDim.y + threadIdx.y;
  if (row >= n) return;
  const unsigned D = (unsigned)d;
  const size_t base = (size_t)row * D;
  const float w = rowWeight[row];
  const float gScale = scale * w;
  double sum = 0.0;
  for (unsigned j = threadIdx.x; j < D; j += 32) {
    float g;
    sum += (double)smooth_l1_term(pred[base + j] - target[base + j], beta, g);
    grad[base + j] = gScale * g;
  }
  sum = warp_sum(sum);
  if (threadIdx.x == 0) rowLoss[row] = (float)((double)w * sum);
}
