/*
 * Logging for minivmm.
 *
 * Every message goes to stderr as one line prefixed with "minivmm: ".
 * Messages caused by the guest use log_guest_error(), which is rate-limited
 * per call site: a hostile guest must not be able to flood the host's log.
 */
#ifndef MINIVMM_UTIL_LOG_H
#define MINIVMM_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
    int64_t window_start_ns; /* start of the current one-second window */
    unsigned printed;        /* lines printed in this window */
    unsigned suppressed;     /* lines dropped in this window */
} RateLimit;

/* Lines per second each rate-limited call site may print. */
#define LOG_RATELIMIT_BURST 10

void log_msg(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_ratelimited(RateLimit *rl, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Silence informational messages (errors are always printed). */
void log_set_quiet(bool quiet);

#define log_error(...) log_msg("error", __VA_ARGS__)
#define log_warn(...)  log_msg("warning", __VA_ARGS__)
#define log_info(...)  log_msg(NULL, __VA_ARGS__)

/* A line the guest caused (bad descriptor, bad register write, ...). */
#define log_guest_error(...)                                                   \
    do {                                                                       \
        static RateLimit rl_;                                                  \
        log_ratelimited(&rl_, "guest error", __VA_ARGS__);                     \
    } while (0)

/* Print a line at most once per process, e.g. for a fallback taken. */
#define log_once(...)                                                          \
    do {                                                                       \
        static int once_;                                                      \
        if (!__atomic_exchange_n(&once_, 1, __ATOMIC_RELAXED))                 \
            log_msg(NULL, __VA_ARGS__);                                        \
    } while (0)

#endif
