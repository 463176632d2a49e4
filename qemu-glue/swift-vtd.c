/*
 * swift-vtd: a VT-d IOMMU for q35 whose model is libSwiftVTd.so.
 *
 * This file is glue only. It loads the library with GModule, owns one unit
 * of it, and connects QEMU to it: the register window, one IOMMU memory
 * region per PCI device (and PASID) with a guest-RAM view beside it for the
 * devices the library says need no translation, the interrupt window at
 * 0xFEE00000, IOMMU notifiers, reset, and the host callbacks the library needs
 * (guest memory, MSI delivery, notifications, logging). Every VT-d decision is
 * made by the library; nothing here knows a register bit or a table format.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "qapi/type-helpers.h"
#include "qom/object_interfaces.h"
#include "monitor/monitor.h"
#include "hw/core/qdev-prop-internal.h"
#include "hw/i386/x86-iommu.h"
#include "hw/i386/apic_internal.h"
#include "hw/i386/pc.h"
#include "hw/i386/x86.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci-host/q35.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/runstate.h"
#include "exec/address-spaces.h"
#include "system/dma.h"
#include "system/kvm.h"
#include "kvm/kvm_i386.h"
#include "exec/memory.h"
#include "system/system.h"
#include "system/host_iommu_device.h"
#include "system/iommufd.h"
#include "hw/vfio/vfio-common.h"
#include <linux/iommufd.h>
#include "trace.h"
#include <gmodule.h>

#include "swiftvtd.h"

#define TYPE_SWIFT_VTD "swift-vtd"
#define TYPE_SWIFT_VTD_IOMMU_MR "swift-vtd-iommu-memory-region"

/* Where `make install` put the library: written by scripts/build-qemu.sh from swiftvtd.pc. */
#if __has_include("swiftvtd-default.h")
#include "swiftvtd-default.h"
#endif
#ifndef SWIFT_VTD_DEFAULT_LIBRARY
#define SWIFT_VTD_DEFAULT_LIBRARY "/usr/local/lib/libSwiftVTd.so.1"
#endif

/* Where q35 puts the register window (the DMAR table's DRHD says the same). */
#define SWIFT_VTD_MMIO_BASE 0xfed90000ULL

OBJECT_DECLARE_SIMPLE_TYPE(SwiftVTdState, SWIFT_VTD)

/*
 * The library's entry points, resolved with g_module_symbol(). All of them are
 * in every library of ABI major 1 this glue was built for (1.4 or newer).
 */
typedef struct SwiftVTdLib {
    GModule *module;
    typeof(swiftvtd_abi_version) *abi_version;
    typeof(swiftvtd_config_init) *config_init;
    typeof(swiftvtd_create) *create;
    typeof(swiftvtd_get_config) *get_config;
    typeof(swiftvtd_destroy) *destroy;
    typeof(swiftvtd_reset) *reset;
    typeof(swiftvtd_mmio_size) *mmio_size;
    typeof(swiftvtd_mmio_read) *mmio_read;
    typeof(swiftvtd_mmio_write) *mmio_write;
    typeof(swiftvtd_translate) *translate;
    typeof(swiftvtd_interrupt_remap) *interrupt_remap;
    typeof(swiftvtd_interrupt_window) *interrupt_window;
    typeof(swiftvtd_set_notifications) *set_notifications;
    typeof(swiftvtd_replay) *replay;
    typeof(swiftvtd_save_state) *save_state;
    typeof(swiftvtd_load_state) *load_state;
    typeof(swiftvtd_dump_state) *dump_state;
    typeof(swiftvtd_host_device_attach) *host_device_attach;
    typeof(swiftvtd_host_device_detach) *host_device_detach;
    typeof(swiftvtd_machine_done) *machine_done;
    typeof(swiftvtd_host_view) *host_view;
    typeof(swiftvtd_dma_view) *dma_view;
    typeof(swiftvtd_set_trace_kinds) *set_trace_kinds;
} SwiftVTdLib;

/* One DMA address space: a (PCI bus, devfn, PASID) requester. */
typedef struct SwiftVTdAS {
    SwiftVTdState *s;
    PCIBus *bus;          /* the bus object (its number is assigned later by the
                             guest); NULL for the IOAPIC, which is on no PCI bus */
    uint8_t devfn;
    uint32_t pasid;       /* SWIFTVTD_NO_PASID for requests without PASID */
    bool is_ioapic;       /* the q35 IOAPIC's pseudo requester */
    /*
     * A device's requests without PASID have two views, one enabled at a time: the
     * IOMMU region (every access asks the library) or guest RAM (no library call;
     * the interrupt window stays on top). Which one is the library's answer: for an
     * emulated device swiftvtd_dma_view (remapping off, or a pass-through entry), asked
     * again at every SWIFTVTD_EVENT_CONTEXT_CHANGED naming it; for a VFIO device the
     * host decision (nested: the host IOMMU walks the guest's first level over a nest
     * parent holding GPA -> HVA, so VFIO must see RAM; shadowed: the IOMMU region).
     */
    bool has_gpa_view;    /* requests without PASID of a PCI device */
    bool vfio;
    bool guest_physical;  /* the guest-RAM view is the enabled one */
    MemoryRegion root;
    IOMMUMemoryRegion iommu;
    MemoryRegion ir;      /* the interrupt window, overlapping the IOMMU region */
    MemoryRegion gpa_view;  /* gpa alias + its own interrupt window */
    MemoryRegion gpa;
    MemoryRegion gpa_ir;
    QLIST_ENTRY(SwiftVTdAS) next_vfio;
    QLIST_ENTRY(SwiftVTdAS) next_with_gpa_view;
    uint64_t translate_calls;  /* swiftvtd_translate calls for this space (relaxed) */
    AddressSpace as;
    IOMMUNotifierFlag notifier_flags;
    QLIST_ENTRY(SwiftVTdAS) next_with_notifiers;
} SwiftVTdAS;

typedef struct SwiftVTdASKey {
    PCIBus *bus;
    uint8_t devfn;
    uint32_t pasid;
} SwiftVTdASKey;

struct SwiftVTdState {
    X86IOMMUState parent_obj;

    /* intel-iommu's properties, with today's names (10.0's are aliases) and defaults */
    uint32_t version;     /* unused, as in intel-iommu */
    OnOffAuto eim;
    bool buggy_eim;
    uint8_t aw_bits;
    bool caching_mode;
    bool scalable_mode;   /* scalable-mode (x-scalable-mode) */
    bool flts;            /* fsts (x-flts) */
    uint8_t pasid_bits;   /* pasid-bits: 0 no PASID, else the PASID width */
    bool pasid_mode;      /* x-pasid-mode (10.0): PASID on, width 20 unless pasid-bits says */
    bool svm;             /* svm: shared virtual memory (page requests, PRS/PDS/NWFS) */
    bool dma_drain;
    bool snoop_control;
    bool dma_translation;
    bool stale_tm;
    bool fs1gp;
    /* the library's own; x- ones may change between releases */
    char *library;
    int host_mode;        /* "host-mode": swiftvtd_host_mode */
    uint16_t fault_records;
    uint32_t iotlb_size;
    bool page_requests;
    bool slts;
    bool nesting;
    bool fs5lp;
    char *state_dump;     /* "x-state-dump": file that gets the library's dump when the VM stops */
    Notifier machine_done;

    SwiftVTdLib lib;
    swiftvtd_t *unit;
    uint64_t ir_base, ir_size;    /* the interrupt window, as the library gives it */
    MemoryRegion csrmem;
    GHashTable *address_spaces;   /* SwiftVTdASKey -> SwiftVTdAS */
    QLIST_HEAD(, SwiftVTdAS) with_notifiers;
    QLIST_HEAD(, SwiftVTdAS) vfio_spaces;  /* address spaces of VFIO devices */
    QLIST_HEAD(, SwiftVTdAS) gpa_view_spaces;  /* every space with a guest-RAM view */
    IOMMUNotifier *replaying;     /* the one notifier a replay's MAP events go to */
    uint32_t trace_kinds;         /* what the library was last told to build */
    /* migration: the library's state blob */
    uint8_t *migration_blob;
    uint32_t migration_blob_len;
};

static uint16_t swift_vtd_sid(const SwiftVTdAS *vas)
{
    if (vas->is_ioapic) {
        return (Q35_PSEUDO_BUS_PLATFORM << 8) | Q35_PSEUDO_DEVFN_IOAPIC;
    }
    return PCI_BUILD_BDF(pci_bus_num(vas->bus), vas->devfn);
}

static void swift_vtd_refresh_views(SwiftVTdState *s, const swiftvtd_event *ev);

/* ------------------------------------------------------------------------ */
/* Host callbacks                                                             */
/* ------------------------------------------------------------------------ */

static int swift_vtd_host_dma_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    return dma_memory_read(&address_space_memory, gpa, buf, len,
                           MEMTXATTRS_UNSPECIFIED) == MEMTX_OK ? 0 : -1;
}

static int swift_vtd_host_dma_write(void *opaque, uint64_t gpa, const void *buf,
                                    uint64_t len)
{
    return dma_memory_write(&address_space_memory, gpa, buf, len,
                            MEMTXATTRS_UNSPECIFIED) == MEMTX_OK ? 0 : -1;
}

/*
 * A real compare-and-exchange on guest RAM: the guest's CPUs may be updating
 * the same page-table entry at the same time (TCG runs them in parallel).
 */
static int swift_vtd_host_cmpxchg64(void *opaque, uint64_t gpa, uint64_t expected,
                                    uint64_t desired, uint64_t *found)
{
    MemoryRegion *mr;
    hwaddr xlat, len = 8;
    uint64_t *ptr;

    if (gpa & 7) {
        return -1;
    }
    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(&address_space_memory, gpa, &xlat, &len, true,
                                 MEMTXATTRS_UNSPECIFIED);
    if (!memory_region_is_ram(mr) || memory_region_is_rom(mr) ||
        memory_region_is_ram_device(mr) || len < 8) {
        return -1;
    }
    ptr = (uint64_t *)((uint8_t *)memory_region_get_ram_ptr(mr) + xlat);
    *found = le64_to_cpu(qatomic_cmpxchg__nocheck(ptr, cpu_to_le64(expected),
                                                  cpu_to_le64(desired)));
    if (*found == expected) {
        memory_region_set_dirty(mr, xlat, 8);
    }
    return 0;
}

static void swift_vtd_deliver_msi(uint64_t address, uint32_t data)
{
    MSIMessage msg = { .address = address, .data = data };
    bool locked = bql_locked();

    /* Fault events can come from a translation on a thread without the BQL. */
    if (!locked) {
        bql_lock();
    }
    apic_get_class(NULL)->send_msi(&msg);
    if (!locked) {
        bql_unlock();
    }
}

static void swift_vtd_host_send_msi(void *opaque, uint64_t address, uint32_t data)
{
    swift_vtd_deliver_msi(address, data);
}

static void swift_vtd_host_log(void *opaque, int level, const char *message)
{
    switch (level) {
    case SWIFTVTD_LOG_GUEST_ERROR:
        qemu_log_mask(LOG_GUEST_ERROR, "swift-vtd: %s\n", message);
        break;
    case SWIFTVTD_LOG_UNIMPLEMENTED:
        qemu_log_mask(LOG_UNIMP, "swift-vtd: %s\n", message);
        break;
    case SWIFTVTD_LOG_INFO:
        info_report("swift-vtd: %s", message);
        break;
    default:
        trace_swift_vtd_log(message);
        break;
    }
}

static const char *swift_vtd_scope_name(uint32_t scope)
{
    static const char *const names[] = {
        [SWIFTVTD_SCOPE_GLOBAL] = "global", [SWIFTVTD_SCOPE_DOMAIN] = "domain",
        [SWIFTVTD_SCOPE_DEVICE] = "device", [SWIFTVTD_SCOPE_PASID] = "pasid",
        [SWIFTVTD_SCOPE_PAGES] = "pages", [SWIFTVTD_SCOPE_PASID_PAGES] = "pasid-pages",
    };

    return scope < ARRAY_SIZE(names) && names[scope] ? names[scope] : "-";
}

static const char *swift_vtd_descriptor_name(uint32_t type)
{
    static const char *const names[] = {
        [1] = "context-cache", [2] = "iotlb", [3] = "device-tlb", [4] = "iec",
        [5] = "wait", [6] = "pasid-iotlb", [7] = "pasid-cache",
        [8] = "pasid-device-tlb", [9] = "page-group-response",
    };

    return type < ARRAY_SIZE(names) && names[type] ? names[type] : "unknown";
}

/*
 * The library's structured decisions, one trace event each. It may call this
 * with its lock held: only record here. A disabled event costs one check.
 */
static void swift_vtd_host_trace(void *opaque, const swiftvtd_trace *t)
{
    static const char *const outcomes[] = { "-", "done", "wait-write", "refused" };

    switch (t->kind) {
    case SWIFTVTD_TRACE_DESCRIPTOR:
        trace_swift_vtd_descriptor(swift_vtd_descriptor_name(t->code), t->code,
                                   outcomes[t->scope < 4 ? t->scope : 0], t->words[0],
                                   t->words[1], t->words[2], t->words[3], t->data);
        break;
    case SWIFTVTD_TRACE_FAULT:
        trace_swift_vtd_fault_recorded(t->code, t->sid, t->pasid, t->addr,
                                       t->scope == 1 ? "read" : "write", t->data);
        break;
    case SWIFTVTD_TRACE_CONTEXT_INVALIDATE:
        trace_swift_vtd_context_invalidate(swift_vtd_scope_name(t->scope), t->did,
                                           t->sid, t->data);
        break;
    case SWIFTVTD_TRACE_PASID_INVALIDATE:
        trace_swift_vtd_pasid_cache_invalidate(swift_vtd_scope_name(t->scope), t->did,
                                               t->pasid);
        break;
    case SWIFTVTD_TRACE_IOTLB_INVALIDATE:
        trace_swift_vtd_iotlb_invalidate(swift_vtd_scope_name(t->scope), t->did, t->pasid,
                                         t->addr, t->data, t->code);
        break;
    case SWIFTVTD_TRACE_HOST_BIND:
        trace_swift_vtd_host_bind(t->sid, t->pasid, t->did, t->addr, (int32_t)t->code);
        break;
    case SWIFTVTD_TRACE_HOST_UNBIND:
        trace_swift_vtd_host_unbind(t->sid, t->pasid, t->did, (int32_t)t->code);
        break;
    case SWIFTVTD_TRACE_HOST_INVALIDATE:
        trace_swift_vtd_host_invalidate(swift_vtd_scope_name(t->scope), t->did, t->pasid,
                                        t->addr, t->data, (int32_t)t->code);
        break;
    case SWIFTVTD_TRACE_INTERRUPT_REMAP:
        trace_swift_vtd_interrupt_remap(t->sid, t->addr, (uint32_t)t->words[0], t->data,
                                        (int32_t)t->code, t->words[1], (uint32_t)t->words[2]);
        break;
    default:
        break;
    }
}

/*
 * The records whose trace events are on, as swiftvtd_set_trace_kinds wants them. Faults are
 * always asked for: they are rare, and one may come from a translation before the next
 * register write brings an event switched on at the monitor to the library.
 */
static uint32_t swift_vtd_wanted_trace_kinds(void)
{
    uint32_t kinds = 1u << SWIFTVTD_TRACE_FAULT;

#define WANT(event, kind) \
    if (trace_event_get_state_backends(event)) { kinds |= 1u << (kind); }
    WANT(TRACE_SWIFT_VTD_DESCRIPTOR, SWIFTVTD_TRACE_DESCRIPTOR)
    WANT(TRACE_SWIFT_VTD_CONTEXT_INVALIDATE, SWIFTVTD_TRACE_CONTEXT_INVALIDATE)
    WANT(TRACE_SWIFT_VTD_PASID_CACHE_INVALIDATE, SWIFTVTD_TRACE_PASID_INVALIDATE)
    WANT(TRACE_SWIFT_VTD_IOTLB_INVALIDATE, SWIFTVTD_TRACE_IOTLB_INVALIDATE)
    WANT(TRACE_SWIFT_VTD_HOST_BIND, SWIFTVTD_TRACE_HOST_BIND)
    WANT(TRACE_SWIFT_VTD_HOST_UNBIND, SWIFTVTD_TRACE_HOST_UNBIND)
    WANT(TRACE_SWIFT_VTD_HOST_INVALIDATE, SWIFTVTD_TRACE_HOST_INVALIDATE)
    WANT(TRACE_SWIFT_VTD_INTERRUPT_REMAP, SWIFTVTD_TRACE_INTERRUPT_REMAP)
#undef WANT
    return kinds;
}

/*
 * Trace events are switched at any time (-trace, the monitor's trace-event); the library
 * hears of a change at the unit's next register write or interrupt, the calls that build
 * records (a read builds none), so an event switched off costs no record at all.
 */
static void swift_vtd_sync_trace_kinds(SwiftVTdState *s)
{
    uint32_t kinds = swift_vtd_wanted_trace_kinds();

    if (kinds != qatomic_read(&s->trace_kinds)) {
        qatomic_set(&s->trace_kinds, kinds);
        s->lib.set_trace_kinds(s->unit, kinds);
    }
}

/*
 * Send one range as naturally aligned power-of-two chunks, as notifiers expect.
 * The library sends no empty range and none beyond the guest's address width.
 */
static void swift_vtd_notify_range(SwiftVTdAS *vas, IOMMUNotifierFlag type,
                                   uint64_t start, uint64_t size,
                                   uint64_t translated, IOMMUAccessFlags perm)
{
    uint64_t end = start + size - 1;

    for (;;) {
        uint64_t mask = dma_aligned_pow2_mask(start, end, 64);
        IOMMUTLBEvent event = {
            .type = type,
            .entry = {
                .target_as = &address_space_memory,
                .iova = start,
                .translated_addr = type == IOMMU_NOTIFIER_MAP ? translated : 0,
                .addr_mask = mask,
                .perm = type == IOMMU_NOTIFIER_MAP ? perm : IOMMU_NONE,
            },
        };

        memory_region_notify_iommu(&vas->iommu, 0, event);
        if (end - start <= mask) {
            break;
        }
        start += mask + 1;
        translated += mask + 1;
    }
}

/* Everything every notifier of vas holds (reset: the library's shadows are empty then too). */
static void swift_vtd_unmap_all(SwiftVTdAS *vas)
{
    IOMMUNotifier *n;

    IOMMU_NOTIFIER_FOREACH(n, &vas->iommu) {
        memory_region_unmap_iommu_notifier_range(n);
    }
}

/*
 * The translation setup of vas changed. A notifier that hears only UNMAPs (vhost's device
 * IOTLB) keeps translations the library knows nothing of: it drops all of them. A shadowing
 * notifier (MAP: VFIO) is left alone: the library re-syncs its shadow and sends exactly what
 * changed, and unmapping everything here would remove mappings its record says are in place,
 * which it would then never send again.
 */
static void swift_vtd_context_changed(SwiftVTdAS *vas)
{
    IOMMUNotifier *n;

    IOMMU_NOTIFIER_FOREACH(n, &vas->iommu) {
        if (!(n->notifier_flags & IOMMU_NOTIFIER_MAP)) {
            memory_region_unmap_iommu_notifier_range(n);
        }
    }
}

static IOMMUAccessFlags swift_vtd_perm(uint32_t perm)
{
    return IOMMU_ACCESS_FLAG(!!(perm & SWIFTVTD_PERM_READ),
                             !!(perm & SWIFTVTD_PERM_WRITE));
}

/* QEMU's IEC notifiers take an index and a power-of-two count. */
static void swift_vtd_interrupt_cache_event(SwiftVTdState *s, const swiftvtd_event *ev)
{
    bool global = ev->size_bytes == 0;
    uint32_t mask = global ? 0 : 63 - clz64(pow2ceil(ev->size_bytes));

    x86_iommu_iec_notify_all(X86_IOMMU_DEVICE(s), global, (uint32_t)ev->addr, mask);
}

/* A replay's MAP event goes to the replaying notifier only, as one entry. */
static void swift_vtd_replay_map(SwiftVTdState *s, const swiftvtd_event *ev)
{
    IOMMUTLBEvent event = {
        .type = IOMMU_NOTIFIER_MAP,
        .entry = {
            .target_as = &address_space_memory,
            .iova = ev->addr,
            .translated_addr = ev->translated,
            .addr_mask = ev->size_bytes - 1,
            .perm = swift_vtd_perm(ev->perm),
        },
    };

    memory_region_notify_iommu_one(s->replaying, &event);
}

/* One event for the notifiers registered on vas. */
static void swift_vtd_notify_event(SwiftVTdAS *vas, const swiftvtd_event *ev)
{
    switch (ev->kind) {
    case SWIFTVTD_EVENT_UNMAP:
        swift_vtd_notify_range(vas, IOMMU_NOTIFIER_UNMAP, ev->addr, ev->size_bytes, 0,
                               IOMMU_NONE);
        break;
    case SWIFTVTD_EVENT_MAP:
        if (vas->s->replaying) {
            swift_vtd_replay_map(vas->s, ev);
            break;
        }
        swift_vtd_notify_range(vas, IOMMU_NOTIFIER_MAP, ev->addr, ev->size_bytes,
                               ev->translated, swift_vtd_perm(ev->perm));
        break;
    case SWIFTVTD_EVENT_CONTEXT_CHANGED:
        swift_vtd_context_changed(vas);
        break;
    case SWIFTVTD_EVENT_DEVICE_TLB_INVALIDATE:
        swift_vtd_notify_range(vas, IOMMU_NOTIFIER_DEVIOTLB_UNMAP, ev->addr,
                               ev->size_bytes, 0, IOMMU_NONE);
        break;
    default:
        break;
    }
}

static void swift_vtd_host_event(void *opaque, const swiftvtd_event *ev)
{
    SwiftVTdState *s = opaque;
    SwiftVTdAS *vas;

    trace_swift_vtd_event(ev->kind, ev->sid, ev->pasid, ev->addr, ev->size_bytes);
    switch (ev->kind) {
    case SWIFTVTD_EVENT_INTERRUPT_CACHE_INVALIDATE:
        swift_vtd_interrupt_cache_event(s, ev);
        return;
    case SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE:
        /* No emulated PRI-capable device in QEMU 10.0 consumes these. */
        return;
    case SWIFTVTD_EVENT_CONTEXT_CHANGED:
        swift_vtd_refresh_views(s, ev);
        break;
    default:
        break;
    }
    QLIST_FOREACH(vas, &s->with_notifiers, next_with_notifiers) {
        /* A change of every device's setup (data = 1) reaches every space, whatever pasid. */
        bool every = ev->kind == SWIFTVTD_EVENT_CONTEXT_CHANGED && ev->data == 1;

        if (every || (swift_vtd_sid(vas) == ev->sid && vas->pasid == ev->pasid)) {
            swift_vtd_notify_event(vas, ev);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Register window                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t swift_vtd_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    SwiftVTdState *s = opaque;
    uint64_t value = s->lib.mmio_read(s->unit, addr, size);

    trace_swift_vtd_mmio_read(addr, size, value);
    return value;
}

static void swift_vtd_mmio_write(void *opaque, hwaddr addr, uint64_t value,
                                 unsigned size)
{
    SwiftVTdState *s = opaque;

    trace_swift_vtd_mmio_write(addr, size, value);
    swift_vtd_sync_trace_kinds(s);
    s->lib.mmio_write(s->unit, addr, value, size);
}

static const MemoryRegionOps swift_vtd_mmio_ops = {
    .read = swift_vtd_mmio_read,
    .write = swift_vtd_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = { .min_access_size = 4, .max_access_size = 8 },
    .valid = { .min_access_size = 4, .max_access_size = 8 },
};

/* ------------------------------------------------------------------------ */
/* Interrupt window                                                           */
/* ------------------------------------------------------------------------ */

/* Returns 0 and fills *out when the interrupt is to be delivered. */
static int swift_vtd_remap(SwiftVTdState *s, uint16_t sid, const MSIMessage *in,
                           MSIMessage *out, uint32_t flags)
{
    swiftvtd_msi req = { .address = in->address, .data = in->data };
    swiftvtd_msi res = {};
    int r;

    swift_vtd_sync_trace_kinds(s);
    r = s->lib.interrupt_remap(s->unit, sid, &req, &res, flags);
    trace_swift_vtd_irq(sid, in->address, in->data, r);
    if (r == SWIFTVTD_IRQ_REMAPPED) {
        out->address = res.address;
        out->data = res.data;
        return 0;
    }
    if (r == SWIFTVTD_IRQ_PASSTHROUGH) {
        *out = *in;
        return 0;
    }
    return -EINVAL;
}

static MemTxResult swift_vtd_ir_read(void *opaque, hwaddr addr, uint64_t *data,
                                     unsigned size, MemTxAttrs attrs)
{
    *data = 0;
    return MEMTX_OK;
}

static MemTxResult swift_vtd_ir_write(void *opaque, hwaddr addr, uint64_t value,
                                      unsigned size, MemTxAttrs attrs)
{
    SwiftVTdAS *vas = opaque;
    MSIMessage from = { .address = vas->s->ir_base + addr, .data = value };
    MSIMessage to;
    /* PCI MSIs carry their requester id; the IOAPIC's writes do not. */
    uint16_t sid = attrs.unspecified ? swift_vtd_sid(vas) : attrs.requester_id;

    if (swift_vtd_remap(vas->s, sid, &from, &to, 0)) {
        return MEMTX_ERROR;
    }
    swift_vtd_deliver_msi(to.address, to.data);
    return MEMTX_OK;
}

static const MemoryRegionOps swift_vtd_ir_ops = {
    .read_with_attrs = swift_vtd_ir_read,
    .write_with_attrs = swift_vtd_ir_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = { .min_access_size = 4, .max_access_size = 4 },
    .valid = { .min_access_size = 4, .max_access_size = 4 },
};

/* KVM's MSI routes ask here (X86IOMMUClass.int_remap); a probe records no fault. */
static int swift_vtd_int_remap(X86IOMMUState *iommu, MSIMessage *src,
                               MSIMessage *dst, uint16_t sid)
{
    return swift_vtd_remap(SWIFT_VTD(iommu), sid, src, dst, SWIFTVTD_IRQ_NO_FAULT);
}

/* ------------------------------------------------------------------------ */
/* DMA address spaces                                                         */
/* ------------------------------------------------------------------------ */

/* QEMU's access flags as the library's; IOMMU_NONE asks what the mapping is, no access happens. */
static void swift_vtd_request_access(IOMMUAccessFlags flag, swiftvtd_translate_request *req)
{
    switch (flag) {
    case IOMMU_RO:
        req->access = SWIFTVTD_ACCESS_READ;
        break;
    case IOMMU_WO:
        req->access = SWIFTVTD_ACCESS_WRITE;
        break;
    case IOMMU_RW:
        req->access = SWIFTVTD_ACCESS_READ | SWIFTVTD_ACCESS_WRITE;
        break;
    default:
        req->access = SWIFTVTD_ACCESS_READ;
        req->flags = SWIFTVTD_REQ_NO_FAULT;
        break;
    }
}

static IOMMUTLBEntry swift_vtd_translate(IOMMUMemoryRegion *iommu, hwaddr addr,
                                         IOMMUAccessFlags flag, int iommu_idx)
{
    SwiftVTdAS *vas = container_of(iommu, SwiftVTdAS, iommu);
    SwiftVTdState *s = vas->s;
    swiftvtd_translate_request req = {
        .sid = swift_vtd_sid(vas),
        .pasid = vas->pasid,
        .addr = addr,
    };
    swiftvtd_translation res = {};
    IOMMUTLBEntry entry = {
        .target_as = &address_space_memory,
        .iova = addr & ~0xfffULL,
        .addr_mask = 0xfff,
        .perm = IOMMU_NONE,
    };

    /*
     * Counted so that "library calls per DMA" can be shown (info swift-vtd). A plain
     * read-and-store, not a locked add: the library keeps its own hit path free of locked
     * adds, and a diagnostic may lose a count when two threads translate for one space at once
     * (a space that is never translated still reads 0).
     */
    qatomic_set(&vas->translate_calls, qatomic_read(&vas->translate_calls) + 1);
    swift_vtd_request_access(flag, &req);
    if (s->lib.translate(s->unit, &req, &res) != SWIFTVTD_OK) {
        return entry;
    }
    if (res.kind != SWIFTVTD_XLATE_OK) {
        trace_swift_vtd_translate_fault(req.sid, req.pasid, addr, res.fault_reason);
        return entry;
    }
    entry.iova = addr & res.page_mask;
    entry.translated_addr = res.translated & res.page_mask;
    entry.addr_mask = ~res.page_mask;
    entry.perm = swift_vtd_perm(res.perm);
    return entry;
}

static int swift_vtd_notify_flag_changed(IOMMUMemoryRegion *iommu,
                                         IOMMUNotifierFlag old,
                                         IOMMUNotifierFlag new, Error **errp)
{
    SwiftVTdAS *vas = container_of(iommu, SwiftVTdAS, iommu);
    SwiftVTdState *s = vas->s;

    uint32_t flags = (new & IOMMU_NOTIFIER_UNMAP ? SWIFTVTD_NOTIFY_UNMAP : 0) |
                     (new & IOMMU_NOTIFIER_MAP ? SWIFTVTD_NOTIFY_MAP : 0) |
                     (new & IOMMU_NOTIFIER_DEVIOTLB_UNMAP ?
                      SWIFTVTD_NOTIFY_DEVIOTLB_UNMAP : 0);
    char err[256] = "";
    int r = s->lib.set_notifications(s->unit, swift_vtd_sid(vas), vas->pasid, flags,
                                     err, sizeof(err));

    if (r != SWIFTVTD_OK) {
        int code = r == SWIFTVTD_EUNSUPPORTED ? ENOTSUP : EINVAL;

        error_setg_errno(errp, code, "device %02x.%02x.%x: swift-vtd: %s",
                         vas->bus ? pci_bus_num(vas->bus) : 0, PCI_SLOT(vas->devfn),
                         PCI_FUNC(vas->devfn), err);
        return -code;
    }
    vas->notifier_flags = new;
    if (old == IOMMU_NOTIFIER_NONE) {
        QLIST_INSERT_HEAD(&s->with_notifiers, vas, next_with_notifiers);
    } else if (new == IOMMU_NOTIFIER_NONE) {
        QLIST_REMOVE(vas, next_with_notifiers);
    }
    return 0;
}

/*
 * A notifier wants the current mappings: forget what it had, then the library
 * walks the device's tables and sends one MAP event per translation, which
 * swift_vtd_host_event routes to this notifier only.
 */
static void swift_vtd_replay(IOMMUMemoryRegion *iommu, IOMMUNotifier *n)
{
    SwiftVTdAS *vas = container_of(iommu, SwiftVTdAS, iommu);
    SwiftVTdState *s = vas->s;

    memory_region_unmap_iommu_notifier_range(n);
    if (!(n->notifier_flags & IOMMU_NOTIFIER_MAP)) {
        return;
    }
    s->replaying = n;
    s->lib.replay(s->unit, swift_vtd_sid(vas), vas->pasid);
    s->replaying = NULL;
}

static guint swift_vtd_as_hash(gconstpointer v)
{
    const SwiftVTdASKey *k = v;

    return (guint)(uintptr_t)k->bus ^ ((guint)k->devfn << 20) ^ k->pasid;
}

static gboolean swift_vtd_as_equal(gconstpointer a, gconstpointer b)
{
    const SwiftVTdASKey *x = a, *y = b;

    return x->bus == y->bus && x->devfn == y->devfn && x->pasid == y->pasid;
}

/* Shows a device guest RAM (true) or the IOMMU region (false). */
static void swift_vtd_set_view(SwiftVTdAS *vas, bool guest_physical)
{
    memory_region_transaction_begin();
    memory_region_set_enabled(&vas->gpa_view, guest_physical);
    memory_region_set_enabled(MEMORY_REGION(&vas->iommu), !guest_physical);
    memory_region_transaction_commit();
    vas->guest_physical = guest_physical;
}

/* How VFIO devices are arranged now (SWIFTVTD_VIEW_*): the library's call. */
static uint32_t swift_vtd_host_view(SwiftVTdState *s)
{
    return s->lib.host_view(s->unit, s->host_mode);
}

/* The library's answer for an emulated device: guest RAM (true) or the IOMMU region. */
static bool swift_vtd_untranslated(SwiftVTdAS *vas)
{
    SwiftVTdState *s = vas->s;

    return s->lib.dma_view(s->unit, swift_vtd_sid(vas)) == SWIFTVTD_DMA_VIEW_UNTRANSLATED;
}

/*
 * Whether a device is shown guest RAM now. An emulated device: the library's answer. A VFIO
 * device: guest RAM when the host decision says so (nested: the host walks the guest's tables
 * over a nest parent), else, as an emulated device, while its requests pass through
 * untranslated (remapping off, a pass-through entry): a shadowing host has no translation to
 * map then, and VFIO maps all of guest RAM for the RAM view, as with intel-iommu.
 */
static bool swift_vtd_shows_guest_ram(SwiftVTdAS *vas)
{
    if (vas->vfio && (swift_vtd_host_view(vas->s) & SWIFTVTD_VIEW_GUEST_RAM)) {
        return true;
    }
    return swift_vtd_untranslated(vas);
}

/* A device's view, as the library answers now. */
static void swift_vtd_refresh_view(SwiftVTdAS *vas)
{
    bool direct = swift_vtd_shows_guest_ram(vas);

    if (direct != vas->guest_physical) {
        trace_swift_vtd_view(swift_vtd_sid(vas), direct ? "guest-ram" : "iommu");
        swift_vtd_set_view(vas, direct);
    }
}

/*
 * A context change the library reports (always from a control call or the register
 * window, under the BQL): the spaces it names ask for their view again, in one
 * memory transaction, before the guest sees its change complete.
 */
static void swift_vtd_refresh_views(SwiftVTdState *s, const swiftvtd_event *ev)
{
    bool every = ev->data == 1;
    SwiftVTdAS *vas;

    memory_region_transaction_begin();
    QLIST_FOREACH(vas, &s->gpa_view_spaces, next_with_gpa_view) {
        if (every || swift_vtd_sid(vas) == ev->sid) {
            swift_vtd_refresh_view(vas);
        }
    }
    memory_region_transaction_commit();
}

/* The guest-RAM view beside the IOMMU region: an alias of system memory and its own interrupt window. */
static void swift_vtd_add_gpa_view(SwiftVTdAS *vas)
{
    SwiftVTdState *s = vas->s;

    vas->has_gpa_view = true;
    memory_region_init(&vas->gpa_view, OBJECT(s), "swift-vtd-gpa-view", UINT64_MAX);
    memory_region_init_alias(&vas->gpa, OBJECT(s), "swift-vtd-gpa", get_system_memory(),
                             0, memory_region_size(get_system_memory()));
    memory_region_add_subregion_overlap(&vas->gpa_view, 0, &vas->gpa, 0);
    memory_region_init_io(&vas->gpa_ir, OBJECT(s), &swift_vtd_ir_ops, vas,
                          "swift-vtd-ir", s->ir_size);
    memory_region_add_subregion_overlap(&vas->gpa_view, s->ir_base, &vas->gpa_ir, 1);
    memory_region_add_subregion_overlap(&vas->root, 0, &vas->gpa_view, 0);
    QLIST_INSERT_HEAD(&s->gpa_view_spaces, vas, next_with_gpa_view);
}

/* A VFIO device: its view follows the host decision from now on (swift_vtd_shows_guest_ram). */
static void swift_vtd_mark_vfio(SwiftVTdAS *vas)
{
    vas->vfio = true;
    swift_vtd_set_view(vas, swift_vtd_shows_guest_ram(vas));
    QLIST_INSERT_HEAD(&vas->s->vfio_spaces, vas, next_vfio);
}

static bool swift_vtd_is_vfio(PCIBus *bus, int devfn, uint32_t pasid)
{
    PCIDevice *pdev = bus ? bus->devices[devfn] : NULL;

    return pasid == SWIFTVTD_NO_PASID && pdev &&
           object_dynamic_cast(OBJECT(pdev), "vfio-pci");
}

/*
 * root -> IOMMU region (every access translated by the library)
 *      -> interrupt window on top of it, for requests without PASID.
 */
static void swift_vtd_init_iommu_view(SwiftVTdAS *vas, const char *name)
{
    SwiftVTdState *s = vas->s;

    memory_region_init(&vas->root, OBJECT(s), name, UINT64_MAX);
    memory_region_init_iommu(&vas->iommu, sizeof(vas->iommu), TYPE_SWIFT_VTD_IOMMU_MR,
                             OBJECT(s), name, UINT64_MAX);
    memory_region_add_subregion_overlap(&vas->root, 0, MEMORY_REGION(&vas->iommu), 0);
    if (vas->pasid == SWIFTVTD_NO_PASID) {
        /* Remappable MSIs reach the library, whatever translates DMA. */
        memory_region_init_io(&vas->ir, OBJECT(s), &swift_vtd_ir_ops, vas,
                              "swift-vtd-ir", s->ir_size);
        memory_region_add_subregion_overlap(MEMORY_REGION(&vas->iommu),
                                            s->ir_base, &vas->ir, 1);
    }
}

static SwiftVTdAS *swift_vtd_new_as(SwiftVTdState *s, PCIBus *bus, int devfn,
                                    uint32_t pasid, bool is_ioapic)
{
    SwiftVTdAS *vas = g_new0(SwiftVTdAS, 1);
    g_autofree char *name = NULL;

    vas->s = s;
    vas->bus = bus;
    vas->devfn = devfn;
    vas->pasid = pasid;
    vas->is_ioapic = is_ioapic;
    if (pasid == SWIFTVTD_NO_PASID) {
        name = g_strdup_printf("swift-vtd-%02x.%x", PCI_SLOT(devfn), PCI_FUNC(devfn));
    } else {
        name = g_strdup_printf("swift-vtd-%02x.%x-pasid-%x", PCI_SLOT(devfn),
                               PCI_FUNC(devfn), pasid);
    }
    swift_vtd_init_iommu_view(vas, name);
    if (pasid == SWIFTVTD_NO_PASID && !is_ioapic) {
        swift_vtd_add_gpa_view(vas);
        if (swift_vtd_is_vfio(bus, devfn, pasid)) {
            swift_vtd_mark_vfio(vas);
        } else {
            swift_vtd_set_view(vas, swift_vtd_untranslated(vas));
        }
    }
    address_space_init(&vas->as, &vas->root, name);
    return vas;
}

static SwiftVTdAS *swift_vtd_find_add_as(SwiftVTdState *s, PCIBus *bus, int devfn,
                                         uint32_t pasid, bool is_ioapic)
{
    SwiftVTdASKey key = { .bus = bus, .devfn = devfn, .pasid = pasid };
    SwiftVTdAS *vas = g_hash_table_lookup(s->address_spaces, &key);

    if (vas) {
        /*
         * A hot-plugged device's address space is first asked for before the
         * device is on its bus (pci_init_bus_master), so it is known to be VFIO
         * only when VFIO asks, before it fills its IOAS.
         */
        if (!vas->vfio && vas->has_gpa_view && swift_vtd_is_vfio(bus, devfn, pasid)) {
            swift_vtd_mark_vfio(vas);
        }
        return vas;
    }
    vas = swift_vtd_new_as(s, bus, devfn, pasid, is_ioapic);
    g_hash_table_insert(s->address_spaces, g_memdup2(&key, sizeof(key)), vas);
    return vas;
}

static AddressSpace *swift_vtd_get_address_space(PCIBus *bus, void *opaque, int devfn)
{
    return &swift_vtd_find_add_as(opaque, bus, devfn, SWIFTVTD_NO_PASID, false)->as;
}

/* Asked by VFIO before it fills its IOAS (see patches/0004). */
static bool swift_vtd_wants_nest_parent(PCIBus *bus, void *opaque, int devfn)
{
    return swift_vtd_host_view(opaque) & SWIFTVTD_VIEW_NEST_PARENT;
}

/*
 * The library names devices by requester ID, which the guest's bus numbering
 * decides: behind a bridge it is known once the guest numbered the buses, so a
 * device hot-plugged there later is fine, one present at start is not.
 */
static bool swift_vtd_requester_id_known(PCIBus *bus, HostIOMMUDevice *hiod, Error **errp)
{
    if (!pci_bus_is_root(bus) && pci_bus_num(bus) == 0) {
        error_setg(errp, "swift-vtd: %s is behind a bridge the guest has not numbered "
                   "yet; put host devices present at start on the root bus (hot-plug "
                   "behind a root port works)", hiod->name);
        return false;
    }
    return true;
}

/* The iommufd objects VFIO made for the device, into *dev. */
static bool swift_vtd_describe_iommufd(HostIOMMUDevice *hiod, swiftvtd_host_device *dev,
                                       Error **errp)
{
    VFIODevice *vbasedev = hiod->agent;
    VFIOIOMMUFDContainer *container =
        container_of(vbasedev->bcontainer, VFIOIOMMUFDContainer, bcontainer);

    if (!vbasedev->iommufd || !vbasedev->hwpt) {
        error_setg(errp, "swift-vtd: %s is on iommufd but not attached to a HWPT",
                   hiod->name);
        return false;
    }
    dev->iommufd = vbasedev->iommufd->fd;
    dev->device_fd = vbasedev->fd;
    dev->dev_id = vbasedev->devid;
    dev->ioas_id = container->ioas_id;
    dev->hwpt_id = vbasedev->hwpt->hwpt_id;
    dev->hwpt_is_nest_parent = !!(vbasedev->hwpt->hwpt_flags & IOMMU_HWPT_ALLOC_NEST_PARENT);
    if (vbasedev->bcontainer->bypass_ro) {
        info_report("swift-vtd: %s: the host IOMMU reports erratum 772415 (no "
                    "read-only mappings in a nest parent): read-only sections "
                    "(ROMs) are kept out of its IOAS", hiod->name);
    }
    return true;
}

/*
 * Hands the library the facts about a VFIO device: its iommufd objects, or
 * that it sits in a legacy container. What can work with it is the library's
 * call (at the decision, or at once for a device hot-plugged after it).
 */
static bool swift_vtd_set_iommu_device(PCIBus *bus, void *opaque, int devfn,
                                       HostIOMMUDevice *hiod, Error **errp)
{
    SwiftVTdState *s = opaque;
    SwiftVTdAS *vas = swift_vtd_find_add_as(s, bus, devfn, SWIFTVTD_NO_PASID, false);
    swiftvtd_host_device dev = {
        .size = sizeof(dev),
        .iommufd = -1,
        .device_fd = -1,
        .name = hiod->name,
    };
    char err[512] = "";

    if (!swift_vtd_requester_id_known(bus, hiod, errp)) {
        return false;
    }
    if (object_dynamic_cast(OBJECT(hiod), TYPE_HOST_IOMMU_DEVICE_IOMMUFD)) {
        if (!swift_vtd_describe_iommufd(hiod, &dev, errp)) {
            return false;
        }
    } else {
        HostIOMMUDeviceClass *hiodc = HOST_IOMMU_DEVICE_GET_CLASS(hiod);
        int aw_bits = hiodc->get_cap ?
                      hiodc->get_cap(hiod, HOST_IOMMU_DEVICE_CAP_AW_BITS, NULL) : 0;

        dev.flags = SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER;
        /* The container's IOVA width, so that a wider shadowing guest is refused. */
        dev.iova_bits = aw_bits > 0 && aw_bits <= 64 ? aw_bits : 0;
    }
    if (s->lib.host_device_attach(s->unit, swift_vtd_sid(vas), &dev, err,
                                  sizeof(err)) != SWIFTVTD_OK) {
        error_setg(errp, "swift-vtd: %s", err);
        return false;
    }
    return true;
}

static void swift_vtd_unset_iommu_device(PCIBus *bus, void *opaque, int devfn)
{
    SwiftVTdState *s = opaque;
    SwiftVTdAS *vas = swift_vtd_find_add_as(s, bus, devfn, SWIFTVTD_NO_PASID, false);

    s->lib.host_device_detach(s->unit, swift_vtd_sid(vas));
}

/*
 * Capabilities are decided once, here, by the library from the properties and
 * the host devices handed over (a guest reads CAP/ECAP once at boot); then
 * each VFIO device is shown the view that decision needs.
 */
static void swift_vtd_machine_done(Notifier *notifier, void *data)
{
    SwiftVTdState *s = container_of(notifier, SwiftVTdState, machine_done);
    char decision[1024] = "";
    SwiftVTdAS *vas;

    if (!s->unit) {
        return;
    }
    if (s->lib.machine_done(s->unit, s->host_mode, decision,
                            sizeof(decision)) != SWIFTVTD_OK) {
        error_report("swift-vtd: %s", decision);
        exit(1);
    }
    QLIST_FOREACH(vas, &s->vfio_spaces, next_vfio) {
        swift_vtd_set_view(vas, swift_vtd_shows_guest_ram(vas));
    }
}

static PCIIOMMUOps swift_vtd_iommu_ops = {
    .get_address_space = swift_vtd_get_address_space,
    .set_iommu_device = swift_vtd_set_iommu_device,
    .unset_iommu_device = swift_vtd_unset_iommu_device,
    .wants_nest_parent = swift_vtd_wants_nest_parent,
};

/* ------------------------------------------------------------------------ */
/* Loading the library                                                        */
/* ------------------------------------------------------------------------ */

/* Every entry point of SwiftVTdLib, by name; false with errp set when one is missing. */
static bool swift_vtd_resolve_symbols(SwiftVTdState *s, Error **errp)
{
    SwiftVTdLib *lib = &s->lib;
    static const struct {
        const char *name;
        size_t offset;
    } symbols[] = {
#define SYM(field) { "swiftvtd_" #field, offsetof(SwiftVTdLib, field) }
        SYM(abi_version), SYM(config_init), SYM(create), SYM(get_config), SYM(destroy),
        SYM(reset), SYM(mmio_size), SYM(mmio_read), SYM(mmio_write), SYM(translate),
        SYM(interrupt_remap), SYM(interrupt_window), SYM(set_notifications), SYM(replay),
        SYM(save_state), SYM(load_state), SYM(dump_state), SYM(host_device_attach),
        SYM(host_device_detach), SYM(machine_done), SYM(host_view), SYM(dma_view),
        SYM(set_trace_kinds),
#undef SYM
    };

    for (size_t i = 0; i < ARRAY_SIZE(symbols); i++) {
        gpointer *slot = (gpointer *)((char *)lib + symbols[i].offset);

        if (!g_module_symbol(lib->module, symbols[i].name, slot)) {
            error_setg(errp, "swift-vtd: '%s' has no symbol %s: not a SwiftVTd "
                       "library, or older than %u.%u", s->library, symbols[i].name,
                       SWIFTVTD_ABI_VERSION, SWIFTVTD_VERSION_MINOR);
            return false;
        }
    }
    return true;
}

/* The library file named by the property, checked before it is opened. */
static bool swift_vtd_library_exists(SwiftVTdState *s, Error **errp)
{
    if (!g_module_supported()) {
        error_setg(errp, "swift-vtd: this QEMU cannot load shared libraries");
        return false;
    }
    if (!s->library || !*s->library) {
        error_setg(errp, "swift-vtd: no library given (library=PATH)");
        return false;
    }
    if (!g_file_test(s->library, G_FILE_TEST_EXISTS)) {
        error_setg(errp, "swift-vtd: library '%s' not found", s->library);
        error_append_hint(errp, "Build it with 'make lib' and pass "
                          "library=/path/to/libSwiftVTd.so, or install it "
                          "to %s ('make install'; 'make qemu' reads its path from "
                          "swiftvtd.pc).\n", SWIFT_VTD_DEFAULT_LIBRARY);
        return false;
    }
    return true;
}

static bool swift_vtd_load(SwiftVTdState *s, Error **errp)
{
    SwiftVTdLib *lib = &s->lib;
    uint32_t version;

    if (!swift_vtd_library_exists(s, errp)) {
        return false;
    }
    lib->module = g_module_open(s->library, G_MODULE_BIND_LOCAL);
    if (!lib->module) {
        error_setg(errp, "swift-vtd: cannot load '%s': %s", s->library,
                   g_module_error());
        return false;
    }
    if (!swift_vtd_resolve_symbols(s, errp)) {
        goto fail;
    }
    /* The SONAME's major, for a library loaded by path: another major is another ABI. */
    version = lib->abi_version();
    if (version != SWIFTVTD_ABI_VERSION) {
        error_setg(errp, "swift-vtd: '%s' is libSwiftVTd.so.%u, this QEMU was "
                   "built for libSwiftVTd.so.%u", s->library, version,
                   SWIFTVTD_ABI_VERSION);
        goto fail;
    }
    return true;

fail:
    g_module_close(lib->module);
    memset(lib, 0, sizeof(*lib));
    return false;
}

/* The properties as given, and the facts only QEMU knows; the library resolves the rest. */
static void swift_vtd_fill_config(SwiftVTdState *s, swiftvtd_config *cfg)
{
    X86IOMMUState *x86 = X86_IOMMU_DEVICE(s);

    s->lib.config_init(cfg);
    cfg->aw_bits = s->aw_bits;
    cfg->caching_mode = s->caching_mode;
    cfg->scalable_mode = s->scalable_mode;
    cfg->flts = s->flts;
    cfg->pasid = s->pasid_bits > 0 || s->pasid_mode;
    if (s->pasid_bits > 0) {
        cfg->pasid_bits = s->pasid_bits;
    }
    cfg->intremap = x86_iommu_ir_supported(x86);
    cfg->eim = s->eim == ON_OFF_AUTO_ON;
    cfg->eim_auto = s->eim == ON_OFF_AUTO_AUTO;
    cfg->kvm_irqchip = kvm_irqchip_in_kernel();
    cfg->buggy_eim = s->buggy_eim;
    cfg->device_iotlb = x86->dt_supported;
    cfg->pt = x86->pt_supported;
    cfg->dma_drain = s->dma_drain;
    cfg->snoop_control = s->snoop_control;
    cfg->dma_translation = s->dma_translation;
    cfg->stale_tm = s->stale_tm;
    cfg->fs1gp = s->fs1gp;
    cfg->slts = s->slts;
    cfg->nesting = s->nesting;
    cfg->svm = s->svm;
    cfg->page_requests = s->page_requests;
    cfg->fs5lp = s->fs5lp;
    cfg->fault_records = s->fault_records;
    cfg->iotlb_capacity = s->iotlb_size;
}

/* ------------------------------------------------------------------------ */
/* State dump and migration                                                   */
/* ------------------------------------------------------------------------ */

static gint swift_vtd_as_compare(gconstpointer a, gconstpointer b)
{
    const SwiftVTdAS *x = *(SwiftVTdAS *const *)a, *y = *(SwiftVTdAS *const *)b;
    uint64_t kx = (uint64_t)swift_vtd_sid(x) << 32 | x->pasid;
    uint64_t ky = (uint64_t)swift_vtd_sid(y) << 32 | y->pasid;

    return kx < ky ? -1 : kx > ky;
}

/*
 * The glue's lines after the library's: each device's view and how often its DMA
 * called swiftvtd_translate (library calls per DMA; the IOAPIC only sends interrupts).
 */
static void swift_vtd_dump_spaces(SwiftVTdState *s, GString *out)
{
    g_autoptr(GPtrArray) spaces = g_ptr_array_new();
    GHashTableIter iter;
    gpointer value;
    uint64_t total = 0;

    g_hash_table_iter_init(&iter, s->address_spaces);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        g_ptr_array_add(spaces, value);
    }
    g_ptr_array_sort(spaces, swift_vtd_as_compare);
    for (guint i = 0; i < spaces->len; i++) {
        SwiftVTdAS *vas = g_ptr_array_index(spaces, i);
        uint16_t sid = swift_vtd_sid(vas);
        uint64_t calls = qatomic_read(&vas->translate_calls);
        g_autofree char *pasid = vas->pasid == SWIFTVTD_NO_PASID ? g_strdup("none")
                                 : g_strdup_printf("%u", vas->pasid);

        if (vas->is_ioapic) {
            continue;
        }
        total += calls;
        g_string_append_printf(out, "glue: space %02x:%02x.%x pasid %s view %s "
                               "translate-calls %" PRIu64 "\n", sid >> 8,
                               PCI_SLOT(sid & 0xff), PCI_FUNC(sid & 0xff), pasid,
                               vas->guest_physical ? "guest-ram" : "iommu", calls);
    }
    g_string_append_printf(out, "glue: translate-calls %" PRIu64 "\n", total);
}

/* The library's state dump, then the glue's lines. */
static char *swift_vtd_dump(SwiftVTdState *s)
{
    size_t needed = 0;
    GString *out;

    if (!s->unit) {
        return NULL;
    }
    s->lib.dump_state(s->unit, NULL, 0, &needed);
    /* The text may grow between the two calls: leave room. */
    needed += 4096;
    out = g_string_sized_new(needed + 1024);
    g_string_set_size(out, needed);
    s->lib.dump_state(s->unit, out->str, needed, NULL);
    g_string_set_size(out, strlen(out->str));
    swift_vtd_dump_spaces(s, out);
    return g_string_free(out, FALSE);
}

/* "state-dump=PATH": tests read which translation each device ended up using. */
static void swift_vtd_vm_state_change(void *opaque, bool running, RunState state)
{
    SwiftVTdState *s = opaque;
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    if (running || !s->state_dump || !*s->state_dump) {
        return;
    }
    text = swift_vtd_dump(s);
    if (text && !g_file_set_contents(s->state_dump, text, -1, &err)) {
        warn_report("swift-vtd: cannot write state dump: %s", err->message);
    }
}

static int swift_vtd_pre_save(void *opaque)
{
    SwiftVTdState *s = opaque;
    size_t needed = 0;

    g_free(s->migration_blob);
    s->lib.save_state(s->unit, NULL, 0, &needed);
    s->migration_blob = g_malloc0(needed);
    s->migration_blob_len = needed;
    if (s->lib.save_state(s->unit, s->migration_blob, needed, NULL) != SWIFTVTD_OK) {
        error_report("swift-vtd: the library failed to save its state");
        return -EINVAL;
    }
    return 0;
}

static int swift_vtd_post_save(void *opaque)
{
    SwiftVTdState *s = opaque;

    g_free(s->migration_blob);
    s->migration_blob = NULL;
    s->migration_blob_len = 0;
    return 0;
}

static int swift_vtd_post_load(void *opaque, int version_id)
{
    SwiftVTdState *s = opaque;
    char err[256] = "";
    int r;

    /* A loaded state sends CONTEXT_CHANGED for every device: their views follow. */
    r = s->lib.load_state(s->unit, s->migration_blob, s->migration_blob_len,
                          err, sizeof(err));
    swift_vtd_post_save(s);
    if (r != SWIFTVTD_OK) {
        error_report("swift-vtd: cannot load the saved state: %s", err);
        return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Device                                                                     */
/* ------------------------------------------------------------------------ */

/* Loads the library and creates the unit from the properties; false with errp set. */
static bool swift_vtd_create_unit(SwiftVTdState *s, Error **errp)
{
    swiftvtd_config cfg;
    char err[512] = "";
    swiftvtd_host_ops ops = {
        .size = sizeof(ops),
        .opaque = s,
        .dma_read = swift_vtd_host_dma_read,
        .dma_write = swift_vtd_host_dma_write,
        .dma_cmpxchg64 = swift_vtd_host_cmpxchg64,
        .send_msi = swift_vtd_host_send_msi,
        .event = swift_vtd_host_event,
        .log = swift_vtd_host_log,
        .trace = swift_vtd_host_trace,
    };

    if (!swift_vtd_load(s, errp)) {
        return false;
    }
    swift_vtd_fill_config(s, &cfg);
    s->unit = s->lib.create(&cfg, &ops, err, sizeof(err));
    if (!s->unit) {
        error_setg(errp, "swift-vtd: %s", err[0] ? err : "the library refused the configuration");
        goto fail;
    }
    /*
     * With the extended interrupt mode the library chose, 32-bit APIC IDs reach
     * KVM: a split irqchip must be told (intel-iommu does the same; x-buggy-eim
     * skips it).
     */
    s->lib.get_config(s->unit, &cfg);
    if (cfg.eim && !s->buggy_eim && kvm_irqchip_is_split() && !kvm_enable_x2apic()) {
        error_setg(errp, "eim=on requires support on the KVM side "
                   "(X2APIC_API, first shipped in v4.7)");
        s->lib.destroy(s->unit);
        s->unit = NULL;
        goto fail;
    }
    s->lib.interrupt_window(s->unit, &s->ir_base, &s->ir_size);
    swift_vtd_sync_trace_kinds(s);
    return true;

fail:
    g_module_close(s->lib.module);
    memset(&s->lib, 0, sizeof(s->lib));
    return false;
}

static void swift_vtd_realize(DeviceState *dev, Error **errp)
{
    SwiftVTdState *s = SWIFT_VTD(dev);
    PCMachineState *pcms = PC_MACHINE(qdev_get_machine());
    X86MachineState *x86ms = X86_MACHINE(qdev_get_machine());

    if (!swift_vtd_create_unit(s, errp)) {
        return;
    }
    QLIST_INIT(&s->with_notifiers);
    QLIST_INIT(&s->vfio_spaces);
    QLIST_INIT(&s->gpa_view_spaces);
    s->address_spaces = g_hash_table_new_full(swift_vtd_as_hash, swift_vtd_as_equal,
                                              g_free, NULL);
    memory_region_init_io(&s->csrmem, OBJECT(s), &swift_vtd_mmio_ops, s,
                          "swift-vtd", s->lib.mmio_size(s->unit));
    memory_region_add_subregion(get_system_memory(), SWIFT_VTD_MMIO_BASE, &s->csrmem);
    pci_setup_iommu(pcms->pcibus, &swift_vtd_iommu_ops, s);
    /* The IOAPIC sends its interrupts through here too, as requester 0xff:00.0. */
    x86ms->ioapic_as = &swift_vtd_find_add_as(s, NULL, Q35_PSEUDO_DEVFN_IOAPIC,
                                              SWIFTVTD_NO_PASID, true)->as;
    s->machine_done.notify = swift_vtd_machine_done;
    qemu_add_machine_init_done_notifier(&s->machine_done);
    qemu_add_vm_change_state_handler(swift_vtd_vm_state_change, s);
}

/* After DMA has quiesced (enter/hold phases), as intel-iommu does. */
static void swift_vtd_reset_exit(Object *obj, ResetType type)
{
    SwiftVTdState *s = SWIFT_VTD(obj);
    SwiftVTdAS *vas;

    if (!s->unit) {
        return;
    }
    s->lib.reset(s->unit);
    QLIST_FOREACH(vas, &s->with_notifiers, next_with_notifiers) {
        swift_vtd_unmap_all(vas);
    }
}

static void swift_vtd_finalize(Object *obj)
{
    SwiftVTdState *s = SWIFT_VTD(obj);

    if (s->unit) {
        s->lib.destroy(s->unit);
        s->unit = NULL;
    }
}

/* host-mode: an enumeration, so -device swift-vtd,help shows its choices. */
static const char *const swift_vtd_host_mode_names[] = {
    [SWIFTVTD_HOST_MODE_AUTO] = "auto",
    [SWIFTVTD_HOST_MODE_NESTED] = "nested",
    [SWIFTVTD_HOST_MODE_SHADOW] = "shadow",
};

static const QEnumLookup swift_vtd_host_mode_lookup = {
    .array = swift_vtd_host_mode_names,
    .size = ARRAY_SIZE(swift_vtd_host_mode_names),
};

static const PropertyInfo swift_vtd_prop_host_mode = {
    .type = "SwiftVTdHostMode",
    .description = "auto/nested/shadow",
    .enum_table = &swift_vtd_host_mode_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
};

static const Property swift_vtd_properties[] = {
    /* intel-iommu's, with the names and defaults of QEMU 11 */
    DEFINE_PROP_UINT32("version", SwiftVTdState, version, 0),
    DEFINE_PROP_ON_OFF_AUTO("eim", SwiftVTdState, eim, ON_OFF_AUTO_AUTO),
    DEFINE_PROP_BOOL("x-buggy-eim", SwiftVTdState, buggy_eim, false),
    DEFINE_PROP_UINT8("aw-bits", SwiftVTdState, aw_bits, 48),
    DEFINE_PROP_BOOL("caching-mode", SwiftVTdState, caching_mode, false),
    DEFINE_PROP_BOOL("scalable-mode", SwiftVTdState, scalable_mode, false),
    DEFINE_PROP_BOOL("fsts", SwiftVTdState, flts, false),
    DEFINE_PROP_BOOL("snoop-control", SwiftVTdState, snoop_control, false),
    DEFINE_PROP_UINT8("pasid-bits", SwiftVTdState, pasid_bits, 0),
    DEFINE_PROP_BOOL("svm", SwiftVTdState, svm, false),
    DEFINE_PROP_BOOL("dma-drain", SwiftVTdState, dma_drain, true),
    DEFINE_PROP_BOOL("dma-translation", SwiftVTdState, dma_translation, true),
    DEFINE_PROP_BOOL("stale-tm", SwiftVTdState, stale_tm, false),
    DEFINE_PROP_BOOL("fs1gp", SwiftVTdState, fs1gp, true),
    /* 10.0's PASID switch: a bool, so not an alias of pasid-bits */
    DEFINE_PROP_BOOL("x-pasid-mode", SwiftVTdState, pasid_mode, false),
    /* (intremap, device-iotlb and pt come from the x86-iommu base) */
    /* the library's own: stable */
    DEFINE_PROP_STRING("library", SwiftVTdState, library),
    DEFINE_PROP_SIGNED("host-mode", SwiftVTdState, host_mode, SWIFTVTD_HOST_MODE_AUTO,
                       swift_vtd_prop_host_mode, int),
    /* the library's own: experimental, so x- (the unprefixed names are aliases) */
    DEFINE_PROP_UINT16("x-fault-records", SwiftVTdState, fault_records, 1),
    DEFINE_PROP_UINT32("x-iotlb-size", SwiftVTdState, iotlb_size, 4096),
    DEFINE_PROP_BOOL("x-page-requests", SwiftVTdState, page_requests, false),
    DEFINE_PROP_BOOL("x-slts", SwiftVTdState, slts, false),
    DEFINE_PROP_BOOL("x-nesting", SwiftVTdState, nesting, false),
    DEFINE_PROP_BOOL("x-fs5lp", SwiftVTdState, fs5lp, false),
    DEFINE_PROP_STRING("x-state-dump", SwiftVTdState, state_dump),
};

/* Old names that keep working: QEMU 10.0's, and the library's before the x- prefix. */
static const struct {
    const char *alias;
    const char *target;
} swift_vtd_aliases[] = {
    { "x-scalable-mode", "scalable-mode" },
    { "x-flts", "fsts" },
    { "fault-records", "x-fault-records" },
    { "iotlb-size", "x-iotlb-size" },
    { "page-requests", "x-page-requests" },
    { "slts", "x-slts" },
    { "nesting", "x-nesting" },
    { "fs5lp", "x-fs5lp" },
    { "state-dump", "x-state-dump" },
};

/* What -device swift-vtd,help says beside each property's type and default. */
static const struct {
    const char *name;
    const char *text;
} swift_vtd_descriptions[] = {
    { "version", "unused (as intel-iommu's)" },
    { "x-buggy-eim", "let eim=auto turn on without a KVM irqchip" },
    { "aw-bits", "guest address width: 39, 48 or 57" },
    { "caching-mode", "CAP.CM: the guest invalidates after every map (shadowing)" },
    { "scalable-mode", "scalable-mode translation (PASID tables)" },
    { "fsts", "first-stage (first-level) translation; needs scalable-mode" },
    { "snoop-control", "ECAP.SC" },
    { "pasid-bits", "PASID support and width: 0 (none) or 1..20" },
    { "svm", "shared virtual memory (page requests); needs device-iotlb, fsts, "
             "dma-translation and pasid-bits" },
    { "dma-drain", "CAP.DRD/DWD; scalable mode needs it" },
    { "dma-translation", "DMA remapping (off: interrupt remapping only)" },
    { "stale-tm", "stale TM handling, as intel-iommu's" },
    { "fs1gp", "1 GiB pages in first-stage tables" },
    { "x-pasid-mode", "QEMU 10.0's PASID switch (width 20 unless pasid-bits says)" },
    { "library", "path of libSwiftVTd.so; default " SWIFT_VTD_DEFAULT_LIBRARY
                 " (swiftvtd.pc when QEMU was built)" },
    { "host-mode", "how assigned (VFIO) devices are translated: auto/nested/shadow "
                   "(auto: nested when every device can nest, else shadow)" },
    { "x-fault-records", "number of fault recording registers, 1..256" },
    { "x-iotlb-size", "IOTLB entries, 16..1048576" },
    { "x-page-requests", "page request queue (ECAP.PRS/PDS)" },
    { "x-slts", "offer second-level beside first-level translation" },
    { "x-nesting", "ECAP.NEST: nested translation" },
    { "x-fs5lp", "five-level first-stage tables" },
    { "x-state-dump", "file that gets the state dump when the VM stops" },
};

static void swift_vtd_instance_init(Object *obj)
{
    SwiftVTdState *s = SWIFT_VTD(obj);

    /* A string property's default must be set here, not in the table. */
    s->library = g_strdup(SWIFT_VTD_DEFAULT_LIBRARY);
    for (size_t i = 0; i < ARRAY_SIZE(swift_vtd_aliases); i++) {
        g_autofree char *text = g_strdup_printf("old name of %s", swift_vtd_aliases[i].target);

        object_property_add_alias(obj, swift_vtd_aliases[i].alias, obj,
                                  swift_vtd_aliases[i].target);
        object_property_set_description(obj, swift_vtd_aliases[i].alias, text);
    }
}

/* "x-state": the library's state dump, live, for qom-get (QMP and HMP). */
static char *swift_vtd_get_state(Object *obj, Error **errp)
{
    char *text = swift_vtd_dump(SWIFT_VTD(obj));

    if (!text) {
        error_setg(errp, "swift-vtd: no state before the device is realized");
    }
    return text;
}

/* HMP "info swift-vtd": the same text as x-state, for every swift-vtd device. */
static int swift_vtd_hmp_one(Object *obj, void *opaque)
{
    GString *out = opaque;
    g_autofree char *text = NULL;

    if (!object_dynamic_cast(obj, TYPE_SWIFT_VTD)) {
        return 0;
    }
    text = swift_vtd_dump(SWIFT_VTD(obj));
    g_string_append(out, text ? text : "swift-vtd: not realized\n");
    return 0;
}

static HumanReadableText *swift_vtd_hmp_info(Error **errp)
{
    g_autoptr(GString) out = g_string_new("");

    object_child_foreach_recursive(object_get_root(), swift_vtd_hmp_one, out);
    if (!out->len) {
        g_string_append(out, "no swift-vtd device\n");
    }
    return human_readable_text_from_str(out);
}

/*
 * The library serialises its own architectural state (registers, latched
 * tables, queues, pending faults); QEMU carries the blob.
 */
static const VMStateDescription swift_vtd_vmstate = {
    .name = "swift-vtd",
    .version_id = 1,
    .minimum_version_id = 1,
    .priority = MIG_PRI_IOMMU,
    .pre_save = swift_vtd_pre_save,
    .post_save = swift_vtd_post_save,
    .post_load = swift_vtd_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(migration_blob_len, SwiftVTdState),
        VMSTATE_VBUFFER_ALLOC_UINT32(migration_blob, SwiftVTdState, 0, NULL,
                                     migration_blob_len),
        VMSTATE_END_OF_LIST()
    },
};

static void swift_vtd_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    X86IOMMUClass *x86_class = X86_IOMMU_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    rc->phases.exit = swift_vtd_reset_exit;
    dc->vmsd = &swift_vtd_vmstate;
    device_class_set_props(dc, swift_vtd_properties);
    for (size_t i = 0; i < ARRAY_SIZE(swift_vtd_descriptions); i++) {
        object_class_property_set_description(klass, swift_vtd_descriptions[i].name,
                                              swift_vtd_descriptions[i].text);
    }
    object_class_property_add_str(klass, "x-state", swift_vtd_get_state, NULL);
    object_class_property_set_description(klass, "x-state",
                                          "the library's state dump, live, then each "
                                          "device's view and translate calls (read-only)");
    dc->hotpluggable = false;
    x86_class->realize = swift_vtd_realize;
    x86_class->int_remap = swift_vtd_int_remap;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    dc->desc = "VT-d IOMMU whose model is the SwiftVTd library";
}

static void swift_vtd_iommu_mr_class_init(ObjectClass *klass, void *data)
{
    IOMMUMemoryRegionClass *imrc = IOMMU_MEMORY_REGION_CLASS(klass);

    imrc->translate = swift_vtd_translate;
    imrc->notify_flag_changed = swift_vtd_notify_flag_changed;
    imrc->replay = swift_vtd_replay;
}

static const TypeInfo swift_vtd_types[] = {
    {
        .name = TYPE_SWIFT_VTD,
        .parent = TYPE_X86_IOMMU_DEVICE,
        .instance_size = sizeof(SwiftVTdState),
        .instance_init = swift_vtd_instance_init,
        .instance_finalize = swift_vtd_finalize,
        .class_init = swift_vtd_class_init,
    },
    {
        .name = TYPE_SWIFT_VTD_IOMMU_MR,
        .parent = TYPE_IOMMU_MEMORY_REGION,
        .class_init = swift_vtd_iommu_mr_class_init,
    },
};

static void swift_vtd_register_types(void)
{
    type_register_static_array(swift_vtd_types, ARRAY_SIZE(swift_vtd_types));
    /* The command is declared by patches/0005 in hmp-commands-info.hx. */
    monitor_register_hmp_info_hrt("swift-vtd", swift_vtd_hmp_info);
}

type_init(swift_vtd_register_types)
