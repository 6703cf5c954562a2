#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/qos/ahci.h"

#define PORT_REGS(port) (0x100 + 0x80 * (unsigned)(port))
#define CMDH_SIZE       32
#define CT_PRDT         0x80
#define CT_SIZE         (CT_PRDT + QAHCI_PRDT_MAX * 16)
#define RFIS_SIZE       0x100
#define SCRATCH_SIZE    4096
#define STOP_TIMEOUT_MS 500 /* what AHCI gives CR and FR to follow */

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

uint32_t qahci_rreg(QAhci *a, unsigned offset)
{
    return qos_readl(a->q, a->abar + offset);
}

void qahci_wreg(QAhci *a, unsigned offset, uint32_t value)
{
    qos_writel(a->q, a->abar + offset, value);
}

uint32_t qahci_px_rreg(QAhci *a, int port, unsigned offset)
{
    return qahci_rreg(a, PORT_REGS(port) + offset);
}

void qahci_px_wreg(QAhci *a, int port, unsigned offset, uint32_t value)
{
    qahci_wreg(a, PORT_REGS(port) + offset, value);
}

/* ---- Polling ----------------------------------------------------------------
 */

typedef struct RegWait {
    QAhci *a;
    int port; /* -1: an HBA register */
    unsigned offset;
    uint32_t mask;
    uint32_t want;
} RegWait;

static bool reg_matches(void *opaque)
{
    RegWait *w = opaque;
    uint32_t v = w->port < 0 ? qahci_rreg(w->a, w->offset)
                             : qahci_px_rreg(w->a, w->port, w->offset);

    return (v & w->mask) == w->want;
}

static bool wait_reg(QAhci *a, int port, unsigned offset, uint32_t mask,
                     uint32_t want, int timeout_ms)
{
    RegWait w = {a, port, offset, mask, want};

    return qos_wait(reg_matches, &w, timeout_ms);
}

/* ---- The HBA ----------------------------------------------------------------
 */

bool qahci_init(QAhci *a, Qos *q, int index)
{
    memset(a, 0, sizeof(*a));
    a->q = q;
    if (!qpci_find(q, QAHCI_VENDOR, QAHCI_DEVICE, index, &a->dev)) {
        return false;
    }
    a->abar = qpci_map_bar(&a->dev, QAHCI_BAR, NULL);
    qpci_enable(&a->dev);
    qahci_wreg(a, QAHCI_GHC, qahci_rreg(a, QAHCI_GHC) | QAHCI_GHC_AE);
    a->cap = qahci_rreg(a, QAHCI_CAP);
    a->pi = qahci_rreg(a, QAHCI_PI);
    return true;
}

bool qahci_hba_reset(QAhci *a)
{
    qahci_wreg(a, QAHCI_GHC, QAHCI_GHC_AE | QAHCI_GHC_HR);
    if (!wait_reg(a, -1, QAHCI_GHC, QAHCI_GHC_HR, 0, 1000)) {
        return false;
    }
    qahci_wreg(a, QAHCI_GHC, QAHCI_GHC_AE);
    return true;
}

uint8_t qahci_msi_enable(QAhci *a, uint64_t addr, uint16_t data)
{
    uint8_t cap = qpci_find_capability(&a->dev, 0x05, 0);
    uint16_t flags;

    if (!cap) {
        return 0;
    }
    flags = qpci_config_read(&a->dev, cap + 2, 2);
    qpci_config_write(&a->dev, cap + 4, (uint32_t)addr, 4);
    if (flags & 0x80) { /* 64-bit address */
        qpci_config_write(&a->dev, cap + 8, addr >> 32, 4);
        qpci_config_write(&a->dev, cap + 12, data, 2);
    } else {
        qpci_config_write(&a->dev, cap + 8, data, 2);
    }
    qpci_config_write(&a->dev, cap + 2, flags | 1, 2);
    return cap;
}

/* ---- Ports ------------------------------------------------------------------
 */

bool qahci_port_present(QAhci *a, int port)
{
    return (qahci_px_rreg(a, port, QAHCI_PX_SSTS) & 0xf) == 3;
}

uint32_t qahci_port_clear_is(QAhci *a, int port)
{
    uint32_t is = qahci_px_rreg(a, port, QAHCI_PX_IS);

    qahci_px_wreg(a, port, QAHCI_PX_IS, is);
    qahci_wreg(a, QAHCI_IS, 1u << port);
    return is;
}

bool qahci_port_stop(QAhci *a, int port)
{
    uint32_t cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);

    qahci_px_wreg(a, port, QAHCI_PX_CMD, cmd & ~QAHCI_PX_CMD_ST);
    if (!wait_reg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_CR, 0, STOP_TIMEOUT_MS)) {
        return false;
    }
    cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);
    qahci_px_wreg(a, port, QAHCI_PX_CMD, cmd & ~QAHCI_PX_CMD_FRE);
    return wait_reg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_FR, 0, STOP_TIMEOUT_MS);
}

static void port_alloc(QAhci *a, int port)
{
    QAhciPort *p = &a->port[port];
    static const uint8_t zero[CT_SIZE];

    if (p->clb) {
        return;
    }
    p->clb = qos_alloc(a->q, QAHCI_SLOTS * CMDH_SIZE, 1024);
    p->fb = qos_alloc(a->q, RFIS_SIZE, 256);
    p->scratch = qos_alloc(a->q, SCRATCH_SIZE, 4096);
    qos_memwrite(a->q, p->clb, zero, QAHCI_SLOTS * CMDH_SIZE);
    qos_memwrite(a->q, p->fb, zero, RFIS_SIZE);
    for (int i = 0; i < QAHCI_SLOTS; i++) {
        p->ctba[i] = qos_alloc(a->q, CT_SIZE, 128);
        qos_memwrite(a->q, p->ctba[i], zero, CT_SIZE);
    }
}

static bool port_start_list(QAhci *a, int port)
{
    uint32_t cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);

    qahci_px_wreg(a, port, QAHCI_PX_CMD, cmd | QAHCI_PX_CMD_ST);
    return wait_reg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_CR, QAHCI_PX_CMD_CR,
                    STOP_TIMEOUT_MS);
}

bool qahci_port_start(QAhci *a, int port)
{
    QAhciPort *p = &a->port[port];
    uint32_t cmd, tfd;

    if (!(a->pi & (1u << port)) || !qahci_port_stop(a, port)) {
        return false;
    }
    port_alloc(a, port);
    qahci_px_wreg(a, port, QAHCI_PX_CLB, (uint32_t)p->clb);
    qahci_px_wreg(a, port, QAHCI_PX_CLBU, p->clb >> 32);
    qahci_px_wreg(a, port, QAHCI_PX_FB, (uint32_t)p->fb);
    qahci_px_wreg(a, port, QAHCI_PX_FBU, p->fb >> 32);
    qahci_px_wreg(a, port, QAHCI_PX_SERR, 0xffffffff);
    qahci_port_clear_is(a, port);

    cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);
    qahci_px_wreg(a, port, QAHCI_PX_CMD,
                  cmd | QAHCI_PX_CMD_SUD | QAHCI_PX_CMD_POD | QAHCI_PX_CMD_FRE);
    if (!wait_reg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_FR, QAHCI_PX_CMD_FR,
                  STOP_TIMEOUT_MS)) {
        return false;
    }
    qahci_px_wreg(a, port, QAHCI_PX_IE, 0xffffffff);
    qahci_wreg(a, QAHCI_GHC, qahci_rreg(a, QAHCI_GHC) | QAHCI_GHC_IE);
    if (!qahci_port_present(a, port)) {
        return false;
    }
    tfd = qahci_px_rreg(a, port, QAHCI_PX_TFD);
    if (tfd & (QAHCI_TFD_BSY | QAHCI_TFD_DRQ)) {
        return false;
    }
    if (!port_start_list(a, port)) {
        return false;
    }
    /* The disk's first D2H FIS (its signature) has arrived by now. */
    qahci_px_wreg(a, port, QAHCI_PX_SERR, 0xffffffff);
    qahci_port_clear_is(a, port);
    return true;
}

bool qahci_port_recover(QAhci *a, int port)
{
    uint32_t cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);

    qahci_px_wreg(a, port, QAHCI_PX_CMD, cmd & ~QAHCI_PX_CMD_ST);
    if (!wait_reg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_CR, 0, STOP_TIMEOUT_MS)) {
        return false;
    }
    if ((qahci_px_rreg(a, port, QAHCI_PX_TFD) &
         (QAHCI_TFD_BSY | QAHCI_TFD_DRQ)) &&
        (a->cap & QAHCI_CAP_SCLO)) {
        cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);
        qahci_px_wreg(a, port, QAHCI_PX_CMD, cmd | QAHCI_PX_CMD_CLO);
        wait_reg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_CLO, 0, STOP_TIMEOUT_MS);
    }
    qahci_px_wreg(a, port, QAHCI_PX_SERR, 0xffffffff);
    qahci_port_clear_is(a, port);
    return port_start_list(a, port);
}

bool qahci_port_comreset(QAhci *a, int port)
{
    uint32_t sctl, cmd;

    cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);
    qahci_px_wreg(a, port, QAHCI_PX_CMD, cmd & ~QAHCI_PX_CMD_ST);
    if (!wait_reg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_CR, 0, STOP_TIMEOUT_MS)) {
        return false;
    }
    sctl = qahci_px_rreg(a, port, QAHCI_PX_SCTL) & ~0xfu;
    qahci_px_wreg(a, port, QAHCI_PX_SCTL, sctl | 1);
    qahci_px_wreg(a, port, QAHCI_PX_SCTL, sctl);
    if (!wait_reg(a, port, QAHCI_PX_SSTS, 0xf, 3, 1000) ||
        !wait_reg(a, port, QAHCI_PX_TFD, QAHCI_TFD_BSY | QAHCI_TFD_DRQ, 0,
                  1000)) {
        return false;
    }
    qahci_px_wreg(a, port, QAHCI_PX_SERR, 0xffffffff);
    qahci_port_clear_is(a, port);
    return port_start_list(a, port);
}

/* ---- Building commands ------------------------------------------------------
 */

void qahci_fis_h2d(uint8_t fis[20], uint8_t command, uint16_t features,
                   uint64_t lba, uint16_t count)
{
    memset(fis, 0, 20);
    fis[0] = 0x27;
    fis[1] = 0x80; /* C: a command */
    fis[2] = command;
    fis[3] = features;
    fis[4] = lba;
    fis[5] = lba >> 8;
    fis[6] = lba >> 16;
    fis[7] = 0x40; /* LBA mode */
    fis[8] = lba >> 24;
    fis[9] = lba >> 32;
    fis[10] = lba >> 40;
    fis[11] = features >> 8;
    fis[12] = count;
    fis[13] = count >> 8;
}

void qahci_fis_ncq(uint8_t fis[20], uint8_t command, uint8_t tag, uint64_t lba,
                   uint16_t count, bool fua)
{
    qahci_fis_h2d(fis, command, count, lba, 0);
    fis[7] = 0x40 | (fua ? 0x80 : 0);
    fis[12] = tag << 3;
}

unsigned qahci_prds(QAhciPrd *prd, unsigned max, uint64_t buf, uint64_t bytes,
                    uint32_t prd_bytes)
{
    unsigned n = 0;

    while (bytes) {
        uint32_t len = bytes < prd_bytes ? (uint32_t)bytes : prd_bytes;

        if (n == max) {
            fprintf(stderr, "qahci: more than %u PRDs needed\n", max);
            abort();
        }
        prd[n++] = (QAhciPrd){.addr = buf, .bytes = len};
        buf += len;
        bytes -= len;
    }
    return n;
}

void qahci_slot_header(QAhci *a, int port, int slot, uint32_t dw0,
                       uint64_t ctba)
{
    uint8_t hdr[CMDH_SIZE] = {0};

    put32(hdr, dw0);
    put64(hdr + 8, ctba);
    qos_memwrite(a->q, a->port[port].clb + slot * CMDH_SIZE, hdr, sizeof(hdr));
}

void qahci_slot_prepare(QAhci *a, int port, int slot, const uint8_t fis[20],
                        bool write, uint16_t extra_flags, const QAhciPrd *prd,
                        unsigned nprd)
{
    uint8_t table[CT_SIZE];
    uint64_t ctba = a->port[port].ctba[slot];
    uint32_t dw0 = QAHCI_CMDH_CFL_H2D | extra_flags;

    if (nprd > QAHCI_PRDT_MAX) {
        fprintf(stderr, "qahci: %u PRDs do not fit a command table\n", nprd);
        abort();
    }
    memset(table, 0, CT_PRDT + nprd * 16);
    memcpy(table, fis, 20);
    for (unsigned i = 0; i < nprd; i++) {
        uint8_t *e = table + CT_PRDT + i * 16;

        put64(e, prd[i].addr);
        put32(e + 12, (prd[i].bytes - 1) | (prd[i].irq ? 1u << 31 : 0));
    }
    qos_memwrite(a->q, ctba, table, CT_PRDT + nprd * 16);
    if (write) {
        dw0 |= QAHCI_CMDH_WRITE;
    }
    qahci_slot_header(a, port, slot, dw0 | (uint32_t)nprd << 16, ctba);
}

uint32_t qahci_slot_prdbc(QAhci *a, int port, int slot)
{
    uint32_t v;

    qos_memread(a->q, a->port[port].clb + slot * CMDH_SIZE + 4, &v, 4);
    return v;
}

/* ---- Running commands -------------------------------------------------------
 */

void qahci_issue(QAhci *a, int port, uint32_t slots, bool ncq)
{
    if (ncq) {
        qahci_px_wreg(a, port, QAHCI_PX_SACT, slots);
    }
    qahci_px_wreg(a, port, QAHCI_PX_CI, slots);
}

typedef struct SlotsWait {
    QAhci *a;
    int port;
    uint32_t slots;
    bool error;
} SlotsWait;

static bool slots_done(void *opaque)
{
    SlotsWait *w = opaque;
    uint32_t busy = qahci_px_rreg(w->a, w->port, QAHCI_PX_CI) |
                    qahci_px_rreg(w->a, w->port, QAHCI_PX_SACT);

    if (qahci_px_rreg(w->a, w->port, QAHCI_PX_IS) & QAHCI_PX_IS_ERRORS) {
        w->error = true;
        return true;
    }
    return !(busy & w->slots);
}

int qahci_wait(QAhci *a, int port, uint32_t slots, int timeout_ms)
{
    SlotsWait w = {a, port, slots, false};

    if (!qos_wait(slots_done, &w, timeout_ms)) {
        return -ETIMEDOUT;
    }
    if (w.error) {
        return -EIO;
    }
    qahci_port_clear_is(a, port);
    return 0;
}

int qahci_run(QAhci *a, int port, int slot, bool ncq)
{
    qahci_issue(a, port, 1u << slot, ncq);
    return qahci_wait(a, port, 1u << slot, QAHCI_TIMEOUT_MS);
}

int qahci_identify(QAhci *a, int port, uint16_t id[256])
{
    uint64_t buf = a->port[port].scratch;
    QAhciPrd prd = {.addr = buf, .bytes = 512};
    uint8_t fis[20];
    int ret;

    qahci_fis_h2d(fis, QATA_IDENTIFY, 0, 0, 0);
    fis[7] = 0;
    qahci_slot_prepare(a, port, 0, fis, false, 0, &prd, 1);
    ret = qahci_run(a, port, 0, false);
    if (ret == 0) {
        qos_memread(a->q, buf, id, 512);
    }
    return ret;
}

static void rw_prepare(QAhci *a, int port, int slot, bool write, bool ncq,
                       uint64_t lba, uint32_t sectors, uint64_t buf,
                       uint32_t prd_bytes)
{
    QAhciPrd prd[QAHCI_PRDT_MAX];
    uint8_t fis[20];
    unsigned n = qahci_prds(prd, QAHCI_PRDT_MAX, buf,
                            (uint64_t)sectors * QAHCI_SECTOR, prd_bytes);

    if (ncq) {
        qahci_fis_ncq(fis,
                      write ? QATA_WRITE_FPDMA_QUEUED : QATA_READ_FPDMA_QUEUED,
                      slot, lba, sectors, false);
    } else {
        qahci_fis_h2d(fis, write ? QATA_WRITE_DMA_EXT : QATA_READ_DMA_EXT, 0,
                      lba, sectors);
    }
    qahci_slot_prepare(a, port, slot, fis, write, 0, prd, n);
}

int qahci_rw(QAhci *a, int port, int slot, bool write, uint64_t lba,
             uint32_t sectors, uint64_t buf, uint32_t prd_bytes)
{
    rw_prepare(a, port, slot, write, false, lba, sectors, buf, prd_bytes);
    return qahci_run(a, port, slot, false);
}

void qahci_rw_ncq_issue(QAhci *a, int port, int slot, bool write, uint64_t lba,
                        uint32_t sectors, uint64_t buf, uint32_t prd_bytes)
{
    rw_prepare(a, port, slot, write, true, lba, sectors, buf, prd_bytes);
    qahci_issue(a, port, 1u << slot, true);
}

int qahci_rw_ncq(QAhci *a, int port, int slot, bool write, uint64_t lba,
                 uint32_t sectors, uint64_t buf, uint32_t prd_bytes)
{
    qahci_rw_ncq_issue(a, port, slot, write, lba, sectors, buf, prd_bytes);
    return qahci_wait(a, port, 1u << slot, QAHCI_TIMEOUT_MS);
}

int qahci_nondata(QAhci *a, int port, uint8_t command, uint16_t features,
                  uint64_t lba, uint16_t count)
{
    uint8_t fis[20];

    qahci_fis_h2d(fis, command, features, lba, count);
    qahci_slot_prepare(a, port, 0, fis, false, 0, NULL, 0);
    return qahci_run(a, port, 0, false);
}

void qahci_read_d2h(QAhci *a, int port, uint8_t fis[20])
{
    qos_memread(a->q, a->port[port].fb + QAHCI_RFIS_RFIS, fis, 20);
}

uint64_t qahci_d2h_lba(const uint8_t fis[20], bool lba48)
{
    uint64_t lba = fis[4] | (uint64_t)fis[5] << 8 | (uint64_t)fis[6] << 16;

    if (lba48) {
        return lba | (uint64_t)fis[8] << 24 | (uint64_t)fis[9] << 32 |
               (uint64_t)fis[10] << 40;
    }
    return lba | (uint64_t)(fis[7] & 0xf) << 24;
}

int qahci_read_batch(QAhci *a, int port, uint64_t lba, unsigned n,
                     uint32_t bytes, uint64_t buf, uint32_t prd_bytes, bool ncq)
{
    uint32_t sectors = bytes / QAHCI_SECTOR;
    uint32_t slots = n >= 32 ? 0xffffffffu : (1u << n) - 1;

    for (unsigned i = 0; i < n; i++) {
        rw_prepare(a, port, i, false, ncq, lba + (uint64_t)i * sectors, sectors,
                   buf + (uint64_t)i * bytes, prd_bytes);
    }
    qahci_issue(a, port, slots, ncq);
    return qahci_wait(a, port, slots, QAHCI_TIMEOUT_MS);
}
