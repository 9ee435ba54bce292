/* Which vectors can make a query's exact inner-product top k, found from an int8 copy.
 *
 * Each vector y_j is kept as int8 codes c_j with a scale s_j (y_j ~ s_j c_j) and the exact
 * length of what the codes miss, r_j = |y_j - s_j c_j|. The query q is coded the same way
 * (q ~ t p, miss m = |q - t p|). Then, exactly,
 *
 *     q . y_j = t s_j (p . c_j) + (q - t p) . y_j + t p . (y_j - s_j c_j)
 *
 * and the last two terms are at most m |y_j| and t |p| r_j (Cauchy-Schwarz). p . c_j is an
 * integer sum (exact, and vectorized). So every vector gets an interval
 * [lo_j, hi_j] that holds its exact score, and the float32 score faiss computes for it too (a
 * tolerance covers that rounding). With T the k-th largest lo_j, at least k vectors score T or
 * more, so one whose hi_j is below T cannot make the top k whatever the order of ties: only the
 * others (a few hundred more than k on ALS factors) need their exact score.
 *
 * The vectors come by decreasing length |y_j|: once |q| |y_j| is below the k-th largest lo of
 * the first block, no later vector can reach it, and the scan stops there.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "nth.h"
#include "scratch.h"

#define CODE_MAX 127
/* float32 rounding of a d-term inner product is below d 2^-24 |q| |y|; this covers it, and the
 * float64 rounding of the bounds, many times over */
#define TOLERANCE 1e-4
#define STOP_MARGIN 1e-3 /* the early stop's slack on |q| |y|, as models/flat_scan.py's */

DEFINE_NTH_LARGEST(nth_largest, double)

/* out[j] = p . c_j for n vectors of d int8 codes (p widened to int16): exact in int32 for
 * d <= INT32_MAX / 127^2 (the caller checks). */
static void dots_portable(const int16_t *restrict p, const int8_t *restrict codes, int64_t n,
                          int64_t d, int32_t *restrict out) {
    for (int64_t j = 0; j < n; j++) {
        const int8_t *c = codes + j * d;
        int32_t sum = 0;
        for (int64_t i = 0; i < d; i++) sum += (int32_t)p[i] * c[i];
        out[j] = sum;
    }
}

#ifdef HAVE_AVX2_PATH
/* dots_portable with AVX2: 16 codes widened to int16 and multiplied-and-paired in two
 * instructions (four times the compiler's own vectorization of the loop above). */
__attribute__((target("avx2"))) static void dots_avx2(const int16_t *restrict p,
                                                      const int8_t *restrict codes, int64_t n,
                                                      int64_t d, int32_t *restrict out) {
    int64_t wide = d & ~(int64_t)15;
    for (int64_t j = 0; j < n; j++) {
        const int8_t *c = codes + j * d;
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
        int64_t i = 0;
        for (; i + 32 <= wide; i += 32) {
            __m256i c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
            __m256i c1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c + i + 16)));
            __m256i p0 = _mm256_loadu_si256((const __m256i *)(p + i));
            __m256i p1 = _mm256_loadu_si256((const __m256i *)(p + i + 16));
            even = _mm256_add_epi32(even, _mm256_madd_epi16(c0, p0));
            odd = _mm256_add_epi32(odd, _mm256_madd_epi16(c1, p1));
        }
        for (; i < wide; i += 16) {
            __m256i c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
            __m256i p0 = _mm256_loadu_si256((const __m256i *)(p + i));
            even = _mm256_add_epi32(even, _mm256_madd_epi16(c0, p0));
        }
        even = _mm256_add_epi32(even, odd);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(even), _mm256_extracti128_si256(even, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        int32_t sum = _mm_cvtsi128_si32(s);
        for (; i < d; i++) sum += (int32_t)p[i] * c[i];
        out[j] = sum;
    }
}
#endif

/* Integer sums are exact, so both paths give the same dots. */
static void dots(const int16_t *p, const int8_t *codes, int64_t n, int64_t d, int32_t *out) {
#ifdef HAVE_AVX2_PATH
    if (cpu_has_avx2()) {
        dots_avx2(p, codes, n, d, out);
        return;
    }
#endif
    dots_portable(p, codes, n, d, out);
}

/* The dots of one path, for the tests: `wide` 1 the AVX2 one, 0 the portable one; returns -1
 * where the path is not built or the CPU lacks it. */
int recsys_prefilter_dots(int wide, const int16_t *p, const int8_t *codes, int64_t n, int64_t d,
                          int32_t *out) {
    if (!wide) {
        dots_portable(p, codes, n, d, out);
        return 0;
    }
#ifdef HAVE_AVX2_PATH
    if (cpu_has_avx2()) {
        dots_avx2(p, codes, n, d, out);
        return 0;
    }
#endif
    return -1;
}

/* Codes, scales and misses of n vectors (n, d) float32, for recsys_prefilter. A zero vector
 * gets scale 1 and zero codes. */
void recsys_prefilter_codes(int64_t n, int64_t d, const float *vectors, int8_t *codes,
                            double *scale, double *miss) {
    for (int64_t j = 0; j < n; j++) {
        const float *y = vectors + j * d;
        int8_t *c = codes + j * d;
        double top = 0.0;
        for (int64_t i = 0; i < d; i++) top = fmax(top, fabs((double)y[i]));
        double s = top > 0.0 ? top / CODE_MAX : 1.0;
        double lost = 0.0;
        for (int64_t i = 0; i < d; i++) {
            double code = fmin(fmax(nearbyint(y[i] / s), -CODE_MAX), CODE_MAX);
            double e = (double)y[i] - s * code;
            c[i] = (int8_t)code;
            lost += e * e;
        }
        scale[j] = s;
        miss[j] = sqrt(lost);
    }
}

typedef struct {
    const int16_t *codes; /* p, widened */
    double t;             /* q ~ t p */
    double miss;          /* |q - t p| */
    double coded;         /* |t p| */
    double length;        /* |q| */
} Query;

/* The query's codes (in scratch slot 0); -1 where it is zero or not finite, or has too many
 * dimensions for an exact int32 dot. */
static int code_query(const float *query, int64_t d, Query *q) {
    if (d < 1 || d > INT32_MAX / (CODE_MAX * CODE_MAX)) return -1;
    double top = 0.0, length2 = 0.0;
    for (int64_t i = 0; i < d; i++) {
        double v = query[i];
        if (!isfinite(v)) return -1;
        top = fmax(top, fabs(v));
        length2 += v * v;
    }
    int16_t *p = grow(0, (size_t)d * sizeof(int16_t));
    if (top == 0.0 || !p) return -1;
    double t = top / CODE_MAX, lost = 0.0, coded2 = 0.0;
    for (int64_t i = 0; i < d; i++) {
        double code = fmin(fmax(nearbyint(query[i] / t), -CODE_MAX), CODE_MAX);
        double e = (double)query[i] - t * code;
        p[i] = (int16_t)code;
        lost += e * e;
        coded2 += code * code;
    }
    q->codes = p;
    q->t = t;
    q->miss = sqrt(lost);
    q->coded = t * sqrt(coded2);
    q->length = sqrt(length2);
    return 0;
}

/* Each vector's interval [lo, hi] around t s_j dot_j, for vectors [from, to). */
static void bounds(int64_t from, int64_t to, double t, double m, double coded, double length,
                   const double *scale, const double *miss, const double *lengths,
                   const int32_t *dot, double *lo, double *hi) {
    for (int64_t j = from; j < to; j++) {
        double centre = t * scale[j] * (double)dot[j];
        double width = (m * lengths[j] + coded * miss[j]) * (1.0 + 1e-6)
                       + TOLERANCE * length * lengths[j];
        lo[j] = centre - width;
        hi[j] = centre + width;
    }
}

/* Every vector's interval, for the tests; -1 where the query is declined. */
int recsys_prefilter_bounds(int64_t n, int64_t d, const int8_t *codes, const double *scale,
                            const double *miss, const double *lengths, const float *query,
                            double *lo, double *hi) {
    Query q;
    int32_t *dot = grow(1, (size_t)n * sizeof(int32_t));
    if (!dot || code_query(query, d, &q) != 0) return -1;
    dots(q.codes, codes, n, d, dot);
    bounds(0, n, q.t, q.miss, q.coded, q.length, scale, miss, lengths, dot, lo, hi);
    return 0;
}

/* Positions (increasing, into the length order) of the vectors that can make the top k of
 * `query` (d,) float32, written to `out` (n,); returns how many, or -1 where it declines (a
 * query that is zero or not finite, k outside [1, first], first > n, too many dimensions, no
 * memory). `lengths` (n,) are the |y_j|, decreasing; `first` (>= k) vectors are always read. */
int64_t recsys_prefilter(int64_t n, int64_t d, const int8_t *codes, const double *scale,
                         const double *miss, const double *lengths, const float *query,
                         int64_t k, int64_t first, int64_t *out) {
    if (k < 1 || first < k || first > n) return -1;
    Query q;
    int32_t *dot = grow(1, (size_t)n * sizeof(int32_t));
    double *lo = grow(2, (size_t)n * sizeof(double));
    double *hi = grow(3, (size_t)n * sizeof(double));
    double *kth = grow(4, (size_t)n * sizeof(double));
    if (!dot || !lo || !hi || !kth || code_query(query, d, &q) != 0) return -1;
    const int16_t *p = q.codes;
    double t = q.t, m = q.miss, coded = q.coded, length = q.length;

    /* the first block's k-th largest lower end, the bar: k vectors score at least that, and a
     * vector shorter than bar / |q| cannot; the vectors come longest first */
    dots(p, codes, first, d, dot);
    bounds(0, first, t, m, coded, length, scale, miss, lengths, dot, lo, hi);
    memcpy(kth, lo, (size_t)first * sizeof(double));
    double bar = nth_largest(kth, first, k - 1);
    int64_t stop = n;
    if (bar > 0.0) { /* |q . y| <= |q| |y|: the first vector too short to reach it */
        int64_t a = first, b = n;
        while (a < b) {
            int64_t mid = a + (b - a) / 2;
            if (length * lengths[mid] * (1.0 + STOP_MARGIN) < bar) b = mid;
            else a = mid + 1;
        }
        stop = a;
    }
    dots(p, codes + first * d, stop - first, d, dot + first);
    bounds(first, stop, t, m, coded, length, scale, miss, lengths, dot, lo, hi);
    /* the k-th largest lower end of all read; it is at least the bar, which k of the first
     * block reach, so only lower ends at the bar or above take part */
    int64_t above = 0;
    for (int64_t j = 0; j < stop; j++) { /* branch-free: which vectors pass is unpredictable */
        kth[above] = lo[j];
        above += lo[j] >= bar;
    }
    double bound = nth_largest(kth, above, k - 1);
    int64_t count = 0;
    for (int64_t j = 0; j < stop; j++) {
        out[count] = j;
        count += hi[j] >= bound;
    }
    return count;
}
