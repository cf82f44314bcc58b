/* Backward pointwise updates of one batch row (units [u0, u1)), in C so that `restrict` tells
 * gcc the gate, state and gradient rows do not overlap: written in Cython the loops stay
 * scalar (aliasing), here they vectorise (AVX-512 / AVX2 clones through CF_CLONES). */
#ifndef CF_CELLS_H
#define CF_CELLS_H

#include "cf_math.h"

/* LSTM: row holds the activated gates (i, f, g, o) on entry and d(pre-activation) on exit;
 * dh_next / dc_next carry the gradient arriving from step t+1 in, and leave for step t-1. */
#define CF_LSTM_BACKWARD_ROW(T, NAME)                                                         \
    CF_CLONES static void NAME(T* row, const T* restrict dh_t, T* restrict dh_next,           \
                               T* restrict dc_next, const T* restrict cp,                     \
                               const T* restrict tct, ptrdiff_t H, ptrdiff_t u0,              \
                               ptrdiff_t u1) {                                                \
        T* restrict ri = row;                                                                 \
        T* restrict rf = row + H;                                                             \
        T* restrict rg = row + 2 * H;                                                         \
        T* restrict ro = row + 3 * H;                                                         \
        _Pragma("omp simd")                                                                   \
        for (ptrdiff_t j = u0; j < u1; j++) {                                                 \
            T ig = ri[j], fg = rf[j], gg = rg[j], og = ro[j], tcv = tct[j];                   \
            T dh = dh_t[j] + dh_next[j];                                                      \
            T dc = dc_next[j] + dh * og * (1 - tcv * tcv);                                    \
            dc_next[j] = dc * fg;                                                             \
            ri[j] = dc * gg * ig * (1 - ig);                                                  \
            rf[j] = dc * cp[j] * fg * (1 - fg);                                               \
            rg[j] = dc * ig * (1 - gg * gg);                                                  \
            ro[j] = dh * tcv * og * (1 - og);                                                 \
        }                                                                                     \
    }

CF_LSTM_BACKWARD_ROW(float, cf_lstm_backward_row_f32)
CF_LSTM_BACKWARD_ROW(double, cf_lstm_backward_row_f64)

/* GRU: row holds the activated r, z, n on entry and d(input pre-activation) on exit; drow
 * gets d(W_hh h + b_hh) (the n part scaled by r); hs = W_hn h + b_hn of the step. */
#define CF_GRU_BACKWARD_ROW(T, NAME)                                                          \
    CF_CLONES static void NAME(T* row, T* drow, const T* restrict hs, const T* restrict hp,   \
                               const T* restrict dh_t, T* restrict dh_next, ptrdiff_t H,      \
                               ptrdiff_t u0, ptrdiff_t u1) {                                  \
        T* restrict rr = row;                                                                 \
        T* restrict rz = row + H;                                                             \
        T* restrict rn = row + 2 * H;                                                         \
        T* restrict dr = drow;                                                                \
        T* restrict dz = drow + H;                                                            \
        T* restrict dn_ = drow + 2 * H;                                                       \
        _Pragma("omp simd")                                                                   \
        for (ptrdiff_t j = u0; j < u1; j++) {                                                 \
            T r = rr[j], z = rz[j], n = rn[j];                                                \
            T dh = dh_t[j] + dh_next[j];                                                      \
            T dan = dh * (1 - z) * (1 - n * n);                                               \
            T dar = dan * hs[j] * r * (1 - r);                                                \
            T daz = dh * (hp[j] - n) * z * (1 - z);                                           \
            dh_next[j] = dh * z;                                                              \
            rr[j] = dar;                                                                      \
            rz[j] = daz;                                                                      \
            rn[j] = dan;                                                                      \
            dr[j] = dar;                                                                      \
            dz[j] = daz;                                                                      \
            dn_[j] = dan * r;                                                                 \
        }                                                                                     \
    }

CF_GRU_BACKWARD_ROW(float, cf_gru_backward_row_f32)
CF_GRU_BACKWARD_ROW(double, cf_gru_backward_row_f64)

/* tanh RNN: a = (dh_t + dh_next) (1 - h'^2), the gradient at the pre-activation. */
#define CF_RNN_BACKWARD_ROW(T, NAME)                                                          \
    CF_CLONES static void NAME(T* restrict a, const T* restrict hn, const T* restrict dh_t,   \
                               const T* restrict dh_next, ptrdiff_t u0, ptrdiff_t u1) {       \
        _Pragma("omp simd")                                                                   \
        for (ptrdiff_t j = u0; j < u1; j++) a[j] = (dh_t[j] + dh_next[j]) * (1 - hn[j] * hn[j]); \
    }

CF_RNN_BACKWARD_ROW(float, cf_rnn_backward_row_f32)
CF_RNN_BACKWARD_ROW(double, cf_rnn_backward_row_f64)

#endif
