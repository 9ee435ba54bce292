/* Which vector paths the CPU running a kernel has. HAVE_AVX2_PATH is defined where a kernel may
 * build an AVX2 path (x86); cpu_has_avx2() says whether this CPU can take it. */
#ifndef RECSYS_CPU_H
#define RECSYS_CPU_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1

static inline int cpu_has_avx2(void) {
    __builtin_cpu_init(); /* idempotent; the CPU model may not be read yet in a dlopen'ed library */
    return __builtin_cpu_supports("avx2");
}
#endif
#endif
