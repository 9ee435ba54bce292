/* The LightGBM ranker's input matrix from a ranking frame (models.lgbm_ranker._columns), in one
 * pass: the dense columns, then the kept sparse codes as float32; NaN and -inf become
 * `missing`, +inf becomes -missing (LightGBM's missing-value stand-ins); then every value is
 * rounded half to even to 24 - drop significant bits on its bit pattern. The same bits as the
 * numpy path: the same casts, the same integer rounding.
 */
#include <stdint.h>
#include <string.h>

void recsys_ranker_columns(int64_t n, int64_t d, int64_t s, const float *dense,
                           const int64_t *sparse, int64_t k, const int64_t *keep, float missing,
                           int drop, float *x) {
    int64_t width = d + k;
    uint32_t half = (1u << (drop - 1)) - 1u, mask = 0xFFFFFFFFu ^ ((1u << drop) - 1u);
    for (int64_t r = 0; r < n; r++) {
        float *out = x + r * width;
        memcpy(out, dense + r * d, (size_t)d * sizeof(float));
        for (int64_t j = 0; j < k; j++) out[d + j] = (float)sparse[r * s + keep[j]];
        for (int64_t j = 0; j < width; j++) {
            float v = out[j];
            if (v != v) v = missing;
            else if (v > 3.402823466e38f) v = -missing;
            else if (v < -3.402823466e38f) v = missing;
            uint32_t u;
            memcpy(&u, &v, sizeof u);
            u += half + ((u >> drop) & 1u);
            u &= mask;
            memcpy(&out[j], &u, sizeof u);
        }
    }
}
