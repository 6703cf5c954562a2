/*
 * Time: the TSC, calibrated against the PIT at start-up, for timeouts and
 * measurements; and the LAPIC timer as a periodic tick that bounds each hlt
 * in irq_wait().
 */
#ifndef FWTEST_TIMER_H
#define FWTEST_TIMER_H

#include <stdbool.h>
#include <stdint.h>

void timer_init(void);
uint64_t timer_tsc_khz(void);
/* Microseconds since timer_init(). */
uint64_t timer_now_us(void);
/* A TSC value @ms from now, for timer_expired(). */
uint64_t timer_deadline_ms(unsigned ms);
bool timer_expired(uint64_t deadline);
void udelay(unsigned us);

/* The LAPIC timer, periodic on IRQ_TICK_VECTOR at about 1 kHz. */
void lapic_tick_start(void);
void lapic_tick_stop(void);

/*
 * Evaluate @cond until it is true or @ms have passed; the value is the
 * last evaluation. Every evaluation that reads a device register is an
 * exit, which paces the loop.
 */
#define WAIT_FOR(cond, ms)                                                     \
    ({                                                                         \
        uint64_t wait_deadline_ = timer_deadline_ms(ms);                       \
        bool wait_ok_;                                                         \
        while (!(wait_ok_ = (cond)) && !timer_expired(wait_deadline_)) {       \
            cpu_relax();                                                       \
        }                                                                      \
        wait_ok_;                                                              \
    })

#endif
