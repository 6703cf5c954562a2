/*
 * iotest, the seed workload, as a loop over any disk a test driver can
 * reach: read TOTAL bytes in CHUNK-byte reads, BATCH at a time; sleep 1 ms
 * before submitting each batch and 1 ms after processing each completion.
 * The sleeps make the run slow on purpose: with nothing else in the way it
 * takes the sum of the sleeps (the floor), and any stall in the I/O path
 * shows up on top of that.
 */
#ifndef MINIVMM_TESTS_BENCH_IOTEST_H
#define MINIVMM_TESTS_BENCH_IOTEST_H

#include <stdbool.h>
#include <stdint.h>

typedef struct IotestDisk {
    const char *name;
    void *opaque;
    /*
     * Start a read of @len bytes at @offset in slot @slot (0..batch-1).
     * @last marks the batch's last request: a driver that batches its
     * doorbell (virtio under blk-mq plugging) rings it then.
     */
    void (*submit)(void *opaque, unsigned slot, uint64_t offset, uint32_t len,
                   bool last);
    /* Slots completed since the last call (bit i = slot i); may be 0. */
    uint32_t (*reap)(void *opaque);
} IotestDisk;

typedef struct IotestParams {
    uint64_t total;    /* bytes to read */
    uint32_t chunk;    /* bytes per read */
    unsigned batch;    /* reads in flight per batch, at most 32 */
    unsigned sleep_us; /* the two sleeps */
} IotestParams;

typedef struct IotestResult {
    double seconds;      /* wall time of the run */
    double slept;        /* time actually spent in the sleeps */
    double batch_p50_ms; /* per-batch time, submit to last completion */
    double batch_max_ms;
    bool timed_out;
} IotestResult;

#define IOTEST_DEFAULTS                                                        \
    {                                                                          \
        .total = 128u << 20, .chunk = 128u << 10, .batch = 16,                 \
        .sleep_us = 1000                                                       \
    }

/* Run iotest on @disk; gives up (timed_out) if one batch takes > 10 s. */
void iotest_run(IotestDisk *disk, const IotestParams *p, IotestResult *r);

#endif
