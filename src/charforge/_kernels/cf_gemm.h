/* A small-matrix float32 GEMM for the recurrent step, with the weight operand packed once.
 *
 * Why not BLAS: every time step of a recurrent layer multiplies a small state block (batch x
 * hidden) by the same recurrent weights. BLAS repacks those weights on every call (100 calls
 * per sequence per layer), and at these sizes packing and call overhead cost a third of the
 * time. Here each thread packs its slice of the weights once per sequence into panels of 32
 * columns (K x 32 floats, zero-padded), and an AVX-512 micro-kernel computes 8 x 32 blocks of
 * the result with the block's 16 accumulators in registers. Machines without AVX-512 (and
 * float64) keep the BLAS path; `cf_packed_gemm_available()` says which one runs.
 *
 * Operands (row-major): C (M x N, ldc) = A (M x K, lda) @ B (K x N) [+ C], where B is given
 * to the packing routine either as W^T for a row-major W (N x K) ("nt": the forward step,
 * h @ W_hh^T) or as W itself (K x N) ("nn": the backward step, dgates @ W_hh).
 */
#ifndef CF_GEMM_H
#define CF_GEMM_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cf_cpu.h"

#define CF_NR 32
#define CF_MR 8
#define CF_KC 256

#if defined(__GNUC__) && defined(__x86_64__) && !defined(CF_NO_AVX512_GEMM)
#define CF_HAVE_X86_GEMM 1
#include <immintrin.h>
#else
#define CF_HAVE_X86_GEMM 0
#endif

/* 1 when the packed kernel will be used for float32: the AVX-512 level running (cf_cpu.h)
 * and the environment variable CHARFORGE_PACKED_GEMM not "0" (the switch lets tests and benchmarks compare the
 * two paths; it is read once per layer call, not per step). */
static inline int cf_packed_gemm_available(void) {
#if CF_HAVE_X86_GEMM
    const char* off = getenv("CHARFORGE_PACKED_GEMM");
    if (off != NULL && off[0] == '0' && off[1] == 0) return 0;
    return cf_cpu_level() >= 2;
#else
    return 0;
#endif
}

/* Floats needed for the packed form of a K x N operand. */
static inline ptrdiff_t cf_packed_size(ptrdiff_t N, ptrdiff_t K) {
    return ((N + CF_NR - 1) / CF_NR) * CF_NR * K;
}

/* 64-byte aligned room for n floats (free with free()); NULL when memory is short. */
static inline float* cf_alloc_floats(ptrdiff_t n) {
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    return (float*)aligned_alloc(64, bytes);
}

/* B = W^T for W (N x K, row stride ldw): panel p holds P[k*32 + j] = W[(p*32 + j), k].
 * k outer, j inner: the writes are contiguous and the 32 source rows stay in L1. */
static void cf_pack_nt(const float* W, ptrdiff_t ldw, ptrdiff_t N, ptrdiff_t K, float* P) {
    for (ptrdiff_t p = 0; p < N; p += CF_NR) {
        float* dst = P + p * K;
        const float* src = W + p * ldw;
        ptrdiff_t w = N - p < CF_NR ? N - p : CF_NR;
        for (ptrdiff_t k = 0; k < K; k++) {
            float* d = dst + k * CF_NR;
            ptrdiff_t j = 0;
            for (; j < w; j++) d[j] = src[j * ldw + k];
            for (; j < CF_NR; j++) d[j] = 0.0f;
        }
    }
}

/* B = W for W (K x N, row stride ldw): panel p holds P[k*32 + j] = W[k, p*32 + j]. */
static void cf_pack_nn(const float* W, ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t N, float* P) {
    for (ptrdiff_t p = 0; p < N; p += CF_NR) {
        float* dst = P + p * K;
        ptrdiff_t w = N - p < CF_NR ? N - p : CF_NR;
        for (ptrdiff_t k = 0; k < K; k++) {
            memcpy(dst + k * CF_NR, W + k * ldw + p, sizeof(float) * w);
            if (w < CF_NR) memset(dst + k * CF_NR + w, 0, sizeof(float) * (CF_NR - w));
        }
    }
}

/* Ask for bytes [offset, offset + nbytes) of `rows` rows (stride ld bytes) to be brought into
 * L2: the recurrent kernels call it for the next step's gate block, which was written long
 * before (the input projection of the whole sequence) and is cold by then. */
static inline void cf_prefetch_block(const void* base, ptrdiff_t rows, ptrdiff_t ld,
                                     ptrdiff_t offset, ptrdiff_t nbytes) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const char* p = (const char*)base + r * ld + offset;
        const char* end = p + nbytes;
        for (; p < end; p += 64) __builtin_prefetch(p, 1, 2);
    }
}

#if CF_HAVE_X86_GEMM
/* One mr x 32 block of C from A (element (r, k) at A[r * ars + k * aks]) and a packed panel:
 * mr, ars and aks are compile-time constants at every call site, so the accumulator arrays
 * live in registers and the A addressing folds. */
__attribute__((target("avx512f"), always_inline)) static inline void
cf_ukernel(const int mr, ptrdiff_t K, const float* A, const ptrdiff_t ars, const ptrdiff_t aks,
           const float* Pp, float* C, ptrdiff_t ldc, __mmask16 m0, __mmask16 m1, int accumulate,
           const int prefetch) {
    __m512 c0[CF_MR], c1[CF_MR];
    for (int r = 0; r < mr; r++) {
        c0[r] = _mm512_setzero_ps();
        c1[r] = _mm512_setzero_ps();
    }
    for (ptrdiff_t k = 0; k < K; k++) {
        if (prefetch) {   /* a panel too big for L2 streams from L3: ask a few rows ahead */
            _mm_prefetch((const char*)(Pp + (k + 12) * CF_NR), _MM_HINT_T0);
            _mm_prefetch((const char*)(Pp + (k + 12) * CF_NR + 16), _MM_HINT_T0);
        }
        __m512 b0 = _mm512_loadu_ps(Pp + k * CF_NR);
        __m512 b1 = _mm512_loadu_ps(Pp + k * CF_NR + 16);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(A[r * ars + k * aks]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        float* cr = C + r * ldc;
        if (accumulate) {
            c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cr));
            c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, c0[r]);
        _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
    }
}

/* cf_ukernel for a run-time row count (the last, partial row block); inlined at each call
 * site, so each gets its own constant-folded copies. */
__attribute__((target("avx512f"), always_inline)) static inline void
cf_ukernel_rows(int mr, ptrdiff_t K, const float* A, const ptrdiff_t ars, const ptrdiff_t aks,
                const float* Pp, float* C, ptrdiff_t ldc, __mmask16 m0, __mmask16 m1,
                int accumulate) {
    switch (mr) {
    case 8: cf_ukernel(8, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    case 7: cf_ukernel(7, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    case 6: cf_ukernel(6, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    case 5: cf_ukernel(5, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    case 4: cf_ukernel(4, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    case 3: cf_ukernel(3, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    case 2: cf_ukernel(2, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    default: cf_ukernel(1, K, A, ars, aks, Pp, C, ldc, m0, m1, accumulate, 0); break;
    }
}

/* Masks for the first and second 16 columns of a panel w columns wide. */
static inline __mmask16 cf_mask_lo(ptrdiff_t w) {
    return w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1u);
}
static inline __mmask16 cf_mask_hi(ptrdiff_t w) {
    return w >= 32 ? (__mmask16)0xFFFF : (w > 16 ? (__mmask16)((1u << (w - 16)) - 1u) : 0);
}

/* Loop order: K in blocks of CF_KC (so a panel slice, 32 KB, stays in L1 while every row block
 * of A passes over it), then panels, then row blocks. */
__attribute__((target("avx512f"))) static void
cf_gemm_packed(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float* A, ptrdiff_t lda,
               const float* P, float* C, ptrdiff_t ldc, int accumulate) {
    /* an operand of 256 KB or more is not expected to stay in L2 between calls */
    int stream = cf_packed_size(N, K) * (ptrdiff_t)sizeof(float) >= (256 << 10);
    for (ptrdiff_t k0 = 0; k0 < K; k0 += CF_KC) {
        ptrdiff_t kc = K - k0 < CF_KC ? K - k0 : CF_KC;
        int acc = accumulate || k0 > 0;
        for (ptrdiff_t p = 0; p < N; p += CF_NR) {
            ptrdiff_t w = N - p < CF_NR ? N - p : CF_NR;
            __mmask16 m0 = cf_mask_lo(w), m1 = cf_mask_hi(w);
            const float* Pp = P + p * K + k0 * CF_NR;
            for (ptrdiff_t i = 0; i < M; i += CF_MR) {
                int mr = M - i < CF_MR ? (int)(M - i) : CF_MR;
                const float* Ai = A + i * lda + k0;
                float* Cp = C + i * ldc + p;
                if (mr == 8 && stream && i == 0)   /* the first pass brings the panel in */
                    cf_ukernel(8, kc, Ai, lda, 1, Pp, Cp, ldc, m0, m1, acc, 1);
                else
                    cf_ukernel_rows(mr, kc, Ai, lda, 1, Pp, Cp, ldc, m0, m1, acc);
            }
        }
    }
}
#else
static void cf_gemm_packed(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float* A, ptrdiff_t lda,
                           const float* P, float* C, ptrdiff_t ldc, int accumulate) {
    (void)M; (void)N; (void)K; (void)A; (void)lda; (void)P; (void)C; (void)ldc;
    (void)accumulate;
}
#endif

/* ---- The weight-gradient product dW (+)= A^T B for A (K x M) and B (K x N), both row-major
 * with K = T*B rows (dgates and the layer's input or previous state), where single-threaded
 * OpenBLAS reaches 50-90 GFLOP/s. Both operands are packed per K block; with colsum set it
 * also adds the column sums of A (the bias gradient) in the same pass over A. (For the large
 * NN/NT products of a step OpenBLAS was faster than this kernel, so they stay on BLAS.) */
/* K blocks of 128 (a 16 KB panel slice leaves half of a 32 KB L1 for the A block) and A in
 * 256-column blocks: 1.2x faster than 256 / 128 on the dW shapes of a 2x256 LSTM step. */
#define CF_TN_KC 128
#define CF_MC 256

static inline ptrdiff_t cf_gemm_work_size(ptrdiff_t N) {
    return (ptrdiff_t)CF_TN_KC * ((N + CF_NR - 1) / CF_NR) * CF_NR + (ptrdiff_t)CF_MC * CF_TN_KC;
}

/* Columns [i0, i0 + mc) and rows [k0, k0 + kc) of A, as row blocks of A^T (zero-padded):
 * Ap[ib * kc + k * 8 + r] = A[k0 + k, i0 + ib + r]. Each row's mc values are read in one
 * contiguous run (rows are pages apart: short strided reads defeat the prefetcher and the
 * TLB) and dealt out to the blocks; colsum (if set) gets them added while they are in L1. */
static void cf_pack_at(const float* A, ptrdiff_t lda, ptrdiff_t i0, ptrdiff_t mc, ptrdiff_t k0,
                       ptrdiff_t kc, float* Ap, float* colsum) {
    ptrdiff_t full = mc / CF_MR * CF_MR;
    for (ptrdiff_t k = 0; k < kc; k++) {
        const float* src = A + (k0 + k) * lda + i0;
        for (ptrdiff_t ib = 0; ib < full; ib += CF_MR)
            memcpy(Ap + ib * kc + k * CF_MR, src + ib, sizeof(float) * CF_MR);
        if (full < mc) {
            float* dst = Ap + full * kc + k * CF_MR;
            ptrdiff_t r = 0;
            for (; r < mc - full; r++) dst[r] = src[full + r];
            for (; r < CF_MR; r++) dst[r] = 0.0f;
        }
        if (colsum != NULL)
            for (ptrdiff_t r = 0; r < mc; r++) colsum[r] += src[r];
    }
}

#if CF_HAVE_X86_GEMM
/* C (M x N, ldc) (+)= A^T B; work from cf_gemm_work(N). */
__attribute__((target("avx512f"))) static void
cf_gemm_tn(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float* A, ptrdiff_t lda, const float* B,
           ptrdiff_t ldb, int accumulate, float* C, ptrdiff_t ldc, float* work, float* colsum) {
    float* Bp = work;
    float* Ap = work + (ptrdiff_t)CF_TN_KC * ((N + CF_NR - 1) / CF_NR) * CF_NR;
    if (K == 0 && !accumulate) {
        for (ptrdiff_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * N);
        return;
    }
    for (ptrdiff_t k0 = 0; k0 < K; k0 += CF_TN_KC) {
        ptrdiff_t kc = K - k0 < CF_TN_KC ? K - k0 : CF_TN_KC;
        int acc = accumulate || k0 > 0;
        cf_pack_nn(B + k0 * ldb, ldb, kc, N, Bp);
        for (ptrdiff_t i0 = 0; i0 < M; i0 += CF_MC) {
            ptrdiff_t mc = M - i0 < CF_MC ? M - i0 : CF_MC;
            cf_pack_at(A, lda, i0, mc, k0, kc, Ap, colsum ? colsum + i0 : NULL);
            for (ptrdiff_t p = 0; p < N; p += CF_NR) {
                ptrdiff_t w = N - p < CF_NR ? N - p : CF_NR;
                __mmask16 m0 = cf_mask_lo(w), m1 = cf_mask_hi(w);
                const float* Pp = Bp + p * kc;
                for (ptrdiff_t ib = 0; ib < mc; ib += CF_MR) {
                    int mr = mc - ib < CF_MR ? (int)(mc - ib) : CF_MR;
                    cf_ukernel_rows(mr, kc, Ap + ib * kc, 1, CF_MR, Pp,
                                    C + (i0 + ib) * ldc + p, ldc, m0, m1, acc);
                }
            }
        }
    }
}
#else
static void cf_gemm_tn(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float* A, ptrdiff_t lda,
                       const float* B, ptrdiff_t ldb, int accumulate, float* C, ptrdiff_t ldc,
                       float* work, float* colsum) {
    (void)M; (void)N; (void)K; (void)A; (void)lda; (void)B; (void)ldb; (void)accumulate;
    (void)C; (void)ldc; (void)work; (void)colsum;
}
#endif

/* Per-thread scratch for cf_gemm_tn, kept between calls (a fresh multi-megabyte buffer per
 * call would pay page faults every time); NULL when memory is short. */
static inline float* cf_gemm_work(ptrdiff_t N) {
    static __thread float* buf = NULL;
    static __thread ptrdiff_t have = 0;
    ptrdiff_t need = cf_gemm_work_size(N);
    if (need > have) {
        free(buf);
        buf = cf_alloc_floats(need);
        have = buf ? need : 0;
    }
    return buf;
}

#endif
