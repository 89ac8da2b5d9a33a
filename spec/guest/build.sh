#!/bin/sh
# spec/guest/build.sh — build (once, cached) the tiny Linux guest the specs boot in QEMU:
# Debian 12's cloud kernel (downloaded with apt-get, extracted, not installed) and a
# busybox-static initramfs with the virtio PCI and network modules and spec/guest/init. Prints the cache
# directory, which holds vmlinuz and initrd.img. Needs apt-get, dpkg-deb, busybox-static
# and cpio (.ci/deps installs them); no root needed for the build itself.
#
#   dir=$(spec/guest/build.sh)   # LUASWITCH_GUEST_CACHE overrides the cache directory
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${LUASWITCH_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/luaswitch/guest}
mkdir -p "$cache"
meta=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1)
[ -n "$meta" ] || { echo "build.sh: no linux-image-cloud-amd64 package known to apt (apt-get update?)" >&2; exit 1; }
stamp="$meta $(cksum <"$here/init" | cut -d' ' -f1) $(cksum <"$0" | cut -d' ' -f1)"
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ] && [ -f "$cache/vmlinuz" ] && [ -f "$cache/initrd.img" ]; then
  echo "$cache"
  exit 0
fi
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download -q "$meta" >/dev/null 2>&1 ) ||
  { echo "build.sh: apt-get download $meta failed" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
ver=${meta#linux-image-}
cp "$work/k/boot/vmlinuz-$ver" "$work/vmlinuz"
root="$work/root"
mkdir -p "$root/bin" "$root/lib/modules"
cp /bin/busybox "$root/bin/busybox"
ldd /bin/busybox 2>&1 | grep -q "not a dynamic executable" ||
  { echo "build.sh: /bin/busybox is not static (apt-get install busybox-static)" >&2; exit 1; }
ln -s busybox "$root/bin/sh"
# virtio over PCI and its network driver, in load order (those built in are not found)
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
  f=$(find "$work/k/lib/modules/$ver" -name "$m.ko*" | head -1)
  [ -n "$f" ] || continue
  echo "$m" >>"$root/lib/modules/order"
  case "$f" in
    *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
done
cp "$here/init" "$root/init"
chmod 0755 "$root/init"
( cd "$root" && find . | cpio -o -H newc --quiet | gzip -9 ) >"$work/initrd.img"
mv "$work/vmlinuz" "$cache/vmlinuz"
mv "$work/initrd.img" "$cache/initrd.img"
echo "$stamp" >"$cache/stamp"
echo "$cache"
