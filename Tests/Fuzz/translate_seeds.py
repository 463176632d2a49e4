#!/usr/bin/env python3
"""Seed inputs for the translate fuzz target (Tests/Fuzz/fuzz_translate.c): well-formed tables,
so the fuzzer starts from walks that reach the leaves and mutates from there. Random bytes
rarely make a present PASID entry with a valid PGTT, so without seeds the first-level, nested
and second-level walkers were never reached (-print_coverage showed them at 0 edges).

Most seeds use 4 KiB aliasing (fuzz_translate.c MODE_ALIAS = 1): every table is the same page,
so each level's entry sits at its own index of that page. Run from the repository root:
    python3 Tests/Fuzz/translate_seeds.py
"""
import struct
from pathlib import Path

OUT = Path("Tests/Fuzz/corpus/translate")
NO_PASID = 0x8000_0000  # fuzz_translate.c: top bit set means a request without PASID
ALIAS_4K = 1 << 3       # mode bits 4:3 = 1
READ, WRITE = 1, 2
PRIVILEGED = 1 << 3     # access byte bits 5:3 are the request flags


class Page:
    def __init__(self, size=4096):
        self.bytes = bytearray(size)

    def put(self, offset, *words):
        for i, w in enumerate(words):
            struct.pack_into("<Q", self.bytes, offset + 8 * i, w)


def iova(*indices):
    """Address whose table index at each level (top first, 4 levels) is the given one."""
    return sum(index << (39 - 9 * level) for level, index in enumerate(indices))


def seed(name, config, mode, requests, ram):
    data = struct.pack("<BBB", config, mode, len(requests) - 1)
    for pasid, sid, addr, access in requests:
        data += struct.pack("<IHQB", pasid, sid, addr, access)
    (OUT / f"seed-{name}").write_bytes(data + bytes(ram))


def legacy():
    # Root entry of bus 0 -> context entry of 00:02.0 -> 4-level second level, indices 4..7.
    p = Page()
    p.put(0x000, 0x1000 | 1, 0)
    p.put(0x100, 0x2000 | 1, 2 | 1 << 8)  # TT 00, AW 2 (4 levels), domain 1
    for level, index in enumerate((4, 5, 6)):
        p.put(8 * index, (0x3000 + 0x1000 * level) | 3)
    p.put(8 * 7, 0x9000 | 3)
    a = iova(4, 5, 6, 7)
    seed("legacy-second-level", 0, ALIAS_4K, [(NO_PASID, 0x10, a, READ), (NO_PASID, 0x10, a | 0x123, WRITE),
                                              (NO_PASID, 0x10, a + 0x1000, READ)], p.bytes)


def scalable(name, config, pasid_entry, tables, requests):
    # Root lower half -> scalable context entry of 00:02.0 (PASIDE, RID_PASID 201) -> PASID
    # directory entry 3 -> PASID entry 9 of its table (201 = 3 * 64 + 9).
    p = Page()
    p.put(0x000, 0x1000 | 1, 0)
    p.put(0x200, 0x3000 | 1 << 3 | 1, 201, 0, 0)
    p.put(0x018, 0x4000 | 1)
    p.put(0x240, *pasid_entry)
    for offset, value in tables:
        p.put(offset, value)
    seed(name, config, ALIAS_4K | 1, requests, p.bytes)


def first_level():
    a = iova(4, 5, 6, 7)
    tables = [(0x20, 0x6000 | 7), (0x28, 0x7000 | 7), (0x30, 0x8000 | 7), (0x38, 0xA000 | 0x67)]
    requests = [(NO_PASID, 0x10, a, READ), (NO_PASID, 0x10, a, WRITE), (201, 0x10, a | 0x40, READ | PRIVILEGED),
                (201, 0x10, a, WRITE)]
    # PGTT 001, domain 1, FLPTR with NXE; accessed and dirty clear on the upper levels.
    scalable("scalable-first-level", 3, (1 << 6 | 1, 1, 0x5000 | 1 << 5), tables, requests)


def second_level():
    a = iova(4, 5, 6, 7)
    tables = [(0x20, 0x6000 | 3), (0x28, 0x7000 | 3), (0x30, 0x8000 | 3), (0x38, 0xA000 | 3)]
    requests = [(NO_PASID, 0x10, a, READ), (201, 0x10, a, WRITE), (NO_PASID, 0x10, a + 0x1000, READ)]
    # PGTT 010, AW 2 (4 levels), SLPTPTR.
    scalable("scalable-second-level", 2, (0x5000 | 2 << 6 | 2 << 2 | 1, 1, 0), tables, requests)


def nested():
    # Nested on the configuration with every PGTT. The second level's upper levels are index 0 of
    # this page (the root entry, readable); its leaves for the first-level tables' GPAs 0x5000 to
    # 0x8000 are the first-level entries at indices 5 to 7 (readable and writable too) plus index
    # 8, and index 10 maps the output page. With 4 KiB aliasing every host page is this page again.
    # Accessed bits are preset so no update needs a writable second level.
    a = iova(4, 5, 6, 7)
    tables = [(0x20, 0x6000 | 0x27), (0x28, 0x7000 | 0x27), (0x30, 0x8000 | 0x27), (0x38, 0xA000 | 0x67),
              (0x40, 0x8000 | 3), (0x50, 0xA000 | 3)]
    requests = [(NO_PASID, 0x10, a, READ), (201, 0x10, a, WRITE)]
    scalable("scalable-nested", 4, (0x5000 | 3 << 6 | 2 << 2 | 1, 1, 0x5000 | 1 << 5), tables, requests)


def pass_through():
    requests = [(NO_PASID, 0x10, 0x1234_5000, READ), (201, 0x10, 0x5000, READ | PRIVILEGED)]
    scalable("scalable-pass-through", 3, (4 << 6 | 1, 1, 1), [], requests)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    legacy()
    first_level()
    second_level()
    nested()
    pass_through()
