/*
 * CPU and bus primitives for the bare-metal tests: port I/O, MMIO, barriers,
 * MSRs, the TSC. Everything runs identity-mapped, so a guest-physical
 * address is a pointer.
 */
#ifndef FWTEST_IO_H
#define FWTEST_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)     (sizeof(a) / sizeof((a)[0]))
#define ALIGNED(n)        __attribute__((aligned(n)))
#define NORETURN          __attribute__((noreturn))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

static inline void outb(uint16_t port, uint8_t v)
{
    asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;

    asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;

    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/*
 * MMIO: one plain mov of exactly the given width, in asm as Linux does it.
 * A volatile dereference is not enough: gcc may load a 32-bit register
 * with movd into an SSE register, and KVM's instruction emulator (which
 * every MMIO exit goes through) does not do SSE moves.
 */
static inline uint8_t readb(uint64_t addr)
{
    uint8_t v;

    asm volatile("movb %1, %0"
                 : "=q"(v)
                 : "m"(*(volatile uint8_t *)(uintptr_t)addr)
                 : "memory");
    return v;
}

static inline uint16_t readw(uint64_t addr)
{
    uint16_t v;

    asm volatile("movw %1, %0"
                 : "=r"(v)
                 : "m"(*(volatile uint16_t *)(uintptr_t)addr)
                 : "memory");
    return v;
}

static inline uint32_t readl(uint64_t addr)
{
    uint32_t v;

    asm volatile("movl %1, %0"
                 : "=r"(v)
                 : "m"(*(volatile uint32_t *)(uintptr_t)addr)
                 : "memory");
    return v;
}

static inline void writeb(uint64_t addr, uint8_t v)
{
    asm volatile("movb %1, %0"
                 : "=m"(*(volatile uint8_t *)(uintptr_t)addr)
                 : "q"(v)
                 : "memory");
}

static inline void writew(uint64_t addr, uint16_t v)
{
    asm volatile("movw %1, %0"
                 : "=m"(*(volatile uint16_t *)(uintptr_t)addr)
                 : "r"(v)
                 : "memory");
}

static inline void writel(uint64_t addr, uint32_t v)
{
    asm volatile("movl %1, %0"
                 : "=m"(*(volatile uint32_t *)(uintptr_t)addr)
                 : "r"(v)
                 : "memory");
}

/* Orders the compiler only: x86 keeps stores in order and loads in order. */
static inline void barrier(void)
{
    asm volatile("" : : : "memory");
}

/* Store-load ordering too (before reading what a device may have written). */
static inline void mb(void)
{
    asm volatile("mfence" : : : "memory");
}

static inline void cpu_relax(void)
{
    asm volatile("pause" : : : "memory");
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void irq_enable(void)
{
    asm volatile("sti" : : : "memory");
}

static inline void irq_disable(void)
{
    asm volatile("cli" : : : "memory");
}

/* sti's one-instruction shadow makes this atomic: no wakeup is lost. */
static inline void safe_halt(void)
{
    asm volatile("sti; hlt" : : : "memory");
}

static inline uint64_t read_cr2(void)
{
    uint64_t v;

    asm volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

#endif
