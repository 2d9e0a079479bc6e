#!/usr/bin/env bash
# The demo (README's first command), against a real systemd (PID 1 of a throw-away
# container, scripts/testbed/). Run as root on Debian 12; installs and builds what it needs.
#
# Part 1, the root helper alone: confined, driven one request at a time by
#   decnet-helper-client standing in for the daemon; each reply checked.
# Part 2, the whole story: the helper forks the real decnet-updaterd; a master pushes
#   releases with curl over mTLS; units are installed and restarted in the container; the
#   health gate probes the release's agent (bin/decnet-test-agent, mTLS, reports its
#   version); a broken release is rolled back automatically; a manual rollback; the audit
#   trail (the daemon's audit.jsonl and the helper's own record) printed.
#
# Exit 0 when every step did what it should, non-zero with a message naming the step
# otherwise. The container and every process started are stopped on any exit.
# DECNET_DEMO_BUILD_DIR=DIR uses an already configured build tree instead of the release
# preset.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/pki.sh
source "$ROOT/scripts/lib/pki.sh"
readonly ROOT
readonly TESTBED="$ROOT/scripts/testbed/container.sh"
readonly REPLY_TIMEOUT=45  # seconds; above the policy's restart_timeout_ms
STEP=0

step() { STEP=$((STEP + 1)); printf '\n\033[1m[%d] %s\033[0m\n' "$STEP" "$*"; }
say() { printf '    %s\n' "$@"; }
die() {
  printf '\n\033[1;31mdemo.sh: FAILED at step %d: %s\033[0m\n' "$STEP" "$*" >&2
  local log
  for log in "${WORK:-/nonexistent}/helper.log" "${WORK:-/nonexistent}/updater.log"; do
    [ -s "$log" ] || continue
    echo "--- $(basename "$log") (last 20 lines) ---" >&2; tail -n 20 "$log" >&2
  done
  exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (it installs packages and boots a container)"
cd "$ROOT"

step "Install the Debian packages (scripts/setup.sh)"
bash scripts/setup.sh | tail -n 1 | sed 's/^/    /'

readonly TARGETS=(decnet-update-helper helperctl decnet-helper-client decnet-updaterd decnet-test-agent
                  decnet-rollout)
BUILD="${DECNET_DEMO_BUILD_DIR:-}"
step "Build the helper, helperctl, the stand-in daemon, the daemon, the test agent and decnet-rollout"
mkdir -p build
build_log="$ROOT/build/demo-build.log"
if [ -n "$BUILD" ]; then
  cmake --build "$BUILD" -j2 --target "${TARGETS[@]}" >"$build_log" 2>&1 ||
    { tail -n 30 "$build_log" >&2; die "the build failed (log: $build_log)"; }
else
  BUILD="$ROOT/build/release"
  if ! { cmake --preset release && cmake --build --preset release --target "${TARGETS[@]}"; } \
      >"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2; die "the build failed (log: $build_log)"
  fi
  # The daemon's own build, packed and checked as docs/operations.md shows.
  if ! { cmake --build --preset release --target updater-build &&
         (cd build/release && sha256sum -c decnet-updater-*.tar.gz.sha256); } >>"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2; die "the daemon's own build (updater-build) failed (log: $build_log)"
  fi
  say "packed and checked $(cd build/release && ls decnet-updater-*.tar.gz | tail -n 1)"
fi
readonly BUILD
readonly HELPER="$BUILD/helper/decnet-update-helper"
readonly CTL="$BUILD/ctl/helperctl"
readonly CLIENT="$BUILD/tests/decnet-helper-client"
readonly UPDATERD="$BUILD/daemon/decnet-updaterd"
readonly AGENT="$BUILD/tests/decnet-test-agent"
readonly ROLLOUT="$BUILD/fleet/decnet-rollout"
for b in "$HELPER" "$CTL" "$CLIENT" "$UPDATERD" "$AGENT" "$ROLLOUT"; do [ -x "$b" ] || die "missing $b after the build"; done
say "built $(for b in "$HELPER" "$CTL" "$CLIENT" "$UPDATERD" "$AGENT" "$ROLLOUT"; do printf '%s ' "$(basename "$b")"; done)"
id decnet-updater >/dev/null 2>&1 || die "no user decnet-updater (scripts/setup.sh creates it)"
readonly CONTAINER_DECNET_UID=990  # the units' user in the testbed's root filesystem"

step "Boot a throw-away container whose PID 1 is a real systemd (host network, /opt/decnet bound)"
"$TESTBED" reap 2>&1 | sed 's/^/    /'  # containers that a killed earlier run left behind
WORK="$(mktemp -d /tmp/decnet-testbed-demo.XXXXXX)"
readonly WORK NAME="decnet-demo-$$"
HELPER_PID=""
DAEMON_PID=""
cleanup() {
  exec 7>&- 2>/dev/null || true
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then kill "$DAEMON_PID" 2>/dev/null || true; fi
  if [ -n "$HELPER_PID" ] && kill -0 "$HELPER_PID" 2>/dev/null; then kill "$HELPER_PID" 2>/dev/null || true; fi
  "$TESTBED" stop "$NAME" "$WORK" 2>/dev/null || true
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 0755 "$WORK"
# Part 2's paths must mean the same on the host (the daemon) and in the container (the
# units): the release store is bound at /opt/decnet, the agent's certificates at
# /etc/decnet/agent, and the container shares the host's network so the daemon's health
# probe reaches the agent on 127.0.0.1.
install -d -m 0755 -o decnet-updater -g decnet-updater "$WORK/opt-decnet"
install -d -m 0755 -o "$CONTAINER_DECNET_UID" -g "$CONTAINER_DECNET_UID" "$WORK/agent"
"$TESTBED" start "$NAME" "$WORK" --share-host-network \
  --bind-ro="$WORK/opt-decnet:/opt/decnet" --bind-ro="$WORK/agent:/etc/decnet/agent" \
  >"$WORK/boot.log" 2>&1 || { cat "$WORK/boot.log" >&2; die "the container did not come up"; }
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
CHOWN_UNIT="$(payload decnet-chown.service "${HARDENED}StateDirectory=decnet-chown decnet-chown/sub\n")"
CONFLICTS_UNIT="$(payload decnet-conflicts.service '[Unit]\nConflicts=ssh.service\n\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n')"

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
  # The helper relays the daemon's output prefixed with its name.
  REPLY="$(sed -n "${SENT}p" "$WORK/replies" | sed 's/^decnet-updaterd: //')"
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

step "What systemd does as root for a unit: a two-component StateDirectory=, Conflicts=ssh.service"
send write_unit decnet-chown.service "$CHOWN_UNIT"
expect result denied "two-component StateDirectory="; expect rule unit-directory-name "StateDirectory="
say "=> refused: $(field rule) (root would chown through a middle component the unit swaps for a link)"
send write_unit decnet-conflicts.service "$CONFLICTS_UNIT"
expect result denied "Conflicts=ssh.service"; expect rule unit-dependency-other "Conflicts="
say "=> refused: $(field rule)"

step "A drop-in planted beside the helper's file (ExecStartPre=+, root's): systemd would load it"
install -d -m 0755 "$WORK/units/decnet-demo.service.d"
printf '[Service]\nExecStartPre=+/bin/touch /root/decnet-demo-pwned\n' \
  >"$WORK/units/decnet-demo.service.d/50-planted.conf"
chmod 0644 "$WORK/units/decnet-demo.service.d/50-planted.conf"
send daemon_reload
expect result denied "daemon_reload with a foreign drop-in loaded"
say "=> after the reload the helper asked systemd what it loaded: $(field rule)"
send restart_unit decnet-demo.service
expect result denied "restart with a privileged drop-in"
grep -q 'unit-loaded-exec-flags' <<<"$REPLY" || die "the restart was not refused for the drop-in's '+': $REPLY"
say "=> restart refused: $(field rule) and unit-loaded-exec-flags (the '+' would run as root)"
in_container test ! -e /root/decnet-demo-pwned || die "the planted command ran as root"
rm -r "$WORK/units/decnet-demo.service.d"
send daemon_reload
expect result ok "daemon_reload once the drop-in is gone"
send restart_unit decnet-demo.service
expect job_result "done" "restart_unit of the clean unit"
say "=> drop-in removed: the unit restarts again, and the planted command never ran"

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

PART1_SECONDS=$SECONDS
say "part 1 (the helper alone) took $PART1_SECONDS s, build and boot included"

# ---------------------------------------------------------------- part 2: the whole story
printf '\n\033[1m==== Part 2: the real daemon, releases pushed over mTLS, health gate, rollbacks ====\033[0m\n'
PART2_START=$SECONDS
readonly PKI="$WORK/pki" STORE="$WORK/opt-decnet" AGENT_CERTS="$WORK/agent"

step "Certificates for this run (openssl): a CA, the updater, decnet-master, a worker, the agent"
install -d -m 0700 -o decnet-updater -g decnet-updater "$PKI"
pki_ca "$PKI" decnet-demo-ca "$WORK/openssl.log" || die "openssl: the CA"
issue() {  # NAME CN server|client
  pki_issue "$PKI" "$1" "$2" "$3" "$WORK/openssl.log" || die "openssl: the certificate of $1"
  say "$1: CN=$2 ($3)"
}
issue updater decnet-updater server
issue master decnet-master client
issue worker decnet-worker client
issue agent decnet-agent server
rm -f "$PKI"/*.csr "$PKI/ca.key"
chown decnet-updater:decnet-updater "$PKI"/*; chmod 0600 "$PKI"/*.key
# The agent reads its own files inside the container, as the units' user (uid 990 there).
install -m 0644 -o "$CONTAINER_DECNET_UID" -g "$CONTAINER_DECNET_UID" "$PKI/ca.crt" "$PKI/agent.crt" "$AGENT_CERTS/"
install -m 0600 -o "$CONTAINER_DECNET_UID" -g "$CONTAINER_DECNET_UID" "$PKI/agent.key" "$AGENT_CERTS/"

# A free port on the loopback (nothing answers a connect to it).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
UPDATER_PORT="$(free_port)"; AGENT_PORT="$(free_port)"
[ "$UPDATER_PORT" != "$AGENT_PORT" ] || AGENT_PORT="$(free_port)"
readonly UPDATER_PORT AGENT_PORT

step "The daemon's configuration, and a policy whose daemon is the real decnet-updaterd"
# The daemon runs as decnet-updater: its binary is copied where that user may execute it.
install -d -m 0755 "$WORK/updater-bin" "$WORK/rel"
install -m 0755 "$UPDATERD" "$WORK/updater-bin/decnet-updaterd"
install -d -m 0700 -o decnet-updater -g decnet-updater "$WORK/daemon-state" "$WORK/updater-store"
# The release signing key: its public half in a root-owned directory the daemon only reads.
install -d -m 0700 "$WORK/signing"
install -d -m 0755 "$WORK/trusted-keys"
"$ROLLOUT" keygen --out "$WORK/signing/release" >/dev/null || die "decnet-rollout keygen failed"
install -m 0644 "$WORK/signing/release.pub" "$WORK/trusted-keys/release.pub"
cat >"$WORK/daemon.json" <<EOF
{"listen_address": "127.0.0.1", "port": $UPDATER_PORT,
 "trusted_keys_dir": "$WORK/trusted-keys", "signature_threshold": 1,
 "tls_ca": "$PKI/ca.crt", "tls_cert": "$PKI/updater.crt", "tls_key": "$PKI/updater.key",
 "install_dir": "$STORE", "updater_dir": "$WORK/updater-store", "state_dir": "$WORK/daemon-state",
 "units": ["decnet-agent.service"],
 "links": [{"name": "decnet-test-agent", "target": "bin/decnet-test-agent"}],
 "helper_policy": "$WORK/updater-helper.json",
 "probe": {"url": "https://127.0.0.1:$AGENT_PORT/health", "ca": "$PKI/ca.crt",
           "cert": "$PKI/worker.crt", "key": "$PKI/worker.key",
           "attempts": 5, "interval_ms": 300, "timeout_ms": 2000, "check_version": true},
 "settle_ms": 1000, "update_deadline_ms": 60000}
EOF
cat >"$WORK/updater-helper.json" <<EOF
{"unit_dir": "$WORK/units", "link_dir": "$WORK/bin", "state_dir": "$WORK/updater-state",
 "unit_root": "$ROOTFS", "daemon_binary": "$WORK/updater-bin/decnet-updaterd",
 "daemon_args": ["--config", "$WORK/daemon.json"],
 "links": [{"name": "decnet-test-agent", "target_prefix": "$STORE/current"}],
 "hello_timeout_ms": 60000, "restart_timeout_ms": 30000}
EOF
chmod 0644 "$WORK/daemon.json" "$WORK/updater-helper.json"
say "API on 127.0.0.1:$UPDATER_PORT (mTLS, master = CN decnet-master); store $STORE (/opt/decnet in the container)"
say "health gate: units settle 1 s, then https://127.0.0.1:$AGENT_PORT/health must say the release's version"
say "release signatures: checked whenever a push carries them, against $WORK/trusted-keys (1 of 1)"

step "Start decnet-update-helper; it forks decnet-updaterd as decnet-updater"
DBUS_SYSTEM_BUS_ADDRESS="$BUS" "$HELPER" --config "$WORK/updater-helper.json" \
  </dev/null >"$WORK/updater.log" 2>&1 &
HELPER_PID=$!
readonly CURL_MASTER=(curl -sS --max-time 120 --cacert "$PKI/ca.crt" --cert "$PKI/master.crt" --key "$PKI/master.key")
readonly API="https://127.0.0.1:$UPDATER_PORT"
CODE=""; BODY=""
# call ARGS...: curl as the master; the status in CODE, the body in BODY.
call() {
  CODE="$("${CURL_MASTER[@]}" -o "$WORK/body" -w '%{http_code}' "$@" 2>"$WORK/curl.err")" || true
  BODY="$(cat "$WORK/body" 2>/dev/null || true)"; rm -f "$WORK/body"
}
pretty() { python3 -m json.tool <<<"$1" 2>/dev/null | sed 's/^/    /' || say "$1"; }
jget() {  # jget JSON EXPRESSION: a value from the JSON, by a Python expression on `j`
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null || true
}
deadline=$((SECONDS + 30))
until call "$API/health" && [ "$CODE" = 200 ] && [ "$(jget "$BODY" 'j["helper"]["alive"]')" = True ]; do
  kill -0 "$HELPER_PID" 2>/dev/null || die "the helper exited during start-up"
  [ "$SECONDS" -lt "$deadline" ] || die "the daemon did not answer /health within 30 s (last: $CODE $BODY)"
  sleep 0.2
done
DAEMON_PID="$(ps --ppid "$HELPER_PID" -o pid= | head -n 1 | tr -d ' ')"
say "helper pid $HELPER_PID (uid 0), daemon pid $DAEMON_PID (user $(stat -c %U "/proc/$DAEMON_PID"))"
grep -E 'NoNewPrivs|CapEff' "/proc/$DAEMON_PID/status" | sed 's/^/    daemon /'
say "GET /health:"; pretty "$BODY"

# release VERSION [AGENT FLAGS...]: builds a tarball shipping the unit decnet-agent.service and
# bin/decnet-test-agent; sets TARBALL and DIGEST.
release() {
  local version="$1" tree="$WORK/rel/$1"; shift
  install -d "$tree/bin" "$tree/etc/systemd/system"
  install -m 0755 "$AGENT" "$tree/bin/decnet-test-agent"
  printf '{"format":1,"version":"%s","kind":"service"}\n' "$version" >"$tree/.decnet-release.json"
  cat >"$tree/etc/systemd/system/decnet-agent.service" <<EOF
[Unit]
Description=DECNET test agent $version

[Service]
Type=exec
User=decnet
Group=decnet
NoNewPrivileges=yes
ExecStart=/opt/decnet/current/bin/decnet-test-agent --port $AGENT_PORT --version $version --ca /etc/decnet/agent/ca.crt --cert /etc/decnet/agent/agent.crt --key /etc/decnet/agent/agent.key $*
EOF
  TARBALL="$WORK/rel/decnet-$version.tar.gz"
  tar -C "$tree" --owner=0 --group=0 -czf "$TARBALL" .decnet-release.json bin etc
  DIGEST="$(sha256sum "$TARBALL" | cut -d' ' -f1)"
  say "built $(basename "$TARBALL") ($(stat -c %s "$TARBALL") bytes, sha256 ${DIGEST:0:16}...)${*:+ agent flags: $*}"
}
push() {  # push: POST /update of TARBALL as DECNET's master does
  say "curl --cert master.crt --key master.key --cacert ca.crt -F tarball=@$(basename "$TARBALL") -F sha256=${DIGEST:0:16}... $API/update"
  local t=$SECONDS
  call -F "tarball=@$TARBALL" -F "sha256=$DIGEST" "$API/update"
  say "=> HTTP $CODE after $((SECONDS - t)) s"
}
agent_says() {  # agent_says VERSION: the agent itself (in the container) answers with VERSION
  local body
  body="$(curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/worker.crt" --key "$PKI/worker.key" \
    "https://127.0.0.1:$AGENT_PORT/health" 2>&1)" || die "the agent does not answer: $body"
  say "the agent on 127.0.0.1:$AGENT_PORT answers: $body"
  [ "$(jget "$body" 'j["version"]')" = "$1" ] || die "the agent should report version $1"
}
systemd_says() {  # the container's own systemctl on decnet-agent.service
  in_container systemctl --no-pager show -p ActiveState -p SubState -p MainPID -p User \
    decnet-agent.service >"$WORK/show.txt" || die "systemctl show in the container failed"
  say "systemd in the container: $(tr '\n' ' ' <"$WORK/show.txt")"
  grep -qx 'ActiveState=active' "$WORK/show.txt" || die "decnet-agent.service is not active"
  grep -qx 'User=decnet' "$WORK/show.txt" || die "decnet-agent.service does not run as decnet"
}

step "Release 1.0.0, pushed by the master with curl over mTLS (a first install)"
release 1.0.0
push
[ "$CODE" = 200 ] || die "the first install answered $CODE: $BODY"
[ "$(jget "$BODY" 'j["status"]')" = updated ] || die "the first install did not say updated: $BODY"
pretty "$BODY"
say "the unit the helper wrote: $(grep ExecStart "$WORK/units/decnet-agent.service" | cut -c1-80)..."
systemd_says
agent_says 1.0.0

step "Release 2.0.0: units rewritten and restarted, the health gate passes"
release 2.0.0
push
[ "$CODE" = 200 ] || die "the healthy update answered $CODE: $BODY"
say "probe: $(jget "$BODY" 'j["probe"]')"
systemd_says
agent_says 2.0.0

step "Release 2.1.0 from the master side: decnet-rollout packs it, signs it and pushes it"
release 2.1.0
rm "$WORK/rel/2.1.0/.decnet-release.json"  # pack writes the manifest itself
SIGNED="$WORK/rel/decnet-2.1.0-signed.tgz"
"$ROLLOUT" pack --root "$WORK/rel/2.1.0" --include bin --include etc --version 2.1.0 --out "$SIGNED" \
  2>&1 | sed 's/^/    /' || die "decnet-rollout pack failed"
"$ROLLOUT" sign --key "$WORK/signing/release.key" "$SIGNED.manifest.json" 2>&1 | sed 's/^/    /' ||
  die "decnet-rollout sign failed"
say "descriptor: $(cat "$SIGNED.manifest.json")"
say "signature:  $(cut -c1-60 "$SIGNED.manifest.json.sig")..."
PIN="$(openssl x509 -in "$PKI/updater.crt" -outform DER | sha256sum | cut -d' ' -f1)"
printf '{"hosts":[{"name":"worker-1","address":"127.0.0.1","port":%s,"fingerprint":"%s"}]}\n' \
  "$UPDATER_PORT" "$PIN" >"$WORK/inventory.json"
say "inventory: worker-1 at 127.0.0.1:$UPDATER_PORT, updater certificate pinned (sha256 ${PIN:0:16}...)"
say "decnet-rollout push --inventory inventory.json --all --cert master.crt --key master.key $(basename "$SIGNED")"
rc=0
"$ROLLOUT" push --inventory "$WORK/inventory.json" --all --cert "$PKI/master.crt" --key "$PKI/master.key" \
  --json "$WORK/rollout-report.json" "$SIGNED" </dev/null 2>&1 | sed 's/^/    /' || rc=$?
[ "$rc" = 0 ] || die "decnet-rollout push exited $rc (report: $WORK/rollout-report.json)"
[ "$(jget "$(cat "$WORK/rollout-report.json")" 'j["hosts"][0]["result"]')" = ok ] ||
  die "decnet-rollout did not update worker-1: $(cat "$WORK/rollout-report.json")"
systemd_says
agent_says 2.1.0
grep -q '"signed_by"' "$WORK/daemon-state/audit.jsonl" || die "the audit log does not name the signing key"
say "the audit log names the key that signed it: $(grep -o '"signed_by":\[[^]]*\]' "$WORK/daemon-state/audit.jsonl" | tail -n 1)"

step "Release 2.2.0, packed and signed by decnet-rollout, pushed by hand with curl (docs/operations.md)"
release 2.2.0
rm "$WORK/rel/2.2.0/.decnet-release.json"
"$ROLLOUT" pack --root "$WORK/rel/2.2.0" --include bin --include etc --version 2.2.0 \
  --out "$WORK/rel/decnet-2.2.0-signed.tgz" >/dev/null 2>&1 || die "decnet-rollout pack failed"
"$ROLLOUT" sign --key "$WORK/signing/release.key" "$WORK/rel/decnet-2.2.0-signed.tgz.manifest.json" \
  >/dev/null 2>&1 || die "decnet-rollout sign failed"
# The document's settings, then its commands as written.
UPDATER="$API"
TLS="--cacert $PKI/ca.crt --cert $PKI/master.crt --key $PKI/master.key"
RELEASE="$WORK/rel/decnet-2.2.0-signed.tgz"
{
SIGNATURES=(); while read -r line; do SIGNATURES+=(--form-string "signature=$line"); done < "$RELEASE.manifest.json.sig"
curl -sS $TLS -F "descriptor=<$RELEASE.manifest.json" "${SIGNATURES[@]}" \
  -F tarball=@"$RELEASE" -F sha256=$(sha256sum "$RELEASE" | cut -d' ' -f1) "$UPDATER/update"
} >"$WORK/signed-push.json" 2>&1 || die "the signed push with curl failed: $(cat "$WORK/signed-push.json")"
BODY="$(cat "$WORK/signed-push.json")"
[ "$(jget "$BODY" 'j["status"]')" = updated ] || die "the signed push did not say updated: $BODY"
tail -n 1 "$WORK/daemon-state/audit.jsonl" | grep -q '"signed_by":\["' ||
  die "the audit log does not name the key that signed 2.2.0"
say "=> $(jget "$BODY" 'j["status"]') to $(jget "$BODY" 'j["release"]["version"]'), one signature line sent as one form field"
agent_says 2.2.0

step "A replayed older release is refused: the worker never goes below the highest version it ran"
TARBALL="$WORK/rel/decnet-1.0.0.tar.gz"; DIGEST="$(sha256sum "$TARBALL" | cut -d' ' -f1)"
push
[ "$CODE" = 400 ] || die "a replay of 1.0.0 should be refused (400), got $CODE: $BODY"
[ "$(jget "$BODY" 'j["detail"]["rule"]')" = version-not-newer ] || die "the replay was refused for another rule: $BODY"
say "=> refused: $(jget "$BODY" 'j["detail"]["rule"]'): $(jget "$BODY" 'j["error"]' | cut -c1-110)"
agent_says 2.2.0

step "Release 3.0.0-broken: its agent answers 503; the gate fails and the daemon rolls back by itself"
release 3.0.0-broken --unhealthy
push
[ "$CODE" = 409 ] || die "a broken release should be answered 409 (rolled back), got $CODE: $BODY"
[ "$(jget "$BODY" 'j["detail"]["rolled_back"]')" = True ] || die "409 without rolled_back:true: $BODY"
pretty "$BODY"
systemd_says
agent_says 2.2.0

step "Manual rollback: POST /rollback swaps to the previous release"
say "curl --cert master.crt --key master.key --cacert ca.crt -X POST $API/rollback"
call -X POST -H 'Content-Length: 0' "$API/rollback"
[ "$CODE" = 200 ] || die "the manual rollback answered $CODE: $BODY"
[ "$(jget "$BODY" 'j["status"]')" = rolled_back ] || die "the rollback did not say rolled_back: $BODY"
say "=> HTTP 200 $(jget "$BODY" 'j["status"]') to $(jget "$BODY" 'j["release"]["version"]') (below the floor: allowed for a rollback, and noted)"
systemd_says
agent_says 2.1.0

step "GET /releases: active first, then previous (DECNET's shape), the failed one recorded"
call "$API/releases"
[ "$CODE" = 200 ] || die "/releases answered $CODE: $BODY"
jget "$BODY" '"\n".join("%-6s %-14s %-6s sha256 %s...  installed %s" % (r["slot"], r["version"], r["state"], r["sha256"][:16], r["installed_at"]) for r in j["releases"])' | sed 's/^/    /'
[ "$(jget "$BODY" 'j["releases"][0]["version"]')" = 2.1.0 ] || die "2.1.0 should be active"
[ "$(jget "$BODY" '[r["state"] for r in j["releases"] if r["version"]=="3.0.0-broken"][0]')" = failed ] ||
  die "3.0.0-broken should be recorded as failed"
say "current -> $(readlink "$STORE/current"); $WORK/bin/decnet-test-agent -> $(readlink "$WORK/bin/decnet-test-agent")"

step "The audit trail: the daemon's audit.jsonl (who, what, result, rollback cause, durations)"
python3 - "$WORK/daemon-state/audit.jsonl" <<'EOF' | sed 's/^/    /'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    d = " ".join("%s=%s" % kv for kv in e.get("durations_ms", {}).items())
    print("%s %-8s %-11s v%-13s by %s (%s...)  [%s]" % (e["ts"], e["op"], e["result"], e.get("version", ""),
          e.get("client", {}).get("cn", ""), e.get("client", {}).get("fingerprint", "")[:12], d))
    if e.get("rollback_cause"):
        print("    rollback cause: " + e["rollback_cause"][:110])
EOF
[ "$(grep -c '"result":"rolled_back"' "$WORK/daemon-state/audit.jsonl")" -ge 2 ] ||
  die "the audit log should record the automatic and the manual rollback"

step "...beside the helper's own record of the requests behind them ($WORK/updater-state/requests.jsonl)"
python3 - "$WORK/updater-state/requests.jsonl" <<'EOF' | sed 's/^/    /'
import collections, json, sys
entries = [json.loads(l) for l in open(sys.argv[1])]
for e in entries:
    if e.get("type") in ("write_unit", "remove_unit", "daemon_reload", "restart_unit", "repoint_link", "hello"):
        print("%s id=%-3s %-13s %-7s %s" % (e.get("ts", ""), e.get("id", ""), e["type"], e.get("result", ""),
              e.get("subject", "")))
counts = collections.Counter(e["type"] for e in entries)
print("(%d requests in all: %s)" % (len(entries), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
EOF

step "The daemon stops on SIGTERM; the helper ends with it"
kill -TERM "$DAEMON_PID"
for _ in $(seq 1 100); do kill -0 "$HELPER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HELPER_PID" 2>/dev/null && die "the helper did not exit within 10 s of the daemon's end"
wait "$HELPER_PID" || say "(the helper exited with status $?)"
HELPER_PID=""; DAEMON_PID=""
tail -n 2 "$WORK/updater.log" | sed 's/^/    /'

printf '\n\033[1;32mDemo passed in %d s (part 1: %d s with build and boot; part 2: %d s).\033[0m\n' \
  "$SECONDS" "$PART1_SECONDS" "$((SECONDS - PART2_START))"
say "Part 1: a root helper with no capabilities, NoNewPrivs, seccomp and Landlock installed and" \
    "restarted a hardened unit in a real systemd ($SENT requests, every one recorded)," \
    "refused a root unit, an output file systemd would open as root, a directory root would chown" \
    "through a link, a conflict with ssh.service, a planted root drop-in (after reload and" \
    "before restart, from what systemd loaded), a restart outside its" \
    "allow-list and a link outside its prefix, each naming its rule." \
    "Part 2: the real daemon took releases from a master over mTLS (curl, and decnet-rollout" \
    "with a signed descriptor and a pinned certificate), refused a replayed older one, installed and" \
    "restarted their units through the helper, gated each on its agent's mTLS health and" \
    "version, rolled the broken one back by itself (409), rolled back by hand, and recorded it all."
