/*
 * The sandbox: a seccomp allowlist per thread role (--seccomp on|off).
 *
 * Each thread installs its role's filter when it starts, before it touches
 * anything the guest controls; the main thread installs its own last, once
 * it has created every thread and just before it runs the main loop, so
 * that no thread inherits the main thread's list on top of its own.
 *
 * A thread created after its creator's filter (a block worker, started by
 * the first request on whichever thread submitted it) runs under both: a
 * stack of filters allows only what every filter in it allows. So each role
 * that may start a block worker also allows the worker's calls
 * (util/sandbox.c says which).
 *
 * A system call off the list raises SIGSYS; the handler names the thread's
 * role and the call's number on stderr and ends the process at once with
 * EXIT_STATUS_SECCOMP (util/exit-status.h): no flush, no clean-up, since
 * the thread that made the call can no longer be trusted.
 *
 * It lives in util/ because aio/ (IOThreads) and block/ (workers) install
 * filters too, and they know nothing of vmm/.
 */
#ifndef MINIVMM_UTIL_SANDBOX_H
#define MINIVMM_UTIL_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/*
 * --seccomp's default: on, except in sanitizer builds (make SANITIZE=1,
 * make TSAN=1), whose runtimes make calls no allowlist should grant (ASan's
 * leak checker ptraces its own process from a forked tracer at exit and
 * reads /proc/self/maps). There the filters are tested by the unit tests
 * and by runs that ask for --seccomp on and end by a violation.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANDBOX_SANITIZER  1
#define SANDBOX_DEFAULT_ON false
#else
#define SANDBOX_SANITIZER  0
#define SANDBOX_DEFAULT_ON true
#endif

typedef enum SandboxRole {
    SANDBOX_MAIN,       /* the main loop: timers, BHs, AHCI completions */
    SANDBOX_VCPU,       /* KVM_RUN and the devices' register writes */
    SANDBOX_IOTHREAD,   /* an IOThread's context: virtio-blk queues */
    SANDBOX_BLK_WORKER, /* block/raw-threads.c: preadv, pwritev, fdatasync */
    SANDBOX_QTEST,      /* the qtest accelerator's vCPU-like thread */
    SANDBOX_NROLES,
} SandboxRole;

/* The role's name as messages and tests print it ("vcpu", ...). */
const char *sandbox_role_name(SandboxRole role);

/*
 * --seccomp on: build every role's filter and install the SIGSYS handler,
 * before any thread exists. Off: sandbox_enter() does nothing. Prints why
 * and returns -errno if a filter cannot be built.
 */
int sandbox_setup(bool enabled);

/*
 * Install @role's filter on the calling thread if sandbox_setup(true) was
 * called; a filter that cannot be installed ends the process (status 1)
 * with a message: running unconfined when the user asked for a sandbox
 * would be a lie.
 */
void sandbox_enter(SandboxRole role);

/*
 * The test hook of the end-to-end check (tests/qtest/test-cli.c): when
 * MINIVMM_TEST_FORBIDDEN_SYSCALL=1 was in the environment at
 * sandbox_setup(), a device path calls this to make a system call that no
 * role allows (socket), as an exploited device model would. Without the
 * sandbox the call just succeeds and the socket is closed again.
 */
void sandbox_test_forbidden_call(void);

#endif
