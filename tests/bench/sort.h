/* Sorting helpers the benchmarks share (medians, percentiles). */
#ifndef MINIVMM_TESTS_BENCH_SORT_H
#define MINIVMM_TESTS_BENCH_SORT_H

#include <stdlib.h>

/* qsort() comparator for doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

#endif
