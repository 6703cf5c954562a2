#include "util/log.h"

#include <pthread.h>
#include <stdio.h>

#include "util/clock.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_quiet;

void log_set_quiet(bool quiet)
{
    log_quiet = quiet;
}

static void log_vline(const char *level, const char *fmt, va_list ap)
{
    /* One fprintf per part under a lock keeps lines from interleaving. */
    pthread_mutex_lock(&log_lock);
    if (level) {
        fprintf(stderr, "minivmm: %s: ", level);
    } else {
        fputs("minivmm: ", stderr);
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
}

void log_msg(const char *level, const char *fmt, ...)
{
    va_list ap;

    if (!level && log_quiet) {
        return;
    }
    va_start(ap, fmt);
    log_vline(level, fmt, ap);
    va_end(ap);
}

void log_ratelimited(RateLimit *rl, const char *level, const char *fmt, ...)
{
    int64_t now = clock_ns();
    unsigned dropped = 0;
    bool print;
    va_list ap;

    pthread_mutex_lock(&log_lock);
    if (now - rl->window_start_ns >= 1000000000LL) {
        dropped = rl->suppressed;
        rl->window_start_ns = now;
        rl->printed = 0;
        rl->suppressed = 0;
    }
    print = rl->printed < LOG_RATELIMIT_BURST;
    if (print) {
        rl->printed++;
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&log_lock);

    if (dropped) {
        log_msg(level, "(%u similar messages suppressed)", dropped);
    }
    if (print) {
        va_start(ap, fmt);
        log_vline(level, fmt, ap);
        va_end(ap);
    }
}
