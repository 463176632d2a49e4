#!/bin/busybox sh
# The L2 guest's init: Linux with its VT-d driver on swift-vtd (inside L1's QEMU), driving the
# devices L0 created and L1 assigned: edu through VFIO from user space (edu_vfio), the nvme disk
# through the kernel's nvme driver. Prints "edu: ..." / "nvme: ..." lines and powers off.
# Kernel arguments: svt.rounds=N (edu page rounds), svt.bigrounds=N (edu 1 MiB rounds),
# svt.pattern=TEXT (written to the nvme disk), svt.turn=N (the 1 MiB loops in turns of N pairs,
# each begun when L1 writes a line to our console; see l1-init.sh).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp

arg() { sed -n "s/.*\bsvt\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
rounds=$(arg rounds); rounds=${rounds:-100}
bigrounds=$(arg bigrounds); bigrounds=${bigrounds:-0}
pattern=$(arg pattern); pattern=${pattern:-SWIFTVTD-HOST}
turn=$(arg turn); turn=${turn:-0}

edu=; nvme=
for d in /sys/bus/pci/devices/*; do
    case "$(cat "$d/vendor"):$(cat "$d/device")" in 0x1234:0x11e8) edu=${d##*/} ;; esac
    case "$(cat "$d/class")" in 0x010802) nvme=${d##*/} ;; esac
done
echo "l2: ready edu=${edu:-none} nvme=${nvme:-none} $(grep -o 'intel_iommu=[^ ]*' /proc/cmdline) uptime $(cut -d' ' -f1 /proc/uptime)"
dmesg | grep -e 'DMAR: dmar0' -e 'DMAR-IR: Enabled' -e 'DMAR:.*fault' | sed 's/^/l2: dmesg: /'

# svt.reboot=1: the first boot ends in a reboot (QEMU resets swift-vtd, the library puts the
# devices back on their nest parents); the second one finds the marker on the nvme disk, binds
# again and runs a few edu rounds.
marker=SWIFTVTD-HOST-REBOOTED
if [ "$(arg reboot)" = 1 ]; then
    i=0
    while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
    if dd if=/dev/nvme0n1 bs=4k skip=768 count=1 2>/dev/null | grep -q "$marker"; then
        echo "l2: second boot"
        echo vfio-pci > "/sys/bus/pci/devices/$edu/driver_override"
        echo "$edu" > /sys/bus/pci/drivers_probe
        /bin/edu_vfio "$edu" 5 | sed 's/^edu:/rebootedu:/'
        echo "l2: done"
        poweroff -f
    fi
fi

if [ -n "$edu" ]; then
    echo vfio-pci > "/sys/bus/pci/devices/$edu/driver_override"
    echo "$edu" > /sys/bus/pci/drivers_probe
    /bin/edu_vfio "$edu" "$rounds" "$bigrounds" "$turn"
else
    echo "edu: FAIL no edu device in L2"
fi

if [ -n "$nvme" ]; then
    i=0
    while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
    if [ -b /dev/nvme0n1 ]; then
        # A 1 MiB pattern L0 finds in its disk image, then 1 MiB of random data read back.
        yes "$pattern" | head -c 1048576 > /tmp/pattern
        dd if=/dev/urandom of=/tmp/random bs=64k count=16 2>/dev/null
        dd if=/tmp/pattern of=/dev/nvme0n1 bs=64k oflag=direct 2>/dev/null
        dd if=/tmp/random of=/dev/nvme0n1 bs=64k seek=16 oflag=direct 2>/dev/null
        sync
        echo 3 > /proc/sys/vm/drop_caches
        dd if=/dev/nvme0n1 of=/tmp/back bs=64k skip=16 count=16 iflag=direct 2>/dev/null
        dd if=/dev/nvme0n1 of=/tmp/back-pattern bs=64k count=16 iflag=direct 2>/dev/null
        want=$(md5sum < /tmp/random); got=$(md5sum < /tmp/back)
        wantp=$(md5sum < /tmp/pattern); gotp=$(md5sum < /tmp/back-pattern)
        if [ "$want" = "$got" ] && [ "$wantp" = "$gotp" ]; then
            echo "nvme: PASS 2 MiB written and read back through the IOMMUs, md5 ${got%% *}," \
                "domain $(cat "/sys/bus/pci/devices/$nvme/iommu_group/type" 2>/dev/null || echo unknown)"
        else
            echo "nvme: FAIL read back md5 ${got%% *} / ${gotp%% *}, wrote ${want%% *} / ${wantp%% *}"
        fi
    else
        echo "nvme: FAIL /dev/nvme0n1 never appeared"
    fi
else
    echo "nvme: FAIL no nvme device in L2"
fi

# svt.hotplug=1: L1 hot-plugs an edu into the root port when asked, we use it, and L1 unplugs it.
if [ "$(arg hotplug)" = 1 ]; then
    echo "l2: hotplug ready"
    hot=; i=0
    while [ -z "$hot" ] && [ $i -lt 240 ]; do
        for d in /sys/bus/pci/devices/*; do
            [ "${d##*/}" = "$edu" ] && continue
            case "$(cat "$d/vendor"):$(cat "$d/device")" in 0x1234:0x11e8) hot=${d##*/} ;; esac
        done
        [ -z "$hot" ] && { sleep 1; i=$((i + 1)); }
    done
    if [ -n "$hot" ]; then
        echo "l2: hot-plugged edu $hot after $i s"
        echo vfio-pci > "/sys/bus/pci/devices/$hot/driver_override"
        echo "$hot" > /sys/bus/pci/drivers_probe
        /bin/edu_vfio "$hot" 5 | sed 's/^edu:/hotedu:/'
        echo "l2: unplug ready"
        i=0
        while [ -e "/sys/bus/pci/devices/$hot" ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
        sleep 5
        [ -e "/sys/bus/pci/devices/$hot" ] && echo "l2: unplug timed out" || echo "l2: unplugged after $i s"
    else
        echo "hotedu: FAIL no edu appeared in 240 s"
    fi
fi
dmesg | grep -i -e 'DMAR:.*fault' -e 'nvme.*timeout' -e 'vfio' -e 'pciehp' | tail -8 | sed 's/^/l2: dmesg: /'
if [ "$(arg reboot)" = 1 ]; then
    echo "$marker" | dd of=/dev/nvme0n1 bs=4k seek=768 conv=sync oflag=direct 2>/dev/null
    echo "l2: rebooting"
    reboot -f
fi
echo "l2: done"
poweroff -f
