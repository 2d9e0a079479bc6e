#!/usr/bin/env bash
# Packs a build of decnet-updaterd as POST /update-self and `decnet-updaterd --install-build`
# take it: a gzip'd tar holding
#
#   .decnet-release.json   {"format":1,"version":V,"kind":"updater","arch":A,"helper_protocol":P}
#   bin/                   0755
#   bin/decnet-updaterd    0755, stripped
#
# reproducibly: entries sorted, owner and group 0, fixed modes, every mtime the same fixed time,
# gzip without a name or time stamp. The same binary and version give the same bytes.
#
# Writes OUT_DIR/decnet-updater-V-A.tar.gz and, beside it, its digest as `sha256sum` prints it
# (.sha256, for `sha256sum -c`); prints the digest and the path. No network.
#
# The version is --version when given; otherwise --version-base plus "+g<commit>" when
# --source-dir is a git checkout (".dirty" added when its tracked files differ from the commit),
# or the base alone. The helper protocol is read from the source's proto/helper_protocol.h unless
# --helper-protocol is given; the architecture is `uname -m` unless --arch is given.
#
# The build target `updater-build` runs this on the daemon it built (docs/operations.md).
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: pack-updater-build.sh --binary PATH --out-dir DIR
         (--version V | --version-base V [--source-dir DIR])
         [--source-dir DIR] [--helper-protocol N] [--arch A] [--strip TOOL] [--mtime EPOCH]
EOF
  exit 2
}
die() {
  echo "pack-updater-build: $*" >&2
  exit 1
}

binary="" out_dir="" version="" version_base="" source_dir="" protocol="" arch="" strip_tool="strip"
mtime="${SOURCE_DATE_EPOCH:-0}"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    --binary) binary="$2" ;;
    --out-dir) out_dir="$2" ;;
    --version) version="$2" ;;
    --version-base) version_base="$2" ;;
    --source-dir) source_dir="$2" ;;
    --helper-protocol) protocol="$2" ;;
    --arch) arch="$2" ;;
    --strip) strip_tool="$2" ;;
    --mtime) mtime="$2" ;;
    *) usage ;;
  esac
  shift 2
done
[ -n "$binary" ] && [ -n "$out_dir" ] || usage
[ -n "$strip_tool" ] || strip_tool=strip
[ -n "$version" ] || [ -n "$version_base" ] || usage

[ -f "$binary" ] && [ -x "$binary" ] || die "$binary is not an executable file"
[ -d "$out_dir" ] || die "$out_dir is not a directory"
[[ "$mtime" =~ ^[0-9]{1,12}$ ]] || die "--mtime must be seconds since the epoch, not '$mtime'"

if [ -z "$version" ]; then
  version="$version_base"
  if [ -n "$source_dir" ] && commit="$(git -C "$source_dir" rev-parse --short=12 HEAD 2>/dev/null)"; then
    version="$version+g$commit"
    # Read-only: diff-index neither refreshes nor writes the index.
    git -C "$source_dir" diff-index --quiet HEAD -- 2>/dev/null || version="$version.dirty"
  fi
fi
# The manifest's own rules (proto/release_manifest.h), checked here so that a bad value fails
# the build rather than the update.
[[ "$version" =~ ^[A-Za-z0-9._+-]{1,64}$ ]] || die "version '$version' is not 1-64 of [A-Za-z0-9._+-]"

if [ -z "$protocol" ]; then
  [ -n "$source_dir" ] || die "--helper-protocol or --source-dir is needed"
  header="$source_dir/proto/helper_protocol.h"
  protocol="$(sed -n 's/^inline constexpr int kProtocolVersion = \([0-9]*\);.*/\1/p' "$header" 2>/dev/null || true)"
  [ -n "$protocol" ] || die "no kProtocolVersion in $header"
fi
[[ "$protocol" =~ ^[1-9][0-9]{0,4}$ ]] && [ "$protocol" -le 65535 ] ||
  die "helper protocol '$protocol' is not 1..65535"

[ -n "$arch" ] || arch="$(uname -m)"
[[ "$arch" =~ ^[A-Za-z0-9_]{1,32}$ ]] || die "architecture '$arch' is not 1-32 of [A-Za-z0-9_]"

stage="$(mktemp -d "${TMPDIR:-/tmp}/pack-updater-build.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
tree="$stage/tree"
mkdir -p "$tree/bin"
cp "$binary" "$tree/bin/decnet-updaterd"
"$strip_tool" --strip-all "$tree/bin/decnet-updaterd" || die "$strip_tool failed on $binary"
printf '{"format":1,"version":"%s","kind":"updater","arch":"%s","helper_protocol":%s}\n' \
  "$version" "$arch" "$protocol" >"$tree/.decnet-release.json"
chmod 0755 "$tree/bin" "$tree/bin/decnet-updaterd"
chmod 0644 "$tree/.decnet-release.json"

name="decnet-updater-$version-$arch.tar.gz"
# ustar: no pax headers carrying access or change times; names are short.
tar -C "$tree" --format=ustar --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime="@$mtime" -cf - .decnet-release.json bin | gzip -9 -n >"$stage/$name"
digest="$(sha256sum "$stage/$name" | cut -d' ' -f1)"
chmod 0644 "$stage/$name"
mv -f "$stage/$name" "$out_dir/$name"
printf '%s  %s\n' "$digest" "$name" >"$out_dir/$name.sha256.tmp"
mv -f "$out_dir/$name.sha256.tmp" "$out_dir/$name.sha256"
echo "$digest  $out_dir/$name"
