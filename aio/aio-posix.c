/*
 * fd handlers, adaptive polling and aio_poll().
 *
 * One iteration of aio_poll():
 *
 *   compute the timeout  ->  fd monitor: prepare
 *     -> busy-poll for a while if enabled
 *     -> announce the sleep (notify_me), only if polling found nothing
 *     -> fd monitor: wait  ->  collect what the wait found
 *     -> dispatch: io_uring completions, fd handlers, bottom halves,
 *        expired timers.
 *
 * The main loop (main-loop.c) runs the same iteration with hooks that drop
 * the big lock around the wait.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "util/clock.h"
#include "util/trace.h"

/* ---- fd handlers
 * --------------------------------------------------------------- */

static AioHandler *find_handler(AioContext *ctx, int fd)
{
    AioHandler *node;

    LIST_FOREACH(node, &ctx->handlers, node)
    {
        if (node->fd == fd) {
            return node;
        }
    }
    return NULL;
}

void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll,
                        IOHandler *io_poll_ready, void *opaque)
{
    AioHandler *old_node = find_handler(ctx, fd);
    AioHandler *new_node = NULL;

    assert(aio_context_in_home_thread(ctx));

    if (io_read || io_write) {
        new_node = calloc(1, sizeof(*new_node));
        if (!new_node) {
            abort();
        }
        new_node->fd = fd;
        new_node->io_read = io_read;
        new_node->io_write = io_write;
        new_node->io_poll = io_poll;
        new_node->io_poll_ready = io_poll_ready;
        new_node->opaque = opaque;
        LIST_INSERT_HEAD(&ctx->handlers, new_node, node);
    }
    if (!old_node && !new_node) {
        return;
    }
    if (old_node) {
        /*
         * Not freed yet: a ready list or an armed io_uring poll may still
         * point at it. aio_free_deleted_handlers() frees it later.
         */
        old_node->deleted = true;
        LIST_REMOVE(old_node, node);
        LIST_INSERT_HEAD(&ctx->deleted_handlers, old_node, node);
    }
    ctx->fdmon->update(ctx, old_node, new_node);

    /* A sleeping home thread must notice the new set of fds. */
    aio_notify(ctx);
}

void aio_set_poll_begin_end(AioContext *ctx, int fd, IOHandler *io_poll_begin,
                            IOHandler *io_poll_end)
{
    AioHandler *node = find_handler(ctx, fd);

    assert(aio_context_in_home_thread(ctx));
    if (node) {
        node->io_poll_begin = io_poll_begin;
        node->io_poll_end = io_poll_end;
    }
}

void aio_free_deleted_handlers(AioContext *ctx)
{
    AioHandler *node, *next;

    if (ctx->dispatch_depth > 0) {
        return; /* an outer aio_poll() may still hold them on a ready list */
    }
    for (node = LIST_FIRST(&ctx->deleted_handlers); node; node = next) {
        next = LIST_NEXT(node, node);
        if (!node->in_ready && ctx->fdmon->can_free(node)) {
            LIST_REMOVE(node, node);
            free(node);
        }
    }
}

void aio_handler_list_free_all(AioContext *ctx)
{
    AioHandler *node;

    while ((node = LIST_FIRST(&ctx->handlers))) {
        LIST_REMOVE(node, node);
        free(node);
    }
    while ((node = LIST_FIRST(&ctx->deleted_handlers))) {
        LIST_REMOVE(node, node);
        free(node);
    }
}

/*
 * Put @node on @ready. A node already on another (outer) ready list moves:
 * whoever dispatches first handles it.
 */
void aio_ready_add(AioReady *ready, AioHandler *node, int revents)
{
    if (node->in_ready) {
        LIST_REMOVE(node, node_ready);
    }
    node->revents |= revents;
    node->in_ready = true;
    LIST_INSERT_HEAD(&ready->nodes, node, node_ready);
}

/* ---- Dispatch
 * ------------------------------------------------------------------- */

static bool dispatch_handler(AioHandler *node)
{
    int revents = node->revents;
    bool poll_ready = node->poll_ready;

    node->revents = 0;
    node->poll_ready = false;
    if (node->deleted) {
        return false;
    }
    if (poll_ready) {
        IOHandler *fn =
            node->io_poll_ready ? node->io_poll_ready : node->io_read;
        if (fn) {
            fn(node->opaque);
        }
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && node->io_read) {
        node->io_read(node->opaque);
    }
    if (!node->deleted && (revents & (POLLOUT | POLLERR)) && node->io_write) {
        node->io_write(node->opaque);
    }
    /* Consuming our own wake-up is not progress for the caller. */
    return !node->is_notifier;
}

static bool dispatch_ready(AioContext *ctx, AioReady *ready)
{
    bool progress = false;
    CqeHandler *cqe_handler;
    AioHandler *node;

    /* DATAPATH 6: completions are handed to their owners on the home thread. */
    while ((cqe_handler = STAILQ_FIRST(&ready->cqes))) {
        STAILQ_REMOVE_HEAD(&ready->cqes, ready);
        stat_inc(&ctx->stats.cqes_dispatched);
        TRACE(CQE_DISPATCH, cqe_handler->trace_id,
              .a = {(uint64_t)(int64_t)cqe_handler->cqe.res},
              .s = {ctx->trace_name});
        trace_set_current_id(cqe_handler->trace_id);
        cqe_handler->cb(cqe_handler);
        trace_set_current_id(0);
        progress = true;
    }
    while ((node = LIST_FIRST(&ready->nodes))) {
        LIST_REMOVE(node, node_ready);
        node->in_ready = false;
        progress |= dispatch_handler(node);
    }
    return progress;
}

/* ---- Adaptive polling
 * --------------------------------------------------------- */

static bool poll_once(AioContext *ctx, AioReady *ready)
{
    bool progress = false;
    AioHandler *node;

    LIST_FOREACH(node, &ctx->handlers, node)
    {
        if (node->io_poll && node->io_poll(node->opaque)) {
            node->poll_ready = true;
            aio_ready_add(ready, node, 0);
            progress = true;
        }
    }
    if (ctx->fdmon->poll_ready && ctx->fdmon->poll_ready(ctx)) {
        progress = true;
    }
    return progress;
}

/*
 * Busy-poll the io_poll() callbacks and the completion ring for up to
 * @max_ns before sleeping: when work arrives within microseconds, this
 * saves the cost of going to sleep and being woken.
 */
static void poll_set_started(AioContext *ctx, bool started)
{
    AioHandler *node;

    LIST_FOREACH(node, &ctx->handlers, node)
    {
        IOHandler *fn = started ? node->io_poll_begin : node->io_poll_end;

        if (fn) {
            fn(node->opaque);
        }
    }
}

static bool run_poll_handlers(AioContext *ctx, AioReady *ready, int64_t max_ns)
{
    int64_t start = clock_ns(), now;
    bool found;

    poll_set_started(ctx, true);
    do {
        found = poll_once(ctx, ready);
        now = clock_ns();
    } while (!found && now - start < max_ns);
    poll_set_started(ctx, false);
    /* Signals were off: what came after the last look would go unheard. */
    if (!found) {
        found = poll_once(ctx, ready);
    }
    if (found) {
        stat_inc(&ctx->stats.poll_successes);
    }
    atomic_fetch_add_explicit(&ctx->stats.poll_time_ns, now - start,
                              memory_order_relaxed);
    return found;
}

/*
 * Grow the polling time when the thread slept for less than the maximum (a
 * longer poll would have caught the event), shrink it when it slept for
 * longer (polling was wasted).
 */
static void adjust_grow_shrink(const AioPollParams *p, int64_t *poll_ns,
                               int64_t block_ns)
{
    if (block_ns <= *poll_ns) {
        return; /* polling caught it: leave it as it is */
    }
    if (block_ns > p->max_ns) {
        *poll_ns = p->shrink ? *poll_ns / p->shrink : 0;
    } else if (*poll_ns < p->max_ns) {
        int64_t grow = p->grow ? p->grow : 2;
        int64_t ns = *poll_ns ? *poll_ns * grow : AIO_POLL_START_NS;

        *poll_ns = ns < p->max_ns ? ns : p->max_ns;
    }
}

/*
 * The weighted policy: the same grow and shrink, but decided on a moving
 * average of the block times instead of the last one, and capped at twice
 * that average. block_ns is when the event came (polling or not), so the
 * average says how long a poll must last to catch a typical event:
 *   - when twice the average is past max_ns, the poll a typical event needs
 *     is longer than allowed, and polling stops: a shorter one would mostly
 *     end in a sleep anyway, so it only adds its own length to the sleep;
 *   - when it is short, polling past twice the average only burns CPU on
 *     the rare late event.
 * A block longer than max_ns counts as max_ns in the average (so an idle
 * minute weighs no more than any other miss), which decays with 1/2^weight
 * per sample: one long sleep does not end polling, a run of them does.
 * Such a sleep halves the polling time instead, down to no less than where
 * growth starts: no poll this policy allows could have caught that event.
 * Growing on it would ratchet the poll up to the cap and keep it there,
 * since nothing else shrinks it while the average is short.
 *
 * aio_poll() keeps one state per AioWaitKind, so that a disk read (tens of
 * microseconds) and the guest's next request (one or two) do not share an
 * average that fits neither.
 */
static void adjust_weighted(const AioPollParams *p, int64_t *poll_ns,
                            int64_t *avg_ns, int64_t block_ns)
{
    int64_t sample = block_ns < p->max_ns ? block_ns : p->max_ns;
    int64_t avg = *avg_ns, limit;

    /* Arithmetic shift of a signed difference: the average moves both ways. */
    avg += (sample - avg) >> p->weight;
    if (avg == *avg_ns && sample != avg) {
        avg += sample > avg ? 1 : -1; /* the shift rounded the step away */
    }
    *avg_ns = avg;

    if (2 * avg > p->max_ns) {
        *poll_ns = p->shrink ? *poll_ns / p->shrink : 0;
        return;
    }
    if (block_ns > p->max_ns) {
        if (*poll_ns > AIO_POLL_START_NS) {
            int64_t ns = *poll_ns / (p->shrink ? p->shrink : 2);

            /* Not below where growth starts: only the average stops it. */
            *poll_ns = ns > AIO_POLL_START_NS ? ns : AIO_POLL_START_NS;
        }
    } else if (block_ns > *poll_ns) {
        int64_t grow = p->grow ? p->grow : 2;

        *poll_ns = *poll_ns ? *poll_ns * grow : AIO_POLL_START_NS;
    }
    limit = 2 * avg > AIO_POLL_START_NS ? 2 * avg : AIO_POLL_START_NS;
    if (limit > p->max_ns) {
        limit = p->max_ns;
    }
    if (*poll_ns > limit) {
        *poll_ns = limit;
    }
}

void aio_poll_adjust(const AioPollParams *p, int64_t *poll_ns, int64_t *avg_ns,
                     int64_t block_ns)
{
    if (p->weight == 0) {
        adjust_grow_shrink(p, poll_ns, block_ns);
    } else {
        adjust_weighted(p, poll_ns, avg_ns, block_ns);
    }
}

void aio_context_set_poll_params(AioContext *ctx, const AioPollParams *p)
{
    ctx->poll_params = *p;
    if (ctx->poll_params.weight > AIO_POLL_WEIGHT_MAX) {
        ctx->poll_params.weight = AIO_POLL_WEIGHT_MAX;
    }
    for (int k = 0; k < AIO_WAIT_KINDS; k++) {
        ctx->poll_avg_ns[k] = 0;
        if (ctx->poll_ns[k] > p->max_ns) {
            ctx->poll_ns[k] = p->max_ns;
        }
        atomic_store_explicit(&ctx->stats.poll_ns[k], ctx->poll_ns[k],
                              memory_order_relaxed);
    }
}

/* ---- aio_poll()
 * ------------------------------------------------------------------ */

static int64_t aio_compute_timeout(AioContext *ctx)
{
    if (aio_bh_pending(ctx) ||
        atomic_load_explicit(&ctx->notified, memory_order_relaxed)) {
        return 0;
    }
    return aio_timers_deadline_ns(ctx);
}

/* The shorter of two timeouts where -1 means infinite. */
static int64_t min_timeout(int64_t a, int64_t b)
{
    if (a < 0) {
        return b;
    }
    if (b < 0) {
        return a;
    }
    return a < b ? a : b;
}

/*
 * Why a sleep ended: its timeout expired (with notify-on-SQE off, the main
 * loop's stall ends this way), aio_notify() wrote the eventfd, or I/O
 * completed (a CQE, or another fd became ready). 'notified' is read before
 * aio_notify_accept() clears it; a notify that raced with a completion
 * counts as the notify.
 */
static void count_wake(AioContext *ctx, int wait_ret, int64_t slept_ns)
{
    const char *why;

    if (wait_ret == -ETIME) {
        stat_inc(&ctx->stats.wait_timeouts);
        why = "timeout";
    } else if (atomic_load_explicit(&ctx->notified, memory_order_relaxed)) {
        stat_inc(&ctx->stats.wait_notified);
        why = "notify";
    } else {
        stat_inc(&ctx->stats.wait_io);
        why = "io";
    }
    TRACE(LOOP_WAKE, 0, .a = {slept_ns}, .s = {ctx->trace_name, why});
}

/*
 * Tell notifiers that this thread is about to sleep (see aio_notify()):
 * from here on they write the eventfd. Returns false when a notify came
 * before the announcement, and sleeping would miss it.
 */
static bool announce_sleep(AioContext *ctx)
{
    atomic_fetch_add(&ctx->notify_me, 2);
    /* Store notify_me, then load 'notified'; aio_notify() does the reverse. */
    atomic_thread_fence(memory_order_seq_cst);
    return !atomic_load_explicit(&ctx->notified, memory_order_relaxed);
}

bool aio_poll_with_hooks(AioContext *ctx, bool blocking,
                         const AioWaitHooks *hooks)
{
    AioReady ready = {.nodes = LIST_HEAD_INITIALIZER(ready.nodes)};
    AioWait wait = {0};
    bool polling = blocking && ctx->poll_params.max_ns > 0 && !hooks;
    bool progress = false;
    bool learn; /* this pass teaches the polling policy */
    /*
     * When to raise notify_me (aio_set_notify_after_poll()): as QEMU does,
     * only once polling has failed and the thread is about to sleep. While
     * it polls, an aio_notify() from another thread (a BH, a completion
     * handed over) only sets 'notified', which the notifier's io_poll()
     * sees: no eventfd write, no poll completion, no IPI. Switched off,
     * notify_me goes up first, and every such notify writes the eventfd.
     */
    bool announce_late = aio_get_notify_after_poll();
    bool announced = false;
    int64_t timeout, start = 0;
    AioWaitKind kind = AIO_WAIT_IDLE;

    assert(aio_context_in_home_thread(ctx));
    STAILQ_INIT(&ready.cqes);
    stat_inc(&ctx->stats.iterations);

    if (blocking && !announce_late) {
        /* Announce the sleep before looking for work. */
        announce_sleep(ctx);
        announced = true;
    }
    timeout = blocking ? aio_compute_timeout(ctx) : 0;
    if (hooks) {
        timeout = min_timeout(timeout, hooks->timeout_cap_ns);
    }

    aio_free_deleted_handlers(ctx);
    /*
     * Without hooks this thread may submit while it waits (one system call).
     * With hooks the wait runs without the big lock, while vCPU threads may
     * queue SQEs: submit now, under the lock, and only wait afterwards.
     * When the fd monitor could not submit, or reaped completions to make
     * the kernel take SQEs, a sleep would only delay them: do not sleep.
     */
    if (ctx->fdmon->prepare(ctx, &wait, &ready, hooks != NULL || polling)) {
        timeout = 0;
    }

    /*
     * Only a pass that had to wait teaches the weighted policy: one that
     * found work pending (a BH, a notify) did not wait, and its zero would
     * drag the average down (about once per request on a disk). The classic
     * policy learns from every pass, as QEMU's does: such a pass takes a few
     * hundred nanoseconds, so it grows the polling time from zero.
     */
    learn = polling && (ctx->poll_params.weight == 0 || timeout != 0);
    /*
     * The same for a completion already in the ring (on an IOThread, often
     * a guest's kick that came just before polling turned kicks off): the
     * wait would return at once, and its near-zero "block time", counted,
     * would teach the I/O state to poll before every read, in vain. So do
     * not poll or sleep for it, and do not learn from it.
     */
    if (polling && timeout != 0 && ctx->poll_params.weight > 0 &&
        ctx->fdmon->poll_ready && ctx->fdmon->poll_ready(ctx)) {
        timeout = 0;
        learn = false;
    }

    if (polling) {
        /* The classic policy has one state; the weighted one learns two. */
        if (ctx->poll_params.weight > 0 &&
            (ctx->sqes_in_flight > 0 ||
             atomic_load_explicit(&ctx->io_in_flight, memory_order_relaxed))) {
            kind = AIO_WAIT_IO;
        }
        start = clock_ns();
        if (timeout != 0 && ctx->poll_ns[kind] > 0 &&
            run_poll_handlers(ctx, &ready,
                              min_timeout(timeout, ctx->poll_ns[kind]))) {
            timeout = 0;
        }
    }
    if (blocking && announce_late && timeout != 0) {
        /* Nothing found: now it sleeps, unless a notify came meanwhile. */
        announced = true;
        if (!announce_sleep(ctx)) {
            timeout = 0;
        }
    }

    if (timeout != 0 || ctx->fdmon->need_wait(ctx)) {
        int64_t slept_from = 0;
        int ret;

        if (timeout != 0) {
            stat_inc(&ctx->stats.waits);
            if (TRACE_ON(TRACE_LOOP_SLEEP) || TRACE_ON(TRACE_LOOP_WAKE)) {
                slept_from = clock_ns();
                TRACE(LOOP_SLEEP, 0, .a = {(uint64_t)timeout},
                      .s = {ctx->trace_name});
            }
        }
        if (hooks) {
            hooks->before_wait();
        }
        /* DATAPATH 5: the sleep; the main loop's, without the big lock. */
        ret = ctx->fdmon->wait(ctx, &wait, timeout, hooks == NULL);
        if (timeout != 0) {
            count_wake(ctx, ret, slept_from ? clock_ns() - slept_from : 0);
        }
        if (hooks) {
            hooks->after_wait(ret == -ETIME);
        }
    }
    ctx->fdmon->collect(ctx, &wait, &ready);

    if (announced) {
        atomic_fetch_sub(&ctx->notify_me, 2);
    }
    if (blocking) {
        aio_notify_accept(ctx);
    }
    if (learn) {
        aio_poll_adjust(&ctx->poll_params, &ctx->poll_ns[kind],
                        &ctx->poll_avg_ns[kind], clock_ns() - start);
        atomic_store_explicit(&ctx->stats.poll_ns[kind], ctx->poll_ns[kind],
                              memory_order_relaxed);
    }

    ctx->dispatch_depth++;
    progress |= dispatch_ready(ctx, &ready);
    progress |= aio_bh_poll(ctx);
    progress |= aio_timers_run(ctx);
    ctx->dispatch_depth--;
    return progress;
}

bool aio_poll(AioContext *ctx, bool blocking)
{
    return aio_poll_with_hooks(ctx, blocking, NULL);
}
