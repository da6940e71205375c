// exactrelu._core: the exact layer's hot path, compiled.
//
// Certifies every activation region of a chain "affine, (elementwise op, affine)*" on a bounded
// polytope of 2 to DMAX = 6 dimensions, the same way and with the same results as
// exactrelu/certify.py's arrangement path (_Certifier._arranged, _Arrangement, _child_lives), and
// assembles what the certificate needs (vertices deduplicated exactly, adjacency, linear pieces)
// as the Python engine (exactrelu/engines/python.py) does. It returns plain data (lists of
// Python ints, the fields of exactrelu.engines.Complex), never the certificate's objects:
// exactrelu/engines/compiled.py decides when this applies and builds the input, and
// exactrelu/engines/_complex.py makes the certificate. tests/test_engines.py compares the two
// engines' canonical forms, tests/test_fastpath.py their certificates entry by entry.
//
// Exactness. Every number that reaches the certificate is an exact integer or rational (GMP, or
// fixed-width integers that a bound proves large enough). Every sign is exact: it is decided by a
// float64 filter with a rigorous error bound (see filtered_sign) where the bound decides, by exact
// integer arithmetic everywhere else, or not at all where it is known by construction (a vertex
// lies on the rows it was made from). Floats otherwise only propose: a witness is a short dyadic
// point near a cell's float centroid, accepted only after an exact check against every facet.
//
// Layout: cells form a tree by layer. For a parent cell (2-D: a counter-clockwise ring of vertex
// ids with one facet per side; d >= 3: vertex ids with the vertices of each facet) the switching
// functions of the next op are exactly affine; its children are the cells of their hyperplanes
// inside it, built by successive exact cuts. Vertices are homogeneous integer rows (x_1 .. x_d,
// W), W > 0: a vertex made where a hyperplane cuts a side (edge) is the generalized cross product
// of the cutting row with d - 1 independent rows of the side (see meet), so coordinates
// never grow by chains of interpolation. Maps are integer matrices over one positive denominator
// per level. Volumes (and the check that children's sum to their parent's) up to 3-D only.

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <gmp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <iterator>
#include <map>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <condition_variable>
#include <future>
#include <mutex>
#include <memory>
#include <stdexcept>
#include <thread>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// --------------------------------------------------------------------------- GMP wrappers

struct Z {
    mpz_t v;
    Z() { mpz_init(v); }
    Z(const Z& o) { mpz_init_set(v, o.v); }
    Z(Z&& o) noexcept { mpz_init(v); mpz_swap(v, o.v); }
    Z& operator=(const Z& o) { if (this != &o) mpz_set(v, o.v); return *this; }
    Z& operator=(Z&& o) noexcept { mpz_swap(v, o.v); return *this; }
    ~Z() { mpz_clear(v); }
    int sgn() const { return mpz_sgn(v); }
};

struct Q {
    mpq_t v;
    Q() { mpq_init(v); }
    Q(const Q& o) { mpq_init(v); mpq_set(v, o.v); }
    Q(Q&& o) noexcept { mpq_init(v); mpq_swap(v, o.v); }
    Q& operator=(const Q& o) { if (this != &o) mpq_set(v, o.v); return *this; }
    Q& operator=(Q&& o) noexcept { mpq_swap(v, o.v); return *this; }
    ~Q() { mpq_clear(v); }
};

struct CertError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --------------------------------------------------------------------------- Python <-> GMP

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "exactrelu._core assumes a little-endian host"
#endif

inline void fx_negate(uint64_t* x, int K) {  // two's complement negation of K limbs
    unsigned __int128 c = 1;
    for (int i = 0; i < K; ++i) {
        c += (uint64_t)~x[i];
        x[i] = (uint64_t)c;
        c >>= 64;
    }
}

bool py_to_mpz(PyObject* o, mpz_t out) {
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "exactrelu._core: expected an int");
        return false;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (!overflow) {
        if (x == -1 && PyErr_Occurred()) return false;
        if (sizeof(long) >= sizeof(long long)) {
            mpz_set_si(out, (long)x);
            return true;
        }
    }
    PyObject* s = PyNumber_ToBase(o, 16);  // "0x..." or "-0x..."
    if (!s) return false;
    const char* c = PyUnicode_AsUTF8(s);
    if (!c) { Py_DECREF(s); return false; }
    bool neg = c[0] == '-';
    mpz_set_str(out, c + (neg ? 3 : 2), 16);
    if (neg) mpz_neg(out, out);
    Py_DECREF(s);
    return true;
}

PyObject* mpz_to_py(const mpz_t z) {
    const size_t n = mpz_size(z);
    const mp_limb_t* L = mpz_limbs_read(z);
    if (n <= 1 && (n == 0 || L[0] <= (mp_limb_t)LONG_MAX))
        return PyLong_FromLong(n == 0 ? 0L : mpz_sgn(z) < 0 ? -(long)L[0] : (long)L[0]);
#if PY_VERSION_HEX < 0x030C0000 && PyLong_SHIFT == 30
    // CPython before 3.12: |z| in base 2^30 (a digit per 32-bit word, least significant first),
    // the sign in the object's size; the top digit is not 0
    static_assert(sizeof(digit) == 4 && sizeof(mp_limb_t) == 8, "30-bit digits, 64-bit limbs expected");
    size_t bits = 64 * (n - 1) + (size_t)(64 - __builtin_clzll((unsigned long long)L[n - 1]));
    size_t nd = (bits + PyLong_SHIFT - 1) / PyLong_SHIFT;
    PyLongObject* r = _PyLong_New((Py_ssize_t)nd);
    if (!r) return nullptr;
    digit* o = r->ob_digit;
    unsigned __int128 acc = 0;
    int have = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
        acc |= (unsigned __int128)L[i] << have;
        have += 64;
        for (; have >= PyLong_SHIFT && k < nd; have -= PyLong_SHIFT, acc >>= PyLong_SHIFT)
            o[k++] = (digit)(acc & PyLong_MASK);
    }
    for (; k < nd; acc >>= PyLong_SHIFT) o[k++] = (digit)(acc & PyLong_MASK);
    if (mpz_sgn(z) < 0) Py_SET_SIZE(r, -(Py_ssize_t)nd);
    return (PyObject*)r;
#else
    // two's complement bytes, least significant first (a little-endian host: the limbs are bytes)
    uint64_t stack[17];
    std::vector<uint64_t> heap;
    uint64_t* buf = stack;
    if (n + 1 > 17) {
        heap.resize(n + 1);
        buf = heap.data();
    }
    for (size_t i = 0; i < n; ++i) buf[i] = (uint64_t)L[i];
    buf[n] = 0;
    if (mpz_sgn(z) < 0) fx_negate(buf, (int)(n + 1));
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromNativeBytes(buf, (n + 1) * 8, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    return _PyLong_FromByteArray((const unsigned char*)buf, (n + 1) * 8, 1, 1);
#endif
#endif
}

// A Python sequence as a vector of new references (raises on error).
std::vector<PyObject*> items(PyObject* seq, const char* what) {
    PyObject* fast = PySequence_Fast(seq, what);
    if (!fast) throw std::runtime_error(std::string("exactrelu._core: ") + what);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    std::vector<PyObject*> out((size_t)n);
    for (Py_ssize_t i = 0; i < n; ++i) {
        out[(size_t)i] = PySequence_Fast_GET_ITEM(fast, i);
        Py_INCREF(out[(size_t)i]);
    }
    Py_DECREF(fast);
    return out;
}

// releases the references `items` returned
struct Guard {
    std::vector<PyObject*>& v;
    ~Guard() { for (PyObject* o : v) Py_DECREF(o); }
};

struct PyError : std::runtime_error {
    PyError() : std::runtime_error("python error") {}
};

void get_z(PyObject* o, Z& z) {
    if (!py_to_mpz(o, z.v)) throw PyError();
}

long get_long(PyObject* o) {
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) throw PyError();
    return v;
}

void get_zs(PyObject* seq, std::vector<Z>& out, const char* what) {
    std::vector<PyObject*> xs = items(seq, what);
    Guard g{xs};
    out.resize(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) get_z(xs[i], out[i]);
}

// --------------------------------------------------------------------------- signs

// m 2^d for |m| < 1 (or 0) and d <= 0, exact where the result is a normal double; an ldexp call
// only where it may be subnormal or zero (d < -1000)
inline double scale2(double m, long d) {
    if (d >= -1000) {
        uint64_t bits = (uint64_t)(1023 + d) << 52;
        double p;
        std::memcpy(&p, &bits, sizeof p);
        return m * p;
    }
    return std::ldexp(m, (int)std::max(d, -4000L));
}

// Scaled float64 approximations of m integers (an affine function's row or a homogeneous point):
// every entry times one common power of two 2^-e (so that every entry is at most 1 in
// magnitude), each with relative error below 2^-52 (mpz_get_d_2exp truncates a 53-bit mantissa)
// plus an absolute error below 2^-1074 where scaling underflows.
constexpr int DMAX = 6;  // input dimensions of the compiled engine (2 to DMAX)

// h_i = mm_i 2^(e_i - max e) for the m entries mm_i 2^e_i (the non-zero ones set the maximum)
inline void scale_common(const double* mm, const long* e, int m, double* h) {
    long top = LONG_MIN;
    for (int i = 0; i < m; ++i)
        if (mm[i] != 0.0) top = std::max(top, e[i]);
    for (int i = 0; i < m; ++i) h[i] = mm[i] == 0.0 ? 0.0 : scale2(mm[i], e[i] - top);
}

void approx_n(const Z* z, int m, double* h) {
    long e[DMAX + 1];
    double mm[DMAX + 1];
    for (int i = 0; i < m; ++i) mm[i] = mpz_get_d_2exp(&e[i], z[i].v);
    scale_common(mm, e, m, h);
}

// The sign of r . v (m = d + 1 <= DMAX + 1 = 7 terms) from the scaled approximations above, or 2
// when the float computation cannot decide it. With exact scaled values R_i, V_i (|R_i|, |V_i| <=
// 1) and approximations r_i = R_i (1 + e), v_i = V_i (1 + e') + t (|e|, |e'| < 2^-52, |t| <
// 2^-1074): each product r_i v_i is within 2^-50.9 |r_i v_i| + 2^-1073 of R_i V_i, its rounding
// adds 2^-53 |p_i| + 2^-1074 and the (at most six) additions 6 2^-53 m, so the computed sum is
// within 2^-49.5 m + 2^-1066 of the exact one (m the sum of the computed |p_i|); the bound
// used, 2^-48 m + 2^-1060, is above that (its own rounding included). The true value has the
// sign of R . V since both scalings are positive powers of two.
//
// A row's entries may carry an absolute error too (r_i = R_i (1 + e) + t_i, |t_i| <= err, see
// Row): r_i v_i - R_i V_i = (R_i (1 + e) v_i - R_i V_i) + t_i v_i, the first within 2^-50.9
// |R_i (1 + e) v_i| + 2^-1073 <= 2^-50.9 (|r_i v_i| + err |v_i|) + 2^-1073 as above, the second
// at most err |v_i|: beyond the bound above, (1 + 2^-50.9) err |v|_1. The term added, err |v|_1
// (1 + 2^-40) as computed (at most 8 roundings, relative 2^-50 together), is above that.
inline int filtered_sign(const double* r, const double* v, int m, double err = 0.0) {
    double s = 0.0, mag = 0.0;
    for (int i = 0; i < m; ++i) {
        double p = r[i] * v[i];
        s += p;
        mag += std::fabs(p);
    }
    double bound = mag * 0x1p-48 + 0x1p-1060;
    if (err > 0.0) {
        double vs = 0.0;
        for (int i = 0; i < m; ++i) vs += std::fabs(v[i]);
        bound += err * vs * (1 + 0x1p-40);
    }
    if (s > bound) return 1;
    if (s < -bound) return -1;
    return 2;
}

// k where d = 2^k, else -1
long log2_if_power(const mpz_t d) {
    if (mpz_sgn(d) <= 0) return -1;
    mp_bitcnt_t k = mpz_scan1(d, 0);
    return k + 1 == mpz_sizeinbase(d, 2) ? (long)k : -1;
}

// The float64 nearest to num / den (den > 0), ties to even; +-inf beyond the largest double.
double nearest_ratio(const mpz_t num, const mpz_t den) {
    int sg = mpz_sgn(num);
    if (sg == 0) return 0.0;
    thread_local Z a, b, q, r;
    long E = (long)mpz_sizeinbase(num, 2) - (long)mpz_sizeinbase(den, 2);  // |x| in [2^(E-1), 2^(E+1))
    mpz_abs(a.v, num);
    if (E >= 0) {
        mpz_mul_2exp(b.v, den, (mp_bitcnt_t)E);
    } else {
        mpz_mul_2exp(a.v, a.v, (mp_bitcnt_t)(-E));
        mpz_set(b.v, den);
    }
    if (mpz_cmp(a.v, b.v) < 0) E -= 1;  // now |x| in [2^E, 2^(E+1))
    if (E > 1023) return sg > 0 ? HUGE_VAL : -HUGE_VAL;
    long ulp = std::max(E, -1022L) - 52;
    mpz_abs(a.v, num);
    if (ulp >= 0) {
        mpz_mul_2exp(b.v, den, (mp_bitcnt_t)ulp);
    } else {
        mpz_mul_2exp(a.v, a.v, (mp_bitcnt_t)(-ulp));
        mpz_set(b.v, den);
    }
    mpz_tdiv_qr(q.v, r.v, a.v, b.v);
    mpz_mul_2exp(r.v, r.v, 1);
    int c = mpz_cmp(r.v, b.v);
    if (c > 0 || (c == 0 && mpz_odd_p(q.v))) mpz_add_ui(q.v, q.v, 1);
    double res = std::ldexp(mpz_get_d(q.v), (int)ulp);  // q <= 2^53: exact
    return sg > 0 ? res : -res;
}

// --------------------------------------------------------------------------- fixed-width integers
//
// The hot path's maps are held as K-limb two's complement integers (K <= KMAX) when a bound
// computed from the network's integers proves that every map of a level fits (Level::K_out);
// their arithmetic is then exact modulo 2^(64 K), so every value that fits (every map entry, by
// that bound) is exact whatever intermediate products and sums do. GMP takes over elsewhere.

constexpr int KMAX = 8;
static_assert(sizeof(mp_limb_t) == 8 && GMP_NAIL_BITS == 0, "64-bit GMP limbs expected");

inline bool fx_negative(const uint64_t* x, int K) { return (x[K - 1] >> 63) != 0; }

// z modulo 2^(64 K), two's complement (z itself when it fits)
void fx_from_z(const mpz_t z, uint64_t* x, int K) {
    size_t n = mpz_size(z);
    for (int i = 0; i < K; ++i) x[i] = (size_t)i < n ? (uint64_t)mpz_getlimbn(z, (mp_size_t)i) : 0;
    if (mpz_sgn(z) < 0) fx_negate(x, K);
}

void fx_to_z(const uint64_t* x, int K, mpz_t z) {
    uint64_t m[KMAX];
    bool neg = fx_negative(x, K);
    std::memcpy(m, x, sizeof(uint64_t) * (size_t)K);
    if (neg) fx_negate(m, K);
    mpz_import(z, (size_t)K, -1, sizeof(uint64_t), 0, 0, m);
    if (neg) mpz_neg(z, z);
}

// x (Kx limbs) modulo 2^(64 K): sign-extended or cut
inline void fx_resize(const uint64_t* x, int Kx, uint64_t* out, int K) {
    uint64_t ext = fx_negative(x, Kx) ? ~(uint64_t)0 : 0;
    for (int i = 0; i < K; ++i) out[i] = i < Kx ? x[i] : ext;
}

inline bool fx_zero(const uint64_t* x, int K) {
    for (int i = 0; i < K; ++i)
        if (x[i]) return false;
    return true;
}

// as mpz_get_d_2exp: x = d 2^e with 0.5 <= |d| < 1 and relative error below 2^-52, truncated
// toward zero as mpz_get_d_2exp does. The magnitude |x| (an unsigned K-limb integer:
// -2^(64 K - 1) too) cut to its top 53 bits: the bits cut are less than 2^-52 of it (they are
// below 2^11 units of the last of its top 64 bits, which are at least 2^63 such units), and 53
// bits convert to a double exactly. Integer instructions and few branches: a row read off a map
// converts every entry (the hot loop of the rows phase).
inline double fx_get_d_2exp(long* e, const uint64_t* x, int K) {
    uint64_t m[KMAX + 1];  // m[0] = 0 below the magnitude's limbs m[1 .. K]
    const uint64_t neg = x[K - 1] >> 63, flip = 0 - neg;
    unsigned __int128 c = neg;
    m[0] = 0;
    for (int i = 0; i < K; ++i) {
        c += x[i] ^ flip;
        m[i + 1] = (uint64_t)c;
        c >>= 64;
    }
    int t = K;
    while (t > 1 && m[t] == 0) --t;
    if (m[t] == 0) {  // then every limb is 0
        *e = 0;
        return 0.0;
    }
    const int s = __builtin_clzll(m[t]);
    const uint64_t top = (m[t] << s) | ((m[t - 1] >> 1) >> (63 - s));  // the top 64 bits
    const double d = (double)(int64_t)(top >> 11) * 0x1p-53;
    *e = 64L * t - s;  // |x| = (top + the bits cut) 2^(64 t - s - 64)
    return neg ? -d : d;
}

// acc += a * v modulo 2^(64 K) for the unsigned word a, v and acc K limbs: schoolbook, one row.
// Each step's a v_i + acc_i + carry is at most (2^64 - 1)^2 + 2 (2^64 - 1) = 2^128 - 1, so it
// fits 128 bits; the top limb needs only the low word of its product.
template <int K>
inline void fx_addmul_u(uint64_t* acc, uint64_t a, const uint64_t* v) {
    uint64_t carry = 0;
    for (int i = 0; i < K - 1; ++i) {
        const unsigned __int128 t = (unsigned __int128)a * v[i] + acc[i] + carry;
        acc[i] = (uint64_t)t;
        carry = (uint64_t)(t >> 64);
    }
    acc[K - 1] += a * v[K - 1] + carry;
}

// acc -= (v & m) modulo 2^(64 K), m all ones or zero (a subtraction or none, without a branch)
template <int K>
inline void fx_sub_masked(uint64_t* acc, const uint64_t* v, uint64_t m) {
    uint64_t b = 0;
    for (int i = 0; i < K; ++i) {
        const uint64_t x = v[i] & m, y = acc[i] - x;
        const uint64_t b2 = (uint64_t)(acc[i] < x) | (uint64_t)(y < b);
        acc[i] = y - b;
        b = b2;
    }
}

// acc += a * v modulo 2^(64 K), a a signed word, v and acc two's complement; Signed = false
// reads a as the unsigned word (its bits) instead. A signed a is a_u - 2^64 [a < 0] (a_u its
// bits), so a v = a_u v - [a < 0] 2^64 v, and 2^64 v modulo 2^(64 K) is v's low K - 1 limbs one
// limb up: subtracted under a mask, without a branch on the sign.
template <int K, bool Signed = true>
inline void fx_addmul_s(uint64_t* acc, uint64_t a, const uint64_t* v) {
    fx_addmul_u<K>(acc, a, v);
    if constexpr (Signed && K > 1) fx_sub_masked<K - 1>(acc + 1, v, 0 - (a >> 63));
}

template <int K>
inline void fx_add(uint64_t* acc, const uint64_t* x) {
    uint64_t c = 0;
    for (int i = 0; i < K; ++i) {
        unsigned __int128 t = (unsigned __int128)acc[i] + x[i] + c;
        acc[i] = (uint64_t)t;
        c = (uint64_t)(t >> 64);
    }
}

template <int K>
inline void fx_sub(uint64_t* acc, const uint64_t* x) {
    uint64_t b = 0;
    for (int i = 0; i < K; ++i) {
        unsigned __int128 t = (unsigned __int128)acc[i] - x[i] - b;
        acc[i] = (uint64_t)t;
        b = (uint64_t)(t >> 64) & 1;
    }
}

// acc += g * y modulo 2^(64 K), g a signed 128-bit integer, y two's complement: g = g_0 +
// 2^64 g_1 - 2^128 [g < 0] with g_0 and g_1 its low and high words read unsigned, and 2^128 y
// modulo 2^(64 K) is y's low K - 2 limbs two limbs up (subtracted under a mask)
template <int K>
inline void fx_muladd128(uint64_t* acc, __int128 g, const uint64_t* y) {
    fx_addmul_u<K>(acc, (uint64_t)g, y);
    if constexpr (K > 1) fx_addmul_u<K - 1>(acc + 1, (uint64_t)((unsigned __int128)g >> 64), y);
    if constexpr (K > 2) fx_sub_masked<K - 2>(acc + 2, y, 0 - (uint64_t)(g < 0));
}

// acc += a * v modulo 2^(64 K) for K known only at run time (see fx_addmul_s)
inline void fx_addmul_k(uint64_t* acc, int64_t a, const uint64_t* v, int K) {
    switch (K) {
        case 1: return fx_addmul_s<1>(acc, (uint64_t)a, v);
        case 2: return fx_addmul_s<2>(acc, (uint64_t)a, v);
        case 3: return fx_addmul_s<3>(acc, (uint64_t)a, v);
        case 4: return fx_addmul_s<4>(acc, (uint64_t)a, v);
        case 5: return fx_addmul_s<5>(acc, (uint64_t)a, v);
        case 6: return fx_addmul_s<6>(acc, (uint64_t)a, v);
        case 7: return fx_addmul_s<7>(acc, (uint64_t)a, v);
        default: return fx_addmul_s<8>(acc, (uint64_t)a, v);
    }
}

// 2^e for -1022 <= e <= 1023, exact
inline double exp2i(long e) {
    const uint64_t bits = (uint64_t)(1023 + e) << 52;
    double p;
    std::memcpy(&p, &bits, sizeof p);
    return p;
}

// the double of x (K limbs) truncated to 53 bits: relative error below 2^-52 (fx_get_d_2exp),
// exact below 2^53; an integer-valued double (|x| < 2^(64 KMAX) = 2^512: the exponent e <= 512,
// so the product is exact)
inline double fx_to_double(const uint64_t* x, int K) {
    long e;
    const double m = fx_get_d_2exp(&e, x, K);
    return m * exp2i(e);
}

// An n x 3 integer matrix: K-limb two's complement entries (K > 0) or mpz (K == 0); or, with
// `base` set, the fixed-width matrix base + sum_j Az[:, du_j] (x) dd_j (Az the affine layer
// that made it, row-major with `an` columns; dd_j a row of M entries of K limbs), which is how
// the exact map of a cell after a wide op is kept (Certifier::delta_maps): an entry is made
// when read, in K limbs modulo 2^(64 K), so exactly (every entry of the map fits K limbs, see
// Level::K_out). Beside it `f`, every entry as a double, and `fe`, per row an absolute bound on
// their errors (empty: each entry of f is the exact one truncated to 53 bits, relative error
// below 2^-52); an empty f in delta form reads the base's.
struct Map {
    int K = 0;
    std::vector<uint64_t> w;
    std::vector<Z> z;
    std::shared_ptr<const Map> base;
    std::vector<int> du;
    std::vector<uint64_t> dd;
    const int64_t* az = nullptr;
    int an = 0, M = 0;
    std::vector<double> f, fe;
    size_t entries() const { return base ? base->entries() : K ? w.size() / (size_t)K : z.size(); }
    const double* floats() const { return base && f.empty() ? base->f.data() : f.data(); }
    const double* float_errors() const { return fe.empty() ? nullptr : fe.data(); }
    // entry e of the delta form in K limbs
    void delta(size_t e, uint64_t* x) const {
        std::memcpy(x, &base->w[e * (size_t)K], sizeof(uint64_t) * (size_t)K);
        const size_t r = e / (size_t)M, c = e % (size_t)M;
        for (size_t j = 0; j < du.size(); ++j) {
            const int64_t a = az[r * (size_t)an + (size_t)du[j]];
            if (a) fx_addmul_k(x, a, &dd[(j * (size_t)M + c) * (size_t)K], K);
        }
    }
    void get(size_t e, mpz_t out) const {
        if (base) {
            uint64_t x[KMAX];
            delta(e, x);
            fx_to_z(x, K, out);
        } else if (K) {
            fx_to_z(&w[e * (size_t)K], K, out);
        } else {
            mpz_set(out, z[e].v);
        }
    }
    // entry e modulo 2^(64 Ko)
    void load(size_t e, uint64_t* out, int Ko) const {
        if (base) {
            uint64_t x[KMAX];
            delta(e, x);
            fx_resize(x, K, out, Ko);
        } else if (K) {
            fx_resize(&w[e * (size_t)K], K, out, Ko);
        } else {
            fx_from_z(z[e].v, out, Ko);
        }
    }
    bool zero(size_t e) const {
        if (base) {
            uint64_t x[KMAX];
            delta(e, x);
            return fx_zero(x, K);
        }
        return K ? fx_zero(&w[e * (size_t)K], K) : z[e].sgn() == 0;
    }
    bool equal(const Map& o) const {
        if (K && K == o.K && !base && !o.base) return w == o.w;
        if (entries() != o.entries()) return false;
        thread_local Z a, b;
        for (size_t e = 0; e < entries(); ++e) {
            get(e, a.v);
            o.get(e, b.v);
            if (mpz_cmp(a.v, b.v) != 0) return false;
        }
        return true;
    }
};

// --------------------------------------------------------------------------- the program

// One piecewise op (elementwise units) and the affine layer after it.
struct Level {
    int n = 0;                       // units
    int nthr = 1;                    // thresholds: 1 (ReLU, LeakyReLU) or 2 (Hardtanh: lo < hi)
    std::vector<Z> thr_s, thr_shift;  // per threshold t: t * den = shift / s, s > 0 (for this level's den)
    std::vector<Z> thr_scale;        // den * s: switching row r is scale times the exact function
    std::vector<Z> slope, cst;       // per state, integers over sa
    std::vector<int> kind;           // per state: 1 identity, 0 zero, -1 other
    Z sa;
    long offset = 0;                 // constraint id of switching function 0
    int n_out = 0;                   // the affine layer after: [Az | az] / dA, n_out x n
    std::vector<Z> Az, az;
    bool has_az = false;
    Z dA;
    Z den;                           // denominator of the maps entering this op (all cells alike)
    int K_out = 0;                   // limbs of the maps after the affine layer (0: GMP)
    std::vector<int64_t> Az64, slope64;       // Az and the slopes as int64 (when K_out > 0)
    std::vector<int64_t> AzT64;               // Az64 transposed: column u of Az at u * n_out
    bool cols = false;  // may the columns Az diag(slope(s)) Az'[:, v] of first_map_from_ref be
                        // kept in 128 bits (Az' the layer before this op)?
    std::vector<uint64_t> cstden, azden;      // per state cst den, per output az den sa (K_out limbs)
    bool dense = false;              // may sums of n terms |Az_ru| 2^64 be accumulated in 128 bits?
    bool deltas = false;             // does the difference of two output rows of a unit fit K_out limbs
                                     // (so that its double is read right: Certifier::delta_maps)?
};

struct Spec {
    int d = 2;  // input dimensions (2 or 3)
    int L = 0;
    std::vector<Level> levels;
    long domain_ids = 0;  // constraint ids below this are the domain's
    bool volumes = true;  // compute every cell's volume and check that children sum to it
    Z out_den;
};

// --------------------------------------------------------------------------- geometry

// A row's scaled approximation h (see Row) from entries e0 .. e0 + m - 1 of a fixed-width map
// (not in delta form): each within 2^-52 relative of the exact scaled entry (no absolute error).
inline void limbs_approx(const Map& map, size_t e0, int m, double* h) {
    const int K = map.K;
    const uint64_t* x = &map.w[e0 * (size_t)K];
    long ex[DMAX + 1];
    double mm[DMAX + 1];
    for (int i = 0; i < m; ++i) mm[i] = fx_get_d_2exp(&ex[i], x + i * K, K);
    scale_common(mm, ex, m, h);
}

// A row's scaled approximation h from the doubles f of a map in delta form (each within fe of
// the exact entry, or within 2^-52 relative when fe < 0); returns its absolute error err. The
// entries are integers (or zero): the scale 2^-t, with 2^t above twice every |f_i| + fe, is
// exact (no result below 2^-600).
inline double float_approx(const double* f, int m, double fe, double* h) {
    const double a = std::max(fe, 0.0);
    double big = a;
    for (int i = 0; i < m; ++i) big = std::max(big, std::fabs(f[i]) + a);
    if (big == 0.0) {  // every entry is exactly 0 (fe = 0 only when every term is 0)
        for (int i = 0; i < m; ++i) h[i] = 0.0;
        return 0;
    }
    int t;
    std::frexp(big, &t);  // big < 2^t, t <= 520 (entries below 2^512, errors far below)
    const double sc = exp2i(-(t + 1));
    for (int i = 0; i < m; ++i) h[i] = f[i] * sc;
    return a * sc;
}

// An affine function a_1 t_1 + .. + a_d t_d + c as integers, entries e = (a_1, .., a_d, c) (a
// positive multiple `scale` of the exact one). A switching row read off a map in limbs, or off
// the doubles of a map in delta form, is made exact only when first needed (its integers
// allocated then): most rows of a parent neither cut it nor vanish anywhere on it, and their
// signs are all decided by the float filter. `h` is the row times a power of two 2^-t (at most
// 1 in magnitude), each entry h_i within 2^-52 |H_i| + err of the exact scaled entry H_i.
struct Row {
    Row() {}  // h is written before it is read (from_limbs, approx): no zeroing of S rows per cell
    mutable std::unique_ptr<Z[]> e;  // the exact entries (made by alloc)
    mutable bool exact = true;
    const Map* src = nullptr;  // the map whose entries src_e .. src_e + m - 1 the row is (when not exact)
    size_t src_e = 0;
    int m = 3;  // d + 1
    double h[DMAX + 1];
    double err = 0;
    int out[2] = {-1, -1};  // output row id per side (sg < 0, sg > 0), once made
    Z* alloc() const {
        if (!e) e.reset(new Z[DMAX + 1]);
        return e.get();
    }
    void approx() {
        approx_n(e.get(), m, h);
        err = 0;
    }
    // entries e0 .. e0 + m_ - 1 of a fixed-width map (not in delta form)
    void from_limbs(const Map& map, size_t e0, int m_) {
        src = &map;
        src_e = e0;
        m = m_;
        exact = false;
        err = 0;
        limbs_approx(map, e0, m, h);
    }
    // entries e0 .. e0 + m_ - 1 of a map in delta form from its doubles f (see float_approx)
    void from_float(const Map& map, size_t e0, int m_, const double* f, double fe) {
        src = &map;
        src_e = e0;
        m = m_;
        exact = false;
        err = float_approx(f, m, fe, h);
    }
    const Row& need() const {
        if (!exact) {
            alloc();
            for (int i = 0; i < m; ++i) src->get(src_e + (size_t)i, e[i].v);
            exact = true;
        }
        return *this;
    }
    bool is_zero() const {
        if (!exact) {
            if (!src->base) return fx_zero(&src->w[src_e * (size_t)src->K], m * src->K);
            for (int i = 0; i < m; ++i)  // a double beyond its error bound is not zero
                if (std::fabs(h[i]) > err) return false;
            for (int i = 0; i < m; ++i)
                if (!src->zero(src_e + (size_t)i)) return false;
            return true;
        }
        for (int i = 0; i < m; ++i)
            if (e[i].sgn()) return false;
        return true;
    }
};

// The rows of one parent's switching functions (or of the domain's facets). A parent's block
// holds only the rows its box test left undecided (Certifier::children): a row of one strict
// sign on all of the parent is no facet of a child and vanishes at none of its vertices, so
// nothing reads it. Row i is rows[at[i]] (at empty: rows[i]; at[i] < 0: not made).
struct RowBlock {
    Map map;  // the parent's map, which rows may read from
    std::vector<Row> rows;
    std::vector<int> at;
    std::vector<Z> scales;
    int per = 1;  // row i has scale scales[i / per]
    const Z& scale(int i) const { return scales[(size_t)(i / per)]; }
    Row& row(int i) { return rows[at.empty() ? (size_t)i : (size_t)at[(size_t)i]]; }
    const Row& row(int i) const { return rows[at.empty() ? (size_t)i : (size_t)at[(size_t)i]]; }
};

struct RowRef {
    std::shared_ptr<RowBlock> blk;
    int i = 0;
    int sg = 1;  // the facet's slack row is sg times the row
    const Row& row() const { return blk->row(i); }
};

struct Facet {
    RowRef row;
    std::vector<long> ids;  // sorted constraint ids vanishing on the facet
    std::vector<int> fv;    // d >= 3: positions of the facet's vertices in the cell (2-D: k, k + 1)
};

struct Vertex {
    Z x[DMAX + 1];  // homogeneous: the point (x_0, .., x_d-1) / x_d, x_d > 0
    int m = 3;      // d + 1
    double h[DMAX + 1];
    double f[DMAX];  // nearest doubles of the coordinates, when has_f
    bool has_f = false;
    int out = -1;  // id in the certifier's output vertex table
    const Z& W() const { return x[m - 1]; }
    void approx() { approx_n(x, m, h); }
    void nearest() {
        if (!has_f) {
            for (int i = 0; i + 1 < m; ++i) f[i] = nearest_ratio(x[i].v, x[m - 1].v);
            has_f = true;
        }
    }
};

// The states of one level of a cell: a byte per unit while its cell is being cut, then (pack(),
// once nothing compares them any more) `bits` bits per unit: 1 when every state is 0 or 1 (the
// first unit in the high bit of the first byte, as numpy.packbits, zero padding), else 2.
struct StateNode {
    std::shared_ptr<StateNode> up;
    std::vector<int8_t> st;
    int n = 0;
    int level = 0;
    int out = -1;
    int bits = 8;
    int at(size_t u) const {
        if (bits == 8) return st[u];
        if (bits == 1) return ((uint8_t)st[u >> 3] >> (7 - (u & 7))) & 1;
        return ((uint8_t)st[u >> 2] >> (6 - 2 * (u & 3))) & 3;
    }
    void pack() {
        if (bits != 8) return;
        int top = 0;
        for (int8_t x : st) top = std::max(top, (int)x);
        int b = top <= 1 ? 1 : 2;
        std::vector<int8_t> p(((size_t)n * (size_t)b + 7) / 8, 0);
        size_t u = 0;
        if (b == 1)  // eight units at a time: byte k of a little-endian word to bit 7 - k
            for (; u + 8 <= (size_t)n; u += 8) {
                uint64_t w;
                std::memcpy(&w, &st[u], 8);
                p[u >> 3] = (int8_t)(uint8_t)(((w & 0x0101010101010101ULL) * 0x8040201008040201ULL) >> 56);
            }
        for (; u < (size_t)n; ++u) {
            uint8_t x = (uint8_t)st[u];
            if (b == 1)
                p[u >> 3] = (int8_t)((uint8_t)p[u >> 3] | (x << (7 - (u & 7))));
            else
                p[u >> 2] = (int8_t)((uint8_t)p[u >> 2] | (x << (6 - 2 * (u & 3))));
        }
        st.swap(p);
        bits = b;
    }
};

// A vector that grows by fixed chunks: no reallocation (references stay valid, no copy beside
// the old array while it grows, at most one chunk of slack).
template <class T>
class Chunked {
    static constexpr size_t C = 1024;
    std::vector<std::unique_ptr<T[]>> chunks_;
    size_t n_ = 0;

  public:
    size_t size() const { return n_; }
    T& back() { return (*this)[n_ - 1]; }
    T& emplace_back() {
        if (n_ == chunks_.size() * C) chunks_.emplace_back(new T[C]);
        return (*this)[n_++];
    }
    T& operator[](size_t i) { return chunks_[i / C][i % C]; }
    const T& operator[](size_t i) const { return chunks_[i / C][i % C]; }
    void clear() {
        chunks_.clear();
        n_ = 0;
    }
};

struct Cell {
    int level = 0;
    std::vector<int> ring;       // vertex ids (2-D: counter-clockwise)
    std::vector<Facet> facets;   // 2-D: facet k joins ring[k] and ring[k + 1]
    std::vector<Q> w;            // a witness strictly inside (d coordinates: a rational allocates)
    Z vn, vd;                    // the area vn / vd (vd > 0; not in lowest terms)
    Map live;                    // n x (d + 1) integer map over the level's den (level L: the output)
    bool lazy = false;           // `live` is made when first needed (Certifier::materialize)
    std::shared_ptr<StateNode> states;
    std::shared_ptr<RowBlock> up;  // the parent's rows and map (none for the root)
};

// exact r . v for a row and a homogeneous vertex, times sg
int exact_sign(const Row& row, int sg, const Vertex& v) {
    const Row& r = row.need();
    thread_local Z t;
    mpz_mul(t.v, r.e[0].v, v.x[0].v);
    for (int i = 1; i < v.m; ++i) mpz_addmul(t.v, r.e[i].v, v.x[i].v);
    return sg * mpz_sgn(t.v);
}

int sign_at(const Row& r, int sg, const Vertex& v) {
    int s = filtered_sign(r.h, v.h, v.m, r.err);
    if (s != 2) return sg * s;
    return exact_sign(r, sg, v);
}

// Exact linear independence of integer rows of m <= DMAX + 1 entries, one row at a time: the rows
// kept so far are in fraction-free echelon form (kept row k is zero in the pivot columns of the
// rows kept before it, and non-zero in its own, piv[k]); a new row is reduced against them
// (r <- e_k[p] r - r[p] e_k, exact) and kept iff something is left, that is iff it is
// independent of them.
struct Echelon {
    Z e[DMAX + 1][DMAX + 1];
    int piv[DMAX + 1];
    int n = 0, m = 0;
    void reset(int m_) {
        n = 0;
        m = m_;
    }
    bool add(const Z* row) {
        if (n >= m) return false;
        Z* r = e[n];
        for (int i = 0; i < m; ++i) mpz_set(r[i].v, row[i].v);
        thread_local Z t;
        for (int k = 0; k < n; ++k) {
            const int p = piv[k];
            if (r[p].sgn() == 0) continue;
            mpz_set(t.v, r[p].v);
            for (int i = 0; i < m; ++i) {
                mpz_mul(r[i].v, r[i].v, e[k][p].v);
                mpz_submul(r[i].v, t.v, e[k][i].v);
            }
        }
        for (int i = 0; i < m; ++i)
            if (r[i].sgn()) {
                piv[n++] = i;
                return true;
            }
        return false;
    }
};

// out = the determinant of the 3 x 3 integer matrix (rows[i][cols[j]])
void det3(const Z* const* rows, const int* cols, Z& out) {
    thread_local Z t;
    auto at = [&](int i, int j) -> mpz_srcptr { return rows[i][cols[j]].v; };
    mpz_mul(t.v, at(1, 1), at(2, 2));
    mpz_submul(t.v, at(1, 2), at(2, 1));
    mpz_mul(out.v, at(0, 0), t.v);
    mpz_mul(t.v, at(1, 0), at(2, 2));
    mpz_submul(t.v, at(1, 2), at(2, 0));
    mpz_submul(out.v, at(0, 1), t.v);
    mpz_mul(t.v, at(1, 0), at(2, 1));
    mpz_submul(t.v, at(1, 1), at(2, 0));
    mpz_addmul(out.v, at(0, 2), t.v);
}

// The point where the hyperplanes of n independent integer rows of n + 1 entries (3 <= n <=
// DMAX) meet, as homogeneous coordinates x (r . x = 0 for each row, x_n != 0); false where they
// meet in no point (the first n columns are singular). Three rows: their generalized cross
// product, x_i = (-1)^i times the determinant of the rows without column i (r . x is the
// determinant of the rows with r added on top, expanded along r). More: one fraction-free
// Gauss-Jordan elimination (Bareiss's, as Montante's method), fewer operations than n + 1
// determinants: row operations keep the null space, and the rows end as [D I | v] with D the
// determinant of the first n columns and v_i that of the first n with column i replaced by the
// last (Cramer), so x = (-v, D), the same vector up to sign.
bool meet(const Z* const* rows, int n, Z* x) {
    if (n == 3) {
        int cols[3];
        for (int i = 0; i <= 3; ++i) {
            for (int j = 0, c = 0; j <= 3; ++j)
                if (j != i) cols[c++] = j;
            det3(rows, cols, x[i]);
            if (i & 1) mpz_neg(x[i].v, x[i].v);
        }
        return x[3].sgn() != 0;
    }
    thread_local Z a[DMAX][DMAX + 1], prev, t;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j <= n; ++j) mpz_set(a[i][j].v, rows[i][j].v);
    mpz_set_ui(prev.v, 1);
    for (int k = 0; k < n; ++k) {
        int p = k;
        while (p < n && a[p][k].sgn() == 0) ++p;
        if (p == n) return false;
        if (p != k)
            for (int j = 0; j <= n; ++j) mpz_swap(a[p][j].v, a[k][j].v);
        for (int i = 0; i < n; ++i) {
            if (i == k) continue;
            for (int j = k + 1; j <= n; ++j) {
                mpz_mul(t.v, a[k][k].v, a[i][j].v);
                mpz_submul(t.v, a[i][k].v, a[k][j].v);
                mpz_divexact(a[i][j].v, t.v, prev.v);
            }
            mpz_set_ui(a[i][k].v, 0);
            if (i < k) mpz_set(a[i][i].v, a[k][k].v);  // (a_kk a_ii - 0) / prev, a_ii = prev
        }
        mpz_set(prev.v, a[k][k].v);
    }
    for (int i = 0; i < n; ++i) mpz_neg(x[i].v, a[i][n].v);
    mpz_set(x[n].v, prev.v);
    return true;
}

// (number of the parent cell, states of one level) without copying the states
struct PKey {
    int parent;
    const char* st;
    size_t n;
    bool operator==(const PKey& o) const {
        return parent == o.parent && n == o.n && std::memcmp(st, o.st, n) == 0;
    }
};
struct PKeyHash {
    size_t operator()(const PKey& k) const {
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uint32_t)k.parent;
        size_t i = 0;
        for (; i + 8 <= k.n; i += 8) {
            uint64_t w;
            std::memcpy(&w, k.st + i, 8);
            h = (h ^ w) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        }
        for (; i < k.n; ++i) h = (h ^ (uint8_t)k.st[i]) * 0x100000001b3ULL;
        return (size_t)(h ^ (h >> 29));
    }
};

// --------------------------------------------------------------------------- output records

struct LeafRec {
    std::shared_ptr<StateNode> node;     // the states of every level (released once numbered)
    std::vector<Q> w;                    // d coordinates
    std::vector<int> frow;               // output row id per facet
    std::vector<long> fids;              // every facet's ids, facet after facet
    std::vector<int> fid_end;            // the end of facet k's ids in fids
    std::vector<std::vector<int>> fv;    // d >= 3: positions of each facet's vertices (2-D: k, k + 1)
    std::vector<int> verts;              // output vertex ids, in the cell's order
    Map out;                             // n_out x (d + 1) over spec.out_den
    Q volume;
};

// the ids of facet k of a leaf
struct Ids {
    const long* b;
    const long* e;
    const long* begin() const { return b; }
    const long* end() const { return e; }
    size_t size() const { return (size_t)(e - b); }
    bool empty() const { return b == e; }
    long front() const { return *b; }
};
inline Ids facet_ids(const LeafRec& lf, size_t k) {
    const long* p = lf.fids.data();
    return Ids{p + (k ? lf.fid_end[k - 1] : 0), p + lf.fid_end[k]};
}

// The facet a . t <= b, exact: (a, b) = q k, unless a = 0 (side 0: k = 0 and b = q).
struct RowOut {
    Q q;
    Z k[DMAX + 1];  // primitive integer row of the hyperplane (first non-zero of k[:d] positive)
    int side = 0;   // sign of the first non-zero of a before that normalisation
    // entry i of (a, b) (i = d: b)
    void get(int i, int d, mpq_t out) const {
        if (side == 0) {
            if (i == d)
                mpq_set(out, q.v);
            else
                mpq_set_ui(out, 0, 1);
            return;
        }
        // k_i q in lowest terms: (k_i / g) num(q) / (den(q) / g) with g = gcd(k_i, den(q)) (as
        // num(q) and den(q) are coprime); by shifts where den(q) is a power of two
        long l2 = log2_if_power(mpq_denref(q.v));
        if (l2 < 0 || mpz_sgn(k[i].v) == 0) {
            mpq_set_z(out, k[i].v);
            mpq_mul(out, out, q.v);
            return;
        }
        mp_bitcnt_t sh = std::min((mp_bitcnt_t)l2, mpz_scan1(k[i].v, 0));
        mpz_tdiv_q_2exp(mpq_numref(out), k[i].v, sh);
        mpz_mul(mpq_numref(out), mpq_numref(out), mpq_numref(q.v));
        mpz_set_ui(mpq_denref(out), 1);
        mpz_mul_2exp(mpq_denref(out), mpq_denref(out), (mp_bitcnt_t)l2 - sh);
    }
};

struct VertOut {
    std::vector<Q> x;  // d coordinates (as many rationals as used: each allocates)
    double f[DMAX];
    std::vector<Z> h;  // d >= 3: homogeneous coordinates (last > 0), for exact separation tests
};

// ---------------------------------------------------------------------------- the certifier

// Seconds spent per phase (reported in the certificate's statistics).
enum Phase { P_ROWS, P_ARRANGE, P_CELLS, P_WITNESS, P_VOLUME, P_MAPS, P_EMIT, P_N };
const char* const phase_names[P_N] = {"rows", "arrangement", "cells", "witnesses", "volumes", "maps", "leaves"};

struct Clock {
    double* acc;
    std::chrono::steady_clock::time_point t0;
    explicit Clock(double* a) : acc(a), t0(std::chrono::steady_clock::now()) {}
    void lap(Phase p) {
        auto t = std::chrono::steady_clock::now();
        acc[p] += std::chrono::duration<double>(t - t0).count();
        t0 = t;
    }
};

class Certifier {
  public:
    explicit Certifier(const Spec& spec) : spec_(spec) {}

    std::deque<Vertex> verts;
    Chunked<LeafRec> leaves;
    Chunked<RowOut> rows_out;
    Chunked<VertOut> verts_out;
    long n_cells = 0;
    double seconds[P_N] = {0};

    const std::atomic<bool>* stop = nullptr;  // set when the caller gives up (an exception, Ctrl-C)
    // max_regions: the leaves emitted by every certifier, and the limit (0: none). A cell left on
    // a stack holds at least one region, so leaves + cells waiting is a lower bound of the count.
    std::atomic<long>* emitted = nullptr;
    long limit = 0;
    std::atomic<long>* over = nullptr;  // set to the lower bound that passed the limit

    void check_limit(size_t waiting) {
        if (!limit) return;
        long found = emitted->load() + (long)waiting;
        if (found > limit) {
            *over = found;
            throw CertError("region limit");
        }
    }

    // Certify everything below `cell` (depth first), appending its leaves. The vertices made
    // while cutting a cell are read only by its descendants (a leaf copies its own to verts_out):
    // they are freed once the stack is back to where it was before that cell's children.
    void run(std::shared_ptr<Cell> cell) {
        std::vector<std::shared_ptr<Cell>> stack{std::move(cell)};
        std::vector<std::shared_ptr<Cell>> kids;
        struct Mark {
            size_t depth, verts;
        };
        std::vector<Mark> marks;
        auto release = [&]() {
            while (!marks.empty() && marks.back().depth == stack.size()) {
                verts.resize(marks.back().verts);
                marks.pop_back();
            }
        };
        size_t steps = 0;
        while (!stack.empty()) {
            if ((++steps & 255) == 0 && stop && *stop) throw CertError("stopped");
            std::shared_ptr<Cell> c = std::move(stack.back());
            stack.pop_back();
            if (c->level >= spec_.L) {
                Clock clk(seconds);
                emit(*c);
                clk.lap(P_EMIT);
                if (limit) {
                    ++*emitted;
                    check_limit(stack.size());
                }
                release();
                continue;
            }
            kids.clear();
            marks.push_back(Mark{stack.size(), verts.size()});
            children(*c, kids);
            n_cells += (long)kids.size();
            if (c->states) c->states->pack();  // its cell is cut: its states are only read out now
            c.reset();
            for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(std::move(*it));
            release();
            check_limit(stack.size());
        }
    }

    // The children of every cell of `cells` that is not a leaf, in order (leaves stay).
    void expand(std::vector<std::shared_ptr<Cell>>& cells) {
        std::vector<std::shared_ptr<Cell>> next, kids;
        for (auto& c : cells) {
            if (c->level >= spec_.L) {
                next.push_back(std::move(c));
                continue;
            }
            kids.clear();
            children(*c, kids);
            n_cells += (long)kids.size();
            for (auto& k : kids) next.push_back(std::move(k));
        }
        cells.swap(next);
    }

    // A copy of `c` whose vertices and facet rows live in this certifier (`from` owns the
    // originals, which must be exact already): a worker thread then shares nothing it writes
    // (its parent's map, `up`, is only read).
    std::shared_ptr<Cell> adopt(Cell& c, const Certifier& from) {
        auto o = std::make_shared<Cell>();
        o->level = c.level;
        o->states = c.states;
        o->up = c.up;
        o->w = c.w;
        o->vn = c.vn;
        o->vd = c.vd;
        materialize(c);
        o->live = std::move(c.live);
        for (int id : c.ring) {
            const Vertex& v = from.verts[(size_t)id];
            verts.emplace_back();
            Vertex& x = verts.back();
            x.m = v.m;
            for (int i = 0; i < v.m; ++i) x.x[i] = v.x[i];
            std::memcpy(x.h, v.h, sizeof x.h);
            x.has_f = v.has_f;
            std::memcpy(x.f, v.f, sizeof x.f);
            o->ring.push_back((int)verts.size() - 1);
        }
        auto blk = std::make_shared<RowBlock>();
        blk->per = 1;
        for (size_t k = 0; k < c.facets.size(); ++k) {
            const Facet& f = c.facets[k];
            const Row& r = f.row.row();
            blk->rows.emplace_back();
            Row& x = blk->rows.back();
            x.m = r.m;
            x.alloc();
            for (int i = 0; i < r.m; ++i) x.e[i] = r.e[i];
            std::memcpy(x.h, r.h, sizeof x.h);
            x.err = r.err;
            blk->scales.push_back(f.row.blk->scale(f.row.i));
        }
        for (size_t k = 0; k < c.facets.size(); ++k) {
            Facet f;
            f.row.blk = blk;
            f.row.i = (int)k;
            f.row.sg = c.facets[k].row.sg;
            f.ids = c.facets[k].ids;
            f.fv = c.facets[k].fv;
            o->facets.push_back(std::move(f));
        }
        return o;
    }

  private:
    const Spec& spec_;

    // per-parent scratch (reused)
    std::vector<int> lv_;          // local vertex -> arena id
    std::vector<int8_t> sg_;       // local vertex x rows
    std::vector<uint64_t> zw_;     // local vertex x words: rows vanishing there
    size_t R_ = 0, words_ = 0;
    std::vector<uint64_t> zmask_;
    std::vector<const Row*> rowp_;
    std::vector<int> rowsg_;
    // rows of one strict sign at every vertex of the parent, so on all of it (or identically zero):
    // that sign in far_sg_ (0 for the others), and the others' ids in near_; the units with a
    // near row in near_units_ (the only units whose states differ between the parent's children)
    std::vector<int8_t> far_sg_, box_sg_;
    std::vector<int> near_, near_units_, box_rest_;
    std::unordered_map<uint64_t, int> edge_point_;

    // per op l >= 1: a child of the last cell cut at op l, for the first child of the next cell
    // with the same parent (first_map_from_ref), and the columns g_v(s) made so far
    struct MapRef {
        std::shared_ptr<RowBlock> gp;  // the parent of the cell cut
        int K = 0;
        std::vector<int8_t> sp;        // the cell's states of op l - 1
        std::vector<int8_t> s;         // the child's states of op l
        std::vector<uint64_t> w;       // the child's map
        std::vector<__int128> col;     // column v: n_out entries, at v n_out
        std::vector<int8_t> stamp;     // column v is g_v(stamp[v n .. v n + n - 1]) (-1: not yet)
        std::vector<uint8_t> made;
    };
    std::vector<MapRef> refs_;

    // the map this certifier made last for a lazy cell (see materialize): its parent's rows and
    // map, its states, the map
    struct LazyRef {
        std::shared_ptr<RowBlock> blk;
        std::vector<int8_t> s;
        std::vector<uint64_t> w;
    };
    LazyRef lazy_;

    uint64_t* Zv(size_t v) { return &zw_[v * words_]; }
    int8_t* Sv(size_t v) { return &sg_[v * R_]; }

    // signs of every row at local vertex v (already in lv_), rows in `known` known to vanish;
    // those of the rows not in `only` are `fixed` (strict signs known on all of the parent)
    void add_signs(size_t v, const uint64_t* known, const int8_t* fixed, const std::vector<int>& only) {
        sg_.resize((v + 1) * R_);
        zw_.resize((v + 1) * words_);
        const Vertex& x = verts[(size_t)lv_[v]];
        int8_t* s = Sv(v);
        uint64_t* z = Zv(v);
        for (size_t w = 0; w < words_; ++w) z[w] = 0;
        auto one = [&](size_t r) {
            int val;
            if (known && (known[r >> 6] >> (r & 63) & 1)) {
                val = 0;
            } else {
                val = sign_at(*rowp_[r], rowsg_[r], x);
            }
            s[r] = (int8_t)val;
            if (val == 0) z[r >> 6] |= (uint64_t)1 << (r & 63);
        };
        std::memcpy(s, fixed, R_);
        for (int r : only) one((size_t)r);
        for (size_t w = 0; w < words_; ++w) z[w] &= zmask_[w];
    }

    // The strict sign of a switching row on all of P by a float test with a rigorous error
    // bound (Box::sign: 0 when it cannot tell). P lies in the box of its vertices' coordinates q
    // (from their scaled approximations, each within 2^-50 |q| + 2^-170 of the exact one where
    // W's approximation is at least 2^-900), widened by more than that; around its float centre
    // m with radii r, a row (a, c) (each entry within 2^-51 relative and 2^-1073 of the exact
    // scaled one) is at least |a . m + c| - sum |a_i| r_i - (rounding and approximation: below
    // 2^-48 (sum |a_i m_i| + |c|) + 2^-1000 (1 + sum (r_i + |m_i|))) in magnitude there, with the
    // sign of a . m + c. A row whose entries carry an absolute error err too (see Row) moves by
    // at most err (1 + sum |x_i|) <= err (1 + sum (|m_i| + r_i)) at any point x of the box: that
    // is added, times (1 + 2^-40) for its own rounding. Where a bound cannot be made (tiny W,
    // huge coordinates) the box decides nothing (ok false) and every row is evaluated at every
    // vertex.
    struct Box {
        bool ok = false;
        int d = 2;
        double m[DMAX], rad[DMAX], extra = 0, reach = 0;
        template <int D>
        int sign_d(const double* a, double err) const {
            double s = a[D], spread = 0, mag = std::fabs(a[D]);
            for (int i = 0; i < D; ++i) {
                s += a[i] * m[i];
                spread += std::fabs(a[i]) * rad[i];
                mag += std::fabs(a[i] * m[i]);
            }
            const double bound = (spread * (1 + 0x1p-48) + mag * 0x1p-48 + extra + err * reach) * (1 + 0x1p-45);
            return s > bound ? 1 : s < -bound ? -1 : 0;
        }
        int sign(const double* a, double err) const {
            switch (d) {
                case 2: return sign_d<2>(a, err);
                case 3: return sign_d<3>(a, err);
                case 4: return sign_d<4>(a, err);
                case 5: return sign_d<5>(a, err);
                default: return sign_d<DMAX>(a, err);
            }
        }
        // sign() of n rows of D + 1 doubles f (row u at f + u (D + 1), its absolute error
        // max(fe[u], 0), none when fe is null) into out[u]. The doubles of a map in delta form
        // (Map::floats) or of its entries in limbs (fx_to_double) go in as they are, unscaled:
        // the bound above holds for any positive multiple of a row, its entries within 2^-51
        // relative and err absolute of the exact ones, at any scale. Scaling only keeps the
        // entries from overflowing: the integers of a map are below 2^512, m and r below 2^500,
        // so no product or sum here overflows; one that did would make mag, hence the bound,
        // infinite or NaN (as a NaN entry does), and then nothing is decided. Underflow adds at
        // most 2^-1074 per operation: `extra`, an absolute term, covers that at any scale.
        template <int D>
        void signs_d(const double* f, const double* fe, int n, int8_t* out) const {
            for (int u = 0; u < n; ++u)
                out[u] = (int8_t)sign_d<D>(f + (size_t)u * (D + 1), fe ? std::max(fe[u], 0.0) : 0.0);
        }
        void signs(const double* f, const double* fe, int n, int8_t* out) const {
            switch (d) {
                case 2: return signs_d<2>(f, fe, n, out);
                case 3: return signs_d<3>(f, fe, n, out);
                case 4: return signs_d<4>(f, fe, n, out);
                case 5: return signs_d<5>(f, fe, n, out);
                default: return signs_d<DMAX>(f, fe, n, out);
            }
        }
    };
    // the box of the vertices ids (arena ids; local ones, lv_[x], with local): it holds their
    // convex hull (a cell)
    Box box_of(const std::vector<int>& ids, bool local = false) const {
        Box b;
        const int d = b.d = spec_.d;
        double lo[DMAX], hi[DMAX];
        for (int i = 0; i < d; ++i) {
            lo[i] = HUGE_VAL;
            hi[i] = -HUGE_VAL;
        }
        for (int x : ids) {
            const Vertex& v = verts[(size_t)(local ? lv_[(size_t)x] : x)];
            const double w = v.h[v.m - 1];
            if (!(w >= 0x1p-900)) return b;
            for (int i = 0; i < d; ++i) {
                const double q = v.h[i] / w;
                const double slack = std::fabs(q) * 0x1p-48 + 0x1p-160;
                lo[i] = std::min(lo[i], q - slack);
                hi[i] = std::max(hi[i], q + slack);
            }
        }
        for (int i = 0; i < d; ++i) {
            b.m[i] = 0.5 * (lo[i] + hi[i]);
            b.rad[i] = std::max(hi[i] - b.m[i], b.m[i] - lo[i]) * (1 + 0x1p-48);
            if (!(std::isfinite(b.m[i]) && std::isfinite(b.rad[i]) && std::fabs(b.m[i]) < 0x1p500 && b.rad[i] < 0x1p500))
                return b;
        }
        double extra = 1;
        for (int i = 0; i < d; ++i) extra += b.rad[i] + std::fabs(b.m[i]);
        b.reach = extra * (1 + 0x1p-40);
        b.extra = extra * 0x1p-1000;
        b.ok = true;
        return b;
    }

    // 2-D: the point where line `ra` cuts a side, whose line is any row vanishing at both of the
    // side's ends (`tight`): the cross product of the two rows
    int new_vertex(const Row& ra, const std::vector<uint64_t>& tight) {
        int line = -1;
        for (size_t w = 0; w < tight.size() && line < 0; ++w)
            if (tight[w]) line = (int)(w * 64 + (size_t)__builtin_ctzll(tight[w]));
        if (line < 0) throw CertError("a side of a cell lies on no constraint");
        const Row& a = ra.need();
        const Row& b = rowp_[(size_t)line]->need();
        verts.emplace_back();
        Vertex& v = verts.back();
        v.m = 3;
        mpz_mul(v.x[0].v, a.e[1].v, b.e[2].v);
        mpz_submul(v.x[0].v, a.e[2].v, b.e[1].v);
        mpz_mul(v.x[1].v, a.e[2].v, b.e[0].v);
        mpz_submul(v.x[1].v, a.e[0].v, b.e[2].v);
        mpz_mul(v.x[2].v, a.e[0].v, b.e[1].v);
        mpz_submul(v.x[2].v, a.e[1].v, b.e[0].v);
        if (v.x[2].sgn() == 0) throw CertError("a cut line is parallel to the side it cuts");
        finish_vertex(v);
        return (int)verts.size() - 1;
    }

    // d >= 3: the point where hyperplane `ra` cuts an edge: with d - 1 rows vanishing on the edge
    // (of those vanishing at both its ends, `tight`) independent with `ra`, the point where the d
    // rows meet (see meet). The rows are chosen greedily, each kept iff it is independent of
    // those kept before (exact, see Echelon).
    int new_vertex_d(const Row& ra, const std::vector<uint64_t>& tight) {
        const int d = spec_.d, M = d + 1;
        const Row* chosen[DMAX];
        int k = 0;
        thread_local Echelon ech;
        ech.reset(M);
        ech.add(&ra.need().e[0]);
        chosen[k++] = &ra;
        for (size_t w = 0; w < tight.size() && k < d; ++w)
            for (uint64_t bits = tight[w]; bits && k < d; bits &= bits - 1) {
                const Row& r = rowp_[w * 64 + (size_t)__builtin_ctzll(bits)]->need();
                if (ech.add(&r.e[0])) chosen[k++] = &r;
            }
        if (k < d) throw CertError("an edge of a cell lies on no d - 1 independent constraints");
        verts.emplace_back();
        Vertex& v = verts.back();
        v.m = M;
        const Z* rows[DMAX];
        for (int i = 0; i < d; ++i) rows[i] = &chosen[i]->e[0];
        if (!meet(rows, d, v.x))
            throw CertError("a cut hyperplane is parallel to the edge it cuts");
        finish_vertex(v);
        return (int)verts.size() - 1;
    }

    // W > 0 and no common power of two (the network's numbers are dyadic: rows carry large ones)
    static void finish_vertex(Vertex& v) {
        const int m = v.m;
        if (v.x[m - 1].sgn() < 0)
            for (int i = 0; i < m; ++i) mpz_neg(v.x[i].v, v.x[i].v);
        mp_bitcnt_t tz = mpz_scan1(v.x[m - 1].v, 0);
        for (int i = 0; i + 1 < m; ++i)
            if (v.x[i].sgn()) tz = std::min(tz, mpz_scan1(v.x[i].v, 0));
        if (tz)
            for (int i = 0; i < m; ++i) mpz_tdiv_q_2exp(v.x[i].v, v.x[i].v, tz);
        v.approx();
    }

    void children(Cell& P, std::vector<std::shared_ptr<Cell>>& kids);
    void child_maps(const Cell& P, const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids);
    template <int K>
    void child_maps_fx(const Cell& P, const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids);
    template <int K>
    bool first_map_from_ref(const Cell& P, const Map& pm, const Level& lv, const std::vector<int8_t>& s0, Map& m0,
                            bool keep);
    template <int K>
    void keep_ref(const Cell& P, const Level& lv, const std::vector<int8_t>& s, const std::vector<uint64_t>& w);
    template <int K>
    void delta_maps(const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids, Map& m0);
    void child_maps_z(const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids);
    template <int K>
    void product_map(const Map& pm, const Level& lv, const std::vector<int8_t>& s0, Map& m0);
    void materialize(Cell& c);
    template <int K>
    void materialize_fx(Cell& c);
    void witness(Cell& c);
    void volume(Cell& c) { if (spec_.d == 2) volume2(c); else volume3(c); }  // d <= 3 (parse)
    void volume2(Cell& c);
    void volume3(Cell& c);
    void emit(Cell& c);
    int row_out(const RowRef& r);
    int vert_out(int id);
};

bool sums_to(const std::vector<std::shared_ptr<Cell>>& kids, const Cell& P);

void Certifier::children(Cell& P, std::vector<std::shared_ptr<Cell>>& kids) {
    const Level& lv = spec_.levels[(size_t)P.level];
    const int n = lv.n, T = lv.nthr, S = n * T, M = spec_.d + 1;
    const size_t F = P.facets.size();
    const long off = lv.offset;
    Clock clk(seconds);
    materialize(P);
    clk.lap(P_MAPS);

    // the switching rows on P: (row * s - shift e_last), scale den * s, per threshold; a row
    // that is the map's own row (s = 1, shift = 0) is read off the map where it is in limbs or
    // in delta form, and made (a Row in blk) only when the box test leaves its sign on P
    // undecided (see RowBlock); the others are made exact now, every one
    auto blk = std::make_shared<RowBlock>();
    blk->map = std::move(P.live);
    const Map& pm = blk->map;
    blk->per = n;
    blk->scales = lv.thr_scale;
    blk->at.assign((size_t)S, -1);
    const Box box = box_of(P.ring);
    R_ = (size_t)S + F;
    words_ = (R_ + 63) / 64;
    box_sg_.assign(R_, 0);
    box_rest_.clear();
    for (int t = 0; t < T; ++t) {
        const Z& s = lv.thr_s[(size_t)t];
        const Z& shift = lv.thr_shift[(size_t)t];
        const bool plain = mpz_cmp_ui(s.v, 1) == 0 && shift.sgn() == 0;
        const bool fl = plain && pm.base, lb = plain && !pm.base && pm.K;
        const double* fe = fl ? pm.float_errors() : nullptr;
        if ((fl || lb) && box.ok) {
            // the box test on the map's doubles as they are (Box::signs), or on its entries in
            // limbs as doubles (fx_to_double: integer-valued, within 2^-52 relative)
            const double* f = pm.floats();
            if (lb) {
                thread_local std::vector<double> buf;
                buf.resize((size_t)n * (size_t)M);
                const int K = pm.K;
                for (size_t k = 0; k < buf.size(); ++k) buf[k] = fx_to_double(&pm.w[k * (size_t)K], K);
                f = buf.data();
            }
            box.signs(f, fe, n, &box_sg_[(size_t)(t * n)]);
            for (int u = 0; u < n; ++u) {
                const int i = t * n + u;
                if (box_sg_[(size_t)i]) continue;
                const size_t e = (size_t)u * (size_t)M;
                box_rest_.push_back(i);
                blk->at[(size_t)i] = (int)blk->rows.size();
                if (fl)
                    blk->rows.emplace_back().from_float(pm, e, M, pm.floats() + e, fe ? fe[u] : -1.0);
                else
                    blk->rows.emplace_back().from_limbs(pm, e, M);
            }
            continue;
        }
        for (int u = 0; u < n; ++u) {
            const int i = t * n + u;
            const size_t e = (size_t)u * (size_t)M;
            double h[DMAX + 1], err = 0;
            if (fl) {
                err = float_approx(pm.floats() + e, M, fe ? fe[u] : -1.0, h);
            } else if (lb) {
                limbs_approx(pm, e, M, h);
            } else {
                blk->at[(size_t)i] = (int)blk->rows.size();
                Row& r = blk->rows.emplace_back();
                r.m = M;
                r.alloc();
                for (int k = 0; k < M; ++k) pm.get(e + (size_t)k, r.e[k].v);
                if (!plain) {
                    for (int k = 0; k < M; ++k) mpz_mul(r.e[k].v, r.e[k].v, s.v);
                    mpz_sub(r.e[M - 1].v, r.e[M - 1].v, shift.v);
                }
                r.approx();
                std::memcpy(h, r.h, sizeof h);
                err = r.err;
            }
            const int sg = box.ok ? box.sign(h, err) : 0;  // rowsg_ is 1 for a switching row
            if (sg) {
                box_sg_[(size_t)i] = (int8_t)sg;
                continue;
            }
            box_rest_.push_back(i);
            if (blk->at[(size_t)i] >= 0) continue;
            blk->at[(size_t)i] = (int)blk->rows.size();
            Row& r = blk->rows.emplace_back();
            if (fl)
                r.from_float(pm, e, M, pm.floats() + e, fe ? fe[u] : -1.0);
            else
                r.from_limbs(pm, e, M);
        }
    }

    // every row: switching functions, then P's facets (a far switching row has no Row)
    rowp_.assign(R_, nullptr);
    rowsg_.resize(R_);
    for (int i = 0; i < S; ++i) rowsg_[(size_t)i] = 1;
    for (int i : box_rest_) rowp_[(size_t)i] = &blk->row(i);
    for (size_t k = 0; k < F; ++k) {
        rowp_[(size_t)S + k] = &P.facets[k].row.row();
        rowsg_[(size_t)S + k] = P.facets[k].row.sg;
        box_rest_.push_back(S + (int)k);
    }
    // rows that can be tight: all but the functions identically zero on P (a far row is not)
    zmask_.assign(words_, ~(uint64_t)0);
    if (R_ % 64) zmask_[words_ - 1] = ((uint64_t)1 << (R_ % 64)) - 1;
    std::vector<uint64_t> vanish(words_, 0);
    for (int i : box_rest_) {
        if (i >= S) break;
        if (rowp_[(size_t)i]->is_zero()) {
            zmask_[(size_t)i >> 6] &= ~((uint64_t)1 << (i & 63));
            vanish[(size_t)i >> 6] |= (uint64_t)1 << (i & 63);
        }
    }

    clk.lap(P_ROWS);

    // the parent's vertices, with its facets known to vanish at their own vertices
    const size_t n0 = P.ring.size();
    lv_.assign(P.ring.begin(), P.ring.end());
    sg_.clear();
    zw_.clear();
    const int d = spec_.d;
    std::vector<uint64_t> known(n0 * words_);
    for (size_t v = 0; v < n0; ++v) std::copy(vanish.begin(), vanish.end(), known.begin() + (long)(v * words_));
    auto set_bit = [](uint64_t* z, size_t r) { z[r >> 6] |= (uint64_t)1 << (r & 63); };
    for (size_t k = 0; k < F; ++k) {
        if (d == 2) {  // facet k joins vertices k and k + 1
            set_bit(&known[k * words_], (size_t)S + k);
            set_bit(&known[((k + 1) % n0) * words_], (size_t)S + k);
        } else {
            for (int v : P.facets[k].fv) set_bit(&known[(size_t)v * words_], (size_t)S + k);
        }
    }
    for (size_t v = 0; v < n0; ++v) add_signs(v, &known[v * words_], box_sg_.data(), box_rest_);

    // the far rows (P is the convex hull of its vertices: a row of one strict sign at all of
    // them has it on all of P, at every vertex made inside it too) and the near ones; the
    // functions crossing P, in order (each cuts every cell it crosses). A row the box test
    // decided has that strict sign at every vertex of P (add_signs): far, without a look at them.
    std::vector<int> cutting;
    {
        far_sg_.assign(box_sg_.begin(), box_sg_.end());
        near_.clear();
        for (int r : box_rest_) {  // ascending
            const size_t i = (size_t)r;
            if (r < S && ((vanish[i >> 6] >> (i & 63)) & 1)) continue;  // 0 everywhere
            bool ps = false, ng = false, zr = false;
            for (size_t v = 0; v < n0; ++v) {
                const int8_t x = Sv(v)[i];
                ps |= x > 0;
                ng |= x < 0;
                zr |= x == 0;
            }
            if (!zr && !(ps && ng)) {
                far_sg_[i] = ps ? 1 : -1;
            } else {
                near_.push_back(r);
                if (r < S && ps && ng) cutting.push_back(r);
            }
        }
        near_units_.clear();
        for (int i : near_)
            if (i < S) near_units_.push_back(i % n);
        std::sort(near_units_.begin(), near_units_.end());
        near_units_.erase(std::unique(near_units_.begin(), near_units_.end()), near_units_.end());
    }
    std::vector<std::vector<int>> cells{std::vector<int>()};
    for (size_t v = 0; v < n0; ++v) cells[0].push_back((int)v);
    // d >= 3: the constraints that define each cell (P's facets, then every cut through it)
    std::vector<std::vector<uint64_t>> cms;
    if (d != 2) {
        cms.emplace_back(words_, 0);
        for (size_t k = 0; k < F; ++k) set_bit(cms[0].data(), (size_t)S + k);
    }
    std::vector<std::vector<int>> next;
    std::vector<std::vector<uint64_t>> next_cms;
    std::vector<std::pair<int, std::vector<uint64_t>>> fresh;
    // the vertex where function i vanishes on the edge between local vertices p and q (made once)
    auto point_on = [&](int p, int q, int i) {
        uint64_t key = p < q ? ((uint64_t)p << 32 | (uint64_t)q) : ((uint64_t)q << 32 | (uint64_t)p);
        auto it = edge_point_.find(key);
        if (it != edge_point_.end()) return it->second;
        // the rows vanishing at both ends contain the edge
        const uint64_t* zp = Zv((size_t)p);
        const uint64_t* zq = Zv((size_t)q);
        std::vector<uint64_t> kn(words_);
        for (size_t w = 0; w < words_; ++w) kn[w] = zp[w] & zq[w];
        int id = d == 2 ? new_vertex(*rowp_[(size_t)i], kn) : new_vertex_d(*rowp_[(size_t)i], kn);
        int x = (int)(lv_.size() + fresh.size());
        set_bit(kn.data(), (size_t)i);
        for (size_t w = 0; w < words_; ++w) kn[w] |= vanish[w];
        fresh.emplace_back(id, std::move(kn));
        edge_point_.emplace(key, x);
        return x;
    };
    std::vector<uint64_t> zc, t(words_);
    // many cuts (the root's arrangement): a cell's box (made when first needed, kept while the
    // cell is) tells most cells apart from a line that misses them (Box::sign), without a look at
    // their vertices' signs (a column of sg_: a cache miss each). Both say the same: the box
    // holds the cell, and a row of one strict sign on it has that sign at every vertex.
    const bool boxed = cutting.size() >= 16;
    std::vector<Box> bx, next_bx;  // cell ci's box, made iff has[ci]
    std::vector<uint8_t> has, next_has;
    if (boxed) {
        bx.resize(cells.size());
        has.assign(cells.size(), 0);
    }
    for (int i : cutting) {
        next.clear();
        next_cms.clear();
        next_bx.clear();
        next_has.clear();
        fresh.clear();
        edge_point_.clear();
        for (size_t ci = 0; ci < cells.size(); ++ci) {
            std::vector<int>& vs = cells[ci];
            bool pos = false, neg = false;
            if (boxed) {
                if (!has[ci]) {
                    bx[ci] = box_of(vs, true);
                    has[ci] = 1;
                }
                if (bx[ci].ok && bx[ci].sign(rowp_[(size_t)i]->h, rowp_[(size_t)i]->err)) {
                    next.push_back(std::move(vs));
                    if (d != 2) next_cms.push_back(std::move(cms[ci]));
                    next_bx.push_back(bx[ci]);
                    next_has.push_back(1);
                    continue;
                }
            }
            for (int v : vs) {
                int8_t s = Sv((size_t)v)[i];
                pos |= s > 0;
                neg |= s < 0;
            }
            if (!(pos && neg)) {
                next.push_back(std::move(vs));
                if (d != 2) next_cms.push_back(std::move(cms[ci]));
                if (boxed) {
                    next_bx.push_back(bx[ci]);
                    next_has.push_back(has[ci]);
                }
                continue;
            }
            if (boxed) {
                next_bx.resize(next_bx.size() + 2);
                next_has.push_back(0);
                next_has.push_back(0);
            }
            std::vector<int> plus, minus;
            size_t m = vs.size();
            if (d == 2) {  // split the ring
                for (size_t k = 0; k < m; ++k) {
                    int p = vs[k], q = vs[(k + 1) % m];
                    int sp = Sv((size_t)p)[i], sq = Sv((size_t)q)[i];
                    if (sp >= 0) plus.push_back(p);
                    if (sp <= 0) minus.push_back(p);
                    if (sp * sq < 0) {
                        int x = point_on(p, q, i);
                        plus.push_back(x);
                        minus.push_back(x);
                    }
                }
            } else {
                // u, w on opposite sides span an edge iff their common tight constraints (of
                // the cell's) number at least d - 1 and no third vertex is tight on all of them
                // (Fukuda and Prodon, 1996)
                const uint64_t* cm = cms[ci].data();
                zc.assign(m * words_, 0);
                for (size_t k = 0; k < m; ++k) {
                    const uint64_t* z = Zv((size_t)vs[k]);
                    for (size_t w = 0; w < words_; ++w) zc[k * words_ + w] = z[w] & cm[w];
                }
                for (int v : vs)
                    if (Sv((size_t)v)[i] >= 0) plus.push_back(v);
                for (int v : vs)
                    if (Sv((size_t)v)[i] <= 0) minus.push_back(v);
                for (size_t a = 0; a < m; ++a) {
                    if (Sv((size_t)vs[a])[i] <= 0) continue;
                    for (size_t b = 0; b < m; ++b) {
                        if (Sv((size_t)vs[b])[i] >= 0) continue;
                        int cnt = 0;
                        for (size_t w = 0; w < words_; ++w) {
                            t[w] = zc[a * words_ + w] & zc[b * words_ + w];
                            cnt += __builtin_popcountll(t[w]);
                        }
                        if (cnt < d - 1) continue;
                        bool edge = true;
                        for (size_t k = 0; k < m && edge; ++k) {
                            if (k == a || k == b) continue;
                            bool all = true;
                            for (size_t w = 0; w < words_ && all; ++w) all = (zc[k * words_ + w] & t[w]) == t[w];
                            if (all) edge = false;
                        }
                        if (!edge) continue;
                        int x = point_on(vs[a], vs[b], i);
                        plus.push_back(x);
                        minus.push_back(x);
                    }
                }
                std::vector<uint64_t> cm2(cms[ci]);
                set_bit(cm2.data(), (size_t)i);
                next_cms.push_back(cm2);
                next_cms.push_back(std::move(cm2));
            }
            next.push_back(std::move(plus));
            next.push_back(std::move(minus));
        }
        std::swap(cells, next);
        std::swap(cms, next_cms);
        std::swap(bx, next_bx);
        std::swap(has, next_has);
        for (auto& fr : fresh) {
            lv_.push_back(fr.first);
            add_signs(lv_.size() - 1, fr.second.data(), far_sg_.data(), near_);
        }
    }

    clk.lap(P_ARRANGE);

    // each cell: its signs, state, facets, witness, volume
    const int j = P.level;
    std::vector<int8_t> signs((size_t)S);
    bool only = cells.size() == 1;
    bool touched = false;
    if (only) {  // does a (not identically zero) function vanish on a whole facet of P?
        std::vector<uint64_t> z(words_);
        for (size_t k = 0; k < F && !touched; ++k) {
            std::fill(z.begin(), z.end(), ~(uint64_t)0);
            auto meet = [&](size_t v) {
                const uint64_t* zv = Zv(v);
                for (size_t w = 0; w < words_; ++w) z[w] &= zv[w];
            };
            if (d == 2) {
                meet(k);
                meet((k + 1) % n0);
            } else {
                for (int v : P.facets[k].fv) meet((size_t)v);
            }
            for (size_t w = 0; w * 64 < (size_t)S && !touched; ++w) {  // a bit of the first S
                uint64_t bits = z[w];
                if ((w + 1) * 64 > (size_t)S) bits &= ((uint64_t)1 << (S % 64)) - 1;
                touched = bits != 0;
            }
        }
    }
    // the children's states differ in the units of near rows only: every child's states are
    // those of the far rows' signs but there, and they are told apart by those units' states
    auto unit_state = [&](int u) -> int8_t {
        if (T == 1) return signs[(size_t)u] > 0 ? 1 : 0;
        return signs[(size_t)u] < 0 ? 0 : signs[(size_t)(n + u)] > 0 ? 2 : 1;
    };
    std::copy(far_sg_.begin(), far_sg_.begin() + S, signs.begin());
    std::vector<int8_t> base((size_t)n);
    for (int u = 0; u < n; ++u) base[(size_t)u] = unit_state(u);
    const size_t nu = near_units_.size();
    std::vector<int8_t> keys(cells.size() * nu);  // each child's states of those units
    std::unordered_set<PKey, PKeyHash> seen;
    std::vector<uint8_t> pos(R_), neg(R_);
    for (auto& vs : cells) {
        for (int i : near_) {
            pos[(size_t)i] = 0;
            neg[(size_t)i] = 0;
        }
        for (int v : vs) {
            const int8_t* sv = Sv((size_t)v);
            for (int i : near_) {
                pos[(size_t)i] |= sv[i] > 0;
                neg[(size_t)i] |= sv[i] < 0;
            }
        }
        uint8_t both = 0;
        for (int i : near_) {
            if (i >= S) break;
            both |= pos[(size_t)i] & neg[(size_t)i];
            signs[(size_t)i] = (int8_t)(pos[(size_t)i] - neg[(size_t)i]);
        }
        if (both) throw CertError("a switching function crosses a finished cell (level " + std::to_string(j) + ")");
        auto node = std::make_shared<StateNode>();
        node->up = P.states;
        node->level = j;
        node->n = n;
        node->st = base;
        int8_t* key = keys.data() + (size_t)(&vs - &cells[0]) * nu;
        for (size_t k = 0; k < nu; ++k) key[k] = node->st[(size_t)near_units_[k]] = unit_state(near_units_[k]);
        if (!seen.insert(PKey{0, (const char*)key, nu}).second)
            throw CertError("two cells of one parent with the same state (level " + std::to_string(j) + ")");

        auto c = std::make_shared<Cell>();
        c->level = j + 1;
        c->states = node;
        c->up = blk;
        if (only && !touched) {  // nothing cuts or touches P: the same polygon, facets, witness, volume
            c->ring = P.ring;
            c->facets = P.facets;
            c->w = P.w;
            c->vn = P.vn;
            c->vd = P.vd;
            kids.push_back(std::move(c));
            continue;
        }
        size_t m = vs.size();
        c->ring.resize(m);
        for (size_t k = 0; k < m; ++k) c->ring[k] = lv_[(size_t)vs[k]];
        // the facets' vertices (positions): 2-D the ring's sides; else the maximal sets of
        // vertices tight on one of the cell's constraints
        std::vector<std::vector<int>> sides;
        if (d == 2) {
            for (size_t k = 0; k < m; ++k) sides.push_back({(int)k, (int)((k + 1) % m)});
        } else {
            const uint64_t* cm = cms[(size_t)(&vs - &cells[0])].data();
            std::vector<std::vector<int>> sets;
            for (size_t w = 0; w < words_; ++w)
                for (uint64_t bits = cm[w]; bits; bits &= bits - 1) {
                    size_t r = w * 64 + (size_t)__builtin_ctzll(bits);
                    std::vector<int> on;
                    for (size_t k = 0; k < m; ++k)
                        if ((Zv((size_t)vs[k])[r >> 6] >> (r & 63)) & 1) on.push_back((int)k);
                    if (!on.empty()) sets.push_back(std::move(on));
                }
            std::sort(sets.begin(), sets.end());
            sets.erase(std::unique(sets.begin(), sets.end()), sets.end());
            for (size_t a = 0; a < sets.size(); ++a) {
                bool maximal = true;
                for (size_t b = 0; b < sets.size() && maximal; ++b)
                    if (b != a && sets[b].size() > sets[a].size() &&
                        std::includes(sets[b].begin(), sets[b].end(), sets[a].begin(), sets[a].end()))
                        maximal = false;
                if (maximal) sides.push_back(sets[a]);
            }
        }
        c->facets.resize(sides.size());
        std::vector<uint64_t> z(words_);
        for (size_t k = 0; k < sides.size(); ++k) {
            std::fill(z.begin(), z.end(), ~(uint64_t)0);
            for (int x : sides[k]) {
                const uint64_t* zv = Zv((size_t)vs[(size_t)x]);
                for (size_t w = 0; w < words_; ++w) z[w] &= zv[w];
            }
            if ((int)sides[k].size() < d) throw CertError("a facet of a cell with fewer than d vertices");
            Facet& f = c->facets[k];
            if (d != 2) f.fv = sides[k];
            int first_unit = -1, first_parent = -1;
            for (size_t w = 0; w < words_; ++w) {
                uint64_t bits = z[w];
                while (bits) {
                    int r = (int)(w * 64 + (size_t)__builtin_ctzll(bits));
                    bits &= bits - 1;
                    if (r >= S) {
                        const Facet& pf = P.facets[(size_t)(r - S)];
                        f.ids.insert(f.ids.end(), pf.ids.begin(), pf.ids.end());
                        if (first_parent < 0) first_parent = r - S;
                    } else {
                        f.ids.push_back(off + r);
                        if (first_unit < 0) first_unit = r;
                    }
                }
            }
            if (first_parent < 0 && first_unit < 0) throw CertError("a side of a cell lies on no constraint");
            std::sort(f.ids.begin(), f.ids.end());
            f.ids.erase(std::unique(f.ids.begin(), f.ids.end()), f.ids.end());
            if (first_parent >= 0) {
                f.row = P.facets[(size_t)first_parent].row;
            } else {
                f.row.blk = blk;
                f.row.i = first_unit;
                f.row.sg = signs[(size_t)first_unit];
            }
        }
        if (only) {
            c->w = P.w;
            c->vn = P.vn;
            c->vd = P.vd;
        } else {
            clk.lap(P_CELLS);
            witness(*c);
            clk.lap(P_WITNESS);
            if (spec_.volumes) {
                volume(*c);
            } else {
                mpz_set_ui(c->vn.v, 0);
                mpz_set_ui(c->vd.v, 1);
            }
            clk.lap(P_VOLUME);
        }
        kids.push_back(std::move(c));
    }
    if (spec_.volumes && !(only && !touched) && !sums_to(kids, P))
        throw CertError("children volumes do not sum to the parent's volume (level " + std::to_string(j) + ")");
    clk.lap(P_CELLS);
    child_maps(P, pm, lv, kids);
    clk.lap(P_MAPS);
}

// The exact maps after op j for every child: N = Az R(s) + az (den sa) e_last over dA den sa,
// with R(s) the units' output rows in state s; for the first child one product, or updates of a
// child of an earlier sibling of P (first_map_from_ref), then for each further child rank-one
// updates from the nearest child already made (Python: _child_lives). The children of a cell of
// op 0 (the root: every region of the first layer, about 146,000 maps of 42 KB each on
// 2-880-880-880, all held at once by a stack or the threads' frontier) get theirs later, one at
// a time (Cell::lazy, materialize).
void Certifier::child_maps(const Cell& P, const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids) {
    if (P.level == 0 && lv.K_out > 0 && lv.K_out <= KMAX) {  // made when needed (materialize)
        for (auto& k : kids) {
            k->live.K = lv.K_out;
            k->lazy = true;
        }
        return;
    }
    switch (lv.K_out) {
        case 1: return child_maps_fx<1>(P, pm, lv, kids);
        case 2: return child_maps_fx<2>(P, pm, lv, kids);
        case 3: return child_maps_fx<3>(P, pm, lv, kids);
        case 4: return child_maps_fx<4>(P, pm, lv, kids);
        case 5: return child_maps_fx<5>(P, pm, lv, kids);
        case 6: return child_maps_fx<6>(P, pm, lv, kids);
        case 7: return child_maps_fx<7>(P, pm, lv, kids);
        case 8: return child_maps_fx<8>(P, pm, lv, kids);
        default: return child_maps_z(pm, lv, kids);
    }
}

// the units u < n whose states a[u] and b[u] (a byte per unit) differ, in increasing order,
// appended to out: eight units at a time
inline void units_differing(const int8_t* a, const int8_t* b, int n, std::vector<int>& out) {
    int u = 0;
    for (; u + 8 <= n; u += 8) {
        uint64_t x, y;
        std::memcpy(&x, a + u, 8);
        std::memcpy(&y, b + u, 8);
        for (uint64_t z = x ^ y; z;) {
            const int bit = __builtin_ctzll(z);
            out.push_back(u + bit / 8);
            z &= ~((uint64_t)0xFF << (bit & ~7));
        }
    }
    for (; u < n; ++u)
        if (a[u] != b[u]) out.push_back(u);
}

// how many of the units u < n have states a[u] != b[u] (a byte per unit): eight at a time, bit
// 8 k of t the OR of byte k of a ^ b
inline int count_differing(const int8_t* a, const int8_t* b, int n) {
    int u = 0, count = 0;
    for (; u + 8 <= n; u += 8) {
        uint64_t x, y;
        std::memcpy(&x, a + u, 8);
        std::memcpy(&y, b + u, 8);
        uint64_t t = x ^ y;
        t |= t >> 4;
        t |= t >> 2;
        t |= t >> 1;
        count += __builtin_popcountll(t & 0x0101010101010101ULL);
    }
    for (; u < n; ++u) count += a[u] != b[u];
    return count;
}

// the child among the last eight made that differs from child k in the fewest units (the
// children differ in `units` only)
size_t nearest_child(const std::vector<std::shared_ptr<Cell>>& kids, size_t k, const std::vector<int>& units) {
    const std::vector<int8_t>& st = kids[k]->states->st;
    size_t best = k - 1;
    int best_d = INT_MAX;
    for (size_t b = (k > 8 ? k - 8 : 0); b < k; ++b) {
        const std::vector<int8_t>& o = kids[b]->states->st;
        int dist = 0;
        for (int u : units) dist += st[(size_t)u] != o[(size_t)u];
        if (dist < best_d) {
            best_d = dist;
            best = b;
        }
    }
    return best;
}

// row u of the map `pm` (M entries) modulo 2^(64 K); a map of K limbs, whole or in delta form,
// without a division or a dispatch on K per entry (the same sums as Map::load)
template <int K>
void map_row_fx(const Map& pm, int u, int M, uint64_t* out) {
    const size_t K_ = (size_t)K, M_ = (size_t)M, e = (size_t)u * M_;
    if (pm.K != K) {
        for (int c = 0; c < M; ++c) pm.load(e + (size_t)c, out + c * K_, K);
        return;
    }
    const std::vector<uint64_t>& w = pm.base ? pm.base->w : pm.w;
    std::memcpy(out, &w[e * K_], sizeof(uint64_t) * M_ * K_);
    for (size_t j = 0; j < pm.du.size(); ++j) {  // none unless in delta form
        const int64_t a = pm.az[(size_t)u * (size_t)pm.an + (size_t)pm.du[j]];
        if (!a) continue;
        const uint64_t* dj = &pm.dd[j * M_ * K_];
        for (int c = 0; c < M; ++c) fx_addmul_s<K>(out + c * K_, (uint64_t)a, dj + c * K_);
    }
}

// R_u(st) = slope[st] row_u + cst[st] den e_last of op `lv` for unit u of the map `pm` entering
// it, modulo 2^(64 K)
template <int K>
void unit_row_fx(const Level& lv, const Map& pm, int u, int st, int M, uint64_t* out) {
    const size_t K_ = (size_t)K, M_ = (size_t)M;
    int kd = lv.kind[(size_t)st];
    if (kd == 0) {
        std::memset(out, 0, sizeof(uint64_t) * M_ * K_);
        return;
    }
    if (kd == 1) {
        map_row_fx<K>(pm, u, M, out);
        return;
    }
    const uint64_t sl = (uint64_t)lv.slope64[(size_t)st];
    uint64_t x[(DMAX + 1) * K];
    map_row_fx<K>(pm, u, M, x);
    for (int c = 0; c < M; ++c) {
        std::memset(out + c * K_, 0, sizeof(uint64_t) * K_);
        fx_addmul_s<K>(out + c * K_, sl, x + c * K_);
    }
    fx_resize(&lv.cstden[(size_t)st * (size_t)lv.K_out], lv.K_out, x, K);
    fx_add<K>(out + (size_t)(M - 1) * K_, x);
}

// acc (n_out x M) += Az[:, u] (x) v modulo 2^(64 K), v a row of M entries
template <int K>
void rank_one_fx(const Level& lv, uint64_t* acc, int u, const uint64_t* v, int M) {
    const size_t K_ = (size_t)K, M_ = (size_t)M;
    const int no = lv.n_out;
    const int64_t* col = &lv.AzT64[(size_t)u * (size_t)no];
    if (K <= 2) {  // in one machine word or two: products modulo 2^64 or 2^128 directly
        using W = std::conditional_t<K == 1, uint64_t, unsigned __int128>;
        W vw[DMAX + 1];
        for (int c = 0; c < M; ++c) std::memcpy(&vw[c], v + c * K_, sizeof(W));
        for (int r = 0; r < no; ++r) {
            int64_t a = col[r];
            if (a == 0) continue;
            const W aw = (W)(std::conditional_t<K == 1, int64_t, __int128>)a;
            uint64_t* o = acc + (size_t)r * M_ * K_;
            for (int c = 0; c < M; ++c) {
                W x;
                std::memcpy(&x, o + c * K_, sizeof(W));
                x += aw * vw[c];
                std::memcpy(o + c * K_, &x, sizeof(W));
            }
        }
        return;
    }
    for (int r = 0; r < no; ++r) {
        const int64_t a = col[r];
        if (a == 0) continue;
        uint64_t* o = acc + (size_t)r * M_ * K_;
        for (int c = 0; c < M; ++c) fx_addmul_s<K>(o + c * K_, (uint64_t)a, v + c * K_);
    }
}

// w, the map after op `lv` in the states `from` (a byte per unit) on the map `pm` entering it,
// brought to the states `to`: a rank-one update R_u(to_u) - R_u(from_u) for each unit u whose
// state differs, modulo 2^(64 K)
template <int K>
void restate_fx(const Level& lv, const Map& pm, const int8_t* from, const int8_t* to, int n,
                int M, uint64_t* w) {
    const size_t K_ = (size_t)K;
    uint64_t a[(DMAX + 1) * K], b[(DMAX + 1) * K];
    thread_local std::vector<int> diff;
    diff.clear();
    units_differing(to, from, n, diff);
    for (int u : diff) {
        const int x = to[u], y = from[u];
        unit_row_fx<K>(lv, pm, u, x, M, a);
        unit_row_fx<K>(lv, pm, u, y, M, b);
        for (int c = 0; c < M; ++c) fx_sub<K>(a + c * K_, b + c * K_);
        rank_one_fx<K>(lv, w, u, a, M);
    }
}

// The first child's map of P (op l = P.level >= 1) from the reference this certifier kept at
// op l (a child of an earlier sibling P' of P, see keep_ref), when that is cheaper than the
// product; false (m0 untouched) otherwise. P and P' are cells of one parent G, so their maps
// differ by sum_v Az'[:, v] (x) d_v over the units v of op l - 1 whose states differ between
// them (Az' the affine layer after op l - 1, d_v the difference of v's output rows on G's map),
// and the maps after op l in the reference's states s by sum_v g_v(s) (x) d_v, with the columns
// g_v(s) = Az diag(slope(s)) Az'[:, v]. Columns are kept per certifier with the states they are
// for and brought to s by one update per unit whose state differs. The child's own states then
// differ from s in a few units: one rank-one update each. Everything is modulo 2^(64 K), so
// exact: every map entry fits K limbs (Level::K_out). With `keep` the child is made in the
// reference's place and is the reference from then on (as keep_ref would make it), m0 a copy.
template <int K>
bool Certifier::first_map_from_ref(const Cell& P, const Map& pm, const Level& lv,
                                   const std::vector<int8_t>& s0, Map& m0, bool keep) {
    const int l = P.level;
    if (l < 1 || !P.up || !P.states || (size_t)l >= refs_.size()) return false;
    MapRef& R = refs_[(size_t)l];
    const Level& lp = spec_.levels[(size_t)l - 1];
    if (!R.gp || R.gp != P.up || R.K != K || !lv.cols) return false;
    const int n = lv.n, np = lp.n, no = lv.n_out, M = spec_.d + 1;
    const size_t K_ = (size_t)K, M_ = (size_t)M, no_ = (size_t)no, n_ = (size_t)n;
    const StateNode& sp = *P.states;
    thread_local std::vector<int> F, dist, du;
    F.clear();
    dist.clear();
    if (sp.bits == 8) {
        units_differing(sp.st.data(), R.sp.data(), np, F);
    } else {
        for (int v = 0; v < np; ++v)
            if (sp.at((size_t)v) != R.sp[(size_t)v]) F.push_back(v);
    }
    if (R.col.empty()) {
        R.col.assign((size_t)np * no_, 0);
        R.stamp.assign((size_t)np * n_, 0);
        R.made.assign((size_t)np, 0);
    }
    // cost in limb products: the product's, against the columns' updates, outer products and
    // flips; a column made anew counts half (later cells use it again)
    double cost = 0, dense = (double)n * no * M * K;
    for (int v : F) {
        int dv = n;
        double fresh = 0.5;
        if (R.made[(size_t)v]) {
            fresh = 1;
            dv = count_differing(&R.stamp[(size_t)v * n_], R.s.data(), n);
        }
        dist.push_back(dv);
        cost += fresh * dv * no + (double)no * M * K * K + n / 8.0;
        if (cost >= dense) return false;
    }
    const int flips = count_differing(s0.data(), R.s.data(), n);
    cost += (double)flips * no * M * K;
    if (cost >= dense) return false;

    // with `keep`, the child's map is made in the reference's place, which becomes it
    if (!keep) m0.w = R.w;
    std::vector<uint64_t>& w = keep ? R.w : m0.w;
    uint64_t a[(DMAX + 1) * K], b[(DMAX + 1) * K];
    for (size_t i = 0; i < F.size(); ++i) {
        const int v = F[i];
        __int128* g = &R.col[(size_t)v * no_];
        int8_t* st = &R.stamp[(size_t)v * n_];
        if (!R.made[(size_t)v]) {
            std::fill(g, g + no_, 0);
            for (int u = 0; u < n; ++u) st[u] = -1;
            R.made[(size_t)v] = 1;
        }
        // g_v += Az[:, u] (slope(s_u) - slope(st_u)) Az'[u, v] for each u that differs, modulo
        // 2^128: exact, since every column entry is below 2^126 in magnitude (Level::cols)
        if (dist[i]) {
            du.clear();
            units_differing(R.s.data(), st, n, du);
            for (int u : du) {
                const int8_t want = R.s[(size_t)u], had = st[u];
                st[u] = want;
                const int64_t av = lp.Az64[(size_t)u * (size_t)np + (size_t)v];
                const __int128 ds = (__int128)lv.slope64[(size_t)want] - (had < 0 ? 0 : lv.slope64[(size_t)had]);
                if (av == 0 || ds == 0) continue;
                const unsigned __int128 c = (unsigned __int128)ds * (unsigned __int128)(__int128)av;
                const int64_t* col = &lv.AzT64[(size_t)u * no_];
                unsigned __int128* gu = reinterpret_cast<unsigned __int128*>(g);
                const int64_t c64 = (int64_t)(uint64_t)c;
                if ((__int128)c == (__int128)c64) {  // one 64 x 64 -> 128-bit product per entry
                    for (int r = 0; r < no; ++r) gu[r] += (unsigned __int128)((__int128)col[r] * c64);
                } else {
                    for (int r = 0; r < no; ++r) gu[r] += (unsigned __int128)(__int128)col[r] * c;
                }
            }
        }
        // d_v: v's output row in P's state minus in P''s, on G's map
        unit_row_fx<K>(lp, P.up->map, v, sp.at((size_t)v), M, a);
        unit_row_fx<K>(lp, P.up->map, v, R.sp[(size_t)v], M, b);
        for (int c = 0; c < M; ++c) fx_sub<K>(a + c * K_, b + c * K_);
        for (int r = 0; r < no; ++r) {
            if (g[r] == 0) continue;
            uint64_t* o = &w[(size_t)r * M_ * K_];
            for (int c = 0; c < M; ++c) fx_muladd128<K>(o + c * K_, g[r], a + c * K_);
        }
    }
    // now the map in states s on P's map: to the child's states
    restate_fx<K>(lv, pm, R.s.data(), s0.data(), n, M, w.data());
    m0.K = K;
    if (keep) {  // the reference is now the child (see keep_ref)
        m0.w = R.w;
        for (int v : F) R.sp[(size_t)v] = (int8_t)sp.at((size_t)v);
        R.s.assign(s0.begin(), s0.begin() + n);
    }
    return true;
}

// Keep a child of P (its states s and its map w) as the reference of op P.level for P's later
// siblings.
template <int K>
void Certifier::keep_ref(const Cell& P, const Level& lv, const std::vector<int8_t>& s, const std::vector<uint64_t>& w) {
    const int l = P.level;
    if (l < 1 || !P.up || !P.states || !lv.cols) return;
    if (refs_.size() <= (size_t)l) refs_.resize((size_t)l + 1);
    MapRef& R = refs_[(size_t)l];
    const StateNode& sp = *P.states;
    R.gp = P.up;
    R.K = K;
    R.sp.resize((size_t)sp.n);
    if (sp.bits == 8) {
        std::memcpy(R.sp.data(), sp.st.data(), (size_t)sp.n);
    } else {
        for (size_t v = 0; v < (size_t)sp.n; ++v) R.sp[v] = (int8_t)sp.at(v);
    }
    R.s.assign(s.begin(), s.begin() + lv.n);
    R.w = w;
}

// The map after the affine layer of op `lv` in states s0 (a byte per unit) on the map `pm`
// entering it, as one product: N = Az R(s0) + az (den sa) e_last
template <int K>
void Certifier::product_map(const Map& pm, const Level& lv, const std::vector<int8_t>& s0, Map& m0) {
    const int n = lv.n, no = lv.n_out, M = spec_.d + 1, E = M - 1;
    const size_t K_ = (size_t)K, M_ = (size_t)M;
    uint64_t v[(DMAX + 1) * K];
    if (!lv.dense) {
        m0.K = K;
        m0.w.assign((size_t)no * M_ * K_, 0);
        for (int u = 0; u < n; ++u) {
            if (lv.kind[(size_t)s0[(size_t)u]] == 0) continue;
            unit_row_fx<K>(lv, pm, u, s0[(size_t)u], M, v);
            if (fx_zero(v, M * K)) continue;
            rank_one_fx<K>(lv, m0.w.data(), u, v, M);
        }
        if (lv.has_az)
            for (int r = 0; r < no; ++r) fx_add<K>(&m0.w[((size_t)r * M_ + (size_t)E) * K_], &lv.azden[(size_t)r * K_]);
    } else {
        // the units' rows R0 (two's complement); each output entry sum_u Az_ru R0_u as K sums
        // of limb products in 128 bits (signed: the top limb is signed), added up once
        m0.K = K;
        m0.w.assign((size_t)no * M_ * K_, 0);
        thread_local std::vector<int> act;
        thread_local std::vector<uint64_t> R0;
        act.clear();
        R0.resize((size_t)n * M_ * K_);
        for (int u = 0; u < n; ++u) {
            if (lv.kind[(size_t)s0[(size_t)u]] == 0) continue;
            uint64_t* x = &R0[act.size() * M_ * K_];
            unit_row_fx<K>(lv, pm, u, s0[(size_t)u], M, x);
            if (fx_zero(x, M * K)) continue;
            act.push_back(u);
        }
        const size_t na = act.size();
        for (int r = 0; r < no; ++r) {
            const int64_t* arow = &lv.Az64[(size_t)r * (size_t)n];
            for (int c = 0; c < M; ++c) {
                __int128 acc[K] = {};
                for (size_t k = 0; k < na; ++k) {
                    __int128 a = arow[act[k]];
                    const uint64_t* x = &R0[(k * M_ + (size_t)c) * K_];
                    for (int i = 0; i < K - 1; ++i) acc[i] += a * (__int128)x[i];
                    acc[K - 1] += a * (__int128)(int64_t)x[K - 1];
                }
                uint64_t* o = &m0.w[((size_t)r * M_ + (size_t)c) * K_];
                for (int i = 0; i < K; ++i) {  // o += acc[i] 2^(64 i), modulo 2^(64 K)
                    uint64_t part[K];
                    uint64_t ext = acc[i] < 0 ? ~(uint64_t)0 : 0;
                    for (int l = 0; l < K; ++l)
                        part[l] = l < i ? 0 : l == i ? (uint64_t)acc[i] : l == i + 1 ? (uint64_t)(acc[i] >> 64) : ext;
                    fx_add<K>(o, part);
                }
            }
        }
        if (lv.has_az)
            for (int r = 0; r < no; ++r) fx_add<K>(&m0.w[((size_t)r * M_ + (size_t)E) * K_], &lv.azden[(size_t)r * K_]);
    }
}

// The map of a lazy cell (Cell::lazy: the children of a cell of op 0, which can be many, are
// given theirs one at a time, as they are cut, emitted or handed to a worker, not all at once):
// from the last map this certifier made for a child of the same parent, by a rank-one update
// per unit whose state differs, else as one product. The cell's states are still a byte per unit
// (they are packed once it is cut).
void Certifier::materialize(Cell& c) {
    if (!c.lazy) return;
    switch (c.live.K) {
        case 1: return materialize_fx<1>(c);
        case 2: return materialize_fx<2>(c);
        case 3: return materialize_fx<3>(c);
        case 4: return materialize_fx<4>(c);
        case 5: return materialize_fx<5>(c);
        case 6: return materialize_fx<6>(c);
        case 7: return materialize_fx<7>(c);
        case 8: return materialize_fx<8>(c);
        default: throw CertError("a lazy map without fixed-width limbs");
    }
}

template <int K>
void Certifier::materialize_fx(Cell& c) {
    const Level& lv = spec_.levels[(size_t)c.level - 1];
    const Map& pm = c.up->map;
    const StateNode& sn = *c.states;
    if (sn.bits != 8) throw CertError("a lazy map of a cell whose states are packed");
    const std::vector<int8_t>& st = sn.st;
    const int n = lv.n, M = spec_.d + 1;
    const size_t K_ = (size_t)K;
    Map m;
    m.K = K;
    if (lazy_.blk == c.up && lazy_.w.size() == (size_t)lv.n_out * (size_t)M * K_) {
        restate_fx<K>(lv, pm, lazy_.s.data(), st.data(), n, M, lazy_.w.data());  // in its place
        m.w = lazy_.w;
    } else {
        product_map<K>(pm, lv, st, m);
        lazy_.w = m.w;
    }
    lazy_.blk = c.up;
    lazy_.s.assign(st.begin(), st.begin() + n);
    c.live = std::move(m);
    c.lazy = false;
}

template <int K>
void Certifier::child_maps_fx(const Cell& P, const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids) {
    const int M = spec_.d + 1;
    const size_t K_ = (size_t)K;
    const std::vector<int8_t>& s0 = kids[0]->states->st;
    Map m0;
    uint64_t v[(DMAX + 1) * K];
    // the children are cut in turn by an op whose rows are the maps' own (every threshold 0 with
    // scale 1: ReLU, LeakyReLU), read off their doubles: their maps in delta form, and the first
    // child is the reference for P's later siblings (made in its place when made from it)
    auto own_rows = [](const Level& x) {
        for (size_t t = 0; t < x.thr_s.size(); ++t)
            if (mpz_cmp_ui(x.thr_s[t].v, 1) != 0 || x.thr_shift[t].sgn() != 0) return false;
        return true;
    };
    const bool delta = P.level + 1 < spec_.L && lv.deltas && own_rows(spec_.levels[(size_t)P.level + 1]);
    const bool kept = first_map_from_ref<K>(P, pm, lv, s0, m0, delta);
    if (!kept) product_map<K>(pm, lv, s0, m0);
    if (delta) {
        if (!kept) keep_ref<K>(P, lv, s0, m0.w);
        return delta_maps<K>(pm, lv, kids, m0);
    }
    kids[0]->live = std::move(m0);
    uint64_t d1[(DMAX + 1) * K];
    for (size_t k = 1; k < kids.size(); ++k) {
        const std::vector<int8_t>& st = kids[k]->states->st;
        size_t best = nearest_child(kids, k, near_units_);
        const std::vector<int8_t>& ref = kids[best]->states->st;
        Map m;
        m.K = K;
        m.w = kids[best]->live.w;
        for (int u : near_units_) {
            int x = st[(size_t)u], y = ref[(size_t)u];
            if (x == y) continue;
            unit_row_fx<K>(lv, pm, u, x, M, v);
            unit_row_fx<K>(lv, pm, u, y, M, d1);
            for (int c = 0; c < M; ++c) fx_sub<K>(v + c * K_, d1 + c * K_);
            rank_one_fx<K>(lv, m.w.data(), u, v, M);
        }
        kids[k]->live = std::move(m);
    }
    keep_ref<K>(P, lv, kids.back()->states->st, kids.back()->live.w);
}

// The maps of P's children when they are cut in turn (not leaves) in delta form (see Map): the
// first child's map m0 (made whole) is the base, with its entries as doubles; child k's is m0 +
// sum_j Az[:, u_j] (x) d_j over the units u_j whose states differ from the first child's (d_j =
// R_u(s_k) - R_u(s_0) on P's map, exact in K limbs). Its doubles are those of the nearest child
// b made before (nearest_child), F, brought to k's states: f = fl(F + sum_j a_j f_j) over the
// units whose states differ between b and k (f_j the double of R_u(s_k) - R_u(s_b) = D_j,
// truncated to 53 bits; a_j = Az[r, u_j] rounded to the nearest double). Their error, with F
// within e_b of b's exact entry X_b (e_b = 0 for the first child, whose F is X_b truncated to 53
// bits, |F - X_b| < 2^-52 |X_b|), |f_j - D_j| < 2^-52 |D_j|, |a_j - A_j| <= 2^-53 |A_j| and each
// product rounded (2^-53): each term is within 2^-51 (1 + 2^-49) of its magnitude as computed
// (|F| beyond e_b, |a_j f_j|), and the k additions add gamma_k times their sum S (Higham's bound
// for recursive summation, gamma_k = k 2^-53 / (1 - k 2^-53)); the computed sum of magnitudes m
// is at least S (1 - gamma_k), so the error is below e_b + (gamma_k + 2^-51 (1 + 2^-49)) m / (1 -
// gamma_k) < e_b + (k / 2 + 2.1) 2^-52 m. The bound kept per row, (e_b + (k + 6) 2^-52 max_c
// m_c) (1 + 2^-50) (which covers the two roundings of its sum and product), is above that.
// Entries of the map are below 2^512 (K <= 8 limbs): nothing overflows. A row of a child is made
// exact only when it is read (Row::need, unit_row_fx through Map::load).
template <int K>
void Certifier::delta_maps(const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids, Map& m0) {
    const int M = spec_.d + 1, no = lv.n_out;
    const size_t K_ = (size_t)K, M_ = (size_t)M, E = (size_t)no * M_;
    m0.f.resize(E);
    for (size_t e = 0; e < E; ++e) m0.f[e] = fx_to_double(&m0.w[e * K_], K);
    auto base = std::make_shared<const Map>(std::move(m0));
    const std::vector<int8_t>& s0 = kids[0]->states->st;
    uint64_t v[(DMAX + 1) * K], d1[(DMAX + 1) * K];
    thread_local std::vector<double> fd, a;
    thread_local std::vector<int> bu;
    for (size_t k = 0; k < kids.size(); ++k) {
        Map& m = kids[k]->live;
        m = Map();
        m.K = K;
        m.base = base;
        m.az = lv.Az64.data();
        m.an = lv.n;
        m.M = M;
        const std::vector<int8_t>& st = kids[k]->states->st;
        for (int u : near_units_) {
            const int x = st[(size_t)u], y = s0[(size_t)u];
            if (x == y) continue;
            unit_row_fx<K>(lv, pm, u, x, M, v);
            unit_row_fx<K>(lv, pm, u, y, M, d1);
            for (int c = 0; c < M; ++c) fx_sub<K>(v + c * K_, d1 + c * K_);
            m.du.push_back(u);
            m.dd.insert(m.dd.end(), v, v + M_ * K_);
        }
        if (m.du.empty()) continue;  // the base's doubles, truncated
        // the doubles from the nearest child made before
        const size_t b = nearest_child(kids, k, near_units_);
        const Map& mb = kids[b]->live;
        const std::vector<int8_t>& sb = kids[b]->states->st;
        bu.clear();
        fd.clear();
        for (int u : near_units_) {
            const int x = st[(size_t)u], y = sb[(size_t)u];
            if (x == y) continue;
            unit_row_fx<K>(lv, pm, u, x, M, v);
            unit_row_fx<K>(lv, pm, u, y, M, d1);
            for (int c = 0; c < M; ++c) {
                fx_sub<K>(v + c * K_, d1 + c * K_);
                fd.push_back(fx_to_double(v + c * K_, K));
            }
            bu.push_back(u);
        }
        const size_t nd = bu.size();
        const double grow = (double)(nd + 6) * 0x1p-52;
        const double* F = mb.floats();
        const double* Fe = mb.float_errors();
        // every entry: s = F, then s += a_j f_j for j = 1 .. nd in turn (a unit at a time over
        // all rows: the columns of Az are contiguous in AzT64)
        m.f.assign(F, F + E);
        a.resize(E);  // the sums of magnitudes
        for (size_t e = 0; e < E; ++e) a[e] = std::fabs(F[e]);
        for (size_t j = 0; j < nd; ++j) {
            const int64_t* col = &lv.AzT64[(size_t)bu[j] * (size_t)no];
            const double* fj = &fd[j * M_];
            for (int r = 0; r < no; ++r) {
                if (!col[r]) continue;  // a product 0, exactly
                const double aj = (double)col[r];
                double* fr = &m.f[(size_t)r * M_];
                double* mr = &a[(size_t)r * M_];
                for (int c = 0; c < M; ++c) {
                    const double p = aj * fj[c];
                    fr[c] += p;
                    mr[c] += std::fabs(p);
                }
            }
        }
        m.fe.resize((size_t)no);
        for (int r = 0; r < no; ++r) {
            double worst = 0;
            for (int c = 0; c < M; ++c) worst = std::max(worst, a[(size_t)r * M_ + (size_t)c]);
            m.fe[(size_t)r] = ((Fe ? Fe[r] : 0.0) + worst * grow) * (1 + 0x1p-50);
        }
    }
}

void Certifier::child_maps_z(const Map& pm, const Level& lv, std::vector<std::shared_ptr<Cell>>& kids) {
    const int n = lv.n, no = lv.n_out, M = spec_.d + 1, E = M - 1;
    const size_t K = kids.size(), M_ = (size_t)M;
    // R_u(st) = slope[st] * row_u + cst[st] * den e_last
    auto unit_row = [&](int u, int st, Z* out) {
        int kd = lv.kind[(size_t)st];
        if (kd == 0) {
            for (int c = 0; c < M; ++c) mpz_set_ui(out[c].v, 0);
            return;
        }
        for (int c = 0; c < M; ++c) pm.get((size_t)u * M_ + (size_t)c, out[c].v);
        if (kd == 1) return;
        for (int c = 0; c < M; ++c) mpz_mul(out[c].v, out[c].v, lv.slope[(size_t)st].v);
        mpz_addmul(out[E].v, lv.cst[(size_t)st].v, lv.den.v);
    };
    const std::vector<int8_t>& s0 = kids[0]->states->st;
    Map m0;
    m0.z.resize((size_t)no * M_);
    std::vector<Z>& acc0 = m0.z;
    Z ur[DMAX + 1];
    for (int u = 0; u < n; ++u) {
        int kd = lv.kind[(size_t)s0[(size_t)u]];
        if (kd == 0) continue;
        unit_row(u, s0[(size_t)u], ur);
        bool zero = true;
        for (int c = 0; c < M; ++c) zero = zero && ur[c].sgn() == 0;
        if (zero) continue;
        for (int r = 0; r < no; ++r) {
            const Z& a = lv.Az[(size_t)r * n + u];
            if (a.sgn() == 0) continue;
            Z* o = &acc0[(size_t)r * M_];
            for (int c = 0; c < M; ++c) mpz_addmul(o[c].v, a.v, ur[c].v);
        }
    }
    if (lv.has_az) {
        Z ds;
        mpz_mul(ds.v, lv.den.v, lv.sa.v);
        for (int r = 0; r < no; ++r) mpz_addmul(acc0[(size_t)r * M_ + (size_t)E].v, lv.az[(size_t)r].v, ds.v);
    }
    kids[0]->live = std::move(m0);
    Z d0[DMAX + 1], d1[DMAX + 1];
    for (size_t k = 1; k < K; ++k) {
        const std::vector<int8_t>& st = kids[k]->states->st;
        size_t best = nearest_child(kids, k, near_units_);
        const std::vector<int8_t>& ref = kids[best]->states->st;
        Map m;
        m.z = kids[best]->live.z;
        std::vector<Z>& acc = m.z;
        for (int u : near_units_) {
            int x = st[(size_t)u], y = ref[(size_t)u];
            if (x == y) continue;
            unit_row(u, x, d0);
            unit_row(u, y, d1);
            for (int c = 0; c < M; ++c) mpz_sub(d0[c].v, d0[c].v, d1[c].v);
            for (int r = 0; r < no; ++r) {
                const Z& a = lv.Az[(size_t)r * n + u];
                if (a.sgn() == 0) continue;
                Z* o = &acc[(size_t)r * M_];
                for (int c = 0; c < M; ++c) mpz_addmul(o[c].v, a.v, d0[c].v);
            }
        }
        kids[k]->live = std::move(m);
    }
}

// A short dyadic point near the float centroid of the ring, checked strictly inside every facet
// exactly; else the exact centroid of three ring vertices in 2-D (never collinear: strictly
// inside), of all the cell's vertices above.
void Certifier::witness(Cell& c) {
    const int d = spec_.d;
    const size_t m = c.ring.size();
    c.w.resize((size_t)d);
    double sum[DMAX] = {};
    for (int id : c.ring) {
        Vertex& v = verts[(size_t)id];
        v.nearest();
        for (int i = 0; i < d; ++i) sum[i] += v.f[i];
    }
    bool finite = true;
    for (int i = 0; i < d; ++i) {
        sum[i] /= (double)m;
        finite = finite && std::isfinite(sum[i]);
    }
    if (finite) {
        // each coordinate as n_i / 2^k_i in lowest terms; D = 2^K, K = max k_i
        thread_local Z num[DMAX], t, u;
        long k[DMAX] = {};
        auto dyadic = [](double x, Z& nm, long& kk) {
            int e;
            double mant = std::frexp(x, &e);  // x = mant 2^e, 0.5 <= |mant| < 1
            long long im = (long long)std::ldexp(mant, 53);
            long ex = (long)e - 53;
            if (im == 0) {
                mpz_set_ui(nm.v, 0);
                kk = 0;
                return;
            }
            while ((im & 1) == 0 && ex < 0) {
                im /= 2;
                ++ex;
            }
            mpz_set_si(nm.v, (long)im);
            if (ex >= 0) {
                mpz_mul_2exp(nm.v, nm.v, (mp_bitcnt_t)ex);
                kk = 0;
            } else {
                kk = -ex;
            }
        };
        long K = 0;
        for (int i = 0; i < d; ++i) {
            dyadic(sum[i], num[i], k[i]);
            K = std::max(K, k[i]);
        }
        bool inside = true;
        for (const Facet& f : c.facets) {
            const Row& r = f.row.row().need();
            mpz_mul_2exp(t.v, r.e[d].v, (mp_bitcnt_t)K);
            for (int i = 0; i < d; ++i) {
                mpz_mul(u.v, r.e[i].v, num[i].v);
                mpz_mul_2exp(u.v, u.v, (mp_bitcnt_t)(K - k[i]));
                mpz_add(t.v, t.v, u.v);
            }
            if (f.row.sg * mpz_sgn(t.v) <= 0) {
                inside = false;
                break;
            }
        }
        if (inside) {
            for (int i = 0; i < d; ++i) {
                mpq_set_z(c.w[i].v, num[i].v);
                mpq_div_2exp(c.w[i].v, c.w[i].v, (mp_bitcnt_t)k[i]);
            }
            return;
        }
    }
    // the exact centroid: of three ring vertices in 2-D (never collinear), else of all vertices
    size_t use = d == 2 ? 3 : m;
    Q a, cnt;
    for (int i = 0; i < d; ++i) mpq_set_ui(c.w[i].v, 0, 1);
    for (size_t k = 0; k < use; ++k) {
        const Vertex& v = verts[(size_t)c.ring[k]];
        for (int i = 0; i < d; ++i) {
            mpq_set_num(a.v, v.x[i].v);
            mpq_set_den(a.v, v.W().v);
            mpq_canonicalize(a.v);
            mpq_add(c.w[i].v, c.w[i].v, a.v);
        }
    }
    mpq_set_ui(cnt.v, (unsigned long)use, 1);
    for (int i = 0; i < d; ++i) mpq_div(c.w[i].v, c.w[i].v, cnt.v);
}

// Shoelace over one denominator: with D the product of the ring's W_k, twice the area is
// sum_k (X_k Y_k+1 - X_k+1 Y_k) (D / (W_k W_k+1)) / D, exact and without a gcd (the area is put
// in lowest terms only where it is output: a leaf's volume).
void Certifier::volume2(Cell& c) {
    const size_t m = c.ring.size();
    thread_local Z D, N, T, q;
    mpz_set_ui(D.v, 1);
    for (int id : c.ring) mpz_mul(D.v, D.v, verts[(size_t)id].x[2].v);
    mpz_set_ui(N.v, 0);
    for (size_t k = 0; k < m; ++k) {
        const Vertex& p = verts[(size_t)c.ring[k]];
        const Vertex& r = verts[(size_t)c.ring[(k + 1) % m]];
        mpz_mul(T.v, p.x[0].v, r.x[1].v);
        mpz_submul(T.v, r.x[0].v, p.x[1].v);
        mpz_divexact(q.v, D.v, p.x[2].v);
        mpz_divexact(q.v, q.v, r.x[2].v);
        mpz_addmul(N.v, T.v, q.v);
    }
    if (N.sgn() <= 0) throw CertError("a 2-D cell whose vertices are not in counter-clockwise order");
    c.vn = N;
    mpz_mul_2exp(c.vd.v, D.v, 1);
}

// 3-D: a pulling triangulation (certify._volume3): cones from vertex 0 over the facets missing it,
// each facet fanned from its first vertex over its edges (two facets meet in an edge, a vertex
// or nothing). With r_k = W_0 x_k - W_k x_0 a tetrahedron (v_0, v_a, v_b, v_c) has
// 6 V = |det(r_a, r_b, r_c)| / (W_0^3 W_a W_b W_c), whatever positive W each vertex comes with.
void Certifier::volume3(Cell& c) {
    const size_t m = c.ring.size(), nf = c.facets.size();
    const Vertex& v0 = verts[(size_t)c.ring[0]];
    std::vector<Z> R(m * 3);
    for (size_t k = 0; k < m; ++k) {
        const Vertex& v = verts[(size_t)c.ring[k]];
        for (int i = 0; i < 3; ++i) {
            mpz_mul(R[k * 3 + (size_t)i].v, v0.x[3].v, v.x[i].v);
            mpz_submul(R[k * 3 + (size_t)i].v, v.x[3].v, v0.x[i].v);
        }
    }
    std::vector<std::vector<std::pair<int, int>>> edges(nf);
    std::vector<int> common;
    for (size_t a = 0; a < nf; ++a)
        for (size_t b = a + 1; b < nf; ++b) {
            common.clear();
            std::set_intersection(c.facets[a].fv.begin(), c.facets[a].fv.end(), c.facets[b].fv.begin(),
                                  c.facets[b].fv.end(), std::back_inserter(common));
            if (common.size() == 2) {
                edges[a].emplace_back(common[0], common[1]);
                edges[b].emplace_back(common[0], common[1]);
            }
        }
    thread_local Z det, t;
    Q total, part, term;
    for (size_t a = 0; a < nf; ++a) {
        const std::vector<int>& fv = c.facets[a].fv;
        if (fv.empty() || fv[0] == 0) continue;  // sorted: vertex 0 is on it iff it comes first
        int p0 = fv[0];
        const Z* A = &R[(size_t)p0 * 3];
        mpq_set_ui(part.v, 0, 1);
        for (auto& e : edges[a]) {
            if (e.first == p0 || e.second == p0) continue;
            const Z* Bv = &R[(size_t)e.first * 3];
            const Z* Cv = &R[(size_t)e.second * 3];
            mpz_mul(t.v, Bv[1].v, Cv[2].v);
            mpz_submul(t.v, Bv[2].v, Cv[1].v);
            mpz_mul(det.v, A[0].v, t.v);
            mpz_mul(t.v, Bv[0].v, Cv[2].v);
            mpz_submul(t.v, Bv[2].v, Cv[0].v);
            mpz_submul(det.v, A[1].v, t.v);
            mpz_mul(t.v, Bv[0].v, Cv[1].v);
            mpz_submul(t.v, Bv[1].v, Cv[0].v);
            mpz_addmul(det.v, A[2].v, t.v);
            mpz_abs(mpq_numref(term.v), det.v);
            mpz_mul(mpq_denref(term.v), verts[(size_t)c.ring[(size_t)e.first]].x[3].v,
                    verts[(size_t)c.ring[(size_t)e.second]].x[3].v);
            mpq_canonicalize(term.v);
            mpq_add(part.v, part.v, term.v);
        }
        mpz_mul(mpq_denref(term.v), mpq_denref(part.v), verts[(size_t)c.ring[(size_t)p0]].x[3].v);
        mpz_set(mpq_numref(term.v), mpq_numref(part.v));
        mpq_canonicalize(term.v);
        mpq_add(total.v, total.v, term.v);
    }
    mpz_pow_ui(t.v, v0.x[3].v, 3);
    mpz_mul_ui(t.v, t.v, 6);
    mpz_mul(mpq_denref(total.v), mpq_denref(total.v), t.v);
    mpq_canonicalize(total.v);
    if (mpq_sgn(total.v) <= 0) throw CertError("a 3-D cell of zero volume");
    mpz_set(c.vn.v, mpq_numref(total.v));
    mpz_set(c.vd.v, mpq_denref(total.v));
}

// Do the children's areas sum to the parent's? Exact: by cross-multiplication for a few
// children, in lowest terms for many (whose product of denominators would grow large).
bool sums_to(const std::vector<std::shared_ptr<Cell>>& kids, const Cell& P) {
    if (kids.size() <= 4) {
        Z S, T, t;
        mpz_set_ui(T.v, 1);
        for (const auto& c : kids) {  // S / T += vn / vd
            mpz_mul(S.v, S.v, c->vd.v);
            mpz_addmul(S.v, c->vn.v, T.v);
            mpz_mul(T.v, T.v, c->vd.v);
        }
        mpz_mul(S.v, S.v, P.vd.v);
        mpz_mul(t.v, P.vn.v, T.v);
        return mpz_cmp(S.v, t.v) == 0;
    }
    Q total, a, p;
    for (const auto& c : kids) {
        mpq_set_num(a.v, c->vn.v);
        mpq_set_den(a.v, c->vd.v);
        mpq_canonicalize(a.v);
        mpq_add(total.v, total.v, a.v);
    }
    mpq_set_num(p.v, P.vn.v);
    mpq_set_den(p.v, P.vd.v);
    mpq_canonicalize(p.v);
    return mpq_equal(total.v, p.v) != 0;
}

// q = n / d in lowest terms (d > 0); by shifts where d = 2^k (k = d_log2 >= 0)
void set_ratio(mpq_t q, const mpz_t n, const mpz_t d, long d_log2) {
    if (d_log2 < 0) {
        mpq_set_num(q, n);
        mpq_set_den(q, d);
        mpq_canonicalize(q);
        return;
    }
    mp_bitcnt_t k = (mp_bitcnt_t)d_log2;
    if (mpz_sgn(n)) k = std::min(k, mpz_scan1(n, 0));
    mpz_tdiv_q_2exp(mpq_numref(q), n, k);
    mpz_set_ui(mpq_denref(q), 1);
    mpz_mul_2exp(mpq_denref(q), mpq_denref(q), (mp_bitcnt_t)d_log2 - k);
}

int Certifier::row_out(const RowRef& ref) {
    Row& r = ref.blk->row(ref.i);
    r.need();
    const int d = spec_.d;
    int side = ref.sg > 0 ? 1 : 0;
    if (r.out[side] >= 0) return r.out[side];
    const Z& scale = ref.blk->scale(ref.i);
    long l2 = log2_if_power(scale.v);
    RowOut& o = rows_out.emplace_back();
    // slack g = sg * row; the facet is a . t <= b with a = -g[:d] / scale, b = g[d] / scale,
    // that is (a, b) = sg (-r_1, .., -r_d, r_d+1) / scale
    int lead = 0;
    for (int i = 0; i < d && !lead; ++i) lead = -r.e[i].sgn();
    o.side = ref.sg > 0 ? lead : -lead;
    if (o.side == 0) {  // a = 0: no hyperplane (k stays 0)
        set_ratio(o.q.v, r.e[d].v, scale.v, l2);
        if (ref.sg < 0) mpq_neg(o.q.v, o.q.v);
    } else {
        // the hyperplane's primitive integer row (engines/python.py, _hyperplane_key): the
        // multiple of (-r_1, .., -r_d, r_d+1) with coprime entries whose first non-zero entry
        // among the first d is positive; then (a, b) = q k with q = sg lead g / scale
        for (int i = 0; i < d; ++i) mpz_neg(o.k[i].v, r.e[i].v);
        mpz_set(o.k[d].v, r.e[d].v);
        if (lead < 0)
            for (int i = 0; i <= d; ++i) mpz_neg(o.k[i].v, o.k[i].v);
        Z g;
        mpz_set(g.v, o.k[0].v);
        for (int i = 1; i <= d; ++i) mpz_gcd(g.v, g.v, o.k[i].v);
        mpz_abs(g.v, g.v);
        for (int i = 0; i <= d; ++i) mpz_divexact(o.k[i].v, o.k[i].v, g.v);
        set_ratio(o.q.v, g.v, scale.v, l2);
        if (o.side < 0) mpq_neg(o.q.v, o.q.v);
    }
    r.out[side] = (int)rows_out.size() - 1;
    return r.out[side];
}

int Certifier::vert_out(int id) {
    Vertex& v = verts[(size_t)id];
    if (v.out >= 0) return v.out;
    v.nearest();
    verts_out.emplace_back();
    VertOut& o = verts_out.back();
    o.x.resize((size_t)(v.m - 1));
    for (int i = 0; i + 1 < v.m; ++i) {
        mpq_set_num(o.x[i].v, v.x[i].v);
        mpq_set_den(o.x[i].v, v.W().v);
        mpq_canonicalize(o.x[i].v);
        o.f[i] = v.f[i];
    }
    if (v.m > 3)
        o.h.assign(v.x, v.x + v.m);
    v.out = (int)verts_out.size() - 1;
    return v.out;
}

void Certifier::emit(Cell& c) {
    materialize(c);
    LeafRec& lf = leaves.emplace_back();
    c.states->pack();
    lf.node = c.states;
    lf.w = std::move(c.w);
    mpq_set_num(lf.volume.v, c.vn.v);
    mpq_set_den(lf.volume.v, c.vd.v);
    mpq_canonicalize(lf.volume.v);
    const size_t m = c.ring.size(), nf = c.facets.size();
    lf.verts.resize(m);
    for (size_t k = 0; k < m; ++k) lf.verts[k] = vert_out(c.ring[k]);
    lf.frow.resize(nf);
    size_t nid = 0;
    for (size_t k = 0; k < nf; ++k) nid += c.facets[k].ids.size();
    lf.fids.reserve(nid);
    lf.fid_end.resize(nf);
    if (spec_.d != 2) lf.fv.resize(nf);
    for (size_t k = 0; k < nf; ++k) {
        lf.frow[k] = row_out(c.facets[k].row);
        lf.fids.insert(lf.fids.end(), c.facets[k].ids.begin(), c.facets[k].ids.end());
        lf.fid_end[k] = (int)lf.fids.size();
        if (spec_.d != 2) lf.fv[k] = c.facets[k].fv;
    }
    lf.out = std::move(c.live);
}

// --------------------------------------------------------------------------- assembly

inline uint64_t mix64(uint64_t h) {  // splitmix64's finalizer
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

inline uint64_t hash_z(uint64_t h, mpz_srcptr z) {
    h = mix64(h ^ (uint64_t)(int64_t)mpz_sgn(z));
    for (size_t i = 0, n = mpz_size(z); i < n; ++i) h = mix64(h ^ (uint64_t)mpz_getlimbn(z, (mp_size_t)i));
    return h;
}

// An open-addressing hash index of items kept elsewhere, numbered 0, 1, ..: a slot holds an
// item's hash and number. The hash only picks slots (equal items have equal hashes); whether two
// items are equal is decided by the caller's predicate, exactly.
class HashIndex {
    struct Slot {
        uint64_t h;
        int id;  // -1: empty
    };
    std::vector<Slot> s_;
    size_t n_ = 0;

    void resize(size_t cap) {
        std::vector<Slot> old;
        old.swap(s_);
        s_.assign(cap, Slot{0, -1});
        for (const Slot& x : old)
            if (x.id >= 0) {
                size_t i = (size_t)x.h & (cap - 1);
                while (s_[i].id >= 0) i = (i + 1) & (cap - 1);
                s_[i] = x;
            }
    }

  public:
    explicit HashIndex(size_t expect = 0) {
        size_t cap = 16;
        while (cap < 2 * expect) cap *= 2;
        s_.assign(cap, Slot{0, -1});
    }
    // the number of the item equal to item `id` (hash h; eq(k): is item k equal to it?), or
    // `id` after adding it
    template <class Eq>
    int insert(uint64_t h, int id, Eq eq) {
        size_t mask = s_.size() - 1, i = (size_t)h & mask;
        for (; s_[i].id >= 0; i = (i + 1) & mask)
            if (s_[i].h == h && eq(s_[i].id)) return s_[i].id;
        s_[i] = Slot{h, id};
        if (2 * ++n_ > s_.size()) resize(2 * s_.size());
        return id;
    }
    // the number of the item with hash h that eq accepts, or -1
    template <class Eq>
    int find(uint64_t h, Eq eq) const {
        size_t mask = s_.size() - 1, i = (size_t)h & mask;
        for (; s_[i].id >= 0; i = (i + 1) & mask)
            if (s_[i].h == h && eq(s_[i].id)) return s_[i].id;
        return -1;
    }
};

// The global vertices (numbered by first appearance in region order): their output records
// and, side by side, their coordinates' nearest doubles (read without going to the records).
struct GVerts {
    int d = 2;
    std::vector<const VertOut*> at;
    std::vector<double> f;  // d per vertex

    size_t size() const { return at.size(); }
    const VertOut& operator[](size_t v) const { return *at[v]; }
    // exact: is coordinate c of vertex a below that of vertex b? (monotone rounding: a strict
    // inequality between the nearest doubles is the same strict inequality between the values)
    bool less(int a, int b, int c) const {
        double fa = f[(size_t)a * (size_t)d + (size_t)c], fb = f[(size_t)b * (size_t)d + (size_t)c];
        if (fa != fb) return fa < fb;
        return mpq_cmp(at[(size_t)a]->x[c].v, at[(size_t)b]->x[c].v) < 0;
    }
};

struct Assembly {
    std::vector<long> adj_i, adj_j, adj_plane;
    std::vector<long> aid_start{0}, aid_flat;  // the ids of adjacent pair k: aid_flat[aid_start[k]:aid_start[k + 1]]
    std::vector<const RowOut*> planes;  // the key row of every plane of adjacent pairs, numbered
                                        // by first appearance in their order
    std::vector<long> pieces;
    std::vector<long> undecided;  // above 3-D: adjacent pairs (indices) left to the caller's LP
};

struct LeafRef {
    const Certifier* cert;
    const LeafRec* leaf;
    size_t ci;  // index of `cert` (into per-certifier tables such as the vertex maps)
};

// A facet of a region that may have a region across it, and a pair of adjacent regions.
struct Item {
    long region;
    int side;
    int facet;   // index of the facet in its region
    int v0, v1;  // 2-D: global vertex ids of its ends
    Ids ids;
};
struct Pair {
    long i, j, line;
    Ids fi, gi;
    bool undecided;  // above 3-D: a pair the exact integer tests leave to the caller's LP
};

// Spans sorted by their lower ends: reach[k] is the largest upper end among the first k + 1
// (less(a, b): is a below b?), non-decreasing; a span before the first k whose reach is above x
// ends at or below x (first_reaching(reach, x)), and so overlaps nothing that starts at x.
template <class T, class Hi, class Less>
void reaches(size_t n, Hi hi, Less less, std::vector<T>& reach) {
    reach.resize(n);
    for (size_t k = 0; k < n; ++k) reach[k] = k == 0 || less(reach[k - 1], hi(k)) ? hi(k) : reach[k - 1];
}
template <class T, class Less>
size_t first_reaching(const std::vector<T>& reach, const T& x, Less less) {
    return (size_t)(std::partition_point(reach.begin(), reach.end(), [&](const T& r) { return !less(x, r); }) - reach.begin());
}

// d >= 3: pairs of facets on one hyperplane (opposite sides) that share a (d-1)-dimensional piece
// (engines/python.py, _overlapping_facets). A facet with the vertices of one across is that facet:
// they share all of it, and neither shares a piece with another (facets on one side of a
// hyperplane have disjoint relative interiors). The others: boxes first, compared exactly along
// the coordinates the hyperplane does not fix (apart or touching: no shared piece). Then d shared
// vertices that are affinely independent (their homogeneous rows have rank d; in 3-D any three
// vertices of a convex polygon) mean a shared piece; else the two share no piece if one lies on
// or beyond another facet of the other's region (exact integer tests). In 3-D that decides: two
// convex polygons on the plane share area unless a line of the plane separates them, and such a
// line can be taken through an edge of one of them, an edge line of one facet being the plane
// cut by another facet of its region. Above 3-D a separation may need edges of both: such a pair
// is marked undecided (the caller decides it by an exact LP).
void overlapping(const Item* first, const Item* last, const RowOut& plane, long g, int d,
                 const std::vector<LeafRef>& order, const std::vector<std::vector<int>>& vmap,
                 const GVerts& gv, std::vector<Pair>& pairs) {
    std::vector<int> freec;
    for (int i = 0; i < d; ++i) {
        bool free = false;
        for (int k = 0; k < d; ++k) free = free || (k != i && mpz_sgn(plane.k[k].v) != 0);
        if (free) freec.push_back(i);
    }
    auto less = [&](int a, int b, int c) { return gv.less(a, b, c); };
    struct Fc {
        const Item* it;
        std::vector<int> vs;  // global vertex ids, sorted
        int lo[DMAX], hi[DMAX];
    };
    std::vector<Fc> plus, minus;
    for (const Item* ip = first; ip != last; ++ip) {
        const Item& it = *ip;
        const LeafRec& lf = *order[(size_t)it.region].leaf;
        const std::vector<int>& vm = vmap[order[(size_t)it.region].ci];
        Fc f{&it, {}, {}, {}};
        for (int pos : lf.fv[(size_t)it.facet]) f.vs.push_back(vm[(size_t)lf.verts[(size_t)pos]]);
        std::sort(f.vs.begin(), f.vs.end());
        for (int c = 0; c < d; ++c) {
            f.lo[c] = f.hi[c] = f.vs[0];
            for (int v : f.vs) {
                if (less(v, f.lo[c], c)) f.lo[c] = v;
                if (less(f.hi[c], v, c)) f.hi[c] = v;
            }
        }
        (it.side > 0 ? plus : minus).push_back(std::move(f));
    }
    if (plus.empty() || minus.empty()) return;
    auto pair_of = [&](const Fc& p, const Fc& q, bool undecided) {
        long a = p.it->region, b = q.it->region;
        pairs.push_back(Pair{std::min(a, b), std::max(a, b), g, p.it->ids, q.it->ids, undecided});
    };
    // twins: the same vertices on both sides
    std::map<std::vector<int>, size_t> across;
    for (size_t k = 0; k < minus.size(); ++k) across.emplace(minus[k].vs, k);
    std::vector<char> twinned(minus.size(), 0);
    std::vector<const Fc*> rest;
    for (const Fc& p : plus) {
        auto it = across.find(p.vs);
        if (it != across.end() && !twinned[it->second]) {
            twinned[it->second] = 1;
            pair_of(p, minus[it->second], false);
        } else {
            rest.push_back(&p);
        }
    }
    std::vector<const Fc*> others;
    for (size_t k = 0; k < minus.size(); ++k)
        if (!twinned[k]) others.push_back(&minus[k]);
    if (rest.empty() || others.empty()) return;
    // the region's other facets as integer rows r with r . (x, -1) >= 0 on or beyond them
    auto beyond = [&](const Item& it, const std::vector<int>& vs) {
        const LeafRec& lf = *order[(size_t)it.region].leaf;
        const Certifier& ct = *order[(size_t)it.region].cert;
        thread_local Z t;
        for (size_t k = 0; k < lf.frow.size(); ++k) {
            if ((int)k == it.facet) continue;
            const RowOut& h = ct.rows_out[(size_t)lf.frow[k]];
            bool all = true;
            for (size_t x = 0; x < vs.size() && all; ++x) {
                const VertOut& v = gv[(size_t)vs[x]];
                mpz_mul(t.v, h.k[0].v, v.h[0].v);
                for (int c = 1; c < d; ++c) mpz_addmul(t.v, h.k[c].v, v.h[c].v);
                mpz_submul(t.v, h.k[d].v, v.h[d].v);
                all = h.side * mpz_sgn(t.v) >= 0;
            }
            if (all) return true;
        }
        return false;
    };
    // do the shared vertices span a (d-1)-simplex?
    auto spanning = [&](const std::vector<int>& common) {
        if ((int)common.size() < d) return false;
        if (d == 3) return true;
        thread_local Echelon ech;
        ech.reset(d + 1);
        for (int v : common)
            if (ech.add(gv[(size_t)v].h.data()) && ech.n == d) return true;
        return false;
    };
    // a sweep along the first free coordinate: the other facets by their lower ends; once one is
    // at or past this facet's upper end, so are the later ones; those before the first whose
    // reach (largest upper end so far) passes this facet's lower end are apart from it
    const int c0 = freec[0];
    std::sort(others.begin(), others.end(),
              [&](const Fc* a, const Fc* b) { return less(a->lo[c0], b->lo[c0], c0); });
    auto less0 = [&](int a, int b) { return less(a, b, c0); };
    std::vector<int> reach;
    reaches(others.size(), [&](size_t k) { return others[k]->hi[c0]; }, less0, reach);
    std::vector<int> common;
    for (const Fc* p : rest) {
        for (size_t k = first_reaching(reach, p->lo[c0], less0); k < others.size(); ++k) {
            const Fc* q = others[k];
            if (!less(q->lo[c0], p->hi[c0], c0)) break;
            bool apart = false;
            for (int c : freec)
                apart = apart || !less(q->lo[c], p->hi[c], c) || !less(p->lo[c], q->hi[c], c);
            if (apart) continue;
            common.clear();
            std::set_intersection(p->vs.begin(), p->vs.end(), q->vs.begin(), q->vs.end(),
                                  std::back_inserter(common));
            if (spanning(common))
                pair_of(*p, *q, false);
            else if (!beyond(*p->it, q->vs) && !beyond(*q->it, p->vs))
                pair_of(*p, *q, d > 3);
        }
    }
}

void assemble(const std::vector<LeafRef>& order, const std::vector<std::vector<int>>& vmap,
              const GVerts& gv, const Spec& spec, Assembly& out) {
    // adjacency: facets on one line from opposite sides whose spans overlap with positive length
    const int d = spec.d;
    // the facets off the domain's boundary, grouped by hyperplane (the groups numbered by first
    // appearance, each group's facets in region order): first in region order with their groups
    // (a row's group is looked up once per certifier's output row), then counted into place
    // per certifier, per output row: 4 g + side + 1 (-1: not seen yet)
    std::vector<std::vector<int>> group_of(vmap.size());
    HashIndex line_of;
    std::vector<const RowOut*> line_row;
    std::vector<Item> all;
    std::vector<int> all_g;
    for (size_t ri = 0; ri < order.size(); ++ri) {
        const LeafRec& lf = *order[ri].leaf;
        const Certifier& ct = *order[ri].cert;
        const std::vector<int>& vm = vmap[order[ri].ci];
        std::vector<int>& gr = group_of[order[ri].ci];
        const size_t m = lf.verts.size();
        for (size_t k = 0; k < lf.frow.size(); ++k) {
            Ids ids = facet_ids(lf, k);
            if (!ids.empty() && ids.front() < spec.domain_ids) continue;  // on the domain's boundary
            if (gr.empty()) gr.assign(ct.rows_out.size(), -1);
            int& gs = gr[(size_t)lf.frow[k]];
            if (gs < 0) {
                const RowOut& ro = ct.rows_out[(size_t)lf.frow[k]];
                uint64_t h = 0;
                for (int i = 0; i <= d; ++i) h = hash_z(h, ro.k[i].v);
                int id = (int)line_row.size();
                int g = line_of.insert(h, id, [&](int o) {
                    for (int i = 0; i <= d; ++i)
                        if (mpz_cmp(line_row[(size_t)o]->k[i].v, ro.k[i].v) != 0) return false;
                    return true;
                });
                if (g == id) line_row.push_back(&ro);
                gs = 4 * g + ro.side + 1;
            }
            const int g = gs >> 2, side = (gs & 3) - 1;
            if (d == 2)
                all.push_back(Item{(long)ri, side, (int)k, vm[(size_t)lf.verts[k]],
                                   vm[(size_t)lf.verts[(k + 1) % m]], ids});
            else
                all.push_back(Item{(long)ri, side, (int)k, -1, -1, ids});
            all_g.push_back(g);
        }
    }
    std::vector<std::vector<int>>().swap(group_of);
    const size_t ng = line_row.size();
    std::vector<size_t> gstart(ng + 1, 0);
    for (int g : all_g) ++gstart[(size_t)g + 1];
    for (size_t g = 0; g < ng; ++g) gstart[g + 1] += gstart[g];
    std::vector<Item> items(all.size());
    {
        std::vector<size_t> at(gstart.begin(), gstart.end() - 1);
        for (size_t t = 0; t < all.size(); ++t) items[at[(size_t)all_g[t]]++] = all[t];
    }
    std::vector<Item>().swap(all);
    std::vector<int>().swap(all_g);
    std::vector<Pair> pairs;
    struct End {  // a vertex and its coordinate's nearest double (most comparisons end there)
        double f;
        int v;
    };
    struct Span {
        End lo, hi;
        const Item* it;
    };
    std::vector<Span> plus, minus;
    std::vector<End> reach;
    for (size_t g = 0; g < ng; ++g) {
        const Item* first = items.data() + gstart[g];
        const Item* last = items.data() + gstart[g + 1];
        const RowOut& lr = *line_row[g];
        if (d != 2) {
            overlapping(first, last, lr, (long)g, d, order, vmap, gv, pairs);
            continue;
        }
        int c = mpz_sgn(lr.k[1].v) != 0 ? 0 : 1;  // a coordinate the line does not fix
        auto less = [&](const End& a, const End& b) { return a.f != b.f ? a.f < b.f : gv.less(a.v, b.v, c); };
        auto end = [&](int v) { return End{gv.f[(size_t)v * (size_t)d + (size_t)c], v}; };
        plus.clear();
        minus.clear();
        for (const Item* ip = first; ip != last; ++ip) {
            Span s{end(ip->v0), end(ip->v1), ip};
            if (less(s.hi, s.lo)) std::swap(s.lo, s.hi);
            (ip->side > 0 ? plus : minus).push_back(s);
        }
        if (plus.empty() || minus.empty()) continue;
        std::sort(minus.begin(), minus.end(), [&](const Span& a, const Span& b) { return less(a.lo, b.lo); });
        // the spans across before the first whose reach passes p's lower end end at or before it
        reaches(minus.size(), [&](size_t k) { return minus[k].hi; }, less, reach);
        for (const Span& p : plus) {
            for (size_t k = first_reaching(reach, p.lo, less); k < minus.size(); ++k) {
                const Span& q = minus[k];
                if (!less(q.lo, p.hi)) break;
                if (less(p.lo, q.hi)) {
                    long a = p.it->region, b = q.it->region;
                    pairs.push_back(
                        Pair{std::min(a, b), std::max(a, b), (long)g, p.it->ids, q.it->ids, false});
                }
            }
        }
    }
    std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) {
        return a.i != b.i ? a.i < b.i : a.j != b.j ? a.j < b.j : a.undecided < b.undecided;
    });
    std::vector<long> plane_of(ng, -1);
    std::vector<long> ids;
    for (size_t k = 0; k < pairs.size(); ++k) {
        const Pair& p = pairs[k];
        if (k > 0 && pairs[k - 1].i == p.i && pairs[k - 1].j == p.j) continue;
        out.adj_i.push_back(p.i);
        out.adj_j.push_back(p.j);
        long& pl = plane_of[(size_t)p.line];
        if (pl < 0) {
            pl = (long)out.planes.size();
            out.planes.push_back(line_row[(size_t)p.line]);
        }
        out.adj_plane.push_back(pl);
        if (p.undecided) out.undecided.push_back((long)out.adj_i.size() - 1);
        ids.assign(p.fi.begin(), p.fi.end());
        ids.insert(ids.end(), p.gi.begin(), p.gi.end());
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        out.aid_flat.insert(out.aid_flat.end(), ids.begin(), ids.end());
        out.aid_start.push_back((long)out.aid_flat.size());
    }
    // pieces: adjacent regions with the identical output map (all over one denominator), through
    // the pairs decided here (the caller joins the pieces of undecided pairs it confirms)
    std::vector<long> parent(order.size());
    for (size_t i = 0; i < parent.size(); ++i) parent[i] = (long)i;
    auto find = [&](long x) {
        while (parent[(size_t)x] != x) {
            parent[(size_t)x] = parent[(size_t)parent[(size_t)x]];
            x = parent[(size_t)x];
        }
        return x;
    };
    size_t next_undecided = 0;
    for (size_t k = 0; k < out.adj_i.size(); ++k) {
        if (next_undecided < out.undecided.size() && out.undecided[next_undecided] == (long)k) {
            ++next_undecided;
            continue;
        }
        if (!order[(size_t)out.adj_i[k]].leaf->out.equal(order[(size_t)out.adj_j[k]].leaf->out)) continue;
        long ri = find(out.adj_i[k]), rj = find(out.adj_j[k]);
        if (ri != rj) parent[(size_t)std::max(ri, rj)] = std::min(ri, rj);
    }
    // pieces numbered by first appearance of their roots in region order
    std::vector<long> label(order.size(), -1);
    long n_pieces = 0;
    out.pieces.resize(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
        long& l = label[(size_t)find((long)i)];
        if (l < 0) l = n_pieces++;
        out.pieces[i] = l;
    }
}

// --------------------------------------------------------------------------- input parsing

// spec = (d, root, levels, domain_ids[, volumes]): volumes 0 skips every cell's volume and the
//   check that children's sum to their parent's (a cut of an unbounded domain, whose volumes
//   are not written; every domain above 3-D)
//   root = (vertices [(x_1, .., x_d, W)], facets [(row, scale, ids, vertices)], witness
//           (n_1, d_1, .., n_d, d_d), volume (n, d), den, map [ints, n0 x (d + 1)])
//   level = (n, thresholds [(p, q)], states [(slope, const)], sa, offset, Az [ints], n_out,
//            az [ints] or None, dA)
// limbs of a two's complement integer holding every value of magnitude at most B
int limbs_for(const Z& B) { return (int)((mpz_sizeinbase(B.v, 2) + 1 + 63) / 64); }

// Decide the limbs of the maps after level lv's affine layer from a bound B on the maps entering
// it (B becomes the bound after): a unit's output row is at most RB = max_s |slope_s| B +
// |cst_s| den, and a map entry after at most max_r sum_u |Az_ru| RB + max |az| den sa.
void fixed_width(Level& lv, Z& B) {
    Z RB, t, rowsum, best, azmax;
    for (size_t s = 0; s < lv.slope.size(); ++s) {
        mpz_abs(t.v, lv.slope[s].v);
        mpz_mul(t.v, t.v, B.v);
        Z c;
        mpz_abs(c.v, lv.cst[s].v);
        mpz_addmul(t.v, c.v, lv.den.v);
        if (mpz_cmp(t.v, RB.v) > 0) RB = t;
    }
    bool fits = true;
    for (int r = 0; r < lv.n_out; ++r) {
        mpz_set_ui(rowsum.v, 0);
        for (int u = 0; u < lv.n; ++u) {
            const Z& a = lv.Az[(size_t)r * (size_t)lv.n + (size_t)u];
            fits = fits && mpz_fits_slong_p(a.v);
            if (a.sgn() > 0) mpz_add(rowsum.v, rowsum.v, a.v); else mpz_sub(rowsum.v, rowsum.v, a.v);
        }
        if (mpz_cmp(rowsum.v, best.v) > 0) best = rowsum;
        if (lv.has_az && mpz_cmpabs(lv.az[(size_t)r].v, azmax.v) > 0) mpz_abs(azmax.v, lv.az[(size_t)r].v);
    }
    for (const Z& sl : lv.slope) fits = fits && mpz_fits_slong_p(sl.v);
    Z next;
    mpz_mul(next.v, best.v, RB.v);
    mpz_mul(t.v, azmax.v, lv.den.v);
    mpz_addmul(next.v, t.v, lv.sa.v);
    B = next;
    int K = limbs_for(B);
    if (!fits || K > KMAX || sizeof(long) != sizeof(int64_t)) {
        lv.K_out = 0;
        return;
    }
    lv.K_out = K;
    mpz_mul_2exp(t.v, RB.v, 1);
    lv.deltas = limbs_for(t) <= K;
    // first products in 128-bit accumulators per limb: n terms below 2^(bits(Az) + 64) each
    size_t az_bits = 0;
    for (const Z& a : lv.Az) az_bits = std::max(az_bits, a.sgn() ? mpz_sizeinbase(a.v, 2) : 0);
    size_t n_bits = 1;
    while (((size_t)1 << n_bits) < (size_t)lv.n + 1) ++n_bits;
    lv.dense = az_bits + 64 + n_bits <= 126;
    lv.Az64.resize(lv.Az.size());
    for (size_t e = 0; e < lv.Az.size(); ++e) lv.Az64[e] = (int64_t)mpz_get_si(lv.Az[e].v);
    lv.AzT64.resize(lv.Az64.size());
    for (size_t r = 0; r < (size_t)lv.n_out; ++r)
        for (size_t u = 0; u < (size_t)lv.n; ++u) lv.AzT64[u * (size_t)lv.n_out + r] = lv.Az64[r * (size_t)lv.n + u];
    for (const Z& sl : lv.slope) lv.slope64.push_back((int64_t)mpz_get_si(sl.v));
    lv.cstden.assign(lv.cst.size() * (size_t)K, 0);
    for (size_t st = 0; st < lv.cst.size(); ++st) {
        mpz_mul(t.v, lv.cst[st].v, lv.den.v);
        fx_from_z(t.v, &lv.cstden[st * (size_t)K], K);
    }
    lv.azden.assign((size_t)lv.n_out * (size_t)K, 0);
    if (lv.has_az) {
        Z ds;
        mpz_mul(ds.v, lv.den.v, lv.sa.v);
        for (int r = 0; r < lv.n_out; ++r) {
            mpz_mul(t.v, lv.az[(size_t)r].v, ds.v);
            fx_from_z(t.v, &lv.azden[(size_t)r * (size_t)K], K);
        }
    }
}

struct Parsed {
    Spec spec;
    std::shared_ptr<Cell> root;
    std::deque<Vertex> root_verts;
};

void parse(PyObject* arg, Parsed& P) {
    std::vector<PyObject*> top = items(arg, "spec");
    Guard g0{top};
    if (top.size() != 4 && top.size() != 5)
        throw std::runtime_error("exactrelu._core: spec must be (d, root, levels, domain_ids[, volumes])");
    Spec& spec = P.spec;
    spec.d = (int)get_long(top[0]);
    if (spec.d < 2 || spec.d > DMAX)
        throw std::runtime_error("exactrelu._core: 2-D to 6-D domains only");
    const int M = spec.d + 1;
    spec.domain_ids = get_long(top[3]);
    if (top.size() == 5) spec.volumes = get_long(top[4]) != 0;
    if (spec.volumes && spec.d > 3)
        throw std::runtime_error("exactrelu._core: volumes up to 3-D only (volumes 0)");

    std::vector<PyObject*> root = items(top[1], "root");
    Guard g1{root};
    if (root.size() != 6) throw std::runtime_error("exactrelu._core: root must have 6 parts");
    auto cell = std::make_shared<Cell>();
    std::vector<PyObject*> vs = items(root[0], "root vertices");
    Guard g2{vs};
    for (PyObject* v : vs) {
        std::vector<Z> xs;
        get_zs(v, xs, "vertex");
        if ((int)xs.size() != M || xs[(size_t)M - 1].sgn() <= 0)
            throw std::runtime_error("exactrelu._core: a vertex is (x_1, .., x_d, W), W > 0");
        P.root_verts.emplace_back();
        Vertex& x = P.root_verts.back();
        x.m = M;
        for (int i = 0; i < M; ++i) x.x[i] = xs[(size_t)i];
        x.approx();
        cell->ring.push_back((int)P.root_verts.size() - 1);
    }
    std::vector<PyObject*> fs = items(root[1], "root facets");
    Guard g3{fs};
    auto blk = std::make_shared<RowBlock>();
    blk->per = 1;
    for (PyObject* f : fs) {
        std::vector<PyObject*> parts = items(f, "facet");
        Guard g4{parts};
        if (parts.size() != 4) throw std::runtime_error("exactrelu._core: a facet is (row, scale, ids, vertices)");
        blk->rows.emplace_back();
        Row& r = blk->rows.back();
        std::vector<Z> row;
        get_zs(parts[0], row, "facet row");
        if ((int)row.size() != M) throw std::runtime_error("exactrelu._core: a facet row has d + 1 entries");
        r.m = M;
        r.alloc();
        for (int i = 0; i < M; ++i) r.e[i] = row[(size_t)i];
        r.approx();
        blk->scales.emplace_back();
        get_z(parts[1], blk->scales.back());
        Facet fc;
        std::vector<PyObject*> ids = items(parts[2], "ids");
        Guard g5{ids};
        for (PyObject* i : ids) fc.ids.push_back(get_long(i));
        std::vector<PyObject*> fv = items(parts[3], "facet vertices");
        Guard g6{fv};
        for (PyObject* i : fv) {
            long k = get_long(i);
            if (k < 0 || k >= (long)cell->ring.size()) throw std::runtime_error("exactrelu._core: a facet vertex out of range");
            fc.fv.push_back((int)k);
        }
        size_t k = cell->facets.size();
        if (spec.d == 2 && (fc.fv.size() != 2 || fc.fv[0] != (int)k || fc.fv[1] != (int)((k + 1) % vs.size())))
            throw std::runtime_error("exactrelu._core: 2-D root facets join vertices k and k + 1");
        if (spec.d == 2) fc.fv.clear();
        cell->facets.push_back(std::move(fc));
    }
    for (size_t k = 0; k < cell->facets.size(); ++k) {
        cell->facets[k].row.blk = blk;
        cell->facets[k].row.i = (int)k;
        cell->facets[k].row.sg = 1;
    }
    if ((spec.d == 2 && cell->facets.size() != cell->ring.size()) || (int)cell->ring.size() < M)
        throw std::runtime_error("exactrelu._core: the root polygon needs one facet per side");
    std::vector<Z> w;
    get_zs(root[2], w, "witness");
    if ((int)w.size() != 2 * spec.d) throw std::runtime_error("exactrelu._core: witness is (n_1, d_1, .., n_d, d_d)");
    cell->w.resize((size_t)spec.d);
    for (int i = 0; i < spec.d; ++i) {
        if (w[(size_t)(2 * i + 1)].sgn() <= 0) throw std::runtime_error("exactrelu._core: a witness denominator <= 0");
        mpq_set_num(cell->w[i].v, w[(size_t)(2 * i)].v);
        mpq_set_den(cell->w[i].v, w[(size_t)(2 * i + 1)].v);
        mpq_canonicalize(cell->w[i].v);
    }
    std::vector<Z> vol;
    get_zs(root[3], vol, "volume");
    if (vol.size() != 2) throw std::runtime_error("exactrelu._core: volume is (n, d)");
    if (vol[1].sgn() <= 0) throw std::runtime_error("exactrelu._core: volume is (n, d), d > 0");
    cell->vn = vol[0];
    cell->vd = vol[1];
    Z den;
    get_z(root[4], den);
    std::vector<Z> m0;
    get_zs(root[5], m0, "root map");
    Z B;  // a bound on the entries of every map entering the next level
    for (const Z& x : m0)
        if (mpz_cmpabs(x.v, B.v) > 0) mpz_abs(B.v, x.v);
    int K0 = limbs_for(B);
    if (K0 <= KMAX) {
        cell->live.K = K0;
        cell->live.w.resize(m0.size() * (size_t)K0);
        for (size_t e = 0; e < m0.size(); ++e) fx_from_z(m0[e].v, &cell->live.w[e * (size_t)K0], K0);
    } else {
        cell->live.z = std::move(m0);
    }

    std::vector<PyObject*> lvs = items(top[2], "levels");
    Guard g6{lvs};
    spec.L = (int)lvs.size();
    spec.levels.resize(lvs.size());
    if (cell->live.entries() % (size_t)M) throw std::runtime_error("exactrelu._core: the root map has d + 1 columns");
    int n_in = (int)(cell->live.entries() / (size_t)M);
    for (size_t j = 0; j < lvs.size(); ++j) {
        Level& lv = spec.levels[j];
        std::vector<PyObject*> parts = items(lvs[j], "level");
        Guard g7{parts};
        if (parts.size() != 9) throw std::runtime_error("exactrelu._core: a level has 9 parts");
        lv.n = (int)get_long(parts[0]);
        if (lv.n != n_in) throw std::runtime_error("exactrelu._core: a level's units do not match the map before it");
        lv.den = den;
        std::vector<PyObject*> thr = items(parts[1], "thresholds");
        Guard g8{thr};
        lv.nthr = (int)thr.size();
        if (lv.nthr < 1 || lv.nthr > 2) throw std::runtime_error("exactrelu._core: 1 or 2 thresholds");
        for (PyObject* t : thr) {
            std::vector<Z> pq;
            get_zs(t, pq, "threshold");
            // t den = p den / q = shift / s in lowest terms
            Z num, g;
            mpz_mul(num.v, pq[0].v, den.v);
            mpz_gcd(g.v, num.v, pq[1].v);
            lv.thr_s.emplace_back();
            lv.thr_shift.emplace_back();
            mpz_divexact(lv.thr_s.back().v, pq[1].v, g.v);
            mpz_divexact(lv.thr_shift.back().v, num.v, g.v);
            lv.thr_scale.emplace_back();
            mpz_mul(lv.thr_scale.back().v, den.v, lv.thr_s.back().v);
        }
        std::vector<PyObject*> sts = items(parts[2], "states");
        Guard g9{sts};
        for (PyObject* s : sts) {
            std::vector<Z> sc;
            get_zs(s, sc, "state");
            lv.slope.push_back(sc[0]);
            lv.cst.push_back(sc[1]);
        }
        if ((int)lv.slope.size() != lv.nthr + 1) throw std::runtime_error("exactrelu._core: one state more than thresholds");
        get_z(parts[3], lv.sa);
        for (size_t s = 0; s < lv.slope.size(); ++s) {
            // as certify._OpContext: identity when the integer slope is 1 and the constant 0
            bool id = mpz_cmp_ui(lv.slope[s].v, 1) == 0 && lv.cst[s].sgn() == 0;
            bool zero = lv.slope[s].sgn() == 0 && lv.cst[s].sgn() == 0;
            lv.kind.push_back(id ? 1 : zero ? 0 : -1);
        }
        lv.offset = get_long(parts[4]);
        get_zs(parts[5], lv.Az, "Az");
        lv.n_out = (int)get_long(parts[6]);
        if ((long)lv.Az.size() != (long)lv.n_out * lv.n) throw std::runtime_error("exactrelu._core: Az has the wrong size");
        lv.has_az = parts[7] != Py_None;
        if (lv.has_az) get_zs(parts[7], lv.az, "az");
        get_z(parts[8], lv.dA);
        fixed_width(lv, B);
        Z nd;
        mpz_mul(nd.v, lv.dA.v, den.v);
        mpz_mul(den.v, nd.v, lv.sa.v);
        n_in = lv.n_out;
    }
    // the columns of first_map_from_ref in 128 bits: a column entry is a sum over the units u of
    // Az_ru slope_u Az'_uv (the slopes of any states), so at most max_r sum_u |Az_ru| max |slope|
    // max |Az'| in magnitude; kept modulo 2^128, it is exact when that is below 2^127
    auto mag = [](int64_t x) { return x < 0 ? 0 - (uint64_t)x : (uint64_t)x; };
    for (size_t j = 1; j < spec.levels.size(); ++j) {
        Level& lv = spec.levels[j];
        const Level& lp = spec.levels[j - 1];
        if (!lv.K_out || !lp.K_out) continue;
        Z rowmax, row, sl, ap, t;
        for (int r = 0; r < lv.n_out; ++r) {
            mpz_set_ui(row.v, 0);
            for (int u = 0; u < lv.n; ++u) mpz_add_ui(row.v, row.v, mag(lv.Az64[(size_t)r * (size_t)lv.n + (size_t)u]));
            if (mpz_cmp(row.v, rowmax.v) > 0) rowmax = row;
        }
        for (const Z& x : lv.slope)
            if (mpz_cmpabs(x.v, sl.v) > 0) mpz_abs(sl.v, x.v);
        for (int64_t x : lp.Az64)
            if (mpz_cmp_ui(ap.v, mag(x)) < 0) mpz_set_ui(ap.v, mag(x));
        mpz_mul(t.v, rowmax.v, sl.v);
        mpz_mul(t.v, t.v, ap.v);
        lv.cols = mpz_sizeinbase(t.v, 2) <= 126;
    }
    spec.out_den = den;
    P.root = cell;
}

// --------------------------------------------------------------------------- Python output

struct Ref {  // an owned reference
    PyObject* p = nullptr;
    Ref() = default;
    explicit Ref(PyObject* o) : p(o) { if (!o) throw PyError(); }
    Ref(const Ref&) = delete;
    Ref(Ref&& o) noexcept : p(o.p) { o.p = nullptr; }
    Ref& operator=(Ref&& o) noexcept {
        if (this != &o) {
            Py_XDECREF(p);
            p = o.p;
            o.p = nullptr;
        }
        return *this;
    }
    ~Ref() { Py_XDECREF(p); }
    PyObject* release() { PyObject* o = p; p = nullptr; return o; }
};

// Prefetches for the output's loops over records spread across gigabytes (leaves, vertices,
// rows): a record some items ahead, then its arrays, then the limbs of its rationals.
inline void prefetch(const void* p) { __builtin_prefetch(p, 0, 0); }
inline void prefetch_lines(const void* p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) prefetch((const char*)p + o);
}
inline void prefetch_z(mpz_srcptr z) { prefetch(z->_mp_d); }
inline void prefetch_q(const mpq_t q) {
    prefetch_z(mpq_numref(q));
    prefetch_z(mpq_denref(q));
}

// Python ints for the engine's plain output (lists of ints; never Fractions or dataclasses):
// the ints 0..255 and the powers of two up to 2^1023 (the denominators of dyadic values, most of
// them) are made once and shared by every entry that has them.
struct Ints {
    std::vector<Ref> pow2, small;

    PyObject* integer(mpz_srcptr z) {
        const size_t n = mpz_size(z);
        const mp_limb_t* L = mpz_limbs_read(z);
        if (n == 0 || (n == 1 && mpz_sgn(z) > 0 && L[0] < 256)) {
            unsigned long k = n ? (unsigned long)L[0] : 0;
            if (small.empty()) small.resize(256);
            if (!small[k].p) small[k] = Ref(PyLong_FromUnsignedLong(k));
            return Py_NewRef(small[k].p);
        }
        // a power of two: one bit in the top limb, the others 0
        if (mpz_sgn(z) > 0 && (L[n - 1] & (L[n - 1] - 1)) == 0) {
            size_t i = 0;
            while (i + 1 < n && L[i] == 0) ++i;
            size_t k = 64 * (n - 1) + (size_t)__builtin_ctzll((unsigned long long)L[n - 1]);
            if (i + 1 == n && k < 1024) {
                if (pow2.empty()) pow2.resize(1024);
                if (!pow2[k].p) pow2[k] = Ref(mpz_to_py(z));
                return Py_NewRef(pow2[k].p);
            }
        }
        return mpz_to_py(z);
    }
};

struct Miscounted : std::logic_error {
    Miscounted() : std::logic_error("exactrelu._core: output of another length than counted") {}
};

// A Python list of ints built by appending: made with its length when that is known (and
// filled in place), else at the end (the references are owned until then).
struct IntList {
    Ref list;
    size_t k = 0;
    std::vector<PyObject*> v;
    IntList() = default;
    explicit IntList(size_t n) : list(PyList_New((Py_ssize_t)n)) {}
    IntList(const IntList&) = delete;
    ~IntList() {
        for (PyObject* o : v) Py_XDECREF(o);
    }
    void add(PyObject* o) {
        if (!o) throw PyError();
        if (!list.p) {
            v.push_back(o);
        } else if (k < (size_t)PyList_GET_SIZE(list.p)) {
            PyList_SET_ITEM(list.p, (Py_ssize_t)k++, o);
        } else {
            Py_DECREF(o);
            throw Miscounted();
        }
    }
    void add(long x) { add(PyLong_FromLong(x)); }
    PyObject* take() {
        if (list.p) {
            if (k != (size_t)PyList_GET_SIZE(list.p)) throw Miscounted();
            return list.release();
        }
        Ref l(PyList_New((Py_ssize_t)v.size()));
        for (size_t i = 0; i < v.size(); ++i) PyList_SET_ITEM(l.p, (Py_ssize_t)i, v[i]);
        v.clear();
        return l.release();
    }
};

// Rationals as two lists of ints, numerators and denominators (coprime, denominators > 0)
struct RatList {
    IntList num, den;
    RatList() = default;
    explicit RatList(size_t n) : num(n), den(n) {}
    void add(Ints& I, const mpq_t q) {
        num.add(I.integer(mpq_numref(q)));
        den.add(I.integer(mpq_denref(q)));
    }
    PyObject* take() {
        Ref n(num.take());
        Ref d(den.take());
        return PyTuple_Pack(2, n.p, d.p);
    }
};

// Index data as a bytes object of native int64 (exactrelu.engines.compiled wraps it with
// numpy.frombuffer, without a copy): offsets, ids, vertex and region numbers. Written in place
// when its length is known, else gathered first.
struct I64Buf {
    std::vector<int64_t> v;
    Ref bytes;
    int64_t* at = nullptr;
    size_t k = 0, n = 0;
    I64Buf() = default;
    explicit I64Buf(size_t count)
        : bytes(PyBytes_FromStringAndSize(nullptr, (Py_ssize_t)(count * sizeof(int64_t)))),
          at((int64_t*)PyBytes_AS_STRING(bytes.p)), n(count) {}
    void add(long x) {
        if (!at)
            v.push_back((int64_t)x);
        else if (k < n)
            at[k++] = (int64_t)x;
        else
            throw Miscounted();
    }
    PyObject* take() {
        if (at) {
            if (k != n) throw Miscounted();
            return bytes.release();
        }
        PyObject* b = PyBytes_FromStringAndSize((const char*)v.data(), (Py_ssize_t)(v.size() * sizeof(int64_t)));
        std::vector<int64_t>().swap(v);
        if (!b) throw PyError();
        return b;
    }
};

PyObject* i64_bytes(const std::vector<long>& xs) {
    I64Buf b(xs.size());
    for (long x : xs) b.add(x);
    return b.take();
}

PyObject* int_list(const std::vector<long>& xs) {
    Ref t(PyList_New((Py_ssize_t)xs.size()));
    for (size_t i = 0; i < xs.size(); ++i) PyList_SET_ITEM(t.p, (Py_ssize_t)i, Ref(PyLong_FromLong(xs[i])).release());
    return t.release();
}

// Memory of finished certifications being freed on threads of their own (see certify2d).
std::mutex freeing_mutex;
std::condition_variable freeing_done;
int freeing = 0;

template <class T>
void free_later(T* p) {
    {
        std::lock_guard<std::mutex> lock(freeing_mutex);
        ++freeing;
    }
    std::thread([p]() {
        delete p;
        std::lock_guard<std::mutex> lock(freeing_mutex);
        --freeing;
        freeing_done.notify_all();
    }).detach();
}

PyObject* settle(PyObject*, PyObject*) {
    Py_BEGIN_ALLOW_THREADS
    std::unique_lock<std::mutex> lock(freeing_mutex);
    freeing_done.wait(lock, [] { return freeing == 0; });
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyObject* certify2d(PyObject*, PyObject* args) {
    PyObject *spec_obj, *proposals, *report = Py_None;
    int threads = 1;
    Py_ssize_t max_leaves = 0;
    if (!PyArg_ParseTuple(args, "OiO|On", &spec_obj, &threads, &proposals, &report, &max_leaves))
        return nullptr;
    try {
        auto t_start = std::chrono::steady_clock::now();
        // everything the certification allocates; released on a thread of its own at the end
        struct Keep {
            Parsed P;
            std::unique_ptr<Certifier> main;
            std::vector<std::unique_ptr<Certifier>> workers;
        };
        std::unique_ptr<Keep> keep(new Keep);
        Parsed& P = keep->P;
        parse(spec_obj, P);
        const Spec& spec = P.spec;
        // The first levels here, until there are enough subtrees; then `threads` workers take
        // subtrees in turn, each with its own certifier. Leaves are put back in the order of a
        // single depth-first pass, so the result does not depend on the threads.
        keep->main.reset(new Certifier(spec));
        Certifier& main = *keep->main;
        std::vector<std::unique_ptr<Certifier>>& workers = keep->workers;
        std::vector<std::shared_ptr<Cell>> frontier{P.root};
        struct Seg {
            int cert = 0;
            size_t lo = 0, hi = 0;
        };
        std::vector<Seg> segs;
        std::string err;
        bool interrupted = false;
        std::atomic<long> emitted{0}, over{0};
        Py_BEGIN_ALLOW_THREADS
        try {
            main.verts = std::move(P.root_verts);
            size_t want = threads > 1 ? 16 * (size_t)threads : 1;
            auto leaves_only = [&]() {
                for (auto& c : frontier)
                    if (c->level < spec.L) return false;
                return true;
            };
            while (frontier.size() < want && !leaves_only()) {
                main.expand(frontier);
                if (max_leaves > 0 && (long)frontier.size() > (long)max_leaves) {
                    over = (long)frontier.size();
                    break;
                }
            }
            if (over) frontier.clear();
            // what the workers read of the cells made here must be exact already
            for (auto& c : frontier) {
                for (auto& f : c->facets) f.row.row().need();
                for (int id : c->ring) main.verts[(size_t)id].nearest();
            }
            int nt = (int)std::max<size_t>(1, std::min<size_t>((size_t)std::max(threads, 1), frontier.size()));
            for (int t = 0; t < nt; ++t) workers.emplace_back(new Certifier(spec));
            segs.resize(frontier.size());
            std::atomic<size_t> next{0}, finished{0};
            std::atomic<bool> failed{false};
            std::vector<std::string> errs((size_t)nt);
            auto work = [&](int t) {
                Certifier& w = *workers[(size_t)t];
                w.stop = &failed;
                w.emitted = &emitted;
                w.over = &over;
                w.limit = (long)max_leaves;
                try {
                    for (size_t i = next++; i < frontier.size() && !failed; i = next++) {
                        segs[i].cert = t;
                        segs[i].lo = w.leaves.size();
                        std::shared_ptr<Cell> c = w.adopt(*frontier[i], main);
                        frontier[i].reset();
                        w.run(std::move(c));
                        segs[i].hi = w.leaves.size();
                        ++finished;
                    }
                } catch (const std::exception& e) {
                    errs[(size_t)t] = e.what();
                    failed = true;
                }
            };
            // The workers do everything; this thread waits in slices of 50 ms and in between
            // runs Python's signal handlers: an exception from one (Ctrl-C) stops the workers.
            std::mutex m;
            std::condition_variable cv;
            int running = nt;
            auto task = [&](int t) {
                work(t);
                std::lock_guard<std::mutex> lock(m);
                --running;
                cv.notify_all();
            };
            std::vector<std::thread> pool;
            for (int t = 0; t < nt; ++t) pool.emplace_back(task, t);
            // `report(done, total)`, when given, hears of finished subtrees as they finish
            size_t told = (size_t)-1;
            for (;;) {
                bool over;
                {
                    std::unique_lock<std::mutex> lock(m);
                    over = cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return running == 0; });
                }
                Py_BLOCK_THREADS
                if (!interrupted && PyErr_CheckSignals() < 0) interrupted = true;
                size_t done = finished;
                if (!interrupted && report != Py_None && done != told) {
                    told = done;
                    PyObject* r = PyObject_CallFunction(report, "nn", (Py_ssize_t)done, (Py_ssize_t)frontier.size());
                    if (!r) interrupted = true;
                    Py_XDECREF(r);
                }
                Py_UNBLOCK_THREADS
                if (interrupted) failed = true;
                if (over) break;
            }
            for (auto& th : pool) th.join();
            for (auto& e : errs)
                if (!e.empty() && err.empty()) err = e;
        } catch (const std::exception& e) {
            err = e.what();
        }
        Py_END_ALLOW_THREADS
        if (interrupted) return nullptr;  // the signal handler's exception is set
        if (over) {  // more regions than max_leaves: how many were known to exist when it stopped
            free_later(keep.release());
            return PyLong_FromLong(over.load());
        }
        if (!err.empty()) {
            PyErr_SetString(PyExc_ArithmeticError, err.c_str());
            return nullptr;
        }
        auto t_assembly = std::chrono::steady_clock::now();
        double certify_wall = std::chrono::duration<double>(t_assembly - t_start).count();
        std::vector<const Certifier*> certs;
        for (auto& w : workers) certs.push_back(w.get());
        // The arrangements' vertices are not read from here on (leaves and output rows have
        // their own copies): freed now, and the pages freed given back to the system, so that
        // the output is not made beside them.
        std::deque<Vertex>().swap(main.verts);
        for (auto& w : workers) std::deque<Vertex>().swap(w->verts);
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        std::vector<LeafRef> order;
        for (const Seg& g : segs)
            for (size_t k = g.lo; k < g.hi; ++k) {
                order.push_back(LeafRef{certs[(size_t)g.cert], &certs[(size_t)g.cert]->leaves[k], (size_t)g.cert});
            }
        // states numbered per level by first appearance in region order (region ri's state of
        // level j: state_ids[ri * L + j]); and the lengths of the output's index data
        const size_t L = (size_t)spec.L;
        std::vector<std::vector<StateNode*>> state_tables(L);
        std::vector<int> state_ids(order.size() * L, -1);
        size_t n_facets = 0, n_fids = 0, n_rverts = 0, n_fverts = 0;
        for (size_t ri = 0; ri < order.size(); ++ri) {
            const LeafRec& lf = *order[ri].leaf;
            for (StateNode* s = lf.node.get(); s; s = s->up.get()) {
                if (s->out < 0) {
                    s->out = (int)state_tables[(size_t)s->level].size();
                    state_tables[(size_t)s->level].push_back(s);
                }
                state_ids[ri * L + (size_t)s->level] = s->out;
            }
            n_facets += lf.frow.size();
            n_fids += lf.fids.size();
            n_rverts += lf.verts.size();
            if (spec.d == 2)
                n_fverts += 2 * lf.frow.size();
            else
                for (const auto& f : lf.fv) n_fverts += f.size();
        }
        // The float trace's patterns (read here, with the GIL; the helper reads the bytes)
        bool traced = proposals != Py_None;
        std::vector<PyObject*> pats;
        if (traced) pats = items(proposals, "proposals");
        Guard gp{pats};
        // per level: the trace's states as rows of `stride` bytes, bits (first unit in the high
        // bit of the first byte, as numpy.packbits) when `bits`, else a byte per unit
        std::vector<const char*> tab((size_t)spec.L);
        std::vector<size_t> stride((size_t)spec.L, 0);
        std::vector<char> bits((size_t)spec.L, 0);
        size_t R = 0;
        if (traced) {
            if ((int)pats.size() != spec.L) throw std::runtime_error("exactrelu._core: one pattern table per level");
            for (int j = 0; j < spec.L; ++j) {
                size_t n = (size_t)spec.levels[(size_t)j].n;
                PyObject* table = nullptr;
                int packed = 0;
                if (!PyArg_ParseTuple(pats[(size_t)j], "Sp", &table, &packed)) throw PyError();
                size_t sj = packed ? (n + 7) / 8 : n;
                size_t len = (size_t)PyBytes_GET_SIZE(table);
                if (j == 0) R = sj ? len / sj : 0;
                if (len != R * sj) throw std::runtime_error("exactrelu._core: pattern tables of different lengths");
                tab[(size_t)j] = PyBytes_AS_STRING(table);
                stride[(size_t)j] = sj;
                bits[(size_t)j] = (char)packed;
            }
        }
        // A helper thread numbers the vertices, compares the trace and finds adjacency and pieces
        // while this one makes the Python objects that need none of that; each stage is waited
        // for where its result is first used.
        std::vector<std::vector<int>> vmap;
        GVerts gv;
        gv.d = spec.d;
        long st_candidates = 0, st_spurious = 0, st_repaired = 0;
        std::vector<std::vector<char>> hit((size_t)spec.L);
        Assembly A;
        std::promise<void> done_verts, done_trace, done_adj;
        double asm_seconds = 0;
        std::thread helper([&]() {
            auto t0 = std::chrono::steady_clock::now();
            int stage = 0;
            try {
                // global vertices, deduplicated exactly, numbered by first appearance in region
                // order; hashed by their coordinates' nearest doubles, which are a function of the
                // exact values (nearest_ratio rounds correctly): equal points have equal doubles,
                // and points whose doubles differ are different (the test that ends most
                // comparisons); points with equal doubles are compared exactly (mpq_equal)
                size_t n_out_verts = 0;
                for (const Certifier* c : certs) {
                    vmap.emplace_back(c->verts_out.size(), -1);
                    n_out_verts += c->verts_out.size();
                }
                {
                    const int d = spec.d;
                    HashIndex vindex(n_out_verts);
                    for (size_t ri = 0; ri < order.size(); ++ri) {
                        std::vector<int>& vm = vmap[order[ri].ci];
                        for (int v : order[ri].leaf->verts) {
                            if (vm[(size_t)v] >= 0) continue;
                            const VertOut& vo = order[ri].cert->verts_out[(size_t)v];
                            uint64_t h = 0;
                            for (int c = 0; c < d; ++c) {
                                uint64_t b;
                                std::memcpy(&b, &vo.f[c], 8);
                                h = mix64(h ^ b);
                            }
                            int id = (int)gv.size();
                            int g = vindex.insert(h, id, [&](int k) {
                                const double* fk = &gv.f[(size_t)k * (size_t)d];
                                for (int c = 0; c < d; ++c)
                                    if (fk[c] != vo.f[c]) return false;
                                for (int c = 0; c < d; ++c)
                                    if (!mpq_equal(gv.at[(size_t)k]->x[c].v, vo.x[c].v)) return false;
                                return true;
                            });
                            if (g == id) {
                                gv.at.push_back(&vo);
                                gv.f.insert(gv.f.end(), vo.f, vo.f + d);
                            }
                            vm[(size_t)v] = g;
                        }
                    }
                }
                done_verts.set_value();
                stage = 1;
                // The float trace's proposals against the certified cells (as certify.py counts
                // them): per certified parent, the trace's children of it (candidates), those
                // that are no certified child (spurious), and the certified children it did not
                // propose (repaired). A proposal found is marked in `hit`, so that the distinct
                // candidates are the states hit and the distinct spurious proposals.
                if (traced) {
                    std::vector<HashIndex> child;  // per level: the certified states by (parent, key)
                    std::vector<std::vector<char>> packed_st((size_t)spec.L);  // certified states as the trace's rows
                    std::vector<std::vector<const char*>> keys((size_t)spec.L);
                    std::vector<std::vector<int>> parents((size_t)spec.L);  // certified states' parents
                    auto parent_of = [&](int j, int k) { return parents[(size_t)j][(size_t)k]; };
                    auto key_hash = [](int parent, const char* key, size_t sj) {
                        return mix64((uint64_t)PKeyHash()(PKey{parent, key, sj}));
                    };
                    for (int j = 0; j < spec.L; ++j) {
                        size_t n = (size_t)spec.levels[(size_t)j].n, sj = stride[(size_t)j];
                        const auto& states = state_tables[(size_t)j];
                        hit[(size_t)j].assign(states.size(), 0);
                        // the trace's rows are bits: a state packed to bits is its own key (the
                        // same layout); else (and for rows of bytes) its key is made here
                        bool made = false;
                        for (size_t k = 0; k < states.size() && !made; ++k)
                            made = bits[(size_t)j] ? states[k]->bits != 1 : true;
                        if (made) {
                            std::vector<char>& pk = packed_st[(size_t)j];
                            pk.assign(states.size() * sj, 0);
                            for (size_t k = 0; k < states.size(); ++k)
                                for (size_t u = 0; u < n; ++u) {
                                    int x = states[k]->at(u);
                                    if (!bits[(size_t)j])
                                        pk[k * sj + u] = (char)x;
                                    else if (x)
                                        pk[k * sj + u / 8] |= (char)(0x80 >> (u % 8));
                                }
                        }
                        std::vector<const char*>& kj = keys[(size_t)j];
                        kj.resize(states.size());
                        parents[(size_t)j].resize(states.size());
                        for (size_t k = 0; k < states.size(); ++k) {
                            kj[k] = made ? packed_st[(size_t)j].data() + k * sj : (const char*)states[k]->st.data();
                            parents[(size_t)j][k] = states[k]->up ? states[k]->up->out : -1;
                        }
                        child.emplace_back(states.size());
                        for (size_t k = 0; k < states.size(); ++k) {  // the first of equal keys stays
                            int par = parent_of(j, (int)k);
                            child.back().insert(key_hash(par, kj[k], sj), (int)k, [&](int o) {
                                return parent_of(j, o) == par && std::memcmp(kj[(size_t)o], kj[k], sj) == 0;
                            });
                        }
                    }
                    // the spurious proposals seen, (parent, row of the trace) by number
                    std::vector<PKey> spurious;
                    HashIndex spurious_index;
                    // per level, the last proposal looked up and what it found (rows of one
                    // parent come together in the trace: most repeat the previous one's)
                    std::vector<const char*> last_key((size_t)spec.L, nullptr);
                    std::vector<int> last_parent((size_t)spec.L, -2), last_found((size_t)spec.L, -1);
                    for (size_t r = 0; r < R; ++r) {
                        int prev = -1;
                        for (int j = 0; j < spec.L; ++j) {
                            size_t sj = stride[(size_t)j];
                            const char* key = tab[(size_t)j] + r * sj;
                            int found;
                            if (last_parent[(size_t)j] == prev && std::memcmp(last_key[(size_t)j], key, sj) == 0) {
                                found = last_found[(size_t)j];  // seen: counted already
                            } else {
                                uint64_t h = key_hash(prev, key, sj);
                                const std::vector<const char*>& kj = keys[(size_t)j];
                                found = child[(size_t)j].find(h, [&](int o) {
                                    return parent_of(j, o) == prev && std::memcmp(kj[(size_t)o], key, sj) == 0;
                                });
                                if (found < 0) {
                                    PKey pk{prev, key, sj};
                                    int id = (int)spurious.size();
                                    if (spurious_index.insert(h, id, [&](int o) { return spurious[(size_t)o] == pk; }) == id)
                                        spurious.push_back(pk);
                                } else {
                                    hit[(size_t)j][(size_t)found] = 1;
                                }
                                last_key[(size_t)j] = key;
                                last_parent[(size_t)j] = prev;
                                last_found[(size_t)j] = found;
                            }
                            if (found < 0) break;  // nothing below a cell that is not certified is a candidate
                            prev = found;
                        }
                    }
                    st_spurious = (long)spurious.size();
                    st_candidates = st_spurious;
                    for (int j = 0; j < spec.L; ++j)
                        for (char h : hit[(size_t)j]) {
                            st_candidates += h;
                            st_repaired += !h;
                        }
                }
                done_trace.set_value();
                stage = 2;
                assemble(order, vmap, gv, spec, A);
                done_adj.set_value();
            } catch (...) {
                std::promise<void>* ps[3] = {&done_verts, &done_trace, &done_adj};
                for (int k = stage; k < 3; ++k) ps[k]->set_exception(std::current_exception());
            }
            asm_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        });
        struct Joiner {
            std::thread& t;
            ~Joiner() { if (t.joinable()) t.join(); }
        } joiner{helper};
        std::future<void> f_verts = done_verts.get_future(), f_trace = done_trace.get_future(),
                          f_adj = done_adj.get_future();
        auto t_output = std::chrono::steady_clock::now();

        // The plain output (index data as int64 bytes, rationals as lists of ints; see
        // exactrelu/engines/compiled.py for its layout),
        // made with the GIL while the helper thread works; each of its stages is waited for
        // where its result is first used.
        Ints I;
        const int d = spec.d, M = spec.d + 1;
        // per op, its distinct states as (bytes, bits), state after state: bits (ceil(n / 8)
        // bytes each, the first unit in the high bit of the first byte, as numpy.packbits) when
        // every state is 0 or 1, else n bytes of int8
        Ref py_states(PyList_New((Py_ssize_t)P.spec.L));
        for (int j = 0; j < P.spec.L; ++j) {
            const auto& tab = state_tables[(size_t)j];
            size_t n = (size_t)P.spec.levels[(size_t)j].n;
            bool two = true;
            for (size_t k = 0; k < tab.size() && two; ++k) {
                if (tab[k]->bits == 1) continue;
                for (size_t u = 0; u < n; ++u)
                    if (tab[k]->at(u) != 0 && tab[k]->at(u) != 1) {
                        two = false;
                        break;
                    }
            }
            size_t sj = two ? (n + 7) / 8 : n;
            Ref buf(PyBytes_FromStringAndSize(nullptr, (Py_ssize_t)(tab.size() * sj)));
            char* out = PyBytes_AS_STRING(buf.p);
            std::memset(out, 0, tab.size() * sj);
            for (size_t k = 0; k < tab.size(); ++k) {
                if (two && tab[k]->bits == 1) {  // the same layout
                    std::memcpy(out + k * sj, tab[k]->st.data(), sj);
                    continue;
                }
                for (size_t u = 0; u < n; ++u) {
                    if (two)
                        out[k * sj + u / 8] |= (char)(tab[k]->at(u) ? 0x80 >> (u % 8) : 0);
                    else
                        out[k * sj + u] = (char)tab[k]->at(u);
                }
            }
            Ref item(Py_BuildValue("(NO)", buf.release(), two ? Py_True : Py_False));
            PyList_SET_ITEM(py_states.p, j, item.release());
        }
        Ref py_state_ids(PyList_New((Py_ssize_t)P.spec.L));
        for (size_t j = 0; j < L; ++j) {
            I64Buf ids(order.size());
            for (size_t ri = 0; ri < order.size(); ++ri) ids.add((long)state_ids[ri * L + j]);
            PyList_SET_ITEM(py_state_ids.p, (Py_ssize_t)j, ids.take());
        }
        // facet rows, numbered certifier by certifier
        std::vector<long> row_base(certs.size() + 1, 0);
        for (size_t ci = 0; ci < certs.size(); ++ci) row_base[ci + 1] = row_base[ci] + (long)certs[ci]->rows_out.size();
        RatList rows((size_t)row_base.back() * (size_t)(d + 1));
        Q rq;
        for (size_t ci = 0; ci < certs.size(); ++ci) {
            for (size_t k = 0; k < certs[ci]->rows_out.size(); ++k) {
                if (k + 4 < certs[ci]->rows_out.size()) {
                    const RowOut& a = certs[ci]->rows_out[k + 4];
                    prefetch_q(a.q.v);
                    for (int i = 0; i <= d; ++i) prefetch_z(a.k[i].v);
                }
                const RowOut& r = certs[ci]->rows_out[k];
                for (int i = 0; i <= d; ++i) {
                    r.get(i, d, rq.v);
                    rows.add(I, rq.v);
                }
            }
        }
        const Level& last = P.spec.levels.back();
        const size_t n_regions = order.size();
        RatList wit(n_regions * (size_t)d), outs(n_regions * (size_t)last.n_out * (size_t)M), vol(n_regions);
        I64Buf f_start(n_regions + 1), f_row(n_facets), fid_start(n_facets + 1), fid_flat(n_fids);
        f_start.add(0L);
        fid_start.add(0L);
        long nf_all = 0, nid_all = 0;
        Q q;
        long den_log2 = log2_if_power(P.spec.out_den.v);
        Z num;
        for (size_t ri = 0; ri < order.size(); ++ri) {
            if (ri + 12 < n_regions) prefetch_lines(order[ri + 12].leaf, sizeof(LeafRec));
            if (ri + 6 < n_regions) {
                const LeafRec& a = *order[ri + 6].leaf;
                for (const void* p : {(const void*)a.w.data(), (const void*)a.frow.data(), (const void*)a.fids.data(),
                                      (const void*)a.fid_end.data(), (const void*)a.out.w.data()})
                    prefetch(p);
                prefetch_q(a.volume.v);
            }
            if (ri + 3 < n_regions)
                for (const Q& x : order[ri + 3].leaf->w) prefetch_q(x.v);
            const LeafRec& lf = *order[ri].leaf;
            for (int i = 0; i < d; ++i) wit.add(I, lf.w[i].v);
            for (size_t k = 0; k < lf.frow.size(); ++k) {
                f_row.add(row_base[order[ri].ci] + (long)lf.frow[k]);
                for (long id : facet_ids(lf, k)) fid_flat.add(id);
                nid_all += (long)facet_ids(lf, k).size();
                fid_start.add(nid_all);
            }
            nf_all += (long)lf.frow.size();
            f_start.add(nf_all);
            for (int r = 0; r < last.n_out; ++r)
                for (int c = 0; c < M; ++c) {
                    lf.out.get((size_t)r * (size_t)M + (size_t)c, num.v);
                    set_ratio(q.v, num.v, P.spec.out_den.v, den_log2);
                    outs.add(I, q.v);
                }
            vol.add(I, lf.volume.v);
        }
        f_verts.get();
        RatList py_verts(gv.size() * (size_t)d);
        for (size_t i = 0; i < gv.size(); ++i) {
            if (i + 12 < gv.size()) prefetch_lines(gv.at[i + 12], sizeof(VertOut));
            if (i + 6 < gv.size()) prefetch(gv[i + 6].x.data());
            if (i + 3 < gv.size())
                for (const Q& x : gv[i + 3].x) prefetch_q(x.v);
            for (int c = 0; c < d; ++c) py_verts.add(I, gv[i].x[c].v);
        }
        I64Buf v_start(n_regions + 1), v_flat(n_rverts), fv_start(n_facets + 1), fv_flat(n_fverts);
        v_start.add(0L);
        fv_start.add(0L);
        long nv_all = 0, nfv_all = 0;
        for (size_t ri = 0; ri < order.size(); ++ri) {
            if (ri + 12 < n_regions) prefetch_lines(order[ri + 12].leaf, sizeof(LeafRec));
            if (ri + 6 < n_regions) prefetch(order[ri + 6].leaf->verts.data());
            const LeafRec& lf = *order[ri].leaf;
            const std::vector<int>& vm = vmap[order[ri].ci];
            const size_t m = lf.verts.size();
            for (size_t k = 0; k < m; ++k) v_flat.add((long)vm[(size_t)lf.verts[k]]);
            nv_all += (long)m;
            v_start.add(nv_all);
            for (size_t k = 0; k < lf.frow.size(); ++k) {
                if (d == 2) {
                    // 2-D: facet k joins the ring's vertices k and k + 1
                    fv_flat.add((long)vm[(size_t)lf.verts[k]]);
                    fv_flat.add((long)vm[(size_t)lf.verts[(k + 1) % m]]);
                    nfv_all += 2;
                } else {
                    for (int pos : lf.fv[k]) fv_flat.add((long)vm[(size_t)lf.verts[(size_t)pos]]);
                    nfv_all += (long)lf.fv[k].size();
                }
                fv_start.add(nfv_all);
            }
        }
        f_trace.get();
        Ref py_repaired(PyBytes_FromStringAndSize(nullptr, (Py_ssize_t)order.size()));  // bool bytes
        for (size_t ri = 0; ri < order.size(); ++ri)
            PyBytes_AS_STRING(py_repaired.p)[ri] =
                traced && !hit[L - 1][(size_t)state_ids[ri * L + L - 1]];
        f_adj.get();
        // adjacency: each plane as (a, b) with the first non-zero entry of a one
        RatList planes(A.planes.size() * (size_t)(d + 1));
        for (const RowOut* r : A.planes) {
            mpz_srcptr lead = nullptr;
            for (int c = 0; c < d && !lead; ++c)
                if (mpz_sgn(r->k[c].v)) lead = r->k[c].v;
            for (int c = 0; c <= d; ++c) {
                mpq_set_num(q.v, r->k[c].v);
                mpq_set_den(q.v, lead);
                mpq_canonicalize(q.v);
                planes.add(I, q.v);
            }
        }
        Ref py_pieces(i64_bytes(A.pieces));
        Ref py_undecided(int_list(A.undecided));
        long n_cells = main.n_cells;
        double seconds[P_N] = {0};
        for (int k = 0; k < P_N; ++k) seconds[k] = main.seconds[k];
        for (const Certifier* c : certs) {
            n_cells += c->n_cells;
            for (int k = 0; k < P_N; ++k) seconds[k] += c->seconds[k];
        }
        Ref secs(PyDict_New());
        for (int k = 0; k < P_N; ++k) {
            Ref v(PyFloat_FromDouble(seconds[k]));
            if (PyDict_SetItemString(secs.p, phase_names[k], v.p) < 0) throw PyError();
        }
        Ref t_wall(PyFloat_FromDouble(certify_wall));
        if (PyDict_SetItemString(secs.p, "certify_wall", t_wall.p) < 0) throw PyError();
        Ref t_asm(PyFloat_FromDouble(asm_seconds));
        if (PyDict_SetItemString(secs.p, "assembly", t_asm.p) < 0) throw PyError();
        helper.join();
        Ref t_py(PyFloat_FromDouble(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_output).count()));
        if (PyDict_SetItemString(secs.p, "output", t_py.p) < 0) throw PyError();
        long n_certified = 0;
        for (auto& t : state_tables) n_certified += (long)t.size();
        Ref counts(Py_BuildValue("{s:l,s:l,s:l,s:l,s:i,s:i,s:l}", "candidates", st_candidates, "confirmed",
                                 n_certified - st_repaired, "spurious", st_spurious, "repaired", st_repaired,
                                 "witness_lp", 0, "redo_hv", 0, "cells", n_cells));
        std::vector<long> limbs;  // per level, the limbs of the maps after it (0: GMP)
        for (const Level& lv : spec.levels) limbs.push_back(lv.K_out);
        Ref py_limbs(int_list(limbs));
        if (PyDict_SetItemString(counts.p, "compiled_limbs", py_limbs.p) < 0) throw PyError();
        Ref o_wit(wit.take()), o_verts(py_verts.take()), o_rows(rows.take()), o_outs(outs.take()),
            o_vol(vol.take()), o_planes(planes.take());
        Ref o_vs(v_start.take()), o_vf(v_flat.take()), o_fs(f_start.take()), o_fr(f_row.take()),
            o_is(fid_start.take()), o_if(fid_flat.take()), o_fvs(fv_start.take()), o_fvf(fv_flat.take()),
            o_rep(py_repaired.release()), o_ai(i64_bytes(A.adj_i)), o_aj(i64_bytes(A.adj_j)),
            o_ap(i64_bytes(A.adj_plane)), o_as(i64_bytes(A.aid_start)), o_af(i64_bytes(A.aid_flat));
        PyObject* result = Py_BuildValue(
            "{s:i,s:i,s:O,s:O,s:O,s:O,s:(OO),s:O,s:O,s:O,s:(OO),s:(OO),s:O,s:O,s:O,s:O,s:O,s:O,s:(OO),"
            "s:O,s:O,s:O,s:O,s:O}",
            "d", d, "n_out", last.n_out, "states", py_states.p, "state_ids", py_state_ids.p,
            "witness", o_wit.p, "vertices", o_verts.p, "region_vertices", o_vs.p, o_vf.p,
            "rows", o_rows.p, "facet_start", o_fs.p, "facet_row", o_fr.p, "facet_ids", o_is.p, o_if.p,
            "facet_vertices", o_fvs.p, o_fvf.p, "outputs", o_outs.p, "volume", o_vol.p,
            "repaired", o_rep.p, "adj_i", o_ai.p, "adj_j", o_aj.p, "adj_plane", o_ap.p,
            "adj_ids", o_as.p, o_af.p, "planes", o_planes.p, "pieces", py_pieces.p,
            "undecided", py_undecided.p, "counts", counts.p,
            "seconds", secs.p);
        if (!result) throw PyError();
        // freeing millions of GMP integers takes a while: a thread of its own does it
        order.clear();
        free_later(keep.release());
        return result;
    } catch (const PyError&) {
        return nullptr;
    } catch (const std::exception& e) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, e.what());
        return nullptr;
    }
}

PyMethodDef methods[] = {
    {"certify2d", certify2d, METH_VARARGS,
     "certify2d(spec, threads, proposals[, report[, max_leaves]]) -> dict of plain data (int64 bytes, lists of ints),\n"
     "or an int when more than max_leaves > 0 regions exist (a lower bound of their number)\n\n"
     "The compiled exact layer for bounded 2-D to 6-D domains and chains of affine layers and\n"
     "elementwise ops; see exactrelu/engines/compiled.py for the spec and the result."},
    {"settle", settle, METH_NOARGS,
     "settle() -> None\n\nWait until the memory of finished certifications is freed (it is freed on threads of\n"
     "their own after certify2d returns; benchmarks call this so that it does not run beside what they time)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "exactrelu._core",
                      "Compiled exact layer (GMP) for 2-D to 6-D domains; used through "
                      "exactrelu.engines.compiled.", -1,
                      methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__core(void) { return PyModule_Create(&module); }
