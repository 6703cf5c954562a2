/*
 * bench-block: 4 KiB random reads through the block layer, at queue depth 1
 * and 32, against fio on the same file.
 *
 * One thread, one AioContext: the bench thread is the context's home, keeps
 * QD requests in flight (each completion submits the next read) and runs
 * aio_poll() until the time is up, as an IOThread would. Targets:
 *
 *   null://1G                the block layer's own cost, no I/O
 *   image, cache=none        O_DIRECT on a 1 GiB image on the local disk
 *   image, cache=writeback   the same through the page cache
 *
 * each with the io_uring and the threads engine, and fio (ioengine=io_uring,
 * direct=1, one job) on the same image as the reference: fio is about as
 * fast as one thread gets on io_uring. The last line's QD32 figures come
 * from three interleaved rounds of ours and fio's (medians), so that a slow
 * spell of the disk hits both sides alike.
 *
 * The image is created once (non-zero data, so that no read hits a hole) in
 * $MINIVMM_BENCH_DIR or /var/tmp, and reused while its size is right.
 * BENCH_BLOCK_SECONDS overrides the 3 s per run; BENCH_BLOCK_ONLY=STRING
 * runs only the targets whose options contain STRING, without fio.
 *
 * Last, what the trace points cost on the CPU-bound targets (null, and the
 * image through the page cache), as ratios (tests/bench/trace-cost.h):
 * while off, against the same bench with them compiled out (--trace-none
 * BIN, which `make bench-block` passes), and while on, against off.
 * Then what the seccomp sandbox costs on the targets that make system
 * calls per request: sandboxed children against unsandboxed ones.
 * --trace-cost-only and --seccomp-cost-only run just one of those; --run
 * PATH OPTS QD MS is one run, for the comparisons' children.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/bench/sort.h"
#include "tests/bench/trace-cost.h"
#include "aio/aio.h"
#include "block/block.h"
#include "util/clock.h"
#include "util/sandbox.h"
#include "util/trace.h"

#define IMAGE_SIZE (1ull << 30)
#define BS         4096
#define MAX_QD     32

typedef struct Job Job;

typedef struct Slot {
    BlockRequest req;
    struct iovec iov;
    Job *job;
} Slot;

struct Job {
    BlockBackend *blk;
    uint64_t nblocks;
    uint64_t seed;
    uint64_t completed;
    int errors;
    bool stop;
    Slot slots[MAX_QD];
};

typedef struct Result {
    double iops;
    double p50_us, p99_us;
    uint64_t ios;
} Result;

static int seconds = 3;

static uint64_t rnd(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static void slot_submit(Slot *slot);

static void slot_done(void *opaque, int ret)
{
    Slot *slot = opaque;
    Job *job = slot->job;

    job->completed++;
    if (ret < 0 && job->errors++ == 0) {
        fprintf(stderr, "bench-block: read failed: %s\n", strerror(-ret));
    }
    if (!job->stop) {
        slot_submit(slot);
    }
}

static void slot_submit(Slot *slot)
{
    Job *job = slot->job;

    /* A request is born: its trace id, as a device gives it (virtio-blk). */
    slot->req.trace_id = TRACE_ANY() ? trace_new_id() : 0;
    slot->req.op = BLOCK_OP_READ;
    slot->req.offset = (rnd(&job->seed) % job->nblocks) * BS;
    slot->req.iov = &slot->iov;
    slot->req.iovcnt = 1;
    slot->req.cb = slot_done;
    slot->req.opaque = slot;
    if (blk_submit(job->blk, &slot->req) < 0) {
        abort();
    }
}

/* Open @path with @opts into @job, with buffers for @qd requests. */
static int job_open(Job *job, const char *path, const char *opts, int qd)
{
    char err[256];
    void *bufs;
    int ret;

    memset(job, 0, sizeof(*job));
    ret = blk_open_string(path, opts, &job->blk, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "bench-block: %s\n", err);
        return ret;
    }
    if (posix_memalign(&bufs, BS, (size_t)qd * BS)) {
        abort();
    }
    memset(bufs, 0, (size_t)qd * BS);
    job->nblocks = blk_size(job->blk) / BS;
    job->seed = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < qd; i++) {
        job->slots[i].job = job;
        job->slots[i].iov.iov_base = (char *)bufs + (size_t)i * BS;
        job->slots[i].iov.iov_len = BS;
    }
    return 0;
}

static void job_close(Job *job)
{
    blk_close(job->blk);
    free(job->slots[0].iov.iov_base);
}

/* Read for @run_ns at @qd on @job, opened for at least @qd. */
static int job_run(AioContext *ctx, Job *job, int qd, int64_t run_ns,
                   Result *res)
{
    BlockStats st;
    int64_t start, end;

    start = clock_ns();
    end = start + run_ns;
    for (int i = 0; i < qd; i++) {
        slot_submit(&job->slots[i]);
    }
    while (clock_ns() < end) {
        aio_poll(ctx, true);
    }
    job->stop = true;
    end = clock_ns();
    blk_drain(job->blk);

    blk_get_stats(job->blk, &st);
    res->ios = job->completed;
    res->iops = (double)job->completed / ((double)(end - start) / NS_PER_S);
    res->p50_us = blk_stats_percentile_ns(&st.op[BLOCK_OP_READ], 50) / 1e3;
    res->p99_us = blk_stats_percentile_ns(&st.op[BLOCK_OP_READ], 99) / 1e3;
    if (getenv("BENCH_BLOCK_STATS")) {
        blk_stats_print(job->blk, stderr);
    }
    return job->errors ? -EIO : 0;
}

/* Open @path with @opts and read for @run_ns at @qd. */
static int run_job(AioContext *ctx, const char *path, const char *opts, int qd,
                   int64_t run_ns, Result *res)
{
    static Job job;
    int ret = job_open(&job, path, opts, qd);

    if (ret < 0) {
        return ret;
    }
    ret = job_run(ctx, &job, qd, run_ns, res);
    job_close(&job);
    return ret;
}

/* ---- The image ----------------------------------------------------------- */

static int prepare_image(const char *path)
{
    struct stat st;
    char *chunk;
    int fd;

    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size == IMAGE_SIZE) {
        return 0;
    }
    printf("creating %s (1 GiB, non-zero data)\n", path);
    fflush(stdout);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "bench-block: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    chunk = malloc(1 << 20);
    for (uint64_t off = 0; off < IMAGE_SIZE; off += 1 << 20) {
        for (int i = 0; i < 1 << 20; i += 8) {
            uint64_t v = (off + (uint64_t)i) * 0x9e3779b97f4a7c15ull | 1;

            memcpy(chunk + i, &v, 8);
        }
        if (pwrite(fd, chunk, 1 << 20, (off_t)off) != 1 << 20) {
            fprintf(stderr, "bench-block: writing %s: %s\n", path,
                    strerror(errno));
            free(chunk);
            close(fd);
            unlink(path);
            return -EIO;
        }
    }
    free(chunk);
    fdatasync(fd);
    close(fd);
    return 0;
}

/* Read the image once so that cache=writeback runs start warm. */
static void warm_page_cache(const char *path)
{
    char *chunk = malloc(1 << 20);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    while (fd >= 0 && read(fd, chunk, 1 << 20) > 0) {
    }
    if (fd >= 0) {
        close(fd);
    }
    free(chunk);
}

/* ---- fio
 * ---------------------------------------------------------------------
 */

/* fio's read IOPS at @qd on @path, or a negative number if it could not run. */
static double run_fio(const char *path, int qd, const char *extra)
{
    char cmd[1024], line[8192];
    double iops = -1;
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "fio --name=randread --filename=%s --ioengine=io_uring "
             "--direct=1 --rw=randread --bs=4k --iodepth=%d --numjobs=1 "
             "--time_based --runtime=%d --randrepeat=0 --norandommap "
             "--output-format=terse --terse-version=3 %s 2>/dev/null",
             path, qd, seconds, extra);
    p = popen(cmd, "r");
    if (!p) {
        return -1;
    }
    /* Terse v3: version;fio;jobname;groupid;error;read_kb;read_bw;read_iops */
    while (fgets(line, sizeof(line), p)) {
        char *field = line, *save = NULL;
        int n = 0;

        if (strncmp(line, "3;", 2)) {
            continue;
        }
        for (field = strtok_r(line, ";", &save); field;
             field = strtok_r(NULL, ";", &save)) {
            if (++n == 8) {
                iops = strtod(field, NULL);
                break;
            }
        }
    }
    if (pclose(p) != 0) {
        return -1;
    }
    return iops;
}

/* ---- Main ---------------------------------------------------------------- */

typedef struct Row {
    const char *target;
    const char *engine;
    const char *path;
    const char *opts;
    Result qd1, qd32;
} Row;

static void print_row(const Row *r)
{
    printf("%-22s %-9s %10.0f %8.1f %10.0f %8.1f\n", r->target, r->engine,
           r->qd1.iops, r->qd1.p50_us, r->qd32.iops, r->qd32.p50_us);
    fflush(stdout);
}

/* Rounds of the interleaved ours-vs-fio comparison behind the headline. */
#define PAIRED_ROUNDS 3

/* The table, fio beside it, and the block-iops line. */
static int run_table(AioContext *ctx, const char *image, const char *only)
{
    Row rows[] = {
        {.target = "null://1G",
         .engine = "null",
         .path = "null://1G",
         .opts = "aio=io_uring"},
        {.target = "image cache=none",
         .engine = "io_uring",
         .path = image,
         .opts = "aio=io_uring,cache=none"},
        {.target = "image cache=none",
         .engine = "threads",
         .path = image,
         .opts = "aio=threads,cache=none"},
        {.target = "image cache=writeback",
         .engine = "io_uring",
         .path = image,
         .opts = "aio=io_uring,cache=writeback"},
        {.target = "image cache=writeback",
         .engine = "threads",
         .path = image,
         .opts = "aio=threads,cache=writeback"},
    };
    Row fio = {.target = "fio cache=none", .engine = "io_uring"};
    int64_t run_ns = seconds * NS_PER_S;
    double ratio, fio_batched;

    printf("4 KiB random reads, %d s per run, one thread; p50 in us "
           "(block layer's log2 histogram: bucket upper bounds)\n",
           seconds);
    printf("%-22s %-9s %10s %8s %10s %8s\n", "target", "engine", "QD1 IOPS",
           "p50", "QD32 IOPS", "p50");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        Row *r = &rows[i];

        if (only && !strstr(r->opts, only)) {
            continue;
        }
        if (!strcmp(r->opts, "aio=io_uring,cache=writeback")) {
            warm_page_cache(image);
        }
        if (run_job(ctx, r->path, r->opts, 1, run_ns, &r->qd1) < 0 ||
            run_job(ctx, r->path, r->opts, 32, run_ns, &r->qd32) < 0) {
            return 1;
        }
        print_row(r);
    }
    if (only) {
        return 0;
    }
    fio.qd1.iops = run_fio(image, 1, "");
    fio.qd32.iops = run_fio(image, 32, "");
    if (fio.qd1.iops < 0 || fio.qd32.iops < 0) {
        printf("fio did not run (is it installed? make deps)\n");
        fio.qd1.iops = fio.qd32.iops = 0;
    } else {
        printf("%-22s %-9s %10.0f %8s %10.0f %8s\n", fio.target, fio.engine,
               fio.qd1.iops, "-", fio.qd32.iops, "-");
        /*
         * fio's defaults enter the kernel once per request; aio_poll()
         * submits everything queued since the last wait in one call. This
         * row shows fio batching the same way (not part of the ratio).
         */
        fio_batched = run_fio(image, 32,
                              "--iodepth_batch_submit=32 "
                              "--iodepth_batch_complete_max=32");
        printf("%-22s %-9s %10s %8s %10.0f %8s\n", "fio batched submits",
               fio.engine, "-", "-", fio_batched, "-");
    }

    /*
     * The headline pair, interleaved: this VM's disk has slow spells of
     * seconds, and runs made minutes apart can differ by 3x. Alternating
     * ours and fio's on the same image and taking each side's median makes
     * the ratio compare like with like.
     */
    double ours[PAIRED_ROUNDS], theirs[PAIRED_ROUNDS];
    int rounds = fio.qd32.iops > 0 ? PAIRED_ROUNDS : 0;

    for (int k = 0; k < rounds; k++) {
        Result res;

        if (run_job(ctx, image, "aio=io_uring,cache=none", 32, run_ns, &res) <
            0) {
            return 1;
        }
        ours[k] = res.iops;
        theirs[k] = run_fio(image, 32, "");
    }
    if (rounds) {
        qsort(ours, rounds, sizeof(double), cmp_double);
        qsort(theirs, rounds, sizeof(double), cmp_double);
        printf("interleaved QD32 cache=none, %d rounds: io_uring %.0f..%.0f "
               "(median %.0f), fio %.0f..%.0f (median %.0f)\n",
               rounds, ours[0], ours[rounds - 1], ours[rounds / 2], theirs[0],
               theirs[rounds - 1], theirs[rounds / 2]);
        rows[1].qd32.iops = ours[rounds / 2];
        fio.qd32.iops = theirs[rounds / 2];
    }

    ratio = fio.qd32.iops > 0 ? rows[1].qd32.iops / fio.qd32.iops : 0;
    printf("block-iops: qd1_uring=%.0f qd32_uring=%.0f qd32_threads=%.0f "
           "qd32_fio=%.0f ratio_fio=%.2f\n",
           rows[1].qd1.iops, rows[1].qd32.iops, rows[2].qd32.iops,
           fio.qd32.iops, ratio);
    return 0;
}

/* ---- What the trace points cost ------------------------------------------ */

/*
 * The CPU-bound targets, where the block layer's own work is the largest
 * part of a request's time, so that the trace points' share is largest:
 * null (blk_submit; it completes from a BH, without io_uring) and the image
 * through the page cache on io_uring (blk_submit, aio_add_sqe, the submit,
 * the CQE). On an O_DIRECT run the disk's time dilutes the same cost.
 */
static const struct CostTarget {
    const char *driver;
    const char *path; /* NULL: the image */
    const char *opts;
    int qd;
} cost_targets[] = {
    {"null", "null://1G", "aio=io_uring", 1},
    {"null", "null://1G", "aio=io_uring", 32},
    {"file", NULL, "aio=io_uring,cache=writeback", 1},
};

/*
 * Off: many short runs, since two runs by two processes differ by 10% and
 * more (this machine's speed drifts even between runs 100 ms apart), and the
 * median of the per-round ratios needs many rounds to settle to a percent.
 * On: runs long enough that a fresh ring's first pass (its page faults, some
 * 5 ms for the default 20 MiB) weighs little, and trace_finish() writes the
 * file (a quarter of a second for a full ring) after each.
 */
#define COST_OFF_ROUNDS 41
#define COST_OFF_RUN_MS 100
#define COST_ON_ROUNDS  21
#define COST_ON_RUN_MS  300
#define COST_ROUNDS     41 /* the larger */

static void *do_nothing(void *arg)
{
    return arg;
}

/*
 * --run PATH OPTS QD MS: one run, its IOPS on TRACE_COST_CHILD_TAG's line.
 * With BENCH_CHILD_SECCOMP=1 in the environment the run is sandboxed as an
 * IOThread is in minivmm (the role whose thread serves a virtio-blk queue):
 * the image is opened first, as minivmm's main thread opens it before any
 * filter exists, then the filter goes on. The sandboxed child neither
 * closes the image (that is the main thread's job in minivmm, not an
 * IOThread's) nor lets stdio look at stdout (newfstatat): its line goes out
 * with one write(2), and exit releases the rest.
 */
static int run_one(const char *path, const char *opts, int qd, int ms)
{
    AioContextOptions ctx_opts = {.name = "bench", .fdmon = AIO_FDMON_IO_URING};
    AioContext *ctx = aio_context_new(&ctx_opts);
    const char *sandbox = getenv("BENCH_CHILD_SECCOMP");
    bool sandboxed = sandbox && !strcmp(sandbox, "1");
    static Job job;
    Result res;
    char line[64];
    int len;

    if (!ctx || qd < 1 || qd > MAX_QD || ms < 1) {
        fprintf(stderr, "bench-block: --run: bad arguments or no context\n");
        return 1;
    }
    aio_set_thread_context(ctx);
    if (job_open(&job, path, opts, qd) < 0) {
        return 1;
    }
    if (sandboxed) {
        /*
         * glibc installs its thread signal handlers (rt_sigaction, which
         * no role allows) at a process's first pthread_create. In minivmm
         * that is long before any filter (the IOThreads and vCPUs exist
         * first); here the first may be the threads engine's worker, so
         * one thread comes and goes before the filter.
         */
        pthread_t t;

        if (pthread_create(&t, NULL, do_nothing, NULL) ||
            pthread_join(t, NULL) || sandbox_setup(true) < 0) {
            return 1;
        }
        sandbox_enter(SANDBOX_IOTHREAD);
    }
    if (job_run(ctx, &job, qd, (int64_t)ms * NS_PER_MS, &res) < 0) {
        return 1;
    }
    len = snprintf(line, sizeof(line), "%s %.0f\n", TRACE_COST_CHILD_TAG,
                   res.iops);
    if (write(STDOUT_FILENO, line, (size_t)len) != len) {
        return 1;
    }
    if (!sandboxed) {
        job_close(&job);
        aio_context_free(ctx);
    }
    return 0;
}

/* IOPS @a against @b: their ratios, and what a request costs more in ns. */
static void print_cost(bool on, const struct CostTarget *t, const double *a,
                       const double *b, int n, double events_per_io)
{
    double ratio[COST_ROUNDS], delta_ns[COST_ROUNDS];
    char what[256];
    int len;

    for (int k = 0; k < n; k++) {
        ratio[k] = a[k] / b[k];
        delta_ns[k] = 1e9 / a[k] - 1e9 / b[k];
    }
    len = snprintf(what, sizeof(what), "bench=block driver=%s opts=%s qd=%d",
                   t->driver, t->opts, t->qd);
    if (on) {
        snprintf(what + len, sizeof(what) - len, " events_per_io=%.2f",
                 events_per_io);
    }
    trace_cost_print(on, what, "iops_ratio", ratio, "ns_per_io", delta_ns, n);
}

static int measure_trace_cost(AioContext *ctx, const char *image,
                              const char *none_bin)
{
    const char *self = trace_cost_self();
    int64_t run_ns = (int64_t)COST_ON_RUN_MS * NS_PER_MS;

    printf("trace points' cost, 4 KiB random reads, on one CPU: off, %d "
           "rounds of %d ms runs; on, %d rounds of %d ms (docs/tracing.md)\n",
           COST_OFF_ROUNDS, COST_OFF_RUN_MS, COST_ON_ROUNDS, COST_ON_RUN_MS);
    trace_cost_pin();
    warm_page_cache(image);
    for (size_t i = 0; i < sizeof(cost_targets) / sizeof(cost_targets[0]);
         i++) {
        const struct CostTarget *t = &cost_targets[i];
        const char *path = t->path ? t->path : image;
        double a[COST_ROUNDS], b[COST_ROUNDS];
        uint64_t events = 0, ios = 0;
        char args[1024];

        if (none_bin && self) {
            snprintf(args, sizeof(args), "--run '%s' '%s' %d %d", path, t->opts,
                     t->qd, COST_OFF_RUN_MS);
            if (trace_cost_off_rounds(self, none_bin, args, COST_OFF_ROUNDS, a,
                                      b) < 0) {
                return 1;
            }
            print_cost(false, t, a, b, COST_OFF_ROUNDS, 0);
        }
        for (int k = 0; k < COST_ON_ROUNDS; k++) {
            for (int side = 0; side < 2; side++) {
                bool on = (side == 0) == trace_cost_in_first(k);
                Result res;

                if (on && trace_cost_start() < 0) {
                    return 1;
                }
                if (run_job(ctx, path, t->opts, t->qd, run_ns, &res) < 0) {
                    return 1;
                }
                if (on) {
                    events += trace_cost_stop();
                    ios += res.ios;
                }
                (on ? a : b)[k] = res.iops;
            }
        }
        print_cost(true, t, a, b, COST_ON_ROUNDS,
                   ios ? (double)events / ios : 0);
    }
    if (!none_bin) {
        printf("no trace-off-cost lines: no --trace-none BIN (make "
               "bench-block gives it)\n");
    }
    return 0;
}

/* ---- What the sandbox costs --------------------------------------------- */

/*
 * A seccomp filter runs on every system call, so its cost per request is
 * in proportion to the calls a request makes: the page-cache image on
 * io_uring (one io_uring_enter per wait) at QD1 and QD32, and on the
 * threads engine at QD1 (a preadv per request in a worker, under the
 * worker's filter stacked on the IOThread's, and the eventfd that wakes
 * the context). null makes no calls per request and is left out. A filter
 * cannot be taken off a thread, so each side is a whole child process,
 * sandboxed or not, in alternating rounds, as the trace-off comparison is.
 */
static const struct CostTarget seccomp_targets[] = {
    {"file", NULL, "aio=io_uring,cache=writeback", 1},
    {"file", NULL, "aio=io_uring,cache=writeback", 32},
    {"file", NULL, "aio=threads,cache=writeback", 1},
};

#define SECCOMP_ROUNDS 41
#define SECCOMP_RUN_MS 100

static int measure_seccomp_cost(const char *image)
{
    const char *self = trace_cost_self();
    char in_bin[4200], out_bin[4200], args[1024], what[256];
    double a[SECCOMP_ROUNDS], b[SECCOMP_ROUNDS];
    double ratio[SECCOMP_ROUNDS], delta_ns[SECCOMP_ROUNDS];

    if (!self) {
        printf("no seccomp-cost lines: cannot find this binary\n");
        return 0;
    }
    snprintf(in_bin, sizeof(in_bin), "BENCH_CHILD_SECCOMP=1 '%s'", self);
    snprintf(out_bin, sizeof(out_bin), "'%s'", self);
    printf("the sandbox's cost, 4 KiB random reads, on one CPU: %d rounds "
           "of %d ms runs, sandboxed (the IOThread role's filter) against "
           "not\n",
           SECCOMP_ROUNDS, SECCOMP_RUN_MS);
    trace_cost_pin();
    warm_page_cache(image);
    for (size_t i = 0; i < sizeof(seccomp_targets) / sizeof(seccomp_targets[0]);
         i++) {
        const struct CostTarget *t = &seccomp_targets[i];

        snprintf(args, sizeof(args), "--run '%s' '%s' %d %d", image, t->opts,
                 t->qd, SECCOMP_RUN_MS);
        if (trace_cost_off_rounds(in_bin, out_bin, args, SECCOMP_ROUNDS, a, b) <
            0) {
            return 1;
        }
        for (int k = 0; k < SECCOMP_ROUNDS; k++) {
            ratio[k] = a[k] / b[k];
            delta_ns[k] = 1e9 / a[k] - 1e9 / b[k];
        }
        snprintf(what, sizeof(what), "bench=block driver=%s opts=%s qd=%d",
                 t->driver, t->opts, t->qd);
        cost_print("seccomp-cost",
                   "sandboxed / not, alternating whole runs of one binary",
                   what, "iops_ratio", ratio, "ns_per_io", delta_ns,
                   SECCOMP_ROUNDS);
    }
    return 0;
}

/* ---- Main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    AioContextOptions ctx_opts = {.name = "bench", .fdmon = AIO_FDMON_IO_URING};
    const char *dir = getenv("MINIVMM_BENCH_DIR");
    const char *env_seconds = getenv("BENCH_BLOCK_SECONDS");
    const char *only = getenv("BENCH_BLOCK_ONLY"); /* for profiling */
    const char *none_bin = NULL;
    bool cost_only = false, seccomp_only = false;
    char image[512];
    AioContext *ctx;
    int ret;

    if (argc == 6 && !strcmp(argv[1], "--run")) {
        return run_one(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--trace-none") && i + 1 < argc) {
            none_bin = argv[++i];
        } else if (!strcmp(argv[i], "--trace-cost-only")) {
            cost_only = true;
        } else if (!strcmp(argv[i], "--seccomp-cost-only")) {
            seccomp_only = true;
        } else {
            fprintf(stderr, "Usage: bench-block [--trace-none BIN] "
                            "[--trace-cost-only] [--seccomp-cost-only]\n"
                            "       bench-block --run PATH OPTS QD MS\n");
            return 2;
        }
    }
    if (env_seconds && atoi(env_seconds) > 0) {
        seconds = atoi(env_seconds);
    }
    snprintf(image, sizeof(image), "%s/minivmm-bench-block.img",
             dir && *dir ? dir : "/var/tmp");
    if (prepare_image(image) < 0) {
        return 1;
    }
    ctx = aio_context_new(&ctx_opts);
    if (!ctx) {
        fprintf(stderr, "bench-block: no io_uring context: %s\n",
                strerror(errno));
        return 1;
    }
    aio_set_thread_context(ctx);
    ret = cost_only || seccomp_only ? 0 : run_table(ctx, image, only);
    if (ret == 0 && !only && !seccomp_only) {
        ret = measure_trace_cost(ctx, image, none_bin);
    }
    if (ret == 0 && !only && !cost_only) {
        ret = measure_seccomp_cost(image);
    }
    aio_context_free(ctx);
    return ret;
}
