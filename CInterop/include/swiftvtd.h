/*
 * SwiftVTd: an emulated Intel VT-d IOMMU, as a shared library with a C ABI.
 *
 * This header is the whole contract between the library and its host (QEMU's
 * swift-vtd device, the C ABI tests, benchmarks). Rules that hold everywhere:
 *   - Versioning: the SONAME is libSwiftVTd.so.SWIFTVTD_ABI_VERSION and only
 *     swiftvtd_* symbols are exported. Within one major, structs and functions
 *     only grow: every struct passed across the ABI starts with a `size` field
 *     set to sizeof(the struct as its writer was compiled). The library takes
 *     an older, smaller struct (the fields it lacks keep their defaults: zero,
 *     NULL, or swiftvtd_config_init's value), and a newer, larger one whose
 *     extra bytes are all zero; anything smaller than the major's first
 *     release, or larger with unknown fields set, is SWIFTVTD_EVERSION or a
 *     create error. Additions need no change in an older host. A change that
 *     cannot follow this rule bumps SWIFTVTD_ABI_VERSION, and so the SONAME.
 *   - The exception: swiftvtd_translate_request/swiftvtd_translation and
 *     swiftvtd_msi carry no size. They are passed on every DMA access and
 *     every interrupt, from any thread, so they stay fixed-layout, fully
 *     checked (reserved fields and unknown flags are SWIFTVTD_EINVAL) and
 *     frozen for the major: a new request field means a new function.
 *   - Functions report failure by return code (and, where a buffer is given,
 *     a message). The library never aborts on bad input: the guest is untrusted.
 *   - No callback is invoked while the library holds an internal lock, so a
 *     callback may call back into the library.
 *   - swiftvtd_mmio_* and the control calls are serialised by the host (QEMU's
 *     big lock); swiftvtd_translate and swiftvtd_interrupt_remap may be called
 *     from any thread at any time.
 */
#ifndef SWIFTVTD_H
#define SWIFTVTD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The major version: the SONAME's number (libSwiftVTd.so.1), bumped only by a change the
   size rule above cannot absorb. swiftvtd_abi_version() returns it, so a host that loads the
   library by path can refuse another major before calling anything else. */
#define SWIFTVTD_ABI_VERSION 1u
/* The rest of the library's version (MAJOR.MINOR.MICRO; swiftvtd.pc carries the same).
   MINOR grows with every addition: a host built against 1.N needs a library of 1.N or newer. */
#define SWIFTVTD_VERSION_MINOR 4
#define SWIFTVTD_VERSION_MICRO 0

/* Requests without PASID (PCIe requests carrying no PASID TLP prefix). */
#define SWIFTVTD_NO_PASID 0xFFFFFFFFu

typedef struct swiftvtd swiftvtd_t; /* opaque handle */
typedef struct swiftvtd_trace swiftvtd_trace; /* a trace record, defined below */

/* Return codes. Faults during translation are not errors: see swiftvtd_translate. */
typedef enum swiftvtd_status {
    SWIFTVTD_OK = 0,
    SWIFTVTD_EINVAL = -1,       /* malformed argument */
    SWIFTVTD_EVERSION = -2,     /* ABI version or struct size not understood */
    SWIFTVTD_ENOMEM = -3,
    SWIFTVTD_ENOENT = -4,       /* unknown device or object */
    SWIFTVTD_ENOSPC = -5,       /* caller's buffer too small */
    SWIFTVTD_EUNSUPPORTED = -6, /* a feature that this configuration does not have */
} swiftvtd_status;

/* ------------------------------------------------------------------------ */
/* Configuration: every property of QEMU's intel-iommu, same meaning and the  */
/* same defaults (swiftvtd_config_init), plus the library's own.              */
/* Tri-state (OnOffAuto) properties are resolved by the host before create:   */
/* it alone knows the irqchip mode.                                           */
/* ------------------------------------------------------------------------ */
typedef struct swiftvtd_config {
    uint32_t size;          /* sizeof(swiftvtd_config) */
    uint32_t abi_version;   /* SWIFTVTD_ABI_VERSION */

    /* QEMU intel-iommu properties */
    uint8_t aw_bits;        /* "aw-bits": 39 or 48 (57 when five-level is supported); default 48 */
    uint8_t caching_mode;   /* "caching-mode": CAP.CM; default 0 */
    uint8_t scalable_mode;  /* "scalable-mode" (10.0: x-scalable-mode): default 0 */
    uint8_t flts;           /* "fsts" (10.0: x-flts): first-level translation; default 0 */
    uint8_t pasid;          /* "pasid-bits" > 0 (10.0: x-pasid-mode): ECAP.PASID; default 0 */
    uint8_t intremap;       /* "intremap" (resolved): ECAP.IR; default 1 */
    uint8_t eim;            /* "eim" (resolved): ECAP.EIM; default 0 */
    uint8_t device_iotlb;   /* "device-iotlb": ECAP.DT; default 0 */
    uint8_t pt;             /* "pt": ECAP.PT; default 1 */
    uint8_t dma_drain;      /* "dma-drain": CAP.DRD|DWD; default 1 */
    uint8_t snoop_control;  /* "snoop-control": ECAP.SC; default 0 */
    uint8_t dma_translation;/* "dma-translation": default 1 */
    uint8_t stale_tm;       /* "stale-tm": default 0 */
    uint8_t fs1gp;          /* "fs1gp": CAP.FS1GP with fsts; default 1 */

    /* The library's own properties */
    uint8_t slts;           /* "x-slts": offer second-level beside first-level (both FLTS and SLTS); default 0 */
    uint8_t nesting;        /* "x-nesting": ECAP.NEST, nested PGTT; default 0 */
    uint8_t page_requests;  /* "x-page-requests" (or "svm"): ECAP.PRS|PDS, page request queue; default 0 */
    uint8_t fs5lp;          /* "x-fs5lp": CAP.FS5LP, five-level first-level tables; default 0 */
    uint8_t pasid_bits;     /* "pasid-bits": PASID width 1..20 advertised in ECAP.PSS when pasid is on with
                               page_requests or nesting (x-pasid-mode alone keeps QEMU's PSS 0); default 20 */
    uint8_t reserved0;      /* must be zero */
    uint16_t fault_records; /* "x-fault-records": number of FRCD registers, 1..256; default 1 */
    uint16_t reserved1;     /* must be zero */
    uint32_t iotlb_capacity;/* "x-iotlb-size": IOTLB entries, 16..1<<20; default 4096 */
    uint32_t reserved2;     /* must be zero */

    /* --- 1.2: everything below is absent from 40-byte (1.0, 1.1) configs. The host passes */
    /* facts and unresolved properties; the library resolves and refuses them as intel-iommu. */
    uint8_t eim_auto;       /* "eim=auto": the library resolves eim (then `eim` must be 0) from intremap,
                               kvm_irqchip and buggy_eim; swiftvtd_get_config says what it chose */
    uint8_t kvm_irqchip;    /* fact: KVM's interrupt controller is in the kernel (full or split) */
    uint8_t buggy_eim;      /* "x-buggy-eim": eim=auto turns on without a KVM irqchip */
    uint8_t svm;            /* "svm": page requests, refused without device_iotlb, flts, dma_translation
                               and pasid (as intel-iommu refuses it); implies page_requests */
    uint32_t reserved3;     /* must be zero */
} swiftvtd_config;

/* Fills *cfg with the defaults above, size and abi_version set. */
void swiftvtd_config_init(swiftvtd_config *cfg);

/* ------------------------------------------------------------------------ */
/* Host callbacks                                                             */
/* ------------------------------------------------------------------------ */
typedef enum swiftvtd_log_level {
    SWIFTVTD_LOG_GUEST_ERROR = 0, /* the guest did something the spec forbids */
    SWIFTVTD_LOG_UNIMPLEMENTED = 1,
    SWIFTVTD_LOG_TRACE = 2,
    SWIFTVTD_LOG_INFO = 3,        /* decisions worth a log line (capabilities, backends) */
} swiftvtd_log_level;

typedef enum swiftvtd_event_kind {
    /* A range of IOVA space of (sid, pasid) changed: drop cached translations of it (UNMAP). */
    SWIFTVTD_EVENT_UNMAP = 1,
    /* A translation of (sid, pasid) appeared (MAP), for hosts that shadow (caching mode). */
    SWIFTVTD_EVENT_MAP = 2,
    /* The translation setup of (sid, pasid) changed: re-query its mode (address-space switch).
       data = 1: of every device (sid 0xFFFF), whatever pasid says. Since 1.3 also the moment to
       ask swiftvtd_dma_view again for sid, or for every device when data = 1. */
    SWIFTVTD_EVENT_CONTEXT_CHANGED = 3,
    /* Device-TLB invalidation for (sid, pasid) over [addr, addr+size). */
    SWIFTVTD_EVENT_DEVICE_TLB_INVALIDATE = 4,
    /* Interrupt entry cache invalidated: index..index+count-1, or everything when count == 0. */
    SWIFTVTD_EVENT_INTERRUPT_CACHE_INVALIDATE = 5,
    /* Page group response to deliver to the device (sid, pasid): data = prg index, perm = response code. */
    SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE = 6,
} swiftvtd_event_kind;

typedef struct swiftvtd_event {
    uint32_t size;        /* sizeof(swiftvtd_event) */
    uint32_t kind;        /* swiftvtd_event_kind */
    uint16_t sid;         /* requester id: bus << 8 | devfn */
    uint16_t reserved;
    uint32_t pasid;       /* or SWIFTVTD_NO_PASID */
    uint64_t addr;        /* IOVA (MAP/UNMAP/device-TLB) or interrupt index */
    uint64_t size_bytes;  /* range length, never 0, the range inside [0, 2^aw_bits) (since 1.2);
                             count for interrupt-cache events */
    uint64_t translated;  /* MAP: output address */
    uint32_t perm;        /* MAP: SWIFTVTD_PERM_*; page group response: response code */
    uint32_t data;        /* event-specific extra (page group index, ...) */
} swiftvtd_event;

typedef struct swiftvtd_host_ops {
    uint32_t size;        /* sizeof(swiftvtd_host_ops) */
    uint32_t reserved;
    void *opaque;         /* passed back to every callback */
    /* Guest-physical memory access; return 0 on success, nonzero when the range is not accessible. */
    int (*dma_read)(void *opaque, uint64_t gpa, void *buf, uint64_t len);
    int (*dma_write)(void *opaque, uint64_t gpa, const void *buf, uint64_t len);
    /* Atomic 64-bit compare-and-exchange on guest RAM (first-level accessed/dirty updates).
       Stores the value found in *found; returns 0 when the access itself worked (whether or not
       it exchanged), nonzero when the address is not RAM. */
    int (*dma_cmpxchg64)(void *opaque, uint64_t gpa, uint64_t expected, uint64_t desired, uint64_t *found);
    /* Deliver an MSI (fault event, invalidation completion, page request event). */
    void (*send_msi)(void *opaque, uint64_t address, uint32_t data);
    /* Map/unmap and invalidation notifications; may be NULL. */
    void (*event)(void *opaque, const swiftvtd_event *event);
    /* Log line (NUL-terminated, no trailing newline); may be NULL. */
    void (*log)(void *opaque, int level, const char *message);
    /* --- 1.1: everything below is absent from 64-byte (1.0) host ops. --- */
    /* One structured trace record per decision (see swiftvtd_trace); may be NULL. The one
       callback that may run with the unit's internal lock held: it must only record, never
       call into the library. With it NULL no record is built. */
    void (*trace)(void *opaque, const swiftvtd_trace *trace);
} swiftvtd_host_ops;

/* ------------------------------------------------------------------------ */
/* Trace records: what a guest engineer debugs with, one record per decision. */
/* Fields a kind does not use are zero.                                       */
/* ------------------------------------------------------------------------ */
typedef enum swiftvtd_trace_kind {
    /* A queued-invalidation descriptor was processed: code = descriptor type (bits 11:9,3:0),
       words = its 2 (128-bit queue) or 4 (256-bit) quadwords, scope = 1 done, 2 wait with status
       write, 3 refused (IQE: data = the queue error). */
    SWIFTVTD_TRACE_DESCRIPTOR = 1,
    /* A fault was recorded in a fault recording register: code = reason, sid, pasid, addr
       (page or interrupt index), data = FRCD index, scope = 1 read, 2 write. */
    SWIFTVTD_TRACE_FAULT = 2,
    /* Context-cache invalidation: scope = SWIFTVTD_SCOPE_*; did, sid, data = function mask. */
    SWIFTVTD_TRACE_CONTEXT_INVALIDATE = 3,
    /* PASID-cache invalidation: scope; did, pasid. */
    SWIFTVTD_TRACE_PASID_INVALIDATE = 4,
    /* IOTLB or PASID-IOTLB invalidation: scope; did, pasid, addr, data = address mask, code = 1
       when the invalidation hint (IH) is set. */
    SWIFTVTD_TRACE_IOTLB_INVALIDATE = 5,
    /* A guest PASID entry handed to the host IOMMU (nested): sid, pasid, did, addr = first-level
       table pointer (0 for pass-through/second-level), code = 0, the errno it failed with, or -1
       for another failure (the reason is logged). */
    SWIFTVTD_TRACE_HOST_BIND = 6,
    /* ... a cleared entry taken off the host: sid, pasid, did, code as above. */
    SWIFTVTD_TRACE_HOST_UNBIND = 7,
    /* A PASID-IOTLB invalidation forwarded to the host IOMMU: scope = SWIFTVTD_SCOPE_PASID or
       _PASID_PAGES, did, pasid, addr, data = address mask. A batch the host failed is one more
       record with code = -1 (the reason is logged). */
    SWIFTVTD_TRACE_HOST_INVALIDATE = 8,
    /* An interrupt request was remapped: sid, addr/words[0] = input address/data, words[1]/
       words[2] = output address/data, code = the swiftvtd_irq_result, data = the IRTE index
       (0 for compatibility format). */
    SWIFTVTD_TRACE_INTERRUPT_REMAP = 9,
} swiftvtd_trace_kind;

typedef enum swiftvtd_trace_scope {
    SWIFTVTD_SCOPE_GLOBAL = 1,
    SWIFTVTD_SCOPE_DOMAIN = 2,
    SWIFTVTD_SCOPE_DEVICE = 3,      /* context cache: one source-id (with function mask) */
    SWIFTVTD_SCOPE_PASID = 4,       /* every page of one PASID of a domain */
    SWIFTVTD_SCOPE_PAGES = 5,       /* 2^data pages from addr, in a domain */
    SWIFTVTD_SCOPE_PASID_PAGES = 6, /* 2^data pages from addr, in one PASID of a domain */
} swiftvtd_trace_scope;

struct swiftvtd_trace {
    uint32_t size;        /* sizeof(swiftvtd_trace) */
    uint32_t kind;        /* swiftvtd_trace_kind */
    uint32_t scope;       /* kind-specific, see above */
    uint32_t code;        /* kind-specific, see above */
    uint16_t sid;
    uint16_t did;
    uint32_t pasid;       /* or SWIFTVTD_NO_PASID */
    uint64_t addr;
    uint64_t data;
    uint64_t words[4];
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                 */
/* ------------------------------------------------------------------------ */
uint32_t swiftvtd_abi_version(void);

/* Returns a new unit, or NULL with a NUL-terminated reason in err (when err_len > 0). */
swiftvtd_t *swiftvtd_create(const swiftvtd_config *cfg, const swiftvtd_host_ops *ops,
                            char *err, size_t err_len);
void swiftvtd_destroy(swiftvtd_t *unit);
/* Power-on reset: every register back to its reset value, caches emptied. */
void swiftvtd_reset(swiftvtd_t *unit);

/* 1.2: the configuration the unit runs with, as resolved at create (eim from eim_auto, page_requests
   from svm) and fixed by swiftvtd_machine_done (caching_mode, flts). cfg->size says how much the
   caller's struct holds, as for create. SWIFTVTD_EVERSION for an unknown size. */
int swiftvtd_get_config(const swiftvtd_t *unit, swiftvtd_config *cfg);

/* ------------------------------------------------------------------------ */
/* Register window (MMIO). Size is 0x230 bytes, more with extra fault records. */
/* Accesses of 4 or 8 bytes at naturally aligned offsets; anything else is    */
/* ignored (and logged as a guest error) and reads as 0.                      */
/* ------------------------------------------------------------------------ */
uint64_t swiftvtd_mmio_size(const swiftvtd_t *unit);
uint64_t swiftvtd_mmio_read(swiftvtd_t *unit, uint64_t offset, unsigned size);
void swiftvtd_mmio_write(swiftvtd_t *unit, uint64_t offset, uint64_t value, unsigned size);

/* ------------------------------------------------------------------------ */
/* DMA translation                                                           */
/* ------------------------------------------------------------------------ */
#define SWIFTVTD_PERM_READ  1u
#define SWIFTVTD_PERM_WRITE 2u
#define SWIFTVTD_PERM_EXEC  4u

typedef enum swiftvtd_access {
    SWIFTVTD_ACCESS_READ = 1,
    SWIFTVTD_ACCESS_WRITE = 2,
    SWIFTVTD_ACCESS_EXEC = 4,    /* execute request (PASID TLP with ER) */
} swiftvtd_access;

typedef struct swiftvtd_translate_request {
    uint16_t sid;          /* requester id: bus << 8 | devfn */
    uint8_t access;        /* swiftvtd_access bits; READ|WRITE allowed (QEMU's IOMMU_RW) */
    uint8_t flags;         /* SWIFTVTD_REQ_* */
    uint32_t pasid;        /* or SWIFTVTD_NO_PASID */
    uint64_t addr;         /* input address (IOVA) */
} swiftvtd_translate_request;

#define SWIFTVTD_REQ_PRIVILEGED 1u  /* supervisor request (PASID TLP with PMR) */
#define SWIFTVTD_REQ_ATS        2u  /* ATS translation request: result cached by the device, not the IOTLB */
/* SWIFTVTD_REQ_ATS: a PCIe ATS Translation Request from a device with a device-TLB (ECAP.DT,
   context TT 01 or scalable DTE). The answer is for the device to cache: the host keeps it and
   drops it on SWIFTVTD_EVENT_DEVICE_TLB_INVALIDATE (sid, pasid, [addr, addr + size_bytes)). A
   fault comes back in kind/fault_reason. As the spec says (4.2.3), faults of the root, context
   and PASID structures (e.g. 0x0D TT blocks translation requests, 0x44 DTE clear) are recorded
   as for DMA (the device gets UR/CA); a page the tables do not map or permit is answered with
   R = W = 0 and not recorded (the device reports it, or asks with swiftvtd_page_request). */
#define SWIFTVTD_REQ_NO_FAULT   4u  /* probe only (replay, dumps): never record a fault */

typedef enum swiftvtd_translation_kind {
    SWIFTVTD_XLATE_OK = 0,          /* translated (or identity when DMA remapping is off / pass-through) */
    SWIFTVTD_XLATE_FAULT = 1,       /* the request faulted: fault_reason is the spec's reason code */
} swiftvtd_translation_kind;

typedef struct swiftvtd_translation {
    uint64_t translated;   /* output address of the page containing addr, plus the offset into it */
    uint64_t page_mask;    /* ~(page size - 1), e.g. ~0xfff for 4 KiB */
    uint32_t perm;         /* SWIFTVTD_PERM_* granted for the whole page */
    uint8_t kind;          /* swiftvtd_translation_kind */
    uint8_t fault_reason;  /* VT-d fault reason code when kind == FAULT */
    uint8_t identity;      /* 1 when the device is untranslated (DMA remapping off or pass-through) */
    uint8_t reserved;
} swiftvtd_translation;

/* Returns SWIFTVTD_OK with *out filled (a fault is a result, not an error), or an error code for
   malformed arguments. Records the fault in the fault recording registers and raises the fault
   event as the spec says, unless SWIFTVTD_REQ_NO_FAULT is set, fault processing is disabled, or
   SWIFTVTD_REQ_ATS meets a page-table fault (see above). */
int swiftvtd_translate(swiftvtd_t *unit, const swiftvtd_translate_request *req,
                       swiftvtd_translation *out);

/* 1.3: which view of memory requests without PASID of requester sid may be given, the unit's
   answer for a host that can show a device guest memory directly (QEMU: an alias of system memory
   in place of the IOMMU region, the interrupt window still on top), so that its DMA makes no
   swiftvtd_translate call:
     SWIFTVTD_DMA_VIEW_UNTRANSLATED  every request without PASID passes through untranslated, at
                                     any address (DMA remapping is off, or the context entry (TT
                                     10b) or RID_PASID entry (PGTT 100b) passes through);
     SWIFTVTD_DMA_VIEW_TRANSLATED    requests go through swiftvtd_translate, which also records
                                     the faults of absent or malformed tables;
   or SWIFTVTD_EINVAL for a NULL unit. Reads the tables from guest memory (through dma_read; no
   cache consulted, no fault recorded). The answer holds until the next
   SWIFTVTD_EVENT_CONTEXT_CHANGED naming sid or every device (data = 1): the unit sends one for
   every change that can alter it (GCMD.TE and SRTP, context- and PASID-cache invalidations, reset,
   swiftvtd_load_state), before the guest sees that change complete. A control call. */
#define SWIFTVTD_DMA_VIEW_TRANSLATED   0
#define SWIFTVTD_DMA_VIEW_UNTRANSLATED 1
int swiftvtd_dma_view(swiftvtd_t *unit, uint16_t sid);

/* 1.4: which kinds of trace record the host's trace callback wants: bit (1u << kind) for each
   swiftvtd_trace_kind. The library builds no record of another kind, so a host that prints only
   the records whose trace events are on (QEMU) pays nothing for the others. Every kind is wanted
   until this is called. Any thread, any time; the next record sees it. SWIFTVTD_EINVAL for a
   NULL unit. */
int swiftvtd_set_trace_kinds(swiftvtd_t *unit, uint32_t kinds);

/* IOMMU notifiers (QEMU's IOMMUNotifier flags): which events the host wants for (sid, pasid).
   The library sends them through the host's `event` callback. */
#define SWIFTVTD_NOTIFY_UNMAP          1u  /* SWIFTVTD_EVENT_UNMAP: vhost, VFIO */
#define SWIFTVTD_NOTIFY_MAP            2u  /* SWIFTVTD_EVENT_MAP: shadowing; needs caching-mode */
#define SWIFTVTD_NOTIFY_DEVIOTLB_UNMAP 4u  /* SWIFTVTD_EVENT_DEVICE_TLB_INVALIDATE; needs device-iotlb */

/* Sets the notifications wanted for (sid, pasid) (SWIFTVTD_NO_PASID for requests without PASID);
   flags 0 withdraws them. SWIFTVTD_EUNSUPPORTED when this configuration cannot deliver them, as
   QEMU refuses them (any with snoop-control, MAP without caching-mode, DEVIOTLB_UNMAP without
   device-iotlb); SWIFTVTD_EINVAL for unknown flags or a PASID over 20 bits. */
int swiftvtd_set_notifier(swiftvtd_t *unit, uint16_t sid, uint32_t pasid, uint32_t flags);

/* 1.2: swiftvtd_set_notifier with the reason for a refusal, in the library's words, written to err
   (when err_len > 0; empty on success). Same return codes. */
int swiftvtd_set_notifications(swiftvtd_t *unit, uint16_t sid, uint32_t pasid, uint32_t flags,
                               char *err, size_t err_len);

/* Replay (QEMU's IOMMU replay): sends a SWIFTVTD_EVENT_MAP event for every translation (sid, pasid)
   has now and returns how many (>= 0), or SWIFTVTD_EINVAL. None when remapping is off or the device
   passes through, faults or uses nested tables. Bounded: tables that point at themselves end it. */
int swiftvtd_replay(swiftvtd_t *unit, uint16_t sid, uint32_t pasid);

/* ------------------------------------------------------------------------ */
/* Interrupt remapping                                                       */
/* ------------------------------------------------------------------------ */
typedef struct swiftvtd_msi {
    uint64_t address;      /* 0xFEEx_xxxx; on output bits 63:40 hold x2APIC destination bits 31:8 */
    uint32_t data;
    uint32_t reserved;     /* must be zero on input; zero on output */
} swiftvtd_msi;

#define SWIFTVTD_IRQ_NO_FAULT 1u     /* probe only (e.g. KVM route pre-computation): never record a fault */

typedef enum swiftvtd_irq_result {
    SWIFTVTD_IRQ_REMAPPED = 0,       /* deliver *out (== SWIFTVTD_OK) */
    SWIFTVTD_IRQ_PASSTHROUGH = 1,    /* deliver the request unchanged (*out is a copy of *in): remapping
                                        is off, or a compatibility-format MSI while GSTS.CFIS is set */
    /* 0x20..0x26: the request is blocked with this VT-d fault reason; deliver nothing. The fault
       was recorded unless the IRTE's FPD is set or SWIFTVTD_IRQ_NO_FAULT was given. */
    SWIFTVTD_IRQ_FAULT_FIRST = 0x20,
    SWIFTVTD_IRQ_FAULT_LAST = 0x2F,
} swiftvtd_irq_result;

/* 1.2: the interrupt address range (VT-d 5.1: 0xFEEx_xxxx): writes there by any requester are
   interrupt requests, not DMA, and go to swiftvtd_interrupt_remap. Fills *base and *size. */
void swiftvtd_interrupt_window(const swiftvtd_t *unit, uint64_t *base, uint64_t *size);

/* Remaps one interrupt request: a DWORD write of in->data to in->address (0xFEEx_xxxx) by the
   requester `sid` (bus << 8 | devfn). Interrupts from an IOAPIC come through here too, with the
   IOAPIC's source-id (QEMU's q35 IOAPIC: 0xFF00). Returns a swiftvtd_irq_result, or a negative
   swiftvtd_status for malformed arguments (NULL pointers, reserved fields or unknown flags). `out`
   may equal `in`. May be called from any thread. */
int swiftvtd_interrupt_remap(swiftvtd_t *unit, uint16_t sid, const swiftvtd_msi *in, swiftvtd_msi *out,
                             uint32_t flags);

/* ------------------------------------------------------------------------ */
/* Page requests (PCIe PRI), when the unit was created with page_requests = 1 */
/* ------------------------------------------------------------------------ */
#define SWIFTVTD_PRQ_READ  1u   /* read access requested */
#define SWIFTVTD_PRQ_WRITE 2u   /* write access requested */
#define SWIFTVTD_PRQ_EXEC  4u   /* execute access requested (needs a PASID) */
#define SWIFTVTD_PRQ_PRIV  8u   /* privileged-mode access requested (needs a PASID) */
#define SWIFTVTD_PRQ_LAST  16u  /* last request of its page request group: the device awaits a response */

/* One PCIe page request message (PRI). */
typedef struct swiftvtd_pri_request {
    uint32_t size;         /* sizeof(swiftvtd_pri_request) */
    uint16_t sid;          /* requester id: bus << 8 | devfn */
    uint16_t prg_index;    /* page request group index, 0..511 */
    uint32_t pasid;        /* or SWIFTVTD_NO_PASID */
    uint32_t flags;        /* SWIFTVTD_PRQ_*; LAST without READ/WRITE is a stop marker */
    uint64_t addr;         /* untranslated page address; bits 11:0 ignored */
} swiftvtd_pri_request;

typedef enum swiftvtd_prq_result {
    SWIFTVTD_PRQ_QUEUED = 0,   /* in the guest's page request queue; the answer comes later as a
                                  SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE event */
    SWIFTVTD_PRQ_DROPPED = 1,  /* not queued (queue full or overflowed, queue memory not writable); if
                                  the request ended its group the unit has already answered it through
                                  a SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE event */
} swiftvtd_prq_result;

/* An emulated PRI-capable device sends a page request. Returns a swiftvtd_prq_result,
   SWIFTVTD_EUNSUPPORTED when the unit takes no page requests, SWIFTVTD_EVERSION for an unknown
   struct size, SWIFTVTD_EINVAL for a malformed request (prg_index > 511, PASID > 20 bits,
   unknown flags, EXEC/PRIV without a PASID). */
int swiftvtd_page_request(swiftvtd_t *unit, const swiftvtd_pri_request *req);

/* ------------------------------------------------------------------------ */
/* Migration and the state dump (control calls: serialised with MMIO)        */
/* ------------------------------------------------------------------------ */

/* Format version of the blobs swiftvtd_save_state writes. */
#define SWIFTVTD_STATE_VERSION 1u

/* Writes the unit's architectural state to buf: the register window (queue heads, tails and
   addresses, fault records and status, event registers, page request queue), the root table and
   interrupt remapping table latched by GCMD.SRTP/SIRTP, and the next fault record. Caches are not
   saved; the destination rebuilds them. The blob carries a magic, SWIFTVTD_STATE_VERSION, its
   length, a CRC-32 and the unit's CAP/ECAP. *needed (when not NULL) receives the blob's size;
   returns SWIFTVTD_ENOSPC when len is smaller (buf may then be NULL), SWIFTVTD_OK otherwise. */
int swiftvtd_save_state(swiftvtd_t *unit, void *buf, size_t len, size_t *needed);

/* Replaces the unit's state with the blob's (caches emptied). On failure nothing changes and err
   (when err_len > 0) holds the reason: SWIFTVTD_EVERSION for another format version,
   SWIFTVTD_EINVAL for a truncated, corrupted or foreign blob or one saved by a unit of another
   configuration (CAP/ECAP differ). On success the host receives SWIFTVTD_EVENT_CONTEXT_CHANGED for
   every device and SWIFTVTD_EVENT_INTERRUPT_CACHE_INVALIDATE for every entry: re-query all
   address spaces and interrupt routes. */
int swiftvtd_load_state(swiftvtd_t *unit, const void *buf, size_t len, char *err, size_t err_len);

/* Renders the unit's state as NUL-terminated text, one fact per line: the configuration, CAP and
   ECAP, GSTS decoded, the root table, the invalidation queue, interrupt remapping, fault status and
   pending fault records, the page request queue, cache statistics, then one line per (device,
   PASID) that translations have walked for, in the form
       device 00:03.0 pasid none pgtt first-level did 1 walks 4      (scalable mode: PGTT)
       device 00:04.0 pasid none tt multi-level did 2 walks 1        (legacy mode: context TT)
   followed by the root/context/PASID entries it uses, as guest memory holds them now (indented).
   *needed (when not NULL) receives the size including the NUL. When len is smaller, writes as
   much as fits (NUL-terminated, if len > 0) and returns SWIFTVTD_ENOSPC. The text may grow between
   two calls. Reads guest memory through dma_read. */
int swiftvtd_dump_state(swiftvtd_t *unit, char *buf, size_t len, size_t *needed);

/* ------------------------------------------------------------------------ */
/* Host devices (VFIO) and the host-mode decision (control calls: serialised  */
/* with MMIO). A unit that is never given a host device behaves exactly as    */
/* one built before these calls existed.                                      */
/* ------------------------------------------------------------------------ */

/* The device reaches the host IOMMU through a legacy VFIO container, not iommufd: the library can
   only shadow it (through SWIFTVTD_EVENT_MAP/UNMAP to the host's notifiers), never nest it. */
#define SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER 0x1u

typedef struct swiftvtd_host_device {
    uint32_t size;              /* sizeof(swiftvtd_host_device) */
    uint32_t flags;             /* SWIFTVTD_HOST_DEVICE_* */
    int32_t iommufd;            /* the iommufd the device is bound to (-1 with LEGACY_CONTAINER) */
    int32_t device_fd;          /* the VFIO device cdev fd (VFIO_DEVICE_ATTACH/DETACH_IOMMUFD_PT) */
    uint32_t dev_id;            /* VFIO_DEVICE_BIND_IOMMUFD's out_devid */
    uint32_t ioas_id;           /* the IOAS holding guest RAM (GPA -> HVA) */
    uint32_t hwpt_id;           /* the HWPT the device is attached to now */
    uint8_t hwpt_is_nest_parent;/* that HWPT was allocated with IOMMU_HWPT_ALLOC_NEST_PARENT */
    uint8_t iova_bits;          /* 1.4, LEGACY_CONTAINER only: the container maps IOVAs below
                                   2^iova_bits (VFIO's IOVA ranges; QEMU: the HostIOMMUDevice's
                                   AW_BITS cap); 0 when not known. Ignored for iommufd, whose
                                   IOAS the library asks itself. A shadowing guest wider than
                                   it is refused, as for an IOAS. */
    uint8_t reserved[2];        /* zero */
    const char *name;           /* for messages, e.g. "0000:01:00.0"; may be NULL */
} swiftvtd_host_device;

/* Hands a VFIO host device behind requester ID sid to the library (QEMU: PCIIOMMUOps
   set_iommu_device). Before swiftvtd_machine_done it is a candidate for the decision (its host
   IOMMU is asked IOMMU_GET_HW_INFO now); after it, it is bound at once in the mode decided, or
   refused when that mode cannot carry it. Returns SWIFTVTD_OK, or an error with err (when
   err_len > 0) saying why: SWIFTVTD_EVERSION for an unknown struct size, SWIFTVTD_EINVAL for a
   malformed struct or a sid already attached, SWIFTVTD_EUNSUPPORTED when the device cannot work
   under the decided mode. The library does not take ownership of the fds. */
int swiftvtd_host_device_attach(swiftvtd_t *unit, uint16_t sid, const swiftvtd_host_device *dev,
                                char *err, size_t err_len);

/* Takes the host device behind sid back (QEMU: unset_iommu_device): its guest bindings are undone
   and what the library allocated on the host is destroyed. SWIFTVTD_ENOENT when none is attached. */
int swiftvtd_host_device_detach(swiftvtd_t *unit, uint16_t sid);

/* The host-mode property ("host-mode"). */
typedef enum swiftvtd_host_mode {
    SWIFTVTD_HOST_MODE_AUTO = 0,   /* nested when every host device can nest, else shadow */
    SWIFTVTD_HOST_MODE_NESTED = 1, /* bind guest first-level tables (FLTS); error when a device cannot */
    SWIFTVTD_HOST_MODE_SHADOW = 2, /* second-level with caching mode (SLTS + CM, no FLTS) */
} swiftvtd_host_mode;

/* Decides, once at machine-init-done and before the guest runs, how host devices are translated,
   and fixes what the guest is shown: with no host device nothing changes; when every host device
   can nest, ECAP.FLTS (no SLTS) and CAP.CM; otherwise ECAP.SLTS and CAP.CM without FLTS. The
   decision is logged (SWIFTVTD_LOG_INFO with host devices, SWIFTVTD_LOG_TRACE without: it would
   be on every run's stderr), written to decision (when len > 0) and shown in the
   state dump. Returns SWIFTVTD_OK, SWIFTVTD_EINVAL for an unknown mode or a second call, or
   SWIFTVTD_EUNSUPPORTED when a forced choice (host_mode or x-flts/caching-mode) cannot work, with
   the reason in decision. */
int swiftvtd_machine_done(swiftvtd_t *unit, uint32_t host_mode, char *decision, size_t len);

/* The mode swiftvtd_machine_done decided: SWIFTVTD_HOST_MODE_NESTED (host devices keep guest RAM
   as their address space: it is the nest parent) or SWIFTVTD_HOST_MODE_SHADOW (host devices are
   shown the IOMMU and fed MAP/UNMAP notifications); SWIFTVTD_ENOENT before the decision or when
   it found no host device. The glue arranges each VFIO device's address space by it. */
int swiftvtd_host_decision(swiftvtd_t *unit);

/* 1.2: how the host arranges each VFIO device's address space, for host_mode (the property
   swiftvtd_machine_done will be given). Before the decision every host device starts on guest RAM
   (MAP notifiers need the caching mode that the decision fixes), with a nest parent unless shadowing
   is forced; after it, the decision's view (hot-plugged devices too). */
#define SWIFTVTD_VIEW_GUEST_RAM   0x1u  /* show the device guest RAM (and the interrupt window), not the IOMMU */
#define SWIFTVTD_VIEW_NEST_PARENT 0x2u  /* its host page table must be allocated as a nest parent */
uint32_t swiftvtd_host_view(const swiftvtd_t *unit, uint32_t host_mode);

#ifdef __cplusplus
}
#endif

#endif /* SWIFTVTD_H */
