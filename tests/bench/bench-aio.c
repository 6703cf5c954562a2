/*
 * bench-aio: how long an io_uring request queued by a vCPU-like thread waits
 * for the main loop.
 *
 * The main loop runs on its own thread. The bench thread plays a vCPU: it
 * waits until the main loop sleeps, takes the big lock, queues a NOP SQE into
 * the main context, drops the lock, and records the time until the CQE
 * callback runs on the main loop thread.
 *
 *   on:    notify-on-SQE on: aio_add_sqe() wakes the loop, and the
 *          deferred kick (main_loop_set_defer_kick()) holds the eventfd
 *          write until bql_unlock(). minivmm's default.
 *   defer off: notify-on-SQE on, deferred kick off: the write happens
 *          inside aio_add_sqe(), and the loop is woken while the bench
 *          thread still holds the big lock it needs. QEMU's fix alone.
 *   off:   notify-on-SQE off: the SQE waits for the loop's timeout (the cap).
 *   floor: one thread writes an eventfd, another wakes from read(); the
 *          cost of one cross-thread wake-up, which "on" cannot beat.
 *
 * A wake-up costs very different amounts depending on where the woken thread
 * runs: on the waker's CPU it is a context switch; on another, idle CPU it
 * is an IPI and that CPU leaving its idle state (inside a VM, a trip through
 * the hypervisor that can cost 60 us and more, with long tails). Left to the
 * scheduler, the p99 mostly measures how often it migrated. So "on",
 * "defer off" and the floor are measured three ways: both threads pinned to
 * one CPU (the headline: it isolates the event loop's own work, compared
 * with a bare context switch), pinned to different CPUs, and unpinned.
 *
 * Last, what the trace points cost on the headline's wake-up (notify-on-SQE
 * on, the deferred kick on, one CPU), as ratios of its p50
 * (tests/bench/trace-cost.h): while off, against the same bench with them
 * compiled out (--trace-none BIN, which `make bench-aio` passes), and while
 * on, against off. --run-wakeups N is one run of N such wake-ups, for the
 * off comparison's children.
 */
#include <errno.h>
#include <sched.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tests/bench/trace-cost.h"
#include "aio/aio.h"
#include "aio/main-loop.h"
#include "util/clock.h"
#include "util/compiler.h"
#include "util/trace.h"

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

/* ---- Thread placement -------------------------------------------------------
 */

typedef enum Placement { PLACE_APART, PLACE_SAME, PLACE_ANY } Placement;
static const char *const placement_names[] = {"apart", "same cpu", "any"};

static void set_cpu(pthread_t thread, int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    if (cpu < 0) {
        for (int i = 0; i < CPU_SETSIZE; i++) {
            CPU_SET(i, &set);
        }
    } else {
        CPU_SET(cpu, &set);
    }
    pthread_setaffinity_np(thread, sizeof(set), &set);
}

/* Place the measuring thread (self) and the woken thread (other). */
static void place(pthread_t other, Placement where)
{
    set_cpu(pthread_self(), where == PLACE_ANY ? -1 : 0);
    set_cpu(other, where == PLACE_ANY ? -1 : where == PLACE_SAME ? 0 : 1);
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

static pthread_t start_main_loop(MainLoopOptions *opts)
{
    pthread_t thread;

    atomic_store(&main_loop_ready, false);
    pthread_create(&thread, NULL, main_loop_thread, opts);
    while (!atomic_load(&main_loop_ready)) {
        usleep(1000);
    }
    return thread;
}

static void stop_main_loop(pthread_t thread)
{
    main_loop_quit();
    pthread_join(thread, NULL);
    bql_lock();
    main_loop_cleanup();
}

/* One vCPU-style request; returns its latency in ns. */
static int64_t queue_one(Probe *p, int settle_us)
{
    int64_t queued;

    while (!main_loop_sleeping()) {
        usleep(20);
    }
    usleep(settle_us); /* let the loop get deep into its sleep */
    /* A request is born: its trace id, as a device gives it (virtio-blk). */
    p->handler.trace_id = TRACE_ANY() ? trace_new_id() : 0;
    bql_lock();
    queued = clock_ns();
    if (aio_add_sqe(prep_nop, p, &p->handler) < 0) {
        abort();
    }
    bql_unlock();
    wait_fd(p->done_fd);
    return p->done_ns - queued;
}

/* Requests with notify-on-SQE on or off; latencies in ns. */
static void measure_main_loop(int64_t *samples, int n, bool notify)
{
    Probe p = {.handler.cb = probe_done};

    p.done_fd = eventfd(0, EFD_CLOEXEC);
    aio_set_notify_on_sqe(notify);
    for (int i = 0; i < n; i++) {
        samples[i] = queue_one(&p, notify ? 100 : 0);
    }
    aio_set_notify_on_sqe(true);
    close(p.done_fd);
}

/*
 * Requests with notify-on-SQE on, the deferred kick on and off in turn, so
 * that a slow spell of the shared machine hits both alike.
 */
static void measure_defer_kick(int64_t *defer_on, int64_t *defer_off, int n)
{
    Probe p = {.handler.cb = probe_done};

    p.done_fd = eventfd(0, EFD_CLOEXEC);
    aio_set_notify_on_sqe(true);
    for (int i = 0; i < n; i++) {
        main_loop_set_defer_kick(true);
        defer_on[i] = queue_one(&p, 100);
        main_loop_set_defer_kick(false);
        defer_off[i] = queue_one(&p, 100);
    }
    main_loop_set_defer_kick(true);
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

static void measure_floor(int64_t *samples, int n, Placement where)
{
    PingPong pp = {.n = n, .samples = samples};
    uint64_t one = 1;
    pthread_t thread;

    pp.ping_fd = eventfd(0, EFD_CLOEXEC);
    pp.pong_fd = eventfd(0, EFD_CLOEXEC);
    pthread_create(&thread, NULL, pong_thread, &pp);
    place(thread, where);
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

/* ---- Report
 * ----------------------------------------------------------------------- */

static void print_row(const char *what, int64_t *samples, int n, double div,
                      const char *unit)
{
    qsort(samples, n, sizeof(*samples), cmp_i64);
    printf("  %-36s %7.1f%s %7.1f%s %7.1f%s %7.1f%s\n", what,
           percentile(samples, n, 50) / div, unit,
           percentile(samples, n, 90) / div, unit,
           percentile(samples, n, 99) / div, unit, samples[n - 1] / div, unit);
}

/* ---- What the trace points cost ------------------------------------------
 */

/*
 * Wake-ups per run, and rounds: two processes' runs differ by 10% and more,
 * so the median of the per-round ratios needs many rounds.
 */
#define COST_WAKEUPS 500
#define COST_ROUNDS  61

/* The headline's wake-up, @n times, in a fresh main loop; its p50 in ns. */
static double run_wakeups(MainLoopOptions *opts, int n, uint64_t *events)
{
    int64_t *samples = calloc(n, sizeof(*samples));
    pthread_t thread;
    double p50;

    if (events && trace_cost_start() < 0) {
        exit(1);
    }
    thread = start_main_loop(opts);
    place(thread, PLACE_SAME);
    measure_main_loop(samples, n, true);
    stop_main_loop(thread);
    if (events) {
        *events += trace_cost_stop();
    }
    qsort(samples, n, sizeof(*samples), cmp_i64);
    p50 = (double)percentile(samples, n, 50);
    free(samples);
    return p50;
}

/* p50s @a against @b: their ratios, and by how much a's is longer in ns. */
static void print_cost(bool on, const double *a, const double *b, int n,
                       double events_per_wakeup)
{
    double ratio[COST_ROUNDS], delta_ns[COST_ROUNDS];
    char what[128];
    int len;

    for (int k = 0; k < n; k++) {
        ratio[k] = a[k] / b[k];
        delta_ns[k] = a[k] - b[k];
    }
    len =
        snprintf(what, sizeof(what), "bench=aio wakeup=notify-on-sqe,same-cpu");
    if (on) {
        snprintf(what + len, sizeof(what) - len, " events_per_wakeup=%.2f",
                 events_per_wakeup);
    }
    trace_cost_print(on, what, "p50_ratio", ratio, "p50_ns", delta_ns, n);
}

static void measure_trace_cost(MainLoopOptions *opts, const char *none_bin)
{
    const char *self = trace_cost_self();
    double a[COST_ROUNDS], b[COST_ROUNDS];
    uint64_t events = 0;
    char args[64];

    printf("trace points' cost, SQE -> callback p50 [same cpu], notify on: "
           "%d rounds of %d wake-ups (docs/tracing.md)\n",
           COST_ROUNDS, COST_WAKEUPS);
    if (none_bin && self) {
        snprintf(args, sizeof(args), "--run-wakeups %d", COST_WAKEUPS);
        if (trace_cost_off_rounds(self, none_bin, args, COST_ROUNDS, a, b) <
            0) {
            exit(1);
        }
        print_cost(false, a, b, COST_ROUNDS, 0);
    } else {
        printf("no trace-off-cost line: no --trace-none BIN (make bench-aio "
               "gives it)\n");
    }
    for (int k = 0; k < COST_ROUNDS; k++) {
        if (trace_cost_in_first(k)) {
            a[k] = run_wakeups(opts, COST_WAKEUPS, &events);
            b[k] = run_wakeups(opts, COST_WAKEUPS, NULL);
        } else {
            b[k] = run_wakeups(opts, COST_WAKEUPS, NULL);
            a[k] = run_wakeups(opts, COST_WAKEUPS, &events);
        }
    }
    print_cost(true, a, b, COST_ROUNDS,
               (double)events / (COST_ROUNDS * COST_WAKEUPS));
}

static void usage(void)
{
    printf("Usage: bench-aio [--samples N] [--off-samples N] "
           "[--timeout-ms N]\n"
           "                 [--trace-none BIN] [--run-wakeups N]\n"
           "  --samples N      wake-ups measured per placement, with "
           "notify-on-SQE on\n"
           "                   (as many with the deferred kick on as off) "
           "and for the\n"
           "                   floor (2000)\n"
           "  --off-samples N  stalls measured with it off (10; each costs "
           "up to the cap)\n"
           "  --timeout-ms N   the main loop's cap (499)\n"
           "  --trace-none BIN the same bench with the trace points "
           "compiled out, for\n"
           "                   the trace-off-cost line\n"
           "  --run-wakeups N  only N wake-ups [same cpu], notify on; print "
           "their p50\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"samples", required_argument, NULL, 's'},
        {"off-samples", required_argument, NULL, 'o'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"trace-none", required_argument, NULL, 'n'},
        {"run-wakeups", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    MainLoopOptions opts = {.fdmon = AIO_FDMON_IO_URING,
                            .timeout_ms = MAIN_LOOP_TIMEOUT_MS_DEFAULT};
    int n_on = 2000, n_off = 10, n_run = 0, c;
    const char *none_bin = NULL;
    int64_t *on[3], *nodefer[3], *floor_ns[3], *off;
    double on50 = 0, on99 = 0, fl99 = 0, off50, nd50, nd99;
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
        case 'n':
            none_bin = optarg;
            break;
        case 'r':
            n_run = atoi(optarg);
            if (n_run < 1) {
                usage();
                return 2;
            }
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
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "bench-aio: needs two CPUs\n");
        return 1;
    }
    if (n_run) {
        printf("%s %.0f\n", TRACE_COST_CHILD_TAG,
               run_wakeups(&opts, n_run, NULL));
        return 0;
    }
    off = calloc(n_off, sizeof(*off));
    for (int i = 0; i < 3; i++) {
        on[i] = calloc(n_on, sizeof(*on[i]));
        nodefer[i] = calloc(n_on, sizeof(*nodefer[i]));
        floor_ns[i] = calloc(n_on, sizeof(*floor_ns[i]));
    }

    thread = start_main_loop(&opts);
    printf("bench-aio: %d wake-ups per placement with notify-on-SQE on, %d "
           "with it off\n(main-loop cap %lld ms)\n",
           n_on, n_off, (long long)opts.timeout_ms);
    printf("and as many again with notify-on-SQE on and the deferred kick "
           "off (QEMU's fix alone),\nalternating with the first\n");
    for (Placement where = PLACE_APART; where <= PLACE_ANY; where++) {
        place(thread, where);
        measure_defer_kick(on[where], nodefer[where], n_on);
    }
    place(thread, PLACE_APART);
    measure_main_loop(off, n_off, false);
    stop_main_loop(thread);
    for (Placement where = PLACE_APART; where <= PLACE_ANY; where++) {
        measure_floor(floor_ns[where], n_on, where);
    }

    printf("  %-36s %9s %9s %9s %9s\n", "", "p50", "p90", "p99", "max");
    for (Placement where = PLACE_APART; where <= PLACE_ANY; where++) {
        char what[64];

        snprintf(what, sizeof(what), "[%s] SQE -> callback, notify on",
                 placement_names[where]);
        print_row(what, on[where], n_on, 1e3, "us");
        snprintf(what, sizeof(what), "[%s] notify on, defer off",
                 placement_names[where]);
        print_row(what, nodefer[where], n_on, 1e3, "us");
        snprintf(what, sizeof(what), "[%s] floor: eventfd wake-up",
                 placement_names[where]);
        print_row(what, floor_ns[where], n_on, 1e3, "us");
        printf("  %-36s %.2f (goal <= 3)\n", "on_p99 / floor_p99:",
               (double)percentile(on[where], n_on, 99) /
                   percentile(floor_ns[where], n_on, 99));
        printf("  %-36s %.2f at p50, %.2f at p99 (QEMU's fix / ours)\n",
               "defer off / on:",
               (double)percentile(nodefer[where], n_on, 50) /
                   percentile(on[where], n_on, 50),
               (double)percentile(nodefer[where], n_on, 99) /
                   percentile(on[where], n_on, 99));
    }
    print_row("[apart] SQE -> callback, notify off", off, n_off, 1e6, "ms");
    off50 = percentile(off, n_off, 50) / 1e6;
    printf("  %-36s %.2f (goal: near 1)\n",
           "off_p50 / cap:", off50 / (double)opts.timeout_ms);

    /* The headline: pinned together, the cost of the event loop itself. */
    on50 = percentile(on[PLACE_SAME], n_on, 50) / 1e3;
    on99 = percentile(on[PLACE_SAME], n_on, 99) / 1e3;
    fl99 = percentile(floor_ns[PLACE_SAME], n_on, 99) / 1e3;
    printf("aio-wakeup: on_p50_us=%.1f on_p99_us=%.1f off_p50_ms=%.1f "
           "floor_p99_us=%.1f\n",
           on50, on99, off50, fl99);
    nd50 = percentile(nodefer[PLACE_SAME], n_on, 50) / 1e3;
    nd99 = percentile(nodefer[PLACE_SAME], n_on, 99) / 1e3;
    printf("aio-wakeup-defer: on_p50_us=%.1f nodefer_p50_us=%.1f "
           "nodefer_over_on_p50=%.2f on_p99_us=%.1f nodefer_p99_us=%.1f "
           "nodefer_over_on_p99=%.2f\n",
           on50, nd50, nd50 / on50, on99, nd99, nd99 / on99);
    measure_trace_cost(&opts, none_bin);
    free(off);
    for (int i = 0; i < 3; i++) {
        free(on[i]);
        free(nodefer[i]);
        free(floor_ns[i]);
    }
    return 0;
}
