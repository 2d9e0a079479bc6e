// Drives scripts/testbed/container.sh; reads unit properties with sd-bus so that fixtures
// check systemd's view independently of the sdbus-c++ adapter under test.
#include "tests/integration/testbed.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#ifndef DECNET_SOURCE_DIR
#error "DECNET_SOURCE_DIR must name the source tree (the scripts live there)"
#endif

extern char** environ;

namespace decnet::test {
namespace {

namespace fs = std::filesystem;

const fs::path kContainerScript = fs::path(DECNET_SOURCE_DIR) / "scripts/testbed/container.sh";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  std::ostringstream name;
  name << prefix << '-' << getpid() << '-' << counter++ << '-' << std::hex << (rd() & 0xffffff);
  return name.str();
}

// Reads a byte array (e.g. InvocationID) inside a variant as lower-case hex.
tl::expected<std::string, std::string> ReadByteArrayAsHex(sd_bus_message* reply) {
  int r = sd_bus_message_enter_container(reply, 'v', "ay");
  if (r < 0) return tl::make_unexpected(std::string("cannot enter the variant"));
  const void* data = nullptr;
  size_t size = 0;
  r = sd_bus_message_read_array(reply, 'y', &data, &size);
  if (r < 0) return tl::make_unexpected(std::string("cannot read the bytes: ") + std::strerror(-r));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < size; ++i) {
    const auto byte = static_cast<const unsigned char*>(data)[i];
    hex += kHex[byte >> 4];
    hex += kHex[byte & 0xf];
  }
  return hex;
}

// Reads the single basic value (or byte array) inside a variant as text.
tl::expected<std::string, std::string> ReadVariantAsText(sd_bus_message* reply) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(reply, &type, &contents);
  if (r > 0 && type == 'v' && contents != nullptr && std::strcmp(contents, "ay") == 0) {
    return ReadByteArrayAsHex(reply);
  }
  if (r <= 0 || type != 'v' || contents == nullptr || std::strlen(contents) != 1) {
    return tl::make_unexpected(std::string("reply is not a variant of a basic type or byte array"));
  }
  r = sd_bus_message_enter_container(reply, 'v', contents);
  if (r < 0) return tl::make_unexpected(std::string("cannot enter the variant"));
  union {
    const char* s;
    uint32_t u;
    int32_t i;
    uint64_t t;
    int64_t x;
    int b;
    uint16_t q;
    int16_t n;
    uint8_t y;
  } v{};
  const char c = contents[0];
  r = sd_bus_message_read_basic(reply, c, &v);
  if (r < 0) return tl::make_unexpected(std::string("cannot read the value: ") + std::strerror(-r));
  switch (c) {
    case 's':
    case 'o':
    case 'g':
      return std::string(v.s);
    case 'u':
      return std::to_string(v.u);
    case 'i':
      return std::to_string(v.i);
    case 't':
      return std::to_string(v.t);
    case 'x':
      return std::to_string(v.x);
    case 'b':
      return std::string(v.b ? "true" : "false");
    case 'q':
      return std::to_string(v.q);
    case 'n':
      return std::to_string(v.n);
    case 'y':
      return std::to_string(v.y);
    default:
      return tl::make_unexpected(std::string("unsupported type ") + c);
  }
}

}  // namespace

int RunToLog(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

tl::expected<std::unique_ptr<Testbed>, std::string> Testbed::Start(const Options& options) {
  char tmpl[] = "/tmp/decnet-testbed-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return tl::make_unexpected(std::string("mkdtemp: ") + std::strerror(errno));
  }
  std::unique_ptr<Testbed> tb(new Testbed(UniqueName(options.name_prefix), tmpl));
  // The registry entry names this process as owner: `container.sh reap` stops the
  // container if this process dies without stopping it.
  setenv("DECNET_TESTBED_OWNER", std::to_string(getpid()).c_str(), 1);
  std::vector<std::string> args = {kContainerScript.string(), "start", tb->name_,
                                   tb->workdir_.string()};
  if (options.share_host_network) {
    args.push_back("--share-host-network");
  } else if (!options.netns.empty()) {
    args.insert(args.end(), {"--netns", "/run/netns/" + options.netns});
  }
  args.insert(args.end(), options.extra_nspawn_args.begin(), options.extra_nspawn_args.end());
  const fs::path log = tb->workdir_ / "start.log";
  tb->running_ = true;  // even a failed start may leave something for Stop to clean
  if (RunToLog(args, log) != 0) {
    return tl::make_unexpected("container.sh start " + tb->name_ + " failed:\n" + ReadFile(log) +
                               "--- console.log ---\n" + tb->ConsoleLog());
  }
  std::string rootfs = ReadFile(tb->workdir_ / "rootfs");
  while (!rootfs.empty() && rootfs.back() == '\n') rootfs.pop_back();
  tb->rootfs_ = rootfs;
  return tb;
}

Testbed::~Testbed() {
  if (auto stopped = Stop(); !stopped) std::cerr << stopped.error() << '\n';
  std::error_code ec;
  fs::remove_all(workdir_, ec);
}

tl::expected<void, std::string> Testbed::Stop() {
  if (!running_) return {};
  running_ = false;
  const fs::path log = workdir_ / "stop.log";
  if (RunToLog({kContainerScript.string(), "stop", name_, workdir_.string()}, log) != 0) {
    return tl::make_unexpected("container.sh stop " + name_ + " failed:\n" + ReadFile(log));
  }
  return {};
}

std::string Testbed::bus_address() const {
  return "unix:path=" + (workdir_ / "dbus/system_bus_socket").string();
}

std::string Testbed::ConsoleLog() const { return ReadFile(workdir_ / "console.log"); }

bool Testbed::WriteUnit(std::string_view name, std::string_view content) const {
  std::ofstream out(unit_dir() / std::string(name), std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  return static_cast<bool>(out);
}

tl::expected<std::string, std::string> Testbed::UnitProperty(std::string_view unit,
                                                             std::string_view interface,
                                                             std::string_view property) const {
  sd_bus* bus = nullptr;
  sd_bus_message* reply = nullptr;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  auto cleanup = [&] {
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
    sd_bus_flush_close_unref(bus);
  };
  auto fail = [&](const std::string& what, int r) {
    std::string message = what + ": " + (error.message ? error.message : std::strerror(-r));
    cleanup();
    return tl::make_unexpected(message);
  };
  int r = sd_bus_new(&bus);
  if (r < 0) return fail("sd_bus_new", r);
  r = sd_bus_set_address(bus, bus_address().c_str());
  if (r >= 0) r = sd_bus_set_bus_client(bus, 1);
  if (r >= 0) r = sd_bus_start(bus);
  if (r < 0) return fail("connecting to " + bus_address(), r);

  const std::string unit_name(unit);
  r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                         "org.freedesktop.systemd1.Manager", "LoadUnit", &error, &reply, "s",
                         unit_name.c_str());
  if (r < 0) return fail("LoadUnit " + unit_name, r);
  const char* path_c = nullptr;
  r = sd_bus_message_read(reply, "o", &path_c);
  if (r < 0) return fail("reading LoadUnit's reply", r);
  const std::string path(path_c);
  reply = sd_bus_message_unref(reply);

  const std::string iface(interface), prop(property);
  r = sd_bus_call_method(bus, "org.freedesktop.systemd1", path.c_str(),
                         "org.freedesktop.DBus.Properties", "Get", &error, &reply, "ss",
                         iface.c_str(), prop.c_str());
  if (r < 0) return fail("Get " + iface + "." + prop + " of " + unit_name, r);
  auto value = ReadVariantAsText(reply);
  cleanup();
  return value;
}

tl::expected<void, std::string> Testbed::WaitForActiveState(
    std::string_view unit, std::string_view state, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  for (;;) {
    auto current = UnitProperty(unit, "org.freedesktop.systemd1.Unit", "ActiveState");
    last = current ? *current : "error: " + current.error();
    if (current && *current == state) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      return tl::make_unexpected("waited " + std::to_string(timeout.count()) + " ms for " +
                                 std::string(unit) + " to be ActiveState=" + std::string(state) +
                                 "; last seen: " + last);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void TestbedTest::SetUp() {
  auto started = Testbed::Start(TestbedOptions());
  ASSERT_TRUE(started) << started.error();
  testbed_ = std::move(*started);
  setenv("DBUS_SYSTEM_BUS_ADDRESS", testbed_->bus_address().c_str(), 1);
}

void TestbedTest::TearDown() {
  if (!testbed_) return;
  if (HasFailure()) {
    std::cerr << "--- console log of container " << testbed_->name() << " ---\n"
              << testbed_->ConsoleLog() << "--- end of console log ---\n";
  }
  if (auto stopped = testbed_->Stop(); !stopped) ADD_FAILURE() << stopped.error();
  testbed_.reset();
}

}  // namespace decnet::test
