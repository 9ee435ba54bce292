/* The history-match columns of the ranking frame (recsys.ranking.features.build_frame), for
 * every request of a batch in one call: history length, the shares of the history in the
 * candidate's leaf category, top category and brand, whether the latest item shares the leaf
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
