// Included once by each daemon executable's main file. In sanitizer builds only: the daemon
// runs copies of itself (update-self's `--version` smoke run, `--install-build`) as confined
// children whose environment is scrubbed, so ASAN_OPTIONS never reaches them, and whose
// seccomp filter refuses ptrace, which LeakSanitizer needs to stop the world at exit. Leak
// checking is therefore off by default in these binaries (as the test presets set it anyway);
// ASan and UBSan still abort on the first error.
#pragma once

#if defined(DECNET_SANITIZER_BUILD)
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
extern "C" const char* __lsan_default_options() { return "detect_leaks=0"; }
#endif
