#!/usr/bin/env bash
# Build the serving image with buildah (Dockerfile at the repository root): `make image`.
#   IMAGE   the image's name (default: heartbeat)
#   BASE    the image to build from (default: python:3.11-slim, from a registry). BASE=debian-local makes one
#           from Debian's own packages with debootstrap, for machines that reach Debian's mirror but no registry.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-heartbeat}
BASE=${BASE:-python:3.11-slim}

if [ "$BASE" = "debian-local" ]; then
  BASE=localhost/heartbeat-debian-base
  if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    rootfs=$(mktemp -d /var/tmp/heartbeat-rootfs.XXXXXX)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
      "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    # This machine's own certificate authorities (e.g. a site proxy's), so pip inside reaches PyPI as here.
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
      cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
      chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    ctr=$(buildah from scratch)
    cp -a "$rootfs"/. "$(buildah mount "$ctr")"/
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
    buildah commit -q "$ctr" "$BASE" >/dev/null
    buildah rm "$ctr" >/dev/null
    rm -rf "$rootfs"
  fi
fi

buildah build --isolation chroot --layers --build-arg BASE="$BASE" -t "$IMAGE" .
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"
