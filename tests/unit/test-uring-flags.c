/*
 * io_uring setup flags and the adaptive polling policies.
 *
 * The flag tests loop over flag sets: each creates IOThreads (or contexts)
 * with the set and runs the event loop's core operations and virtio-blk
 * data through them. A set the kernel refuses is skipped, since the context
 * then runs without it and the plain ring is tested elsewhere.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/aio-internal.h"
#include "aio/iothread.h"
#include "aio/main-loop.h"
#include "block/block.h"
#include "tests/unit/suites.h"
#include "tests/unit/vblk-machine.h"
#include "util/clock.h"

#define SI    IORING_SETUP_SINGLE_ISSUER
#define COOP  (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)
#define DEFER IORING_SETUP_DEFER_TASKRUN
#define TFLAG IORING_SETUP_TASKRUN_FLAG

static const unsigned flag_sets[] = {
    0,          SI, COOP, SI | COOP, SI | DEFER | TFLAG, SI | DEFER | COOP,
    SI | DEFER, /* no TASKRUN_FLAG: an empty CQ must still enter the kernel */
};
#define NSETS (int)(sizeof(flag_sets) / sizeof(flag_sets[0]))

/* Sets with completions held back as task work (the "not lost" test). */
static const unsigned taskrun_sets[] = {COOP, SI | COOP, SI | DEFER | TFLAG,
                                        SI | DEFER};
#define NTASKRUN (int)(sizeof(taskrun_sets) / sizeof(taskrun_sets[0]))

/* False (and a note) if the kernel did not take @want as asked. */
static bool kernel_took(AioContext *ctx, unsigned want)
{
    unsigned got = aio_context_uring_flags(ctx);

    if ((got & want) != want) {
        fprintf(stderr,
                "skipped: kernel refused io_uring flags 0x%x "
                "(got 0x%x)\n",
                want, got);
        return false;
    }
    return true;
}

static void wait_flag(atomic_bool *flag)
{
    int64_t deadline = clock_ns() + 5 * NS_PER_S;

    while (!atomic_load(flag)) {
        ck_assert_msg(clock_ns() < deadline, "timed out");
        usleep(100);
    }
}

/* ---- Core event loop operations on a flagged IOThread ------------------ */

typedef struct Core {
    AioContext *ctx;
    atomic_bool bh_ran, timer_fired, fd_ready, read_done;
    AioTimer *timer;
    CqeHandler read_handler;
    int file_fd, pipe_fds[2];
    char buf[4096];
    pthread_t home;
    int add_ret;
} Core;

static void core_bh(void *opaque)
{
    Core *c = opaque;

    ck_assert(pthread_equal(pthread_self(), c->home));
    atomic_store(&c->bh_ran, true);
}

static void core_timer(void *opaque)
{
    atomic_store(&((Core *)opaque)->timer_fired, true);
}

static void core_fd_read(void *opaque)
{
    Core *c = opaque;
    char ch;

    if (read(c->pipe_fds[0], &ch, 1) == 1) {
        atomic_store(&c->fd_ready, true);
    }
}

static void core_read_done(CqeHandler *h)
{
    Core *c = container_of(h, Core, read_handler);

    atomic_store(&c->read_done, true);
}

static void prep_file_read(struct io_uring_sqe *sqe, void *opaque)
{
    Core *c = opaque;

    io_uring_prep_read(sqe, c->file_fd, c->buf, sizeof(c->buf), 4096);
}

static void core_setup(void *opaque)
{
    Core *c = opaque;

    c->home = pthread_self();
    c->timer = aio_timer_new(c->ctx, core_timer, c);
    aio_set_fd_handler(c->ctx, c->pipe_fds[0], core_fd_read, NULL, NULL, NULL,
                       c);
    c->read_handler.cb = core_read_done;
    c->add_ret = aio_add_sqe(prep_file_read, c, &c->read_handler);
}

static void core_teardown(void *opaque)
{
    Core *c = opaque;

    aio_set_fd_handler(c->ctx, c->pipe_fds[0], NULL, NULL, NULL, NULL, NULL);
    aio_timer_free(c->timer);
}

START_TEST(test_core_on_flagged_iothread)
{
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING,
                              .poll.max_ns = AIO_POLL_MAX_NS_DEFAULT,
                              .uring_flags = flag_sets[_i]};
    char path[] = "/tmp/minivmm-test-flags-XXXXXX";
    char block[8192];
    IOThread *io = iothread_new("flags-io", &opts);
    Core c = {0};

    ck_assert_ptr_nonnull(io);
    c.ctx = iothread_get_context(io);
    if (!kernel_took(c.ctx, flag_sets[_i])) {
        iothread_free(io);
        return;
    }
    c.file_fd = mkstemp(path);
    ck_assert_int_ge(c.file_fd, 0);
    unlink(path);
    memset(block, 'A', 4096);
    memset(block + 4096, 'B', 4096);
    ck_assert_int_eq(write(c.file_fd, block, sizeof(block)), sizeof(block));
    ck_assert_int_eq(pipe2(c.pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);

    aio_run_in_context(c.ctx, core_setup, &c);
    ck_assert_int_eq(c.add_ret, 0);
    aio_bh_schedule_oneshot(c.ctx, core_bh, &c);
    aio_timer_mod(c.timer, clock_ns() + NS_PER_MS); /* armed from outside */
    ck_assert_int_eq(write(c.pipe_fds[1], "x", 1), 1);
    wait_flag(&c.bh_ran);
    wait_flag(&c.timer_fired);
    wait_flag(&c.fd_ready);
    wait_flag(&c.read_done);
    ck_assert_int_eq(c.read_handler.cqe.res, 4096);
    ck_assert_int_eq(c.buf[0], 'B');
    ck_assert_int_eq(c.buf[4095], 'B');

    /* Many cross-thread wake-ups in a row, each waited for. */
    for (int i = 0; i < 200; i++) {
        atomic_store(&c.bh_ran, false);
        aio_run_in_context(c.ctx, core_bh, &c);
        ck_assert(atomic_load(&c.bh_ran));
    }
    aio_run_in_context(c.ctx, core_teardown, &c);
    iothread_free(io);
    close(c.file_fd);
    close(c.pipe_fds[0]);
    close(c.pipe_fds[1]);
}
END_TEST

/* ---- virtio-blk data through a flagged IOThread ------------------------- */

START_TEST(test_vblk_data_on_flagged_iothread)
{
    VmOptions o = {.uring_flags_set = true, .uring_flags = flag_sets[_i]};
    QVirtioBlkOptions d = {.msix = true};
    QVirtioBlk b;
    uint64_t buf;
    uint8_t disk[8192];

    vm_start(&o);
    if (!kernel_took(iothread_get_context(vm.io[0]), flag_sets[_i])) {
        vm_stop();
        return;
    }
    vm_driver(&b, 0, &d);
    buf = vm_alloc(16 * 65536);
    /* Reads, one at a time and 16 in a batch, against the pattern. */
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 77, buf, 65536),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, buf, 77 * 512, 65536));
    ck_assert_int_eq(qvirtio_blk_read_batch(&b, 0, 256, buf, 16, 65536), 0);
    ck_assert(vm_check_pattern(0, buf, 256 * 512, 16 * 65536));
    /* A write lands in the file and reads back through the device. */
    vm_fill(buf, 8192, 0x3c);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_OUT, 100, buf, 8192),
                     VIRTIO_BLK_S_OK);
    ck_assert_int_eq(pread(vm.img_fd[0], disk, sizeof(disk), 100 * 512),
                     (ssize_t)sizeof(disk));
    ck_assert(!memcmp(disk, gm_ptr(&vm.ram, buf, 8192), sizeof(disk)));
    vm_fill(buf, 8192, 0);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 100, buf, 8192),
                     VIRTIO_BLK_S_OK);
    ck_assert(!memcmp(disk, gm_ptr(&vm.ram, buf, 8192), sizeof(disk)));
    vm_stop();
}
END_TEST

/* ---- A completion that arrives while the loop is busy -------------------- */

typedef struct PipeRead {
    CqeHandler handler;
    int fd;
    char buf[16];
    atomic_bool done;
} PipeRead;

static void prep_pipe_read(struct io_uring_sqe *sqe, void *opaque)
{
    PipeRead *p = opaque;

    io_uring_prep_read(sqe, p->fd, p->buf, sizeof(p->buf), 0);
}

static void pipe_read_done(CqeHandler *h)
{
    atomic_store(&container_of(h, PipeRead, handler)->done, true);
}

/*
 * A read of an empty pipe waits in the kernel; when another thread writes,
 * its completion becomes task work of this thread. With COOP_TASKRUN or
 * DEFER_TASKRUN nothing interrupts us to run it while we spin in user
 * space: it waits in the kernel, and only IORING_SQ_TASKRUN (or, without
 * TASKRUN_FLAG under DEFER_TASKRUN, an empty CQ) tells the loop to enter.
 * One non-blocking aio_poll() after the spin must deliver it.
 */
START_TEST(test_completion_while_busy_not_lost)
{
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING,
                              .uring_flags = taskrun_sets[_i]};
    PipeRead p = {.handler.cb = pipe_read_done};
    int fds[2];
    int64_t until;

    AioContext *ctx = aio_context_new(&opts);

    ck_assert_ptr_nonnull(ctx);
    aio_set_thread_context(ctx);
    if (!kernel_took(ctx, taskrun_sets[_i])) {
        aio_context_free(ctx);
        return;
    }
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    p.fd = fds[0];
    ck_assert_int_eq(aio_add_sqe(prep_pipe_read, &p, &p.handler), 0);
    aio_poll(ctx, false); /* submits: the read now waits for data */
    ck_assert(!atomic_load(&p.done));

    ck_assert_int_eq(write(fds[1], "hello", 5), 5);
    /* Busy, and no system call: clock_ns() is a vDSO read. */
    until = clock_ns() + 20 * NS_PER_MS;
    while (clock_ns() < until) {
    }
    aio_poll(ctx, false);
    ck_assert_msg(atomic_load(&p.done), "completion lost with flags 0x%x",
                  taskrun_sets[_i]);
    ck_assert_int_eq(p.handler.cqe.res, 5);
    ck_assert(!memcmp(p.buf, "hello", 5));
    aio_context_free(ctx);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* ---- The main context never becomes single-issuer -------------------- */

START_TEST(test_main_context_never_single_issuer)
{
    MainLoopOptions mo = {.fdmon = AIO_FDMON_IO_URING,
                          .uring_flags = SI | DEFER | COOP};
    AioContextOptions shared = {.fdmon = AIO_FDMON_IO_URING,
                                .uring_flags = SI | DEFER | TFLAG,
                                .shared_ring = true};
    AioContext *c;
    unsigned got;

    ck_assert_int_eq(main_loop_init(&mo), 0);
    got = aio_context_uring_flags(main_loop_context());
    ck_assert_uint_eq(got & (SI | DEFER), 0);
    main_loop_cleanup();

    /* The same through the context option; TASKRUN_FLAG alone is dropped. */
    c = aio_context_new(&shared);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(aio_context_uring_flags(c) & (SI | DEFER | TFLAG), 0);
    aio_context_free(c);
}
END_TEST

/* A set the kernel rejects (DEFER without SINGLE_ISSUER) loses only that. */
START_TEST(test_rejected_flag_dropped_alone)
{
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING,
                              .uring_flags = DEFER | COOP};
    AioContext *c = aio_context_new(&opts);
    unsigned got;

    ck_assert_ptr_nonnull(c);
    got = aio_context_uring_flags(c);
    ck_assert_uint_eq(got & DEFER, 0);
    /* COOP stays where the kernel has it (5.19 and later). */
    if (got & IORING_SETUP_COOP_TASKRUN) {
        ck_assert_uint_eq(got & TFLAG, TFLAG);
    }
    aio_context_free(c);
}
END_TEST

/*
 * aio_set_extra_uring_flags() (how make check-uring-flags runs whole suites
 * under a flag set) reaches every new context, but a shared ring still
 * drops the single-thread flags.
 */
START_TEST(test_extra_flags_reach_contexts)
{
    AioContextOptions own = {.fdmon = AIO_FDMON_IO_URING};
    AioContextOptions shared = {.fdmon = AIO_FDMON_IO_URING,
                                .shared_ring = true};
    AioContext *a, *b;

    aio_set_extra_uring_flags(SI | COOP);
    a = aio_context_new(&own);
    b = aio_context_new(&shared);
    aio_set_extra_uring_flags(0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    if (kernel_took(a, SI | COOP)) {
        ck_assert_uint_eq(aio_context_uring_flags(b), COOP);
    }
    aio_context_free(a);
    aio_context_free(b);
}
END_TEST

START_TEST(test_flags_parse_and_name)
{
    unsigned f = 123;
    char name[96];

    ck_assert_int_eq(aio_uring_flags_parse("none", &f), 0);
    ck_assert_uint_eq(f, 0);
    ck_assert_int_eq(aio_uring_flags_parse("single-issuer,coop", &f), 0);
    ck_assert_uint_eq(f, SI | COOP);
    ck_assert_int_eq(aio_uring_flags_parse("defer", &f), 0);
    ck_assert_uint_eq(f, SI | DEFER | TFLAG);
    ck_assert_int_eq(aio_uring_flags_parse("bogus", &f), -EINVAL);
    ck_assert_int_eq(aio_uring_flags_parse("", &f), -EINVAL);
    ck_assert_int_eq(aio_uring_flags_parse("coop,", &f), -EINVAL);
    ck_assert_int_eq(aio_uring_flags_parse(",coop", &f), -EINVAL);
#ifndef IORING_SETUP_NO_SQARRAY
    ck_assert_int_eq(aio_uring_flags_parse("no-sqarray", &f), -EINVAL);
#endif
    aio_uring_flags_name(SI | COOP, name, sizeof(name));
    ck_assert_str_eq(name, "single-issuer,coop");
    aio_uring_flags_name(SI | DEFER | TFLAG, name, sizeof(name));
    ck_assert_str_eq(name, "single-issuer,defer");
    aio_uring_flags_name(TFLAG, name, sizeof(name));
    ck_assert_str_eq(name, "taskrun-flag");
    aio_uring_flags_name(0, name, sizeof(name));
    ck_assert_str_eq(name, "none");
}
END_TEST

/* ---- Polling policies, fed block times directly ------------------------ */

START_TEST(test_poll_adjust_grow_shrink)
{
    AioPollParams p = {.max_ns = 32768};
    int64_t poll = 0, avg = 0;

    aio_poll_adjust(&p, &poll, &avg, 1000);
    ck_assert_int_eq(poll, AIO_POLL_START_NS);
    aio_poll_adjust(&p, &poll, &avg, 5000);
    ck_assert_int_eq(poll, 2 * AIO_POLL_START_NS);
    aio_poll_adjust(&p, &poll, &avg, 100); /* caught by polling: unchanged */
    ck_assert_int_eq(poll, 2 * AIO_POLL_START_NS);
    for (int i = 0; i < 10; i++) {
        aio_poll_adjust(&p, &poll, &avg, 30000);
    }
    ck_assert_int_eq(poll, 32000); /* 8 -> 16 -> 32 us, which catches 30 */
    aio_poll_adjust(&p, &poll, &avg, 32500);
    ck_assert_int_eq(poll, 32768);            /* capped at max_ns */
    aio_poll_adjust(&p, &poll, &avg, 100000); /* longer than max: reset */
    ck_assert_int_eq(poll, 0);
    ck_assert_int_eq(avg, 0); /* the classic policy keeps no average */
}
END_TEST

START_TEST(test_poll_adjust_weighted)
{
    AioPollParams p = {.max_ns = 32768, .weight = 2};
    int64_t poll = 0, avg = 0;

    /* Steady 3 us block times: the first grow (4 us) catches them all. */
    for (int i = 0; i < 64; i++) {
        aio_poll_adjust(&p, &poll, &avg, 3000);
    }
    ck_assert_int_eq(avg, 3000);
    ck_assert_int_eq(poll, AIO_POLL_START_NS);
    /*
     * 5 us: the grow to 8 us is capped at twice the average of the moment
     * (3.5 us), and 7 us then catches them all.
     */
    for (int i = 0; i < 64; i++) {
        aio_poll_adjust(&p, &poll, &avg, 5000);
    }
    ck_assert_int_eq(avg, 5000);
    ck_assert_int_eq(poll, 7000);
    poll = 16000; /* e.g. left from a busier phase: cut to 2 x 5 us */
    aio_poll_adjust(&p, &poll, &avg, 5000);
    ck_assert_int_eq(poll, 10000);
    /*
     * One long idle gap counts as max_ns and moves the average by a quarter
     * of the way there: polling goes on, halved.
     */
    aio_poll_adjust(&p, &poll, &avg, NS_PER_S);
    ck_assert_int_eq(avg, 5000 + (32768 - 5000) / 4);
    ck_assert_int_eq(poll, 5000);
    /* A run of them stops polling: twice the average is past max_ns. */
    for (int i = 0; i < 8; i++) {
        aio_poll_adjust(&p, &poll, &avg, NS_PER_S);
    }
    ck_assert_int_eq(poll, 0);
    /* 20 us sleeps: a poll would need 40 us, more than allowed. */
    for (int i = 0; i < 64; i++) {
        aio_poll_adjust(&p, &poll, &avg, 20000);
    }
    ck_assert_int_eq(avg, 20000);
    ck_assert_int_eq(poll, 0);
    /* 12 us: polling resumes from 4 us and doubles until it catches them. */
    for (int i = 0; i < 64; i++) {
        aio_poll_adjust(&p, &poll, &avg, 12000);
    }
    ck_assert_int_eq(avg, 12000);
    ck_assert_int_eq(poll, 16000);
    /* The largest weight still moves (by one per sample). */
    p.weight = AIO_POLL_WEIGHT_MAX;
    aio_poll_adjust(&p, &poll, &avg, 0);
    ck_assert_int_eq(avg, 11999);
}
END_TEST

/*
 * A QD1 disk: the guest's next request comes within 1 us (polling catches
 * it), the read itself takes 50 us (no allowed poll can). One average of
 * both sits in between and polls at the wrong times: 4 us before each read
 * (in vain), nothing before each request (a sleep and a wake-up). Kept
 * apart, as aio_poll() keeps them by AioWaitKind, each is right.
 */
START_TEST(test_poll_adjust_weighted_bimodal)
{
    AioPollParams p = {.max_ns = 32768, .weight = 3};
    int64_t poll = 0, avg = 0, idle = 0, idle_avg = 0, io = 0, io_avg = 0;
    int64_t before_request = -1, before_read = -1;

    for (int i = 0; i < 64; i++) {
        before_request = poll;
        aio_poll_adjust(&p, &poll, &avg, 1000);
        before_read = poll;
        aio_poll_adjust(&p, &poll, &avg, 50000);
    }
    ck_assert_int_eq(before_request, 0);
    ck_assert_int_eq(before_read, AIO_POLL_START_NS);

    for (int i = 0; i < 64; i++) {
        aio_poll_adjust(&p, &idle, &idle_avg, 1000);
        aio_poll_adjust(&p, &io, &io_avg, 50000);
    }
    ck_assert_int_eq(idle, AIO_POLL_START_NS); /* catches each request */
    ck_assert_int_eq(io, 0);                   /* sleeps through each read */
}
END_TEST

/* ---- aio_poll() picks the state by what it waits for ------------------ */

typedef struct Timeout {
    CqeHandler handler;
    struct __kernel_timespec ts;
    bool done;
} Timeout;

static void prep_timeout(struct io_uring_sqe *sqe, void *opaque)
{
    Timeout *t = opaque;

    io_uring_prep_timeout(sqe, &t->ts, 0, 0);
}

static void timeout_done(CqeHandler *h)
{
    container_of(h, Timeout, handler)->done = true;
}

static void set_flag(void *opaque)
{
    *(bool *)opaque = true;
}

/*
 * With weighted polling, a wait with an aio_add_sqe() request in flight
 * teaches the AIO_WAIT_IO state only, one without teaches AIO_WAIT_IDLE
 * only, and a pass that found work pending teaches neither.
 */
START_TEST(test_poll_state_by_wait_kind)
{
    AioContextOptions opts = {
        .fdmon = AIO_FDMON_IO_URING,
        .poll = {.max_ns = AIO_POLL_MAX_NS_DEFAULT, .weight = 3}};
    Timeout t = {.handler.cb = timeout_done, .ts.tv_nsec = 2 * NS_PER_MS};
    AioContext *ctx = aio_context_new(&opts);
    AioTimer *timer;
    bool fired = false, ran = false;
    int64_t io_avg, idle_avg;

    ck_assert_ptr_nonnull(ctx);
    aio_set_thread_context(ctx);
    ctx->poll_ns[AIO_WAIT_IDLE] = 8000;

    /* A 2 ms io_uring timeout in flight: only the I/O state learns. */
    ck_assert_int_eq(aio_add_sqe(prep_timeout, &t, &t.handler), 0);
    while (!t.done) {
        aio_poll(ctx, true);
    }
    ck_assert_int_gt(ctx->poll_avg_ns[AIO_WAIT_IO], 0);
    ck_assert_int_eq(ctx->poll_avg_ns[AIO_WAIT_IDLE], 0);
    ck_assert_int_eq(ctx->poll_ns[AIO_WAIT_IDLE], 8000);
    io_avg = ctx->poll_avg_ns[AIO_WAIT_IO];

    /* A 2 ms timer, nothing in flight: only the idle state learns. */
    timer = aio_timer_new(ctx, set_flag, &fired);
    aio_timer_mod(timer, clock_ns() + 2 * NS_PER_MS);
    while (!fired) {
        aio_poll(ctx, true);
    }
    ck_assert_int_gt(ctx->poll_avg_ns[AIO_WAIT_IDLE], 0);
    ck_assert_int_lt(ctx->poll_ns[AIO_WAIT_IDLE], 8000); /* halved */
    ck_assert_int_eq(ctx->poll_avg_ns[AIO_WAIT_IO], io_avg);
    idle_avg = ctx->poll_avg_ns[AIO_WAIT_IDLE];

    /* Work pending (a BH): no wait, nothing learnt. */
    aio_bh_schedule_oneshot(ctx, set_flag, &ran);
    aio_poll(ctx, true);
    ck_assert(ran);
    ck_assert_int_eq(ctx->poll_avg_ns[AIO_WAIT_IDLE], idle_avg);
    ck_assert_int_eq(ctx->poll_avg_ns[AIO_WAIT_IO], io_avg);

    aio_timer_free(timer);
    aio_context_free(ctx);
}
END_TEST

static void read_done(void *opaque, int ret)
{
    *(int *)opaque = ret;
}

/*
 * A block request counts as I/O in flight whatever engine serves it: here
 * the null driver, which completes through a timer (latency_ns), with no
 * io_uring request at all.
 */
START_TEST(test_poll_state_counts_block_requests)
{
    AioContextOptions opts = {
        .fdmon = AIO_FDMON_IO_URING,
        .poll = {.max_ns = AIO_POLL_MAX_NS_DEFAULT, .weight = 3}};
    AioContext *ctx = aio_context_new(&opts);
    static char buf[4096];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    int ret = 1;
    BlockRequest req = {.op = BLOCK_OP_READ,
                        .iov = &iov,
                        .iovcnt = 1,
                        .cb = read_done,
                        .opaque = &ret};
    BlockBackend *blk;
    char err[128];

    ck_assert_ptr_nonnull(ctx);
    aio_set_thread_context(ctx);
    ck_assert_int_eq(blk_open_string("null://1M", "latency_ns=2000000", &blk,
                                     err, sizeof(err)),
                     0);
    ck_assert_int_eq(blk_submit(blk, &req), 0);
    while (ret == 1) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(ret, 0);
    ck_assert_int_gt(ctx->poll_avg_ns[AIO_WAIT_IO], 0);
    ck_assert_int_eq(ctx->poll_avg_ns[AIO_WAIT_IDLE], 0);
    blk_close(blk);
    aio_context_free(ctx);
}
END_TEST

Suite *uring_flags_suite(void)
{
    Suite *s = suite_create("uring-flags");
    TCase *tc = tcase_create("flags");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_core_on_flagged_iothread, 0, NSETS);
    tcase_add_loop_test(tc, test_vblk_data_on_flagged_iothread, 0, NSETS);
    tcase_add_loop_test(tc, test_completion_while_busy_not_lost, 0, NTASKRUN);
    tcase_add_test(tc, test_main_context_never_single_issuer);
    tcase_add_test(tc, test_rejected_flag_dropped_alone);
    tcase_add_test(tc, test_extra_flags_reach_contexts);
    tcase_add_test(tc, test_flags_parse_and_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("poll-policy");
    tcase_add_test(tc, test_poll_adjust_grow_shrink);
    tcase_add_test(tc, test_poll_adjust_weighted);
    tcase_add_test(tc, test_poll_adjust_weighted_bimodal);
    tcase_add_test(tc, test_poll_state_by_wait_kind);
    tcase_add_test(tc, test_poll_state_counts_block_requests);
    suite_add_tcase(s, tc);
    return s;
}
