/* Vectorisable activations and OpenMP helpers for the charforge kernels.
 *
 * Why C: the float32 activations use a polynomial exp that gcc auto-vectorises (libm's expf
 * is a scalar call), and each hot loop is compiled for AVX-512, AVX2 and the baseline
 * (cf_levels.h) so one wheel runs everywhere at full width. float64 paths use libm (they exist
 * for gradient checks, where accuracy matters and speed does not).
 */
#ifndef CF_MATH_H
#define CF_MATH_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cf_cpu.h"

static inline int cf_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* *counter += v, atomically; returns the value before (threads taking work items). */
static inline ptrdiff_t cf_fetch_add(ptrdiff_t* counter, ptrdiff_t v) {
    return __atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

static inline void cf_set_num_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* An orphaned barrier: called from inside a Cython `parallel()` block it synchronises the
 * threads of that team (OpenMP binds it to the innermost enclosing parallel region). */
static inline void cf_barrier(void) {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

static inline int cf_get_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* exp(x) for float32: range reduction x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor polynomial
 * (truncation error < 1.3e-7 relative), scaling by 2^n through the exponent bits. Inputs are
 * clamped to the finite range; NaN propagates through the polynomial. */
static inline float cf_expf(float x) {
    const float hi = 88.0f, lo = -87.0f;
    x = x > hi ? hi : x;
    x = x < lo ? lo : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693145751953125f;   /* ln2 split in a high part exact in float */
    r = r - n * 1.428606765330187e-06f;     /* and the low remainder */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ti;
    memcpy(&ti, &t, 4);
    int32_t e = (ti - 0x4B400000 + 127) << 23;
    float s;
    memcpy(&s, &e, 4);
    return p * s;
}

/* The activations of one element, for tanh_to below and the fused cell rows of
 * cf_cells.h (one formula each, so every caller computes bit-identical values).
 * tanh(x) = 1 - 2 / (exp(2x) + 1): exact limits at +-inf, absolute error ~1e-7 near 0. */
static inline float cf_sigmoidf(float x) { return 1.0f / (1.0f + cf_expf(-x)); }
static inline float cf_tanhf(float x) { return 1.0f - 2.0f / (cf_expf(2.0f * x) + 1.0f); }
static inline double cf_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static void cf_tanh_to_f64(const double *x, double *y, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = tanh(x[i]);
}

/* Numerically safe softmax pieces over one row of logits. exp on float32 uses cf_expf. */
static inline double cf_exp_shift_sum_f64(double *x, ptrdiff_t n, double shift) {
    double s = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) { x[i] = exp(x[i] - shift); s += x[i]; }
    return s;
}

/* The sampler's unnormalised weights for one row: p[j] = exp((logits[j] - top) * scale) for
 * allowed characters whose weight reaches `floor_`, else 0 (`top` is the largest allowed
 * logit); returns how many were kept and their sum in *total. Subtracting before scaling
 * keeps the top weight exactly 1 at any scale: scale * logit - scale * top, contracted to an
 * FMA, left the top's rounding error (thousands of nats at temperature 1e-10) in the exp.
 * The scale is capped at FLT_MAX so that 0 * scale stays 0 for temperatures down to 5e-324.
 * The exp is the float32 polynomial (relative error < 2e-7, far below
 * what any number of draws can detect) so the row vectorises: libm's double exp was a tenth
 * of batched generation, and a sequential double sum another few percent. */
#define CF_SAMPLING_WEIGHTS(T, NAME)                                                         \
    CF_TARGET static ptrdiff_t CF_V(NAME)(const T* restrict logits,                           \
                                    const unsigned char* restrict allowed, ptrdiff_t v,       \
                                    double scale, double top, double floor_,                  \
                                    double* restrict p, double* restrict total) {             \
        float fscale = scale < FLT_MAX ? (float)scale : FLT_MAX, ftop = (float)top;           \
        float w[256];                                                                         \
        ptrdiff_t kept = 0;                                                                   \
        double sum = 0.0;                                                                     \
        for (ptrdiff_t j0 = 0; j0 < v; j0 += 256) {                                           \
            ptrdiff_t n = v - j0 < 256 ? v - j0 : 256;                                        \
            _Pragma("omp simd")                                                               \
            for (ptrdiff_t j = 0; j < n; j++)                                                 \
                w[j] = cf_expf(((float)logits[j0 + j] - ftop) * fscale);                      \
            _Pragma("omp simd reduction(+:kept, sum)")                                        \
            for (ptrdiff_t j = 0; j < n; j++) {                                               \
                double e = allowed[j0 + j] && (double)w[j] >= floor_ ? (double)w[j] : 0.0;    \
                p[j0 + j] = e;                                                                \
                kept += e > 0.0;                                                              \
                sum += e;                                                                     \
            }                                                                                 \
        }                                                                                     \
        *total = sum;                                                                         \
        return kept;                                                                          \
    }

/* The first allowed index holding the largest allowed value (-1 when none is allowed): a
 * vectorised max, then a scan for where it is. Disallowed entries are pushed down by 3e38
 * (arithmetic, not a select, so gcc vectorises it), far below any logit; NaN entries are
 * never the maximum, and when no allowed entry equals it the first allowed index is
 * returned (every allowed entry NaN or -inf). */
#define CF_MASKED_ARGMAX(T, NAME)                                                            \
    CF_TARGET static ptrdiff_t CF_V(NAME)(const T* restrict x, const unsigned char* restrict allowed, \
                                    ptrdiff_t v) {                                            \
        T mx = -INFINITY;                                                                     \
        ptrdiff_t first = -1;                                                                 \
        _Pragma("omp simd reduction(max:mx)")                                                 \
        for (ptrdiff_t j = 0; j < v; j++) {                                                   \
            T y = x[j] + ((T)allowed[j] - 1) * (T)3e38f;                                      \
            mx = y > mx ? y : mx;                                                             \
        }                                                                                     \
        for (ptrdiff_t j = 0; j < v; j++) {                                                   \
            if (!allowed[j]) continue;                                                        \
            if (first < 0) first = j;                                                         \
            if (x[j] == mx) return j;                                                         \
        }                                                                                     \
        return first;                                                                         \
    }

/* A counter-based hash (splitmix64 finaliser): dropout masks are a pure function of
 * (seed, index), so backward recomputes them and resumed runs reproduce them exactly. */
static inline uint64_t cf_hash64(uint64_t seed, uint64_t i) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}


static void cf_matvec_f64(const double* restrict W, ptrdiff_t ldw, const double* restrict x,
                          double* restrict y, ptrdiff_t N, ptrdiff_t K) {
    for (ptrdiff_t n = 0; n < N; n++) {
        const double* w0 = W + n * ldw;
        double a0 = 0.0;
        for (ptrdiff_t k = 0; k < K; k++) a0 += w0[k] * x[k];
        y[n] += a0;
    }
}

#define CF_LEVEL_BODY "cf_math_body.h"
#include "cf_levels.h"
#undef CF_LEVEL_BODY

#define cf_tanh_to_f32 CF_PICK(cf_tanh_to_f32)
#define cf_exp_shift_sum_f32 CF_PICK(cf_exp_shift_sum_f32)
#define cf_sampling_weights_f32 CF_PICK(cf_sampling_weights_f32)
#define cf_sampling_weights_f64 CF_PICK(cf_sampling_weights_f64)
#define cf_masked_argmax_f32 CF_PICK(cf_masked_argmax_f32)
#define cf_masked_argmax_f64 CF_PICK(cf_masked_argmax_f64)
#define cf_matvec_f32 CF_PICK(cf_matvec_f32)

#endif
