/*
 * Tests of what the event loop does with io_uring beyond waiting: multishot
 * polls, the eventfd read through the ring, aio_cancel_sqe(), and the
 * notify protocol (notify_me raised only once polling has failed). The
 * counters of AioContextStats tell what happened: re-armed polls, read(2)
 * calls of the eventfd, eventfd writes, waits.
 *
 * The multishot and notifier-read switches are process-wide and apply to
 * contexts created afterwards; each test that changes one puts the default
 * back (Check runs every test in a process of its own anyway).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aio/aio.h"
#include "aio/iothread.h"
#include "aio/main-loop.h"
#include "tests/unit/loop-thread.h"
#include "tests/unit/suites.h"
#include "util/clock.h"
#include "util/compiler.h"

static const AioFdmonKind backends[] = {AIO_FDMON_IO_URING, AIO_FDMON_POLL};

static AioContext *new_ctx(AioFdmonKind fdmon, unsigned ring_entries)
{
    AioContextOptions opts = {
        .name = "test", .fdmon = fdmon, .ring_entries = ring_entries};
    AioContext *c = aio_context_new(&opts);

    ck_assert_msg(c, "aio_context_new: %s", strerror(errno));
    aio_set_thread_context(c);
    return c;
}

static AioContextStats stats_of(AioContext *c)
{
    AioContextStats s;

    aio_context_get_stats(c, &s);
    return s;
}

/* ---- Multishot polls ----------------------------------------------------- */

typedef struct EventProbe {
    int fd;
    int calls;
    uint64_t total; /* what the handler read, summed */
} EventProbe;

static void event_readable(void *opaque)
{
    EventProbe *p = opaque;
    eventfd_t v;

    p->calls++;
    if (eventfd_read(p->fd, &v) == 0) {
        p->total += v;
    }
}

/* Make the eventfd readable @times times, one at a time, as a device would. */
static void fire_times(AioContext *c, EventProbe *p, int times)
{
    uint64_t base = p->total;

    for (int i = 1; i <= times; i++) {
        int64_t deadline = clock_ns() + 5 * NS_PER_S;

        ck_assert_int_eq(eventfd_write(p->fd, 1), 0);
        while (p->total < base + i) {
            ck_assert_msg(clock_ns() < deadline, "event %d never seen", i);
            aio_poll(c, true);
        }
    }
}

/*
 * An fd that becomes readable again and again: its handler runs each time.
 * Multishot (loop 0), the one POLL_ADD armed at registration serves every
 * event and nothing is re-armed; one-shot (loop 1, the switch off), each
 * event costs a re-arm.
 */
START_TEST(test_multishot_poll_serves_every_event)
{
    enum { EVENTS = 50 };
    EventProbe p = {0};
    AioContextStats before;
    AioContext *c;

    aio_set_uring_multishot(_i == 0);
    c = new_ctx(AIO_FDMON_IO_URING, 0);

    p.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_ge(p.fd, 0);
    aio_set_fd_handler(c, p.fd, event_readable, NULL, NULL, NULL, &p);
    aio_poll(c, false); /* the poll goes to the kernel */
    before = stats_of(c);

    fire_times(c, &p, EVENTS);
    ck_assert_int_eq(p.total, EVENTS);
    ck_assert_int_ge(p.calls, EVENTS);
    if (_i == 0) {
        ck_assert_uint_eq(stats_of(c).poll_rearms, before.poll_rearms);
    } else {
        ck_assert_uint_ge(stats_of(c).poll_rearms - before.poll_rearms,
                          EVENTS - 1);
    }

    /* Removed: never called again, and the node's poll is let go. */
    aio_set_fd_handler(c, p.fd, NULL, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(eventfd_write(p.fd, 1), 0);
    for (int i = 0; i < 10; i++) {
        aio_poll(c, false);
    }
    ck_assert_int_eq(p.total, EVENTS);
    aio_context_free(c);
    close(p.fd);
    aio_set_uring_multishot(true);
}
END_TEST

static void prep_nop(struct io_uring_sqe *sqe, void *opaque)
{
    (void)opaque;
    io_uring_prep_nop(sqe);
}

typedef struct CountProbe {
    CqeHandler handler;
    int calls;
    int res;
} CountProbe;

static void count_done(CqeHandler *handler)
{
    CountProbe *p = container_of(handler, CountProbe, handler);

    p->calls++;
    p->res = handler->cqe.res;
}

/*
 * The kernel ends a multishot poll when it cannot post a CQE for it (the
 * completion ring is full): the last CQE comes without IORING_CQE_F_MORE.
 * The handler runs and the poll is re-armed: later events still reach it.
 * With DEFER_TASKRUN the wake-up waits as task work for the next enter
 * with GETEVENTS, and by then the loop has reaped the ring: the kernel
 * need not end the poll, and only the events are checked.
 */
START_TEST(test_multishot_poll_ended_by_kernel_is_rearmed)
{
    enum { NOPS = 64 };
    static CountProbe nops[NOPS];
    EventProbe p = {0};
    AioContext *c = new_ctx(AIO_FDMON_IO_URING, 4); /* 8 CQEs */
    AioContextStats before;
    int64_t deadline = clock_ns() + 5 * NS_PER_S;

    p.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_ge(p.fd, 0);
    aio_set_fd_handler(c, p.fd, event_readable, NULL, NULL, NULL, &p);
    aio_poll(c, false);
    before = stats_of(c);

    /*
     * Fill the completion ring: queueing into a full SQ ring submits it,
     * and the NOPs complete at once, with nobody reaping. Then the event.
     */
    for (int i = 0; i < NOPS; i++) {
        nops[i] = (CountProbe){.handler.cb = count_done};
        ck_assert_int_eq(
            aio_context_add_sqe(c, prep_nop, NULL, &nops[i].handler), 0);
    }
    ck_assert_int_eq(eventfd_write(p.fd, 1), 0);
    while (p.total < 1) {
        ck_assert_msg(clock_ns() < deadline, "event never seen");
        aio_poll(c, true);
    }
    for (int i = 0; i < NOPS; i++) {
        while (nops[i].calls == 0) {
            ck_assert_msg(clock_ns() < deadline, "NOP %d lost", i);
            aio_poll(c, true);
        }
        ck_assert_int_eq(nops[i].calls, 1);
    }
    if (!(aio_context_uring_flags(c) & IORING_SETUP_DEFER_TASKRUN)) {
        ck_assert_uint_gt(stats_of(c).poll_rearms, before.poll_rearms);
    }

    fire_times(c, &p, 2); /* the re-armed poll still sees each event */
    ck_assert_int_eq(p.total, 3);
    aio_set_fd_handler(c, p.fd, NULL, NULL, NULL, NULL, NULL);
    aio_poll(c, false);
    aio_context_free(c);
    close(p.fd);
}
END_TEST

/* ---- The eventfd read through the ring ------------------------------------
 */

typedef struct Notifier {
    AioContext *ctx;
    atomic_bool sent;
} Notifier;

static void *notify_later_thread(void *opaque)
{
    Notifier *n = opaque;

    usleep(20000);
    atomic_store(&n->sent, true);
    aio_notify(n->ctx);
    return NULL;
}

/*
 * A sleeping context woken by another thread's aio_notify(). With the
 * notifier read on (loop 0) the wake-up is an io_uring READ's completion:
 * no read(2) at all, and the only system call of the loop is
 * io_uring_enter. Off (loop 1), the eventfd is polled and its handler
 * reads it.
 */
START_TEST(test_notifier_read_through_the_ring)
{
    enum { WAKES = 5 };
    AioContextStats before, after;
    AioContext *c;

    aio_set_uring_notifier_read(_i == 0);
    c = new_ctx(AIO_FDMON_IO_URING, 0);
    aio_poll(c, false);
    before = stats_of(c);
    for (int k = 0; k < WAKES; k++) {
        Notifier n = {.ctx = c};
        pthread_t thread;

        pthread_create(&thread, NULL, notify_later_thread, &n);
        while (!atomic_load(&n.sent)) {
            ck_assert(!aio_poll(c, true)); /* the notifier is not progress */
        }
        pthread_join(thread, NULL);
        aio_poll(c, false); /* collect the wake-up if it raced the flag */
    }
    after = stats_of(c);
    ck_assert_uint_ge(after.notify_writes - before.notify_writes, WAKES);
    ck_assert_uint_ge(after.wait_notified - before.wait_notified, WAKES);
    ck_assert_uint_ge(after.notifier_wakes - before.notifier_wakes, WAKES);
    if (_i == 0) {
        ck_assert_uint_eq(after.notifier_reads, before.notifier_reads);
        ck_assert_uint_eq(after.syscalls - before.syscalls,
                          after.uring_enters - before.uring_enters);
    } else {
        ck_assert_uint_ge(after.notifier_reads - before.notifier_reads, WAKES);
    }
    aio_context_free(c);
    aio_set_uring_notifier_read(true);
}
END_TEST

/* ---- aio_cancel_sqe() ------------------------------------------------------
 */

typedef struct ReadProbe {
    CqeHandler handler;
    int fd;
    char buf[16];
    atomic_int calls;
    int res;
} ReadProbe;

static void read_done(CqeHandler *handler)
{
    ReadProbe *p = container_of(handler, ReadProbe, handler);

    p->res = handler->cqe.res;
    atomic_fetch_add(&p->calls, 1);
}

static void prep_pipe_read(struct io_uring_sqe *sqe, void *opaque)
{
    ReadProbe *p = opaque;

    io_uring_prep_read(sqe, p->fd, p->buf, sizeof(p->buf), 0);
}

/* Poll @c until @p's callback ran; fails after 5 s (a request never done). */
static void poll_until_called(AioContext *c, ReadProbe *p)
{
    int64_t deadline = clock_ns() + 5 * NS_PER_S;

    while (atomic_load(&p->calls) == 0) {
        ck_assert_msg(clock_ns() < deadline, "callback never ran");
        aio_poll(c, true);
    }
}

/*
 * A read of an empty pipe never completes by itself. Cancelled, its
 * callback runs once, with -ECANCELED, and the context has nothing left in
 * flight: every queued request was dispatched, and a blocking poll with a
 * timer sleeps until the timer (no stray CQE ends it).
 */
START_TEST(test_cancel_sqe_stops_a_pending_read)
{
    ReadProbe p = {.handler.cb = read_done};
    AioContext *c = new_ctx(AIO_FDMON_IO_URING, 0);
    int fds[2];

    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    p.fd = fds[0];
    ck_assert_int_eq(aio_context_add_sqe(c, prep_pipe_read, &p, &p.handler), 0);
    for (int i = 0; i < 3; i++) {
        aio_poll(c, false); /* submitted; nothing to read */
    }
    ck_assert_int_eq(atomic_load(&p.calls), 0);

    ck_assert_int_eq(aio_cancel_sqe(c, &p.handler), 0);
    poll_until_called(c, &p);
    ck_assert_int_eq(p.res, -ECANCELED);
    for (int i = 0; i < 3; i++) {
        aio_poll(c, false);
    }
    ck_assert_int_eq(atomic_load(&p.calls), 1);
    ck_assert_uint_eq(stats_of(c).cqes_dispatched, stats_of(c).sqes_queued);

    /* The pipe is not read any more: what is written stays there. */
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    aio_poll(c, false);
    ck_assert_int_eq(read(fds[0], p.buf, 1), 1);
    aio_context_free(c);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/*
 * A request that completes before the cancel reaches it keeps its result:
 * the callback runs once, with it. (A NOP queued with its cancel in the
 * same batch is done when the kernel issues it, before the cancel.)
 */
START_TEST(test_cancel_sqe_too_late_keeps_the_result)
{
    CountProbe nop = {.handler.cb = count_done};
    AioContext *c = new_ctx(AIO_FDMON_IO_URING, 0);
    int64_t deadline = clock_ns() + 5 * NS_PER_S;

    ck_assert_int_eq(aio_context_add_sqe(c, prep_nop, NULL, &nop.handler), 0);
    ck_assert_int_eq(aio_cancel_sqe(c, &nop.handler), 0);
    while (nop.calls == 0) {
        ck_assert_msg(clock_ns() < deadline, "NOP never completed");
        aio_poll(c, true);
    }
    for (int i = 0; i < 3; i++) {
        aio_poll(c, false);
    }
    ck_assert_int_eq(nop.calls, 1);
    ck_assert_int_eq(nop.res, 0);
    aio_context_free(c);
}
END_TEST

START_TEST(test_cancel_sqe_without_io_uring)
{
    CountProbe nop = {.handler.cb = count_done};
    AioContext *c = new_ctx(AIO_FDMON_POLL, 0);

    ck_assert_int_eq(aio_cancel_sqe(c, &nop.handler), -ENOTSUP);
    aio_context_free(c);
}
END_TEST

/*
 * A big-lock holder (a vCPU thread, for a device reset) cancels a read on
 * the main context while the main loop sleeps with no cap on its wait: the
 * cancel is an SQE like any other, and without the notify-on-SQE wake-up it
 * would never be submitted (the test would time out).
 */
START_TEST(test_cancel_sqe_from_lock_holder_wakes_main_loop)
{
    ReadProbe p = {.handler.cb = read_done};
    MainLoopOptions opts = {.fdmon = AIO_FDMON_IO_URING, .timeout_ms = -1};
    MainLoopThread m = {0};
    int64_t deadline = clock_ns() + 5 * NS_PER_S;
    int fds[2];

    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    p.fd = fds[0];
    main_loop_thread_start(&m, &opts);
    bql_lock();
    ck_assert_int_eq(aio_add_sqe(prep_pipe_read, &p, &p.handler), 0);
    bql_unlock();
    while (!main_loop_sleeping()) {
        usleep(100);
    }
    usleep(10000);
    ck_assert_int_eq(atomic_load(&p.calls), 0);

    bql_lock();
    ck_assert_int_eq(aio_cancel_sqe(main_loop_context(), &p.handler), 0);
    bql_unlock();
    while (atomic_load(&p.calls) == 0) {
        ck_assert_msg(clock_ns() < deadline, "the cancel was never submitted");
        usleep(200);
    }
    ck_assert_int_eq(p.res, -ECANCELED);
    main_loop_thread_stop(&m);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* ---- What weighted polling learns from --------------------------------- */

/*
 * A pass that starts with a completion already in the ring (an fd's poll
 * fired before the pass) has nothing to wait for: with weighted polling it
 * neither polls nor sleeps, and teaches the policy nothing. Counted, such
 * zero waits taught an IOThread to poll before every disk read, in vain
 * (about 4 us per I/O in bench-uring). (Grow/shrink learns from every
 * pass, as QEMU's does.)
 */
START_TEST(test_weighted_does_not_learn_from_a_pending_completion)
{
    AioContextOptions opts = {
        .name = "weighted",
        .fdmon = AIO_FDMON_IO_URING,
        .poll = {.max_ns = 32768, .grow = 2, .weight = 2}};
    EventProbe p = {0};
    AioContextStats before, after;
    AioContext *c = aio_context_new(&opts);

    ck_assert_ptr_nonnull(c);
    aio_set_thread_context(c);
    if (aio_context_uring_flags(c) & IORING_SETUP_DEFER_TASKRUN) {
        /* The CQE only appears once the thread enters the kernel. */
        aio_context_free(c);
        return;
    }
    p.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_ge(p.fd, 0);
    aio_set_fd_handler(c, p.fd, event_readable, NULL, NULL, NULL, &p);
    aio_poll(c, false); /* the poll goes to the kernel */

    for (int i = 0; i < 10; i++) {
        before = stats_of(c);
        /* The poll's completion is posted on the way out of this call. */
        ck_assert_int_eq(eventfd_write(p.fd, 1), 0);
        ck_assert(aio_poll(c, true));
        after = stats_of(c);
        ck_assert_uint_eq(p.total, i + 1);
        ck_assert_uint_eq(after.waits, before.waits);
        ck_assert_uint_eq(after.poll_time_ns, before.poll_time_ns);
        ck_assert_int_eq(after.poll_ns, 0);
    }
    aio_set_fd_handler(c, p.fd, NULL, NULL, NULL, NULL, NULL);
    aio_context_free(c);
    close(p.fd);
}
END_TEST

typedef struct PollBracket {
    EventProbe ev;
    int begins, ends;
    bool armed;   /* io_poll() finds work once polling has ended */
    bool ended;   /* io_poll_end() ran since armed */
    bool handled; /* io_poll_ready() ran */
} PollBracket;

static bool bracket_poll(void *opaque)
{
    PollBracket *p = opaque;

    return p->armed && p->ended && !p->handled;
}

static void bracket_ready(void *opaque)
{
    PollBracket *p = opaque;

    p->handled = true;
}

static void bracket_begin(void *opaque)
{
    PollBracket *p = opaque;

    p->begins++;
    p->ended = false;
}

static void bracket_end(void *opaque)
{
    PollBracket *p = opaque;

    p->ends++;
    p->ended = p->armed;
}

static void bracket_read(void *opaque)
{
    PollBracket *p = opaque;

    event_readable(&p->ev);
}

/*
 * io_poll_begin and io_poll_end bracket each busy-poll, and after the end
 * the loop looks once more: work that came while the source was told not
 * to signal (here: work io_poll() reports only once polling has ended) is
 * found without a signal. Without that look this pass would sleep forever.
 */
START_TEST(test_poll_begin_end_bracket_and_look_again)
{
    AioContextOptions opts = {
        .name = "bracket",
        .fdmon = backends[_i],
        .poll = {.max_ns = 32768, .grow = 2}}; /* grow/shrink */
    PollBracket p = {0};
    AioContextStats before;
    AioContext *c = aio_context_new(&opts);

    ck_assert_ptr_nonnull(c);
    aio_set_thread_context(c);
    p.ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_ge(p.ev.fd, 0);
    aio_set_fd_handler(c, p.ev.fd, bracket_read, NULL, bracket_poll,
                       bracket_ready, &p);
    aio_set_poll_begin_end(c, p.ev.fd, bracket_begin, bracket_end);
    /* Short waits grow the polling time from 0. */
    for (int i = 0; i < 20 && stats_of(c).poll_ns == 0; i++) {
        ck_assert_int_eq(eventfd_write(p.ev.fd, 1), 0);
        aio_poll(c, true);
    }
    ck_assert_int_gt(stats_of(c).poll_ns, 0);
    ck_assert_int_eq(p.begins, p.ends);

    before = stats_of(c);
    p.begins = p.ends = 0;
    p.armed = true;
    ck_assert(aio_poll(c, true));
    ck_assert(p.handled);
    ck_assert_int_eq(p.begins, 1);
    ck_assert_int_eq(p.ends, 1);
    ck_assert_uint_eq(stats_of(c).waits, before.waits);

    aio_set_fd_handler(c, p.ev.fd, NULL, NULL, NULL, NULL, NULL);
    aio_context_free(c);
    close(p.ev.fd);
}
END_TEST

/* ---- The notify protocol ---------------------------------------------------
 */

static void nothing(void *opaque)
{
    (void)opaque;
}

/*
 * Cross-thread notifies to a busy-polling IOThread: aio_run_in_context()
 * schedules a BH and so calls aio_notify(). The IOThread polls for seconds
 * (grow/shrink, growing 1000x per step: the warm-up's 10 ms gaps take it
 * from 0 to 4 us, 4 ms, 4 s), so it never sleeps between the calls. With the
 * protocol on (loop 0) notify_me stays 0 while it polls and no eventfd is
 * written; off (loop 1), raised before the poll, it makes every notify that
 * finds the IOThread in aio_poll() write. Both fd monitors (loops 0-1 io_uring,
 * 2-3 poll).
 */
START_TEST(test_notify_to_polling_iothread_writes_no_eventfd)
{
    enum { CALLS = 100 };
    bool late = _i % 2 == 0;
    AioContextOptions opts = {.fdmon = backends[_i / 2],
                              .poll = {.max_ns = 10 * NS_PER_S, .grow = 1000}};
    AioContextStats before, after;
    IOThread *io;
    AioContext *c;

    aio_set_notify_after_poll(late);
    io = iothread_new("poller", &opts);
    ck_assert_ptr_nonnull(io);
    c = iothread_get_context(io);
    for (int i = 0; i < 10 && stats_of(c).poll_ns < NS_PER_S; i++) {
        usleep(10000);
        aio_run_in_context(c, nothing, NULL);
    }
    ck_assert_int_ge(stats_of(c).poll_ns, NS_PER_S);

    before = stats_of(c);
    if (late) {
        for (int i = 0; i < CALLS; i++) {
            aio_run_in_context(c, nothing, NULL);
        }
        after = stats_of(c);
        ck_assert_uint_eq(after.notify_writes, before.notify_writes);
        ck_assert_uint_eq(after.waits, before.waits);
    } else {
        /*
         * A notify writes only while the IOThread is inside aio_poll(); on a
         * busy machine it may be preempted between passes for a whole burst,
         * so keep notifying (up to 1000 bursts) until one finds it there.
         */
        for (int i = 0; i < 1000 * CALLS; i++) {
            aio_run_in_context(c, nothing, NULL);
            if (i % CALLS == CALLS - 1 &&
                stats_of(c).notify_writes > before.notify_writes) {
                break;
            }
        }
        after = stats_of(c);
        ck_assert_uint_gt(after.notify_writes, before.notify_writes);
    }
    iothread_free(io);
    aio_set_notify_after_poll(true);
}
END_TEST

/*
 * An SQE queued by the thread that runs the loop needs no wake-up: that
 * thread submits before it sleeps. With the protocol on (loop 0) the next
 * blocking poll is a real wait that the NOP's completion ends; off (loop
 * 1), aio_add_sqe()'s notify zeroes its timeout, and the pass does not
 * wait at all.
 */
START_TEST(test_sqe_from_loop_thread_costs_no_notify)
{
    CountProbe nop = {.handler.cb = count_done};
    AioContext *c;
    AioTimer *timer;
    AioContextStats before, after;

    aio_set_notify_after_poll(_i == 0);
    c = new_ctx(AIO_FDMON_IO_URING, 0);
    timer = aio_timer_new(c, nothing, NULL);
    aio_timer_mod(timer, clock_ns() + 10 * NS_PER_S); /* a finite wait */
    aio_notify(c);
    aio_poll(c, true); /* returns at once, and clears 'notified' */
    before = stats_of(c);
    ck_assert_int_eq(aio_add_sqe(prep_nop, NULL, &nop.handler), 0);
    ck_assert(aio_poll(c, true));
    after = stats_of(c);
    ck_assert_int_eq(nop.calls, 1);
    ck_assert_uint_eq(after.notify_writes, before.notify_writes);
    if (_i == 0) {
        ck_assert_uint_eq(after.waits - before.waits, 1);
        ck_assert_uint_eq(after.wait_io - before.wait_io, 1);
    } else {
        ck_assert_uint_eq(after.waits, before.waits);
    }
    aio_timer_free(timer);
    aio_context_free(c);
    aio_set_notify_after_poll(true);
}
END_TEST

Suite *aio_uring_suite(void)
{
    Suite *s = suite_create("aio-uring");
    TCase *tc = tcase_create("multishot");

    tcase_add_loop_test(tc, test_multishot_poll_serves_every_event, 0, 2);
    tcase_add_test(tc, test_multishot_poll_ended_by_kernel_is_rearmed);
    suite_add_tcase(s, tc);

    tc = tcase_create("notifier-read");
    tcase_add_loop_test(tc, test_notifier_read_through_the_ring, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_add_test(tc, test_cancel_sqe_stops_a_pending_read);
    tcase_add_test(tc, test_cancel_sqe_too_late_keeps_the_result);
    tcase_add_test(tc, test_cancel_sqe_without_io_uring);
    tcase_add_test(tc, test_cancel_sqe_from_lock_holder_wakes_main_loop);
    suite_add_tcase(s, tc);

    tc = tcase_create("notify-protocol");
    tcase_add_loop_test(tc, test_notify_to_polling_iothread_writes_no_eventfd,
                        0, 4);
    tcase_add_loop_test(tc, test_sqe_from_loop_thread_costs_no_notify, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("polling");
    tcase_add_test(tc, test_weighted_does_not_learn_from_a_pending_completion);
    tcase_add_loop_test(tc, test_poll_begin_end_bracket_and_look_again, 0, 2);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}
