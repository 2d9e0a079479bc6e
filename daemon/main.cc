// decnet-updaterd: the unprivileged half of decnet-updater. See daemon_main.h.
#include "daemon/daemon_main.h"
#include "daemon/sanitizer_defaults.h"

int main(int argc, char** argv) { return decnet::daemon::RunDaemon(argc, argv); }
