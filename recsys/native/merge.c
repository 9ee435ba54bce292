/* The merge of per-source candidate lists, row by row (recsys.retrieval.merge.merge).
 *
 * The same answer as the numpy path, bit for bit: the reciprocal-rank sums add the same float64
 * terms in the same source order (compiled with -ffp-contract=off, so no fused multiply-add),
 * ties go to the lower item id, and a source listing an item twice keeps its best rank and that
 * rank's score. Candidates are numbered in increasing id order; the fill is a selection by
 * (key, number) and the final order a stable radix sort, so equal keys keep id order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scratch.h"

/* A key whose unsigned order is the double's order (ascending), +0.0 and -0.0 alike. */
static inline uint64_t ordered(double x) {
    uint64_t bits;
    if (x == 0.0) x = 0.0;
    memcpy(&bits, &x, sizeof bits);
    return (bits >> 63) ? ~bits : bits | 0x8000000000000000ull;
}

/* Stable LSD radix sort of idx[0..n) by key[idx] ascending; bytes all keys share are skipped. */
static void radix_sort(int32_t *idx, int32_t *tmp, uint64_t *key, uint64_t *key_tmp, int64_t n) {
    static _Thread_local int64_t count[8][256];
    memset(count, 0, sizeof count);
    for (int64_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) count[b][(key[i] >> (8 * b)) & 0xff]++;
    for (int b = 0; b < 8; b++) {
        int64_t *c = count[b];
        if (n == 0 || c[(key[0] >> (8 * b)) & 0xff] == n) continue; /* one bucket: no move */
        int64_t start = 0;
        for (int v = 0; v < 256; v++) {
            int64_t here = c[v];
            c[v] = start;
            start += here;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t at = c[(key[i] >> (8 * b)) & 0xff]++;
            tmp[at] = idx[i];
            key_tmp[at] = key[i];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
        memcpy(key, key_tmp, (size_t)n * sizeof *key);
    }
}

typedef struct {
    uint64_t key;
    int64_t c;
} Pair;

static inline int before(Pair a, Pair b) { return a.key < b.key || (a.key == b.key && a.c < b.c); }

/* Reorders p[0..n) so that p[0..k) are its k smallest pairs (keys are unique: a key, then c). */
static void select_smallest(Pair *p, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1, target = k - 1;
    if (k <= 0 || k >= n) return;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        Pair a = p[lo], b = p[mid], c = p[hi], pivot; /* median of three */
        if (before(a, b)) pivot = before(b, c) ? b : (before(a, c) ? c : a);
        else pivot = before(a, c) ? a : (before(b, c) ? c : b);
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (before(p[i], pivot)) i++;
            while (before(pivot, p[j])) j--;
            if (i <= j) {
                Pair t = p[i];
                p[i++] = p[j];
                p[j--] = t;
            }
        }
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else return;
    }
}

/* Returns 0, or -1 when scratch memory could not be had (the caller falls back to numpy).
 *
 * all_ids (B, E) int64, -1 = empty entry; all_scores (B, E) float32; entry_src, entry_rank (E,)
 * the source and 1-based rank of each entry; terms (S, M1) float64 w_s / (60 + rank), 0 at
 * column 0; quota (S,); fill_w (S,) float64 or NULL (fill by the fused order); log_rank (S, M1)
 * float64 log(rank), log(2 * width_s) at column 0; width = largest id + 1.
 * Outputs, pre-filled by the caller (-1, 0, NaN, 0): ids (B, T) int64, fused (B, T) float32,
 * src_scores (B, T, S) float32, src_ranks (B, T, S) int32.
 */
int recsys_merge(int64_t B, int64_t E, int64_t S, int64_t M1, int64_t T, int64_t width,
                 const int64_t *all_ids, const float *all_scores, const int64_t *entry_src,
                 const int64_t *entry_rank, const double *terms, const int64_t *quota,
                 const double *fill_w, const double *log_rank, int64_t *ids, float *fused,
                 float *src_scores, int32_t *src_ranks) {
    size_t e1 = (size_t)(E > 0 ? E : 1), words = (size_t)(width / 64 + 1);
    uint64_t *seen = grow(0, words * sizeof(uint64_t));
    int32_t *where = grow(1, (size_t)(width > 0 ? width : 1) * sizeof(int32_t));
    int64_t *items = grow(2, e1 * sizeof(int64_t));
    int32_t *ranks = grow(3, (size_t)S * e1 * sizeof(int32_t));
    float *scores = grow(4, (size_t)S * e1 * sizeof(float));
    double *rrf = grow(5, e1 * sizeof(double));
    uint8_t *chosen = grow(6, e1);
    int32_t *order = grow(7, 2 * e1 * sizeof(int32_t));
    uint64_t *key = grow(8, 2 * e1 * sizeof(uint64_t));
    Pair *free_pairs = grow(9, e1 * sizeof(Pair));
    if (!seen || !where || !items || !ranks || !scores || !rrf || !chosen || !order || !key ||
        !free_pairs)
        return -1;
    memset(seen, 0, words * sizeof(uint64_t));
    for (int64_t row = 0; row < B; row++) {
        const int64_t *rid = all_ids + row * E;
        const float *rsc = all_scores + row * E;
        int64_t lo = width, hi = -1;
        for (int64_t e = 0; e < E; e++) {
            int64_t id = rid[e];
            if (id < 0) continue;
            seen[id >> 6] |= 1ull << (id & 63);
            lo = id < lo ? id : lo;
            hi = id > hi ? id : hi;
        }
        if (hi < 0) continue;
        int64_t C = 0; /* the distinct ids, increasing */
        for (int64_t w = lo >> 6; w <= hi >> 6; w++) {
            uint64_t bits = seen[w];
            seen[w] = 0;
            while (bits) {
                int64_t id = (w << 6) + __builtin_ctzll(bits);
                bits &= bits - 1;
                where[id] = (int32_t)C;
                items[C++] = id;
            }
        }
        memset(ranks, 0, (size_t)(S * C) * sizeof(int32_t));
        for (int64_t e = 0; e < E; e++) {
            int64_t id = rid[e];
            if (id < 0) continue;
            int64_t cell = entry_src[e] * C + where[id];
            int32_t rank = (int32_t)entry_rank[e];
            if (ranks[cell] == 0 || rank < ranks[cell]) {
                ranks[cell] = rank;
                scores[cell] = rsc[e];
            }
        }
        int64_t n_chosen = 0;
        for (int64_t c = 0; c < C; c++) rrf[c] = 0.0;
        memset(chosen, 0, (size_t)C);
        for (int64_t s = 0; s < S; s++) { /* source by source: numpy's order of the sums */
            const int32_t *r = ranks + s * C;
            const double *t = terms + s * M1;
            for (int64_t c = 0; c < C; c++) {
                rrf[c] += t[r[c]];
                chosen[c] |= r[c] > 0 && r[c] <= quota[s];
            }
        }
        for (int64_t c = 0; c < C; c++) n_chosen += chosen[c];
        int64_t shortfall = T - n_chosen;
        if (shortfall > 0) {
            /* the fill: of the free candidates, those with the lowest weighted log-rank, or
               (no fill weights) the best fused score; ties to the lower id */
            int64_t F = 0;
            for (int64_t c = 0; c < C; c++) {
                if (chosen[c]) continue;
                double v;
                if (fill_w != NULL) {
                    v = (double)c * 1e-9;
                    for (int64_t s = 0; s < S; s++)
                        if (fill_w[s] != 0.0) v += fill_w[s] * log_rank[s * M1 + ranks[s * C + c]];
                    free_pairs[F].key = ordered(v);
                } else {
                    free_pairs[F].key = ~ordered(rrf[c]);
                }
                free_pairs[F++].c = c;
            }
            select_smallest(free_pairs, F, shortfall);
            for (int64_t f = 0; f < F && f < shortfall; f++) chosen[free_pairs[f].c] = 1;
        }
        /* the picked candidates by fused score, best first (ties: lower id) */
        int64_t P = 0;
        for (int64_t c = 0; c < C; c++) {
            if (!chosen[c]) continue;
            order[P] = (int32_t)c;
            key[P++] = ~ordered(rrf[c]);
        }
        radix_sort(order, order + e1, key, key + e1, P);
        int64_t n = 0;
        for (int64_t i = 0; i < P && n < T; i++) {
            int32_t c = order[i];
            int64_t slot = row * T + n;
            ids[slot] = items[c];
            fused[slot] = (float)rrf[c];
            for (int64_t s = 0; s < S; s++) {
                int32_t r = ranks[s * C + c];
                src_ranks[slot * S + s] = r;
                if (r > 0) src_scores[slot * S + s] = scores[s * C + c];
            }
            n++;
        }
    }
    return 0;
}
