#include <check.h>
#include <unistd.h>

#include "tests/unit/loop-thread.h"

static void *main_loop_thread_fn(void *opaque)
{
    MainLoopThread *m = opaque;

    ck_assert_int_eq(main_loop_init(&m->opts), 0);
    atomic_store(&m->ready, true);
    main_loop_run();
    bql_unlock(); /* main_loop_thread_stop() cleans up after the join */
    return NULL;
}

void main_loop_thread_start(MainLoopThread *m, const MainLoopOptions *opts)
{
    m->opts = *opts;
    atomic_store(&m->ready, false);
    pthread_create(&m->thread, NULL, main_loop_thread_fn, m);
    while (!atomic_load(&m->ready)) {
        usleep(1000);
    }
}

void main_loop_thread_stop(MainLoopThread *m)
{
    main_loop_quit();
    pthread_join(m->thread, NULL);
    bql_lock();
    main_loop_cleanup();
}
