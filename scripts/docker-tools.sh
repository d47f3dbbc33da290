#!/usr/bin/env bash
# Install what `make test-docker` needs, only what is missing, from Debian packages alone:
#   1. a Docker engine (docker.io: dockerd, containerd, runc) and debootstrap;
#   2. a compose v2 CLI plugin. Bookworm has none (its docker-compose 1.29 rejects today's
#      compose files), so Debian trixie's `docker-compose` package is fetched with apt, which
#      checks it against the archive keyring, using a private apt state directory and a trixie
#      source list built from this machine's own Debian mirror. The system's apt configuration,
#      lists and caches are not touched. The plugin goes into $DOCKER_CONFIG/cli-plugins/.
# Idempotent: a rerun with everything in place does nothing and touches no network.
set -euo pipefail

CACHE_DIR="${SCALR_DOCKER_CACHE:-/var/cache/scalr-docker-test}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

say() { printf 'docker-tools: %s\n' "$*"; }
die() {
    say "$*" >&2
    exit 1
}

need_root() {
    [[ "$(id -u)" -eq 0 ]] || die "needs root to $1: run it with sudo"
    command -v apt-get >/dev/null 2>&1 || die "needs a Debian/Ubuntu machine with apt-get to $1"
}

# The Debian mirror this machine already uses (never a host spelled out here); DEBIAN_MIRROR overrides.
debian_mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    local uri
    uri="$({
        sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | grep -v -e security -e '^$' | head -n1)"
    [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list*: set DEBIAN_MIRROR=<url of a Debian mirror>"
    echo "${uri%/}"
}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    need_root "install ${missing[*]}"
    say "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The docker.io package ships a client too; an existing newer one earlier on PATH is fine.
command -v docker >/dev/null 2>&1 || die "docker.io is installed but no docker client is on PATH"

if docker compose version >/dev/null 2>&1; then
    exit 0
fi

need_root "fetch the compose v2 plugin"
say "fetching the compose v2 plugin from Debian trixie's docker-compose package (private apt state)"
apt_dir="$CACHE_DIR/apt-trixie"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$apt_dir/download"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r "$keyring" ]] || die "missing $keyring: apt-get install debian-archive-keyring"
echo "deb [signed-by=$keyring] $(debian_mirror) trixie main" >"$apt_dir/sources.list"
apt_opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
    -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Get::List-Cleanup=0"
)
apt-get "${apt_opts[@]}" update -qq
rm -f "$apt_dir/download"/*.deb
# apt downloads as its unprivileged _apt user when it can write there.
chown _apt "$apt_dir/download" 2>/dev/null || true
(cd "$apt_dir/download" && apt-get "${apt_opts[@]}" download docker-compose >/dev/null)
deb="$(ls "$apt_dir/download"/docker-compose_*.deb)"
unpacked="$(mktemp -d)"
trap 'rm -rf "$unpacked"' EXIT
dpkg-deb -x "$deb" "$unpacked"
plugin="$(find "$unpacked" -path '*cli-plugins/docker-compose' -type f | head -n1)"
[[ -n "$plugin" ]] || die "$(basename "$deb") holds no cli-plugins/docker-compose"
mkdir -p "$PLUGIN_DIR"
install -m 0755 "$plugin" "$PLUGIN_DIR/docker-compose"
docker compose version >/dev/null 2>&1 || die "$PLUGIN_DIR/docker-compose does not run here"
say "installed $(docker compose version) from $(basename "$deb") into $PLUGIN_DIR"
