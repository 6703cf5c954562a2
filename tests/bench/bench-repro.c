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
 */
#include <fcntl.h>
#include <getopt.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/iotest.h"
#include "tests/bench/sort.h"
#include "tests/qos/ahci.h"
#include "tests/qos/virtio-blk.h"
#include "tests/qtest/libqtest.h"

#define SECTOR 512

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
    IotestResult result;
    uint64_t round_trips;
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
    iotest_run(&disk, p, &run->result);
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
                          .args = "--aio-notify-on-sqe=off "
                                  "--disk sata:%s,cache=none"},
        [RUN_AHCI_ON] = {.name = "ahci_on",
                         .target = QTEST_MINIVMM,
                         .args = "--disk sata:%s,cache=none"},
        [RUN_AHCI_NODEFER] = {.name = "ahci_nodefer",
                              .target = QTEST_MINIVMM,
                              .args = "--main-loop-defer-kick=off "
                                      "--disk sata:%s,cache=none"},
        [RUN_VIRTIO] = {.name = "virtio",
                        .target = QTEST_MINIVMM,
                        .virtio = true,
                        .args = "--iothreads 1 "
                                "--disk virtio:%s,iothread=0,cache=none"},
        [RUN_QEMU_AHCI] = {.name = "qemu_ahci",
                           .target = QTEST_QEMU,
                           .args = "-drive if=none,id=d0,file=%s,format=raw,"
                                   "cache=none,aio=io_uring "
                                   "-device ide-hd,drive=d0,bus=ide.0"},
        [RUN_QEMU_VIRTIO] = {.name = "qemu_virtio",
                             .target = QTEST_QEMU,
                             .virtio = true,
                             .args = "-object iothread,id=io0 "
                                     "-drive if=none,id=d0,file=%s,"
                                     "format=raw,cache=none,aio=io_uring "
                                     "-device virtio-blk-pci,drive=d0,"
                                     "iothread=io0,disable-legacy=on"},
    };
    IotestParams p = IOTEST_DEFAULTS;
    const char *image = "/var/tmp/minivmm-bench-repro.img";
    double slept[NRUNS], floor_s;
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
    printf("repro-qtest-defer: ahci_on_s=%.2f ahci_nodefer_s=%.2f "
           "nodefer_over_on=%.3f\n",
           on, nodefer, nodefer / on);
    return 0;
}
