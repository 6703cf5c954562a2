/*
 * bench-uring's system call mode (BENCH_URING_MODE=syscalls): system calls
 * per completed I/O of the loop that serves the disk, before and after each
 * of the event loop's io_uring switches.
 */
#ifndef MINIVMM_TESTS_BENCH_BENCH_URING_SYSCALLS_H
#define MINIVMM_TESTS_BENCH_BENCH_URING_SYSCALLS_H

#include <stdbool.h>
#include <stdint.h>

#include "aio/aio.h"

/* What one run did, over its measured span. */
typedef struct BenchRun {
    uint64_t done; /* completed reads */
    double iops;
    int64_t cpu_ns, sys_ns, poll_ns; /* the loop thread's */
    unsigned got_flags;              /* the ring flags the kernel accepted */
    AioContextStats before, after;   /* the loop's counters at both ends */
} BenchRun;

/*
 * One run (bench-uring.c): 4 KiB random reads at @qd on @path for @run_ns,
 * the queue on a new IOThread or on the main loop. The main loop is set up
 * again when @flags or @switches (the caller's name for the switch set in
 * force) differ from its last run's.
 */
void bench_uring_run(const char *path, const char *blk_opts, unsigned qd,
                     const AioPollParams *poll, unsigned flags,
                     bool on_main_loop, unsigned switches, int64_t run_ns,
                     BenchRun *r);

/*
 * The mode: every switch set x null/file x QD1/QD32 x IOThread/main loop,
 * @rounds interleaved rounds of @secs each; prints the table and the
 * "uring-syscalls:" line.
 */
void bench_uring_syscalls(const char *const paths[2], const char *const opts[2],
                          double secs, unsigned rounds);

#endif
