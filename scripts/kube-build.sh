#!/usr/bin/env bash
# Builds a real kube-apiserver and kube-controller-manager (Kubernetes v1.20.2) from Debian's
# `kubernetes` source package, offline (Debian's golang-go in GOPATH mode, vendored deps), once:
# the binaries are cached under ${CENSUS_KUBE_CACHE:-$HOME/.cache/census}/kubernetes-<debian
# source version>/bin. The last (only) line on stdout is that directory; logs go to stderr.
#
#   bin=$(bash scripts/kube-build.sh) && "$bin/kube-apiserver" --version
#
# Installs (as root, when missing) golang-go, golang-github-modern-go-reflect2-dev, dpkg-dev and
# etcd-server (the tests run Debian's etcd beside the API server). The source comes through
# `apt-get source` with deb-src entries derived at run time from this machine's own deb entries,
# in a private apt dir: the system's apt configuration and lists are left untouched.
# Background and measurements: shared/reference/real-kube-apiserver.md.
#
# Environment:
#   CENSUS_KUBE_CACHE            cache root (default $HOME/.cache/census)
#   CENSUS_KUBE_DEBIAN_VERSION   Debian source version to build (default below; if the archive
#                                no longer has it, the newest `kubernetes` source is used)
set -euo pipefail
# The whole script is one brace group, which bash reads to its end before running any of it:
# a running build is not derailed when this file is edited in place.
{

readonly default_version='1.20.5+really1.20.2-1.1+deb12u1'
readonly cmds=(kube-apiserver kube-controller-manager)
readonly apt_packages=(golang-go golang-github-modern-go-reflect2-dev dpkg-dev etcd-server)

# Everything but the final answer goes to stderr.
exec 3>&1 1>&2

log() { printf 'kube-build: %s\n' "$*" >&2; }
die() { printf 'kube-build: error: %s\n' "$*" >&2; exit 1; }

cache_root=${CENSUS_KUBE_CACHE:-${HOME:?HOME is not set; set CENSUS_KUBE_CACHE}/.cache/census}
wanted_version=${CENSUS_KUBE_DEBIAN_VERSION:-$default_version}

# Prints the bin dir of a complete cached build of Debian source version $1, or fails.
cached_bin() {
  local bin=$cache_root/kubernetes-$1/bin c
  for c in "${cmds[@]}"; do
    [[ -x $bin/$c ]] || return 1
  done
  printf '%s\n' "$bin"
}

answer() { printf '%s\n' "$1" >&3; exit 0; }

# Fast path: no apt, no go, no lock.
if bin=$(cached_bin "$wanted_version"); then
  answer "$bin"
fi

start=$SECONDS
phase() { log "[$((SECONDS - start)) s] $*"; }

# ---------------------------------------------------------------------------------------------
# Tools.
find_missing() {
  missing=()
  local p
  for p in "${apt_packages[@]}"; do
    # shellcheck disable=SC2016 # ${Status} is dpkg-query's, not the shell's
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != *' installed' ]]; then
      missing+=("$p")
    fi
  done
}
mkdir -p "$cache_root"
find_missing
if ((${#missing[@]})); then
  if ((EUID != 0)); then
    die "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
  fi
  # Callers started together (parallel tests on a new machine) install one at a time.
  exec 8>"$cache_root/.apt.lock"
  flock 8
  find_missing
  if ((${#missing[@]})); then
    phase "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q -o DPkg::Lock::Timeout=300 update || die "apt-get update failed"
    apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "${missing[@]}" ||
      die "apt-get install ${missing[*]} failed"
  fi
  exec 8>&-
fi

# Debian's default Go (1.19 on bookworm), whatever else is on PATH.
export PATH=/usr/lib/go/bin:$PATH
command -v go >/dev/null || die "no go toolchain after installing golang-go"
reflect2_src=/usr/share/gocode/src/github.com/modern-go/reflect2
[[ -f $reflect2_src/reflect2.go ]] ||
  die "$reflect2_src/reflect2.go not found (package golang-github-modern-go-reflect2-dev)"

# ---------------------------------------------------------------------------------------------
# Scratch space: a private apt dir now; the build dir once the version (and its lock) is known.
aptdir=$(mktemp -d "${TMPDIR:-/tmp}/kube-build-apt.XXXXXX")
work=
cleanup() { rm -rf "$aptdir" ${work:+"$work"}; }
trap cleanup EXIT
# Long steps run as a waited-for child so a signal stops them at once (bash would otherwise
# run the trap only when the foreground command ends); the child and its descendants (the go
# command's compilers and linkers) get SIGTERM (a background child ignores SIGINT). Nothing is
# published unless every step succeeded.
child=
run() {
  "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=
  return "$rc"
}
descendants() {
  local p
  for p in $(pgrep -P "$1" || true); do
    printf '%s\n' "$p"
    descendants "$p"
  done
}
on_signal() {
  if [[ -n $child ]]; then
    local pids
    mapfile -t pids < <(descendants "$child")
    kill -TERM "$child" "${pids[@]}" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  log "interrupted; nothing was published"
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# ---------------------------------------------------------------------------------------------
# deb-src entries derived from this machine's deb entries, restricted to the release's own
# suites (codename, codename-updates, codename-security, ...) so third-party repositories
# without sources are left out; all of them if that restriction leaves nothing.
# shellcheck disable=SC1091
codename=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}") || codename=

derive_one_line() { # codename file...  (one-line format)
  local c=$1; shift
  awk -v c="$c" '
    { sub(/#.*/, "") }
    $1 != "deb" { next }
    {
      i = 2
      if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      suite = $(i + 1)
      if (c != "" && suite != c && index(suite, c "-") != 1) next
      $1 = "deb-src"; print
    }' "$@"
}

derive_deb822() { # codename file...  (deb822 .sources format)
  local c=$1; shift
  awk -v c="$c" '
    BEGIN { RS = ""; FS = "\n" }
    {
      out = ""; isdeb = 0; ok = (c == ""); enabled = 1
      for (i = 1; i <= NF; i++) {
        l = $i
        if (l ~ /^#/) continue
        low = tolower(l)
        if (low ~ /^types:/) {
          n = split(substr(l, 7), t, /[ \t]+/)
          for (j = 1; j <= n; j++) if (t[j] == "deb") isdeb = 1
          l = "Types: deb-src"
        } else if (low ~ /^enabled:/) {
          if (low ~ /no/) enabled = 0
        } else if (low ~ /^suites:/ && c != "") {
          n = split(substr(l, 8), t, /[ \t]+/); s = ""
          for (j = 1; j <= n; j++) if (t[j] == c || index(t[j], c "-") == 1) s = s " " t[j]
          ok = (s != ""); l = "Suites:" s
        }
        out = out l "\n"
      }
      if (isdeb && ok && enabled) printf "%s\n", out
    }' "$@"
}

mkdir -p "$aptdir/sources.list.d" "$aptdir/lists/partial"
: >"$aptdir/sources.list"
write_deb_src() { # codename
  local one=() deb822=() f
  [[ -f /etc/apt/sources.list ]] && one+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list; do [[ -f $f ]] && one+=("$f"); done
  for f in /etc/apt/sources.list.d/*.sources; do [[ -f $f ]] && deb822+=("$f"); done
  : >"$aptdir/sources.list.d/derived.list"
  : >"$aptdir/sources.list.d/derived.sources"
  if ((${#one[@]})); then derive_one_line "$1" "${one[@]}" >"$aptdir/sources.list.d/derived.list"; fi
  if ((${#deb822[@]})); then derive_deb822 "$1" "${deb822[@]}" >"$aptdir/sources.list.d/derived.sources"; fi
  [[ -s $aptdir/sources.list.d/derived.list || -s $aptdir/sources.list.d/derived.sources ]]
}
if ! write_deb_src "$codename"; then
  write_deb_src "" || die "no deb entries in /etc/apt/sources.list or /etc/apt/sources.list.d/"
fi

apt_opts=(
  -o "Dir::Etc::SourceList=$aptdir/sources.list"
  -o "Dir::Etc::SourceParts=$aptdir/sources.list.d"
  -o "Dir::State::Lists=$aptdir/lists"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  -o "APT::Sandbox::User=root"
)

phase "fetching source indices (private apt dir $aptdir)"
run apt-get "${apt_opts[@]}" -q update ||
  log "warning: apt-get update reported errors (continuing if the kubernetes source is found)"

mapfile -t versions < <(apt-cache "${apt_opts[@]}" showsrc --only-source kubernetes 2>/dev/null |
  sed -n 's/^Version: //p')
if ((${#versions[@]} == 0)); then
  log "derived deb-src entries:"
  cat "$aptdir"/sources.list.d/* >&2
  die "no 'kubernetes' source package found through the deb-src entries derived from /etc/apt"
fi
version=
for v in "${versions[@]}"; do
  if [[ $v == "$wanted_version" ]]; then version=$v; break; fi
  if [[ -z $version ]] || dpkg --compare-versions "$v" gt "$version"; then version=$v; fi
done
if [[ $version != "$wanted_version" ]]; then
  log "warning: kubernetes source $wanted_version is not available; building $version"
fi

verdir=$cache_root/kubernetes-$version
mkdir -p "$verdir"

# One build per version at a time; a second caller waits, then finds the cache filled.
exec 9>"$verdir/.lock"
if ! flock -n 9; then
  log "another build of $version is running; waiting for it"
  flock 9
fi
if bin=$(cached_bin "$version"); then
  answer "$bin"
fi
# Leftovers of killed builds (never a published bin dir), then this build's dir, on the cache's
# file system so the finished bin dir is renamed into place.
rm -rf "$verdir"/build.*
work=$(mktemp -d "$verdir/build.XXXXXX")

phase "apt-get source kubernetes=$version"
mkdir -p "$work/src"
cd "$work/src"
run apt-get "${apt_opts[@]}" -q source --only-source "kubernetes=$version" ||
  die "apt-get source kubernetes=$version failed"
cd /
tree_src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' -print -quit)
[[ -n $tree_src && -d $tree_src/vendor ]] || die "unpacked source tree with vendor/ not found in $work/src"

# The tree lives at its import path in a private GOPATH.
export GOPATH=$work/gopath
tree=$GOPATH/src/k8s.io/kubernetes
mkdir -p "$GOPATH/src/k8s.io"
mv "$tree_src" "$tree"
rm -rf "$work/src" "$aptdir"

# ---------------------------------------------------------------------------------------------
# Patches for a Go >= 1.18 toolchain.
phase "patching vendor/ (reflect2 1.0.2, openapi null test)"
vendored_reflect2=$tree/vendor/github.com/modern-go/reflect2
[[ -d $vendored_reflect2 ]] || die "$vendored_reflect2 not found"
rm -rf "$vendored_reflect2"
cp -rL "$reflect2_src" "$vendored_reflect2"

old_null='data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))'
for f in vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go \
  vendor/github.com/go-openapi/validate/type.go; do
  [[ -f $tree/$f ]] || die "$f not found in the source tree"
  if grep -qF "$old_null" "$tree/$f"; then
    sed -i 's/data == nil || reflect\.DeepEqual(reflect\.Zero(reflect\.TypeOf(data)), reflect\.ValueOf(data))/data == nil/' "$tree/$f"
    ! grep -qF "$old_null" "$tree/$f" || die "could not patch the null test in $f"
  else
    log "note: $f has no old null test (already fixed upstream?)"
  fi
done

# ---------------------------------------------------------------------------------------------
# Go environment: offline, GOPATH mode, static, cache kept across runs.
export GO111MODULE=off CGO_ENABLED=0 GOPROXY=off GOSUMDB=off GOFLAGS= GOTOOLCHAIN=local
export GOCACHE=$cache_root/gocache GOTMPDIR=$work/gotmp
mkdir -p "$GOCACHE" "$GOTMPDIR"
cd "$tree"

# ---------------------------------------------------------------------------------------------
# pkg/generated/openapi/zz_generated.openapi.go, as build/root/Makefile.generated_files makes it
# (KUBE target): every package (staging/src/X named vendor/X) with a file carrying a
# `// +k8s:` tag and `+k8s:openapi-gen=`, except code-generator and sample-apiserver.
phase "building openapi-gen"
run go build -trimpath -o "$work/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen ||
  die "go build of openapi-gen failed (see above)"

phase "generating pkg/generated/openapi"
mapfile -t openapi_dirs < <(
  find -H . \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune -o -type f -name '*.go' -print0 |
    xargs -0 grep -l --null '^// *+k8s:' |
    xargs -0 grep -l '+k8s:openapi-gen=' |
    sed 's|^\./||; s|^staging/src/|vendor/|; s|/[^/]*$||' |
    grep -v -e '^vendor/k8s\.io/code-generator/' -e '^vendor/k8s\.io/sample-apiserver/' |
    LC_ALL=C sort -u
)
((${#openapi_dirs[@]} > 50)) || die "found only ${#openapi_dirs[@]} packages tagged +k8s:openapi-gen="
inputs=$(printf 'k8s.io/kubernetes/%s,' "${openapi_dirs[@]}")
run "$work/openapi-gen" \
  --logtostderr \
  -i "${inputs%,}" \
  -o "$GOPATH/src" \
  -p k8s.io/kubernetes/pkg/generated/openapi \
  -O zz_generated.openapi \
  -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
  -r "$work/violations.report" ||
  die "openapi-gen failed (see above)"
[[ -s pkg/generated/openapi/zz_generated.openapi.go ]] || die "openapi-gen wrote no pkg/generated/openapi/zz_generated.openapi.go"
diff "$work/violations.report" api/api-rules/violation_exceptions.list >&2 ||
  die "openapi-gen's API rule violations differ from api/api-rules/violation_exceptions.list"

# ---------------------------------------------------------------------------------------------
# Version stamp as hack/lib/version.sh would set it for this (git-archive) tree.
upstream=${version#*:}
upstream=${upstream#*really}
upstream=${upstream%%-*}
upstream=${upstream%%+*}
[[ $upstream =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "cannot read an upstream version from $version"
git_major=${BASH_REMATCH[1]} git_minor=${BASH_REMATCH[2]}
git_commit=$(sed -n "s/^ *KUBE_GIT_COMMIT='\([0-9a-f]\{40\}\)'.*/\1/p" hack/lib/version.sh | head -n1)
epoch=$(dpkg-parsechangelog -l debian/changelog -S Timestamp 2>/dev/null) || epoch=0
build_date=$(date -u --date="@$epoch" +%Y-%m-%dT%H:%M:%SZ)
ldflags=(-s -w)
add_ldflag() {
  ldflags+=("-X=k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version.$1=$2"
    "-X=k8s.io/kubernetes/vendor/k8s.io/component-base/version.$1=$2")
}
add_ldflag gitVersion "v$upstream"
add_ldflag gitMajor "$git_major"
add_ldflag gitMinor "$git_minor"
add_ldflag buildDate "$build_date"
if [[ -n $git_commit ]]; then
  add_ldflag gitCommit "$git_commit"
  add_ldflag gitTreeState archive
fi

phase "go build ${cmds[*]} (v$upstream; cold on 2 cores takes a few minutes)"
out=$work/bin
mkdir -p "$out"
pkgs=()
for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
run go build -trimpath -ldflags "${ldflags[*]}" -o "$out/" "${pkgs[@]}" ||
  die "go build ${cmds[*]} failed (see above)"

for c in "${cmds[@]}"; do
  [[ -x $out/$c ]] || die "go build produced no $c"
  v=$("$out/$c" --version 2>&1) || die "$c --version failed: $v"
  [[ $v == *"v$upstream"* ]] || die "$c --version says '$v', expected v$upstream"
  log "$c: $v, $(du -h "$out/$c" | cut -f1)"
done

# Atomic publish: the bin dir appears complete or not at all.
rm -rf "$verdir/bin"
mv -T "$out" "$verdir/bin"
cd /
phase "done"
answer "$verdir/bin"
}
