// The one source of the target that owns the test sources' precompiled header
// (tests/CMakeLists.txt): the header is built with this file's flags and reused by every
// GoogleTest executable.
