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
from libc.stdlib cimport free
from libc.stdint cimport int32_t
from ._cells cimport gru_row, gru_backward_row, scatter_units
from ._common cimport (cf_barrier, team_share, pack_gate_rows, pack_unit_columns,
                       prefetch_units, recurrent_nt, recurrent_nn, WorkShare,
                       share_slots, share_sync, share_units, share_rows)

from ._shapes import TableScatter, check_sequence_buffers, expect_shapes


cdef void _forward_units(floating* proj, const floating* w_hh, const floating* b_hh,
                         floating* h, floating* hn_save, floating* gh,
                         Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, WorkShare* share,
                         int tid) noexcept nogil:
    """Thread tid's share (share_units, share_rows) of the forward recurrence."""
    cdef Py_ssize_t t, b, j, q, G = 3 * H, b0, b1, u0, u1, nu, rows, slot
    cdef bint sync = share_sync(share)
    cdef int turn = 0
    cdef floating* g
    cdef floating* hp
    cdef floating* hnew
    cdef floating* hs
    cdef floating* ghb
    cdef float* packed = NULL
    share_units(share, tid, &u0, &u1)
    nu = u1 - u0
    if floating is float:
        packed = pack_gate_rows(w_hh, H, 3, u0, nu)
    while share_rows(share, tid, &turn, &b0, &b1, &slot):
        rows = b1 - b0
        ghb = gh + b0 * G
        for t in range(T):
            g = proj + (t * B + b0) * G
            hp = h + (t * B + b0) * H
            hnew = h + ((t + 1) * B + b0) * H
            hs = hn_save + (t * B + b0) * H
            if nu > 0 and rows > 0:
                for b in range(rows):
                    for q in range(3):
                        for j in range(u0, u1):
                            ghb[b * G + q * H + j] = b_hh[q * H + j]
                if t + 1 < T:
                    prefetch_units(g + B * G, rows, G, 3, H, u0, nu)
                recurrent_nt(packed, 3, rows, H, u0, nu, hp, w_hh, ghb, G)
                for b in range(rows):
                    gru_row(g + b * G, ghb + b * G, hp + b * H, hnew + b * H, hs + b * H, H,
                            u0, u1)
            if sync:
                cf_barrier()
    free(packed)


cdef void _backward_units(floating* proj, floating* dgh, const floating* w_hh,
                          const floating* h, const floating* hn_save, const floating* dh_out,
                          floating* dh_next, const int32_t* ids, floating* tables,
                          Py_ssize_t table_size, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H,
                          WorkShare* share, int tid) noexcept nogil:
    """Thread tid's share (share_units, share_rows) of the backward recurrence."""
    cdef Py_ssize_t t, b, G = 3 * H, b0, b1, u0, u1, nu, rows, slot
    cdef bint sync = share_sync(share)
    cdef int turn = 0
    cdef floating* g
    cdef floating* dg
    cdef floating* dtable = NULL
    cdef floating* dhn
    cdef const floating* hp
    cdef const floating* hs
    cdef const floating* dh_t
    cdef float* packed = NULL
    share_units(share, tid, &u0, &u1)
    nu = u1 - u0
    if floating is float:
        packed = pack_unit_columns(w_hh, H, 3, u0, nu)
    while share_rows(share, tid, &turn, &b0, &b1, &slot):
        rows = b1 - b0
        dhn = dh_next + b0 * H
        if tables != NULL:
            dtable = tables + slot * table_size
        for t in range(T - 1, -1, -1):
            g = proj + (t * B + b0) * G
            dg = dgh + (t * B + b0) * G
            hp = h + (t * B + b0) * H
            hs = hn_save + (t * B + b0) * H
            dh_t = dh_out + (t * B + b0) * H
            if t > 0 and nu > 0 and rows > 0:
                prefetch_units(g - B * G, rows, G, 3, H, u0, nu)
            for b in range(rows):
                gru_backward_row(g + b * G, dg + b * G, hs + b * H, hp + b * H, dh_t + b * H,
                                 dhn + b * H, H, u0, u1)
                if dtable != NULL:
                    scatter_units(g + b * G, dtable + ids[t * B + b0 + b] * G, H, 3, u0, u1)
            if sync:
                cf_barrier()
            if nu > 0 and rows > 0:
                recurrent_nn(packed, rows, G, H, u0, nu, dg, w_hh, dhn, True)
    free(packed)


def gru_forward(floating[:, :, ::1] proj, const floating[:, ::1] w_hh,
                const floating[::1] b_hh, floating[:, :, ::1] h, floating[:, :, ::1] hn,
                floating[:, ::1] gh, int threads=1):
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
                       &hn[0, 0, 0], &gh[0, 0], T, B, H, &share, tid)


def gru_backward(floating[:, :, ::1] proj, floating[:, :, ::1] dgh,
                 const floating[:, ::1] w_hh, const floating[:, :, ::1] h,
                 const floating[:, :, ::1] hn, const floating[:, :, ::1] dh_out,
                 floating[:, ::1] dh_next, int threads=1, const int32_t[::1] ids=None,
                 floating[:, ::1] dtable=None):
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
                        T, B, H, &share, tid)
    scatter.finish(tables)
