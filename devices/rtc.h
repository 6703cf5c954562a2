/*
 * The PC's CMOS real-time clock (MC146818) at ports 0x70/0x71, as far as a
 * guest reads it: the host's UTC time in BCD, 24-hour mode, never "update in
 * progress", and 128 bytes of CMOS RAM. No alarms, no periodic interrupt.
 * Without it, Linux's rtc_cmos driver spins for seconds on all-ones reads
 * waiting for the update-in-progress bit to clear.
 */
#ifndef MINIVMM_DEVICES_RTC_H
#define MINIVMM_DEVICES_RTC_H

#include <stdint.h>

#include "devices/address-space.h"

#define RTC_PORT     0x70
#define RTC_CMOS_LEN 128

typedef struct Rtc {
    uint8_t index;
    uint8_t cmos[RTC_CMOS_LEN];
} Rtc;

int rtc_init(Rtc *rtc, AddressSpace *as);

#endif
