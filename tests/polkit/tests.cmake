# Tests of the polkit rule's renderer (polkit/): the shipped file is its default output,
# refused values, and the rendered unit pattern. The rule under a real polkitd is
# tests/integration/polkit_rule_test.cc.
decnet_gtest(polkit_rule_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/polkit_rule_test.cc
  LIBS decnet_polkit_rule decnet_policy)
