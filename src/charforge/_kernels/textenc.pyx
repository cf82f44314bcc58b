# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""UTF-8 bytes -> character ids in one pass, for corpora larger than memory.

Decoding, CRLF normalisation and the vocabulary lookup happen together over a chunk of raw
bytes (no Python str, no UTF-32 copy). A chunk may end inside a multi-byte character: the
functions report how many bytes they consumed and the caller carries the rest over. `crlf`
applies universal newlines: "\\r\\n" and a lone "\\r" both become "\\n"; `state[0]` carries
"the previous byte was \\r" across chunks.
"""
from libc.stdint cimport int32_t, uint32_t, int64_t

cdef enum:
    NEED_MORE = -1
    INVALID = -2


cdef inline int decode_one(const unsigned char* p, Py_ssize_t avail, uint32_t* cp) noexcept nogil:
    """Length of the UTF-8 sequence at p (its code point in cp), NEED_MORE or INVALID."""
    cdef unsigned char b0 = p[0]
    cdef uint32_t c
    cdef int n, k
    if b0 < 0x80:
        cp[0] = b0
        return 1
    if b0 < 0xC2:
        return INVALID                     # continuation byte or overlong 2-byte lead
    elif b0 < 0xE0:
        n, c = 2, b0 & 0x1F
    elif b0 < 0xF0:
        n, c = 3, b0 & 0x0F
    elif b0 < 0xF5:
        n, c = 4, b0 & 0x07
    else:
        return INVALID
    for k in range(1, n):
        if k >= avail:
            return NEED_MORE
        if (p[k] & 0xC0) != 0x80:
            return INVALID
        c = (c << 6) | (p[k] & 0x3F)
    if (n == 3 and (c < 0x800 or (0xD800 <= c <= 0xDFFF))) or (n == 4 and (c < 0x10000 or
                                                                             c > 0x10FFFF)):
        return INVALID
    cp[0] = c
    return n


cdef inline int next_char(const unsigned char* buf, Py_ssize_t n, Py_ssize_t* i, bint crlf,
                          int64_t* state, uint32_t* cp) noexcept nogil:
    """Decode the character at buf[i[0]] and advance i. 1: a character is in cp; 0: it was
    the LF of a CRLF pair (dropped); NEED_MORE / INVALID otherwise."""
    cdef int r = decode_one(&buf[i[0]], n - i[0], cp)
    if r < 0:
        return r
    i[0] += r
    if crlf:
        if cp[0] == 13:
            cp[0] = 10
            state[0] = 1
        elif cp[0] == 10 and state[0]:
            state[0] = 0
            return 0
        else:
            state[0] = 0
    return 1


def scan(const unsigned char[::1] buf, unsigned char[::1] seen, bint crlf, bint final,
         int64_t[::1] state):
    """Mark every code point in buf in `seen` (0x110000 flags). Returns (bytes consumed,
    characters counted); raises ValueError(offset) on invalid UTF-8."""
    cdef Py_ssize_t i = 0, n = buf.shape[0]
    cdef int64_t count = 0
    cdef uint32_t cp
    cdef int r = 0
    with nogil:
        while i < n:
            r = next_char(&buf[0], n, &i, crlf, &state[0], &cp)
            if r < 0:
                break
            if r == 0:
                continue
            seen[cp] = 1
            count += 1
    if r == INVALID or (r == NEED_MORE and final):
        raise ValueError(i)
    return i, count


def encode(const unsigned char[::1] buf, const int32_t[::1] lut, out, bint crlf, bint final,
           int64_t[::1] state, int32_t unk):
    """Ids of the characters in buf written to out (uint8, uint16 or uint32, long enough). Returns
    (bytes consumed, ids written); raises KeyError(code point) for a character the lookup
    lacks when unk < 0, ValueError(offset) on invalid UTF-8."""
    cdef Py_ssize_t i = 0, n = buf.shape[0], w = 0
    cdef uint32_t cp
    cdef int r = 0
    cdef int32_t v
    cdef int64_t missing = -1
    cdef unsigned char[::1] o8
    cdef unsigned short[::1] o16
    cdef uint32_t[::1] o32
    cdef int width = out.dtype.itemsize
    if width == 4:
        o32 = out
    elif width == 2:
        o16 = out
    else:
        o8 = out
    with nogil:
        while i < n:
            r = next_char(&buf[0], n, &i, crlf, &state[0], &cp)
            if r < 0:
                break
            if r == 0:
                continue
            v = lut[cp]
            if v < 0:
                if unk < 0:
                    missing = cp
                    break
                v = unk
            if width == 4:
                o32[w] = <uint32_t>v
            elif width == 2:
                o16[w] = <unsigned short>v
            else:
                o8[w] = <unsigned char>v
            w += 1
    if missing >= 0:
        raise KeyError(missing)
    if r == INVALID or (r == NEED_MORE and final):
        raise ValueError(i)
    return i, w
