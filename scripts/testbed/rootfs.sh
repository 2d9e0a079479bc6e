#!/usr/bin/env bash
# Builds, or reuses from the cache, the root filesystem of the throw-away systemd containers
# the integration tests boot (scripts/testbed/container.sh).
#
#   scripts/testbed/rootfs.sh [--print-path] [--rebuild]
#
# The result is a debootstrap "minbase" Debian 12 with systemd, D-Bus, polkitd and the
# worker package's run-time dependencies (INCLUDE below), plus
# a user `decnet` (uid 990) for the units under test. It is cached in
# $DECNET_TESTBED_CACHE (default /var/cache/decnet-updater) as testbed-rootfs/ and reused
# while its recipe stamp matches this script's recipe. It is built in a temporary directory
# and renamed into place only when complete, so an interrupted build is never reused.
# Containers never modify it (container.sh boots it with an overlay).
#
# The mirror is read from this machine's own apt configuration; no mirror is named here.
# Prints the root filesystem's path on its last line of stdout. Idempotent; safe to run
# concurrently (a lock file serialises builders).
set -euo pipefail

# Bump when the recipe below changes: a cached root filesystem with another stamp is rebuilt.
# INCLUDE: systemd and D-Bus; polkitd (which needs logind: libpam-systemd), so the polkit rule
# is judged by the real authority;
# the worker package's run-time libraries and Python's venv, so the package installs with dpkg.
readonly INCLUDE="systemd,systemd-sysv,dbus,libpam-systemd,polkitd,libsdbus-c++1,libarchive13,libspdlog1.10,libfmt9,libssl3,python3-venv"
readonly RECIPE="decnet-testbed-rootfs 2: bookworm minbase $INCLUDE; user decnet 990"
readonly SUITE=bookworm
readonly CACHE_DIR="${DECNET_TESTBED_CACHE:-/var/cache/decnet-updater}"
readonly ROOTFS="$CACHE_DIR/testbed-rootfs"
readonly STAMP=".decnet-testbed-recipe"
readonly TEST_USER=decnet
readonly TEST_UID=990

log() { echo "rootfs.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

rebuild=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    --print-path) ;;  # the path is always printed; accepted for readability of callers
    *) die "unknown argument '$arg' (usage: rootfs.sh [--print-path] [--rebuild])" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (run scripts/setup.sh)"

# The first URI of the apt source whose suites include $SUITE, from deb822 files first
# (Debian 12's default), then classic one-line sources.
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822: paragraphs separated by blank lines; fields "Key: value". Comment lines skipped.
    awk -v suite="$SUITE" '
      function flush() {
        if (uris != "" && (types == "" || types ~ /(^| )deb( |$)/)) {
          n = split(suites, s, /[ \t]+/)
          for (i = 1; i <= n; i++) if (s[i] == suite) { split(uris, u, /[ \t]+/); print u[1]; found = 1; exit }
        }
        uris = ""; suites = ""; types = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^URIs:/   { sub(/^URIs:[ \t]*/, ""); uris = $0; next }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0; next }
      /^Types:/  { sub(/^Types:[ \t]*/, ""); types = $0; next }
      END { if (!found) flush() }
    ' "$f" | head -n1
  done | head -n1 | grep . && return 0
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
      awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }'
  done | head -n1 | grep . && return 0
  return 1
}

# Unmounts anything left mounted beneath $1 (an interrupted debootstrap leaves proc, sys,
# dev mounts in its target), deepest first, then removes the tree without crossing into
# another filesystem.
remove_tree() {
  local dir="$1" m
  [ -e "$dir" ] || return 0
  while read -r m; do
    log "unmounting leftover $m"
    umount -l "$m" || true
  done < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  rm -rf --one-file-system "$dir"
}

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/testbed-rootfs.lock"
if ! flock -w 900 9; then
  die "waited 900 s for the lock $CACHE_DIR/testbed-rootfs.lock held by another builder"
fi

if [ "$rebuild" = 0 ] && [ -f "$ROOTFS/$STAMP" ] && [ "$(cat "$ROOTFS/$STAMP")" = "$RECIPE" ]; then
  log "reusing cached root filesystem $ROOTFS"
  echo "$ROOTFS"
  exit 0
fi

# Leftovers of interrupted builds (we hold the lock, so none is in progress).
for stale in "$CACHE_DIR"/testbed-rootfs.tmp.*; do
  [ -e "$stale" ] || continue
  log "removing the interrupted build $stale"
  remove_tree "$stale"
done

mirror="$(find_mirror)" || die "found no apt source for suite '$SUITE' in /etc/apt (deb822 .sources or sources.list)"
log "mirror from the apt configuration: $mirror"

tmp="$CACHE_DIR/testbed-rootfs.tmp.$$"
trap 'remove_tree "$tmp"' EXIT
started=$(date +%s)
for attempt in 1 2 3; do
  remove_tree "$tmp"
  mkdir -p "$tmp"
  log "debootstrap --variant=minbase --include=$INCLUDE $SUITE (attempt $attempt of 3)"
  if debootstrap --variant=minbase --include="$INCLUDE" \
      "$SUITE" "$tmp" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1; then
    break
  fi
  log "debootstrap failed; last lines of $CACHE_DIR/debootstrap.log:"
  tail -n 15 "$CACHE_DIR/debootstrap.log" >&2 || true
  [ "$attempt" = 3 ] && die "debootstrap failed three times (network? mirror $mirror)"
  sleep $((attempt * 5))
done

log "adding user $TEST_USER (uid $TEST_UID)"
chroot "$tmp" /usr/sbin/groupadd --system --gid "$TEST_UID" "$TEST_USER"
chroot "$tmp" /usr/sbin/useradd --system --uid "$TEST_UID" --gid "$TEST_UID" \
  --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$TEST_USER"

# A container boots its own transient machine id; an empty file makes systemd generate one
# on each boot instead of every container sharing the build's id.
: >"$tmp/etc/machine-id"
echo decnet-testbed >"$tmp/etc/hostname"
# The tests bind their own directory over /etc/systemd/system, hiding what debootstrap
# enabled there; nothing needed to boot lives there (default.target and the D-Bus socket are
# in /lib/systemd/system).
for tool in /bin/true /bin/false /bin/sleep /bin/sh; do
  [ -x "$tmp$tool" ] || die "the root filesystem lacks $tool, which the integration tests use"
done
rm -rf "$tmp/var/cache/apt/archives/"*.deb
echo "$RECIPE" >"$tmp/$STAMP"

remove_tree "$ROOTFS"
mv "$tmp" "$ROOTFS"
trap - EXIT
log "built $ROOTFS in $(($(date +%s) - started)) s ($(du -sh "$ROOTFS" | cut -f1))"
echo "$ROOTFS"
