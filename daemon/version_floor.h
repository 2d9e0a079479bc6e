// The never-older floor: per release kind, the highest ordered version (CompareVersions,
// proto/release_auth.h) this host has ever activated. It lives in STATE_DIR/version-floor.json
//   {"format":1,"service":"1.4.0"|null,"updater":"0.9.2"|null}
// written whole to a temporary file, fsynced, renamed over the old one and the directory
// fsynced, so a crash leaves the old floor or the new one, never a torn file. It only rises:
// it is raised when a release is activated (its health gate passed, or update-self
// committed), never lowered, not by a rollback and not by an allowed downgrade.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "proto/release_manifest.h"
#include "proto/result.h"

namespace decnet::daemon {

inline constexpr char kVersionFloorFile[] = "version-floor.json";

// What a push said about going below the floor.
enum class Downgrade {
  kNotAsked,   // no downgrade=true in the form
  kRefused,    // asked, but the configuration does not allow it
  kPermitted,  // asked and allowed (allow_downgrade)
};

// A release's version as the floor sees it. Only a version a release manifest or a descriptor
// declared has a place in the order: the version of a tree without a manifest (DECNET's `sha`
// field, or the digest) is unordered whatever it looks like, so a short commit made of digits
// neither passes the floor nor raises it.
struct FloorVersion {
  std::string_view text;
  bool declared = false;
};

// Whether `version` may be activated over `floor` (nullopt: no floor yet, anything goes).
// Refuses (kDenied), unless `downgrade` is kPermitted: a version equal to or older than the
// floor ("version-not-newer", naming both), an unordered version (a commit or digest) while a
// floor exists ("version-unordered"); with kRefused, either of those is "version-downgrade-
// refused" instead, saying the configuration does not allow it. A newer version passes
// whatever `downgrade` says.
[[nodiscard]] Result<void> CheckAgainstFloor(ReleaseKind kind, FloorVersion version,
                                             const std::optional<std::string>& floor,
                                             Downgrade downgrade);

// Thread-safe: read by the API's I/O threads (upload heads, /health) while the pipeline's
// worker raises it.
class VersionFloor {
 public:
  // Reads STATE_DIR/version-floor.json; a missing file is an empty floor. Refuses a file that
  // cannot be read or is not exactly the shape above with ordered versions
  // ("version-floor-file"): a floor silently reset would let an old release back in.
  [[nodiscard]] static Result<VersionFloor> Open(const std::string& state_dir);
  VersionFloor(VersionFloor&& other) noexcept;
  VersionFloor& operator=(VersionFloor&&) = delete;

  // The floor of `kind`, nullopt when no ordered release of that kind was ever activated.
  std::optional<std::string> Get(ReleaseKind kind) const;
  // CheckAgainstFloor with the current floor of `kind`.
  [[nodiscard]] Result<void> Check(ReleaseKind kind, FloorVersion version,
                                   Downgrade downgrade) const;
  // Records that `version` of `kind` was activated: the floor rises to it when it is ordered
  // and newer; an undeclared, unordered or older version leaves it. Fails ("version-floor-write")
  // when the file cannot be written; the floor in memory is raised anyway (it may only be
  // stricter).
  [[nodiscard]] Result<void> Raise(ReleaseKind kind, FloorVersion version);

 private:
  explicit VersionFloor(std::string state_dir) : state_dir_(std::move(state_dir)) {}
  Result<void> Write() const;  // under mu_

  std::string state_dir_;
  mutable std::mutex mu_;
  std::optional<std::string> service_;
  std::optional<std::string> updater_;
};

}  // namespace decnet::daemon
