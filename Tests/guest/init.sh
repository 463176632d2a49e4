#!/bin/busybox sh
# /init of the SwiftVTd test initramfs. Exercises DMA through the vIOMMU with every device
# the host attached, then prints one "REPORT key=value" line per result and powers off.
# The host (Tests/guest/run-guest-tests.py) compares the values with what it expects.
# Kernel command line: svt.port=<http port on the host's loopback> svt.file=<file name>
/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
# Keep kernel messages off the console from here on, so report lines stay whole
# (svt.verbose=1 keeps them, for debugging a boot).
grep -q 'svt\.verbose=1' /proc/cmdline || echo 1 > /proc/sys/kernel/printk

report() { echo "REPORT $1=$2"; }

arg() { sed -n "s/.*\\<svt\\.$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
PORT=$(arg port)
FILE=$(arg file)

report kernel "$(uname -r)"
report boot_uptime "$(cut -d' ' -f1 /proc/uptime)"

loaded=0; failed=""
for m in $(cat /modules/order); do
    if insmod "/modules/$m" 2>/dev/null; then loaded=$((loaded + 1)); else failed="$failed,${m%.ko}"; fi
done
report modules_loaded "$loaded"
[ -n "$failed" ] && report modules_failed "${failed#,}"

# Wait (bounded) for the devices this test drives.
wait_for() {
    i=0
    while [ $i -lt 100 ]; do [ -e "$1" ] && return 0; sleep 0.1; i=$((i + 1)); done
    return 1
}

# Disk test: the first 8 MiB hold data whose checksum the host knows; a 1 MiB pattern is
# written at 12 MiB with O_DIRECT and read back with O_DIRECT, so both directions are DMA.
disk_test() {
    name="$1" dev="$2"
    if ! wait_for "$dev"; then report "${name}_present" 0; return; fi
    report "${name}_present" 1
    report "${name}_md5" "$(timeout 60 dd if="$dev" bs=1M count=8 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
    yes "SWIFTVTD-PATTERN-$name" | head -c 1048576 > /tmp/pattern.$name
    report "${name}_written_md5" "$(md5sum < /tmp/pattern.$name | cut -d' ' -f1)"
    if timeout 60 dd if=/tmp/pattern.$name of="$dev" bs=1M seek=12 oflag=direct conv=fsync 2>/dev/null; then
        report "${name}_write" ok
    else
        report "${name}_write" failed
    fi
    report "${name}_readback_md5" "$(timeout 60 dd if="$dev" bs=1M skip=12 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
}

# svt.migrate=1: the host migrates this guest while it does disk DMA (on virtio-blk only:
# QEMU's nvme cannot migrate, so that machine has none). The guest prints "MIGRATE loop
# started", then reads 8 MiB and writes and reads back 1 MiB at 13 MiB (two alternating
# patterns) over and over, printing "MIGRATE iteration N" after each
# pass, until the host writes "SVTGO" at 15 MiB of the virtio-blk image; the host does that only
# once the destination QEMU runs. So the VM stops inside the loop and resumes inside it.
migrate_loop() {
    wait_for /dev/vda || { report migrate_loop no-vda; return; }
    ref_vblk=$(dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
    report migrate_ref_vblk_md5 "$ref_vblk"
    yes SVT-LOOP-A | head -c 1048576 > /tmp/loop.0
    yes SVT-LOOP-B | head -c 1048576 > /tmp/loop.1
    loop_md5_0=$(md5sum < /tmp/loop.0 | cut -d' ' -f1)
    loop_md5_1=$(md5sum < /tmp/loop.1 | cut -d' ' -f1)
    echo "MIGRATE loop started"
    n=0 bad=0 go=0
    while [ $n -lt 400 ]; do
        n=$((n + 1))
        [ "$(dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)" = "$ref_vblk" ] || bad=$((bad + 1))
        p=$((n % 2))
        eval want=\$loop_md5_$p
        dd if=/tmp/loop.$p of=/dev/vda bs=1M seek=13 oflag=direct conv=fsync 2>/dev/null || bad=$((bad + 1))
        [ "$(dd if=/dev/vda bs=1M skip=13 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)" = "$want" ] || bad=$((bad + 1))
        echo "MIGRATE iteration $n bad $bad"
        if [ "$(dd if=/dev/vda bs=4096 skip=3840 count=1 iflag=direct 2>/dev/null | head -c 5)" = SVTGO ]; then
            go=1; break
        fi
    done
    report migrate_loop_iterations "$n"
    report migrate_loop_last_pattern "$p"
    report migrate_loop_errors "$bad"
    report migrate_loop_go "$go"
}

MIGRATE=$(arg migrate)
[ "$MIGRATE" = 1 ] && migrate_loop

# svt.only=net (or disks) narrows a boot to one part, for bisecting a problem.
ONLY=$(arg only)
if [ "$ONLY" != net ]; then
    disk_test vblk /dev/vda
    [ "$MIGRATE" = 1 ] || disk_test nvme /dev/nvme0n1
fi

# Network test: the virtio-net card is on slirp network 10.0.2.0/24 and the e1000e card on
# 10.0.3.0/24; slirp maps .2 of each to the host's loopback, where the test's HTTP server runs.
net_test() {
    name="$1" driver="$2" net="$3"
    ifc=""
    i=0
    while [ -z "$ifc" ] && [ $i -lt 50 ]; do
        for n in /sys/class/net/*; do
            d=$(readlink "$n/device/driver" 2>/dev/null) || continue
            [ "${d##*/}" = "$driver" ] && ifc="${n##*/}"
        done
        [ -z "$ifc" ] && { sleep 0.1; i=$((i + 1)); }
    done
    if [ -z "$ifc" ]; then report "${name}_present" 0; return; fi
    report "${name}_present" 1
    ip addr add "$net.15/24" dev "$ifc"
    ip link set "$ifc" up
    if [ -n "$PORT" ]; then
        # The link needs a moment to come up (e1000e reports carrier after autonegotiation).
        # (No timeout here: busybox 1.35's wget segfaults with -T; the host bounds the boot.)
        md5=""; tries=0
        while [ -z "$md5" ] && [ $tries -lt 10 ]; do
            out=$(wget -q -O - "http://$net.2:$PORT/$FILE" 2>/tmp/wget.err | md5sum | cut -d' ' -f1)
            [ "$out" != "d41d8cd98f00b204e9800998ecf8427e" ] && md5="$out" || { sleep 1; tries=$((tries + 1)); }
        done
        report "${name}_http_md5" "${md5:-none}"
        [ -z "$md5" ] && report "${name}_http_error" "$(tr '\n' ' ' < /tmp/wget.err) url=http://$net.2:$PORT/$FILE tries=$tries link=$(cat /sys/class/net/$ifc/operstate)"
        # A received frame whose length the device wrote somewhere else reads as too short
        # (virtio-net counts it in rx_length_errors and drops it).
        report "${name}_rx_errors" "$(cat /sys/class/net/$ifc/statistics/rx_errors)/$(cat /sys/class/net/$ifc/statistics/rx_length_errors)"
    fi
    ip link set "$ifc" down
}

if [ "$ONLY" != disks ]; then
    net_test net_virtio virtio_net 10.0.2
    net_test net_e1000e e1000e 10.0.3
fi

# Which domain type each DMA device ended up in (DMA, DMA-FQ, identity, blocked).
for d in /sys/bus/pci/devices/*; do
    drv=$(readlink "$d/driver" 2>/dev/null) || continue
    drv="${drv##*/}"
    if [ "$drv" = virtio-pci ]; then
        for v in "$d"/virtio*; do vd=$(readlink "$v/driver" 2>/dev/null) && drv="${vd##*/}"; done
    fi
    case "$drv" in virtio_blk|virtio_net|nvme|e1000e) ;; *) continue ;; esac
    if [ -e "$d/iommu_group/type" ]; then
        report "domain_$drv" "$(cat "$d/iommu_group/type")"
    else
        report "domain_$drv" none
    fi
done
report iommu_groups "$(ls /sys/kernel/iommu_groups 2>/dev/null | wc -l)"
report ir_msi_vectors "$(grep -c 'IR-' /proc/interrupts)"

# The intel-iommu driver's log lines, then the faults it reported.
dmesg | grep -E 'DMAR|IOMMU|iommu|remapping' | sed 's/^/DMESG /'
faults=$(dmesg | grep -cE 'DMAR: \[(DMA|INTR)|DRHD: handling fault|fault reason|INTR-REMAP')
report dmar_faults "$faults"
dmesg | grep -E 'DMAR: \[(DMA|INTR)|fault reason' | head -5 | sed 's/^/FAULT /'
report uptime "$(cut -d' ' -f1 /proc/uptime)"
report done 1
sync
poweroff -f
