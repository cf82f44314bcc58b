/* The float loops of cf_math.h compiled once per instruction-set level: included by
 * cf_levels.h with CF_TARGET and CF_V set for each level (no include guard on purpose). */

CF_TARGET static void CF_V(cf_tanh_to_f32)(const float *restrict x, float *restrict y, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = cf_tanhf(x[i]);
}

CF_TARGET static inline float CF_V(cf_exp_shift_sum_f32)(float *restrict x, ptrdiff_t n, float shift) {
    float s = 0.0f;
    for (ptrdiff_t i = 0; i < n; i++) { x[i] = cf_expf(x[i] - shift); s += x[i]; }
    return s;
}

CF_SAMPLING_WEIGHTS(float, cf_sampling_weights_f32)
CF_SAMPLING_WEIGHTS(double, cf_sampling_weights_f64)

CF_MASKED_ARGMAX(float, cf_masked_argmax_f32)
CF_MASKED_ARGMAX(double, cf_masked_argmax_f64)

/* y[n] += dot(W[n, :K], x) for n < N, W row-major with leading dimension ldw. Four rows at a
 * time share each load of x; `omp simd` lets gcc vectorise the reductions at full width. For
 * batch-1 generation, where every weight is read once per character, this beats a BLAS gemv
 * call per gate block (no dispatch, no argument checking, no packing). */
CF_TARGET static void CF_V(cf_matvec_f32)(const float* restrict W, ptrdiff_t ldw,
                                    const float* restrict x, float* restrict y,
                                    ptrdiff_t N, ptrdiff_t K) {
    ptrdiff_t n = 0;
    for (; n + 4 <= N; n += 4) {
        const float* w0 = W + n * ldw;
        const float* w1 = w0 + ldw;
        const float* w2 = w1 + ldw;
        const float* w3 = w2 + ldw;
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma omp simd reduction(+:a0, a1, a2, a3)
        for (ptrdiff_t k = 0; k < K; k++) {
            float xv = x[k];
            a0 += w0[k] * xv;
            a1 += w1[k] * xv;
            a2 += w2[k] * xv;
            a3 += w3[k] * xv;
        }
        y[n] += a0; y[n + 1] += a1; y[n + 2] += a2; y[n + 3] += a3;
    }
    for (; n < N; n++) {
        const float* w0 = W + n * ldw;
        float a0 = 0.f;
#pragma omp simd reduction(+:a0)
        for (ptrdiff_t k = 0; k < K; k++) a0 += w0[k] * x[k];
        y[n] += a0;
    }
}
