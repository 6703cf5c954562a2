/*
 * bench-aio: how long an io_uring request queued by a vCPU-like thread waits
 * for the main loop.
 *
 * The main loop runs on its own thread. The bench thread plays a vCPU: it
 * waits until the main loop sleeps, takes the big lock, queues a NOP SQE into
 * the main context, drops the lock, and records the time until the CQE
 * callback runs on the main loop thread.
 *
 *   on:    notify-on-SQE on: aio_add_sqe() wakes the loop.
 *   off:   switched off: the SQE waits for the loop's timeout (the cap).
 *   floor: one thread writes an eventfd, another wakes from read(); the
 *          cost of one cross-thread wake-up, which "on" cannot beat.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aio/aio.h"
#include "aio/main-loop.h"
#include "util/clock.h"
#include "util/compiler.h"

typedef struct Probe {
    CqeHandler handler;
    int64_t done_ns;
    int done_fd; /* eventfd the bench thread blocks on */
} Probe;

static void probe_done(CqeHandler *handler)
{
    Probe *p = container_of(handler, Probe, handler);
    uint64_t one = 1;

    p->done_ns = clock_ns();
    if (write(p->done_fd, &one, sizeof(one)) != sizeof(one)) {
        abort();
    }
}

static void prep_nop(struct io_uring_sqe *sqe, void *opaque)
{
    (void)opaque;
    io_uring_prep_nop(sqe);
}

static void wait_fd(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static int64_t percentile(const int64_t *sorted, int n, int pct)
{
    int rank = (pct * n + 99) / 100;

    return sorted[rank > 0 ? rank - 1 : 0];
}

/* ---- The main loop on its own thread ----------------------------------------
 */

static atomic_bool main_loop_ready;

static void *main_loop_thread(void *opaque)
{
    MainLoopOptions *opts = opaque;

    if (main_loop_init(opts) < 0) {
        fprintf(stderr, "bench-aio: cannot create the main loop\n");
        exit(1);
    }
    if (!aio_context_has_io_uring(main_loop_context())) {
        fprintf(stderr, "bench-aio: io_uring is unavailable here\n");
        exit(1);
    }
    atomic_store(&main_loop_ready, true);
    main_loop_run();
    bql_unlock();
    return NULL;
}

/* One vCPU-style request; returns its latency in ns. */
static int64_t queue_one(Probe *p, int settle_us)
{
    int64_t queued;

    while (!main_loop_sleeping()) {
        usleep(20);
    }
    usleep(settle_us); /* let the loop get deep into its sleep */
    bql_lock();
    queued = clock_ns();
    if (aio_add_sqe(prep_nop, p, &p->handler) < 0) {
        abort();
    }
    bql_unlock();
    wait_fd(p->done_fd);
    return p->done_ns - queued;
}

static void measure_main_loop(int64_t *on, int n_on, int64_t *off, int n_off)
{
    Probe p = {.handler.cb = probe_done};

    p.done_fd = eventfd(0, EFD_CLOEXEC);
    aio_set_notify_on_sqe(true);
    for (int i = 0; i < n_on; i++) {
        on[i] = queue_one(&p, 100);
    }
    aio_set_notify_on_sqe(false);
    for (int i = 0; i < n_off; i++) {
        off[i] = queue_one(&p, 0);
    }
    aio_set_notify_on_sqe(true);
    close(p.done_fd);
}

/* ---- The floor: an eventfd ping-pong
 * ------------------------------------------ */

typedef struct PingPong {
    int ping_fd, pong_fd;
    int n;
    int64_t sent_ns;
    int64_t *samples;
} PingPong;

static void *pong_thread(void *opaque)
{
    PingPong *pp = opaque;
    uint64_t one = 1;

    for (int i = 0; i < pp->n; i++) {
        wait_fd(pp->ping_fd);
        pp->samples[i] = clock_ns() - pp->sent_ns;
        if (write(pp->pong_fd, &one, sizeof(one)) != sizeof(one)) {
            abort();
        }
    }
    return NULL;
}

static void measure_floor(int64_t *samples, int n)
{
    PingPong pp = {.n = n, .samples = samples};
    uint64_t one = 1;
    pthread_t thread;

    pp.ping_fd = eventfd(0, EFD_CLOEXEC);
    pp.pong_fd = eventfd(0, EFD_CLOEXEC);
    pthread_create(&thread, NULL, pong_thread, &pp);
    for (int i = 0; i < n; i++) {
        usleep(100); /* the same pause as the "on" samples: a real sleep */
        pp.sent_ns = clock_ns();
        if (write(pp.ping_fd, &one, sizeof(one)) != sizeof(one)) {
            abort();
        }
        wait_fd(pp.pong_fd);
    }
    pthread_join(thread, NULL);
    close(pp.ping_fd);
    close(pp.pong_fd);
}

static void usage(void)
{
    printf("Usage: bench-aio [--samples N] [--off-samples N] "
           "[--timeout-ms N]\n"
           "  --samples N      wake-ups measured with notify-on-SQE on and "
           "for the floor (2000)\n"
           "  --off-samples N  stalls measured with it off (10; each costs "
           "up to the cap)\n"
           "  --timeout-ms N   the main loop's cap (499)\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"samples", required_argument, NULL, 's'},
        {"off-samples", required_argument, NULL, 'o'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    MainLoopOptions opts = {.fdmon = AIO_FDMON_IO_URING,
                            .timeout_ms = MAIN_LOOP_TIMEOUT_MS_DEFAULT};
    int n_on = 2000, n_off = 10, c;
    int64_t *on, *off, *floor_ns;
    pthread_t thread;

    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 's':
            n_on = atoi(optarg);
            break;
        case 'o':
            n_off = atoi(optarg);
            break;
        case 't':
            opts.timeout_ms = atoi(optarg);
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (n_on < 1 || n_off < 1 || opts.timeout_ms < 1) {
        fprintf(stderr, "bench-aio: sample counts and the timeout must be "
                        "positive\n");
        return 2;
    }
    on = calloc(n_on, sizeof(*on));
    off = calloc(n_off, sizeof(*off));
    floor_ns = calloc(n_on, sizeof(*floor_ns));

    pthread_create(&thread, NULL, main_loop_thread, &opts);
    while (!atomic_load(&main_loop_ready)) {
        usleep(1000);
    }
    printf("bench-aio: %d wake-ups with notify-on-SQE on, %d with it off "
           "(main-loop cap %lld ms)\n",
           n_on, n_off, (long long)opts.timeout_ms);
    measure_main_loop(on, n_on, off, n_off);
    main_loop_quit();
    pthread_join(thread, NULL);
    bql_lock();
    main_loop_cleanup();
    measure_floor(floor_ns, n_on);

    qsort(on, n_on, sizeof(*on), cmp_i64);
    qsort(off, n_off, sizeof(*off), cmp_i64);
    qsort(floor_ns, n_on, sizeof(*floor_ns), cmp_i64);

    double on50 = percentile(on, n_on, 50) / 1e3;
    double on99 = percentile(on, n_on, 99) / 1e3;
    double off50 = percentile(off, n_off, 50) / 1e6;
    double off99 = percentile(off, n_off, 99) / 1e6;
    double fl50 = percentile(floor_ns, n_on, 50) / 1e3;
    double fl99 = percentile(floor_ns, n_on, 99) / 1e3;

    printf("  %-34s %10s %10s\n", "", "p50", "p99");
    printf("  %-34s %8.1fus %8.1fus\n", "SQE -> callback, notify-on-SQE on",
           on50, on99);
    printf("  %-34s %8.1fms %8.1fms\n", "SQE -> callback, notify-on-SQE off",
           off50, off99);
    printf("  %-34s %8.1fus %8.1fus\n", "floor: eventfd wake-up", fl50, fl99);
    printf("  on_p99 / floor_p99 = %.2f (goal <= 3)\n", on99 / fl99);
    printf("  off_p50 / cap      = %.2f (goal: near 1)\n",
           off50 / (double)opts.timeout_ms);
    printf("aio-wakeup: on_p50_us=%.1f on_p99_us=%.1f off_p50_ms=%.1f "
           "floor_p99_us=%.1f\n",
           on50, on99, off50, fl99);
    free(on);
    free(off);
    free(floor_ns);
    return 0;
}
