/*
 * LD_PRELOAD shim for the host testbed: counts the ioctls of one process (the L1 QEMU with
 * swift-vtd and VFIO) into a file other processes read while it runs, so a test can take the
 * counts before and after a phase of the guest's work.
 *
 * SWIFTVTD_IOCTL_COUNTS=FILE names the file: 257 little-endian uint64 counters, one per
 * request number of ioctl type ';' (0x3B: VFIO and iommufd), then one for every other ioctl.
 * `ioctl_count FILE` (built from the same source with -DREPORT) prints the non-zero ones.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 257
#define IOCTL_TYPE_VFIO_IOMMUFD 0x3B

#ifndef REPORT
static uint64_t *counts;
static int (*real_ioctl)(int, unsigned long, void *);

__attribute__((constructor)) static void open_counts(void)
{
    const char *path = getenv("SWIFTVTD_IOCTL_COUNTS");
    int fd;

    real_ioctl = (int (*)(int, unsigned long, void *))dlsym(RTLD_NEXT, "ioctl");
    if (!path || (fd = open(path, O_RDWR | O_CREAT, 0644)) < 0) {
        return;
    }
    if (ftruncate(fd, SLOTS * sizeof(uint64_t)) == 0) {
        void *p = mmap(NULL, SLOTS * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        counts = p == MAP_FAILED ? NULL : p;
    }
    close(fd);
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (counts) {
        unsigned slot = ((request >> 8) & 0xFF) == IOCTL_TYPE_VFIO_IOMMUFD ? (request & 0xFF) : SLOTS - 1;
        __atomic_fetch_add(&counts[slot], 1, __ATOMIC_RELAXED);
    }
    return real_ioctl(fd, request, arg);
}
#else
static const char *name(unsigned nr)
{
    static const char *iommufd[] = {
        "IOMMU_DESTROY", "IOMMU_IOAS_ALLOC", "IOMMU_IOAS_ALLOW_IOVAS", "IOMMU_IOAS_COPY",
        "IOMMU_IOAS_IOVA_RANGES", "IOMMU_IOAS_MAP", "IOMMU_IOAS_UNMAP", "IOMMU_OPTION",
        "IOMMU_VFIO_IOAS", "IOMMU_HWPT_ALLOC", "IOMMU_GET_HW_INFO", "IOMMU_HWPT_SET_DIRTY_TRACKING",
        "IOMMU_HWPT_GET_DIRTY_BITMAP", "IOMMU_HWPT_INVALIDATE", "IOMMU_FAULT_QUEUE_ALLOC",
        "IOMMU_IOAS_MAP_FILE", "IOMMU_VIOMMU_ALLOC", "IOMMU_VDEVICE_ALLOC", "IOMMU_IOAS_CHANGE_PROCESS",
    };
    static char other[32];

    if (nr >= 0x80 && nr < 0x80 + sizeof(iommufd) / sizeof(iommufd[0])) {
        return iommufd[nr - 0x80];
    }
    if (nr == SLOTS - 1) {
        return "other";
    }
    snprintf(other, sizeof(other), "VFIO_BASE+%u", nr - 100);
    return other;
}

/* Prints "NAME COUNT" for every non-zero counter, then "iommufd TOTAL" and "vfio TOTAL". */
int main(int argc, char **argv)
{
    uint64_t counts[SLOTS] = { 0 }, iommufd = 0, vfio = 0;
    FILE *f;

    if (argc != 2 || !(f = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: ioctl_count FILE\n");
        return 2;
    }
    if (fread(counts, sizeof(uint64_t), SLOTS, f) != SLOTS) {
        fprintf(stderr, "ioctl_count: %s is short\n", argv[1]);
        return 1;
    }
    for (unsigned nr = 0; nr < SLOTS; nr++) {
        if (counts[nr]) {
            printf("%s %llu\n", name(nr), (unsigned long long)counts[nr]);
            if (nr >= 0x80 && nr < SLOTS - 1) {
                iommufd += counts[nr];
            } else if (nr < SLOTS - 1) {
                vfio += counts[nr];
            }
        }
    }
    printf("iommufd %llu\nvfio %llu\n", (unsigned long long)iommufd, (unsigned long long)vfio);
    return 0;
}
#endif
