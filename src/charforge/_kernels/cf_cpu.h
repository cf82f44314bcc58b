/* Which instruction-set level the kernels run at: 2 = AVX-512 (x86-64-v4), 1 = AVX2 + FMA
 * (x86-64-v3), 0 = the baseline. The highest the CPU has, unless the environment variable
 * CHARFORGE_CPU asks for a lower one ("baseline", "avx2", "avx512"), so that one machine can
 * prove that every level gives the same results. Decided once per process and module; a
 * level above the CPU's is lowered to the CPU's (charforge/cpu.py checks the variable's
 * spelling and says so). Levels exist on x86-64 with gcc or clang; elsewhere only 0. */
#ifndef CF_CPU_H
#define CF_CPU_H

#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(CF_BASELINE_ONLY)
#define CF_MULTI_LEVEL 1
#else
#define CF_MULTI_LEVEL 0
#endif

static inline int cf_hardware_cpu_level(void) {
#if CF_MULTI_LEVEL
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2"))
        return 1;
#endif
    return 0;
}

/* What CHARFORGE_CPU names, lowest first: 0 baseline, 1 avx2, 2 avx512, 3 avx512_bf16 (bf16
 * products without AMX, cf_bf16.h), 4 amx; 4 when unset or not a name (the CPU's best). */
static inline int cf_requested_name(void) {
    static const char* const names[] = {"baseline", "avx2", "avx512", "avx512_bf16", "amx"};
    const char* want = getenv("CHARFORGE_CPU");
    if (want != NULL)
        for (int i = 0; i < 5; i++)
            if (strcmp(want, names[i]) == 0) return i;
    return 4;
}

/* The vector level CHARFORGE_CPU asks for (the bf16 names are all AVX-512). */
static inline int cf_requested_cpu_level(void) {
    int name = cf_requested_name();
    return name < 2 ? name : 2;
}

#if CF_MULTI_LEVEL
static int cf_cpu_level_cache = -1;

static inline int cf_cpu_level(void) {
    int level = __atomic_load_n(&cf_cpu_level_cache, __ATOMIC_RELAXED);
    if (level < 0) {
        int hw = cf_hardware_cpu_level(), want = cf_requested_cpu_level();
        level = want < hw ? want : hw;
        __atomic_store_n(&cf_cpu_level_cache, level, __ATOMIC_RELAXED);
    }
    return level;
}
#else
static inline int cf_cpu_level(void) { return 0; }
#endif

/* The copy of function f for the running level (cf_levels.h defines f_v4, f_v3, f_base). */
#if CF_MULTI_LEVEL
#define CF_PICK(f) (cf_cpu_level() == 2 ? f##_v4 : cf_cpu_level() == 1 ? f##_v3 : f##_base)
#else
#define CF_PICK(f) f##_base
#endif

#endif
