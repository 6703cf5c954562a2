#!/usr/bin/env python3
"""Write the hand-made seed inputs of the fuzz targets.

    tests/fuzz/gen-seeds.py [DIR]     (default: tests/fuzz/corpus)

Each seed takes its target deep on the first run: a started AHCI port that
runs IDENTIFY, DMA and NCQ commands; a virtio-blk driver that negotiates,
sets up a queue and issues every request type, one through an indirect
table; qtest commands of every kind; a minimal bzImage and ELF; command
lines that use most options. The fuzzer mutates from there. The script
language is described in tests/fuzz/fuzz-machine.h.
"""
import os
import struct
import sys

# ---- The device script language (tests/fuzz/fuzz-machine.h) ---------------

MMIO_WRITE, MMIO_READ, RAM_WRITE, RUN, CONFIG_WRITE, CONFIG_READ = range(6)
SIZE_LOG2 = {1: 0, 2: 1, 4: 2, 8: 3}
THEN_RUN = 0x80


def mmio_write(off, value, size=4, run=False):
    op = MMIO_WRITE | SIZE_LOG2[size] << 3 | (THEN_RUN if run else 0)
    return bytes([op]) + struct.pack("<H", off) + value.to_bytes(size, "little")


def mmio_read(off, size=4):
    return bytes([MMIO_READ | SIZE_LOG2[size] << 3]) + struct.pack("<H", off)


def ram(gpa, data):
    return bytes([RAM_WRITE]) + struct.pack("<IH", gpa, len(data)) + data


def run():
    return bytes([RUN])


def config_write(off, value, size=2):
    return (bytes([CONFIG_WRITE | SIZE_LOG2[size] << 3, off]) +
            value.to_bytes(size, "little"))


# ---- AHCI -----------------------------------------------------------------

PORT0 = 0x100
PX_CLB, PX_FB, PX_IS, PX_IE, PX_CMD = 0x00, 0x08, 0x10, 0x14, 0x18
PX_TFD, PX_SCTL, PX_SERR, PX_SACT, PX_CI = 0x20, 0x2c, 0x30, 0x34, 0x38
GHC = 0x04
CLB, FB, CTBA0, DATA = 0x1000, 0x2000, 0x3000, 0x10000


def cmd_header(prdtl, ctba, write=False):
    flags = 5 | (0x40 if write else 0)  # CFL: five dwords of H2D FIS
    return struct.pack("<HHIII4x4x4x4x", flags, prdtl, 0, ctba, 0)


def h2d(command, lba=0, count=0, features=0, device=0x40):
    return struct.pack("<BBBB3sB3sBHBB4x", 0x27, 0x80, command,
                       features & 0xff, lba.to_bytes(3, "little"), device,
                       (lba >> 24).to_bytes(3, "little"), features >> 8,
                       count, 0, 0)


def cmd_table(fis, prds):
    table = fis.ljust(0x80, b"\0")
    for addr, length in prds:
        table += struct.pack("<IIII", addr, 0, 0, (length - 1) | 1 << 31)
    return table


def ahci_start_port():
    return (mmio_write(GHC, 0x80000002) +
            mmio_write(PORT0 + PX_CLB, CLB) + mmio_write(PORT0 + PX_FB, FB) +
            mmio_write(PORT0 + PX_IE, 0xffffffff) +
            mmio_write(PORT0 + PX_CMD, 0x10) +
            mmio_write(PORT0 + PX_CMD, 0x11))


def ahci_command(slot, command, prds, write=False, **fis):
    ctba = CTBA0 + slot * 0x100
    return (ram(CLB + slot * 32, cmd_header(len(prds), ctba, write)) +
            ram(ctba, cmd_table(h2d(command, **fis), prds)))


def ahci_seeds():
    identify = (ahci_start_port() +
                ahci_command(0, 0xec, [(DATA, 512)]) +
                mmio_write(PORT0 + PX_CI, 1, run=True) +
                mmio_read(PORT0 + PX_TFD) + mmio_read(PORT0 + PX_IS))
    dma = (identify + mmio_write(PORT0 + PX_IS, 0xffffffff) +
           ahci_command(1, 0xc8, [(DATA, 2048), (DATA + 0x1000, 2048)],
                        lba=8, count=8) +
           ahci_command(2, 0x35, [(DATA, 4096)], write=True, lba=16,
                        count=8) +
           ahci_command(3, 0xe7, []) +
           ahci_command(4, 0xef, [], features=0x02) +
           mmio_write(PORT0 + PX_CI, 0x1e, run=True) +
           mmio_read(PORT0 + PX_CI))
    ncq = (ahci_start_port() +
           ahci_command(0, 0x60, [(DATA, 4096)], lba=0, features=8,
                        count=0 << 3) +
           ahci_command(1, 0x61, [(DATA + 0x1000, 4096)], write=True,
                        lba=64, features=8, count=1 << 3) +
           mmio_write(PORT0 + PX_SACT, 3) + mmio_write(PORT0 + PX_CI, 3) +
           run() + mmio_read(PORT0 + PX_SACT))
    # Commands in flight when the list stops, the port resets, the HBA
    # resets: the orphan and drain paths.
    resets = (ahci_start_port() +
              ahci_command(0, 0x25, [(DATA, 8192)], lba=0, count=16) +
              mmio_write(PORT0 + PX_CI, 1) +
              mmio_write(PORT0 + PX_CMD, 0x10) + run() +
              mmio_write(PORT0 + PX_CMD, 0x11) +
              mmio_write(PORT0 + PX_CI, 1) +
              mmio_write(PORT0 + PX_SCTL, 1) +
              mmio_write(PORT0 + PX_SCTL, 0, run=True) +
              mmio_write(PORT0 + PX_CMD, 0x11) +
              mmio_write(PORT0 + PX_CI, 1) + mmio_write(GHC, 1, run=True) +
              config_write(0x04, 0x0406))
    # The PIO data commands: SET MULTIPLE, then READ SECTORS, WRITE
    # MULTIPLE EXT over an unaligned split of two PRDs, READ MULTIPLE (one
    # DRQ block per 8 sectors), and READ SECTORS EXT with a count of 0
    # (65536 sectors) that the PRDT cannot hold.
    pio = (identify + mmio_write(PORT0 + PX_IS, 0xffffffff) +
           ahci_command(1, 0xc6, [], count=8) +
           ahci_command(2, 0x20, [(DATA, 2048)], lba=4, count=4) +
           ahci_command(3, 0x39, [(DATA, 3000), (DATA + 0x1000, 5192)],
                        write=True, lba=32, count=16) +
           ahci_command(4, 0xc4, [(DATA, 8192)], lba=32, count=16) +
           ahci_command(5, 0x24, [(DATA, 512)], lba=0, count=0) +
           mmio_write(PORT0 + PX_CI, 0x3e, run=True) +
           mmio_read(PORT0 + PX_TFD) + mmio_read(PORT0 + PX_CI))
    return {"identify": identify, "dma": dma, "ncq": ncq, "resets": resets,
            "pio": pio}


# ---- virtio-blk -------------------------------------------------------------

DFSELECT, DF, GFSELECT, GF, MSIX = 0, 4, 8, 12, 16
STATUS, Q_SELECT, Q_SIZE, Q_MSIX, Q_ENABLE, Q_NOFF = 20, 22, 24, 26, 28, 30
Q_DESC, Q_AVAIL, Q_USED = 32, 40, 48
NOTIFY = 0x3000
VIRTIO_MSIX_BAR = 0x8000
DESC, AVAIL, USED, HDRS, BUFS, INDIRECT = (0x1000, 0x2000, 0x3000, 0x4000,
                                           0x10000, 0x6000)
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
# SIZE_MAX SEG_MAX BLK_SIZE FLUSH MQ DISCARD WRITE_ZEROES INDIRECT EVENT_IDX
FEATURES_LO = sum(1 << b for b in (1, 2, 6, 9, 12, 13, 14, 28, 29))
IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES = 0, 1, 4, 8, 11, 13


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def virtio_setup(queue=0, size=32, event_idx=True):
    features = FEATURES_LO if event_idx else FEATURES_LO & ~(1 << 29)
    return (mmio_write(STATUS, 1, 1) + mmio_write(STATUS, 3, 1) +
            mmio_write(DFSELECT, 0) + mmio_read(DF) +
            mmio_write(GFSELECT, 0) + mmio_write(GF, features) +
            mmio_write(GFSELECT, 1) + mmio_write(GF, 1) +
            mmio_write(STATUS, 0xb, 1) + mmio_read(STATUS, 1) +
            mmio_write(MSIX, 0, 2) +
            mmio_write(Q_SELECT, queue, 2) + mmio_write(Q_SIZE, size, 2) +
            mmio_write(Q_MSIX, 1, 2) +
            mmio_write(Q_DESC, DESC, 8) + mmio_write(Q_AVAIL, AVAIL, 8) +
            mmio_write(Q_USED, USED, 8) + mmio_write(Q_ENABLE, 1, 2) +
            mmio_write(STATUS, 0xf, 1) +
            # MSI-X on, vectors 0 and 1 unmasked.
            config_write(0x40 + 0, 0, 1) +
            mmio_write(VIRTIO_MSIX_BAR + 12, 0) +
            mmio_write(VIRTIO_MSIX_BAR + 16 + 12, 0))


def virtio_requests():
    """Six requests, one of each type; the last one through an indirect
    table."""
    descs = b""
    heads = []
    hdr_data = b""

    def hdr(i, rtype, sector):
        return struct.pack("<IIQ", rtype, 0, sector).ljust(32, b"\0")

    reqs = [(IN, 0, BUFS, 4096, F_WRITE), (OUT, 8, BUFS + 0x1000, 1024, 0),
            (FLUSH, 0, None, 0, 0), (GET_ID, 0, BUFS + 0x2000, 20, F_WRITE),
            (DISCARD, 0, HDRS + 0x800, 16, 0),
            (WRITE_ZEROES, 0, HDRS + 0x900, 16, 0)]
    n = 0
    for i, (rtype, sector, buf, length, bflags) in enumerate(reqs):
        h = HDRS + i * 32
        hdr_data += hdr(i, rtype, sector)
        heads.append(n)
        if buf is None:
            descs += desc(h, 16, F_NEXT, n + 1)
            descs += desc(h + 16, 1, F_WRITE)
            n += 2
        else:
            descs += desc(h, 16, F_NEXT, n + 1)
            descs += desc(buf, length, bflags | F_NEXT, n + 2)
            descs += desc(h + 16, 1, F_WRITE)
            n += 3
    ranges = struct.pack("<QII", 16, 8, 0) + struct.pack("<QII", 32, 8, 1)
    # An indirect IN: header, data, status in a table of its own.
    hdr_data = hdr_data.ljust(0x400, b"\0") + hdr(0, IN, 4)
    ind = (desc(HDRS + 0x400, 16, F_NEXT, 1) +
           desc(BUFS + 0x3000, 2048, F_WRITE | F_NEXT, 2) +
           desc(HDRS + 0x410, 1, F_WRITE))
    heads.append(n)
    descs += desc(INDIRECT, len(ind), F_INDIRECT)
    avail = struct.pack("<HH", 0, len(heads)) + b"".join(
        struct.pack("<H", h) for h in heads) + struct.pack("<H", 0)
    return (ram(DESC, descs) + ram(HDRS, hdr_data) +
            ram(HDRS + 0x800, ranges[:16]) + ram(HDRS + 0x900, ranges[16:]) +
            ram(INDIRECT, ind) + ram(AVAIL, avail))


def virtio_seeds():
    # The shape byte: (log2(max queue size) - 2) << 2 | (queues - 1).
    one = bytes([(6 - 2) << 2 | 0])
    two_ro = bytes([0x20 | (5 - 2) << 2 | 1])
    all_types = (one + virtio_setup() + virtio_requests() +
                 mmio_write(NOTIFY, 0, 2, run=True) + mmio_read(USED, 4) +
                 mmio_read(0x1000, 1))
    readonly = (two_ro + virtio_setup(queue=1, size=32, event_idx=False) +
                virtio_requests() + mmio_read(Q_NOFF, 2) +
                mmio_write(NOTIFY + 4, 1, 2, run=True) +
                mmio_read(0x2000, 8) + mmio_read(0x2000 + 20, 4))
    # Reset with requests in flight, then a new negotiation.
    reset = (one + virtio_setup() + virtio_requests() +
             mmio_write(NOTIFY, 0, 2) + mmio_write(STATUS, 0, 1) + run() +
             virtio_setup(size=8))
    return {"all-types": all_types, "readonly-q1": readonly,
            "reset-in-flight": reset}


# ---- qtest ------------------------------------------------------------------

def qtest_seeds():
    return {
        "pio-mmio": b"outl 0xcf8 0x80000000\ninl 0xcfc\noutb 0x80 0x1\n"
                    b"inw 0xcfe\nwriteq 0x1000 0x1122334455667788\n"
                    b"readq 0x1000\nwritel 0x2000 7\nreadb 0x2003\n"
                    b"readw 0xffffffff00\n",
        "bulk": b"write 0x3000 8 0xdeadbeefcafef00d\nread 0x3000 8\n"
                b"b64write 0x4000 6 aGVsbG8h\nb64read 0x4000 6\n"
                b"memset 0x5000 64 0x5a\nread 0x5000 4\nwrite 0xffff0 32 0x\n"
                b"read 0xffffc 8\r\n",
        "misc": b"endianness\nirq_intercept_in ioapic\n\nbogus 1 2\n"
                b"outl\nreadq\nwrite 0 1 zz\nb64write 0 4 !!!!\n",
    }


# ---- Boot loaders -------------------------------------------------------

def bzimage(pm=b"\xf4" * 512, version=0x020f, init_size=0x200000):
    setup_sects = 1
    hdr = bytearray(512 * (setup_sects + 1))
    hdr[0x1f1] = setup_sects
    struct.pack_into("<I", hdr, 0x1f4, len(pm) // 16)        # syssize
    hdr[0x200] = 0xeb
    hdr[0x201] = 0x268 - 0x202                             # jump: header end
    hdr[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", hdr, 0x206, version)
    struct.pack_into("<I", hdr, 0x22c, 0x7fffffff)         # initrd_addr_max
    struct.pack_into("<I", hdr, 0x230, 0x200000)           # kernel_alignment
    hdr[0x234] = 1                                         # relocatable
    struct.pack_into("<H", hdr, 0x236, 1)                  # XLF_KERNEL_64
    struct.pack_into("<I", hdr, 0x238, 2047)               # cmdline_size
    struct.pack_into("<Q", hdr, 0x258, 0x1000000)          # pref_address
    struct.pack_into("<I", hdr, 0x260, init_size)
    return bytes(hdr) + pm


def elf(segments, entry=0x100000):
    phoff = 64
    data_off = phoff + 56 * len(segments)
    eh = (b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) +
          struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, phoff, 0, 0, 64, 56,
                      len(segments), 0, 0, 0))
    ph = b""
    body = b""
    for ptype, paddr, data, memsz in segments:
        ph += struct.pack("<IIQQQQQQ", ptype, 5, data_off + len(body), paddr,
                          paddr, len(data), memsz, 0x1000)
        body += data
    return eh + ph + body


def loader_seeds():
    initrd = b"070701" + bytes(506)
    return {
        "bzimage": bytes([0]) + bzimage(),
        "bzimage-initrd": bytes([2]) + struct.pack("<I", len(initrd)) +
                          initrd + bzimage(),
        "elf": bytes([1]) + elf([(1, 0x100000, b"\xf4" * 16, 0x2000)]),
        "elf-two": bytes([1]) + elf([(6, 0, b"", 0),
                                     (1, 0x200000, b"\x90" * 32, 32),
                                     (1, 0x100000, b"\xf4", 0x1000)]),
    }


# ---- The command line ---------------------------------------------------

def options_seeds():
    def argv(*args):
        return b"\0".join(a.encode() for a in args)

    return {
        "qtest": argv("--accel", "qtest", "--qtest", "unix:/tmp/q,server",
                      "--memory", "512M", "--disk",
                      "sata:/dev/null,serial=S1,model=M,fwrev=1,aio=threads",
                      "--iothreads", "2", "--disk",
                      "virtio:null://64M,iothread=1,queues=4,cache=none,"
                      "readonly=on", "--stats", "--serial", "none"),
        "kvm": argv("--kernel", "bzImage", "--initrd", "initrd", "--append",
                    "quiet", "--cpus", "4", "--timeout", "60",
                    "--main-loop-timeout-ms", "-1", "--aio-notify-on-sqe",
                    "off", "--main-loop-defer-kick", "on", "--event-loop",
                    "poll", "--iothread-poll-max-ns", "0",
                    "--iothread-poll-weight", "3", "--iothread-uring-flags",
                    "single-issuer,coop", "--main-loop-uring-flags", "coop",
                    "--acpi", "off", "--auto-console", "off",
                    "--uring-multishot", "off", "--uring-notifier-read",
                    "off", "--aio-notify-after-poll", "off", "--seccomp",
                    "off"),
        "vq-mapping": argv("--accel", "qtest", "--qtest", "unix:/tmp/q",
                           "--iothreads", "3", "--disk",
                           "virtio:null://1M,queues=4,iothreads=0+2",
                           "--disk", "virtio:null://1M,iothreads=2+1+0"),
        "dumps": argv("--dump-dtb", "x.dtb", "--dump-acpi", "dir", "--trace",
                      "t.json,events=ahci*,size=1M", "--serial", "file:s"),
        "help": argv("-hV"),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    targets = {"ahci": ahci_seeds(), "virtio-blk": virtio_seeds(),
               "qtest": qtest_seeds(), "loader": loader_seeds(),
               "options": options_seeds()}
    for target, seeds in targets.items():
        os.makedirs(os.path.join(out, target), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, target, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
