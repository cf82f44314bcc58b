# cython: language_level=3
"""The draw: one row of logits through a sampler's knobs (scale = 1/temperature or alpha,
floor, top-k, top-p, greedy) to an index, with a uniform from numpy's generator. Shared by the
generation loop and the stand-alone `sample.categorical`, so the chi-square tests of either
check the code that generates text."""
from cython cimport floating
from libc.math cimport exp
from libc.stdlib cimport qsort
from libc.string cimport memcpy

cdef extern from "cf_math.h" nogil:
    Py_ssize_t cf_sampling_weights_f32(const float* logits, const unsigned char* allowed,
                                       Py_ssize_t v, double scale, double top, double floor_,
                                       double* p, double* total)
    Py_ssize_t cf_sampling_weights_f64(const double* logits, const unsigned char* allowed,
                                       Py_ssize_t v, double scale, double top, double floor_,
                                       double* p, double* total)
    Py_ssize_t cf_masked_argmax_f32(const float* x, const unsigned char* allowed, Py_ssize_t v)
    Py_ssize_t cf_masked_argmax_f64(const double* x, const unsigned char* allowed,
                                    Py_ssize_t v)


cdef inline int cmp_desc(const void* a, const void* b) noexcept nogil:
    cdef double x = (<double*>a)[0], y = (<double*>b)[0]
    return (x < y) - (x > y)


cdef inline Py_ssize_t pick(const floating* logits, Py_ssize_t v, const unsigned char* allowed,
                     double scale, double floor_, int top_k, double top_p, bint greedy,
                     double u, double* p, double* tmp, float* probs) noexcept nogil:
    """Apply the sampler to one row of logits and draw with uniform u in [0, 1)."""
    cdef Py_ssize_t j, best, last = -1, kept = 0
    cdef double mx, total = 0.0, thr, acc
    if floating is float:
        best = cf_masked_argmax_f32(logits, allowed, v)
    else:
        best = cf_masked_argmax_f64(logits, allowed, v)
    if best < 0:
        return -1
    if probs != NULL:                      # the model's own distribution, for visualisation
        for j in range(v):
            tmp[j] = exp(logits[j] - logits[best]) if allowed[j] else 0.0
            total += tmp[j]
        for j in range(v):
            probs[j] = <float>(tmp[j] / total)
        total = 0.0
    if greedy:
        return best
    mx = logits[best]
    # the floor is a fraction of the top probability (whose weight is exactly 1)
    if floating is float:
        kept = cf_sampling_weights_f32(logits, allowed, v, scale, mx, floor_, p, &total)
    else:
        kept = cf_sampling_weights_f64(logits, allowed, v, scale, mx, floor_, p, &total)
    if (top_k > 0 and top_k < kept) or top_p < 1.0:
        memcpy(tmp, p, v * sizeof(double))
        qsort(tmp, v, sizeof(double), cmp_desc)
        thr = 0.0
        if top_k > 0 and top_k < kept:
            thr = tmp[top_k - 1]
        if top_p < 1.0:
            acc = 0.0
            for j in range(v):
                acc += tmp[j]
                if acc >= top_p * total:
                    if tmp[j] > thr:
                        thr = tmp[j]
                    break
        total = 0.0
        for j in range(v):
            if p[j] < thr:
                p[j] = 0.0
            total += p[j]
    u *= total
    acc = 0.0
    for j in range(v):
        if p[j] > 0.0:
            acc += p[j]
            last = j
            if u < acc:
                return j
    return last
