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

bf16 plans multiply bf16 weights (packed once per thread share by pack16_for_threads) by the
step's state rounded to bf16, with float32 sums (cf_bf16.h): half the bytes per character at
batch 1, where the loop is bound by reading the weights. State, cell math and sampling stay
float32.
"""
from cython cimport floating
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t, uint16_t

from cython.parallel cimport parallel, threadid
from ._cells cimport lstm_row, gru_row
from ._draw cimport pick
from ._common cimport (gemm_rm, tanh_to, cf_barrier, unit_bound, cf_openmp_enabled,
                      cf_matvec_f32, cf_matvec_f64, cf_packed_size, cf_pack_nt,
                      cf_gemm_packed, cf_packed_gemm_available, team_size, cf_bf16_kpad,
                      cf_bf16_lda, cf_bf16_rows, cf_bf16_rows_room, cf_bpack_nt,
                      cf_bpack_size, cf_bgemm_packed)

DEF MAX_LAYERS = 16
DEF MATVEC_CHUNK = 32       # rows per reversed block (128 KB at K = 1024)

cdef enum:
    CELL_RNN = 0
    CELL_GRU = 1
    CELL_LSTM = 2


cdef void units_step(int cell, int B, int H, Py_ssize_t u0, Py_ssize_t u1, floating* proj,
                     floating* gh, const floating* h_old, floating* h_new,
                     floating* c) noexcept nogil:
    """Pointwise update of units [u0, u1) of one layer from its pre-activations (proj: input
    part incl. bias; for GRU gh holds the recurrent part incl. its bias, otherwise proj holds
    everything). Reads h_old, writes h_new (other threads still read h_old)."""
    cdef Py_ssize_t b, j, G, nu = u1 - u0
    cdef floating* row
    if nu <= 0:
        return
    if cell == CELL_RNN:
        for b in range(B):
            tanh_to(proj + b * H + u0, h_new + b * H + u0, nu)
    elif cell == CELL_LSTM:
        G = 4 * H
        for b in range(B):       # c is updated in place; tanh(c) lands in the spent i slots
            row = proj + b * G
            lstm_row(row, c + b * H, c + b * H, row, h_new + b * H, H, u0, u1)
    else:
        G = 3 * H
        for b in range(B):
            gru_row(proj + b * G, gh + b * G, h_old + b * H, h_new + b * H, NULL, H, u0, u1)


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


# Without the packed kernel (below the AVX-512 level, or float64), batches up to this many
# rows multiply row by row: BLAS would repack the weights on every call, costing ~2 ms a step
# for the shipped model whatever the batch, against ~0.25 ms a row this way.
DEF ROWS_BY_MATVEC = 16


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
    cdef int i, q, b, nu = <int>(u1 - u0)
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
        if B <= ROWS_BY_MATVEC:          # BLAS repacks the weights every call: at a few
            for b in range(B):           # rows, reading them once per row costs less
                matvec_rows(w + (q * H + u0) * K, x + b * K, out + b * G + q * H + u0, nu, K,
                            backwards)
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
    cdef int b
    if floating is float:
        if packed != NULL:
            cf_gemm_packed(n, V, H, x, H, packed, out, V, 1)
            return
    if n <= ROWS_BY_MATVEC:             # as block_linear; one row's sum is the same alone
        for b in range(n):
            matvec(w, x + b * H, out + b * V, V, H)
        return
    gemm_rm(False, True, n, V, H, one, x, H, w, H, one, out, V)


cdef inline void block_linear16(int B, int G, int K, int gates, int H, Py_ssize_t u0,
                                Py_ssize_t u1, const float* x, float* out,
                                const uint16_t* packed, uint16_t* a16) noexcept nogil:
    """out[:, q*H+u0 : q*H+u1] += bf16(x) (B, K) @ bf16(w[q*H+u0 : q*H+u1])^T for every gate
    q, `packed` being this thread's share from pack16_for_threads (gates blocks, one after the
    other); a16 is the thread's operand buffer (cf_bf16_rows_room(B) rows)."""
    cdef Py_ssize_t nu = u1 - u0, kp = cf_bf16_kpad(K), lda = cf_bf16_lda(kp), block
    cdef int q
    if nu <= 0 or B <= 0:
        return
    cf_bf16_rows(x, K, B, K, a16, lda)
    block = cf_bpack_size(nu, K)
    for q in range(gates):
        cf_bgemm_packed(B, nu, kp, a16, lda, packed + q * block, out + q * H + u0, G, 1)


# One generate() call's network and sampler, laid out once by Plan: sizes, the knobs, and
# pointers (to float or double, as the plan's dtype) into the arrays the Plan keeps.
cdef struct Net:
    int cell, B, H, V, G, L, gates, eos, top_k, nt, groups
    double scale, floor_, top_p
    bint greedy, bf16
    void* w_ih[MAX_LAYERS]          # (gH, H) input weights of layers 1.. (0 reads the table)
    void* w_hh[MAX_LAYERS]          # (gH, H) recurrent weights
    void* b_in[MAX_LAYERS]          # (gH,) input bias of layers 1.. (rnn/lstm: the one bias)
    void* b_rec[MAX_LAYERS]         # (gH,) GRU's recurrent bias
    void* h[MAX_LAYERS]             # (B, H) state, updated in place
    void* h2[MAX_LAYERS]            # (B, H) the next state while a step is computed
    void* c[MAX_LAYERS]             # (B, H) LSTM cell state, updated in place
    float* pp_ih[MAX_LAYERS]        # packed float32 weights for batches, or NULL
    float* pp_hh[MAX_LAYERS]
    float* pp_out
    const uint16_t* bp_ih[MAX_LAYERS]   # bf16 plans: the weights packed per thread share
    const uint16_t* bp_hh[MAX_LAYERS]
    const uint16_t* bp_out          # batch 1: per thread share of V; batches: whole
    uint16_t* a16                   # (max(nt, groups), a16_stride) bf16 operand buffers
    Py_ssize_t a16_stride
    void* table                     # (V, gH) layer 0's input projection per token
    void* w_out                     # (V, H)
    void* b_out                     # (V,)
    void* proj                      # (B, gH) pre-activations: input part (all but GRU's)
    void* gh                        # (B, gH) GRU's recurrent part
    void* logits                    # (B, V)
    const unsigned char* allowed    # (V,) tokens the sampler may draw
    double* p                       # (max(nt, groups), 2V) the sampler's weights per thread
    const double* row_scale         # (B,) each row's own sampler knobs (set_row_knobs), or
    const double* row_floor         # NULL: every row the plan's
    const double* row_top_p
    const int32_t* row_top_k
    const unsigned char* row_greedy


# One run(): the steps' inputs and outputs (row b's at offset b of each).
cdef struct Chunk:
    int steps, ran
    bint external, stop
    int32_t* cur                    # (B,) the token each row reads next
    const int32_t* forced           # (B, steps) the prime's next token, or -1: draw
    const double* uniforms          # (B, ustride) the draws' uniforms
    Py_ssize_t ustride
    int64_t* used                   # (B,) uniforms taken
    int64_t* remaining              # (B,) draws left
    unsigned char* done             # (B,)
    int32_t* out                    # (B, steps) the token after each step, -1 once done
    float* probs                    # (B, steps, V) or NULL
    float* hidden                   # (B, steps, L, H) or NULL


ctypedef fused packed_t:          # a packed weight: float32 (cf_gemm.h) or bf16 (cf_bf16.h)
    float
    uint16_t


cdef inline Py_ssize_t _packed_size(packed_t* kind, Py_ssize_t n, Py_ssize_t K) noexcept nogil:
    """Values of the packed form of an n x K operand (`kind` only selects the type)."""
    if packed_t is float:
        return cf_packed_size(n, K)
    return cf_bpack_size(n, K)


cdef Py_ssize_t _share_offset(packed_t* kind, Py_ssize_t rows, Py_ssize_t K, int gates, int tid,
                              int nt) noexcept nogil:
    """Where thread tid's share starts in a packed-for-threads array of `kind` (values)."""
    cdef Py_ssize_t off = 0
    cdef int i
    for i in range(tid):
        off += gates * _packed_size(kind, unit_bound(rows, i + 1, nt) - unit_bound(rows, i, nt),
                                    K)
    return off


cdef inline Py_ssize_t _thread_offset(Py_ssize_t H, Py_ssize_t K, int gates, int tid,
                                      int nt) noexcept nogil:
    return _share_offset(<float*>NULL, H, K, gates, tid, nt)


cdef inline Py_ssize_t _thread_offset16(Py_ssize_t H, Py_ssize_t K, int gates, int tid,
                                        int nt) noexcept nogil:
    return _share_offset(<uint16_t*>NULL, H, K, gates, tid, nt)


cdef void _pack_shares(const float[:, ::1] w, int gates, int nt, packed_t* dst) noexcept nogil:
    """w (gates*R, K) packed for `nt` threads splitting the R rows of each gate block
    (unit_bound's shares): thread i's share, gate by gate, the shares one after the other."""
    cdef Py_ssize_t R = w.shape[0] // gates, K = w.shape[1], u0, nu, off = 0, block
    cdef int tid, q
    for tid in range(nt):
        u0 = unit_bound(R, tid, nt)
        nu = unit_bound(R, tid + 1, nt) - u0
        block = _packed_size(dst, nu, K)
        for q in range(gates):
            if nu > 0:
                if packed_t is float:
                    cf_pack_nt(&w[q * R + u0, 0], K, nu, K, dst + off)
                else:
                    cf_bpack_nt(&w[q * R + u0, 0], K, nu, K, dst + off)
            off += block


def aligned_bf16(Py_ssize_t count):
    """count zeroed bf16 values (uint16) starting on a 64-byte boundary, as the packed
    kernels load them."""
    import numpy as np
    room = np.zeros(count + 32, np.uint16)
    skip = (-(room.ctypes.data // 2)) % 32
    return room[skip:skip + count]


def pack16_for_threads(const float[:, ::1] w, int gates, int nt):
    """w (gates*R, K) rounded to bf16 and packed for `nt` threads splitting the R rows of
    each gate block (cf_bf16.h's layout, 64-byte aligned). Done once per plan of a bf16
    model."""
    packed = aligned_bf16(_thread_offset16(w.shape[0] // gates, w.shape[1], gates, nt, nt))
    cdef uint16_t[::1] dst = packed
    if dst.shape[0] > 0:
        with nogil:
            _pack_shares(w, gates, nt, &dst[0])
    return packed


def packed_available():
    """Whether batched float32 generation can use the packed kernel (see cf_gemm.h)."""
    return bool(cf_packed_gemm_available())


def pack_for_threads(const float[:, ::1] w, int gates, int nt):
    """w (gates*H, K) packed for `nt` threads splitting the hidden units: thread i's share
    (units [u_i, u_i+1) of every gate block) in the packed kernel's panel layout, the shares
    one after the other. Done once per generate() call; every step then reuses it."""
    import numpy as np
    packed = np.zeros(_thread_offset(w.shape[0] // gates, w.shape[1], gates, nt, nt),
                      np.float32)
    cdef float[::1] dst = packed
    if dst.shape[0] > 0:
        with nogil:
            _pack_shares(w, gates, nt, &dst[0])
    return packed


cdef void _loop(floating* typed, Net* n, Chunk* s, Py_ssize_t b0, int B, double* p,
                uint16_t* a16, int tid, int nt) noexcept nogil:
    """Rows [b0, b0 + B) for s.steps steps. With nt threads (tid this one) each owns hidden
    units [u0, u1) of every layer (their rows of each gate block), so a layer needs one
    barrier; with nt = 1 the rows are a loop of their own (the threads taking rows). `typed`
    only selects float or double; a16 is this thread's bf16 operand buffer (bf16 plans)."""
    cdef int H = n.H, G = n.G, L = n.L, V = n.V, steps = s.steps, gates = n.gates
    cdef Py_ssize_t u0 = unit_bound(H, tid, nt), u1 = unit_bound(H, tid + 1, nt)
    cdef Py_ssize_t nu = u1 - u0, tok
    cdef Py_ssize_t v0 = unit_bound(V, tid, nt), v1 = unit_bound(V, tid + 1, nt)
    cdef Py_ssize_t r0 = (B * tid) // nt, r1 = (B * (tid + 1)) // nt   # rows this thread draws
    cdef Py_ssize_t poff = _thread_offset(H, H, gates, tid, nt)
    cdef const float* mine_ih[MAX_LAYERS]
    cdef const float* mine_hh[MAX_LAYERS]
    cdef const uint16_t* mine16_ih[MAX_LAYERS]
    cdef const uint16_t* mine16_hh[MAX_LAYERS]
    cdef Py_ssize_t off16 = _thread_offset16(H, H, gates, tid, nt)
    cdef const uint16_t* mine16_out = NULL
    cdef bint bf16 = n.bf16 and floating is float
    cdef int t, l, b, j
    cdef bint all_done
    cdef floating* hcur[MAX_LAYERS]
    cdef floating* hnext[MAX_LAYERS]
    cdef floating* hfinal[MAX_LAYERS]
    cdef floating* cl[MAX_LAYERS]
    cdef floating* swap
    cdef float* prow
    cdef const floating* table = <const floating*>n.table
    cdef const floating* w_out = <const floating*>n.w_out
    cdef const floating* b_out = <const floating*>n.b_out
    cdef floating* proj = <floating*>n.proj + b0 * G
    cdef floating* gh = <floating*>n.gh + b0 * G
    cdef floating* logits = <floating*>n.logits + b0 * V
    cdef int32_t* cur = s.cur + b0
    cdef const int32_t* forced = s.forced + b0 * steps
    cdef const double* uniforms = s.uniforms + b0 * s.ustride
    cdef int64_t* used = s.used + b0
    cdef int64_t* remaining = s.remaining + b0
    cdef unsigned char* done = s.done + b0
    cdef int32_t* out = s.out + b0 * steps
    cdef bint own_knobs = n.row_scale != NULL
    cdef const double* rscale = n.row_scale + b0 if own_knobs else NULL
    cdef const double* rfloor = n.row_floor + b0 if own_knobs else NULL
    cdef const double* rtop_p = n.row_top_p + b0 if own_knobs else NULL
    cdef const int32_t* rtop_k = n.row_top_k + b0 if own_knobs else NULL
    cdef const unsigned char* rgreedy = n.row_greedy + b0 if own_knobs else NULL
    cdef float* probs = s.probs + b0 * steps * V if s.probs != NULL else NULL
    cdef float* hidden = s.hidden + b0 * steps * L * H if s.hidden != NULL else NULL
    cdef double* tmp = p + V
    cdef const floating* w_ih[MAX_LAYERS]     # the plan's pointers, typed, in locals: the
    cdef const floating* w_hh[MAX_LAYERS]     # loop then reads no struct per step
    cdef const floating* b_in[MAX_LAYERS]
    cdef const floating* b_rec[MAX_LAYERS]
    cdef int cell = n.cell, eos = n.eos, top_k = n.top_k
    cdef double scale = n.scale, floor_ = n.floor_, top_p = n.top_p
    cdef bint greedy = n.greedy, external = s.external
    cdef Py_ssize_t ustride = s.ustride
    cdef const unsigned char* allowed = n.allowed
    cdef const float* pp_out = n.pp_out
    for l in range(L):
        w_ih[l] = <const floating*>n.w_ih[l]
        w_hh[l] = <const floating*>n.w_hh[l]
        b_in[l] = <const floating*>n.b_in[l]
        b_rec[l] = <const floating*>n.b_rec[l]
        hcur[l] = <floating*>n.h[l] + b0 * H
        hfinal[l] = hcur[l]
        hnext[l] = <floating*>n.h2[l] + b0 * H
        cl[l] = <floating*>n.c[l] + b0 * H if n.c[l] != NULL else NULL
        mine_ih[l] = n.pp_ih[l] + poff if n.pp_ih[l] != NULL else NULL
        mine_hh[l] = n.pp_hh[l] + poff if n.pp_hh[l] != NULL else NULL
        mine16_ih[l] = n.bp_ih[l] + off16 if n.bp_ih[l] != NULL else NULL
        mine16_hh[l] = n.bp_hh[l] + off16 if n.bp_hh[l] != NULL else NULL
    if bf16:
        mine16_out = n.bp_out + _thread_offset16(V, H, 1, tid, nt) if B == 1 else n.bp_out
    for t in range(steps):
        all_done = True
        for b in range(B):
            if not done[b]:
                all_done = False
        if all_done or s.stop:
            break
        for l in range(L):
            if nu > 0:
                for b in range(B):
                    fill_units(proj + b * G, table + cur[b] * G if l == 0 else b_in[l], H,
                               gates, u0, nu)
                if l > 0 and bf16:
                    block_linear16(B, G, H, gates, H, u0, u1, <const float*>hcur[l - 1],
                                   <float*>proj, mine16_ih[l], a16)
                elif l > 0:
                    block_linear(B, G, H, gates, H, u0, u1, hcur[l - 1], w_ih[l], proj,
                                 mine_ih[l], t & 1)
                if cell == CELL_GRU:
                    for b in range(B):
                        fill_units(gh + b * G, b_rec[l], H, gates, u0, nu)
                if bf16:
                    block_linear16(B, G, H, gates, H, u0, u1, <const float*>hcur[l],
                                   <float*>(gh if cell == CELL_GRU else proj), mine16_hh[l],
                                   a16)
                elif cell == CELL_GRU:
                    block_linear(B, G, H, gates, H, u0, u1, hcur[l], w_hh[l], gh, mine_hh[l],
                                 t & 1)
                else:
                    block_linear(B, G, H, gates, H, u0, u1, hcur[l], w_hh[l], proj,
                                 mine_hh[l], t & 1)
                units_step(cell, B, H, u0, u1, proj, gh, hcur[l], hnext[l], cl[l])
            if nt > 1:
                cf_barrier()
            swap = hcur[l]
            hcur[l] = hnext[l]
            hnext[l] = swap
        if B == 1:                      # each thread its share of the logits (all alone)
            memcpy(logits + v0, b_out + v0, (v1 - v0) * sizeof(floating))
            if bf16:
                block_linear16(1, V, H, 1, V, v0, v1, <const float*>hcur[L - 1],
                               <float*>logits, mine16_out, a16)
            else:
                block_linear(1, V, H, 1, V, v0, v1, hcur[L - 1], w_out, logits, NULL)
            if nt > 1:
                cf_barrier()
        else:                     # each thread the logits of the rows it draws below:
            for b in range(r0, r1):     # no barrier between the dense layer and the draws
                memcpy(logits + b * V, b_out, V * sizeof(floating))
            if bf16:
                block_linear16(<int>(r1 - r0), V, H, 1, V, 0, V,
                               <const float*>(hcur[L - 1] + r0 * H),
                               <float*>(logits + r0 * V), mine16_out, a16)
            else:
                dense_rows(<int>(r1 - r0), V, H, hcur[L - 1] + r0 * H, w_out,
                           logits + r0 * V, pp_out)
        if tid == 0:
            s.ran += 1
            if hidden != NULL:
                for b in range(B):
                    for l in range(L):
                        for j in range(H):
                            hidden[((b * steps + t) * L + l) * H + j] = <float>hcur[l][b * H + j]
            if external:
                for b in range(B):
                    out[b * steps + t] = -1
                s.stop = True
        if external:
            if nt > 1:
                cf_barrier()
            continue
        if tid == 0 or B > 1:
            for b in range(r0 if B > 1 else 0, r1 if B > 1 else B):
                if done[b]:
                    out[b * steps + t] = -1
                    continue
                prow = probs + (b * steps + t) * V if probs != NULL else NULL
                if forced[b * steps + t] >= 0:
                    tok = forced[b * steps + t]
                    if prow != NULL:
                        pick(logits + b * V, V, allowed, 1.0, 0.0, 0, 1.0, True, 0.0, p, tmp,
                             prow)
                else:
                    if own_knobs:
                        tok = pick(logits + b * V, V, allowed, rscale[b], rfloor[b], rtop_k[b],
                                   rtop_p[b], rgreedy[b], uniforms[b * ustride + used[b]], p,
                                   tmp, prow)
                    else:
                        tok = pick(logits + b * V, V, allowed, scale, floor_, top_k, top_p,
                                   greedy, uniforms[b * ustride + used[b]], p, tmp, prow)
                    used[b] += 1
                    remaining[b] -= 1
                    if remaining[b] <= 0 or tok == eos or tok < 0:
                        done[b] = 1
                out[b * steps + t] = <int32_t>tok
                if tok >= 0:
                    cur[b] = <int32_t>tok
        if nt > 1:
            cf_barrier()
    for l in range(L):                  # leave the final state in the plan's state arrays
        if hcur[l] != hfinal[l] and nu > 0:
            for b in range(B):
                memcpy(hfinal[l] + b * H + u0, hcur[l] + b * H + u0, nu * sizeof(floating))


cdef void _launch(floating* typed, Net* n, Chunk* s, Chunk* parts) noexcept nogil:
    """The threads over one chunk: each a share of the rows (n.groups > 1: no barriers), or
    of the hidden units (n.nt > 1), or one thread alone."""
    cdef int g, tid, groups = n.groups, nt = n.nt
    cdef Py_ssize_t b0
    if groups > 1:
        for g in range(groups):
            parts[g] = s[0]
        with parallel(num_threads=groups):
            tid = threadid()
            b0 = (n.B * tid) // groups
            _loop(typed, n, &parts[tid], b0, <int>((n.B * (tid + 1)) // groups - b0),
                  n.p + 2 * n.V * tid, n.a16 + n.a16_stride * tid, 0, 1)
        for g in range(groups):
            if parts[g].ran > s.ran:
                s.ran = parts[g].ran
    elif nt == 1:
        _loop(typed, n, s, 0, n.B, n.p, n.a16, 0, 1)
    else:
        with parallel(num_threads=nt):
            tid = threadid()
            _loop(typed, n, s, 0, n.B, n.p + 2 * n.V * tid, n.a16 + n.a16_stride * tid, tid,
                  nt)


cdef class Plan:
    """A generate() call's network laid out for the loop, once: the weights (and their
    packed forms), the state it updates in place, scratch, the threads and the sampler's
    knobs. run() then takes only what changes from chunk to chunk.

    cell: the cell's kernel_code. w_ih[l], b_in[l]: input weights (gH, H) and input bias
    (gH,) of layers 1..L-1 (index 0 unused); w_hh[l], b_rec[l]: recurrent weights and (GRU
    only) recurrent bias; for rnn/lstm b_in holds the one bias. table (V, gH): layer 0's
    projection per token. h[l], c[l] (LSTM): (B, H) state arrays, updated in place by run().
    threads: OpenMP threads splitting the hidden units (BLAS must be single-threaded), or
    with split_rows taking rows of the batch. packed_ih / packed_hh: optional per-layer
    pack_for_threads(w, gates, team size) of w_ih / w_hh (float32 batches; entries may be
    None); packed_out: pack_for_threads(w_out, 1, 1).
    bf16: multiply bf16 weights (float32 plans only): packed16_ih (layers 1..), packed16_hh
    are pack16_for_threads(w, gates, team size), packed16_out pack16_for_threads(w_out, 1,
    team size at batch 1, else 1); the float32 w_ih / w_hh / w_out are then not read.
    """
    cdef Net net
    cdef Chunk* parts
    cdef list keep
    cdef bint single
    cdef readonly int threads_used, row_groups

    def __cinit__(self):
        self.parts = NULL

    def __dealloc__(self):
        free(self.parts)

    def __init__(self, int cell, list w_ih, list w_hh, list b_in, list b_rec, table, w_out,
                 b_out, list h, list c, proj, gh, logits, allowed, *, int eos, double scale,
                 double floor_, int top_k, double top_p, bint greedy, int threads=1,
                 list packed_ih=None, list packed_hh=None, packed_out=None,
                 bint split_rows=False, bint bf16=False, list packed16_ih=None,
                 list packed16_hh=None, packed16_out=None):
        import numpy as np
        cdef int L = len(w_hh), l, nt = threads if cf_openmp_enabled() else 1
        if L > MAX_LAYERS:
            raise ValueError(f"generation supports at most {MAX_LAYERS} layers")
        dtype = np.asarray(table).dtype
        if dtype not in (np.float32, np.float64):
            raise ValueError("generate.Plan: float32 or float64 weights")
        self.single = dtype == np.float32
        self.keep = []
        n = &self.net
        n.cell, n.L = cell, L
        n.V, n.H = np.shape(w_out)[0], np.shape(w_out)[1]
        n.G = np.shape(table)[1]
        n.gates = n.G // n.H
        n.B = np.shape(h[0])[0]
        n.eos, n.top_k, n.scale, n.floor_, n.top_p, n.greedy = eos, top_k, scale, floor_, \
            top_p, greedy
        n.row_scale, n.row_floor, n.row_top_p, n.row_top_k, n.row_greedy = \
            NULL, NULL, NULL, NULL, NULL
        if nt < 1:
            nt = 1
        if split_rows:
            n.groups, n.nt = max(1, min(nt, n.B)), 1
        else:
            n.groups, n.nt = 1, team_size(n.H, nt)
        self.threads_used, self.row_groups = n.nt, n.groups
        n.table = self._address(table, dtype, (n.V, n.G))
        n.w_out = self._address(w_out, dtype, (n.V, n.H))
        n.b_out = self._address(b_out, dtype, (n.V,))
        n.proj = self._address(proj, dtype, (n.B, n.G))
        n.gh = self._address(gh, dtype, (n.B, n.G))
        n.logits = self._address(logits, dtype, (n.B, n.V))
        n.allowed = <const unsigned char*>self._address(allowed, np.uint8, (n.V,))
        p = np.zeros(2 * n.V * max(n.nt, n.groups), np.float64)
        n.p = <double*>self._address(p, np.float64, p.shape)
        for l in range(L):
            n.w_hh[l] = self._address(w_hh[l], dtype, (n.G, n.H))
            n.bp_ih[l], n.bp_hh[l] = NULL, NULL
            n.h[l] = self._address(h[l], dtype, (n.B, n.H))
            n.h2[l] = self._address(np.zeros((n.B, n.H), dtype), dtype, (n.B, n.H))
            n.c[l] = self._address(c[l], dtype, (n.B, n.H)) if cell == CELL_LSTM else NULL
            n.w_ih[l] = self._address(w_ih[l], dtype, (n.G, n.H)) if l > 0 else NULL
            n.b_in[l] = self._address(b_in[l], dtype, (n.G,)) if l > 0 else NULL
            n.b_rec[l] = self._address(b_rec[l], dtype, (n.G,)) if cell == CELL_GRU else NULL
            n.pp_ih[l] = self._pack(packed_ih[l] if packed_ih is not None else None, n.H,
                                    n.gates, n.nt)
            n.pp_hh[l] = self._pack(packed_hh[l] if packed_hh is not None else None, n.H,
                                    n.gates, n.nt)
        n.bf16 = bf16
        n.bp_out, n.a16, n.a16_stride = NULL, NULL, 0
        if bf16:
            self._bf16_weights(packed16_ih, packed16_hh, packed16_out)
        n.pp_out = NULL
        if self.single and packed_out is not None:
            if np.shape(packed_out)[0] != cf_packed_size(n.V, n.H):
                raise ValueError("generate.Plan: packed output weights of another shape")
            n.pp_out = <float*>self._address(packed_out, np.float32, np.shape(packed_out))
        self.parts = <Chunk*>malloc(n.groups * sizeof(Chunk))
        if self.parts == NULL:
            raise MemoryError()

    def set_row_knobs(self, scale, floor_, top_k, top_p, greedy):
        """Give each row its own sampler knobs: (B,) float64 scale, floor and top_p, int32
        top_k, uint8 greedy, read at every draw (the caller may change a row's entries
        between runs: rows of different settings then share one kernel call)."""
        import numpy as np
        cdef int B = self.net.B
        self.net.row_scale = <const double*>self._address(scale, np.float64, (B,))
        self.net.row_floor = <const double*>self._address(floor_, np.float64, (B,))
        self.net.row_top_p = <const double*>self._address(top_p, np.float64, (B,))
        self.net.row_top_k = <const int32_t*>self._address(top_k, np.int32, (B,))
        self.net.row_greedy = <const unsigned char*>self._address(greedy, np.uint8, (B,))

    cdef void* _address(self, array, dtype, shape) except? NULL:
        """The data of a C-contiguous array of this dtype and shape (kept alive by the plan);
        never a copy, since the state arrays are updated in place."""
        import numpy as np
        a = np.asarray(array)
        if a.dtype != dtype or tuple(a.shape) != tuple(shape) or not a.flags.c_contiguous:
            raise ValueError(f"generate.Plan: expected a C-contiguous {np.dtype(dtype).name} "
                             f"array of shape {tuple(shape)}, got {a.dtype} {a.shape}")
        self.keep.append(a)
        return <void*><size_t>a.ctypes.data

    cdef _bf16_weights(self, list packed_ih, list packed_hh, packed_out):
        """The bf16 plan's packed weights (checked against the shares this plan's threads
        take) and one operand buffer per thread."""
        import numpy as np
        n = &self.net
        cdef int l, team = n.nt if n.groups == 1 else 1
        cdef int out_team = team if n.B == 1 else 1
        if not self.single:
            raise ValueError("generate.Plan: bf16 needs float32 weights")
        if packed_hh is None or packed_out is None or len(packed_hh) != n.L or \
                (n.L > 1 and (packed_ih is None or len(packed_ih) != n.L)):
            raise ValueError("generate.Plan: bf16 needs packed16 weights for every layer")
        for l in range(n.L):
            n.bp_hh[l] = <const uint16_t*>self._address16(
                packed_hh[l], (_thread_offset16(n.H, n.H, n.gates, team, team),))
            n.bp_ih[l] = NULL if l == 0 else <const uint16_t*>self._address16(
                packed_ih[l], (_thread_offset16(n.H, n.H, n.gates, team, team),))
        n.bp_out = <const uint16_t*>self._address16(
            packed_out, (_thread_offset16(n.V, n.H, 1, out_team, out_team),))
        n.a16_stride = (cf_bf16_rows_room(n.B) * cf_bf16_lda(cf_bf16_kpad(n.H)) + 31) // 32 * 32
        a16 = aligned_bf16(n.a16_stride * max(n.nt, n.groups))
        n.a16 = <uint16_t*>self._address16(a16, a16.shape)

    cdef void* _address16(self, array, shape) except? NULL:
        """_address for packed bf16 arrays, which must start on a 64-byte boundary."""
        import numpy as np
        cdef void* at = self._address(array, np.uint16, shape)
        if <size_t>at % 64:
            raise ValueError("generate.Plan: packed bf16 weights must be 64-byte aligned "
                             "(make them with pack16_for_threads)")
        return at

    cdef float* _pack(self, packed, int H, int gates, int nt) except? NULL:
        import numpy as np
        if not self.single or packed is None:
            return NULL
        if np.shape(packed)[0] == 0 or np.shape(packed)[0] != _thread_offset(H, H, gates, nt,
                                                                            nt):
            raise ValueError("generate.Plan: packed weights of another shape or thread count")
        return <float*>self._address(packed, np.float32, np.shape(packed))

    def run(self, int32_t[::1] cur, const int32_t[:, ::1] forced,
            const double[:, ::1] uniforms, int64_t[::1] used, int64_t[::1] remaining,
            unsigned char[::1] done, int32_t[:, ::1] out, probs_out=None, hidden_out=None,
            bint external=False):
        """Run up to forced.shape[1] steps; returns the steps run (fewer when every row is
        done). Row b's next token is forced[b, t] when >= 0 (the prime), else drawn with
        uniforms[b, used[b]]. out (B, steps): the token after each step (-1 once done).
        probs_out (B, steps, V) and hidden_out (B, steps, L, H), float32, are optional.
        external=True: one step and no draw; the caller picks from the plan's logits (a
        plugin sampler) and writes the pick into cur."""
        cdef Net* n = &self.net
        cdef Chunk s
        cdef float[:, :, ::1] pr
        cdef float[:, :, :, ::1] hid
        if cur.shape[0] != n.B or forced.shape[0] != n.B or uniforms.shape[0] != n.B or \
                used.shape[0] != n.B or remaining.shape[0] != n.B or done.shape[0] != n.B or \
                out.shape[0] != n.B or out.shape[1] != forced.shape[1] or \
                forced.shape[1] < 1 or uniforms.shape[1] < 1:
            raise ValueError("generate.Plan.run: inconsistent shapes")
        s.steps, s.ran, s.external, s.stop = forced.shape[1], 0, external, False
        s.cur, s.forced, s.uniforms, s.ustride = &cur[0], &forced[0, 0], &uniforms[0, 0], \
            uniforms.shape[1]
        s.used, s.remaining, s.done, s.out = &used[0], &remaining[0], &done[0], &out[0, 0]
        s.probs, s.hidden = NULL, NULL
        if probs_out is not None:
            pr = probs_out
            if pr.shape[0] != n.B or pr.shape[1] != s.steps or pr.shape[2] != n.V:
                raise ValueError("generate.Plan.run: probs_out of another shape")
            s.probs = &pr[0, 0, 0]
        if hidden_out is not None:
            hid = hidden_out
            if hid.shape[0] != n.B or hid.shape[1] != s.steps or hid.shape[2] != n.L or \
                    hid.shape[3] != n.H:
                raise ValueError("generate.Plan.run: hidden_out of another shape")
            s.hidden = &hid[0, 0, 0, 0]
        with nogil:
            if self.single:
                _launch(<float*>NULL, n, &s, self.parts)
            else:
                _launch(<double*>NULL, n, &s, self.parts)
        return s.ran
