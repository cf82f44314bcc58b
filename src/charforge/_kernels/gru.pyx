# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused GRU recurrence over a whole sequence (PyTorch's formulation, gate order r, z, n).

    r = s(Wir x + bir + Whr h + bhr),  z = s(Wiz x + biz + Whz h + bhz)
    n = tanh(Win x + bin + r * (Whn h + bhn)),  h' = (1 - z) * n + z * h

Shapes (time-major, C-contiguous): proj (T, B, 3H) holds the input projection with b_ih on
entry and the activated r, z, n on exit; hn (T, B, H) keeps Whn h + bhn for backward;
h (T+1, B, H) with h[0] the initial state; gh (B, 3H) is per-step scratch; w_hh (3H, H).
Threads split the batch rows or the hidden units, as in lstm.pyx.
"""
from cython.parallel cimport parallel, threadid
from cython cimport floating
from libc.stdint cimport int32_t
from ._cells cimport gru_row, gru_backward_row, scatter_units
from ._common cimport (team_share, prefetch_units, recurrent_nt, recurrent_nn, WorkShare,
                       share_slots, ThreadWork, work_begin, work_next_rows, work_step_done,
                       work_end)

from ._shapes import TableScatter, check_sequence_buffers, expect_shapes


cdef void _forward_units(floating* proj, const floating* w_hh, const floating* b_hh,
                         floating* h, floating* hn_save, floating* gh,
                         Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, WorkShare* share,
                         int tid, bint bf16) noexcept nogil:
    """Thread tid's share of the forward recurrence (see ThreadWork in _common.pxd)."""
    cdef Py_ssize_t t, b, j, q, G = 3 * H
    cdef floating* g
    cdef floating* hp
    cdef floating* hnew
    cdef floating* hs
    cdef floating* ghb
    cdef ThreadWork w
    work_begin(share, tid, &w, w_hh, 3, False, bf16)
    while work_next_rows(share, tid, &w):
        ghb = gh + w.b0 * G
        for t in range(T):
            g = proj + (t * B + w.b0) * G
            hp = h + (t * B + w.b0) * H
            hnew = h + ((t + 1) * B + w.b0) * H
            hs = hn_save + (t * B + w.b0) * H
            if w.busy:
                for b in range(w.rows):
                    for q in range(3):
                        for j in range(w.u0, w.u1):
                            ghb[b * G + q * H + j] = b_hh[q * H + j]
                if t + 1 < T:
                    prefetch_units(g + B * G, w.rows, G, 3, H, w.u0, w.nu)
                recurrent_nt(&w, 3, H, hp, w_hh, ghb, G)
                for b in range(w.rows):
                    gru_row(g + b * G, ghb + b * G, hp + b * H, hnew + b * H, hs + b * H, H,
                            w.u0, w.u1)
            work_step_done(&w)
    work_end(&w)


cdef void _backward_units(floating* proj, floating* dgh, const floating* w_hh,
                          const floating* h, const floating* hn_save, const floating* dh_out,
                          floating* dh_next, const int32_t* ids, floating* tables,
                          Py_ssize_t table_size, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H,
                          WorkShare* share, int tid, bint bf16) noexcept nogil:
    """Thread tid's share of the backward recurrence (see ThreadWork in _common.pxd)."""
    cdef Py_ssize_t t, b, G = 3 * H
    cdef floating* g
    cdef floating* dg
    cdef floating* dtable = NULL
    cdef floating* dhn
    cdef const floating* hp
    cdef const floating* hs
    cdef const floating* dh_t
    cdef ThreadWork w
    work_begin(share, tid, &w, w_hh, 3, True, bf16)
    while work_next_rows(share, tid, &w):
        dhn = dh_next + w.b0 * H
        if tables != NULL:
            dtable = tables + w.slot * table_size
        for t in range(T - 1, -1, -1):
            g = proj + (t * B + w.b0) * G
            dg = dgh + (t * B + w.b0) * G
            hp = h + (t * B + w.b0) * H
            hs = hn_save + (t * B + w.b0) * H
            dh_t = dh_out + (t * B + w.b0) * H
            if t > 0 and w.busy:
                prefetch_units(g - B * G, w.rows, G, 3, H, w.u0, w.nu)
            for b in range(w.rows):
                gru_backward_row(g + b * G, dg + b * G, hs + b * H, hp + b * H, dh_t + b * H,
                                 dhn + b * H, H, w.u0, w.u1)
                if dtable != NULL:
                    scatter_units(g + b * G, dtable + ids[t * B + w.b0 + b] * G, H, 3, w.u0, w.u1)
            work_step_done(&w)
            if w.busy:
                recurrent_nn(&w, G, H, dg, w_hh, dhn, True)
    work_end(&w)


def gru_forward(floating[:, :, ::1] proj, const floating[:, ::1] w_hh,
                const floating[::1] b_hh, floating[:, :, ::1] h, floating[:, :, ::1] hn,
                floating[:, ::1] gh, int threads=1, bint bf16=False):
    """Run the layer over T steps. In: proj = W_ih x + b_ih, h[0]. Out: proj = r, z, n
    (activated), h[1:], hn = W_hn h + b_hn per step.
    Reference: charforge.reference.gru_forward (one step).
    """
    cdef Py_ssize_t T = proj.shape[0], B = proj.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(3, proj, w_hh, h, hn)
    expect_shapes("gru_forward", b_hh=(b_hh, (3 * H,)), gh=(gh, (B, 3 * H)))
    cdef WorkShare share
    cdef int n = team_share(&share, B, H, 3, threads, 0), tid
    if T == 0 or B == 0:
        return
    with nogil, parallel(num_threads=n):    # n = 1: the caller's thread alone
        tid = threadid()
        _forward_units(&proj[0, 0, 0], &w_hh[0, 0], &b_hh[0], &h[0, 0, 0],
                       &hn[0, 0, 0], &gh[0, 0], T, B, H, &share, tid, bf16)


def gru_backward(floating[:, :, ::1] proj, floating[:, :, ::1] dgh,
                 const floating[:, ::1] w_hh, const floating[:, :, ::1] h,
                 const floating[:, :, ::1] hn, const floating[:, :, ::1] dh_out,
                 floating[:, ::1] dh_next, int threads=1, const int32_t[::1] ids=None,
                 floating[:, ::1] dtable=None, bint bf16=False):
    """Backpropagate through T steps.

    Out: proj = dLoss/d(input projection) (T, B, 3H), dgh = dLoss/d(W_hh h + b_hh),
    dh_next = gradient at the initial state. With ids and dtable: dtable[ids[t*B+b]] +=
    proj[t, b] in the same pass (see lstm_backward).
    Reference: charforge.reference.gru_backward (one step).
    """
    cdef Py_ssize_t T = proj.shape[0], B = proj.shape[1], H = w_hh.shape[1]
    check_sequence_buffers(3, proj, w_hh, h, hn)
    expect_shapes("gru_backward", dgh=(dgh, (T, B, 3 * H)), dh_out=(dh_out, (T, B, H)),
                  dh_next=(dh_next, (B, H)))
    scatter = TableScatter("gru_backward", T, B, 3 * H, ids, dtable)
    cdef const int32_t* pid = &ids[0] if scatter.on else NULL
    cdef WorkShare share
    cdef int n = team_share(&share, B, H, 3, threads, scatter.table_bytes), tid
    cdef floating[:, :, ::1] tables = scatter.tables(share_slots(&share), proj)
    cdef Py_ssize_t table_size = tables.shape[1] * tables.shape[2]
    if T == 0 or B == 0:
        return
    with nogil, parallel(num_threads=n):    # n = 1: the caller's thread alone
        tid = threadid()
        _backward_units(&proj[0, 0, 0], &dgh[0, 0, 0], &w_hh[0, 0], &h[0, 0, 0],
                        &hn[0, 0, 0], &dh_out[0, 0, 0], &dh_next[0, 0], pid,
                        &tables[0, 0, 0] if pid != NULL else NULL, table_size,
                        T, B, H, &share, tid, bf16)
    scatter.finish(tables)
