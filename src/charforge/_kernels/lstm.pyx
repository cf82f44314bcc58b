# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused LSTM recurrence over a whole sequence (PyTorch gate order i, f, g, o).

Shapes (time-major, C-contiguous): proj (T, B, 4H), h and c (T+1, B, H) with index 0 the
initial state, tc (T, B, H) = tanh(c[1:]), w_hh (4H, H). The caller computes the input
projection x @ W_ih^T + b into `proj`, and after backward turns the returned pre-activation
gradients into dW_ih, dW_hh, db and the input gradient with large GEMMs over all steps.

Threads split the batch rows when there are enough of them and W_hh is small (split_rows):
the rows go in blocks of 16 to whichever thread is free (share_init: a core slowed by a
neighbour then takes fewer blocks), and a block's whole recurrence runs on one thread, with no
synchronisation at all. Otherwise they split the hidden units: thread k owns units [u0, u1) and computes the
recurrent product only for its units' rows of W_hh (one GEMM per gate block), then its units'
cell update. Every unit's update needs only its own gate columns, so one barrier per step
(after h_t is complete) is all the synchronisation there is. BLAS must run single-threaded
inside (the caller arranges it).
"""
from cython.parallel cimport parallel, threadid
from cython cimport floating
from libc.stdint cimport int32_t
from ._cells cimport lstm_row, lstm_backward_row, scatter_units
from ._common cimport (team_share, prefetch_units, recurrent_nt, recurrent_nn, WorkShare,
                       share_slots, ThreadWork, work_begin, work_next_rows, work_step_done,
                       work_end)

from ._shapes import TableScatter, check_sequence_buffers, expect_shapes


cdef void _forward_units(floating* proj, const floating* w_hh, floating* h, floating* c,
                         floating* tc, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H,
                         WorkShare* share, int tid, bint bf16) noexcept nogil:
    """Thread tid's share of the forward recurrence (see ThreadWork in _common.pxd)."""
    cdef Py_ssize_t t, b, G = 4 * H
    cdef floating* g
    cdef floating* hp
    cdef floating* hn
    cdef floating* cp
    cdef floating* cn
    cdef floating* tcn
    cdef ThreadWork w
    work_begin(share, tid, &w, w_hh, 4, False, bf16)
    while work_next_rows(share, tid, &w):
        for t in range(T):
            g = proj + (t * B + w.b0) * G
            hp = h + (t * B + w.b0) * H
            hn = h + ((t + 1) * B + w.b0) * H
            cp = c + (t * B + w.b0) * H
            cn = c + ((t + 1) * B + w.b0) * H
            tcn = tc + (t * B + w.b0) * H
            if w.busy:
                if t + 1 < T:
                    prefetch_units(g + B * G, w.rows, G, 4, H, w.u0, w.nu)
                recurrent_nt(&w, 4, H, hp, w_hh, g, G)
                for b in range(w.rows):
                    lstm_row(g + b * G, cp + b * H, cn + b * H, tcn + b * H, hn + b * H, H,
                             w.u0, w.u1)
            work_step_done(&w)
    work_end(&w)


cdef void _backward_units(floating* proj, const floating* w_hh, const floating* c,
                          const floating* tc, const floating* dh_out, floating* dh_next,
                          floating* dc_next, const int32_t* ids, floating* tables,
                          Py_ssize_t table_size, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H,
                          WorkShare* share, int tid, bint bf16) noexcept nogil:
    """Thread tid's share of the backward recurrence (see ThreadWork in _common.pxd)."""
    cdef Py_ssize_t t, b, G = 4 * H
    cdef floating* g
    cdef floating* dtable = NULL
    cdef floating* dhn
    cdef floating* dcn
    cdef const floating* dh_t
    cdef const floating* cp
    cdef const floating* tct
    cdef ThreadWork w
    work_begin(share, tid, &w, w_hh, 4, True, bf16)
    while work_next_rows(share, tid, &w):
        dhn = dh_next + w.b0 * H
        dcn = dc_next + w.b0 * H
        if tables != NULL:
            dtable = tables + w.slot * table_size
        for t in range(T - 1, -1, -1):
            g = proj + (t * B + w.b0) * G
            dh_t = dh_out + (t * B + w.b0) * H
            cp = c + (t * B + w.b0) * H
            tct = tc + (t * B + w.b0) * H
            if t > 0 and w.busy:
                prefetch_units(g - B * G, w.rows, G, 4, H, w.u0, w.nu)
            for b in range(w.rows):
                lstm_backward_row(g + b * G, dh_t + b * H, dhn + b * H, dcn + b * H,
                                  cp + b * H, tct + b * H, H, w.u0, w.u1)
                if dtable != NULL:
                    scatter_units(g + b * G, dtable + ids[t * B + w.b0 + b] * G, H, 4, w.u0,
                                  w.u1)
            work_step_done(&w)
            if w.busy:
                recurrent_nn(&w, G, H, g, w_hh, dhn, False)
    work_end(&w)


def lstm_forward(floating[:, :, ::1] proj, const floating[:, ::1] w_hh,
                 floating[:, :, ::1] h, floating[:, :, ::1] c, floating[:, :, ::1] tc,
                 int threads=1, bint bf16=False):
    """Run the layer over T steps. In: proj = input projection with bias, h[0], c[0].
    Out: proj = the activated gates (i, f, g, o), h[1:], c[1:], tc = tanh(c[1:]).
    Reference: charforge.reference.lstm_forward (one step).
    """
    cdef Py_ssize_t T = proj.shape[0], B = proj.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(4, proj, w_hh, h, c, tc)
    cdef WorkShare share
    cdef int n = team_share(&share, B, H, 4, threads, 0), tid
    if T == 0 or B == 0:
        return
    with nogil, parallel(num_threads=n):    # n = 1: the caller's thread alone
        tid = threadid()
        _forward_units(&proj[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0], &c[0, 0, 0],
                       &tc[0, 0, 0], T, B, H, &share, tid, bf16)


def lstm_backward(floating[:, :, ::1] proj, const floating[:, ::1] w_hh,
                  const floating[:, :, ::1] c, const floating[:, :, ::1] tc,
                  const floating[:, :, ::1] dh_out, floating[:, ::1] dh_next,
                  floating[:, ::1] dc_next, int threads=1, const int32_t[::1] ids=None,
                  floating[:, ::1] dtable=None, bint bf16=False):
    """Backpropagate through T steps.

    In: proj as left by lstm_forward; dh_out (T, B, H) = dLoss/dh[1:]; dh_next, dc_next (B, H)
    = gradient arriving at the final state (zeros for plain truncated BPTT).
    Out: proj = dLoss/d(pre-activation) (T, B, 4H); dh_next, dc_next = gradient at the
    initial state. With ids (T*B,) and dtable (V, 4H): dtable[ids[t*B+b]] += proj[t, b]
    (the input-table gradient of layer 0, in the same pass).
    Reference: charforge.reference.lstm_backward (one step).
    """
    cdef Py_ssize_t T = proj.shape[0], B = proj.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(4, proj, w_hh, c, tc)
    expect_shapes("lstm_backward", dh_out=(dh_out, (T, B, H)), dh_next=(dh_next, (B, H)),
                  dc_next=(dc_next, (B, H)))
    scatter = TableScatter("lstm_backward", T, B, 4 * H, ids, dtable)
    cdef const int32_t* pid = &ids[0] if scatter.on else NULL
    cdef WorkShare share
    cdef int n = team_share(&share, B, H, 4, threads, scatter.table_bytes), tid
    cdef floating[:, :, ::1] tables = scatter.tables(share_slots(&share), proj)
    cdef Py_ssize_t table_size = tables.shape[1] * tables.shape[2]
    if T == 0 or B == 0:
        return
    with nogil, parallel(num_threads=n):    # n = 1: the caller's thread alone
        tid = threadid()
        _backward_units(&proj[0, 0, 0], &w_hh[0, 0], &c[0, 0, 0], &tc[0, 0, 0],
                        &dh_out[0, 0, 0], &dh_next[0, 0], &dc_next[0, 0], pid,
                        &tables[0, 0, 0] if pid != NULL else NULL, table_size,
                        T, B, H, &share, tid, bf16)
    scatter.finish(tables)
