/* The emulated bf16 product of cf_bf16.h compiled once per instruction-set level: included by
 * cf_levels.h with CF_TARGET and CF_V set for each level (no include guard on purpose).
 * The operands are already rounded to bf16; widening one is exact (a shift), and so is each
 * product in float32, so this differs from vdpbf16ps and AMX only in the order of the sums. */

CF_TARGET static void CF_V(cf_bgemm_emulated)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t Kp,
                                              const uint16_t* A, ptrdiff_t lda,
                                              const uint16_t* P, float* C, ptrdiff_t ldc,
                                              int accumulate) {
    float acc[16], b[32];
    for (ptrdiff_t p = 0; p < N; p += 16) {
        const uint16_t* Pp = P + p * Kp;
        ptrdiff_t cols = N - p < 16 ? N - p : 16;
        for (ptrdiff_t i = 0; i < M; i++) {
            const uint16_t* Ai = A + i * lda;
            for (int j = 0; j < 16; j++) acc[j] = 0.0f;
            for (ptrdiff_t kp = 0; kp < Kp / 2; kp++) {
                float a0 = cf_from_bf16(Ai[2 * kp]), a1 = cf_from_bf16(Ai[2 * kp + 1]);
                for (int j = 0; j < 32; j++) b[j] = cf_from_bf16(Pp[kp * 32 + j]);
                for (int j = 0; j < 16; j++) acc[j] += a0 * b[2 * j] + a1 * b[2 * j + 1];
            }
            float* Ci = C + i * ldc + p;
            for (ptrdiff_t j = 0; j < cols; j++) Ci[j] = accumulate ? Ci[j] + acc[j] : acc[j];
        }
    }
}

/* B = W^T for W (N x K, row stride ldw), packed (see the top of cf_bf16.h): each pair of
 * k goes out as one 32-bit word. */
CF_TARGET static void CF_V(cf_bpack_nt)(const float* W, ptrdiff_t ldw, ptrdiff_t N, ptrdiff_t K,
                                        uint16_t* P) {
    ptrdiff_t Kp = cf_bf16_kpad(K), Np = (N + 31) / 32 * 32;
    uint32_t* P32 = (uint32_t*)P;
    for (ptrdiff_t n = 0; n < Np; n++) {
        uint32_t* dst = P32 + (n / 16) * 8 * Kp + (n % 16);
        const float* src = W + n * ldw;
        ptrdiff_t kp = 0;
        if (n < N) {
            for (; 2 * kp + 1 < K; kp++)
                dst[kp * 16] = (uint32_t)cf_to_bf16(src[2 * kp]) |
                               ((uint32_t)cf_to_bf16(src[2 * kp + 1]) << 16);
            if (2 * kp < K) {
                dst[kp * 16] = cf_to_bf16(src[2 * kp]);
                kp++;
            }
        }
        for (; kp < Kp / 2; kp++) dst[kp * 16] = 0;
    }
}

/* B = W for W (K x N, row stride ldw), packed: two rows of W at a time, each panel's 16
 * pairs written as one contiguous run. */
CF_TARGET static void CF_V(cf_bpack_nn)(const float* W, ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t N,
                                        uint16_t* P) {
    ptrdiff_t Kp = cf_bf16_kpad(K), Np = (N + 31) / 32 * 32;
    uint32_t* P32 = (uint32_t*)P;
    for (ptrdiff_t kp = 0; kp < Kp / 2; kp++) {
        const float* r0 = W + 2 * kp * ldw;
        const float* r1 = r0 + ldw;
        int has0 = 2 * kp < K, has1 = 2 * kp + 1 < K;
        for (ptrdiff_t p = 0; p < Np; p += 16) {
            uint32_t* dst = P32 + (p / 16) * 8 * Kp + kp * 16;
            if (has0 && has1 && p + 16 <= N) {
                for (int j = 0; j < 16; j++)
                    dst[j] = (uint32_t)cf_to_bf16(r0[p + j]) |
                             ((uint32_t)cf_to_bf16(r1[p + j]) << 16);
            } else {
                for (int j = 0; j < 16; j++) {
                    int in = p + j < N;
                    uint32_t lo = has0 && in ? cf_to_bf16(r0[p + j]) : 0;
                    uint32_t hi = has1 && in ? cf_to_bf16(r1[p + j]) : 0;
                    dst[j] = lo | (hi << 16);
                }
            }
        }
    }
}

/* out (rows x ldo, bf16) = X (rows x K, row stride ldx) rounded, columns K..ldo zero. */
CF_TARGET static void CF_V(cf_bf16_rows)(const float* X, ptrdiff_t ldx, ptrdiff_t rows,
                                         ptrdiff_t K, uint16_t* out, ptrdiff_t ldo) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float* restrict src = X + r * ldx;
        uint16_t* restrict dst = out + r * ldo;
        for (ptrdiff_t k = 0; k < K; k++) dst[k] = cf_to_bf16(src[k]);
        for (ptrdiff_t k = K; k < ldo; k++) dst[k] = 0;
    }
}

/* out (cols x ldo, bf16) = X^T rounded, for columns [c0, c0 + cols) and rows [0, K) of X
 * (row stride ldx); columns K..ldo of out zero. Blocks of 16 x 16 through a small buffer:
 * contiguous reads and writes. */
CF_TARGET static void CF_V(cf_bf16_cols)(const float* X, ptrdiff_t ldx, ptrdiff_t c0,
                                         ptrdiff_t cols, ptrdiff_t K, uint16_t* out,
                                         ptrdiff_t ldo) {
    uint16_t blk[16][16];
    for (ptrdiff_t k0 = 0; k0 < K; k0 += 16) {
        ptrdiff_t kb = K - k0 < 16 ? K - k0 : 16;
        for (ptrdiff_t cb0 = 0; cb0 < cols; cb0 += 16) {
            ptrdiff_t cb = cols - cb0 < 16 ? cols - cb0 : 16;
            for (ptrdiff_t k = 0; k < kb; k++) {
                const float* src = X + (k0 + k) * ldx + c0 + cb0;
                for (ptrdiff_t c = 0; c < cb; c++) blk[c][k] = cf_to_bf16(src[c]);
            }
            for (ptrdiff_t c = 0; c < cb; c++)
                memcpy(out + (cb0 + c) * ldo + k0, blk[c], sizeof(uint16_t) * kb);
        }
    }
    for (ptrdiff_t c = 0; c < cols; c++)
        for (ptrdiff_t k = K; k < ldo; k++) out[c * ldo + k] = 0;
}
