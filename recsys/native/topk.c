/* Top k of a float32 score row, best first, equal scores in id order (models.base.top_n_row,
 * models.base.stable_order_desc, the exact scans' top k).
 *
 * Each score becomes a 64-bit key: its float order flipped into the high 32 bits (-0.0 counted
 * as 0.0, as a comparison does), the item id in the low 32. Keys are distinct, so "the k
 * smallest keys, sorted" is exactly a stable sort's first k, whatever algorithm finds them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "nth.h"

typedef struct {
    uint64_t key;
    int64_t pos; /* where the score sits in the row */
} Entry;

static _Thread_local Entry *pool;
static _Thread_local size_t pool_size;

static inline uint64_t descending(float x) {
    uint32_t bits;
    x += 0.0f; /* -0.0 + 0.0 is 0.0: one key for both zeros */
    memcpy(&bits, &x, sizeof bits);
    /* negative: all bits flipped; positive: the sign bit set (branch-free: signs are random) */
    uint32_t ascending = bits ^ ((uint32_t)((int32_t)bits >> 31) | 0x80000000u);
    return (uint64_t)(0xFFFFFFFFu - ascending) << 32;
}

DEFINE_NTH_LARGEST(nth_largest, float)

/* Room for n entries in the pool (grown, never shrunk); -1 when memory ran out. */
static int reserve(int64_t n) {
    size_t need = (size_t)(n > 0 ? n : 1);
    if (need <= pool_size) return 0;
    Entry *more = realloc(pool, need * sizeof(Entry));
    if (!more) return -1;
    pool = more;
    pool_size = need;
    return 0;
}

static void swap(Entry *a, Entry *b) {
    Entry t = *a;
    *a = *b;
    *b = t;
}

/* Partitions e[lo..hi] (lo < hi) around the median of three: afterwards e[lo..*j] <
 * e[*j+1..*i) (the pivot, in place) < e[*i..hi]. */
static void partition(Entry *e, int64_t lo, int64_t hi, int64_t *i_out, int64_t *j_out) {
    int64_t mid = lo + (hi - lo) / 2;
    if (e[mid].key < e[lo].key) swap(&e[mid], &e[lo]);
    if (e[hi].key < e[lo].key) swap(&e[hi], &e[lo]);
    if (e[hi].key < e[mid].key) swap(&e[hi], &e[mid]);
    uint64_t pivot = e[mid].key;
    int64_t i = lo, j = hi;
    while (i <= j) {
        while (e[i].key < pivot) i++;
        while (pivot < e[j].key) j--;
        if (i <= j) swap(&e[i++], &e[j--]);
    }
    *i_out = i;
    *j_out = j;
}

/* Reorders e[0..n) so that e[0..k) hold its k smallest keys. */
static void select_smallest(Entry *e, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1, target = k - 1;
    if (k <= 0 || k >= n) return;
    while (lo < hi) {
        int64_t i, j;
        partition(e, lo, hi, &i, &j);
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else return;
    }
}

/* Sorts a few entries (24 or fewer, where it beats partitioning). */
static void insertion_sort(Entry *e, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        Entry x = e[i];
        int64_t j = i;
        while (j > 0 && e[j - 1].key > x.key) {
            e[j] = e[j - 1];
            j--;
        }
        e[j] = x;
    }
}

/* Sorts e[0..n) by quickselect at the median, level by level: O(n log n) whatever the input,
 * the fallback of sort_smallest where its partitions go badly. */
static void sort_by_medians(Entry *e, int64_t n) {
    while (n > 24) {
        select_smallest(e, n, n / 2);
        sort_by_medians(e, n / 2);
        e += n / 2;
        n -= n / 2;
    }
    insertion_sort(e, n);
}

/* Reorders e[0..n) so that e[0..m) hold its m smallest keys, sorted: a quicksort that only
 * goes into the parts reaching below m (500 keys sorted in 8.7 us against 13.5 for a select
 * then a sort by medians, measured in C). Past `depth` levels (keys that defeat
 * median-of-three) the rest is sorted by medians, so the worst case stays O(n log n). */
static void sort_smallest(Entry *e, int64_t n, int64_t m, int depth) {
    if (m > n) m = n;
    while (n > 24 && m > 0) {
        if (depth-- <= 0) {
            select_smallest(e, n, m);
            sort_by_medians(e, m);
            return;
        }
        int64_t i, j;
        partition(e, 0, n - 1, &i, &j); /* e[0..j] < the pivot < e[i..n) */
        if (m > i) sort_smallest(e + i, n - i, m - i, depth);
        n = j + 1;
        if (m > n) m = n; /* all of the left part is wanted */
    }
    insertion_sort(e, n);
}

/* Enough levels for any reasonable split: 2 log2(n) + 4. */
static int depth_for(int64_t n) {
    int d = 4;
    while (n > 1) {
        n >>= 1;
        d += 2;
    }
    return d;
}

static int portable_only; /* the tests run both paths (recsys_top_k_portable) */

/* 1: every later call takes the portable loops, as on a CPU without AVX2 (for the tests). */
void recsys_top_k_portable(int on) { portable_only = on; }

/* One pool entry for score i; -1 where its id is negative or does not fit 32 bits. */
static inline int keep(const float *scores, const int64_t *ids, int64_t i, int64_t at) {
    int64_t id = ids ? ids[i] : i;
    if (id < 0 || id > 0xFFFFFFFFll) return -1;
    pool[at].key = descending(scores[i]) | (uint64_t)id;
    pool[at].pos = i;
    return 0;
}

static int64_t at_least_portable(const float *scores, const int64_t *ids, int64_t from,
                                 int64_t n, float bar, int64_t kept) {
    for (int64_t i = from; i < n; i++) {
        if (scores[i] < bar) continue;
        if (keep(scores, ids, i, kept++) != 0) return -1;
    }
    return kept;
}

static int nan_portable(const float *scores, int64_t n) {
    const uint32_t *bits = (const uint32_t *)scores;
    uint32_t nan = 0; /* on the bits, so that the loop vectorizes */
    for (int64_t i = 0; i < n; i++) nan |= (bits[i] & 0x7FFFFFFFu) > 0x7F800000u;
    return nan != 0;
}

#ifdef HAVE_AVX2_PATH
/* at_least_portable, eight scores to a compare: most groups hold none of the ~2k best of a
 * 20k row, and one test skips them (the scalar loop spent most of its time mispredicting). */
__attribute__((target("avx2"))) static int64_t at_least_avx2(const float *scores,
                                                             const int64_t *ids, int64_t n,
                                                             float bar) {
    __m256 limit = _mm256_set1_ps(bar);
    int64_t kept = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        unsigned mask = (unsigned)_mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_loadu_ps(scores + i), limit, _CMP_GE_OQ));
        while (mask) {
            int bit = __builtin_ctz(mask);
            mask &= mask - 1;
            if (keep(scores, ids, i + bit, kept++) != 0) return -1;
        }
    }
    return at_least_portable(scores, ids, i, n, bar, kept);
}

__attribute__((target("avx2"))) static int nan_avx2(const float *scores, int64_t n) {
    return nan_portable(scores, n); /* the same loop, vectorized eight wide */
}

static int avx2(void) { return !portable_only && cpu_has_avx2(); }
#endif

/* The pool holds the scores >= bar (NaN compares false: never kept), in any order; returns
 * how many, or -1 as keep() does. */
static int64_t at_least(const float *scores, const int64_t *ids, int64_t n, float bar) {
#ifdef HAVE_AVX2_PATH
    if (avx2()) return at_least_avx2(scores, ids, n, bar);
#endif
    return at_least_portable(scores, ids, 0, n, bar, 0);
}

static int any_nan(const float *scores, int64_t n) {
#ifdef HAVE_AVX2_PATH
    if (avx2()) return nan_avx2(scores, n);
#endif
    return nan_portable(scores, n);
}

/* n scores (ids[i] the id of scores[i]; NULL: the position is the id, ids below 2**32).
 * Writes the best k as out_ids (int64) and out_scores (float32; NULL: not written), padded
 * with -1 / -inf beyond n; with mask_neginf, a -inf score's id is written as -1. Returns 0,
 * -1 when memory ran out, -2 on a NaN score (the caller's numpy path decides where NaN goes),
 * -3 when an id that could enter the top k is negative or does not fit 32 bits. */
int recsys_top_k(int64_t n, const float *scores, const int64_t *ids, int64_t k, int mask_neginf,
                 int64_t *out_ids, float *out_scores) {
    int64_t m = k < n ? k : n;
    if (reserve(n) != 0) return -1;
    if (any_nan(scores, n)) return -2;
    /* A threshold from a strided sample keeps about 2m entries: far fewer to select among. */
    int64_t kept = 0;
    if (m > 0 && 8 * m < n) {
        int64_t stride = n / (8 * m), samples = 0;
        float *sample = (float *)pool; /* scratch until the threshold is known */
        for (int64_t i = 0; i < n; i += stride) sample[samples++] = scores[i];
        int64_t want = 2 * (m / stride) + 8;
        if (want < samples) {
            float bar = nth_largest(sample, samples, want);
            kept = at_least(scores, ids, n, bar);
            if (kept < 0) return -3;
            if (kept < m) kept = 0; /* too few passed: take the whole row */
        }
    }
    if (kept == 0) {
        for (int64_t i = 0; i < n; i++)
            if (keep(scores, ids, i, i) != 0) return -3;
        kept = n;
    }
    sort_smallest(pool, kept, m, depth_for(kept));
    for (int64_t r = 0; r < m; r++) {
        float s = scores[pool[r].pos];
        if (out_scores) out_scores[r] = s;
        int neginf = s < 0 && s * 0.5f == s; /* -inf: the only negative x with x / 2 == x */
        out_ids[r] = mask_neginf && neginf ? -1 : (int64_t)(pool[r].key & 0xFFFFFFFFu);
    }
    for (int64_t r = m; r < k; r++) {
        out_ids[r] = -1;
        if (out_scores) out_scores[r] = -__builtin_inff();
    }
    return 0;
}

/* Sorts entries 0..n-1 of `grid` best first, equal values in position order, into order[]. */
static void order_of(const float *grid, int64_t n, int64_t *order) {
    for (int64_t i = 0; i < n; i++) {
        pool[i].key = descending(grid[i]) | (uint64_t)i;
        pool[i].pos = i;
    }
    sort_smallest(pool, n, n, depth_for(n));
    for (int64_t r = 0; r < n; r++) order[r] = pool[r].pos;
}

/* One request's ranked list (recsys.ranking.ranker.rank's reorder, after blend_scores where
 * weight > 0). slots_ids (n,) are the merged list's ids, -1 for an empty slot; row_scores the
 * ranker's scores of the filled slots, in slot order. The grid holds each slot's score (-inf
 * where empty). With weight > 0 each filled slot's score becomes, in float64 then float32,
 *     (1 - weight) / (k + 1 + its rank in the grid's order) + weight / (k + 1 + slot)
 * (k = damping). The grid's order, best first and equal scores by slot, is written to
 * out_order, with its ids and scores. Returns 0, -1 when memory ran out, -2 on a NaN score or
 * a list too long for the sort keys (the numpy path decides those). */
int recsys_blend_order(int64_t n, const int64_t *slot_ids, const float *row_scores,
                       double weight, double damping, int64_t *out_order, int64_t *out_ids,
                       float *out_scores) {
    if (n > 0xFFFFFFFFll) return -2;
    if (reserve(n) != 0) return -1;
    float *grid = out_scores; /* built in place, then read back in order */
    int64_t j = 0;
    for (int64_t s = 0; s < n; s++) {
        if (slot_ids[s] >= 0) {
            float v = row_scores[j++];
            if (v != v) return -2;
            grid[s] = v;
        } else {
            grid[s] = -__builtin_inff();
        }
    }
    order_of(grid, n, out_order);
    if (weight > 0.0) {
        double keep = 1.0 - weight, base = damping + 1.0;
        for (int64_t r = 0; r < n; r++) {
            int64_t s = out_order[r];
            if (slot_ids[s] >= 0)
                grid[s] = (float)(keep / (base + (double)r) + weight / (base + (double)s));
        }
        order_of(grid, n, out_order);
    }
    float *scores = (float *)out_ids; /* out_ids as scratch for the grid, before the ids */
    memcpy(scores, grid, (size_t)n * sizeof(float));
    for (int64_t r = 0; r < n; r++) out_scores[r] = scores[out_order[r]];
    for (int64_t r = 0; r < n; r++) out_ids[r] = slot_ids[out_order[r]];
    return 0;
}
