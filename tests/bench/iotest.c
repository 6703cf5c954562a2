#include <stdlib.h>
#include <time.h>

#include "tests/bench/iotest.h"
#include "tests/bench/sort.h"
#include "util/clock.h"

#define BATCH_TIMEOUT_NS (10 * NS_PER_S)
/* Pause between polls that found nothing. */
#define IOTEST_POLL_US 20

/* Sleep and return how long we actually slept, in ns. */
static int64_t sleep_measured(unsigned us)
{
    struct timespec ts = {.tv_sec = us / 1000000,
                          .tv_nsec = (us % 1000000) * 1000};
    int64_t start = clock_ns();

    while (nanosleep(&ts, &ts) != 0) {
    }
    return clock_ns() - start;
}

void iotest_run(IotestDisk *disk, const IotestParams *p, IotestResult *r)
{
    uint64_t per_batch = (uint64_t)p->chunk * p->batch;
    unsigned nbatches = (p->total + per_batch - 1) / per_batch;
    double *batch_ms = calloc(nbatches, sizeof(double));
    int64_t start = clock_ns(), slept = 0;
    unsigned b;

    *r = (IotestResult){0};
    for (b = 0; b < nbatches; b++) {
        uint64_t base = (uint64_t)b * per_batch;
        uint32_t pending = 0, done;
        int64_t batch_start;

        slept += sleep_measured(p->sleep_us);
        batch_start = clock_ns();
        for (unsigned i = 0; i < p->batch; i++) {
            disk->submit(disk->opaque, i, base + (uint64_t)i * p->chunk,
                         p->chunk, i == p->batch - 1);
            pending |= 1u << i;
        }
        while (pending) {
            done = disk->reap(disk->opaque) & pending;
            if (!done) {
                if (clock_ns() - batch_start > BATCH_TIMEOUT_NS) {
                    r->timed_out = true;
                    goto out;
                }
                /*
                 * A guest waits for the interrupt; it does not hammer the
                 * device's registers. Polling flat out would also compete
                 * for the CPUs and the big lock with the very threads that
                 * complete the I/O, on every machine alike.
                 */
                sleep_measured(IOTEST_POLL_US);
                continue;
            }
            /* Each completion is "processed" with a 1 ms sleep. */
            for (uint32_t m = done; m; m &= m - 1) {
                slept += sleep_measured(p->sleep_us);
            }
            pending &= ~done;
        }
        batch_ms[b] = (clock_ns() - batch_start) / 1e6;
    }
out:
    r->seconds = (clock_ns() - start) / 1e9;
    r->slept = slept / 1e9;
    if (b > 0) {
        qsort(batch_ms, b, sizeof(double), cmp_double);
        r->batch_p50_ms = batch_ms[b / 2];
        r->batch_max_ms = batch_ms[b - 1];
    }
    free(batch_ms);
}
