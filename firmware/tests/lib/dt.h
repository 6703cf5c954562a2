/*
 * Reading minivmm's device tree (layout: firmware/fdt.h) with libfdt. The
 * PCI helpers take a node offset under /pci; BARs are numbered 0..5 as in
 * configuration space (BAR i is register 0x10 + 4 * i).
 */
#ifndef FWTEST_DT_H
#define FWTEST_DT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0, or -1 if @fdt is not a valid tree. */
int dt_init(const void *fdt);
const void *dt_fdt(void);

bool dt_u32(int node, const char *prop, uint32_t *v);
bool dt_has_prop(int node, const char *prop);
const char *dt_name(int node);

/* The /pci node, or a negative libfdt error. */
int dt_pci_root(void);
/* First (prev < 0) or next PCI function node; negative at the end. */
int dt_pci_next(int prev);
/* The function's devfn, from the first reg entry; -1 if malformed. */
int dt_pci_devfn(int node);
/* The @index-th function with these IDs (in tree order), or -1. */
int dt_pci_find(uint16_t vendor, uint16_t device, int index);
int dt_pci_find_devfn(unsigned devfn);
/* BAR @bar's assigned address and size ("assigned-addresses"). */
bool dt_pci_bar(int node, int bar, uint64_t *addr, uint64_t *size);
/* BAR @bar as "reg" gives it: phys.hi space bits and size. */
bool dt_pci_bar_reg(int node, int bar, uint32_t *hi, uint64_t *size);
/* The INTx GSI ("interrupts"), or -1. */
int dt_pci_irq(int node);

/* "minivmm,io-port" = <first count> of the node at @path. */
bool dt_io_port(const char *path, uint32_t *first, uint32_t *count);
/* RAM above 1 MiB, from /memory's second reg entry. */
bool dt_memory_high(uint64_t *base, uint64_t *size);

/* /chosen/bootargs ("" if none). */
const char *dt_bootargs(void);
/*
 * Value of "key=value" in bootargs, as a number with an optional K/M/G
 * suffix (powers of two). False if absent or not a number.
 */
bool dt_bootarg_u64(const char *key, uint64_t *v);
/* Value of "key=value" copied to @out (truncated to @len - 1 bytes). */
bool dt_bootarg_str(const char *key, char *out, size_t len);

#endif
