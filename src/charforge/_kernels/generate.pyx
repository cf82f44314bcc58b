# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The generation loop in one call: for a chunk of steps, every layer's single step, the dense
layer, the sampler (temperature / sharpen, floor, top-k, top-p, greedy) and the draw, with no
Python per character.

Per step t and row b: the input token cur[b] goes through the network; the next token is
forced[b, t] when that is >= 0 (the prime), otherwise drawn with the row's next uniform
(uniforms[b, used[b]]), so a row's draws depend only on its own seed: batched generation equals
one-by-one generation. A row is done after `remaining[b]` draws or when it draws `eos`.

Shapes: layer 0 reads a (V, gH) table = embedding @ W_ih^T + b_ih (one-hot: W_ih^T + b_ih);
layers above read x @ W_ih^T. h[l] and c[l] are (B, H) and are updated in place.
"""
from cython cimport floating
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t

from cython.parallel cimport parallel, threadid
from ._cells cimport lstm_row, gru_row
from ._draw cimport pick
from ._common cimport (gemm_rm, tanh_to, cf_barrier, unit_bound, cf_openmp_enabled,
                      cf_matvec_f32, cf_matvec_f64, cf_packed_size, cf_pack_nt,
                      cf_gemm_packed, cf_packed_gemm_available)

DEF MAX_LAYERS = 16
DEF MATVEC_CHUNK = 32       # rows per reversed block (128 KB at K = 1024)

cdef enum:
    CELL_RNN = 0
    CELL_GRU = 1
    CELL_LSTM = 2


cdef void units_step(int cell, int B, int H, Py_ssize_t u0, Py_ssize_t u1, floating* gx,
                     floating* gh, const floating* h_old, floating* h_new,
                     floating* c) noexcept nogil:
    """Pointwise update of units [u0, u1) of one layer from its pre-activations (gx: input
    part incl. bias; for GRU gh holds the recurrent part incl. its bias, otherwise gx holds
    everything). Reads h_old, writes h_new (other threads still read h_old)."""
    cdef Py_ssize_t b, j, G, nu = u1 - u0
    cdef floating* row
    if nu <= 0:
        return
    if cell == CELL_RNN:
        for b in range(B):
            tanh_to(gx + b * H + u0, h_new + b * H + u0, nu)
    elif cell == CELL_LSTM:
        G = 4 * H
        for b in range(B):       # c is updated in place; tanh(c) lands in the spent i slots
            row = gx + b * G
            lstm_row(row, c + b * H, c + b * H, row, h_new + b * H, H, u0, u1)
    else:
        G = 3 * H
        for b in range(B):
            gru_row(gx + b * G, gh + b * G, h_old + b * H, h_new + b * H, NULL, H, u0, u1)


cdef inline void fill_units(floating* dst, const floating* src, int H, int gates,
                            Py_ssize_t u0, Py_ssize_t nu) noexcept nogil:
    """dst[q H + u0 : q H + u0 + nu] = src[same] for every gate q: one copy when the share
    is every unit (one thread, or threads taking rows)."""
    cdef int q
    if nu == H:
        memcpy(dst, src, gates * H * sizeof(floating))
        return
    for q in range(gates):
        memcpy(dst + q * H + u0, src + q * H + u0, nu * sizeof(floating))


cdef inline void matvec(const floating* w, const floating* x, floating* out, int rows,
                        int K) noexcept nogil:
    if floating is float:
        cf_matvec_f32(<float*>w, K, <float*>x, <float*>out, rows, K)
    else:
        cf_matvec_f64(<double*>w, K, <double*>x, <double*>out, rows, K)


cdef inline void matvec_rows(const floating* w, const floating* x, floating* out, int rows,
                             int K, bint backwards) noexcept nogil:
    """out[:rows] += w[:rows] @ x. backwards: last rows first, in chunks of MATVEC_CHUNK rows
    (a multiple of the matvec's 4-row groups, starting where its forward groups start), so
    every row's sum is computed exactly as forwards and only the order of the rows differs."""
    cdef int start = ((rows - 1) // MATVEC_CHUNK) * MATVEC_CHUNK
    if not backwards:
        matvec(w, x, out, rows, K)
        return
    while start >= 0:
        matvec(w + start * K, x, out + start,
               rows - start if rows - start < MATVEC_CHUNK else MATVEC_CHUNK, K)
        start -= MATVEC_CHUNK


cdef inline void block_linear(int B, int G, int K, int gates, int H, Py_ssize_t u0,
                              Py_ssize_t u1, const floating* x, const floating* w,
                              floating* out, const float* packed,
                              bint backwards=False) noexcept nogil:
    """out[:, q*H+u0 : q*H+u1] += x (B, K) @ w[q*H+u0 : q*H+u1]^T for every gate q. For a
    batch, `packed` (this thread's share from pack_for_threads, or NULL) selects the packed
    kernel, which reuses the weights' packed form on every step instead of BLAS repacking.
    At batch 1 the weights stream from L3 once per character; `backwards` (every other step)
    reads the rows in reverse so the previous step's last rows come from L2 instead."""
    cdef int i, q, nu = <int>(u1 - u0)
    cdef floating alpha = 1.0, beta = 1.0
    cdef Py_ssize_t block
    if nu <= 0:
        return
    if floating is float:
        if B > 1 and packed != NULL:
            block = cf_packed_size(nu, K)
            for q in range(gates):
                cf_gemm_packed(B, nu, K, x, K, packed + q * block, out + q * H + u0, G, 1)
            return
    if nu == H:                      # one thread owns every unit: the gate blocks are one
        nu = G                       # contiguous run of rows, so one call does them all
        gates = 1
    for i in range(gates):
        q = gates - 1 - i if backwards else i
        if B == 1:
            matvec_rows(w + (q * H + u0) * K, x, out + q * H + u0, nu, K, backwards)
        else:
            gemm_rm(False, True, B, nu, K, alpha, x, K, w + (q * H + u0) * K, K, beta,
                    out + q * H + u0, G)


cdef inline void dense_rows(int n, int V, int H, const floating* x, const floating* w,
                            floating* out, const float* packed) noexcept nogil:
    """out (n, V) += x (n, H) @ w^T with the batch's kernel whatever n is (one row too): a
    row's logits must not depend on how the rows were shared out between the threads."""
    cdef floating one = 1.0
    if n <= 0:
        return
    if floating is float:
        if packed != NULL:
            cf_gemm_packed(n, V, H, x, H, packed, out, V, 1)
            return
    gemm_rm(False, True, n, V, H, one, x, H, w, H, one, out, V)


cdef struct Knobs:
    int cell, B, H, V, G, L, gates, steps, eos, top_k, ran
    double scale, floor_, top_p
    bint greedy, external, stop, want_probs, want_hidden


cdef Py_ssize_t _thread_offset(int H, int K, int gates, int tid, int nt) noexcept nogil:
    """Where thread tid's share starts in a pack_for_threads array (floats)."""
    cdef Py_ssize_t off = 0
    cdef int i
    for i in range(tid):
        off += gates * cf_packed_size(unit_bound(H, i + 1, nt) - unit_bound(H, i, nt), K)
    return off


def team_threads(int hidden, int threads):
    """The threads `run` really uses for a layer of this width (each needs 16 units)."""
    cdef int nt = threads if cf_openmp_enabled() else 1
    if nt < 1:
        nt = 1
    if nt > hidden // 16:
        nt = max(1, hidden // 16)
    return nt


def packed_available():
    """Whether batched float32 generation can use the packed kernel (see cf_gemm.h)."""
    return bool(cf_packed_gemm_available())


cdef float[::1] _checked_pack(object packed, int H, int gates, int nt):
    cdef float[::1] mp = packed
    if mp.shape[0] == 0 or mp.shape[0] != _thread_offset(H, H, gates, nt, nt):
        raise ValueError("generate.run: packed weights of another shape or thread count")
    return mp


def pack_for_threads(const float[:, ::1] w, int gates, int nt):
    """w (gates*H, K) packed for `nt` threads splitting the hidden units: thread i's share
    (units [u_i, u_i+1) of every gate block) in the packed kernel's panel layout, the shares
    one after the other. Done once per generate() call; every step then reuses it."""
    import numpy as np
    cdef int H = w.shape[0] // gates, K = w.shape[1], tid, q
    cdef Py_ssize_t u0, nu, off = 0, block
    packed = np.zeros(_thread_offset(H, K, gates, nt, nt), np.float32)
    cdef float[::1] dst = packed
    if dst.shape[0] == 0:
        return packed
    with nogil:
        for tid in range(nt):
            u0 = unit_bound(H, tid, nt)
            nu = unit_bound(H, tid + 1, nt) - u0
            block = cf_packed_size(nu, K)
            for q in range(gates):
                if nu > 0:
                    cf_pack_nt(&w[q * H + u0, 0], K, nu, K, &dst[off])
                off += block
    return packed


cdef void _loop(Knobs* k, floating** pw_ih, floating** pw_hh, floating** pb_in,
                floating** pb_rec, floating** ph, floating** ph2, floating** pc,
                float** pp_ih, float** pp_hh, const float* pp_out, const floating* table,
                const floating* w_out, const floating* b_out,
                int32_t* cur, const int32_t* forced, const double* uniforms,
                Py_ssize_t ustride, int64_t* used, int64_t* remaining, unsigned char* done,
                int32_t* out, const unsigned char* allowed, floating* gx, floating* gh,
                floating* logits, float* probs, float* hidden, double* p, double* tmp,
                int tid, int nt) noexcept nogil:
    """One thread's share of the generation loop: it owns hidden units [u0, u1) of every
    layer (their rows of each gate block), so a layer needs one barrier; thread 0 then runs
    the dense layer and the sampler."""
    cdef int B = k.B, H = k.H, G = k.G, L = k.L, V = k.V, steps = k.steps, gates = k.gates
    cdef Py_ssize_t u0 = unit_bound(H, tid, nt), u1 = unit_bound(H, tid + 1, nt)
    cdef Py_ssize_t nu = u1 - u0, tok
    cdef Py_ssize_t v0 = unit_bound(k.V, tid, nt), v1 = unit_bound(k.V, tid + 1, nt)
    cdef Py_ssize_t r0 = (B * tid) // nt, r1 = (B * (tid + 1)) // nt   # rows this thread draws
    cdef Py_ssize_t poff = _thread_offset(H, H, gates, tid, nt)
    cdef const float* mine_ih[MAX_LAYERS]
    cdef const float* mine_hh[MAX_LAYERS]
    cdef int t, l, b, q, j
    cdef bint all_done
    cdef floating* hcur[MAX_LAYERS]
    cdef floating* hnext[MAX_LAYERS]
    cdef floating* swap
    cdef float* prow
    for l in range(L):
        hcur[l] = ph[l]
        hnext[l] = ph2[l]
        mine_ih[l] = pp_ih[l] + poff if pp_ih[l] != NULL else NULL
        mine_hh[l] = pp_hh[l] + poff if pp_hh[l] != NULL else NULL
    for t in range(steps):
        all_done = True
        for b in range(B):
            if not done[b]:
                all_done = False
        if all_done or k.stop:
            break
        for l in range(L):
            if nu > 0:
                for b in range(B):
                    fill_units(gx + b * G, table + cur[b] * G if l == 0 else pb_in[l], H,
                               gates, u0, nu)
                if l > 0:
                    block_linear(B, G, H, gates, H, u0, u1, hcur[l - 1], pw_ih[l], gx,
                                 mine_ih[l], t & 1)
                if k.cell == CELL_GRU:
                    for b in range(B):
                        fill_units(gh + b * G, pb_rec[l], H, gates, u0, nu)
                    block_linear(B, G, H, gates, H, u0, u1, hcur[l], pw_hh[l], gh, mine_hh[l],
                                 t & 1)
                else:
                    block_linear(B, G, H, gates, H, u0, u1, hcur[l], pw_hh[l], gx, mine_hh[l],
                                 t & 1)
                units_step(k.cell, B, H, u0, u1, gx, gh, hcur[l], hnext[l], pc[l])
            if nt > 1:
                cf_barrier()
            swap = hcur[l]
            hcur[l] = hnext[l]
            hnext[l] = swap
        if B == 1:                      # each thread its share of the logits (all alone)
            memcpy(logits + v0, b_out + v0, (v1 - v0) * sizeof(floating))
            block_linear(1, V, H, 1, V, v0, v1, hcur[L - 1], w_out, logits, NULL)
            if nt > 1:
                cf_barrier()
        else:                     # each thread the logits of the rows it draws below:
            for b in range(r0, r1):     # no barrier between the dense layer and the draws
                memcpy(logits + b * V, b_out, V * sizeof(floating))
            dense_rows(<int>(r1 - r0), V, H, hcur[L - 1] + r0 * H, w_out, logits + r0 * V,
                       pp_out)
        if tid == 0:
            k.ran += 1
            if k.want_hidden:
                for b in range(B):
                    for l in range(L):
                        for j in range(H):
                            hidden[((b * steps + t) * L + l) * H + j] = <float>hcur[l][b * H + j]
            if k.external:
                for b in range(B):
                    out[b * steps + t] = -1
                k.stop = True
        if k.external:
            if nt > 1:
                cf_barrier()
            continue
        if tid == 0 or B > 1:
            for b in range(r0 if B > 1 else 0, r1 if B > 1 else B):
                if done[b]:
                    out[b * steps + t] = -1
                    continue
                prow = probs + (b * steps + t) * V if k.want_probs else NULL
                if forced[b * steps + t] >= 0:
                    tok = forced[b * steps + t]
                    if prow != NULL:
                        pick(logits + b * V, V, allowed, 1.0, 0.0, 0, 1.0, True, 0.0, p, tmp,
                             prow)
                else:
                    tok = pick(logits + b * V, V, allowed, k.scale, k.floor_, k.top_k,
                               k.top_p, k.greedy, uniforms[b * ustride + used[b]], p, tmp,
                               prow)
                    used[b] += 1
                    remaining[b] -= 1
                    if remaining[b] <= 0 or tok == k.eos or tok < 0:
                        done[b] = 1
                out[b * steps + t] = <int32_t>tok
                if tok >= 0:
                    cur[b] = <int32_t>tok
        if nt > 1:
            cf_barrier()
    for l in range(L):                  # leave the final state in the caller's arrays
        if hcur[l] != ph[l] and nu > 0:
            for b in range(B):
                memcpy(ph[l] + b * H + u0, hcur[l] + b * H + u0, nu * sizeof(floating))


cdef void _loop_rows(Knobs* k, Py_ssize_t b0, floating** pw_ih, floating** pw_hh,
                     floating** pb_in, floating** pb_rec, floating** ph, floating** ph2,
                     floating** pc, float** pp_ih, float** pp_hh, const float* pp_out,
                     const floating* table, const floating* w_out, const floating* b_out,
                     int32_t* cur, const int32_t* forced, const double* uniforms,
                     Py_ssize_t ustride, int64_t* used, int64_t* remaining,
                     unsigned char* done, int32_t* out, const unsigned char* allowed,
                     floating* gx, floating* gh, floating* logits, float* probs, float* hidden,
                     double* p, double* tmp) noexcept nogil:
    """Rows [b0, b0 + k.B) of the batch as an independent single-threaded loop: rows never
    interact, so for a batch each thread takes its own rows (no barriers at all) and the
    threads only share the read-only weights."""
    cdef floating* gph[MAX_LAYERS]
    cdef floating* gph2[MAX_LAYERS]
    cdef floating* gpc[MAX_LAYERS]
    cdef int l, H = k.H, G = k.G, V = k.V, steps = k.steps
    for l in range(k.L):
        gph[l] = ph[l] + b0 * H
        gph2[l] = ph2[l] + b0 * H
        gpc[l] = pc[l] + b0 * H if pc[l] != NULL else NULL
    _loop(k, pw_ih, pw_hh, pb_in, pb_rec, gph, gph2, gpc, pp_ih, pp_hh, pp_out, table, w_out,
          b_out, cur + b0, forced + b0 * steps, uniforms + b0 * ustride, ustride, used + b0,
          remaining + b0, done + b0, out + b0 * steps, allowed, gx + b0 * G, gh + b0 * G,
          logits + b0 * V, probs + b0 * steps * V if probs != NULL else NULL,
          hidden + b0 * steps * k.L * H if hidden != NULL else NULL, p, tmp, 0, 1)


def run(int cell, list w_ih, list w_hh, list b_in, list b_rec, floating[:, ::1] table,
        floating[:, ::1] w_out, floating[::1] b_out, list h, list c,
        int32_t[::1] cur, const int32_t[:, ::1] forced, const double[:, ::1] uniforms,
        int64_t[::1] used, int64_t[::1] remaining, unsigned char[::1] done,
        int32_t[:, ::1] out, const unsigned char[::1] allowed, int eos,
        double scale, double floor_, int top_k, double top_p, bint greedy, bint external,
        floating[:, ::1] gx, floating[:, ::1] gh, floating[:, ::1] logits,
        probs_out=None, hidden_out=None, int threads=1, list packed_ih=None,
        list packed_hh=None, packed_out=None, bint split_rows=False):
    """Run up to forced.shape[1] steps. Returns the number of steps run (fewer when every row
    is done). With external=True one step runs and no token is drawn: the caller picks from
    `logits` (a plugin sampler) and writes the pick into cur.

    w_ih[l], b_in[l]: input weights (gH, H) and input bias (gH,) of layers 1..L-1 (index 0
    unused); w_hh[l], b_rec[l]: recurrent weights and (GRU only) recurrent bias. For rnn/lstm
    b_in holds the one bias. out (B, steps): the token after each step (-1 once done).
    probs_out (B, steps, V) float32 and hidden_out (B, steps, L, H) float32 are optional.
    threads: OpenMP threads splitting the hidden units (BLAS must be single-threaded).
    packed_ih / packed_hh: optional per-layer pack_for_threads(w, gates, team_threads(H,
    threads)) arrays of w_ih / w_hh (float32 batches; entries may be None); packed_out:
    pack_for_threads(w_out, 1, 1). split_rows: the threads take rows of the batch instead of
    hidden units (then the packs are for one thread: pack_for_threads(w, gates, 1)).
    """
    cdef Knobs k
    cdef int L = len(w_hh), l, nt = threads if cf_openmp_enabled() else 1, tid
    k.B = cur.shape[0]
    k.V = w_out.shape[0]
    k.H = w_out.shape[1]
    k.G = table.shape[1]
    k.L = L
    k.gates = k.G // k.H
    k.steps = forced.shape[1]
    k.cell, k.eos, k.top_k, k.ran = cell, eos, top_k, 0
    k.scale, k.floor_, k.top_p = scale, floor_, top_p
    k.greedy, k.external, k.stop = greedy, external, False
    k.want_probs, k.want_hidden = probs_out is not None, hidden_out is not None
    cdef floating* pw_ih[MAX_LAYERS]
    cdef floating* pw_hh[MAX_LAYERS]
    cdef floating* pb_in[MAX_LAYERS]
    cdef floating* pb_rec[MAX_LAYERS]
    cdef floating* ph[MAX_LAYERS]
    cdef floating* ph2[MAX_LAYERS]
    cdef floating* pc[MAX_LAYERS]
    cdef float* pp_ih[MAX_LAYERS]
    cdef float* pp_hh[MAX_LAYERS]
    cdef float[::1] mp
    cdef float* pp_out = NULL
    cdef floating[:, ::1] m2
    cdef floating[::1] m1
    cdef float[:, :, ::1] pr
    cdef float[:, :, :, ::1] hid
    cdef float* prp = NULL
    cdef float* hidp = NULL
    if L > MAX_LAYERS:
        raise ValueError(f"generation supports at most {MAX_LAYERS} layers")
    if allowed.shape[0] != k.V or logits.shape[0] != k.B or out.shape[0] != k.B or \
            out.shape[1] != k.steps or uniforms.shape[0] != k.B:
        raise ValueError("generate.run: inconsistent shapes")
    import numpy as np
    scratch = [np.empty((k.B, k.H), dtype=np.asarray(table).dtype) for _ in range(L)]
    for l in range(L):
        m2 = w_hh[l]; pw_hh[l] = &m2[0, 0]
        m2 = h[l]; ph[l] = &m2[0, 0]
        m2 = scratch[l]; ph2[l] = &m2[0, 0]
        pc[l] = NULL
        if cell == CELL_LSTM:
            m2 = c[l]; pc[l] = &m2[0, 0]
        if l > 0:
            m2 = w_ih[l]; pw_ih[l] = &m2[0, 0]
            m1 = b_in[l]; pb_in[l] = &m1[0]
        if cell == CELL_GRU:
            m1 = b_rec[l]; pb_rec[l] = &m1[0]
    if k.want_probs:
        pr = probs_out
        prp = &pr[0, 0, 0]
    if k.want_hidden:
        hid = hidden_out
        hidp = &hid[0, 0, 0, 0]
    cdef int groups = 1, g
    cdef Knobs* ks = NULL
    if split_rows:
        groups = min(max(threads, 1), k.B) if cf_openmp_enabled() else 1
        nt = 1
    else:
        nt = team_threads(k.H, threads)
    for l in range(L):
        pp_ih[l] = NULL
        pp_hh[l] = NULL
        if floating is float:
            if packed_ih is not None and packed_ih[l] is not None:
                mp = _checked_pack(packed_ih[l], k.H, k.gates, nt)
                pp_ih[l] = &mp[0]
            if packed_hh is not None and packed_hh[l] is not None:
                mp = _checked_pack(packed_hh[l], k.H, k.gates, nt)
                pp_hh[l] = &mp[0]
    if floating is float:
        if packed_out is not None:
            mp = packed_out
            if mp.shape[0] != cf_packed_size(k.V, k.H):
                raise ValueError("generate.run: packed output weights of another shape")
            pp_out = &mp[0]
    cdef double* p = <double*>malloc(2 * k.V * max(nt, groups) * sizeof(double))  # per thread
    if p == NULL:
        raise MemoryError()
    cdef double* tmp = p + k.V
    if groups > 1:
        ks = <Knobs*>malloc(groups * sizeof(Knobs))
        if ks == NULL:
            free(p)
            raise MemoryError()
        for g in range(groups):
            ks[g] = k
            ks[g].B = (k.B * (g + 1)) // groups - (k.B * g) // groups
        with nogil, parallel(num_threads=groups):
            tid = threadid()
            _loop_rows(&ks[tid], (k.B * tid) // groups, pw_ih, pw_hh, pb_in, pb_rec, ph, ph2,
                       pc, pp_ih, pp_hh, pp_out, &table[0, 0], &w_out[0, 0], &b_out[0],
                       &cur[0], &forced[0, 0], &uniforms[0, 0], uniforms.shape[1], &used[0],
                       &remaining[0], &done[0], &out[0, 0], &allowed[0], &gx[0, 0], &gh[0, 0],
                       &logits[0, 0], prp, hidp, p + 2 * k.V * tid, p + 2 * k.V * tid + k.V)
        for g in range(groups):
            k.ran = max(k.ran, ks[g].ran)
        free(ks)
    elif nt == 1:
        with nogil:
            _loop(&k, pw_ih, pw_hh, pb_in, pb_rec, ph, ph2, pc, pp_ih, pp_hh, pp_out,
                  &table[0, 0],
                  &w_out[0, 0],
                  &b_out[0], &cur[0], &forced[0, 0], &uniforms[0, 0], uniforms.shape[1],
                  &used[0], &remaining[0], &done[0], &out[0, 0], &allowed[0], &gx[0, 0],
                  &gh[0, 0], &logits[0, 0], prp, hidp, p, tmp, 0, 1)
    else:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            _loop(&k, pw_ih, pw_hh, pb_in, pb_rec, ph, ph2, pc, pp_ih, pp_hh, pp_out,
                  &table[0, 0],
                  &w_out[0, 0],
                  &b_out[0], &cur[0], &forced[0, 0], &uniforms[0, 0], uniforms.shape[1],
                  &used[0], &remaining[0], &done[0], &out[0, 0], &allowed[0], &gx[0, 0],
                  &gh[0, 0], &logits[0, 0], prp, hidp, p + 2 * k.V * tid,
                  p + 2 * k.V * tid + k.V, tid, nt)
    free(p)
    return k.ran
