#!/bin/busybox sh
# /bench-init of the make bench-guest boots (Tests/guest/bench-guest.py), booted with
# rdinit=/bench-init. The script appends it as a second cpio archive to the guest suite's
# initramfs, whose busybox and modules it uses; the suite's /init is not touched.
# It loads the modules, reads /dev/vda with O_DIRECT svt.rounds times (svt.count blocks of 4 KiB
# each), prints "BENCH start <uptime>" and "BENCH end <uptime>" around the reads, and powers off.
/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
echo 1 > /proc/sys/kernel/printk

arg() { sed -n "s/.*\\<svt\\.$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
COUNT=$(arg count); COUNT=${COUNT:-16384}
ROUNDS=$(arg rounds); ROUNDS=${ROUNDS:-3}

for m in $(cat /modules/order); do insmod "/modules/$m" 2>/dev/null; done
i=0
while [ ! -e /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /dev/vda ]; then
    echo "BENCH error no /dev/vda"
else
    # One read first, outside the window: the disk's first pages, the driver's first mappings.
    dd if=/dev/vda of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null
    echo "BENCH start $(cut -d' ' -f1 /proc/uptime)"
    r=0 bad=0
    while [ $r -lt "$ROUNDS" ]; do
        if ! dd if=/dev/vda of=/dev/null bs=4k count="$COUNT" iflag=direct 2>/tmp/dd.err; then
            bad=$((bad + 1))
            echo "BENCH ddfail read $r: $(grep -v records /tmp/dd.err | tr '\n' ' ')"
        fi
        r=$((r + 1))
    done
    echo "BENCH end $(cut -d' ' -f1 /proc/uptime) failed $bad"
    faults=$(dmesg | grep -cE 'DMAR: \[(DMA|INTR)|fault reason')
    echo "BENCH faults $faults"
    [ "$bad" = 0 ] || dmesg | grep -iE 'error|fail|dmar|virtio' | tail -8 | sed 's/^/BENCH dmesg /'
    echo "BENCH domain $(cat /sys/block/vda/device/../iommu_group/type 2>/dev/null || echo none)"
fi
poweroff -f
