/*
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit
 * entry: no real-mode setup code runs, so only the protected-mode part of the
 * bzImage goes into RAM and we fill boot_params ourselves, the way a
 * bootloader that jumps straight to startup_64 must.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "firmware/boot.h"

/* Setup header fields: offsets in the file and in boot_params alike. */
#define HDR_START            0x1f1
#define HDR_SETUP_SECTS      0x1f1
#define HDR_SYSSIZE          0x1f4
#define HDR_JUMP             0x200
#define HDR_MAGIC            0x202
#define HDR_VERSION          0x206
#define HDR_TYPE_OF_LOADER   0x210
#define HDR_LOADFLAGS        0x211
#define HDR_RAMDISK_IMAGE    0x218
#define HDR_RAMDISK_SIZE     0x21c
#define HDR_HEAP_END_PTR     0x224
#define HDR_CMD_LINE_PTR     0x228
#define HDR_INITRD_ADDR_MAX  0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE      0x234
#define HDR_XLOADFLAGS       0x236
#define HDR_CMDLINE_SIZE     0x238
#define HDR_PREF_ADDRESS     0x258
#define HDR_INIT_SIZE        0x260
#define HDR_END_2_12         0x268 /* the last 2.12 field ends here */
#define HDR_BP_END           0x290 /* room for the header in boot_params */

/* boot_params fields outside the setup header. */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_E820_TABLE        0x2d0
#define BP_E820_SLOTS        128 /* E820_MAX_ENTRIES_ZEROPAGE */
#define E820_ENTRY_SIZE      20  /* packed: u64 addr, u64 size, u32 type */
#define BP_SIZE              0x1000

#define LOADED_HIGH   0x01
#define CAN_USE_HEAP  0x80
#define XLF_KERNEL_64 0x01
#define HEAP_END      0xfe00 /* offset from the real-mode segment, as usual */
#define LOADER_UNDEF  0xff   /* "no registered bootloader ID" */
#define MIN_PROTOCOL  0x020c
#define ENTRY_64      0x200 /* startup_64 relative to the load address */

/*
 * The initrd stays this far below the top of RAM: room the board may want
 * for tables of its own later (QEMU keeps its ACPI tables there).
 */
#define INITRD_TOP_GAP (1ULL << 20)

typedef struct Loader {
    GuestMemory *gm;
    const char *path;
    char *err;
    size_t errlen;
} Loader;

static int fail(Loader *l, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(Loader *l, int ret, const char *fmt, ...)
{
    char msg[192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "%s: %s", l->path, msg);
    return ret;
}

static uint32_t le(const uint8_t *hdr, unsigned off, unsigned len)
{
    uint32_t v = 0;

    for (unsigned i = 0; i < len; i++) {
        v |= (uint32_t)hdr[off + i] << (8 * i);
    }
    return v;
}

static uint64_t le64(const uint8_t *hdr, unsigned off)
{
    return le(hdr, off, 4) | (uint64_t)le(hdr, off + 4, 4) << 32;
}

/* Read @len bytes at file offset @off straight into guest RAM. */
static int read_to_guest(Loader *l, int fd, uint64_t off, uint64_t gpa,
                         uint64_t len)
{
    uint8_t *p = gm_ptr(l->gm, gpa, len);

    if (!p) {
        return fail(l, -ENOMEM, "does not fit in guest RAM");
    }
    while (len) {
        ssize_t n = pread(fd, p, len, off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail(l, -errno, "read: %s", strerror(errno));
        }
        if (n == 0) {
            return fail(l, -ENOEXEC, "truncated");
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int open_file(Loader *l, uint64_t *size)
{
    struct stat st;
    int fd = open(l->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return fail(l, -errno, "%s", strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(l, -EINVAL, "not a regular file");
    }
    *size = st.st_size;
    return fd;
}

/* What the kernel file tells us, checked. */
typedef struct Kernel {
    uint8_t hdr[HDR_BP_END];
    unsigned hdr_end; /* setup header bytes to copy end here */
    uint64_t pm_offset, pm_size;
    uint64_t end; /* lowest address above what the kernel may use */
} Kernel;

static int check_header(Loader *l, int fd, uint64_t file_size, Kernel *k)
{
    unsigned sects;
    uint64_t run_start, align;
    ssize_t n;

    memset(k->hdr, 0, sizeof(k->hdr));
    n = pread(fd, k->hdr, sizeof(k->hdr), 0);
    if (n < HDR_END_2_12) {
        return fail(l, -ENOEXEC, "not a bzImage (too short)");
    }
    if (memcmp(k->hdr + HDR_MAGIC, "HdrS", 4) != 0) {
        return fail(l, -ENOEXEC, "not a bzImage (no HdrS signature)");
    }
    if (le(k->hdr, HDR_VERSION, 2) < MIN_PROTOCOL) {
        return fail(l, -ENOEXEC, "boot protocol %u.%02u too old (need 2.12)",
                    k->hdr[HDR_VERSION + 1], k->hdr[HDR_VERSION]);
    }
    if (!(le(k->hdr, HDR_XLOADFLAGS, 2) & XLF_KERNEL_64)) {
        return fail(l, -ENOEXEC, "no 64-bit entry point (XLF_KERNEL_64)");
    }
    /* The jump at 0x200 skips exactly the header. */
    k->hdr_end = 0x202 + k->hdr[HDR_JUMP + 1];
    if (k->hdr_end < HDR_END_2_12) {
        return fail(l, -ENOEXEC, "setup header too short");
    }
    if (k->hdr_end > n) {
        k->hdr_end = n; /* n <= HDR_BP_END: the room in boot_params */
    }
    sects = k->hdr[HDR_SETUP_SECTS] ? k->hdr[HDR_SETUP_SECTS] : 4;
    k->pm_offset = (sects + 1) * 512ULL;
    if (file_size <= k->pm_offset ||
        file_size - k->pm_offset < le(k->hdr, HDR_SYSSIZE, 4) * 16ULL) {
        return fail(l, -ENOEXEC, "truncated (protected-mode part missing)");
    }
    k->pm_size = file_size - k->pm_offset;

    /*
     * The decompressor runs at the load address rounded up to
     * kernel_alignment, never below pref_address (LOAD_PHYSICAL_ADDR), and
     * needs init_size bytes from there before it reads the e820 map.
     */
    run_start = le64(k->hdr, HDR_PREF_ADDRESS);
    align = le(k->hdr, HDR_KERNEL_ALIGNMENT, 4);
    if (k->hdr[HDR_RELOCATABLE] && align && !(align & (align - 1)) &&
        BOOT_KERNEL_ADDR + align - 1 > run_start) {
        run_start = (BOOT_KERNEL_ADDR + align - 1) & ~(align - 1);
    }
    if (run_start > UINT64_MAX - UINT32_MAX) {
        return fail(l, -ENOEXEC, "bad pref_address");
    }
    k->end = run_start + le(k->hdr, HDR_INIT_SIZE, 4);
    if (k->end < BOOT_KERNEL_ADDR + k->pm_size) {
        k->end = BOOT_KERNEL_ADDR + k->pm_size;
    }
    if (k->end > l->gm->size) {
        return fail(l, -ENOMEM,
                    "kernel needs %llu MiB of RAM, the guest has %llu MiB",
                    (unsigned long long)((k->end + (1 << 20) - 1) >> 20),
                    (unsigned long long)(l->gm->size >> 20));
    }
    return 0;
}

/* Highest page-aligned spot for the initrd; sets ramdisk_image/size. */
static int load_initrd(Loader *l, const Kernel *k, uint8_t *bp)
{
    uint64_t size, top, addr;
    int fd = open_file(l, &size);
    int ret;

    if (fd < 0) {
        return fd;
    }
    top = (uint64_t)le(k->hdr, HDR_INITRD_ADDR_MAX, 4) + 1;
    if (top > l->gm->size - INITRD_TOP_GAP) {
        top = l->gm->size - INITRD_TOP_GAP;
    }
    if (size > UINT32_MAX || size > top || top - size < k->end) {
        close(fd);
        return fail(l, -ENOMEM,
                    "initrd of %llu MiB does not fit between the kernel "
                    "(ends at %llu MiB) and %llu MiB",
                    (unsigned long long)(size >> 20),
                    (unsigned long long)(k->end >> 20),
                    (unsigned long long)(top >> 20));
    }
    addr = (top - size) & ~0xfffULL;
    ret = read_to_guest(l, fd, 0, addr, size);
    close(fd);
    if (ret < 0) {
        return ret;
    }
    memcpy(bp + HDR_RAMDISK_IMAGE, &(uint32_t){addr}, 4);
    memcpy(bp + HDR_RAMDISK_SIZE, &(uint32_t){size}, 4);
    memcpy(bp + BP_EXT_RAMDISK_IMAGE, &(uint32_t){addr >> 32}, 4);
    memcpy(bp + BP_EXT_RAMDISK_SIZE, &(uint32_t){size >> 32}, 4);
    return 0;
}

static void write_e820(uint8_t *bp, uint64_t ram_size)
{
    BootE820Entry map[BOOT_E820_MAX];
    int n = boot_e820_map(ram_size, map);

    bp[BP_E820_ENTRIES] = n;
    for (int i = 0; i < n; i++) {
        uint8_t *e = bp + BP_E820_TABLE + E820_ENTRY_SIZE * i;

        memcpy(e, &map[i].addr, 8);
        memcpy(e + 8, &map[i].size, 8);
        memcpy(e + 16, &map[i].type, 4);
    }
}

int linux_load(GuestMemory *gm, const char *kernel, const char *initrd,
               const char *cmdline, BootCpuState *cpu, char *err, size_t errlen)
{
    Loader l = {.gm = gm, .path = kernel, .err = err, .errlen = errlen};
    uint8_t *bp = gm_ptr(gm, BOOT_ZERO_PAGE_ADDR, BP_SIZE);
    char *cl = gm_ptr(gm, BOOT_CMDLINE_ADDR, BOOT_CMDLINE_MAX);
    size_t cl_len = cmdline ? strlen(cmdline) : 0;
    uint64_t file_size;
    Kernel k;
    int fd, ret;

    if (gm->size < BOOT_MIN_RAM || gm->size > BOOT_MAX_RAM || !bp || !cl) {
        return fail(&l, -EINVAL, "guest RAM must be %llu MiB to %llu MiB",
                    BOOT_MIN_RAM >> 20, BOOT_MAX_RAM >> 20);
    }
    fd = open_file(&l, &file_size);
    if (fd < 0) {
        return fd;
    }
    ret = check_header(&l, fd, file_size, &k);
    if (ret == 0) {
        ret = read_to_guest(&l, fd, k.pm_offset, BOOT_KERNEL_ADDR, k.pm_size);
    }
    close(fd);
    if (ret < 0) {
        return ret;
    }
    if (cl_len >= BOOT_CMDLINE_MAX || cl_len > le(k.hdr, HDR_CMDLINE_SIZE, 4)) {
        return fail(&l, -E2BIG, "command line of %zu bytes too long", cl_len);
    }

    memset(bp, 0, BP_SIZE);
    memcpy(bp + HDR_START, k.hdr + HDR_START, k.hdr_end - HDR_START);
    bp[HDR_TYPE_OF_LOADER] = LOADER_UNDEF;
    bp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
    memcpy(bp + HDR_HEAP_END_PTR, &(uint16_t){HEAP_END}, 2);
    memcpy(bp + HDR_CMD_LINE_PTR, &(uint32_t){BOOT_CMDLINE_ADDR}, 4);
    memset(bp + BP_EXT_CMD_LINE_PTR, 0, 4);
    memcpy(cl, cmdline ? cmdline : "", cl_len + 1);
    write_e820(bp, gm->size);
    if (initrd) {
        l.path = initrd;
        ret = load_initrd(&l, &k, bp);
        if (ret < 0) {
            return ret;
        }
    }
    cpu->rip = BOOT_KERNEL_ADDR + ENTRY_64;
    cpu->rsi = BOOT_ZERO_PAGE_ADDR;
    return 0;
}

int linux_e820_reserve(GuestMemory *gm, uint64_t addr, uint64_t size)
{
    uint8_t *bp = gm_ptr(gm, BOOT_ZERO_PAGE_ADDR, BP_SIZE);
    uint32_t type = BOOT_E820_RESERVED;
    uint8_t *e;

    if (!bp || addr < gm->size || !size) {
        return -EINVAL;
    }
    if (bp[BP_E820_ENTRIES] >= BP_E820_SLOTS) {
        return -ENOSPC;
    }
    e = bp + BP_E820_TABLE + E820_ENTRY_SIZE * bp[BP_E820_ENTRIES]++;
    memcpy(e, &addr, 8);
    memcpy(e + 8, &size, 8);
    memcpy(e + 16, &type, 4);
    return 0;
}
