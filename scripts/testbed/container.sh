#!/usr/bin/env bash
# Boots and stops a throw-away container whose PID 1 is a real systemd.
#
#   scripts/testbed/container.sh start NAME WORKDIR [--share-host-network | --netns PATH] [extra systemd-nspawn args...]
#   scripts/testbed/container.sh stop  NAME WORKDIR
#   scripts/testbed/container.sh reap
#
# start: boots the cached root filesystem (scripts/testbed/rootfs.sh, built if missing)
#   with `--volatile=overlay`, so the cache is never modified, and waits until the
#   container's systemd reports SystemState running (or degraded). On the host:
#     WORKDIR/dbus/system_bus_socket  the container's system bus
#                                     (DBUS_SYSTEM_BUS_ADDRESS=unix:path=...)
#     WORKDIR/units/                  bound over the container's /etc/systemd/system
#     WORKDIR/nspawn.pid              the pid of systemd-nspawn (what `stop` signals)
#     WORKDIR/console.log             the container's console and nspawn's messages
#     WORKDIR/rootfs                  a file naming the (read-only) root filesystem
#   The container runs in a private mount namespace with a tmpfs on /run/systemd (so nspawn
#   leaves no state on the host) and in cgroups of its own,
#   /sys/fs/cgroup/{systemd,unified}/decnet-testbed/NAME. Leftovers of an earlier,
#   interrupted run with the same NAME are removed first. The container has a private network
#   (loopback only) unless --share-host-network (which must come first) leaves it on the
#   host's: end-to-end tests need that, a daemon on the host probing an agent in the
#   container at 127.0.0.1:PORT (each test then uses ports of its own). --netns PATH (also first)
#   joins the network namespace mounted at PATH (/run/netns/NAME), so that several containers
#   are several hosts on their own addresses. Exits non-zero, with the console
#   log's tail, if the container does not come up within $DECNET_TESTBED_BOOT_TIMEOUT s (30).
# stop: SIGTERM to the recorded nspawn (a clean halt), SIGKILL after 15 s, then kills what
#   is left in the container's own cgroups and removes them, deepest first. Idempotent.
# reap: stops every container that an earlier run left behind, that is, whose owner
#   (the process that ran `start`, or $DECNET_TESTBED_OWNER) no longer exists. Live
#   containers of concurrent runs are left alone. Records: /run/decnet-testbed/NAME.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly CG_PARENT=decnet-testbed
readonly CG_HIERARCHIES=(/sys/fs/cgroup/systemd /sys/fs/cgroup/unified)
readonly BOOT_TIMEOUT="${DECNET_TESTBED_BOOT_TIMEOUT:-30}"
readonly STOP_TIMEOUT=15

log() { echo "container.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() { die "usage: container.sh start|stop NAME WORKDIR [--share-host-network | --netns PATH] [nspawn args...] | reap"; }
readonly REGISTRY=/run/decnet-testbed

if [ "${1:-}" = reap ]; then
  [ $# = 1 ] || usage
  for record in "$REGISTRY"/*; do
    [ -f "$record" ] || continue
    read -r owner workdir <"$record" || true
    # Alive unless gone or a zombie (a killed owner may linger unreaped for a while).
    if [ -n "${owner:-}" ] && [ -r "/proc/$owner/stat" ] &&
       [ "$(sed -e 's/.*) //' -e 's/ .*//' "/proc/$owner/stat" 2>/dev/null)" != Z ]; then
      continue
    fi
    echo "container.sh: reaping container $(basename "$record") left by dead owner ${owner:-?}" >&2
    "$0" stop "$(basename "$record")" "${workdir:-/nonexistent}" || true
    case "${workdir:-}" in
      /tmp/decnet-testbed-*) rm -rf --one-file-system "$workdir" ;;
    esac
  done
  exit 0
fi
[ $# -ge 3 ] || usage
readonly ACTION="$1" NAME="$2" WORKDIR="$3"
shift 3
[[ "$NAME" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ ]] || die "bad container name '$NAME' ([A-Za-z0-9-], at most 64)"
[[ "$WORKDIR" = /* ]] || die "WORKDIR must be absolute: '$WORKDIR'"
[ "$(id -u)" = 0 ] || die "must run as root"

# The cgroup directories of this container that exist, deepest first.
cgroup_dirs() {
  local h
  for h in "${CG_HIERARCHIES[@]}"; do
    [ -d "$h/$CG_PARENT/$NAME" ] && find "$h/$CG_PARENT/$NAME" -depth -type d
  done
  return 0
}

# True when PID is a systemd-nspawn running container NAME (so we never signal a pid that
# was recycled for something else).
is_our_nspawn() {
  local pid="$1" cmd
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *systemd-nspawn* && "$cmd" == *" -M $NAME "* ]]
}

wait_gone() {  # PID SECONDS
  local pid="$1" deadline=$((SECONDS + $2))
  while [ -d "/proc/$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  [ ! -d "/proc/$pid" ]
}

# Kills every process left in this container's cgroups (they were all started by us: the
# cgroups are ours and named after this container), then removes the cgroups deepest first.
remove_cgroups() {
  local dir pid
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local left=0
    while read -r dir; do
      [ -n "$dir" ] || continue
      while read -r pid; do
        [ -n "$pid" ] || continue
        left=1
        kill -KILL "$pid" 2>/dev/null || true
      done <"$dir/cgroup.procs"
    done < <(cgroup_dirs)
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  while read -r dir; do
    [ -n "$dir" ] || continue
    rmdir "$dir" 2>/dev/null || { sleep 0.3; rmdir "$dir"; } || log "could not remove cgroup $dir"
  done < <(cgroup_dirs)
}

do_stop() {
  local pid=""
  [ -f "$WORKDIR/nspawn.pid" ] && pid="$(cat "$WORKDIR/nspawn.pid")"
  if [ -n "$pid" ] && is_our_nspawn "$pid"; then
    log "stopping container $NAME (nspawn pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
      log "nspawn pid $pid still there after ${STOP_TIMEOUT} s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || log "nspawn pid $pid survived SIGKILL for 5 s"
    fi
  fi
  rm -f "$WORKDIR/nspawn.pid"
  remove_cgroups
  rm -f "$REGISTRY/$NAME"
  rmdir "$REGISTRY" 2>/dev/null || true
  for h in "${CG_HIERARCHIES[@]}"; do rmdir "$h/$CG_PARENT" 2>/dev/null || true; done
}

do_start() {
  local rootfs network=--private-network
  if [ "${1:-}" = --share-host-network ]; then
    network=""
    shift
  elif [ "${1:-}" = --netns ]; then
    [ -n "${2:-}" ] && [ -e "$2" ] || die "--netns needs an existing namespace path, got '${2:-}'"
    network="--network-namespace-path=$2"
    shift 2
  fi
  rootfs="$("$HERE/rootfs.sh" | tail -n1)" || die "rootfs.sh failed"
  [ -d "$rootfs" ] || die "rootfs.sh named '$rootfs', which is not a directory"

  do_stop  # leftovers of an interrupted run with this name
  mkdir -p "$WORKDIR/dbus" "$WORKDIR/units"
  # The helper under test refuses a unit directory that is not root's alone ("dir-owner").
  chown root:root "$WORKDIR/units"
  chmod 0755 "$WORKDIR/units"
  rm -f "$WORKDIR/dbus/system_bus_socket" "$WORKDIR/console.log"
  echo "$rootfs" >"$WORKDIR/rootfs"
  # Retried: a concurrent `stop` may remove the shared, empty registry in between.
  local try
  for try in 1 2 3 4 5; do
    mkdir -p "$REGISTRY" 2>/dev/null || true
    echo "${DECNET_TESTBED_OWNER:-$PPID} $WORKDIR" 2>/dev/null >"$REGISTRY/$NAME" && break
    [ "$try" = 5 ] && die "cannot write $REGISTRY/$NAME"
  done

  local h
  for h in "${CG_HIERARCHIES[@]}"; do
    [ -d "$h" ] || die "cgroup hierarchy $h is missing (the testbed expects cgroup v1 hybrid)"
    # Retried: a concurrent `stop` may remove the shared, empty parent in between.
    mkdir -p "$h/$CG_PARENT/$NAME" 2>/dev/null || mkdir -p "$h/$CG_PARENT/$NAME"
  done

  # The inner shell moves itself into the container's cgroups, mounts the private tmpfs,
  # then execs nspawn: unshare does not fork, so $! is nspawn's pid once the exec is done.
  log "booting container $NAME from $rootfs"
  unshare --mount --propagation private -- bash -c '
      set -e
      echo $$ >"/sys/fs/cgroup/systemd/'"$CG_PARENT/$NAME"'/cgroup.procs"
      echo $$ >"/sys/fs/cgroup/unified/'"$CG_PARENT/$NAME"'/cgroup.procs"
      mount -t tmpfs -o mode=0755 tmpfs /run/systemd
      exec "$@"' nspawn \
    systemd-nspawn -D "$rootfs" -M "$NAME" --volatile=overlay \
      --bind="$WORKDIR/dbus:/run/dbus" --bind="$WORKDIR/units:/etc/systemd/system" \
      --register=no --keep-unit --console=passive ${network:+"$network"} "$@" -b \
    </dev/null >"$WORKDIR/console.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$WORKDIR/nspawn.pid"

  local address="unix:path=$WORKDIR/dbus/system_bus_socket" state="" deadline=$((SECONDS + BOOT_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ ! -d "/proc/$pid" ]; then
      log "systemd-nspawn (pid $pid) exited during boot; console log:"
      tail -n 40 "$WORKDIR/console.log" >&2 || true
      do_stop
      exit 1
    fi
    if [ -S "$WORKDIR/dbus/system_bus_socket" ]; then
      state="$(timeout 2 busctl --address="$address" get-property org.freedesktop.systemd1 \
        /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager SystemState 2>/dev/null || true)"
      case "$state" in
        *'"running"'* | *'"degraded"'*)
          log "container $NAME is up (SystemState ${state#s }, nspawn pid $pid, bus $address)"
          return 0 ;;
      esac
    fi
    sleep 0.1
  done
  log "waited ${BOOT_TIMEOUT} s for SystemState running or degraded on $address (last: '${state:-no answer}'); console log:"
  tail -n 40 "$WORKDIR/console.log" >&2 || true
  do_stop
  exit 1
}

case "$ACTION" in
  start) do_start "$@" ;;  # the extra systemd-nspawn arguments
  stop) do_stop ;;
  *) usage ;;
esac
