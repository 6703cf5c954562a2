/*
 * Interrupts: an IDT whose 256 entries all count into irq_count[], exceptions
 * that abort the test with a register dump, and the local APIC (xAPIC MMIO)
 * that MSIs and the timer tick arrive through.
 */
#ifndef FWTEST_IRQ_H
#define FWTEST_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#define IRQ_FIRST_EXTERNAL  32
#define IRQ_TICK_VECTOR     0xef /* the LAPIC timer, used by irq_wait() */
#define IRQ_SPURIOUS_VECTOR 0xff

#define LAPIC_DEFAULT_BASE 0xfee00000u
#define LAPIC_ID           0x020
#define LAPIC_VERSION      0x030
#define LAPIC_TPR          0x080
#define LAPIC_EOI          0x0b0
#define LAPIC_SVR          0x0f0
#define LAPIC_ISR0         0x100
#define LAPIC_IRR0         0x200
#define LAPIC_LVT_TIMER    0x320
#define LAPIC_TIMER_INIT   0x380
#define LAPIC_TIMER_CUR    0x390
#define LAPIC_TIMER_DIV    0x3e0
#define LAPIC_SVR_ENABLE   0x100
#define LAPIC_LVT_MASKED   (1u << 16)
#define LAPIC_LVT_PERIODIC (1u << 17)

/* Interrupts seen per vector since irq_init(); handlers update it first. */
extern volatile unsigned long irq_count[256];

typedef void IrqHandler(unsigned vector, void *opaque);

/* IDT loaded, the 8259 PICs masked, the LAPIC software-enabled. */
void irq_init(void);
/* Run @fn (interrupts off) for each interrupt on @vector, before the EOI. */
void irq_set_handler(unsigned vector, IrqHandler *fn, void *opaque);

uint32_t lapic_read(unsigned reg);
void lapic_write(unsigned reg, uint32_t v);
uint32_t lapic_id(void);
/* The address an MSI must target to reach this CPU (physical destination). */
uint32_t lapic_msi_address(void);

/*
 * Sleep (sti; hlt) until irq_count[@vector] >= @want, at most @timeout_ms;
 * a LAPIC timer tick bounds each hlt. Returns true if the count got there.
 * Interrupts are off again on return.
 */
bool irq_wait(unsigned vector, unsigned long want, unsigned timeout_ms);
/*
 * Sleep @ms with interrupts on, so that messages already sent (pending in
 * the LAPIC while interrupts were off) are taken and counted before a
 * check that no more arrive.
 */
void irq_settle(unsigned ms);

#endif
