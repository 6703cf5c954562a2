/*
 * Tests of the block layer (block/). One set of tests runs against every
 * engine; the data tests also run with cache=none (O_DIRECT), which needs a
 * filesystem that supports it: images live in $MINIVMM_TEST_DIR or
 * /var/tmp, not /tmp (often tmpfs). Where O_DIRECT is refused, the cache=none
 * variants print a SKIP note and return.
 *
 * Loop index: bit 0 = engine (0 io_uring, 1 threads), bit 1 = cache=none.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aio/aio.h"
#include "aio/iothread.h"
#include "aio/main-loop.h"
#include "block/block.h"
#include "tests/unit/loop-thread.h"
#include "tests/unit/suites.h"
#include "util/clock.h"
#include "util/compiler.h"

#define ENGINES      2
#define VARIANTS     4
#define IMG_SIZE     (4u << 20)
#define SMALL_SIZE   (64u << 10)
#define ERRLEN       256
#define WAIT_TIMEOUT (10 * NS_PER_S)

static const char *const engine_names[] = {"io_uring", "threads"};

/* ---- Fixture: a context for this thread, an image, a backend ------------- */

typedef struct Fixture {
    AioContext *ctx;
    BlockBackend *blk;
    int fd; /* our own descriptor on the image, to check behind blk's back */
    uint64_t size;
    uint8_t *ref; /* what the image should contain */
    int variant;
} Fixture;

static const char *image_dir(void)
{
    const char *dir = getenv("MINIVMM_TEST_DIR");

    return dir && *dir ? dir : "/var/tmp";
}

static uint8_t pattern_byte(uint64_t i)
{
    return (uint8_t)(i * 131 + (i >> 12) + 7);
}

/* An image of @size bytes filled with pattern_byte(), unlinked once open. */
static int make_image(uint64_t size, char *path, size_t pathlen)
{
    uint8_t *buf = malloc(size);
    int fd;

    snprintf(path, pathlen, "%s/minivmm-test-block-XXXXXX", image_dir());
    fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp in %s: %s", image_dir(), strerror(errno));
    for (uint64_t i = 0; i < size; i++) {
        buf[i] = pattern_byte(i);
    }
    ck_assert_int_eq(pwrite(fd, buf, size, 0), (ssize_t)size);
    free(buf);
    return fd;
}

static const char *variant_options(int variant)
{
    static const char *const opts[VARIANTS] = {
        "aio=io_uring,cache=writeback",
        "aio=threads,cache=writeback",
        "aio=io_uring,cache=none",
        "aio=threads,cache=none",
    };
    return opts[variant];
}

static AioContext *new_thread_ctx(AioFdmonKind fdmon)
{
    AioContextOptions opts = {.name = "test-block", .fdmon = fdmon};
    AioContext *c = aio_context_new(&opts);

    ck_assert_msg(c, "aio_context_new: %s", strerror(errno));
    aio_set_thread_context(c);
    return c;
}

/*
 * Returns false (after a SKIP note) if the variant needs O_DIRECT and the
 * filesystem of the image directory refuses it.
 */
static bool fixture_open_extra(Fixture *f, int variant, uint64_t size,
                               const char *extra)
{
    char path[256], opts[128], err[ERRLEN];
    int ret;

    memset(f, 0, sizeof(*f));
    f->variant = variant;
    f->size = size;
    f->ctx = new_thread_ctx(AIO_FDMON_IO_URING);
    f->fd = make_image(size, path, sizeof(path));
    snprintf(opts, sizeof(opts), "%s%s%s", variant_options(variant),
             extra ? "," : "", extra ? extra : "");
    ret = blk_open_string(path, opts, &f->blk, err, sizeof(err));
    unlink(path);
    if (ret == -EINVAL && (variant & 2) && strstr(err, "O_DIRECT")) {
        fprintf(stderr, "SKIP %s: %s\n", opts, err);
        close(f->fd);
        aio_context_free(f->ctx);
        return false;
    }
    ck_assert_msg(ret == 0, "blk_open %s: %s", opts, err);
    ck_assert_str_eq(blk_engine_name(f->blk), engine_names[variant & 1]);
    f->ref = malloc(size);
    for (uint64_t i = 0; i < size; i++) {
        f->ref[i] = pattern_byte(i);
    }
    return true;
}

static bool fixture_open(Fixture *f, int variant, uint64_t size)
{
    return fixture_open_extra(f, variant, size, NULL);
}

static void fixture_close(Fixture *f)
{
    blk_close(f->blk);
    ck_assert_int_eq(close(f->fd), 0);
    free(f->ref);
    aio_context_free(f->ctx);
}

/*
 * Buffers are compared with one assertion each, not one per byte: Check
 * reports every assertion to its parent process.
 */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return (int64_t)i;
        }
    }
    return -1;
}

static bool all_bytes(const uint8_t *buf, size_t n, uint8_t value)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != value) {
            return false;
        }
    }
    return true;
}

/* The whole file, read behind the backend's back, matches the reference. */
static void check_image(Fixture *f)
{
    uint8_t *buf = malloc(f->size);
    int64_t at;

    ck_assert_int_eq(pread(f->fd, buf, f->size, 0), (ssize_t)f->size);
    at = first_diff(buf, f->ref, f->size);
    ck_assert_msg(at < 0, "image byte %lld: %#x, want %#x", (long long)at,
                  buf[at < 0 ? 0 : at], f->ref[at < 0 ? 0 : at]);
    free(buf);
}

/* ---- Requests and waiting ------------------------------------------------ */

#define MAX_PIECES 8

typedef struct TestReq {
    BlockRequest req;
    struct iovec iov[MAX_PIECES];
    atomic_int done; /* callbacks run: must end at exactly 1 */
    int ret;
    pthread_t done_on;
    AioContext *done_ctx;
} TestReq;

static void test_req_cb(void *opaque, int ret)
{
    TestReq *t = opaque;

    t->ret = ret;
    t->done_on = pthread_self();
    t->done_ctx = aio_current_context();
    atomic_fetch_add(&t->done, 1);
}

static void prep(TestReq *t, BlockOp op, uint64_t offset, uint64_t len)
{
    memset(t, 0, sizeof(*t));
    t->req.op = op;
    t->req.offset = offset;
    t->req.len = len;
    t->req.cb = test_req_cb;
    t->req.opaque = t;
}

static void prep_buf(TestReq *t, BlockOp op, uint64_t offset, void *buf,
                     size_t len)
{
    prep(t, op, offset, 0);
    t->iov[0].iov_base = buf;
    t->iov[0].iov_len = len;
    t->req.iov = t->iov;
    t->req.iovcnt = 1;
}

/* Poll this thread's context until @n requests of @reqs completed. */
static void wait_all(AioContext *ctx, TestReq *reqs, int n)
{
    for (int i = 0; i < n; i++) {
        while (!atomic_load(&reqs[i].done)) {
            aio_poll(ctx, true);
        }
        ck_assert_int_eq(atomic_load(&reqs[i].done), 1);
    }
}

/* Submit, check the completion did not run inside blk_submit(), wait. */
static int run(Fixture *f, TestReq *t)
{
    ck_assert_int_eq(blk_submit(f->blk, &t->req), 0);
    ck_assert_int_eq(atomic_load(&t->done), 0);
    wait_all(f->ctx, t, 1);
    ck_assert(pthread_equal(t->done_on, pthread_self()));
    return t->ret;
}

static int run_buf(Fixture *f, BlockOp op, uint64_t offset, void *buf,
                   size_t len)
{
    TestReq t;

    prep_buf(&t, op, offset, buf, len);
    return run(f, &t);
}

static int run_range(Fixture *f, BlockOp op, uint64_t offset, uint64_t len)
{
    TestReq t;

    prep(&t, op, offset, len);
    return run(f, &t);
}

static BlockStats get_stats(BlockBackend *blk)
{
    BlockStats st;

    blk_get_stats(blk, &st);
    return st;
}

/* Cross-thread waiting, for completions on another thread's context. */
static void wait_done_from_afar(TestReq *t)
{
    int64_t deadline = clock_ns() + WAIT_TIMEOUT;

    while (!atomic_load(&t->done)) {
        ck_assert_msg(clock_ns() < deadline, "request never completed");
        usleep(100);
    }
}

/* xorshift64: reproducible random numbers for the random test. */
static uint64_t rnd(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* ---- Data: random shapes, read back byte for byte ------------------------ */

/*
 * Split @len bytes of @buf into up to MAX_PIECES iovecs of random sizes.
 * The buffer itself starts wherever the caller put it (misaligned or not).
 */
static int random_iov(struct iovec *iov, uint8_t *buf, size_t len,
                      uint64_t *seed, bool sector_pieces)
{
    int n = 1 + (int)(rnd(seed) % MAX_PIECES);
    size_t left = len;
    int cnt = 0;

    for (int i = 0; i < n && left; i++) {
        size_t piece = i == n - 1 ? left : 1 + rnd(seed) % left;

        if (sector_pieces) {
            piece = (piece + 511) & ~(size_t)511;
            if (piece > left) {
                piece = left;
            }
        }
        iov[cnt].iov_base = buf;
        iov[cnt].iov_len = piece;
        buf += piece;
        left -= piece;
        cnt++;
    }
    if (left) {
        iov[cnt - 1].iov_len += left;
    }
    return cnt;
}

START_TEST(test_random_rw_matches_reference)
{
    enum { ROUNDS = 300, MAX_LEN = 64 << 10 };
    uint64_t seed = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
    uint8_t *pool, *buf;
    BlockStats st;
    Fixture f;

    if (!fixture_open(&f, _i, IMG_SIZE)) {
        return;
    }
    ck_assert_int_eq(posix_memalign((void **)&pool, 4096, MAX_LEN + 8192), 0);
    for (int round = 0; round < ROUNDS; round++) {
        /* Half sector-shaped like a device's, half any byte at all. */
        bool sectors = rnd(&seed) & 1;
        uint64_t len = 1 + rnd(&seed) % MAX_LEN;
        uint64_t offset;
        bool write = rnd(&seed) & 1;
        TestReq t;

        if (sectors) {
            len = (len + 511) & ~511ull;
        }
        offset = rnd(&seed) % (IMG_SIZE - len + 1);
        if (sectors) {
            offset &= ~511ull;
        }
        buf = pool + (sectors ? 4096 * (rnd(&seed) & 1) : rnd(&seed) % 4096);
        prep(&t, write ? BLOCK_OP_WRITE : BLOCK_OP_READ, offset, 0);
        t.req.iov = t.iov;
        t.req.iovcnt = random_iov(t.iov, buf, len, &seed, sectors);
        if (write) {
            for (uint64_t i = 0; i < len; i++) {
                buf[i] = (uint8_t)rnd(&seed);
            }
            if (rnd(&seed) % 4 == 0) {
                t.req.flags = BLK_REQ_FUA;
            }
        } else {
            memset(buf, 0xee, len);
        }
        ck_assert_int_eq(run(&f, &t), 0);
        if (write) {
            memcpy(f.ref + offset, buf, len);
        } else {
            ck_assert_msg(!memcmp(buf, f.ref + offset, len),
                          "round %d: read %llu@%llu differs", round,
                          (unsigned long long)len, (unsigned long long)offset);
        }
    }
    check_image(&f);
    st = get_stats(f.blk);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].ops + st.op[BLOCK_OP_WRITE].ops,
                      ROUNDS);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].errors, 0);
    if (_i & 2) {
        /* Byte-granular requests cannot go straight to O_DIRECT. */
        ck_assert_uint_gt(st.bounced, 0);
        ck_assert_uint_gt(st.rmw, 0);
    } else {
        ck_assert_uint_eq(st.bounced, 0);
    }
    free(pool);
    fixture_close(&f);
}
END_TEST

/* 32 requests in flight at once, writes then reads, all distinct blocks. */
START_TEST(test_32_in_flight)
{
    enum { N = 32, BS = 4096 };
    static TestReq reqs[N];
    uint8_t *bufs;
    Fixture f;

    if (!fixture_open(&f, _i, IMG_SIZE)) {
        return;
    }
    ck_assert_int_eq(posix_memalign((void **)&bufs, 4096, N * BS), 0);
    for (int i = 0; i < N; i++) {
        memset(bufs + i * BS, 'a' + i % 26, BS);
        prep_buf(&reqs[i], BLOCK_OP_WRITE, (uint64_t)(N - i) * 3 * BS,
                 bufs + i * BS, BS);
        ck_assert_int_eq(blk_submit(f.blk, &reqs[i].req), 0);
        memcpy(f.ref + (N - i) * 3 * BS, bufs + i * BS, BS);
    }
    ck_assert_uint_eq(blk_in_flight(f.blk), N);
    wait_all(f.ctx, reqs, N);
    memset(bufs, 0, N * BS);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(reqs[i].ret, 0);
        prep_buf(&reqs[i], BLOCK_OP_READ, (uint64_t)(N - i) * 3 * BS,
                 bufs + i * BS, BS);
        ck_assert_int_eq(blk_submit(f.blk, &reqs[i].req), 0);
    }
    ck_assert_uint_eq(blk_in_flight(f.blk), N);
    wait_all(f.ctx, reqs, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(reqs[i].ret, 0);
        ck_assert(!memcmp(bufs + i * BS, f.ref + (N - i) * 3 * BS, BS));
    }
    ck_assert_uint_eq(blk_in_flight(f.blk), 0);
    check_image(&f);
    free(bufs);
    fixture_close(&f);
}
END_TEST

/* Misaligned writes sharing one O_DIRECT block must not undo each other. */
START_TEST(test_concurrent_rmw_keeps_every_write)
{
    enum { N = 16 };
    static TestReq reqs[N];
    uint8_t data[N][40];
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    for (int i = 0; i < N; i++) {
        uint64_t offset = 8192 + 100 + (uint64_t)i * 50; /* within 4 KiB */

        memset(data[i], 'A' + i, sizeof(data[i]));
        prep_buf(&reqs[i], BLOCK_OP_WRITE, offset, data[i], sizeof(data[i]));
        ck_assert_int_eq(blk_submit(f.blk, &reqs[i].req), 0);
        memcpy(f.ref + offset, data[i], sizeof(data[i]));
    }
    wait_all(f.ctx, reqs, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(reqs[i].ret, 0);
    }
    check_image(&f);
    if (_i & 2) {
        ck_assert_uint_eq(get_stats(f.blk).rmw, N);
    }
    fixture_close(&f);
}
END_TEST

/*
 * A read-modify-write cycle and a whole-block write (or write-zeroes) of the
 * same O_DIRECT block, both in flight: whichever order they come in, the
 * block must end up as if they ran in that order. If the whole-block write
 * landed between the cycle's read and its write-back, the cycle would write
 * the block's old bytes back over it. Each pair on its own block, many
 * pairs at once; loop 0: the cycle first, 1: the write first, 2: the cycle
 * first against a write-zeroes.
 */
START_TEST(test_rmw_and_whole_block_write_take_turns)
{
    enum { PAIRS = 24, BS = 4096, SMALL = 100 };
    static TestReq reqs[2 * PAIRS];
    int order = _i % 3, variant = 2 + _i / 3 % 2; /* O_DIRECT variants */
    uint8_t small[SMALL], *whole;
    Fixture f;

    if (!fixture_open(&f, variant, (PAIRS + 2) * BS)) {
        return;
    }
    if (blk_alignment(f.blk) > BS) {
        fprintf(stderr, "SKIP: O_DIRECT alignment %u\n", blk_alignment(f.blk));
        fixture_close(&f);
        return;
    }
    ck_assert_int_eq(posix_memalign((void **)&whole, BS, BS), 0);
    memset(whole, 'W', BS);
    memset(small, 's', SMALL);
    for (int p = 0; p < PAIRS; p++) {
        uint64_t block = (uint64_t)(p + 1) * BS;
        TestReq *rmw = &reqs[2 * p + (order == 1)];
        TestReq *full = &reqs[2 * p + (order != 1)];

        prep_buf(rmw, BLOCK_OP_WRITE, block + 1000, small, SMALL);
        if (order == 2) {
            prep(full, BLOCK_OP_WRITE_ZEROES, block, BS);
        } else {
            prep_buf(full, BLOCK_OP_WRITE, block, whole, BS);
        }
        ck_assert_int_eq(blk_submit(f.blk, &reqs[2 * p].req), 0);
        ck_assert_int_eq(blk_submit(f.blk, &reqs[2 * p + 1].req), 0);
        /* What running them in their order leaves. */
        memset(f.ref + block, order == 2 ? 0 : 'W', BS);
        if (order == 1) {
            memcpy(f.ref + block + 1000, small, SMALL);
        }
    }
    wait_all(f.ctx, reqs, 2 * PAIRS);
    for (int i = 0; i < 2 * PAIRS; i++) {
        ck_assert_int_eq(reqs[i].ret, 0);
    }
    check_image(&f);
    ck_assert_uint_eq(get_stats(f.blk).rmw, PAIRS);
    free(whole);
    fixture_close(&f);
}
END_TEST

/* ---- Flush, discard, write-zeroes ---------------------------------------- */

START_TEST(test_flush_reaches_fdatasync)
{
    uint8_t buf[4096];
    BlockStats st;
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    ck_assert_uint_eq(get_stats(f.blk).syncs, 0);
    memset(buf, 0x5a, sizeof(buf));
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_WRITE, 0, buf, sizeof(buf)), 0);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_FLUSH, 0, 0), 0);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_FLUSH, 0, 0), 0);
    st = get_stats(f.blk);
    ck_assert_uint_eq(st.syncs, 2);
    ck_assert_uint_eq(st.op[BLOCK_OP_FLUSH].ops, 2);
    fixture_close(&f);
}
END_TEST

static void check_range(Fixture *f, uint64_t offset, uint64_t len)
{
    uint8_t *buf = malloc(len);

    memset(buf, 0xee, len);
    ck_assert_int_eq(run_buf(f, BLOCK_OP_READ, offset, buf, len), 0);
    ck_assert(!memcmp(buf, f->ref + offset, len));
    free(buf);
}

START_TEST(test_discard_and_write_zeroes_read_back_zeros)
{
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    ck_assert_int_eq(run_range(&f, BLOCK_OP_DISCARD, 4096, 16384), 0);
    memset(f.ref + 4096, 0, 16384);
    /* Not sector-aligned: the filesystem zeroes the partial blocks. */
    ck_assert_int_eq(run_range(&f, BLOCK_OP_WRITE_ZEROES, 32768 + 100, 5000),
                     0);
    memset(f.ref + 32768 + 100, 0, 5000);
    check_range(&f, 0, SMALL_SIZE);
    check_image(&f);
    ck_assert_uint_eq(get_stats(f.blk).op[BLOCK_OP_DISCARD].ops, 1);
    fixture_close(&f);
}
END_TEST

/* ---- Short transfers ----------------------------------------------------- */

/*
 * A real short read: the file shrinks behind the backend's back, so a read
 * across the new end of file comes back short, the engine asks for the rest,
 * gets 0 (end of file) and zero-fills.
 */
START_TEST(test_short_read_at_eof_zero_fills)
{
    uint8_t buf[16384];
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    ck_assert_int_eq(ftruncate(f.fd, 32768), 0);
    memset(buf, 0xee, sizeof(buf));
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, 24576, buf, sizeof(buf)), 0);
    ck_assert(!memcmp(buf, f.ref + 24576, 8192));
    ck_assert(all_bytes(buf + 8192, sizeof(buf) - 8192, 0));
    ck_assert_uint_ge(get_stats(f.blk).resubmits, 1);
    fixture_close(&f);
}
END_TEST

/* A read whose tail crosses the end fails before any I/O, but later. */
START_TEST(test_beyond_end_is_einval)
{
    uint8_t buf[8192];
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    ck_assert_int_eq(
        run_buf(&f, BLOCK_OP_READ, SMALL_SIZE - 4096, buf, sizeof(buf)),
        -EINVAL);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_WRITE, SMALL_SIZE, buf, 512),
                     -EINVAL);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_DISCARD, 4096, SMALL_SIZE),
                     -EINVAL);
    /* offset + len would wrap around. */
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, UINT64_MAX - 100, buf, 512),
                     -EINVAL);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_WRITE_ZEROES, 512, UINT64_MAX),
                     -EINVAL);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, SMALL_SIZE - 512, buf, 512), 0);
    ck_assert_uint_eq(get_stats(f.blk).op[BLOCK_OP_READ].errors, 2);
    fixture_close(&f);
}
END_TEST

/*
 * The engine continues a transfer the kernel cut short: injection makes the
 * engine see half of the first result, over a multi-piece iovec, so the
 * rest starts in the middle of a piece.
 */
START_TEST(test_short_transfer_is_continued)
{
    enum { LEN = 24576 };
    uint8_t *buf;
    TestReq t;
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    ck_assert_int_eq(posix_memalign((void **)&buf, 4096, LEN), 0);
    for (int i = 0; i < LEN; i++) {
        buf[i] = (uint8_t)(i * 7 + 1);
    }
    blk_inject_short(f.blk, BLOCK_OP_WRITE, 1);
    prep(&t, BLOCK_OP_WRITE, 8192, 0);
    t.iov[0] = (struct iovec){buf, 4096};
    t.iov[1] = (struct iovec){buf + 4096, 16384};
    t.iov[2] = (struct iovec){buf + 20480, 4096};
    t.req.iov = t.iov;
    t.req.iovcnt = 3;
    ck_assert_int_eq(run(&f, &t), 0);
    memcpy(f.ref + 8192, buf, LEN);
    ck_assert_uint_eq(get_stats(f.blk).resubmits, 1);
    check_image(&f);

    memset(buf, 0, LEN);
    blk_inject_short(f.blk, BLOCK_OP_READ, 1);
    prep(&t, BLOCK_OP_READ, 8192, 0);
    t.iov[0] = (struct iovec){buf, 8192};
    t.iov[1] = (struct iovec){buf + 8192, 16384};
    t.req.iov = t.iov;
    t.req.iovcnt = 2;
    ck_assert_int_eq(run(&f, &t), 0);
    ck_assert(!memcmp(buf, f.ref + 8192, LEN));
    ck_assert_uint_eq(get_stats(f.blk).resubmits, 2);
    free(buf);
    fixture_close(&f);
}
END_TEST

/* ---- Error injection, delay, drain --------------------------------------- */

START_TEST(test_injected_eio_then_recovery)
{
    uint8_t buf[4096];
    BlockStats st;
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    blk_inject_error(f.blk, BLOCK_OP_READ, 2, EIO);
    blk_inject_error(f.blk, BLOCK_OP_FLUSH, 1, ENOSPC);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, 0, buf, sizeof(buf)), 0);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, 0, buf, sizeof(buf)), -EIO);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, 4096, buf, sizeof(buf)), 0);
    ck_assert(!memcmp(buf, f.ref + 4096, sizeof(buf)));
    ck_assert_int_eq(run_range(&f, BLOCK_OP_FLUSH, 0, 0), -ENOSPC);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_FLUSH, 0, 0), 0);
    st = get_stats(f.blk);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].ops, 3);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].errors, 1);
    ck_assert_uint_eq(st.syncs, 1); /* the failed flush did no I/O */
    fixture_close(&f);
}
END_TEST

START_TEST(test_drain_waits_for_delayed_requests)
{
    enum { N = 8 };
    static TestReq reqs[N];
    static uint8_t bufs[N][4096];
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    blk_inject_delay_us(f.blk, 20000);
    for (int i = 0; i < N; i++) {
        prep_buf(&reqs[i], BLOCK_OP_READ, (uint64_t)i * 4096, bufs[i], 4096);
        ck_assert_int_eq(blk_submit(f.blk, &reqs[i].req), 0);
    }
    ck_assert_uint_eq(blk_in_flight(f.blk), N);
    blk_drain(f.blk);
    ck_assert_uint_eq(blk_in_flight(f.blk), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&reqs[i].done), 1);
        ck_assert_int_eq(reqs[i].ret, 0);
        ck_assert(!memcmp(bufs[i], f.ref + i * 4096, 4096));
    }
    fixture_close(&f);
}
END_TEST

/* The SQ ring is full for a while: requests wait and go, none fails. */
START_TEST(test_full_queue_requests_are_retried)
{
    enum { N = 8 };
    static TestReq reqs[N];
    static uint8_t bufs[N][4096];
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    blk_inject_queue_full(f.blk, 5);
    for (int i = 0; i < N; i++) {
        prep_buf(&reqs[i], BLOCK_OP_READ, (uint64_t)i * 4096, bufs[i], 4096);
        ck_assert_int_eq(blk_submit(f.blk, &reqs[i].req), 0);
    }
    wait_all(f.ctx, reqs, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(reqs[i].ret, 0);
        ck_assert(!memcmp(bufs[i], f.ref + i * 4096, 4096));
    }
    if ((_i & 1) == 0) {
        ck_assert_uint_eq(get_stats(f.blk).queue_full, 5);
    }
    fixture_close(&f);
}
END_TEST

/* ---- Contexts: IOThreads and the main loop ------------------------------- */

typedef struct SubmitOn {
    BlockBackend *blk;
    TestReq *t;
    int ret;
    pthread_t thread;
    AioContext *ctx;
} SubmitOn;

static void submit_nothing(void *opaque)
{
    (void)opaque;
}

static void submit_here(void *opaque)
{
    SubmitOn *s = opaque;

    s->thread = pthread_self();
    s->ctx = aio_current_context();
    s->ret = blk_submit(s->blk, &s->t->req);
}

/*
 * A request submitted on an IOThread completes there. Submitted with a
 * delay, so that the test thread's drain has to wait for another context's
 * request: the last completion wakes it.
 */
START_TEST(test_iothread_requests_complete_on_iothread)
{
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING};
    IOThread *iothread = iothread_new("blk-io0", &opts);
    uint8_t buf[4096];
    SubmitOn s;
    TestReq t;
    Fixture f;

    ck_assert_ptr_nonnull(iothread);
    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        iothread_free(iothread);
        return;
    }
    prep_buf(&t, BLOCK_OP_READ, 8192, buf, sizeof(buf));
    s = (SubmitOn){.blk = f.blk, .t = &t};
    aio_run_in_context(iothread_get_context(iothread), submit_here, &s);
    ck_assert_int_eq(s.ret, 0);
    wait_done_from_afar(&t);
    ck_assert_int_eq(t.ret, 0);
    ck_assert(!memcmp(buf, f.ref + 8192, sizeof(buf)));
    ck_assert(pthread_equal(t.done_on, s.thread));
    ck_assert(!pthread_equal(t.done_on, pthread_self()));
    ck_assert_ptr_eq(t.done_ctx, iothread_get_context(iothread));

    blk_inject_delay_us(f.blk, 20000);
    prep_buf(&t, BLOCK_OP_READ, 0, buf, sizeof(buf));
    aio_run_in_context(iothread_get_context(iothread), submit_here, &s);
    ck_assert_int_eq(s.ret, 0);
    blk_drain(f.blk); /* polls our context; the IOThread completes it */
    ck_assert_int_eq(atomic_load(&t.done), 1);
    ck_assert(pthread_equal(t.done_on, s.thread));
    ck_assert(!memcmp(buf, f.ref, sizeof(buf)));
    fixture_close(&f);
    iothread_free(iothread);
}
END_TEST

/* A batch of writes that one context submits at once. */
#define BATCH 16

typedef struct WriteBatch {
    BlockBackend *blk;
    uint64_t base;
    TestReq reqs[BATCH];
    uint8_t data[BATCH][4096];
    pthread_t thread;
} WriteBatch;

static void submit_batch(void *opaque)
{
    WriteBatch *b = opaque;

    b->thread = pthread_self();
    for (int i = 0; i < BATCH; i++) {
        memset(b->data[i], (int)(b->base >> 12) + i, sizeof(b->data[i]));
        prep_buf(&b->reqs[i], BLOCK_OP_WRITE, b->base + (uint64_t)i * 4096,
                 b->data[i], sizeof(b->data[i]));
        ck_assert_int_eq(blk_submit(b->blk, &b->reqs[i].req), 0);
    }
}

/*
 * Two IOThreads and this thread submit at the same time; one drain on this
 * thread waits for all of them, and each request completed where it was
 * submitted.
 */
START_TEST(test_three_contexts_at_once)
{
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING};
    IOThread *iothreads[2];
    static WriteBatch batches[3];
    Fixture f;

    if (!fixture_open(&f, _i, IMG_SIZE)) {
        return;
    }
    for (int t = 0; t < 3; t++) {
        memset(&batches[t], 0, sizeof(batches[t]));
        batches[t].blk = f.blk;
        batches[t].base = (uint64_t)t * BATCH * 4096 + 65536;
    }
    for (int t = 0; t < 2; t++) {
        iothreads[t] = iothread_new("blk-io", &opts);
        ck_assert_ptr_nonnull(iothreads[t]);
        aio_bh_schedule_oneshot(iothread_get_context(iothreads[t]),
                                submit_batch, &batches[t]);
    }
    submit_batch(&batches[2]);
    /* The IOThreads may not have started theirs: wait until they did. */
    for (int t = 0; t < 2; t++) {
        aio_run_in_context(iothread_get_context(iothreads[t]), submit_nothing,
                           NULL);
    }
    blk_drain(f.blk);
    ck_assert_uint_eq(blk_in_flight(f.blk), 0);
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < BATCH; i++) {
            TestReq *r = &batches[t].reqs[i];

            ck_assert_int_eq(atomic_load(&r->done), 1);
            ck_assert_int_eq(r->ret, 0);
            ck_assert(pthread_equal(r->done_on, batches[t].thread));
            memcpy(f.ref + batches[t].base + (uint64_t)i * 4096,
                   batches[t].data[i], 4096);
        }
    }
    check_image(&f);
    fixture_close(&f);
    for (int t = 0; t < 2; t++) {
        iothread_free(iothreads[t]);
    }
}
END_TEST

/* The main loop on its own thread, with io_uring. */
static void start_main_loop(MainLoopThread *m)
{
    MainLoopOptions opts = {.fdmon = AIO_FDMON_IO_URING};

    main_loop_thread_start(m, &opts);
}

/*
 * A vCPU-like thread holding the big lock submits into the main context; the
 * completion runs on the main loop thread, whatever the engine (and, with
 * a delay, from the main context's timer armed by the lock holder).
 */
START_TEST(test_bql_holder_completes_on_main_loop)
{
    MainLoopThread m = {0};
    BlockBackend *blk;
    char path[256], err[ERRLEN];
    uint8_t buf[4096];
    TestReq t;
    int fd;

    fd = make_image(SMALL_SIZE, path, sizeof(path));
    ck_assert_int_eq(
        blk_open_string(path, variant_options(_i), &blk, err, sizeof(err)), 0);
    unlink(path);
    start_main_loop(&m);

    for (int round = 0; round < 2; round++) {
        blk_inject_delay_us(blk, round ? 1000 : 0);
        while (!main_loop_sleeping()) {
            usleep(100);
        }
        prep_buf(&t, BLOCK_OP_READ, 4096, buf, sizeof(buf));
        bql_lock();
        ck_assert_ptr_eq(aio_current_context(), main_loop_context());
        ck_assert_int_eq(blk_submit(blk, &t.req), 0);
        bql_unlock();
        wait_done_from_afar(&t);
        ck_assert_int_eq(t.ret, 0);
        ck_assert(pthread_equal(t.done_on, m.thread));
        ck_assert_ptr_eq(t.done_ctx, main_loop_context());
        for (int i = 0; i < 4096; i++) {
            buf[i] ^= pattern_byte(4096 + i);
        }
        ck_assert(all_bytes(buf, sizeof(buf), 0));
    }
    bql_lock();
    blk_close(blk); /* a lock holder drains in the main context */
    bql_unlock();
    main_loop_thread_stop(&m);
    close(fd);
}
END_TEST

/* aio=io_uring on a context without io_uring: the thread pool serves it. */
START_TEST(test_fallback_to_threads_without_io_uring)
{
    AioContext *ctx = new_thread_ctx(AIO_FDMON_POLL);
    BlockBackend *blk;
    char path[256], err[ERRLEN];
    uint8_t buf[4096];
    TestReq t;
    BlockStats st;
    int fd;

    fd = make_image(SMALL_SIZE, path, sizeof(path));
    ck_assert_int_eq(
        blk_open_string(path, "aio=io_uring", &blk, err, sizeof(err)), 0);
    unlink(path);
    ck_assert_str_eq(blk_engine_name(blk), "io_uring");
    for (int i = 0; i < 2; i++) {
        prep_buf(&t, BLOCK_OP_READ, 12288, buf, sizeof(buf));
        ck_assert_int_eq(blk_submit(blk, &t.req), 0);
        wait_all(ctx, &t, 1);
        ck_assert_int_eq(t.ret, 0);
        ck_assert(pthread_equal(t.done_on, pthread_self()));
        ck_assert_int_eq(buf[0], pattern_byte(12288));
    }
    st = get_stats(blk);
    ck_assert_uint_eq(st.fallbacks, 2);
    ck_assert_uint_eq(st.thread_reqs, 2);
    blk_close(blk);
    close(fd);
    aio_context_free(ctx);
}
END_TEST

/* ---- Opening
 * -----------------------------------------------------------------
 */

static void expect_open_error(const char *path, const char *opts, int err_no)
{
    BlockBackend *blk = (BlockBackend *)&blk; /* must be reset to NULL */
    char err[ERRLEN] = "";

    ck_assert_int_eq(blk_open_string(path, opts, &blk, err, sizeof(err)),
                     -err_no);
    ck_assert_ptr_null(blk);
    ck_assert_msg(strstr(err, path), "message '%s' does not name '%s'", err,
                  path);
}

/*
 * Image locks: OFD locks conflict between open file descriptions, so two
 * opens in one process behave as two minivmm processes would.
 */
START_TEST(test_open_locks_the_image)
{
    char path[256], err[512];
    BlockBackend *a, *b, *c;
    int fd = make_image(64 * 1024, path, sizeof(path));

    /* Read-write is exclusive, and the error names the image. */
    ck_assert_int_eq(blk_open_string(path, NULL, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(blk_open_string(path, NULL, &b, err, sizeof(err)), -EBUSY);
    ck_assert_msg(strstr(err, path) && strstr(err, "in use by another process"),
                  "%s", err);
    ck_assert_int_eq(blk_open_string(path, "readonly=on", &b, err, sizeof(err)),
                     -EBUSY);
    blk_close(a);

    /* Readers share; a writer waits for the last of them. */
    ck_assert_int_eq(blk_open_string(path, "readonly=on", &a, err, sizeof(err)),
                     0);
    ck_assert_int_eq(blk_open_string(path, "readonly=on", &b, err, sizeof(err)),
                     0);
    ck_assert_int_eq(blk_open_string(path, NULL, &c, err, sizeof(err)), -EBUSY);
    blk_close(a);
    ck_assert_int_eq(blk_open_string(path, NULL, &c, err, sizeof(err)), -EBUSY);
    blk_close(b);
    ck_assert_int_eq(blk_open_string(path, NULL, &c, err, sizeof(err)), 0);
    blk_close(c);
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(test_open_errors_name_the_path)
{
    char dir[256], path[300];
    int fd;

    snprintf(dir, sizeof(dir), "%s/minivmm-test-open-XXXXXX", image_dir());
    ck_assert_ptr_nonnull(mkdtemp(dir));

    snprintf(path, sizeof(path), "%s/missing.img", dir);
    expect_open_error(path, NULL, ENOENT);

    snprintf(path, sizeof(path), "%s/empty.img", dir);
    fd = open(path, O_CREAT | O_RDWR, 0600);
    ck_assert_int_ge(fd, 0);
    expect_open_error(path, NULL, EINVAL);
    close(fd);

    snprintf(path, sizeof(path), "%s/odd.img", dir);
    fd = open(path, O_CREAT | O_RDWR, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 1000), 0);
    expect_open_error(path, NULL, EINVAL);
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    expect_open_error(path, "aio=fast", EINVAL);
    expect_open_error(path, "cache=none,bogus=1", EINVAL);
    expect_open_error(path, "readonly", EINVAL);
    expect_open_error(path, "latency_ns=10", EINVAL); /* null:// only */
    if (geteuid() != 0) {
        /* Root reads anything: this case exists for everybody else. */
        ck_assert_int_eq(fchmod(fd, 0), 0);
        expect_open_error(path, "readonly=on", EACCES);
    }
    close(fd);
    unlink(path);
    snprintf(path, sizeof(path), "%s/empty.img", dir);
    unlink(path);

    expect_open_error(dir, NULL, EISDIR);
    expect_open_error("null://0", NULL, EINVAL);
    expect_open_error("null://1000", NULL, EINVAL);
    expect_open_error("null://12X", NULL, EINVAL);
    expect_open_error("null://99999999999G", NULL, EINVAL);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_parse_options)
{
    BlockOptions o = {0};
    char err[ERRLEN];

    ck_assert_int_eq(blk_parse_options("aio=threads,cache=none,readonly=on,"
                                       "latency_ns=1500",
                                       &o, err, sizeof(err)),
                     0);
    ck_assert_int_eq(o.aio, BLOCK_AIO_THREADS);
    ck_assert(o.cache_none);
    ck_assert(o.readonly);
    ck_assert_uint_eq(o.latency_ns, 1500);
    ck_assert_int_eq(
        blk_parse_options("aio=io_uring,cache=writeback,readonly=off", &o, err,
                          sizeof(err)),
        0);
    ck_assert_int_eq(o.aio, BLOCK_AIO_IO_URING);
    ck_assert(!o.cache_none);
    ck_assert(!o.readonly);
    ck_assert_int_eq(blk_parse_options("readonly=yes", &o, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "readonly"));
    ck_assert_int_eq(blk_parse_options("latency_ns=-1", &o, err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(blk_parse_options("", &o, err, sizeof(err)), 0);
}
END_TEST

/* ---- Read-only images, bad requests
 * ------------------------------------------
 */

START_TEST(test_readonly_rejects_writes_with_erofs)
{
    uint8_t buf[4096];
    Fixture f;

    if (!fixture_open_extra(&f, _i, SMALL_SIZE, "readonly=on")) {
        return;
    }
    ck_assert(blk_is_readonly(f.blk));
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_WRITE, 0, buf, sizeof(buf)), -EROFS);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_DISCARD, 0, 4096), -EROFS);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_WRITE_ZEROES, 0, 4096), -EROFS);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_FLUSH, 0, 0), 0);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, 0, buf, sizeof(buf)), 0);
    ck_assert(!memcmp(buf, f.ref, sizeof(buf)));
    ck_assert_uint_eq(get_stats(f.blk).syncs, 0);
    check_image(&f);
    fixture_close(&f);
}
END_TEST

static void *submit_without_context(void *opaque)
{
    TestReq *t = opaque;
    BlockBackend *blk = t->req.opaque;

    t->req.opaque = t;
    t->ret = blk_submit(blk, &t->req);
    return NULL;
}

START_TEST(test_bad_requests)
{
    uint8_t buf[512];
    struct iovec huge[2] = {{buf, SIZE_MAX / 2 + 1}, {buf, SIZE_MAX / 2 + 1}};
    static struct iovec many[BLK_MAX_IOV + 1];
    pthread_t thread;
    TestReq t;
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    /* Misuse that leaves nobody to call back fails at once. */
    prep_buf(&t, BLOCK_OP_READ, 0, buf, sizeof(buf));
    t.req.cb = NULL;
    ck_assert_int_eq(blk_submit(f.blk, &t.req), -EINVAL);
    prep_buf(&t, BLOCK_OP_READ, 0, buf, sizeof(buf));
    t.req.opaque = f.blk;
    pthread_create(&thread, NULL, submit_without_context, &t);
    pthread_join(thread, NULL);
    ck_assert_int_eq(t.ret, -EPERM);

    /* Anything else completes, later, with -EINVAL. */
    prep_buf(&t, BLOCK_OP_READ, 0, buf, sizeof(buf));
    t.req.iovcnt = 0;
    ck_assert_int_eq(run(&f, &t), -EINVAL);
    prep(&t, BLOCK_OP_READ, 0, 0);
    t.req.iov = huge;
    t.req.iovcnt = 2;
    ck_assert_int_eq(run(&f, &t), -EINVAL);
    for (int i = 0; i < BLK_MAX_IOV + 1; i++) {
        many[i] = (struct iovec){buf, 1};
    }
    prep(&t, BLOCK_OP_READ, 0, 0);
    t.req.iov = many;
    t.req.iovcnt = BLK_MAX_IOV + 1;
    ck_assert_int_eq(run(&f, &t), -EINVAL);
    prep_buf(&t, BLOCK_OP_READ, 0, buf, sizeof(buf));
    t.req.flags = BLK_REQ_FUA; /* writes only */
    ck_assert_int_eq(run(&f, &t), -EINVAL);
    prep_buf(&t, BLOCK_OP_WRITE, 0, buf, sizeof(buf));
    t.req.flags = 1u << 7;
    ck_assert_int_eq(run(&f, &t), -EINVAL);
    prep(&t, (BlockOp)99, 0, 0);
    ck_assert_int_eq(run(&f, &t), -EINVAL);
    ck_assert_uint_eq(blk_in_flight(f.blk), 0);
    check_image(&f);
    fixture_close(&f);
}
END_TEST

/* ---- The null driver, statistics ----------------------------------------- */

START_TEST(test_null_driver)
{
    AioContext *ctx = new_thread_ctx(AIO_FDMON_IO_URING);
    Fixture f = {.ctx = ctx};
    uint8_t buf[8192];
    char err[ERRLEN];
    BlockStats st;

    ck_assert_int_eq(
        blk_open_string("null://1M", NULL, &f.blk, err, sizeof(err)), 0);
    ck_assert_uint_eq(blk_size(f.blk), 1 << 20);
    ck_assert_str_eq(blk_engine_name(f.blk), "null");
    memset(buf, 0xaa, sizeof(buf));
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_WRITE, 4096, buf, sizeof(buf)), 0);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, 4096, buf, sizeof(buf)), 0);
    ck_assert(all_bytes(buf, sizeof(buf), 0)); /* writes were dropped */
    ck_assert_int_eq(run_range(&f, BLOCK_OP_FLUSH, 0, 0), 0);
    ck_assert_int_eq(run_range(&f, BLOCK_OP_DISCARD, 0, 1 << 20), 0);
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, (1 << 20) - 512, buf, 1024),
                     -EINVAL);
    ck_assert_uint_eq(get_stats(f.blk).syncs, 0);
    blk_close(f.blk);

    /* With a latency, completions come from a timer, never before it. */
    ck_assert_int_eq(blk_open_string("null://4G", "latency_ns=30000000", &f.blk,
                                     err, sizeof(err)),
                     0);
    ck_assert_uint_eq(blk_size(f.blk), 4ull << 30);
    ck_assert_int_eq(
        run_buf(&f, BLOCK_OP_READ, (4ull << 30) - 8192, buf, sizeof(buf)), 0);
    st = get_stats(f.blk);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].ops, 1);
    ck_assert_uint_ge(st.op[BLOCK_OP_READ].lat_total_ns, 30000000);
    ck_assert_uint_ge(blk_stats_percentile_ns(&st.op[BLOCK_OP_READ], 50),
                      30000000);
    blk_close(f.blk);
    aio_context_free(ctx);
}
END_TEST

START_TEST(test_stats_count_and_print)
{
    uint8_t buf[4096];
    char *text = NULL;
    size_t textlen = 0;
    uint64_t hist_total = 0;
    BlockStats st;
    FILE *out;
    Fixture f;

    if (!fixture_open(&f, _i, SMALL_SIZE)) {
        return;
    }
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(run_buf(&f, BLOCK_OP_READ, 0, buf, sizeof(buf)), 0);
    }
    ck_assert_int_eq(run_buf(&f, BLOCK_OP_WRITE, 0, buf, 1024), 0);
    st = get_stats(f.blk);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].ops, 5);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].bytes, 5 * sizeof(buf));
    ck_assert_uint_eq(st.op[BLOCK_OP_WRITE].bytes, 1024);
    for (int b = 0; b < BLK_LAT_BUCKETS; b++) {
        hist_total += st.op[BLOCK_OP_READ].lat_hist[b];
    }
    ck_assert_uint_eq(hist_total, 5);
    out = open_memstream(&text, &textlen);
    blk_stats_print(f.blk, out);
    fclose(out);
    ck_assert_ptr_nonnull(strstr(text, "read"));
    ck_assert_ptr_nonnull(strstr(text, "ops=5"));
    ck_assert_ptr_nonnull(strstr(text, engine_names[_i & 1]));
    free(text);
    fixture_close(&f);
}
END_TEST

Suite *block_suite(void)
{
    Suite *s = suite_create("block");
    TCase *tc;

    tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_random_rw_matches_reference, 0, VARIANTS);
    tcase_add_loop_test(tc, test_32_in_flight, 0, VARIANTS);
    tcase_add_loop_test(tc, test_concurrent_rmw_keeps_every_write, 0, VARIANTS);
    tcase_add_loop_test(tc, test_rmw_and_whole_block_write_take_turns, 0, 6);
    tcase_add_loop_test(tc, test_flush_reaches_fdatasync, 0, VARIANTS);
    tcase_add_loop_test(tc, test_discard_and_write_zeroes_read_back_zeros, 0,
                        VARIANTS);
    suite_add_tcase(s, tc);

    tc = tcase_create("short");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_short_read_at_eof_zero_fills, 0, VARIANTS);
    tcase_add_loop_test(tc, test_beyond_end_is_einval, 0, VARIANTS);
    tcase_add_loop_test(tc, test_short_transfer_is_continued, 0, VARIANTS);
    suite_add_tcase(s, tc);

    tc = tcase_create("inject");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_injected_eio_then_recovery, 0, ENGINES);
    tcase_add_loop_test(tc, test_drain_waits_for_delayed_requests, 0, VARIANTS);
    tcase_add_loop_test(tc, test_full_queue_requests_are_retried, 0, ENGINES);
    suite_add_tcase(s, tc);

    tc = tcase_create("contexts");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_iothread_requests_complete_on_iothread, 0,
                        ENGINES);
    tcase_add_loop_test(tc, test_bql_holder_completes_on_main_loop, 0, ENGINES);
    tcase_add_loop_test(tc, test_three_contexts_at_once, 0, ENGINES);
    tcase_add_test(tc, test_fallback_to_threads_without_io_uring);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_add_test(tc, test_open_errors_name_the_path);
    tcase_add_test(tc, test_open_locks_the_image);
    tcase_add_test(tc, test_parse_options);
    tcase_add_loop_test(tc, test_readonly_rejects_writes_with_erofs, 0,
                        ENGINES);
    tcase_add_loop_test(tc, test_bad_requests, 0, ENGINES);
    suite_add_tcase(s, tc);

    tc = tcase_create("null-stats");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_null_driver);
    tcase_add_loop_test(tc, test_stats_count_and_print, 0, ENGINES);
    suite_add_tcase(s, tc);
    return s;
}
