/*
 * Crash consistency: does a completed FLUSH (or FUA write) really cover what
 * the guest was promised, whatever the moment power fails?
 *
 * Each run drives a disk opened as "logwrites:PATH" (block/logwrites.c)
 * with a workload of random writes, flushes and FUA writes through a real
 * device model, as a guest would: AHCI with and without NCQ, virtio-blk on
 * the main loop, on an IOThread and with four queues over both. The test
 * writes down, on the log's clock, when the guest issued each request and
 * when it saw it complete. Afterwards it cuts power at a few hundred ticks
 * of the run; at each, blk_log_replay() builds what the disk could hold
 * (nothing in doubt, everything, torn writes, a seeded mix) and the image
 * is checked against the promise, in two views:
 *
 *   guest   a write the guest saw complete before it issued a FLUSH that
 *           it then saw complete, or a FUA write it saw complete, holds its
 *           data (or that of a write issued after it completed)
 *   device  the same rule over blk_submit() and the completion callback,
 *           i.e. the block layer's own promise to the device
 *
 * Every sector a workload writes is tagged with the write's number and LBA
 * and filled from them, so an image tells which write each sector came from,
 * and a corrupt or misplaced sector shows as such.
 *
 * How it can fail (test_lying_disk_is_caught and
 * test_checker_on_hand_made_logs): a hand-made log where a FLUSH
 * completes before a write it covers is stable, one where a write is
 * reported complete before the engine finished it, and live runs with a
 * test-only disk bug (blk_log_inject_bug(): a FLUSH that does nothing, a
 * disk that ignores FUA) are all caught.
 *
 * Images live in $MINIVMM_TEST_DIR or /var/tmp (cache=none needs O_DIRECT,
 * which tmpfs lacks).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "block/logwrites.h"
#include "tests/unit/ahci-machine.h"
#include "tests/unit/suites.h"
#include "tests/unit/vblk-machine.h"
#include "util/clock.h"

#define SECTOR         BLK_LOG_SECTOR
#define REGION_SECTORS 256 /* the workload writes the disk's first 128 KiB */
#define REGION_BYTES   (REGION_SECTORS * SECTOR)
#define MAX_SECTORS    8 /* per write */
#define MAX_OPS        400
#define MAX_INFLIGHT   8
#define RANDOM_CUTS    150
#define NEVER          UINT64_MAX
#define TAG_MAGIC      0x6761746873617263ULL /* "crashtag" */

/* One guest request, in the clock of the log. */
typedef struct CrashOp {
    bool flush, fua;
    uint64_t lba;
    uint32_t nsect;
    uint64_t submit, done; /* done: NEVER if not seen */
} CrashOp;

/* A view of the run: ops[id] for id 1..nops (id 0 is the initial image). */
typedef struct CrashView {
    CrashOp ops[MAX_OPS + 1];
    unsigned nops;
} CrashView;

typedef struct CrashTally {
    unsigned cuts, images, failures;
    char first[320]; /* the first failure, for the message */
} CrashTally;

static CrashView guest, device;
static uint8_t initial[REGION_BYTES];
static uint64_t rng;

static uint64_t next_random(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- Tagged sectors ------------------------------------------------------ */

static uint64_t tag_word(uint32_t id, uint64_t lba, unsigned i)
{
    uint64_t x = (id * 0x9e3779b97f4a7c15ULL) ^ (lba << 20) ^ i;

    x ^= x >> 31;
    return x * 0xbf58476d1ce4e5b9ULL;
}

static void tag_fill(uint8_t *p, uint32_t id, uint64_t lba)
{
    uint64_t w[SECTOR / 8];

    w[0] = TAG_MAGIC;
    w[1] = id;
    w[2] = lba;
    for (unsigned i = 3; i < SECTOR / 8; i++) {
        w[i] = tag_word(id, lba, i);
    }
    memcpy(p, w, SECTOR);
}

/* The write whose data sector @lba holds; 0: the initial data; -1: junk. */
static int64_t tag_read(const uint8_t *p, uint64_t lba)
{
    uint64_t w[SECTOR / 8];

    memcpy(w, p, SECTOR);
    if (w[0] != TAG_MAGIC) {
        return memcmp(p, initial + lba * SECTOR, SECTOR) ? -1 : 0;
    }
    if (w[2] != lba || w[1] == 0 || w[1] > MAX_OPS) {
        return -1;
    }
    for (unsigned i = 3; i < SECTOR / 8; i++) {
        if (w[i] != tag_word((uint32_t)w[1], lba, i)) {
            return -1;
        }
    }
    return (int64_t)w[1];
}

/* ---- The check ----------------------------------------------------------- */

/*
 * Is @image what a disk may hold after a cut at @cut, by @v's promises?
 * need[s] is the latest submission among the writes to sector s that must
 * have survived: the sector must hold one of them, or a write that was
 * issued before the cut and not completed before that one was issued.
 */
static bool check_image(const CrashView *v, uint64_t cut, const uint8_t *image,
                        char *why, size_t len)
{
    uint64_t covered = 0, need[REGION_SECTORS] = {0};
    unsigned needed_by[REGION_SECTORS] = {0};

    for (unsigned id = 1; id <= v->nops; id++) {
        const CrashOp *op = &v->ops[id];

        if (op->flush && op->done < cut && op->submit > covered) {
            covered = op->submit;
        }
    }
    for (unsigned id = 1; id <= v->nops; id++) {
        const CrashOp *op = &v->ops[id];

        if (op->flush || op->done >= cut || !(op->fua || op->done < covered)) {
            continue;
        }
        for (uint64_t s = op->lba; s < op->lba + op->nsect; s++) {
            if (op->submit > need[s]) {
                need[s] = op->submit;
                needed_by[s] = id;
            }
        }
    }
    for (uint64_t s = 0; s < REGION_SECTORS; s++) {
        int64_t id;

        if (!need[s]) {
            continue;
        }
        id = tag_read(image + s * SECTOR, s);
        if (id <= 0 || v->ops[id].submit >= cut || v->ops[id].done < need[s]) {
            snprintf(why, len,
                     "cut at tick %llu: sector %llu holds %s %lld, but write "
                     "%u (submitted at %llu, done at %llu) was durable",
                     (unsigned long long)cut, (unsigned long long)s,
                     id < 0 ? "junk" : "write", (long long)id, needed_by[s],
                     (unsigned long long)v->ops[needed_by[s]].submit,
                     (unsigned long long)v->ops[needed_by[s]].done);
            return false;
        }
    }
    return true;
}

/*
 * The device's view, from the log's REQ_SUBMIT and REQ_DONE entries: the
 * tags in each write's data give its number, so the two views share them.
 */
static void device_view(BlockLog *log, CrashView *v)
{
    size_t n = blk_log_count(log);
    unsigned *id_of = calloc(n + 2, sizeof(*id_of));
    unsigned next_flush = MAX_OPS;

    ck_assert_ptr_nonnull(id_of);
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const BlockLogEntry *e = blk_log_entry(log, i);
        int64_t id;

        if (e->req > n) {
            continue;
        }
        if (e->event == BLOG_REQ_SUBMIT && e->op == BLOCK_OP_WRITE) {
            id = tag_read(e->data, e->offset / SECTOR);
            ck_assert_int_gt(id, 0);
            v->ops[id] = (CrashOp){.fua = e->fua,
                                   .lba = e->offset / SECTOR,
                                   .nsect = (uint32_t)(e->bytes / SECTOR),
                                   .submit = e->tick,
                                   .done = NEVER};
            id_of[e->req] = (unsigned)id;
            if ((unsigned)id > v->nops) {
                v->nops = (unsigned)id;
            }
        } else if (e->event == BLOG_REQ_SUBMIT && e->op == BLOCK_OP_FLUSH) {
            /* Flushes carry no tag: number them from the top down. */
            ck_assert_uint_gt(next_flush, 0);
            v->ops[next_flush] =
                (CrashOp){.flush = true, .submit = e->tick, .done = NEVER};
            id_of[e->req] = next_flush--;
        } else if (e->event == BLOG_REQ_DONE && id_of[e->req] && e->ret == 0) {
            v->ops[id_of[e->req]].done = e->tick;
        }
    }
    v->nops = MAX_OPS;
    free(id_of);
}

static void tally_image(CrashTally *t, const CrashView *v, uint64_t cut,
                        const uint8_t *image)
{
    char why[256];

    t->images++;
    if (!check_image(v, cut, image, why, sizeof(why))) {
        if (!t->failures++) {
            snprintf(t->first, sizeof(t->first), "%s view: %s",
                     v == &guest ? "guest" : "device", why);
        }
    }
}

/* Cut power at @cut: four images, each checked in both views. */
static void check_cut(BlockLog *log, uint64_t cut, CrashTally *t)
{
    static const BlockLogKeep keeps[] = {BLOG_KEEP_NONE, BLOG_KEEP_ALL,
                                         BLOG_KEEP_TORN, BLOG_KEEP_RANDOM};
    static uint8_t image[REGION_BYTES];

    t->cuts++;
    for (unsigned k = 0; k < sizeof(keeps) / sizeof(keeps[0]); k++) {
        blk_log_replay(log, cut, keeps[k], next_random(), initial, image, 0,
                       REGION_BYTES);
        tally_image(t, &guest, cut, image);
        if (device.nops) {
            tally_image(t, &device, cut, image);
        }
    }
}

/*
 * Cut at random ticks, and just after each FLUSH or FUA write the guest saw
 * complete (where a promise starts to hold), and at the end.
 */
static void check_run(BlockLog *log, CrashTally *t)
{
    uint64_t last = blk_log_tick(log);

    for (unsigned i = 0; i < RANDOM_CUTS; i++) {
        check_cut(log, 1 + next_random() % last, t);
    }
    for (unsigned id = 1; id <= guest.nops; id++) {
        const CrashOp *op = &guest.ops[id];

        if ((op->flush || op->fua) && op->done != NEVER) {
            check_cut(log, op->done + 1, t);
        }
    }
    check_cut(log, last + 1, t);
}

/* ---- The workload -------------------------------------------------------- */

typedef struct Workload {
    BlockLog *log;
    unsigned nops;      /* to issue */
    unsigned flush_pct; /* of requests */
    unsigned fua_pct;   /* of writes; 0 where the device has no FUA */
    unsigned inflight[MAX_INFLIGHT + 1]; /* ids of writes in flight */
} Workload;

static bool overlaps_inflight(const Workload *w, uint64_t lba, uint32_t n)
{
    for (unsigned i = 0; i < MAX_INFLIGHT; i++) {
        const CrashOp *op = &guest.ops[w->inflight[i]];

        if (w->inflight[i] && !op->flush && lba < op->lba + op->nsect &&
            op->lba < lba + n) {
            return true;
        }
    }
    return false;
}

/*
 * The next request: a flush if @flush, else a write of 1..8 sectors that
 * overlaps no write in flight (the order of overlapping concurrent writes is
 * the guest's own problem, and would make "which data is newer" ambiguous). Its
 * data is tagged into guest RAM at @buf. Returns the id; 0 if no range was
 * free.
 */
static unsigned next_op(Workload *w, bool flush, uint8_t *buf)
{
    unsigned id = guest.nops + 1;
    CrashOp *op = &guest.ops[id];

    ck_assert_uint_le(id, MAX_OPS);
    if (flush) {
        *op = (CrashOp){.flush = true, .done = NEVER};
    } else {
        uint32_t n = 1 + next_random() % MAX_SECTORS;
        uint64_t lba;
        int tries = 0;

        do {
            if (++tries > 20) {
                return 0;
            }
            lba = next_random() % (REGION_SECTORS - n + 1);
        } while (overlaps_inflight(w, lba, n));
        *op = (CrashOp){.fua = next_random() % 100 < w->fua_pct,
                        .lba = lba,
                        .nsect = n,
                        .done = NEVER};
        for (uint32_t s = 0; s < n; s++) {
            tag_fill(buf + s * SECTOR, id, lba + s);
        }
    }
    guest.nops = id;
    return id;
}

static void op_issued(Workload *w, unsigned slot, unsigned id)
{
    guest.ops[id].submit = blk_log_tick(w->log);
    w->inflight[slot] = id;
}

static void op_seen_done(Workload *w, unsigned slot)
{
    guest.ops[w->inflight[slot]].done = blk_log_tick(w->log);
    w->inflight[slot] = 0;
}

/* ---- AHCI ---------------------------------------------------------------- */

/*
 * NCQ: up to 8 queued writes (FUA or not) in flight; a FLUSH CACHE EXT,
 * which may not be queued, waits until they are all done, as in Linux.
 * Without NCQ: up to 4 WRITE DMA (FUA) EXT and FLUSH CACHE EXT commands in
 * PxCI at once, which the port runs one after another.
 */
static void ahci_workload(Workload *w, bool ncq)
{
    QAhci *a = &am.a;
    unsigned depth = ncq ? MAX_INFLIGHT : 4, issued = 0, busy = 0;
    uint64_t buf[MAX_INFLIGHT];
    bool alone = false;      /* NCQ: a non-queued FLUSH is running */
    bool flush_next = false; /* NCQ: waiting for the queue to drain */

    am_start_port(a, 0);
    for (unsigned i = 0; i < depth; i++) {
        buf[i] = qos_alloc(&am.q, MAX_SECTORS * SECTOR, 4096);
    }
    while (issued < w->nops || busy) {
        uint32_t pending;

        for (unsigned s = 0; s < depth && issued < w->nops && !alone; s++) {
            uint8_t fis[20];
            QAhciPrd prd;
            unsigned id;
            CrashOp *op;

            if (w->inflight[s]) {
                continue;
            }
            flush_next = flush_next || next_random() % 100 < w->flush_pct;
            if (flush_next && ncq && busy) {
                break; /* a non-queued command waits for the queue */
            }
            id = next_op(w, flush_next, am_ram(buf[s]));
            if (!id) {
                break;
            }
            flush_next = false;
            op = &guest.ops[id];
            if (op->flush) {
                qahci_fis_h2d(fis, QATA_FLUSH_CACHE_EXT, 0, 0, 0);
                qahci_slot_prepare(a, 0, (int)s, fis, false, 0, NULL, 0);
            } else {
                qahci_prds(&prd, 1, buf[s], op->nsect * SECTOR,
                           MAX_SECTORS * SECTOR);
                if (ncq) {
                    qahci_fis_ncq(fis, QATA_WRITE_FPDMA_QUEUED, (uint8_t)s,
                                  op->lba, (uint16_t)op->nsect, op->fua);
                } else {
                    qahci_fis_h2d(fis,
                                  op->fua ? QATA_WRITE_DMA_FUA_EXT
                                          : QATA_WRITE_DMA_EXT,
                                  0, op->lba, (uint16_t)op->nsect);
                }
                qahci_slot_prepare(a, 0, (int)s, fis, true, 0, &prd, 1);
            }
            op_issued(w, s, id);
            qahci_issue(a, 0, 1u << s, ncq && !op->flush);
            issued++;
            busy |= 1u << s;
            alone = ncq && op->flush;
        }
        pending = qahci_px_rreg(a, 0, QAHCI_PX_CI) |
                  qahci_px_rreg(a, 0, QAHCI_PX_SACT);
        for (unsigned s = 0; s < depth; s++) {
            if ((busy & (1u << s)) && !(pending & (1u << s))) {
                op_seen_done(w, s);
                busy &= ~(1u << s);
            }
        }
        if (!busy) {
            alone = false;
        }
        ck_assert_uint_eq(qahci_port_clear_is(a, 0) & QAHCI_PX_IS_ERRORS, 0);
    }
}

/* ---- virtio-blk ---------------------------------------------------------- */

/* Up to 8 writes and flushes in flight over @nq queues, chosen at random. */
static void vblk_workload(Workload *w, QVirtioBlk *b, unsigned nq)
{
    QVirtioBlkReq req[MAX_INFLIGHT];
    unsigned qi_of[MAX_INFLIGHT] = {0}, issued = 0, busy = 0;
    uint64_t buf[MAX_INFLIGHT];
    int64_t progress_ns = clock_ns();

    for (unsigned i = 0; i < MAX_INFLIGHT; i++) {
        buf[i] = vm_alloc(MAX_SECTORS * SECTOR);
    }
    while (issued < w->nops || busy) {
        for (unsigned s = 0; s < MAX_INFLIGHT && issued < w->nops; s++) {
            unsigned id;
            CrashOp *op;

            if (w->inflight[s]) {
                continue;
            }
            id = next_op(w, next_random() % 100 < w->flush_pct,
                         gm_ptr(&vm.ram, buf[s], MAX_SECTORS * SECTOR));
            if (!id) {
                break;
            }
            op = &guest.ops[id];
            qi_of[s] = (unsigned)(next_random() % nq);
            req[s] = (QVirtioBlkReq){
                .type = op->flush ? VIRTIO_BLK_T_FLUSH : VIRTIO_BLK_T_OUT,
                .sector = op->lba,
                .data = op->flush ? 0 : buf[s],
                .len = op->nsect * SECTOR,
            };
            op_issued(w, s, id); /* before the device can see it */
            qvirtio_blk_submit(b, qi_of[s], &req[s]);
            qvirtio_blk_kick(b, qi_of[s]);
            issued++;
            busy++;
        }
        for (unsigned qi = 0; qi < nq; qi++) {
            if (qvirtqueue_poll_used(&b->vq[qi])) {
                progress_ns = clock_ns();
            }
        }
        ck_assert_msg(clock_ns() - progress_ns < 10 * NS_PER_S,
                      "virtio-blk: %u requests stuck", busy);
        for (unsigned s = 0; s < MAX_INFLIGHT; s++) {
            QVirtQueue *vq = &b->vq[qi_of[s]];

            if (!w->inflight[s] || !vq->done[req[s].head]) {
                continue;
            }
            /*
             * Not qvirtio_blk_wait(): it polls again, and a head it frees
             * could be reused before its owner here saw its mark.
             */
            op_seen_done(w, s);
            busy--;
            vq->done[req[s].head] = false;
            qos_memread(&vm.q,
                        qvirtio_blk_status_addr(b, qi_of[s], req[s].head),
                        &req[s].status, 1);
            ck_assert_uint_eq(req[s].status, VIRTIO_BLK_S_OK);
        }
    }
}

/* ---- The configurations -------------------------------------------------- */

typedef struct CrashDevice {
    const char *name;
    bool ahci, ncq;
    unsigned nq; /* virtio-blk: queues */
    int owner;   /* virtio-blk, one queue: ON_MAIN or ON_IO0 */
} CrashDevice;

static const CrashDevice devices[] = {
    {"ahci ncq", true, true, 0, 0},
    {"ahci no-ncq", true, false, 0, 0},
    {"virtio-blk main loop", false, false, 1, ON_MAIN},
    {"virtio-blk iothread", false, false, 1, ON_IO0},
    {"virtio-blk 4 queues", false, false, 4, 0}, /* main, io0, io1, io0 */
};

/* Both engines, both cache modes. */
static const char *const engines[] = {
    "aio=io_uring",
    "aio=io_uring,cache=none",
    "aio=threads",
    "aio=threads,cache=none",
};

#define NDEVICES (int)(sizeof(devices) / sizeof(devices[0]))
#define NENGINES (int)(sizeof(engines) / sizeof(engines[0]))

/* Run @c's workload on @options with @bug injected; tally its cuts. */
static void crash_run(const CrashDevice *c, const char *options,
                      BlockLogBug bug, uint64_t seed, CrashTally *t)
{
    Workload w = {.nops = 300, .flush_pct = 12, .fua_pct = c->ahci ? 20 : 0};
    BlockBackend *blk;
    int fd;

    memset(&guest, 0, sizeof(guest));
    memset(t, 0, sizeof(*t));
    rng = seed;
    if (c->ahci) {
        am_setup_disk(BLK_LOG_PREFIX, options);
        blk = am.blk[0];
        fd = am.img_fd[0];
    } else {
        VmOptions o = {
            .num_queues = c->nq,
            .owners_set = true,
            .owner = {c->nq > 1 ? ON_MAIN : c->owner, ON_IO0, ON_IO1, ON_IO0},
            .blk_scheme = BLK_LOG_PREFIX,
            .blk_options = options};

        vm_start(&o);
        blk = vm.blk[0];
        fd = vm.img_fd[0];
    }
    ck_assert_int_eq(pread(fd, initial, REGION_BYTES, 0), REGION_BYTES);
    w.log = blk_log_get(blk);
    ck_assert_ptr_nonnull(w.log);
    blk_log_inject_bug(w.log, bug);

    if (c->ahci) {
        ahci_workload(&w, c->ncq);
        am_teardown();
    } else {
        QVirtioBlk b;
        QVirtioBlkOptions d = {.num_queues = c->nq,
                               .features =
                                   1ull << VIRTIO_BLK_F_FLUSH |
                                   (c->nq > 1 ? 1ull << VIRTIO_BLK_F_MQ : 0)};

        vm_driver(&b, 0, &d);
        vblk_workload(&w, &b, c->nq);
        vm_stop();
    }
    device_view(w.log, &device);
    check_run(w.log, t);
    blk_log_unref(w.log);
}

START_TEST(test_promises_hold_at_every_cut)
{
    const CrashDevice *c = &devices[_i / NENGINES];
    const char *options = engines[_i % NENGINES];
    CrashTally t;

    crash_run(c, options, BLOG_BUG_NONE, 0x5eed0000u + (uint64_t)_i, &t);
    fprintf(stderr, "crash: %s, %s: %u cuts, %u images, %u broken\n", c->name,
            options, t.cuts, t.images, t.failures);
    ck_assert_msg(t.failures == 0, "%s, %s: %s", c->name, options, t.first);
}
END_TEST

/*
 * A disk that lies: FLUSH completes at once without flushing (AHCI, NCQ,
 * io_uring), or FUA is ignored. Some cut after a flush or FUA write must
 * then find a durable write missing, in both views.
 */
START_TEST(test_lying_disk_is_caught)
{
    static const BlockLogBug bugs[] = {BLOG_BUG_FLUSH_NOOP,
                                       BLOG_BUG_FUA_IGNORED};
    CrashTally t;

    crash_run(&devices[0], engines[0], bugs[_i], 0xbad0000u + (uint64_t)_i, &t);
    fprintf(stderr, "crash: injected %s: %u of %u images caught, e.g. %s\n",
            _i ? "FUA ignored" : "FLUSH no-op", t.failures, t.images, t.first);
    ck_assert_uint_gt(t.failures, 0);
}
END_TEST

/* ---- Checking the checker with logs made by hand ------------------------- */

static uint8_t hand_data[2 * SECTOR];

/* An event of the write (request 1, sectors 0-1) or the flush (request 2). */
static uint64_t hand_event(BlockLog *log, BlockLogEvent ev, BlockOp op,
                           uint64_t req)
{
    BlockLogEntry e = {.event = ev, .op = op, .req = req};

    if (op == BLOCK_OP_WRITE) {
        e.bytes = sizeof(hand_data);
        if (ev == BLOG_REQ_SUBMIT || ev == BLOG_ENGINE_SUBMIT) {
            e.data = hand_data;
        }
    }
    return blk_log_add(log, &e);
}

/*
 * Hand-made logs, listed as the events happen. W = the write, F = the flush;
 * rs/es/ed/rd = request submitted, engine submitted, engine done, request
 * done. The guest issues a request just before rs and sees it done just
 * after rd.
 */
typedef struct HandLog {
    const char *name;
    const char *events; /* "Wrs Wes Wed Wrd Frs Fes Fed Frd" */
    bool broken;
} HandLog;

static const HandLog hand_logs[] = {
    {"write, then flush: kept", "Wrs Wes Wed Wrd Frs Fes Fed Frd", false},
    {"write after the flush began: not promised",
     "Frs Fes Wrs Wes Wed Wrd Fed Frd", false},
    /* The device completes the FLUSH without the engine flushing. */
    {"flush completed before the write it covers was stable",
     "Wrs Wes Wed Wrd Frs Frd", true},
    /* The write completes to the device before the engine finished it. */
    {"write reported complete before the engine did",
     "Wrs Wes Wrd Frs Fes Fed Frd Wed", true},
    /* The flush completes to the device before the engine's flush. */
    {"flush reported complete before the engine's",
     "Wrs Wes Wed Wrd Frs Fes Frd Fed", true},
};

START_TEST(test_checker_on_hand_made_logs)
{
    const HandLog *h = &hand_logs[_i];
    BlockLog *log = blk_log_new();
    char copy[128], *tok, *save = NULL;
    CrashTally t = {0};
    uint64_t last;

    tag_fill(hand_data, 1, 0);
    tag_fill(hand_data + SECTOR, 1, 1);
    memset(initial, 0, sizeof(initial));
    memset(&guest, 0, sizeof(guest));
    guest.nops = 2;
    guest.ops[1] = (CrashOp){.lba = 0, .nsect = 2, .done = NEVER};
    guest.ops[2] = (CrashOp){.flush = true, .done = NEVER};
    snprintf(copy, sizeof(copy), "%s", h->events);
    for (tok = strtok_r(copy, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        unsigned id = tok[0] == 'W' ? 1 : 2;
        BlockOp op = id == 1 ? BLOCK_OP_WRITE : BLOCK_OP_FLUSH;
        BlockLogEvent ev = !strcmp(tok + 1, "rs")   ? BLOG_REQ_SUBMIT
                           : !strcmp(tok + 1, "es") ? BLOG_ENGINE_SUBMIT
                           : !strcmp(tok + 1, "ed") ? BLOG_ENGINE_DONE
                                                    : BLOG_REQ_DONE;

        if (ev == BLOG_REQ_SUBMIT) {
            guest.ops[id].submit = blk_log_tick(log);
        }
        hand_event(log, ev, op, id);
        if (ev == BLOG_REQ_DONE) {
            guest.ops[id].done = blk_log_tick(log);
        }
    }
    device_view(log, &device);
    rng = 1;
    last = blk_log_tick(log);
    for (uint64_t cut = 1; cut <= last; cut++) {
        check_cut(log, cut, &t);
    }
    blk_log_unref(log);
    if (h->broken) {
        ck_assert_msg(t.failures > 0, "%s: not caught", h->name);
    } else {
        ck_assert_msg(t.failures == 0, "%s: %s", h->name, t.first);
    }
}
END_TEST

Suite *crash_suite(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("cuts");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_promises_hold_at_every_cut, 0,
                        NDEVICES * NENGINES);
    tcase_add_loop_test(tc, test_lying_disk_is_caught, 0, 2);
    tcase_add_loop_test(tc, test_checker_on_hand_made_logs, 0,
                        (int)(sizeof(hand_logs) / sizeof(hand_logs[0])));
    suite_add_tcase(s, tc);
    return s;
}
