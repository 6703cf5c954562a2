/*
 * virtio-blk: the modern virtio-blk function from the guest's side, polled
 * (MSI-X is msi.c's). Capabilities found in config space, VERSION_1 and
 * FLUSH negotiated, one split queue; writes then reads back (several
 * requests per kick) with a data check, FLUSH, GET_ID, and the status
 * bytes of requests that must fail: past the end, and an unknown type.
 * The image size comes from the runner as virtio0-size=BYTES; the serial
 * GET_ID must return, if the config gives one, as virtio0-serial=S.
 */
#include <linux/virtio_config.h>

#include "firmware/tests/lib/data.h"
#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/virtio-blk.h"

#define SECTOR    512
#define IO_SECTOR 2048
#define IO_REQS   4
#define IO_BYTES  (16 * 1024)
#define WAIT_MS   5000
#define T_UNKNOWN 0x7f /* no such request type */

static VirtioBlk blk;
static uint8_t wbuf[IO_REQS][IO_BYTES] ALIGNED(4096);
static uint8_t rbuf[IO_REQS][IO_BYTES] ALIGNED(4096);
static char id[VIRTIO_BLK_ID_BYTES + 1] ALIGNED(64);
static uint64_t salt;

static void check_device(VirtioBlk *b)
{
    uint64_t want;

    report(vblk_status(b) ==
               (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK),
           "status 0x%x: ACKNOWLEDGE DRIVER FEATURES_OK DRIVER_OK",
           vblk_status(b));
    report(b->features & (1ull << VIRTIO_BLK_F_FLUSH),
           "features 0x%lx offered, FLUSH negotiated",
           (unsigned long)b->device_features);
    report(b->qsize > 0 && (b->max_qsize & (b->max_qsize - 1)) == 0,
           "queue 0: %u entries offered, %u used", b->max_qsize, b->qsize);
    report(b->notify_mult > 0, "notify_off_multiplier %u", b->notify_mult);
    if (dt_bootarg_u64("virtio0-size", &want)) {
        report(b->capacity * SECTOR == want,
               "capacity %lu sectors = image size %lu bytes",
               (unsigned long)b->capacity, (unsigned long)want);
    } else {
        report_skip("capacity %lu sectors: no virtio0-size= in bootargs",
                    (unsigned long)b->capacity);
    }
}

static void run_batch(VirtioBlk *b, uint32_t type, uint8_t (*bufs)[IO_BYTES],
                      const char *what)
{
    VblkReq r[IO_REQS];
    int ok = 0;

    for (int i = 0; i < IO_REQS; i++) {
        r[i] = (VblkReq){.type = type,
                         .sector = IO_SECTOR + i * (IO_BYTES / SECTOR),
                         .data = bufs[i],
                         .len = IO_BYTES};
        vblk_submit(b, &r[i]);
    }
    vblk_kick(b);
    for (int i = 0; i < IO_REQS; i++) {
        ok +=
            vblk_wait(b, &r[i], WAIT_MS) == 0 && r[i].status == VIRTIO_BLK_S_OK;
    }
    report(ok == IO_REQS, "%s: %d x %d KiB in one kick, %d with status OK",
           what, IO_REQS, IO_BYTES / 1024, ok);
    if (type == VIRTIO_BLK_T_IN) {
        /* used.len counts what the device wrote: data and status byte. */
        report(r[0].used_len == IO_BYTES + 1,
               "used.len %u for a %u-byte "
               "read",
               r[0].used_len, IO_BYTES);
    }
}

static void test_rw(VirtioBlk *b)
{
    uint64_t bad = UINT64_MAX;
    uint8_t isr;

    for (int i = 0; i < IO_REQS; i++) {
        data_fill(wbuf[i], (uint64_t)IO_SECTOR * SECTOR + i * IO_BYTES,
                  IO_BYTES, salt);
    }
    (void)readb(b->isr); /* start from a clear ISR */
    run_batch(b, VIRTIO_BLK_T_OUT, wbuf, "write");
    isr = readb(b->isr);
    report(isr & 1,
           "ISR queue bit set without MSI-X (0x%x), then clear "
           "(0x%x)",
           isr, readb(b->isr));
    memset(rbuf, 0xa5, sizeof(rbuf));
    run_batch(b, VIRTIO_BLK_T_IN, rbuf, "read");
    for (int i = 0; i < IO_REQS && bad == UINT64_MAX; i++) {
        bad = data_check(rbuf[i], (uint64_t)IO_SECTOR * SECTOR + i * IO_BYTES,
                         IO_BYTES, salt);
    }
    report(bad == UINT64_MAX,
           "read back what was written (first bad word "
           "at disk offset 0x%lx)",
           (unsigned long)bad);
}

static void test_other_requests(VirtioBlk *b)
{
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    int st;

    st = vblk_rw(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
    report(st == VIRTIO_BLK_S_OK, "FLUSH: status %d", st);

    memset(id, 0, sizeof(id));
    st = vblk_rw(b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES);
    if (dt_bootarg_str("virtio0-serial", serial, sizeof(serial))) {
        report(st == VIRTIO_BLK_S_OK && !strcmp(id, serial),
               "GET_ID: status %d, \"%s\" (\"%s\" expected)", st, id, serial);
    } else {
        report(st == VIRTIO_BLK_S_OK, "GET_ID: status %d, \"%s\"", st, id);
    }

    st = vblk_rw(b, VIRTIO_BLK_T_IN, b->capacity, rbuf[0], SECTOR);
    report(st == VIRTIO_BLK_S_IOERR,
           "read at the end (sector %lu): status "
           "%d, IOERR expected",
           (unsigned long)b->capacity, st);

    st = vblk_rw(b, T_UNKNOWN, 0, rbuf[0], SECTOR);
    report(st == VIRTIO_BLK_S_UNSUPP,
           "request type 0x%x: status %d, UNSUPP "
           "expected",
           T_UNKNOWN, st);

    report(b->num_free == b->qsize,
           "every descriptor returned (%u of %u "
           "free)",
           b->num_free, b->qsize);
}

int main(const void *fdt)
{
    (void)fdt;
    salt = rdtsc() | 1;
    report_prefix_push("virtio-blk");
    if (!report(vblk_init(&blk, 0, NULL) == 0,
                "device found and initialised (common cfg at 0x%lx)",
                (unsigned long)blk.common)) {
        return report_summary();
    }
    check_device(&blk);
    test_rw(&blk);
    test_other_requests(&blk);
    return report_summary();
}
