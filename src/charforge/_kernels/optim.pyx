# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused optimizer updates over the flat parameter buffer: one pass reads the gradient and the
state and writes the parameters, parallel over elements. All arrays 1-D of the same length."""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport sqrt


def _check(*arrays):
    n = arrays[0].shape[0]
    for a in arrays:
        if a.shape[0] != n:
            raise ValueError("optimizer buffers must all have the parameter count")


def sgd_update(floating[::1] p, const floating[::1] g, floating[::1] buf, double lr,
               double momentum, bint nesterov, double weight_decay):
    """buf = momentum * buf + g (+ wd * p);  p -= lr * (g + momentum * buf if nesterov else buf).
    Reference: charforge.reference.sgd_step."""
    _check(p, g, buf)
    cdef Py_ssize_t i, n = p.shape[0]
    cdef double gi, b
    with nogil:
        for i in prange(n, schedule='static'):
            gi = g[i] + weight_decay * p[i]
            b = momentum * buf[i] + gi
            buf[i] = <floating>b
            if nesterov:
                p[i] = <floating>(p[i] - lr * (gi + momentum * b))
            else:
                p[i] = <floating>(p[i] - lr * b)


def adam_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                double lr, double beta1, double beta2, double eps, long step,
                double weight_decay):
    """Adam (Kingma & Ba) with bias correction; weight_decay is decoupled (AdamW) when > 0.
    Reference: charforge.reference.adam_step."""
    _check(p, g, m, v)
    cdef Py_ssize_t i, n = p.shape[0]
    cdef double c1 = 1.0 - beta1 ** step, c2 = 1.0 - beta2 ** step
    cdef double step_size = lr / c1, mi, vi
    cdef double inv_sqrt_c2 = 1.0 / sqrt(c2)
    with nogil:
        for i in prange(n, schedule='static'):
            mi = beta1 * m[i] + (1.0 - beta1) * g[i]
            vi = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i]
            m[i] = <floating>mi
            v[i] = <floating>vi
            p[i] = <floating>(p[i] * (1.0 - lr * weight_decay)
                              - step_size * mi / (sqrt(vi) * inv_sqrt_c2 + eps))


def rmsprop_update(floating[::1] p, const floating[::1] g, floating[::1] sq, double lr,
                   double rho, double eps):
    """sq = rho * sq + (1 - rho) g^2;  p -= lr * g / (sqrt(sq) + eps).
    Reference: charforge.reference.rmsprop_step."""
    _check(p, g, sq)
    cdef Py_ssize_t i, n = p.shape[0]
    cdef double s
    with nogil:
        for i in prange(n, schedule='static'):
            s = rho * sq[i] + (1.0 - rho) * g[i] * g[i]
            sq[i] = <floating>s
            p[i] = <floating>(p[i] - lr * g[i] / (sqrt(s) + eps))


def adagrad_update(floating[::1] p, const floating[::1] g, floating[::1] acc, double lr,
                   double eps):
    """acc += g^2;  p -= lr * g / (sqrt(acc) + eps) (the classic from-scratch RNN's update).
    Reference: charforge.reference.adagrad_step."""
    _check(p, g, acc)
    cdef Py_ssize_t i, n = p.shape[0]
    cdef double a
    with nogil:
        for i in prange(n, schedule='static'):
            a = acc[i] + g[i] * g[i]
            acc[i] = <floating>a
            p[i] = <floating>(p[i] - lr * g[i] / (sqrt(a) + eps))
