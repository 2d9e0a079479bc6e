#include "daemon/python_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "daemon/release_store_fs.h"

namespace decnet::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr char kBuildDir[] = ".decnet-build";
constexpr uint64_t kMaxWheelBytes = 1ull << 30;

// Reads [build-system] requires with the standard library's TOML reader (Python 3.11) and
// writes them one per line; setuptools' defaults when the table is absent (pip does the same).
constexpr char kBuildRequiresScript[] = R"(import os, sys, tomllib
reqs = ["setuptools>=40.8.0", "wheel"]
if os.path.isfile("pyproject.toml"):
    with open("pyproject.toml", "rb") as f:
        reqs = tomllib.load(f).get("build-system", dict()).get("requires", reqs)
with open(sys.argv[1], "w") as f:
    f.write("".join(str(r) + "\n" for r in reqs))
)";

bool IsRegularAt(int dir_fd, const char* name) {
  struct stat st {};
  return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

// A wheel file name as pip writes it: no path, no leading dot, a bounded plain charset.
bool IsWheelName(std::string_view name) {
  if (name.size() < 5 || name.size() > 200 || !name.ends_with(".whl") || name.front() == '.') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '+' || c == '!';
  });
}

Result<std::vector<std::string>> ListWheels(int dir_fd) {
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open a wheel directory");
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return IoError("list a wheel directory");
  }
  std::vector<std::string> out;
  while (dirent* e = readdir(dir)) {
    if (IsWheelName(e->d_name) && IsRegularAt(dir_fd, e->d_name)) out.emplace_back(e->d_name);
  }
  closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}

tl::unexpected<Error> WheelhouseError(const std::string& what) {
  return Fail(ErrorCode::kFailed, "install-wheelhouse", what + ": " + std::strerror(errno));
}

// Copies `name` from `from` into `to` under a temporary name, then renames it into place.
Result<void> CopyWheel(int from, int to, const std::string& name) {
  UniqueFd src(openat(from, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!src.valid() || fstat(src.get(), &st) != 0) return WheelhouseError("open " + name);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > kMaxWheelBytes) {
    return Fail(ErrorCode::kFailed, "install-wheelhouse", name + " is not a wheel file");
  }
  const std::string temp = ".tmp-" + name;
  (void)unlinkat(to, temp.c_str(), 0);
  UniqueFd dst(
      openat(to, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!dst.valid()) return WheelhouseError("create " + temp);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n =
        copy_file_range(src.get(), nullptr, dst.get(), nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      (void)unlinkat(to, temp.c_str(), 0);
      return WheelhouseError("copy " + name);
    }
    left -= n;
  }
  if (fsync(dst.get()) != 0 || renameat(to, temp.c_str(), to, name.c_str()) != 0) {
    (void)unlinkat(to, temp.c_str(), 0);
    return WheelhouseError("store " + name);
  }
  return {};
}

// Files the release's build collected that the wheelhouse lacks, but the project's own.
Result<int> HarvestWheels(int wheels_fd, int wheelhouse_fd, const std::string& project_wheel) {
  auto have = ListWheels(wheelhouse_fd);
  if (!have) return tl::make_unexpected(have.error());
  auto built = ListWheels(wheels_fd);
  if (!built) return tl::make_unexpected(built.error());
  int copied = 0;
  for (const std::string& name : *built) {
    // SECURITY: a wheel, once in the wheelhouse, is never replaced: what a later release
    // brings under the same name cannot change what earlier releases were built from.
    if (name == project_wheel || std::binary_search(have->begin(), have->end(), name)) continue;
    if (auto ok = CopyWheel(wheels_fd, wheelhouse_fd, name); !ok)
      return tl::make_unexpected(ok.error());
    ++copied;
  }
  if (copied > 0 && fsync(wheelhouse_fd) != 0) return WheelhouseError("sync the wheelhouse");
  return copied;
}

// The installer's state across its steps: one deadline, one output.
class Installer {
 public:
  Installer(const PythonEnvConfig& config, const InstallVars& vars, int release_dir_fd)
      : config_(config),
        vars_(vars),
        dir_fd_(release_dir_fd),
        deadline_(Clock::now() + config.timeout),
        build_(vars.release_dir + "/" + kBuildDir),
        venv_python_(vars.release_dir + "/" + kReleaseVenvDir + "/bin/python") {}

  Result<InstallOutput> Run();

 private:
  enum class Net { kOffline, kIndex };
  // Runs one step; on failure the error's message ends with the combined output.
  Result<void> Step(std::vector<std::string> argv, Net net = Net::kOffline);
  // A pip step that may need the index: offline first, then (when configured and pip said a
  // requirement is missing) against the index. `missing` receives what was still missing.
  Result<void> Fetch(const std::vector<std::string>& argv, std::string* missing);
  std::vector<std::string> Finder(Net net) const;
  tl::unexpected<Error> Failed(Error e) const;
  std::string Output() const;
  Result<std::string> ProjectWheel();

  const PythonEnvConfig& config_;
  const InstallVars& vars_;
  int dir_fd_;
  Clock::time_point deadline_;
  std::string build_;
  std::string venv_python_;
  std::string output_;
  uint64_t dropped_ = 0;
};

std::vector<std::string> Installer::Finder(Net net) const {
  std::vector<std::string> args;
  if (net == Net::kIndex) {
    args = {"--index-url", config_.package_index};
  } else {
    args = {"--no-index"};
  }
  args.insert(args.end(), {"--find-links", config_.wheelhouse});
  for (const std::string& dir : config_.system_wheel_dirs) {
    args.insert(args.end(), {"--find-links", dir});
  }
  return args;
}

std::string Installer::Output() const {
  if (dropped_ == 0) return output_;
  return "\xE2\x80\xA6truncated " + std::to_string(dropped_) + " earlier bytes\xE2\x80\xA6\n" +
         output_;
}

tl::unexpected<Error> Installer::Failed(Error e) const {
  e.message += "; output:\n" + Output();
  return tl::make_unexpected(std::move(e));
}

Result<void> Installer::Step(std::vector<std::string> argv, Net net) {
  auto left = duration_cast<milliseconds>(deadline_ - Clock::now());
  std::string line = "$";
  for (const std::string& a : argv) line += " " + a;
  output_ += line + "\n";
  if (left.count() <= 0) {
    return Failed(Error{
        ErrorCode::kTimeout, "install-timeout",
        "the Python install ran longer than " + std::to_string(config_.timeout.count()) + " ms"});
  }
  InstallCommandConfig command;
  command.argv = std::move(argv);
  command.env = {{"PIP_CONFIG_FILE", "/dev/null"},  // the host's pip.conf is not the release's
                 {"PIP_DISABLE_PIP_VERSION_CHECK", "1"}, {"PIP_NO_INPUT", "1"},
                 {"PIP_CACHE_DIR", build_ + "/cache"},   {"PYTHONNOUSERSITE", "1"},
                 {"SOURCE_DATE_EPOCH", "315532800"}};
  command.timeout = left;
  command.kill_grace = config_.kill_grace;
  command.output_cap = config_.output_cap;
  command.sandbox.read_paths = {config_.wheelhouse};
  command.sandbox.read_paths.insert(command.sandbox.read_paths.end(),
                                    config_.system_wheel_dirs.begin(),
                                    config_.system_wheel_dirs.end());
  command.sandbox.max_landlock_abi = config_.max_landlock_abi;
  if (net == Net::kIndex) {
    auto port = PackageIndexPort(config_.package_index);
    if (!port) return Failed(port.error());
    command.sandbox.index_port = *port;
  }
  std::string failure_output;
  auto ran = RunInstallCommand(command, vars_, dir_fd_, &failure_output);
  output_ += ran ? ran->output : failure_output;
  if (output_.size() > config_.output_cap) {
    dropped_ += output_.size() - config_.output_cap;
    output_.erase(0, output_.size() - config_.output_cap);
  }
  if (ran) return {};
  Error e = ran.error();
  if (auto cut = e.message.find("; output:\n"); cut != std::string::npos) e.message.erase(cut);
  e.message = "step `" + line.substr(2, 200) + "`: " + e.message;
  return Failed(std::move(e));
}

Result<void> Installer::Fetch(const std::vector<std::string>& argv, std::string* missing) {
  const size_t mark = output_.size();
  std::vector<std::string> offline = argv;
  auto finder = Finder(Net::kOffline);
  offline.insert(offline.end(), finder.begin(), finder.end());
  auto ran = Step(offline);
  if (ran) return {};
  *missing = MissingRequirement(output_.substr(std::min(mark, output_.size())));
  if (missing->empty() || config_.package_index.empty()) return ran;
  // SECURITY: the index is reached only for what the wheelhouse lacks, and only this run has
  // the network.
  const size_t online_mark = output_.size();
  std::vector<std::string> online = argv;
  finder = Finder(Net::kIndex);
  online.insert(online.end(), finder.begin(), finder.end());
  ran = Step(online, Net::kIndex);
  if (!ran) *missing = MissingRequirement(output_.substr(std::min(online_mark, output_.size())));
  return ran;
}

Result<std::string> Installer::ProjectWheel() {
  auto build = OpenDirAt(dir_fd_, kBuildDir);
  if (!build) return tl::make_unexpected(build.error());
  auto project = OpenDirAt(build->get(), "project");
  if (!project) return tl::make_unexpected(project.error());
  auto wheels = ListWheels(project->get());
  if (!wheels) return tl::make_unexpected(wheels.error());
  if (wheels->size() != 1) {
    return Failed(
        Error{ErrorCode::kFailed, "install-failed",
              "building the project gave " + std::to_string(wheels->size()) + " wheels, not one"});
  }
  return wheels->front();
}

Result<InstallOutput> Installer::Run() {
  const auto start = Clock::now();
  auto missing_error = [&](const std::string& requirement) {
    std::string where = config_.package_index.empty()
                            ? " and no package index is configured (package_index)"
                            : " nor on the package index " + config_.package_index;
    return Failed(Error{ErrorCode::kFailed, "install-requirement-missing",
                        "the release requires " + requirement +
                            ", which is not in the wheelhouse " + config_.wheelhouse + where});
  };
  if (mkdir(config_.wheelhouse.c_str(), 0755) != 0 && errno != EEXIST) {
    return WheelhouseError("create " + config_.wheelhouse);
  }
  UniqueFd wheelhouse(
      open(config_.wheelhouse.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!wheelhouse.valid()) return WheelhouseError("open " + config_.wheelhouse);
  // What an earlier attempt left is not this build's.
  (void)RemoveTreeAt(dir_fd_, kBuildDir);
  (void)RemoveTreeAt(dir_fd_, kReleaseVenvDir);
  auto build = EnsureDirAt(dir_fd_, kBuildDir);
  if (!build) return tl::make_unexpected(build.error());
  struct Cleanup {
    int dir;
    ~Cleanup() { (void)RemoveTreeAt(dir, kBuildDir); }
  } cleanup{dir_fd_};

  const std::string venv = vars_.release_dir + "/" + kReleaseVenvDir;
  // pip comes from Debian's own wheels (ensurepip, run on its own so its output is kept).
  if (auto ok = Step({config_.python, "-m", "venv", "--without-pip", venv}); !ok) {
    return tl::make_unexpected(ok.error());
  }
  if (auto ok = Step({venv_python_, "-m", "ensurepip", "--default-pip"}); !ok) {
    return tl::make_unexpected(ok.error());
  }
  const std::string requires_file = build_ + "/build-requirements.txt";
  if (auto ok = Step({venv_python_, "-I", "-c", kBuildRequiresScript, requires_file}); !ok) {
    return tl::make_unexpected(ok.error());
  }
  // Build dependencies as wheels, so that the next release builds offline from them.
  std::string missing;
  auto build_deps = Fetch(
      {venv_python_, "-m", "pip", "wheel", "--wheel-dir", build_ + "/wheels", "-r", requires_file},
      &missing);
  if (!build_deps && missing.empty()) return tl::make_unexpected(build_deps.error());
  const std::string project_dir = build_ + "/project";
  Result<void> built;
  if (build_deps) {
    built = Step({venv_python_, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", project_dir,
                  "--no-index", "--find-links", build_ + "/wheels", vars_.release_dir});
  } else {
    // Not to be had (Debian 12 ships setuptools but no `wheel` wheel): the system's own build
    // tooling builds the project, without isolation.
    output_ += "(build requirement " + missing + " unavailable: building with the system's " +
               config_.python + ")\n";
    built = Step({config_.python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--no-index", "--wheel-dir", project_dir, vars_.release_dir});
  }
  if (!built) return tl::make_unexpected(built.error());
  auto project_wheel = ProjectWheel();
  if (!project_wheel) return tl::make_unexpected(project_wheel.error());
  const std::string wheel_path = project_dir + "/" + *project_wheel;
  missing.clear();
  auto deps = Fetch({venv_python_, "-m", "pip", "wheel", "--wheel-dir", build_ + "/wheels",
                     "--find-links", project_dir, wheel_path},
                    &missing);
  if (!deps && !missing.empty()) return missing_error(missing);
  if (!deps) return tl::make_unexpected(deps.error());
  if (auto ok = Step({venv_python_, "-m", "pip", "install", "--no-index", "--find-links",
                      build_ + "/wheels", wheel_path});
      !ok) {
    return tl::make_unexpected(ok.error());
  }
  auto wheels = OpenDirAt(build->get(), "wheels");
  if (!wheels) return tl::make_unexpected(wheels.error());
  auto copied = HarvestWheels(wheels->get(), wheelhouse.get(), *project_wheel);
  if (!copied) return tl::make_unexpected(copied.error());
  output_ += "(" + std::to_string(*copied) + " new wheels kept in " + config_.wheelhouse + ")\n";
  InstallOutput out;
  out.output = Output();
  out.truncated = dropped_ > 0;
  out.duration = duration_cast<milliseconds>(Clock::now() - start);
  return out;
}

}  // namespace

bool IsPythonRelease(int release_dir_fd) {
  return IsRegularAt(release_dir_fd, "pyproject.toml") || IsRegularAt(release_dir_fd, "setup.py");
}

Result<uint16_t> PackageIndexPort(const std::string& url) {
  auto bad = [&]() {
    return Fail(ErrorCode::kMalformed, "config-value",
                "package_index must be an http:// or https:// URL");
  };
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return bad();
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return bad();
  std::string rest = url.substr(scheme_end + 3);
  std::string authority = rest.substr(0, rest.find('/'));
  if (authority.empty() || authority.find('@') != std::string::npos) return bad();
  size_t colon = authority.rfind(':');
  if (colon == std::string::npos || authority.back() == ']') {
    return static_cast<uint16_t>(scheme == "https" ? 443 : 80);
  }
  std::string digits = authority.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad();
  }
  int port = std::stoi(digits);
  if (port < 1 || port > 65535) return bad();
  return static_cast<uint16_t>(port);
}

std::string MissingRequirement(std::string_view pip_output) {
  constexpr std::string_view kMarker = "No matching distribution found for ";
  size_t at = pip_output.rfind(kMarker);
  if (at == std::string_view::npos) return "";
  std::string_view rest = pip_output.substr(at + kMarker.size());
  rest = rest.substr(0, std::min(rest.find('\n'), size_t{200}));
  while (!rest.empty() && (rest.back() == '\r' || rest.back() == ' ')) rest.remove_suffix(1);
  return std::string(rest);
}

Result<InstallOutput> InstallPythonRelease(const PythonEnvConfig& config, const InstallVars& vars,
                                           int release_dir_fd) {
  if (config.wheelhouse.empty() || config.wheelhouse.front() != '/' || config.python.empty() ||
      config.python.front() != '/') {
    return Fail(ErrorCode::kMalformed, "install-config",
                "the Python installer needs absolute paths for python and the wheelhouse");
  }
  if (!config.package_index.empty()) {
    if (auto port = PackageIndexPort(config.package_index); !port) {
      return tl::make_unexpected(port.error());
    }
  }
  Installer installer(config, vars, release_dir_fd);
  return installer.Run();
}

}  // namespace decnet::daemon
