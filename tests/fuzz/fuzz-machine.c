/*
 * The device fuzzers' machine and script interpreter (see fuzz-machine.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio/main-loop.h"
#include "tests/fuzz/fuzz-machine.h"
#include "util/log.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA    0xcfc

/*
 * A bound on one run of the loop: a device that keeps rescheduling itself
 * must not hang the fuzzer. Real work needs a handful of iterations.
 */
#define FUZZ_MAX_LOOP_ITERATIONS 256

void fuzz_machine_init(FuzzMachine *m, uint64_t ram_size)
{
    /*
     * ppoll rather than io_uring: a kick (an eventfd write) is then seen by
     * the very next poll, so whether a step completes a request does not
     * depend on the kernel's timing.
     */
    if (main_loop_init(&(MainLoopOptions){.fdmon = AIO_FDMON_POLL}) < 0 ||
        gm_init(&m->ram, ram_size) < 0) {
        fprintf(stderr, "fuzz: cannot set up the machine\n");
        exit(1);
    }
    as_init(&m->as, &m->ram);
    pci_host_init(&m->host, &m->as);
    log_set_quiet(true);
}

void fuzz_machine_reset_ram(FuzzMachine *m)
{
    memset(m->ram.host, 0, m->ram.size);
}

static void config_select(FuzzMachine *m, uint8_t devfn, unsigned offset)
{
    as_write(&m->as, AS_PIO, PCI_CONFIG_ADDRESS, 4,
             0x80000000u | (uint32_t)devfn << 8 | (offset & 0xfc));
}

void fuzz_config_write(FuzzMachine *m, uint8_t devfn, unsigned offset,
                       unsigned size, uint32_t value)
{
    config_select(m, devfn, offset);
    as_write(&m->as, AS_PIO, PCI_CONFIG_DATA + (offset & 3), size, value);
}

uint32_t fuzz_config_read(FuzzMachine *m, uint8_t devfn, unsigned offset,
                          unsigned size)
{
    uint64_t value = 0;

    config_select(m, devfn, offset);
    as_read(&m->as, AS_PIO, PCI_CONFIG_DATA + (offset & 3), size, &value);
    return (uint32_t)value;
}

void fuzz_run_main_loop(void)
{
    AioContext *ctx = main_loop_context();

    for (int i = 0; i < FUZZ_MAX_LOOP_ITERATIONS; i++) {
        if (!aio_poll(ctx, false)) {
            return;
        }
    }
}

static void ram_write(FuzzMachine *m, FuzzInput *in)
{
    uint64_t gpa = fuzz_take(in, 4) % m->ram.size;
    size_t want = fuzz_take(in, 2), len;
    const uint8_t *data = fuzz_take_bytes(in, want, &len);

    if (len > m->ram.size - gpa) {
        len = m->ram.size - gpa;
    }
    memcpy(m->ram.host + gpa, data, len);
}

void fuzz_run_script(FuzzMachine *m, FuzzInput *in, uint8_t devfn)
{
    while (fuzz_more(in)) {
        uint8_t op = fuzz_take(in, 1);
        unsigned size = fuzz_size(op >> 3);
        uint64_t addr, value;

        switch (op & 7) {
        case FUZZ_OP_MMIO_READ:
            addr = FUZZ_MMIO_BASE + fuzz_take(in, 2);
            as_read(&m->as, AS_MMIO, addr, size, &value);
            break;
        case FUZZ_OP_RAM_WRITE:
            ram_write(m, in);
            break;
        case FUZZ_OP_RUN:
            fuzz_run_main_loop();
            break;
        case FUZZ_OP_CONFIG_WRITE:
            size = size > 4 ? 4 : size;
            addr = fuzz_take(in, 1);
            value = fuzz_take(in, size);
            fuzz_config_write(m, devfn, addr, size, value);
            break;
        case FUZZ_OP_CONFIG_READ:
            size = size > 4 ? 4 : size;
            fuzz_config_read(m, devfn, fuzz_take(in, 1), size);
            break;
        default: /* writes get three opcodes: they are what moves a device */
            addr = FUZZ_MMIO_BASE + fuzz_take(in, 2);
            value = fuzz_take(in, size);
            as_write(&m->as, AS_MMIO, addr, size, value);
            break;
        }
        if (op & FUZZ_OP_THEN_RUN) {
            fuzz_run_main_loop();
        }
    }
    fuzz_run_main_loop();
}

static void ignore_msi(void *opaque, uint64_t addr, uint32_t data)
{
    (void)opaque;
    (void)addr;
    (void)data;
}

const MsiSink fuzz_msi_sink = {.send = ignore_msi};

void fuzz_ignore_level(void *opaque, int gsi, int level)
{
    (void)opaque;
    (void)gsi;
    (void)level;
}
