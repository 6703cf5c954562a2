/*
 * libFuzzer target: the boot loaders, linux_load() (bzImage, initrd,
 * command line, boot_params) and elf_load() (bare-metal ELF64), on
 * arbitrary files into 64 MiB of guest RAM.
 *
 * Input: a flags byte (bit 0: ELF rather than bzImage; bit 1: with an
 * initrd), then for an initrd its length (u32, cut to what is left) and
 * bytes, then the kernel file. The files are memfds, opened by the loaders
 * through /proc/self/fd like any other path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "firmware/boot.h"
#include "tests/fuzz/fuzz-input.h"

#define FUZZ_LOADER_RAM_SIZE BOOT_MIN_RAM
#define FUZZ_LOADER_CMDLINE  "console=ttyS0 fuzz"

typedef struct FuzzFile {
    int fd;
    char path[64];
} FuzzFile;

static GuestMemory ram;
static FuzzFile kernel, initrd;

static void file_create(FuzzFile *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0) {
        perror("fuzz-loader: memfd_create");
        exit(1);
    }
    snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

static void file_set(FuzzFile *f, const uint8_t *data, size_t len)
{
    if (ftruncate(f->fd, 0) < 0 ||
        (len && pwrite(f->fd, data, len, 0) != (ssize_t)len)) {
        perror("fuzz-loader: writing the input file");
        exit(1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (gm_init(&ram, FUZZ_LOADER_RAM_SIZE) < 0) {
        fprintf(stderr, "fuzz-loader: no RAM\n");
        exit(1);
    }
    file_create(&kernel, "fuzz-kernel");
    file_create(&initrd, "fuzz-initrd");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = {.p = data, .left = size};
    uint8_t flags = fuzz_take(&in, 1);
    BootCpuState cpu = {0};
    const uint8_t *p;
    char err[256];
    size_t len;

    if (flags & 2) {
        p = fuzz_take_bytes(&in, fuzz_take(&in, 4), &len);
        file_set(&initrd, p, len);
    }
    p = fuzz_take_bytes(&in, in.left, &len);
    file_set(&kernel, p, len);

    /* Fresh zero pages: cheaper than memset() for what was not touched. */
    madvise(ram.host, ram.size, MADV_DONTNEED);
    if (boot_setup_cpu(&ram, &cpu) < 0) {
        abort();
    }
    if (flags & 1) {
        elf_load(&ram, kernel.path, BOOT_FDT_ADDR, &cpu, err, sizeof(err));
    } else {
        linux_load(&ram, kernel.path, flags & 2 ? initrd.path : NULL,
                   FUZZ_LOADER_CMDLINE, &cpu, err, sizeof(err));
    }
    return 0;
}
