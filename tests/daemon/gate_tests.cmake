# The health gate: the probe's parsers as tables, the probe against an in-test TLS agent
# (certificates from decnet_test_pki, real handshakes on loopback), and the whole gate with
# settling through the helper's real serve loop over a mocked systemd.
decnet_gtest(daemon_health_gate_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/health_gate_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/health_probe_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/test_agent.cc
  LIBS decnet_daemon_gate decnet_test_pki decnet_helper_core
  PROPERTIES TIMEOUT 120)
