/*
 * Timers: a per-context list sorted by CLOCK_MONOTONIC deadline.
 *
 * Timers may be armed from any thread (a vCPU arming a device timer in the
 * main context, say), so the list has a lock; callbacks run on the home
 * thread without it.
 */
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "util/clock.h"

struct AioTimer {
    AioContext *ctx;
    AioTimerFunc *cb;
    void *opaque;
    int64_t expire_ns;
    bool pending;
    TAILQ_ENTRY(AioTimer) link;
};

void aio_timers_init(AioContext *ctx)
{
    pthread_mutex_init(&ctx->timer_lock, NULL);
    TAILQ_INIT(&ctx->timers);
}

void aio_timers_cleanup(AioContext *ctx)
{
    AioTimer *t;

    /* Timers belong to their creators; just unlink them. */
    while ((t = TAILQ_FIRST(&ctx->timers))) {
        TAILQ_REMOVE(&ctx->timers, t, link);
        t->pending = false;
    }
    pthread_mutex_destroy(&ctx->timer_lock);
}

AioTimer *aio_timer_new(AioContext *ctx, AioTimerFunc *cb, void *opaque)
{
    AioTimer *t = calloc(1, sizeof(*t));

    if (!t) {
        abort();
    }
    t->ctx = ctx;
    t->cb = cb;
    t->opaque = opaque;
    return t;
}

static void timer_unlink_locked(AioTimer *t)
{
    if (t->pending) {
        TAILQ_REMOVE(&t->ctx->timers, t, link);
        t->pending = false;
    }
}

void aio_timer_mod(AioTimer *t, int64_t expire_ns)
{
    AioContext *ctx = t->ctx;
    AioTimer *pos;
    bool first;

    pthread_mutex_lock(&ctx->timer_lock);
    timer_unlink_locked(t);
    t->expire_ns = expire_ns;
    TAILQ_FOREACH(pos, &ctx->timers, link)
    {
        if (pos->expire_ns > expire_ns) {
            break;
        }
    }
    if (pos) {
        TAILQ_INSERT_BEFORE(pos, t, link);
    } else {
        TAILQ_INSERT_TAIL(&ctx->timers, t, link);
    }
    t->pending = true;
    first = TAILQ_FIRST(&ctx->timers) == t;
    pthread_mutex_unlock(&ctx->timer_lock);

    /*
     * A new earliest deadline must shorten a wait under way on the home
     * thread. The home thread itself is not waiting: its next aio_poll()
     * reads the list anyway. Except for the main context, whose "home" is
     * any holder of the big lock: a vCPU thread arming a timer counts as
     * home while the main loop thread sleeps without the lock, with a
     * timeout computed before this timer existed.
     */
    if (first &&
        (!aio_context_in_home_thread(ctx) || ctx == main_loop_context())) {
        aio_notify(ctx);
    }
}

void aio_timer_del(AioTimer *t)
{
    pthread_mutex_lock(&t->ctx->timer_lock);
    timer_unlink_locked(t);
    pthread_mutex_unlock(&t->ctx->timer_lock);
}

bool aio_timer_pending(AioTimer *t)
{
    bool pending;

    pthread_mutex_lock(&t->ctx->timer_lock);
    pending = t->pending;
    pthread_mutex_unlock(&t->ctx->timer_lock);
    return pending;
}

void aio_timer_free(AioTimer *t)
{
    if (t) {
        aio_timer_del(t);
        free(t);
    }
}

int64_t aio_timers_deadline_ns(AioContext *ctx)
{
    int64_t deadline = -1;
    AioTimer *t;

    pthread_mutex_lock(&ctx->timer_lock);
    t = TAILQ_FIRST(&ctx->timers);
    if (t) {
        deadline = t->expire_ns - clock_ns();
        if (deadline < 0) {
            deadline = 0;
        }
    }
    pthread_mutex_unlock(&ctx->timer_lock);
    return deadline;
}

/* Run every expired timer, earliest first. */
bool aio_timers_run(AioContext *ctx)
{
    int64_t now = clock_ns();
    bool progress = false;
    AioTimer *t;

    pthread_mutex_lock(&ctx->timer_lock);
    while ((t = TAILQ_FIRST(&ctx->timers)) && t->expire_ns <= now) {
        AioTimerFunc *cb = t->cb;
        void *opaque = t->opaque;

        timer_unlink_locked(t);
        /* The callback may re-arm or free its timer. */
        pthread_mutex_unlock(&ctx->timer_lock);
        cb(opaque);
        progress = true;
        pthread_mutex_lock(&ctx->timer_lock);
    }
    pthread_mutex_unlock(&ctx->timer_lock);
    return progress;
}
