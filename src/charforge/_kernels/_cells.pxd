# cython: language_level=3
"""The pointwise cell updates, shared by the training kernels and the generation loop (one
batch row, units [u0, u1); pointers are already offset to the row)."""
from cython cimport floating
from ._common cimport sigmoid_, tanh_, tanh_to


cdef inline void lstm_row(floating* row, const floating* cp, floating* cn, floating* tcn,
                          floating* hn, Py_ssize_t H, Py_ssize_t u0,
                          Py_ssize_t u1) noexcept nogil:
    """row: the 4H pre-activations (i, f, g, o; activated in place). Writes c' = f c + i g,
    tanh(c') into tcn and h' = o tanh(c'). cp may equal cn (in-place update)."""
    cdef Py_ssize_t j, nu = u1 - u0
    sigmoid_(row + u0, nu)
    sigmoid_(row + H + u0, nu)
    tanh_(row + 2 * H + u0, nu)
    sigmoid_(row + 3 * H + u0, nu)
    for j in range(u0, u1):
        cn[j] = row[H + j] * cp[j] + row[j] * row[2 * H + j]
    tanh_to(cn + u0, tcn + u0, nu)
    for j in range(u0, u1):
        hn[j] = row[3 * H + j] * tcn[j]


cdef inline void gru_row(floating* row, const floating* ghr, const floating* hp, floating* hn,
                         floating* hs, Py_ssize_t H, Py_ssize_t u0,
                         Py_ssize_t u1) noexcept nogil:
    """row: input pre-activations (r, z, n incl. b_ih), ghr: recurrent ones (incl. b_hh).
    h' = (1 - z) n + z h with n = tanh(x_n + r (W_hn h + b_hn)); hs (may be NULL) keeps
    W_hn h + b_hn for the backward pass."""
    cdef Py_ssize_t j, nu = u1 - u0
    cdef floating z
    for j in range(u0, u1):
        row[j] = row[j] + ghr[j]
        row[H + j] = row[H + j] + ghr[H + j]
    sigmoid_(row + u0, nu)
    sigmoid_(row + H + u0, nu)
    for j in range(u0, u1):
        if hs != NULL:
            hs[j] = ghr[2 * H + j]
        row[2 * H + j] = row[2 * H + j] + row[j] * ghr[2 * H + j]
    tanh_(row + 2 * H + u0, nu)
    for j in range(u0, u1):
        z = row[H + j]
        hn[j] = (1 - z) * row[2 * H + j] + z * hp[j]
