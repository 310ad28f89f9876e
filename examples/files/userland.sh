#!/bin/sh
# A minimal userland for an image built from scratch, copied from this
# machine (no network needed): a shell and a few tools with their
# libraries, and the accounts. Usage: userland.sh ROOT
set -e
root="$1"
mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/root" "$root/home/outscale" "$root/tmp" "$root/dev" "$root/proc" "$root/sys"
for p in sh cat ls mkdir chmod rm; do
  src=$(command -v $p)
  cp "$src" "$root/bin/$p"
  for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
printf 'root:x:0:0:root:/root:/bin/sh\noutscale:x:1000:1000::/home/outscale:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\noutscale:x:1000:\n' > "$root/etc/group"
echo from-scratch > "$root/etc/hostname"
