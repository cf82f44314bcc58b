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
from libc.math cimport exp
from libc.stdlib cimport malloc, free, qsort
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t

from ._common cimport gemm_rm, sigmoid_, tanh_, sgemv, dgemv

DEF MAX_LAYERS = 16

cdef enum:
    CELL_RNN = 0
    CELL_GRU = 1
    CELL_LSTM = 2


cdef inline void linear(int B, int N, int K, const floating* x, const floating* w,
                        floating beta, floating* out) noexcept nogil:
    """out (B, N) = x (B, K) @ w (N, K)^T + beta * out: a matrix-vector product at B = 1."""
    cdef char t = b'T'
    cdef int one = 1
    cdef floating alpha = 1.0
    if B == 1:
        if floating is float:
            sgemv(&t, &K, &N, &alpha, <float*>w, &K, <float*>x, &one, &beta, out, &one)
        else:
            dgemv(&t, &K, &N, &alpha, <double*>w, &K, <double*>x, &one, &beta, out, &one)
    else:
        gemm_rm(False, True, B, N, K, alpha, x, K, w, K, beta, out, N)


cdef int cmp_desc(const void* a, const void* b) noexcept nogil:
    cdef double x = (<double*>a)[0], y = (<double*>b)[0]
    return (x < y) - (x > y)


cdef Py_ssize_t pick(const floating* logits, Py_ssize_t v, const unsigned char* allowed,
                     double scale, double floor_, int top_k, double top_p, bint greedy,
                     double u, double* p, double* tmp, float* probs) noexcept nogil:
    """Apply the sampler to one row of logits and draw with uniform u in [0, 1)."""
    cdef Py_ssize_t j, best = -1, last = -1, kept = 0
    cdef double mx = -1e300, total = 0.0, thr, acc
    for j in range(v):
        if allowed[j] and (best < 0 or logits[j] > logits[best]):
            best = j
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
    mx = logits[best] * scale
    for j in range(v):
        if allowed[j]:
            p[j] = exp(logits[j] * scale - mx)
            if p[j] < floor_:              # the floor is a fraction of the top probability
                p[j] = 0.0
            else:
                kept += 1
        else:
            p[j] = 0.0
    if (top_k > 0 and top_k < kept) or top_p < 1.0:
        memcpy(tmp, p, v * sizeof(double))
        qsort(tmp, v, sizeof(double), cmp_desc)
        thr = 0.0
        if top_k > 0 and top_k < kept:
            thr = tmp[top_k - 1]
        if top_p < 1.0:
            for j in range(v):
                total += tmp[j]
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
    total = 0.0
    for j in range(v):
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


cdef void cell_step(int cell, int B, int H, floating* gx, floating* gh, floating* h,
                    floating* c) noexcept nogil:
    """Pointwise update of one layer from its pre-activations (gx: input part incl. bias,
    for GRU gh holds the recurrent part incl. its bias; otherwise gx holds everything)."""
    cdef Py_ssize_t b, j, g
    cdef floating* row
    cdef floating* hr
    cdef floating* grow
    cdef floating n
    if cell == CELL_RNN:
        tanh_(gx, <Py_ssize_t>B * H)
        memcpy(h, gx, <size_t>B * H * sizeof(floating))
    elif cell == CELL_LSTM:
        g = 4 * H
        for b in range(B):
            row = gx + b * g
            sigmoid_(row, 2 * H)
            tanh_(row + 2 * H, H)
            sigmoid_(row + 3 * H, H)
            for j in range(H):
                c[b * H + j] = row[H + j] * c[b * H + j] + row[j] * row[2 * H + j]
                row[j] = c[b * H + j]
            tanh_(row, H)
            for j in range(H):
                h[b * H + j] = row[3 * H + j] * row[j]
    else:
        g = 3 * H
        for b in range(B):
            row = gx + b * g
            grow = gh + b * g
            for j in range(2 * H):
                row[j] = row[j] + grow[j]
            sigmoid_(row, 2 * H)
            for j in range(H):
                row[2 * H + j] = row[2 * H + j] + row[j] * grow[2 * H + j]
            tanh_(row + 2 * H, H)
            hr = h + b * H
            for j in range(H):
                n = row[2 * H + j]
                hr[j] = n + row[H + j] * (hr[j] - n)


def run(int cell, list w_ih, list w_hh, list b_in, list b_rec, floating[:, ::1] table,
        floating[:, ::1] w_out, floating[::1] b_out, list h, list c,
        int32_t[::1] cur, const int32_t[:, ::1] forced, const double[:, ::1] uniforms,
        int64_t[::1] used, int64_t[::1] remaining, unsigned char[::1] done,
        int32_t[:, ::1] out, const unsigned char[::1] allowed, int eos,
        double scale, double floor_, int top_k, double top_p, bint greedy, bint external,
        floating[:, ::1] gx, floating[:, ::1] gh, floating[:, ::1] logits,
        probs_out=None, hidden_out=None):
    """Run up to forced.shape[1] steps. Returns the number of steps run (fewer when every row
    is done). With external=True one step runs and no token is drawn: the caller picks from
    `logits` (a plugin sampler) and writes the pick into cur.

    w_ih[l], b_in[l]: input weights (gH, H) and input bias (gH,) of layers 1..L-1 (index 0
    unused); w_hh[l], b_rec[l]: recurrent weights and (GRU only) recurrent bias. For rnn/lstm
    b_in holds the one bias. out (B, steps): the token after each step (-1 once done).
    probs_out (B, steps, V) float32 and hidden_out (B, steps, L, H) float32 are optional.
    """
    cdef int L = len(w_hh), B = cur.shape[0], V = w_out.shape[0], H = w_out.shape[1]
    cdef int G = table.shape[1], steps = forced.shape[1], l, t, b, ran = 0
    cdef Py_ssize_t tok
    cdef floating* pw_ih[MAX_LAYERS]
    cdef floating* pw_hh[MAX_LAYERS]
    cdef floating* pb_in[MAX_LAYERS]
    cdef floating* pb_rec[MAX_LAYERS]
    cdef floating* ph[MAX_LAYERS]
    cdef floating* pc[MAX_LAYERS]
    cdef floating[:, ::1] m2
    cdef floating[::1] m1
    cdef float[:, :, ::1] pr
    cdef float[:, :, :, ::1] hid
    cdef float* prow
    cdef bint want_probs = probs_out is not None, want_hidden = hidden_out is not None
    cdef bint all_done
    if L > MAX_LAYERS:
        raise ValueError(f"generation supports at most {MAX_LAYERS} layers")
    if allowed.shape[0] != V or logits.shape[0] != B or out.shape[0] != B:
        raise ValueError("generate.run: inconsistent shapes")
    for l in range(L):
        m2 = w_hh[l]; pw_hh[l] = &m2[0, 0]
        m2 = h[l]; ph[l] = &m2[0, 0]
        if cell == CELL_LSTM:
            m2 = c[l]; pc[l] = &m2[0, 0]
        else:
            pc[l] = NULL
        if l > 0:
            m2 = w_ih[l]; pw_ih[l] = &m2[0, 0]
            m1 = b_in[l]; pb_in[l] = &m1[0]
        if cell == CELL_GRU:
            m1 = b_rec[l]; pb_rec[l] = &m1[0]
    if want_probs:
        pr = probs_out
    if want_hidden:
        hid = hidden_out
    cdef double* p = <double*>malloc(2 * V * sizeof(double))
    if p == NULL:
        raise MemoryError()
    cdef double* tmp = p + V
    with nogil:
        for t in range(steps):
            all_done = True
            for b in range(B):
                if not done[b]:
                    all_done = False
            if all_done:
                break
            ran += 1
            # layer 0: the table row, then the recurrent product
            for b in range(B):
                memcpy(&gx[b, 0], &table[cur[b], 0], G * sizeof(floating))
            for l in range(L):
                if l > 0:
                    for b in range(B):
                        memcpy(&gx[b, 0], pb_in[l], G * sizeof(floating))
                    linear(B, G, H, ph[l - 1], pw_ih[l], 1.0, &gx[0, 0])
                if cell == CELL_GRU:
                    for b in range(B):
                        memcpy(&gh[b, 0], pb_rec[l], G * sizeof(floating))
                    linear(B, G, H, ph[l], pw_hh[l], 1.0, &gh[0, 0])
                else:
                    linear(B, G, H, ph[l], pw_hh[l], 1.0, &gx[0, 0])
                cell_step(cell, B, H, &gx[0, 0], &gh[0, 0], ph[l], pc[l])
            for b in range(B):
                memcpy(&logits[b, 0], &b_out[0], V * sizeof(floating))
            linear(B, V, H, ph[L - 1], &w_out[0, 0], 1.0, &logits[0, 0])
            if want_hidden:
                for b in range(B):
                    for l in range(L):
                        for tok in range(H):
                            hid[b, t, l, tok] = <float>ph[l][b * H + tok]
            if external:
                for b in range(B):
                    out[b, t] = -1
                break
            for b in range(B):
                if done[b]:
                    out[b, t] = -1
                    continue
                prow = &pr[b, t, 0] if want_probs else NULL
                if forced[b, t] >= 0:
                    tok = forced[b, t]
                    if prow != NULL:
                        pick(&logits[b, 0], V, &allowed[0], 1.0, 0.0, 0, 1.0, True, 0.0, p,
                             tmp, prow)
                else:
                    tok = pick(&logits[b, 0], V, &allowed[0], scale, floor_, top_k, top_p,
                               greedy, uniforms[b, used[b]], p, tmp, prow)
                    used[b] += 1
                    remaining[b] -= 1
                    if remaining[b] <= 0 or tok == eos or tok < 0:
                        done[b] = 1
                out[b, t] = <int32_t>tok
                if tok >= 0:
                    cur[b] = <int32_t>tok
    free(p)
    return ran
