# Integration tests against a real systemd: PID 1 of a throw-away container
# (scripts/testbed/). Included from tests/CMakeLists.txt.
#
# Tests that boot containers use:
#   LABELS systemd
#   PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300
# and link decnet_testbed (tests/integration/testbed.h).

set(DECNET_INTEGRATION_DIR ${CMAKE_CURRENT_LIST_DIR})

# Once per ctest run: stop containers that killed runs left behind, then build (or reuse)
# the cached root filesystem, so no test pays for debootstrap inside its own timeout.
add_test(NAME testbed_rootfs
  COMMAND sh -c "\"$1\" reap && \"$2\"" testbed_rootfs
          ${PROJECT_SOURCE_DIR}/scripts/testbed/container.sh
          ${PROJECT_SOURCE_DIR}/scripts/testbed/rootfs.sh)
set_tests_properties(testbed_rootfs PROPERTIES
  FIXTURES_SETUP testbed_rootfs LABELS systemd TIMEOUT 900 RESOURCE_LOCK testbed)

# The container fixture, for every test that needs a real systemd.
add_library(decnet_testbed STATIC ${DECNET_INTEGRATION_DIR}/testbed.cc)
target_include_directories(decnet_testbed PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_definitions(decnet_testbed PRIVATE DECNET_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(decnet_testbed PUBLIC GTest::gtest tl::expected PkgConfig::libsystemd)

# What the tests driving the real helper against a container share (helper_testbed.h).
add_library(decnet_helper_testbed STATIC ${DECNET_INTEGRATION_DIR}/helper_testbed.cc)
target_link_libraries(decnet_helper_testbed PUBLIC decnet_helper_harness decnet_testbed
                      nlohmann_json::nlohmann_json)

# The sdbus-c++ adapter (helper/systemd_manager.cc, in decnet_helper_core) against a real
# systemd.
decnet_gtest(systemd_manager_integration_test
  SOURCES ${DECNET_INTEGRATION_DIR}/systemd_manager_test.cc
  LIBS decnet_testbed decnet_helper_core
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)

# The real helper binary (confined as in service) with the stand-in daemon, against a real
# systemd: install, reload, restart, a failed job, status, remove, a foreign unit file, a
# refused name that never reaches D-Bus, READY=1 only after hello, and the helper's record.
decnet_gtest(helper_systemd_integration_test
  SOURCES ${DECNET_INTEGRATION_DIR}/helper_systemd_test.cc
  LIBS decnet_helper_testbed
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)

# A hostile daemon (the real helper and its serve loop) tries each escalation class against a
# real systemd: directories set up as root, drop-ins and other search paths, directives acting
# on other units, unstoppable or unbounded units, files opened as root, conditions and syslog
# identity, the updater's own unit. Afterwards: nothing changed outside the unit's directories,
# nothing ran as uid 0, the helper's and the daemon's state are untouched, nothing outlived
# remove_unit; a legitimate unit of each class still works. DECNET_ESCALATION_BYPASS=1 plants
# the units past the policy, to show each attack escalates when not refused.
decnet_gtest(escalation_integration_test
  SOURCES ${DECNET_INTEGRATION_DIR}/escalation_test.cc
  LIBS decnet_helper_testbed
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 600)

# The unit policy's differential oracle: every fixture and generated unit (unit_generator.h)
# that the real decision accepts is loaded into a real systemd, and what systemd loaded must
# lie within policy; systemd-analyze must never rate an accepted unit as root. Long run:
# DECNET_ORACLE_UNITS=5000 DECNET_ORACLE_SEED=N (see unit_oracle_test.cc).
decnet_gtest(unit_oracle_test
  SOURCES ${DECNET_INTEGRATION_DIR}/unit_oracle_test.cc
          ${DECNET_INTEGRATION_DIR}/unit_generator.cc
  LIBS decnet_testbed decnet_policy
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 600)

# The loaded-view check: the adapter's view of real units, and the real helper refusing
# restart_unit for drop-ins and fragments planted by other routes (the payload never runs),
# the updater's own unit checked at start-up and shown by helperctl status.
decnet_gtest(loaded_view_integration_test
  SOURCES ${DECNET_INTEGRATION_DIR}/loaded_view_test.cc
  LIBS decnet_helper_testbed decnet_helper_core
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 600)
target_compile_definitions(loaded_view_integration_test PRIVATE
  DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>")
add_dependencies(loaded_view_integration_test helperctl)

# The end-to-end run needs the daemon binary, which the sanitizer preset leaves out
# (DECNET_BUILD_HTTP=OFF).
if(DECNET_BUILD_HTTP)
  # The agent that end-to-end releases ship (bin/decnet-test-agent): it runs inside the
  # container, whose minbase root filesystem has no libssl, so OpenSSL and libstdc++ are linked
  # statically (glibc stays dynamic: the container is the same Debian release).
  find_library(DECNET_LIBSSL_STATIC NAMES libssl.a REQUIRED)
  find_library(DECNET_LIBCRYPTO_STATIC NAMES libcrypto.a REQUIRED)
  find_package(Threads REQUIRED)
  add_executable(decnet-test-agent ${DECNET_INTEGRATION_DIR}/test_agent_main.cc)
  target_link_libraries(decnet-test-agent PRIVATE
    ${DECNET_LIBSSL_STATIC} ${DECNET_LIBCRYPTO_STATIC} Threads::Threads ${CMAKE_DL_LIBS})
  target_link_options(decnet-test-agent PRIVATE -static-libstdc++ -static-libgcc)

  # The whole product end to end: a container (real systemd, host network, the install dir at
  # /opt/decnet), the real helper forking the real daemon, releases built at test time whose
  # agent serves its version over mTLS, pushed with curl: first install, update and manual
  # rollback, automatic rollback of a crashing, exiting and unhealthy agent, a unit added then
  # removed, refusals (no digest, wrong digest, a worker's certificate, no previous release),
  # a redeploy; each checked against systemd, the files, the agent, the audit log and the
  # helper's record.
  decnet_gtest(updater_e2e_test
    SOURCES ${DECNET_INTEGRATION_DIR}/updater_e2e_test.cc
            ${DECNET_INTEGRATION_DIR}/updater_e2e_fixture.cc
            ${DECNET_INTEGRATION_DIR}/worker_host.cc
    LIBS decnet_testbed decnet_test_pki decnet_policy decnet_proto_helper
         nlohmann_json::nlohmann_json
    LABELS systemd
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 600)
  target_compile_definitions(updater_e2e_test PRIVATE
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>"
    DECNET_TEST_AGENT_BINARY="$<TARGET_FILE:decnet-test-agent>"
    DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>")
  add_dependencies(updater_e2e_test decnet-update-helper decnet-updaterd decnet-test-agent
                   helperctl)

  # decnet-updaterd with injection points (faults_daemon_main.cc), for the crash matrix only:
  # built with the tests, never installed. The wraps let it count the files an extraction
  # creates and see the install command's output.
  add_executable(decnet-updaterd-faults ${DECNET_INTEGRATION_DIR}/faults_daemon_main.cc)
  target_link_libraries(decnet-updaterd-faults PRIVATE decnet_daemon_main)
  target_link_options(decnet-updaterd-faults PRIVATE -Wl,--wrap=syscall -Wl,--wrap=read)

  # The crash matrix on the real helper, daemon and systemd: at each named point of an update
  # and of update-self, the daemon stops itself and is SIGKILLed from outside (alone, or with
  # the helper); after the restart the host is on one complete release, checked through curl,
  # the files and systemd, and the next update succeeds.
  decnet_gtest(crash_e2e_test
    SOURCES ${DECNET_INTEGRATION_DIR}/crash_e2e_test.cc
            ${DECNET_INTEGRATION_DIR}/updater_e2e_fixture.cc
            ${DECNET_INTEGRATION_DIR}/worker_host.cc
    LIBS decnet_testbed decnet_test_pki decnet_policy decnet_proto_helper
         nlohmann_json::nlohmann_json
    LABELS systemd
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 900)
  target_compile_definitions(crash_e2e_test PRIVATE
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd-faults>"
    DECNET_TEST_AGENT_BINARY="$<TARGET_FILE:decnet-test-agent>"
    DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>")
  add_dependencies(crash_e2e_test decnet-update-helper decnet-updaterd-faults decnet-test-agent
                   helperctl)

  # A DECNET-like Python tree (its `decnet agent` serves mTLS /health with its version), packed
  # as DECNET's master packs a working tree and pushed with curl, on the real helper, daemon
  # and systemd with the default installer: each release runs from its own environment, a
  # manual rollback runs the old one again, a build that fails is refused with the installer's
  # output and nothing switched, a new dependency comes from a local index once configured.
  decnet_gtest(decnet_tree_e2e_test
    SOURCES ${DECNET_INTEGRATION_DIR}/decnet_tree_e2e_test.cc
            ${DECNET_INTEGRATION_DIR}/updater_e2e_fixture.cc
            ${DECNET_INTEGRATION_DIR}/worker_host.cc
    LIBS decnet_testbed decnet_test_pki decnet_policy decnet_proto_helper
         nlohmann_json::nlohmann_json
    LABELS systemd
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 600)
  target_compile_definitions(decnet_tree_e2e_test PRIVATE
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>"
    DECNET_TEST_AGENT_BINARY="$<TARGET_FILE:decnet-test-agent>"
    DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>")
  add_dependencies(decnet_tree_e2e_test decnet-update-helper decnet-updaterd decnet-test-agent
                   helperctl)
endif()

# A fleet on one machine (fleet_net.h): five workers, each a real helper, daemon and systemd
# container in a network namespace of its own, reached by address from a hub namespace where
# decnet-rollout runs: a rollout updates all, an unhealthy release or an unreachable worker
# halts it, --dry-run changes nothing, a wrong pinned fingerprint is refused before any
# upload, SIGTERM leaves no host between two releases.
if(DECNET_BUILD_HTTP AND TARGET decnet-rollout)
  decnet_gtest(fleet_test
    SOURCES ${DECNET_INTEGRATION_DIR}/fleet_test.cc
            ${DECNET_INTEGRATION_DIR}/fleet_net.cc
            ${DECNET_INTEGRATION_DIR}/worker_host.cc
    LIBS decnet_testbed decnet_test_pki decnet_policy decnet_proto_helper
         nlohmann_json::nlohmann_json
    LABELS integration
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)
  target_compile_definitions(fleet_test PRIVATE
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>"
    DECNET_TEST_AGENT_BINARY="$<TARGET_FILE:decnet-test-agent>"
    DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>"
    DECNET_ROLLOUT_BINARY="$<TARGET_FILE:decnet-rollout>")
  add_dependencies(fleet_test decnet-update-helper decnet-updaterd decnet-test-agent helperctl
                   decnet-rollout)

  # decnet-rollout push --include-self, the real binary against one real worker whose daemon
  # runs from its own store: the service release and then the updater build, success judged by
  # the new build's identity in /health; a build that cannot start fails the host (exit 1)
  # after the service update succeeded.
  decnet_gtest(rollout_self_test
    SOURCES ${DECNET_INTEGRATION_DIR}/rollout_self_test.cc
            ${DECNET_INTEGRATION_DIR}/updater_e2e_fixture.cc
            ${DECNET_INTEGRATION_DIR}/worker_host.cc
    LIBS decnet_testbed decnet_test_pki decnet_policy decnet_proto_helper
         nlohmann_json::nlohmann_json
    LABELS integration systemd
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 600)
  target_compile_definitions(rollout_self_test PRIVATE
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>"
    DECNET_TEST_AGENT_BINARY="$<TARGET_FILE:decnet-test-agent>"
    DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>"
    DECNET_ROLLOUT_BINARY="$<TARGET_FILE:decnet-rollout>")
  add_dependencies(rollout_self_test decnet-update-helper decnet-updaterd decnet-test-agent
                   helperctl decnet-rollout)
endif()

# decnet-adopt on a host laid out exactly as DECNET's updater leaves it, against a real
# systemd: the dry run changes nothing; the adoption imports both of DECNET's releases with
# their own environments (through decnet-updaterd --import-release), retires DECNET's updater,
# rewrites the units to the policy, repoints the link, opens the keys to the daemon's user
# only; a second run changes nothing; the real helper and daemon then serve the adopted host,
# and a push and a rollback sent the way DECNET's master sends them (our httpx restatement of
# its client) run the new code, then the old; --undo restores DECNET's layout.
if(DECNET_BUILD_HTTP)
  decnet_gtest(adopt_integration_test
    SOURCES ${DECNET_INTEGRATION_DIR}/adopt_test.cc
    LIBS decnet_testbed decnet_adopt decnet_policy decnet_test_pki nlohmann_json::nlohmann_json
    LABELS systemd
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 600)
  target_compile_definitions(adopt_integration_test PRIVATE
    DECNET_ADOPT_BINARY="$<TARGET_FILE:decnet-adopt>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>"
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>")
  add_dependencies(adopt_integration_test decnet-adopt decnet-updaterd decnet-update-helper)
endif()

# The shipped polkit rule (polkit/50-decnet-updater.rules) under a real polkitd and systemd:
# a member of the operators' group starts, stops and restarts allow-listed units; ssh.service,
# another unit type, the updater's own unit, other verbs, a non-member and the daemon's and the
# units' users (though members) are refused, with systemd's state unchanged; without the rule
# the member is refused too; what the rule does not allow falls through to later rules; a
# rendering for another group in /etc adds to the package's rule.
decnet_gtest(polkit_rule_integration_test
  SOURCES ${DECNET_INTEGRATION_DIR}/polkit_rule_test.cc
  LIBS decnet_testbed decnet_polkit_rule
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)

# The shipped systemd/decnet-updater.service judged offline by systemd-analyze: exposure 2.0 or
# less under `security --offline=true`, nothing reported by `verify` (ExecStart pointed at the
# built helper), and each hardening setting shown to matter to the score.
decnet_gtest(shipped_unit_test
  SOURCES ${DECNET_INTEGRATION_DIR}/shipped_unit_test.cc
  LABELS unit)
target_compile_definitions(shipped_unit_test PRIVATE
  DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>")
add_dependencies(shipped_unit_test decnet-update-helper)

# The shipped unit, unchanged, under the container's real systemd with the built helper and
# daemon at its paths: systemctl start returns (Type=notify), /health answers over mTLS, the
# helper's Landlock and seccomp went in under the unit's filters, nothing was refused; a release
# pushed with curl is installed through it (unit written, reloaded, restarted, probed); an
# update-self to a build failing after its hello is reverted at the next start; the API
# answers on loopback only until an operator's drop-in allows another address; and why
# RestrictSUIDSGID= stays off (it refuses openat2, so the unit would not start).
if(DECNET_BUILD_HTTP)
  decnet_gtest(shipped_unit_systemd_test
    SOURCES ${DECNET_INTEGRATION_DIR}/shipped_unit_systemd_test.cc
            ${DECNET_INTEGRATION_DIR}/worker_host.cc
    LIBS decnet_testbed decnet_test_pki decnet_policy decnet_proto_helper
         nlohmann_json::nlohmann_json
    LABELS systemd
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)
  target_compile_definitions(shipped_unit_systemd_test PRIVATE
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>"
    DECNET_TEST_AGENT_BINARY="$<TARGET_FILE:decnet-test-agent>"
    DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>")
  add_dependencies(shipped_unit_systemd_test decnet-update-helper decnet-updaterd
                   decnet-test-agent helperctl)
endif()

# The worker package installed with dpkg inside the container (tests/integration/
# package_install_test.cc): nothing started, users and directories made, the first build in
# the daemon's store; enrolled, started by the container's systemctl, a release pushed with
# decnet-rollout and one with curl, update-self restarted by systemd, a rollback, helperctl
# status, and a purge that leaves only what the package keeps. The packages come from the
# `decnet_debs` fixture (tests/packaging/packaging.cmake).
if(TARGET debs)
  decnet_gtest(package_install_test
    SOURCES ${DECNET_INTEGRATION_DIR}/package_install_test.cc
            ${DECNET_INTEGRATION_DIR}/worker_host.cc
    LIBS decnet_testbed decnet_test_pki decnet_policy decnet_proto_helper
         nlohmann_json::nlohmann_json
    LABELS systemd
    # decnet_debs requires testbed_rootfs in turn (one fixture name fits in these properties).
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED decnet_debs TIMEOUT 300)
  target_compile_definitions(package_install_test PRIVATE
    DECNET_PACKAGES_DIR="${PROJECT_BINARY_DIR}/packages"
    DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>"
    DECNET_TEST_AGENT_BINARY="$<TARGET_FILE:decnet-test-agent>"
    DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>"
    DECNET_ROLLOUT_BINARY="$<TARGET_FILE:decnet-rollout>")
  add_dependencies(package_install_test decnet-updaterd decnet-test-agent decnet-rollout)
endif()

# The documents' commands for a live host, run as written in a container whose systemd runs the
# helper as decnet-updater.service's main process (a stand-in daemon): docs/security-review.md's
# confinement check, helperctl status/policy/audit/selftest, the helper's --selftest,
# systemd-analyze security and the seeding of the daemon's store, each judged on what it prints.
decnet_gtest(live_host_docs_test
  SOURCES ${DECNET_INTEGRATION_DIR}/live_host_docs_test.cc
  LIBS decnet_testbed
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)
target_compile_definitions(live_host_docs_test PRIVATE
  DECNET_HELPER_BINARY="$<TARGET_FILE:decnet-update-helper>"
  DECNET_HELPERCTL_BINARY="$<TARGET_FILE:helperctl>"
  DECNET_PROBE_BINARY="$<TARGET_FILE:decnet_probe_daemon>"
  DECNET_INSTALL_PREFIX="${CMAKE_INSTALL_PREFIX}")
add_dependencies(live_host_docs_test decnet-update-helper helperctl decnet_probe_daemon)
if(TARGET decnet-updaterd)
  target_compile_definitions(live_host_docs_test PRIVATE
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>")
  add_dependencies(live_host_docs_test decnet-updaterd)
else()
  target_compile_definitions(live_host_docs_test PRIVATE DECNET_DAEMON_BINARY="")
endif()
