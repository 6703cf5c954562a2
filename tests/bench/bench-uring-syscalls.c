/*
 * bench-uring, BENCH_URING_MODE=syscalls: what a completed I/O costs in
 * system calls, for the IOThread and the main loop.
 *
 * The loop counts its own system calls where it makes them
 * (AioContextStats.syscalls: io_uring_enter, read(2) of its eventfd,
 * ppoll), and the notifiers' eventfd writes apart (notify_writes). A
 * device's own calls are not in the count: the virtqueue's handler reads
 * its ioeventfd, once per kick. The switch sets are cumulative, in the
 * order the changes were made, so each row's ratio to the one above is
 * what that change bought:
 *
 *   before             notify_me raised before polling, one-shot polls,
 *                      the eventfd polled and read(2)
 *   +notify-after-poll notify_me raised only once polling failed; the
 *                      loop's own SQEs notify nobody
 *   +multishot         one multishot POLL_ADD per fd
 *   +notifier-read     the eventfd read by an io_uring READ (all on: the
 *                      defaults)
 *
 * The IOThread runs with the defaults (weighted polling, single-issuer,
 * coop); the main loop without flags and without polling, as in minivmm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio/main-loop.h"
#include "tests/bench/bench-uring-stats.h"
#include "tests/bench/bench-uring-syscalls.h"
#include "tests/bench/sort.h"
#include "util/clock.h"

typedef struct SwitchSet {
    const char *name;
    bool after_poll, multishot, notifier_read;
} SwitchSet;

static const SwitchSet sets[] = {
    {"before", false, false, false},
    {"+notify-after-poll", true, false, false},
    {"+multishot", true, true, false},
    {"+notifier-read", true, true, true},
};
#define NSETS  (sizeof(sets) / sizeof(sets[0]))
#define SYS_QD 32

static const unsigned sys_qds[2] = {1, SYS_QD};
static const char *const loop_names[2] = {"iothread", "main"};

/* One configuration's samples, one per round. */
typedef struct SysSamples {
    unsigned n;
    double iops[STATS_MAX_ROUNDS];
    double calls_per_io[STATS_MAX_ROUNDS];  /* the loop's own */
    double enters_per_io[STATS_MAX_ROUNDS]; /* of those, io_uring_enter */
    double writes_per_io[STATS_MAX_ROUNDS]; /* notifiers' eventfd writes */
    double reads_per_wake[STATS_MAX_ROUNDS];
    double iters_per_io[STATS_MAX_ROUNDS]; /* passes of the loop */
    double waits_per_io[STATS_MAX_ROUNDS]; /* of those, sleeps */
} SysSamples;

/* [set][target][qd][loop] */
static SysSamples results[NSETS][2][2][2];

static double median(const double *v, unsigned n)
{
    double tmp[STATS_MAX_ROUNDS];

    memcpy(tmp, v, n * sizeof(*v));
    qsort(tmp, n, sizeof(*tmp), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static double spread_pct(const double *v, unsigned n)
{
    double lo = v[0], hi = v[0], m = median(v, n);

    for (unsigned i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    return m > 0 ? (hi - lo) / m * 100 : 0;
}

static void apply(const SwitchSet *s)
{
    aio_set_notify_after_poll(s->after_poll);
    aio_set_uring_multishot(s->multishot);
    aio_set_uring_notifier_read(s->notifier_read);
}

static void record(SysSamples *out, const BenchRun *r)
{
    double n = r->done ? (double)r->done : 1;
    uint64_t reads = r->after.notifier_reads - r->before.notifier_reads;
    uint64_t wakes = r->after.notifier_wakes - r->before.notifier_wakes;
    unsigned i = out->n++;

    out->iops[i] = r->iops;
    out->calls_per_io[i] = (r->after.syscalls - r->before.syscalls) / n;
    out->enters_per_io[i] =
        (r->after.uring_enters - r->before.uring_enters) / n;
    out->writes_per_io[i] =
        (r->after.notify_writes - r->before.notify_writes) / n;
    out->iters_per_io[i] = (r->after.iterations - r->before.iterations) / n;
    out->waits_per_io[i] = (r->after.waits - r->before.waits) / n;
    /* No wake-up at all: count the reads as if there had been one. */
    out->reads_per_wake[i] = (double)reads / (wakes ? wakes : 1);
}

static void print_syscall_table(void)
{
    printf("\nsystem calls per completed I/O, medians (loop: the loop "
           "thread's own\nio_uring_enter + eventfd read(2) + ppoll; writes: "
           "notifiers' eventfd\nwrites; ratio: loop calls to the row above)\n");
    printf("%-6s %-4s %-8s %-19s %9s %7s %8s %8s %8s %9s %7s %7s %6s\n",
           "target", "qd", "loop", "switches", "IOPS", "spread", "loop/io",
           "enter/io", "write/io", "read/wake", "iter/io", "wait/io", "ratio");
    for (int t = 0; t < 2; t++) {
        for (int q = 0; q < 2; q++) {
            for (int l = 0; l < 2; l++) {
                double prev = 0;

                for (unsigned k = 0; k < NSETS; k++) {
                    const SysSamples *s = &results[k][t][q][l];
                    double calls = median(s->calls_per_io, s->n);

                    printf("%-6s %-4u %-8s %-19s %9.0f %6.0f%% %8.3f %8.3f "
                           "%8.3f %9.3f %7.3f %7.3f ",
                           target_names[t], sys_qds[q], loop_names[l],
                           sets[k].name, median(s->iops, s->n),
                           spread_pct(s->iops, s->n), calls,
                           median(s->enters_per_io, s->n),
                           median(s->writes_per_io, s->n),
                           median(s->reads_per_wake, s->n),
                           median(s->iters_per_io, s->n),
                           median(s->waits_per_io, s->n));
                    if (k && prev > 0) {
                        printf("%6.3f\n", calls / prev);
                    } else {
                        printf("%6s\n", "-");
                    }
                    prev = calls;
                }
            }
        }
    }
}

void bench_uring_syscalls(const char *const paths[2], const char *const opts[2],
                          double secs, unsigned rounds)
{
    AioPollParams iothread_poll = {.max_ns = AIO_POLL_MAX_NS_DEFAULT,
                                   .weight = AIO_POLL_WEIGHT_DEFAULT};
    AioPollParams no_poll = {0};
    const SysSamples *b1, *b32, *a1, *a32;
    double before_wake, after_wake;

    printf("system calls per I/O: %zu switch sets x null/file x QD1/QD%d x "
           "IOThread/main loop,\n%u rounds of %.1f s, interleaved\n",
           NSETS, SYS_QD, rounds, secs);
    fflush(stdout);
    for (unsigned r = 0; r < rounds; r++) {
        for (int t = 0; t < 2; t++) {
            for (int q = 0; q < 2; q++) {
                for (int l = 0; l < 2; l++) {
                    for (unsigned k = 0; k < NSETS; k++) {
                        BenchRun run;

                        apply(&sets[k]);
                        bench_uring_run(paths[t], opts[t], sys_qds[q],
                                        l ? &no_poll : &iothread_poll,
                                        l ? AIO_MAIN_URING_FLAGS_DEFAULT
                                          : AIO_IOTHREAD_URING_FLAGS_DEFAULT,
                                        l == 1, k, (int64_t)(secs * NS_PER_S),
                                        &run);
                        record(&results[k][t][q][l], &run);
                    }
                }
            }
        }
        fprintf(stderr, "bench-uring: syscalls round %u of %u done\n", r + 1,
                rounds);
    }
    apply(&sets[NSETS - 1]); /* the defaults again */
    print_syscall_table();

    /* The summary: the file on the IOThread, all switches on vs none. */
    b1 = &results[0][TARGET_FILE][0][0];
    b32 = &results[0][TARGET_FILE][1][0];
    a1 = &results[NSETS - 1][TARGET_FILE][0][0];
    a32 = &results[NSETS - 1][TARGET_FILE][1][0];
    before_wake = median(b1->reads_per_wake, b1->n);
    after_wake = median(a1->reads_per_wake, a1->n);
    printf("\nfile on the IOThread, before -> after: QD1 %.3f -> %.3f "
           "calls/io, QD%d %.3f -> %.3f, eventfd reads per wake-up "
           "%.3f -> %.3f\n",
           median(b1->calls_per_io, b1->n), median(a1->calls_per_io, a1->n),
           SYS_QD, median(b32->calls_per_io, b32->n),
           median(a32->calls_per_io, a32->n), before_wake, after_wake);
    printf("uring-syscalls: qd1_per_io=%.3f qd32_per_io=%.3f "
           "reads_per_wake=%.3f\n",
           median(a1->calls_per_io, a1->n), median(a32->calls_per_io, a32->n),
           after_wake);
}
