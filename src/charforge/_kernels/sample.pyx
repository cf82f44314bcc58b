# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Categorical sampling of many rows at once: softmax with temperature and an inverse-CDF draw,
through the same `pick` the generation loop uses.

The uniforms come from numpy's Generator (seeded by the caller), so the same seed gives the
same draws on every run."""
from cython.parallel cimport prange
from cython cimport floating
from libc.stdint cimport int64_t

from ._draw cimport pick


def categorical(const floating[:, ::1] logits, const double[::1] uniforms, double temperature,
                allowed=None):
    """One draw per row of logits (N, V) from softmax(logits / temperature), using uniforms (N,)
    in [0, 1). allowed: optional (V,) uint8 mask of drawable entries. Returns int64 (N,).
    Reference: charforge.reference.temperature_probabilities and draw.
    """
    import numpy as np
    cdef Py_ssize_t i, n = logits.shape[0], v = logits.shape[1]
    if uniforms.shape[0] != n:
        raise ValueError("categorical: need one uniform per row")
    if not temperature > 0:
        raise ValueError("categorical: temperature must be > 0")
    allow_arr = np.ones(v, np.uint8) if allowed is None else \
        (np.asarray(allowed) != 0).astype(np.uint8)      # the draw expects exactly 0 or 1
    if allow_arr.shape[0] != v:
        raise ValueError("categorical: allowed must have one entry per column")
    cdef const unsigned char[::1] allow = allow_arr
    out = np.empty(n, dtype=np.int64)
    work = np.empty((n, 2 * v), dtype=np.float64)
    cdef int64_t[::1] o = out
    cdef double[:, ::1] w = work
    cdef double inv = 1.0 / temperature
    with nogil:
        for i in prange(n, schedule='static'):
            o[i] = pick(&logits[i, 0], v, &allow[0], inv, 0.0, 0, 1.0, False, uniforms[i],
                        &w[i, 0], &w[i, v], NULL)
    return out
