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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/bench/sort.h"
#include "aio/aio.h"
#include "block/block.h"
#include "util/clock.h"

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

/* Open @path with @opts and read for the configured time at @qd. */
static int run_job(AioContext *ctx, const char *path, const char *opts, int qd,
                   Result *res)
{
    static Job job;
    char err[256];
    BlockStats st;
    int64_t start, end;
    void *bufs;
    int ret;

    memset(&job, 0, sizeof(job));
    ret = blk_open_string(path, opts, &job.blk, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "bench-block: %s\n", err);
        return ret;
    }
    if (posix_memalign(&bufs, BS, (size_t)qd * BS)) {
        abort();
    }
    memset(bufs, 0, (size_t)qd * BS);
    job.nblocks = blk_size(job.blk) / BS;
    job.seed = 0x2545f4914f6cdd1dull;

    start = clock_ns();
    end = start + seconds * NS_PER_S;
    for (int i = 0; i < qd; i++) {
        job.slots[i].job = &job;
        job.slots[i].iov.iov_base = (char *)bufs + (size_t)i * BS;
        job.slots[i].iov.iov_len = BS;
        slot_submit(&job.slots[i]);
    }
    while (clock_ns() < end) {
        aio_poll(ctx, true);
    }
    job.stop = true;
    end = clock_ns();
    blk_drain(job.blk);

    blk_get_stats(job.blk, &st);
    res->iops = (double)job.completed / ((double)(end - start) / NS_PER_S);
    res->p50_us = blk_stats_percentile_ns(&st.op[BLOCK_OP_READ], 50) / 1e3;
    res->p99_us = blk_stats_percentile_ns(&st.op[BLOCK_OP_READ], 99) / 1e3;
    if (getenv("BENCH_BLOCK_STATS")) {
        blk_stats_print(job.blk, stderr);
    }
    blk_close(job.blk);
    free(bufs);
    return job.errors ? -EIO : 0;
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

int main(void)
{
    AioContextOptions ctx_opts = {.name = "bench", .fdmon = AIO_FDMON_IO_URING};
    const char *dir = getenv("MINIVMM_BENCH_DIR");
    const char *env_seconds = getenv("BENCH_BLOCK_SECONDS");
    const char *only = getenv("BENCH_BLOCK_ONLY"); /* for profiling */
    char image[512];
    AioContext *ctx;
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
    double ratio, fio_batched;

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
        if (run_job(ctx, r->path, r->opts, 1, &r->qd1) < 0 ||
            run_job(ctx, r->path, r->opts, 32, &r->qd32) < 0) {
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

        if (run_job(ctx, image, "aio=io_uring,cache=none", 32, &res) < 0) {
            return 1;
        }
        ours[k] = res.iops;
        theirs[k] = run_fio(image, 32, "");
    }
    aio_context_free(ctx);
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
