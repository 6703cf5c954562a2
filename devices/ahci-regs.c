/*
 * AHCI registers: the ABAR window, decoded by enum and switch (AHCI 1.3.1,
 * section 3). Every write the guest makes arrives here first.
 */
#include "devices/ahci-int.h"
#include "util/log.h"
#include "util/trace.h"

static const char *const host_reg_names[AHCI_HOST__COUNT] = {
    [AHCI_HOST_CAP] = "CAP",
    [AHCI_HOST_GHC] = "GHC",
    [AHCI_HOST_IS] = "IS",
    [AHCI_HOST_PI] = "PI",
    [AHCI_HOST_VS] = "VS",
    [AHCI_HOST_CCC_CTL] = "CCC_CTL",
    [AHCI_HOST_CCC_PORTS] = "CCC_PORTS",
    [AHCI_HOST_EM_LOC] = "EM_LOC",
    [AHCI_HOST_EM_CTL] = "EM_CTL",
    [AHCI_HOST_CAP2] = "CAP2",
    [AHCI_HOST_BOHC] = "BOHC",
};

static const char *const port_reg_names[AHCI_PX__COUNT] = {
    [AHCI_PX_CLB] = "PxCLB",   [AHCI_PX_CLBU] = "PxCLBU",
    [AHCI_PX_FB] = "PxFB",     [AHCI_PX_FBU] = "PxFBU",
    [AHCI_PX_IS] = "PxIS",     [AHCI_PX_IE] = "PxIE",
    [AHCI_PX_CMD] = "PxCMD",   [AHCI_PX_RSVD] = "reserved",
    [AHCI_PX_TFD] = "PxTFD",   [AHCI_PX_SIG] = "PxSIG",
    [AHCI_PX_SSTS] = "PxSSTS", [AHCI_PX_SCTL] = "PxSCTL",
    [AHCI_PX_SERR] = "PxSERR", [AHCI_PX_SACT] = "PxSACT",
    [AHCI_PX_CI] = "PxCI",     [AHCI_PX_SNTF] = "PxSNTF",
    [AHCI_PX_FBS] = "PxFBS",   [AHCI_PX_DEVSLP] = "PxDEVSLP",
};

static const char *port_reg_name(unsigned reg)
{
    if (reg >= 0x70 / 4) {
        return "PxVS (vendor)";
    }
    return port_reg_names[reg] ? port_reg_names[reg] : "reserved";
}

/* ---- Port registers ---------------------------------------------------------
 */

static uint32_t ahci_port_ssts(const AhciPort *p)
{
    unsigned det = p->sctl & 0xf;

    if (!p->blk || det == AHCI_SCTL_DET_COMRESET) {
        return 0; /* no device, or the interface is held in reset */
    }
    return det == AHCI_SCTL_DET_OFFLINE ? AHCI_SSTS_OFFLINE : AHCI_SSTS_DEV_UP;
}

static uint32_t ahci_port_read(AhciPort *p, unsigned reg)
{
    switch ((AhciPortReg)reg) {
    case AHCI_PX_CLB:
        return p->clb;
    case AHCI_PX_CLBU:
        return p->clbu;
    case AHCI_PX_FB:
        return p->fb;
    case AHCI_PX_FBU:
        return p->fbu;
    case AHCI_PX_IS:
        return p->is;
    case AHCI_PX_IE:
        return p->ie;
    case AHCI_PX_CMD:
        return p->cmd;
    case AHCI_PX_TFD:
        return p->tfd;
    case AHCI_PX_SIG:
        return p->sig;
    case AHCI_PX_SSTS:
        return ahci_port_ssts(p);
    case AHCI_PX_SCTL:
        return p->sctl;
    case AHCI_PX_SERR:
        return p->serr;
    case AHCI_PX_SACT:
        return p->sact;
    case AHCI_PX_CI:
        return p->ci;
    default:
        return 0; /* SNTF, FBS, DEVSLP, reserved, vendor: not implemented */
    }
}

static void ahci_port_write_cmd(AhciPort *p, uint32_t val)
{
    AhciState *s = p->hba;
    uint32_t old = p->cmd;
    uint64_t fb = (uint64_t)p->fbu << 32 | p->fb;

    p->cmd = (old & ~AHCI_PX_CMD_WMASK) | (val & AHCI_PX_CMD_WMASK);
    if (val & AHCI_PX_CMD_CLO) {
        /* Command list override: forget a stuck BSY/DRQ; reads back 0. */
        p->tfd &= ~(uint32_t)(ATA_STAT_BSY | ATA_STAT_DRQ);
    }

    if ((p->cmd & AHCI_PX_CMD_FRE) && !(old & AHCI_PX_CMD_FRE)) {
        if (!gm_range_ok(s->ram, fb, AHCI_RFIS_SIZE)) {
            log_guest_error(AHCI_LOG_FMT " port %d: PxFB 0x%llx is outside "
                                         "RAM; FIS receive not started",
                            AHCI_LOG_ARGS(s), p->index, (unsigned long long)fb);
            p->cmd &= ~AHCI_PX_CMD_FRE;
            ahci_port_raise(p, AHCI_PX_IS_HBFS);
        } else {
            p->cmd |= AHCI_PX_CMD_FR;
            if (p->d2h_pending) {
                ahci_port_send_signature(p);
            }
        }
    } else if (!(p->cmd & AHCI_PX_CMD_FRE)) {
        p->cmd &= ~AHCI_PX_CMD_FR;
    }

    if (!(p->cmd & AHCI_PX_CMD_ST) && (old & AHCI_PX_CMD_ST)) {
        /*
         * Stopping the list: issued commands are forgotten; those already
         * with the disk finish in the background and CR stays set until
         * the last one has (AHCI 1.3.1, 3.3.7: software waits for CR).
         */
        for (int i = 0; i < AHCI_NUM_SLOTS; i++) {
            if (p->slots[i].busy) {
                p->slots[i].orphaned = true;
            }
        }
        p->ci = 0;
        p->sact = 0;
        p->halted = false;
        p->cmd &= ~AHCI_PX_CMD_CCS_MASK;
    }
    ahci_port_update_cr(p);
    if ((p->cmd & AHCI_PX_CMD_ST) && !(old & AHCI_PX_CMD_ST)) {
        ahci_port_check_cmds(p);
    }
}

static void ahci_port_write(AhciPort *p, unsigned reg, uint32_t val)
{
    AhciState *s = p->hba;

    switch ((AhciPortReg)reg) {
    case AHCI_PX_CLB:
        p->clb = val & AHCI_PX_CLB_MASK;
        break;
    case AHCI_PX_CLBU:
        p->clbu = val;
        break;
    case AHCI_PX_FB:
        p->fb = val & AHCI_PX_FB_MASK;
        break;
    case AHCI_PX_FBU:
        p->fbu = val;
        break;
    case AHCI_PX_IS:
        p->is &= ~val;
        ahci_update_irq(s, false);
        break;
    case AHCI_PX_IE:
        p->ie = val & AHCI_PX_IE_MASK;
        ahci_update_irq(s, false);
        break;
    case AHCI_PX_CMD:
        ahci_port_write_cmd(p, val);
        break;
    case AHCI_PX_TFD:
    case AHCI_PX_SIG:
    case AHCI_PX_SSTS:
        break; /* read-only */
    case AHCI_PX_SCTL:
        if ((p->sctl & 0xf) == AHCI_SCTL_DET_COMRESET && (val & 0xf) == 0) {
            ahci_port_comreset(p);
        }
        p->sctl = val & AHCI_PX_SCTL_MASK;
        break;
    case AHCI_PX_SERR:
        p->serr &= ~val;
        break;
    case AHCI_PX_SACT:
        /* Only meaningful while the list runs; ST=0 clears it anyway. */
        if (p->cmd & AHCI_PX_CMD_ST) {
            p->sact |= val;
        }
        break;
    case AHCI_PX_CI:
        /*
         * DATAPATH 3: the guest issued commands. They start here, on the
         * thread doing the MMIO (a vCPU holding the big lock): command
         * header -> command FIS -> PRDT -> iovec -> blk_submit() into the
         * current context, the main one (ahci-cmd.c).
         */
        if (!(p->cmd & AHCI_PX_CMD_ST)) {
            log_guest_error(AHCI_LOG_FMT " port %d: PxCI 0x%x written with "
                                         "PxCMD.ST clear; commands dropped",
                            AHCI_LOG_ARGS(s), p->index, val);
            p->tfd = ATA_ERR_ABRT << 8 | ATA_STAT_READY | ATA_STAT_ERR;
            ahci_port_raise(p, AHCI_PX_IS_TFES | AHCI_PX_IS_IFS);
            break;
        }
        TRACE(AHCI_PXCI, trace_current_id(), .a = {p->index, val});
        p->ci |= val;
        ahci_port_check_cmds(p);
        break;
    default:
        log_guest_error(AHCI_LOG_FMT " port %d: write 0x%x to unimplemented "
                                     "register %s (offset 0x%x) ignored",
                        AHCI_LOG_ARGS(s), p->index, val, port_reg_name(reg),
                        reg * 4);
        break;
    }
}

/* ---- The ABAR ---------------------------------------------------------------
 */

static uint32_t ahci_read32(AhciState *s, uint64_t offset)
{
    if (offset >= AHCI_PORT_BASE) {
        uint64_t port = (offset - AHCI_PORT_BASE) / AHCI_PORT_SIZE;

        if (port >= AHCI_NUM_PORTS) {
            return 0;
        }
        return ahci_port_read(&s->ports[port], (offset % AHCI_PORT_SIZE) / 4);
    }
    switch ((AhciHostReg)(offset / 4)) {
    case AHCI_HOST_CAP:
        return s->cap;
    case AHCI_HOST_GHC:
        return s->ghc;
    case AHCI_HOST_IS:
        return s->is;
    case AHCI_HOST_PI:
        return (1u << AHCI_NUM_PORTS) - 1;
    case AHCI_HOST_VS:
        return AHCI_VERSION_1_0;
    default:
        return 0;
    }
}

static void ahci_write32(AhciState *s, uint64_t offset, uint32_t val)
{
    unsigned reg = offset / 4;

    if (offset >= AHCI_PORT_BASE) {
        uint64_t port = (offset - AHCI_PORT_BASE) / AHCI_PORT_SIZE;

        if (port < AHCI_NUM_PORTS) {
            ahci_port_write(&s->ports[port], (offset % AHCI_PORT_SIZE) / 4,
                            val);
            return;
        }
    }
    switch ((AhciHostReg)reg) {
    case AHCI_HOST_CAP:
    case AHCI_HOST_PI:
    case AHCI_HOST_VS:
        return; /* read-only */
    case AHCI_HOST_GHC:
        if (val & AHCI_GHC_HR) {
            ahci_hba_reset(s, true);
            return;
        }
        s->ghc = AHCI_GHC_AE | (val & AHCI_GHC_IE);
        ahci_update_irq(s, false);
        return;
    case AHCI_HOST_IS:
        /* IS follows the ports: a bit stays while its port's cause does. */
        ahci_update_irq(s, false);
        return;
    default:
        log_guest_error(AHCI_LOG_FMT ": write 0x%x to unimplemented register "
                                     "%s (offset 0x%llx) ignored",
                        AHCI_LOG_ARGS(s), val,
                        reg < AHCI_HOST__COUNT ? host_reg_names[reg] : "(none)",
                        (unsigned long long)offset);
        return;
    }
}

/*
 * Reads of 1 to 8 bytes at any offset are assembled from the dwords they
 * touch: up to three, for a qword that does not start on a dword. (Register
 * reads have no side effects, so reading a whole dword for a byte is safe.)
 * Bytes past the end of the ABAR read as 0xff, as unclaimed bus bytes do.
 */
static uint64_t ahci_mmio_read(void *opaque, uint64_t addr, unsigned size)
{
    AhciState *s = opaque;
    uint64_t aligned = addr & ~3ULL;
    unsigned first = addr & 3;
    uint8_t bytes[12];
    uint64_t v = 0;

    for (unsigned i = 0; i * 4 < first + size; i++) {
        uint64_t off = aligned + 4 * i;
        uint32_t dw = off < AHCI_ABAR_SIZE ? ahci_read32(s, off) : UINT32_MAX;

        for (unsigned b = 0; b < 4; b++) {
            bytes[4 * i + b] = dw >> (8 * b);
        }
    }
    for (unsigned b = 0; b < size; b++) {
        v |= (uint64_t)bytes[first + b] << (8 * b);
    }
    return v;
}

/*
 * Writes must be aligned dwords (or qwords, taken as two dwords): a partial
 * write to a write-1-to-clear or write-1-to-issue register has no safe
 * meaning.
 */
static void ahci_mmio_write(void *opaque, uint64_t addr, uint64_t val,
                            unsigned size)
{
    AhciState *s = opaque;

    if (size < 4 || (addr & (size - 1))) {
        log_guest_error(AHCI_LOG_FMT ": %u-byte write at offset 0x%llx "
                                     "ignored: registers take aligned dwords",
                        AHCI_LOG_ARGS(s), size, (unsigned long long)addr);
        return;
    }
    ahci_write32(s, addr, (uint32_t)val);
    if (size == 8) {
        ahci_write32(s, addr + 4, (uint32_t)(val >> 32));
    }
}

const RegionOps ahci_mmio_ops = {
    .read = ahci_mmio_read,
    .write = ahci_mmio_write,
};
