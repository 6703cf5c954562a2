/*
 * minivmm's exit status: one table, so that a script can tell a guest that
 * finished from one that crashed, hung or failed its tests, and all of them
 * from minivmm's own errors.
 *
 *   0        the guest powered off or rebooted, or wrote 0 to the test port
 *   1        minivmm failed: setup (an image in use by another process
 *            among them), KVM_RUN, a disk flush or writing the --trace
 *            file at exit
 *   2        command-line error
 *   3        the guest crashed: a triple fault
 *   4        KVM could not run the guest: internal error, failed entry,
 *            an exit minivmm does not know
 *   5        the guest did not finish within --timeout
 *   6        a thread made a system call its seccomp allowlist forbids
 *            (util/sandbox.h); the message names the thread and the call
 *   65..127  the test exit port 0xf4 was written with V = 1..63 (64 + V);
 *            V >= 64 gives 127
 *   128+N    terminated by signal N (and Ctrl-A x: 128 + SIGINT)
 *
 * The test port's values are moved above 64 so that a guest can never
 * fake one of minivmm's own statuses (1-6) or a signal's (128+N).
 *
 * It lives in util/ because devices/exit-ports.c maps the test port's value
 * and devices/ know nothing of vmm/.
 */
#ifndef MINIVMM_UTIL_EXIT_STATUS_H
#define MINIVMM_UTIL_EXIT_STATUS_H

#include <stdint.h>

enum {
    EXIT_STATUS_OK = 0,
    EXIT_STATUS_VMM_ERROR = 1,
    EXIT_STATUS_USAGE = 2,
    EXIT_STATUS_GUEST_CRASH = 3,
    EXIT_STATUS_KVM_ERROR = 4,
    EXIT_STATUS_TIMEOUT = 5,
    EXIT_STATUS_SECCOMP = 6,
    EXIT_STATUS_TEST_BASE = 64, /* + V for a test port value V of 1..63 */
    EXIT_STATUS_TEST_MAX = 127,
    EXIT_STATUS_SIGNAL_BASE = 128, /* + the signal's number */
};

/* The status a write of @value to the test exit port ends the run with. */
static inline int exit_status_from_test_port(uint64_t value)
{
    if (value == 0) {
        return EXIT_STATUS_OK;
    }
    if (value >= 64) {
        return EXIT_STATUS_TEST_MAX;
    }
    return EXIT_STATUS_TEST_BASE + (int)value;
}

#endif
