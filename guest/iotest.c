/*
 * iotest: the seed disk workload, run inside the guest (and on the host to
 * make disk images). Reads SIZE MiB with O_DIRECT in CHUNK KiB requests,
 * BATCH at a time through io_uring: sleep before each batch's submit, then
 * reap the batch's completions one at a time, sleeping after each one. The
 * sleeps set a floor (128 MiB: 64 x 17 ms = 1.09 s); any stall in the
 * VMM's I/O path shows up on top of it. tests/bench/iotest.c drives the
 * same workload through qtest, so the two measure the same thing: a batch's
 * time runs from its submit to the end of processing its last completion.
 *
 *   iotest [options] PATH      see usage() below
 *
 * Success prints exactly one line on stdout and exits 0; any I/O error,
 * short read or pattern mismatch prints "iotest: label=L dev=P error=..."
 * on stderr and exits 1. A static binary: the guest has no libraries.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest/pattern.h"

#define NS_PER_S     1000000000LL
#define MAX_BATCH    1024
#define BUF_ALIGN    4096
#define MAX_SIZE_MIB (1u << 24) /* 16 TiB: keeps every offset in range */

typedef struct Iotest {
    const char *path;
    const char *label;
    unsigned size_mib;
    unsigned chunk_kib;
    unsigned batch;
    unsigned sleep_before_us;
    unsigned sleep_after_us;
    bool sync;
    bool check;
    bool fill;

    int fd;
    uint64_t size;  /* bytes to read or write */
    uint32_t chunk; /* bytes per request */
    uint8_t *bufs;  /* batch buffers, chunk bytes each, O_DIRECT aligned */
    unsigned nbatches;
    int64_t *batch_ns; /* per-batch time, submit to last completion done */
} Iotest;

/* One request of the current batch; its slot is its index. */
typedef struct IotestReq {
    uint64_t off;
    uint32_t len;
} IotestReq;

static int64_t clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {.tv_sec = us / 1000000,
                          .tv_nsec = (us % 1000000) * 1000L};

    if (!us) {
        return;
    }
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(const Iotest *t, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "iotest: label=%s dev=%s error=", t->label, t->path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: iotest [options] PATH\n"
           "  --size-mib N         bytes to read, in MiB (default 128)\n"
           "  --chunk-kib N        bytes per request, in KiB (default 128)\n"
           "  --batch N            requests submitted at once (default 16)\n"
           "  --sleep-before-us N  sleep before each batch (default 1000)\n"
           "  --sleep-after-us N   sleep after each completion (default 1000)\n"
           "  --sync               pread, one request at a time, no io_uring\n"
           "  --check              verify every byte read against the pattern\n"
           "  --fill               write the pattern instead (makes images)\n"
           "  --label NAME         name for the output line\n");
}

static unsigned parse_uint(const char *opt, const char *s, unsigned min,
                           unsigned max)
{
    unsigned long v;
    char *end;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max) {
        fprintf(stderr, "iotest: %s wants a number in %u..%u, not '%s'\n", opt,
                min, max, s);
        exit(2);
    }
    return v;
}

static void parse_args(Iotest *t, int argc, char **argv)
{
    enum { O_SIZE = 256, O_CHUNK, O_BATCH, O_BEFORE, O_AFTER, O_LABEL };
    static const struct option opts[] = {
        {"size-mib", required_argument, NULL, O_SIZE},
        {"chunk-kib", required_argument, NULL, O_CHUNK},
        {"batch", required_argument, NULL, O_BATCH},
        {"sleep-before-us", required_argument, NULL, O_BEFORE},
        {"sleep-after-us", required_argument, NULL, O_AFTER},
        {"label", required_argument, NULL, O_LABEL},
        {"sync", no_argument, NULL, 's'},
        {"check", no_argument, NULL, 'c'},
        {"fill", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *t = (Iotest){.size_mib = 128,
                  .chunk_kib = 128,
                  .batch = 16,
                  .sleep_before_us = 1000,
                  .sleep_after_us = 1000,
                  .fd = -1};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_SIZE:
            t->size_mib = parse_uint("--size-mib", optarg, 1, MAX_SIZE_MIB);
            break;
        case O_CHUNK:
            /* Whole KiB keep every request O_DIRECT-aligned (512). */
            t->chunk_kib = parse_uint("--chunk-kib", optarg, 1, 64 * 1024);
            break;
        case O_BATCH:
            t->batch = parse_uint("--batch", optarg, 1, MAX_BATCH);
            break;
        case O_BEFORE:
            t->sleep_before_us =
                parse_uint("--sleep-before-us", optarg, 0, 10000000);
            break;
        case O_AFTER:
            t->sleep_after_us =
                parse_uint("--sleep-after-us", optarg, 0, 10000000);
            break;
        case O_LABEL:
            t->label = optarg;
            break;
        case 's':
            t->sync = true;
            break;
        case 'c':
            t->check = true;
            break;
        case 'f':
            t->fill = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "iotest: want exactly one PATH\n");
        usage(stderr);
        exit(2);
    }
    if (t->fill && (t->sync || t->check)) {
        fprintf(stderr, "iotest: --fill takes no --sync or --check\n");
        exit(2);
    }
    t->path = argv[optind];
    if (!t->label) {
        const char *slash = strrchr(t->path, '/');

        t->label = slash ? slash + 1 : t->path;
    }
    t->size = (uint64_t)t->size_mib << 20;
    t->chunk = t->chunk_kib << 10;
}

/* The target's size in bytes: a block device or a regular file. */
static uint64_t target_size(const Iotest *t)
{
    struct stat st;
    uint64_t bytes;

    if (fstat(t->fd, &st) < 0) {
        die(t, "fstat: %s", strerror(errno));
    }
    if (S_ISREG(st.st_mode)) {
        return st.st_size;
    }
    if (!S_ISBLK(st.st_mode)) {
        die(t, "not a block device or regular file");
    }
    if (ioctl(t->fd, BLKGETSIZE64, &bytes) < 0) {
        die(t, "BLKGETSIZE64: %s", strerror(errno));
    }
    return bytes;
}

/* Write the pattern over the first SIZE bytes, extending a file if short. */
static void run_fill(Iotest *t)
{
    struct stat st;
    int64_t start = clock_ns();
    double secs;

    t->fd = open(t->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (t->fd < 0) {
        die(t, "open: %s", strerror(errno));
    }
    if (fstat(t->fd, &st) == 0 && S_ISBLK(st.st_mode) &&
        target_size(t) < t->size) {
        die(t, "device has %llu bytes, need %llu",
            (unsigned long long)target_size(t), (unsigned long long)t->size);
    }
    for (uint64_t off = 0; off < t->size; off += t->chunk) {
        size_t len = t->size - off < t->chunk ? t->size - off : t->chunk;

        pattern_fill(t->bufs, off, len);
        for (size_t done = 0; done < len;) {
            ssize_t n = pwrite(t->fd, t->bufs + done, len - done, off + done);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                die(t, "write at %llu: %s", (unsigned long long)(off + done),
                    n < 0 ? strerror(errno) : "no progress");
            }
            done += n;
        }
    }
    if (fsync(t->fd) < 0) {
        die(t, "fsync: %s", strerror(errno));
    }
    secs = (clock_ns() - start) / 1e9;
    printf("iotest: label=%s dev=%s mib=%u chunk_kib=%u fill=ok total_s=%.3f "
           "mibps=%.1f\n",
           t->label, t->path, t->size_mib, t->chunk_kib, secs,
           t->size_mib / secs);
}

/* Lay out batch @b's requests; returns how many (fewer only at the end). */
static unsigned batch_reqs(const Iotest *t, unsigned b, IotestReq *reqs)
{
    uint64_t base = (uint64_t)b * t->batch * t->chunk;
    unsigned n = 0;

    for (; n < t->batch; n++) {
        uint64_t off = base + (uint64_t)n * t->chunk;

        if (off >= t->size) {
            break;
        }
        reqs[n].off = off;
        reqs[n].len = t->size - off < t->chunk ? t->size - off : t->chunk;
    }
    return n;
}

/* A request finished with @res: fail on error or short read, then check. */
static void complete_req(const Iotest *t, const IotestReq *req, unsigned slot,
                         long res)
{
    uint64_t bad;

    if (res < 0) {
        die(t, "read at %llu: %s", (unsigned long long)req->off,
            strerror(-res));
    }
    if (res != (long)req->len) {
        die(t, "short read at %llu: %ld of %u bytes",
            (unsigned long long)req->off, res, req->len);
    }
    if (t->check) {
        bad = pattern_check(t->bufs + (size_t)slot * t->chunk, req->off,
                            req->len);
        if (bad != UINT64_MAX) {
            die(t, "pattern mismatch at byte %llu", (unsigned long long)bad);
        }
    }
    /* "Processing" a completion is a sleep: the workload's think time. */
    sleep_us(t->sleep_after_us);
}

static void run_uring(Iotest *t)
{
    IotestReq reqs[MAX_BATCH];
    struct io_uring ring;
    int ret;

    ret = io_uring_queue_init(t->batch, &ring, 0);
    if (ret < 0) {
        die(t, "io_uring_queue_init: %s (try --sync)", strerror(-ret));
    }
    for (unsigned b = 0; b < t->nbatches; b++) {
        unsigned n = batch_reqs(t, b, reqs);
        int64_t start;

        sleep_us(t->sleep_before_us);
        start = clock_ns();
        for (unsigned i = 0; i < n; i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

            /* The ring has batch entries and the last batch was reaped. */
            io_uring_prep_read(sqe, t->fd, t->bufs + (size_t)i * t->chunk,
                               reqs[i].len, reqs[i].off);
            io_uring_sqe_set_data64(sqe, i);
        }
        ret = io_uring_submit(&ring);
        if (ret != (int)n) {
            die(t, "io_uring_submit: %s",
                ret < 0 ? strerror(-ret) : "submitted fewer than queued");
        }
        for (unsigned done = 0; done < n;) {
            struct io_uring_cqe *cqe;
            uint64_t slot;
            long res;

            ret = io_uring_wait_cqe(&ring, &cqe);
            if (ret == -EINTR) {
                continue;
            }
            if (ret < 0) {
                die(t, "io_uring_wait_cqe: %s", strerror(-ret));
            }
            slot = io_uring_cqe_get_data64(cqe);
            res = cqe->res;
            io_uring_cqe_seen(&ring, cqe);
            if (slot >= n) {
                die(t, "completion for unknown slot %llu",
                    (unsigned long long)slot);
            }
            complete_req(t, &reqs[slot], slot, res);
            done++;
        }
        t->batch_ns[b] = clock_ns() - start;
    }
    io_uring_queue_exit(&ring);
}

/* The same batches with pread, one request at a time: a reference path. */
static void run_sync(Iotest *t)
{
    IotestReq reqs[MAX_BATCH];

    for (unsigned b = 0; b < t->nbatches; b++) {
        unsigned n = batch_reqs(t, b, reqs);
        int64_t start;

        sleep_us(t->sleep_before_us);
        start = clock_ns();
        for (unsigned i = 0; i < n; i++) {
            ssize_t res;

            do {
                res = pread(t->fd, t->bufs + (size_t)i * t->chunk, reqs[i].len,
                            reqs[i].off);
            } while (res < 0 && errno == EINTR);
            complete_req(t, &reqs[i], i, res < 0 ? -errno : res);
        }
        t->batch_ns[b] = clock_ns() - start;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted @v; p50 matches tests/bench/iotest.c. */
static double pct_ms(const int64_t *v, unsigned n, unsigned pct)
{
    unsigned i = (unsigned)((uint64_t)n * pct / 100);

    return v[i < n ? i : n - 1] / 1e6;
}

static void run_read(Iotest *t)
{
    uint64_t have;
    int64_t start;
    double secs;
    unsigned n;

    t->fd = open(t->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (t->fd < 0) {
        die(t, "open O_DIRECT: %s", strerror(errno));
    }
    have = target_size(t);
    if (have < t->size) {
        die(t, "device has %llu bytes, need %llu", (unsigned long long)have,
            (unsigned long long)t->size);
    }
    n = t->nbatches =
        (t->size + (uint64_t)t->batch * t->chunk - 1) / t->batch / t->chunk;
    t->batch_ns = calloc(n, sizeof(*t->batch_ns));
    if (!t->batch_ns) {
        die(t, "out of memory");
    }

    start = clock_ns();
    if (t->sync) {
        run_sync(t);
    } else {
        run_uring(t);
    }
    secs = (clock_ns() - start) / 1e9;

    qsort(t->batch_ns, n, sizeof(*t->batch_ns), cmp_i64);
    printf("iotest: label=%s dev=%s mib=%u chunk_kib=%u batch=%u "
           "total_s=%.3f mibps=%.1f batch_p50_ms=%.3f batch_p90_ms=%.3f "
           "batch_p99_ms=%.3f batch_max_ms=%.3f check=%s\n",
           t->label, t->path, t->size_mib, t->chunk_kib, t->batch, secs,
           t->size_mib / secs, pct_ms(t->batch_ns, n, 50),
           pct_ms(t->batch_ns, n, 90), pct_ms(t->batch_ns, n, 99),
           t->batch_ns[n - 1] / 1e6, t->check ? "ok" : "off");
    free(t->batch_ns);
}

int main(int argc, char **argv)
{
    Iotest t;
    int ret;

    parse_args(&t, argc, argv);
    ret =
        posix_memalign((void **)&t.bufs, BUF_ALIGN, (size_t)t.batch * t.chunk);
    if (ret) {
        die(&t, "cannot allocate %u x %u KiB: %s", t.batch, t.chunk_kib,
            strerror(ret));
    }
    if (t.fill) {
        run_fill(&t);
    } else {
        run_read(&t);
    }
    free(t.bufs);
    close(t.fd);
    /* A full console or closed stdout must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        return 1;
    }
    return 0;
}
