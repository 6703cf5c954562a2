#include <libfdt.h>

#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"

#define PCI_PHYS_HI_REG(hi)   ((hi)&0xff)
#define PCI_PHYS_HI_DEVFN(hi) (((hi) >> 8) & 0xff)
#define PCI_CELLS             5 /* phys.hi phys.mid phys.lo size.hi size.lo */

static const void *fdt;

int dt_init(const void *blob)
{
    if (fdt_check_header(blob) != 0) {
        return -1;
    }
    fdt = blob;
    return 0;
}

const void *dt_fdt(void)
{
    return fdt;
}

bool dt_u32(int node, const char *prop, uint32_t *v)
{
    int len;
    const fdt32_t *p = fdt_getprop(fdt, node, prop, &len);

    if (!p || len != 4) {
        return false;
    }
    *v = fdt32_to_cpu(*p);
    return true;
}

bool dt_has_prop(int node, const char *prop)
{
    return fdt_getprop(fdt, node, prop, NULL) != NULL;
}

const char *dt_name(int node)
{
    const char *n = fdt_get_name(fdt, node, NULL);

    return n ? n : "?";
}

int dt_pci_root(void)
{
    return fdt_path_offset(fdt, "/pci");
}

int dt_pci_next(int prev)
{
    if (prev < 0) {
        int root = dt_pci_root();

        return root < 0 ? root : fdt_first_subnode(fdt, root);
    }
    return fdt_next_subnode(fdt, prev);
}

/* The @i-th 5-cell entry of @prop, or NULL. */
static const fdt32_t *pci_entry(int node, const char *prop, int i)
{
    int len;
    const fdt32_t *p = fdt_getprop(fdt, node, prop, &len);

    if (!p || len < 0 || (size_t)len < (size_t)(i + 1) * PCI_CELLS * 4) {
        return NULL;
    }
    return p + i * PCI_CELLS;
}

static int pci_entries(int node, const char *prop)
{
    int len;

    if (!fdt_getprop(fdt, node, prop, &len) || len < 0) {
        return 0;
    }
    return len / (PCI_CELLS * 4);
}

int dt_pci_devfn(int node)
{
    const fdt32_t *e = pci_entry(node, "reg", 0);

    return e ? (int)PCI_PHYS_HI_DEVFN(fdt32_to_cpu(e[0])) : -1;
}

int dt_pci_find(uint16_t vendor, uint16_t device, int index)
{
    for (int n = dt_pci_next(-1); n >= 0; n = dt_pci_next(n)) {
        uint32_t v, d;

        if (dt_u32(n, "vendor-id", &v) && dt_u32(n, "device-id", &d) &&
            v == vendor && d == device && index-- == 0) {
            return n;
        }
    }
    return -1;
}

int dt_pci_find_devfn(unsigned devfn)
{
    for (int n = dt_pci_next(-1); n >= 0; n = dt_pci_next(n)) {
        if (dt_pci_devfn(n) == (int)devfn) {
            return n;
        }
    }
    return -1;
}

static uint64_t cells64(const fdt32_t *p)
{
    return (uint64_t)fdt32_to_cpu(p[0]) << 32 | fdt32_to_cpu(p[1]);
}

/* The entry of @prop whose phys.hi register is BAR @bar's. */
static const fdt32_t *bar_entry(int node, const char *prop, int bar)
{
    int n = pci_entries(node, prop);

    for (int i = 0; i < n; i++) {
        const fdt32_t *e = pci_entry(node, prop, i);

        if (PCI_PHYS_HI_REG(fdt32_to_cpu(e[0])) == 0x10 + 4u * bar) {
            return e;
        }
    }
    return NULL;
}

bool dt_pci_bar(int node, int bar, uint64_t *addr, uint64_t *size)
{
    const fdt32_t *e = bar_entry(node, "assigned-addresses", bar);

    if (!e) {
        return false;
    }
    *addr = cells64(e + 1);
    *size = cells64(e + 3);
    return true;
}

bool dt_pci_bar_reg(int node, int bar, uint32_t *hi, uint64_t *size)
{
    const fdt32_t *e = bar_entry(node, "reg", bar);

    if (!e) {
        return false;
    }
    *hi = fdt32_to_cpu(e[0]);
    *size = cells64(e + 3);
    return true;
}

int dt_pci_irq(int node)
{
    uint32_t gsi;

    return dt_u32(node, "interrupts", &gsi) ? (int)gsi : -1;
}

bool dt_io_port(const char *path, uint32_t *first, uint32_t *count)
{
    int node = fdt_path_offset(fdt, path), len;
    const fdt32_t *p;

    if (node < 0) {
        return false;
    }
    p = fdt_getprop(fdt, node, "minivmm,io-port", &len);
    if (!p || len != 8) {
        return false;
    }
    *first = fdt32_to_cpu(p[0]);
    *count = fdt32_to_cpu(p[1]);
    return true;
}

bool dt_memory_high(uint64_t *base, uint64_t *size)
{
    int node = fdt_path_offset(fdt, "/memory@0"), len;
    const fdt32_t *p;

    if (node < 0) {
        return false;
    }
    p = fdt_getprop(fdt, node, "reg", &len);
    if (!p || len != 32) {
        return false;
    }
    *base = cells64(p + 4);
    *size = cells64(p + 6);
    return true;
}

const char *dt_bootargs(void)
{
    int node = fdt_path_offset(fdt, "/chosen"), len;
    const char *s;

    if (node < 0) {
        return "";
    }
    s = fdt_getprop(fdt, node, "bootargs", &len);
    /* A property is not a C string until its last byte says so. */
    return s && len > 0 && s[len - 1] == '\0' ? s : "";
}

/* The value of "key=value" in bootargs, or NULL; it ends at a space. */
static const char *bootarg(const char *key)
{
    const char *s = dt_bootargs();
    size_t klen = strlen(key);

    while (*s) {
        while (*s == ' ') {
            s++;
        }
        if (!strncmp(s, key, klen) && s[klen] == '=') {
            return s + klen + 1;
        }
        while (*s && *s != ' ') {
            s++;
        }
    }
    return NULL;
}

bool dt_bootarg_str(const char *key, char *out, size_t len)
{
    const char *v = bootarg(key);
    size_t n = 0;

    if (!v || !len) {
        return false;
    }
    while (v[n] && v[n] != ' ' && n + 1 < len) {
        out[n] = v[n];
        n++;
    }
    out[n] = '\0';
    return true;
}

bool dt_bootarg_u64(const char *key, uint64_t *v)
{
    const char *num = bootarg(key);
    char *end;
    uint64_t x;

    if (!num) {
        return false;
    }
    x = strtoul(num, &end, 0);
    if (end == num) {
        return false;
    }
    switch (*end) {
    case 'G':
        x <<= 10;
        /* fall through */
    case 'M':
        x <<= 10;
        /* fall through */
    case 'K':
        x <<= 10;
        end++;
        break;
    }
    if (*end && *end != ' ') {
        return false;
    }
    *v = x;
    return true;
}
