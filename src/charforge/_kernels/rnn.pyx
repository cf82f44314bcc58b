# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused vanilla (Elman, tanh) RNN recurrence: h' = tanh(W_ih x + b + W_hh h).

Shapes (time-major, C-contiguous): proj (T, B, H) holds the input projection with bias on
entry (and the pre-activation gradient after backward), h (T+1, B, H) with h[0] the initial
state, w_hh (H, H). Threads split the batch rows or the hidden units (see lstm.pyx).
"""
from cython.parallel cimport parallel, threadid
from cython cimport floating
from libc.stdint cimport int32_t
from ._cells cimport rnn_backward_row, scatter_units
from ._common cimport (tanh_to, team_share, prefetch_units, recurrent_nt, recurrent_nn,
                       WorkShare, share_slots, ThreadWork, work_begin, work_next_rows,
                       work_step_done, work_end)

from ._shapes import TableScatter, check_sequence_buffers, expect_shapes


cdef void _forward_units(floating* proj, const floating* w_hh, floating* h, Py_ssize_t T,
                         Py_ssize_t B, Py_ssize_t H, WorkShare* share, int tid, bint bf16) noexcept nogil:
    """Thread tid's share of the forward recurrence (see ThreadWork in _common.pxd)."""
    cdef Py_ssize_t t, b
    cdef floating* a
    cdef ThreadWork w
    work_begin(share, tid, &w, w_hh, 1, False, bf16)
    while work_next_rows(share, tid, &w):
        for t in range(T):
            a = proj + (t * B + w.b0) * H
            if w.busy:
                if t + 1 < T:
                    prefetch_units(a + B * H, w.rows, H, 1, H, w.u0, w.nu)
                recurrent_nt(&w, 1, H, h + (t * B + w.b0) * H, w_hh, a, H)
                for b in range(w.rows):
                    tanh_to(a + b * H + w.u0, h + ((t + 1) * B + w.b0 + b) * H + w.u0, w.nu)
            work_step_done(&w)
    work_end(&w)


cdef void _backward_units(floating* proj, const floating* w_hh, const floating* h,
                          const floating* dh_out, floating* dh_next, const int32_t* ids,
                          floating* tables, Py_ssize_t table_size, Py_ssize_t T, Py_ssize_t B,
                          Py_ssize_t H, WorkShare* share, int tid, bint bf16) noexcept nogil:
    """Thread tid's share of the backward recurrence (see ThreadWork in _common.pxd)."""
    cdef Py_ssize_t t, b
    cdef floating* a
    cdef floating* dtable = NULL
    cdef floating* dhn
    cdef const floating* hn
    cdef const floating* dh_t
    cdef ThreadWork w
    work_begin(share, tid, &w, w_hh, 1, True, bf16)
    while work_next_rows(share, tid, &w):
        dhn = dh_next + w.b0 * H
        if tables != NULL:
            dtable = tables + w.slot * table_size
        for t in range(T - 1, -1, -1):
            a = proj + (t * B + w.b0) * H
            hn = h + ((t + 1) * B + w.b0) * H
            dh_t = dh_out + (t * B + w.b0) * H
            for b in range(w.rows):
                rnn_backward_row(a + b * H, hn + b * H, dh_t + b * H, dhn + b * H, w.u0, w.u1)
                if dtable != NULL:
                    scatter_units(a + b * H, dtable + ids[t * B + w.b0 + b] * H, H, 1, w.u0, w.u1)
            work_step_done(&w)
            if w.busy:
                recurrent_nn(&w, H, H, a, w_hh, dhn, False)
    work_end(&w)


def rnn_forward(floating[:, :, ::1] proj, const floating[:, ::1] w_hh, floating[:, :, ::1] h,
                int threads=1, bint bf16=False):
    """Run the layer over T steps. In: proj = input projection with bias, h[0]. Out: h[1:].
    Reference: charforge.reference.rnn_forward (one step)."""
    cdef Py_ssize_t T = proj.shape[0], B = proj.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(1, proj, w_hh, h)
    cdef WorkShare share
    cdef int n = team_share(&share, B, H, 1, threads, 0), tid
    if T == 0 or B == 0:
        return
    with nogil, parallel(num_threads=n):    # n = 1: the caller's thread alone
        tid = threadid()
        _forward_units(&proj[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0], T, B, H, &share,
                       tid, bf16)


def rnn_backward(floating[:, :, ::1] proj, const floating[:, ::1] w_hh,
                 const floating[:, :, ::1] h, const floating[:, :, ::1] dh_out,
                 floating[:, ::1] dh_next, int threads=1, const int32_t[::1] ids=None,
                 floating[:, ::1] dtable=None, bint bf16=False):
    """Backpropagate through T steps. Out: proj = dLoss/d(pre-activation), dh_next = gradient
    at the initial state. With ids and dtable: dtable[ids[t*B+b]] += proj[t, b] in the same
    pass (see lstm_backward).
    Reference: charforge.reference.rnn_backward (one step).
    """
    cdef Py_ssize_t T = proj.shape[0], B = proj.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(1, proj, w_hh, h)
    expect_shapes("rnn_backward", dh_out=(dh_out, (T, B, H)), dh_next=(dh_next, (B, H)))
    scatter = TableScatter("rnn_backward", T, B, H, ids, dtable)
    cdef const int32_t* pid = &ids[0] if scatter.on else NULL
    cdef WorkShare share
    cdef int n = team_share(&share, B, H, 1, threads, scatter.table_bytes), tid
    cdef floating[:, :, ::1] tables = scatter.tables(share_slots(&share), proj)
    cdef Py_ssize_t table_size = tables.shape[1] * tables.shape[2]
    if T == 0 or B == 0:
        return
    with nogil, parallel(num_threads=n):    # n = 1: the caller's thread alone
        tid = threadid()
        _backward_units(&proj[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0], &dh_out[0, 0, 0],
                        &dh_next[0, 0], pid,
                        &tables[0, 0, 0] if pid != NULL else NULL, table_size,
                        T, B, H, &share, tid, bf16)
    scatter.finish(tables)
