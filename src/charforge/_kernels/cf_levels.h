/* Compiles the file named by CF_LEVEL_BODY once per instruction-set level, each function
 * suffixed by its level (CF_V(name)) and compiled for it (CF_TARGET); CF_PICK in cf_cpu.h
 * calls the running level's copy. Hand-made rather than gcc's target_clones because the
 * level must be choosable at run time (CHARFORGE_CPU), not only by the CPU. No include
 * guard: each header with a level body includes it once. */
#include "cf_cpu.h"

#if CF_MULTI_LEVEL
#define CF_TARGET __attribute__((target("arch=x86-64-v4")))
#define CF_V(name) name##_v4
#include CF_LEVEL_BODY
#undef CF_TARGET
#undef CF_V

#define CF_TARGET __attribute__((target("arch=x86-64-v3")))
#define CF_V(name) name##_v3
#include CF_LEVEL_BODY
#undef CF_TARGET
#undef CF_V
#endif

#define CF_TARGET
#define CF_V(name) name##_base
#include CF_LEVEL_BODY
#undef CF_TARGET
#undef CF_V
