/*
 * minivmm's command line.
 *
 * Today the binary knows only the event-loop settings; the KVM machine
 * (--kernel, --disk, ...) is being built and is not accepted yet.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio/aio.h"
#include "aio/main-loop.h"

#define MINIVMM_VERSION "0.1"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: minivmm [options]\n"
            "\n"
            "A small KVM virtual machine monitor for block I/O (work in "
            "progress:\n"
            "the event loop exists; the machine that boots a guest does not "
            "yet).\n"
            "\n"
            "Event loop:\n"
            "  --event-loop=io_uring|poll   fd monitor (default: io_uring, "
            "ppoll if\n"
            "                               io_uring is unavailable)\n"
            "  --aio-notify-on-sqe=on|off   wake the main loop when a vCPU "
            "queues an\n"
            "                               io_uring request (default on; off "
            "shows\n"
            "                               the 500 ms stall)\n"
            "  --main-loop-timeout-ms=N     longest main-loop sleep (default "
            "%d;\n"
            "                               -1 = no cap)\n"
            "  --check-event-loop           set up the main loop, report it, "
            "exit\n"
            "\n"
            "  -h, --help                   this text\n"
            "  -V, --version                version\n",
            MAIN_LOOP_TIMEOUT_MS_DEFAULT);
}

static int parse_on_off(const char *opt, const char *arg, bool *out)
{
    if (!strcmp(arg, "on")) {
        *out = true;
    } else if (!strcmp(arg, "off")) {
        *out = false;
    } else {
        fprintf(stderr, "minivmm: %s expects on or off, not '%s'\n", opt, arg);
        return -EINVAL;
    }
    return 0;
}

static int parse_int64(const char *opt, const char *arg, long long min,
                       long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || *out < min) {
        fprintf(stderr, "minivmm: %s expects a number >= %lld, not '%s'\n", opt,
                min, arg);
        return -EINVAL;
    }
    return 0;
}

enum {
    OPT_EVENT_LOOP = 256,
    OPT_NOTIFY_ON_SQE,
    OPT_MAIN_LOOP_TIMEOUT,
    OPT_CHECK_EVENT_LOOP,
};

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"event-loop", required_argument, NULL, OPT_EVENT_LOOP},
        {"aio-notify-on-sqe", required_argument, NULL, OPT_NOTIFY_ON_SQE},
        {"main-loop-timeout-ms", required_argument, NULL,
         OPT_MAIN_LOOP_TIMEOUT},
        {"check-event-loop", no_argument, NULL, OPT_CHECK_EVENT_LOOP},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    MainLoopOptions ml = {.fdmon = AIO_FDMON_AUTO};
    bool notify_on_sqe = true, check_only = false;
    long long timeout_ms;
    int c, ret;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hV", options, NULL)) != -1) {
        switch (c) {
        case OPT_EVENT_LOOP:
            if (!strcmp(optarg, "io_uring")) {
                ml.fdmon = AIO_FDMON_IO_URING;
            } else if (!strcmp(optarg, "poll")) {
                ml.fdmon = AIO_FDMON_POLL;
            } else {
                fprintf(stderr,
                        "minivmm: --event-loop expects io_uring or poll, "
                        "not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_NOTIFY_ON_SQE:
            if (parse_on_off("--aio-notify-on-sqe", optarg, &notify_on_sqe)) {
                return 2;
            }
            break;
        case OPT_MAIN_LOOP_TIMEOUT:
            if (parse_int64("--main-loop-timeout-ms", optarg, -1,
                            &timeout_ms)) {
                return 2;
            }
            if (timeout_ms == 0) {
                fprintf(stderr, "minivmm: --main-loop-timeout-ms must be -1 "
                                "(no cap) or at least 1\n");
                return 2;
            }
            ml.timeout_ms = timeout_ms;
            break;
        case OPT_CHECK_EVENT_LOOP:
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("minivmm %s\n", MINIVMM_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "minivmm: option '%s' needs a value (try --help)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "minivmm: unknown option '%s' (try --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "minivmm: unexpected argument '%s' (try --help)\n",
                argv[optind]);
        return 2;
    }
    if (!check_only) {
        fprintf(stderr, "minivmm: nothing to run yet: the KVM machine is not "
                        "built (try --check-event-loop)\n");
        return 2;
    }

    aio_set_notify_on_sqe(notify_on_sqe);
    ret = main_loop_init(&ml);
    if (ret < 0) {
        fprintf(stderr, "minivmm: cannot set up the main loop: %s\n",
                strerror(-ret));
        return 1;
    }
    printf("event loop: %s, notify-on-sqe %s, main-loop timeout %lld ms\n",
           aio_context_fdmon_name(main_loop_context()),
           notify_on_sqe ? "on" : "off", (long long)main_loop_get_timeout_ms());
    main_loop_cleanup();
    return 0;
}
