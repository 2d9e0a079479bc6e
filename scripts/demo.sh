#!/usr/bin/env bash
# The demo (README's first command): the real root helper, confined, against a real systemd
# (PID 1 of a throw-away container, scripts/testbed/), with decnet-helper-client standing in
# for the daemon. Run as root on Debian 12; installs and builds what it needs. Each request
# is sent on its own and its reply checked: exit 0 when every step did what it should,
# non-zero with a message naming the step otherwise. The container is stopped on any exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly TESTBED="$ROOT/scripts/testbed/container.sh"
readonly REPLY_TIMEOUT=45  # seconds; above the policy's restart_timeout_ms
STEP=0

step() { STEP=$((STEP + 1)); printf '\n\033[1m[%d] %s\033[0m\n' "$STEP" "$*"; }
say() { printf '    %s\n' "$@"; }
die() {
  printf '\n\033[1;31mdemo.sh: FAILED at step %d: %s\033[0m\n' "$STEP" "$*" >&2
  if [ -s "${WORK:-/nonexistent}/helper.log" ]; then
    echo "--- helper log (last 20 lines) ---" >&2; tail -n 20 "$WORK/helper.log" >&2
  fi
  exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (it installs packages and boots a container)"
cd "$ROOT"

step "Install the Debian packages (scripts/setup.sh)"
bash scripts/setup.sh | tail -n 1 | sed 's/^/    /'

step "Build the helper, helperctl and the stand-in daemon (release preset)"
mkdir -p build
build_log="$ROOT/build/demo-build.log"
if ! { cmake --preset release && cmake --build --preset release --target \
         decnet-update-helper helperctl decnet-helper-client; } >"$build_log" 2>&1; then
  tail -n 30 "$build_log" >&2; die "the build failed (log: $build_log)"
fi
readonly HELPER="$ROOT/build/release/helper/decnet-update-helper"
readonly CTL="$ROOT/build/release/helper/helperctl"
readonly CLIENT="$ROOT/build/release/tests/decnet-helper-client"
for b in "$HELPER" "$CTL" "$CLIENT"; do [ -x "$b" ] || die "missing $b after the build"; done
say "built $(basename "$HELPER"), $(basename "$CTL"), $(basename "$CLIENT")"

step "Boot a throw-away container whose PID 1 is a real systemd"
"$TESTBED" reap 2>&1 | sed 's/^/    /'  # containers that a killed earlier run left behind
WORK="$(mktemp -d /tmp/decnet-testbed-demo.XXXXXX)"
readonly WORK NAME="decnet-demo-$$"
HELPER_PID=""
cleanup() {
  exec 7>&- 2>/dev/null || true
  if [ -n "$HELPER_PID" ] && kill -0 "$HELPER_PID" 2>/dev/null; then kill "$HELPER_PID" 2>/dev/null || true; fi
  "$TESTBED" stop "$NAME" "$WORK" 2>/dev/null || true
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 0755 "$WORK"
"$TESTBED" start "$NAME" "$WORK" >"$WORK/boot.log" 2>&1 || { cat "$WORK/boot.log" >&2; die "the container did not come up"; }
sed 's/^/    /' "$WORK/boot.log"
ROOTFS="$(cat "$WORK/rootfs")"
readonly BUS="unix:path=$WORK/dbus/system_bus_socket" ROOTFS
in_container() {  # runs a command inside the container, next to its systemd
  local pid1; pid1="$(ps --ppid "$(cat "$WORK/nspawn.pid")" -o pid= | head -n 1 | tr -d ' ')"
  timeout 10 nsenter -t "$pid1" -m -u -i -n -p "$@"
}

step "Write the demo policy (root-owned, 0644) pointing the helper into the container"
install -d -m 0755 "$WORK/bin" "$WORK/opt/current/bin" "$WORK/payloads"
printf '#!/bin/sh\necho decnet\n' >"$WORK/opt/current/bin/decnet"; chmod 0755 "$WORK/opt/current/bin/decnet"
readonly CONF="$WORK/helper.json"
cat >"$CONF" <<EOF
{"unit_dir": "$WORK/units", "link_dir": "$WORK/bin", "state_dir": "$WORK/state",
 "unit_root": "$ROOTFS", "daemon_binary": "$CLIENT",
 "links": [{"name": "decnet", "target_prefix": "$WORK/opt/current"}],
 "hello_timeout_ms": 60000, "restart_timeout_ms": 30000}
EOF
chown root:root "$CONF"; chmod 0644 "$CONF"
say "units in $WORK/units (the container's /etc/systemd/system), links in $WORK/bin"
payload() { printf '%b' "$2" >"$WORK/payloads/$1"; chmod 0644 "$WORK/payloads/$1"; echo "$WORK/payloads/$1"; }
readonly HARDENED='[Unit]\nDescription=DECNET demo service\n\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n'
DEMO_UNIT="$(payload decnet-demo.service "$HARDENED")"
ROOT_UNIT="$(payload decnet-evil.service '[Service]\nType=exec\nUser=root\nGroup=decnet\nNoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n')"
SHADOW_UNIT="$(payload decnet-shadow.service "${HARDENED}StandardOutput=file:/etc/shadow\n")"

step "Start decnet-update-helper; it forks the stand-in daemon and confines itself"
mkfifo "$WORK/commands"
: >"$WORK/replies"
DBUS_SYSTEM_BUS_ADDRESS="$BUS" "$HELPER" --config "$CONF" \
  <"$WORK/commands" >"$WORK/replies" 2>"$WORK/helper.log" &
HELPER_PID=$!
exec 7>"$WORK/commands"
say "helper pid $HELPER_PID; the daemon's commands go through a FIFO, one at a time"

SENT=0
REPLY=""
# send COMMAND...: hands one command to the daemon and waits (bounded) for its reply.
send() {
  SENT=$((SENT + 1))
  say "daemon -> helper: $*"
  echo "$*" >&7
  local deadline=$((SECONDS + REPLY_TIMEOUT))
  while [ "$(wc -l <"$WORK/replies")" -lt "$SENT" ]; do
    kill -0 "$HELPER_PID" 2>/dev/null || die "the helper exited while answering '$*'"
    [ "$SECONDS" -lt "$deadline" ] || die "no reply to '$*' within ${REPLY_TIMEOUT} s"
    sleep 0.05
  done
  REPLY="$(sed -n "${SENT}p" "$WORK/replies")"
  say "helper -> daemon: $REPLY"
}
field() { sed -n 's/.*"'"$1"'":\("[^"]*"\|[0-9a-z]*\).*/\1/p' <<<"$REPLY" | tr -d '"'; }
expect() {  # expect KEY VALUE WHAT
  [ "$(field "$1")" = "$2" ] || die "$3: expected $1=$2 in $REPLY"
}

step "hello: the daemon introduces itself; the helper answers with its policy digest"
send hello
expect result ok "hello"
say "policy digest: $(field policy_digest) (the daemon compares it with the policy it loaded)"

step "helperctl status: the running helper as the kernel sees it"
"$CTL" --config "$CONF" status | tee "$WORK/status.txt" | sed 's/^/    /'
grep -q '^uid: 0$' "$WORK/status.txt" || die "the helper is not uid 0"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
  grep -q "^$cap: 0000000000000000$" "$WORK/status.txt" || die "$cap is not empty"
done
grep -q '^NoNewPrivs: 1$' "$WORK/status.txt" || die "NoNewPrivs is not set"
grep -q '^Seccomp: 2' "$WORK/status.txt" || die "no seccomp filter"
grep -q '^Landlock: enforced' "$WORK/status.txt" || say "(this kernel offers no Landlock)"
say "=> root by uid only: every capability set empty, NoNewPrivs, a seccomp filter"

step "write_unit decnet-demo.service (hardened: User=decnet, NoNewPrivileges=yes)"
send write_unit decnet-demo.service "$DEMO_UNIT"
expect result ok "write_unit"; expect changed true "write_unit"

step "daemon_reload, then restart_unit: the helper waits for systemd's job"
send daemon_reload
expect result ok "daemon_reload"
send restart_unit decnet-demo.service
expect job_result "done" "restart_unit"; expect active_state active "restart_unit"

step "unit_status decnet-demo.service"
send unit_status decnet-demo.service
expect active_state active "unit_status"
MAIN_PID="$(field main_pid)"
[ "${MAIN_PID:-0}" -gt 0 ] || die "unit_status: no MainPID in $REPLY"
say "=> active, MainPID $MAIN_PID"

step "The same unit as systemd inside the container sees it (systemctl via nsenter)"
in_container systemctl --no-pager show -p ActiveState -p SubState -p MainPID -p User \
  decnet-demo.service | tee "$WORK/show.txt" | sed 's/^/    /'
grep -qx "MainPID=$MAIN_PID" "$WORK/show.txt" || die "systemctl in the container disagrees on MainPID"
grep -qx 'User=decnet' "$WORK/show.txt" || die "the unit does not run as decnet"

step "Hostile units: User=root, and StandardOutput=file:/etc/shadow (opened by systemd as root)"
send write_unit decnet-evil.service "$ROOT_UNIT"
expect result denied "hostile unit"; expect rule unit-user-root "hostile unit"
send write_unit decnet-shadow.service "$SHADOW_UNIT"
expect result denied "StandardOutput=file:/etc/shadow"
say "=> refused: $(field rule) ($(field message))"
if [ -e "$WORK/units/decnet-evil.service" ] || [ -e "$WORK/units/decnet-shadow.service" ]; then
  die "a refused unit file was written"
fi

step "restart_unit ssh.service: outside the allow-list, refused before D-Bus"
send restart_unit ssh.service
expect result denied "ssh restart"; expect rule unit-name-allowlist "ssh restart"

step "repoint_link decnet: inside its prefix accepted, outside refused"
send repoint_link decnet "$WORK/opt/current/bin/decnet"
expect result ok "repoint_link"
say "=> $WORK/bin/decnet -> $(readlink "$WORK/bin/decnet")"
send repoint_link decnet /etc/shadow
expect rule link-target-prefix "repoint_link outside its prefix"

step "The daemon hangs up; the helper ends cleanly"
exec 7>&-
for _ in $(seq 1 100); do kill -0 "$HELPER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HELPER_PID" 2>/dev/null && die "the helper did not exit within 10 s of the daemon's end"
wait "$HELPER_PID" || die "the helper exited with status $?"
HELPER_PID=""
say "helper exited 0"

step "The helper's own record ($WORK/state/requests.jsonl, root's, mode 0700 directory)"
sed 's/^/    /' "$WORK/state/requests.jsonl"
[ "$(wc -l <"$WORK/state/requests.jsonl")" -eq "$SENT" ] || die "the record does not list all $SENT requests"

step "helperctl check-unit: the same policy offline, naming file, line and rule"
set +e
"$CTL" --config "$CONF" check-unit "$ROOT_UNIT" "$SHADOW_UNIT" "$DEMO_UNIT" | sed 's/^/    /'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 1 ] || die "check-unit exited $rc, expected 1 (refusals)"
say "(decnet-demo.service, also checked, has no line: it is accepted)"

printf '\n\033[1;32mDemo passed in %d s.\033[0m\n' "$SECONDS"
say "A root helper with no capabilities, NoNewPrivs, seccomp and Landlock installed and" \
    "restarted a hardened unit in a real systemd ($SENT requests, every one recorded)," \
    "refused a root unit, an output file systemd would open as root, a restart outside its" \
    "allow-list and a link outside its prefix, each naming its rule."
