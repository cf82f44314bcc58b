# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Categorical sampling: softmax with temperature and an inverse-CDF draw, one row per sample.

The uniforms come from numpy's Generator (seeded by the caller), so the same seed gives the
same text on every run and every platform with the same arithmetic."""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport exp
from libc.stdint cimport int64_t


cdef Py_ssize_t draw_row(const floating* logits, Py_ssize_t v, double inv_temp,
                         const unsigned char* allowed, double u, double* work) noexcept nogil:
    """Index drawn from softmax(logits * inv_temp) restricted to allowed entries; work is (v,)."""
    cdef Py_ssize_t j, last = -1
    cdef double mx = -1e300, s = 0.0, acc = 0.0, x
    for j in range(v):
        if allowed == NULL or allowed[j]:
            x = logits[j] * inv_temp
            if x > mx:
                mx = x
    for j in range(v):
        if allowed == NULL or allowed[j]:
            work[j] = exp(logits[j] * inv_temp - mx)
            s += work[j]
            last = j
        else:
            work[j] = 0.0
    u = u * s
    for j in range(v):
        acc += work[j]
        if work[j] > 0 and u < acc:
            return j
    return last


def categorical(const floating[:, ::1] logits, const double[::1] uniforms, double temperature,
                allowed=None):
    """One draw per row of logits (N, V) from softmax(logits / temperature), using uniforms (N,)
    in [0, 1). allowed: optional (V,) uint8 mask of drawable entries. Returns int64 (N,)."""
    import numpy as np
    cdef Py_ssize_t i, n = logits.shape[0], v = logits.shape[1]
    cdef const unsigned char[::1] allow
    cdef const unsigned char* ap = NULL
    if uniforms.shape[0] != n:
        raise ValueError("categorical: need one uniform per row")
    if not temperature > 0:
        raise ValueError("categorical: temperature must be > 0")
    if allowed is not None:
        allow = allowed
        if allow.shape[0] != v:
            raise ValueError("categorical: allowed must have one entry per column")
        ap = &allow[0]
    out = np.empty(n, dtype=np.int64)
    work = np.empty((n, v), dtype=np.float64)
    cdef int64_t[::1] o = out
    cdef double[:, ::1] w = work
    cdef double inv = 1.0 / temperature
    with nogil:
        for i in prange(n, schedule='static'):
            o[i] = draw_row(&logits[i, 0], v, inv, ap, uniforms[i], &w[i, 0])
    return out
