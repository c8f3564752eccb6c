#!/usr/bin/env bash
# Builds the census images locally; nothing is pulled (there may be no registry):
#   census:TAG, census-sidecar:TAG, census-web:TAG   FROM scratch, static musl binaries
#   census-lb:TAG                                     Debian's nginx + census-sidecar, docker-imported
# Usage: docker/build.sh [IMAGE...]   (default: all four; e.g. `docker/build.sh census`)
# TAG defaults to dev. Needs cargo, docker and (for census-lb) nginx on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
TAG="${TAG:-dev}"
WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=(census census-sidecar census-web census-lb)
wants() { local w; for w in "${WANT[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
for w in "${WANT[@]}"; do
  case "$w" in census|census-sidecar|census-web|census-lb) ;; *) echo "build.sh: unknown image $w" >&2; exit 2 ;; esac
done
# The crates whose binaries the wanted images hold.
PACKAGES=()
wants census && PACKAGES+=(-p census-controller)
{ wants census-sidecar || wants census-lb; } && PACKAGES+=(-p census-sidecar)
wants census-web && PACKAGES+=(-p census-demo-web)
TARGET=x86_64-unknown-linux-musl

# musl gives static binaries with a resolver that needs no NSS modules. Without the musl target
# (no network for rustup), fall back to glibc linked statically.
RUSTFLAGS_STATIC=""
if ! rustup target list --installed | grep -qx "$TARGET" && ! rustup target add "$TARGET"; then
  TARGET=x86_64-unknown-linux-gnu
  RUSTFLAGS_STATIC="-C target-feature=+crt-static"
  echo "build.sh: no musl target; building static glibc binaries instead" >&2
fi
# ring (TLS for the operator's Kubernetes client) compiles C for the target: musl needs musl-gcc.
if [ "$TARGET" = x86_64-unknown-linux-musl ] && ! command -v x86_64-linux-musl-gcc >/dev/null 2>&1; then
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools; }; then
    TARGET=x86_64-unknown-linux-gnu
    RUSTFLAGS_STATIC="-C target-feature=+crt-static"
    echo "build.sh: no musl C compiler; building static glibc binaries instead" >&2
  fi
fi
if wants census-lb && ! command -v nginx >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
fi
# Small images: no debug info, stripped (this profile override applies to this build only).
CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=true RUSTFLAGS="${RUSTFLAGS:-} $RUSTFLAGS_STATIC" \
  cargo build --release --target "$TARGET" "${PACKAGES[@]}" --bins
bin="target/$TARGET/release"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
export DOCKER_BUILDKIT=0

image() { # image NAME DOCKERFILE BINARY
  mkdir -p "$stage/$1"
  cp "$bin/$3" "$stage/$1/"
  docker build --quiet -t "$1:$TAG" -f "docker/$2" "$stage/$1" >/dev/null
  echo "built $1:$TAG"
}
wants census && image census census.Dockerfile census
wants census-sidecar && image census-sidecar sidecar.Dockerfile census-sidecar
wants census-web && image census-web web.Dockerfile census-demo-web
wants census-lb || exit 0

# census-lb: a root filesystem holding nginx, the shared libraries it links, and census-sidecar.
root="$stage/lb-root"
nginx_bin="$(command -v nginx)"
mkdir -p "$root"/{etc/nginx/conf.d,etc/census,var/lib/nginx/{body,proxy,fastcgi,uwsgi,scgi},var/log/nginx,var/lock,run,tmp,usr/sbin}
chmod 1777 "$root/tmp"
cp "$nginx_bin" "$root/usr/sbin/nginx"
ldd "$nginx_bin" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  cp -L --parents "$lib" "$root/"
done
cp /etc/nginx/mime.types "$root/etc/nginx/"
cp docker/lb/nginx.conf "$root/etc/nginx/nginx.conf"
cp docker/lb/lb.conf.hbs docker/lb/render.json "$root/etc/census/"
cp "$bin/census-sidecar" "$root/census-sidecar"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" -cf "$stage/lb.tar" .
docker import \
  --change 'ENTRYPOINT ["/census-sidecar", "render", "-config", "/etc/census/render.json"]' \
  --change 'EXPOSE 80' \
  --change 'ENV PATH=/usr/sbin:/usr/bin' \
  "$stage/lb.tar" "census-lb:$TAG" >/dev/null
echo "built census-lb:$TAG"
