/* bfloat16 products with float32 accumulation: C (+)= bf16(A) @ bf16(B).
 *
 * Why: a CPU with AVX512-BF16 multiplies two bf16 pairs per float32 lane per instruction
 * (vdpbf16ps), and one with AMX multiplies 16 x 32 by 32 x 16 bf16 tiles in one instruction
 * (tdpbf16ps), where float32 FMA does one product per lane. The operands are rounded to bf16
 * (round to nearest, ties to even: the top 16 bits of the float32); each product of two bf16
 * values is exact in float32, so the paths differ only in the order of the float32 sums.
 *
 * Three paths, chosen at run time (cf_bf16_level): AMX tiles where the CPU has them and Linux
 * grants the tile state (arch_prctl ARCH_REQ_XCOMP_PERM), vdpbf16ps where the CPU has
 * AVX512-BF16, and elsewhere the same rounded operands multiplied in float32 (exact emulation,
 * compiled per instruction-set level in cf_bf16_body.h). CHARFORGE_CPU lowers the choice.
 *
 * One packed layout serves all three: the B operand (K x N) as panels of 16 columns, K
 * rounded up to a multiple of 32 and N to a multiple of 32 (zeros), each panel holding pairs
 * along K: P[p * 16 * Kp + (k / 2) * 32 + j * 2 + (k % 2)] = B[k, 16 p + j]. That is AMX's
 * "VNNI" B tile (16 rows of 64 bytes) and one vdpbf16ps operand per pair of k. The A operand
 * is bf16 row-major with a row stride that is a multiple of 32 (zero-padded columns); the AMX
 * path also reads rows up to the next multiple of 16, which the buffer must hold. */
#ifndef CF_BF16_H
#define CF_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf_cpu.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(CF_BASELINE_ONLY)
#define CF_HAVE_X86_BF16 1
#include <immintrin.h>
#include <cpuid.h>
#include <unistd.h>
#include <sys/syscall.h>
#else
#define CF_HAVE_X86_BF16 0
#endif

#define CF_BF16_EMULATED 0
#define CF_BF16_AVX512 1
#define CF_BF16_AMX 2

/* bf16 bits of x, round to nearest, ties to even; NaN stays a (quiet) NaN. Branch-free,
 * so that gcc vectorises the loops that call it. */
static inline uint16_t cf_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet : rounded);
}

static inline float cf_from_bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline ptrdiff_t cf_bf16_kpad(ptrdiff_t K) { return (K + 31) / 32 * 32; }

/* A row stride (bf16 elements) for an A operand of Kp columns: one more 64-byte line than
 * needed, so that the 16 rows of an AMX tile fall into different L1 sets (with a stride of a
 * power of two they share four sets and evict each other: 3x slower). */
static inline ptrdiff_t cf_bf16_lda(ptrdiff_t Kp) { return Kp + 32; }

/* bf16 elements of the packed form of a K x N operand. */
static inline ptrdiff_t cf_bpack_size(ptrdiff_t N, ptrdiff_t K) {
    return (N + 31) / 32 * 32 * cf_bf16_kpad(K);
}

/* 64-byte aligned room for n bf16 values (free with free()); NULL when memory is short. */
static inline uint16_t* cf_alloc_bf16(ptrdiff_t n) {
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(uint16_t);
    bytes = (bytes + 63) & ~(size_t)63;
    return (uint16_t*)aligned_alloc(64, bytes);
}

/* ---- which path runs */

/* The bf16 path CHARFORGE_CPU allows: amx (or unset) AMX, avx512_bf16 vdpbf16ps, any vector
 * level only the emulation. */
static inline int cf_bf16_requested(void) {
    int name = cf_requested_name();
    return name <= 2 ? CF_BF16_EMULATED : name - 2;
}

#if CF_HAVE_X86_BF16
/* The CPU's own bf16 level (cpuid, and for AMX the kernel's grant of the tile state). */
static inline int cf_bf16_hardware(void) {
    unsigned a, b, c, d;
    int level = CF_BF16_EMULATED;
    if (cf_hardware_cpu_level() < 2) return level;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)))
        level = CF_BF16_AVX512;
    if (level == CF_BF16_AVX512 && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
        (d & (1u << 22)) && (d & (1u << 24))) {
        /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): without it the first
         * tile instruction kills the process. Granted once for the whole process. */
        if (syscall(SYS_arch_prctl, 0x1023, 18) == 0) level = CF_BF16_AMX;
    }
    return level;
}

static int cf_bf16_level_cache = -1;

static inline int cf_bf16_level(void) {
    int level = __atomic_load_n(&cf_bf16_level_cache, __ATOMIC_RELAXED);
    if (level < 0) {
        int hw = cf_bf16_hardware(), want = cf_bf16_requested();
        level = want < hw ? want : hw;
        if (cf_cpu_level() < 2) level = CF_BF16_EMULATED;
        __atomic_store_n(&cf_bf16_level_cache, level, __ATOMIC_RELAXED);
    }
    return level;
}
#else
static inline int cf_bf16_hardware(void) { return CF_BF16_EMULATED; }
static inline int cf_bf16_level(void) { return CF_BF16_EMULATED; }
#endif

/* ---- rounding, packing and the emulated path, one copy per instruction-set level (all
 * paths round the same way: the integer form of cf_to_bf16, vectorised) */
#define CF_LEVEL_BODY "cf_bf16_body.h"
#include "cf_levels.h"
#undef CF_LEVEL_BODY
#define cf_bgemm_emulated CF_PICK(cf_bgemm_emulated)
#define cf_bpack_nt CF_PICK(cf_bpack_nt)
#define cf_bpack_nn CF_PICK(cf_bpack_nn)
#define cf_bf16_rows CF_PICK(cf_bf16_rows)
#define cf_bf16_cols CF_PICK(cf_bf16_cols)

#if CF_HAVE_X86_BF16
/* ---- AVX512-BF16: blocks of mr (<= 8) rows x 32 columns, accumulators in registers */
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) static inline void
cf_bf16_ukernel(const int mr, ptrdiff_t Kp, const uint16_t* A, ptrdiff_t lda,
                const uint16_t* P0, const uint16_t* P1, float* C, ptrdiff_t ldc,
                __mmask16 m0, __mmask16 m1, int accumulate) {
    __m512 c0[8], c1[8];
    for (int r = 0; r < mr; r++) {
        c0[r] = _mm512_setzero_ps();
        c1[r] = _mm512_setzero_ps();
    }
    for (ptrdiff_t kp = 0; kp < Kp / 2; kp++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512((const void*)(P0 + kp * 32));
        __m512bh b1 = (__m512bh)_mm512_load_si512((const void*)(P1 + kp * 32));
        for (int r = 0; r < mr; r++) {
            int32_t pair;
            memcpy(&pair, A + r * lda + 2 * kp, sizeof pair);
            __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
            c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
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

static inline __mmask16 cf_bf16_mask(ptrdiff_t w) {
    return w >= 16 ? (__mmask16)0xFFFF : w <= 0 ? (__mmask16)0 : (__mmask16)((1u << w) - 1u);
}

/* K in slices of CF_BF16_KS: a panel pair's slice (16 KB) stays in L1 while every block of
 * rows passes over it (a whole pair at K = 1024 is 64 KB, re-read from L2 per block). */
#define CF_BF16_KS 256

/* One row (batch-1 generation, bound by reading P): eight panels at a time, so eight
 * independent vdpbf16ps chains hide the instruction's latency (the row blocks below have two
 * per row). Each element is summed exactly as in cf_bgemm_avx512 (one accumulator over a
 * slice of K, then added to C), so a row's result does not depend on how many rows come
 * with it: batched generation stays equal to one-by-one generation. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
cf_bgemm_avx512_row(ptrdiff_t N, ptrdiff_t Kp, const uint16_t* A, const uint16_t* P, float* C,
                    int accumulate) {
    for (ptrdiff_t p = 0; p < N; p += 128) {
        int panels = (int)((N - p + 15) / 16 < 8 ? (N - p + 15) / 16 : 8);
        const uint16_t* Pp = P + p * Kp;
        for (ptrdiff_t k0 = 0; k0 < Kp; k0 += CF_BF16_KS) {
            ptrdiff_t ks = Kp - k0 < CF_BF16_KS ? Kp - k0 : CF_BF16_KS;
            __m512 acc[8];
            for (int q = 0; q < 8; q++) acc[q] = _mm512_setzero_ps();
            if (panels == 8) {
                for (ptrdiff_t kp = k0 / 2; kp < (k0 + ks) / 2; kp++) {
                    int32_t pair;
                    memcpy(&pair, A + 2 * kp, sizeof pair);
                    __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
                    for (int q = 0; q < 8; q++)
                        acc[q] = _mm512_dpbf16_ps(acc[q], a, (__m512bh)_mm512_load_si512(
                            (const void*)(Pp + q * 16 * Kp + kp * 32)));
                }
            } else {
                for (ptrdiff_t kp = k0 / 2; kp < (k0 + ks) / 2; kp++) {
                    int32_t pair;
                    memcpy(&pair, A + 2 * kp, sizeof pair);
                    __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
                    for (int q = 0; q < panels; q++)
                        acc[q] = _mm512_dpbf16_ps(acc[q], a, (__m512bh)_mm512_load_si512(
                            (const void*)(Pp + q * 16 * Kp + kp * 32)));
                }
            }
            int add = accumulate || k0 > 0;
            for (int q = 0; q < panels; q++) {
                __mmask16 m = cf_bf16_mask(N - p - 16 * q);
                __m512 v = acc[q];
                if (add) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, C + p + 16 * q));
                _mm512_mask_storeu_ps(C + p + 16 * q, m, v);
            }
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
cf_bgemm_avx512(ptrdiff_t M, ptrdiff_t N, ptrdiff_t Kp, const uint16_t* A, ptrdiff_t lda,
                const uint16_t* P, float* C, ptrdiff_t ldc, int accumulate) {
    for (ptrdiff_t p = 0; p < N; p += 32) {
        __mmask16 m0 = cf_bf16_mask(N - p), m1 = cf_bf16_mask(N - p - 16);
        for (ptrdiff_t k0 = 0; k0 < Kp; k0 += CF_BF16_KS) {
            ptrdiff_t ks = Kp - k0 < CF_BF16_KS ? Kp - k0 : CF_BF16_KS;
            const uint16_t* P0 = P + p * Kp + k0 * 16;
            const uint16_t* P1 = P0 + 16 * Kp;
            int acc = accumulate || k0 > 0;
            for (ptrdiff_t i = 0; i < M; i += 8) {
                const uint16_t* Ai = A + i * lda + k0;
                float* Ci = C + i * ldc + p;
                switch (M - i < 8 ? (int)(M - i) : 8) {
                case 8: cf_bf16_ukernel(8, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                case 7: cf_bf16_ukernel(7, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                case 6: cf_bf16_ukernel(6, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                case 5: cf_bf16_ukernel(5, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                case 4: cf_bf16_ukernel(4, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                case 3: cf_bf16_ukernel(3, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                case 2: cf_bf16_ukernel(2, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                default: cf_bf16_ukernel(1, ks, Ai, lda, P0, P1, Ci, ldc, m0, m1, acc); break;
                }
            }
        }
    }
}

/* ---- rounding in registers: 16 float32 to 16 bf16, the integer form of cf_to_bf16 */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m256i cf_bf16_round16(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                            _mm512_set1_epi32(0x7F800000));
    return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(r, nan, quiet));
}

/* cf_bf16_cols at the AVX-512 level: each output row (a column of X) gathers 16 rows of X at
 * a time and rounds them in registers. The transposed operand of every weight gradient
 * goes through here; the scalar 16 x 16 block transpose was a tenth of a bf16 LSTM step. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
cf_bf16_cols_avx512(const float* X, ptrdiff_t ldx, ptrdiff_t c0, ptrdiff_t cols, ptrdiff_t K,
                    uint16_t* out, ptrdiff_t ldo) {
    const __m512i rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)ldx));
    for (ptrdiff_t k0 = 0; k0 < K; k0 += 16) {
        __mmask16 m = cf_bf16_mask(K - k0);
        const float* base = X + k0 * ldx + c0;
        for (ptrdiff_t c = 0; c < cols; c++) {
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, base + c, 4);
            _mm256_mask_storeu_epi16(out + c * ldo + k0, m, cf_bf16_round16(v));
        }
    }
    if (ldo > K)
        for (ptrdiff_t c = 0; c < cols; c++)
            memset(out + c * ldo + K, 0, sizeof(uint16_t) * (size_t)(ldo - K));
}

/* ---- AMX: 32 x 32 blocks as four 16 x 16 float32 tiles (0-3), two A tiles (4, 5: 16 rows
 * x 32 bf16) and two B tiles (6, 7: 16 pairs x 16 columns), K in steps of 32. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} cf_tile_config;

/* Tiles 0 .. small-1 of `rows` rows (accumulators and A: fewer than 16 when M is, so batch 1
 * multiplies one row, not sixteen), the others of 16; every tile 64 bytes wide. */
__attribute__((target("amx-tile,amx-bf16,avx512f"))) static inline void
cf_amx_configure(ptrdiff_t rows, int small) {
    cf_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = t < small && rows < 16 ? (uint8_t)rows : 16;
    }
    _tile_loadconfig(&cfg);
}

/* C (rows x cols, ldc) (+)= a stored accumulator tile (16 floats a row). */
__attribute__((target("avx512f"))) static inline void
cf_amx_put(const float* blk, ptrdiff_t rows, ptrdiff_t cols, float* C, ptrdiff_t ldc,
           int accumulate) {
    if (rows <= 0 || cols <= 0) return;
    __mmask16 m = cf_bf16_mask(cols);
    for (ptrdiff_t r = 0; r < rows; r++) {
        __m512 v = _mm512_load_ps(blk + r * 16);
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, C + r * ldc));
        _mm512_mask_storeu_ps(C + r * ldc, m, v);
    }
}

__attribute__((target("amx-tile,amx-bf16,avx512f"))) static void
cf_bgemm_amx(ptrdiff_t M, ptrdiff_t N, ptrdiff_t Kp, const uint16_t* A, ptrdiff_t lda,
             const uint16_t* P, float* C, ptrdiff_t ldc, int accumulate) {
    float blk[4][256] __attribute__((aligned(64)));
    cf_amx_configure(M, 6);
    for (ptrdiff_t p = 0; p < N; p += 32) {      /* a panel pair stays in L1 over the rows */
        const uint16_t* P0 = P + p * Kp;
        const uint16_t* P1 = P0 + 16 * Kp;
        for (ptrdiff_t i = 0; i < M; i += 32) {
            int two_rows = M - i > 16;
            const uint16_t* A0 = A + i * lda;
            const uint16_t* A1 = A0 + 16 * lda;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            if (two_rows) {
                for (ptrdiff_t k = 0; k < Kp; k += 32) {
                    _tile_loadd(4, A0 + k, lda * 2);
                    _tile_loadd(5, A1 + k, lda * 2);
                    _tile_loadd(6, P0 + k * 16, 64);
                    _tile_loadd(7, P1 + k * 16, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
            } else {
                for (ptrdiff_t k = 0; k < Kp; k += 32) {
                    _tile_loadd(4, A0 + k, lda * 2);
                    _tile_loadd(6, P0 + k * 16, 64);
                    _tile_loadd(7, P1 + k * 16, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                }
            }
            _tile_stored(0, blk[0], 64);
            _tile_stored(1, blk[1], 64);
            _tile_stored(2, blk[2], 64);
            _tile_stored(3, blk[3], 64);
            for (int t = 0; t < (two_rows ? 4 : 2); t++) {
                ptrdiff_t r0 = i + (t >> 1) * 16, c0 = p + (t & 1) * 16;
                cf_amx_put(blk[t], M - r0 < 16 ? M - r0 : 16, N - c0 < 16 ? N - c0 : 16,
                           C + r0 * ldc + c0, ldc, accumulate);
            }
        }
    }
    _tile_release();
}
#endif

/* AMX for at most 16 rows (generation): 64 columns at a time in four accumulator tiles of M
 * rows (four independent chains of tile products where a 32-column block has two), B tiles
 * in 5, 6 and 7. Each element is summed as in cf_bgemm_amx, so a row's result does not
 * depend on how many rows come with it. */
__attribute__((target("amx-tile,amx-bf16,avx512f"))) static void
cf_bgemm_amx_few(ptrdiff_t M, ptrdiff_t N, ptrdiff_t Kp, const uint16_t* A, ptrdiff_t lda,
                 const uint16_t* P, float* C, ptrdiff_t ldc, int accumulate) {
    float blk[4][256] __attribute__((aligned(64)));
    cf_amx_configure(M, 5);
    ptrdiff_t p = 0;
    for (; p + 32 < N; p += 64) {
        const uint16_t* P0 = P + p * Kp;
        const uint16_t* P1 = P0 + 16 * Kp;
        const uint16_t* P2 = P1 + 16 * Kp;
        const uint16_t* P3 = P2 + 16 * Kp;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (ptrdiff_t k = 0; k < Kp; k += 32) {
            _tile_loadd(4, A + k, lda * 2);
            _tile_loadd(5, P0 + k * 16, 64);
            _tile_loadd(6, P1 + k * 16, 64);
            _tile_loadd(7, P2 + k * 16, 64);
            _tile_dpbf16ps(0, 4, 5);
            _tile_dpbf16ps(1, 4, 6);
            _tile_dpbf16ps(2, 4, 7);
            _tile_loadd(5, P3 + k * 16, 64);
            _tile_dpbf16ps(3, 4, 5);
        }
        _tile_stored(0, blk[0], 64);
        _tile_stored(1, blk[1], 64);
        _tile_stored(2, blk[2], 64);
        _tile_stored(3, blk[3], 64);
        for (int t = 0; t < 4; t++)
            cf_amx_put(blk[t], M, N - p - 16 * t < 16 ? N - p - 16 * t : 16, C + p + 16 * t,
                       ldc, accumulate);
    }
    _tile_release();
    if (p < N)                         /* the last 32 columns or fewer */
        cf_bgemm_amx(M, N - p, Kp, A, lda, P + p * Kp, C + p, ldc, accumulate);
}

/* C (M x N, ldc) (+)= A (M x Kp bf16, row stride lda) @ P (packed, N columns), by the path
 * that runs. AMX reads A rows up to the next multiple of 16. */
static void cf_bgemm_packed(ptrdiff_t M, ptrdiff_t N, ptrdiff_t Kp, const uint16_t* A,
                            ptrdiff_t lda, const uint16_t* P, float* C, ptrdiff_t ldc,
                            int accumulate) {
    if (M <= 0 || N <= 0) return;
#if CF_HAVE_X86_BF16
    int level = cf_bf16_level();
    if (level == CF_BF16_AMX && M <= 16) {
        cf_bgemm_amx_few(M, N, Kp, A, lda, P, C, ldc, accumulate);
        return;
    }
    if (level == CF_BF16_AMX) {
        cf_bgemm_amx(M, N, Kp, A, lda, P, C, ldc, accumulate);
        return;
    }
    if (level == CF_BF16_AVX512 && M == 1) {
        cf_bgemm_avx512_row(N, Kp, A, P, C, accumulate);
        return;
    }
    if (level == CF_BF16_AVX512) {
        cf_bgemm_avx512(M, N, Kp, A, lda, P, C, ldc, accumulate);
        return;
    }
#endif
    cf_bgemm_emulated(M, N, Kp, A, lda, P, C, ldc, accumulate);
}

/* Rows of A a bf16 A buffer must hold for M rows of products (AMX reads whole tiles). */
static inline ptrdiff_t cf_bf16_rows_room(ptrdiff_t M) { return (M + 15) / 16 * 16; }

/* Per-thread scratch of at least n bf16 values, kept between calls (fresh multi-megabyte
 * buffers would pay their page faults on every call); NULL when memory is short. Slots: 0 A
 * and 1 B of cf_bgemm, 2 a recurrent kernel's packed W_hh slice, 3 its step's A operand. */
#define CF_BF16_SLOTS 4
static inline uint16_t* cf_bf16_scratch(int slot, ptrdiff_t n) {
    static __thread uint16_t* buf[CF_BF16_SLOTS] = {NULL, NULL, NULL, NULL};
    static __thread ptrdiff_t have[CF_BF16_SLOTS] = {0, 0, 0, 0};
    if (n > have[slot]) {
        free(buf[slot]);
        buf[slot] = cf_alloc_bf16(n);
        have[slot] = buf[slot] ? n : 0;
        if (buf[slot]) memset(buf[slot], 0, (size_t)n * sizeof(uint16_t));
    }
    return buf[slot];
}

/* ---- a whole product from float32 operands: C (M x N, ldc) (+)= op(A) @ op(B), where op(A)
 * is A (M x K, lda) or, trans_a, A^T for A (K x M); op(B) is B (K x N, ldb) or, trans_b,
 * B^T for B (N x K). Each operand is rounded once per block of CF_BF16_KC along K: all of A
 * at once, B in blocks of CF_BF16_NC columns; then blocks of CF_BF16_MC rows of A (which
 * stay in L2 while every panel of the B block passes through L1). Returns -1, having done
 * nothing, when memory is short; else 0. */
#define CF_BF16_KC 1024
#define CF_BF16_NC 256
#define CF_BF16_MC 128

static int cf_bgemm(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                    const float* A, ptrdiff_t lda, const float* B, ptrdiff_t ldb, float* C,
                    ptrdiff_t ldc, int accumulate) {
    ptrdiff_t kc_max = K < CF_BF16_KC ? K : CF_BF16_KC;
    ptrdiff_t la = cf_bf16_lda(cf_bf16_kpad(kc_max > 0 ? kc_max : 1));
    ptrdiff_t nc_max = N < CF_BF16_NC ? N : CF_BF16_NC;
    uint16_t* Ab = cf_bf16_scratch(0, cf_bf16_rows_room(M) * la);
    uint16_t* Pb = cf_bf16_scratch(1, cf_bpack_size(nc_max, kc_max > 0 ? kc_max : 1));
    if (Ab == NULL || Pb == NULL) return -1;
    if (M <= 0 || N <= 0) return 0;
    if (K == 0) {
        if (!accumulate)
            for (ptrdiff_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * N);
        return 0;
    }
    for (ptrdiff_t k0 = 0; k0 < K; k0 += CF_BF16_KC) {
        ptrdiff_t kc = K - k0 < CF_BF16_KC ? K - k0 : CF_BF16_KC, kp = cf_bf16_kpad(kc);
        int acc = accumulate || k0 > 0;
        if (trans_a) {
#if CF_HAVE_X86_BF16
            if (cf_cpu_level() == 2)
                cf_bf16_cols_avx512(A + k0 * lda, lda, 0, M, kc, Ab, la);
            else
#endif
                cf_bf16_cols(A + k0 * lda, lda, 0, M, kc, Ab, la);
        }
        else
            cf_bf16_rows(A + k0, lda, M, kc, Ab, la);
        for (ptrdiff_t n0 = 0; n0 < N; n0 += CF_BF16_NC) {
            ptrdiff_t nc = N - n0 < CF_BF16_NC ? N - n0 : CF_BF16_NC;
            if (trans_b)
                cf_bpack_nt(B + n0 * ldb + k0, ldb, nc, kc, Pb);
            else
                cf_bpack_nn(B + k0 * ldb + n0, ldb, kc, nc, Pb);
            for (ptrdiff_t i0 = 0; i0 < M; i0 += CF_BF16_MC) {
                ptrdiff_t mc = M - i0 < CF_BF16_MC ? M - i0 : CF_BF16_MC;
                cf_bgemm_packed(mc, nc, kp, Ab + i0 * la, la, Pb, C + i0 * ldc + n0, ldc, acc);
            }
        }
    }
    return 0;
}

#endif
