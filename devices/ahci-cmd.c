/*
 * The AHCI command engine: from a PxCI bit to the block layer and back.
 *
 * A command is read from guest RAM exactly once (header, command FIS, PRD
 * entries; ahci-fis.c), checked, and turned into a BlockRequest whose
 * iovec points straight into guest RAM. Anything wrong with it fails the
 * command with TFES and the error in PxTFD, one rate-limited log line, and
 * a halted port until software clears PxCMD.ST, as AHCI 1.3.1, 6.2.2
 * describes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ahci-int.h"
#include "util/log.h"
#include "util/sandbox.h"
#include "util/trace.h"

/* For log lines: every command the model knows has its name. */
static const char *ahci_cmd_name(uint8_t command)
{
    const char *name = ata_command_name(command);

    return name ? name : "ATA command";
}

/* ---- Commands without the disk ----------------------------------------------
 */

/* Finish @slot now (inside the PxCI write): status, FIS, interrupt. */
static void ahci_cmd_done_now(AhciPort *p, int slot, uint8_t error,
                              uint32_t is_bits, uint16_t count, uint64_t lba,
                              uint8_t device)
{
    uint64_t id = p->slots[slot].trace_id;

    TRACE(AHCI_DONE, id, .a = {p->index, slot, error << 8 | ATA_STAT_READY},
          .s = {"d2h"});
    trace_set_current_id(id); /* for the interrupt */
    p->tfd = (uint32_t)error << 8 | ATA_STAT_READY;
    if (ahci_port_write_d2h(p, count, lba, device)) {
        is_bits |= AHCI_PX_IS_DHRS;
    }
    p->ci &= ~(1u << slot);
    ahci_port_raise(p, is_bits);
    trace_set_current_id(0);
}

static void ahci_cmd_identify(AhciPort *p, int slot, const AhciCmd *c)
{
    AhciSlot *sl = &p->slots[slot];
    uint16_t id[256];
    const uint8_t *src = (const uint8_t *)id;
    uint32_t is_bits = 0;
    uint32_t prdbc = sizeof(id);
    int n = ahci_map_prdt(p, sl, c, sizeof(id));

    if (!n) {
        return;
    }
    ata_identify(&p->ata, id);
    for (int i = 0; i < n; i++) {
        memcpy(sl->iov[i].iov_base, src, sl->iov[i].iov_len);
        src += sl->iov[i].iov_len;
    }
    gm_st32(p->hba->ram, c->hdr_addr + 4, prdbc);
    p->tfd = ATA_STAT_READY;
    if (ahci_write_pio_setup(p, SATA_FIS_I | SATA_FIS_D, p->tfd & 0xff,
                             sizeof(id))) {
        is_bits |= AHCI_PX_IS_PSS;
    }
    ahci_cmd_done_now(p, slot, 0, is_bits | (sl->dps ? AHCI_PX_IS_DPS : 0), 0,
                      0, 0);
}

static void ahci_cmd_set_features(AhciPort *p, int slot, const AhciCmd *c)
{
    uint8_t sub = c->fis[3], count = c->fis[12];

    switch (sub) {
    case ATA_SF_ENABLE_WCACHE:
    case ATA_SF_DISABLE_WCACHE:
        p->ata.write_cache = sub == ATA_SF_ENABLE_WCACHE;
        break;
    case ATA_SF_SET_XFER_MODE:
        if (!ata_xfer_mode_supported(count)) {
            ahci_cmd_fail(p, slot, ATA_ERR_ABRT, 0,
                          "SET FEATURES: transfer mode 0x%02x not supported",
                          count);
            return;
        }
        if (count >= ATA_XFER_MWDMA(0)) {
            p->ata.xfer_mode = count; /* PIO modes leave DMA as it was */
        }
        break;
    default:
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, 0,
                      "SET FEATURES subcommand 0x%02x not supported", sub);
        return;
    }
    ahci_cmd_done_now(p, slot, 0, 0, 0, 0, 0);
}

/*
 * SET MULTIPLE MODE: the DRQ data block of READ/WRITE MULTIPLE, in
 * sectors. 0 turns multiple mode off (ACS-2 on). A block size we do not
 * support aborts the command and turns multiple mode off too, the ATA
 * standards' rule for it.
 */
static void ahci_cmd_set_multiple(AhciPort *p, int slot, const AhciCmd *c)
{
    uint8_t count = c->fis[12];

    if (count > ATA_MAX_MULTIPLE_SECTORS || (count & (count - 1))) {
        p->ata.multiple_sectors = 0;
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, 0,
                      "SET MULTIPLE MODE: %u sectors per block; the disk "
                      "takes powers of two up to %d",
                      count, ATA_MAX_MULTIPLE_SECTORS);
        return;
    }
    p->ata.multiple_sectors = count;
    ahci_cmd_done_now(p, slot, 0, 0, 0, 0, 0);
}

static void ahci_cmd_read_native_max(AhciPort *p, int slot, bool ext)
{
    uint64_t max = p->ata.sectors - 1;

    if (!ext) {
        if (max > ATA_LBA28_MAX) {
            max = ATA_LBA28_MAX;
        }
        ahci_cmd_done_now(p, slot, 0, 0, 0, max & 0xffffff,
                          ATA_DEV_LBA | (max >> 24));
        return;
    }
    ahci_cmd_done_now(p, slot, 0, 0, 0, max, ATA_DEV_LBA);
}

/*
 * A control FIS (C bit clear) carries the device control register. SRST
 * set then cleared is a software reset: the disk answers the second FIS with
 * its signature, as after COMRESET. The HBA clears PxCI once it has sent
 * each FIS (the header's C bit), so no FIS comes back for the first one.
 */
static void ahci_cmd_control(AhciPort *p, int slot, const AhciCmd *c)
{
    p->ci &= ~(1u << slot);
    if (c->fis[15] & ATA_CTL_SRST) {
        p->srst = true;
    } else if (p->srst) {
        ahci_port_reset_device(p);
    }
}

/* ---- Commands for the disk --------------------------------------------------
 */

static void ahci_slot_done(void *opaque, int ret);

static void ahci_slot_submit(AhciPort *p, AhciSlot *sl)
{
    uint32_t bit = 1u << sl->slot;
    int ret;

    sl->busy = true;
    sl->orphaned = false;
    p->in_flight++;
    if (sl->ncq) {
        p->ncq_busy |= bit;
        p->ci &= ~bit; /* the disk has queued it */
        ahci_port_write_ncq_accept(p);
    } else {
        p->busy_slot = sl->slot;
        p->tfd = ATA_STAT_BSY | ATA_STAT_READY;
    }
    sl->req.cb = ahci_slot_done;
    sl->req.opaque = sl;
    sl->req.trace_id = sl->trace_id;
    /* Into the current context: the main one, since we hold the big lock. */
    ret = blk_submit(p->blk, &sl->req);
    if (ret < 0) {
        sl->busy = false;
        p->in_flight--;
        p->ncq_busy &= ~bit;
        p->busy_slot = -1;
        p->ci |= bit;
        ahci_cmd_fail(p, sl->slot, ATA_ERR_ABRT, 0, "blk_submit: %s",
                      strerror(-ret));
    }
}

static void ahci_cmd_flush(AhciPort *p, int slot, uint8_t command)
{
    AhciSlot *sl = &p->slots[slot];

    sl->ncq = false;
    sl->command = command;
    sl->pio_block = 0;
    sl->bytes = 0;
    sl->dps = false;
    sl->req = (BlockRequest){.op = BLOCK_OP_FLUSH};
    ahci_slot_submit(p, sl);
}

/* What a data command's opcode says about its transfer. */
typedef struct AhciRwKind {
    bool ncq, lba48, write, fua;
    bool pio;      /* PIO data-in or data-out rather than DMA */
    bool multiple; /* PIO in DRQ blocks of the SET MULTIPLE MODE size */
} AhciRwKind;

static AhciRwKind ahci_rw_kind(uint8_t command)
{
    switch (command) {
    case ATA_CMD_WRITE_DMA:
        return (AhciRwKind){.write = true};
    case ATA_CMD_READ_DMA_EXT:
        return (AhciRwKind){.lba48 = true};
    case ATA_CMD_WRITE_DMA_EXT:
        return (AhciRwKind){.lba48 = true, .write = true};
    case ATA_CMD_WRITE_DMA_FUA_EXT:
        return (AhciRwKind){.lba48 = true, .write = true, .fua = true};
    case ATA_CMD_READ_FPDMA_QUEUED:
        return (AhciRwKind){.ncq = true, .lba48 = true};
    case ATA_CMD_WRITE_FPDMA_QUEUED:
        return (AhciRwKind){.ncq = true, .lba48 = true, .write = true};
    case ATA_CMD_READ_SECTORS:
        return (AhciRwKind){.pio = true};
    case ATA_CMD_READ_SECTORS_EXT:
        return (AhciRwKind){.pio = true, .lba48 = true};
    case ATA_CMD_WRITE_SECTORS:
        return (AhciRwKind){.pio = true, .write = true};
    case ATA_CMD_WRITE_SECTORS_EXT:
        return (AhciRwKind){.pio = true, .lba48 = true, .write = true};
    case ATA_CMD_READ_MULTIPLE:
        return (AhciRwKind){.pio = true, .multiple = true};
    case ATA_CMD_READ_MULTIPLE_EXT:
        return (AhciRwKind){.pio = true, .multiple = true, .lba48 = true};
    case ATA_CMD_WRITE_MULTIPLE:
        return (AhciRwKind){.pio = true, .multiple = true, .write = true};
    case ATA_CMD_WRITE_MULTIPLE_EXT:
        return (AhciRwKind){
            .pio = true, .multiple = true, .lba48 = true, .write = true};
    default: /* READ DMA */
        return (AhciRwKind){0};
    }
}

/*
 * DMA, NCQ and PIO data commands alike become one block request. PIO moves
 * the data a DRQ block at a time, but those blocks are a conversation
 * between the device and the HBA that software cannot watch: it sees guest
 * RAM, PRDBC, the received-FIS area, PxTFD and PxIS, and looks once PxCI
 * clears or the interrupt comes. So one request for the whole command
 * looks the same as one per block, and ahci_pio_done() leaves the FISes
 * the last block would. (After a failed command, how much of the buffer
 * moved is undefined in ATA either way.)
 */
static void ahci_cmd_rw(AhciPort *p, int slot, const AhciCmd *c)
{
    AhciSlot *sl = &p->slots[slot];
    const uint8_t *f = c->fis;
    uint8_t command = f[2];
    AhciRwKind k = ahci_rw_kind(command);
    bool fua = k.fua;
    uint64_t lba, count;
    int n;

    if (k.ncq) {
        if ((f[12] >> 3) != slot) {
            ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                          "NCQ tag %u issued in slot %d", f[12] >> 3, slot);
            return;
        }
        count = f[3] | f[11] << 8; /* FPDMA: the count is in features */
        fua |= k.write && (f[7] & ATA_DEV_FUA);
    } else if (k.lba48) {
        count = f[12] | f[13] << 8;
    } else {
        if (!(f[7] & ATA_DEV_LBA)) {
            ahci_cmd_fail(p, slot, ATA_ERR_ABRT, 0,
                          "%s: CHS addressing is not supported",
                          ahci_cmd_name(command));
            return;
        }
        count = f[12];
    }
    if (k.multiple && !p->ata.multiple_sectors) {
        ahci_cmd_fail(
            p, slot, ATA_ERR_ABRT, 0,
            "%s: multiple mode is off (SET MULTIPLE MODE 0 or refused)",
            ahci_cmd_name(command));
        return;
    }
    if (count == 0) {
        count = k.lba48 ? 65536 : 256;
    }
    if (k.lba48) {
        lba = (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
              (uint64_t)f[8] << 24 | (uint64_t)f[9] << 32 |
              (uint64_t)f[10] << 40;
    } else {
        lba = (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
              (uint64_t)(f[7] & ATA_DEV_LBA28HI) << 24;
    }
    if (lba > p->ata.sectors || count > p->ata.sectors - lba) {
        /* The first sector that is not there: the disk's end, or @lba. */
        ahci_cmd_fail_at(
            p, slot, ATA_ERR_IDNF, lba > p->ata.sectors ? lba : p->ata.sectors,
            "%s: sectors %llu+%llu are beyond the disk (%llu)",
            ahci_cmd_name(command), (unsigned long long)lba,
            (unsigned long long)count, (unsigned long long)p->ata.sectors);
        return;
    }
    n = ahci_map_prdt(p, sl, c, count * ATA_SECTOR_SIZE);
    if (!n) {
        return;
    }
    /* With the write cache off, a write completes only once it is stable. */
    fua |= k.write && !p->ata.write_cache;

    sl->ncq = k.ncq;
    sl->command = command;
    sl->pio_block = 0;
    if (k.pio) {
        sl->pio_block =
            (k.multiple ? p->ata.multiple_sectors : 1) * ATA_SECTOR_SIZE;
    }
    sl->bytes = count * ATA_SECTOR_SIZE;
    sl->req = (BlockRequest){
        .op = k.write ? BLOCK_OP_WRITE : BLOCK_OP_READ,
        .offset = lba * ATA_SECTOR_SIZE,
        .iov = sl->iov,
        .iovcnt = n,
        .flags = fua ? BLK_REQ_FUA : 0,
    };
    ahci_slot_submit(p, sl);
}

/*
 * DATAPATH 6, the device's half: the block layer completed a slot's request
 * on the main loop thread (big lock held). Post the status FIS, retire the
 * slot from PxCI or PxSACT, then interrupt (DATAPATH 7, in ahci.c).
 */
static void ahci_slot_done(void *opaque, int ret)
{
    static RateLimit io_error_rl;
    AhciSlot *sl = opaque;
    AhciPort *p = sl->port;
    uint32_t bit = 1u << sl->slot;
    uint32_t is_bits = sl->dps ? AHCI_PX_IS_DPS : 0;

    sl->busy = false;
    p->in_flight--;
    if (sl->ncq) {
        p->ncq_busy &= ~bit;
    } else {
        p->busy_slot = -1;
        p->tfd &= ~(uint32_t)ATA_STAT_BSY;
    }
    if (sl->orphaned) {
        sl->orphaned = false; /* stopped or reset meanwhile: nobody waits */
        ahci_port_slot_idle(p);
        return;
    }
    if (ret < 0) {
        log_ratelimited(&io_error_rl, "error",
                        "ahci port %d slot %d: %s of %u bytes failed: %s",
                        p->index, sl->slot, ahci_cmd_name(sl->command),
                        sl->bytes, strerror(-ret));
        if (!sl->ncq) {
            /* The host says only that the request failed: its first sector. */
            ahci_port_set_error(p, sl->slot, ATA_ERR_ABRT, 0,
                                sl->req.offset / ATA_SECTOR_SIZE);
        } else {
            /* The SDB FIS reports the error; the tag stays in PxSACT. */
            p->tfd = ATA_ERR_ABRT << 8 | ATA_STAT_READY | ATA_STAT_ERR;
            p->halted = true;
            ahci_port_set_ccs(p, sl->slot);
            is_bits = AHCI_PX_IS_TFES;
            if (ahci_write_sdb(p, 0)) {
                is_bits |= AHCI_PX_IS_SDBS;
            }
            ahci_port_raise(p, is_bits);
        }
        ahci_port_slot_idle(p);
        return;
    }
    /* After an error, PxTFD keeps it for software to read. */
    if (!p->halted) {
        p->tfd = ATA_STAT_READY;
    }
    TRACE(AHCI_DONE, sl->trace_id, .a = {p->index, sl->slot, p->tfd},
          .s = {sl->ncq         ? "sdb"
                : sl->pio_block ? "pio"
                                : "d2h"});
    if (sl->ncq) {
        if (ahci_write_sdb(p, bit)) {
            is_bits |= AHCI_PX_IS_SDBS;
        }
        p->sact &= ~bit;
    } else {
        gm_st32(p->hba->ram, sl->hdr_addr + 4, sl->bytes);
        if (sl->pio_block) {
            is_bits |= ahci_pio_done(p, sl);
        } else if (ahci_port_write_d2h(p, 0, 0, 0)) {
            is_bits |= AHCI_PX_IS_DHRS;
        }
        p->ci &= ~bit;
    }
    ahci_port_raise(p, is_bits);
    ahci_port_slot_idle(p);
}

/* ---- Dispatch ---------------------------------------------------------------
 */

static bool ahci_cmd_is_ncq(const AhciCmd *c)
{
    return (c->fis[1] & SATA_FIS_H2D_C) &&
           (c->fis[2] == ATA_CMD_READ_FPDMA_QUEUED ||
            c->fis[2] == ATA_CMD_WRITE_FPDMA_QUEUED);
}

/*
 * For the trace only: the FIS's LBA and count fields as a 48-bit command
 * reads them (an NCQ command's count is in the features field). The
 * command itself decodes them properly, in ahci_cmd_rw().
 */
static uint64_t fis_lba48(const uint8_t *f)
{
    return (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
           (uint64_t)f[8] << 24 | (uint64_t)f[9] << 32 | (uint64_t)f[10] << 40;
}

static uint64_t fis_count16(const uint8_t *f)
{
    if (f[2] == ATA_CMD_READ_FPDMA_QUEUED ||
        f[2] == ATA_CMD_WRITE_FPDMA_QUEUED) {
        return f[3] | f[11] << 8;
    }
    return f[12] | f[13] << 8;
}

static void ahci_cmd_start(AhciPort *p, int slot, const AhciCmd *c)
{
    uint8_t command = c->fis[2];
    uint64_t id = trace_take_id();

    TRACE(
        AHCI_CMD, id,
        .a = {p->index, slot, command, fis_lba48(c->fis), fis_count16(c->fis)});
    ahci_port_set_ccs(p, slot);
    p->slots[slot].hdr_addr = c->hdr_addr;
    p->slots[slot].trace_id = id;
    if (!(c->fis[1] & SATA_FIS_H2D_C)) {
        ahci_cmd_control(p, slot, c);
        return;
    }
    switch (command) {
    case ATA_CMD_READ_DMA:
    case ATA_CMD_WRITE_DMA:
    case ATA_CMD_READ_DMA_EXT:
    case ATA_CMD_WRITE_DMA_EXT:
    case ATA_CMD_WRITE_DMA_FUA_EXT:
    case ATA_CMD_READ_FPDMA_QUEUED:
    case ATA_CMD_WRITE_FPDMA_QUEUED:
    case ATA_CMD_READ_SECTORS:
    case ATA_CMD_READ_SECTORS_EXT:
    case ATA_CMD_WRITE_SECTORS:
    case ATA_CMD_WRITE_SECTORS_EXT:
    case ATA_CMD_READ_MULTIPLE:
    case ATA_CMD_READ_MULTIPLE_EXT:
    case ATA_CMD_WRITE_MULTIPLE:
    case ATA_CMD_WRITE_MULTIPLE_EXT:
        ahci_cmd_rw(p, slot, c);
        break;
    case ATA_CMD_SET_MULTIPLE_MODE:
        ahci_cmd_set_multiple(p, slot, c);
        break;
    case ATA_CMD_FLUSH_CACHE:
    case ATA_CMD_FLUSH_CACHE_EXT:
        ahci_cmd_flush(p, slot, command);
        break;
    /*
     * The Power Management feature set (mandatory for a disk, ATA8-ACS
     * 4.15): there is no spindle, so every mode is "active". Linux sends
     * STANDBY IMMEDIATE to each disk at power-off, after its FLUSH CACHE. A
     * drive commits its write cache before it spins down, so standby and
     * sleep flush here too: a guest that skips the FLUSH loses nothing.
     */
    case ATA_CMD_STANDBY_IMMEDIATE:
    case ATA_CMD_STANDBY:
    case ATA_CMD_SLEEP:
        ahci_cmd_flush(p, slot, command);
        break;
    case ATA_CMD_IDLE_IMMEDIATE:
    case ATA_CMD_IDLE:
        ahci_cmd_done_now(p, slot, 0, 0, 0, 0, 0);
        break;
    case ATA_CMD_CHECK_POWER_MODE:
        /* Count = FFh: active or idle (ATA8-ACS 7.8) */
        ahci_cmd_done_now(p, slot, 0, 0, 0xff, 0, 0);
        break;
    case ATA_CMD_IDENTIFY_DEVICE:
        sandbox_test_forbidden_call(); /* tests only: util/sandbox.h */
        ahci_cmd_identify(p, slot, c);
        break;
    case ATA_CMD_SET_FEATURES:
        ahci_cmd_set_features(p, slot, c);
        break;
    case ATA_CMD_READ_NATIVE_MAX:
    case ATA_CMD_READ_NATIVE_MAX_EXT:
        ahci_cmd_read_native_max(p, slot,
                                 command == ATA_CMD_READ_NATIVE_MAX_EXT);
        break;
    case ATA_CMD_EXEC_DEVICE_DIAGNOSTIC:
        ahci_cmd_done_now(p, slot, ATA_ERR_DIAG_PASSED, 0, 1, 1, 0);
        break;
    default:
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, 0,
                      "ATA command 0x%02x not supported", command);
        break;
    }
}

/*
 * DATAPATH 3, continued: PxCI -> command list. Slots go in order. One
 * non-queued command runs at a time and not beside queued ones (SATA
 * forbids the mix): a slot that must wait stops the scan, and the
 * completion that frees the port scans again.
 */
void ahci_port_check_cmds(AhciPort *p)
{
    for (int slot = 0; slot < AHCI_NUM_SLOTS; slot++) {
        AhciSlot *sl = &p->slots[slot];
        AhciCmd c;
        bool ncq;

        if (!(p->cmd & AHCI_PX_CMD_ST) || p->halted || p->draining) {
            return;
        }
        if (!(p->ci & (1u << slot))) {
            continue;
        }
        if (sl->busy && !sl->ncq && !sl->orphaned) {
            continue; /* the non-queued command running now */
        }
        if (!p->blk) {
            ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                          "command issued to a port with no device");
            return;
        }
        if (sl->busy) {
            ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                          "slot issued again while its command is in flight");
            return;
        }
        if (!ahci_cmd_fetch(p, slot, &c)) {
            return;
        }
        ncq = ahci_cmd_is_ncq(&c);
        if (p->busy_slot >= 0 || (!ncq && p->ncq_busy)) {
            return;
        }
        ahci_cmd_start(p, slot, &c);
    }
}

void ahci_port_free_slots(AhciPort *p)
{
    for (int i = 0; i < AHCI_NUM_SLOTS; i++) {
        free(p->slots[i].iov);
        p->slots[i].iov = NULL;
        p->slots[i].iov_cap = 0;
    }
}
