/* The r-th largest (0-based) of f[0..n), n > r, by quickselect (Hoare partition); reorders f.
 * DEFINE_NTH_LARGEST(name, T) defines `static T name(T *f, int64_t n, int64_t r)` for a real
 * type T, so each kernel gets the one it needs (topk.c on floats, prefilter.c on doubles). */
#ifndef RECSYS_NTH_H
#define RECSYS_NTH_H
#include <stdint.h>

#define DEFINE_NTH_LARGEST(name, T)                                                             \
    static T name(T *f, int64_t n, int64_t r) {                                                 \
        int64_t lo = 0, hi = n - 1;                                                             \
        while (lo < hi) {                                                                       \
            T pivot = f[lo + (hi - lo) / 2];                                                    \
            int64_t i = lo, j = hi;                                                             \
            while (i <= j) {                                                                    \
                while (f[i] > pivot) i++;                                                       \
                while (pivot > f[j]) j--;                                                       \
                if (i <= j) {                                                                   \
                    T t = f[i];                                                                 \
                    f[i++] = f[j];                                                              \
                    f[j--] = t;                                                                 \
                }                                                                               \
            }                                                                                   \
            if (r <= j) hi = j;                                                                 \
            else if (r >= i) lo = i;                                                            \
            else break;                                                                         \
        }                                                                                       \
        return f[r];                                                                            \
    }
#endif
