// The update side the HTTP benchmarks put behind the real API: every operation answers at
// once (an update succeeds, update-self fails, there is nothing to roll back to), so what is
// measured is the server, the API and the upload path alone.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "daemon/update_pipeline.h"

namespace decnet::bench {

class NullOps final : public daemon::Operations {
 public:
  daemon::UpdateOutcome Update(const daemon::Caller&, const daemon::VerifiedTarball&) override {
    return daemon::outcome::Updated{};
  }
  daemon::SelfUpdateOutcome UpdateSelf(const daemon::Caller&, const daemon::VerifiedTarball&,
                                       std::function<void()>*) override {
    return daemon::outcome::Failed{};
  }
  daemon::RollbackOutcome Rollback(const daemon::Caller&) override {
    return daemon::outcome::NoPrevious{};
  }
  std::vector<nlohmann::json> Releases() override { return {}; }
};

}  // namespace decnet::bench
