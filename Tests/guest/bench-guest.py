#!/usr/bin/env python3
"""make bench-guest: the in-guest DMA benchmark of issue 12, intel-iommu and swift-vtd side by side.

Each boot is one Linux 6.1 guest under TCG (qboot, one QEMU binary) with one virtio-blk disk
(iommu_platform=on) whose /bench-init (Tests/guest/bench-init.sh, appended here as a second cpio
archive to the guest suite's initramfs) reads the disk with
`dd if=/dev/vda of=/dev/null bs=4k count=16384 iflag=direct` three times and powers off.
The whole QEMU process runs under `perf record -F 999 -g`; the guest prints markers around the
reads, and only samples between them (host CLOCK_MONOTONIC, perf -k CLOCK_MONOTONIC) count.
A sample is inside the vIOMMU by its leaf frame:
  intel-iommu  a `vtd_*` function, or a GLib hash-table function (its IOTLB and its address-space
               table) with a `vtd_*` frame in the call chain
  swift-vtd    anything in libSwiftVTd.so (the model and its static Swift runtime), or a
               `swift_vtd_*` function of the glue
  either       GLib hash-table samples perf found no caller for (Debian's GLib and this QEMU keep
               no frame pointers, so most of intel-iommu's IOTLB lookups come out that way), as
               far as the boot has more of them per read than the no-IOMMU boots of the run
Each vIOMMU sample also has a phase, from its call chain (swift-vtd: the library keeps frame
pointers) or its leaf's name (intel-iommu's chains stop at its leaf): translate hit or miss
(intel-iommu: translate, one function), register writes ("queue": in these guests nearly all
IQT writes), interrupt remapping, other.
Library calls per DMA (swift-vtd): the glue counts swiftvtd_translate calls per device; the count
is read through QMP (x-state) at "BENCH start" and from the state dump QEMU writes when the guest
powers off, and the difference is shown per 1,000 reads (the first few reads after the marker
may fall before the QMP answer). A pass-through guest's disk sits on a guest-RAM view: 0.
Configurations: no IOMMU, then intel-iommu and swift-vtd in first-level, second-level, legacy and
pass-through modes, interleaved, --rounds times. It prints figures; it asserts no timing.
Standard library only.
"""
import argparse
import collections
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

CACHE = os.environ.get("SWIFTVTD_CACHE", "/var/cache/swiftvtd")
HERE = os.path.dirname(os.path.abspath(__file__))
FIRMWARE_DIRS = ["/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu"]

SM_ARGS = "intel_iommu=on,sm_on iommu.strict=1"
LEGACY_ARGS = "intel_iommu=on iommu.strict=1"
PT_ARGS = "intel_iommu=on,sm_on iommu=pt"
# mode -> (device options, kernel arguments), as the guest suite's variants of the same name.
MODES = collections.OrderedDict([
    ("first-level", ("intremap=on,x-scalable-mode=on,x-flts=on", SM_ARGS)),
    ("second-level", ("intremap=on,x-scalable-mode=on", SM_ARGS)),
    ("legacy", ("intremap=on", LEGACY_ARGS)),
    ("pass-through", ("intremap=on,x-scalable-mode=on,x-flts=on", PT_ARGS)),
])
HASH_FUNCTIONS = re.compile(r"^(g_hash_table_|g_int64_|g_direct_|g_str_hash|g_str_equal)")
PHASES = ("hit", "miss", "translate", "queue", "irq", "other")
# intel-iommu's functions by phase (its QEMU has no frame pointers: the leaf is all perf sees).
INTEL_QUEUE = re.compile(r"^vtd_(fetch_inv_desc|process_|hash_remove|iotlb_.*invalidate|handle_iq|mem_write|"
                         r"inv_desc|update_iq|.*_inv_)")
INTEL_IRQ = re.compile(r"^vtd_(interrupt_remap|mem_ir_|remap_irq|irte_|int_remap|ir_)")


def newc_archive(files):
    """A cpio newc archive of {name: (mode, bytes)}, as the kernel's initramfs unpacker reads."""
    out = bytearray()

    def entry(ino, name, mode, data):
        name_bytes = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_bytes), 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name_bytes)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, (mode, data)) in enumerate(sorted(files.items()), start=1):
        entry(ino, name, mode, data)
    entry(0, "TRAILER!!!", 0, b"")
    return bytes(out)


def build_initramfs(guest_dir, work):
    """The suite's initramfs followed by a gzip'ed archive holding /bench-init."""
    with open(os.path.join(HERE, "bench-init.sh"), "rb") as f:
        init = f.read()
    path = os.path.join(work, "initramfs-bench.cpio.gz")
    with open(os.path.join(guest_dir, "initramfs.cpio.gz"), "rb") as f:
        base = f.read()
    with open(path, "wb") as f:
        f.write(base)
        f.write(gzip.compress(newc_archive({"bench-init": (0o100755, init)}), compresslevel=1))
    return path


class Config:
    def __init__(self, device, mode, opts, cmdline):
        self.device = device          # "none", "intel-iommu" or "swift-vtd"
        self.mode = mode
        self.opts = opts
        self.cmdline = cmdline

    @property
    def name(self):
        return self.device if self.device == "none" else f"{self.device} {self.mode}"


def configs(modes):
    out = [Config("none", "-", "", "")]
    for mode in modes:
        opts, cmdline = MODES[mode]
        out.append(Config("intel-iommu", mode, opts, cmdline))
        out.append(Config("swift-vtd", mode, opts, cmdline))
    return out


def translate_calls(state_text):
    """swiftvtd_translate calls of every device, from the glue's line in the state dump."""
    m = re.search(r"^glue: translate-calls (\d+)$", state_text, re.M)
    return int(m.group(1)) if m else None


def qmp_state(path, timeout=10):
    """The device's x-state through QMP (qom-get), or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            reader = sock.makefile("rb")
            json.loads(reader.readline())             # the greeting
            for command in ({"execute": "qmp_capabilities"},
                            {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/svtd",
                                                                 "property": "x-state"}}):
                sock.sendall(json.dumps(command).encode() + b"\n")
                while True:
                    reply = json.loads(reader.readline())
                    if "return" in reply or "error" in reply:
                        break
            return reply.get("return")
    except (OSError, ValueError):
        return None


def qemu_command(args, config, kernel, initrd, disk, work):
    cmd = [args.qemu, "-accel", "tcg", "-M", "q35,kernel-irqchip=split", "-bios", "qboot.rom"]
    for d in FIRMWARE_DIRS:
        if os.path.isdir(d):
            cmd += ["-L", d]
    if config.device == "intel-iommu":
        cmd += ["-device", f"intel-iommu,{config.opts}"]
    elif config.device == "swift-vtd":
        lib = f"library={args.library}," if args.library else ""
        cmd += ["-device", f"swift-vtd,{lib}{config.opts},id=svtd,x-state-dump={work}/state.txt",
                "-qmp", f"unix:{work}/qmp.sock,server=on,wait=off"]
    cmd += ["-smp", str(args.smp), "-cpu", "max", "-m", "512M", "-nographic", "-no-reboot",
            "-vga", "none", "-nic", "none",
            "-kernel", kernel, "-initrd", initrd,
            "-append", f"console=ttyS0 {config.cmdline} panic=-1 loglevel=4 no_timer_check "
                       f"rdinit=/bench-init svt.count={args.count} svt.rounds={args.reads}",
            "-drive", f"if=none,id=vblk,format=raw,file={disk}",
            "-device", "virtio-blk-pci,drive=vblk,iommu_platform=on,disable-legacy=on"]
    return cmd


def run_boot(args, config, kernel, initrd, work, index):
    """Boots CONFIG under perf. Returns a dict of figures, or {'error': text}."""
    disk = os.path.join(work, "disk.img")
    perf_data = os.path.join(work, f"perf-{index}.data")
    cmd = ["perf", "record", "-q", "-F", str(args.frequency), "-g", "-k", "CLOCK_MONOTONIC",
           "-o", perf_data, "--"] + qemu_command(args, config, kernel, initrd, disk, work)
    log_path = os.path.join(args.log_dir, f"bench-{index:02d}-{config.name.replace(' ', '-')}.log")
    marks = {}
    calls_at_start = []
    state_path = os.path.join(work, "state.txt")
    if os.path.exists(state_path):
        os.unlink(state_path)
    lines = []
    notes = []       # the guest's words on a failed read
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)

    def reader():
        for raw in proc.stdout:
            now = time.monotonic()
            line = raw.decode(errors="replace").rstrip("\r\n")
            lines.append(line)
            m = re.match(r"BENCH (\w+) ?(.*)", line.strip("\r"))
            if m:
                marks[m.group(1)] = (now, m.group(2))
                if m.group(1) == "start" and config.device == "swift-vtd":
                    calls_at_start.append(translate_calls(qmp_state(os.path.join(work, "qmp.sock")) or ""))
                if m.group(1) in ("ddfail", "dmesg"):
                    notes.append(line.strip())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        marks.setdefault("error", (0, "timed out"))
    t.join(timeout=10)
    with open(log_path, "w") as f:
        f.write(" ".join(cmd) + "\n\n" + "\n".join(lines) + "\n")
    if "error" in marks:
        return {"error": marks["error"][1], "log": log_path}
    if "start" not in marks or "end" not in marks:
        return {"error": f"no BENCH start/end markers (exit {proc.returncode})", "log": log_path}
    host_start, guest_start = marks["start"][0], float(marks["start"][1])
    host_end, end_text = marks["end"]
    guest_end, _, failed = end_text.split()[:3]
    ios = args.count * args.reads
    figures = {
        "ios": ios,
        "guest_s": float(guest_end) - guest_start,
        "host_s": host_end - host_start,
        "failed_reads": int(failed),
        "faults": marks.get("faults", (0, "?"))[1],
        "domain": marks.get("domain", (0, "?"))[1],
        "log": log_path,
        "notes": notes,
    }
    if config.device == "swift-vtd" and calls_at_start and os.path.exists(state_path):
        with open(state_path) as f:
            at_end = translate_calls(f.read())
        if at_end is not None and calls_at_start[0] is not None:
            figures["translate_calls"] = at_end - calls_at_start[0]
    figures.update(count_samples(perf_data, config.device, host_start, host_end))
    if not args.keep_perf:
        os.unlink(perf_data)
    return figures


def count_samples(perf_data, device, start, end):
    """Samples of the QEMU process between START and END (CLOCK_MONOTONIC seconds): all of them,
    and those inside the vIOMMU; plus the vIOMMU's top leaf symbols."""
    proc = subprocess.Popen(["perf", "script", "-i", perf_data, "-F", "comm,tid,time,ip,sym,dso"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    total = inside = orphans = 0
    symbols = collections.Counter()
    phases = collections.Counter()

    def finish(header, chain):
        nonlocal total, inside, orphans
        m = re.search(r"\s(\d+\.\d+):\s*$", header)
        if not m or not (start <= float(m.group(1)) <= end):
            return
        total += 1
        if not chain:
            return
        leaf_sym, leaf_dso = chain[0]
        if HASH_FUNCTIONS.match(leaf_sym) and len(chain) == 1:
            orphans += 1  # judged against the no-IOMMU boots once the run is over
            return
        hit = False
        if device == "intel-iommu":
            hit = leaf_sym.startswith("vtd_") or (
                HASH_FUNCTIONS.match(leaf_sym) and any(s.startswith("vtd_") for s, _ in chain[1:]))
        elif device == "swift-vtd":
            hit = leaf_dso.endswith("libSwiftVTd.so") or "libSwiftVTd.so." in leaf_dso \
                or leaf_sym.startswith("swift_vtd_")
        if hit:
            inside += 1
            symbols[leaf_sym] += 1
            phases[phase_of(device, [s for s, _ in chain])] += 1

    header, chain = None, []
    frame = re.compile(r"^\s+[0-9a-f]+ (.*) \((.*)\)$")
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        if not line.strip():
            if header is not None:
                finish(header, chain)
            header, chain = None, []
        elif line[0] in " \t":
            m = frame.match(line)
            if m:
                chain.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), m.group(2)))
        else:
            if header is not None:
                finish(header, chain)
            header, chain = line, []
    if header is not None:
        finish(header, chain)
    proc.wait()
    return {"samples": total, "viommu": inside, "hash_orphans": orphans, "phases": dict(phases),
            "top": symbols.most_common(5)}


def phase_of(device, chain):
    """The phase of a vIOMMU sample whose frames, leaf first, are CHAIN."""
    if device == "intel-iommu":
        fn = next((s for s in chain if s.startswith("vtd_")), "")
        if INTEL_QUEUE.match(fn):
            return "queue"
        if INTEL_IRQ.match(fn):
            return "irq"
        return "translate" if fn.startswith("vtd_") else "other"
    joined = " ".join(chain)
    if "translateLocked" in joined or "translateMiss" in joined:
        return "miss"
    if "swiftvtd_translate" in joined or "swift_vtd_translate" in joined:
        return "hit"
    if "mmio_write" in joined:
        return "queue"
    if "remap" in joined or "interrupt" in joined:
        return "irq"
    return "other"


def hash_baseline(results):
    """Caller-less GLib hash-table samples per read in the run's no-IOMMU boots."""
    ok = [f for f in results.get("none", []) if "error" not in f]
    return sum(f["hash_orphans"] / f["ios"] for f in ok) / len(ok) if ok else 0.0


def hash_excess(f, baseline):
    """F's caller-less GLib hash-table samples beyond the no-IOMMU boots' rate (not below 0)."""
    return max(0.0, f["hash_orphans"] - baseline * f["ios"])


def per_kilo_io(f, baseline=0.0):
    return 1000.0 * (f["viommu"] + hash_excess(f, baseline)) / f["ios"]


def calls_per_kilo_io(f):
    return 1000.0 * f["translate_calls"] / f["ios"] if "translate_calls" in f else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qemu", default=os.path.join(CACHE, "qemu/current/qemu-system-x86_64"))
    ap.add_argument("--guest-dir", default=os.path.join(CACHE, "guest/6.1"))
    ap.add_argument("--library", default=os.environ.get("SWIFTVTD_LIBRARY", ""),
                    help="libSwiftVTd.so for swift-vtd (default: the device's own default)")
    ap.add_argument("--log-dir", default=os.path.join(CACHE, "guest/logs"))
    ap.add_argument("--rounds", type=int, default=2, help="times each configuration boots (interleaved)")
    ap.add_argument("--reads", type=int, default=3, help="dd runs per boot")
    ap.add_argument("--count", type=int, default=16384, help="4 KiB blocks per dd run")
    ap.add_argument("--frequency", type=int, default=999, help="perf record -F")
    ap.add_argument("--smp", type=int, default=1, help="guest CPUs")
    ap.add_argument("--timeout", type=float, default=600, help="hard limit per boot, seconds")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    ap.add_argument("--keep-perf", action="store_true", help="keep perf.data files (printed)")
    ap.add_argument("--top", action="store_true", help="print each boot's top vIOMMU leaf symbols")
    ap.add_argument("--phases", action="store_true",
                    help="print each boot's vIOMMU samples by phase, and a table of their means per 1k reads")
    args = ap.parse_args()

    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m}")
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    for path, hint in ((args.qemu, "make qemu"), (kernel, "Tests/guest/build-images.sh 6.1")):
        if not os.path.exists(path):
            print(f"missing {path} (run {hint})", file=sys.stderr)
            return 1
    if not shutil.which("perf"):
        print("no perf (Debian's linux-perf)", file=sys.stderr)
        return 1
    os.makedirs(args.log_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="swiftvtd-bench-")
    results = collections.defaultdict(list)
    try:
        initrd = build_initramfs(args.guest_dir, work)
        with open(os.path.join(work, "disk.img"), "wb") as f:
            f.truncate(args.count * 4096 + (1 << 20))
        order = configs(modes)
        print(f"bench-guest: {len(order)} configurations x {args.rounds} round(s), "
              f"{args.reads} x {args.count} reads of 4 KiB (O_DIRECT) per boot, perf -F {args.frequency}, "
              f"TCG, -smp {args.smp}; logs in {args.log_dir}", flush=True)
        index = 0
        for r in range(args.rounds):
            for c in order:
                index += 1
                f = run_boot(args, c, kernel, initrd, work, index)
                results[c.name].append(f)
                if "error" in f:
                    print(f"  round {r + 1} {c.name:26} ERROR {f['error']}  log: {f['log']}", flush=True)
                    continue
                print(f"  round {r + 1} {c.name:26} {1e6 * f['guest_s'] / f['ios']:7.1f} us/IO (guest), "
                      f"{1e6 * f['host_s'] / f['ios']:7.1f} us/IO (host), samples {f['samples']:6d}, "
                      f"vIOMMU {f['viommu']:6d} = {per_kilo_io(f):6.2f}/1k IO "
                      f"(+ {f['hash_orphans']} caller-less hash), domain {f['domain']}, "
                      f"faults {f['faults']}, failed dd {f['failed_reads']}"
                      + (f", translate calls {f['translate_calls']} = {calls_per_kilo_io(f):.1f}/1k IO"
                         if "translate_calls" in f else ""), flush=True)
                for note in f["notes"]:
                    print(f"      {note}")
                if args.phases and f["phases"]:
                    print("      phases: " + ", ".join(f"{p} {f['phases'][p]}" for p in PHASES if p in f["phases"]))
                if args.top:
                    for sym, n in f["top"]:
                        print(f"      {n:6d} {sym}")
                if args.keep_perf:
                    print(f"      perf data: {os.path.join(work, f'perf-{index}.data')}")
    finally:
        if not args.keep_perf:
            shutil.rmtree(work, ignore_errors=True)

    baseline = hash_baseline(results)

    def mean(name, key):
        ok = [f for f in results[name] if "error" not in f]
        if not ok:
            return None
        if key == "us":
            return sum(1e6 * f["guest_s"] / f["ios"] for f in ok) / len(ok)
        if key == "calls":
            counted = [calls_per_kilo_io(f) for f in ok if "translate_calls" in f]
            return sum(counted) / len(counted) if counted else None
        if key == "hash":
            return sum(1000.0 * hash_excess(f, baseline) / f["ios"] for f in ok) / len(ok)
        if key in PHASES:
            return sum(1000.0 * f["phases"].get(key, 0) / f["ios"] for f in ok) / len(ok)
        return sum(per_kilo_io(f, baseline) for f in ok) / len(ok)

    def fmt(v, spec):
        return format(v, spec) if v is not None else "-".rjust(len(format(0.0, spec)))

    print()
    print(f"Means over {args.rounds} round(s). us/IO: guest wall time of the dd runs per 4 KiB read. "
          f"vIOMMU/1k: perf samples inside the vIOMMU per 1,000 reads, with the caller-less GLib "
          f"hash-table samples beyond the no-IOMMU boots' {1000.0 * baseline:.2f}/1k. "
          f"calls/1k: swift-vtd's swiftvtd_translate calls per 1,000 reads.")
    base = mean("none", "us")
    print(f"no IOMMU: {fmt(base, '.1f')} us/IO")
    print(f"{'mode':13} | {'intel us/IO':>11} {'swift us/IO':>11} {'swift/intel':>11} | "
          f"{'intel vIOMMU/1k':>15} {'swift vIOMMU/1k':>15} {'swift/intel':>11} | {'swift calls/1k':>14}")
    for mode in modes:
        iu, su = mean(f"intel-iommu {mode}", "us"), mean(f"swift-vtd {mode}", "us")
        ik, sk = mean(f"intel-iommu {mode}", "k"), mean(f"swift-vtd {mode}", "k")
        ru = su / iu if iu and su is not None else None
        rk = sk / ik if ik and sk is not None else None
        print(f"{mode:13} | {fmt(iu, '11.1f')} {fmt(su, '11.1f')} {fmt(ru, '11.2f')} | "
              f"{fmt(ik, '15.2f')} {fmt(sk, '15.2f')} {fmt(rk, '11.2f')} | "
              f"{fmt(mean(f'swift-vtd {mode}', 'calls'), '14.1f')}")
    if args.phases:
        print()
        print("vIOMMU samples per 1,000 reads by phase (hash: the caller-less GLib hash-table samples "
              "counted above, intel-iommu's IOTLB lookups for the most part):")
        print(f"{'mode':13} {'device':11} | " + " ".join(f"{p:>9}" for p in PHASES + ("hash",)))
        for mode in modes:
            for device in ("intel-iommu", "swift-vtd"):
                name = f"{device} {mode}"
                if name in results:
                    print(f"{mode:13} {device:11} | "
                          + " ".join(fmt(mean(name, p), '9.2f') for p in PHASES + ("hash",)))
    errors = sum("error" in f for fs in results.values() for f in fs)
    if errors:
        print(f"{errors} boot(s) gave no figures (see ERROR lines)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
