#!/usr/bin/env python3
"""Check a minivmm trace (--trace FILE) from tests/qtest/test-trace.c.

    check-trace.py FILE [FILE...] --notify on|off [--virtio]
    check-trace.py FILE [FILE...] --notify any --all-events

Each FILE is one run. The checks, all of which must hold:
  - every trace event type appears in the runs together (--all-events);
  - in each run, one AHCI read's events carry one request id, in the order
    of the data path, on the threads that do each step (the qtest thread
    plays the vCPU, the main loop submits and completes); with --virtio,
    one virtio-blk read's likewise, all on iothread0;
  - the AHCI reads' "SQE waited for submit" (sqe_submit minus aio_add_sqe):
    with --notify off the median is at least 400 ms (the main loop slept
    through its 499 ms timeout), with --notify on under 10 ms.
Prints what it found; exits 1 on the first failed check.
"""
import argparse
import json
import statistics
import sys

ALL_EVENTS = {
    "vcpu_exit", "as_dispatch", "ahci_pxci", "ahci_cmd", "virtio_notify",
    "virtq_pop", "blk_submit", "aio_add_sqe", "loop_sleep", "loop_wake",
    "uring_submit", "sqe_submit", "cqe_dispatch", "ahci_done", "virtio_done",
    "irq",
}

# The data path, step by step, and the thread each step runs on.
AHCI_PATH = [
    ("vcpu_exit", "qtest"), ("as_dispatch", "qtest"), ("ahci_pxci", "qtest"),
    ("ahci_cmd", "qtest"), ("blk_submit", "qtest"), ("aio_add_sqe", "qtest"),
    ("sqe_submit", "main"), ("cqe_dispatch", "main"), ("ahci_done", "main"),
    ("irq", "main"),
]
VIRTIO_PATH = [
    ("virtq_pop", "iothread0"), ("blk_submit", "iothread0"),
    ("aio_add_sqe", "iothread0"), ("sqe_submit", "iothread0"),
    ("cqe_dispatch", "iothread0"), ("virtio_done", "iothread0"),
    ("irq", "iothread0"),
]


def fail(msg):
    print("check-trace: FAIL " + msg)
    sys.exit(1)


def load(path):
    with open(path) as f:
        doc = json.load(f)
    names = {}
    recs = []
    for e in doc["traceEvents"]:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        elif e.get("ph") == "X" and e.get("cat") == "minivmm":
            recs.append(e)
    for r in recs:
        r["thread"] = names.get(r["tid"], "?")
    recs.sort(key=lambda r: r["args"]["ts_ns"])
    return doc, recs


def by_request(recs):
    reqs = {}
    for r in recs:
        rid = r["args"].get("req", 0)
        if rid:
            reqs.setdefault(rid, []).append(r)
    return reqs


def check_path(reqs, device_event, path, label):
    """Find a complete request of the device and check its path."""
    wanted = [name for name, _ in path]
    for rid, rs in sorted(reqs.items()):
        names = [r["name"] for r in rs]
        if device_event not in names or not all(w in names for w in wanted):
            continue
        if label == "ahci" and not any(
                r["name"] == "blk_submit" and r["args"].get("op") == "read"
                for r in rs):
            continue
        # The steps in path order, each the first of its kind after the last.
        t = -1
        for name, thread in path:
            step = next((r for r in rs if r["name"] == name
                         and r["args"]["ts_ns"] >= t), None)
            if step is None:
                fail("%s request %d: no %s after the previous step (has %s)"
                     % (label, rid, name, names))
            if step["thread"] != thread:
                fail("%s request %d: %s ran on %s, not %s"
                     % (label, rid, name, step["thread"], thread))
            t = step["args"]["ts_ns"]
        print("check-trace: ok %s request %d: %s" % (
            label, rid, " -> ".join("%s@%s" % s for s in path)))
        return
    fail("no %s request has all of %s" % (label, wanted))


def submit_waits_ms(reqs, device_event):
    waits = []
    for rs in reqs.values():
        names = [r["name"] for r in rs]
        if device_event not in names:
            continue
        add = next((r for r in rs if r["name"] == "aio_add_sqe"), None)
        sub = next((r for r in rs if r["name"] == "sqe_submit"), None)
        if add and sub:
            waits.append((sub["args"]["ts_ns"] - add["args"]["ts_ns"]) / 1e6)
    return waits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--notify", choices=["on", "off", "any"], required=True)
    ap.add_argument("--virtio", action="store_true")
    ap.add_argument("--all-events", action="store_true")
    args = ap.parse_args()

    seen = set()
    for path in args.files:
        doc, recs = load(path)
        if doc.get("otherData", {}).get("format") != "minivmm-trace-1":
            fail("%s: not a minivmm trace" % path)
        seen |= {r["name"] for r in recs}
        if args.notify == "any":
            continue
        reqs = by_request(recs)
        check_path(reqs, "ahci_cmd", AHCI_PATH, "ahci")
        if args.virtio:
            check_path(reqs, "virtq_pop", VIRTIO_PATH, "virtio")
        waits = submit_waits_ms(reqs, "ahci_cmd")
        if not waits:
            fail("%s: no AHCI request with aio_add_sqe and sqe_submit" % path)
        p50 = statistics.median(waits)
        print("check-trace: %s: ahci submit wait p50=%.3f ms max=%.3f ms n=%d"
              % (path, p50, max(waits), len(waits)))
        if args.notify == "off" and p50 < 400:
            fail("notify-on-SQE off: submit wait p50 %.3f ms < 400 ms" % p50)
        if args.notify == "on" and p50 >= 10:
            fail("notify-on-SQE on: submit wait p50 %.3f ms >= 10 ms" % p50)
    if args.all_events:
        missing = ALL_EVENTS - seen
        if missing:
            fail("event types never seen: %s" % ", ".join(sorted(missing)))
        print("check-trace: ok all %d event types seen" % len(ALL_EVENTS))
    print("check-trace: ok")


if __name__ == "__main__":
    main()
