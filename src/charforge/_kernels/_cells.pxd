# cython: language_level=3
"""The pointwise cell updates, shared by the training kernels and the generation loop (one
batch row, units [u0, u1); pointers are already offset to the row)."""
from cython cimport floating
from libc.string cimport memcpy

cdef extern from "cf_cells.h" nogil:
    void cf_lstm_row_f32(float* row, const float* cp, float* cn, float* tcn, float* hn,
                         Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1)
    void cf_lstm_row_f64(double* row, const double* cp, double* cn, double* tcn, double* hn,
                         Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1)
    void cf_gru_row_f32(float* row, const float* ghr, const float* hp, float* hn,
                        Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1)
    void cf_gru_row_f64(double* row, const double* ghr, const double* hp, double* hn,
                        Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1)
    void cf_lstm_backward_row_f32(float* row, const float* dh_t, float* dh_next,
                                  float* dc_next, const float* cp, const float* tct,
                                  Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1)
    void cf_lstm_backward_row_f64(double* row, const double* dh_t, double* dh_next,
                                  double* dc_next, const double* cp, const double* tct,
                                  Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1)
    void cf_gru_backward_row_f32(float* row, float* drow, const float* hs, const float* hp,
                                 const float* dh_t, float* dh_next, Py_ssize_t H,
                                 Py_ssize_t u0, Py_ssize_t u1)
    void cf_gru_backward_row_f64(double* row, double* drow, const double* hs,
                                 const double* hp, const double* dh_t, double* dh_next,
                                 Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1)
    void cf_rnn_backward_row_f32(float* a, const float* hn, const float* dh_t,
                                 const float* dh_next, Py_ssize_t u0, Py_ssize_t u1)
    void cf_rnn_backward_row_f64(double* a, const double* hn, const double* dh_t,
                                 const double* dh_next, Py_ssize_t u0, Py_ssize_t u1)


cdef inline void lstm_row(floating* row, const floating* cp, floating* cn, floating* tcn,
                          floating* hn, Py_ssize_t H, Py_ssize_t u0,
                          Py_ssize_t u1) noexcept nogil:
    """row: the 4H pre-activations (i, f, g, o; activated in place). Writes c' = f c + i g,
    tanh(c') into tcn and h' = o tanh(c'). cp may equal cn (in-place update)."""
    if floating is float:
        cf_lstm_row_f32(row, cp, cn, tcn, hn, H, u0, u1)
    else:
        cf_lstm_row_f64(row, cp, cn, tcn, hn, H, u0, u1)


cdef inline void gru_row(floating* row, const floating* ghr, const floating* hp, floating* hn,
                         floating* hs, Py_ssize_t H, Py_ssize_t u0,
                         Py_ssize_t u1) noexcept nogil:
    """row: input pre-activations (r, z, n incl. b_ih), ghr: recurrent ones (incl. b_hh).
    h' = (1 - z) n + z h with n = tanh(x_n + r (W_hn h + b_hn)); hs (may be NULL) keeps
    W_hn h + b_hn for the backward pass."""
    if hs != NULL:
        memcpy(hs + u0, ghr + 2 * H + u0, (u1 - u0) * sizeof(floating))
    if floating is float:
        cf_gru_row_f32(row, ghr, hp, hn, H, u0, u1)
    else:
        cf_gru_row_f64(row, ghr, hp, hn, H, u0, u1)


cdef inline void lstm_backward_row(floating* row, const floating* dh_t, floating* dh_next,
                                   floating* dc_next, const floating* cp, const floating* tct,
                                   Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1) noexcept nogil:
    """One row's LSTM backward step (pointers offset to the row; see cf_cells.h)."""
    if floating is float:
        cf_lstm_backward_row_f32(row, dh_t, dh_next, dc_next, cp, tct, H, u0, u1)
    else:
        cf_lstm_backward_row_f64(row, dh_t, dh_next, dc_next, cp, tct, H, u0, u1)


cdef inline void gru_backward_row(floating* row, floating* drow, const floating* hs,
                                  const floating* hp, const floating* dh_t, floating* dh_next,
                                  Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1) noexcept nogil:
    """One row's GRU backward step (pointers offset to the row; see cf_cells.h)."""
    if floating is float:
        cf_gru_backward_row_f32(row, drow, hs, hp, dh_t, dh_next, H, u0, u1)
    else:
        cf_gru_backward_row_f64(row, drow, hs, hp, dh_t, dh_next, H, u0, u1)


cdef inline void rnn_backward_row(floating* a, const floating* hn, const floating* dh_t,
                                  const floating* dh_next, Py_ssize_t u0,
                                  Py_ssize_t u1) noexcept nogil:
    """One row's tanh-RNN backward step (pointers offset to the row; see cf_cells.h)."""
    if floating is float:
        cf_rnn_backward_row_f32(a, hn, dh_t, dh_next, u0, u1)
    else:
        cf_rnn_backward_row_f64(a, hn, dh_t, dh_next, u0, u1)


cdef inline void scatter_units(const floating* row, floating* dst, Py_ssize_t H, int gates,
                               Py_ssize_t u0, Py_ssize_t u1) noexcept nogil:
    """dst[q H + j] += row[q H + j] for every gate q and unit j in [u0, u1): one step's share of
    the input-table gradient, added while the row is still in L1 (threads own disjoint
    units, so no two write the same element)."""
    cdef Py_ssize_t j
    cdef int q
    for q in range(gates):
        for j in range(u0, u1):
            dst[q * H + j] += row[q * H + j]
