#include <string.h>
#include <time.h>

#include "devices/rtc.h"

enum {
    RTC_SECONDS = 0x00,
    RTC_MINUTES = 0x02,
    RTC_HOURS = 0x04,
    RTC_WEEKDAY = 0x06,
    RTC_DAY = 0x07,
    RTC_MONTH = 0x08,
    RTC_YEAR = 0x09,
    RTC_REG_A = 0x0a,
    RTC_REG_B = 0x0b,
    RTC_REG_C = 0x0c,
    RTC_REG_D = 0x0d,
    RTC_CENTURY = 0x32,
};

#define RTC_A_32KHZ_1KHZ                                                       \
    0x26                 /* divider on, 1024 Hz rate; UIP (bit 7) clear        \
                          */
#define RTC_B_24H   0x02 /* 24-hour, BCD (DM = 0), no interrupts */
#define RTC_D_VALID 0x80 /* the battery is fine: time and RAM valid */

static uint8_t bcd(int v)
{
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_register(Rtc *rtc, uint8_t reg)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    switch (reg) {
    case RTC_SECONDS:
        return bcd(tm.tm_sec);
    case RTC_MINUTES:
        return bcd(tm.tm_min);
    case RTC_HOURS:
        return bcd(tm.tm_hour);
    case RTC_WEEKDAY:
        return bcd(tm.tm_wday + 1);
    case RTC_DAY:
        return bcd(tm.tm_mday);
    case RTC_MONTH:
        return bcd(tm.tm_mon + 1);
    case RTC_YEAR:
        return bcd(tm.tm_year % 100);
    case RTC_CENTURY:
        return bcd((tm.tm_year + 1900) / 100);
    case RTC_REG_A:
        return RTC_A_32KHZ_1KHZ;
    case RTC_REG_B:
        return RTC_B_24H;
    case RTC_REG_C:
        return 0; /* no interrupt flags pending */
    case RTC_REG_D:
        return RTC_D_VALID;
    default:
        return rtc->cmos[reg];
    }
}

static uint64_t rtc_read(void *opaque, uint64_t offset, unsigned size)
{
    Rtc *rtc = opaque;

    (void)size;
    return offset == 1 ? rtc_register(rtc, rtc->index) : 0xff;
}

static void rtc_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    Rtc *rtc = opaque;

    (void)size;
    if (offset == 0) {
        rtc->index = value & 0x7f; /* bit 7 is the NMI mask: ignored */
    } else if (rtc->index > RTC_REG_D) {
        rtc->cmos[rtc->index] = value; /* CMOS RAM; the clock is read-only */
    }
}

static const RegionOps rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
};

int rtc_init(Rtc *rtc, AddressSpace *as)
{
    memset(rtc, 0, sizeof(*rtc));
    return as_add(as, AS_PIO, RTC_PORT, 2, &rtc_ops, rtc, "rtc");
}
