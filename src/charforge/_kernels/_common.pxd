# cython: language_level=3
"""Shared declarations: the BLAS wrapper (row-major on top of Fortran BLAS) and the C helpers."""
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv
from libc.stdint cimport uint64_t, uint16_t
from libc.stdlib cimport free, getenv
from libc.string cimport memset

cdef extern from "cf_math.h" nogil:
    int cf_openmp_enabled()
    int cf_cpu_level()
    int cf_hardware_cpu_level()
    void cf_set_num_threads(int n)
    int cf_get_max_threads()
    void cf_barrier()
    Py_ssize_t cf_fetch_add(Py_ssize_t* counter, Py_ssize_t v)
    float cf_expf(float x)
    void cf_tanh_to_f32(const float* x, float* y, Py_ssize_t n)
    void cf_tanh_to_f64(const double* x, double* y, Py_ssize_t n)
    float cf_exp_shift_sum_f32(float* x, Py_ssize_t n, float shift)
    double cf_exp_shift_sum_f64(double* x, Py_ssize_t n, double shift)
    uint64_t cf_hash64(uint64_t seed, uint64_t i)
    void cf_matvec_f32(const float* W, Py_ssize_t ldw, const float* x, float* y, Py_ssize_t N, Py_ssize_t K)
    void cf_matvec_f64(const double* W, Py_ssize_t ldw, const double* x, double* y, Py_ssize_t N, Py_ssize_t K)


cdef inline void gemm_rm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                         const floating* a, int lda, const floating* b, int ldb,
                         floating beta, floating* c, int ldc) noexcept nogil:
    """Row-major C (m x n) = alpha op(A) op(B) + beta C, as the column-major C^T = op(B)^T op(A)^T."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if m == 0 or n == 0:
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c, &ldc)


cdef inline void tanh_to(const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cf_tanh_to_f32(x, y, n)
    else:
        cf_tanh_to_f64(x, y, n)


cdef inline Py_ssize_t unit_bound(Py_ssize_t hidden, Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """Start of thread k's share of the hidden units (multiples of 16 keep rows aligned)."""
    if k >= n:
        return hidden
    return ((hidden * k) // n) & ~(<Py_ssize_t>15)


cdef inline Py_ssize_t row_bound(Py_ssize_t B, Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """Start of thread k's share of the batch rows when the threads split the batch
    (multiples of 8, the packed kernel's row block)."""
    if k >= n:
        return B
    return ((B * k) // n) & ~(<Py_ssize_t>7)


cdef inline bint split_rows(Py_ssize_t B, Py_ssize_t H, Py_ssize_t gates,
                            int n) noexcept nogil:
    """Whether a layer's threads take batch rows instead of hidden units. With rows, each
    thread runs the whole recurrence of its rows alone: no barrier per step and no state
    rows crossing between cores, at the price of a private copy of W_hh per thread (so only
    for W_hh up to 2 MB, where a step's product is short and those costs are a large share)."""
    return n > 1 and B >= 16 * n and gates * H * H * <Py_ssize_t>sizeof(float) <= (2 << 20)


# How a recurrent layer's work is dealt to its threads (WorkShare.mode).
cdef enum:
    SHARE_UNITS = 0          # every thread: all rows, its own hidden units; a barrier per step
    SHARE_ROWS = 1           # thread k: the k-th contiguous part of the batch rows, all units
    SHARE_ROW_BLOCKS = 2     # blocks of ROW_BLOCK rows, each taken by whichever thread is free

cdef enum:
    ROW_BLOCK = 16           # two of the packed kernel's row blocks


cdef struct WorkShare:
    Py_ssize_t B
    Py_ssize_t H
    Py_ssize_t blocks
    Py_ssize_t next_block    # the first block nobody has taken yet (SHARE_ROW_BLOCKS)
    int n
    int mode


cdef inline bint _row_blocks_allowed() noexcept nogil:
    """CHARFORGE_ROW_BLOCKS=0 forces fixed parts (to compare the two schedules)."""
    cdef const char* env = getenv("CHARFORGE_ROW_BLOCKS")
    return not (env != NULL and env[0] == b'0' and env[1] == 0)


cdef inline void share_init(WorkShare* share, Py_ssize_t B, Py_ssize_t H, Py_ssize_t gates,
                            int n, Py_ssize_t table_bytes) noexcept nogil:
    """Choose how n threads split a layer (split_rows). Row blocks handed out on demand
    rather than fixed parts: on a shared machine one core often runs at half the speed of the
    other for seconds at a time, and with fixed parts the fast core then idles until the slow
    one is done. Each row's arithmetic is the same whichever thread runs it, so results do not
    depend on the schedule. table_bytes: the size of the input-table gradient the backward
    scatters into (0 if none); fixed parts when a private one per block would pass 8 MB."""
    share.B, share.H, share.n, share.next_block = B, H, n, 0
    share.blocks = (B + ROW_BLOCK - 1) // ROW_BLOCK
    if not split_rows(B, H, gates, n):
        share.mode = SHARE_UNITS
    elif _row_blocks_allowed() and share.blocks * table_bytes <= (8 << 20):
        share.mode = SHARE_ROW_BLOCKS
    else:
        share.mode = SHARE_ROWS


cdef inline Py_ssize_t share_slots(const WorkShare* share) noexcept nogil:
    """How many private input-table gradients the layer's backward needs (one per thread or
    per row block when threads split rows: rows of the same token would race; summed in slot
    order afterwards, so the sum is the same on every run)."""
    if share.mode == SHARE_ROWS:
        return share.n
    if share.mode == SHARE_ROW_BLOCKS:
        return share.blocks
    return 1


cdef inline bint share_sync(const WorkShare* share) noexcept nogil:
    """Whether the threads must meet after every step (they split the units of each row)."""
    return share.mode == SHARE_UNITS and share.n > 1


cdef inline void share_units(const WorkShare* share, int tid, Py_ssize_t* u0,
                             Py_ssize_t* u1) noexcept nogil:
    """Thread tid's hidden units [u0, u1)."""
    if share.mode == SHARE_UNITS:
        u0[0], u1[0] = unit_bound(share.H, tid, share.n), unit_bound(share.H, tid + 1, share.n)
    else:
        u0[0], u1[0] = 0, share.H


cdef inline bint share_rows(WorkShare* share, int tid, int* turn, Py_ssize_t* b0,
                            Py_ssize_t* b1, Py_ssize_t* slot) noexcept nogil:
    """Thread tid's next batch rows [b0, b1) and their table slot; False when it has no more.
    *turn starts at 0. Units and fixed rows: one range per thread (with units every thread
    gets one, empty or not, as each must reach every barrier); row blocks: until none is left."""
    cdef Py_ssize_t k
    if share.mode == SHARE_ROW_BLOCKS:
        k = cf_fetch_add(&share.next_block, 1)
        if k >= share.blocks:
            return False
        b0[0], slot[0] = k * ROW_BLOCK, k
        b1[0] = b0[0] + ROW_BLOCK if b0[0] + ROW_BLOCK < share.B else share.B
        return True
    if turn[0] > 0:
        return False
    turn[0] = 1
    if share.mode == SHARE_ROWS:
        b0[0], b1[0], slot[0] = row_bound(share.B, tid, share.n), row_bound(share.B, tid + 1,
                                                                           share.n), tid
        return b1[0] > b0[0]
    b0[0], b1[0], slot[0] = 0, share.B, 0
    return True


cdef inline int team_size(Py_ssize_t hidden, int threads) noexcept nogil:
    """Threads worth using for a layer: each needs at least 16 hidden units."""
    cdef Py_ssize_t most = hidden // 16
    if most < 1:
        most = 1
    return <int>(threads if threads < most else most)


cdef inline int team_share(WorkShare* share, Py_ssize_t B, Py_ssize_t H, Py_ssize_t gates,
                           int threads, Py_ssize_t table_bytes) noexcept nogil:
    """Every cell kernel's start: its team (team_size threads) and how the team deals out
    the work (share_init). Returns the team's size."""
    cdef int n = team_size(H, threads)
    share_init(share, B, H, gates, n, table_bytes)
    return n


cdef extern from "cf_gemm.h" nogil:
    int cf_packed_gemm_available()
    void cf_prefetch_block(const void* base, Py_ssize_t rows, Py_ssize_t ld,
                           Py_ssize_t offset, Py_ssize_t nbytes)
    Py_ssize_t cf_packed_size(Py_ssize_t N, Py_ssize_t K)
    float* cf_alloc_floats(Py_ssize_t n)
    void cf_pack_nt(const float* W, Py_ssize_t ldw, Py_ssize_t N, Py_ssize_t K, float* P)
    void cf_pack_nn(const float* W, Py_ssize_t ldw, Py_ssize_t K, Py_ssize_t N, float* P)
    float* cf_gemm_work(Py_ssize_t N)
    void cf_gemm_tn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t lda,
                    const float* B, Py_ssize_t ldb, int accumulate, float* C, Py_ssize_t ldc,
                    float* work, float* colsum)
    void cf_gemm_packed(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A,
                        Py_ssize_t lda, const float* P, float* C, Py_ssize_t ldc,
                        int accumulate)


cdef extern from "cf_bf16.h" nogil:
    int cf_bf16_level()
    int cf_bf16_hardware()
    Py_ssize_t cf_bf16_kpad(Py_ssize_t K)
    Py_ssize_t cf_bf16_lda(Py_ssize_t Kp)
    Py_ssize_t cf_bpack_size(Py_ssize_t N, Py_ssize_t K)
    Py_ssize_t cf_bf16_rows_room(Py_ssize_t M)
    uint16_t* cf_alloc_bf16(Py_ssize_t n)
    void cf_bpack_nt(const float* W, Py_ssize_t ldw, Py_ssize_t N, Py_ssize_t K, uint16_t* P)
    void cf_bpack_nn(const float* W, Py_ssize_t ldw, Py_ssize_t K, Py_ssize_t N, uint16_t* P)
    void cf_bf16_rows(const float* X, Py_ssize_t ldx, Py_ssize_t rows, Py_ssize_t K,
                      uint16_t* out, Py_ssize_t ldo)
    void cf_bgemm_packed(Py_ssize_t M, Py_ssize_t N, Py_ssize_t Kp, const uint16_t* A,
                         Py_ssize_t lda, const uint16_t* P, float* C, Py_ssize_t ldc,
                         int accumulate)
    uint16_t* cf_bf16_scratch(int slot, Py_ssize_t n)
    int cf_bgemm(int trans_a, int trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                 const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb, float* C,
                 Py_ssize_t ldc, int accumulate)


cdef inline float* pack_gate_rows(const float* w_hh, Py_ssize_t H, Py_ssize_t gates,
                                  Py_ssize_t u0, Py_ssize_t nu) noexcept nogil:
    """The forward step's operand: for each gate q, rows [q H + u0, q H + u0 + nu) of W_hh
    (gates H x H) packed as panel block q (cf_packed_size(nu, H) floats each). NULL when the
    packed kernel is off or memory is short (callers then use BLAS)."""
    cdef Py_ssize_t q, block = cf_packed_size(nu, H)
    cdef float* P
    if nu <= 0 or not cf_packed_gemm_available():
        return NULL
    P = cf_alloc_floats(gates * block)
    if P != NULL:
        for q in range(gates):
            cf_pack_nt(w_hh + (q * H + u0) * H, H, nu, H, P + q * block)
    return P


cdef inline float* pack_unit_columns(const float* w_hh, Py_ssize_t H, Py_ssize_t gates,
                                     Py_ssize_t u0, Py_ssize_t nu) noexcept nogil:
    """The backward step's operand: columns [u0, u0 + nu) of W_hh (gates H x H), packed.
    NULL when the packed kernel is off or memory is short."""
    cdef float* P
    if nu <= 0 or not cf_packed_gemm_available():
        return NULL
    P = cf_alloc_floats(cf_packed_size(nu, gates * H))
    if P != NULL:
        cf_pack_nn(w_hh + u0, H, gates * H, nu, P)
    return P


cdef struct ThreadWork:
    Py_ssize_t u0, u1, nu    # the thread's hidden units [u0, u1)
    Py_ssize_t b0, b1        # its current batch rows [b0, b1)
    Py_ssize_t rows, slot    # b1 - b0; its input-table gradient slot
    int turn
    bint sync                # meet the team after every step
    bint busy                # units and rows to compute this step
    float* packed            # its slice of W_hh packed (float32 only; NULL: BLAS)
    bint bf16                # bf16 products: W_hh slice in packed16, operands rounded in a16
    uint16_t* packed16
    uint16_t* a16            # the step's A operand rounded to bf16 (rows x cf_bf16_kpad(K))


cdef inline void work_begin(WorkShare* share, int tid, ThreadWork* w, const floating* w_hh,
                            Py_ssize_t gates, bint backward, bint bf16) noexcept nogil:
    """A cell kernel thread's start, the same for every cell: its units, and its slice of
    W_hh packed for the forward step (gate rows) or the backward one (unit columns); with
    bf16 (float32 only) packed as bf16 for cf_bgemm_packed, with room for the step's A."""
    share_units(share, tid, &w.u0, &w.u1)
    w.nu = w.u1 - w.u0
    w.turn = 0
    w.sync = share_sync(share)
    w.packed = NULL
    w.b0 = 0
    w.b1 = 0
    w.rows = 0
    w.slot = 0
    w.busy = False
    w.bf16 = False
    w.packed16 = NULL
    w.a16 = NULL
    if floating is float and bf16:
        w.bf16 = True
        if w.nu > 0:
            pack_bf16(w, w_hh, share.B, share.H, gates, backward)
        return
    if floating is float:
        if backward:
            w.packed = pack_unit_columns(w_hh, share.H, gates, w.u0, w.nu)
        else:
            w.packed = pack_gate_rows(w_hh, share.H, gates, w.u0, w.nu)


cdef inline bint work_next_rows(WorkShare* share, int tid, ThreadWork* w) noexcept nogil:
    """The thread's next rows (share_rows); False when it has none left."""
    if not share_rows(share, tid, &w.turn, &w.b0, &w.b1, &w.slot):
        return False
    w.rows = w.b1 - w.b0
    w.busy = w.nu > 0 and w.rows > 0
    return True


cdef inline void work_step_done(const ThreadWork* w) noexcept nogil:
    """After a step: the team meets when it splits units (every unit of h_t is needed next)."""
    if w.sync:
        cf_barrier()


cdef inline void pack_bf16(ThreadWork* w, const float* w_hh, Py_ssize_t B, Py_ssize_t H,
                           Py_ssize_t gates, bint backward) noexcept nogil:
    """The thread's W_hh slice as bf16: per gate q, rows [q H + u0, q H + u0 + nu) (forward),
    or columns [u0, u0 + nu) of all gates (backward); and room for A (B rows of H, or of
    gates H, rounded). Both in the thread's scratch (cf_bf16_scratch), not freed."""
    cdef Py_ssize_t q, block = cf_bpack_size(w.nu, H)
    cdef Py_ssize_t K = gates * H if backward else H
    if backward:
        w.packed16 = cf_bf16_scratch(2, cf_bpack_size(w.nu, K))
        if w.packed16 != NULL:
            cf_bpack_nn(w_hh + w.u0, H, K, w.nu, w.packed16)
    else:
        w.packed16 = cf_bf16_scratch(2, gates * block)
        if w.packed16 != NULL:
            for q in range(gates):
                cf_bpack_nt(w_hh + (q * H + w.u0) * H, H, w.nu, H, w.packed16 + q * block)
    w.a16 = cf_bf16_scratch(3, cf_bf16_rows_room(B) * cf_bf16_lda(cf_bf16_kpad(K)))
    if w.packed16 == NULL or w.a16 == NULL:    # memory short: BLAS in float32, not a crash
        w.bf16 = False


cdef inline void work_end(ThreadWork* w) noexcept nogil:
    free(w.packed)                  # the bf16 buffers are the thread's scratch: kept
    w.packed = NULL
    w.packed16 = NULL
    w.a16 = NULL


cdef inline void prefetch_units(const floating* rows, Py_ssize_t B, Py_ssize_t width,
                                Py_ssize_t blocks, Py_ssize_t H, Py_ssize_t u0,
                                Py_ssize_t nu) noexcept nogil:
    """Prefetch columns [q H + u0, q H + u0 + nu) of every block q of a (B, width) step slab."""
    cdef Py_ssize_t q, s = sizeof(floating)
    for q in range(blocks):
        cf_prefetch_block(rows, B, width * s, (q * H + u0) * s, nu * s)


cdef inline void recurrent_nt(const ThreadWork* w, Py_ssize_t gates, Py_ssize_t H,
                              const floating* hp, const floating* w_hh, floating* out,
                              Py_ssize_t ldo) noexcept nogil:
    """The forward step's product for the thread's rows and units [u0, u0 + nu) of every gate
    q: out[:, q H + u0 + j] += (hp @ W_hh^T)[:, q H + u0 + j]: bf16 products when the work is
    bf16, else the packed kernel when w.packed is set, else BLAS."""
    cdef Py_ssize_t q, block = cf_packed_size(w.nu, H), kp
    if floating is float:
        if w.bf16:
            kp = cf_bf16_kpad(H)
            cf_bf16_rows(hp, H, w.rows, H, w.a16, cf_bf16_lda(kp))
            block = cf_bpack_size(w.nu, H)
            for q in range(gates):
                cf_bgemm_packed(w.rows, w.nu, kp, w.a16, cf_bf16_lda(kp), w.packed16 + q * block,
                                out + q * H + w.u0, ldo, 1)
            return
    for q in range(gates):
        if floating is float:
            if w.packed != NULL:
                cf_gemm_packed(w.rows, w.nu, H, hp, H, w.packed + q * block, out + q * H + w.u0,
                               ldo, 1)
                continue
        gemm_rm(False, True, <int>w.rows, <int>w.nu, <int>H, <floating>1.0, hp, <int>H,
                w_hh + (q * H + w.u0) * H, <int>H, <floating>1.0, out + q * H + w.u0, <int>ldo)


cdef inline void recurrent_nn(const ThreadWork* w, Py_ssize_t K, Py_ssize_t H,
                              const floating* dg, const floating* w_hh, floating* out,
                              bint accumulate) noexcept nogil:
    """The backward step's product for the thread's rows and units [u0, u0 + nu):
    out[:, u0:u0+nu] (+)= dg (rows x K) @ W_hh[:, u0:u0+nu] (out has row stride H): bf16
    products when the work is bf16, else the packed kernel when w.packed is set, else BLAS."""
    cdef Py_ssize_t kp
    if floating is float:
        if w.bf16:
            kp = cf_bf16_kpad(K)
            cf_bf16_rows(dg, K, w.rows, K, w.a16, cf_bf16_lda(kp))
            cf_bgemm_packed(w.rows, w.nu, kp, w.a16, cf_bf16_lda(kp), w.packed16, out + w.u0,
                            H, accumulate)
            return
        if w.packed != NULL:
            cf_gemm_packed(w.rows, w.nu, K, dg, K, w.packed, out + w.u0, H, accumulate)
            return
    gemm_rm(False, False, <int>w.rows, <int>w.nu, <int>K, <floating>1.0, dg, <int>K,
            w_hh + w.u0, <int>H, <floating>(1.0 if accumulate else 0.0), out + w.u0, <int>H)
