// exactrelu._checkcore: the independent checker's hot path, compiled (exactrelu/check.py,
// _check_compiled, decides when it applies and builds its input).
//
// It shares no code with the certifier's compiled core (exactrelu/_core.cpp): everything here is
// re-derived from the network's exact parameters (as check.py's _ChainRunner gives them: integer
// matrices over one denominator per affine stretch, each state's slopes and constants) and from
// the certificate's columns (exactrelu/_columns.py), a chunk of regions at a time: Checker's
// regions() takes any chunk's columns (its region 0 being the certificate's region `base`), in
// order, so a sharded certificate's shards can go through it one by one.
//
// Scope: chain programs "affine, (plain elementwise op, affine)*" on bounded domains of 1 to 8
// dimensions (check.py passes those up to check._VOLUME_MAX_DIM) and on unbounded domains (all
// of R^d, a Polyhedron; check._CLOSURE_DIMS: 2 and 3 dimensions) whose regions are pointed (no
// lines: a region with lines has no columns here). For every region of a chunk
// it proves what check.py's region pass proves there: the states at the witness are the pattern
// and the witness is strictly inside the domain and every cell constraint; the output map is
// the exact map of the pattern; each listed vertex satisfies every constraint and is tight on d
// independent ones; each listed ray is a recession direction; the listed facets are exactly the
// true facets (by tightness at the vertices and rays, as check._true_facets /
// check._facet_error); bounded: the volume (1-D: length, 2-D: area of
// the hull of the vertices, d >= 3: the pulling triangulation of check._hull_lower_bound)
// equals the stated one (where one is stated: required up to 3-D), and sums them; unbounded:
// no volume is stated, the vertices and rays are all the region's (walk, as check._walk) and
// the cell across each of its facets is recorded for the closure (across_facet).
// finish() then proves completeness on unbounded domains (every cell across a facet certified:
// check._closure, combinatorially), the global vertex list (distinct, each used), the adjacent
// pairs (from the proven facets: 1-D and 2-D as check._FacetTable, d >= 3 as check._Adjacency
// for pointed facets, ends along a coordinate infinite where a ray of the facet goes that way,
// grouped by hyperplane, first op, prefix and, where the op's cells are those of its
// sign vectors, the signs (see finish), then decided in a group: in 3-D by the extents, a
// shared triangle and the separating facets; above, by the exact LP where these do not, which
// check.py's callable runs, as the Python pass does) and returns what check.py finishes with
// (pattern hashes for distinctness, the volume sum, the adjacent pairs whose output maps hash
// equal).
//
// Any claim that does not hold, and anything outside the scope, ends the pass with a short reason
// (a str); check.py then runs its Python path, which names the failing field. So a verdict
// "valid" here is a proof, and a rejection is re-derived in Python for its message.
//
// Exactness. Every decision is exact. Integers and rationals are GMP's, except the prefix maps,
// held in fixed-width integers (K limbs, arithmetic modulo 2^(64 K)) where a bound on every map
// of their level proves each entry exact (level_limbs, build_fixed, cascade), with 128-bit sums
// under a bound of their own (cascade). Floats only filter signs of a row at a point, along a
// direction (a ray, an edge) or on a box of points (Rows::sign, Rows::dir_sign,
// Rows::positive_on: a rigorous error bound decides, otherwise exact integers) and order
// vertices for sorting (mpq_get_d truncates, which is monotone: a strict inequality of floats
// is one of the rationals, ties are compared exactly). Edge directions, their cone tests and
// unbounded ends (a ray's exact sign along a coordinate) are exact integers; the closure
// compares packed states exactly (a hash set only finds candidates).

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <gmp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <new>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace {

struct Int {
    mpz_t v;
    Int() { mpz_init(v); }
    Int(const Int& o) { mpz_init_set(v, o.v); }
    Int(Int&& o) noexcept { mpz_init(v); mpz_swap(v, o.v); }
    Int& operator=(const Int& o) { if (this != &o) mpz_set(v, o.v); return *this; }
    Int& operator=(Int&& o) noexcept { mpz_swap(v, o.v); return *this; }
    ~Int() { mpz_clear(v); }
};

struct Rat {
    mpq_t v;
    Rat() { mpq_init(v); }
    Rat(const Rat& o) { mpq_init(v); mpq_set(v, o.v); }
    Rat(Rat&& o) noexcept { mpq_init(v); mpq_swap(v, o.v); }
    Rat& operator=(const Rat& o) { if (this != &o) mpq_set(v, o.v); return *this; }
    Rat& operator=(Rat&& o) noexcept { mpq_swap(v, o.v); return *this; }
    ~Rat() { mpq_clear(v); }
};

// A claim that does not hold, or input outside this path's scope: the pass stops with `why`.
struct Reject {
    std::string why;
};

struct PyError {};  // a Python exception is set

[[noreturn]] void reject(const std::string& why) { throw Reject{why}; }

// --------------------------------------------------------------------------- Python -> GMP

void get_int(PyObject* o, mpz_t out) {
    if (!PyLong_Check(o)) reject("a column holds a value that is not an int");
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (!overflow) {
        if (x == -1 && PyErr_Occurred()) throw PyError{};
        mpz_set_si(out, static_cast<long>(x));
        return;
    }
    size_t bits = _PyLong_NumBits(o);
    if (bits == static_cast<size_t>(-1) && PyErr_Occurred()) throw PyError{};
    size_t n = bits / 8 + 1;
    std::vector<unsigned char> buf(n);
#if PY_VERSION_HEX >= 0x030D0000
    int rc = _PyLong_AsByteArray(reinterpret_cast<PyLongObject*>(o), buf.data(), n, 1, 1, 1);
#else
    int rc = _PyLong_AsByteArray(reinterpret_cast<PyLongObject*>(o), buf.data(), n, 1, 1);
#endif
    if (rc < 0) throw PyError{};
    bool neg = buf[n - 1] & 0x80;
    if (neg) {  // two's complement: |x| = ~buf + 1
        unsigned carry = 1;
        for (size_t i = 0; i < n; ++i) {
            unsigned v = static_cast<unsigned char>(~buf[i]) + carry;
            buf[i] = static_cast<unsigned char>(v);
            carry = v >> 8;
        }
    }
    mpz_import(out, n, -1, 1, 0, 0, buf.data());
    if (neg) mpz_neg(out, out);
}

PyObject* new_int(const mpz_t z) {
    std::string s(mpz_sizeinbase(z, 16) + 2, '\0');
    mpz_get_str(&s[0], 16, z);
    return PyLong_FromString(s.c_str(), nullptr, 16);
}

long long get_ll(PyObject* o) {
    long long x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred()) throw PyError{};
    return x;
}

// A list of Python ints (a Rationals column's num or den).
struct IntList {
    PyObject* list = nullptr;
    Py_ssize_t n = 0;
    void set(PyObject* o) {
        if (!PyList_Check(o)) reject("a rationals column is not a list");
        list = o;
        n = PyList_GET_SIZE(o);
    }
    void get(Py_ssize_t k, mpz_t out) const {
        if (k < 0 || k >= n) reject("a rationals column is too short");
        get_int(PyList_GET_ITEM(list, k), out);
    }
};

// The rational num[k] / den[k] of a Rationals column; the denominator must be positive.
void get_rat(const IntList& num, const IntList& den, Py_ssize_t k, mpq_t out) {
    num.get(k, mpq_numref(out));
    den.get(k, mpq_denref(out));
    if (mpz_sgn(mpq_denref(out)) <= 0) reject("a rational with a denominator <= 0");
    mpq_canonicalize(out);
}

// A read-only buffer of int64 (an index column) or bytes (a state table).
struct Buf {
    Py_buffer view{};
    bool held = false;
    void set(PyObject* o, Py_ssize_t itemsize) {
        if (PyObject_GetBuffer(o, &view, PyBUF_C_CONTIGUOUS) < 0) throw PyError{};
        held = true;
        if (view.itemsize != itemsize && !(itemsize == 1 && view.len == 0))
            reject("a column has the wrong item size");
    }
    Buf() = default;
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    ~Buf() { if (held) PyBuffer_Release(&view); }
    Py_ssize_t size() const { return view.len / (view.itemsize ? view.itemsize : 1); }
    int64_t at(Py_ssize_t k) const {
        if (k < 0 || k >= size()) reject("an index column is too short");
        return static_cast<const int64_t*>(view.buf)[k];
    }
    const unsigned char* bytes() const { return static_cast<const unsigned char*>(view.buf); }
};

PyObject* item(PyObject* tup, Py_ssize_t k) {
    if (!PyTuple_Check(tup) || k >= PyTuple_GET_SIZE(tup)) reject("bad argument tuple");
    return PyTuple_GET_ITEM(tup, k);
}

// --------------------------------------------------------------------------- hashing

inline uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
}

uint64_t hash_bytes(const int8_t* p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 0x100000001b3ULL;
    return mix(h, n);
}

uint64_t hash_mpz(uint64_t h, const mpz_t z) {
    h = mix(h, static_cast<uint64_t>(mpz_sgn(z)) + 7);
    size_t n = mpz_size(z);
    for (size_t i = 0; i < n; ++i) h = mix(h, mpz_getlimbn(z, static_cast<mp_size_t>(i)));
    return h;
}

// --------------------------------------------------------------------------- fixed width
//
// A map's entries as K-limb two's complement integers (1 <= K <= KMAX limbs of 64 bits), with
// arithmetic modulo 2^(64 K). Reduction modulo 2^(64 K) is a ring homomorphism of the integers,
// so a sum of products computed this way, whatever its intermediate values, is congruent to the
// exact integer, and equals it when the exact integer lies in [-2^(64 K - 1), 2^(64 K - 1)):
// every level's K comes from a bound on every map of that level (level_bounds), so each entry is
// exact as stored.

constexpr int KMAX = 8;
constexpr int DMAX = 8;  // input dimensions of this path (Checker_init)
static_assert(sizeof(mp_limb_t) == sizeof(uint64_t) && GMP_NAIL_BITS == 0, "64-bit GMP limbs");

typedef unsigned __int128 u128;

inline bool fw_neg(const uint64_t* x, int K) { return x[K - 1] >> 63; }

inline void fw_negate(uint64_t* x, int K) {  // x = -x modulo 2^(64 K)
    uint64_t carry = 1;
    for (int i = 0; i < K; ++i) {
        u128 t = static_cast<u128>(~x[i]) + carry;
        x[i] = static_cast<uint64_t>(t);
        carry = static_cast<uint64_t>(t >> 64);
    }
}

// z modulo 2^(64 K)
void fw_set(const mpz_t z, uint64_t* x, int K) {
    size_t n = mpz_size(z);
    for (int i = 0; i < K; ++i)
        x[i] = static_cast<size_t>(i) < n ? mpz_getlimbn(z, static_cast<mp_size_t>(i)) : 0;
    if (mpz_sgn(z) < 0) fw_negate(x, K);
}

// the integer in [-2^(64 K - 1), 2^(64 K - 1)) that x holds
void fw_get(const uint64_t* x, int K, mpz_t out) {
    uint64_t a[KMAX];
    std::memcpy(a, x, sizeof(uint64_t) * static_cast<size_t>(K));
    bool neg = fw_neg(a, K);
    if (neg) fw_negate(a, K);
    mpz_import(out, static_cast<size_t>(K), -1, sizeof(uint64_t), 0, 0, a);
    if (neg) mpz_neg(out, out);
}

// x (Kx limbs) as K limbs: sign-extended, or reduced modulo 2^(64 K)
inline void fw_resize(const uint64_t* x, int Kx, uint64_t* out, int K) {
    uint64_t ext = fw_neg(x, Kx) ? ~uint64_t{0} : 0;
    for (int i = 0; i < K; ++i) out[i] = i < Kx ? x[i] : ext;
}

inline bool fw_zero(const uint64_t* x, int K) {
    for (int i = 0; i < K; ++i)
        if (x[i]) return false;
    return true;
}

// acc += a * x modulo 2^(64 K), for n consecutive K-limb entries (a signed 64-bit integer).
// With ua = a modulo 2^64 (a + 2^64 when a < 0), a * x = ua * x - [a < 0] 2^64 x.
template <int K>
inline void fw_addmul(uint64_t* acc, int64_t a, const uint64_t* x, int n) {
    for (int e = 0; e < n; ++e, acc += K, x += K) {
        if constexpr (K == 1) {
            acc[0] += static_cast<uint64_t>(a) * x[0];
        } else if constexpr (K == 2) {
            u128 v, s;
            std::memcpy(&v, x, sizeof v);
            std::memcpy(&s, acc, sizeof s);
            s += static_cast<u128>(static_cast<__int128>(a)) * v;
            std::memcpy(acc, &s, sizeof s);
        } else {
            const uint64_t ua = static_cast<uint64_t>(a);
            uint64_t hi = 0, c = 0;
            for (int i = 0; i < K; ++i) {
                u128 p = static_cast<u128>(ua) * x[i] + hi;  // < 2^128
                hi = static_cast<uint64_t>(p >> 64);
                u128 t = static_cast<u128>(acc[i]) + static_cast<uint64_t>(p) + c;
                acc[i] = static_cast<uint64_t>(t);
                c = static_cast<uint64_t>(t >> 64);
            }
            const uint64_t mask = static_cast<uint64_t>(a >> 63);  // all ones when a < 0
            uint64_t b = 0;
            for (int i = 1; i < K; ++i) {
                u128 t = static_cast<u128>(acc[i]) - (x[i - 1] & mask) - b;
                acc[i] = static_cast<uint64_t>(t);
                b = static_cast<uint64_t>(t >> 64) & 1;
            }
        }
    }
}

// acc += v * x modulo 2^(64 K) (v and x K-limb entries; the product of their residues)
inline void fw_addmul_wide(uint64_t* acc, const uint64_t* v, const uint64_t* x, int K) {
    for (int i = 0; i < K; ++i) {  // acc += v_i x 2^(64 i)
        uint64_t hi = 0, c = 0;
        for (int k = 0; i + k < K; ++k) {
            u128 p = static_cast<u128>(v[i]) * x[k] + hi;
            hi = static_cast<uint64_t>(p >> 64);
            u128 t = static_cast<u128>(acc[i + k]) + static_cast<uint64_t>(p) + c;
            acc[i + k] = static_cast<uint64_t>(t);
            c = static_cast<uint64_t>(t >> 64);
        }
    }
}

// The float of entry x (K limbs, non-zero): x = mant * 2^e with 0.5 <= |mant| < 1, mant
// truncated to 53 bits (as mpz_get_d_2exp).
double fw_get_d_2exp(long* e, const uint64_t* x, int K) {
    uint64_t a[KMAX];
    std::memcpy(a, x, sizeof(uint64_t) * static_cast<size_t>(K));
    bool neg = fw_neg(a, K);
    if (neg) fw_negate(a, K);
    int t = K - 1;
    while (t > 0 && !a[t]) --t;
    int lz = __builtin_clzll(a[t]);  // a[t] != 0: x != 0
    uint64_t top = a[t] << lz;
    if (lz && t) top |= a[t - 1] >> (64 - lz);
    top &= ~uint64_t{0x7ff};  // 53 bits: the conversion below is exact
    *e = 64L * t + 64 - lz;
    double mant = static_cast<double>(top) * 0x1p-64;  // exact
    return neg ? -mant : mant;
}

// --------------------------------------------------------------------------- vertex sets

// A set of a region's vertex columns (bit k: column k), of any size: the vertices where a
// constraint is tight, a face's vertex set.
struct Bits {
    std::vector<uint64_t> w;
    Bits() = default;
    explicit Bits(size_t n) : w((n + 63) / 64, 0) {}
    static Bits all(size_t n) {
        Bits b(n);
        for (size_t k = 0; k < n; ++k) b.set(k);
        return b;
    }
    void set(size_t k) { w[k >> 6] |= 1ULL << (k & 63); }
    bool test(size_t k) const { return w[k >> 6] >> (k & 63) & 1; }
    int count() const {
        int s = 0;
        for (uint64_t x : w) s += __builtin_popcountll(x);
        return s;
    }
    bool any() const {
        for (uint64_t x : w)
            if (x) return true;
        return false;
    }
    bool within(const Bits& o) const {  // a subset of o
        for (size_t i = 0; i < w.size(); ++i)
            if (w[i] & ~o.w[i]) return false;
        return true;
    }
    bool meets(const Bits& o) const {
        for (size_t i = 0; i < w.size(); ++i)
            if (w[i] & o.w[i]) return true;
        return false;
    }
    Bits operator&(const Bits& o) const {
        Bits b;
        b.w.resize(w.size());
        for (size_t i = 0; i < w.size(); ++i) b.w[i] = w[i] & o.w[i];
        return b;
    }
    int lowest() const {  // the least member (-1: empty)
        for (size_t i = 0; i < w.size(); ++i)
            if (w[i]) return static_cast<int>(i * 64) + __builtin_ctzll(w[i]);
        return -1;
    }
    bool operator==(const Bits& o) const { return w == o.w; }
    bool operator<(const Bits& o) const { return w < o.w; }
};

struct BitsHash {
    size_t operator()(const Bits& b) const {
        uint64_t h = b.w.size();
        for (uint64_t x : b.w) h = mix(h, x);
        return static_cast<size_t>(h);
    }
};

// Larger sets first, then by their words: the order in which maximal sets are picked.
bool larger_first(const Bits& a, const Bits& b) {
    int pa = a.count(), pb = b.count();
    return pa != pb ? pa > pb : a < b;
}

// --------------------------------------------------------------------------- exact rank

// Fraction-free Gaussian elimination (Bareiss) of the r x k integer matrix `a` (row-major), in
// place: its rank. Every entry after a step is a minor of the input (the pivot rows and columns
// so far, plus its own), so each division is exact; when r == k and the rank is k, `det` (if
// given) is the determinant.
int bareiss(std::vector<Int>& a, int r, int k, mpz_ptr det = nullptr) {
    thread_local Int prev, t;
    mpz_set_ui(prev.v, 1);
    int rank = 0, swaps = 0;
    for (int col = 0; col < k && rank < r; ++col) {
        int piv = -1;
        for (int i = rank; i < r && piv < 0; ++i)
            if (mpz_sgn(a[static_cast<size_t>(i) * k + col].v)) piv = i;
        if (piv < 0) continue;
        if (piv != rank) {
            for (int e = 0; e < k; ++e)
                mpz_swap(a[static_cast<size_t>(piv) * k + e].v, a[static_cast<size_t>(rank) * k + e].v);
            ++swaps;
        }
        const Int* p = &a[static_cast<size_t>(rank) * k];
        for (int i = rank + 1; i < r; ++i) {
            Int* q = &a[static_cast<size_t>(i) * k];
            for (int e = col + 1; e < k; ++e) {
                mpz_mul(t.v, q[e].v, p[col].v);
                mpz_submul(t.v, q[col].v, p[e].v);
                mpz_divexact(q[e].v, t.v, prev.v);
            }
            mpz_set_ui(q[col].v, 0);
        }
        mpz_set(prev.v, p[col].v);
        ++rank;
    }
    if (det) {
        if (r == k && rank == k) {
            mpz_set(det, prev.v);
            if (swaps & 1) mpz_neg(det, det);
        } else {
            mpz_set_ui(det, 0);
        }
    }
    return rank;
}

// --------------------------------------------------------------------------- points, filter

// A point as homogeneous integers (X_1 .. X_d, D), D > 0, and its coordinates as floats
// (mpq_get_d: truncated, monotone); `filt`: every coordinate is 0 or of magnitude in
// [2^-1000, 2^1000], so that the filter's bound below holds for it.
struct Point {
    std::vector<Int> h;
    std::vector<double> f;
    bool filt = true;
};

void make_point(std::vector<Rat>& q, Point& p) {
    size_t d = q.size();
    p.h.assign(d + 1, Int());
    p.f.assign(d, 0.0);
    p.filt = true;
    mpz_set_ui(p.h[d].v, 1);
    for (size_t k = 0; k < d; ++k) mpz_lcm(p.h[d].v, p.h[d].v, mpq_denref(q[k].v));
    for (size_t k = 0; k < d; ++k) {
        mpz_divexact(p.h[k].v, p.h[d].v, mpq_denref(q[k].v));
        mpz_mul(p.h[k].v, p.h[k].v, mpq_numref(q[k].v));
        p.f[k] = mpq_get_d(q[k].v);
        if (mpq_sgn(q[k].v) != 0) {
            long e = static_cast<long>(mpz_sizeinbase(mpq_numref(q[k].v), 2)) -
                     static_cast<long>(mpz_sizeinbase(mpq_denref(q[k].v), 2));
            if (e > 990 || e < -990) p.filt = false;
        }
    }
}

// A box that holds some points (every coordinate of each, as a rational, in [lo_k, hi_k]): made
// of the points' floats, then widened. ok: every point is filterable (Point::filt).
struct Box {
    double lo[DMAX], hi[DMAX];
    bool ok = false;
    // A point's float x_k (truncated) is within 2^-52 |x_k| of the coordinate, so within
    // 2^-51 |x_k| for filterable points (|x_k| >= 2^-991 or x_k == 0, exactly when the
    // coordinate is 0); widened by 2^-49 |x| + 2^-1000, which rounding cannot undo.
    void widen(int d) {
        for (int k = 0; k < d; ++k) {
            lo[k] -= std::fabs(lo[k]) * 0x1p-49 + 0x1p-1000;
            hi[k] += std::fabs(hi[k]) * 0x1p-49 + 0x1p-1000;
        }
    }
};

// Rows of integers (a . t + c as [a_1 .. a_d, c]) with their floats: each row scaled by a power
// of two (its largest entry's magnitude in [0.5, 1)); `ok[i]`: no entry of row i lost more than
// a relative 2^-52 to the scaling (else its signs are all exact). The integers are GMP's (K == 0)
// or K-limb fixed-width ones in `x` (K > 0, see fixed width), of which row(i) makes GMP integers
// on first use.
struct Rows {
    int m = 0;  // entries per row (d + 1)
    int n = 0;
    int K = 0;
    std::vector<uint64_t> x;      // K > 0: n * m entries of K limbs
    mutable std::vector<Int> z;   // K == 0: every entry; K > 0: the rows made (`made`)
    mutable std::vector<char> made;
    std::vector<double> f;
    std::vector<char> ok, zero;

    // row i's m integers
    const Int* row(int i) const {
        Int* r = &z[static_cast<size_t>(i) * m];
        if (K && !made[i]) {
            for (int k = 0; k < m; ++k)
                fw_get(&x[(static_cast<size_t>(i) * m + k) * K], K, r[k].v);
            made[i] = 1;
        }
        return r;
    }

    void floats() {
        size_t entries = static_cast<size_t>(n) * m;
        f.assign(entries, 0.0);
        ok.assign(n, 1);
        zero.assign(n, 0);
        if (K) {
            if (z.size() < entries) z.resize(entries);  // (their limbs are kept for reuse)
            made.assign(n, 0);
        }
        for (int i = 0; i < n; ++i) row_floats(i);
    }

    // append a row (m integers) and its floats (K == 0)
    void append(const Int* row) {
        for (int k = 0; k < m; ++k) z.push_back(row[k]);
        f.resize(z.size(), 0.0);
        ok.push_back(1);
        zero.push_back(0);
        row_floats(n++);
    }

    void row_floats(int i) {
        long top = LONG_MIN;
        long e[DMAX + 1];
        double mant[DMAX + 1];
        bool nz[DMAX + 1];
        for (int k = 0; k < m; ++k) {
            size_t at = static_cast<size_t>(i) * m + k;
            nz[k] = K ? !fw_zero(&x[at * K], K) : mpz_sgn(z[at].v) != 0;
            if (!nz[k]) continue;
            // |mant| in [0.5, 1), truncated
            mant[k] = K ? fw_get_d_2exp(&e[k], &x[at * K], K) : mpz_get_d_2exp(&e[k], z[at].v);
            top = std::max(top, e[k]);
        }
        zero[i] = top == LONG_MIN;
        if (zero[i]) return;
        for (int k = 0; k < m; ++k) {
            if (!nz[k]) continue;
            long shift = e[k] - top;  // <= 0
            double& out = f[static_cast<size_t>(i) * m + k];
            if (shift < -960) {
                ok[i] = 0;
                out = std::ldexp(mant[k], static_cast<int>(shift));
            } else {  // times 2^shift, a normal double: exact
                uint64_t bits = static_cast<uint64_t>(1023 + shift) << 52;
                double scale;
                std::memcpy(&scale, &bits, sizeof scale);
                out = mant[k] * scale;
            }
        }
    }

    // Does the filter prove sg * row i > 0 on the whole box? Its minimum over the box is at the
    // corner q taking lo_k where sg * a_k > 0, else hi_k (a_k's float has its sign); q's
    // coordinates are floats, so the error bound of sign() holds at q.
    bool positive_on(int i, int sg, const Box& b) const {
        if (!b.ok || zero[i] || !ok[i]) return false;
        const double* a = &f[static_cast<size_t>(i) * m];
        const int d = m - 1;
        double s = sg * a[d], bound = std::fabs(a[d]);
        for (int k = 0; k < d; ++k) {
            double t = sg * a[k] * (sg * a[k] > 0 ? b.lo[k] : b.hi[k]);
            s += t;
            bound += std::fabs(t);
        }
        return s > bound * 0x1p-45 + 0x1p-1000;
    }

    // The exact sign of row i at the point p.
    int exact(int i, const Point& p) const {
        thread_local Int acc, t;
        mpz_set_ui(acc.v, 0);
        const Int* r = row(i);
        for (int k = 0; k < m; ++k) mpz_addmul(acc.v, r[k].v, p.h[k].v);
        return mpz_sgn(acc.v);
    }

    // The sign of row i at p. The float sum s of a_k * x_k + c (a_k, c the scaled entries, each
    // within a relative 2^-52 of the exact scaled value; x_k within a relative 2^-52 of the
    // coordinate) differs from the exact scaled value by at most about
    // (d + 6) 2^-53 * (sum |a_k x_k| + |c|) (truncations, then a rounding per product and per
    // sum), below 2^-49 * (...) for d <= 10 (Checker takes d <= 8), and by at most
    // 2^-1000 from underflow: the bound 2^-45 * (...) + 2^-1000 is a safe margin over both. The
    // filter decides where |s| exceeds it; everything else (all zeros among it) is exact.
    int sign(int i, const Point& p) const {
        if (zero[i]) return 0;
        if (ok[i] && p.filt) {
            const double* a = &f[static_cast<size_t>(i) * m];
            int d = m - 1;
            double s = a[d], b = std::fabs(a[d]);
            for (int k = 0; k < d; ++k) {
                s += a[k] * p.f[k];
                b += std::fabs(a[k] * p.f[k]);
            }
            double bound = b * 0x1p-45 + 0x1p-1000;
            if (s > bound) return 1;  // the filter decides
            if (s < -bound) return -1;  // the filter decides
        }
        return exact(i, p);
    }

    // The sign of row i's normal along the direction p (homogeneous (X_1 .. X_d, 0): the
    // constant is left out, as p's last entry is 0): the float sum s of a_k * x_k over the d
    // terms only, the same error bound as sign() (fewer terms, same margin); else exact.
    int dir_sign(int i, const Point& p) const {
        if (zero[i]) return exact(i, p);
        if (ok[i] && p.filt) {
            const double* a = &f[static_cast<size_t>(i) * m];
            int d = m - 1;
            double s = 0, b = 0;
            for (int k = 0; k < d; ++k) {
                s += a[k] * p.f[k];
                b += std::fabs(a[k] * p.f[k]);
            }
            double bound = b * 0x1p-45 + 0x1p-1000;
            if (s > bound) return 1;
            if (s < -bound) return -1;
        }
        return exact(i, p);
    }
};

// --------------------------------------------------------------------------- the chain

// Piecewise op j: n units, T thresholds p/q, S states with slopes and constants over `lden`
// (integers, state-major), and the affine stretch after it: A (n_next x (n + 1)) over `aden`.
struct Op {
    int n = 0, T = 1, S = 2, n_next = 0;
    std::vector<Rat> thr;
    bool plain_zero = true;  // thresholds == [0]: the switching rows are the map's rows
    Int tden;                // lcm of the thresholds' denominators
    std::vector<Int> tnum;   // t * tden per threshold
    std::vector<Int> slope, cons;
    Int lden;
    std::vector<Int> A;
    Int aden;
    // every entry of A fits int64 and every slope and constant has magnitude < 2^62 (so that
    // the difference of two fits int64): the maps after the op may be made in fixed width
    bool small = false;
    std::vector<int64_t> A64, slope64, cons64;
    // the map's denominator into the op (den) and den * lden, modulo 2^(64 K) for the K of the
    // level after the op (see build_fixed)
    std::vector<uint64_t> den_in, den_bottom;
    // (op j >= 1) level j + 1 may follow an update of level j by cascade(): it is fixed width,
    // ops j - 1 and j are small, every |slope of op j| * |entry of op j - 1's A| < 2^63 and
    // max_r sum_i |A_ri| max_s |slope_si| max |entry of op j - 1's A| < 2^127; den_gp: the
    // denominator of the map into op j - 1, modulo 2^(64 K) for level j + 1's K
    bool cascade = false;
    std::vector<uint64_t> den_gp;
    bool sign_cells = false;  // the rule's: its cells are those of its rows' sign vectors
};

// The map into piecewise op j (or the output, j == P) for one pattern prefix, with the states
// of op j - 1 it was made with (for updates), and op j's switching rows (sw) over `swden`.
struct Level {
    bool valid = false;
    long parent_gen = -1, gen = -1;
    std::vector<int8_t> st;    // states of op j - 1
    // when the map was last made by an update from the map of generation prev_gen (else -1):
    // the units of op j - 1 whose state changed, and their states before
    long prev_gen = -1;
    std::vector<int> dunits;
    std::vector<int8_t> dfrom;
    int K = 0;                 // > 0: the map in K-limb fixed width (X), else in GMP (Zm)
    std::vector<uint64_t> X;   // rows x (d + 1) entries of K limbs
    std::vector<Int> Zm;       // rows x (d + 1)
    Int den;
    Rows sw;
    Int swden;

    void get(size_t e, mpz_t out) const {
        if (K)
            fw_get(&X[e * K], K, out);
        else
            mpz_set(out, Zm[e].v);
    }
    // entry e modulo 2^(64 Ko)
    void load(size_t e, uint64_t* out, int Ko) const {
        if (K)
            fw_resize(&X[e * K], K, out, Ko);
        else
            fw_set(Zm[e].v, out, Ko);
    }
};

struct Facet {  // a proven facet of a region, for adjacency
    int64_t region;
    int plane;
    int j0;
    int side;
    uint64_t pre;
    uint64_t sig;  // d >= 3: hash of op j0's signs on the region, 0 on the plane (see finish)
    int64_t lo, hi;  // the vertices at its ends along coordinate c0 (2-D; -1: unbounded)
    int64_t ids_at, ids_n;
    int64_t verts_at, verts_n;  // its vertices (3-D)
    int64_t rays_at, rays_n;    // its rays (3-D, unbounded domains): in facet_rays
    int64_t row;                // its row among the region's facet rows (3-D)
};

struct Checker {
    PyObject_HEAD
    int d, P, n_dom, n_out;
    std::vector<int64_t>* offsets;
    Rows* dom;                 // the domain's rows, b - a . t >= 0
    std::vector<Int>* domden;  // positive denominators of the domain's rows (as rationals)
    std::vector<Op>* ops;
    std::vector<Level>* lv;    // 0 .. P
    long gens;
    std::vector<Point>* verts;
    std::vector<char>* used;
    // results kept across chunks
    std::vector<uint64_t>* pat_hash;
    std::vector<uint64_t>* out_hash;
    std::vector<std::pair<int, Rat>>* vsum;  // a binary counter of partial sums
    // The records kept for every region until finish grow in blocks (std::deque), not by
    // doubling a vector: a doubled vector holds its old and new buffers at once and reserves
    // up to twice what it uses, which on 10^6 regions is more than a GB of address space.
    std::deque<Facet>* facets;
    std::deque<int64_t>* facet_ids;
    std::deque<int64_t>* facet_verts;  // 3-D: every recorded facet's vertices
    Rows* frows;                        // 3-D: every region's facet rows, >= 0 on the region
    std::vector<int64_t>* frow_start;   // d >= 3: region r's rows are frow_start[r] ..
    std::vector<char>* refine;          // d >= 3: facets of op j grouped by signs too (finish)
    std::unordered_map<std::string, int>* plane_ids;
    std::vector<std::vector<Int>>* planes;
    int64_t next_region;  // regions checked so far
    int64_t base;         // the chunk's first region's index
    bool failed;
    int64_t first;        // the first region it checks (start(); 0 unless it is a part)
    // unbounded domains (completeness by closure: across_facet, finish): every listed region's
    // rays (3-D, for adjacency), the recorded facets' rays (indices into rays), the certified
    // prefixes of every level (packed states of ops 0 .. j) and the prefixes across facets not
    // yet found among them (level, packed states)
    bool closure;
    std::vector<Point>* rays;
    std::deque<int64_t>* facet_rays;
    std::vector<std::unordered_set<std::string>>* prefixes;
    std::vector<std::pair<int, std::string>>* across;
};

// An exact sum of many rationals with unrelated denominators, held as a binary counter of
// partial sums (at most log2(n) of them, each of about as many terms as the one after it): every
// addition is of two sums of similar size, not of one term to an ever larger total.
void push_sum(std::vector<std::pair<int, Rat>>& parts, Rat& x) {
    int n = 1;
    while (!parts.empty() && parts.back().first == n) {
        mpq_add(x.v, x.v, parts.back().second.v);
        n += parts.back().first;
        parts.pop_back();
    }
    parts.emplace_back(n, std::move(x));
}

void sum_of(const std::vector<std::pair<int, Rat>>& parts, mpq_t out) {
    mpq_set_ui(out, 0, 1);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) mpq_add(out, it->second.v, out);
}

void add_volume(Checker* c, const mpq_t v) {
    Rat x;
    mpq_set(x.v, v);
    push_sum(*c->vsum, x);
}

// The switching rows of op `nx` from the map into it (level L): the map's rows when its one
// threshold is 0, else x - t for every threshold t, unit by unit (rows t * n + i), over
// den * tden.
void switching_rows(Level& L, const Op& nx, int m) {
    const int d = m - 1;
    Rows& W = L.sw;
    W.m = m;
    W.n = nx.n * nx.T;
    if (nx.plain_zero) {
        W.K = L.K;
        if (L.K)
            W.x = L.X;
        else
            W.z = L.Zm;
        mpz_set(L.swden.v, L.den.v);
    } else {
        W.K = 0;
        W.z.assign(static_cast<size_t>(W.n) * m, Int());
        mpz_mul(L.swden.v, L.den.v, nx.tden.v);
        for (int a = 0; a < nx.T; ++a)
            for (int i = 0; i < nx.n; ++i) {
                Int* out = &W.z[(static_cast<size_t>(a) * nx.n + i) * m];
                for (int k = 0; k < m; ++k) {
                    L.get(static_cast<size_t>(i) * m + k, out[k].v);
                    mpz_mul(out[k].v, out[k].v, nx.tden.v);
                }
                mpz_submul(out[d].v, nx.tnum[a].v, L.den.v);
            }
    }
    W.floats();
}

// Level j + 1 in fixed width (K = L.K limbs, op.small) from level j: with M's rows
// M_i = slope_i * z_i + (const_i * den) e_d (z_i the parent's row i, den its denominator) and
// the bottom row (0 .. 0, den * lden), row r of the map is sum_i A_ri M_i + A_rn (bottom row);
// an update adds A_ri times the change of M_i for the units i whose state changed. Every
// product and sum is taken modulo 2^(64 K): exact, as the result is a map of level j + 1,
// whose entries K holds (level_limbs).
template <int K>
void build_fixed(const Op& op, const Level& par, Level& L, const std::vector<int8_t>& s,
                 bool update, int m) {
    const int n = op.n, nn = op.n_next, d = m - 1;
    const size_t E = static_cast<size_t>(m) * K;  // limbs per row
    thread_local std::vector<uint64_t> Mrows;
    thread_local std::vector<int> act;
    Mrows.resize(static_cast<size_t>(n) * E);
    act.clear();
    uint64_t z[KMAX];
    for (int i = 0; i < n; ++i) {
        size_t now = static_cast<size_t>(s[i]) * n + i;
        int64_t sl = op.slope64[now], cs = op.cons64[now];
        if (update) {
            if (L.st[i] == s[i]) continue;
            size_t was = static_cast<size_t>(L.st[i]) * n + i;
            sl -= op.slope64[was];  // |each| < 2^62 (op.small): no overflow
            cs -= op.cons64[was];
        }
        if (!sl && !cs) continue;
        uint64_t* Mi = &Mrows[act.size() * E];
        std::fill(Mi, Mi + E, 0);
        if (sl)
            for (int k = 0; k < m; ++k) {
                par.load(static_cast<size_t>(i) * m + k, z, K);
                fw_addmul<K>(Mi + static_cast<size_t>(k) * K, sl, z, 1);
            }
        if (cs) fw_addmul<K>(Mi + static_cast<size_t>(d) * K, cs, op.den_in.data(), 1);
        act.push_back(i);
    }
    if (!update) {
        L.X.assign(static_cast<size_t>(nn) * E, 0);
        for (int r = 0; r < nn; ++r)
            fw_addmul<K>(&L.X[r * E + static_cast<size_t>(d) * K],
                         op.A64[static_cast<size_t>(r) * (n + 1) + n], op.den_bottom.data(), 1);
    }
    for (int r = 0; r < nn; ++r) {
        uint64_t* out = &L.X[r * E];
        const int64_t* Ar = &op.A64[static_cast<size_t>(r) * (n + 1)];
        for (size_t a = 0; a < act.size(); ++a)
            if (Ar[act[a]]) fw_addmul<K>(out, Ar[act[a]], &Mrows[a * E], m);
    }
}

// build_fixed for L.K limbs
void build_fixed_k(const Op& op, const Level& par, Level& L, const std::vector<int8_t>& s,
                   bool update, int m) {
    switch (L.K) {
        case 1: return build_fixed<1>(op, par, L, s, update, m);
        case 2: return build_fixed<2>(op, par, L, s, update, m);
        case 3: return build_fixed<3>(op, par, L, s, update, m);
        case 4: return build_fixed<4>(op, par, L, s, update, m);
        case 5: return build_fixed<5>(op, par, L, s, update, m);
        case 6: return build_fixed<6>(op, par, L, s, update, m);
        case 7: return build_fixed<7>(op, par, L, s, update, m);
        case 8: return build_fixed<8>(op, par, L, s, update, m);
        default: reject("bad limb count");
    }
}
static_assert(KMAX == 8, "build_fixed_k covers 1 .. KMAX limbs");

// Level j + 1 in GMP, the same sums as build_fixed, each exact.
void build_gmp(const Op& op, const Level& par, Level& L, const std::vector<int8_t>& s,
               bool update, int m) {
    const int n = op.n, nn = op.n_next, d = m - 1;
    thread_local Int t, u, z;
    thread_local std::vector<Int> Mrow;
    Mrow.resize(static_cast<size_t>(m));
    if (!update) {
        L.Zm.assign(static_cast<size_t>(nn) * m, Int());
        mpz_mul(t.v, par.den.v, op.lden.v);
        for (int r = 0; r < nn; ++r)
            mpz_mul(L.Zm[static_cast<size_t>(r) * m + d].v,
                    op.A[static_cast<size_t>(r) * (n + 1) + n].v, t.v);
    }
    for (int i = 0; i < n; ++i) {
        const mpz_t& sl = op.slope[static_cast<size_t>(s[i]) * n + i].v;
        const mpz_t& cs = op.cons[static_cast<size_t>(s[i]) * n + i].v;
        if (update) {
            if (L.st[i] == s[i]) continue;
            mpz_sub(t.v, sl, op.slope[static_cast<size_t>(L.st[i]) * n + i].v);
            mpz_sub(u.v, cs, op.cons[static_cast<size_t>(L.st[i]) * n + i].v);
        } else {
            mpz_set(t.v, sl);
            mpz_set(u.v, cs);
        }
        if (!mpz_sgn(t.v) && !mpz_sgn(u.v)) continue;
        for (int k = 0; k < m; ++k) {
            par.get(static_cast<size_t>(i) * m + k, z.v);
            mpz_mul(Mrow[k].v, t.v, z.v);
        }
        mpz_addmul(Mrow[d].v, u.v, par.den.v);
        for (int r = 0; r < nn; ++r) {
            const mpz_t& a = op.A[static_cast<size_t>(r) * (n + 1) + i].v;
            if (!mpz_sgn(a)) continue;
            for (int k = 0; k < m; ++k)
                mpz_addmul(L.Zm[static_cast<size_t>(r) * m + k].v, a, Mrow[k].v);
        }
    }
}

// Level j + 1 (fixed width, the map made from level j's previous map with op j in states
// L.st) moved to level j's current map, which its last update made by adding, for each changed
// unit c of op j - 1, A'[:, c] dM_c (A' op j - 1's stretch, dM_c = dslope_c z'_c +
// dconst_c den' e_d with z', den' the map and denominator of level j - 1). Op j's constants do
// not depend on the map, so level j + 1 changes by sum_c v_c dM_c with v_c = A D A'[:, c],
// D = diag(slope_i of op j in states L.st): v_c in 128-bit integers (op.cascade bounds every
// partial sum), dM_c and the products modulo 2^(64 K), exact as in build_fixed.
void cascade(const Op& op, const Op& opp, const Level& gp, const Level& par, Level& L, int m) {
    const int n = op.n, nn = op.n_next, np = opp.n, K = L.K, d = m - 1;
    const size_t E = static_cast<size_t>(m) * K;
    thread_local std::vector<int> act;
    thread_local std::vector<int64_t> w;
    thread_local std::vector<__int128> v;
    act.clear();
    for (int i = 0; i < n; ++i)
        if (op.slope64[static_cast<size_t>(L.st[i]) * n + i]) act.push_back(i);
    w.resize(act.size());
    v.resize(static_cast<size_t>(nn));
    uint64_t dM[(DMAX + 1) * KMAX], z[KMAX], vk[KMAX];
    for (size_t u = 0; u < par.dunits.size(); ++u) {
        const int cu = par.dunits[u];
        const size_t now = static_cast<size_t>(par.st[cu]) * np + cu;
        const size_t was = static_cast<size_t>(par.dfrom[u]) * np + cu;
        const int64_t dsl = opp.slope64[now] - opp.slope64[was];  // |each| < 2^62
        const int64_t dcs = opp.cons64[now] - opp.cons64[was];
        std::fill(dM, dM + E, 0);
        for (int k = 0; k < m && dsl; ++k) {
            gp.load(static_cast<size_t>(cu) * m + k, z, K);
            for (int e = 0; e < K; ++e) vk[e] = 0;
            vk[0] = static_cast<uint64_t>(dsl);
            if (dsl < 0)
                for (int e = 1; e < K; ++e) vk[e] = ~uint64_t{0};
            fw_addmul_wide(dM + static_cast<size_t>(k) * K, vk, z, K);
        }
        if (dcs) {
            for (int e = 0; e < K; ++e) vk[e] = dcs < 0 ? ~uint64_t{0} : 0;
            vk[0] = static_cast<uint64_t>(dcs);
            fw_addmul_wide(dM + static_cast<size_t>(d) * K, vk, op.den_gp.data(), K);
        }
        for (size_t a = 0; a < act.size(); ++a) {  // |slope| |A'| < 2^63 (op.cascade)
            const int i = act[a];
            w[a] = op.slope64[static_cast<size_t>(L.st[i]) * n + i] *
                   opp.A64[static_cast<size_t>(i) * (np + 1) + cu];
        }
        for (int r = 0; r < nn; ++r) {
            const int64_t* Ar = &op.A64[static_cast<size_t>(r) * (n + 1)];
            __int128 sum = 0;
            for (size_t a = 0; a < act.size(); ++a)
                sum += static_cast<__int128>(Ar[act[a]]) * w[a];
            if (!sum) continue;
            vk[0] = static_cast<uint64_t>(sum);
            vk[1] = static_cast<uint64_t>(static_cast<u128>(sum) >> 64);
            for (int e = 2; e < K; ++e) vk[e] = sum < 0 ? ~uint64_t{0} : 0;
            uint64_t* out = &L.X[r * E];
            for (int k = 0; k < m; ++k)
                fw_addmul_wide(out + static_cast<size_t>(k) * K, vk, dM + static_cast<size_t>(k) * K,
                               K);
        }
    }
}

// Level j + 1 from level j (valid) with op j in states s: the map after the op,
// [slope_i * z_i + (const_i * den) e_d ; (0 .. 0, den * lden)] over den * lden, times the
// stretch A over aden. When the level holds the map of the same parent with other states and
// few units changed, only their rows' changes are added; when it holds the map of the
// parent's previous map and the parent's last update changed few units, cascade() moves it to
// the parent's current map first.
void build(Checker* c, int j, const std::vector<int8_t>& s) {
    const int m = c->d + 1;
    const Op& op = (*c->ops)[j];
    const Level& par = (*c->lv)[j];
    Level& L = (*c->lv)[j + 1];
    const int n = op.n;
    bool update = L.valid && L.parent_gen == par.gen;
    bool casc = !update && L.valid && op.cascade && par.prev_gen >= 0 &&
                L.parent_gen == par.prev_gen &&
                static_cast<int>(par.dunits.size()) < m * L.K;  // cheaper than a new map
    thread_local std::vector<int> units;
    thread_local std::vector<int8_t> from;
    units.clear();
    from.clear();
    if (update || casc) {
        for (int i = 0; i < n; ++i)
            if (L.st[i] != s[i]) {
                units.push_back(i);
                from.push_back(L.st[i]);
            }
        if (update && units.empty()) return;
        if (static_cast<int>(units.size()) * 3 > n) update = casc = false;
    }
    if (casc) {
        cascade(op, (*c->ops)[j - 1], (*c->lv)[j - 1], par, L, m);
        update = true;
    }
    if (L.K)
        build_fixed_k(op, par, L, s, update, m);
    else
        build_gmp(op, par, L, s, update, m);
    if (!update) {
        mpz_mul(L.den.v, par.den.v, op.lden.v);
        mpz_mul(L.den.v, L.den.v, op.aden.v);
    }
    // for the next level's cascade: an update of this level's states only
    L.prev_gen = update && !casc ? L.gen : -1;
    L.dunits.assign(units.begin(), units.end());
    L.dfrom.assign(from.begin(), from.end());
    L.st = s;
    L.parent_gen = par.gen;
    L.gen = ++c->gens;
    L.valid = true;
    if (j + 1 < c->P) switching_rows(L, (*c->ops)[j + 1], m);
}

// Decode region r's states of every op from the state tables; validate them.
void states_of(PyObject* tabs, PyObject* ids, int64_t r, const std::vector<Op>& ops,
               std::vector<std::vector<int8_t>>& out) {
    size_t P = ops.size();
    out.resize(P);
    for (size_t j = 0; j < P; ++j) {
        PyObject* tab = item(tabs, static_cast<Py_ssize_t>(j));  // (data, bits)
        Buf data, sid;
        bool bits = PyObject_IsTrue(item(tab, 1));
        data.set(item(tab, 0), bits ? 1 : 8);
        sid.set(item(ids, static_cast<Py_ssize_t>(j)), 8);
        int64_t k = sid.at(r);
        int n = ops[j].n;
        std::vector<int8_t>& s = out[j];
        s.assign(n, 0);
        if (bits) {
            int64_t stride = (n + 7) / 8;
            if (k < 0 || (k + 1) * stride > data.view.len) reject("a state id out of range");
            const unsigned char* row = data.bytes() + k * stride;
            for (int i = 0; i < n; ++i) s[i] = (row[i >> 3] >> (7 - (i & 7))) & 1;
        } else {
            int64_t rows = data.size() / (n ? n : 1);
            if (k < 0 || k >= rows) reject("a state id out of range");
            const int64_t* row = static_cast<const int64_t*>(data.view.buf) + k * n;
            for (int i = 0; i < n; ++i) {
                if (row[i] < 0 || row[i] >= ops[j].S) reject("a state that is not one of its op's");
                s[i] = static_cast<int8_t>(row[i]);
            }
        }
    }
}

// One constraint of a region: a row of the domain (lev == -1) or of op lev's switching rows,
// oriented by sg (sg * row >= 0 on the region), with its constraint id.
struct Con {
    int lev, row, sg;
    int64_t cid;
};

const Rows& rows_of(Checker* c, int lev) { return lev < 0 ? *c->dom : (*c->lv)[lev].sw; }
const mpz_t& den_of(Checker* c, const Con& k) {
    return k.lev < 0 ? (*c->domden)[k.row].v : (*c->lv)[k.lev].swden.v;
}

// exact 2x2 determinant sign of the normals of two constraints (d = 2)
int det2(Checker* c, const Con& a, const Con& b) {
    const Rows& ra = rows_of(c, a.lev);
    const Rows& rb = rows_of(c, b.lev);
    const Int* x = ra.row(a.row);
    const Int* y = rb.row(b.row);
    thread_local Int t;
    mpz_mul(t.v, x[0].v, y[1].v);
    mpz_submul(t.v, x[1].v, y[0].v);
    return mpz_sgn(t.v);
}

// exact 3x3 determinant sign of the normals of three constraints (d = 3)
int det3(Checker* c, const Con& a, const Con& b, const Con& e) {
    const Int* x = rows_of(c, a.lev).row(a.row);
    const Int* y = rows_of(c, b.lev).row(b.row);
    const Int* w = rows_of(c, e.lev).row(e.row);
    thread_local Int t, acc;
    mpz_set_ui(acc.v, 0);
    mpz_mul(t.v, y[1].v, w[2].v); mpz_submul(t.v, y[2].v, w[1].v); mpz_addmul(acc.v, x[0].v, t.v);
    mpz_mul(t.v, y[0].v, w[2].v); mpz_submul(t.v, y[2].v, w[0].v); mpz_submul(acc.v, x[1].v, t.v);
    mpz_mul(t.v, y[0].v, w[1].v); mpz_submul(t.v, y[1].v, w[0].v); mpz_addmul(acc.v, x[2].v, t.v);
    return mpz_sgn(acc.v);
}

// exact rank of the normals of the constraints t of cons (any d)
int tight_rank(Checker* c, const std::vector<Con>& cons, const std::vector<int>& t) {
    const int d = c->d;
    if (static_cast<int>(t.size()) < d) return static_cast<int>(t.size());  // at most
    thread_local std::vector<Int> a;
    a.resize(t.size() * d);
    for (size_t i = 0; i < t.size(); ++i) {
        const Con& k = cons[t[i]];
        const Rows& R = rows_of(c, k.lev);
        for (int e = 0; e < d; ++e)
            mpz_set(a[i * d + e].v, R.z[static_cast<size_t>(k.row) * R.m + e].v);
    }
    return bareiss(a, static_cast<int>(t.size()), d);
}

// orientation of (a, b, c) in 2-D homogeneous coordinates (every W > 0): sign of det [a; b; c]
int orient(const Point& a, const Point& b, const Point& cpt) {
    thread_local Int t, acc;
    mpz_set_ui(acc.v, 0);
    // xa (yb wc - yc wb) - ya (xb wc - xc wb) + wa (xb yc - xc yb)
    mpz_mul(t.v, b.h[1].v, cpt.h[2].v); mpz_submul(t.v, cpt.h[1].v, b.h[2].v);
    mpz_addmul(acc.v, a.h[0].v, t.v);
    mpz_mul(t.v, b.h[0].v, cpt.h[2].v); mpz_submul(t.v, cpt.h[0].v, b.h[2].v);
    mpz_submul(acc.v, a.h[1].v, t.v);
    mpz_mul(t.v, b.h[0].v, cpt.h[1].v); mpz_submul(t.v, cpt.h[0].v, b.h[1].v);
    mpz_addmul(acc.v, a.h[2].v, t.v);
    return mpz_sgn(acc.v);
}

// compare coordinate i of two points exactly (floats first: truncation is monotone)
int cmp_coord(const Point& a, const Point& b, int i) {
    if (a.f[i] < b.f[i]) return -1;
    if (a.f[i] > b.f[i]) return 1;
    thread_local Int x, y;
    size_t d = a.f.size();
    mpz_mul(x.v, a.h[i].v, b.h[d].v);
    mpz_mul(y.v, b.h[i].v, a.h[d].v);
    return mpz_cmp(x.v, y.v);
}

// compare two ends of facets along coordinate i: each a vertex, or -1 for an unbounded end
// (xs, ys: the sign of infinity it stands for, -1 for a lower end, +1 for an upper one)
int cmp_end(const std::vector<Point>& V, int64_t x, int xs, int64_t y, int ys, int i) {
    int a = x < 0 ? xs : 0, b = y < 0 ? ys : 0;
    if (a != b) return a < b ? -1 : 1;
    if (a) return 0;
    return cmp_coord(V[x], V[y], i);
}

// The volume of the hull of the region's vertices: 1-D the span, 2-D the area (the vertices,
// each proven a vertex of the convex region, are in strictly convex position: sorted exactly by
// angle around the lowest one, the shoelace sum is the area).
void hull_volume(Checker* c, const std::vector<int64_t>& vids, mpq_t out) {
    const auto& V = *c->verts;
    mpq_set_ui(out, 0, 1);
    size_t n = vids.size();
    if (c->d == 1) {
        if (n == 0) return;
        int64_t lo = vids[0], hi = vids[0];
        for (int64_t k : vids) {
            if (cmp_coord(V[k], V[lo], 0) < 0) lo = k;
            if (cmp_coord(V[k], V[hi], 0) > 0) hi = k;
        }
        Rat a, b;
        mpq_set_num(a.v, V[hi].h[0].v); mpq_set_den(a.v, V[hi].h[1].v); mpq_canonicalize(a.v);
        mpq_set_num(b.v, V[lo].h[0].v); mpq_set_den(b.v, V[lo].h[1].v); mpq_canonicalize(b.v);
        mpq_sub(out, a.v, b.v);
        return;
    }
    if (n < 3) return;
    std::vector<int64_t> o(vids);
    auto lower = [&](int64_t a, int64_t b) {
        int y = cmp_coord(V[a], V[b], 1);
        return y < 0 || (y == 0 && cmp_coord(V[a], V[b], 0) < 0);
    };
    auto first = std::min_element(o.begin(), o.end(), lower);
    std::iter_swap(o.begin(), first);
    const Point& p0 = V[o[0]];
    std::sort(o.begin() + 1, o.end(), [&](int64_t a, int64_t b) { return orient(p0, V[a], V[b]) > 0; });
    // every consecutive triple must turn left (strictly): else not in convex position
    for (size_t i = 0; i < n; ++i)
        if (orient(V[o[i]], V[o[(i + 1) % n]], V[o[(i + 2) % n]]) <= 0)
            reject("region vertices not in convex position");
    Rat term, sum;
    thread_local Int t;
    for (size_t i = 0; i < n; ++i) {
        const Point& a = V[o[i]];
        const Point& b = V[o[(i + 1) % n]];
        mpz_mul(t.v, a.h[0].v, b.h[1].v);
        mpz_submul(t.v, b.h[0].v, a.h[1].v);
        mpq_set_num(term.v, t.v);
        mpz_mul(t.v, a.h[2].v, b.h[2].v);
        mpq_set_den(term.v, t.v);
        mpq_canonicalize(term.v);
        mpq_add(sum.v, sum.v, term.v);
    }
    mpq_div_2exp(out, sum.v, 1);
}

// d >= 3: the volume of the pulling triangulation of the hull of the region's vertices over its
// facets' vertex sets (as exactrelu._geometry's hull_volume, which the Python pass uses: the
// lowest vertex joined to the triangulations of the maximal proper faces without it): a lower
// bound of the region's volume, equal to it when the vertex list is complete (see
// check._hull_lower_bound). It is summed face by face, not simplex by simplex (as hull_volume
// does too). In a face F of
// the affine space A (dimension j, in the coordinates `kept`, onto which A projects
// one-to-one), with lowest vertex v, the simplices of F are v joined to those of each maximal
// proper face H = F & m not holding v, and for each of them |det_j(u_1 - v, .., u_j - v)| =
// |rho(v)| / |rho_p| * |det_{j-1}(u_2 - u_1, ..)| without coordinate p, where rho is an affine
// function on A vanishing on H (the row of the facet m restricted to A) and rho_p != 0 (write
// u_1 - v as its component along e_p plus one in ker rho, the span of the u_i - u_1 when they
// are independent; both sides are 0 otherwise). So vol_j(F) = sum over H of |rho(v)| /
// (j |rho_p|) vol_{j-1}(H in A ∩ {rho = 0}, coordinate p dropped), a face of one vertex having
// volume 1 in 0 dimensions and 0 above (a chain of faces that drops more than a dimension per
// step makes no full simplex): exactly the sum of the simplex volumes. The rows restricted to
// A are the facet rows after fraction-free elimination (Bareiss) of the dropped coordinates by
// the rows of the faces on the way, each division exact.
//
// Every volume is an integer N over j! L_F, L_F the product of the denominators D_u of F's
// vertices (a simplex's volume is |det| of its homogeneous rows [X | D] over j! and their D's;
// a face's, a sum of them). With rho(v) = r / D_v, the cone over H is |r| N_H / (|rho_p| j!
// D_v L_H), whose numerator |r| N_H / |rho_p| is an integer (the cone is a sum of simplices of
// v and H's vertices; the division is checked), and N_F is the sum over H of it times the D_u of
// F's vertices neither v nor in H: integers only, no gcd. A volume depends on the face and the
// coordinates kept only (memo).
struct FaceVolume {
    Checker* c;
    const std::vector<int64_t>& vids;
    const std::vector<Bits>& masks;
    std::unordered_map<Bits, Int, BitsHash> memo;
    // per dimension, the restricted rows, facets and coordinates handed to a face of it (reused:
    // faces of one dimension are computed one at a time)
    std::vector<Int> rows_at[9];
    std::vector<int> idx_at[9], kept_at[9];

    // N of face F in j dimensions (coordinates kept), the facets idx (those cutting F properly)
    // with their rows restricted (idx.size() rows of j + 1 integers), `prev` the last pivot of
    // the elimination.
    void volume(const Bits& F, const std::vector<int>& kept, const std::vector<int>& idx,
                const std::vector<Int>& rows, const mpz_t prev, mpz_t out) {
        const int j = static_cast<int>(kept.size());
        const int d = c->d;
        const auto& V = *c->verts;
        const int v = F.lowest();
        const Point& pv = V[vids[v]];
        if (F.count() == 1) {
            if (j == 0) mpz_set(out, pv.h[d].v);
            else mpz_set_ui(out, 0);
            return;
        }
        if (j == 0) reject("the facets are not faces of the hull");
        // the maximal proper non-empty F & m, each with (the position of) a facet m giving it
        std::vector<std::pair<Bits, int>> subs;
        for (size_t a = 0; a < idx.size(); ++a) {
            Bits x = F & masks[idx[a]];
            if (!x.any() || x == F) continue;
            bool dup = false;
            for (const auto& sb : subs) dup = dup || sb.first == x;
            if (!dup) subs.push_back({std::move(x), static_cast<int>(a)});
        }
        std::stable_sort(subs.begin(), subs.end(), [](const auto& x, const auto& y) {
            return larger_first(x.first, y.first);
        });
        std::vector<size_t> maximal;
        for (size_t a = 0; a < subs.size(); ++a) {
            bool sub = false;
            for (size_t t : maximal) sub = sub || subs[a].first.within(subs[t].first);
            if (!sub) maximal.push_back(a);
        }
        mpz_set_ui(out, 0);
        Int num, sub, rem;
        for (size_t t : maximal) {
            const Bits& H = subs[t].first;
            if (H.test(static_cast<size_t>(v))) continue;
            const Int* rho = &rows[static_cast<size_t>(subs[t].second) * (j + 1)];
            // r = rho(v) D_v, in integers
            mpz_mul(num.v, rho[j].v, pv.h[d].v);
            for (int i = 0; i < j; ++i) mpz_addmul(num.v, rho[i].v, pv.h[kept[i]].v);
            if (!mpz_sgn(num.v)) continue;  // v on H's hyperplane: flat cones
            int p = -1;
            for (int i = 0; i < j && p < 0; ++i)
                if (mpz_sgn(rho[i].v)) p = i;
            if (p < 0) reject("a facet row constant on a face");
            std::vector<int>& kept2 = kept_at[j - 1];
            kept2.assign(kept.begin(), kept.end());
            kept2.erase(kept2.begin() + p);
            Bits key = H;
            uint64_t kbits = 0;
            for (int i : kept2) kbits |= 1ULL << i;
            key.w.push_back(kbits);
            auto it = memo.find(key);
            if (it != memo.end()) {
                mpz_set(sub.v, it->second.v);
            } else {
                // the facets cutting H properly (no other one cuts a face of H properly), their
                // rows restricted to A ∩ {rho = 0}: coordinate p eliminated
                std::vector<int>& idx2 = idx_at[j - 1];
                std::vector<Int>& rows2 = rows_at[j - 1];
                idx2.clear();
                for (size_t b = 0; b < idx.size(); ++b) {
                    Bits x = H & masks[idx[b]];
                    if (!x.any() || x == H) continue;
                    idx2.push_back(idx[b]);
                }
                if (rows2.size() < idx2.size() * j) rows2.resize(idx2.size() * j);
                for (size_t b = 0, k = 0; b < idx.size() && k < idx2.size(); ++b) {
                    if (idx[b] != idx2[k]) continue;
                    const Int* r = &rows[b * (j + 1)];
                    Int* y = &rows2[k++ * j];
                    for (int e = 0; e <= j; ++e) {
                        if (e == p) continue;
                        mpz_mul(y->v, rho[p].v, r[e].v);
                        mpz_submul(y->v, r[p].v, rho[e].v);
                        mpz_divexact(y->v, y->v, prev);
                        ++y;
                    }
                }
                volume(H, kept2, idx2, rows2, rho[p].v, sub.v);
                memo.emplace(std::move(key), sub);
            }
            if (!mpz_sgn(sub.v)) continue;
            // |r| N_H / |rho_p|, times the D_u of F's vertices neither v nor in H
            mpz_abs(num.v, num.v);
            mpz_mul(num.v, num.v, sub.v);
            mpz_tdiv_qr(num.v, rem.v, num.v, rho[p].v);
            if (mpz_sgn(rem.v)) reject("a cone volume that is not a sum of simplices");
            mpz_abs(num.v, num.v);
            for (size_t wi = 0; wi < F.w.size(); ++wi)
                for (uint64_t x = F.w[wi] & ~H.w[wi]; x; x &= x - 1) {
                    size_t u = wi * 64 + static_cast<size_t>(__builtin_ctzll(x));
                    if (static_cast<int>(u) != v) mpz_mul(num.v, num.v, V[vids[u]].h[d].v);
                }
            mpz_add(out, out, num.v);
        }
    }
};

// d >= 3: the region's volume by FaceVolume over its facets (vertex sets `masks`, integer rows
// `mask_rows`, d + 1 entries each).
void pulling_volume(Checker* c, const std::vector<int64_t>& vids, const std::vector<Bits>& masks,
                    const std::vector<Int>& mask_rows, mpq_t out) {
    mpq_set_ui(out, 0, 1);
    size_t nv = vids.size();
    if (!nv) return;
    const int d = c->d;
    FaceVolume fv{c, vids, masks, {}};
    std::vector<int> kept(d), idx(masks.size());
    for (int i = 0; i < d; ++i) kept[i] = i;
    for (size_t a = 0; a < masks.size(); ++a) idx[a] = static_cast<int>(a);
    Int one, num;
    mpz_set_ui(one.v, 1);
    fv.volume(Bits::all(nv), kept, idx, mask_rows, one.v, num.v);
    // over d! L
    Int den;
    mpz_fac_ui(den.v, static_cast<unsigned long>(d));
    for (int64_t k : vids) mpz_mul(den.v, den.v, (*c->verts)[k].h[d].v);
    mpq_set_num(out, num.v);
    mpq_set_den(out, den.v);
    mpq_canonicalize(out);
}

// The plane of an oriented row (a . t + c >= 0 on the region, listed as a' . t <= b' with
// [a' | b'] a positive multiple of [-a | c]): its primitive integer row with the first non-zero
// entry positive, interned; side: the sign of the first non-zero entry of -a.
// The id of the plane `v` (a primitive integer row, first non-zero entry positive), numbered in
// order of first appearance; its key is the exact integers' bytes.
int intern_plane(Checker* c, std::vector<Int>&& v) {
    std::string key;
    for (const Int& x : v) {
        size_t cnt = 0;
        std::string part((mpz_sizeinbase(x.v, 2) + 7) / 8 + 1, '\0');
        mpz_export(&part[0], &cnt, -1, 1, 0, 0, x.v);
        part.resize(cnt);
        key += static_cast<char>(mpz_sgn(x.v) + 1);
        key += std::to_string(cnt);
        key += ':';
        key += part;
    }
    auto it = c->plane_ids->find(key);
    if (it != c->plane_ids->end()) return it->second;
    int id = static_cast<int>(c->planes->size());
    c->plane_ids->emplace(key, id);
    c->planes->push_back(std::move(v));
    return id;
}

std::pair<int, int> plane_of(Checker* c, const Con& k) {
    const Rows& R = rows_of(c, k.lev);
    const int d = c->d;
    std::vector<Int> v(d + 1);
    Int g;
    for (int i = 0; i <= d; ++i) {
        mpz_set(v[i].v, R.row(k.row)[i].v);
        if (k.sg < 0) mpz_neg(v[i].v, v[i].v);
        if (i < d) mpz_neg(v[i].v, v[i].v);
        mpz_gcd(g.v, g.v, v[i].v);
    }
    int side = 0;
    for (int i = 0; i < d && !side; ++i) side = mpz_sgn(v[i].v);
    if (!side) reject("a facet with a zero normal");
    for (int i = 0; i <= d; ++i) {
        mpz_divexact(v[i].v, v[i].v, g.v);
        if (side < 0) mpz_neg(v[i].v, v[i].v);
    }
    return {intern_plane(c, std::move(v)), side};
}

// ----------------------------------------------------------------------------- one region

struct ChunkCols {
    PyObject *tabs, *ids;
    IntList wnum, wden, rnum, rden, onum, oden, vnum, vden, ynum, yden;
    Buf rv_start, rv_flat, fstart, frow, fid_start, fid_flat, fv_start, fv_flat;
    Buf ray_start, fray_start, fray_flat;  // rays per region, facet rays (start empty: none)
};

// op j's states packed (1 bit per unit of a two-state op, 2 bits of a three-state one),
// appended to `out`: every op has a fixed number of units, so packed prefixes are equal iff
// their states are
void pack_states(const std::vector<int8_t>& s, int T, std::string& out) {
    const int bits = T == 1 ? 1 : 2, per = 8 / bits;
    for (size_t i = 0; i < s.size(); i += per) {
        unsigned b = 0;
        for (int k = 0; k < per && i + k < s.size(); ++k)
            b |= static_cast<unsigned>(s[i + k]) << (k * bits);
        out += static_cast<char>(b);
    }
}

// The edges of a pointed region at its listed vertices (unbounded domains, d = 2 or 3; as
// check._walk): proves that the listed vertices are all its vertices and its rays exactly its
// extreme rays, each once. `mask[i]`: the vertices (columns 0 .. nv - 1) and rays (nv ..) where
// constraint i vanishes; `tight[col]`: the constraints vanishing at vertex col (rank d, proven).
//
// The edges at a vertex v are the extreme rays u of its tangent cone {x : n_i . x >= 0, i
// tight at v} (n_i the oriented normals), a pointed (rank d) full-dimensional cone. An extreme
// ray of it is tight on normals of rank d - 1: in 2-D it is orthogonal to some tight n_i, in
// 3-D it is a multiple of n_a x n_b for some independent tight pair; conversely such a u with
// every tight n_i . u >= 0 is in the cone and tight on rank d - 1, an extreme ray. So the
// candidates are +-(-n_i2, n_i1) (2-D) and +-(n_a x n_b) (3-D), kept when every tight n . u
// >= 0, one per set of tight constraints vanishing along it (`on`: rank d - 1 fixes the line,
// pointedness the direction). A listed vertex w != v on every hyperplane of `on` lies on the
// line v + t u, and in the region, which meets that line in the edge (-u leaves the cone): w
// is the edge's other end. Without one, the edge is unbounded iff no constraint decreases
// along u (else it ends at a vertex that is not listed). The vertices and bounded edges of a
// pointed polyhedron form a connected graph, so a non-empty listed set closed under this holds
// every vertex; every extreme ray of the recession cone is the direction of an unbounded edge,
// determined by the constraints it is tight on: the listed rays' sets of tight constraints must
// be the unbounded edges', each once. All arithmetic is exact (integer normals; signs along u
// by Rows::dir_sign, whose float filter has a rigorous bound).
void walk(Checker* c, const std::vector<Con>& cons, const std::vector<Bits>& mask,
          const std::vector<std::vector<int>>& tight, int nv, int nr) {
    const int d = c->d;
    const size_t nc = cons.size();
    auto nrm = [&](int i) { return rows_of(c, cons[i].lev).row(cons[i].row); };
    std::vector<Bits> found;  // the tight sets of the unbounded edges
    std::vector<Rat> q(d);
    Int u[3], acc;
    for (int col = 0; col < nv; ++col) {
        const auto& tv = tight[col];
        const size_t nt = tv.size();
        std::vector<Bits> seen_on;
        auto edge = [&]() {
            // u (d entries) is a candidate: in the cone? its `on` set, unless seen
            Bits on(nt);
            for (size_t a = 0; a < nt; ++a) {
                const Int* z = nrm(tv[a]);
                mpz_set_ui(acc.v, 0);
                for (int e = 0; e < d; ++e) mpz_addmul(acc.v, z[e].v, u[e].v);
                int sgn = mpz_sgn(acc.v) * cons[tv[a]].sg;
                if (sgn < 0) return;
                if (sgn == 0) on.set(a);
            }
            for (const Bits& o : seen_on)
                if (o == on) return;
            seen_on.push_back(on);
            // the other end among the listed vertices: on every hyperplane of `on`
            Bits hits = Bits::all(static_cast<size_t>(nv + nr));
            for (size_t a = 0; a < nt; ++a)
                if (on.test(a)) hits = hits & mask[tv[a]];
            for (int w = 0; w < nv; ++w)
                if (w != col && hits.test(static_cast<size_t>(w))) return;  // listed
            // unbounded, or it ends at a vertex that is not listed
            Point dir;
            for (int e = 0; e < d; ++e) mpq_set_z(q[e].v, u[e].v);
            make_point(q, dir);
            mpz_set_ui(dir.h[d].v, 0);
            Bits ray_on(nc);
            for (size_t i = 0; i < nc; ++i) {
                int sgn = rows_of(c, cons[i].lev).dir_sign(cons[i].row, dir) * cons[i].sg;
                if (sgn < 0) reject("an edge of a region ends at a vertex that is not listed");
                if (sgn == 0) ray_on.set(i);
            }
            found.push_back(std::move(ray_on));
        };
        if (d == 2) {
            for (size_t a = 0; a < nt; ++a) {
                const Int* z = nrm(tv[a]);
                for (int sgn : {1, -1}) {
                    mpz_neg(u[0].v, z[1].v);
                    mpz_set(u[1].v, z[0].v);
                    if (sgn < 0) { mpz_neg(u[0].v, u[0].v); mpz_neg(u[1].v, u[1].v); }
                    edge();
                }
            }
        } else {
            for (size_t a = 0; a < nt; ++a)
                for (size_t b = a + 1; b < nt; ++b) {
                    const Int* x = nrm(tv[a]);
                    const Int* y = nrm(tv[b]);
                    mpz_mul(u[0].v, x[1].v, y[2].v); mpz_submul(u[0].v, x[2].v, y[1].v);
                    mpz_mul(u[1].v, x[2].v, y[0].v); mpz_submul(u[1].v, x[0].v, y[2].v);
                    mpz_mul(u[2].v, x[0].v, y[1].v); mpz_submul(u[2].v, x[1].v, y[0].v);
                    if (!mpz_sgn(u[0].v) && !mpz_sgn(u[1].v) && !mpz_sgn(u[2].v)) continue;
                    for (int sgn : {1, -1}) {
                        if (sgn < 0)
                            for (int e = 0; e < 3; ++e) mpz_neg(u[e].v, u[e].v);
                        edge();
                    }
                }
        }
    }
    // the listed rays: exactly the unbounded edges' tight sets, each once
    std::vector<Bits> listed;
    for (int n = 0; n < nr; ++n) {
        Bits b(nc);
        for (size_t i = 0; i < nc; ++i)
            if (mask[i].test(static_cast<size_t>(nv + n))) b.set(i);
        listed.push_back(std::move(b));
    }
    std::sort(listed.begin(), listed.end());
    if (std::adjacent_find(listed.begin(), listed.end()) != listed.end())
        reject("a ray listed twice");
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    if (listed != found) reject("the rays are not the region's extreme rays");
}

// Unbounded domains: completeness by closure under facet crossing on the layer tree of the
// patterns (check._closure, whose docstring has the induction), combinatorially. A level-j cell
// C is a certified prefix (states of ops 0 .. j; a parent: ops 0 .. j - 1, the root the
// domain); inside its parent, op j's switching rows are affine and C is where each of its cell
// constraints is > 0 (rows identically zero on the parent are no constraints: their units take
// the tie state, the same in every child). The closure needs, for every C and every facet F of
// C interior to its parent, the child across F to be certified; given that the children cover
// C one level down, some region R under C has a proven facet G in F of dimension d - 1, and
// conversely every such facet of a region yields one check here, so checking every region's
// every facet checks every F.
//
// For R's facet G (its ids: exactly the constraints of R vanishing on it, proven before this
// runs), let j0 be the op of its least id. If that id is a domain row, or (by the choice of j0)
// a row of an op < j0, G lies on the boundary of the level-j0 parent (a constraint of the
// parent, >= 0 on it, vanishes on G's hyperplane): nothing is crossed at that level, nor at
// any level > j0 (the same row is in their parents); the caller skips it. Otherwise G is in a
// facet of the level-j0 cell C (R's prefix of ops <= j0), interior to C's parent, and for any
// level j < j0, G is interior to that level's cell (no row of ops <= j vanishes on G), so it
// is crossed at level j0 only. Take x in G's relative interior: every constraint of R not in
// ids is > 0 at x, every parent row keeps its sign near x. Op j0's rows at x: a row in ids
// vanishes on G, hence on its hyperplane, so just across (x + e n, n the normal pointing out of
// R, e > 0 small) it has the sign opposite to its sign on R (that at R's witness, non-zero: the
// witness is strictly inside every constraint); a row identically zero keeps 0; every other
// row keeps its sign at the witness: if a constraint of R, it is > 0 at x (not in ids); if not
// a constraint (the other threshold's row of a two-threshold unit: in the low state x < t0 on
// R, so x - t1 <= t0 - t1 < 0 on R's closure; high likewise), it is of constant strict sign on
// R's closure. (A non-zero row vanishing at x is therefore in ids: none is left undecided, where
// check._across perturbs x within the hyperplane, its x being any point of C's facet.) So the
// signs across are the witness signs with the rows of ids negated, exactly, and the states
// across are the rule's state of those signs (one threshold: on iff > 0; two: low iff the first
// row < 0, high iff the second > 0, else mid), which for a constraint id's row is the piece on
// the other side of the threshold that id stands for (id - offsets[j0] = t n + i: threshold t
// of unit i). Duplicated units vanish together and both move; a negated pair (h, -h) both
// flip, i.e. swap. A unit with both threshold rows in ids (only if its thresholds were equal)
// stops the pass. The cell across is the parent's prefix with op j0 in these states; it must
// be certified: found among the level-j0 prefixes now or at finish. Equal packed prefixes are
// equal states (no hash decides).
void across_facet(Checker* c, const std::vector<int8_t>& sgw, const std::string& before, int j0,
                  const std::vector<int64_t>& ids) {
    const Op& op = (*c->ops)[j0];
    const int n = op.n;
    const int64_t o0 = (*c->offsets)[j0], o1 = (*c->offsets)[j0 + 1];
    std::vector<int8_t> s(sgw);
    std::vector<int8_t> flips(n, 0);
    for (int64_t id : ids) {
        if (id < o0 || id >= o1) continue;
        int row = static_cast<int>(id - o0);
        if (!s[row]) reject("a facet on a row that vanishes at the witness");
        s[row] = static_cast<int8_t>(-s[row]);
        if (++flips[row % n] > 1) reject("a unit with both thresholds on one facet");
    }
    std::vector<int8_t> st(n);
    for (int i = 0; i < n; ++i) {
        if (op.T == 1) {
            st[i] = s[i] > 0 ? 1 : 0;
        } else {
            int v = 1;
            if (s[i] < 0) v = 0;
            if (s[n + i] > 0) v = 2;
            st[i] = static_cast<int8_t>(v);
        }
    }
    std::string key(before);
    pack_states(st, op.T, key);
    if (!(*c->prefixes)[j0].count(key)) c->across->push_back({j0, std::move(key)});
}

void check_region(Checker* c, ChunkCols& cc, int64_t r) {
    const int d = c->d, m = d + 1, P = c->P;
    const auto& ops = *c->ops;
    auto& lv = *c->lv;
    const auto& V = *c->verts;
    thread_local std::vector<std::vector<int8_t>> S;
    states_of(cc.tabs, cc.ids, r, ops, S);
    // pattern hash, prefix hashes
    std::vector<uint64_t> pre(P + 1);
    pre[0] = 0x51ed2701u;
    for (int j = 0; j < P; ++j) pre[j + 1] = mix(pre[j], hash_bytes(S[j].data(), S[j].size()));
    c->pat_hash->push_back(pre[P]);
    // maps of every prefix (level 0 is the root)
    for (int j = 0; j < P; ++j) build(c, j, S[j]);
    // unbounded domains: the packed prefixes (cum[j]: ops 0 .. j - 1), each level's recorded
    std::vector<std::string> cum;
    if (c->closure) {
        cum.resize(P + 1);
        for (int j = 0; j < P; ++j) {
            cum[j + 1] = cum[j];
            pack_states(S[j], ops[j].T, cum[j + 1]);
            (*c->prefixes)[j].insert(cum[j + 1]);
        }
    }
    // the witness and the vertices
    std::vector<Rat> q(d);
    Point w;
    for (int k = 0; k < d; ++k) get_rat(cc.wnum, cc.wden, r * d + k, q[k].v);
    make_point(q, w);
    std::vector<int64_t> vids;
    int64_t v0 = cc.rv_start.at(r), v1 = cc.rv_start.at(r + 1);
    if (v1 < v0) reject("bad vertex offsets");
    for (int64_t k = v0; k < v1; ++k) {
        int64_t v = cc.rv_flat.at(k);
        if (v < 0 || v >= static_cast<int64_t>(V.size())) reject("a vertex index out of range");
        vids.push_back(v);
    }
    {
        std::vector<int64_t> sv(vids);
        std::sort(sv.begin(), sv.end());
        if (std::adjacent_find(sv.begin(), sv.end()) != sv.end()) reject("a vertex listed twice");
    }
    const int nv = static_cast<int>(vids.size());
    // rays (unbounded domains): non-zero directions, homogeneous (X_1 .. X_d, 0)
    std::vector<Point> rays;
    {
        int64_t r0 = cc.ray_start.at(r), r1 = cc.ray_start.at(r + 1);
        if (r1 < r0 || r1 > cc.ynum.n / d) reject("bad ray offsets");
        if (r1 > r0 && !c->closure) reject("a ray on a bounded domain");
        rays.resize(static_cast<size_t>(r1 - r0));
        for (int64_t k = r0; k < r1; ++k) {
            for (int i = 0; i < d; ++i) get_rat(cc.ynum, cc.yden, k * d + i, q[i].v);
            Point& p = rays[static_cast<size_t>(k - r0)];
            make_point(q, p);
            bool nz = false;
            for (int i = 0; i < d; ++i) nz = nz || mpz_sgn(p.h[i].v);
            if (!nz) reject("a zero ray");
            mpz_set_ui(p.h[d].v, 0);
        }
    }
    const int nr = static_cast<int>(rays.size());
    const int64_t ray_base = static_cast<int64_t>(c->rays->size());
    if (d >= 3) c->rays->insert(c->rays->end(), rays.begin(), rays.end());
    // a pointed region (every one in this pass: one with lines has no columns here) has a
    // vertex; one proven below (tight on rank d) also proves it pointed
    if (c->closure && nv == 0) reject("a region without a vertex");
    // constraints: the domain's rows, then every op's cell constraints (non-zero rows)
    thread_local std::vector<Con> cons;
    cons.clear();
    for (int i = 0; i < c->n_dom; ++i) {
        if (c->dom->sign(i, w) <= 0) reject("witness outside the domain");
        cons.push_back({-1, i, 1, i});
    }
    // d >= 3: every op's signs at the witness (sg) and which of its rows are constraints
    thread_local std::vector<std::vector<int8_t>> sg;
    thread_local std::vector<std::vector<char>> is_con;
    sg.resize(P);
    is_con.resize(P);
    for (int j = 0; j < P; ++j) {
        const Op& op = ops[j];
        const Rows& W = lv[j].sw;
        const int n = op.n;
        sg[j].assign(static_cast<size_t>(W.n), 0);
        is_con[j].assign(static_cast<size_t>(W.n), 0);
        for (int i = 0; i < n; ++i) {
            int st, s1 = 0;
            int s0 = W.sign(i, w);
            sg[j][i] = static_cast<int8_t>(s0);
            if (op.T == 1) {
                st = s0 > 0 ? 1 : 0;  // the rule's state_from_signs: on iff positive
            } else {
                s1 = W.sign(n + i, w);
                sg[j][n + i] = static_cast<int8_t>(s1);
                st = 1;
                if (s0 < 0) st = 0;
                if (s1 > 0) st = 2;
            }
            if (st != S[j][i]) reject("state at the witness is not the pattern");
            // cell constraints (the rule's cell_constraints): T = 1: row i, + on, - off;
            // T = 2: low: -row i; mid: +row i, -row n + i; high: +row n + i
            int ci[2], cs[2], nc = 0;
            if (op.T == 1) { ci[0] = i; cs[0] = st ? 1 : -1; nc = 1; }
            else if (st == 0) { ci[0] = i; cs[0] = -1; nc = 1; }
            else if (st == 1) { ci[0] = i; cs[0] = 1; ci[1] = n + i; cs[1] = -1; nc = 2; }
            else { ci[0] = n + i; cs[0] = 1; nc = 1; }
            for (int a = 0; a < nc; ++a) {
                if (W.zero[ci[a]]) continue;  // identically zero: splits nothing
                int sg = ci[a] == i ? s0 : s1;  // the sign of row ci[a] at the witness
                if (sg * cs[a] <= 0) reject("witness not strictly inside a cell constraint");
                cons.push_back({j, ci[a], cs[a], (*c->offsets)[j] + ci[a]});
                is_con[j][ci[a]] = 1;
            }
        }
        // a function not identically zero vanishing at a witness: its op's cells are not known
        // to be those of its sign vectors here (check.py's refine)
        for (int i = 0; i < W.n; ++i)
            if (!W.zero[i] && !sg[j][i]) (*c->refine)[j] = 0;
    }
    // the output map (level P, built above)
    {
        // every region's map is over the same denominator (the product of the stretches' and
        // ops' denominators): equal maps have equal integers Zm, which are hashed
        const Level& out = lv[P];
        uint64_t h = 0x243f6a8885a308d3ULL;
        thread_local Int nu, de, a, b, z;
        for (int i = 0; i < c->n_out * m; ++i) {
            out.get(static_cast<size_t>(i), z.v);
            cc.onum.get(r * c->n_out * m + i, nu.v);
            cc.oden.get(r * c->n_out * m + i, de.v);
            if (mpz_sgn(de.v) <= 0) reject("an output entry with a denominator <= 0");
            mpz_mul(a.v, nu.v, out.den.v);
            mpz_mul(b.v, z.v, de.v);
            if (mpz_cmp(a.v, b.v) != 0) reject("output map differs");
            h = hash_mpz(h, z.v);
        }
        c->out_hash->push_back(h);
    }
    // signs of every constraint at every vertex: >= 0, tight on rank d; along every ray: >= 0
    const size_t nc = cons.size();
    // a set per constraint, its words reused from region to region: an allocation per
    // constraint and region costs about a quarter of this pass on wide nets
    thread_local std::vector<Bits> mask;
    mask.resize(nc);
    for (Bits& x : mask) x.w.assign((static_cast<size_t>(nv + nr) + 63) / 64, 0);
    std::vector<std::vector<int>> tight(nv);
    Box box;
    box.ok = nv > 0;
    for (int k = 0; k < d; ++k) box.lo[k] = box.hi[k] = 0;
    for (int col = 0; col < nv && box.ok; ++col) {
        const Point& p = V[vids[col]];
        box.ok = p.filt;
        for (int k = 0; k < d; ++k) {
            if (col == 0 || p.f[k] < box.lo[k]) box.lo[k] = p.f[k];
            if (col == 0 || p.f[k] > box.hi[k]) box.hi[k] = p.f[k];
        }
    }
    box.widen(d);
    for (size_t i = 0; i < nc; ++i) {
        const Con& k = cons[i];
        const Rows& R = rows_of(c, k.lev);
        for (int n = 0; n < nr; ++n) {
            int s = R.dir_sign(k.row, rays[static_cast<size_t>(n)]) * k.sg;
            if (s < 0) reject("a ray leaves the region");
            if (s == 0) mask[i].set(static_cast<size_t>(nv + n));
        }
        if (R.positive_on(k.row, k.sg, box)) continue;  // > 0 at every vertex: none tight
        for (int col = 0; col < nv; ++col) {
            int s = R.sign(k.row, V[vids[col]]) * k.sg;
            if (s < 0) reject("a vertex violates a constraint");
            if (s == 0) {
                mask[i].set(static_cast<size_t>(col));
                tight[col].push_back(static_cast<int>(i));
            }
        }
    }
    for (int col = 0; col < nv; ++col) {
        const auto& t = tight[col];
        bool full = false;
        if (d == 1) {
            for (int i : t) {
                const Rows& R = rows_of(c, cons[i].lev);
                if (mpz_sgn(R.row(cons[i].row)[0].v)) { full = true; break; }
            }
        } else if (d == 2) {
            for (size_t a = 0; a < t.size() && !full; ++a)
                for (size_t b = a + 1; b < t.size() && !full; ++b)
                    full = det2(c, cons[t[a]], cons[t[b]]) != 0;
        } else if (d == 3) {
            for (size_t a = 0; a < t.size() && !full; ++a)
                for (size_t b = a + 1; b < t.size() && !full; ++b)
                    for (size_t e = b + 1; e < t.size() && !full; ++e)
                        full = det3(c, cons[t[a]], cons[t[b]], cons[t[e]]) != 0;
        } else {
            full = tight_rank(c, cons, t) == d;
        }
        if (!full) reject("a listed vertex is not a vertex of the region");
    }
    if (c->closure) walk(c, cons, mask, tight, nv, nr);
    // true facets: the inclusion-maximal sets of generators (vertices, then rays) of
    // constraints tight at >= d vertices (bounded) or at >= 1 (unbounded), not all of them
    // (check._true_facets)
    auto vertex_count = [&](const Bits& b) {
        if (!nr) return b.count();
        int n = 0;
        for (int col = 0; col < nv; ++col) n += b.test(static_cast<size_t>(col));
        return n;
    };
    const int least = c->closure ? 1 : d;
    std::vector<std::pair<Bits, std::vector<int>>> groups;
    {
        std::unordered_map<Bits, int, BitsHash> at;
        for (size_t i = 0; i < nc; ++i) {
            if (vertex_count(mask[i]) < least) continue;
            auto it = at.find(mask[i]);
            if (it == at.end()) {
                at.emplace(mask[i], static_cast<int>(groups.size()));
                groups.push_back({mask[i], {static_cast<int>(i)}});
            } else {
                groups[it->second].second.push_back(static_cast<int>(i));
            }
        }
    }
    std::sort(groups.begin(), groups.end(),
              [](const auto& a, const auto& b) { return larger_first(a.first, b.first); });
    std::vector<int> maximal;
    for (size_t g = 0; g < groups.size(); ++g) {
        const Bits& mk = groups[g].first;
        if (mk.count() == nv + nr) continue;
        bool sub = false;
        for (int h : maximal) sub = sub || mk.within(groups[h].first);
        if (!sub) maximal.push_back(static_cast<int>(g));
    }
    // their id sets
    std::vector<std::vector<int64_t>> fids(maximal.size());
    for (size_t f = 0; f < maximal.size(); ++f) {
        for (int i : groups[maximal[f]].second) fids[f].push_back(cons[i].cid);
        std::sort(fids[f].begin(), fids[f].end());
    }
    // the listed facets: exactly these
    int64_t f0 = cc.fstart.at(r), f1 = cc.fstart.at(r + 1);
    if (f1 < f0) reject("bad facet offsets");
    if (f1 - f0 != static_cast<int64_t>(maximal.size())) reject("facet count differs");
    std::vector<char> seen(maximal.size(), 0);
    std::vector<Rat> row(m);
    thread_local Int a, b;
    for (int64_t f = f0; f < f1; ++f) {
        std::vector<int64_t> ids;
        int64_t i0 = cc.fid_start.at(f), i1 = cc.fid_start.at(f + 1);
        if (i1 <= i0) reject("a facet without ids");
        for (int64_t k = i0; k < i1; ++k) ids.push_back(cc.fid_flat.at(k));
        std::vector<int64_t> sorted_ids(ids);
        std::sort(sorted_ids.begin(), sorted_ids.end());
        if (std::adjacent_find(sorted_ids.begin(), sorted_ids.end()) != sorted_ids.end())
            reject("facet ids not distinct");
        size_t which = maximal.size();
        for (size_t g = 0; g < maximal.size(); ++g)
            if (fids[g] == sorted_ids) { which = g; break; }
        if (which == maximal.size()) reject("facet ids are not those of a facet");
        if (seen[which]) reject("a facet listed twice");
        seen[which] = 1;
        const auto& grp = groups[maximal[which]];
        // a . t <= b: [-a | b] is one of its constraints, oriented
        int64_t rw = cc.frow.at(f);
        if (rw < 0) reject("a facet row out of range");
        for (int k = 0; k < m; ++k) {  // compared by cross-multiplying: no need to reduce
            cc.rnum.get(rw * m + k, mpq_numref(row[k].v));
            cc.rden.get(rw * m + k, mpq_denref(row[k].v));
            if (mpz_sgn(mpq_denref(row[k].v)) <= 0) reject("a facet row with a denominator <= 0");
        }
        bool match = false;
        for (int i : grp.second) {
            const Con& k = cons[i];
            const Rows& R = rows_of(c, k.lev);
            const mpz_t& den = den_of(c, k);
            bool eq = true;
            for (int e = 0; e < m && eq; ++e) {
                // row[e] (negated for e < d) == sg * z_e / den
                mpz_mul(a.v, mpq_numref(row[e].v), den);
                if (e < d) mpz_neg(a.v, a.v);
                mpz_mul(b.v, R.row(k.row)[e].v, mpq_denref(row[e].v));
                if (k.sg < 0) mpz_neg(b.v, b.v);
                eq = mpz_cmp(a.v, b.v) == 0;
            }
            if (eq) { match = true; break; }
        }
        if (!match) reject("a facet's inequality is not one of its constraints");
        // its vertices: exactly the region's vertices on it
        std::vector<int64_t> want, got;
        for (int col = 0; col < nv; ++col)
            if (grp.first.test(static_cast<size_t>(col))) want.push_back(vids[col]);
        int64_t g0 = cc.fv_start.at(f), g1 = cc.fv_start.at(f + 1);
        if (g1 < g0) reject("bad facet vertex offsets");
        for (int64_t k = g0; k < g1; ++k) got.push_back(cc.fv_flat.at(k));
        std::sort(want.begin(), want.end());
        std::sort(got.begin(), got.end());
        if (want != got) reject("a facet's vertices differ");
        // its rays: exactly the region's rays on it (indices into the region's rays)
        std::vector<int64_t> want_rays, got_rays;
        for (int n = 0; n < nr; ++n)
            if (grp.first.test(static_cast<size_t>(nv + n))) want_rays.push_back(n);
        if (cc.fray_start.size()) {
            int64_t y0 = cc.fray_start.at(f), y1 = cc.fray_start.at(f + 1);
            if (y1 < y0) reject("bad facet ray offsets");
            for (int64_t k = y0; k < y1; ++k) got_rays.push_back(cc.fray_flat.at(k));
        }
        std::sort(got_rays.begin(), got_rays.end());
        if (want_rays != got_rays) reject("a facet's rays differ");
        // d >= 3: the region's facet rows (for the separation test), every listed facet's
        int64_t own_row = -1;
        if (d >= 3) {
            const Con& k0 = cons[grp.second[0]];
            const Rows& R = rows_of(c, k0.lev);
            std::vector<Int> o(m);
            for (int e = 0; e < m; ++e) {
                mpz_set(o[e].v, R.row(k0.row)[e].v);
                if (k0.sg < 0) mpz_neg(o[e].v, o[e].v);
            }
            own_row = c->frows->n;
            c->frows->append(o.data());
        }
        // for adjacency: a facet with a domain row among its ids has no pair
        int64_t low = sorted_ids[0];
        if (low < c->n_dom) continue;
        const auto& off = *c->offsets;
        int j0 = static_cast<int>(std::upper_bound(off.begin(), off.end(), low) - off.begin()) - 1;
        if (c->closure) across_facet(c, sg[j0], cum[j0], j0, sorted_ids);
        auto [pid, side] = plane_of(c, cons[grp.second[0]]);
        Facet rec{};
        rec.region = r + c->base;
        rec.plane = pid;
        rec.j0 = j0;
        rec.side = side;
        rec.pre = pre[j0];
        rec.sig = 0;
        if (d >= 3 && (*c->refine)[j0]) {
            // op j0's signs on the region (those at the witness: constant on it, its cells
            // being sign vectors), 0 for its rows vanishing on the plane: the constraints of
            // the facet's group (exactly those of the region vanishing on it) and any other
            // row vanishing at every vertex of the facet (which spans the plane)
            thread_local std::vector<int8_t> masked;
            masked = sg[j0];
            for (int i : grp.second)
                if (cons[i].lev == j0) masked[cons[i].row] = 0;
            const Rows& W = lv[j0].sw;
            for (int i = 0; i < W.n; ++i) {
                if (is_con[j0][i] || !masked[i]) continue;
                bool on = true;  // (the facet's vertices and rays span the plane)
                for (size_t k = 0; k < want.size() && on; ++k) on = W.sign(i, V[want[k]]) == 0;
                for (size_t k = 0; k < want_rays.size() && on; ++k)
                    on = W.dir_sign(i, rays[static_cast<size_t>(want_rays[k])]) == 0;
                if (on) masked[i] = 0;
            }
            rec.sig = hash_bytes(masked.data(), masked.size());
        }
        rec.lo = rec.hi = -1;
        if (d == 2) {
            // its ends along c0: the least and greatest vertex, or unbounded (-1) where a ray
            // on it goes that way (a facet of a pointed region has a vertex)
            if (want.empty()) reject("a facet without vertices");
            int c0 = mpz_sgn((*c->planes)[pid][1].v) ? 0 : 1;
            int64_t lo = want[0], hi = want[0];
            for (int64_t v : want) {
                if (cmp_coord(V[v], V[lo], c0) < 0) lo = v;
                if (cmp_coord(V[v], V[hi], c0) > 0) hi = v;
            }
            for (int64_t n : want_rays) {
                int sgn = mpz_sgn(rays[static_cast<size_t>(n)].h[c0].v);
                if (sgn < 0) lo = -1;
                if (sgn > 0) hi = -1;
            }
            rec.lo = lo;
            rec.hi = hi;
        }
        rec.rays_at = static_cast<int64_t>(c->facet_rays->size());
        rec.rays_n = d >= 3 ? static_cast<int64_t>(want_rays.size()) : 0;
        if (d >= 3)
            for (int64_t n : want_rays)
                c->facet_rays->push_back(ray_base + n);
        rec.row = own_row;
        rec.verts_at = static_cast<int64_t>(c->facet_verts->size());
        rec.verts_n = d >= 3 ? static_cast<int64_t>(want.size()) : 0;
        if (d >= 3) c->facet_verts->insert(c->facet_verts->end(), want.begin(), want.end());
        rec.ids_at = static_cast<int64_t>(c->facet_ids->size());
        rec.ids_n = static_cast<int64_t>(sorted_ids.size());
        c->facet_ids->insert(c->facet_ids->end(), sorted_ids.begin(), sorted_ids.end());
        c->facets->push_back(rec);
    }
    if (c->closure) {
        // unbounded domains: no volume (completeness is the closure's, at finish)
        Int vden;
        cc.vden.get(r, vden.v);
        if (mpz_sgn(vden.v) != 0) reject("a volume on an unbounded domain");
        for (int64_t v : vids) (*c->used)[v] = 1;
        if (d >= 3) c->frow_start->push_back(c->frows->n);
        return;
    }
    // volume: the hull of the listed vertices, equal to the stated one; summed
    Rat vol, given;
    if (d >= 3) {
        std::vector<Bits> masks;
        std::vector<Int> mask_rows;
        for (int g : maximal) {
            masks.push_back(groups[g].first);
            const Con& k = cons[groups[g].second[0]];
            const Rows& R = rows_of(c, k.lev);
            for (int e = 0; e < m; ++e) mask_rows.push_back(R.z[static_cast<size_t>(k.row) * R.m + e]);
        }
        pulling_volume(c, vids, masks, mask_rows, vol.v);
    } else {
        hull_volume(c, vids, vol.v);
    }
    cc.vnum.get(r, mpq_numref(given.v));
    cc.vden.get(r, mpq_denref(given.v));
    // a volume is required up to 3-D (check._VOLUME_FIELD_MAX_DIM), optional (denominator 0:
    // none) above; wherever it is given it must be this one
    int vs = mpz_sgn(mpq_denref(given.v));
    if (vs < 0 || (vs == 0 && d <= 3)) reject("volume missing or with a bad denominator");
    if (vs > 0) {
        mpq_canonicalize(given.v);
        if (!mpq_equal(given.v, vol.v)) reject("volume differs from the volume of the vertices");
    }
    add_volume(c, vol.v);
    for (int64_t v : vids) (*c->used)[v] = 1;
    if (d >= 3) c->frow_start->push_back(c->frows->n);
}

// d >= 3: does another facet row h of x's region have the facet y on or beyond it (h <= 0 at
// every vertex of y and along every ray of it)? Then the two facets meet in H ∩ {h = 0} at most
// (check._Adjacency.separated).
bool separated(Checker* c, const Facet& x, const Facet& y) {
    const auto& V = *c->verts;
    const auto& FV = *c->facet_verts;
    const auto& FR = *c->facet_rays;
    const auto& Y = *c->rays;
    const Rows& R = *c->frows;
    int64_t h0 = (*c->frow_start)[x.region], h1 = (*c->frow_start)[x.region + 1];
    for (int64_t h = h0; h < h1; ++h) {
        if (h == x.row) continue;  // its own hyperplane carries both facets
        bool beyond = true;
        for (int64_t k = 0; k < y.verts_n && beyond; ++k)
            beyond = R.sign(static_cast<int>(h), V[FV[y.verts_at + k]]) <= 0;
        for (int64_t k = 0; k < y.rays_n && beyond; ++k)  // and along its rays
            beyond = R.dir_sign(static_cast<int>(h), Y[FR[y.rays_at + k]]) <= 0;
        if (beyond) return true;
    }
    return false;
}

// d >= 4: do the facets share d affinely independent vertices (a (d-1)-simplex)? True proves
// it: the rank of their shared vertices' homogeneous rows is at most d (they lie on the plane)
// and at least their rank modulo a prime, which is d. False proves nothing (a smaller rank
// modulo the prime may be the prime's doing): the pair then takes the separation tests and the
// exact LP, which decide it whatever its rank.
bool share_simplex(Checker* c, const std::vector<int64_t>& shared) {
    const int d = c->d;
    if (static_cast<int>(shared.size()) < d) return false;
    const auto& V = *c->verts;
    const size_t n = shared.size(), m = static_cast<size_t>(d) + 1;
    const uint64_t P = 0x1fffffffffffffffULL;  // 2^61 - 1, a prime
    auto mulmod = [&](uint64_t a, uint64_t b) {
        return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % P);
    };
    auto inv = [&](uint64_t a) {  // a^(P - 2)
        uint64_t r = 1, e = P - 2;
        for (; e; e >>= 1, a = mulmod(a, a))
            if (e & 1) r = mulmod(r, a);
        return r;
    };
    std::vector<uint64_t> a(n * m);
    for (size_t i = 0; i < n; ++i)
        for (size_t e = 0; e < m; ++e) {
            const mpz_t& z = V[shared[i]].h[e].v;
            uint64_t r = mpz_fdiv_ui(z, static_cast<unsigned long>(P));  // in [0, P)
            a[i * m + e] = r;
        }
    size_t rank = 0;
    for (size_t col = 0; col < m && rank < n; ++col) {
        size_t piv = rank;
        while (piv < n && !a[piv * m + col]) ++piv;
        if (piv == n) continue;
        for (size_t e = 0; e < m; ++e) std::swap(a[piv * m + e], a[rank * m + e]);
        uint64_t f = inv(a[rank * m + col]);
        for (size_t i = rank + 1; i < n; ++i) {
            uint64_t g = mulmod(a[i * m + col], f);
            if (!g) continue;
            for (size_t e = col; e < m; ++e)
                a[i * m + e] = (a[i * m + e] + P - mulmod(g, a[rank * m + e])) % P;
        }
        ++rank;
    }
    return static_cast<int>(rank) >= d;
}

PyObject* int_list(const Int* z, int n) {
    PyObject* out = PyList_New(n);
    if (!out) throw PyError{};
    for (int e = 0; e < n; ++e) {
        PyObject* v = new_int(z[e].v);
        if (!v) { Py_DECREF(out); throw PyError{}; }
        PyList_SET_ITEM(out, e, v);
    }
    return out;
}

// d >= 4: the exact LP of check._interiors_meet, by the Python callable `decide(i, j, rows,
// plane)`: is a point of the plane strictly inside every other facet row of both regions (rows
// [a | c], a . t + c >= 0 on their regions)?
bool interiors_meet(Checker* c, PyObject* decide, const Facet& x, const Facet& y) {
    if (!decide || decide == Py_None) reject("an adjacency that needs an exact LP");
    const Rows& R = *c->frows;
    const int m = c->d + 1;
    PyObject* rows = PyList_New(0);
    if (!rows) throw PyError{};
    struct Drop { PyObject* o; ~Drop() { Py_XDECREF(o); } } drop{rows};
    for (const Facet* f : {&x, &y}) {
        int64_t h0 = (*c->frow_start)[f->region], h1 = (*c->frow_start)[f->region + 1];
        for (int64_t h = h0; h < h1; ++h) {
            if (h == f->row) continue;
            PyObject* row = int_list(&R.z[static_cast<size_t>(h) * m], m);
            int rc = PyList_Append(rows, row);
            Py_DECREF(row);
            if (rc < 0) throw PyError{};
        }
    }
    PyObject* plane = int_list((*c->planes)[x.plane].data(), m);
    int64_t i = std::min(x.region, y.region), j = std::max(x.region, y.region);
    PyObject* got = PyObject_CallFunction(decide, "LLOO", static_cast<long long>(i),
                                          static_cast<long long>(j), rows, plane);
    Py_DECREF(plane);
    if (!got) throw PyError{};
    int yes = PyObject_IsTrue(got);
    Py_DECREF(got);
    if (yes < 0) throw PyError{};
    return yes;
}

// d >= 3: the adjacent pairs among the facets idx[s .. cut) (one side) and idx[cut .. e) (the
// other) of one group (check._Adjacency._overlapping for bounded, so pointed, facets): extents
// along every coordinate the plane does not fix overlap with positive length (the other side's
// facets swept in order of their lower ends along the first one); then d shared affinely
// independent vertices (a shared (d-1)-simplex; in 3-D any three distinct vertices of a polygon)
// prove a pair, and a facet of either region with the other facet on or beyond it disproves it;
// in 3-D nothing else is possible (an edge line of either polygon separates disjoint ones),
// above, the exact LP decides (`decide`, see interiors_meet).
void pairs_nd(Checker* c, PyObject* decide, const std::vector<int64_t>& idx, size_t s, size_t cut,
              size_t e, uint64_t n_reg,
              std::vector<std::pair<uint64_t, std::pair<int64_t, int64_t>>>& out) {
    const int d = c->d;
    const auto& F = *c->facets;
    const auto& V = *c->verts;
    const auto& FV = *c->facet_verts;
    if (s == cut || cut == e) return;
    const auto& key = (*c->planes)[F[idx[s]].plane];
    std::vector<int> freec;
    for (int i = 0; i < d; ++i) {
        bool any = false;
        for (int k = 0; k < d; ++k) any = any || (k != i && mpz_sgn(key[k].v));
        if (any) freec.push_back(i);
    }
    const int c0 = freec[0];
    // ends of every facet of the group along each free coordinate (-1: unbounded, where a ray
    // of it goes that way)
    const auto& FR = *c->facet_rays;
    const auto& Y = *c->rays;
    size_t n = e - s;
    std::vector<int64_t> lo(n * d, -1), hi(n * d, -1);
    for (size_t a = 0; a < n; ++a) {
        const Facet& f = F[idx[s + a]];
        if (f.verts_n == 0) reject("a facet without vertices");
        for (int i : freec) {
            int64_t l = FV[f.verts_at], u = l;
            for (int64_t k = 1; k < f.verts_n; ++k) {
                int64_t v = FV[f.verts_at + k];
                if (cmp_coord(V[v], V[l], i) < 0) l = v;
                if (cmp_coord(V[v], V[u], i) > 0) u = v;
            }
            for (int64_t k = 0; k < f.rays_n; ++k) {
                int sgn = mpz_sgn(Y[FR[f.rays_at + k]].h[i].v);
                if (sgn < 0) l = -1;
                if (sgn > 0) u = -1;
            }
            lo[a * d + i] = l;
            hi[a * d + i] = u;
        }
    }
    // one side by its lower ends along c0: a facet whose lower end is not below p's upper end
    // ends the sweep for p (so does every later one's)
    std::vector<size_t> minus;
    for (size_t r = s; r < cut; ++r) minus.push_back(r - s);
    std::stable_sort(minus.begin(), minus.end(), [&](size_t x, size_t y) {
        return cmp_end(V, lo[x * d + c0], -1, lo[y * d + c0], -1, c0) < 0;
    });
    std::vector<int64_t> shared;
    for (size_t q = cut; q < e; ++q) {
        const Facet& fp = F[idx[q]];
        size_t pa = q - s;
        for (size_t ma : minus) {
            if (cmp_end(V, lo[ma * d + c0], -1, hi[pa * d + c0], 1, c0) >= 0) break;
            const Facet& fm = F[idx[s + ma]];
            bool ok = true;
            for (int i : freec) {
                ok = ok && cmp_end(V, lo[pa * d + i], -1, hi[ma * d + i], 1, i) < 0 &&
                     cmp_end(V, lo[ma * d + i], -1, hi[pa * d + i], 1, i) < 0;
                if (!ok) break;
            }
            if (!ok) continue;
            shared.clear();
            for (int64_t a = 0; a < fp.verts_n; ++a)
                for (int64_t b = 0; b < fm.verts_n; ++b)
                    if (FV[fp.verts_at + a] == FV[fm.verts_at + b]) shared.push_back(FV[fp.verts_at + a]);
            bool proven = d == 3 ? shared.size() >= 3 : share_simplex(c, shared);
            if (!proven) {
                if (separated(c, fp, fm) || separated(c, fm, fp)) continue;
                if (d > 3 && !interiors_meet(c, decide, fp, fm)) continue;
            }
            int64_t i = fp.region, j = fm.region;
            int64_t fa = idx[q], fb = idx[s + ma];
            if (i > j) { std::swap(i, j); std::swap(fa, fb); }
            if (i == j) reject("a region adjacent to itself");
            out.push_back({static_cast<uint64_t>(i) * n_reg + static_cast<uint64_t>(j), {fa, fb}});
        }
    }
}

// The global vertices are distinct points: sorted by their floats (equal points have equal
// ones), runs of equal floats compared exactly.
void distinct_vertices(Checker* c) {
    const int d = c->d;
    const auto& V = *c->verts;
    std::vector<int64_t> order(V.size());
    for (size_t k = 0; k < V.size(); ++k) order[k] = static_cast<int64_t>(k);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return V[a].f < V[b].f; });
    for (size_t s = 0; s + 1 < order.size();) {
        size_t e = s + 1;
        while (e < order.size() && V[order[e]].f == V[order[s]].f) ++e;
        for (size_t x = s; x < e; ++x)
            for (size_t y = x + 1; y < e; ++y) {
                bool same = true;
                for (int i = 0; i < d && same; ++i) same = cmp_coord(V[order[x]], V[order[y]], i) == 0;
                if (same) reject("two vertices are the same point");
            }
        s = e;
    }
}

// ----------------------------------------------------------------------------- Python type

void Checker_dealloc(Checker* c) {
    delete c->offsets; delete c->dom; delete c->domden; delete c->ops; delete c->lv;
    delete c->verts; delete c->used; delete c->pat_hash; delete c->out_hash; delete c->vsum;
    delete c->facets; delete c->facet_ids; delete c->facet_verts; delete c->frows;
    delete c->frow_start; delete c->plane_ids; delete c->planes; delete c->refine;
    delete c->rays; delete c->facet_rays; delete c->prefixes; delete c->across;
    Py_TYPE(c)->tp_free(reinterpret_cast<PyObject*>(c));
}

void int_vec(PyObject* list, std::vector<Int>& out, size_t want) {
    if (!PyList_Check(list)) reject("expected a list of ints");
    size_t n = static_cast<size_t>(PyList_GET_SIZE(list));
    if (n != want) reject("a list of ints of the wrong length");
    out.assign(n, Int());
    for (size_t k = 0; k < n; ++k) get_int(PyList_GET_ITEM(list, static_cast<Py_ssize_t>(k)), out[k].v);
}

// The limbs of every level (Level::K) from a bound B_j on every entry of every map of level j
// (whatever the pattern): B_0 the root's largest entry; entry (r, k) of level j + 1 is
// sum_i A_ri (slope_i z_ik + [k = d] const_i den_j) + [k = d] A_rn den_j lden (build, z the
// map of level j, den_j its denominator), so
// B_{j+1} = max_r sum_i |A_ri| (sigma_i B_j + kappa_i den_j) + |A_rn| den_j lden, sigma_i and
// kappa_i the largest |slope| and |constant| of unit i over its states. K is the fewest limbs
// with B < 2^(64 K - 1) if at most KMAX (and op j is small, for level j + 1), else 0 (GMP).
// Also each op's den_in and den_bottom modulo 2^(64 K) for the K after it (build_fixed), and
// whether cascade() applies to it (Op::cascade).
void level_limbs(Checker* c) {
    auto& ops = *c->ops;
    auto& lv = *c->lv;
    auto limbs = [](const mpz_t bound) {
        long k = (static_cast<long>(mpz_sizeinbase(bound, 2)) + 1 + 63) / 64;  // bits + sign
        return k <= KMAX ? static_cast<int>(k) : 0;
    };
    Int B, den, t, bot, sum, sig, kap, prevden, amax, vb;
    for (const Int& z : lv[0].Zm)
        if (mpz_cmpabs(z.v, B.v) > 0) mpz_abs(B.v, z.v);
    mpz_set(den.v, lv[0].den.v);
    lv[0].K = limbs(B.v);
    for (int j = 0; j < c->P; ++j) {
        Op& op = ops[j];
        const int n = op.n;
        std::vector<Int> Tb(n);  // sigma_i B + kappa_i den
        for (int i = 0; i < n; ++i) {
            mpz_set_ui(sig.v, 0);
            mpz_set_ui(kap.v, 0);
            for (int st = 0; st < op.S; ++st) {
                const mpz_t& a = op.slope[static_cast<size_t>(st) * n + i].v;
                const mpz_t& b = op.cons[static_cast<size_t>(st) * n + i].v;
                if (mpz_cmpabs(a, sig.v) > 0) mpz_abs(sig.v, a);
                if (mpz_cmpabs(b, kap.v) > 0) mpz_abs(kap.v, b);
            }
            mpz_mul(Tb[i].v, sig.v, B.v);
            mpz_addmul(Tb[i].v, kap.v, den.v);
        }
        mpz_mul(bot.v, den.v, op.lden.v);
        mpz_set_ui(B.v, 0);
        for (int r = 0; r < op.n_next; ++r) {
            const Int* Ar = &op.A[static_cast<size_t>(r) * (n + 1)];
            mpz_abs(t.v, Ar[n].v);
            mpz_mul(sum.v, t.v, bot.v);
            for (int i = 0; i < n; ++i) {
                mpz_abs(t.v, Ar[i].v);
                mpz_addmul(sum.v, t.v, Tb[i].v);
            }
            if (mpz_cmp(sum.v, B.v) > 0) mpz_set(B.v, sum.v);
        }
        int K = op.small ? limbs(B.v) : 0;
        lv[j + 1].K = K;
        if (K) {
            op.den_in.assign(K, 0);
            op.den_bottom.assign(K, 0);
            fw_set(den.v, op.den_in.data(), K);
            fw_set(bot.v, op.den_bottom.data(), K);
        }
        if (K && j > 0 && ops[j - 1].small) {
            // amax: the largest |entry| of op j - 1's A; vb: max_r sum_i |A_ri| sigma_i amax
            long sbits = 0;
            for (const Int& x : op.slope)
                sbits = std::max(sbits, static_cast<long>(mpz_sizeinbase(x.v, 2)));
            mpz_set_ui(amax.v, 0);
            for (const Int& x : ops[j - 1].A)
                if (mpz_cmpabs(x.v, amax.v) > 0) mpz_abs(amax.v, x.v);
            mpz_set_ui(vb.v, 0);
            for (int r = 0; r < op.n_next; ++r) {
                mpz_set_ui(sum.v, 0);
                for (int i = 0; i < n; ++i) {
                    mpz_set_ui(sig.v, 0);
                    for (int st = 0; st < op.S; ++st) {
                        const mpz_t& a = op.slope[static_cast<size_t>(st) * n + i].v;
                        if (mpz_cmpabs(a, sig.v) > 0) mpz_abs(sig.v, a);
                    }
                    mpz_abs(t.v, op.A[static_cast<size_t>(r) * (n + 1) + i].v);
                    mpz_addmul(sum.v, t.v, sig.v);
                }
                if (mpz_cmp(sum.v, vb.v) > 0) mpz_set(vb.v, sum.v);
            }
            mpz_mul(vb.v, vb.v, amax.v);
            op.cascade = sbits + static_cast<long>(mpz_sizeinbase(amax.v, 2)) <= 63 &&
                         mpz_sizeinbase(vb.v, 2) <= 127;
            op.den_gp.assign(K, 0);
            fw_set(prevden.v, op.den_gp.data(), K);
        }
        mpz_set(prevden.v, den.v);
        mpz_mul(den.v, bot.v, op.aden.v);
    }
}

// Checker(d, offsets, dom_rows, dom_dens, root_rows, root_den, ops, n_out, vnum, vden)
// ops: per piecewise op (n, [(p, q) thresholds], slopes, consts (state-major), lden, stretch
// rows (n_next x (n + 1)), aden, n_next[, sign_cells: the rule's]).
int Checker_init(Checker* c, PyObject* args, PyObject*) {
    c->offsets = new std::vector<int64_t>(); c->dom = new Rows(); c->domden = new std::vector<Int>();
    c->ops = new std::vector<Op>(); c->lv = new std::vector<Level>(); c->verts = new std::vector<Point>();
    c->used = new std::vector<char>(); c->pat_hash = new std::vector<uint64_t>();
    c->out_hash = new std::vector<uint64_t>(); c->vsum = new std::vector<std::pair<int, Rat>>();
    c->facets = new std::deque<Facet>(); c->facet_ids = new std::deque<int64_t>();
    c->facet_verts = new std::deque<int64_t>(); c->frows = new Rows();
    c->frow_start = new std::vector<int64_t>(1, 0);
    c->refine = new std::vector<char>();
    c->plane_ids = new std::unordered_map<std::string, int>();
    c->planes = new std::vector<std::vector<Int>>();
    c->gens = 0; c->next_region = 0; c->base = 0; c->failed = false; c->first = 0;
    c->rays = new std::vector<Point>(); c->facet_rays = new std::deque<int64_t>();
    c->prefixes = new std::vector<std::unordered_set<std::string>>();
    c->across = new std::vector<std::pair<int, std::string>>();
    PyObject *offs, *domr, *domd, *root, *rden, *opsl, *vnum, *vden;
    int d, n_out, closure = 0;
    if (!PyArg_ParseTuple(args, "iOOOOOOiOO|p", &d, &offs, &domr, &domd, &root, &rden, &opsl,
                          &n_out, &vnum, &vden, &closure))
        return -1;
    c->closure = closure;
    try {
        if (d < 1 || d > DMAX) reject("a dimension outside 1 to 8");
        if (closure && d != 2 && d != 3) reject("an unbounded domain of other than 2 or 3 dimensions");
        c->d = d;
        c->n_out = n_out;
        const int m = d + 1;
        if (!PyList_Check(offs) || !PyList_Check(opsl) || !PyList_Check(domd))
            reject("bad arguments");
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(offs); ++k)
            c->offsets->push_back(get_ll(PyList_GET_ITEM(offs, k)));
        c->n_dom = static_cast<int>(PyList_GET_SIZE(domd));
        c->P = static_cast<int>(PyList_GET_SIZE(opsl));
        if (c->P < 1 || static_cast<int>(c->offsets->size()) != c->P + 1) reject("bad offsets");
        c->frows->m = m;
        c->dom->m = m;
        c->dom->n = c->n_dom;
        int_vec(domr, c->dom->z, static_cast<size_t>(c->n_dom) * m);
        c->dom->floats();
        int_vec(domd, *c->domden, static_cast<size_t>(c->n_dom));
        c->lv->resize(c->P + 1);
        c->prefixes->resize(c->P);
        for (int j = 0; j < c->P; ++j) {
            PyObject* o = PyList_GET_ITEM(opsl, j);
            Op op;
            op.n = static_cast<int>(get_ll(item(o, 0)));
            PyObject* thr = item(o, 1);
            op.T = static_cast<int>(PyList_Size(thr));
            if (op.T != 1 && op.T != 2) reject("an op with other than 1 or 2 thresholds");
            op.S = op.T + 1;
            mpz_set_ui(op.tden.v, 1);
            for (int a = 0; a < op.T; ++a) {
                Rat t;
                get_int(item(PyList_GET_ITEM(thr, a), 0), mpq_numref(t.v));
                get_int(item(PyList_GET_ITEM(thr, a), 1), mpq_denref(t.v));
                if (mpz_sgn(mpq_denref(t.v)) <= 0) reject("bad threshold");
                mpq_canonicalize(t.v);
                mpz_lcm(op.tden.v, op.tden.v, mpq_denref(t.v));
                op.thr.push_back(std::move(t));
            }
            op.plain_zero = op.T == 1 && mpq_sgn(op.thr[0].v) == 0;
            for (int a = 0; a < op.T; ++a) {
                Int x;
                mpz_divexact(x.v, op.tden.v, mpq_denref(op.thr[a].v));
                mpz_mul(x.v, x.v, mpq_numref(op.thr[a].v));
                op.tnum.push_back(std::move(x));
            }
            int_vec(item(o, 2), op.slope, static_cast<size_t>(op.S) * op.n);
            int_vec(item(o, 3), op.cons, static_cast<size_t>(op.S) * op.n);
            get_int(item(o, 4), op.lden.v);
            op.n_next = static_cast<int>(get_ll(item(o, 7)));
            int_vec(item(o, 5), op.A, static_cast<size_t>(op.n_next) * (op.n + 1));
            get_int(item(o, 6), op.aden.v);
            op.sign_cells = PyTuple_Check(o) && PyTuple_GET_SIZE(o) > 8 &&
                            PyObject_IsTrue(PyTuple_GET_ITEM(o, 8)) == 1;
            c->refine->push_back(d >= 3 && op.sign_cells);
            op.small = true;
            op.A64.assign(op.A.size(), 0);
            for (size_t k = 0; k < op.A.size() && op.small; ++k) {
                op.small = mpz_fits_slong_p(op.A[k].v);
                if (op.small) op.A64[k] = mpz_get_si(op.A[k].v);
            }
            op.slope64.assign(op.slope.size(), 0);
            op.cons64.assign(op.cons.size(), 0);
            for (size_t k = 0; k < op.slope.size() && op.small; ++k) {
                op.small = mpz_sizeinbase(op.slope[k].v, 2) <= 62 &&
                           mpz_sizeinbase(op.cons[k].v, 2) <= 62;
                if (op.small) {
                    op.slope64[k] = mpz_get_si(op.slope[k].v);
                    op.cons64[k] = mpz_get_si(op.cons[k].v);
                }
            }
            if (mpz_sgn(op.lden.v) <= 0 || mpz_sgn(op.aden.v) <= 0) reject("bad denominators");
            if ((*c->offsets)[j + 1] - (*c->offsets)[j] != static_cast<int64_t>(op.n) * op.T)
                reject("offsets do not match the ops");
            if (j > 0 && (*c->ops)[j - 1].n_next != op.n) reject("ops do not chain");
            c->ops->push_back(std::move(op));
        }
        if ((*c->ops)[c->P - 1].n_next != n_out) reject("output size");
        // the root level: the map into op 0
        Level& L0 = (*c->lv)[0];
        const Op& op0 = (*c->ops)[0];
        int_vec(root, L0.Zm, static_cast<size_t>(op0.n) * m);
        get_int(rden, L0.den.v);
        if (mpz_sgn(L0.den.v) <= 0) reject("bad root denominator");
        level_limbs(c);
        if (L0.K) {
            L0.X.assign(L0.Zm.size() * L0.K, 0);
            for (size_t e = 0; e < L0.Zm.size(); ++e) fw_set(L0.Zm[e].v, &L0.X[e * L0.K], L0.K);
        }
        L0.valid = true;
        L0.gen = ++c->gens;
        switching_rows(L0, op0, m);
        // the global vertices
        IntList vn, vd;
        vn.set(vnum);
        vd.set(vden);
        if (vn.n != vd.n || vn.n % d) reject("vertex columns");
        size_t nvert = static_cast<size_t>(vn.n / d);
        c->verts->resize(nvert);
        c->used->assign(nvert, 0);
        std::vector<Rat> q(d);
        for (size_t k = 0; k < nvert; ++k) {
            for (int i = 0; i < d; ++i) get_rat(vn, vd, static_cast<Py_ssize_t>(k) * d + i, q[i].v);
            make_point(q, (*c->verts)[k]);
        }
        distinct_vertices(c);
    } catch (const Reject& e) {
        c->failed = true;
        PyErr_SetString(PyExc_ValueError, e.why.c_str());
        return -1;
    } catch (const PyError&) {
        return -1;
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

// Run a method's body: a Reject becomes its reason (a str), a Python error or running out of
// memory an exception; either way the checker is done.
template <class F>
PyObject* guarded(Checker* c, F&& body) {
    try {
        return body();
    } catch (const Reject& e) {
        c->failed = true;
        return PyUnicode_FromString(e.why.c_str());
    } catch (const PyError&) {
        c->failed = true;
        return nullptr;
    } catch (const std::bad_alloc&) {
        c->failed = true;
        return PyErr_NoMemory();
    }
}

// regions(base, lo, hi, cols): check regions lo .. hi - 1 of a chunk whose region 0 is the
// certificate's region `base` (regions must come in order, chunk after chunk). cols: (state
// tables [(data, bits)], state ids [int64], witness num, den, region_vertices start, flat,
// facet_start, facet_row, facet_ids start, flat, facet_vertices start, flat, rows num, den,
// outputs num, den, volume num, den, rays start (one more than regions), rays num, den,
// facet_rays start (empty: no facet has a ray), flat). Returns None, or the reason for stopping
// (a str).
PyObject* Checker_regions(Checker* c, PyObject* args) {
    long long base, lo, hi;
    PyObject* cols;
    if (!PyArg_ParseTuple(args, "LLLO", &base, &lo, &hi, &cols)) return nullptr;
    return guarded(c, [&]() -> PyObject* {
        if (c->failed) reject("an earlier chunk failed");
        if (base + lo != c->next_region) reject("regions out of order");
        ChunkCols cc;
        cc.tabs = item(cols, 0);
        cc.ids = item(cols, 1);
        if (!PyList_Check(cc.tabs) || !PyList_Check(cc.ids) ||
            PyList_GET_SIZE(cc.tabs) != c->P || PyList_GET_SIZE(cc.ids) != c->P)
            reject("state columns");
        cc.tabs = PyList_AsTuple(cc.tabs);
        PyObject* ids_t = PyList_AsTuple(cc.ids);
        struct Drop { PyObject* a; PyObject* b; ~Drop() { Py_XDECREF(a); Py_XDECREF(b); } } drop{cc.tabs, ids_t};
        cc.ids = ids_t;
        cc.wnum.set(item(cols, 2)); cc.wden.set(item(cols, 3));
        cc.rv_start.set(item(cols, 4), 8); cc.rv_flat.set(item(cols, 5), 8);
        cc.fstart.set(item(cols, 6), 8); cc.frow.set(item(cols, 7), 8);
        cc.fid_start.set(item(cols, 8), 8); cc.fid_flat.set(item(cols, 9), 8);
        cc.fv_start.set(item(cols, 10), 8); cc.fv_flat.set(item(cols, 11), 8);
        cc.rnum.set(item(cols, 12)); cc.rden.set(item(cols, 13));
        cc.onum.set(item(cols, 14)); cc.oden.set(item(cols, 15));
        cc.vnum.set(item(cols, 16)); cc.vden.set(item(cols, 17));
        cc.ray_start.set(item(cols, 18), 8);
        cc.ynum.set(item(cols, 19)); cc.yden.set(item(cols, 20));
        cc.fray_start.set(item(cols, 21), 8); cc.fray_flat.set(item(cols, 22), 8);
        c->base = base;
        for (long long r = lo; r < hi; ++r) {
            check_region(c, cc, r);
            c->next_region = base + r + 1;
        }
        Py_RETURN_NONE;
    });
}

// finish(n_reg, adj_i, adj_j, adj_plane, adj_ids start, flat, planes num, den[, decide]): the
// global vertices distinct and each used, the adjacent pairs exactly the true ones (d >= 4:
// `decide` takes the exact LPs the other tests leave, see interiors_meet). Returns a str (the
// reason for stopping) or (pattern hashes as int64 bytes, volume sum num, den, [(i, j)]: the
// adjacent pairs whose output maps hash equal, to be compared exactly).
PyObject* Checker_finish(Checker* c, PyObject* args) {
    long long n_reg;
    PyObject *ai, *aj, *ap, *ids_s, *ids_f, *pnum, *pden, *decide = nullptr;
    if (!PyArg_ParseTuple(args, "LOOOOOOO|O", &n_reg, &ai, &aj, &ap, &ids_s, &ids_f, &pnum, &pden,
                          &decide))
        return nullptr;
    return guarded(c, [&]() -> PyObject* {
        if (c->failed) reject("an earlier chunk failed");
        if (c->next_region != n_reg) reject("not every region was checked");
        if (c->first != 0) reject("a part of the regions (start) does not finish");
        const int d = c->d;
        const auto& V = *c->verts;
        // unbounded domains: every cell across a facet is certified (see across_facet)
        if (c->closure) {
            if (n_reg < 1) reject("no region");
            for (const auto& [j, key] : *c->across)
                if (!(*c->prefixes)[j].count(key))
                    reject("completeness: a cell across a facet is not certified");
        }
        for (char u : *c->used)
            if (!u) reject("a vertex of no region");
        // true adjacent pairs from the proven facets (check._FacetTable)
        auto& F = *c->facets;
        std::vector<int64_t> idx(F.size());
        for (size_t k = 0; k < F.size(); ++k) idx[k] = static_cast<int64_t>(k);
        auto c0_of = [&](int plane) { return mpz_sgn((*c->planes)[plane][1].v) ? 0 : 1; };
        // d >= 3: facets are grouped by the signs of op j0 too where its cells are those of its
        // sign vectors (check._Adjacency.pairs: every other function of op j0 has at a point of
        // both relative interiors the constant sign it has on either region); a hash
        // collision only merges two groups, which yields no false pair
        const auto& refine = *c->refine;
        auto sig = [&](const Facet& f) -> uint64_t { return refine[f.j0] ? f.sig : 0; };
        std::sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) {
            const Facet& a = F[x];
            const Facet& b = F[y];
            if (a.plane != b.plane) return a.plane < b.plane;
            if (a.j0 != b.j0) return a.j0 < b.j0;
            if (a.pre != b.pre) return a.pre < b.pre;
            if (sig(a) != sig(b)) return sig(a) < sig(b);
            if (a.side != b.side) return a.side < b.side;
            if (d == 2) {  // (facets in d >= 3 have no ends recorded)
                int cm = cmp_end(V, a.lo, -1, b.lo, -1, c0_of(a.plane));
                if (cm) return cm < 0;
            }
            return x < y;
        });
        std::vector<std::pair<uint64_t, std::pair<int64_t, int64_t>>> pairs;  // code, facets
        for (size_t s = 0; s < idx.size();) {
            size_t e = s + 1;
            const Facet& h = F[idx[s]];
            while (e < idx.size() && F[idx[e]].plane == h.plane && F[idx[e]].j0 == h.j0 &&
                   F[idx[e]].pre == h.pre && sig(F[idx[e]]) == sig(h))
                ++e;
            size_t cut = s;
            while (cut < e && F[idx[cut]].side < 0) ++cut;
            if (d >= 3) {
                pairs_nd(c, decide, idx, s, cut, e, static_cast<uint64_t>(n_reg), pairs);
                s = e;
                continue;
            }
            int c0 = c0_of(h.plane);
            for (size_t p = cut; p < e; ++p) {
                const Facet& fp = F[idx[p]];
                for (size_t q = s; q < cut; ++q) {
                    const Facet& fm = F[idx[q]];
                    if (d == 2) {
                        if (cmp_end(V, fm.lo, -1, fp.hi, 1, c0) >= 0) break;  // so are the later
                        if (cmp_end(V, fp.lo, -1, fm.hi, 1, c0) >= 0) continue;
                    }
                    int64_t a = fp.region, b = fm.region;
                    int64_t fa = idx[p], fb = idx[q];
                    if (a > b) { std::swap(a, b); std::swap(fa, fb); }
                    if (a == b) reject("a region adjacent to itself");
                    pairs.push_back({static_cast<uint64_t>(a) * static_cast<uint64_t>(n_reg) + static_cast<uint64_t>(b), {fa, fb}});
                }
            }
            s = e;
        }
        std::stable_sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
        pairs.erase(std::unique(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) { return x.first == y.first; }), pairs.end());
        // the listed pairs: exactly these
        Buf bi, bj, bp, bs, bf;
        bi.set(ai, 8); bj.set(aj, 8); bp.set(ap, 8); bs.set(ids_s, 8); bf.set(ids_f, 8);
        IntList pn, pd;
        pn.set(pnum);
        pd.set(pden);
        std::vector<char> listed(pairs.size(), 0);
        thread_local Int x, y;
        for (Py_ssize_t k = 0; k < bi.size(); ++k) {
            int64_t i = bi.at(k), j = bj.at(k);
            if (!(0 <= i && i < j && j < n_reg)) reject("an adjacent pair out of range");
            uint64_t code = static_cast<uint64_t>(i) * static_cast<uint64_t>(n_reg) + static_cast<uint64_t>(j);
            auto it = std::lower_bound(pairs.begin(), pairs.end(), code,
                                       [](const auto& p, uint64_t v) { return p.first < v; });
            if (it == pairs.end() || it->first != code) reject("a listed pair is not adjacent");
            size_t pos = static_cast<size_t>(it - pairs.begin());
            if (listed[pos]) reject("a pair listed twice");
            listed[pos] = 1;
            const Facet& fa = F[it->second.first];
            const Facet& fb = F[it->second.second];
            // the hyperplane: the key divided by its first non-zero entry
            const auto& key = (*c->planes)[fa.plane];
            const mpz_t* lead = nullptr;
            for (int e = 0; e < d && !lead; ++e)
                if (mpz_sgn(key[e].v)) lead = &key[e].v;
            int64_t p = bp.at(k);
            if (p < 0) reject("a plane index out of range");
            Rat v;
            for (int e = 0; e <= d; ++e) {
                get_rat(pn, pd, p * (d + 1) + e, v.v);
                mpz_mul(x.v, mpq_numref(v.v), *lead);
                mpz_mul(y.v, key[e].v, mpq_denref(v.v));
                if (mpz_cmp(x.v, y.v)) reject("a listed pair's hyperplane differs");
            }
            std::vector<int64_t> want, got;
            const auto& FI = *c->facet_ids;
            want.insert(want.end(), FI.begin() + fa.ids_at, FI.begin() + fa.ids_at + fa.ids_n);
            want.insert(want.end(), FI.begin() + fb.ids_at, FI.begin() + fb.ids_at + fb.ids_n);
            std::sort(want.begin(), want.end());
            want.erase(std::unique(want.begin(), want.end()), want.end());
            int64_t s0 = bs.at(k), s1 = bs.at(k + 1);
            if (s1 < s0) reject("bad adjacency id offsets");
            for (int64_t t = s0; t < s1; ++t) got.push_back(bf.at(t));
            std::sort(got.begin(), got.end());
            if (std::adjacent_find(got.begin(), got.end()) != got.end() || got != want)
                reject("a listed pair's ids differ");
        }
        for (char l : listed)
            if (!l) reject("a true adjacent pair is not listed");
        // results
        PyObject* hashes = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(c->pat_hash->data()),
                                                     static_cast<Py_ssize_t>(c->pat_hash->size() * 8));
        Rat total;
        sum_of(*c->vsum, total.v);
        PyObject* eq = PyList_New(0);
        const auto& OH = *c->out_hash;
        for (const auto& pr : pairs) {
            int64_t i = static_cast<int64_t>(pr.first / static_cast<uint64_t>(n_reg));
            int64_t j = static_cast<int64_t>(pr.first % static_cast<uint64_t>(n_reg));
            if (OH[i] != OH[j]) continue;
            PyObject* t = Py_BuildValue("(LL)", static_cast<long long>(i), static_cast<long long>(j));
            PyList_Append(eq, t);
            Py_DECREF(t);
        }
        PyObject* num = new_int(mpq_numref(total.v));
        PyObject* den = new_int(mpq_denref(total.v));
        return Py_BuildValue("(NNNN)", hashes, num, den, eq);
    });
}

// ----------------------------------------------------------------------------- state transfer

// A checker's accumulated state as bytes (export_state / import_state): a part's regions checked
// on another process (a Dask worker) and joined into one checker in region order. Integers are
// 8 bytes little-endian; a GMP integer is its signed byte count then its magnitude's bytes
// (little-endian). The reader checks every count against the bytes left, so malformed input
// costs at most work proportional to its size and ends in a reason.
const uint64_t STATE_MAGIC = 0x3374617453435258ULL;  // format 3

struct Out {
    std::string s;
    void u64(uint64_t x) {
        for (int k = 0; k < 8; ++k) s += static_cast<char>((x >> (8 * k)) & 0xff);
    }
    void i64(int64_t x) { u64(static_cast<uint64_t>(x)); }
    void z(const mpz_t v) {
        size_t cnt = 0;
        std::string part((mpz_sizeinbase(v, 2) + 7) / 8 + 1, '\0');
        mpz_export(&part[0], &cnt, -1, 1, 0, 0, v);
        i64(mpz_sgn(v) < 0 ? -static_cast<int64_t>(cnt) : static_cast<int64_t>(cnt));
        s.append(part.data(), cnt);
    }
};

struct In {
    const unsigned char* p;
    size_t n, at = 0;
    size_t left() const { return n - at; }
    uint64_t u64() {
        if (left() < 8) reject("malformed state: it ends early");
        uint64_t x = 0;
        for (int k = 0; k < 8; ++k) x |= static_cast<uint64_t>(p[at + k]) << (8 * k);
        at += 8;
        return x;
    }
    int64_t i64() { return static_cast<int64_t>(u64()); }
    // a count of items of at least `each` bytes that the bytes left can hold
    int64_t count(size_t each) {
        int64_t x = i64();
        if (x < 0 || static_cast<uint64_t>(x) > left() / each) reject("malformed state: a count");
        return x;
    }
    // an integer in [lo, hi)
    int64_t in(int64_t lo, int64_t hi, const char* what) {
        int64_t x = i64();
        if (x < lo || x >= hi) reject(std::string("malformed state: ") + what + " out of range");
        return x;
    }
    void z(mpz_t out) {
        int64_t sn = i64();
        uint64_t cnt = sn < 0 ? static_cast<uint64_t>(-(sn + 1)) + 1 : static_cast<uint64_t>(sn);
        if (cnt > left()) reject("malformed state: an integer's size");
        mpz_import(out, cnt, -1, 1, 0, 0, p + at);
        if (sn < 0) mpz_neg(out, out);
        at += cnt;
    }
};

// The length in bytes of a packed prefix of ops 0 .. j (pack_states: every op has a fixed
// number of units, so every prefix of a level has this length).
size_t prefix_bytes(const Checker* c, int j) {
    size_t n = 0;
    for (int i = 0; i <= j; ++i) {
        const Op& op = (*c->ops)[i];
        const size_t per = op.T == 1 ? 8 : 4;
        n += (static_cast<size_t>(op.n) + per - 1) / per;
    }
    return n;
}

// export_state(): what the regions checked so far leave for finish() (from region `first` on:
// start()): pattern and output hashes, the volume sum, the used vertices, each op's refinement
// flag (d >= 3: off where a witness had a zero), the proven facets with their planes' exact keys
// and sign hashes, the facet rows (d >= 3). Unbounded domains (closure) add the regions' rays
// (d = 3: the facets' rays are indices into them), every level's certified prefixes and the
// prefixes across facets not among this checker's own (finish looks for them in the union).
PyObject* Checker_export_state(Checker* c, PyObject*) {
    return guarded(c, [&]() -> PyObject* {
        if (c->failed) reject("an earlier chunk failed");
        const int d = c->d;
        const int64_t count = c->next_region - c->first;
        Out o;
        o.u64(STATE_MAGIC);
        o.i64(d); o.i64(c->P); o.i64(c->closure ? 1 : 0);
        o.i64(static_cast<int64_t>(c->verts->size()));
        o.i64(c->first); o.i64(count);
        for (uint64_t h : *c->pat_hash) o.u64(h);
        for (uint64_t h : *c->out_hash) o.u64(h);
        Rat total;
        sum_of(*c->vsum, total.v);
        o.z(mpq_numref(total.v)); o.z(mpq_denref(total.v));
        const auto& U = *c->used;
        for (size_t k = 0; k < U.size(); k += 8) {
            unsigned bits = 0;
            for (size_t b = 0; b < 8 && k + b < U.size(); ++b) bits |= (U[k + b] ? 1u : 0u) << b;
            o.s += static_cast<char>(bits);
        }
        for (char r : *c->refine) o.i64(r);
        o.i64(static_cast<int64_t>(c->planes->size()));
        for (const auto& key : *c->planes)
            for (const Int& x : key) o.z(x.v);
        if (c->closure && d >= 3) {  // rays: X_1 .. X_d (the last entry, 0, left out)
            o.i64(static_cast<int64_t>(c->rays->size()));
            for (const Point& p : *c->rays)
                for (int i = 0; i < d; ++i) o.z(p.h[i].v);
        }
        o.i64(static_cast<int64_t>(c->facets->size()));
        const auto& FI = *c->facet_ids;
        const auto& FV = *c->facet_verts;
        const auto& FR = *c->facet_rays;
        for (const Facet& f : *c->facets) {
            o.i64(f.region); o.i64(f.plane); o.i64(f.j0); o.i64(f.side); o.u64(f.pre);
            o.u64(f.sig);
            o.i64(f.lo); o.i64(f.hi); o.i64(f.row);
            o.i64(f.ids_n);
            for (int64_t k = 0; k < f.ids_n; ++k) o.i64(FI[f.ids_at + k]);
            o.i64(f.verts_n);
            for (int64_t k = 0; k < f.verts_n; ++k) o.i64(FV[f.verts_at + k]);
            o.i64(f.rays_n);
            for (int64_t k = 0; k < f.rays_n; ++k) o.i64(FR[f.rays_at + k]);
        }
        if (d >= 3) {
            const auto& S = *c->frow_start;
            for (size_t k = 1; k < S.size(); ++k) o.i64(S[k] - S[k - 1]);
            for (const Int& x : c->frows->z) o.z(x.v);
        }
        if (c->closure) {  // per level its prefixes (all of one length), then those across
            const auto& PF = *c->prefixes;
            for (int j = 0; j < c->P; ++j) {
                o.i64(static_cast<int64_t>(PF[j].size()));
                for (const std::string& key : PF[j]) o.s += key;
            }
            int64_t n_across = 0;
            for (const auto& [j, key] : *c->across) n_across += PF[j].count(key) ? 0 : 1;
            o.i64(n_across);
            for (const auto& [j, key] : *c->across) {
                if (PF[j].count(key)) continue;
                o.i64(j);
                o.s += key;
            }
        }
        return PyBytes_FromStringAndSize(o.s.data(), static_cast<Py_ssize_t>(o.s.size()));
    });
}

// import_state(state): a part's state (export_state of a checker of the same chain, vertices and
// domain, started at this one's next region) joined in: hashes and used vertices appended,
// the volume added, the planes renumbered into this checker's, the facets and facet rows
// appended; on unbounded domains the rays appended (the facets' rays renumbered into them), the
// prefixes added to every level's and those across not yet among them kept for finish. Returns
// None, or the reason it stopped (a malformed state; the checker is then done).
PyObject* Checker_import_state(Checker* c, PyObject* args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return nullptr;
    struct Release { Py_buffer* v; ~Release() { PyBuffer_Release(v); } } release{&view};
    return guarded(c, [&]() -> PyObject* {
        if (c->failed) reject("an earlier chunk failed");
        In in{static_cast<const unsigned char*>(view.buf), static_cast<size_t>(view.len)};
        const int d = c->d, m = d + 1;
        const int64_t nvert = static_cast<int64_t>(c->verts->size());
        if (in.u64() != STATE_MAGIC) reject("malformed state: not a checker state");
        if (in.i64() != d || in.i64() != c->P || in.i64() != (c->closure ? 1 : 0) ||
            in.i64() != nvert)
            reject("malformed state: another chain, domain or vertex list");
        if (in.i64() != c->next_region) reject("malformed state: regions out of order");
        const int64_t first = c->next_region;
        const int64_t count = in.count(16);
        for (int64_t k = 0; k < count; ++k) c->pat_hash->push_back(in.u64());
        for (int64_t k = 0; k < count; ++k) c->out_hash->push_back(in.u64());
        Rat vol;
        in.z(mpq_numref(vol.v));
        in.z(mpq_denref(vol.v));
        if (mpz_sgn(mpq_denref(vol.v)) <= 0) reject("malformed state: a volume's denominator");
        mpq_canonicalize(vol.v);
        add_volume(c, vol.v);
        auto& U = *c->used;
        if (in.left() < static_cast<size_t>((nvert + 7) / 8)) reject("malformed state: it ends early");
        for (int64_t k = 0; k < nvert; ++k)
            if (in.p[in.at + k / 8] >> (k % 8) & 1) U[k] = 1;
        in.at += static_cast<size_t>((nvert + 7) / 8);
        // refinement: off where either part turned it off
        for (int j = 0; j < c->P; ++j)
            if (!in.in(0, 2, "a refinement flag")) (*c->refine)[j] = 0;
        // planes: canonical keys (primitive, first non-zero normal entry positive), renumbered
        const int64_t n_planes = in.count(8 * static_cast<size_t>(m));
        std::vector<int> remap(static_cast<size_t>(n_planes));
        for (int64_t k = 0; k < n_planes; ++k) {
            std::vector<Int> v(m);
            Int g;
            int lead = 0;
            for (int i = 0; i < m; ++i) {
                in.z(v[i].v);
                mpz_gcd(g.v, g.v, v[i].v);
                if (i < d && !lead) lead = mpz_sgn(v[i].v);
            }
            if (lead <= 0 || mpz_cmp_ui(g.v, 1) != 0) reject("malformed state: a plane's key");
            remap[k] = intern_plane(c, std::move(v));
        }
        // rays (unbounded, d = 3): non-zero directions, appended; the facets' rays index them
        const bool has_rays = c->closure && d >= 3;
        const int64_t ray_base = static_cast<int64_t>(c->rays->size());
        const int64_t n_rays = has_rays ? in.count(8 * static_cast<size_t>(d)) : 0;
        for (int64_t k = 0; k < n_rays; ++k) {
            std::vector<Rat> q(d);
            Int x;
            bool nz = false;
            for (int i = 0; i < d; ++i) {
                in.z(x.v);
                nz = nz || mpz_sgn(x.v);
                mpq_set_z(q[i].v, x.v);
            }
            if (!nz) reject("malformed state: a zero ray");
            Point p;
            make_point(q, p);  // the integer direction (a positive multiple of the listed ray)
            mpz_set_ui(p.h[d].v, 0);
            c->rays->push_back(std::move(p));
        }
        // facets (2-D unbounded: an end may be -1, unbounded)
        const int64_t n_facets = in.count(12 * 8);
        const size_t facets_at = c->facets->size();
        const int64_t end_lo = d == 2 ? (c->closure ? -1 : 0) : -1, end_hi = d == 2 ? nvert : 0;
        for (int64_t k = 0; k < n_facets; ++k) {
            Facet f{};
            f.region = in.in(first, first + count, "a facet's region");
            f.plane = remap[in.in(0, n_planes, "a facet's plane")];
            f.j0 = static_cast<int>(in.in(0, c->P, "a facet's op"));
            f.side = static_cast<int>(in.in(-1, 2, "a facet's side"));
            if (f.side == 0) reject("malformed state: a facet's side");
            f.pre = in.u64();
            f.sig = in.u64();
            f.lo = in.in(end_lo, end_hi, "a facet's end");
            f.hi = in.in(end_lo, end_hi, "a facet's end");
            f.row = in.i64();  // checked with the facet rows below
            f.ids_n = in.count(8);
            if (f.ids_n < 1) reject("malformed state: a facet without ids");
            f.ids_at = static_cast<int64_t>(c->facet_ids->size());
            for (int64_t t = 0; t < f.ids_n; ++t) c->facet_ids->push_back(in.i64());
            f.verts_n = in.count(8);
            if ((d >= 3) != (f.verts_n > 0)) reject("malformed state: a facet's vertices");
            f.verts_at = static_cast<int64_t>(c->facet_verts->size());
            for (int64_t t = 0; t < f.verts_n; ++t)
                c->facet_verts->push_back(in.in(0, nvert, "a facet's vertex"));
            f.rays_n = in.count(8);
            if (f.rays_n && !has_rays) reject("malformed state: a facet's rays");
            f.rays_at = static_cast<int64_t>(c->facet_rays->size());
            for (int64_t t = 0; t < f.rays_n; ++t)
                c->facet_rays->push_back(ray_base + in.in(0, n_rays, "a facet's ray"));
            c->facets->push_back(f);
        }
        if (d >= 3) {  // facet rows per region, then the rows; a facet's row is its region's
            std::vector<int64_t>& S = *c->frow_start;
            const int64_t base = c->frows->n;
            if (static_cast<int64_t>(S.size()) != first + 1) reject("facet rows out of order");
            int64_t total = 0;
            for (int64_t k = 0; k < count; ++k) {
                total += in.count(8 * static_cast<size_t>(m));
                if (static_cast<uint64_t>(total) > in.left() / (8 * static_cast<size_t>(m)))
                    reject("malformed state: a count");
                S.push_back(base + total);
            }
            for (size_t k = facets_at; k < c->facets->size(); ++k) {
                Facet& f = (*c->facets)[k];
                int64_t lo = S[f.region] - base, hi = S[f.region + 1] - base;
                if (f.row < lo || f.row >= hi) reject("malformed state: a facet's row");
                f.row += base;
            }
            std::vector<Int> row(m);
            for (int64_t k = 0; k < total; ++k) {
                for (int i = 0; i < m; ++i) in.z(row[i].v);
                c->frows->append(row.data());
            }
        } else {
            for (size_t k = facets_at; k < c->facets->size(); ++k)
                if ((*c->facets)[k].row != -1) reject("malformed state: a facet's row");
        }
        if (c->closure) {  // prefixes per level (added), then those across not yet found (kept)
            auto& PF = *c->prefixes;
            for (int j = 0; j < c->P; ++j) {
                const size_t len = prefix_bytes(c, j);
                const int64_t n = in.count(len);
                for (int64_t k = 0; k < n; ++k) {
                    PF[j].emplace(reinterpret_cast<const char*>(in.p + in.at), len);
                    in.at += len;
                }
            }
            const int64_t n_across = in.count(8 + 1);
            for (int64_t k = 0; k < n_across; ++k) {
                const int j = static_cast<int>(in.in(0, c->P, "an across prefix's level"));
                const size_t len = prefix_bytes(c, j);
                if (in.left() < len) reject("malformed state: it ends early");
                std::string key(reinterpret_cast<const char*>(in.p + in.at), len);
                in.at += len;
                if (!PF[j].count(key)) c->across->push_back({j, std::move(key)});
            }
        }
        if (in.left()) reject("malformed state: bytes after its end");
        c->next_region = first + count;
        Py_RETURN_NONE;
    });
}

// start(first): this checker checks the regions from `first` on (a part of them, whose state
// export_state() hands to a checker that checked those before; such a part does not finish).
PyObject* Checker_start(Checker* c, PyObject* args) {
    long long first;
    if (!PyArg_ParseTuple(args, "L", &first)) return nullptr;
    return guarded(c, [&]() -> PyObject* {
        if (c->failed) reject("an earlier chunk failed");
        if (c->next_region != 0 || first < 0) reject("start() comes first, at a region >= 0");
        c->first = c->next_region = first;
        Py_RETURN_NONE;
    });
}

PyMethodDef checker_methods[] = {
    {"regions", reinterpret_cast<PyCFunction>(Checker_regions), METH_VARARGS,
     "Check a chunk of regions: None, or the reason for stopping."},
    {"finish", reinterpret_cast<PyCFunction>(Checker_finish), METH_VARARGS,
     "Check the vertices and adjacency; the results, or the reason for stopping."},
    {"start", reinterpret_cast<PyCFunction>(Checker_start), METH_VARARGS,
     "Check the regions from this index on (a part; its state goes to another checker)."},
    {"export_state", reinterpret_cast<PyCFunction>(Checker_export_state), METH_NOARGS,
     "The state the regions checked so far leave for finish, as bytes (or a reason)."},
    {"import_state", reinterpret_cast<PyCFunction>(Checker_import_state), METH_VARARGS,
     "Join a part's exported state (the next regions in order): None, or a reason."},
    {nullptr, nullptr, 0, nullptr}};

PyTypeObject CheckerType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "exactrelu._checkcore",
                      "The independent checker's compiled hot path (see exactrelu/check.py).",
                      -1, nullptr, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__checkcore() {
    CheckerType.tp_name = "exactrelu._checkcore.Checker";
    CheckerType.tp_basicsize = sizeof(Checker);
    CheckerType.tp_flags = Py_TPFLAGS_DEFAULT;
    CheckerType.tp_doc = "A compiled pass over a chain certificate's columns.";
    CheckerType.tp_new = PyType_GenericNew;
    CheckerType.tp_init = reinterpret_cast<initproc>(Checker_init);
    CheckerType.tp_dealloc = reinterpret_cast<destructor>(Checker_dealloc);
    CheckerType.tp_methods = checker_methods;
    if (PyType_Ready(&CheckerType) < 0) return nullptr;
    PyObject* m = PyModule_Create(&module);
    if (!m) return nullptr;
    Py_INCREF(&CheckerType);
    if (PyModule_AddObject(m, "Checker", reinterpret_cast<PyObject*>(&CheckerType)) < 0) {
        Py_DECREF(&CheckerType);
        Py_DECREF(m);
        return nullptr;
    }
    return m;
}
