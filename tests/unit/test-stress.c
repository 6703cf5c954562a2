/*
 * The stress suite: many vCPUs against two AHCI controllers and two
 * virtio-blk disks at once, with resets and BAR moves in the middle of I/O.
 * Written to run under ThreadSanitizer (make check TSAN=1), where it is the
 * test that puts every thread of DESIGN.md's "Threads and contexts" table
 * to work together; normally it runs for a couple of seconds.
 *
 * The machine is vblk-machine.c's (main loop on a thread, two IOThreads,
 * two virtio-blk disks with a queue on each IOThread and one on the main
 * loop) plus two AHCI controllers whose four ports share one image. Each
 * vCPU thread owns one controller or one virtio disk, as a guest driver
 * owns its device, and loops until the deadline:
 *
 *   - a batch: up to 8 requests per port or 12 per disk, on distinct 4 KiB
 *     blocks of its own LBA range, reads and writes mixed, issued together
 *     and waited for; reads are checked against a shadow of what the disk
 *     holds (every block starts at "generation 0", the image's initial
 *     contents, and each write makes a new generation);
 *   - a batch cut short by a reset: AHCI COMRESET of one port or GHC.HR of
 *     the whole HBA, virtio status 0 and a new driver init; the blocks it
 *     was writing are "unknown" from then on, until written again;
 *   - a BAR move: memory decoding off, the BAR reprogrammed through config
 *     space, decoding on, with the batch still in flight;
 *   - and, on its own thread, a prober that reads every function's config
 *     space meanwhile.
 *
 * Every vCPU access takes the big lock, as vmm/kvm-vcpu.c does for an exit
 * (qos-local.c); completions come from the main loop (AHCI, virtio queue 2)
 * and the IOThreads (virtio queues 0 and 1). At the end each thread reads
 * its whole range back, and the block layer's counters must show every
 * request completed once: no more than the guest issued, no fewer than it
 * saw complete, none in flight.
 *
 * MINIVMM_STRESS_SECONDS sets the length (default 2; check-tsan uses more).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "aio/main-loop.h"
#include "devices/ahci.h"
#include "tests/qos/ahci.h"
#include "tests/qos/qos-local.h"
#include "tests/qos/virtio-blk.h"
#include "tests/unit/suites.h"
#include "tests/unit/vblk-machine.h"
#include "util/clock.h"

#define BLOCK          4096u
#define SECTORS        (BLOCK / 512)
#define GEN_UNKNOWN    UINT32_MAX
#define AHCI_IMG_SIZE  (8u << 20)
#define AHCI_CTRLS     2
#define AHCI_PORTS     2 /* per controller */
#define AHCI_BATCH     8 /* per port */
#define VBLK_QUEUES    3
#define VBLK_BATCH     12
#define REGION_RAM     (4u << 20) /* guest RAM per vCPU */
#define REGION_MMIO    0x100000u  /* BAR window per vCPU; two halves */
#define NVCPUS         (AHCI_CTRLS + VM_MAX_DEVS)
#define DEFAULT_SECSTR "2"

/* What a range of blocks holds, as far as its one writer knows. */
typedef struct Shadow {
    bool vblk;          /* initial contents: vm_pattern(); else zeros */
    unsigned dev;       /* vblk device, or 0 */
    uint64_t first;     /* first block of the range */
    uint64_t nblocks;   /* blocks in the range */
    uint32_t gen[1024]; /* per block; GEN_UNKNOWN after an aborted write */
} Shadow;

/* One request of a batch. */
typedef struct Req {
    uint64_t block;
    bool write;
    uint32_t gen; /* written, or expected */
    uint64_t buf; /* guest address, one BLOCK */
} Req;

typedef struct Vcpu {
    const char *name;
    pthread_t thread;
    Qos q;
    uint64_t window; /* MMIO window for this vCPU's BARs */
    bool upper;      /* the BARs sit in the window's upper half */
    unsigned seed;
    uint64_t bufs; /* VBLK_BATCH or AHCI_PORTS * AHCI_BATCH blocks */

    /* AHCI */
    QAhci a;
    int ctrl;
    /* virtio-blk */
    QVirtioBlk b;
    unsigned dev;

    Shadow sh[AHCI_PORTS]; /* one per port; a vblk disk uses sh[0] */
    unsigned batches, resets, bar_moves;
} Vcpu;

static struct {
    AhciState *ahci[AHCI_CTRLS];
    BlockBackend *ahci_blk;
    atomic_uint intx_raises;
    MsiSink msi;
    atomic_uint msis;
    Vcpu vcpu[NVCPUS];
    int64_t deadline;
    atomic_bool stop;
    /*
     * The guest's pci_lock: a config access is two port accesses (address
     * at 0xcf8, data at 0xcfc) and a vCPU between them would redirect the
     * other's; Linux serialises them, and so do we.
     */
    pthread_mutex_t pci_lock;
    /* What the guest issued and saw complete, per backend (AHCI, vblk). */
    atomic_uint issued[1 + VM_MAX_DEVS], completed[1 + VM_MAX_DEVS];
} st;

/* ---- Data ---------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* What block @block (a disk-wide index) holds at generation @gen. */
static void expected(const Shadow *s, uint64_t block, uint32_t gen,
                     uint8_t *out)
{
    if (gen == 0 && s->vblk) {
        for (uint32_t i = 0; i < BLOCK; i++) {
            out[i] = vm_pattern(s->dev, block * BLOCK + i);
        }
    } else if (gen == 0) {
        memset(out, 0, BLOCK);
    } else {
        uint64_t seed = mix(block << 32 ^ gen ^ (uint64_t)s->vblk << 63 ^
                            (uint64_t)s->dev << 62);

        for (uint32_t i = 0; i < BLOCK; i += 8) {
            uint64_t w = seed + i * 0x9e3779b97f4a7c15ULL;
            memcpy(out + i, &w, 8);
        }
    }
}

static uint8_t *guest(uint64_t gpa)
{
    uint8_t *p = gm_ptr(&vm.ram, gpa, BLOCK);

    ck_assert_ptr_nonnull(p);
    return p;
}

/*
 * Choose @n distinct blocks of @s, reads and writes mixed, and fill the
 * write buffers. An unknown block is always written: there is nothing to
 * check it against.
 */
static void plan_batch(Vcpu *v, Shadow *s, Req *r, unsigned n, uint64_t bufs)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t blk;
        bool dup;

        do {
            blk = s->first + rand_r(&v->seed) % s->nblocks;
            dup = false;
            for (unsigned j = 0; j < i; j++) {
                dup |= r[j].block == blk;
            }
        } while (dup);
        r[i].block = blk;
        r[i].buf = bufs + (uint64_t)i * BLOCK;
        r[i].gen = s->gen[blk - s->first];
        r[i].write = r[i].gen == GEN_UNKNOWN || rand_r(&v->seed) % 2;
        if (r[i].write) {
            r[i].gen = r[i].gen == GEN_UNKNOWN ? 1 : r[i].gen + 1;
            expected(s, blk, r[i].gen, guest(r[i].buf));
        } else {
            memset(guest(r[i].buf), 0xa5, BLOCK);
        }
    }
}

/* After the batch completed: check the reads, record the writes. */
static void finish_batch(const char *who, Shadow *s, const Req *r, unsigned n)
{
    uint8_t want[BLOCK];

    for (unsigned i = 0; i < n; i++) {
        if (r[i].write) {
            s->gen[r[i].block - s->first] = r[i].gen;
            continue;
        }
        expected(s, r[i].block, r[i].gen, want);
        ck_assert_msg(!memcmp(guest(r[i].buf), want, BLOCK),
                      "%s: block %llu does not hold generation %u", who,
                      (unsigned long long)r[i].block, r[i].gen);
    }
}

/* A reset cut the batch short: what it was writing is anyone's guess. */
static void abandon_batch(Shadow *s, const Req *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (r[i].write) {
            s->gen[r[i].block - s->first] = GEN_UNKNOWN;
        }
    }
}

/* ---- Guest-side helpers -------------------------------------------------- */

/* Reprogram a 32- or 64-bit memory BAR with decoding off, as Linux does. */
static void bar_move(QPciDevice *d, int bar, uint64_t addr)
{
    uint8_t reg = 0x10 + 4 * bar;
    uint16_t cmd;
    uint32_t lo;

    pthread_mutex_lock(&st.pci_lock);
    cmd = qpci_config_read(d, 0x04, 2);
    lo = qpci_config_read(d, reg, 4);
    qpci_config_write(d, 0x04, cmd & ~0x2, 2);
    qpci_config_write(d, reg, (uint32_t)addr | (lo & 0xf), 4);
    if ((lo & 0x6) == 0x4) {
        qpci_config_write(d, reg + 4, addr >> 32, 4);
    }
    qpci_config_write(d, 0x04, cmd, 2);
    pthread_mutex_unlock(&st.pci_lock);
}

static uint64_t window_half(Vcpu *v)
{
    return v->window + (v->upper ? REGION_MMIO / 2 : 0);
}

static bool one_in(Vcpu *v, unsigned n)
{
    return rand_r(&v->seed) % n == 0;
}

/* ---- AHCI vCPUs ---------------------------------------------------------- */

static void ahci_start_ports(Vcpu *v)
{
    for (int p = 0; p < AHCI_PORTS; p++) {
        ck_assert_msg(qahci_port_start(&v->a, p), "%s: port %d did not start",
                      v->name, p);
    }
}

static void ahci_issue_batch(Vcpu *v, Req r[AHCI_PORTS][AHCI_BATCH], unsigned n)
{
    for (int p = 0; p < AHCI_PORTS; p++) {
        plan_batch(v, &v->sh[p], r[p], n,
                   v->bufs + (uint64_t)p * AHCI_BATCH * BLOCK);
        for (unsigned i = 0; i < n; i++) {
            qahci_rw_ncq_issue(&v->a, p, i, r[p][i].write,
                               r[p][i].block * SECTORS, SECTORS, r[p][i].buf,
                               BLOCK);
        }
        atomic_fetch_add(&st.issued[0], n);
    }
}

static void ahci_wait_batch(Vcpu *v, Req r[AHCI_PORTS][AHCI_BATCH], unsigned n)
{
    for (int p = 0; p < AHCI_PORTS; p++) {
        int ret = qahci_wait(&v->a, p, (1u << n) - 1, QAHCI_TIMEOUT_MS);

        ck_assert_msg(ret == 0, "%s: port %d batch: %d (PxIS 0x%x)", v->name, p,
                      ret, qahci_px_rreg(&v->a, p, QAHCI_PX_IS));
        finish_batch(v->name, &v->sh[p], r[p], n);
        atomic_fetch_add(&st.completed[0], n);
    }
}

static void ahci_step(Vcpu *v, unsigned step)
{
    Req r[AHCI_PORTS][AHCI_BATCH];
    unsigned n = 1 + rand_r(&v->seed) % AHCI_BATCH;
    /* The first steps do one of each, so a slow run still covers them. */
    unsigned what = step < 4 ? step : (unsigned)rand_r(&v->seed) % 16;

    ahci_issue_batch(v, r, n);
    if (what == 1) {
        int p = rand_r(&v->seed) % AHCI_PORTS;

        ck_assert_msg(qahci_port_comreset(&v->a, p), "%s: COMRESET port %d",
                      v->name, p);
        abandon_batch(&v->sh[p], r[p], n);
        /* The other port's batch carries on through its neighbour's reset. */
        ck_assert_int_eq(qahci_wait(&v->a, !p, (1u << n) - 1, QAHCI_TIMEOUT_MS),
                         0);
        finish_batch(v->name, &v->sh[!p], r[!p], n);
        atomic_fetch_add(&st.completed[0], n);
        v->resets++;
        return;
    }
    if (what == 2) {
        ck_assert_msg(qahci_hba_reset(&v->a), "%s: GHC.HR", v->name);
        for (int p = 0; p < AHCI_PORTS; p++) {
            abandon_batch(&v->sh[p], r[p], n);
        }
        ahci_start_ports(v);
        v->resets++;
        return;
    }
    if (what == 3) {
        v->upper = !v->upper;
        bar_move(&v->a.dev, QAHCI_BAR, window_half(v));
        v->a.abar = window_half(v);
        v->bar_moves++;
    }
    ahci_wait_batch(v, r, n);
    v->batches++;
}

/* Read back every block of @s that we know, in batches. */
static void ahci_verify_all(Vcpu *v)
{
    for (int p = 0; p < AHCI_PORTS; p++) {
        Shadow *s = &v->sh[p];

        for (uint64_t b = 0; b < s->nblocks;) {
            Req r[AHCI_BATCH];
            unsigned n = 0;

            for (; b < s->nblocks && n < AHCI_BATCH; b++) {
                if (s->gen[b] == GEN_UNKNOWN) {
                    continue;
                }
                r[n] = (Req){.block = s->first + b,
                             .gen = s->gen[b],
                             .buf = v->bufs + (uint64_t)n * BLOCK};
                memset(guest(r[n].buf), 0xa5, BLOCK);
                qahci_rw_ncq_issue(&v->a, p, n, false, r[n].block * SECTORS,
                                   SECTORS, r[n].buf, BLOCK);
                n++;
            }
            atomic_fetch_add(&st.issued[0], n);
            ck_assert_int_eq(
                qahci_wait(&v->a, p, (1u << n) - 1, QAHCI_TIMEOUT_MS), 0);
            finish_batch(v->name, s, r, n);
            atomic_fetch_add(&st.completed[0], n);
        }
    }
}

static void *ahci_vcpu(void *opaque)
{
    Vcpu *v = opaque;

    for (unsigned step = 0; step < 4 || clock_ns() < st.deadline; step++) {
        ahci_step(v, step);
    }
    ahci_verify_all(v);
    return NULL;
}

/* ---- virtio-blk vCPUs ---------------------------------------------------- */

/*
 * Driver init, as after boot or a reset: the BARs go to the other half of
 * our window (a BAR move too) and the rings reuse the RAM of the last init.
 */
static void vblk_init(Vcpu *v, uint64_t ram_mark)
{
    QVirtioBlkOptions o = {.features = 1ull << VIRTIO_BLK_F_MQ |
                                       1ull << VIRTIO_RING_F_INDIRECT_DESC |
                                       1ull << VIRTIO_RING_F_EVENT_IDX,
                           .num_queues = VBLK_QUEUES,
                           .msix = true};

    v->upper = !v->upper;
    v->q.mmio_next = window_half(v);
    v->q.alloc_next = ram_mark;
    pthread_mutex_lock(&st.pci_lock);
    ck_assert_msg(qvirtio_blk_init(&v->b, &v->q, v->dev, &o),
                  "%s: driver init failed", v->name);
    pthread_mutex_unlock(&st.pci_lock);
}

/* Each ring has delivered exactly what was published on it: none twice. */
static void vblk_check_rings(Vcpu *v)
{
    for (unsigned qi = 0; qi < VBLK_QUEUES; qi++) {
        QVirtQueue *vq = &v->b.vq[qi];

        ck_assert_msg(qvirtqueue_used_idx(vq) == vq->avail_idx &&
                          vq->last_used == vq->avail_idx,
                      "%s: queue %u used %u, consumed %u, published %u",
                      v->name, qi, qvirtqueue_used_idx(vq), vq->last_used,
                      vq->avail_idx);
    }
}

/* Move the modern BAR (and MSI-X's) with requests in flight. */
static void vblk_move_bars(Vcpu *v)
{
    QVirtioDevice *d = &v->b.dev;
    uint64_t old = d->bar_addr[4], old_msix = d->bar_addr[1];
    uint64_t base = v->upper ? v->window : v->window + REGION_MMIO / 2;
    uint64_t delta = base - old, delta_msix = base + 0x10000 - old_msix;

    v->upper = !v->upper;
    bar_move(&d->pci, 4, base);
    bar_move(&d->pci, 1, base + 0x10000);
    d->bar_addr[4] += delta;
    d->bar_addr[1] += delta_msix;
    d->common += delta;
    d->isr += delta;
    d->device += delta;
    d->notify += delta;
    d->msix_table += delta_msix;
    for (unsigned qi = 0; qi < VBLK_QUEUES; qi++) {
        v->b.vq[qi].notify_addr += delta;
    }
    v->bar_moves++;
}

static void vblk_step(Vcpu *v, unsigned step, uint64_t ram_mark)
{
    QVirtioBlkReq q[VBLK_BATCH];
    Req r[VBLK_BATCH];
    unsigned n = 1 + rand_r(&v->seed) % VBLK_BATCH;
    unsigned what = step < 3 ? step : (unsigned)rand_r(&v->seed) % 16;

    plan_batch(v, &v->sh[0], r, n, v->bufs);
    for (unsigned i = 0; i < n; i++) {
        q[i] = (QVirtioBlkReq){
            .type = r[i].write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
            .sector = r[i].block * SECTORS,
            .data = r[i].buf,
            .len = BLOCK,
            .indirect = one_in(v, 2),
        };
        qvirtio_blk_submit(&v->b, i % VBLK_QUEUES, &q[i]);
    }
    for (unsigned qi = 0; qi < VBLK_QUEUES && qi < n; qi++) {
        qvirtio_blk_kick(&v->b, qi);
    }
    atomic_fetch_add(&st.issued[1 + v->dev], n);
    if (what == 1) {
        /* Status 0 with the batch in flight, then a new driver. */
        vblk_init(v, ram_mark);
        abandon_batch(&v->sh[0], r, n);
        v->resets++;
        return;
    }
    if (what == 2) {
        vblk_move_bars(v);
    }
    for (unsigned i = 0; i < n; i++) {
        ck_assert_msg(qvirtio_blk_wait(&v->b, i % VBLK_QUEUES, &q[i],
                                       QVIRTIO_BLK_TIMEOUT_MS),
                      "%s: request %u of %u lost", v->name, i, n);
        ck_assert_msg(q[i].status == VIRTIO_BLK_S_OK, "%s: status %u", v->name,
                      q[i].status);
    }
    vblk_check_rings(v);
    finish_batch(v->name, &v->sh[0], r, n);
    atomic_fetch_add(&st.completed[1 + v->dev], n);
    v->batches++;
}

static void vblk_verify_all(Vcpu *v)
{
    Shadow *s = &v->sh[0];

    for (uint64_t b = 0; b < s->nblocks;) {
        QVirtioBlkReq q[VBLK_BATCH];
        Req r[VBLK_BATCH];
        unsigned n = 0;

        for (; b < s->nblocks && n < VBLK_BATCH; b++) {
            if (s->gen[b] == GEN_UNKNOWN) {
                continue;
            }
            r[n] = (Req){.block = s->first + b,
                         .gen = s->gen[b],
                         .buf = v->bufs + (uint64_t)n * BLOCK};
            memset(guest(r[n].buf), 0xa5, BLOCK);
            q[n] = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                                   .sector = r[n].block * SECTORS,
                                   .data = r[n].buf,
                                   .len = BLOCK};
            qvirtio_blk_submit(&v->b, n % VBLK_QUEUES, &q[n]);
            n++;
        }
        for (unsigned qi = 0; qi < VBLK_QUEUES; qi++) {
            qvirtio_blk_kick(&v->b, qi);
        }
        atomic_fetch_add(&st.issued[1 + v->dev], n);
        for (unsigned i = 0; i < n; i++) {
            ck_assert(qvirtio_blk_wait(&v->b, i % VBLK_QUEUES, &q[i],
                                       QVIRTIO_BLK_TIMEOUT_MS));
            ck_assert_uint_eq(q[i].status, VIRTIO_BLK_S_OK);
        }
        finish_batch(v->name, s, r, n);
        atomic_fetch_add(&st.completed[1 + v->dev], n);
    }
    vblk_check_rings(v);
}

static void *vblk_vcpu(void *opaque)
{
    Vcpu *v = opaque;
    uint64_t ram_mark = v->q.alloc_next;

    vblk_init(v, ram_mark);
    for (unsigned step = 0; step < 3 || clock_ns() < st.deadline; step++) {
        vblk_step(v, step, ram_mark);
    }
    vblk_verify_all(v);
    return NULL;
}

/* ---- The prober ---------------------------------------------------------- */

/* Config space reads on every function while BARs move: IDs never tear. */
static void *prober(void *opaque)
{
    Qos q;
    static const struct {
        uint8_t devfn;
        uint32_t id;
    } fn[] = {
        {PCI_DEVFN(0x1f, 2), QAHCI_DEVICE << 16 | QAHCI_VENDOR},
        {PCI_DEVFN(0x1f, 5), QAHCI_DEVICE << 16 | QAHCI_VENDOR},
        {VM_DEVFN(0), (QVIRTIO_DEVICE_BASE + 2) << 16 | QVIRTIO_VENDOR_ID},
        {VM_DEVFN(1), (QVIRTIO_DEVICE_BASE + 2) << 16 | QVIRTIO_VENDOR_ID},
    };
    unsigned *reads = opaque;

    qos_local_init(&q, &vm.as);
    while (!atomic_load(&st.stop)) {
        for (unsigned i = 0; i < sizeof(fn) / sizeof(fn[0]); i++) {
            QPciDevice d = {.q = &q, .devfn = fn[i].devfn};
            uint32_t id;

            pthread_mutex_lock(&st.pci_lock);
            id = qpci_config_read(&d, 0, 4);
            (void)qpci_config_read(&d, 0x10 + 4 * (i < 2 ? 5 : 4), 4);
            pthread_mutex_unlock(&st.pci_lock);
            ck_assert_uint_eq(id, fn[i].id);
            ++*reads;
        }
        usleep(100);
    }
    return NULL;
}

/* ---- The machine --------------------------------------------------------- */

static void ahci_irq(void *opaque, int gsi, int level)
{
    (void)gsi;
    if (level) {
        atomic_fetch_add((atomic_uint *)opaque, 1);
    }
}

static void ahci_msi(void *opaque, uint64_t addr, uint32_t data)
{
    (void)addr;
    (void)data;
    atomic_fetch_add((atomic_uint *)opaque, 1);
}

/* A zero-filled image for the AHCI ports, unlinked at once. */
static BlockBackend *open_ahci_image(void)
{
    const char *dir = getenv("MINIVMM_TEST_DIR");
    char path[256], err[256];
    BlockBackend *blk;
    int fd;

    snprintf(path, sizeof(path), "%s/minivmm-test-stress-XXXXXX",
             dir && *dir ? dir : "/var/tmp");
    fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp %s: %s", path, strerror(errno));
    ck_assert_int_eq(ftruncate(fd, AHCI_IMG_SIZE), 0);
    close(fd);
    ck_assert_msg(
        blk_open_string(path, "aio=io_uring", &blk, err, sizeof(err)) == 0,
        "%s", err);
    unlink(path);
    return blk;
}

static void vcpu_init(Vcpu *v, int i, const char *name)
{
    uint64_t ram = 0x100000 + (uint64_t)i * REGION_RAM;

    v->name = name;
    v->seed = 0x5eed + i;
    qos_local_init(&v->q, &vm.as);
    v->q.alloc_start = v->q.alloc_next = ram;
    v->q.ram_size = ram + REGION_RAM;
    v->window = 0xc0000000 + (uint64_t)i * REGION_MMIO;
    v->q.mmio_next = v->window;
    v->bufs = qos_alloc(&v->q, AHCI_PORTS * AHCI_BATCH * BLOCK, 4096);
}

static void stress_setup(void)
{
    static const char *names[NVCPUS] = {"ahci0", "ahci1", "vblk0", "vblk1"};
    /* Queue 2 on the main loop: its completions take the big lock. */
    VmOptions o = {.ndev = VM_MAX_DEVS,
                   .num_queues = VBLK_QUEUES,
                   .owners_set = true,
                   .owner = {ON_IO0, ON_IO1, ON_MAIN}};

    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.pci_lock, NULL);
    vm_start(&o);
    st.ahci_blk = open_ahci_image();
    st.msi = (MsiSink){.send = ahci_msi, .opaque = &st.msis};
    bql_lock();
    for (int c = 0; c < AHCI_CTRLS; c++) {
        ck_assert_int_eq(
            ahci_create(&st.ahci[c], &vm.host,
                        c ? PCI_DEVFN(0x1f, 5) : PCI_DEVFN(0x1f, 2), &vm.ram,
                        &st.msi,
                        (IrqLine){.set_level = ahci_irq,
                                  .opaque = &st.intx_raises,
                                  .gsi = 16 + c}),
            0);
        /* Four ports, one image: each port has a quarter. */
        for (int p = 0; p < AHCI_PORTS; p++) {
            ck_assert_int_eq(ahci_attach_disk(st.ahci[c], p, st.ahci_blk, NULL),
                             0);
        }
    }
    bql_unlock();

    for (int i = 0; i < NVCPUS; i++) {
        Vcpu *v = &st.vcpu[i];

        vcpu_init(v, i, names[i]);
        if (i < AHCI_CTRLS) {
            v->ctrl = i;
            for (int p = 0; p < AHCI_PORTS; p++) {
                v->sh[p].first = (uint64_t)(i * AHCI_PORTS + p) * 512;
                v->sh[p].nblocks = 512;
            }
            /* The ABAR lands at the bottom of our window. */
            ck_assert(qahci_init(&v->a, &v->q, i));
            ahci_start_ports(v);
        } else {
            v->dev = i - AHCI_CTRLS;
            v->sh[0] = (Shadow){
                .vblk = true, .dev = v->dev, .nblocks = VM_IMG_SIZE / BLOCK};
            v->upper = true; /* vblk_init() flips it first */
        }
    }
}

static void stress_teardown(void)
{
    bql_lock();
    for (int c = 0; c < AHCI_CTRLS; c++) {
        ahci_destroy(st.ahci[c]);
    }
    bql_unlock();
    blk_close(st.ahci_blk);
    vm_stop();
    pthread_mutex_destroy(&st.pci_lock);
}

static double stress_seconds(void)
{
    const char *env = getenv("MINIVMM_STRESS_SECONDS");

    return atof(env && *env ? env : DEFAULT_SECSTR);
}

/* Completed at the block layer: every op, since the image was opened. */
static uint64_t blk_completed(BlockBackend *blk)
{
    BlockStats s;
    uint64_t n = 0;

    blk_get_stats(blk, &s);
    ck_assert_uint_eq(s.in_flight, 0);
    for (int op = 0; op < BLOCK_OP__MAX; op++) {
        n += s.op[op].ops;
    }
    return n;
}

START_TEST(test_stress)
{
    pthread_t probe;
    unsigned probes = 0;
    int64_t t0 = clock_ns();

    st.deadline = t0 + (int64_t)(stress_seconds() * NS_PER_S);
    pthread_create(&probe, NULL, prober, &probes);
    for (int i = 0; i < NVCPUS; i++) {
        pthread_create(&st.vcpu[i].thread, NULL,
                       i < AHCI_CTRLS ? ahci_vcpu : vblk_vcpu, &st.vcpu[i]);
    }
    for (int i = 0; i < NVCPUS; i++) {
        pthread_join(st.vcpu[i].thread, NULL);
    }
    atomic_store(&st.stop, true);
    pthread_join(probe, NULL);

    /* Drained: nothing in flight, each request completed once at most. */
    for (int d = 0; d < 1 + VM_MAX_DEVS; d++) {
        BlockBackend *blk = d ? vm.blk[d - 1] : st.ahci_blk;
        uint64_t done = blk_completed(blk);

        ck_assert_uint_eq(blk_in_flight(blk), 0);
        ck_assert_msg(done >= atomic_load(&st.completed[d]) &&
                          done <= atomic_load(&st.issued[d]),
                      "backend %d: %llu completed, guest issued %u and saw %u",
                      d, (unsigned long long)done, atomic_load(&st.issued[d]),
                      atomic_load(&st.completed[d]));
    }
    for (int i = 0; i < NVCPUS; i++) {
        Vcpu *v = &st.vcpu[i];

        fprintf(stderr, "stress: %s: %u batches, %u resets, %u BAR moves\n",
                v->name, v->batches, v->resets, v->bar_moves);
        ck_assert_uint_gt(v->batches, 0);
        ck_assert_uint_gt(v->resets, 0);
        ck_assert_uint_gt(v->bar_moves, 0);
    }
    fprintf(stderr, "stress: %u config reads by the prober, %.2f s\n", probes,
            (clock_ns() - t0) / 1e9);
}
END_TEST

Suite *stress_suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("vcpus");

    tcase_add_checked_fixture(tc, stress_setup, stress_teardown);
    tcase_add_test(tc, test_stress);
    tcase_set_timeout(tc, 30 + stress_seconds());
    suite_add_tcase(s, tc);
    return s;
}
