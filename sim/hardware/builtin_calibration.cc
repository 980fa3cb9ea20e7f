#include "sim/hardware/builtin_calibration.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/text_format.h"

namespace shardsim::hardware {

// Defined in builtin_calibration_data.cc, which CMake writes from topologies/.
extern const char kBuiltInEfficiencyText[];
extern const char kBuiltInCollectivesText[];

namespace {

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

namespace {

// Range checks that name the first field out of range. Written as
// !(in range), so NaN fails every one.
class RangeCheck {
 public:
  // `field` in (0, 1] (an efficiency that must be positive).
  void Positive01(const std::string& field, double v) {
    if (!problem_ && !(v > 0 && v <= 1)) Fail(field, "must be in (0, 1]", v);
  }
  // `field` in [0, 1] (an efficiency where 0 means 1).
  void Closed01(const std::string& field, double v) {
    if (!problem_ && !(v >= 0 && v <= 1)) Fail(field, "must be in [0, 1]", v);
  }
  // A time in [0, 1 s).
  void Seconds(const std::string& field, double v) {
    if (!problem_ && !(v >= 0 && v < 1)) Fail(field, "must be in [0, 1 s)", v);
  }
  // A protocol's bandwidth factor multiplies a link kind's efficiency (the
  // product is capped at 1): above 1 for a protocol faster than Simple, so
  // bounded loosely, in [0, 100]; also the bytes an 8-bit GEMM's input
  // quantization moves per element.
  void Factor(const std::string& field, double v) {
    if (!problem_ && !(v >= 0 && v <= 100)) Fail(field, "must be in [0, 100]", v);
  }
  // A half-saturation count in [0, 1e9).
  void Half(const std::string& field, double v) {
    if (!problem_ && !(v >= 0 && v < 1e9)) Fail(field, "must be in [0, 1e9)", v);
  }
  std::optional<CalibrationProblem> problem() const { return problem_; }

 private:
  void Fail(const std::string& field, const char* why, double v) {
    problem_ = CalibrationProblem{field, absl::StrCat(why, ", got ", v)};
  }
  std::optional<CalibrationProblem> problem_;
};

}  // namespace

std::optional<CalibrationProblem> CheckProfile(const v1::EfficiencyProfile& p) {
  RangeCheck c;
  c.Positive01("gemm_max_compute_efficiency", p.gemm_max_compute_efficiency());
  c.Positive01("gemm_memory_efficiency", p.gemm_memory_efficiency());
  c.Half("gemm_rows_half", p.gemm_rows_half());
  c.Seconds("gemm_launch_s", p.gemm_launch_s());
  const std::pair<const char*, const v1::KernelEfficiency*> kernels[] = {
      {"norm", &p.norm()},
      {"activation", &p.activation()},
      {"rope", &p.rope()},
      {"residual_add", &p.residual_add()},
      {"embedding", &p.embedding()}};
  for (const auto& [name, k] : kernels) {
    c.Positive01(absl::StrCat(name, ".memory_efficiency"), k->memory_efficiency());
    c.Seconds(absl::StrCat(name, ".launch_s"), k->launch_s());
  }
  if (p.has_gemm_fp8()) {  // unset: 8-bit GEMMs take the BF16 numbers
    c.Positive01("gemm_fp8.max_compute_efficiency", p.gemm_fp8().max_compute_efficiency());
    c.Positive01("gemm_fp8.memory_efficiency", p.gemm_fp8().memory_efficiency());
    c.Half("gemm_fp8.rows_half", p.gemm_fp8().rows_half());
    c.Seconds("gemm_fp8.launch_s", p.gemm_fp8().launch_s());
    c.Factor("gemm_fp8.input_quant_bytes_per_element",
             p.gemm_fp8().input_quant_bytes_per_element());
  }
  const std::pair<const char*, const v1::AttentionEfficiency*> attentions[] = {
      {"attention", &p.attention()}, {"vllm_attention", &p.vllm_attention()}};
  for (const auto& [name, a] : attentions) {
    if (a->ByteSizeLong() == 0) continue;  // unset: the GEMM figures
    const std::string at = absl::StrCat(name, ".");
    c.Positive01(at + "prefill_max_compute_efficiency", a->prefill_max_compute_efficiency());
    c.Positive01(at + "memory_efficiency", a->memory_efficiency());
    c.Seconds(at + "launch_s", a->launch_s());
    c.Half(at + "prefill_tokens_half", a->prefill_tokens_half());
    c.Half(at + "tiles_half", a->tiles_half());
    c.Half(at + "units_half", a->units_half());
  }
  return c.problem();
}

std::optional<CalibrationProblem> CheckTuning(const v1::CollectiveTuning& t) {
  RangeCheck c;
  c.Seconds("launch_s", t.launch_s());
  c.Seconds("step_latency_s", t.step_latency_s());
  c.Seconds("p2p_launch_s", t.p2p_launch_s());
  c.Closed01("bandwidth_efficiency", t.bandwidth_efficiency());
  c.Closed01("p2p_bandwidth_efficiency", t.p2p_bandwidth_efficiency());
  for (int i = 0; i < t.link_kinds_size(); ++i) {
    c.Closed01(absl::StrCat("link_kinds[", i, "].bandwidth_efficiency"),
               t.link_kinds(i).bandwidth_efficiency());
  }
  for (int i = 0; i < t.protocols_size(); ++i) {
    c.Seconds(absl::StrCat("protocols[", i, "].step_latency_s"), t.protocols(i).step_latency_s());
    c.Factor(absl::StrCat("protocols[", i, "].bandwidth_factor"),
             t.protocols(i).bandwidth_factor());
  }
  return c.problem();
}

bool ValidTuning(const v1::CollectiveTuning& t) { return !CheckTuning(t).has_value(); }

absl::StatusOr<const v1::EfficiencyProfiles*> BuiltInProfiles() {
  static const auto* parsed = [] {
    auto* result = new absl::StatusOr<v1::EfficiencyProfiles>(
        Parse<v1::EfficiencyProfiles>(kBuiltInEfficiencyText, "efficiency.textproto"));
    if (result->ok()) {
      for (const v1::EfficiencyProfile& p : (*result)->profiles()) {
        if (CheckProfile(p).has_value()) {
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
