#!/usr/bin/env bash
# Builds the rk container image from the project's own binaries, with no registry:
# a root filesystem holding rk-server, rk-agent, rkctl, the few shared libraries
# they link (glibc, libgcc_s, libm) and a static busybox (a shell and the applets
# pods on the process runtime use), imported with `docker import`.
#
#   deploy/build-image.sh                     # cargo build --release, tag rk:local
#   deploy/build-image.sh --bin-dir target/debug --tag rk:test
#
# Options:
#   --tag NAME       image name (default rk:local)
#   --bin-dir DIR    take the binaries from DIR instead of building them
#                    (default: build with `cargo build --release` and use target/release)
#   --busybox FILE   a static busybox binary (default: $RK_BUSYBOX, else Debian's
#                    busybox-static fetched with `apt-get download`)
set -euo pipefail

tag=rk:local
bin_dir=
busybox=${RK_BUSYBOX:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag=$2; shift 2 ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --busybox) busybox=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -z "$bin_dir" ]; then
    (cd "$repo" && cargo build --release --bin rk-server --bin rk-agent --bin rkctl)
    bin_dir=$repo/target/release
fi
for b in rk-server rk-agent rkctl; do
    [ -x "$bin_dir/$b" ] || { echo "build-image.sh: $bin_dir/$b is missing; build it with 'cargo build --workspace --bins' or drop --bin-dir" >&2; exit 1; }
done

if [ -z "$busybox" ]; then
    busybox=/tmp/rk-busybox-static/bin/busybox
    if [ ! -x "$busybox" ]; then
        mkdir -p "$work/deb"
        (cd "$work/deb" && { apt-get download busybox-static >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get download busybox-static >/dev/null; }; })
        dpkg-deb -x "$work"/deb/busybox-static_*.deb "$work/deb/root"
        busybox=$work/deb/root/bin/busybox
    fi
fi

root=$work/root
mkdir -p "$root"/{bin,usr/local/bin,etc,tmp,var/lib/rk,var/lib/rk-agent,root}
chmod 1777 "$root/tmp"
for b in rk-server rk-agent rkctl; do
    # Debug info is most of a debug build's size and nothing a container needs.
    objcopy --strip-debug "$bin_dir/$b" "$root/usr/local/bin/$b"
    # Every shared library the binary links, at the path the loader looks for it.
    ldd "$bin_dir/$b" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
done
# The loader is at /lib64 on x86_64; Debian keeps the libraries under /lib.
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
EOF
echo 'root:x:0:' > "$root/etc/group"
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"

tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/bin' \
    --change 'WORKDIR /' \
    --change 'CMD ["rk-server", "--help"]' \
    - "$tag" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
