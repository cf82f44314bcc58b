# cython: language_level=3
"""Shared declarations: the BLAS wrapper (row-major on top of Fortran BLAS) and the C helpers."""
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv
from libc.stdint cimport uint64_t

cdef extern from "cf_math.h" nogil:
    int cf_openmp_enabled()
    void cf_set_num_threads(int n)
    int cf_get_max_threads()
    void cf_barrier()
    float cf_expf(float x)
    void cf_sigmoid_f32(float* x, Py_ssize_t n)
    void cf_tanh_f32(float* x, Py_ssize_t n)
    void cf_tanh_to_f32(const float* x, float* y, Py_ssize_t n)
    void cf_sigmoid_f64(double* x, Py_ssize_t n)
    void cf_tanh_f64(double* x, Py_ssize_t n)
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


cdef inline void sigmoid_(floating* x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cf_sigmoid_f32(x, n)
    else:
        cf_sigmoid_f64(x, n)


cdef inline void tanh_(floating* x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cf_tanh_f32(x, n)
    else:
        cf_tanh_f64(x, n)


cdef inline void tanh_to(const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cf_tanh_to_f32(x, y, n)
    else:
        cf_tanh_to_f64(x, y, n)


cdef inline void colsum_add(const floating* x, Py_ssize_t rows, Py_ssize_t cols,
                            floating* out) noexcept nogil:
    """out[j] += sum_r x[r, j]: accumulated row by row so the inner loop vectorises."""
    cdef Py_ssize_t r, j
    for r in range(rows):
        for j in range(cols):
            out[j] += x[r * cols + j]


cdef inline Py_ssize_t unit_bound(Py_ssize_t hidden, Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """Start of thread k's share of the hidden units (multiples of 16 keep rows aligned)."""
    if k >= n:
        return hidden
    return ((hidden * k) // n) & ~(<Py_ssize_t>15)


cdef inline int team_size(Py_ssize_t hidden, int threads) noexcept nogil:
    """Threads worth using for a layer: each needs at least 16 hidden units."""
    cdef Py_ssize_t most = hidden // 16
    if most < 1:
        most = 1
    return <int>(threads if threads < most else most)
