/*
 * Tests of the boot structures: GDT and page tables, the Linux boot protocol
 * with synthetic bzImages built here (and Debian's kernel when
 * scripts/guest-kernel.sh has fetched it), the ELF loader and the MP table.
 * Everything is checked byte by byte in guest RAM; no guest code runs.
 */
#include <check.h>
#include <elf.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "firmware/boot.h"
#include "tests/unit/suites.h"

#define MIB (1ULL << 20)

static GuestMemory gm;
static BootCpuState cpu;
static char err[256];

static void ram(uint64_t size)
{
    ck_assert_int_eq(gm_init(&gm, size), 0);
}

static void teardown(void)
{
    if (gm.host) {
        gm_cleanup(&gm);
    }
    memset(&gm, 0, sizeof(gm));
}

static uint64_t ld(uint64_t gpa, unsigned len)
{
    uint64_t v = 0;

    ck_assert(gm_read(&gm, gpa, &v, len) == 0);
    return v;
}

/* A temporary file holding @len bytes of @buf; the caller unlinks it. */
static void temp_file(char *path, size_t plen, const void *buf, size_t len)
{
    int fd;

    snprintf(path, plen, "/tmp/minivmm-test-boot-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* ---- GDT and page tables ------------------------------------------------ */

/* Walk the guest's page tables as the MMU would; -1 if not mapped. */
static int64_t translate(uint64_t va)
{
    uint64_t pml4e = ld(cpu.cr3 + 8 * ((va >> 39) & 511), 8), pdpte, pde;

    if (!(pml4e & 1)) {
        return -1;
    }
    pdpte = ld((pml4e & ~0xfffULL) + 8 * ((va >> 30) & 511), 8);
    if (!(pdpte & 1) || (pdpte & 0x80)) {
        return -1;
    }
    pde = ld((pdpte & ~0xfffULL) + 8 * ((va >> 21) & 511), 8);
    if (!(pde & 1) || !(pde & 2) || !(pde & 0x80)) {
        return -1;
    }
    return (pde & ~0x1fffffULL & 0xfffffffffffffULL) + (va & 0x1fffff);
}

START_TEST(test_cpu_page_tables)
{
    const uint64_t samples[] = {0,          0x1000,     0x7000,     0x100000,
                                0x1fffff,   0x200000,   0x3fffffff, 0x40000000,
                                0x7fffffff, 0xc0000000, 0xfec00000, 0xfee00000,
                                0xfffff000, 0xffffffff};

    ram(64 * MIB);
    ck_assert_int_eq(boot_setup_cpu(&gm, &cpu), 0);
    ck_assert_uint_eq(cpu.cr3, BOOT_PML4_ADDR);
    ck_assert_uint_eq(cpu.rsp, BOOT_STACK_TOP);
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        ck_assert_msg(translate(samples[i]) == (int64_t)samples[i],
                      "va 0x%llx -> 0x%llx", (unsigned long long)samples[i],
                      (unsigned long long)translate(samples[i]));
    }
    for (uint64_t va = 0; va < (4ULL << 30); va += 2 * MIB + 4096) {
        ck_assert_int_eq(translate(va), (int64_t)va);
    }
    /* Nothing beyond 4 GiB: a stray pointer faults instead of aliasing. */
    ck_assert_int_eq(translate(4ULL << 30), -1);
    ck_assert_int_eq(translate(1ULL << 39), -1);
}
END_TEST

START_TEST(test_cpu_gdt)
{
    uint64_t code, data;

    ram(64 * MIB);
    ck_assert_int_eq(boot_setup_cpu(&gm, &cpu), 0);
    ck_assert_uint_eq(cpu.gdt_base, BOOT_GDT_ADDR);
    ck_assert_uint_eq(cpu.gdt_limit, 4 * 8 - 1);
    ck_assert_uint_eq(cpu.code_sel, 0x10);
    ck_assert_uint_eq(cpu.data_sel, 0x18);
    ck_assert_uint_eq(ld(BOOT_GDT_ADDR, 8), 0);
    ck_assert_uint_eq(ld(BOOT_GDT_ADDR + 8, 8), 0);
    code = ld(BOOT_GDT_ADDR + cpu.code_sel, 8);
    data = ld(BOOT_GDT_ADDR + cpu.data_sel, 8);
    ck_assert_uint_eq(code, 0x00af9b000000ffffULL);
    ck_assert_uint_eq(data, 0x00cf93000000ffffULL);
    /* Code: present, S, execute/read, L=1 and D=0 (64-bit), DPL 0. */
    ck_assert_uint_eq((code >> 40) & 0xf, 0xb);
    ck_assert(code >> 44 & 1);
    ck_assert(code >> 47 & 1);
    ck_assert(code >> 53 & 1);
    ck_assert(!(code >> 54 & 1));
    ck_assert_uint_eq((code >> 45) & 3, 0);
    /* Data: present, S, read/write, 4 GiB limit with G. */
    ck_assert_uint_eq((data >> 40) & 0xf, 0x3);
    ck_assert(data >> 47 & 1);
    ck_assert(data >> 55 & 1);
    ck_assert_uint_eq((data & 0xffff) | ((data >> 32) & 0xf0000), 0xfffff);
}
END_TEST

START_TEST(test_cpu_small_ram)
{
    ram(512 * 1024);
    ck_assert_int_eq(boot_setup_cpu(&gm, &cpu), -ENOMEM);
}
END_TEST

/* ---- Linux: synthetic bzImages ----------------------------------------- */

typedef struct FakeKernel {
    uint8_t setup_sects;
    uint16_t version;
    uint16_t xloadflags;
    const char *magic;
    uint32_t pm_size;
    uint32_t init_size;
    uint32_t initrd_addr_max;
    size_t cut; /* bytes dropped from the end */
} FakeKernel;

static FakeKernel fake_defaults(void)
{
    return (FakeKernel){.setup_sects = 2,
                        .version = 0x20f,
                        .xloadflags = 1,
                        .magic = "HdrS",
                        .pm_size = 64 * 1024,
                        .init_size = 8 * MIB,
                        .initrd_addr_max = 0x7fffffff};
}

static uint8_t pm_byte(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 8) + 3);
}

static void put(uint8_t *b, unsigned off, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++) {
        b[off + i] = v >> (8 * i);
    }
}

/* Writes a bzImage to a temp file; returns its setup size. */
static size_t fake_kernel(const FakeKernel *k, char *path, size_t plen)
{
    size_t setup = ((k->setup_sects ? k->setup_sects : 4) + 1) * 512;
    size_t len = setup + k->pm_size;
    uint8_t *b = calloc(1, len);

    b[0x1f1] = k->setup_sects;
    put(b, 0x1f4, k->pm_size / 16, 4);
    put(b, 0x1fa, 0xffff, 2);
    put(b, 0x1fe, 0xaa55, 2);
    b[0x200] = 0xeb;
    b[0x201] = 0x268 - 0x202;
    memcpy(b + 0x202, k->magic, 4);
    put(b, 0x206, k->version, 2);
    b[0x211] = 0x01;
    put(b, 0x22c, k->initrd_addr_max, 4);
    put(b, 0x230, 2 * MIB, 4);
    b[0x234] = 1;
    put(b, 0x236, k->xloadflags, 2);
    put(b, 0x238, 2047, 4);
    put(b, 0x258, 16 * MIB, 8);
    put(b, 0x260, k->init_size, 4);
    for (size_t i = 0; i < k->pm_size; i++) {
        b[setup + i] = pm_byte(i);
    }
    temp_file(path, plen, b, len - k->cut);
    free(b);
    return setup;
}

START_TEST(test_linux_load)
{
    FakeKernel k = fake_defaults();
    const char *cmdline = "console=ttyS0 quiet root=/dev/vda";
    size_t initrd_len = 300 * 1024 + 123;
    uint8_t *initrd = malloc(initrd_len);
    char kpath[64], ipath[64];
    uint64_t rd, rd_size, top;

    for (size_t i = 0; i < initrd_len; i++) {
        initrd[i] = (uint8_t)(i ^ (i >> 9));
    }
    ram(128 * MIB);
    fake_kernel(&k, kpath, sizeof(kpath));
    temp_file(ipath, sizeof(ipath), initrd, initrd_len);
    ck_assert_int_eq(boot_setup_cpu(&gm, &cpu), 0);
    ck_assert_msg(
        linux_load(&gm, kpath, ipath, cmdline, &cpu, err, sizeof(err)) == 0,
        "%s", err);
    unlink(kpath);
    unlink(ipath);

    ck_assert_uint_eq(cpu.rip, 0x100200);
    ck_assert_uint_eq(cpu.rsi, BOOT_ZERO_PAGE_ADDR);
    ck_assert_uint_eq(cpu.rsp, BOOT_STACK_TOP);
    for (uint64_t i = 0; i < k.pm_size; i++) {
        ck_assert_uint_eq(gm.host[0x100000 + i], pm_byte(i));
    }

    /* The setup header came from the file, then our fields. */
    uint64_t bp = BOOT_ZERO_PAGE_ADDR;
    ck_assert(!memcmp(gm.host + bp + 0x202, "HdrS", 4));
    ck_assert_uint_eq(ld(bp + 0x206, 2), 0x20f);
    ck_assert_uint_eq(ld(bp + 0x1f1, 1), 2);
    ck_assert_uint_eq(ld(bp + 0x1fe, 2), 0xaa55);
    ck_assert_uint_eq(ld(bp + 0x260, 4), 8 * MIB);
    ck_assert_uint_eq(ld(bp + 0x1ef, 1), 0); /* sentinel */
    ck_assert_uint_eq(ld(bp + 0x210, 1), 0xff);
    ck_assert_uint_eq(ld(bp + 0x211, 1), 0x81);
    ck_assert_uint_eq(ld(bp + 0x224, 2), 0xfe00);
    ck_assert_uint_eq(ld(bp + 0x228, 4), BOOT_CMDLINE_ADDR);
    ck_assert_str_eq((char *)gm.host + BOOT_CMDLINE_ADDR, cmdline);

    /* The initrd: page-aligned, as high as allowed, above the kernel. */
    rd = ld(bp + 0x218, 4) | ld(bp + 0x0c0, 4) << 32;
    rd_size = ld(bp + 0x21c, 4) | ld(bp + 0x0c4, 4) << 32;
    top = 128 * MIB - MIB;
    ck_assert_uint_eq(rd_size, initrd_len);
    ck_assert_uint_eq(rd & 0xfff, 0);
    ck_assert_uint_le(rd + rd_size, top);
    ck_assert_uint_gt(rd + rd_size + 4096, top);
    ck_assert_uint_ge(rd, 16 * MIB + k.init_size);
    ck_assert(!memcmp(gm.host + rd, initrd, initrd_len));
    free(initrd);

    /* e820: low RAM, the reserved EBDA/BIOS area, RAM from 1 MiB. */
    static const uint64_t e820[3][3] = {
        {0, 0x9fc00, 1}, {0x9fc00, 0x60400, 2}, {0x100000, 127 * MIB, 1}};
    ck_assert_uint_eq(ld(bp + 0x1e8, 1), 3);
    for (int i = 0; i < 3; i++) {
        uint64_t e = bp + 0x2d0 + 20 * i;

        ck_assert_uint_eq(ld(e, 8), e820[i][0]);
        ck_assert_uint_eq(ld(e + 8, 8), e820[i][1]);
        ck_assert_uint_eq(ld(e + 16, 4), e820[i][2]);
    }
}
END_TEST

START_TEST(test_linux_initrd_addr_max)
{
    FakeKernel k = fake_defaults();
    uint8_t initrd[5000] = {1, 2, 3};
    char kpath[64], ipath[64];
    uint64_t rd;

    k.initrd_addr_max = 96 * MIB - 1;
    ram(256 * MIB);
    fake_kernel(&k, kpath, sizeof(kpath));
    temp_file(ipath, sizeof(ipath), initrd, sizeof(initrd));
    ck_assert_msg(linux_load(&gm, kpath, ipath, NULL, &cpu, err, sizeof(err)) ==
                      0,
                  "%s", err);
    unlink(kpath);
    unlink(ipath);
    rd = ld(BOOT_ZERO_PAGE_ADDR + 0x218, 4);
    ck_assert_uint_eq(rd, (96 * MIB - sizeof(initrd)) & ~0xfffULL);
    ck_assert_uint_eq(gm.host[BOOT_CMDLINE_ADDR], 0);
    ck_assert_uint_eq(ld(BOOT_ZERO_PAGE_ADDR + 0x21c, 4), sizeof(initrd));
}
END_TEST

/* Load a bad image; the error must be @ret and name the file and @what. */
static void expect_bad(const FakeKernel *k, uint64_t ram_size,
                       const char *cmdline, int ret, const char *what)
{
    char kpath[64];

    ram(ram_size);
    fake_kernel(k, kpath, sizeof(kpath));
    err[0] = '\0';
    ck_assert_int_eq(
        linux_load(&gm, kpath, NULL, cmdline, &cpu, err, sizeof(err)), ret);
    unlink(kpath);
    ck_assert_msg(strstr(err, kpath) && strstr(err, what),
                  "message \"%s\" lacks the file or \"%s\"", err, what);
}

START_TEST(test_linux_bad_images)
{
    char longline[3000];
    FakeKernel k;

    k = fake_defaults();
    k.magic = "Hdr!";
    expect_bad(&k, 64 * MIB, NULL, -ENOEXEC, "HdrS");
    teardown();
    k = fake_defaults();
    k.version = 0x20b;
    expect_bad(&k, 64 * MIB, NULL, -ENOEXEC, "too old");
    teardown();
    k = fake_defaults();
    k.xloadflags = 2; /* loadable above 4G, but no 64-bit entry */
    expect_bad(&k, 64 * MIB, NULL, -ENOEXEC, "64-bit");
    teardown();
    k = fake_defaults();
    k.cut = 100; /* shorter than syssize says */
    expect_bad(&k, 64 * MIB, NULL, -ENOEXEC, "truncated");
    teardown();
    k = fake_defaults();
    k.pm_size = 0; /* the setup sectors and nothing else */
    expect_bad(&k, 64 * MIB, NULL, -ENOEXEC, "truncated");
    teardown();
    k = fake_defaults();
    k.init_size = 128 * MIB; /* the kernel would not fit in RAM */
    expect_bad(&k, 64 * MIB, NULL, -ENOMEM, "RAM");
    teardown();
    k = fake_defaults();
    expect_bad(&k, 32 * MIB, NULL, -EINVAL, "RAM"); /* below BOOT_MIN_RAM */
    teardown();
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    k = fake_defaults();
    expect_bad(&k, 64 * MIB, longline, -E2BIG, "command line");
}
END_TEST

START_TEST(test_linux_short_and_missing)
{
    uint8_t junk[100] = {0};
    char path[64];

    ram(64 * MIB);
    temp_file(path, sizeof(path), junk, sizeof(junk));
    ck_assert_int_eq(linux_load(&gm, path, NULL, NULL, &cpu, err, sizeof(err)),
                     -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "not a bzImage"));
    unlink(path);
    ck_assert_int_eq(linux_load(&gm, path, NULL, NULL, &cpu, err, sizeof(err)),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(test_linux_initrd_too_big)
{
    FakeKernel k = fake_defaults();
    char kpath[64], ipath[64];
    uint8_t initrd[4096] = {0};

    k.initrd_addr_max = 20 * MIB;
    /* initrd_addr_max inside the kernel's init_size area: nowhere to go. */
    ram(64 * MIB);
    fake_kernel(&k, kpath, sizeof(kpath));
    temp_file(ipath, sizeof(ipath), initrd, sizeof(initrd));
    ck_assert_int_eq(
        linux_load(&gm, kpath, ipath, NULL, &cpu, err, sizeof(err)), -ENOMEM);
    ck_assert_msg(strstr(err, ipath) && strstr(err, "initrd"), "%s", err);
    unlink(kpath);
    unlink(ipath);
}
END_TEST

/* Debian's kernel, if scripts/guest-kernel.sh fetched it; else passes. */
START_TEST(test_linux_real_kernel_if_cached)
{
    glob_t g;
    FILE *f;
    uint8_t hdr[0x400], pm[4096];
    size_t setup;

    if (glob(".cache/kernel/root/boot/vmlinuz-*", 0, NULL, &g) != 0) {
        fprintf(stderr, "test-boot: no cached kernel; real-kernel test "
                        "skipped (run scripts/guest-kernel.sh)\n");
        return;
    }
    ram(256 * MIB);
    ck_assert_int_eq(boot_setup_cpu(&gm, &cpu), 0);
    ck_assert_msg(linux_load(&gm, g.gl_pathv[0], NULL, "console=ttyS0", &cpu,
                             err, sizeof(err)) == 0,
                  "%s", err);
    f = fopen(g.gl_pathv[0], "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    setup = ((hdr[0x1f1] ? hdr[0x1f1] : 4) + 1) * 512;
    ck_assert_int_eq(fseek(f, setup, SEEK_SET), 0);
    ck_assert_uint_eq(fread(pm, 1, sizeof(pm), f), sizeof(pm));
    fclose(f);
    globfree(&g);
    ck_assert(!memcmp(gm.host + 0x100000, pm, sizeof(pm)));
    ck_assert_uint_eq(cpu.rip, 0x100200);
    ck_assert_uint_ge(ld(BOOT_ZERO_PAGE_ADDR + 0x206, 2), 0x20c);
    ck_assert_uint_eq(ld(BOOT_ZERO_PAGE_ADDR + 0x210, 1), 0xff);
}
END_TEST

/* ---- ELF ---------------------------------------------------------------- */

#define ELF_TEXT  0x200000
#define ELF_DATA  0x201000
#define ELF_ENTRY (ELF_TEXT + 0x10)
#define ELF_FDT   0x30000
#define ELF_FILE  0x1200
#define TEXT_OFF  0x1000
#define TEXT_SIZE 0x100
#define DATA_OFF  0x1100
#define DATA_FILE 0x10
#define DATA_MEM  0x2000

/* A static executable: text, a note, and data with bss after it. */
typedef struct FakeElf {
    uint8_t b[ELF_FILE];
    Elf64_Ehdr *eh;
    Elf64_Phdr *ph; /* [0] text, [1] note, [2] data + bss */
} FakeElf;

static void fake_elf(FakeElf *e)
{
    memset(e->b, 0, sizeof(e->b));
    e->eh = (Elf64_Ehdr *)e->b;
    e->ph = (Elf64_Phdr *)(e->b + sizeof(Elf64_Ehdr));
    memcpy(e->eh->e_ident, ELFMAG, SELFMAG);
    e->eh->e_ident[EI_CLASS] = ELFCLASS64;
    e->eh->e_ident[EI_DATA] = ELFDATA2LSB;
    e->eh->e_ident[EI_VERSION] = EV_CURRENT;
    e->eh->e_type = ET_EXEC;
    e->eh->e_machine = EM_X86_64;
    e->eh->e_version = EV_CURRENT;
    e->eh->e_entry = ELF_ENTRY;
    e->eh->e_phoff = sizeof(Elf64_Ehdr);
    e->eh->e_ehsize = sizeof(Elf64_Ehdr);
    e->eh->e_phentsize = sizeof(Elf64_Phdr);
    e->eh->e_phnum = 3;
    e->ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                            .p_offset = TEXT_OFF,
                            .p_vaddr = ELF_TEXT,
                            .p_paddr = ELF_TEXT,
                            .p_filesz = TEXT_SIZE,
                            .p_memsz = TEXT_SIZE};
    e->ph[1] = (Elf64_Phdr){.p_type = PT_NOTE,
                            .p_offset = 0,
                            .p_paddr = 0x1000,
                            .p_filesz = 16,
                            .p_memsz = 16};
    e->ph[2] = (Elf64_Phdr){.p_type = PT_LOAD,
                            .p_offset = DATA_OFF,
                            .p_vaddr = ELF_DATA,
                            .p_paddr = ELF_DATA,
                            .p_filesz = DATA_FILE,
                            .p_memsz = DATA_MEM};
    for (int i = 0; i < TEXT_SIZE + DATA_FILE; i++) {
        e->b[TEXT_OFF + i] = (uint8_t)(i + 1);
    }
}

static int load_elf(FakeElf *e, size_t len)
{
    char path[64];
    int ret;

    temp_file(path, sizeof(path), e->b, len);
    err[0] = '\0';
    ret = elf_load(&gm, path, ELF_FDT, &cpu, err, sizeof(err));
    unlink(path);
    if (ret < 0) {
        ck_assert_msg(strstr(err, path), "message \"%s\" lacks the file", err);
    }
    return ret;
}

START_TEST(test_elf_load)
{
    FakeElf e;

    ram(64 * MIB);
    fake_elf(&e);
    memset(gm.host + ELF_DATA, 0xaa, DATA_MEM); /* the bss must be cleared */
    ck_assert_msg(load_elf(&e, sizeof(e.b)) == 0, "%s", err);
    ck_assert_uint_eq(cpu.rip, ELF_ENTRY);
    ck_assert_uint_eq(cpu.rdi, ELF_FDT);
    ck_assert_uint_eq(cpu.rsp, BOOT_STACK_TOP);
    ck_assert(!memcmp(gm.host + ELF_TEXT, e.b + TEXT_OFF, TEXT_SIZE));
    ck_assert(!memcmp(gm.host + ELF_DATA, e.b + DATA_OFF, DATA_FILE));
    for (int i = DATA_FILE; i < DATA_MEM; i++) {
        ck_assert_uint_eq(gm.host[ELF_DATA + i], 0);
    }
    ck_assert_uint_eq(gm.host[0x1000], 0); /* PT_NOTE is not loaded */
}
END_TEST

/* Each bad image is refused with -ENOEXEC and leaves RAM untouched. */
START_TEST(test_elf_bad)
{
    FakeElf e;

    ram(64 * MIB);
    for (int c = 0; c < 12; c++) {
        size_t len = sizeof(e.b);

        fake_elf(&e);
        switch (c) {
        case 0: /* data ends past RAM */
            e.ph[2].p_paddr = 64 * MIB - DATA_MEM / 2;
            break;
        case 1: /* below 1 MiB */
            e.ph[0].p_paddr = 0x80000;
            break;
        case 2:
            e.ph[2].p_filesz = DATA_MEM + 1;
            break;
        case 3: /* paddr + memsz wraps around */
            e.ph[2].p_paddr = ~0ULL - 0xfff;
            break;
        case 4: /* file data past the end of the file */
            e.ph[0].p_offset = ELF_FILE - 8;
            break;
        case 5: /* offset + filesz wraps around */
            e.ph[0].p_offset = ~0ULL - 8;
            break;
        case 6:
            e.eh->e_ident[EI_MAG1] = 'X';
            break;
        case 7:
            e.eh->e_type = ET_DYN;
            break;
        case 8:
            e.eh->e_machine = EM_386;
            break;
        case 9: /* program headers past the end of the file */
            e.eh->e_phoff = ELF_FILE - sizeof(Elf64_Phdr);
            break;
        case 10: /* huge memsz */
            e.ph[2].p_memsz = ~0ULL;
            break;
        case 11:
            len = 40; /* not even an ELF header */
            break;
        }
        ck_assert_msg(load_elf(&e, len) == -ENOEXEC, "case %d loaded", c);
        ck_assert_msg(gm.host[ELF_TEXT] == 0, "case %d wrote RAM", c);
    }
}
END_TEST

Suite *boot_suite(void)
{
    Suite *s = suite_create("boot");
    TCase *tc = tcase_create("cpu");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_cpu_page_tables);
    tcase_add_test(tc, test_cpu_gdt);
    tcase_add_test(tc, test_cpu_small_ram);
    suite_add_tcase(s, tc);

    tc = tcase_create("linux");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_linux_load);
    tcase_add_test(tc, test_linux_initrd_addr_max);
    tcase_add_test(tc, test_linux_bad_images);
    tcase_add_test(tc, test_linux_short_and_missing);
    tcase_add_test(tc, test_linux_initrd_too_big);
    tcase_add_test(tc, test_linux_real_kernel_if_cached);
    suite_add_tcase(s, tc);

    tc = tcase_create("elf");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_elf_load);
    tcase_add_test(tc, test_elf_bad);
    suite_add_tcase(s, tc);
    return s;
}
