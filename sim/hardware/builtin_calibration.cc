#include "sim/hardware/builtin_calibration.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/text_format.h"

namespace shardsim::hardware {

// Defined in builtin_calibration_data.cc, which CMake writes from topologies/.
extern const char kBuiltInEfficiencyText[];
extern const char kBuiltInCollectivesText[];

namespace {

bool ValidProfile(const v1::EfficiencyProfile& p) {
  bool ok = p.gemm_max_compute_efficiency() > 0 && p.gemm_max_compute_efficiency() <= 1 &&
            p.gemm_memory_efficiency() > 0 && p.gemm_memory_efficiency() <= 1 &&
            p.gemm_rows_half() >= 0 && p.gemm_rows_half() < 1e9 && p.gemm_launch_s() >= 0 &&
            p.gemm_launch_s() < 1;
  for (const v1::KernelEfficiency* k :
       {&p.norm(), &p.activation(), &p.rope(), &p.residual_add(), &p.embedding()}) {
    ok = ok && k->memory_efficiency() > 0 && k->memory_efficiency() <= 1 && k->launch_s() >= 0 &&
         k->launch_s() < 1;
  }
  for (const v1::AttentionEfficiency* attention : {&p.attention(), &p.vllm_attention()}) {
    const v1::AttentionEfficiency& a = *attention;
    if (a.ByteSizeLong() == 0) continue;
    ok = ok && a.prefill_max_compute_efficiency() > 0 && a.prefill_max_compute_efficiency() <= 1 &&
         a.memory_efficiency() > 0 && a.memory_efficiency() <= 1 && a.launch_s() >= 0 &&
         a.launch_s() < 1 && a.prefill_tokens_half() >= 0 && a.prefill_tokens_half() < 1e9 &&
         a.tiles_half() >= 0 && a.tiles_half() < 1e9 && a.units_half() >= 0 &&
         a.units_half() < 1e9;
  }
  return ok;
}

template <typename Message>
absl::StatusOr<Message> Parse(const char* text, const char* file) {
  Message message;
  if (!google::protobuf::TextFormat::ParseFromString(text, &message)) {
    return absl::InternalError(
        absl::StrCat("the built-in topologies/", file, " does not parse: rebuild"));
  }
  return message;
}

}  // namespace

bool ValidTuning(const v1::CollectiveTuning& t) {
  bool ok = t.launch_s() >= 0 && t.launch_s() < 1 && t.step_latency_s() >= 0 &&
            t.step_latency_s() < 1 && t.p2p_launch_s() >= 0 && t.p2p_launch_s() < 1 &&
            t.bandwidth_efficiency() >= 0 && t.bandwidth_efficiency() <= 1 &&
            t.p2p_bandwidth_efficiency() >= 0 && t.p2p_bandwidth_efficiency() <= 1;
  for (const v1::LinkKindEfficiency& k : t.link_kinds()) {
    ok = ok && k.bandwidth_efficiency() >= 0 && k.bandwidth_efficiency() <= 1;
  }
  // A factor multiplies a link kind's efficiency (the product is capped at
  // 1): above 1 for a protocol faster than Simple, so bounded loosely.
  for (const v1::ProtocolTuning& p : t.protocols()) {
    ok = ok && p.step_latency_s() >= 0 && p.step_latency_s() < 1 && p.bandwidth_factor() >= 0 &&
         p.bandwidth_factor() <= 100;
  }
  return ok;
}

absl::StatusOr<const v1::EfficiencyProfiles*> BuiltInProfiles() {
  static const auto* parsed = [] {
    auto* result = new absl::StatusOr<v1::EfficiencyProfiles>(
        Parse<v1::EfficiencyProfiles>(kBuiltInEfficiencyText, "efficiency.textproto"));
    if (result->ok()) {
      for (const v1::EfficiencyProfile& p : (*result)->profiles()) {
        if (!ValidProfile(p)) {
          *result = absl::InternalError(
              absl::StrCat("the built-in topologies/efficiency.textproto: profile ", p.gpu(),
                           ": efficiencies must be in (0, 1] and times in [0, 1 s)"));
          break;
        }
      }
    }
    return result;
  }();
  if (!parsed->ok()) return parsed->status();
  return &**parsed;
}

absl::StatusOr<const v1::CollectiveTunings*> BuiltInTunings() {
  static const auto* parsed = [] {
    auto* result = new absl::StatusOr<v1::CollectiveTunings>(
        Parse<v1::CollectiveTunings>(kBuiltInCollectivesText, "collectives.textproto"));
    if (result->ok()) {
      bool ok = ValidTuning((*result)->default_tuning());
      for (const v1::MachineTuning& m : (*result)->machines()) ok = ok && ValidTuning(m.tuning());
      for (const v1::GenerationTuning& g : (*result)->generations()) {
        ok = ok && ValidTuning(g.tuning());
      }
      if (!ok) {
        *result = absl::InternalError(
            "the built-in topologies/collectives.textproto: times must be in [0, 1 s) and "
            "efficiencies in [0, 1]");
      }
    }
    return result;
  }();
  if (!parsed->ok()) return parsed->status();
  return &**parsed;
}

absl::StatusOr<v1::EfficiencyProfile> BuiltInProfile(const std::string& gpu_name) {
  absl::StatusOr<const v1::EfficiencyProfiles*> profiles = BuiltInProfiles();
  if (!profiles.ok()) return profiles.status();
  for (const v1::EfficiencyProfile& p : (*profiles)->profiles()) {
    if (p.gpu() == gpu_name) return p;
  }
  return absl::NotFoundError(absl::StrCat("no built-in efficiency profile for ", gpu_name));
}

absl::StatusOr<v1::CollectiveTuning> BuiltInNamedTuning(const std::string& name) {
  absl::StatusOr<const v1::CollectiveTunings*> tunings = BuiltInTunings();
  if (!tunings.ok()) return tunings.status();
  std::vector<std::string> names;
  for (const v1::MachineTuning& m : (*tunings)->machines()) {
    if (m.name() == name) return m.tuning();
    names.push_back(absl::StrCat("'", m.name(), "'"));
  }
  return absl::NotFoundError(absl::StrCat("no collective tuning named '", name,
                                          "' (built in: ", absl::StrJoin(names, ", "), ")"));
}

}  // namespace shardsim::hardware
