#include "firmware/tests/lib/ahci.h"
#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/pci.h"
#include "firmware/tests/lib/timer.h"

#define PORT_REGS(n)    (0x100 + 0x80 * (unsigned)(n))
#define CFL_H2D         5 /* dwords in a register H2D FIS */
#define CMDH_WRITE      (1u << 6)
#define FIS_REG_H2D     0x27
#define FIS_C           0x80
#define DEV_LBA         0x40
#define STOP_TIMEOUT_MS 500 /* what AHCI gives CR and FR to follow */
#define DISK_TIMEOUT_MS 5000

uint32_t ahci_read(Ahci *a, unsigned reg)
{
    return readl(a->abar + reg);
}

void ahci_write(Ahci *a, unsigned reg, uint32_t v)
{
    writel(a->abar + reg, v);
}

uint32_t ahci_port_read(AhciPort *p, unsigned reg)
{
    return readl(p->regs + reg);
}

void ahci_port_write(AhciPort *p, unsigned reg, uint32_t v)
{
    writel(p->regs + reg, v);
}

int ahci_init(Ahci *a, int index)
{
    uint64_t size;

    memset(a, 0, sizeof(*a));
    a->node = dt_pci_find(AHCI_VENDOR, AHCI_DEVICE, index);
    if (a->node < 0) {
        report_info("ahci: no %04x:%04x #%d in the device tree", AHCI_VENDOR,
                    AHCI_DEVICE, index);
        return -1;
    }
    a->devfn = dt_pci_devfn(a->node);
    if (!dt_pci_bar(a->node, AHCI_ABAR, &a->abar, &size) || !a->abar) {
        report_info("ahci: %s has no assigned ABAR (BAR5)", dt_name(a->node));
        return -1;
    }
    /* The VMM enabled decoding and mastering, as a BIOS would; make sure. */
    pci_write16(a->devfn, PCI_COMMAND,
                pci_read16(a->devfn, PCI_COMMAND) | PCI_COMMAND_MEMORY |
                    PCI_COMMAND_MASTER);
    ahci_write(a, AHCI_GHC, AHCI_GHC_AE);
    ahci_write(a, AHCI_GHC, AHCI_GHC_AE | AHCI_GHC_HR);
    if (!WAIT_FOR(!(ahci_read(a, AHCI_GHC) & AHCI_GHC_HR), 1000)) {
        report_info("ahci: GHC.HR did not clear after an HBA reset");
        return -1;
    }
    ahci_write(a, AHCI_GHC, AHCI_GHC_AE);
    a->cap = ahci_read(a, AHCI_CAP);
    a->pi = ahci_read(a, AHCI_PI);
    a->nslots = AHCI_CAP_NCS(a->cap);
    return 0;
}

static bool port_stop(AhciPort *p)
{
    uint32_t cmd = ahci_port_read(p, AHCI_PX_CMD);

    ahci_port_write(p, AHCI_PX_CMD, cmd & ~AHCI_PX_CMD_ST);
    if (!WAIT_FOR(!(ahci_port_read(p, AHCI_PX_CMD) & AHCI_PX_CMD_CR),
                  STOP_TIMEOUT_MS)) {
        return false;
    }
    cmd = ahci_port_read(p, AHCI_PX_CMD);
    ahci_port_write(p, AHCI_PX_CMD, cmd & ~AHCI_PX_CMD_FRE);
    return WAIT_FOR(!(ahci_port_read(p, AHCI_PX_CMD) & AHCI_PX_CMD_FR),
                    STOP_TIMEOUT_MS);
}

static void port_clear_is(AhciPort *p)
{
    ahci_port_write(p, AHCI_PX_IS, ahci_port_read(p, AHCI_PX_IS));
    ahci_write(p->hba, AHCI_IS, 1u << p->num);
}

int ahci_port_start(Ahci *a, int num, AhciPort *p, AhciPortMem *mem)
{
    uint64_t clb = (uintptr_t)mem->clb, fb = (uintptr_t)mem->rfis;
    uint32_t cmd;

    p->hba = a;
    p->num = num;
    p->regs = a->abar + PORT_REGS(num);
    p->mem = mem;
    if (num < 0 || num > 31 || !(a->pi & (1u << num))) {
        report_info("ahci: port %d not implemented (PI=0x%x)", num, a->pi);
        return -1;
    }
    if (!port_stop(p)) {
        report_info("ahci: port %d: the engine would not stop", num);
        return -1;
    }
    memset(mem, 0, sizeof(*mem));
    for (unsigned i = 0; i < AHCI_SLOTS; i++) {
        mem->clb[i].ctba = (uintptr_t)&mem->ct[i];
    }
    ahci_port_write(p, AHCI_PX_CLB, (uint32_t)clb);
    ahci_port_write(p, AHCI_PX_CLBU, clb >> 32);
    ahci_port_write(p, AHCI_PX_FB, (uint32_t)fb);
    ahci_port_write(p, AHCI_PX_FBU, fb >> 32);
    ahci_port_write(p, AHCI_PX_SERR, UINT32_MAX);
    port_clear_is(p);
    cmd = ahci_port_read(p, AHCI_PX_CMD);
    ahci_port_write(p, AHCI_PX_CMD,
                    cmd | AHCI_PX_CMD_SUD | AHCI_PX_CMD_POD | AHCI_PX_CMD_FRE);
    if (!WAIT_FOR(ahci_port_read(p, AHCI_PX_CMD) & AHCI_PX_CMD_FR,
                  STOP_TIMEOUT_MS)) {
        report_info("ahci: port %d: FIS receive would not start", num);
        return -1;
    }
    if (!WAIT_FOR((ahci_port_read(p, AHCI_PX_SSTS) & 0xf) == 3,
                  DISK_TIMEOUT_MS)) {
        report_info("ahci: port %d: no disk (SSTS=0x%x)", num,
                    ahci_port_read(p, AHCI_PX_SSTS));
        return -1;
    }
    if (!WAIT_FOR(
            !(ahci_port_read(p, AHCI_PX_TFD) & (AHCI_TFD_BSY | AHCI_TFD_DRQ)),
            DISK_TIMEOUT_MS)) {
        report_info("ahci: port %d: disk stays busy (TFD=0x%x)", num,
                    ahci_port_read(p, AHCI_PX_TFD));
        return -1;
    }
    cmd = ahci_port_read(p, AHCI_PX_CMD);
    ahci_port_write(p, AHCI_PX_CMD, cmd | AHCI_PX_CMD_ST);
    if (!WAIT_FOR(ahci_port_read(p, AHCI_PX_CMD) & AHCI_PX_CMD_CR,
                  STOP_TIMEOUT_MS)) {
        report_info("ahci: port %d: command list would not start", num);
        return -1;
    }
    /* The disk's signature FIS has arrived by now: start from clean. */
    ahci_port_write(p, AHCI_PX_SERR, UINT32_MAX);
    port_clear_is(p);
    return 0;
}

void ahci_fis_h2d(uint8_t fis[20], uint8_t cmd, uint64_t lba, uint16_t count)
{
    memset(fis, 0, 20);
    fis[0] = FIS_REG_H2D;
    fis[1] = FIS_C;
    fis[2] = cmd;
    fis[4] = lba;
    fis[5] = lba >> 8;
    fis[6] = lba >> 16;
    fis[7] = DEV_LBA;
    fis[8] = lba >> 24;
    fis[9] = lba >> 32;
    fis[10] = lba >> 40;
    fis[12] = count;
    fis[13] = count >> 8;
}

/* NCQ: the sector count moves to FEATURES, the tag to COUNT bits 7:3. */
void ahci_fis_ncq(uint8_t fis[20], uint8_t cmd, unsigned tag, uint64_t lba,
                  uint16_t count)
{
    ahci_fis_h2d(fis, cmd, lba, 0);
    fis[3] = count;
    fis[11] = count >> 8;
    fis[12] = tag << 3;
}

void ahci_cmd_setup(AhciPort *p, unsigned slot, const uint8_t fis[20],
                    bool write, const AhciSg *sg, unsigned nsg)
{
    AhciCmdTable *ct;
    AhciCmdHeader *h;

    if (slot >= AHCI_SLOTS || nsg > AHCI_PRDT_MAX) {
        fw_abort("ahci_cmd_setup: slot %u, %u PRDs", slot, nsg);
    }
    ct = &p->mem->ct[slot];
    h = &p->mem->clb[slot];
    memset(ct->cfis, 0, sizeof(ct->cfis));
    memcpy(ct->cfis, fis, 20);
    for (unsigned i = 0; i < nsg; i++) {
        ct->prdt[i] =
            (AhciPrd){.dba = (uintptr_t)sg[i].buf, .dbc = sg[i].len - 1};
    }
    h->dw0 = CFL_H2D | (write ? CMDH_WRITE : 0) | (uint32_t)nsg << 16;
    h->prdbc = 0;
    h->ctba = (uintptr_t)ct;
    barrier();
}

void ahci_issue(AhciPort *p, uint32_t slots, bool ncq)
{
    barrier();
    if (ncq) {
        ahci_port_write(p, AHCI_PX_SACT, slots);
    }
    ahci_port_write(p, AHCI_PX_CI, slots);
}

/*
 * After an error the HBA stops fetching commands (AHCI 1.3.1, 6.2.2):
 * clearing ST empties PxCI and PxSACT; restart so later commands run.
 */
static void port_recover(AhciPort *p)
{
    uint32_t cmd = ahci_port_read(p, AHCI_PX_CMD);

    ahci_port_write(p, AHCI_PX_CMD, cmd & ~AHCI_PX_CMD_ST);
    if (!WAIT_FOR(!(ahci_port_read(p, AHCI_PX_CMD) & AHCI_PX_CMD_CR),
                  STOP_TIMEOUT_MS)) {
        report_info("ahci: port %d: engine would not stop for recovery",
                    p->num);
        return;
    }
    ahci_port_write(p, AHCI_PX_SERR, UINT32_MAX);
    port_clear_is(p);
    ahci_port_write(p, AHCI_PX_CMD, cmd | AHCI_PX_CMD_ST);
}

int ahci_wait(AhciPort *p, uint32_t slots, unsigned timeout_ms)
{
    uint64_t deadline = timer_deadline_ms(timeout_ms);
    uint32_t is, busy, tfd;

    for (;;) {
        is = ahci_port_read(p, AHCI_PX_IS);
        if (is & AHCI_PX_IS_ERRORS) {
            break;
        }
        busy =
            (ahci_port_read(p, AHCI_PX_CI) | ahci_port_read(p, AHCI_PX_SACT)) &
            slots;
        if (!busy) {
            break;
        }
        if (timer_expired(deadline)) {
            report_info("ahci: port %d: slots 0x%x still busy after %u ms "
                        "(CI=0x%x SACT=0x%x IS=0x%x TFD=0x%x)",
                        p->num, busy, timeout_ms, ahci_port_read(p, AHCI_PX_CI),
                        ahci_port_read(p, AHCI_PX_SACT), is,
                        ahci_port_read(p, AHCI_PX_TFD));
            return AHCI_ERR_TIMEOUT;
        }
    }
    tfd = ahci_port_read(p, AHCI_PX_TFD);
    p->last_is = ahci_port_read(p, AHCI_PX_IS);
    port_clear_is(p);
    if ((is & AHCI_PX_IS_ERRORS) || (tfd & AHCI_TFD_ERR)) {
        report_info("ahci: port %d: error (IS=0x%x TFD=0x%x SERR=0x%x)", p->num,
                    is, tfd, ahci_port_read(p, AHCI_PX_SERR));
        port_recover(p);
        return AHCI_ERR_DEVICE;
    }
    mb(); /* the data the HBA wrote is read after its completion */
    return 0;
}

int ahci_identify(AhciPort *p, uint16_t id[256])
{
    AhciSg sg = {id, 512};
    uint8_t fis[20];

    ahci_fis_h2d(fis, ATA_IDENTIFY, 0, 0);
    ahci_cmd_setup(p, 0, fis, false, &sg, 1);
    ahci_issue(p, 1, false);
    return ahci_wait(p, 1, DISK_TIMEOUT_MS);
}

int ahci_rw_dma(AhciPort *p, bool write, uint64_t lba, uint16_t sectors,
                const AhciSg *sg, unsigned nsg)
{
    uint8_t fis[20];

    ahci_fis_h2d(fis, write ? ATA_WRITE_DMA_EXT : ATA_READ_DMA_EXT, lba,
                 sectors);
    ahci_cmd_setup(p, 0, fis, write, sg, nsg);
    ahci_issue(p, 1, false);
    return ahci_wait(p, 1, DISK_TIMEOUT_MS);
}

/* ATA strings: two characters per word, the first in the high byte. */
void ata_id_string(const uint16_t *id, unsigned word, unsigned words, char *out)
{
    unsigned n = 0;

    for (unsigned i = 0; i < words; i++) {
        out[n++] = id[word + i] >> 8;
        out[n++] = id[word + i] & 0xff;
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\0')) {
        n--;
    }
    out[n] = '\0';
}

uint64_t ata_id_sectors(const uint16_t *id)
{
    return (uint64_t)id[100] | (uint64_t)id[101] << 16 |
           (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48;
}
