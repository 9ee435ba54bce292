/* The ranking frame (recsys.ranking.features.build_frame), every request of a batch in one call.
 *
 * recsys_frame_rows: the columns that come from the candidates and the stored features: each
 * source's reciprocal rank and score, the fused score, position and source count, the item and
 * user features, and the sparse codes.
 *
 * recsys_history_context: the history-match columns: history length, the shares of the history
 * in the candidate's leaf category, top category and brand, whether the latest item shares the leaf
 * category or brand, how recently the history was there, and the candidate's price against the
 * history's median price. The same float32 (and float64, for recency) operations as numpy's, in
 * the same order, so the same bits.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scratch.h"

static int by_value(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* indptr (B+1): each request's history in hist_codes (H, 3) int64 and hist_price (H,); rows
 * starts[b]..ends[b] of cand_codes (R, 3) int64, cand_price (R,) and context (R, ncols) float32,
 * `stride` floats from one context row to the next. Columns 3..9 are written (10 and 11 with
 * recency); the caller has zeroed columns 3 onwards. Returns 0, -1 for a negative code or
 * too few columns (the numpy path then reports it), -2 when memory ran out. */
int recsys_history_context(int64_t B, const int64_t *indptr, const int64_t *hist_codes,
                           const float *hist_price, const int64_t *starts, const int64_t *ends,
                           const int64_t *cand_codes, const float *cand_price, const int64_t *card,
                           int recency, float *context, int64_t stride, int64_t ncols) {
    if (ncols < (recency ? 12 : 10)) return -1;
    int64_t most = 1, longest = 1;
    for (int j = 0; j < 3; j++) most = card[j] > most ? card[j] : most;
    for (int64_t b = 0; b < B; b++)
        longest = indptr[b + 1] - indptr[b] > longest ? indptr[b + 1] - indptr[b] : longest;
    int64_t *counts = grow(0, (size_t)most * sizeof(int64_t));
    int64_t *latest = grow(1, (size_t)most * sizeof(int64_t));
    float *known = grow(2, (size_t)longest * sizeof(float));
    if (!counts || !latest || !known) return -2;
    for (int64_t b = 0; b < B; b++) {
        int64_t lo = starts[b], hi = ends[b], h0 = indptr[b], L = indptr[b + 1] - h0;
        if (lo == hi) continue;
        for (int64_t r = lo; r < hi; r++) context[r * stride + 3] = (float)L;
        if (L == 0) {
            for (int64_t r = lo; r < hi; r++) context[r * stride + 9] = NAN;
            continue;
        }
        for (int64_t i = 0; i < L; i++)
            for (int j = 0; j < 3; j++)
                if (hist_codes[(h0 + i) * 3 + j] < 0) return -1;
        for (int64_t r = lo; r < hi; r++)
            for (int j = 0; j < 3; j++)
                if (cand_codes[r * 3 + j] < 0) return -1;
        for (int j = 0; j < 3; j++) {
            int64_t top = card[j] - 1;
            for (int64_t c = 0; c <= top; c++) counts[c] = 0, latest[c] = -1;
            for (int64_t i = 0; i < L; i++) {
                int64_t code = hist_codes[(h0 + i) * 3 + j];
                code = code < top ? code : top;
                counts[code]++;
                latest[code] = i; /* increasing i: the last write is the latest */
            }
            counts[0] = 0; /* unknown codes match nothing */
            int64_t last = hist_codes[(h0 + L - 1) * 3 + j];
            for (int64_t r = lo; r < hi; r++) {
                int64_t own = cand_codes[r * 3 + j], at = own < top ? own : top;
                float *row = context + r * stride;
                row[4 + j] = (float)counts[at] / (float)L;
                if (j == 1) continue; /* the top category has no latest-item columns */
                row[j == 0 ? 7 : 8] = (own == last && last > 0) ? 1.0f : 0.0f;
                if (recency) {
                    int64_t pos = latest[at];
                    row[j == 0 ? 10 : 11] =
                        (pos >= 0 && own > 0) ? (float)(1.0 / (double)(L - pos)) : 0.0f;
                }
            }
        }
        int64_t n = 0;
        for (int64_t i = 0; i < L; i++)
            if (isfinite(hist_price[h0 + i])) known[n++] = hist_price[h0 + i];
        float band = 0.0f;
        if (n) {
            qsort(known, (size_t)n, sizeof(float), by_value);
            band = n % 2 ? known[n / 2] : (known[n / 2 - 1] + known[n / 2]) / 2.0f;
        }
        for (int64_t r = lo; r < hi; r++)
            context[r * stride + 9] = band > 0.0f ? cand_price[r] / band : NAN;
    }
    return 0;
}

/* Rows r = 0..R-1 are candidate slot (b_idx[r], slot[r]) of batch (B, N) with S sources; b_idx
 * is sorted. From ranks (B, N, S) int32, scores (B, N, S) and fused (B, N) float32, item_feats
 * (R, F_item) and user_feats (B, F_user) float32, this writes, as build_frame's numpy lines do:
 * - dense (R, D) columns 0..2S-1, each source's reciprocal rank (0 where not found) and score,
 *   then from column `item_at` the item features and the user's;
 * - context (`stride` floats a row, `ncols` columns): the fused score, slot / N and how many
 *   sources found it in columns 0..2, zeros in the rest;
 * - cand_codes (R, 3) int64: item feature columns code_cols[0..2], NaN -> 0, truncated;
 * - sparse (R, 4) int64: items + 1, then the codes, each clipped to [0, card[j] - 1];
 * - starts, ends (B,): each request's rows.
 * Returns 0, or -1 where it declines before writing anything (a layout that does not add up, an
 * index out of range, unsorted b_idx, a code that is infinite or past int64): the numpy path
 * then runs and reports what is wrong. */
int recsys_frame_rows(int64_t R, int64_t B, int64_t N, int64_t S, const int64_t *b_idx,
                      const int64_t *slot, const int64_t *items, const int32_t *ranks,
                      const float *scores, const float *fused, int64_t F_item,
                      const float *item_feats, int64_t F_user, const float *user_feats,
                      const int64_t *code_cols, const int64_t *card, float *dense, int64_t D,
                      int64_t item_at, float *context, int64_t stride, int64_t ncols,
                      int64_t *sparse, int64_t *cand_codes, int64_t *starts, int64_t *ends) {
    if (ncols < 3 || 2 * S > item_at || item_at + F_item + F_user != D) return -1;
    for (int j = 0; j < 3; j++)
        if (code_cols[j] < 0 || code_cols[j] >= F_item) return -1;
    for (int64_t r = 0; r < R; r++) {
        if (b_idx[r] < 0 || b_idx[r] >= B || slot[r] < 0 || slot[r] >= N) return -1;
        if (r && b_idx[r] < b_idx[r - 1]) return -1;
        for (int j = 0; j < 3; j++) {
            float v = item_feats[r * F_item + code_cols[j]];
            if (v == v && !(v > -9.2e18f && v < 9.2e18f)) return -1;
        }
    }
    double width = (double)(N > 1 ? N : 1);
    for (int64_t r = 0; r < R; r++) {
        int64_t at = b_idx[r] * N + slot[r];
        const int32_t *rank = ranks + at * S;
        const float *score = scores + at * S;
        float *row = dense + r * D, *ctx = context + r * stride;
        int found = 0;
        for (int64_t s = 0; s < S; s++) {
            float rk = (float)rank[s];
            row[2 * s] = rk > 0.0f ? 1.0f / (rk > 1.0f ? rk : 1.0f) : 0.0f;
            row[2 * s + 1] = score[s];
            found += rk > 0.0f;
        }
        for (int64_t c = 3; c < ncols; c++) ctx[c] = 0.0f;
        ctx[0] = fused[at];
        ctx[1] = (float)((double)slot[r] / width);
        ctx[2] = (float)found;
        memcpy(row + item_at, item_feats + r * F_item, (size_t)F_item * sizeof(float));
        memcpy(row + item_at + F_item, user_feats + b_idx[r] * F_user,
               (size_t)F_user * sizeof(float));
        int64_t *codes = cand_codes + r * 3, *sp = sparse + r * 4;
        for (int j = 0; j < 3; j++) {
            float v = item_feats[r * F_item + code_cols[j]];
            codes[j] = v != v ? 0 : (int64_t)v;
            int64_t c = codes[j] > 0 ? codes[j] : 0;
            sp[1 + j] = c < card[1 + j] - 1 ? c : card[1 + j] - 1;
        }
        sp[0] = items[r] + 1 < card[0] - 1 ? items[r] + 1 : card[0] - 1;
    }
    int64_t r = 0;
    for (int64_t b = 0; b < B; b++) {
        starts[b] = r;
        while (r < R && b_idx[r] == b) r++;
        ends[b] = r;
    }
    return 0;
}
