# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused vanilla (Elman, tanh) RNN recurrence: h' = tanh(W_ih x + b + W_hh h).

Shapes (time-major, C-contiguous): pre (T, B, H) holds the input projection with bias on
entry (and the pre-activation gradient after backward), h (T+1, B, H) with h[0] the initial
state, w_hh (H, H). Threads split the hidden units with one barrier per step (see lstm.pyx).
"""
from cython.parallel cimport parallel, threadid
from cython cimport floating
from ._common cimport gemm_rm, tanh_to, cf_barrier, unit_bound, team_size

from ._shapes import check_sequence_buffers, expect_shapes


cdef void _forward_units(floating* pre, const floating* w_hh, floating* h, Py_ssize_t T,
                         Py_ssize_t B, Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1,
                         bint sync) noexcept nogil:
    cdef Py_ssize_t t, b, nu = u1 - u0
    cdef floating* a
    for t in range(T):
        a = pre + t * B * H
        if nu > 0:
            gemm_rm(False, True, <int>B, <int>nu, <int>H, <floating>1.0, h + t * B * H, <int>H,
                    w_hh + u0 * H, <int>H, <floating>1.0, a + u0, <int>H)
            for b in range(B):
                tanh_to(a + b * H + u0, h + (t + 1) * B * H + b * H + u0, nu)
        if sync:
            cf_barrier()


cdef void _backward_units(floating* pre, const floating* w_hh, const floating* h,
                          const floating* dh_out, floating* dh_next, Py_ssize_t T, Py_ssize_t B,
                          Py_ssize_t H, Py_ssize_t u0, Py_ssize_t u1, bint sync) noexcept nogil:
    cdef Py_ssize_t t, b, j, k, nu = u1 - u0
    cdef floating* a
    cdef const floating* hn
    cdef const floating* dh_t
    for t in range(T - 1, -1, -1):
        a = pre + t * B * H
        hn = h + (t + 1) * B * H
        dh_t = dh_out + t * B * H
        for b in range(B):
            for j in range(u0, u1):
                k = b * H + j
                a[k] = (dh_t[k] + dh_next[k]) * (1 - hn[k] * hn[k])
        if sync:
            cf_barrier()
        if nu > 0:
            gemm_rm(False, False, <int>B, <int>nu, <int>H, <floating>1.0, a, <int>H, w_hh + u0,
                    <int>H, <floating>0.0, dh_next + u0, <int>H)


def rnn_forward(floating[:, :, ::1] pre, const floating[:, ::1] w_hh, floating[:, :, ::1] h,
                int threads=1):
    """Run the layer over T steps. In: pre = input projection with bias, h[0]. Out: h[1:]."""
    cdef Py_ssize_t T = pre.shape[0], B = pre.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(1, pre, w_hh, h)
    cdef int n = team_size(H, threads), tid
    if T == 0 or B == 0:
        return
    with nogil:
        if n == 1:
            _forward_units(&pre[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0], T, B, H, 0, H, False)
        else:
            with parallel(num_threads=n):
                tid = threadid()
                _forward_units(&pre[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0], T, B, H,
                               unit_bound(H, tid, n), unit_bound(H, tid + 1, n), True)


def rnn_backward(floating[:, :, ::1] pre, const floating[:, ::1] w_hh,
                 const floating[:, :, ::1] h, const floating[:, :, ::1] dh_out,
                 floating[:, ::1] dh_next, int threads=1):
    """Backpropagate through T steps. Out: pre = dLoss/d(pre-activation), dh_next = gradient
    at the initial state."""
    cdef Py_ssize_t T = pre.shape[0], B = pre.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(1, pre, w_hh, h)
    expect_shapes("rnn_backward", dh_out=(dh_out, (T, B, H)), dh_next=(dh_next, (B, H)))
    cdef int n = team_size(H, threads), tid
    if T == 0 or B == 0:
        return
    with nogil:
        if n == 1:
            _backward_units(&pre[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0], &dh_out[0, 0, 0],
                            &dh_next[0, 0], T, B, H, 0, H, False)
        else:
            with parallel(num_threads=n):
                tid = threadid()
                _backward_units(&pre[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0], &dh_out[0, 0, 0],
                                &dh_next[0, 0], T, B, H, unit_bound(H, tid, n),
                                unit_bound(H, tid + 1, n), True)
