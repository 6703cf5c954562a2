/*
 * The main loop on a thread of its own, for tests: the test thread then
 * plays a vCPU (it takes the big lock for each guest access) while the loop
 * sleeps, wakes and dispatches completions as in minivmm.
 */
#ifndef MINIVMM_TESTS_UNIT_LOOP_THREAD_H
#define MINIVMM_TESTS_UNIT_LOOP_THREAD_H

#include <pthread.h>
#include <stdatomic.h>

#include "aio/main-loop.h"

typedef struct MainLoopThread {
    pthread_t thread;
    MainLoopOptions opts;
    atomic_bool ready;
} MainLoopThread;

/* Create the main context on a new thread and run it; returns once it runs. */
void main_loop_thread_start(MainLoopThread *m, const MainLoopOptions *opts);

/* Quit the loop, join its thread, destroy the main context. Call without
 * holding the big lock; returns without it. */
void main_loop_thread_stop(MainLoopThread *m);

#endif
