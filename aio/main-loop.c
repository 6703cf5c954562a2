#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "aio/aio-internal.h"
#include "aio/main-loop.h"
#include "util/clock.h"

static pthread_mutex_t bql = PTHREAD_MUTEX_INITIALIZER;
static __thread bool bql_held;
static __thread bool main_loop_kick_deferred;

static AioContext *main_ctx;
static atomic_llong timeout_cap_ms = MAIN_LOOP_TIMEOUT_MS_DEFAULT;
static atomic_bool defer_kick = true;
static atomic_bool quit_requested;
static atomic_bool sleeping;

void bql_lock(void)
{
    assert(!bql_held);
    pthread_mutex_lock(&bql);
    bql_held = true;
}

void bql_unlock(void)
{
    assert(bql_held);
    bql_held = false;
    pthread_mutex_unlock(&bql);
    /*
     * DATAPATH 5: the kick a lock holder owed the sleeping main loop (an SQE
     * it queued, with notify-on-SQE on): the eventfd write, now that the
     * loop can take the lock it will need.
     */
    if (main_loop_kick_deferred) {
        main_loop_kick_deferred = false;
        if (main_ctx) {
            aio_context_kick(main_ctx);
        }
    }
}

/*
 * A lock holder woke the sleeping main loop (aio_notify()). The loop can do
 * nothing before it has the lock, and woken now it would only block on it,
 * possibly on this very CPU while we still hold it. So the eventfd write
 * waits until bql_unlock(): one wake-up instead of two. With the switch
 * off (main_loop_set_defer_kick()), aio_notify() writes at once.
 */
bool main_loop_defer_kick(AioContext *ctx)
{
    if (ctx != main_ctx || !bql_held ||
        !atomic_load_explicit(&defer_kick, memory_order_relaxed)) {
        return false;
    }
    main_loop_kick_deferred = true;
    return true;
}

bool bql_locked(void)
{
    return bql_held;
}

AioContext *main_loop_context(void)
{
    return main_ctx;
}

void main_loop_set_timeout_ms(int64_t ms)
{
    atomic_store(&timeout_cap_ms, ms);
}

int64_t main_loop_get_timeout_ms(void)
{
    return atomic_load(&timeout_cap_ms);
}

void main_loop_set_defer_kick(bool on)
{
    atomic_store(&defer_kick, on);
}

bool main_loop_get_defer_kick(void)
{
    return atomic_load(&defer_kick);
}

bool main_loop_sleeping(void)
{
    return atomic_load(&sleeping);
}

int main_loop_init(const MainLoopOptions *opts)
{
    AioContextOptions ctx_opts = {.name = "main",
                                  .fdmon = opts->fdmon,
                                  .uring_flags = opts->uring_flags,
                                  .shared_ring = true};

    assert(!main_ctx);
    /* The main loop does not busy-poll: it shares the CPU with vCPUs. */
    main_ctx = aio_context_new(&ctx_opts);
    if (!main_ctx) {
        return -errno;
    }
    main_loop_set_timeout_ms(opts->timeout_ms ? opts->timeout_ms
                                              : MAIN_LOOP_TIMEOUT_MS_DEFAULT);
    atomic_store(&quit_requested, false);
    aio_set_thread_context(main_ctx);
    bql_lock();
    return 0;
}

void main_loop_cleanup(void)
{
    assert(bql_locked());
    aio_set_thread_context(NULL);
    aio_context_free(main_ctx);
    main_ctx = NULL;
    bql_unlock();
}

static void main_loop_before_wait(void)
{
    atomic_store(&sleeping, true);
    bql_unlock();
}

static void main_loop_after_wait(bool timed_out)
{
    (void)timed_out;
    bql_lock();
    atomic_store(&sleeping, false);
}

bool main_loop_wait(void)
{
    int64_t cap_ms = main_loop_get_timeout_ms();
    AioWaitHooks hooks = {
        .timeout_cap_ns = cap_ms < 0 ? -1 : cap_ms * NS_PER_MS,
        .before_wait = main_loop_before_wait,
        .after_wait = main_loop_after_wait,
    };

    return aio_poll_with_hooks(main_ctx, true, &hooks);
}

void main_loop_run(void)
{
    while (!atomic_load(&quit_requested)) {
        main_loop_wait();
    }
    atomic_store(&quit_requested, false);
}

void main_loop_quit(void)
{
    atomic_store(&quit_requested, true);
    aio_notify(main_ctx);
}
