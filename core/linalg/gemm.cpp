// The GEMM driver: the classic three-level blocking (Goto, BLIS) around the micro-tile kernel of
// the chosen instruction-set level. Each task owns a block of mc rows of C and a range of its
// columns; for each kc-deep slice (one run of the definition, kc = kDepthRun) it packs its A
// block into mr-row micro-panels and its B columns into nr-column micro-panels and runs the
// micro-tile over them, which adds that run's partial sums to C.
#include "linalg/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "linalg/cpu_kernels.h"

namespace gptqw::linalg {

namespace {

// Depth of one packed block: a B micro-panel (kc x nr floats, 32 KiB at nr = 32) stays in L1
// while the A micro-panels stream past it. It is the definition's run length (kDepthRun), not a
// tuning choice: each micro-tile call sums exactly one run.
constexpr int64_t kKc = kDepthRun;
// Rows of A per task, in micro-tiles: the packed A block (about 150 KiB) stays in L2.
constexpr int64_t kMcTiles = 12;
// Columns of B per packed block: kc x nc floats (2 MiB) in the shared L3.
constexpr int64_t kNc = 2048;
// Below this many multiply-adds a product runs on the calling thread: starting a team costs
// more than it saves.
constexpr double kParallelWork = 1 << 18;
// Up to this many multiply-adds, or when C is narrower than a micro-tile, the product skips the
// packing (its cost is then comparable to the arithmetic) and runs gemm_small. Attention's
// products on small heads are such.
constexpr double kSmallWork = 1 << 16;

// A buffer aligned to 64 bytes that keeps its memory between calls (one per thread), so that
// repeated products do not page-fault fresh allocations in.
float* scratch(std::vector<float>& buf, int64_t n) {
  const size_t need = static_cast<size_t>(n) + 16;
  if (buf.size() < need) buf.resize(need);
  auto p = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

// B[pc:pc+kc, j0:j0+cols] into micro-panels of nr columns: Bp[panel][k][c], zero-padded.
void pack_b(const ConstView& B, int64_t pc, int64_t kc, int64_t j0, int64_t cols, int64_t nr,
            float* Bp) {
  const int64_t panels = (cols + nr - 1) / nr;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = Bp + p * kc * nr;
    const int64_t c0 = j0 + p * nr, w = std::min(nr, j0 + cols - c0);
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B.data + (pc + k) * B.rs + c0 * B.cs;
      float* d = dst + k * nr;
      if (B.cs == 1) {
        std::memcpy(d, src, sizeof(float) * w);
      } else {
        for (int64_t c = 0; c < w; ++c) d[c] = src[c * B.cs];
      }
      for (int64_t c = w; c < nr; ++c) d[c] = 0.0f;
    }
  }
}

// A[i0:i0+rows, pc:pc+kc] into micro-panels of mr rows: Ap[panel][k][r], zero-padded, negated
// for a subtraction (exact, and fma(-a, b, c) is c - ab rounded once).
void pack_a(const ConstView& A, int64_t i0, int64_t rows, int64_t pc, int64_t kc, int64_t mr,
            bool negate, float* Ap) {
  const int64_t panels = (rows + mr - 1) / mr;
  const float sign = negate ? -1.0f : 1.0f;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = Ap + p * kc * mr;
    const int64_t r0 = i0 + p * mr, h = std::min(mr, i0 + rows - r0);
    if (A.rs == 1) {  // A^T of a row-major matrix: mr consecutive rows are contiguous
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A.data + r0 + (pc + k) * A.cs;
        float* d = dst + k * mr;
        for (int64_t r = 0; r < h; ++r) d[r] = sign * src[r];
        for (int64_t r = h; r < mr; ++r) d[r] = 0.0f;
      }
    } else {
      for (int64_t r = 0; r < h; ++r) {
        const float* src = A.data + (r0 + r) * A.rs + pc * A.cs;
        for (int64_t k = 0; k < kc; ++k) dst[k * mr + r] = sign * src[k * A.cs];
      }
      for (int64_t r = h; r < mr; ++r)
        for (int64_t k = 0; k < kc; ++k) dst[k * mr + r] = 0.0f;
    }
  }
}

}  // namespace

void gemm(MutView C, ConstView A, ConstView B, Update update, Part part) {
  const int64_t M = C.rows, N = C.cols, K = A.cols;
  if (A.rows != M || B.rows != K || B.cols != N || (part == Part::lower && M != N))
    throw Error("gemm: C " + shape_str({M, N}) + " = A " + shape_str({A.rows, A.cols}) + " B " +
                shape_str({B.rows, B.cols}) + " does not fit" +
                (part == Part::lower ? " (a lower-triangle product needs a square C)" : ""));
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (update == Update::assign)
      for (int64_t i = 0; i < M; ++i) std::fill(C.data + i * C.ld, C.data + i * C.ld + N, 0.0f);
    return;
  }
  const CpuKernels& kern = cpu_kernels();
  const int64_t mr = kern.mr, nr = kern.nr, mc = mr * kMcTiles, nc_panels = kNc / nr;
  const bool negate = update == Update::subtract;
  if (N < nr || double(M) * double(N) * double(K) <= kSmallWork) {
    // B row-major as it is when its rows are whole strips, else copied so, zero-padded (one
    // pass over B, like the packing it replaces).
    const float* b = B.data;
    int64_t ldb = B.rs;
    const int64_t w = kern.small_cols, padded = (N + w - 1) / w * w;
    thread_local std::vector<float> b_copy;
    if (B.cs != 1 || padded != N) {
      b_copy.assign(static_cast<size_t>(K * padded), 0.0f);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j) b_copy[k * padded + j] = B.data[k * B.rs + j * B.cs];
      b = b_copy.data();
      ldb = padded;
    }
    // A lower-triangle product computes whole rows here; the upper part is unspecified.
    kern.gemm_small(M, N, K, A.data, A.rs, A.cs, b, ldb, C.data, C.ld, update != Update::assign,
                    negate);
    return;
  }
  const bool parallel = !omp_in_parallel() && omp_get_max_threads() > 1 &&
                        double(M) * double(N) * double(K) >= kParallelWork;

  // Independent tasks, so that a product is one parallel region with no barrier inside (a
  // thread that the system deschedules then delays nobody): blocks of mc rows, each split into
  // groups of column panels when there are too few row blocks to keep every thread busy. Each
  // task packs its own panels of A and B; B's panels are packed once per row block, a copy for
  // every mc x 2 multiply-adds.
  const int64_t n_panels = (N + nr - 1) / nr;
  const int64_t m_blocks = (M + mc - 1) / mc;
  const int64_t threads = parallel ? omp_get_max_threads() : 1;
  const int64_t groups =
      std::min(n_panels, std::max<int64_t>(1, (2 * threads + m_blocks - 1) / m_blocks));
  const int64_t per_group = (n_panels + groups - 1) / groups;
  const int64_t tasks = m_blocks * groups;
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (int64_t task = 0; task < tasks; ++task) {
    thread_local std::vector<float> a_buf, b_buf;
    alignas(64) float edge[16 * 64];  // one partial micro-tile (mr x nr <= 16 x 64)
    const int64_t ic = (task / groups) * mc, mcur = std::min(mc, M - ic);
    const int64_t g = task % groups;
    const int64_t p_begin = g * per_group, p_end = std::min(n_panels, p_begin + per_group);
    for (int64_t pj = p_begin; pj < p_end; pj += nc_panels) {
      const int64_t pj_end = std::min(p_end, pj + nc_panels);
      const int64_t jc = pj * nr, ncur = std::min(N, pj_end * nr) - jc;
      // A lower-triangle product skips the columns right of every row of the block.
      if (part == Part::lower && jc > ic + mcur - 1) continue;
      for (int64_t pc = 0; pc < K; pc += kKc) {
        const int64_t kc = std::min(kKc, K - pc);
        const bool load_c = pc > 0 || update != Update::assign;
        float* Ap = scratch(a_buf, ((mcur + mr - 1) / mr) * kc * mr);
        float* Bp = scratch(b_buf, (pj_end - pj) * kc * nr);
        pack_a(A, ic, mcur, pc, kc, mr, negate, Ap);
        pack_b(B, pc, kc, jc, ncur, nr, Bp);
        for (int64_t p = 0; p < pj_end - pj; ++p) {
          const int64_t j0 = jc + p * nr, w = std::min(nr, N - j0);
          const float* bp = Bp + p * kc * nr;
          for (int64_t ir = 0; ir < mcur; ir += mr) {
            const int64_t i0 = ic + ir, h = std::min(mr, M - i0);
            if (part == Part::lower && j0 > i0 + h - 1) continue;
            const float* ap = Ap + (ir / mr) * kc * mr;
            float* c = C.data + i0 * C.ld + j0;
            if (h == mr && w == nr) {
              kern.gemm_tile(kc, ap, bp, c, C.ld, load_c);
              continue;
            }
            // A partial tile runs on a full-size copy; the padding rows/columns are discarded.
            for (int64_t r = 0; r < mr; ++r)
              for (int64_t q = 0; q < nr; ++q)
                edge[r * nr + q] = load_c && r < h && q < w ? c[r * C.ld + q] : 0.0f;
            kern.gemm_tile(kc, ap, bp, edge, nr, load_c);
            for (int64_t r = 0; r < h; ++r)
              std::memcpy(c + r * C.ld, edge + r * nr, sizeof(float) * w);
          }
        }
      }
    }
  }
}

}  // namespace gptqw::linalg
