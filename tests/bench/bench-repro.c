/*
 * bench-repro: the "500 ms slumber" reproduced, measured and fixed without
 * KVM, side by side with QEMU.
 *
 * iotest (tests/bench/iotest.c) runs through the qtest socket, with the
 * test drivers of tests/qos playing the guest: NCQ reads through AHCI, and
 * reads through virtio-blk. Six machines, one after another:
 *
 *   ahci_off     minivmm, AHCI, --aio-notify-on-sqe=off: every batch waits
 *                for the main loop's 499 ms timeout
 *   ahci_on      minivmm, AHCI, the fix on (the default), with the deferred
 *                kick (the vCPU's wake-up of the main loop waits for its
 *                bql_unlock())
 *   ahci_nodefer minivmm, AHCI, the fix on, --main-loop-defer-kick=off:
 *                QEMU's fix alone
 *   virtio       minivmm, virtio-blk on an IOThread
 *   qemu_ahci    QEMU 7.2, q35's AHCI
 *   qemu_virtio  QEMU 7.2, virtio-blk-pci on an IOThread
 *
 * All use cache=none and io_uring on the same kind of 128 MiB image.
 *
 * While iotest runs, perf counts the machine's system calls, per thread
 * (raw_syscalls:sys_enter, so the same count for minivmm and QEMU); each
 * run's line under the table gives them per read, and repro-syscalls: the
 * disk's own thread's (the thread that completes its I/O) side by side.
 * Without perf, or without the right to trace, those lines say so and the
 * rest runs. Last, ahci_on and virtio again, with the seccomp sandbox (the
 * default) against --seccomp=off, in alternating rounds: repro-seccomp:.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/bench/iotest.h"
#include "tests/bench/sort.h"
#include "tests/qos/ahci.h"
#include "tests/qos/virtio-blk.h"
#include "tests/qtest/libqtest.h"

#define SECTOR 512

/* ---- System calls per thread, counted by perf ---------------------------- */

#define MAX_THREAD_NAMES 16

typedef struct ThreadCalls {
    char name[32]; /* the thread's name (comm), its TID cut off */
    uint64_t calls;
} ThreadCalls;

typedef struct SyscallCount {
    pid_t perf;
    char path[64];
    ThreadCalls threads[MAX_THREAD_NAMES]; /* summed by name */
    int nthreads;
    uint64_t total;
    bool ok;
} SyscallCount;

/*
 * perf stat on every thread of @pid, until syscalls_stop(). perf starts
 * with its counters off (-D -1) and turns them on when told through its
 * control pipe, and says so through the other: so the count starts when
 * this returns, and none of the run's calls is missed. False if perf is
 * missing or may not trace.
 */
static bool syscalls_start(SyscallCount *c, pid_t pid)
{
    int ctl[2], ack[2];
    char pid_s[16], control[48], reply[8] = "";
    ssize_t n = -1;

    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "/tmp/bench-repro-perf-%d.txt",
             (int)getpid());
    snprintf(pid_s, sizeof(pid_s), "%d", (int)pid);
    if (pipe(ctl) < 0 || pipe(ack) < 0) {
        return false;
    }
    snprintf(control, sizeof(control), "fd:%d,%d", ctl[0], ack[1]);
    c->perf = fork();
    if (c->perf == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(ctl[1]);
        close(ack[0]);
        execlp("perf", "perf", "stat", "-x,", "--per-thread", "-D", "-1",
               "--control", control, "-e", "raw_syscalls:sys_enter", "-p",
               pid_s, "-o", c->path, (char *)NULL);
        _exit(127);
    }
    close(ctl[0]);
    close(ack[1]);
    if (c->perf > 0 && write(ctl[1], "enable\n", 7) == 7) {
        n = read(ack[0], reply, sizeof(reply) - 1); /* EOF if perf died */
    }
    close(ctl[1]);
    close(ack[0]);
    if (n > 0 && !strncmp(reply, "ack", 3)) {
        return true;
    }
    if (c->perf > 0) {
        kill(c->perf, SIGKILL);
        waitpid(c->perf, NULL, 0);
    }
    c->perf = 0;
    return false;
}

static void syscalls_add(SyscallCount *c, const char *name, uint64_t calls)
{
    int i;

    for (i = 0; i < c->nthreads; i++) {
        if (!strcmp(c->threads[i].name, name)) {
            break;
        }
    }
    if (i == c->nthreads) {
        if (i == MAX_THREAD_NAMES) {
            i--; /* the last slot takes whatever does not fit */
        } else {
            snprintf(c->threads[i].name, sizeof(c->threads[i].name), "%.*s",
                     (int)sizeof(c->threads[i].name) - 1, name);
            c->nthreads++;
        }
    }
    c->threads[i].calls += calls;
    c->total += calls;
}

/* Stop perf and read its lines: "COMM-TID,COUNT,,raw_syscalls:...". */
static void syscalls_stop(SyscallCount *c)
{
    char line[512];
    FILE *f;

    if (!c->perf) {
        return;
    }
    kill(c->perf, SIGINT);
    waitpid(c->perf, NULL, 0);
    f = fopen(c->path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *comma = strchr(line, ','), *dash;
        unsigned long long n;

        if (line[0] == '#' || !comma || sscanf(comma + 1, "%llu", &n) != 1) {
            continue;
        }
        *comma = '\0';
        dash = strrchr(line, '-'); /* names have dashes too: the last one */
        if (dash) {
            *dash = '\0';
        }
        syscalls_add(c, line, n);
        c->ok = true;
    }
    if (f) {
        fclose(f);
    }
    unlink(c->path);
}

/* "name" 's calls per read, or -1 if no thread had that name. */
static double syscalls_per_io(const SyscallCount *c, const char *name,
                              uint64_t ios)
{
    for (int i = 0; i < c->nthreads; i++) {
        if (!strcmp(c->threads[i].name, name)) {
            return (double)c->threads[i].calls / (double)ios;
        }
    }
    return -1;
}

static void syscalls_print(const SyscallCount *c, uint64_t ios)
{
    if (!c->ok) {
        printf("  %-12s system calls not counted (perf stat -e "
               "raw_syscalls:sys_enter did not run)\n",
               "");
        return;
    }
    printf("  %-12s calls per read:", "");
    for (int i = 0; i < c->nthreads; i++) {
        if (c->threads[i].calls) {
            printf(" '%s'=%.2f", c->threads[i].name,
                   (double)c->threads[i].calls / (double)ios);
        }
    }
    printf(" all=%.2f\n", (double)c->total / (double)ios);
}

/* ---- iotest over AHCI (NCQ, one PxCI write per command, as Linux) ------- */

typedef struct AhciIotest {
    QAhci a;
    uint64_t buf;
    uint32_t chunk;
    uint32_t outstanding;
} AhciIotest;

static void ahci_submit(void *opaque, unsigned slot, uint64_t offset,
                        uint32_t len, bool last)
{
    AhciIotest *x = opaque;

    (void)last; /* libata issues each command with its own PxCI write */
    /* Page-sized PRD entries, as a Linux guest's scatter lists have. */
    qahci_rw_ncq_issue(&x->a, 0, slot, false, offset / SECTOR, len / SECTOR,
                       x->buf + (uint64_t)slot * len, 4096);
    x->outstanding |= 1u << slot;
}

/*
 * NCQ commands leave PxCI as soon as the device takes them, and PxSACT when
 * they complete: one register read says which tags are done. PxIS is read
 * only when something finished, to catch errors.
 */
static uint32_t ahci_reap(void *opaque)
{
    AhciIotest *x = opaque;
    uint32_t done = x->outstanding & ~qahci_px_rreg(&x->a, 0, QAHCI_PX_SACT);

    if (done) {
        uint32_t is = qahci_port_clear_is(&x->a, 0);

        if (is & QAHCI_PX_IS_ERRORS) {
            fprintf(stderr, "bench-repro: AHCI error, PxIS 0x%08x\n", is);
            exit(1);
        }
        x->outstanding &= ~done;
    }
    return done;
}

static bool ahci_open(AhciIotest *x, Qos *q, const IotestParams *p)
{
    memset(x, 0, sizeof(*x));
    if (!qahci_init(&x->a, q, 0) || !qahci_port_start(&x->a, 0)) {
        return false;
    }
    x->chunk = p->chunk;
    x->buf = qos_alloc(q, (uint64_t)p->chunk * p->batch, 4096);
    return true;
}

/* ---- iotest over virtio-blk (queue 0, one kick per batch, as blk-mq) --- */

typedef struct VirtioIotest {
    QVirtioBlk b;
    uint64_t buf;
    QVirtioBlkReq req[32];
    uint32_t outstanding;
    uint32_t finished; /* back, status not checked yet */
} VirtioIotest;

static void virtio_submit(void *opaque, unsigned slot, uint64_t offset,
                          uint32_t len, bool last)
{
    VirtioIotest *x = opaque;

    x->req[slot] = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                                   .sector = offset / SECTOR,
                                   .data = x->buf + (uint64_t)slot * len,
                                   .len = len};
    qvirtio_blk_submit(&x->b, 0, &x->req[slot]);
    if (last) {
        qvirtio_blk_kick(&x->b, 0);
    }
    x->outstanding |= 1u << slot;
}

/*
 * One read of the used ring says which requests are back; their status
 * bytes are checked together, in one read, when the batch is complete.
 */
static void virtio_check_statuses(VirtioIotest *x)
{
    uint16_t lo = UINT16_MAX, hi = 0;
    uint64_t base;
    uint8_t *buf;

    for (uint32_t m = x->finished; m; m &= m - 1) {
        uint16_t head = x->req[__builtin_ctz(m)].head;

        lo = head < lo ? head : lo;
        hi = head > hi ? head : hi;
    }
    base = qvirtio_blk_status_addr(&x->b, 0, lo);
    size_t span = qvirtio_blk_status_addr(&x->b, 0, hi) - base + 1;
    buf = malloc(span);
    qos_memread(x->b.dev.pci.q, base, buf, span);
    for (uint32_t m = x->finished; m; m &= m - 1) {
        uint16_t head = x->req[__builtin_ctz(m)].head;
        uint8_t status = buf[qvirtio_blk_status_addr(&x->b, 0, head) - base];

        if (status != VIRTIO_BLK_S_OK) {
            fprintf(stderr, "bench-repro: virtio-blk status %u\n", status);
            exit(1);
        }
    }
    free(buf);
    x->finished = 0;
}

static uint32_t virtio_reap(void *opaque)
{
    VirtioIotest *x = opaque;
    QVirtQueue *vq = &x->b.vq[0];
    uint32_t done = 0;

    qvirtqueue_poll_used(vq);
    for (uint32_t m = x->outstanding; m; m &= m - 1) {
        unsigned slot = __builtin_ctz(m);
        uint16_t head = x->req[slot].head;

        if (vq->done[head]) {
            vq->done[head] = false;
            done |= 1u << slot;
        }
    }
    x->outstanding &= ~done;
    x->finished |= done;
    if (done && !x->outstanding) {
        virtio_check_statuses(x);
    }
    return done;
}

static bool virtio_open(VirtioIotest *x, Qos *q, const IotestParams *p)
{
    QVirtioBlkOptions opts = {0};

    memset(x, 0, sizeof(*x));
    if (!qvirtio_blk_init(&x->b, q, 0, &opts)) {
        return false;
    }
    x->buf = qos_alloc(q, (uint64_t)p->chunk * p->batch, 4096);
    return true;
}

/* ---- One run
 * ------------------------------------------------------------------ */

typedef struct Run {
    const char *name;
    QTestTarget target;
    bool virtio;
    const char *args; /* printf format taking the image path */
    /* The thread that completes the disk's I/O, by its name. */
    const char *io_thread;
    IotestResult result;
    uint64_t round_trips;
    SyscallCount calls;
} Run;

static bool run_one(Run *run, const char *image, const IotestParams *p)
{
    static AhciIotest ahci;
    static VirtioIotest virtio;
    IotestDisk disk = {.name = run->name};
    char args[512];
    QTest *qt;

    snprintf(args, sizeof(args), run->args, image);
    qt = qtest_start(run->target, 256, args);
    if (!qt) {
        return false;
    }
    if (run->virtio) {
        if (!virtio_open(&virtio, &qt->qos, p)) {
            goto fail;
        }
        disk.opaque = &virtio;
        disk.submit = virtio_submit;
        disk.reap = virtio_reap;
    } else {
        if (!ahci_open(&ahci, &qt->qos, p)) {
            goto fail;
        }
        disk.opaque = &ahci;
        disk.submit = ahci_submit;
        disk.reap = ahci_reap;
    }
    uint64_t before = qt->round_trips;
    bool counting = syscalls_start(&run->calls, qt->pid);

    iotest_run(&disk, p, &run->result);
    if (counting) {
        syscalls_stop(&run->calls);
    }
    run->round_trips = qt->round_trips - before;
    if (qtest_quit(qt) != 0 || run->result.timed_out) {
        fprintf(stderr, "bench-repro: %s did not finish cleanly\n", run->name);
        return false;
    }
    return true;
fail:
    fprintf(stderr, "bench-repro: %s: the driver could not set up the disk\n",
            run->name);
    qtest_quit(qt);
    return false;
}

static double io_thread_per_io(const Run *run, uint64_t ios)
{
    return syscalls_per_io(&run->calls, run->io_thread, ios);
}

/*
 * What the sandbox costs a guest's I/O: @base (one of minivmm's runs, with
 * the sandbox on, its default) against the same with --seccomp=off,
 * SECCOMP_ROUNDS rounds in alternating order; each round's on/off time
 * ratio into @ratio.
 */
#define SECCOMP_ROUNDS 5

static bool seccomp_rounds(const Run *base, const char *image,
                           const IotestParams *p, double *ratio)
{
    char off_args[512];

    snprintf(off_args, sizeof(off_args), "--seccomp=off %s", base->args);
    for (int k = 0; k < SECCOMP_ROUNDS; k++) {
        Run on = *base, off = *base;

        off.args = off_args;
        for (int side = 0; side < 2; side++) {
            if (!run_one((side == 0) == (k % 2 == 0) ? &on : &off, image, p)) {
                return false;
            }
        }
        ratio[k] = on.result.seconds / off.result.seconds;
    }
    qsort(ratio, SECCOMP_ROUNDS, sizeof(double), cmp_double);
    return true;
}

/* A disk image with data in it (holes would read without touching disk). */
static bool make_image(const char *path, uint64_t size)
{
    static uint8_t buf[1 << 20];
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    off_t cur = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;

    if (fd < 0) {
        perror(path);
        return false;
    }
    if ((uint64_t)cur != size) {
        memset(buf, 0x5a, sizeof(buf));
        if (ftruncate(fd, 0) < 0) {
            perror(path);
        }
        for (uint64_t off = 0; off < size; off += sizeof(buf)) {
            if (write(fd, buf, sizeof(buf)) != sizeof(buf)) {
                perror(path);
                close(fd);
                return false;
            }
        }
        fsync(fd);
    }
    close(fd);
    return true;
}

enum {
    RUN_AHCI_OFF,
    RUN_AHCI_ON,
    RUN_AHCI_NODEFER,
    RUN_VIRTIO,
    RUN_QEMU_AHCI,
    RUN_QEMU_VIRTIO,
    NRUNS
};

int main(int argc, char **argv)
{
    Run runs[NRUNS] = {
        [RUN_AHCI_OFF] = {.name = "ahci_off",
                          .target = QTEST_MINIVMM,
                          .io_thread = "minivmm",
                          .args = "--aio-notify-on-sqe=off "
                                  "--disk sata:%s,cache=none"},
        [RUN_AHCI_ON] = {.name = "ahci_on",
                         .target = QTEST_MINIVMM,
                         .io_thread = "minivmm",
                         .args = "--disk sata:%s,cache=none"},
        [RUN_AHCI_NODEFER] = {.name = "ahci_nodefer",
                              .target = QTEST_MINIVMM,
                              .io_thread = "minivmm",
                              .args = "--main-loop-defer-kick=off "
                                      "--disk sata:%s,cache=none"},
        [RUN_VIRTIO] = {.name = "virtio",
                        .target = QTEST_MINIVMM,
                        .io_thread = "iothread0",
                        .virtio = true,
                        .args = "--iothreads 1 "
                                "--disk virtio:%s,iothread=0,cache=none"},
        /* debug-threads=on: QEMU names its threads ("IO io0"). */
        [RUN_QEMU_AHCI] =
            {.name = "qemu_ahci",
             .target = QTEST_QEMU,
             .io_thread = "qemu-system-x86",
             .args =
                 "-name debug-threads=on -drive if=none,id=d0,file=%s,format=raw,"
                 "cache=none,aio=io_uring "
                 "-device ide-hd,drive=d0,bus=ide.0"},
        [RUN_QEMU_VIRTIO] = {.name = "qemu_virtio",
                             .target = QTEST_QEMU,
                             .virtio = true,
                             .io_thread = "IO io0",
                             .args = "-name debug-threads=on "
                                     "-object iothread,id=io0 "
                                     "-drive if=none,id=d0,file=%s,"
                                     "format=raw,cache=none,aio=io_uring "
                                     "-device virtio-blk-pci,drive=d0,"
                                     "iothread=io0,disable-legacy=on"},
    };
    IotestParams p = IOTEST_DEFAULTS;
    const char *image = "/var/tmp/minivmm-bench-repro.img";
    double slept[NRUNS], floor_s;
    uint64_t ios;
    int c, mib = 128;

    while ((c = getopt(argc, argv, "m:h")) != -1) {
        if (c == 'm' && atoi(optarg) >= 2) {
            mib = atoi(optarg);
        } else {
            printf("Usage: bench-repro [-m MIB]  (iotest size, default 128)\n");
            return c == 'h' ? 0 : 2;
        }
    }
    p.total = (uint64_t)mib << 20;
    ios = p.total / p.chunk;
    if (!make_image(image, p.total)) {
        return 1;
    }
    printf("bench-repro: iotest %d MiB in %u KiB reads, batches of %u, "
           "%u us sleeps; main-loop cap 499 ms\n",
           mib, p.chunk >> 10, p.batch, p.sleep_us);
    printf("  %-12s %9s %9s %12s %12s %12s\n", "run", "total_s", "slept_s",
           "batch_p50_ms", "batch_max_ms", "round_trips");
    for (int i = 0; i < NRUNS; i++) {
        if (!run_one(&runs[i], image, &p)) {
            return 1;
        }
        IotestResult *r = &runs[i].result;
        printf("  %-12s %9.2f %9.2f %12.1f %12.1f %12llu\n", runs[i].name,
               r->seconds, r->slept, r->batch_p50_ms, r->batch_max_ms,
               (unsigned long long)runs[i].round_trips);
        syscalls_print(&runs[i].calls, ios);
        fflush(stdout);
        slept[i] = r->slept;
    }
    /* The floor: what the sleeps themselves cost, median over the runs. */
    qsort(slept, NRUNS, sizeof(double), cmp_double);
    floor_s = slept[NRUNS / 2];

    double off = runs[RUN_AHCI_OFF].result.seconds;
    double on = runs[RUN_AHCI_ON].result.seconds;
    double nodefer = runs[RUN_AHCI_NODEFER].result.seconds;
    double vio = runs[RUN_VIRTIO].result.seconds;
    double q_ahci = runs[RUN_QEMU_AHCI].result.seconds;
    double q_vio = runs[RUN_QEMU_VIRTIO].result.seconds;
    printf("  ahci_off / ahci_on      = %6.1f  (goal >= 10)\n", off / on);
    printf("  ahci_nodefer / ahci_on  = %6.3f  (QEMU's fix alone / ours)\n",
           nodefer / on);
    printf("  ahci_on / floor         = %6.3f  (goal <= 1.10)\n", on / floor_s);
    printf("  virtio / floor          = %6.3f  (goal <= 1.10)\n",
           vio / floor_s);
    printf("  ahci_on / qemu_ahci     = %6.3f  (goal <= 1)\n", on / q_ahci);
    printf("  virtio / qemu_virtio    = %6.3f  (goal <= 1)\n", vio / q_vio);
    printf("repro-qtest: ahci_off_s=%.2f ahci_on_s=%.2f virtio_s=%.2f "
           "floor_s=%.2f qemu_ahci_s=%.2f qemu_virtio_s=%.2f\n",
           off, on, vio, floor_s, q_ahci, q_vio);
    /*
     * The disk's own thread: minivmm's main loop for AHCI, its IOThread for
     * virtio; QEMU's main thread and its IOThread. QEMU's main thread also
     * serves the qtest socket, which minivmm does on a thread of its own,
     * so the AHCI pair is not like for like; the virtio pair is.
     */
    printf("repro-syscalls: per_read ahci_on_main=%.2f qemu_ahci_main=%.2f "
           "virtio_iothread=%.2f qemu_virtio_iothread=%.2f "
           "ahci_on_all=%.2f qemu_ahci_all=%.2f virtio_all=%.2f "
           "qemu_virtio_all=%.2f\n",
           io_thread_per_io(&runs[RUN_AHCI_ON], ios),
           io_thread_per_io(&runs[RUN_QEMU_AHCI], ios),
           io_thread_per_io(&runs[RUN_VIRTIO], ios),
           io_thread_per_io(&runs[RUN_QEMU_VIRTIO], ios),
           (double)runs[RUN_AHCI_ON].calls.total / (double)ios,
           (double)runs[RUN_QEMU_AHCI].calls.total / (double)ios,
           (double)runs[RUN_VIRTIO].calls.total / (double)ios,
           (double)runs[RUN_QEMU_VIRTIO].calls.total / (double)ios);
    double sc_ahci[SECCOMP_ROUNDS], sc_virtio[SECCOMP_ROUNDS];

    if (!seccomp_rounds(&runs[RUN_AHCI_ON], image, &p, sc_ahci) ||
        !seccomp_rounds(&runs[RUN_VIRTIO], image, &p, sc_virtio)) {
        return 1;
    }
    printf("repro-seccomp: rounds=%d ahci_on_ratio=%.3f (%.3f..%.3f) "
           "virtio_ratio=%.3f (%.3f..%.3f)  (sandboxed / --seccomp=off, "
           "total time, medians and spread)\n",
           SECCOMP_ROUNDS, sc_ahci[SECCOMP_ROUNDS / 2], sc_ahci[0],
           sc_ahci[SECCOMP_ROUNDS - 1], sc_virtio[SECCOMP_ROUNDS / 2],
           sc_virtio[0], sc_virtio[SECCOMP_ROUNDS - 1]);
    printf("repro-qtest-defer: ahci_on_s=%.2f ahci_nodefer_s=%.2f "
           "nodefer_over_on=%.3f\n",
           on, nodefer, nodefer / on);
    return 0;
}
