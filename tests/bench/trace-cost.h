/*
 * What the trace points cost, for bench-aio and bench-block
 * (docs/tracing.md, "What tracing costs").
 *
 * Off: the normal build (trace points compiled in, every event off) against
 * the same bench built with -DMINIVMM_TRACE_NONE. Two binaries cannot take
 * turns inside one process, so each runs as a child for one short
 * measurement, in alternating rounds, and what is reported is the median of
 * the per-round ratios (compiled-in / compiled-out) and their spread.
 *
 * On: one process; every other run has tracing on (trace_start(), every
 * event, to a file in /var/tmp that is deleted after), the others not.
 *
 * In both, a round's order flips every round (A B, B A, ...), so that a
 * machine getting faster or slower during the rounds favours neither side.
 */
#ifndef MINIVMM_TESTS_BENCH_TRACE_COST_H
#define MINIVMM_TESTS_BENCH_TRACE_COST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The line a child prints its one figure on. */
#define TRACE_COST_CHILD_TAG "trace-cost-child:"

/*
 * Pin the calling thread, and so the children it starts, to the CPU it is
 * on: a process that starts on the other CPU of a shared machine can run
 * 10% faster or slower for it.
 */
void trace_cost_pin(void);

/* This process's own binary, for running it as a child. */
const char *trace_cost_self(void);

/*
 * Run "@bin @args" (a shell command line); its TRACE_COST_CHILD_TAG line's
 * figure into @value. Returns 0, or -1 after saying why on stderr.
 */
int trace_cost_child(const char *bin, const char *args, double *value);

/*
 * The off comparison: @rounds rounds of "@in_bin @args" and
 * "@out_bin @args", in alternating order; their figures into @in[k] and
 * @out[k]. Returns 0, or -1 if a child failed.
 */
int trace_cost_off_rounds(const char *in_bin, const char *out_bin,
                          const char *args, int rounds, double *in,
                          double *out);

/* Tracing on for every event, to a fresh file under /var/tmp. 0 or -1. */
int trace_cost_start(void);

/*
 * Tracing off, the file deleted (kept with BENCH_TRACE_KEEP set: the last
 * traced run's); the records emitted meanwhile.
 */
uint64_t trace_cost_stop(void);

/* Round k's order: does the traced (or compiled-in) side go first? */
static inline bool trace_cost_in_first(int round)
{
    return round % 2 == 0;
}

typedef struct TraceCostStats {
    double median, lo, hi;
    /*
     * The median's 95% confidence interval, distribution-free (order
     * statistics, the rounds taken as independent): where the median of
     * the machine's ratio lies, which the spread is not.
     */
    double ci_lo, ci_hi;
} TraceCostStats;

/* Median, range and the median's 95% interval of @v[0..n-1] (kept). */
TraceCostStats trace_cost_stats(const double *v, int n);

/*
 * The result line, "trace-off-cost: WHAT NAME=R DNAME=D (how, median of N,
 * 95% CI, spread)" (trace-on-cost if @on), from each round's ratio (@ratio)
 * and difference (@delta, in ns), of which the medians are printed.
 */
void trace_cost_print(bool on, const char *what, const char *name,
                      const double *ratio, const char *dname,
                      const double *delta, int n);

/*
 * The same line for another cost, "TAG: WHAT NAME=R DNAME=D (HOW, median of
 * N, ...)": bench-block's seccomp-cost line.
 */
void cost_print(const char *tag, const char *how, const char *what,
                const char *name, const double *ratio, const char *dname,
                const double *delta, int n);

#endif
