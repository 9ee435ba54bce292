/* One request's dense score row from a few weighted rows of a sparse matrix: the co-visitation
 * and attribute sources (models/covisit.py, models/attributes.py), each the same floats as the
 * numpy expression it stands for.
 *
 * Both start from the rows of the history's latest items, each scaled by a float32 weight and
 * summed per column in float64 in entry order (np.bincount's sum of float32 products). Where
 * those entries are few (`max_hits` or fewer), the sources take a sparse path instead, so the
 * call returns 1 and writes nothing.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "scratch.h"

/* sum[c] = sum of data[e] * weights[r] (a float32 product) over the entries e of rows[r] in
 * column c, in float64; 1 where there are max_hits entries or fewer, -1 where a row or column
 * is out of range or memory ran out, else 0. */
static int weighted_sum(const int32_t *indptr, const int32_t *indices, const float *data,
                        int64_t n_rows, int64_t n_cols, const int64_t *rows, int64_t n_picked,
                        const float *weights, int64_t max_hits, double *sum) {
    int64_t hits = 0;
    for (int64_t r = 0; r < n_picked; r++) {
        if (rows[r] < 0 || rows[r] >= n_rows) return -1;
        hits += indptr[rows[r] + 1] - indptr[rows[r]];
    }
    if (hits <= max_hits) return 1;
    memset(sum, 0, (size_t)n_cols * sizeof(double));
    for (int64_t r = 0; r < n_picked; r++) {
        float w = weights[r];
        for (int32_t e = indptr[rows[r]]; e < indptr[rows[r] + 1]; e++) {
            int32_t c = indices[e];
            if (c < 0 || c >= n_cols) return -1;
            sum[c] += (double)(data[e] * w);
        }
    }
    return 0;
}

/* -inf at the history's items (ids outside the row are ignored, as a mask would). */
static void exclude(float *out, int64_t n, const int64_t *seen, int64_t n_seen) {
    for (int64_t i = 0; i < n_seen; i++)
        if (seen[i] >= 0 && seen[i] < n) out[seen[i]] = -INFINITY;
}

/* Co-visitation: out (n_items,) = float32(the rows' weighted sum) + popularity, the history at
 * -inf. The matrix is (n_items, n_items). */
int recsys_covisit_row(const int32_t *indptr, const int32_t *indices, const float *data,
                       int64_t n_items, const int64_t *rows, int64_t n_picked,
                       const float *weights, const float *popularity, const int64_t *seen,
                       int64_t n_seen, int64_t max_hits, float *out) {
    double *sum = grow(0, (size_t)n_items * sizeof(double));
    if (!sum) return -1;
    int done = weighted_sum(indptr, indices, data, n_items, n_items, rows, n_picked, weights,
                            max_hits, sum);
    if (done != 0) return done;
    for (int64_t i = 0; i < n_items; i++) out[i] = (float)sum[i] + popularity[i];
    exclude(out, n_items, seen, n_seen);
    return 0;
}

/* The product of attributes_row through the postings (the (n_tokens, n_items) transpose of
 * the item-token matrix): only the items of the profile's tokens are read, token by token in
 * increasing order. Each item's float32 sum then takes its nonzero terms in the order its row
 * stores them (sorted, the caller's condition), and the terms it skips are data * 0: adding a
 * zero leaves a sum that started at +0 unchanged, so the floats are the row-by-row ones. */
static int by_postings(const int32_t *p_indptr, const int32_t *p_indices, const float *p_data,
                       int64_t n_items, int64_t n_tokens, const float *narrow, float *out) {
    memset(out, 0, (size_t)n_items * sizeof(float));
    for (int64_t t = 0; t < n_tokens; t++) {
        float w = narrow[t];
        if (w == 0.0f) continue;
        for (int32_t e = p_indptr[t]; e < p_indptr[t + 1]; e++) {
            int32_t i = p_indices[e];
            if (i < 0 || i >= n_items) return -1;
            out[i] += p_data[e] * w;
        }
    }
    return 0;
}

/* Attributes: the token profile (the item rows' weighted sum, as float32) times the item-token
 * matrix, row by row in float32 as scipy's csr_matvec sums, times the prior; the history at
 * -inf. `reach` (n_tokens,) counts each token's items: the profile's tokens reaching max_hits
 * items or fewer in all make the call return 1. Given its postings (p_indptr not NULL: rows in
 * canonical order, finite data, the caller's checks), where the profile's tokens reach fewer
 * entries than the matrix holds the product runs through them (by_postings), same floats. */
int recsys_attributes_row(const int32_t *indptr, const int32_t *indices, const float *data,
                          int64_t n_items, int64_t n_tokens, const int64_t *reach,
                          const int64_t *rows, int64_t n_picked, const float *weights,
                          const float *prior, const int64_t *seen, int64_t n_seen,
                          int64_t max_hits, const int32_t *p_indptr, const int32_t *p_indices,
                          const float *p_data, float *out) {
    double *profile = grow(0, (size_t)n_tokens * sizeof(double));
    float *narrow = grow(1, (size_t)n_tokens * sizeof(float));
    if (!profile || !narrow) return -1;
    int done = weighted_sum(indptr, indices, data, n_items, n_tokens, rows, n_picked, weights,
                            -1, profile);
    if (done != 0) return done;
    int64_t hits = 0;
    for (int64_t t = 0; t < n_tokens; t++) {
        narrow[t] = (float)profile[t];
        if (profile[t] != 0.0) hits += reach[t];
    }
    if (hits <= max_hits) return 1;
    if (p_indptr && hits < indptr[n_items]) {
        if (by_postings(p_indptr, p_indices, p_data, n_items, n_tokens, narrow, out) != 0)
            return -1;
        for (int64_t i = 0; i < n_items; i++) out[i] *= prior[i];
    } else {
        for (int64_t i = 0; i < n_items; i++) {
            float s = 0.0f;
            for (int32_t e = indptr[i]; e < indptr[i + 1]; e++) s += data[e] * narrow[indices[e]];
            out[i] = s * prior[i];
        }
    }
    exclude(out, n_items, seen, n_seen);
    return 0;
}
