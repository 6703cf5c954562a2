/*
 * seccomp allowlists per thread role, built with libseccomp (util/sandbox.h
 * says when each is installed).
 *
 * The lists came from running the real workloads (make check, check-linux,
 * demo, check-firmware) under strace -f and then with the filters on: each
 * call that trapped was either added to the role that made it, with the
 * reason beside it, or the code was changed not to need it.
 *
 * What the filters do not cover: io_uring. An SQE's operation (a read, a
 * poll, a write to an eventfd) runs in the kernel on the ring's behalf, not
 * as a system call, so seccomp never sees it; only io_uring_enter itself is
 * filtered. Restricting the ring's operations would take
 * IORING_REGISTER_RESTRICTIONS on each ring, which minivmm does not do (the
 * rings are created before the filters, by code that knows nothing of this
 * file).
 *
 * Each filter is built once, in sandbox_setup(), and exported as a BPF
 * program; a thread installs it with two plain system calls, so a thread
 * that starts under its creator's filter needs only prctl and seccomp to
 * narrow itself, not libseccomp's allocations.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/exit-status.h"
#include "util/sandbox.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- The lists ----------------------------------------------------------- */

/* Every thread: memory (malloc, thread stacks), locks, signals, exit. */
static const int base_calls[] = {
    SCMP_SYS(futex),
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mprotect),
    SCMP_SYS(madvise),
    SCMP_SYS(mremap),
    SCMP_SYS(brk),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(sched_yield),
    /* stderr (logging, the SIGSYS message) and eventfd kicks */
    SCMP_SYS(write),
#if SANDBOX_SANITIZER
    /* the sanitizer's set-up of each new thread (see SANDBOX_DEFAULT_ON) */
    SCMP_SYS(sigaltstack),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(gettimeofday),
#endif
};

/* The signals of a crash, whose reports must survive the sandbox. */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};

/*
 * A block worker's calls (block/raw-threads.c). Every role allows them:
 * a worker starts on the first request of a disk on the thread-pool engine,
 * on whichever thread submitted it, and runs under that thread's filter as
 * well as its own.
 */
static const int worker_calls[] = {
    SCMP_SYS(preadv),    /* reads */
    SCMP_SYS(pread64),   /* ... of one buffer */
    SCMP_SYS(preadv2),   /* ... */
    SCMP_SYS(pwritev),   /* writes */
    SCMP_SYS(pwrite64),  /* ... */
    SCMP_SYS(pwritev2),  /* ... with RWF_DSYNC for FUA */
    SCMP_SYS(fdatasync), /* FLUSH */
    SCMP_SYS(fallocate), /* DISCARD, WRITE ZEROES */
};

/*
 * Each role's own calls, one a line with the reason. Interrupts: an MSI
 * message met for the first time gets its route and irqfd on the thread
 * that raised it (vmm/kvm.c, kvm_send_msi), which may be any but a worker.
 */
static const int main_calls[] = {
    SCMP_SYS(read),           /* eventfd, signalfd, the console's stdin */
    SCMP_SYS(io_uring_enter), /* its ring */
    SCMP_SYS(ppoll),          /* --event-loop poll */
    SCMP_SYS(eventfd2),       /* a new MSI message's irqfd */
    SCMP_SYS(close),          /* teardown */
    SCMP_SYS(fcntl),          /* image locks released at close */
    SCMP_SYS(sendto),         /* qtest: IRQ events to the client */
    SCMP_SYS(shutdown),       /* qtest: the end of the run */
    SCMP_SYS(newfstatat),     /* stdio's first write to the --trace file */
};

static const int vcpu_calls[] = {
    SCMP_SYS(read),           /* a device reading an eventfd */
    SCMP_SYS(io_uring_enter), /* the main context's ring, under the BQL */
    SCMP_SYS(eventfd2),       /* virtio ioeventfds, a new MSI's irqfd */
    SCMP_SYS(close),          /* ... given up at a device reset */
};

static const int iothread_calls[] = {
    SCMP_SYS(read),           /* its context's eventfd */
    SCMP_SYS(io_uring_enter), /* its ring */
    SCMP_SYS(ppoll),          /* --event-loop poll */
    SCMP_SYS(eventfd2),       /* a new MSI message's irqfd */
    SCMP_SYS(close),          /* ... given up if KVM refuses its route */
    SCMP_SYS(sendto),         /* qtest: an MSI raised from the IOThread */
};

static const int qtest_calls[] = {
    SCMP_SYS(recvfrom),       /* the test client's commands */
    SCMP_SYS(sendto),         /* ... and the replies */
    SCMP_SYS(read),           /* a device reading an eventfd */
    SCMP_SYS(io_uring_enter), /* the main context's ring, under the BQL */
    SCMP_SYS(eventfd2),       /* virtio ioeventfds */
    SCMP_SYS(close),          /* ... given up at a device reset */
};

/*
 * ioctl requests, matched on their low 32 bits (glibc passes an unsigned
 * long; a caller's int may have been sign-extended).
 */
static const unsigned long vcpu_ioctls[] = {
    KVM_RUN,             /* the guest */
    KVM_GET_REGS,        /* the register dump of a failed run */
    KVM_GET_SREGS,       /* ... */
    KVM_IRQ_LINE,        /* interrupts */
    KVM_SIGNAL_MSI,      /* ... when the MSI routes are full */
    KVM_IRQFD,           /* a new MSI message */
    KVM_SET_GSI_ROUTING, /* ... */
    KVM_IOEVENTFD,       /* virtio notify registers, moved by the guest */
};

static const unsigned long main_ioctls[] = {
    KVM_IRQ_LINE,        /* interrupts */
    KVM_SIGNAL_MSI,      /* ... */
    KVM_IRQFD,           /* a new MSI message */
    KVM_SET_GSI_ROUTING, /* ... */
    KVM_IOEVENTFD,       /* virtio notify registers */
    TCGETS,              /* the terminal, put back at exit */
    TCSETS,              /* ... */
    TCSETSW,             /* ... */
    TCSETSF,             /* ... */
};

static const unsigned long iothread_ioctls[] = {
    KVM_IRQ_LINE,        /* interrupts */
    KVM_SIGNAL_MSI,      /* ... */
    KVM_IRQFD,           /* a new MSI message */
    KVM_SET_GSI_ROUTING, /* ... */
};

typedef struct RoleSpec {
    const char *name;
    const int *calls;
    size_t ncalls;
    const unsigned long *ioctls;
    size_t nioctls;
    bool spawns; /* may start a block worker */
} RoleSpec;

#define LIST(a) (a), ARRAY_SIZE(a)

static const RoleSpec roles[SANDBOX_NROLES] = {
    [SANDBOX_MAIN] = {"main", LIST(main_calls), LIST(main_ioctls), true},
    [SANDBOX_VCPU] = {"vcpu", LIST(vcpu_calls), LIST(vcpu_ioctls), true},
    [SANDBOX_IOTHREAD] = {"iothread", LIST(iothread_calls),
                          LIST(iothread_ioctls), true},
    [SANDBOX_BLK_WORKER] = {"blk-worker", NULL, 0, NULL, 0, false},
    [SANDBOX_QTEST] = {"qtest", LIST(qtest_calls), NULL, 0, true},
};

const char *sandbox_role_name(SandboxRole role)
{
    return role < SANDBOX_NROLES ? roles[role].name : "unsandboxed";
}

/* ---- Building a filter --------------------------------------------------- */

/* A filter being built; the first error sticks, later rules are skipped. */
typedef struct FilterBuilder {
    scmp_filter_ctx ctx;
    int err;
} FilterBuilder;

static void add_rule(FilterBuilder *b, uint32_t action, int nr, unsigned ncmp,
                     const struct scmp_arg_cmp *cmp)
{
    if (b->err == 0) {
        b->err = seccomp_rule_add_array(b->ctx, action, nr, ncmp, cmp);
    }
}

/* Argument @arg equals @v; and (@arg & @mask) equals @v. */
static struct scmp_arg_cmp arg_eq(unsigned arg, scmp_datum_t v)
{
    return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_EQ, .datum_a = v};
}

static struct scmp_arg_cmp arg_masked_eq(unsigned arg, scmp_datum_t mask,
                                         scmp_datum_t v)
{
    return (struct scmp_arg_cmp){
        .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = v};
}

static void allow(FilterBuilder *b, int nr)
{
    add_rule(b, SCMP_ACT_ALLOW, nr, 0, NULL);
}

/* Allow @nr when its arguments pass @cmp. */
static void allow_if(FilterBuilder *b, int nr, struct scmp_arg_cmp cmp)
{
    add_rule(b, SCMP_ACT_ALLOW, nr, 1, &cmp);
}

/* Fail @nr with @err: for calls that are made, but whose failure is fine. */
static void refuse(FilterBuilder *b, int nr, int err)
{
    add_rule(b, SCMP_ACT_ERRNO(err), nr, 0, NULL);
}

static void allow_list(FilterBuilder *b, const int *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        allow(b, calls[i]);
    }
}

static void allow_ioctls(FilterBuilder *b, const unsigned long *req, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        allow_if(b, SCMP_SYS(ioctl),
                 arg_masked_eq(1, 0xffffffffUL, req[i] & 0xffffffffUL));
    }
}

/*
 * Starting a thread (a block worker): clone for threads only, and what
 * the new thread does under its creator's filter before it installs its
 * own. clone3 passes its flags in memory, where seccomp cannot look, so
 * it fails with ENOSYS and glibc falls back to clone.
 */
static void allow_spawn(FilterBuilder *b)
{
    allow_if(b, SCMP_SYS(clone), arg_masked_eq(0, CLONE_THREAD, CLONE_THREAD));
    refuse(b, SCMP_SYS(clone3), ENOSYS);
    allow(b, SCMP_SYS(set_robust_list));
    allow(b, SCMP_SYS(rseq));
    allow_if(b, SCMP_SYS(prctl), arg_eq(0, PR_SET_NAME));
    allow_if(b, SCMP_SYS(prctl), arg_eq(0, PR_SET_NO_NEW_PRIVS));
    allow_if(b, SCMP_SYS(seccomp), arg_eq(0, SECCOMP_SET_MODE_FILTER));
}

static void build_role(FilterBuilder *b, SandboxRole role)
{
    const RoleSpec *spec = &roles[role];

    allow_list(b, base_calls, ARRAY_SIZE(base_calls));
    /* abort() signals its own process; nothing may signal another. */
    allow_if(b, SCMP_SYS(tgkill), arg_eq(0, (scmp_datum_t)getpid()));
    /*
     * A crash on any thread: vmm/console.c's handler puts back the old
     * action of the crash signal and raises it again, as abort() does.
     */
    for (size_t i = 0; i < ARRAY_SIZE(crash_signals); i++) {
        allow_if(b, SCMP_SYS(rt_sigaction), arg_eq(0, crash_signals[i]));
    }
    /*
     * No thread opens a file once the guest runs, but glibc's malloc reads
     * /proc/sys/vm/overcommit_memory the first time it trims a thread's
     * heap, and takes a failure as "do not shrink in place".
     */
    refuse(b, SCMP_SYS(openat), EACCES);
    allow_list(b, worker_calls, ARRAY_SIZE(worker_calls));
    allow_list(b, spec->calls, spec->ncalls);
    allow_ioctls(b, spec->ioctls, spec->nioctls);
    if (spec->spawns) {
        allow_spawn(b);
    } else {
        /*
         * Refused, not trapped: glibc blocks every signal around clone,
         * and a SIGSYS that arrives blocked kills without a word.
         */
        refuse(b, SCMP_SYS(clone), EPERM);
        refuse(b, SCMP_SYS(clone3), EPERM);
    }
}

/* A role's filter as the BPF program the kernel takes. */
typedef struct SandboxFilter {
    struct sock_filter *insns;
    unsigned short len;
} SandboxFilter;

static int export_filter(scmp_filter_ctx f, SandboxFilter *out)
{
    int fd = memfd_create("minivmm-seccomp", MFD_CLOEXEC);
    off_t size;
    int ret = 0;

    if (fd < 0) {
        return -errno;
    }
    ret = seccomp_export_bpf(f, fd);
    size = ret < 0 ? 0 : lseek(fd, 0, SEEK_END);
    if (ret == 0 && (size <= 0 || size % sizeof(struct sock_filter) ||
                     size / sizeof(struct sock_filter) > BPF_MAXINSNS)) {
        ret = -E2BIG;
    }
    if (ret == 0) {
        out->insns = malloc((size_t)size);
        out->len = (unsigned short)(size / sizeof(struct sock_filter));
        if (!out->insns) {
            ret = -ENOMEM;
        } else if (pread(fd, out->insns, (size_t)size, 0) != size) {
            ret = -EIO;
        }
    }
    close(fd);
    return ret;
}

static int build_filter(SandboxRole role, SandboxFilter *out)
{
    /* Off the list: SIGSYS, which sandbox_sigsys() reports. */
    FilterBuilder b = {.ctx = seccomp_init(SCMP_ACT_TRAP)};

    if (!b.ctx) {
        return -ENOMEM;
    }
    /* A binary tree of syscall numbers, not a list: every call pays it. */
    b.err = seccomp_attr_set(b.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    build_role(&b, role);
    if (b.err == 0) {
        b.err = export_filter(b.ctx, out);
    }
    seccomp_release(b.ctx);
    return b.err;
}

/* ---- The violation ------------------------------------------------------- */

static _Thread_local SandboxRole thread_role = SANDBOX_NROLES;

/* Async-signal-safe: no stdio, only write(2) of a buffer built here. */
static size_t append(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s && pos < cap) {
        buf[pos++] = *s++;
    }
    return pos;
}

static size_t append_uint(char *buf, size_t pos, size_t cap, unsigned v)
{
    char digits[12];
    int n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && pos < cap) {
        buf[pos++] = digits[--n];
    }
    return pos;
}

static void sandbox_sigsys(int sig, siginfo_t *info, void *uctx)
{
    char msg[200];
    size_t n = 0;

    (void)sig, (void)uctx;
    n = append(msg, n, sizeof(msg), "minivmm: seccomp: the ");
    n = append(msg, n, sizeof(msg), sandbox_role_name(thread_role));
    n = append(msg, n, sizeof(msg), " thread made system call ");
    n = append_uint(msg, n, sizeof(msg), (unsigned)info->si_syscall);
    n = append(msg, n, sizeof(msg),
               ", which its allowlist forbids (--seccomp off runs "
               "without)\n");
    if (write(STDERR_FILENO, msg, n) < 0) {
        /* nothing left to tell it with */
    }
    /*
     * exit_group itself, not _exit(): a sanitizer's _exit runs its leak
     * checker first, whose calls no list allows.
     */
    syscall(SYS_exit_group, EXIT_STATUS_SECCOMP);
}

static int sigsys_handler_install(void)
{
    struct sigaction sa = {.sa_sigaction = sandbox_sigsys,
                           .sa_flags = SA_SIGINFO};

    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

/* ---- Installing ---------------------------------------------------------- */

static SandboxFilter filters[SANDBOX_NROLES];
static bool sandbox_enabled;
static bool test_forbidden_call; /* MINIVMM_TEST_FORBIDDEN_SYSCALL=1 */

static int load_filter(SandboxRole role, const SandboxFilter *filter)
{
    struct sock_fprog prog = {.len = filter->len, .filter = filter->insns};
    sigset_t sigsys;

    /*
     * A blocked SIGSYS would make the kernel kill the process silently;
     * block workers start with every signal blocked.
     */
    sigemptyset(&sigsys);
    sigaddset(&sigsys, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &sigsys, NULL);
    /* Needed for an unprivileged filter; minivmm never executes anything. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
        return -errno;
    }
    thread_role = role;
    return 0;
}

int sandbox_setup(bool enabled)
{
    const char *test = getenv("MINIVMM_TEST_FORBIDDEN_SYSCALL");

    int ret = 0;

    test_forbidden_call = test && !strcmp(test, "1");
    sandbox_enabled = enabled;
    if (!enabled) {
        return 0;
    }
    for (int r = 0; r < SANDBOX_NROLES && ret == 0; r++) {
        ret = build_filter((SandboxRole)r, &filters[r]);
        if (ret < 0) {
            fprintf(stderr,
                    "minivmm: seccomp: cannot build the %s filter: %s\n",
                    roles[r].name, strerror(-ret));
        }
    }
    if (ret == 0) {
        ret = sigsys_handler_install();
    }
    return ret;
}

void sandbox_enter(SandboxRole role)
{
    int ret;

    if (!sandbox_enabled) {
        return;
    }
    ret = load_filter(role, &filters[role]);
    if (ret < 0) {
        fprintf(stderr, "minivmm: seccomp: cannot install the %s filter: %s\n",
                roles[role].name, strerror(-ret));
        _exit(EXIT_STATUS_VMM_ERROR);
    }
}

void sandbox_test_forbidden_call(void)
{
    int fd;

    if (!test_forbidden_call) {
        return;
    }
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        close(fd);
    }
}
