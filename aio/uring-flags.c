/*
 * io_uring setup flags by name: what --iothread-uring-flags accepts and
 * what the logs and benchmarks print.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>

#include "aio/aio.h"
#include "util/compiler.h"

static const struct {
    const char *name;
    unsigned flags;
} uring_flag_names[] = {
    {"single-issuer", IORING_SETUP_SINGLE_ISSUER},
    {"coop", IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG},
    {"defer", IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
                  IORING_SETUP_TASKRUN_FLAG},
#ifdef IORING_SETUP_NO_SQARRAY
    {"no-sqarray", IORING_SETUP_NO_SQARRAY},
#endif
};

int aio_uring_flags_parse(const char *list, unsigned *flags)
{
    const char *p = list;
    unsigned out = 0;

    if (!strcmp(list, "none")) {
        *flags = 0;
        return 0;
    }
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t i;

        for (i = 0; i < ARRAY_SIZE(uring_flag_names); i++) {
            if (strlen(uring_flag_names[i].name) == len &&
                !strncmp(p, uring_flag_names[i].name, len)) {
                out |= uring_flag_names[i].flags;
                break;
            }
        }
        if (i == ARRAY_SIZE(uring_flag_names)) {
            return -EINVAL; /* unknown, empty, or not in these headers */
        }
        p += len;
        if (*p == ',' && *++p == '\0') {
            return -EINVAL; /* trailing comma */
        }
    }
    if (p == list) {
        return -EINVAL;
    }
    *flags = out;
    return 0;
}

void aio_uring_flags_name(unsigned flags, char *buf, size_t len)
{
    static const struct {
        const char *name;
        unsigned flag;
    } bits[] = {
        {"single-issuer", IORING_SETUP_SINGLE_ISSUER},
        {"coop", IORING_SETUP_COOP_TASKRUN},
        {"taskrun-flag", IORING_SETUP_TASKRUN_FLAG},
        {"defer", IORING_SETUP_DEFER_TASKRUN},
#ifdef IORING_SETUP_NO_SQARRAY
        {"no-sqarray", IORING_SETUP_NO_SQARRAY},
#endif
    };
    size_t used = 0;

    /* TASKRUN_FLAG is part of "coop" and "defer", as the settings say. */
    if (flags & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN)) {
        flags &= ~IORING_SETUP_TASKRUN_FLAG;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(bits); i++) {
        if ((flags & bits[i].flag) && used < len) {
            used += snprintf(buf + used, len - used, "%s%s", used ? "," : "",
                             bits[i].name);
            flags &= ~bits[i].flag;
        }
    }
    if (flags && used < len) {
        used +=
            snprintf(buf + used, len - used, "%s0x%x", used ? "," : "", flags);
    }
    if (!used) {
        snprintf(buf, len, "none");
    }
}
