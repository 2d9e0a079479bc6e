// End to end with a DECNET-like Python tree, on the real helper, daemon and systemd (the
// world of updater_e2e_fixture.h): package `decnet`, console script `decnet` whose `agent`
// serves mTLS /health with the package's version (Python's ssl and http.server, the agent
// certificate at /etc/decnet/agent), packed as DECNET's tar_working_tree packs a working tree
// (regular files only, no directory entries, no .venv) and pushed with curl, with the default
// installer and no package index. The first release also ships the unit decnet-agent.service
// (ExecStart=/usr/local/bin/decnet agent ...); later ones carry only DECNET's default includes,
// so the installed unit stays as it is.
//
// Environments are not relocatable: the daemon (on the host) builds each release's .venv at
// the host's path of the store, so the container sees the store at that same path, the host's
// Python at /usr/bin/python3 (the minimal root filesystem has none) and the link directory at
// /usr/local/bin, where the unit finds `decnet`.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "proto/sha256.h"
#include "tests/integration/updater_e2e_fixture.h"
#include "tests/support/python_index.h"

namespace decnet::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kAgentCerts[] = "/etc/decnet/agent";  // where the fixture puts them

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// DECNET's tar_working_tree: for each included path, the regular files beneath it (no
// directories, no symlinks, no __pycache__), named relative to the root, gzipped.
constexpr char kPackScript[] = R"(import pathlib, sys, tarfile
root, out, includes = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
with tarfile.open(out, "w:gz") as tar:
    for entry in includes:
        base = root / entry
        if not base.exists() or base.is_symlink():
            continue
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in paths:
            if path.is_symlink() or path.is_dir() or "__pycache__" in path.parts:
                continue
            tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
)";

// The agent: `decnet agent --port P --ca CA --cert CRT --key KEY` answers GET /health over
// mTLS (a client certificate chained to CA required) with its version, and where its code
// runs from (sys.prefix, the package's file). @IMPORT@ and @FIELD@ add a dependency's use.
constexpr char kCli[] = R"(import argparse
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import decnet
@IMPORT@

def health():
    body = {"status": "ok", "version": decnet.__version__, "prefix": sys.prefix,
            "module": decnet.__file__}
    @FIELD@
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.request.do_handshake()
        super().setup()

    def do_GET(self):
        if self.path == "/health":
            status, payload = 200, json.dumps(health()).encode()
        else:
            status, payload = 404, b'{"detail": "not found"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, context):
        self.context = context
        super().__init__(address, Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        sock.settimeout(10)
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        print("decnet agent: a client failed:", sys.exc_info()[1], file=sys.stderr)


def agent(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(args.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server = Server((args.host, args.port), context)
    print("decnet agent", decnet.__version__, "on", args.host, args.port, file=sys.stderr,
          flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(prog="decnet")
    commands = parser.add_subparsers(dest="command", required=True)
    a = commands.add_parser("agent")
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--port", type=int, default=8765)
    a.add_argument("--ca", required=True)
    a.add_argument("--cert", required=True)
    a.add_argument("--key", required=True)
    commands.add_parser("version")
    args = parser.parse_args()
    if args.command == "agent":
        return agent(args)
    print("decnet", decnet.__version__)
    return 0
)";

// A build backend that refuses, as a broken packaging change would.
constexpr char kRefusingBackend[] = R"(def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    raise RuntimeError("this tree refuses to build: backend-says-no-4242")


build_sdist = build_wheel
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

struct PyTree {
  std::string version;
  std::vector<std::string> dependencies;  // each imported by the agent, its VALUE reported
  bool ships_unit = false;                // etc/systemd/system/decnet-agent.service
  bool refusing_backend = false;
};

class ADecnetTreeOnARealSystemd : public AnUpdaterOnARealSystemd {
 protected:
  Testbed::Options TestbedOptions() const override {
    Testbed::Options o = AnUpdaterOnARealSystemd::TestbedOptions();
    o.name_prefix = "e2epy";
    const fs::path python = fs::canonical("/usr/bin/python3");
    o.extra_nspawn_args.insert(
        o.extra_nspawn_args.end(),
        {"--bind-ro=" + install_dir().string() + ":" + install_dir().string(),
         "--bind-ro=" + link_dir().string() + ":/usr/local/bin",
         "--bind-ro=" + python.string() + ":/usr/bin/python3",
         "--bind-ro=/usr/lib/" + python.filename().string() + ":/usr/lib/" +
             python.filename().string()});
    // The host's own builds of what its Python links, whatever the root filesystem holds.
    for (const char* lib : {"libexpat.so.1", "libssl.so.3", "libcrypto.so.3"}) {
      const fs::path path = fs::path("/lib/x86_64-linux-gnu") / lib;
      std::error_code ec;
      if (fs::exists(path, ec))
        o.extra_nspawn_args.push_back("--bind-ro=" + fs::canonical(path).string() + ":" +
                                      path.string());
    }
    return o;
  }

  void AdjustDaemonConfig(json& config) const override {
    config.erase("links");  // the default: decnet -> .venv/bin/decnet
    config["units"] = {kAgent};
    config["install_timeout_ms"] = 90'000;
    config["update_deadline_ms"] = 110'000;  // below the fixture's curl timeout (120 s)
    config["probe"]["attempts"] = 20;        // Python starts slower than the C++ agent
  }

  void AdjustHelperPolicy(helper::Policy& policy) const override {
    policy.links = {{"decnet", (install_dir() / "current").string()}};
  }

  std::string AgentUnit() const {
    return std::string(
               "[Unit]\nDescription=DECNET agent\n\n[Service]\nType=exec\nUser=decnet\n"
               "Group=decnet\nNoNewPrivileges=yes\nExecStart=/usr/local/bin/decnet agent "
               "--host 127.0.0.1 --port ") +
           std::to_string(agent_port()) + " --ca " + kAgentCerts + "/ca.crt --cert " + kAgentCerts +
           "/agent.crt --key " + kAgentCerts + "/agent.key\n";
  }

  // Writes the tree and packs it as DECNET's master does; `sha` (the commit DECNET sends) is
  // the version, which the daemon's gate then expects the agent to report.
  BuiltRelease BuildTree(const PyTree& spec) {
    const fs::path tree = root() / "build" / ("py-" + spec.version + "-" + std::to_string(++n_));
    std::string deps;
    for (const auto& d : spec.dependencies) deps += "\"" + d + "\", ";
    const std::string backend =
        spec.refusing_backend
            ? "requires = []\nbuild-backend = \"decnet.refusing_backend\"\nbackend-path = [\".\"]\n"
            : "requires = [\"setuptools>=40.8.0\", \"wheel\"]\n"
              "build-backend = \"setuptools.build_meta\"\n";
    WriteText(tree / "pyproject.toml",
              "[build-system]\n" + backend + "\n[project]\nname = \"decnet\"\nversion = \"" +
                  spec.version + "\"\nrequires-python = \">=3.11\"\ndependencies = [" + deps +
                  "]\n\n[project.scripts]\ndecnet = \"decnet.cli:main\"\n\n[tool.setuptools]\n"
                  "packages = [\"decnet\"]\n");
    WriteText(tree / "README.md", "DECNET-like test tree " + spec.version + "\n");
    WriteText(tree / "decnet/__init__.py", "__version__ = \"" + spec.version + "\"\n");
    std::string imports, fields;
    for (const auto& d : spec.dependencies) {
      imports += "import " + d + "\n";
      fields += "body[\"" + d + "\"] = " + d + ".VALUE\n    ";
    }
    WriteText(tree / "decnet/cli.py",
              Replace(Replace(kCli, "@IMPORT@", imports), "@FIELD@", fields + "pass"));
    if (spec.refusing_backend) WriteText(tree / "decnet/refusing_backend.py", kRefusingBackend);
    // Churn DECNET's packer leaves out.
    WriteText(tree / "decnet/__pycache__/cli.cpython-311.pyc", "stale");
    WriteText(tree / ".venv/bin/python3", "a developer's environment");
    std::vector<std::string> includes = {"pyproject.toml", "LICENSE", "README.md", "decnet"};
    if (spec.ships_unit) {
      WriteText(tree / "etc/systemd/system" / kAgent, AgentUnit());
      includes.push_back("etc");
    }
    BuiltRelease r;
    r.version = spec.version;
    r.sha = spec.version;
    r.tarball = tree.string() + ".tar.gz";
    WriteText(root() / "build/pack.py", kPackScript);
    std::string cmd = "/usr/bin/python3 " + (root() / "build/pack.py").string() + " " +
                      tree.string() + " " + r.tarball.string();
    for (const auto& i : includes) cmd += " " + i;
    auto [rc, out] = ShellWithOutput(cmd);
    EXPECT_EQ(rc, 0) << out;
    r.sha256 = Sha256Hex(Slurp(r.tarball));
    return r;
  }

  fs::path ReleaseDir(const BuiltRelease& r) const { return install_dir() / "releases" / r.id(); }

  // The agent's own answer, and where its code runs from: VERSION from RELEASE's own .venv.
  void ExpectAgentRuns(const std::string& version, const BuiltRelease& release) {
    HttpReply health = AgentHealth();
    ASSERT_EQ(health.status, 200) << health.Describe();
    EXPECT_EQ(Str(health.json, "version"), version) << health.Describe();
    const fs::path venv = ReleaseDir(release) / ".venv";
    EXPECT_EQ(Str(health.json, "prefix"), venv.string()) << health.Describe();
    EXPECT_TRUE(Str(health.json, "module").starts_with(venv.string() + "/lib/"))
        << health.Describe();
    EXPECT_EQ(Property(kAgent, kUnitIface, "ActiveState"), "active");
    EXPECT_EQ(Property(kAgent, kServiceIface, "User"), "decnet");
  }

  // /usr/local/bin/decnet (the fixture's link dir, the container's /usr/local/bin) names the
  // active release's console script through `current`.
  void ExpectLinkInto(const BuiltRelease& release) {
    const fs::path link = link_dir() / "decnet";
    std::error_code ec;
    EXPECT_EQ(fs::read_symlink(link, ec), install_dir() / "current/.venv/bin/decnet");
    EXPECT_EQ(fs::canonical(link, ec), ReleaseDir(release) / ".venv/bin/decnet") << ec.message();
    EXPECT_EQ(CurrentRelease(), release.id());
  }

  std::vector<json> Updates() const {
    std::vector<json> out;
    for (const json& e : AuditLog())
      if (Str(e, "op") == "update") out.push_back(e);
    return out;
  }

  int n_ = 0;
};

TEST_F(ADecnetTreeOnARealSystemd, RunsEachPushedReleaseFromItsOwnEnvironmentAndRefusesABrokenOne) {
  // --- (1) the first push: installed with no index, the agent runs the new code
  const BuiltRelease v1 = BuildTree({"1.0.0", {}, /*ships_unit=*/true});
  const auto t1 = Clock::now();
  HttpReply first = Push(v1);
  const double first_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(Str(first.json, "status"), "updated") << first.Describe();
  EXPECT_EQ(Str(first.json["release"], "version"), "1.0.0") << first.Describe();
  ExpectAgentRuns("1.0.0", v1);
  ExpectLinkInto(v1);
  EXPECT_NE(Slurp(testbed().unit_dir() / kAgent).find("ExecStart=/usr/local/bin/decnet agent"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(ReleaseDir(v1) / "decnet/__pycache__/cli.cpython-311.pyc"))
      << "DECNET's packer leaves churn out";
  EXPECT_TRUE(fs::is_directory(install_dir() / "wheelhouse"));
  if (HasFatalFailure()) return;

  // --- (2) a second release, dependencies unchanged: no network, seconds
  const BuiltRelease v2 = BuildTree({"1.1.0", {}, false});
  const auto t2 = Clock::now();
  HttpReply second = Push(v2);
  const double second_seconds = std::chrono::duration<double>(Clock::now() - t2).count();
  ASSERT_EQ(second.status, 200) << second.Describe();
  ExpectAgentRuns("1.1.0", v2);
  ExpectLinkInto(v2);
  const auto updates = Updates();
  ASSERT_EQ(updates.size(), 2u);
  const json durations = updates[1].value("durations_ms", json::object());
  std::printf("first DECNET-tree update (new environment): %.1f s\n", first_seconds);
  std::printf("no-change-deps update, end to end (push to healthy agent): %.1f s; steps (ms): %s\n",
              second_seconds, durations.dump().c_str());
  RecordProperty("no_change_deps_update_seconds", std::to_string(second_seconds));
  EXPECT_TRUE(fs::exists(ReleaseDir(v1) / ".venv/bin/decnet")) << "the old release keeps its own";
  if (HasFatalFailure()) return;

  // --- (3) POST /rollback: the old code, from the old release's own environment
  HttpReply back = Rollback();
  ASSERT_EQ(back.status, 200) << back.Describe();
  ExpectAgentRuns("1.0.0", v1);
  ExpectLinkInto(v1);
  if (HasFatalFailure()) return;

  // --- (4) a release whose build fails: refused with the installer's output, nothing switched
  const std::string pid_before = Property(kAgent, kServiceIface, "MainPID");
  const auto releases_before = StoredReleases();
  const BuiltRelease broken = BuildTree({"1.2.0", {}, false, /*refusing_backend=*/true});
  HttpReply refused = Push(broken);
  EXPECT_EQ(refused.status, 500) << refused.Describe();
  const json detail = refused.json.is_object() ? refused.json.value("detail", json()) : json();
  EXPECT_EQ(Str(detail, "rule"), "install-failed") << refused.Describe();
  EXPECT_EQ(detail.value("rolled_back", true), false) << refused.Describe();
  EXPECT_NE(Str(detail, "stderr").find("this tree refuses to build: backend-says-no-4242"),
            std::string::npos)
      << "the installer's output is DECNET's `stderr`: " << refused.Describe();
  EXPECT_EQ(Property(kAgent, kServiceIface, "MainPID"), pid_before) << "the agent was not touched";
  ExpectAgentRuns("1.0.0", v1);
  ExpectLinkInto(v1);
  EXPECT_EQ(StoredReleases(), releases_before) << "the failed release left nothing behind";
  EXPECT_EQ(Str(Updates().back(), "result"), "failed") << Updates().back().dump();

  // --- (5) a new dependency, only on a local index
  const std::string wheels = (root() / "build/wheels").string();
  BuildDependencyWheel(wheels, "newdep", wheels + "/dist");
  ASSERT_FALSE(HasFatalFailure());
  LocalIndex index((root() / "build/index").string(),
                   {wheels + "/dist/newdep-1.0-py3-none-any.whl"});
  const BuiltRelease v3 = BuildTree({"1.3.0", {"newdep"}, false});
  // Without the index configured: refused, naming the requirement.
  HttpReply offline = Push(v3);
  EXPECT_EQ(offline.status, 500) << offline.Describe();
  const json offline_detail =
      offline.json.is_object() ? offline.json.value("detail", json()) : json();
  EXPECT_EQ(Str(offline_detail, "rule"), "install-requirement-missing") << offline.Describe();
  EXPECT_NE(Str(offline_detail, "error").find("newdep"), std::string::npos) << offline.Describe();
  ExpectAgentRuns("1.0.0", v1);
  // With it: the helper (and so the daemon) restarted with the changed configuration.
  json config = json::parse(Slurp(root() / "daemon.json"));
  config["package_index"] = index.url();
  WriteText(root() / "daemon.json", config.dump(2));
  RestartHelper();
  ASSERT_FALSE(HasFatalFailure());
  HttpReply online = Push(v3);
  ASSERT_EQ(online.status, 200) << online.Describe();
  ExpectAgentRuns("1.3.0", v3);
  EXPECT_EQ(AgentHealth().json.value("newdep", 0), 42) << "the dependency is importable";
  ExpectLinkInto(v3);
  EXPECT_TRUE(fs::exists(install_dir() / "wheelhouse/newdep-1.0-py3-none-any.whl"))
      << "kept for the next release";
  EXPECT_FALSE(fs::exists(install_dir() / "wheelhouse/decnet-1.3.0-py3-none-any.whl"));
}

}  // namespace
}  // namespace decnet::test
