/*
 * A loader for the bare-metal test programs: static ELF64 x86-64
 * executables linked to run at their physical addresses above 1 MiB. The
 * file is untrusted input as far as this code is concerned: every offset and
 * size is checked before it is used, overflow included.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "firmware/boot.h"

#define ELF_MAX_PHNUM 64

static int fail(char *err, size_t errlen, const char *path, int ret,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char *path, int ret,
                const char *fmt, ...)
{
    char msg[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", path, msg);
    return ret;
}

static bool read_exact(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = pread(fd, p, len, off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        off += n;
        len -= n;
    }
    return true;
}

static const char *check_ehdr(const Elf64_Ehdr *eh, uint64_t file_size)
{
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
        return "not an ELF file";
    }
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        eh->e_ident[EI_VERSION] != EV_CURRENT) {
        return "not a little-endian ELF64 file";
    }
    if (eh->e_machine != EM_X86_64) {
        return "not an x86-64 executable";
    }
    if (eh->e_type != ET_EXEC) {
        return "not a static executable (ET_EXEC)";
    }
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
        eh->e_phnum > ELF_MAX_PHNUM) {
        return "bad program header table";
    }
    if (eh->e_phoff > file_size ||
        (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > file_size - eh->e_phoff) {
        return "program header table outside the file";
    }
    return NULL;
}

/* NULL if @ph may be loaded into @gm, else why not. */
static const char *check_segment(const Elf64_Phdr *ph, const GuestMemory *gm,
                                 uint64_t file_size)
{
    if (ph->p_filesz > ph->p_memsz) {
        return "segment with filesz > memsz";
    }
    if (ph->p_offset > file_size || ph->p_filesz > file_size - ph->p_offset) {
        return "segment data outside the file";
    }
    if (ph->p_paddr < BOOT_KERNEL_ADDR) {
        return "segment below 1 MiB";
    }
    if (!gm_range_ok(gm, ph->p_paddr, ph->p_memsz)) {
        return "segment outside guest RAM";
    }
    return NULL;
}

int elf_load(GuestMemory *gm, const char *path, uint64_t fdt_gpa,
             BootCpuState *cpu, char *err, size_t errlen)
{
    Elf64_Phdr *ph = NULL;
    Elf64_Ehdr eh;
    struct stat st;
    const char *why;
    int fd, ret = 0, nload = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(err, errlen, path, -errno, "%s", strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ret = fail(err, errlen, path, -EINVAL, "not a regular file");
        goto out;
    }
    if (!read_exact(fd, &eh, sizeof(eh), 0)) {
        ret = fail(err, errlen, path, -ENOEXEC, "not an ELF file (too short)");
        goto out;
    }
    why = check_ehdr(&eh, st.st_size);
    if (why) {
        ret = fail(err, errlen, path, -ENOEXEC, "%s", why);
        goto out;
    }
    ph = calloc(eh.e_phnum, sizeof(*ph));
    if (!ph) {
        ret = -ENOMEM;
        goto out;
    }
    if (!read_exact(fd, ph, eh.e_phnum * sizeof(*ph), eh.e_phoff)) {
        ret = fail(err, errlen, path, -ENOEXEC, "truncated program headers");
        goto out;
    }
    /* Check every segment before copying any, so a failure leaves RAM as is. */
    for (int i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD) {
            continue;
        }
        why = check_segment(&ph[i], gm, st.st_size);
        if (why) {
            ret = fail(err, errlen, path, -ENOEXEC, "%s (#%d at 0x%llx)", why,
                       i, (unsigned long long)ph[i].p_paddr);
            goto out;
        }
        nload++;
    }
    if (!nload) {
        ret = fail(err, errlen, path, -ENOEXEC, "no loadable segment");
        goto out;
    }
    if (eh.e_entry < BOOT_KERNEL_ADDR || !gm_range_ok(gm, eh.e_entry, 1)) {
        ret = fail(err, errlen, path, -ENOEXEC, "entry 0x%llx not in RAM",
                   (unsigned long long)eh.e_entry);
        goto out;
    }
    for (int i = 0; i < eh.e_phnum; i++) {
        uint8_t *dst;

        if (ph[i].p_type != PT_LOAD) {
            continue;
        }
        dst = gm_ptr(gm, ph[i].p_paddr, ph[i].p_memsz);
        if (!read_exact(fd, dst, ph[i].p_filesz, ph[i].p_offset)) {
            ret = fail(err, errlen, path, -EIO, "read failed");
            goto out;
        }
        memset(dst + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
    }
    cpu->rip = eh.e_entry;
    cpu->rdi = fdt_gpa;
    cpu->rsp = BOOT_STACK_TOP;

out:
    free(ph);
    close(fd);
    return ret;
}
