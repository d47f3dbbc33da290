#!/usr/bin/env bash
# Local stand-ins for the two base images the project's files name, python:3.11-slim (the
# template's Dockerfile) and redis:7 (services/redis), for Docker engines that cannot pull.
# Test-only: used by `make test-docker`; see docs/docker.md.
#
#   1. rootfs: `debootstrap --variant=minbase bookworm` with the packages below, saved as a
#      tarball in $SCALR_DOCKER_CACHE (default /var/cache/scalr-docker-test), so a rerun on
#      this machine, even with an emptied Docker engine, skips debootstrap;
#   2. `docker import` of that tarball, then tests/docker/stand-ins/<kind>.Dockerfile built
#      with the classic builder and tagged with the name the project's files use.
#
# An image under that name which is not ours (no org.scalr.stand-in label: a real pulled
# image) is used as it is and never replaced. Ours is rebuilt only when its inputs change
# (stand-in Dockerfile, package list, the host's local CA certificates). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE_DIR="${SCALR_DOCKER_CACHE:-/var/cache/scalr-docker-test}"
STAND_INS=tests/docker/stand-ins
LABEL=org.scalr.stand-in
LOCAL_CA_DIR=/usr/local/share/ca-certificates

# kind | tag the project uses | Debian packages on top of minbase
IMAGES=(
    "python|python:3.11-slim|python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
    "redis|redis:7|redis-server"
)

say() { printf 'docker-stand-ins: %s\n' "$*"; }
die() {
    say "$*" >&2
    exit 1
}

debian_mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    {
        sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | grep -v -e security -e '^$' | head -n1
}

local_ca_files() { find "$LOCAL_CA_DIR" -maxdepth 2 -name '*.crt' -type f 2>/dev/null | sort; }

# What the built image depends on; stored in its label, compared on the next run.
inputs_hash() {
    local kind=$1 packages=$2
    {
        cat "$STAND_INS/$kind.Dockerfile"
        echo "$packages"
        if [[ "$kind" == python ]]; then local_ca_files | xargs -r cat; fi
    } | sha256sum | cut -c1-16
}

rootfs_tarball() {
    local kind=$1 packages=$2
    echo "$CACHE_DIR/bookworm-$kind-$(echo "$packages" | sha256sum | cut -c1-8).rootfs.tar"
}

# debootstrap into a scratch dir, then tar it (atomically) next to it. Runs in the background.
make_rootfs() {
    local kind=$1 packages=$2 tarball=$3
    local dir="$CACHE_DIR/rootfs-$kind.tmp"
    rm -rf "$dir"
    say "$kind: debootstrap --variant=minbase bookworm with $packages (about 2 minutes)"
    if ! debootstrap --variant=minbase --include="$packages" bookworm "$dir" "$(debian_mirror)" \
        >"$CACHE_DIR/debootstrap-$kind.log" 2>&1; then
        say "$kind: debootstrap failed; last lines of $CACHE_DIR/debootstrap-$kind.log:" >&2
        tail -n 20 "$CACHE_DIR/debootstrap-$kind.log" >&2
        return 1
    fi
    # A package's postinst may have started a daemon inside the chroot: stop those by PID.
    local pid
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        if [[ "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$dir" ]]; then
            say "$kind: stopping pid $pid started inside the chroot ($(tr '\0' ' ' <"/proc/$pid/cmdline"))"
            kill "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* \
        "$dir"/usr/share/man/* "$dir"/var/log/*.log
    tar --numeric-owner -C "$dir" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$dir"
    say "$kind: saved $(du -h "$tarball" | cut -f1) rootfs to $tarball"
}

command -v docker >/dev/null 2>&1 || die "no docker client: run scripts/docker-tools.sh"
docker info >/dev/null 2>&1 || die "no Docker engine answers: start dockerd (make test-docker does it)"

# 1. Which images need building, and which rootfs tarballs are missing (built in parallel).
todo=()
pids=()
for spec in "${IMAGES[@]}"; do
    IFS='|' read -r kind tag packages <<<"$spec"
    want="$(inputs_hash "$kind" "$packages")"
    if have="$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$tag" 2>/dev/null)"; then
        if [[ -z "$have" ]]; then
            say "$tag: an image not built here is present; using it as it is"
            continue
        elif [[ "$have" == "$want" ]]; then
            say "$tag: stand-in up to date"
            continue
        fi
    fi
    todo+=("$spec")
    tarball="$(rootfs_tarball "$kind" "$packages")"
    if ! docker image inspect "scalr-stand-in/bookworm-$kind:rootfs" >/dev/null 2>&1 && [[ ! -s "$tarball" ]]; then
        command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing: run scripts/docker-tools.sh"
        [[ "$(id -u)" -eq 0 ]] || die "$kind: debootstrap needs root: run it with sudo"
        mkdir -p "$CACHE_DIR"
        make_rootfs "$kind" "$packages" "$tarball" &
        pids+=($!)
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || die "building a rootfs failed (see above)"
done

# 2. Import the rootfs (when the engine does not hold it yet) and build the stand-in on it.
for spec in "${todo[@]}"; do
    IFS='|' read -r kind tag packages <<<"$spec"
    rootfs_image="scalr-stand-in/bookworm-$kind:rootfs"
    if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
        tarball="$(rootfs_tarball "$kind" "$packages")"
        say "$kind: docker import $tarball"
        docker import "$tarball" "$rootfs_image" >/dev/null
    fi
    context="$(mktemp -d)"
    mkdir "$context/local-ca"
    if [[ "$kind" == python ]]; then local_ca_files | xargs -r cp -t "$context/local-ca"; fi
    say "$tag: building $STAND_INS/$kind.Dockerfile"
    if ! DOCKER_BUILDKIT=0 docker build -q -f "$STAND_INS/$kind.Dockerfile" \
        --label "$LABEL=$(inputs_hash "$kind" "$packages")" -t "$tag" "$context" >/dev/null 2>"$context/err"; then
        cat "$context/err" >&2
        rm -rf "$context"
        die "$tag: building the stand-in failed"
    fi
    rm -rf "$context"
    say "$tag: stand-in ready ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=si)B)"
done
