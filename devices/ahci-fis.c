/*
 * AHCI structures in guest memory: the FISes the HBA posts to the
 * received-FIS area, the command it fetches (header, command FIS) and the
 * PRDT it turns into an iovec. Everything read from the guest is read once
 * and checked; a failure becomes device status through ahci_cmd_fail().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ahci-int.h"
#include "util/log.h"

/* ---- FISes to the guest -----------------------------------------------------
 */

static bool ahci_write_rfis(AhciPort *p, unsigned offset, const void *fis,
                            size_t len)
{
    AhciState *s = p->hba;
    uint64_t fb = (uint64_t)p->fbu << 32 | p->fb;

    if (!(p->cmd & AHCI_PX_CMD_FR)) {
        return false;
    }
    /* fb is 256-byte aligned and offset + len <= 256: no wrap. */
    if (gm_write(s->ram, fb + offset, fis, len) < 0) {
        log_guest_error(AHCI_LOG_FMT " port %d: received-FIS area 0x%llx is "
                                     "outside RAM; FIS dropped",
                        AHCI_LOG_ARGS(s), p->index, (unsigned long long)fb);
        return false;
    }
    return true;
}

static void ahci_fis_regs(uint8_t *f, uint16_t count, uint64_t lba,
                          uint8_t device)
{
    f[4] = lba;
    f[5] = lba >> 8;
    f[6] = lba >> 16;
    f[7] = device;
    f[8] = lba >> 24;
    f[9] = lba >> 32;
    f[10] = lba >> 40;
    f[12] = count;
    f[13] = count >> 8;
}

bool ahci_port_write_d2h(AhciPort *p, uint16_t count, uint64_t lba,
                         uint8_t device)
{
    uint8_t f[20] = {SATA_FIS_REG_D2H, SATA_FIS_I, p->tfd & 0xff, p->tfd >> 8};

    ahci_fis_regs(f, count, lba, device);
    return ahci_write_rfis(p, AHCI_RFIS_RFIS, f, sizeof(f));
}

/*
 * A disk takes a queued command by clearing BSY with a Register D2H FIS
 * whose I bit is clear (SATA 3.x, 13.6.4): the FIS lands in the FIS area
 * like any other, and raises no interrupt (PxIS.DHRS is for I set).
 */
void ahci_port_write_ncq_accept(AhciPort *p)
{
    uint8_t f[20] = {SATA_FIS_REG_D2H, 0, p->tfd & 0xff, p->tfd >> 8};

    ahci_write_rfis(p, AHCI_RFIS_RFIS, f, sizeof(f));
}

/*
 * Status is what the device shows while the block is ready to move (DRQ);
 * E_Status is what it shows once the block has moved, which the HBA then
 * puts in PxTFD. The registers carry nothing useful during a transfer
 * (ATA8-ACS leaves them reserved on success), so they are zero.
 */
bool ahci_write_pio_setup(AhciPort *p, uint8_t flags, uint8_t e_status,
                          uint16_t xfer_bytes)
{
    uint8_t f[20] = {SATA_FIS_PIO_SETUP, flags, ATA_STAT_READY | ATA_STAT_DRQ,
                     0};

    f[15] = e_status;
    f[16] = xfer_bytes;
    f[17] = xfer_bytes >> 8;
    return ahci_write_rfis(p, AHCI_RFIS_PSFIS, f, sizeof(f));
}

/*
 * A PIO data command ends as SATA's PIO protocols (the DPIOI and DPIOO
 * states) and AHCI 1.3.1, 5.3 (PIO:Entry, then DR:* or DX:*, then
 * PIO:Update) say: a PIO Setup FIS before each DRQ data block, each copied
 * to the same slot of the received-FIS area, so software only ever sees
 * the last one; PxIS.PSS records that one of them had the I bit (3.3.5).
 *
 * Data-in: the device interrupts for every block, so each FIS has I set;
 * the last one's E_Status is the command's ending status and PxTFD takes
 * it. No D2H Register FIS follows.
 *
 * Data-out: software already waits for the first block, so only the later
 * blocks' FISes have I set; E_Status says BSY (the device has yet to store
 * the data) and a D2H Register FIS with the ending status closes the
 * command.
 *
 * QEMU (hw/ide/ahci.c, ahci_pio_transfer) sets the I bits the same way but
 * differs in two places, where we follow the specifications: it copies the
 * opening Status (DRQ set) into E_Status, and it posts a D2H Register FIS
 * (PxIS.DHRS) after data-in too. Linux reads the PIO Setup FIS's E_Status
 * after data-in either way (libahci, ahci_qc_fill_rtf).
 */
/* A DRQ data block's byte count fits the FIS's 16-bit transfer count. */
_Static_assert(ATA_MAX_MULTIPLE_SECTORS *ATA_SECTOR_SIZE <= UINT16_MAX,
               "multiple mode block too large for a PIO Setup FIS");

uint32_t ahci_pio_done(AhciPort *p, const AhciSlot *sl)
{
    uint32_t blocks = (sl->bytes + sl->pio_block - 1) / sl->pio_block;
    uint16_t last = (uint16_t)(sl->bytes - (blocks - 1) * sl->pio_block);
    uint32_t is_bits = 0;
    uint8_t flags = blocks > 1 ? SATA_FIS_I : 0;

    if (sl->req.op != BLOCK_OP_WRITE) {
        if (ahci_write_pio_setup(p, SATA_FIS_I | SATA_FIS_D, p->tfd & 0xff,
                                 last)) {
            is_bits |= AHCI_PX_IS_PSS;
        }
        return is_bits;
    }
    if (ahci_write_pio_setup(p, flags, ATA_STAT_BSY | ATA_STAT_READY, last) &&
        flags) {
        is_bits |= AHCI_PX_IS_PSS;
    }
    if (ahci_port_write_d2h(p, 0, 0, 0)) {
        is_bits |= AHCI_PX_IS_DHRS;
    }
    return is_bits;
}

/* NCQ completions; the status byte never carries BSY or DRQ. */
bool ahci_write_sdb(AhciPort *p, uint32_t sactive)
{
    uint8_t f[8] = {SATA_FIS_SDB, SATA_FIS_I, (p->tfd & 0x77), p->tfd >> 8};

    memcpy(&f[4], &sactive, sizeof(sactive));
    return ahci_write_rfis(p, AHCI_RFIS_SDBFIS, f, sizeof(f));
}

/* ---- Errors -----------------------------------------------------------------
 */

/*
 * The command in @slot failed. Its PxCI bit (and PxSACT bit, if queued)
 * stays set and PxCMD.CCS names it, so software can tell which one; the
 * port fetches nothing more until software clears PxCMD.ST. The D2H FIS
 * carries the error outputs ATA8-ACS gives a read or write: @lba, the
 * first sector that failed (0 for an error of no sector).
 */
void ahci_port_set_error(AhciPort *p, int slot, uint8_t error, uint32_t is_bits,
                         uint64_t lba)
{
    p->tfd = (uint32_t)error << 8 | ATA_STAT_READY | ATA_STAT_ERR;
    p->halted = true;
    ahci_port_set_ccs(p, slot);
    if (ahci_port_write_d2h(p, 0, lba, 0)) {
        is_bits |= AHCI_PX_IS_DHRS;
    }
    ahci_port_raise(p, is_bits | AHCI_PX_IS_TFES);
}

static void cmd_fail_v(AhciPort *p, int slot, uint8_t error, uint32_t is_bits,
                       uint64_t lba, const char *fmt, va_list ap)
{
    AhciState *s = p->hba;
    char msg[200];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_guest_error(AHCI_LOG_FMT " port %d slot %d: %s", AHCI_LOG_ARGS(s),
                    p->index, slot, msg);
    ahci_port_set_error(p, slot, error, is_bits, lba);
}

/* The one mapping from a guest's mistake to device status (+ a log line). */
void ahci_cmd_fail(AhciPort *p, int slot, uint8_t error, uint32_t is_bits,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cmd_fail_v(p, slot, error, is_bits, 0, fmt, ap);
    va_end(ap);
}

void ahci_cmd_fail_at(AhciPort *p, int slot, uint8_t error, uint64_t lba,
                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cmd_fail_v(p, slot, error, 0, lba, fmt, ap);
    va_end(ap);
}

/* ---- Reading the command ----------------------------------------------------
 */

bool ahci_cmd_fetch(AhciPort *p, int slot, AhciCmd *c)
{
    GuestMemory *ram = p->hba->ram;
    /* CLB is 1 KiB aligned, so the 32 headers never wrap. */
    uint64_t clb = (uint64_t)p->clbu << 32 | p->clb;
    uint8_t hdr[16];
    uint32_t dw0;
    unsigned cfl;

    c->hdr_addr = clb + (uint64_t)slot * AHCI_CMDH_SIZE;
    if (gm_read(ram, c->hdr_addr, hdr, sizeof(hdr)) < 0) {
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_HBFS,
                      "command header at 0x%llx is outside RAM",
                      (unsigned long long)c->hdr_addr);
        return false;
    }
    memcpy(&dw0, hdr, 4);
    memcpy(&c->ctba, hdr + 8, 8);
    c->flags = dw0 & 0xffff;
    c->prdtl = dw0 >> 16;
    cfl = c->flags & AHCI_CMDH_CFL_MASK;

    if (c->ctba & (AHCI_CTBA_ALIGN - 1)) {
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                      "command table 0x%llx is not 128-byte aligned",
                      (unsigned long long)c->ctba);
        return false;
    }
    if (cfl < 5 || cfl > 16 || (c->flags & AHCI_CMDH_PMP_MASK)) {
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                      "bad command header 0x%x (FIS length %u dwords, "
                      "port multiplier port %u)",
                      dw0, cfl, (c->flags & AHCI_CMDH_PMP_MASK) >> 12);
        return false;
    }
    if (gm_read(ram, c->ctba, c->fis, sizeof(c->fis)) < 0) {
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_HBFS,
                      "command table at 0x%llx is outside RAM",
                      (unsigned long long)c->ctba);
        return false;
    }
    if (c->fis[0] != SATA_FIS_REG_H2D || (c->fis[1] & 0x0f)) {
        ahci_cmd_fail(p, slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                      "command FIS type 0x%02x, port multiplier port %u: "
                      "only register H2D FISes to port 0 are supported",
                      c->fis[0], c->fis[1] & 0x0f);
        return false;
    }
    return true;
}

static bool ahci_slot_iov_reserve(AhciSlot *sl, unsigned n)
{
    unsigned cap = sl->iov_cap ? sl->iov_cap : 16;
    struct iovec *v;

    if (n <= sl->iov_cap) {
        return true;
    }
    while (cap < n) {
        cap *= 2;
    }
    v = realloc(sl->iov, cap * sizeof(*v));
    if (!v) {
        return false;
    }
    sl->iov = v;
    sl->iov_cap = cap;
    return true;
}

/*
 * DATAPATH 3, continued: PRDT -> iovec. Walk the PRD entries until they
 * cover @bytes and point the slot's iovec straight at guest RAM (no copy;
 * adjacent entries merge). Entries past the transfer are never read.
 * Returns the iovec count, or 0 after failing the command.
 */
int ahci_map_prdt(AhciPort *p, AhciSlot *sl, const AhciCmd *c, uint64_t bytes)
{
    GuestMemory *ram = p->hba->ram;
    uint64_t left = bytes;
    int n = 0;

    sl->dps = false;
    for (unsigned i = 0; i < c->prdtl && left; i++) {
        uint64_t addr, dba, len;
        uint32_t dw3, dbc;
        uint8_t e[AHCI_PRD_SIZE];
        uint8_t *host;

        if (__builtin_add_overflow(c->ctba, AHCI_CT_PRDT + i * AHCI_PRD_SIZE,
                                   &addr) ||
            gm_read(ram, addr, e, sizeof(e)) < 0) {
            ahci_cmd_fail(p, sl->slot, ATA_ERR_ABRT, AHCI_PX_IS_HBFS,
                          "PRD entry %u is outside RAM", i);
            return 0;
        }
        memcpy(&dba, e, 8);
        memcpy(&dw3, e + 12, 4);
        dbc = (dw3 & AHCI_PRD_DBC_MASK) + 1;
        if ((dba & 1) || (dbc & 1)) {
            ahci_cmd_fail(p, sl->slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                          "PRD entry %u: address 0x%llx and byte count %u "
                          "must be even",
                          i, (unsigned long long)dba, dbc);
            return 0;
        }
        len = dbc < left ? dbc : left;
        host = gm_ptr(ram, dba, len);
        if (!host) {
            ahci_cmd_fail(p, sl->slot, ATA_ERR_ABRT, AHCI_PX_IS_HBFS,
                          "PRD entry %u: buffer 0x%llx+%llu is outside RAM", i,
                          (unsigned long long)dba, (unsigned long long)len);
            return 0;
        }
        if (dw3 & AHCI_PRD_I) {
            sl->dps = true;
        }
        left -= len;
        if (n && (uint8_t *)sl->iov[n - 1].iov_base + sl->iov[n - 1].iov_len ==
                     host) {
            sl->iov[n - 1].iov_len += len;
            continue;
        }
        if (n == BLK_MAX_IOV) {
            ahci_cmd_fail(p, sl->slot, ATA_ERR_ABRT, AHCI_PX_IS_IFS,
                          "more than %d separate PRD buffers", BLK_MAX_IOV);
            return 0;
        }
        if (!ahci_slot_iov_reserve(sl, n + 1)) {
            ahci_cmd_fail(p, sl->slot, ATA_ERR_ABRT, 0, "out of memory");
            return 0;
        }
        sl->iov[n++] = (struct iovec){.iov_base = host, .iov_len = len};
    }
    if (left) {
        ahci_cmd_fail(p, sl->slot, ATA_ERR_ABRT, AHCI_PX_IS_OFS,
                      "%u PRD entries describe %llu of the %llu bytes to "
                      "transfer",
                      c->prdtl, (unsigned long long)(bytes - left),
                      (unsigned long long)bytes);
        return 0;
    }
    return n;
}
