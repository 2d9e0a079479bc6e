// The TLS part of the plan: for each bundle (the updater's, the health probe's), keep what is
// in place, install what a master issued, or make it here, signed by a given CA, the CA made
// here before, or a new one. Material is checked before it is planned, kept material too.
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "enrol/planner.h"

namespace decnet::enrol::plan_internal {

namespace fs = std::filesystem;

Ownership Planner::Want(Protection protection, mode_t mode) const {
  if (protection == Protection::kPlain) return Ownership{0, 0, mode, {}};
  return Ownership{0, 0, 0640, KeyAcl(daemon_uid_.value_or(0))};
}

Result<void> Planner::PlanTls() {
  const auto& d = c_.daemon;
  const BundleSpec updater{
      "the updater's bundle", d.tls_ca,      d.tls_cert,      d.tls_key, "updater",
      "updater.crt",          "updater.key", Purpose::kServer};
  const BundleSpec agent{"the health probe's bundle",
                         d.probe.ca,
                         d.probe.cert,
                         d.probe.key,
                         "agent",
                         "worker.crt",
                         "worker.key",
                         Purpose::kClient};
  Bundle final_updater;
  if (auto ok = PlanBundle(updater, &final_updater); !ok) return ok;
  Bundle final_agent;
  if (auto ok = PlanBundle(agent, &final_agent); !ok) return ok;
  plan_.facts.updater_cert = d.tls_cert;
  plan_.facts.updater_ca = d.tls_ca;
  const std::string local_key = std::string(kLocalCaDir) + "/ca.key";
  if (auto k = Look(local_key); k && k->exists) plan_.facts.local_ca_key = local_key;
  if (!master_pem_.empty())
    if (auto ok = CheckClientChain(final_updater.ca_pem, master_pem_); !ok) return ok;
  return {};
}

Result<void> Planner::PlanBundle(const BundleSpec& spec, Bundle* final_bundle) {
  std::vector<PathState> now;
  for (const std::string& path : {spec.ca, spec.cert, spec.key}) {
    auto s = Look(path, true);
    if (!s) return tl::make_unexpected(s.error());
    if (s->exists && !s->is_regular)
      return Refuse("enrol-tls-missing", path + " is not a regular file");
    now.push_back(*s);
  }
  const bool all = now[0].exists && now[1].exists && now[2].exists;
  const bool any = now[0].exists || now[1].exists || now[2].exists;
  const Bundle in_place{now[0].content, now[1].content, now[2].content};
  auto keep = [&]() -> Result<void> {
    auto fp = CheckBundle(in_place, spec.purpose, spec.what + " in place");
    if (!fp)
      return tl::make_unexpected(
          Error{fp.error().code, fp.error().rule, fp.error().message + " (--rotate replaces it)"});
    if (spec.purpose == Purpose::kServer) plan_.facts.updater_fingerprint = *fp;
    *final_bundle = in_place;
    FixKept(spec, now);
    return {};
  };
  if (o_.tls == TlsSource::kFrom) {
    const fs::path dir = fs::path(o_.from_dir) / spec.from_subdir;
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
      if (all) return keep();
      return Refuse("enrol-tls-missing",
                    dir.string() + " is not there and " + spec.what + " is not in place");
    }
    Bundle incoming;
    for (auto [file, into] : {std::pair{std::string("ca.crt"), &incoming.ca_pem},
                              std::pair{spec.from_cert, &incoming.cert_pem},
                              std::pair{spec.from_key, &incoming.key_pem}}) {
      auto text = ReadInput((dir / file).string());
      if (!text) return tl::make_unexpected(text.error());
      *into = *text;
    }
    auto fp = CheckBundle(incoming, spec.purpose, spec.what + " from " + dir.string());
    if (!fp) return tl::make_unexpected(fp.error());
    if (all && incoming.ca_pem == in_place.ca_pem && incoming.cert_pem == in_place.cert_pem &&
        incoming.key_pem == in_place.key_pem)
      return keep();
    if (any && !o_.rotate)
      return Refuse("enrol-tls-exists", spec.what + " in place differs from " + dir.string() +
                                            ": --rotate replaces it");
    if (spec.purpose == Purpose::kServer) plan_.facts.updater_fingerprint = *fp;
    *final_bundle = incoming;
    WriteBundle(spec, incoming, now, any ? "--rotate" : "");
    return {};
  }
  if (all && !o_.rotate) return keep();
  if (o_.tls == TlsSource::kKeep)
    return Refuse("enrol-tls-missing", spec.what + " (" + spec.ca + ", " + spec.cert + ", " +
                                           spec.key +
                                           ") is not in place: give --create or --from DIR");
  if (any && !all && !o_.rotate)
    return Refuse("enrol-tls-partial", spec.what + " is partly in place: --rotate replaces it");
  auto ca = SigningCa(spec, now[0].exists ? std::optional(now[0].content) : std::nullopt);
  if (!ca) return tl::make_unexpected(ca.error());
  LeafSpec leaf;
  leaf.purpose = spec.purpose;
  leaf.days = o_.days;
  leaf.dns_names = o_.names;
  leaf.addresses = o_.addresses;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  leaf.common_name = !o_.names.empty() ? o_.names.front() : std::string(host);
  if (spec.purpose == Purpose::kClient) {
    leaf.dns_names.clear();
    leaf.addresses.clear();
  }
  auto made = IssueLeaf(*ca, leaf);
  if (!made) return tl::make_unexpected(made.error());
  if (spec.purpose == Purpose::kServer && o_.dry_run == DryRun::kNo) {
    auto fp = Fingerprint(made->cert_pem);
    if (fp) plan_.facts.updater_fingerprint = *fp;
  }
  *final_bundle = *made;
  WriteBundle(spec, *made, now, any ? "--rotate" : "");
  return {};
}

Result<CertAndKey> Planner::SigningCa(const BundleSpec& spec,
                                      const std::optional<std::string>& in_place) {
  if (ca_) return *ca_;
  if (!o_.ca_cert.empty()) {
    auto cert = ReadInput(o_.ca_cert);
    auto key = cert ? ReadInput(o_.ca_key) : cert;
    if (!key) return tl::make_unexpected(key.error());
    CertAndKey given{*cert, *key};
    if (auto ok = CheckCa(given); !ok) return tl::make_unexpected(ok.error());
    return *(ca_ = given);
  }
  const std::string ca_crt = std::string(kLocalCaDir) + "/ca.crt";
  const std::string ca_key = std::string(kLocalCaDir) + "/ca.key";
  auto crt_now = Look(ca_crt, true);
  auto key_now = crt_now ? Look(ca_key, true) : crt_now;
  if (!key_now) return tl::make_unexpected(key_now.error());
  if (crt_now->exists && key_now->exists) {
    CertAndKey local{crt_now->content, key_now->content};
    if (auto ok = CheckCa(local); !ok) return tl::make_unexpected(ok.error());
    plan_.facts.local_ca_key = ca_key;
    return *(ca_ = local);
  }
  // SECURITY: a new CA would silently cut off a master whose certificate the old one issued.
  if (in_place)
    return Refuse("enrol-ca-key-missing",
                  spec.what + " has a CA in place (" + spec.ca +
                      ") whose key is not here: give --ca-cert and --ca-key, or remove it");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  auto made = MakeCa("decnet-updater CA " + std::string(host), 3650);
  if (!made) return tl::make_unexpected(made.error());
  if (auto ok = WantDirectory(kLocalCaDir, Owner{}, 0700, true); !ok)
    return tl::make_unexpected(ok.error());
  plan_.files.push_back(Step(FileStep::Kind::kCreate, ca_crt, made->cert_pem));
  // SECURITY: the CA key stays root's alone: the daemon never signs anything.
  plan_.files.push_back(Step(FileStep::Kind::kCreate, ca_key, made->key_pem, "", 0600,
                             Protection::kPlain, true, "the CA made for this worker"));
  plan_.facts.local_ca_key = ca_key;
  return *(ca_ = *made);
}

void Planner::WriteBundle(const BundleSpec& spec, const Bundle& b,
                          const std::vector<PathState>& now, const std::string& why) {
  const std::vector<std::tuple<std::string, std::string, Protection>> files = {
      {spec.ca, b.ca_pem, Protection::kPlain},
      {spec.cert, b.cert_pem, Protection::kPlain},
      {spec.key, b.key_pem, Protection::kDaemonKey}};
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [path, content, protection] = files[i];
    if (now[i].exists && now[i].content == content) continue;
    const bool key = protection == Protection::kDaemonKey;
    plan_.files.push_back(Step(now[i].exists ? FileStep::Kind::kReplace : FileStep::Kind::kCreate,
                               path, content, "", key ? 0640 : 0644, protection, key,
                               now[i].exists ? why : ""));
  }
  FixKept(spec, now);
}

// Files kept (or whose content is already right) get the owner, mode and ACL they must have.

void Planner::FixKept(const BundleSpec& spec, const std::vector<PathState>& now) {
  const std::vector<std::pair<std::string, Protection>> files = {
      {spec.ca, Protection::kPlain},
      {spec.cert, Protection::kPlain},
      {spec.key, Protection::kDaemonKey}};
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i].first;
    const Protection protection = files[i].second;
    const bool planned = std::any_of(plan_.files.begin(), plan_.files.end(),
                                     [&](const FileStep& f) { return f.path == path; });
    if (planned || !now[i].exists) continue;
    const mode_t mode = protection == Protection::kDaemonKey ? 0640 : 0644;
    const bool unknown_reader = protection == Protection::kDaemonKey && !daemon_uid_;
    if (unknown_reader || !HasOwnership(now[i], Want(protection, mode)))
      plan_.files.push_back(Step(FileStep::Kind::kFix, path, "", "", mode, protection,
                                 protection == Protection::kDaemonKey));
  }
}

}  // namespace decnet::enrol::plan_internal
