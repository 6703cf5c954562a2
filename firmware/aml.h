/*
 * A tiny AML encoder: just enough ACPI Machine Language (ACPI 6.x, chapter
 * 20) for minivmm's DSDT, which is made of named objects only: Scope,
 * Device, Name, Package, Buffer (resource templates), integers, strings
 * and EISA IDs. No methods run, so no method bodies are needed.
 *
 * Why an encoder, not iasl: the tables depend on the command line (vCPUs,
 * disks, windows), and a VMM installed from a Debian package cannot run a
 * compiler at start-up; QEMU, cloud-hypervisor and Firecracker generate
 * their AML in code for the same reason. iasl is used only by the tests,
 * to disassemble what this produces.
 *
 * Usage: objects with a PkgLength (Scope, Device, Package, Buffer) are
 * opened, filled and closed; aml_close() measures the body and writes the
 * length encoding in front of it. All writes go to a caller-owned buffer;
 * running out of room sets @overflow and drops the rest, so a caller
 * checks once at the end.
 */
#ifndef MINIVMM_FIRMWARE_AML_H
#define MINIVMM_FIRMWARE_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes (ACPI 6.4, 20.3 "AML Byte Stream Byte Values"). */
#define AML_ZERO_OP        0x00
#define AML_ONE_OP         0x01
#define AML_NAME_OP        0x08
#define AML_BYTE_PREFIX    0x0A
#define AML_WORD_PREFIX    0x0B
#define AML_DWORD_PREFIX   0x0C
#define AML_STRING_PREFIX  0x0D
#define AML_QWORD_PREFIX   0x0E
#define AML_SCOPE_OP       0x10
#define AML_BUFFER_OP      0x11
#define AML_PACKAGE_OP     0x12
#define AML_DUAL_NAME      0x2E
#define AML_MULTI_NAME     0x2F
#define AML_EXT_OP_PREFIX  0x5B
#define AML_EXT_DEVICE_OP  0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR      0x5C /* '\' */
#define AML_PARENT_CHAR    0x5E /* '^' */
#define AML_ONES_OP        0xFF
#define AML_PKGLENGTH_MAX  0x0FFFFFFF /* 28 bits in four bytes */
#define AML_PKGLENGTH_ROOM 4          /* reserved by aml_open() */

typedef struct Aml {
    uint8_t *buf;
    size_t len, cap;
    bool overflow; /* something did not fit: the output is unusable */
} Aml;

void aml_init(Aml *a, void *buf, size_t cap);
void aml_byte(Aml *a, uint8_t b);
void aml_bytes(Aml *a, const void *p, size_t n);

/*
 * A NameString: "\_SB_.PCI0", "^FOO", "_HID". Segments shorter than four
 * characters are padded with '_', as iasl does. Names must be valid
 * (upper case, digits, '_'): they come from this program, not the guest.
 */
void aml_name_string(Aml *a, const char *path);
/* An integer in its shortest encoding: Zero, One, Ones or a prefix. */
void aml_integer(Aml *a, uint64_t v);
void aml_string(Aml *a, const char *s);
/* "PNP0A08" compressed into the 32-bit EISA ID, as ASL's EisaId(). */
void aml_eisaid(Aml *a, const char *id);

/* Name (NAME, ...): the caller then writes the value. */
void aml_name(Aml *a, const char *name);

/*
 * Open an object with a PkgLength; returns the mark to pass to aml_close().
 * aml_scope()/aml_device() also write the name; aml_package() the element
 * count.
 */
size_t aml_scope(Aml *a, const char *path);
size_t aml_device(Aml *a, const char *name);
size_t aml_package(Aml *a, uint8_t elements);
void aml_close(Aml *a, size_t mark);

/* Buffer () { bytes }: a resource template built with the aml_res_*(). */
void aml_buffer(Aml *a, const void *bytes, size_t n);

/*
 * Resource descriptors (ACPI 6.4, 6.4 "Resource Data Types"), to be wrapped
 * in aml_buffer() as _CRS. Windows are "producer" ranges: a bridge decodes
 * them for its children; fixed ports and IRQs are the device's own.
 */
void aml_res_io(Aml *a, uint16_t base, uint8_t len);
void aml_res_irq(Aml *a, uint8_t irq); /* IRQNoFlags: edge, active high */
void aml_res_mem32_fixed(Aml *a, uint32_t base, uint32_t len);
void aml_res_bus_window(Aml *a, uint16_t first, uint16_t last);
void aml_res_io_window(Aml *a, uint16_t base, uint32_t len);
void aml_res_mem_window(Aml *a, uint32_t base, uint32_t len);
void aml_res_end(Aml *a);

#endif
