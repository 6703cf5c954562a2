#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/irq.h"
#include "firmware/tests/lib/timer.h"

#define IDT_INTERRUPT_GATE 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define CODE_SELECTOR      0x10 /* minivmm's GDT (firmware/boot.h) */
#define MSR_APIC_BASE      0x1b
#define APIC_BASE_MASK     0xfffff000ull
#define PIC1_DATA          0x21
#define PIC2_DATA          0xa1
#define STUB_SIZE          16

/* What isr.S leaves on the stack, lowest address first. */
typedef struct IrqFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
} IrqFrame;

typedef struct IdtEntry {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
} __attribute__((packed)) IdtEntry;

extern const char isr_stubs[];

volatile unsigned long irq_count[256];
static IdtEntry idt[256] ALIGNED(16);
static IrqHandler *handlers[256];
static void *handler_opaque[256];
static uint64_t lapic_base = LAPIC_DEFAULT_BASE;

static const char *const exception_names[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM no FPU",
    "#DF double fault",
    "coprocessor overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
};

uint32_t lapic_read(unsigned reg)
{
    return readl(lapic_base + reg);
}

void lapic_write(unsigned reg, uint32_t v)
{
    writel(lapic_base + reg, v);
}

uint32_t lapic_id(void)
{
    return lapic_read(LAPIC_ID) >> 24;
}

uint32_t lapic_msi_address(void)
{
    return LAPIC_DEFAULT_BASE | lapic_id() << 12;
}

static NORETURN void exception(const IrqFrame *f)
{
    const char *name = f->vector < 32 && exception_names[f->vector]
                           ? exception_names[f->vector]
                           : "exception";

    printf("exception %lu (%s) error=0x%lx at rip=0x%lx cs=0x%lx "
           "rflags=0x%lx rsp=0x%lx cr2=0x%lx\n",
           (unsigned long)f->vector, name, (unsigned long)f->error,
           (unsigned long)f->rip, (unsigned long)f->cs,
           (unsigned long)f->rflags, (unsigned long)f->rsp,
           (unsigned long)read_cr2());
    printf("  rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n"
           "  rsi=%016lx rdi=%016lx rbp=%016lx r8 =%016lx\n",
           (unsigned long)f->rax, (unsigned long)f->rbx, (unsigned long)f->rcx,
           (unsigned long)f->rdx, (unsigned long)f->rsi, (unsigned long)f->rdi,
           (unsigned long)f->rbp, (unsigned long)f->r8);
    fw_abort("unexpected exception %lu", (unsigned long)f->vector);
}

void irq_dispatch(IrqFrame *f);

void irq_dispatch(IrqFrame *f)
{
    unsigned v = f->vector & 0xff;

    if (v < IRQ_FIRST_EXTERNAL) {
        exception(f);
    }
    irq_count[v]++;
    if (handlers[v]) {
        handlers[v](v, handler_opaque[v]);
    }
    /* Spurious interrupts set no ISR bit, so they take no EOI. */
    if (v != IRQ_SPURIOUS_VECTOR) {
        lapic_write(LAPIC_EOI, 0);
    }
}

void irq_set_handler(unsigned vector, IrqHandler *fn, void *opaque)
{
    handler_opaque[vector & 0xff] = opaque;
    barrier();
    handlers[vector & 0xff] = fn;
}

void irq_init(void)
{
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) idtr = {sizeof(idt) - 1, (uintptr_t)idt};

    for (int v = 0; v < 256; v++) {
        uint64_t a = (uintptr_t)isr_stubs + (uint64_t)v * STUB_SIZE;

        idt[v] = (IdtEntry){.offset_lo = a & 0xffff,
                            .selector = CODE_SELECTOR,
                            .type = IDT_INTERRUPT_GATE,
                            .offset_mid = (a >> 16) & 0xffff,
                            .offset_hi = a >> 32};
    }
    asm volatile("lidt %0" : : "m"(idtr));

    /*
     * The in-kernel 8259s come up unmasked with vector base 0, and LINT0
     * is ExtINT: a stray ISA interrupt would look like #DE. Mask them all;
     * the tests use MSI and the LAPIC only.
     */
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);

    lapic_base = rdmsr(MSR_APIC_BASE) & APIC_BASE_MASK;
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | IRQ_SPURIOUS_VECTOR);
    lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | IRQ_TICK_VECTOR);
}

bool irq_wait(unsigned vector, unsigned long want, unsigned timeout_ms)
{
    uint64_t deadline = timer_deadline_ms(timeout_ms);
    bool ok;

    lapic_tick_start();
    for (;;) {
        irq_disable();
        ok = irq_count[vector & 0xff] >= want;
        if (ok || timer_expired(deadline)) {
            break;
        }
        safe_halt(); /* the wanted interrupt or the next tick wakes us */
    }
    lapic_tick_stop();
    return ok;
}

void irq_settle(unsigned ms)
{
    uint64_t deadline = timer_deadline_ms(ms);

    lapic_tick_start();
    while (!timer_expired(deadline)) {
        safe_halt();
        irq_disable();
    }
    lapic_tick_stop();
}
