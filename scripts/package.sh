#!/usr/bin/env bash
# Builds the Debian packages easedge_<version>_amd64.deb and easedge-bench_<version>_amd64.deb with dpkg-deb.
# Usage: scripts/package.sh [--build-dir DIR] [--no-build] [--output DIR] [--no-lintian]
#   --build-dir DIR  CMake build to package (default build-package/: Release with Debian's hardening flags
#                    from dpkg-buildflags, configured and built here when missing)
#   --no-build       package the binaries already in --build-dir as they are (the package test uses its own build)
#   --output DIR     where the .deb files go (default dist/)
#   --no-lintian     skip the lintian check (it runs by default; an error there fails the script)
# Prints the paths of the two .deb files, one per line, on stdout. Needs scripts/install-deps.sh --with-packaging.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=$ROOT/build-package
OUT=$ROOT/dist
BUILD_IT=1
LINTIAN=1
DEBIAN_REVISION=1   # bump when only the packaging changes
while (($#)); do
  case "$1" in
    --build-dir) BUILD=$(realpath -m "$2"); shift 2 ;;
    --no-build) BUILD_IT=0; shift ;;
    --output) OUT=$(realpath -m "$2"); shift 2 ;;
    --no-lintian) LINTIAN=0; shift ;;
    *) echo "package.sh: unknown option '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb fakeroot dpkg-shlibdeps strip chrpath; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool is missing: run scripts/install-deps.sh --with-packaging" >&2; exit 1; }
done

if ((BUILD_IT)); then
  if [ ! -f "$BUILD/build.ninja" ]; then
    # Debian's hardening flags (fortify, stack protector, relro, bindnow) on top of the Release build.
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEASEDGE_BUILD_TESTS=OFF \
      -DCMAKE_CXX_FLAGS="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CXXFLAGS) $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)" \
      -DCMAKE_EXE_LINKER_FLAGS="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)" >/dev/null
  fi
  cmake --build "$BUILD" --target easedge easbench standin-exchange -j"$(nproc)" >&2
fi

# The version is the one CMake's project() gave the build (config/version.h.in); the binary must agree.
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[ -n "$VERSION" ] || { echo "package.sh: no CMAKE_PROJECT_VERSION in $BUILD/CMakeCache.txt (configure the build first)" >&2; exit 1; }
EASEDGE=$BUILD/proxy/easedge
EASBENCH=$BUILD/bench/easbench/easbench
STANDIN=$BUILD/bench/standin-exchange
for bin in "$EASEDGE" "$EASBENCH" "$STANDIN"; do
  [ -x "$bin" ] || { echo "package.sh: $bin is missing (build it, or drop --no-build)" >&2; exit 1; }
done
reported=$("$EASEDGE" --version)
[ "$reported" = "easedge $VERSION" ] || { echo "package.sh: $EASEDGE says '$reported', the build is $VERSION (stale binary?)" >&2; exit 1; }
DEB_VERSION=$VERSION-$DEBIAN_REVISION
changelog_version=$(sed -n '1s/^easedge (\([^)]*\)).*/\1/p' packaging/debian/changelog)
[ "$changelog_version" = "$DEB_VERSION" ] || {
  echo "package.sh: packaging/debian/changelog starts at $changelog_version, the package is $DEB_VERSION: add an entry" >&2
  exit 1
}

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$OUT"

# Stages the files every package carries: its doc folder with copyright and changelog.Debian.gz.
stage_common() {
  local root=$1 name=$2
  install -d -m 0755 "$root/DEBIAN" "$root/usr/share/doc/$name"
  install -m 0644 packaging/debian/copyright "$root/usr/share/doc/$name/copyright"
  gzip -9n <packaging/debian/changelog >"$root/usr/share/doc/$name/changelog.Debian.gz"
  chmod 0644 "$root/usr/share/doc/$name/changelog.Debian.gz"
}

# Installs a manual page gzipped as dh_installman would (packaging/man/NAME.SECTION).
install_man() {
  local page=$1 root=$2 section=${1##*.}
  install -d -m 0755 "$root/usr/share/man/man$section"
  gzip -9n <"packaging/man/$page" >"$root/usr/share/man/man$section/$page.gz"
  chmod 0644 "$root/usr/share/man/man$section/$page.gz"
}

# The package is built outside the Debian archive: its first changelog entry closes no ITP bug.
install_overrides() {
  local root=$1 name=$2
  install -d -m 0755 "$root/usr/share/lintian/overrides"
  printf '# Not uploaded to the Debian archive: no ITP bug to close.
%s: initial-upload-closes-no-bugs
' "$name" \
    >"$root/usr/share/lintian/overrides/$name"
  chmod 0644 "$root/usr/share/lintian/overrides/$name"
}

# Installs a binary stripped as dh_strip would, without the RUNPATH CMake gives build trees (pkg-config's
# -L/usr/lib/x86_64-linux-gnu/mit-krb5: the run-time libraries are in the default search path).
install_binary() {
  install -D -m 0755 "$1" "$2"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$2"
  chrpath -d "$2" >/dev/null
}

# Writes DEBIAN/control from packaging/debian/NAME.control.in: shared-library dependencies from
# dpkg-shlibdeps (it wants a debian/control in its working folder), size from the staged tree.
write_control() {
  local root=$1 name=$2
  shift 2
  local shl=$STAGE/shlibdeps-$name
  mkdir -p "$shl/debian"
  printf 'Source: easedge\n\nPackage: %s\nArchitecture: amd64\n' "$name" >"$shl/debian/control"
  local depends
  depends=$(cd "$shl" && dpkg-shlibdeps -O "$@" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  [ -n "$depends" ] || { echo "package.sh: dpkg-shlibdeps found no dependencies for $name" >&2; exit 1; }
  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  sed -e "s/@VERSION@/$DEB_VERSION/" -e "s/@INSTALLED_SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    "packaging/debian/$name.control.in" >"$root/DEBIAN/control"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) \
    >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
}

build_deb() {
  local root=$1 name=$2
  local deb=$OUT/${name}_${DEB_VERSION}_amd64.deb
  fakeroot dpkg-deb --build -Zxz "$root" "$deb" >/dev/null
  echo "$deb"
}

# easedge: the proxy, its unit, the commented configuration (a conffile), the operator documentation.
P=$STAGE/easedge
stage_common "$P" easedge
install_binary "$EASEDGE" "$P/usr/sbin/easedge"
install_man easedge.8 "$P"
install_overrides "$P" easedge
install -D -m 0644 packaging/easedge.service "$P/lib/systemd/system/easedge.service"
install -D -m 0644 packaging/easedge.yaml "$P/etc/easedge/easedge.yaml"
install -m 0644 README.md docs/*.md "$P/usr/share/doc/easedge/"
install -m 0644 packaging/debian/conffiles "$P/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$P/DEBIAN/"
write_control "$P" easedge "$P/usr/sbin/easedge"

# easedge-bench: the load harness and the stand-in Exchange (labs and benchmarks, never a production edge).
B=$STAGE/easedge-bench
stage_common "$B" easedge-bench
install_binary "$EASBENCH" "$B/usr/bin/easbench"
install_binary "$STANDIN" "$B/usr/bin/standin-exchange"
install_man easbench.1 "$B"
install_man standin-exchange.1 "$B"
install_overrides "$B" easedge-bench
write_control "$B" easedge-bench "$B/usr/bin/easbench" "$B/usr/bin/standin-exchange"

debs=("$(build_deb "$P" easedge)" "$(build_deb "$B" easedge-bench)")
if ((LINTIAN)); then
  command -v lintian >/dev/null || { echo "package.sh: lintian is missing: run scripts/install-deps.sh --with-packaging" >&2; exit 1; }
  # Errors fail the build; warnings and notes are printed for the record.
  lintian --fail-on error --tag-display-limit 0 "${debs[@]}" >&2
fi
printf '%s\n' "${debs[@]}"
