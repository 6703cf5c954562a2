/*
 * Tests of the event loop (aio/). Every test that does not need io_uring runs
 * twice, once per fd monitor: loop index 0 is io_uring, 1 is ppoll.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aio/aio.h"
#include "aio/iothread.h"
#include "aio/main-loop.h"
#include "tests/unit/loop-thread.h"
#include "tests/unit/suites.h"
#include "util/clock.h"
#include "util/compiler.h"

static const AioFdmonKind backends[] = {AIO_FDMON_IO_URING, AIO_FDMON_POLL};
static const char *const backend_names[] = {"io_uring", "poll"};

static AioContext *ctx;

static AioContext *new_ctx(int backend)
{
    AioContextOptions opts = {.name = "test", .fdmon = backends[backend]};
    AioContext *c = aio_context_new(&opts);

    ck_assert_msg(c, "aio_context_new(%s): %s", backend_names[backend],
                  strerror(errno));
    ck_assert_str_eq(aio_context_fdmon_name(c), backend_names[backend]);
    aio_set_thread_context(c);
    return c;
}

/* Run aio_poll() until *flag is set, for at most @timeout_ms. */
static void poll_until(AioContext *c, atomic_bool *flag, int timeout_ms)
{
    int64_t deadline = clock_ns() + timeout_ms * NS_PER_MS;

    while (!atomic_load(flag)) {
        ck_assert_msg(clock_ns() < deadline, "timed out waiting");
        aio_poll(c, false);
        usleep(100);
    }
}

static AioContextStats stats_of(AioContext *c)
{
    AioContextStats s;

    aio_context_get_stats(c, &s);
    return s;
}

/* ---- Bottom halves ------------------------------------------------------ */

#define NUM_BHS 200

typedef struct BHLog {
    int order[NUM_BHS * 2];
    atomic_int count;
} BHLog;

typedef struct BHProbe {
    BHLog *log;
    int id;
    pthread_t ran_on;
} BHProbe;

static void bh_record(void *opaque)
{
    BHProbe *p = opaque;

    p->log->order[atomic_fetch_add(&p->log->count, 1)] = p->id;
    p->ran_on = pthread_self();
}

typedef struct BHScheduler {
    AioBH **bhs;
    int n;
    int times; /* schedule calls per BH */
} BHScheduler;

static void *schedule_bhs_thread(void *opaque)
{
    BHScheduler *s = opaque;

    for (int i = 0; i < s->n; i++) {
        for (int k = 0; k < s->times; k++) {
            aio_bh_schedule(s->bhs[i]);
        }
    }
    return NULL;
}

START_TEST(test_bh_from_other_thread_run_once_in_order)
{
    BHLog log = {0};
    BHProbe probes[NUM_BHS];
    AioBH *bhs[NUM_BHS];
    /* Scheduled twice before any poll: each must still run once. */
    BHScheduler s = {.bhs = bhs, .n = NUM_BHS, .times = 2};
    pthread_t thread;

    ctx = new_ctx(_i);
    for (int i = 0; i < NUM_BHS; i++) {
        probes[i] = (BHProbe){.log = &log, .id = i};
        bhs[i] = aio_bh_new(ctx, bh_record, &probes[i]);
    }
    pthread_create(&thread, NULL, schedule_bhs_thread, &s);
    pthread_join(thread, NULL);
    while (aio_poll(ctx, false)) {
    }
    ck_assert_int_eq(atomic_load(&log.count), NUM_BHS);
    for (int i = 0; i < NUM_BHS; i++) {
        ck_assert_int_eq(log.order[i], i);
        ck_assert(pthread_equal(probes[i].ran_on, pthread_self()));
        aio_bh_delete(bhs[i]);
    }
    aio_poll(ctx, false); /* frees the deleted BHs */
    aio_context_free(ctx);
}
END_TEST

/* Many threads at once, while the home thread keeps polling. */
#define BH_THREADS 4
START_TEST(test_bh_concurrent_schedulers)
{
    BHLog log = {0};
    BHProbe probes[NUM_BHS];
    AioBH *bhs[NUM_BHS];
    BHScheduler s[BH_THREADS];
    pthread_t threads[BH_THREADS];
    int per = NUM_BHS / BH_THREADS;
    int64_t deadline;

    ctx = new_ctx(_i);
    for (int i = 0; i < NUM_BHS; i++) {
        probes[i] = (BHProbe){.log = &log, .id = i};
        bhs[i] = aio_bh_new(ctx, bh_record, &probes[i]);
    }
    for (int t = 0; t < BH_THREADS; t++) {
        /*
         * Once each: with the home thread polling meanwhile, a second
         * schedule after the BH ran would rightly run it again.
         */
        s[t] = (BHScheduler){.bhs = &bhs[t * per], .n = per, .times = 1};
        pthread_create(&threads[t], NULL, schedule_bhs_thread, &s[t]);
    }
    deadline = clock_ns() + 5 * NS_PER_S;
    while (atomic_load(&log.count) < NUM_BHS && clock_ns() < deadline) {
        aio_poll(ctx, true);
    }
    for (int t = 0; t < BH_THREADS; t++) {
        pthread_join(threads[t], NULL);
    }
    while (aio_poll(ctx, false)) {
    }
    ck_assert_int_eq(atomic_load(&log.count), NUM_BHS);
    /* Each ran exactly once; within one scheduler, in order. */
    int seen[NUM_BHS] = {0};
    int last[BH_THREADS];
    for (int t = 0; t < BH_THREADS; t++) {
        last[t] = -1;
    }
    for (int i = 0; i < NUM_BHS; i++) {
        int id = log.order[i];

        ck_assert_int_eq(seen[id]++, 0);
        ck_assert_int_gt(id, last[id / per]);
        last[id / per] = id;
    }
    for (int i = 0; i < NUM_BHS; i++) {
        aio_bh_delete(bhs[i]);
    }
    aio_poll(ctx, false);
    aio_context_free(ctx);
}
END_TEST

static int oneshot_runs;
static void count_run(void *opaque)
{
    (void)opaque;
    oneshot_runs++;
}

START_TEST(test_bh_oneshot_cancel_delete)
{
    AioBH *cancelled, *deleted;

    ctx = new_ctx(_i);
    oneshot_runs = 0;

    aio_bh_schedule_oneshot(ctx, count_run, NULL);
    cancelled = aio_bh_new(ctx, count_run, NULL);
    aio_bh_schedule(cancelled);
    aio_bh_cancel(cancelled);
    deleted = aio_bh_new(ctx, count_run, NULL);
    aio_bh_schedule(deleted);
    aio_bh_delete(deleted); /* scheduled, then deleted: must not run */

    while (aio_poll(ctx, false)) {
    }
    ck_assert_int_eq(oneshot_runs, 1);

    /* A cancelled BH can be scheduled again and runs then. */
    aio_bh_schedule(cancelled);
    aio_poll(ctx, false);
    ck_assert_int_eq(oneshot_runs, 2);
    aio_bh_delete(cancelled);
    aio_poll(ctx, false);
    aio_context_free(ctx); /* ASan: nothing leaked */
}
END_TEST

typedef struct SelfScheduler {
    AioBH *bh;
    int runs;
} SelfScheduler;

static void reschedule_self(void *opaque)
{
    SelfScheduler *s = opaque;

    if (++s->runs < 3) {
        aio_bh_schedule(s->bh);
    }
}

START_TEST(test_bh_reschedules_itself)
{
    SelfScheduler s = {0};

    ctx = new_ctx(_i);
    s.bh = aio_bh_new(ctx, reschedule_self, &s);
    aio_bh_schedule(s.bh);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(s.runs, 1); /* the re-schedule waits for the next poll */
    while (aio_poll(ctx, false)) {
    }
    ck_assert_int_eq(s.runs, 3);
    aio_bh_delete(s.bh);
    aio_poll(ctx, false);
    aio_context_free(ctx);
}
END_TEST

/* ---- Timers
 * -------------------------------------------------------------------- */

typedef struct TimerProbe {
    int id;
    int *log;
    int *count;
    int64_t expire_ns;
    int64_t fired_ns;
} TimerProbe;

static void timer_record(void *opaque)
{
    TimerProbe *p = opaque;

    p->fired_ns = clock_ns();
    p->log[(*p->count)++] = p->id;
}

START_TEST(test_timers_fire_in_deadline_order)
{
    int log[4], count = 0;
    TimerProbe probes[4];
    AioTimer *timers[4];
    int64_t now = clock_ns();
    /* Armed out of order; timer 3 is deleted, timer 0 is moved earlier. */
    int64_t offsets_ms[4] = {80, 20, 40, 30};

    ctx = new_ctx(_i);
    for (int i = 0; i < 4; i++) {
        probes[i] = (TimerProbe){.id = i, .log = log, .count = &count};
        timers[i] = aio_timer_new(ctx, timer_record, &probes[i]);
        probes[i].expire_ns = now + offsets_ms[i] * NS_PER_MS;
        aio_timer_mod(timers[i], probes[i].expire_ns);
    }
    probes[0].expire_ns = now + 10 * NS_PER_MS;
    aio_timer_mod(timers[0], probes[0].expire_ns);
    aio_timer_del(timers[3]);
    ck_assert(!aio_timer_pending(timers[3]));
    ck_assert(aio_timer_pending(timers[1]));

    /* Blocking polls sleep until each deadline: never an early fire. */
    while (count < 3) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(log[0], 0);
    ck_assert_int_eq(log[1], 1);
    ck_assert_int_eq(log[2], 2);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_ge(probes[i].fired_ns, probes[i].expire_ns);
    }
    ck_assert_int_eq(aio_timers_deadline_ns(ctx), -1);
    for (int i = 0; i < 4; i++) {
        aio_timer_free(timers[i]);
    }
    aio_context_free(ctx);
}
END_TEST

typedef struct TimerArmer {
    AioTimer *timer;
    int64_t expire_ns;
} TimerArmer;

static void *arm_timer_thread(void *opaque)
{
    TimerArmer *a = opaque;

    usleep(20000);
    aio_timer_mod(a->timer, a->expire_ns);
    return NULL;
}

/* A timer armed by another thread shortens a sleep already under way. */
START_TEST(test_timer_armed_from_other_thread_wakes_poll)
{
    int log[1], count = 0;
    TimerProbe probe = {.id = 7, .log = log, .count = &count};
    TimerArmer armer;
    pthread_t thread;

    ctx = new_ctx(_i);
    armer.timer = aio_timer_new(ctx, timer_record, &probe);
    armer.expire_ns = clock_ns() + 30 * NS_PER_MS;
    pthread_create(&thread, NULL, arm_timer_thread, &armer);
    /* No deadline yet: this sleeps until the other thread arms the timer. */
    while (count == 0) {
        aio_poll(ctx, true);
    }
    pthread_join(thread, NULL);
    ck_assert_int_ge(probe.fired_ns, armer.expire_ns);
    ck_assert_int_lt(probe.fired_ns, armer.expire_ns + 2 * NS_PER_S);
    aio_timer_free(armer.timer);
    aio_context_free(ctx);
}
END_TEST

/* ---- aio_notify()
 * -------------------------------------------------------------- */

typedef struct Notifier {
    AioContext *ctx;
    atomic_bool sent;
} Notifier;

static void *notify_later_thread(void *opaque)
{
    Notifier *n = opaque;

    usleep(50000);
    atomic_store(&n->sent, true);
    aio_notify(n->ctx);
    return NULL;
}

START_TEST(test_notify_wakes_blocking_poll)
{
    Notifier n = {0};
    pthread_t thread;

    ctx = new_ctx(_i);
    n.ctx = ctx;
    pthread_create(&thread, NULL, notify_later_thread, &n);
    /*
     * Nothing is armed: only the notification can end this sleep (a hang
     * would fail the test by its timeout). The notifier is not progress.
     */
    while (!atomic_load(&n.sent)) {
        ck_assert(!aio_poll(ctx, true));
    }
    pthread_join(thread, NULL);
    ck_assert_uint_ge(stats_of(ctx).notify_writes, 1);
    aio_context_free(ctx);
}
END_TEST

static void *schedule_bh_thread(void *opaque)
{
    aio_bh_schedule(opaque);
    return NULL;
}

START_TEST(test_notify_no_write_when_nobody_sleeps)
{
    AioBH *bh;
    pthread_t thread;

    ctx = new_ctx(_i);
    oneshot_runs = 0;
    bh = aio_bh_new(ctx, count_run, NULL);
    /* From the home thread and from another, while nobody is in aio_poll. */
    for (int i = 0; i < 100; i++) {
        aio_bh_schedule(bh);
        aio_poll(ctx, false);
    }
    pthread_create(&thread, NULL, schedule_bh_thread, bh);
    pthread_join(thread, NULL);
    aio_poll(ctx, false);
    ck_assert_int_eq(oneshot_runs, 101);
    ck_assert_uint_eq(stats_of(ctx).notify_writes, 0);

    /* A notification before a blocking poll makes that poll return. */
    aio_notify(ctx);
    ck_assert(!aio_poll(ctx, true));
    aio_bh_delete(bh);
    aio_poll(ctx, false);
    aio_context_free(ctx);
}
END_TEST

/* ---- fd handlers
 * ----------------------------------------------------------------- */

typedef struct PipeProbe {
    int fds[2];
    int reads;
    int writes;
    char last;
} PipeProbe;

static void pipe_readable(void *opaque)
{
    PipeProbe *p = opaque;

    ck_assert_int_eq(read(p->fds[0], &p->last, 1), 1);
    p->reads++;
}

static void pipe_writable(void *opaque)
{
    PipeProbe *p = opaque;

    p->writes++;
}

START_TEST(test_fd_handler_readiness_and_removal)
{
    PipeProbe p = {0};

    ctx = new_ctx(_i);
    ck_assert_int_eq(pipe2(p.fds, O_NONBLOCK | O_CLOEXEC), 0);
    aio_set_fd_handler(ctx, p.fds[0], pipe_readable, NULL, NULL, NULL, &p);

    aio_poll(ctx, false);
    ck_assert_int_eq(p.reads, 0); /* nothing to read yet */

    for (char c = 'a'; c <= 'c'; c++) {
        ck_assert_int_eq(write(p.fds[1], &c, 1), 1);
        while (p.last != c) {
            ck_assert(aio_poll(ctx, true));
        }
    }
    ck_assert_int_eq(p.reads, 3);

    /* Removed: never called again, however readable the fd is. */
    aio_set_fd_handler(ctx, p.fds[0], NULL, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(write(p.fds[1], "d", 1), 1);
    for (int i = 0; i < 10; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(p.reads, 3);

    /* A write handler fires on a writable fd, and can be replaced. */
    aio_set_fd_handler(ctx, p.fds[1], NULL, pipe_writable, NULL, NULL, &p);
    while (p.writes == 0) {
        aio_poll(ctx, true);
    }
    aio_set_fd_handler(ctx, p.fds[1], NULL, NULL, NULL, NULL, NULL);
    aio_poll(ctx, false);
    aio_context_free(ctx);
    close(p.fds[0]);
    close(p.fds[1]);
}
END_TEST

/* A handler may remove itself and another ready handler while dispatching. */
typedef struct PairProbe {
    AioContext *ctx;
    int fds_a[2], fds_b[2];
    int calls;
} PairProbe;

static void remove_both(void *opaque)
{
    PairProbe *p = opaque;

    p->calls++;
    aio_set_fd_handler(p->ctx, p->fds_a[0], NULL, NULL, NULL, NULL, NULL);
    aio_set_fd_handler(p->ctx, p->fds_b[0], NULL, NULL, NULL, NULL, NULL);
}

START_TEST(test_fd_handler_removed_during_dispatch)
{
    PairProbe p = {0};

    ctx = new_ctx(_i);
    p.ctx = ctx;
    ck_assert_int_eq(pipe2(p.fds_a, O_NONBLOCK), 0);
    ck_assert_int_eq(pipe2(p.fds_b, O_NONBLOCK), 0);
    aio_set_fd_handler(ctx, p.fds_a[0], remove_both, NULL, NULL, NULL, &p);
    aio_set_fd_handler(ctx, p.fds_b[0], remove_both, NULL, NULL, NULL, &p);
    ck_assert_int_eq(write(p.fds_a[1], "x", 1), 1);
    ck_assert_int_eq(write(p.fds_b[1], "x", 1), 1);
    usleep(1000);
    for (int i = 0; i < 5; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(p.calls, 1);
    aio_context_free(ctx);
    for (int i = 0; i < 2; i++) {
        close(p.fds_a[i]);
        close(p.fds_b[i]);
    }
}
END_TEST

/* ---- aio_add_sqe()
 * ----------------------------------------------------------------- */

typedef struct SqeProbe {
    CqeHandler handler;
    int fd;
    char buf[4096];
    size_t len;
    off_t offset;
    atomic_bool done;
    pthread_t done_on;
    int64_t queued_ns, done_ns;
    AioContextStats stats_at_done;
    AioContext *stats_ctx;
    int inject_errno; /* vcpu_queue_read(): fail this many submits so */
    unsigned inject_count;
} SqeProbe;

static void prep_nop(struct io_uring_sqe *sqe, void *opaque)
{
    (void)opaque;
    io_uring_prep_nop(sqe);
}

static void prep_read(struct io_uring_sqe *sqe, void *opaque)
{
    SqeProbe *p = opaque;

    io_uring_prep_read(sqe, p->fd, p->buf, p->len, p->offset);
}

static void sqe_done(CqeHandler *handler)
{
    SqeProbe *p = container_of(handler, SqeProbe, handler);

    p->done_ns = clock_ns();
    p->done_on = pthread_self();
    if (p->stats_ctx) {
        aio_context_get_stats(p->stats_ctx, &p->stats_at_done);
    }
    atomic_store(&p->done, true);
}

static int make_pattern_file(void)
{
    char path[] = "/tmp/minivmm-test-XXXXXX";
    char block[4096];
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    unlink(path);
    for (int i = 0; i < 4; i++) {
        memset(block, 'A' + i, sizeof(block));
        ck_assert_int_eq(write(fd, block, sizeof(block)), sizeof(block));
    }
    return fd;
}

START_TEST(test_add_sqe_nop_and_read)
{
    SqeProbe nop = {.handler.cb = sqe_done};
    SqeProbe rd = {.handler.cb = sqe_done, .len = 4096, .offset = 8192};

    ctx = new_ctx(_i);
    rd.fd = make_pattern_file();
    if (backends[_i] == AIO_FDMON_POLL) {
        /* No io_uring: the caller is told to fall back. */
        ck_assert(!aio_context_has_io_uring(ctx));
        ck_assert_int_eq(aio_add_sqe(prep_nop, &nop, &nop.handler), -ENOTSUP);
        goto out;
    }
    ck_assert_int_eq(aio_add_sqe(prep_nop, &nop, &nop.handler), 0);
    ck_assert_int_eq(aio_add_sqe(prep_read, &rd, &rd.handler), 0);
    poll_until(ctx, &nop.done, 2000);
    poll_until(ctx, &rd.done, 2000);
    ck_assert_int_eq(nop.handler.cqe.res, 0);
    ck_assert_int_eq(rd.handler.cqe.res, 4096);
    for (int i = 0; i < 4096; i++) {
        ck_assert_int_eq(rd.buf[i], 'C');
    }
    ck_assert(pthread_equal(nop.done_on, pthread_self()));
    ck_assert(pthread_equal(rd.done_on, pthread_self()));
    ck_assert_uint_eq(stats_of(ctx).cqes_dispatched, 2);
out:
    close(rd.fd);
    aio_context_free(ctx);
}
END_TEST

/* More SQEs than the ring holds: the full ring is submitted, none is lost. */
START_TEST(test_add_sqe_overflows_ring)
{
    enum { N = 600 };
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING, .ring_entries = 64};
    static SqeProbe probes[N];

    ctx = aio_context_new(&opts);
    ck_assert_ptr_nonnull(ctx);
    aio_set_thread_context(ctx);
    for (int i = 0; i < N; i++) {
        probes[i] = (SqeProbe){.handler.cb = sqe_done};
        ck_assert_int_eq(aio_add_sqe(prep_nop, &probes[i], &probes[i].handler),
                         0);
    }
    for (int i = 0; i < N; i++) {
        poll_until(ctx, &probes[i].done, 2000);
    }
    ck_assert_uint_eq(stats_of(ctx).cqes_dispatched, N);
    aio_context_free(ctx);
}
END_TEST

/* ---- Submits the kernel refuses --------------------------------------- */

static const int submit_errors[] = {EINTR, EAGAIN, EBUSY};

static void set_flag_timer(void *opaque)
{
    atomic_store((atomic_bool *)opaque, true);
}

/*
 * One refused submit, then the kernel takes the SQEs again: the NOP still
 * completes. Tests 0-2 submit from the wait (an IOThread's one system
 * call), 3-5 from prepare (a polling context submits before it polls).
 * A blocking aio_poll() that slept with the NOP unsubmitted would sleep
 * until the safety timer.
 */
START_TEST(test_refused_submit_retried)
{
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING};
    SqeProbe nop = {.handler.cb = sqe_done};
    atomic_bool too_late = false;
    AioTimer *safety;

    if (_i >= 3) {
        opts.poll.max_ns = AIO_POLL_MAX_NS_DEFAULT;
    }
    ctx = aio_context_new(&opts);
    ck_assert_ptr_nonnull(ctx);
    aio_set_thread_context(ctx);
    safety = aio_timer_new(ctx, set_flag_timer, &too_late);
    aio_timer_mod(safety, clock_ns() + 2 * NS_PER_S);

    aio_uring_inject_submit_error(ctx, submit_errors[_i % 3], 1);
    ck_assert_int_eq(aio_add_sqe(prep_nop, &nop, &nop.handler), 0);
    while (!atomic_load(&nop.done)) {
        ck_assert_msg(!atomic_load(&too_late), "the NOP was never submitted");
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(nop.handler.cqe.res, 0);
    aio_timer_free(safety);
    aio_context_free(ctx);
}
END_TEST

typedef struct EventProbe {
    int fd;
    atomic_int fired;
} EventProbe;

static void event_read(void *opaque)
{
    EventProbe *e = opaque;
    uint64_t value;

    ck_assert_int_eq(read(e->fd, &value, sizeof(value)), sizeof(value));
    atomic_fetch_add(&e->fired, 1);
}

/*
 * The SQ ring is full and the kernel refuses it: an fd handler added then
 * has no room for its POLL_ADD. It is armed once the kernel takes SQEs
 * again, and an event that came meanwhile is not lost.
 */
START_TEST(test_full_ring_refused_keeps_fds_watched)
{
    enum { MAX_NOPS = 16 };
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING, .ring_entries = 4};
    SqeProbe nops[MAX_NOPS] = {0};
    EventProbe ev = {0};
    int queued = 0;
    uint64_t one = 1;

    ctx = aio_context_new(&opts);
    ck_assert_ptr_nonnull(ctx);
    aio_set_thread_context(ctx);
    ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_ge(ev.fd, 0);

    /* Fill the ring; the submit that would make room fails. */
    aio_uring_inject_submit_error(ctx, EAGAIN, 1000);
    for (;;) {
        ck_assert_int_lt(queued, MAX_NOPS);
        nops[queued].handler.cb = sqe_done;
        if (aio_add_sqe(prep_nop, &nops[queued], &nops[queued].handler) < 0) {
            break;
        }
        queued++;
    }
    ck_assert_int_gt(queued, 0);
    aio_set_fd_handler(ctx, ev.fd, event_read, NULL, NULL, NULL, &ev);
    ck_assert_int_eq(write(ev.fd, &one, sizeof(one)), sizeof(one));
    for (int i = 0; i < 10; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(atomic_load(&ev.fired), 0); /* nothing got through */

    /* The kernel takes SQEs again: everything queued before arrives. */
    aio_uring_inject_submit_error(ctx, 0, 0);
    for (int i = 0; i < queued; i++) {
        poll_until(ctx, &nops[i].done, 2000);
    }
    while (atomic_load(&ev.fired) == 0) {
        aio_poll(ctx, true);
    }
    /* And the handler stays watched. */
    ck_assert_int_eq(write(ev.fd, &one, sizeof(one)), sizeof(one));
    while (atomic_load(&ev.fired) == 1) {
        aio_poll(ctx, true);
    }
    aio_set_fd_handler(ctx, ev.fd, NULL, NULL, NULL, NULL, NULL);
    aio_poll(ctx, false);
    aio_context_free(ctx);
    close(ev.fd);
}
END_TEST

/* ---- IOThreads
 * ---------------------------------------------------------------------- */

typedef struct OnThread {
    SqeProbe *probe;
    pthread_t thread;
    int ret;
} OnThread;

static void queue_from_iothread(void *opaque)
{
    OnThread *o = opaque;

    o->thread = pthread_self();
    o->ret = aio_add_sqe(prep_read, o->probe, &o->probe->handler);
}

START_TEST(test_iothread_add_sqe_completes_on_iothread)
{
    SqeProbe rd = {.handler.cb = sqe_done, .len = 4096, .offset = 4096};
    AioContextOptions opts = {.fdmon = AIO_FDMON_IO_URING};
    OnThread o = {.probe = &rd};
    IOThread *iothread = iothread_new("io0", &opts);
    int64_t deadline = clock_ns() + 2 * NS_PER_S;

    ck_assert_ptr_nonnull(iothread);
    rd.fd = make_pattern_file();
    aio_run_in_context(iothread_get_context(iothread), queue_from_iothread, &o);
    ck_assert_int_eq(o.ret, 0);
    while (!atomic_load(&rd.done) && clock_ns() < deadline) {
        usleep(1000);
    }
    ck_assert(atomic_load(&rd.done));
    ck_assert(pthread_equal(rd.done_on, o.thread));
    ck_assert(!pthread_equal(rd.done_on, pthread_self()));
    ck_assert_int_eq(rd.handler.cqe.res, 4096);
    ck_assert_int_eq(rd.buf[0], 'B');
    iothread_free(iothread);
    close(rd.fd);
}
END_TEST

static void note_thread(void *opaque)
{
    *(pthread_t *)opaque = pthread_self();
}

START_TEST(test_iothread_start_stop_100_times)
{
    AioContextOptions opts = {.fdmon = backends[_i],
                              .poll.max_ns = AIO_POLL_MAX_NS_DEFAULT};

    for (int i = 0; i < 100; i++) {
        IOThread *iothread = iothread_new("io", &opts);
        pthread_t ran_on = pthread_self();

        ck_assert_ptr_nonnull(iothread);
        ck_assert_str_eq(aio_context_fdmon_name(iothread_get_context(iothread)),
                         backend_names[_i]);
        aio_run_in_context(iothread_get_context(iothread), note_thread,
                           &ran_on);
        ck_assert(!pthread_equal(ran_on, pthread_self()));
        /* A BH left scheduled at stop time still runs (and is freed). */
        aio_bh_schedule_oneshot(iothread_get_context(iothread), count_run,
                                NULL);
        iothread_free(iothread);
    }
    /* Leaks, if any, are reported by LeakSanitizer at exit. */
}
END_TEST

/* ---- Adaptive polling
 * ----------------------------------------------------------------- */

static void nothing(void *opaque)
{
    (void)opaque;
}

static atomic_bool poll_work;
static int poll_ready_calls;

static bool test_io_poll(void *opaque)
{
    (void)opaque;
    return atomic_load(&poll_work);
}

static void test_io_poll_ready(void *opaque)
{
    (void)opaque;
    atomic_store(&poll_work, false);
    poll_ready_calls++;
}

START_TEST(test_adaptive_polling_grows_shrinks_and_polls)
{
    /* A large maximum keeps timer-driven sleeps of ~0.1 ms under it. */
    AioContextOptions opts = {.fdmon = backends[_i],
                              .poll = {.max_ns = 50 * NS_PER_MS}};
    AioTimer *timer;
    int fds[2];

    ctx = aio_context_new(&opts);
    ck_assert_ptr_nonnull(ctx);
    aio_set_thread_context(ctx);
    timer = aio_timer_new(ctx, nothing, NULL);
    ck_assert_int_eq(stats_of(ctx).poll_ns, 0);

    /* Short sleeps: grow from 0 to the start value, then double. */
    aio_timer_mod(timer, clock_ns() + 100 * NS_PER_US);
    aio_poll(ctx, true);
    ck_assert_int_eq(stats_of(ctx).poll_ns, AIO_POLL_START_NS);
    aio_timer_mod(timer, clock_ns() + 100 * NS_PER_US);
    aio_poll(ctx, true);
    ck_assert_int_eq(stats_of(ctx).poll_ns, 2 * AIO_POLL_START_NS);

    /* A sleep longer than the maximum: shrink=0 resets to 0. */
    aio_timer_mod(timer, clock_ns() + 80 * NS_PER_MS);
    aio_poll(ctx, true);
    ck_assert_int_eq(stats_of(ctx).poll_ns, 0);

    /* Polling finds work reported by io_poll and runs io_poll_ready. */
    ck_assert_int_eq(pipe2(fds, O_NONBLOCK), 0);
    aio_set_fd_handler(ctx, fds[0], nothing, NULL, test_io_poll,
                       test_io_poll_ready, NULL);
    aio_timer_mod(timer, clock_ns() + 100 * NS_PER_US);
    aio_poll(ctx, true);
    aio_timer_mod(timer, clock_ns() + 100 * NS_PER_US);
    aio_poll(ctx, true);
    ck_assert_int_gt(stats_of(ctx).poll_ns, 0);
    atomic_store(&poll_work, true);
    aio_timer_mod(timer, clock_ns() + 10 * NS_PER_S); /* would sleep long */
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(poll_ready_calls, 1);
    ck_assert_uint_ge(stats_of(ctx).poll_successes, 1);

    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL, NULL);
    aio_timer_free(timer);
    aio_context_free(ctx);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* ---- Fallback when io_uring cannot be set up
 * ---------------------------------------- */

/* Make io_uring_setup() fail with ENOSYS in this (forked) test process. */
static void forbid_io_uring(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = ARRAY_SIZE(filter), .filter = filter};

    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

START_TEST(test_fallback_to_poll_without_io_uring)
{
    AioContextOptions auto_opts = {.fdmon = AIO_FDMON_AUTO};
    AioContextOptions uring_opts = {.fdmon = AIO_FDMON_IO_URING};
    AioContext *c;

    forbid_io_uring();
    errno = 0;
    ck_assert_ptr_null(aio_context_new(&uring_opts));
    ck_assert_int_eq(errno, ENOSYS);
    c = aio_context_new(&auto_opts);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(aio_context_fdmon_name(c), "poll");
    aio_context_free(c);
}
END_TEST

/* ---- The stall: an SQE queued by a big-lock holder while the main loop sleeps
 * ---- */

#define STALL_CAP_MS 200

/* The main loop on its own thread with a short cap, on fd monitor @fdmon. */
static void start_main_loop(MainLoopThread *m, AioFdmonKind fdmon)
{
    MainLoopOptions opts = {.fdmon = fdmon, .timeout_ms = STALL_CAP_MS};

    main_loop_thread_start(m, &opts);
}

/*
 * Play a vCPU thread: wait until the main loop sleeps, take the big lock,
 * queue a read into the current (= main) context, drop the lock, and wait
 * for the completion. Returns the latency in ns.
 */
static int64_t vcpu_queue_read(SqeProbe *p, MainLoopThread *m,
                               AioContextStats *before)
{
    int64_t deadline = clock_ns() + 5 * NS_PER_S;

    while (!main_loop_sleeping()) {
        usleep(100);
    }
    bql_lock();
    ck_assert_ptr_eq(aio_current_context(), main_loop_context());
    p->stats_ctx = main_loop_context();
    *before = stats_of(main_loop_context());
    if (p->inject_count) {
        aio_uring_inject_submit_error(main_loop_context(), p->inject_errno,
                                      p->inject_count);
    }
    p->queued_ns = clock_ns();
    ck_assert_int_eq(aio_add_sqe(prep_read, p, &p->handler), 0);
    bql_unlock();

    while (!atomic_load(&p->done)) {
        ck_assert_msg(clock_ns() < deadline, "read never completed");
        usleep(200);
    }
    ck_assert(pthread_equal(p->done_on, m->thread));
    ck_assert_int_eq(p->handler.cqe.res, 4096);
    ck_assert_int_eq(p->buf[0], 'A');
    return p->done_ns - p->queued_ns;
}

START_TEST(test_stall_with_notify_off)
{
    SqeProbe rd = {.handler.cb = sqe_done, .len = 4096};
    MainLoopThread m = {0};
    AioContextStats before;
    int64_t latency;

    rd.fd = make_pattern_file();
    aio_set_notify_on_sqe(false);
    start_main_loop(&m, AIO_FDMON_IO_URING);
    latency = vcpu_queue_read(&rd, &m, &before);

    /*
     * Nothing woke the loop: the read was submitted only after the wait
     * timed out, about STALL_CAP_MS after the loop fell asleep.
     */
    ck_assert_uint_gt(rd.stats_at_done.wait_timeouts, before.wait_timeouts);
    ck_assert_uint_eq(rd.stats_at_done.wait_notified, before.wait_notified);
    ck_assert_int_ge(latency, STALL_CAP_MS / 2 * NS_PER_MS);
    main_loop_thread_stop(&m);
    aio_set_notify_on_sqe(true);
    close(rd.fd);
}
END_TEST

/*
 * The fix, with the deferred kick on (the eventfd write waits for the vCPU's
 * bql_unlock()) or off (written at once, inside aio_add_sqe(): QEMU's fix
 * alone). Either way the loop is woken, not timed out.
 */
static void check_stall_fixed(bool defer_kick)
{
    SqeProbe rd = {.handler.cb = sqe_done, .len = 4096};
    MainLoopThread m = {0};
    AioContextStats before;

    rd.fd = make_pattern_file();
    aio_set_notify_on_sqe(true);
    main_loop_set_defer_kick(defer_kick);
    start_main_loop(&m, AIO_FDMON_IO_URING);
    (void)vcpu_queue_read(&rd, &m, &before);

    /*
     * Woken by the notifier, with no timeout in between; then the read's
     * CQE ends a second sleep. (The counters say it; a latency bound would
     * fail on a loaded machine, and the benchmarks measure latency.)
     */
    ck_assert_uint_eq(rd.stats_at_done.wait_timeouts, before.wait_timeouts);
    ck_assert_uint_gt(rd.stats_at_done.wait_notified, before.wait_notified);
    ck_assert_uint_gt(rd.stats_at_done.wait_io, before.wait_io);
    main_loop_thread_stop(&m);
    main_loop_set_defer_kick(true);
    close(rd.fd);
}

START_TEST(test_stall_fixed_with_notify_on)
{
    check_stall_fixed(true);
}
END_TEST

START_TEST(test_stall_fixed_with_notify_on_defer_off)
{
    check_stall_fixed(false);
}
END_TEST

/*
 * The fix on, and the main loop's prepare-time submit refused: once (the
 * retry after reaping takes it), or four times (both of prepare's submits
 * and their retries; the wait then must not sleep). Either way the read is
 * submitted without waiting for the loop's timeout.
 */
START_TEST(test_stall_fixed_when_prepare_submit_refused)
{
    static const struct {
        int err;
        unsigned count;
    } cases[] = {{EINTR, 1}, {EAGAIN, 1}, {EBUSY, 1}, {EAGAIN, 4}};
    SqeProbe rd = {.handler.cb = sqe_done,
                   .len = 4096,
                   .inject_errno = cases[_i].err,
                   .inject_count = cases[_i].count};
    MainLoopThread m = {0};
    AioContextStats before;
    int64_t latency;

    rd.fd = make_pattern_file();
    aio_set_notify_on_sqe(true);
    start_main_loop(&m, AIO_FDMON_IO_URING);
    latency = vcpu_queue_read(&rd, &m, &before);
    /*
     * No wait ended by its timeout: that is the stall, whatever the clock
     * says on a loaded machine (the latency is printed for a person).
     */
    ck_assert_uint_eq(rd.stats_at_done.wait_timeouts, before.wait_timeouts);
    if (latency >= STALL_CAP_MS / 2 * NS_PER_MS) {
        fprintf(stderr, "test-aio: refused submit case %d: %lld ms\n", _i,
                (long long)(latency / NS_PER_MS));
    }
    main_loop_thread_stop(&m);
    close(rd.fd);
}
END_TEST

/* The main loop on either backend: BHs from other threads wake it. */
static void set_flag(void *opaque)
{
    atomic_store((atomic_bool *)opaque, true);
}

START_TEST(test_main_loop_runs_bh_from_other_thread)
{
    MainLoopThread m = {0};
    atomic_bool ran = false;
    AioContextStats before;
    int64_t deadline;

    start_main_loop(&m, backends[_i]);
    while (!main_loop_sleeping()) {
        usleep(100);
    }
    before = stats_of(main_loop_context());
    deadline = clock_ns() + 5 * NS_PER_S;
    aio_bh_schedule_oneshot(main_loop_context(), set_flag, &ran);
    while (!atomic_load(&ran) && clock_ns() < deadline) {
        usleep(100);
    }
    ck_assert(atomic_load(&ran));
    /* Woken by the BH's notify, not left to the wait's timeout. */
    ck_assert_uint_gt(stats_of(main_loop_context()).wait_notified,
                      before.wait_notified);
    main_loop_thread_stop(&m);
}
END_TEST

/*
 * With the deferred kick on (the default), a big-lock holder's wake-up of the
 * main loop is delivered when it drops the lock: not before (the loop could
 * not run anyway), and not later.
 */
START_TEST(test_main_loop_wakeup_deferred_to_bql_unlock)
{
    MainLoopThread m = {0};
    atomic_bool ran = false;
    uint64_t writes_before, timeouts_before;
    int64_t unlocked, deadline;

    start_main_loop(&m, backends[_i]);
    while (!main_loop_sleeping()) {
        usleep(100);
    }
    bql_lock();
    writes_before = stats_of(main_loop_context()).notify_writes;
    timeouts_before = stats_of(main_loop_context()).wait_timeouts;
    aio_bh_schedule_oneshot(main_loop_context(), set_flag, &ran);
    usleep(20000);
    ck_assert_uint_eq(stats_of(main_loop_context()).notify_writes,
                      writes_before);
    ck_assert(!atomic_load(&ran));
    bql_unlock();
    unlocked = clock_ns();

    deadline = unlocked + 5 * NS_PER_S;
    while (!atomic_load(&ran) && clock_ns() < deadline) {
        usleep(100);
    }
    ck_assert(atomic_load(&ran));
    ck_assert_uint_eq(stats_of(main_loop_context()).notify_writes,
                      writes_before + 1);
    /* Woken by the write, not by its timeout (unless the cap raced us). */
    ck_assert_uint_le(stats_of(main_loop_context()).wait_timeouts,
                      timeouts_before + 1);
    main_loop_thread_stop(&m);
}
END_TEST

/*
 * The deferred kick, switched on and off. A big-lock holder calls
 * aio_notify() on the sleeping main loop, as a vCPU thread does through
 * aio_add_sqe() or a BH. The loop runs without a cap, so that only the
 * eventfd write can end its sleep.
 */
static void start_uncapped_main_loop(MainLoopThread *m, AioFdmonKind fdmon)
{
    MainLoopOptions opts = {.fdmon = fdmon, .timeout_ms = -1};

    main_loop_thread_start(m, &opts);
    while (!main_loop_sleeping()) {
        usleep(100);
    }
}

/* Wait until a sleep of the main loop ends by a notify; fail after 5 s. */
static void wait_main_loop_notified(const AioContextStats *before)
{
    int64_t deadline = clock_ns() + 5 * NS_PER_S;

    while (stats_of(main_loop_context()).wait_notified ==
           before->wait_notified) {
        ck_assert_msg(clock_ns() < deadline, "the main loop never woke");
        usleep(100);
    }
}

START_TEST(test_main_loop_notify_deferred_with_defer_on)
{
    MainLoopThread m = {0};
    AioContextStats before, held;

    main_loop_set_defer_kick(true);
    start_uncapped_main_loop(&m, backends[_i]);
    bql_lock();
    before = stats_of(main_loop_context());
    aio_notify(main_loop_context());
    usleep(20000); /* time for a loop woken too early to show it */
    held = stats_of(main_loop_context());
    ck_assert_uint_eq(held.notify_writes, before.notify_writes);
    ck_assert_uint_eq(held.wait_notified, before.wait_notified);
    bql_unlock();

    /* The write is made by bql_unlock() itself, and it wakes the loop. */
    ck_assert_uint_eq(stats_of(main_loop_context()).notify_writes,
                      before.notify_writes + 1);
    wait_main_loop_notified(&before);
    main_loop_thread_stop(&m);
}
END_TEST

START_TEST(test_main_loop_notify_at_once_with_defer_off)
{
    MainLoopThread m = {0};
    AioContextStats before;

    main_loop_set_defer_kick(false);
    start_uncapped_main_loop(&m, backends[_i]);
    bql_lock();
    before = stats_of(main_loop_context());
    aio_notify(main_loop_context());
    ck_assert_uint_eq(stats_of(main_loop_context()).notify_writes,
                      before.notify_writes + 1);
    /*
     * The loop wakes while we still hold the lock, and can only wait for it:
     * it counts as sleeping until it has the lock. This wake-up is the one
     * the deferred kick saves.
     */
    wait_main_loop_notified(&before);
    ck_assert(main_loop_sleeping());
    bql_unlock();

    /* Nothing was left for bql_unlock() to write. */
    ck_assert_uint_eq(stats_of(main_loop_context()).notify_writes,
                      before.notify_writes + 1);
    main_loop_thread_stop(&m);
    main_loop_set_defer_kick(true);
}
END_TEST

/*
 * A timer armed in the main context by a big-lock holder (a vCPU thread)
 * while the main loop sleeps must shorten that sleep: the lock holder counts
 * as the context's home thread, but it is not the one waiting.
 */
typedef struct MainTimerProbe {
    atomic_bool fired;
    int64_t fired_ns;
    pthread_t fired_on;
} MainTimerProbe;

static void main_timer_fired(void *opaque)
{
    MainTimerProbe *p = opaque;

    p->fired_ns = clock_ns();
    p->fired_on = pthread_self();
    atomic_store(&p->fired, true);
}

START_TEST(test_main_loop_timer_armed_by_lock_holder)
{
    MainLoopThread m = {0};
    MainTimerProbe probe = {0};
    AioContextStats before;
    AioTimer *timer;
    int64_t armed_ns, deadline;

    start_main_loop(&m, backends[_i]);
    while (!main_loop_sleeping()) {
        usleep(100);
    }
    before = stats_of(main_loop_context());
    bql_lock();
    timer = aio_timer_new(main_loop_context(), main_timer_fired, &probe);
    armed_ns = clock_ns();
    aio_timer_mod(timer, armed_ns + NS_PER_MS);
    bql_unlock();

    deadline = armed_ns + 5 * NS_PER_S;
    while (!atomic_load(&probe.fired) && clock_ns() < deadline) {
        usleep(100);
    }
    ck_assert(atomic_load(&probe.fired));
    ck_assert(pthread_equal(probe.fired_on, m.thread));
    /*
     * Before the fix it fired only when the capped wait timed out: now
     * arming it woke the loop to wait for the timer's deadline instead.
     */
    ck_assert_uint_gt(stats_of(main_loop_context()).wait_notified,
                      before.wait_notified);
    bql_lock();
    aio_timer_free(timer);
    bql_unlock();
    main_loop_thread_stop(&m);
}
END_TEST

Suite *aio_suite(void)
{
    Suite *s = suite_create("aio");
    TCase *tc;

    tc = tcase_create("bh");
    tcase_add_loop_test(tc, test_bh_from_other_thread_run_once_in_order, 0, 2);
    tcase_add_loop_test(tc, test_bh_concurrent_schedulers, 0, 2);
    tcase_add_loop_test(tc, test_bh_oneshot_cancel_delete, 0, 2);
    tcase_add_loop_test(tc, test_bh_reschedules_itself, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("timer");
    tcase_add_loop_test(tc, test_timers_fire_in_deadline_order, 0, 2);
    tcase_add_loop_test(tc, test_timer_armed_from_other_thread_wakes_poll, 0,
                        2);
    suite_add_tcase(s, tc);

    tc = tcase_create("notify");
    tcase_add_loop_test(tc, test_notify_wakes_blocking_poll, 0, 2);
    tcase_add_loop_test(tc, test_notify_no_write_when_nobody_sleeps, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("fd");
    tcase_add_loop_test(tc, test_fd_handler_readiness_and_removal, 0, 2);
    tcase_add_loop_test(tc, test_fd_handler_removed_during_dispatch, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("sqe");
    tcase_add_loop_test(tc, test_add_sqe_nop_and_read, 0, 2);
    tcase_add_test(tc, test_add_sqe_overflows_ring);
    tcase_add_test(tc, test_fallback_to_poll_without_io_uring);
    tcase_add_loop_test(tc, test_refused_submit_retried, 0, 6);
    tcase_add_test(tc, test_full_ring_refused_keeps_fds_watched);
    suite_add_tcase(s, tc);

    tc = tcase_create("iothread");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_iothread_add_sqe_completes_on_iothread);
    tcase_add_loop_test(tc, test_iothread_start_stop_100_times, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("polling");
    tcase_add_loop_test(tc, test_adaptive_polling_grows_shrinks_and_polls, 0,
                        2);
    suite_add_tcase(s, tc);

    tc = tcase_create("main-loop");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_stall_with_notify_off);
    tcase_add_test(tc, test_stall_fixed_with_notify_on);
    tcase_add_test(tc, test_stall_fixed_with_notify_on_defer_off);
    tcase_add_loop_test(tc, test_stall_fixed_when_prepare_submit_refused, 0, 4);
    tcase_add_loop_test(tc, test_main_loop_runs_bh_from_other_thread, 0, 2);
    tcase_add_loop_test(tc, test_main_loop_timer_armed_by_lock_holder, 0, 2);
    tcase_add_loop_test(tc, test_main_loop_wakeup_deferred_to_bql_unlock, 0, 2);
    tcase_add_loop_test(tc, test_main_loop_notify_deferred_with_defer_on, 0, 2);
    tcase_add_loop_test(tc, test_main_loop_notify_at_once_with_defer_off, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
