# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Layer-independent kernels: GEMM, embedding gather/scatter, softmax cross-entropy, dropout,
norms, and the OpenMP thread setting. Shapes are given per function."""
import numpy as np
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport log, sqrt, fabs
from libc.string cimport memcpy
from libc.stdint cimport uint64_t, int32_t
from ._common cimport (split_rows, team_size as team_size_c, unit_bound, cf_matvec_f32, gemm_rm, cf_gemm_tn,
                       cf_gemm_work, cf_packed_gemm_available,
                       cf_set_num_threads, cf_get_max_threads, cf_openmp_enabled, cf_cpu_level,
                       cf_hardware_cpu_level,
                       cf_exp_shift_sum_f32, cf_exp_shift_sum_f64, cf_hash64, cf_bgemm,
                       cf_bf16_level, cf_bf16_hardware)


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return bool(cf_openmp_enabled())


def cpu_level():
    """The instruction-set level the vector loops run at (cf_cpu.h): 2 AVX-512, 1 AVX2, 0
    the baseline."""
    return cf_cpu_level()


def hardware_cpu_level():
    """The highest level this CPU supports (what runs when CHARFORGE_CPU is unset)."""
    return cf_hardware_cpu_level()


def bf16_level():
    """The path bf16 products take (cf_bf16.h): 2 AMX tiles, 1 AVX512-BF16 (vdpbf16ps), 0
    the exact emulation in float32."""
    return cf_bf16_level()


def hardware_bf16_level():
    """The bf16 path this CPU (and its kernel's grant of the AMX state) allows."""
    return cf_bf16_hardware()


def packed_gemm_available():
    """Whether float32 recurrent steps and weight gradients use the packed AVX-512 kernel
    (cf_gemm.h): the AVX-512 level runs and CHARFORGE_PACKED_GEMM is not "0"."""
    return bool(cf_packed_gemm_available())


def threads_split_rows(Py_ssize_t batch, Py_ssize_t hidden, Py_ssize_t gates, int threads):
    """Whether a recurrent layer of this shape splits the batch rows over the threads (else
    the hidden units); see split_rows in _common.pxd."""
    return bool(split_rows(batch, hidden, gates, team_size_c(hidden, threads)))


def team_size(Py_ssize_t hidden, int threads):
    """Threads a recurrent layer of this width uses (each needs 16 hidden units; one
    without OpenMP)."""
    return team_size_c(hidden, threads if cf_openmp_enabled() else 1)


def set_omp_threads(int n):
    cf_set_num_threads(max(1, n))


cdef void _gemm_one(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                   const floating* a, int lda, const floating* b, int ldb, floating beta,
                   floating* c, int ldc, bint packed, bint bf16) noexcept nogil:
    """One thread's product: bf16 operands when asked (float32, alpha 1, beta 0 or 1), the
    packed AVX-512 kernel for float32 weight-gradient products (A transposed: both operands
    are read along K, where BLAS is slowest), else BLAS."""
    cdef float* work
    if floating is float:
        if bf16 and alpha == 1 and (beta == 0 or beta == 1):
            if cf_bgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, beta == 1) == 0:
                return
        if packed and trans_a and not trans_b and alpha == 1 and (beta == 0 or beta == 1):
            work = cf_gemm_work(n)
            if work != NULL:
                cf_gemm_tn(m, n, k, a, lda, b, ldb, beta == 1, c, ldc, work, NULL)
                return
    gemm_rm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


cdef void _fill_rows(floating* c, int ldc, int rows, int c0, int c1,
                     const floating* bias) noexcept nogil:
    """c[r, c0:c1] = bias[c0:c1] for each of `rows` rows."""
    cdef int r
    for r in range(rows):
        memcpy(c + <long long>r * ldc + c0, bias + c0, (c1 - c0) * sizeof(floating))


cdef void _gemm_split(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                      const floating* a, int lda, const floating* b, int ldb, floating beta,
                      floating* c, int ldc, int parts, const floating* bias,
                      bint bf16) noexcept nogil:
    """One GEMM as `parts` independent GEMMs over row (or column) blocks of C, one OpenMP
    thread each, BLAS single-threaded inside: one thread pool on the machine, not two. With
    bias (beta must be 1), each thread first sets its block of C to the bias row."""
    cdef int i, r0, r1
    cdef bint packed = floating is float and cf_packed_gemm_available()
    if parts <= 1:
        if bias != NULL:
            _fill_rows(c, ldc, m, 0, n, bias)
        _gemm_one(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, packed, bf16)
        return
    if m >= n:
        for i in prange(parts, schedule='static', num_threads=parts):
            r0 = <int>((<long long>m * i) // parts)
            r1 = <int>((<long long>m * (i + 1)) // parts)
            if bias != NULL:
                _fill_rows(c + <long long>r0 * ldc, ldc, r1 - r0, 0, n, bias)
            _gemm_one(trans_a, trans_b, r1 - r0, n, k, alpha,
                      a + (r0 if trans_a else <long long>r0 * lda), lda, b, ldb, beta,
                      c + <long long>r0 * ldc, ldc, packed, bf16)
    else:
        for i in prange(parts, schedule='static', num_threads=parts):
            r0 = <int>((<long long>n * i) // parts)
            r1 = <int>((<long long>n * (i + 1)) // parts)
            if bias != NULL:
                _fill_rows(c, ldc, m, r0, r1, bias)
            _gemm_one(trans_a, trans_b, m, r1 - r0, k, alpha, a, lda,
                      b + (<long long>r0 * ldb if trans_b else r0), ldb, beta, c + r0, ldc,
                      packed, bf16)


def gemm(bint trans_a, bint trans_b, double alpha, const floating[:, ::1] a,
         const floating[:, ::1] b, double beta, floating[:, ::1] c, bint bf16=False):
    """c = alpha op(a) op(b) + beta c for C-contiguous 2-D arrays (BLAS, GIL released).
    Large products are split over the OpenMP threads (see set_omp_threads). bf16: float32
    operands rounded to bf16, float32 sums (cf_bf16.h; alpha 1 and beta 0 or 1)."""
    cdef int m = a.shape[1] if trans_a else a.shape[0]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int kb = b.shape[1] if trans_b else b.shape[0]
    cdef int n = b.shape[0] if trans_b else b.shape[1]
    cdef int parts = cf_get_max_threads()
    if k != kb or c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"gemm: shapes do not agree: op(a) is ({m}, {k}), op(b) ({kb}, {n}), "
                         f"c ({c.shape[0]}, {c.shape[1]})")
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(m):
            for j in range(n):
                c[i, j] = <floating>(beta * c[i, j])
        return
    if <double>m * n * k < 2.0e6 or (m < 32 and n < 32):
        parts = 1
    with nogil:
        _gemm_split(trans_a, trans_b, m, n, k, <floating>alpha, &a[0, 0], <int>a.shape[1],
                    &b[0, 0], <int>b.shape[1], <floating>beta, &c[0, 0], n, parts, NULL, bf16)


def linear(const floating[:, ::1] x, const floating[:, ::1] w, const floating[::1] bias,
           floating[:, ::1] out, bint bf16=False):
    """out = x @ w^T + bias (a dense layer or an input projection). Each thread writes the
    bias into its own block of out just before its product: out is written by the threads that
    then read it, not in a separate single-threaded pass over the whole buffer. bf16: the
    product's operands rounded to bf16 (see gemm)."""
    cdef int m = x.shape[0], k = x.shape[1], n = w.shape[0]
    cdef int parts = cf_get_max_threads()
    if w.shape[1] != k or bias.shape[0] != n or out.shape[0] != m or out.shape[1] != n:
        raise ValueError(f"linear: shapes do not agree: x ({m}, {k}), w ({w.shape[0]}, "
                         f"{w.shape[1]}), bias ({bias.shape[0]},), out ({out.shape[0]}, "
                         f"{out.shape[1]})")
    if m == 0 or n == 0:
        return
    if <double>m * n * k < 2.0e6 or (m < 32 and n < 32):
        parts = 1
    with nogil:
        if k == 0:
            _fill_rows(&out[0, 0], n, m, 0, n, &bias[0])
        else:
            _gemm_split(False, True, m, n, k, 1, &x[0, 0], k, &w[0, 0], k, 1, &out[0, 0], n,
                        parts, &bias[0], bf16)


def gemm_tn_colsum(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
                   floating[::1] colsum, bint bf16=False):
    """c += a^T b and colsum += a.sum(axis=0): a layer's weight and bias gradients from one
    pass over its (T*B, G) pre-activation gradients (fused in the packed kernel, which sums
    each row while packing it; two passes elsewhere)."""
    cdef int m = a.shape[1], k = a.shape[0], n = b.shape[1]
    cdef int parts = cf_get_max_threads(), i, r0, r1
    cdef float* work
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != n or colsum.shape[0] != m:
        raise ValueError(f"gemm_tn_colsum: shapes do not agree: a ({k}, {m}), b "
                         f"({b.shape[0]}, {n}), c ({c.shape[0]}, {c.shape[1]}), colsum "
                         f"({colsum.shape[0]},)")
    if floating is float:
        if cf_packed_gemm_available() and m > 0 and n > 0 and k > 0 and not bf16:
            if <double>m * n * k < 2.0e6 or m < 32 * parts:
                parts = 1
            with nogil:
                for i in prange(parts, schedule='static', num_threads=parts):
                    r0 = (m * i) // parts
                    r1 = (m * (i + 1)) // parts
                    work = cf_gemm_work(n)
                    if work != NULL:
                        cf_gemm_tn(r1 - r0, n, k, &a[0, 0] + r0, m, &b[0, 0], n, 1,
                                   &c[0, 0] + <Py_ssize_t>r0 * n, n, work, &colsum[0] + r0)
                    else:
                        gemm_rm(True, False, r1 - r0, n, k, 1.0, &a[0, 0] + r0, m, &b[0, 0], n,
                                1.0, &c[0, 0] + <Py_ssize_t>r0 * n, n)
                        _colsum_cols(&a[0, 0], k, m, r0, r1, &colsum[0])
            return
    gemm(True, False, 1.0, a, b, 1.0, c, bf16)
    colsum_add(a, colsum)


cdef void _colsum_cols(const floating* x, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t j0,
                       Py_ssize_t j1, floating* out) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(j0, j1):
            out[j] += x[i * cols + j]


def gather_rows(const floating[:, ::1] table, const int32_t[::1] ids, floating[:, ::1] out):
    """out[i] = table[ids[i]]: the embedding lookup (or a precomputed input-projection table).
    ids must already be validated to lie in [0, V)."""
    cdef Py_ssize_t i, j, n = ids.shape[0], d = table.shape[1]
    cdef const floating* src
    if out.shape[0] != n or out.shape[1] != d:
        raise ValueError("gather_rows: out must be (len(ids), table.shape[1])")
    with nogil:
        for i in prange(n, schedule='static'):
            src = &table[ids[i], 0]
            for j in range(d):
                out[i, j] = src[j]


def scatter_add_rows(const floating[:, ::1] src, const int32_t[::1] ids, floating[:, ::1] out):
    """out[ids[i]] += src[i]: the embedding gradient. Parallel over columns, so no two threads
    ever write the same element and the summation order is fixed (deterministic)."""
    cdef Py_ssize_t i, j, c0, c1, chunk, n = ids.shape[0], d = src.shape[1]
    cdef Py_ssize_t nchunks = (d + 63) // 64
    if src.shape[0] != n or out.shape[1] != d:
        raise ValueError("scatter_add_rows: src must be (len(ids), out.shape[1])")
    with nogil:
        for chunk in prange(nchunks, schedule='static'):
            c0 = chunk * 64
            c1 = min(d, c0 + 64)
            for i in range(n):
                for j in range(c0, c1):
                    out[ids[i], j] += src[i, j]


def colsum_add(const floating[:, ::1] x, floating[::1] out):
    """out += x.sum(axis=0), rows in order (deterministic)."""
    cdef Py_ssize_t i, j, n = x.shape[0], d = x.shape[1]
    if out.shape[0] != d:
        raise ValueError("colsum_add: out must match x's last dimension")
    with nogil:
        for i in range(n):
            for j in range(d):
                out[j] += x[i, j]


cdef double _row_xent(floating* z, Py_ssize_t v, int target, double weight, bint grad,
                      double scale) noexcept nogil:
    """Loss of one row; when grad, z becomes weight * scale * (softmax(z) - onehot(target))."""
    cdef Py_ssize_t j
    cdef floating mx = z[0]
    cdef floating zt = z[target]
    cdef double s, loss
    for j in range(1, v):
        if z[j] > mx:
            mx = z[j]
    if floating is float:
        s = cf_exp_shift_sum_f32(z, v, mx)
    else:
        s = cf_exp_shift_sum_f64(z, v, mx)
    loss = log(s) + mx - zt
    if grad:
        for j in range(v):
            z[j] = <floating>(z[j] / s * weight * scale)
        z[target] -= <floating>(weight * scale)
    return loss * weight


def softmax_xent(floating[:, ::1] logits, const int32_t[::1] targets, mask=None,
                 bint grad=True):
    """Mean cross-entropy (nats) over rows whose mask is non-zero.

    logits (N, V); targets (N,) int32 in [0, V); mask (N,) float of the same dtype, or None.
    Returns (loss_sum, count). With grad, logits is overwritten by dLoss/dlogits of the mean
    loss (masked rows get exactly zero). A count of zero gives loss 0 and zero gradients.
    """
    cdef Py_ssize_t i, j, n = logits.shape[0], v = logits.shape[1]
    cdef const floating[::1] m
    cdef bint has_mask = mask is not None
    cdef double total = 0.0, count = 0.0, scale
    if targets.shape[0] != n:
        raise ValueError("softmax_xent: targets must have one entry per logits row")
    if has_mask:
        m = mask
        if m.shape[0] != n:
            raise ValueError("softmax_xent: mask must have one entry per logits row")
        for i in range(n):
            count += m[i]
    else:
        count = n
    scale = 1.0 / count if count > 0 else 0.0
    with nogil:
        for i in prange(n, schedule='static'):
            if has_mask and m[i] == 0:
                if grad:
                    for j in range(v):
                        logits[i, j] = 0
                continue
            total += _row_xent(&logits[i, 0], v, targets[i], m[i] if has_mask else 1.0,
                               grad, scale)
    return total, count


def dropout(floating[::1] x, double p, uint64_t seed):
    """x *= mask / (1 - p) in place, mask[i] = hash(seed, i) >= p: inverted dropout whose mask
    is a pure function of (seed, i), so the backward pass reapplies it with the same seed."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating keep = <floating>(1.0 / (1.0 - p))
    cdef uint64_t threshold = <uint64_t>(p * 18446744073709551616.0) if p < 1 else 0
    if not 0 <= p < 1:
        raise ValueError("dropout: p must be in [0, 1)")
    with nogil:
        for i in prange(n, schedule='static'):
            if cf_hash64(seed, <uint64_t>i) < threshold:
                x[i] = 0
            else:
                x[i] = x[i] * keep


def matvec(const float[:, ::1] w, const float[::1] x, float[::1] out, int threads=1):
    """out = w @ x with the rows split over `threads`: batch-1 generation's product alone,
    without the recurrence around it. bench_sample times it on as many bytes as a model's
    weights to measure the bandwidth floor that batch-1 generation is held to."""
    cdef Py_ssize_t N = w.shape[0], K = w.shape[1], r0, r1
    cdef int t, nt = max(1, threads)
    if x.shape[0] != K or out.shape[0] != N:
        raise ValueError("matvec: w is (N, K), x (K,), out (N,)")
    with nogil:
        for t in prange(nt, num_threads=nt, schedule='static'):
            r0 = unit_bound(N, t, nt)
            r1 = unit_bound(N, t + 1, nt)
            if r1 > r0:
                out[r0:r1] = 0
                cf_matvec_f32(&w[r0, 0], K, &x[0], &out[r0], r1 - r0, K)


def sum_squares(const floating[::1] x):
    """sum(x**2) accumulated in double (for the global gradient norm), the same to the bit on
    any number of threads: fixed blocks of 4096 summed in order, then the blocks in order (so
    the training step may change its thread count with the machine's load)."""
    cdef Py_ssize_t i, b, lo, hi, n = x.shape[0]
    cdef Py_ssize_t nb = (n + 4095) // 4096
    cdef double acc, s = 0.0
    partial = np.zeros(max(nb, 1), dtype=np.float64)
    cdef double[::1] p = partial
    with nogil:
        for b in prange(nb, schedule='static'):
            lo = b * 4096
            hi = lo + 4096 if lo + 4096 < n else n
            acc = 0.0
            for i in range(lo, hi):
                acc = acc + <double>x[i] * x[i]
            p[b] = acc
        for b in range(nb):
            s = s + p[b]
    return s


def all_finite(const floating[::1] x):
    """True when no element is NaN or infinite."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int bad = 0
    with nogil:
        for i in prange(n, schedule='static'):
            if not (fabs(x[i]) <= 1e308):
                bad += 1
    return bad == 0


def scale_(floating[::1] x, double s):
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating f = <floating>s
    with nogil:
        for i in prange(n, schedule='static'):
            x[i] = x[i] * f


def clip_(floating[::1] x, double limit):
    """Clip every element to [-limit, limit] in place."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating lim = <floating>limit
    with nogil:
        for i in prange(n, schedule='static'):
            if x[i] > lim:
                x[i] = lim
            elif x[i] < -lim:
                x[i] = -lim


def global_norm(const floating[::1] x):
    return sqrt(sum_squares(x))
