#!/usr/bin/env python3
"""The host testbed: swift-vtd as the IOMMU of an L1 Linux with iommufd, the project's QEMU
running inside L1 with edu and nvme assigned to an L2 Linux guest.

  L0  the project's QEMU: a VT-d unit for L1 (swift-vtd advertising nesting, or intel-iommu,
      which cannot nest), QEMU's edu and an nvme disk
  L1  the host kernel (built with IOMMUFD); binds edu and nvme to vfio-pci and runs, per case,
      the project's QEMU with -device swift-vtd,host-mode=... and both devices assigned
  L2  the same kernel; drives edu through VFIO from user space (map, DMA both ways, compare,
      unmap, then a DMA to an unmapped IOVA) and reads and writes the nvme disk

Prints one PASS/FAIL line per case, the nested-vs-shadow figure lines, and "N passed, M failed".
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

FIRMWARE_DIRS = ["/usr/share/qemu", "/usr/share/seabios"]
MIB = 1 << 20


class L0Run:
    """One boot of L0 with the given VT-d device; L1 runs the given cases."""

    def __init__(self, name, iommu, cases):
        self.name = name          # "swift" or "intel": the IOMMU L1 runs on
        self.iommu = iommu        # L0's -device
        # (case name, L2 QEMU's mode (l1-init.sh's MODE), expected outcome: "nested", "shadow",
        # "intel-iommu" or "refused"[, "hotplug", "reboot", "pt" (L2 with iommu=pt), or
        # "optional": run only when --cases names it]); they run at the same time in L1, case i on the i-th edu and nvme;
        # a hotplug case also gets the edu after the last case's, hot-plugged into L2 and
        # unplugged again.
        self.cases = cases

    @property
    def hotplug(self):
        return any(len(c) > 3 and c[3] == "hotplug" for c in self.cases)


def l0_runs(library):
    swift = (f"swift-vtd,library={library},intremap=on,x-scalable-mode=on,x-flts=on,slts=on,"
             "nesting=on,aw-bits=48")
    intel = "intel-iommu,intremap=on,x-scalable-mode=on,aw-bits=48"
    return [
        # shadow-legacy and intel-sm are the two shadows in each other's translation mode (the
        # shadow and intel cases differ in it: swift-vtd scalable, intel-iommu legacy); only
        # with --cases, to keep the default run's four L2s.
        L0Run("swift", swift, [("nested", "auto", "nested", "hotplug"), ("shadow", "shadow", "shadow"),
                               ("intel", "intel", "intel-iommu"), ("reboot", "nested", "nested", "reboot"),
                               ("shadow-legacy", "shadow-legacy", "shadow", "optional"),
                               ("intel-sm", "intel-sm", "intel-iommu", "optional")]),
        # pt: L2 with iommu=pt, so its nvme (kernel driver) passes through while its edu (VFIO in
        # L2) is translated: a shadowed device whose requests pass through must see guest RAM.
        L0Run("intel", intel, [("auto", "auto", "shadow"), ("forced", "nested", "refused"),
                               ("pt", "shadow", "shadow", "pt")]),
    ]


def l0_command(qemu, run, kernel, initrd, nvme_images, rounds, big_rounds, profile=False, serial=False, turns=0):
    args = [qemu, "-accel", "tcg", "-M", "q35,kernel-irqchip=split", "-bios", "qboot.rom"]
    for d in FIRMWARE_DIRS:
        if os.path.isdir(d):
            args += ["-L", d]
    return args + [
        "-cpu", "max", "-smp", "2", "-m", "3G", "-nographic", "-no-reboot", "-vga", "none",
        "-nodefaults", "-serial", "stdio",
        "-device", run.iommu,
        # One edu (slot 0x10 + i) and one nvme (slot 0x18 + i) per case; edu's default DMA
        # mask is 28 bits, which would clamp the IOVAs L1 hands out.
        *[arg for i in range(len(run.cases)) for arg in (
            "-device", f"edu,dma_mask=0xffffffffffff,addr={0x10 + i:x}.0",
            "-drive", f"if=none,id=nv{i},format=raw,file={nvme_images[i]}",
            "-device", f"nvme,drive=nv{i},serial=swiftvtdhost{i},addr={0x18 + i:x}.0")],
        *(["-device", f"edu,dma_mask=0xffffffffffff,addr={0x10 + len(run.cases):x}.0"] if run.hotplug else []),
        "-kernel", kernel, "-initrd", initrd,
        "-append", "console=ttyS0 intel_iommu=on,sm_on panic=-1 loglevel=4 no_timer_check mitigations=off "
                   f"svt.cases={','.join(':'.join((c[0], c[1]) + tuple(f for f in c[3:] if f != 'optional')) for c in run.cases)} svt.rounds={rounds} svt.bigrounds={big_rounds}"
                   + (" svt.profile=1" if profile else "") + (" svt.serial=1" if serial else "")
                   + (f" svt.turns={turns}" if turns else ""),
    ]


def boot(args, log_path, timeout):
    """Runs L0 to power-off, echoing L2's verdict lines as they come; returns the console."""
    start = time.time()
    lines = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace")
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            lines.append(line)
            log.write(line + "\n")
            log.flush()
            if re.search(r"l1: case|edu: (PASS|FAIL)|nvme: (PASS|FAIL)|l1: ready|error", line):
                print(f"  [{time.time() - start:6.1f}s] {line}", flush=True)
        proc.wait()
        timer.cancel()
    return lines, time.time() - start


class Figure:
    """Host operations of one case: ioctls of L1's QEMU per guest map+unmap pair."""

    def __init__(self, label, page, page_pairs, page_us, big, big_pairs, big_us, contig, contig_us, seconds,
                 turns=None):
        self.label, self.seconds = label, seconds
        self.page, self.page_pairs, self.page_us = page, page_pairs, page_us
        self.big, self.big_pairs, self.big_us = big, big_pairs, big_us
        self.contig, self.contig_us = contig, contig_us
        # With --turns: {"big": [us per pair of each turn], "contig": [...]}, in turn order.
        self.turns = turns or {}

    @staticmethod
    def cpu(delta, pairs):
        """"usr/sys" milliseconds of L1's QEMU per pair (user space: QEMU and the library; system:
        L1's kernel), or "-" when L1 could not read them."""
        if "utime" not in delta:
            return "-"
        return f"{10 * delta['utime'] / pairs:.1f}/{10 * delta.get('stime', 0) / pairs:.1f}"

    @staticmethod
    def split(delta, pairs):
        """(iommufd ioctls, HWPT_INVALIDATE, IOAS_MAP + IOAS_UNMAP) per pair."""
        return (delta.get("iommufd", 0) / pairs, delta.get("IOMMU_HWPT_INVALIDATE", 0) / pairs,
                (delta.get("IOMMU_IOAS_MAP", 0) + delta.get("IOMMU_IOAS_UNMAP", 0)) / pairs)


class Results:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def case(self, name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def case_lines(lines, case):
    prefix = f"L2[{case}]: "
    return [line[len(prefix):] for line in lines if line.startswith(prefix)]


def counts(lines, case, phase):
    for line in lines:
        m = re.match(rf"l1: counts {case} {phase} (.*)", line)
        if m:
            words = m.group(1).split()
            return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    return None


def case_seconds(lines, case):
    start = end = None
    for line in lines:
        m = re.match(rf"l1: case {case} (?:.* )?(start|end) (\d+)$", line)
        if m:
            if m.group(1) == "start":
                start = int(m.group(2))
            else:
                end = int(m.group(2))
    return end - start if start is not None and end is not None else None


def ioctl_delta(lines, case, before, after):
    """{name: count} of L1's QEMU between two snapshots, or None when one is missing."""
    a, b = counts(lines, case, before), counts(lines, case, after)
    if a is None or b is None:
        return None
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}


def check_hotplug(label, case, lines, l2, results):
    """device_add of an assigned edu into L2's root port, edu rounds on it, device_del: the
    library bound it at once (the decision was taken), and after the unplug neither its state
    nor L1's iommufd keeps anything of it."""
    hot = next((line for line in l2 if re.match(r"hotedu: (PASS|FAIL)", line)), None)
    results.case(f"{label}-hotplug-edu", bool(hot) and hot.startswith("hotedu: PASS"),
                 hot or "no verdict for the hot-plugged edu: " + " | ".join(l2[-4:]))
    unplugged = next((line for line in l2 if line.startswith("l2: unplug")), None)
    delta = ioctl_delta(lines, case, "hot-before", "hot-after")
    monitor = [line.split(": ", 1)[1] for line in lines if line.startswith(f"L2mon[{case}]: ")]
    after = "\n".join(monitor[next((i for i, m in enumerate(monitor) if "info swift-vtd" in m), len(monitor)):])
    problems = []
    if not unplugged or "timed out" in unplugged:
        problems.append(unplugged or "L2 never reported the unplug")
    if delta is None:
        problems.append("no ioctl counts around the hot-plug")
    else:
        # Every object allocated while the device was plugged (VFIO's IOAS and HWPT, the
        # library's nest parent and nested HWPTs) was destroyed with it.
        made = delta.get("IOMMU_HWPT_ALLOC", 0) + delta.get("IOMMU_IOAS_ALLOC", 0)
        if made == 0 or made != delta.get("IOMMU_DESTROY", 0):
            problems.append(f"{made} iommufd objects allocated, {delta.get('IOMMU_DESTROY', 0)} destroyed")
    if "host device 01:00.0" in after or "nest parent" not in after:
        problems.append("the live state after the unplug still names the device, or lacks the others")
    results.case(f"{label}-unplug", not problems,
                 "; ".join(problems) if problems else
                 f"{unplugged}; {delta.get('IOMMU_HWPT_ALLOC', 0)} HWPTs and {delta.get('IOMMU_IOAS_ALLOC', 0)} "
                 f"IOAS allocated and all {delta.get('IOMMU_DESTROY', 0)} destroyed")


def check_run(run, lines, nvme_images, rounds, big_rounds, results, figures):
    l1 = [line for line in lines if line.startswith("l1: ")]
    want, edus = len(run.cases), len(run.cases) + int(run.hotplug)
    ready = any(re.match(rf"l1: ready edus=(0000:[^, ]*,?){{{edus}}} nvmes=(0000:[^, ]*,?){{{want}}} ", line)
                for line in l1)
    results.case(f"L1-{run.name}-vfio", ready,
                 "" if ready else "L1 did not bind edu and nvme to vfio-pci (see the log)")
    if not ready:
        return
    for index, (case, mode, expect, *flags) in enumerate(run.cases):
        nvme_image = nvme_images[index]
        l2 = case_lines(lines, case)
        text = "\n".join(l2)
        seconds = case_seconds(lines, case)
        label = f"L2-{run.name}-{case}"
        if expect == "refused":
            refused = re.search(r"swift-vtd: host mode: .*(cannot nest|needs every assigned device)", text)
            results.case(f"{label}-refused", bool(refused) and "l2: ready" not in text,
                         refused.group(0) if refused else "no clear refusal; L2 output: " + " | ".join(l2[-5:]))
            continue
        # The rows of a shadow in the other translation mode say which.
        mode_word = {"shadow-legacy": " legacy", "intel-sm": " scalable"}.get(mode, "")
        if expect == "intel-iommu":
            got = "intel-iommu shadow" + mode_word  # QEMU's own device: the anchor, nothing to decide
        else:
            # The decision as QEMU logged it, or as the state dump shows it at the end.
            state = "\n".join(line for line in lines if line.startswith(f"l1: state[{case}]: "))
            decided = re.search(r"host mode: (nested first-level|shadow second-level)", text + "\n" + state)
            got = {"nested first-level": "nested", "shadow second-level": "shadow"}.get(
                decided.group(1) if decided else "", "none")
            results.case(f"{label}-decides-{expect}", got == expect,
                         decided.group(0) if decided else "no decision line in L2's QEMU output")
            got = f"swift {got}{mode_word}"
        edu = next((line for line in l2 if re.match(r"edu: (PASS|FAIL)", line)), None)
        results.case(f"{label}-edu", bool(edu) and edu.startswith("edu: PASS"),
                     edu or "no edu verdict: " + " | ".join(l2[-5:]))
        nvme = next((line for line in l2 if re.match(r"nvme: (PASS|FAIL)", line)), None)
        nvme_ok = bool(nvme) and nvme.startswith("nvme: PASS")
        if nvme_ok:
            # The guest's pattern must be in L0's disk image: the write went through every level.
            with open(nvme_image, "rb") as f:
                head = f.read(MIB)
            want = f"SWIFTVTD-HOST-{case}\n".encode()
            if head[:len(want) * 4] != want * 4:
                nvme_ok, nvme = False, f"L0's image does not start with {want!r}"
        if nvme_ok and "pt" in flags and not nvme.endswith("domain identity"):
            # iommu=pt: the disk must have passed through, or the case tested nothing new.
            nvme_ok, nvme = False, f"L2's nvme was not in an identity domain: {nvme}"
        results.case(f"{label}-nvme", nvme_ok, nvme or "no nvme verdict")
        if seconds is None:
            # Its verdicts may all have come, but a QEMU that never exits means L1 hung or L0
            # timed out (and the cases after it in a --serial run never ran).
            results.case(f"{label}-exits", False, "L1 never saw its QEMU exit; see the console log")
        if "hotplug" in flags:
            check_hotplug(label, case, lines, l2, results)
        if "reboot" in flags:
            again = next((line for line in l2 if re.match(r"rebootedu: (PASS|FAIL)", line)), None)
            results.case(f"{label}-reboot-rebinds", "l2: second boot" in text and bool(again)
                         and again.startswith("rebootedu: PASS"),
                         again or "no edu verdict after the reboot: " + " | ".join(l2[-4:]))
        page = ioctl_delta(lines, case, "before", "after")
        big = ioctl_delta(lines, case, "big-before", "big-after")
        page_us = re.search(r"([\d.]+) us per map\+unmap pair", text)
        big_us = re.search(r"1 MiB map, DMA, unmap: ([\d.]+) us per 1 MiB map\+unmap pair", text)
        contig = ioctl_delta(lines, case, "contig-before", "contig-after")
        contig_us = re.search(r"1 MiB, contiguous map, DMA, unmap: ([\d.]+) us per", text)
        turns = {loop: [float(m.group(3)) / int(m.group(2)) for line in l2
                        for m in [re.match(rf"edu: {loop} turn (\d+): (\d+) pairs, ([\d.]+) us", line)]
                        if m and int(m.group(2))]
                 for loop in ("big", "contig")}
        if page and "reboot" not in flags:
            figures.append(Figure(f"{got} ({run.name} L1)", page, 2 * rounds,
                                  float(page_us.group(1)) if page_us else None,
                                  big, big_rounds, float(big_us.group(1)) if big_us else None,
                                  contig, float(contig_us.group(1)) if contig_us else None, seconds, turns))
    if run.name == "swift" and any(c[0] == "nested" for c in run.cases):
        # The DMA the nested L2 sent to its unmapped IOVA: L0 walked both stages, recorded the
        # first-level fault, and L1's driver reported it (Linux 7.3 gives user space no VT-d
        # vEVENTQ, so it goes no further: see docs/HOST.md).
        edu = next((m.group(1) for line in l1
                    for m in [re.match(r"l1: case nested .*edu=(\S+)", line)] if m), "?")
        faults = [line for line in l1 if "DMAR" in line and f"[{edu}] fault addr 0x30000000" in line]
        results.case("L1-swift-nested-fault-reported", any("fault reason 0x71" in f for f in faults),
                     faults[-1][len("l1: dmesg: "):] if faults else f"L1's dmesg shows no DMAR fault for {edu}")


# Kinds of work in a profile of L1's QEMU, by shared object and symbol (self time). The TCG
# runtime's helpers and lookups run L2 as much as its generated code does.
TCG_SYMBOLS = ("helper_", "tb_", "tcg_", "cpu_exec", "cpu_tb_exec", "cpu_loop", "cpu_io_recompile",
               "cpu_handle", "qht_", "probe_access", "mmu_lookup", "tlb_", "get_page_addr_code",
               "curr_cflags", "do_ld", "do_st", "iotlb_to_section", "do_interrupt", "x86_cpu", "raise_")
MEMORY_SYMBOLS = ("memory_region_", "address_space_", "flatview_", "vfio_", "iommufd_backend_", "iova_tree_",
                  "q_tree_", "memory_", "phys_", "qemu_ram_", "ram_block_", "dma_", "section_", "subpage_",
                  "access_with_adjusted_size", "prepare_mmio_access")
KERNEL_IOMMU_SYMBOLS = ("iommufd", "iopt_", "vfio", "iommu", "intel_", "qi_", "pfn_reader", "batch_", "gup_",
                        "pin_", "__get_user_pages", "interval_tree", "domain_", "pt_", "pfn_", "__iommu")


def profile_kind(dso, sym):
    if dso.startswith("[JIT]") or dso.startswith("[unknown]"):
        return "L2 code (TCG-generated)"
    if dso.startswith("libSwiftVTd"):
        return "libSwiftVTd.so"
    if dso.startswith("qemu-system"):
        if sym.startswith("swift_vtd_"):
            return "glue (swift_vtd_*)"
        if sym.startswith("vtd_"):
            return "intel-iommu (vtd_*)"
        if sym.startswith(MEMORY_SYMBOLS):
            return "QEMU memory API, VFIO"
        if sym.startswith(TCG_SYMBOLS):
            return "TCG runtime (running L2)"
        return "QEMU, other"
    if dso.startswith("[kernel"):
        return "L1 kernel: iommufd, VFIO, IOMMU" if any(k in sym for k in KERNEL_IOMMU_SYMBOLS) else "L1 kernel: other"
    if dso.startswith("libc"):
        return "libc"
    if dso.startswith("libglib"):
        return "glib"
    return "other"


def parse_profile(lines, case):
    """{"total_ns": N, "kinds": {kind: percent}, "children": {symbol: percent}} from the
    "l1: perf[case]: " lines, or None."""
    prefix = f"l1: perf[{case}]: "
    body = [line[len(prefix):] for line in lines if line.startswith(prefix)]
    if not body:
        return None
    profile, section = {"total_ns": None, "kinds": {}, "children": {}, "top": [], "threads": {}}, None
    for line in body:
        if line.startswith("== "):
            section = line[3:]
            continue
        m = re.match(r"# Event count \(approx\.\): (\d+)", line)
        if m:
            profile["total_ns"] = int(m.group(1))
            continue
        if line.startswith("#"):
            continue
        if section == "by thread":
            m = re.match(r"\s*([\d.]+)%\s+(.*?)\s*$", line)
            if m:
                profile["threads"][m.group(2)] = float(m.group(1))
        elif section == "by object and symbol, self":
            m = re.match(r"\s*([\d.]+)%\s+(.*?)\s+\[[.k]\] (.*)$", line)
            if m:
                kind = profile_kind(m.group(2), m.group(3))
                profile["kinds"][kind] = profile["kinds"].get(kind, 0.0) + float(m.group(1))
                profile["top"].append(line.strip())
        elif section and section.startswith("by object and symbol, with callees"):
            m = re.match(r"\s*([\d.]+)%\s+[\d.]+%\s+(.*?)\s+\[[.k]\] (.*)$", line)
            if m:
                profile["children"][m.group(3).strip()] = float(m.group(1))
    return profile if profile["total_ns"] else None


def print_profiles(profiles, big_rounds):
    """Each profiled case's L1 QEMU time over the scattered 1 MiB loop by kind of work, in ms of
    L1's cpu-clock per pair, and the inclusive time of a few entry points."""
    if not profiles:
        return
    labels = list(profiles)
    kinds = sorted({k for p in profiles.values() for k in p["kinds"]},
                   key=lambda k: -max(p["kinds"].get(k, 0) for p in profiles.values()))
    print("L1 QEMU over the scattered 1 MiB loop, perf self time by kind, ms per pair (% of its samples):")
    print(f"  {'kind':34}" + "".join(f" {label:>22}" for label in labels))
    for kind in kinds + ["total"]:
        cells = []
        for label in labels:
            p = profiles[label]
            pct = 100.0 if kind == "total" else p["kinds"].get(kind, 0.0)
            ms = pct / 100 * p["total_ns"] / 1e6 / big_rounds
            cells.append(f"{ms:8.1f} ({pct:5.1f}%)" if kind != "total" else f"{ms:8.1f}        ")
        print(f"  {kind:34}" + "".join(f" {c:>22}" for c in cells))
    print("  by thread of L1's QEMU process, ms per pair (% of its samples):")
    for label in labels:
        p = profiles[label]
        threads = sorted(p["threads"].items(), key=lambda kv: -kv[1])
        print(f"    {label}: " + ", ".join(f"{name} {pct / 100 * p['total_ns'] / 1e6 / big_rounds:.1f} ({pct:.1f}%)"
                                          for name, pct in threads))
    entries = ("iommufd_fops_ioctl", "swiftvtd_mmio_write", "vtd_mem_write", "memory_region_notify_iommu",
               "vfio_iommu_map_notify")
    print("  inclusive (children; call chains through QEMU are cut short, so lower bounds):")
    for entry in entries:
        cells = []
        for label in labels:
            p = profiles[label]
            pct = next((v for k, v in p["children"].items() if k == entry), None)
            cells.append("-" if pct is None else f"{pct / 100 * p['total_ns'] / 1e6 / big_rounds:8.1f} ({pct:5.1f}%)")
        print(f"  {entry:34}" + "".join(f" {c:>22}" for c in cells))


def print_big(figures, which, title):
    """The 1 MiB table for the scattered ("big") or contiguous buffer, then swift-vtd's shadow
    against intel-iommu's shadow on the same L0 (issue 15's ratios)."""
    rows, turns = {}, {}
    for f in figures:
        delta, us = (f.big, f.big_us) if which == "big" else (f.contig, f.contig_us)
        if delta and f.big_pairs:
            rows[f.label] = (Figure.split(delta, f.big_pairs), us, Figure.cpu(delta, f.big_pairs))
            turns[f.label] = f.turns.get(which, [])
    if not rows:
        return
    print(title)
    print(f"  {'mode':34} {'iommufd':>8} {'INVALIDATE':>11} {'IOAS MAP+UNMAP':>15} {'us/pair':>8} {'cpu ms usr/sys':>15}")
    for label, ((total, inval, ioas), us, cpu) in rows.items():
        print(f"  {label:34} {total:8.1f} {inval:11.1f} {ioas:15.1f} {f'{us:.0f}' if us is not None else '-':>8} {cpu:>15}")
    # The first pair is issue 15's figure (as the testbed has always run them: swift-vtd scalable,
    # intel-iommu legacy); the others compare the two in one translation mode.
    for swift_label, intel_label, what in (("swift shadow", "intel-iommu shadow", ""),
                                           ("swift shadow", "intel-iommu shadow scalable", ", both scalable"),
                                           ("swift shadow legacy", "intel-iommu shadow", ", both legacy")):
        swift, intel = rows.get(f"{swift_label} (swift L1)"), rows.get(f"{intel_label} (swift L1)")
        if swift and intel and intel[0][0]:
            ratio = f"{swift_label} / {intel_label}{what}: ioctls {swift[0][0] / intel[0][0]:.3f}"
            if swift[1] and intel[1]:
                ratio += f", us per pair {swift[1] / intel[1]:.2f}"
            print("  " + ratio)
            paired = list(zip(turns[f"{swift_label} (swift L1)"], turns[f"{intel_label} (swift L1)"]))
            if paired:
                print("    " + turn_ratios(paired))


def turn_ratios(paired):
    """With --turns: the time ratio of each round of turns (a turn of one case and the other's
    turn in the same round, seconds apart), so that a ratio does not rest on when each case ran."""
    ratios = sorted(a / b for a, b in paired if b)
    if not ratios:
        return "turns: none timed"
    n = len(ratios)
    median = ratios[n // 2] if n % 2 else (ratios[n // 2 - 1] + ratios[n // 2]) / 2
    faster = sum(1 for r in ratios if r < 1)
    return (f"{n} rounds of turns: us per pair ratio median {median:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}, "
            f"swift-vtd faster in {faster} of {n}")


def check_counts(figures, results):
    """Issue 15's ioctl counts are behaviour, not timing: a shadowing swift-vtd sends one UNMAP
    per invalidated range and coalesces contiguous MAPs; nesting sends no map and at most one
    invalidation per unmap."""
    for f in figures:
        if f.label.startswith("swift shadow") and f.big and f.contig and f.big_pairs:
            scattered, contiguous = Figure.split(f.big, f.big_pairs)[0], Figure.split(f.contig, f.big_pairs)[0]
            results.case(f"{f.label}-1MiB-ioctls", scattered <= 260 and contiguous <= 4,
                         f"{scattered:.1f} per scattered pair (<= 260), {contiguous:.1f} per contiguous pair (<= 4)")
        if f.label.startswith("swift nested") and f.big and f.big_pairs:
            total, inval, ioas = Figure.split(f.big, f.big_pairs)
            results.case(f"{f.label}-1MiB-ioctls", ioas == 0 and inval <= 1,
                         f"{ioas:.1f} IOAS map/unmap and {inval:.1f} HWPT_INVALIDATE per pair (0, <= 1)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--images", required=True, help="directory with l1.cpio.gz")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("SWIFTVTD_HOST_ROUNDS", "100")),
                    help="edu rounds of two 4 KiB map+unmap pairs")
    ap.add_argument("--big-rounds", type=int, default=int(os.environ.get("SWIFTVTD_HOST_BIG_ROUNDS", "10")),
                    help="edu rounds of one 1 MiB map+unmap pair")
    ap.add_argument("--timeout", type=int, default=4200, help="seconds per L0 boot")
    ap.add_argument("--only", choices=["swift", "intel"], help="run one L0 configuration")
    ap.add_argument("--profile", action="store_true",
                    help="profile each case's L2 QEMU in L1 with perf over the scattered 1 MiB loop "
                         "(with --turns, over the case's own turns of it; L1's image then carries perf; "
                         "see docs/HOST.md) and print the reports")
    ap.add_argument("--serial", action="store_true",
                    help="run L1's cases one after the other instead of side by side (figures that do "
                         "not depend on what the other cases were doing)")
    ap.add_argument("--turns", type=int, default=0, metavar="N",
                    help="run L1's cases side by side but their 1 MiB loops in turns of N pairs, one case "
                         "at a time, so that compared cases measure seconds apart (per-round ratios)")
    ap.add_argument("--cases", help="comma-separated case names to keep (nested, shadow, intel, reboot, auto, "
                    "forced, and two run only when named: shadow-legacy, swift-vtd's shadow in legacy mode, "
                    "and intel-sm, intel-iommu's in scalable mode); fewer L2s side by side measure with "
                    "less noise")
    a = ap.parse_args()
    if a.turns and a.serial:
        ap.error("--turns and --serial are two ways of keeping cases apart: choose one")
    if a.turns < 0:
        ap.error("--turns takes a number of pairs per turn")

    results, figures, profiles = Results(), [], {}
    workdir = tempfile.mkdtemp(prefix="swiftvtd-host-")
    for run in l0_runs(a.library):
        if a.only and run.name != a.only:
            continue
        if a.cases:
            run = L0Run(run.name, run.iommu, [c for c in run.cases if c[0] in a.cases.split(",")])
            if not run.cases:
                continue
        else:
            run = L0Run(run.name, run.iommu, [c for c in run.cases if "optional" not in c[3:]])
        nvme_images = [os.path.join(workdir, f"nvme-{run.name}-{i}.img") for i in range(len(run.cases))]
        for image in nvme_images:
            with open(image, "wb") as f:
                f.truncate(16 * MIB)
        log = os.path.join(workdir, f"l0-{run.name}.log")
        print(f"L0 with {run.iommu.split(',')[0]} as L1's IOMMU, cases "
              f"{', '.join(f'{c[0]} (L2 {c[1]})' for c in run.cases)} (console: {log})", flush=True)
        lines, seconds = boot(l0_command(a.qemu, run, a.kernel, os.path.join(a.images, "l1.cpio.gz"),
                                         nvme_images, a.rounds, a.big_rounds, a.profile, a.serial, a.turns),
                              log, a.timeout)
        print(f"  L0 run took {seconds:.0f} s", flush=True)
        if a.profile:
            # L1 prints each case's profile when its QEMU has ended ("l1: perf[case]: ..."); the
            # console log keeps all of it, here are the objects and the 40 hottest symbols.
            for case, *_ in run.cases:
                p = parse_profile(lines, case)
                if p is None:
                    print(f"  no profile of {case} from L1", flush=True)
                    continue
                profiles[case] = p
                prefix = f"l1: perf[{case}]: "
                by_object = []
                for line in lines:
                    if line.startswith(prefix + "== by object and symbol"):
                        break
                    if line.startswith(prefix) and "%" in line:
                        by_object.append(line[len(prefix):].strip())
                print(f"  profile of {case}: {p['total_ns'] / 1e6 / a.big_rounds:.1f} ms of L1 cpu-clock per "
                      f"1 MiB pair; by object: " + ", ".join(by_object), flush=True)
                for line in p["top"][:40]:
                    print(f"    {line}", flush=True)
        check_run(run, lines, nvme_images, a.rounds, a.big_rounds, results, figures)

    if figures:
        print("per 1,000 map+unmap (edu in L2, 4 KiB each; ioctls of L1's QEMU, which holds swift-vtd):")
        print(f"  {'mode':34} {'iommufd':>8} {'INVALIDATE':>11} {'IOAS MAP+UNMAP':>15} {'us/pair':>8} "
              f"{'cpu ms usr/sys':>15} {'case s':>7}")
        for f in figures:
            total, inval, ioas = (1000 * x for x in Figure.split(f.page, f.page_pairs))
            us = f"{f.page_us:.0f}" if f.page_us is not None else "-"
            print(f"  {f.label:34} {total:8.0f} {inval:11.0f} {ioas:15.0f} {us:>8} "
                  f"{Figure.cpu(f.page, f.page_pairs):>15} {f.seconds or '-':>7}")
        print_big(figures, "big", "per 1 MiB map+unmap pair (edu in L2, one 1 MiB buffer, pages scattered):")
        print_big(figures, "contig", "per 1 MiB map+unmap pair (edu in L2, half a 2 MiB huge page: contiguous):")
    print_profiles(profiles, a.big_rounds)
    check_counts(figures, results)
    print(f"{results.passed} passed, {results.failed} failed")
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
