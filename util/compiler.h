#ifndef MINIVMM_UTIL_COMPILER_H
#define MINIVMM_UTIL_COMPILER_H

#include <stddef.h>

/* The structure that contains @ptr as its @member. */
#define container_of(ptr, type, member)                                        \
    ((type *)((char *)(ptr)-offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
