/* Pointwise updates of one batch row (units [u0, u1)), in C so that each is one fused loop
 * over the units that gcc vectorises (one copy per instruction-set level, cf_levels.h):
 * written in Cython they were a call per activation and gate block and scalar loops in between
 * (aliasing, baseline instruction set). The forward rows are shared by training and
 * generation, the backward rows by the training kernels. Each cell's forward row and its
 * backward row sit together; the plain statement of the math is charforge/reference.py.
 *
 * Shapes, for one batch row of a layer with H units (only units [u0, u1) are touched):
 *   row    (gH,)  the input projection x W_ih^T + b on entry (proj, gates of g = 1, 3, 4)
 *   cp, cn (H,)   LSTM cell state before / after the step;  tcn, tct (H,) tanh(c')
 *   hp, hn (H,)   hidden state before / after the step
 *   dh_t   (H,)   dLoss/dh' from the layer above;  dh_next, dc_next (H,) from step t+1 */
#ifndef CF_CELLS_H
#define CF_CELLS_H

#include "cf_math.h"

/* LSTM forward: row holds the pre-activations (i, f, g, o) on entry, the activated gates on
 * exit; c' = f c + i g into cn, tanh(c') into tcn, h' = o tanh(c') into hn. cp may be cn
 * (in-place state) and tcn may be row's i block (generation keeps no activations): each
 * iteration touches element j only and stores tcn after the gates. */
#define CF_LSTM_ROW(T, NAME, SIG, TANH)                                                       \
    CF_TARGET static void CF_V(NAME)(T* row, const T* cp, T* cn, T* tcn, T* hn, ptrdiff_t H,  \
                               ptrdiff_t u0, ptrdiff_t u1) {                                  \
        T* ri = row;                                                                          \
        T* rf = row + H;                                                                      \
        T* rg = row + 2 * H;                                                                  \
        T* ro = row + 3 * H;                                                                  \
        _Pragma("omp simd")                                                                   \
        for (ptrdiff_t j = u0; j < u1; j++) {                                                 \
            T ig = SIG(ri[j]), fg = SIG(rf[j]), gg = TANH(rg[j]), og = SIG(ro[j]);            \
            T c = fg * cp[j] + ig * gg;                                                       \
            T tc = TANH(c);                                                                   \
            ri[j] = ig;                                                                       \
            rf[j] = fg;                                                                       \
            rg[j] = gg;                                                                       \
            ro[j] = og;                                                                       \
            cn[j] = c;                                                                        \
            tcn[j] = tc;                                                                      \
            hn[j] = og * tc;                                                                  \
        }                                                                                     \
    }

/* LSTM backward: row holds the activated gates (i, f, g, o) on entry and d(pre-activation)
 * on exit; dh_next / dc_next carry the gradient arriving from step t+1 in, and leave for step t-1. */
#define CF_LSTM_BACKWARD_ROW(T, NAME)                                                         \
    CF_TARGET static void CF_V(NAME)(T* row, const T* restrict dh_t, T* restrict dh_next,     \
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

/* GRU forward: row holds the input pre-activations (r, z, n incl. b_ih), ghr the recurrent
 * ones (incl. b_hh); row gets the activated r, z, n and hn h' = (1 - z) n + z h with
 * n = tanh(x_n + r (W_hn h + b_hn)). */
#define CF_GRU_ROW(T, NAME, SIG, TANH)                                                        \
    CF_TARGET static void CF_V(NAME)(T* restrict row, const T* restrict ghr, const T* restrict hp, \
                               T* restrict hn, ptrdiff_t H, ptrdiff_t u0, ptrdiff_t u1) {     \
        T* restrict rr = row;                                                                 \
        T* restrict rz = row + H;                                                             \
        T* restrict rn = row + 2 * H;                                                         \
        _Pragma("omp simd")                                                                   \
        for (ptrdiff_t j = u0; j < u1; j++) {                                                 \
            T r = SIG(rr[j] + ghr[j]), z = SIG(rz[j] + ghr[H + j]);                           \
            T n = TANH(rn[j] + r * ghr[2 * H + j]);                                           \
            rr[j] = r;                                                                        \
            rz[j] = z;                                                                        \
            rn[j] = n;                                                                        \
            hn[j] = (1 - z) * n + z * hp[j];                                                  \
        }                                                                                     \
    }

/* GRU backward: row holds the activated r, z, n on entry and d(input pre-activation) on
 * exit; drow gets d(W_hh h + b_hh) (the n part scaled by r); hs = W_hn h + b_hn of the step. */
#define CF_GRU_BACKWARD_ROW(T, NAME)                                                          \
    CF_TARGET static void CF_V(NAME)(T* row, T* drow, const T* restrict hs, const T* restrict hp, \
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

/* tanh RNN forward: h' = tanh(row), a vectorised tanh over the row (tanh_to in
 * _common.pxd); no gates to combine, so no row function of its own. */

/* tanh RNN backward: a = (dh_t + dh_next) (1 - h'^2), the gradient at the pre-activation. */
#define CF_RNN_BACKWARD_ROW(T, NAME)                                                          \
    CF_TARGET static void CF_V(NAME)(T* restrict a, const T* restrict hn, const T* restrict dh_t, \
                               const T* restrict dh_next, ptrdiff_t u0, ptrdiff_t u1) {       \
        _Pragma("omp simd")                                                                   \
        for (ptrdiff_t j = u0; j < u1; j++) a[j] = (dh_t[j] + dh_next[j]) * (1 - hn[j] * hn[j]); \
    }

#define CF_LEVEL_BODY "cf_cells_body.h"
#include "cf_levels.h"
#undef CF_LEVEL_BODY

#define cf_lstm_row_f32 CF_PICK(cf_lstm_row_f32)
#define cf_lstm_row_f64 CF_PICK(cf_lstm_row_f64)
#define cf_lstm_backward_row_f32 CF_PICK(cf_lstm_backward_row_f32)
#define cf_lstm_backward_row_f64 CF_PICK(cf_lstm_backward_row_f64)
#define cf_gru_row_f32 CF_PICK(cf_gru_row_f32)
#define cf_gru_row_f64 CF_PICK(cf_gru_row_f64)
#define cf_gru_backward_row_f32 CF_PICK(cf_gru_backward_row_f32)
#define cf_gru_backward_row_f64 CF_PICK(cf_gru_backward_row_f64)
#define cf_rnn_backward_row_f32 CF_PICK(cf_rnn_backward_row_f32)
#define cf_rnn_backward_row_f64 CF_PICK(cf_rnn_backward_row_f64)

#endif
