/*
 * The L2 guest's edu DMA test: QEMU's edu device, assigned from L0 through L1, driven from L2
 * user space through VFIO's type1 container. Every VFIO_IOMMU_MAP_DMA / UNMAP_DMA is a map or
 * unmap in the L2 kernel's VT-d driver (its first-level tables under nesting, second-level under
 * shadowing), so each round exercises the whole chain:
 *   L2 driver -> swift-vtd in L1's QEMU -> L1 iommufd -> L1 VT-d driver -> swift-vtd in L0 -> edu.
 *
 * Usage: edu_vfio BDF ROUNDS [BIG_ROUNDS [TURN]]
 * Prints "edu: ..." lines; the last one is "edu: PASS ..." or "edu: FAIL ...". Exit status 0 on
 * PASS. With TURN > 0 the 1 MiB loops run in turns of TURN pairs, each begun when a line arrives
 * on standard input (L1 hands turns to its cases in rotation, so that cases compared with each
 * other run their pairs interleaved in time rather than minutes apart).
 *
 * edu's registers (QEMU docs/specs/edu.rst): 0x00 identification 0x010000ed, 0x80 DMA source,
 * 0x88 DMA destination, 0x90 DMA count, 0x98 DMA command (bit 0 start, bit 1 edu -> RAM);
 * its DMA buffer is at 0x40000 in its own address space, 4 KiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EDU_ID          0x00
#define EDU_DMA_SRC     0x80
#define EDU_DMA_DST     0x88
#define EDU_DMA_COUNT   0x90
#define EDU_DMA_CMD     0x98
#define EDU_CMD_START   0x1
#define EDU_CMD_TO_RAM  0x2
#define EDU_BUFFER      0x40000
#define PAGE            4096

/* IOVAs the test maps; far from each other so no mapping covers another. */
#define IOVA_SRC        0x10000000ull
#define IOVA_DST        0x20000000ull
#define IOVA_UNMAPPED   0x30000000ull
#define IOVA_BIG        0x40000000ull
#define BIG             (1u << 20)

static int container, device;
static volatile uint8_t *bar0;

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    printf("edu: FAIL ");
    vprintf(fmt, ap);
    printf(" (errno %d: %s)\n", errno, strerror(errno));
    va_end(ap);
    fflush(stdout);
    exit(1);
}

/* edu takes only 4-byte accesses below 0x80 (an 8-byte read there returns all ones). */
static uint32_t reg_read32(unsigned off) { return *(volatile uint32_t *)(bar0 + off); }
static uint64_t reg_read(unsigned off) { return *(volatile uint64_t *)(bar0 + off); }
static void reg_write(unsigned off, uint64_t v) { *(volatile uint64_t *)(bar0 + off) = v; }

static void dma_map_size(void *buf, uint64_t iova, uint64_t size, uint32_t flags)
{
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map), .flags = flags, .vaddr = (uintptr_t)buf, .iova = iova, .size = size,
    };

    if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map)) {
        die("VFIO_IOMMU_MAP_DMA iova 0x%" PRIx64, iova);
    }
}

static void dma_map(void *buf, uint64_t iova, uint32_t flags) { dma_map_size(buf, iova, PAGE, flags); }

static void dma_unmap_size(uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = iova, .size = size };

    if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) || unmap.size != size) {
        die("VFIO_IOMMU_UNMAP_DMA iova 0x%" PRIx64, iova);
    }
}

static void dma_unmap(uint64_t iova) { dma_unmap_size(iova, PAGE); }

/* One edu DMA of a page, waited for by polling (edu clears START when done). */
static void edu_dma(uint64_t src, uint64_t dst, uint64_t cmd)
{
    reg_write(EDU_DMA_SRC, src);
    reg_write(EDU_DMA_DST, dst);
    reg_write(EDU_DMA_COUNT, PAGE);
    reg_write(EDU_DMA_CMD, cmd | EDU_CMD_START);
    for (long spins = 0; reg_read(EDU_DMA_CMD) & EDU_CMD_START; spins++) {
        if (spins > 100000000L) {
            die("edu DMA never completed");
        }
    }
}

static void fill(uint8_t *p, unsigned round)
{
    for (unsigned i = 0; i < PAGE; i++) {
        p[i] = (uint8_t)(i * 7 + round * 13 + 1);
    }
}

static void open_device(const char *bdf)
{
    char path[256], link[256];
    struct vfio_group_status status = { .argsz = sizeof(status) };
    struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
    struct vfio_region_info config = { .argsz = sizeof(config), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    ssize_t n;
    int group;
    uint16_t command;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        die("%s has no IOMMU group", bdf);
    }
    link[n] = 0;
    snprintf(path, sizeof(path), "/dev/vfio/%s", basename(link));
    container = open("/dev/vfio/vfio", O_RDWR);
    group = open(path, O_RDWR);
    if (container < 0 || group < 0) {
        die("opening /dev/vfio/vfio or %s", path);
    }
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) || !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        die("group %s is not viable", path);
    }
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) ||
        ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
        die("setting up the type1 container");
    }
    device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (device < 0) {
        die("VFIO_GROUP_GET_DEVICE_FD %s", bdf);
    }
    if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &bar) || bar.size < 0x100 ||
        !(bar.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
        die("BAR0 of %s cannot be mapped", bdf);
    }
    bar0 = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, device, bar.offset);
    if (bar0 == MAP_FAILED) {
        die("mmap BAR0");
    }
    /* Bus mastering on, or edu's DMA never leaves the device. */
    if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &config) ||
        pread(device, &command, 2, config.offset + 4) != 2) {
        die("reading the command register");
    }
    command |= 0x4;
    if (pwrite(device, &command, 2, config.offset + 4) != 2) {
        die("writing the command register");
    }
}

static double elapsed_us(const struct timespec *t0, const struct timespec *t1)
{
    return ((t1->tv_sec - t0->tv_sec) * 1e9 + (t1->tv_nsec - t0->tv_nsec)) / 1e3;
}

/* The page frame behind each of the COUNT pages at P (/proc/self/pagemap: bits 54:0 with bit
 * 63 set when present); false when they cannot be read (frames show as 0 without
 * CAP_SYS_ADMIN). */
static bool page_frames(const uint8_t *p, unsigned count, uint64_t *frames)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    off_t at = (off_t)((uintptr_t)p / PAGE * sizeof(uint64_t));
    bool ok = fd >= 0 && pread(fd, frames, count * sizeof(uint64_t), at) == (ssize_t)(count * sizeof(uint64_t));

    if (fd >= 0) {
        close(fd);
    }
    for (unsigned i = 0; ok && i < count; i++) {
        ok = (frames[i] >> 63) && (frames[i] & ((1ull << 55) - 1));
        frames[i] &= (1ull << 55) - 1;
    }
    return ok;
}

/* How many physically contiguous runs the BIG bytes at BUF have: how many maps (and, with
 * caching mode, page-selective invalidations) L2's VFIO makes for them. 0 when unknown. */
static unsigned contiguous_runs(const uint8_t *buf)
{
    uint64_t frames[BIG / PAGE];
    unsigned runs = 1;

    if (!page_frames(buf, BIG / PAGE, frames)) {
        return 0;
    }
    for (unsigned i = 1; i < BIG / PAGE; i++) {
        runs += frames[i] != frames[i - 1] + 1;
    }
    return runs;
}

static int by_frame(const void *a, const void *b)
{
    uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];

    return x < y ? -1 : x > y;
}

/*
 * BIG bytes none of whose neighbouring pages are physically adjacent, so that every case's L2
 * maps them page by page (BIG / PAGE maps and invalidations per pair): left to the allocator,
 * an anonymous buffer gets whatever runs it happens to get, and cases compared with each other
 * would do different work. Twice as many pages are taken, sorted by frame, and every other one
 * is moved into place in frame order: neighbours are then at least two frames apart.
 */
static uint8_t *scattered_buffer(void)
{
    enum { N = 2 * BIG / PAGE };
    uint8_t *pool = mmap(NULL, 2 * BIG, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    uint8_t *buf = mmap(NULL, BIG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t frames[N], order[N][2];

    if (pool == MAP_FAILED || buf == MAP_FAILED) {
        die("mmap the scattered buffer");
    }
    for (unsigned i = 0; i < N; i++) {
        pool[i * PAGE] = 1; /* a page of its own, not the shared zero page */
    }
    if (!page_frames(pool, N, frames)) {
        printf("edu: page frames unreadable: the scattered buffer is what the allocator gave\n");
        munmap(buf, BIG);
        munmap(pool + BIG, BIG);
        return pool;
    }
    for (unsigned i = 0; i < N; i++) {
        order[i][0] = frames[i];
        order[i][1] = i;
    }
    qsort(order, N, sizeof(order[0]), by_frame);
    for (unsigned k = 0; k < BIG / PAGE; k++) {
        if (mremap(pool + order[2 * k][1] * PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
                   buf + k * PAGE) == MAP_FAILED) {
            die("mremap a page of the scattered buffer");
        }
    }
    for (unsigned k = 0; k < BIG / PAGE; k++) {
        munmap(pool + order[2 * k + 1][1] * PAGE, PAGE);
    }
    return buf;
}

/* One pair: map the 1 MiB at BUF at IOVA_BIG, DMA edu's buffer into its last page (it must then
 * equal EXPECT), unmap. */
static void big_pair(uint8_t *buf, const uint8_t *expect, unsigned round, const char *what)
{
    memset(buf + BIG - PAGE, 0, PAGE);
    dma_map_size(buf, IOVA_BIG, BIG, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    edu_dma(EDU_BUFFER, IOVA_BIG + BIG - PAGE, EDU_CMD_TO_RAM);
    if (memcmp(buf + BIG - PAGE, expect, PAGE)) {
        errno = 0;
        die("1 MiB%s round %u: the DMA into the last page did not land", what, round);
    }
    dma_unmap_size(IOVA_BIG, BIG);
}

/* Waits for L1 to hand this case its turn: a line on standard input (the L2 console). */
static void await_turn(const char *name, unsigned turn)
{
    char line[64];

    printf("edu: %s turn %u ready\n", name, turn);
    if (!fgets(line, sizeof(line), stdin)) {
        errno = 0;
        die("%s turn %u: standard input ended before L1 gave the turn", name, turn);
    }
}

/*
 * ROUNDS pairs (big_pair), all at once or, with TURN > 0, in turns of TURN pairs (await_turn
 * before each; "edu: NAME turn K: N pairs, T us" after it, the time of that turn alone).
 * Prints "edu: NAME start" and "edu: NAME done" around the loop (L1 snapshots its ioctl counts
 * there; the pauses let the snapshots bracket it) and the time per pair, waits not included.
 */
static void big_pairs(uint8_t *buf, const uint8_t *expect, unsigned rounds, unsigned turn, const char *name,
                      const char *what)
{
    struct timespec t0, t1;
    double us = 0;
    unsigned r = 0;

    printf("edu: %s start\n", name);
    fflush(stdout);
    sleep(3);
    for (unsigned k = 0; r < rounds; k++) {
        unsigned n = turn && rounds - r > turn ? turn : rounds - r;

        if (turn) {
            await_turn(name, k);
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned end = r + n; r < end; r++) {
            big_pair(buf, expect, r, what);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        us += elapsed_us(&t0, &t1);
        if (turn) {
            printf("edu: %s turn %u: %u pairs, %.1f us\n", name, k, n, elapsed_us(&t0, &t1));
        }
    }
    printf("edu: %s done\n", name);
    fflush(stdout);
    sleep(3);
    printf("edu: %u rounds of 1 MiB%s map, DMA, unmap: %.1f us per 1 MiB map+unmap pair\n", rounds, what,
           us / rounds);
}

int main(int argc, char **argv)
{
    unsigned rounds = argc > 2 ? (unsigned)atoi(argv[2]) : 100;
    unsigned big_rounds = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
    unsigned turn = argc > 4 ? (unsigned)atoi(argv[4]) : 0;
    uint8_t *pages, *src[2], *dst[2];
    struct timespec t0, t1;
    double us;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s BDF [ROUNDS [BIG_ROUNDS [TURN]]]\n", argv[0]);
        return 2;
    }
    open_device(argv[1]);
    if (reg_read32(EDU_ID) != 0x010000ed) {
        errno = 0;
        die("identification register reads 0x%x", reg_read32(EDU_ID));
    }
    pages = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (pages == MAP_FAILED) {
        die("mmap buffers");
    }
    for (int i = 0; i < 2; i++) {
        src[i] = pages + (2 * i) * PAGE;
        dst[i] = pages + (2 * i + 1) * PAGE;
    }

    /*
     * Each round maps a source and a destination page, copies source -> edu -> destination and
     * compares, then unmaps both. Rounds alternate between two buffer pairs at the same IOVAs:
     * a translation that outlived its unmap would put this round's data into the last round's
     * destination, and the compare fails.
     */
    /* L1 counts the host's ioctls as these lines pass: the pauses keep the loop between them. */
    printf("edu: start\n");
    sleep(3);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned r = 0; r < rounds; r++) {
        uint8_t *s = src[r & 1], *d = dst[r & 1];

        fill(s, r);
        memset(d, 0, PAGE);
        dma_map(s, IOVA_SRC, VFIO_DMA_MAP_FLAG_READ);
        dma_map(d, IOVA_DST, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
        edu_dma(IOVA_SRC, EDU_BUFFER, 0);
        edu_dma(EDU_BUFFER, IOVA_DST, EDU_CMD_TO_RAM);
        if (memcmp(s, d, PAGE)) {
            errno = 0;
            die("round %u: the destination differs from the source", r);
        }
        dma_unmap(IOVA_SRC);
        dma_unmap(IOVA_DST);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("edu: loop done\n");
    sleep(3);
    us = elapsed_us(&t0, &t1);
    printf("edu: %u rounds of map+map, 2 DMAs, unmap+unmap: %.1f us per map+unmap pair\n",
           rounds, us / (2.0 * rounds));

    /*
     * A DMA to an IOVA whose mapping was removed must not land: map, use, unmap the
     * destination, then point edu at it again.
     */
    memset(dst[0], 0, PAGE);
    dma_map(dst[0], IOVA_UNMAPPED, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    dma_map(src[0], IOVA_SRC, VFIO_DMA_MAP_FLAG_READ);
    fill(src[0], 77);
    edu_dma(IOVA_SRC, EDU_BUFFER, 0);
    edu_dma(EDU_BUFFER, IOVA_UNMAPPED, EDU_CMD_TO_RAM);
    if (memcmp(src[0], dst[0], PAGE)) {
        errno = 0;
        die("the DMA before the unmap did not land");
    }
    dma_unmap(IOVA_UNMAPPED);
    memset(dst[0], 0, PAGE);
    fill(src[0], 78);
    edu_dma(IOVA_SRC, EDU_BUFFER, 0);
    edu_dma(EDU_BUFFER, IOVA_UNMAPPED, EDU_CMD_TO_RAM);
    for (unsigned i = 0; i < PAGE; i++) {
        if (dst[0][i]) {
            errno = 0;
            die("a DMA to the unmapped IOVA 0x%llx landed (byte %u is 0x%02x)", IOVA_UNMAPPED, i, dst[0][i]);
        }
    }
    dma_unmap(IOVA_SRC);

    /*
     * 1 MiB map+unmap pairs, as a driver maps a large buffer: the host's cost per pair is what
     * differs most between nesting (no map ioctl, one invalidation) and shadowing (every page
     * the guest maps reaches the host). Twice: over anonymous pages no two of which are
     * physically adjacent (scattered_buffer: VFIO type1 maps each page on its own), and over
     * half a 2 MiB huge page (hugepages=1 on L2's command line), physically contiguous (one map
     * of 1 MiB).
     */
    if (big_rounds) {
        uint8_t *scattered = scattered_buffer();
        uint8_t *huge = mmap(NULL, 2 * BIG, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_HUGETLB, -1, 0);

        if (huge == MAP_FAILED) {
            die("mmap a 2 MiB huge page (is hugepages=1 on the kernel command line?)");
        }
        if (turn) {
            /* The turns' lines are L1's alone: the console must not echo them back into ours. */
            struct termios t;

            if (tcgetattr(0, &t) == 0) {
                t.c_lflag &= ~(tcflag_t)ECHO;
                tcsetattr(0, TCSANOW, &t);
            }
        }
        printf("edu: 1 MiB buffers: scattered in %u runs of contiguous pages, contiguous in %u (0: unknown)\n",
               contiguous_runs(scattered), contiguous_runs(huge));
        big_pairs(scattered, src[0], big_rounds, turn, "big", "");
        big_pairs(huge, src[0], big_rounds, turn, "contig", ", contiguous");
    }
    printf("edu: PASS %u rounds compared; the DMA to unmapped IOVA 0x%llx did not land; %u 1 MiB rounds\n",
           rounds, IOVA_UNMAPPED, big_rounds);
    return 0;
}
