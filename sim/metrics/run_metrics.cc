#include "sim/metrics/run_metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/units.h"
#include "sim/cost/roofline.h"
#include "sim/memory/ledger.h"

namespace shardsim::metrics {

v1::LatencyStats WeightedStats(std::vector<std::pair<double, int64_t>> samples) {
  v1::LatencyStats stats;
  if (samples.empty()) return stats;
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  int64_t total = 0;
  for (const auto& [value, weight] : samples) {
    sum += value * static_cast<double>(weight);
    total += weight;
  }
  auto quantile = [&](double q) {
    // The smallest value with at least q of the weight at or below it.
    const double target = q * static_cast<double>(total);
    int64_t seen = 0;
    for (const auto& [value, weight] : samples) {
      seen += weight;
      if (static_cast<double>(seen) >= target) return value;
    }
    return samples.back().first;
  };
  stats.set_mean_s(sum / static_cast<double>(total));
  stats.set_p50_s(quantile(0.50));
  stats.set_p99_s(quantile(0.99));
  return stats;
}

namespace {

// The notes that say how the numbers were made: fit, collectives, op-time
// calibration, collective tuning.
void AddNotes(const parallel::Deployment& d, const RunRecord& record, v1::RunReport* report) {
  const parallel::Plan& plan = d.plan;
  const hardware::Cluster& cluster = d.cluster;
  if (!report->fits()) {
    for (const v1::GpuRun& gpu : report->gpus()) {
      if (gpu.fits()) continue;
      report->add_notes(absl::StrFormat(
          "does not fit: GPU %d needs %s of %s (over by %s, passing capacity at %s); "
          "the timings above assume it did",
          gpu.gpu(), FormatBytes(gpu.peak_memory().total_bytes()),
          FormatBytes(gpu.capacity_bytes()), FormatBytes(gpu.over_by_bytes()),
          gpu.overflow_component()));
      break;
    }
  }
  if (plan.tp > 1) {
    report->add_notes(absl::StrCat(
        "tensor-parallel collectives: ", record.collective_algorithm,
        " (algorithm/protocol: NCCL's choice per size, or direct on a full mesh, where every "
        "GPU sends 1/N of the buffer to each peer over its own link)",
        "; every TP group communicates at once"));
  }
  if (d.model.is_moe() && plan.ep > plan.tp) {
    double busiest = 0;  // share of the routed tokens on the busiest rank
    for (double p : plan.shard.expert_loads) busiest += p;
    report->add_notes(absl::StrCat(
        "expert parallelism: each MoE layer dispatches its tokens to their top-",
        d.model.experts_per_token, " experts and combines the results with an all-to-all over ",
        plan.ep, " GPUs (",
        plan.shard.expert_loads.empty()
            ? std::string("uniform routing")
            : absl::StrFormat("skewed routing: the busiest rank's experts take %.1f%% of the "
                              "routed tokens",
                              100 * busiest),
        "), as flows with every expert-parallel group at once"));
  }
  if (record.dummy_steps > 0 || record.expert_wait_s > 0) {
    report->add_notes(absl::StrFormat(
        "the expert groups' replicas have different batches, so they ran in lock step (every "
        "MoE all-to-all waits for the slowest): %d dummy steps by replicas with no sequences, "
        "%.6f s waiting at all-to-alls (summed over replicas, counted as communication)",
        record.dummy_steps, record.expert_wait_s));
  }
  const cost::CostModel cost(cluster.gpu, d.model, cluster.profile);
  if (!cost.note().empty()) report->add_notes(cost.note());
  const v1::EfficiencyProfile& profile = cost.profile();
  if (!profile.derived()) {
    report->add_notes(absl::StrFormat("op times: calibrated on %s (%d measured op times): %s",
                                      profile.gpu(), profile.samples(), profile.source()));
  } else {
    report->add_notes(absl::StrFormat("op times: UNCALIBRATED for %s: %s", cluster.gpu.name(),
                                      profile.source()));
  }
  if (plan.tp > 1 || plan.pp > 1) {
    report->add_notes(
        cluster.collectives.source().empty()
            ? std::string("collective tuning: none (raw link bandwidth, no launch or "
                          "step time): no collectives.textproto beside the GPU catalog")
            : absl::StrCat("collective tuning: ", cluster.collectives.source()));
  }
}

}  // namespace

v1::RunReport BuildRunReport(const parallel::Deployment& d, const v1::Workload& workload,
                             const RunRecord& record) {
  const parallel::Plan& plan = d.plan;
  v1::RunReport report;
  SetDeploymentFields(d, &report);
  report.set_micro_batches(plan.micro_batches);
  report.set_batch_size(workload.batch_size());
  report.set_prompt_len(workload.prompt_len());
  report.set_output_len(workload.output_len());

  // TTFT: from the start to a micro-batch's first token; TPOT: between its
  // consecutive tokens. Each counts once per sequence of the micro-batch.
  std::vector<std::pair<double, int64_t>> ttft;
  std::vector<std::pair<double, int64_t>> tpot;
  double end = record.start_s;
  for (const auto& replica : record.micro_batches) {
    for (const MicroBatchRecord& micro : replica) {
      if (micro.sequences == 0) continue;
      const std::vector<double>& times = micro.token_times_s;
      ttft.emplace_back(times[0] - record.start_s, micro.sequences);
      for (size_t i = 1; i < times.size(); ++i) {
        tpot.emplace_back(times[i] - times[i - 1], micro.sequences);
      }
      end = std::max(end, times.back());
    }
  }
  const double total_s = end - record.start_s;
  *report.mutable_ttft() = WeightedStats(ttft);
  *report.mutable_tpot() = WeightedStats(tpot);
  report.set_total_s(total_s);
  const int64_t output_tokens = workload.batch_size() * workload.output_len();
  report.set_output_tokens(output_tokens);
  if (total_s > 0) {
    report.set_output_tokens_per_s(static_cast<double>(output_tokens) / total_s);
    report.set_output_tokens_per_s_per_gpu(report.output_tokens_per_s() / plan.num_gpus());
  }
  if (d.cluster.gpu_price_per_hour > 0 && output_tokens > 0) {
    const double dollars = d.cluster.gpu_price_per_hour * plan.num_gpus() * total_s / 3600;
    report.set_cost_per_million_output_tokens(dollars / static_cast<double>(output_tokens) *
                                              1e6);
  }

  bool all_fit = true;
  double comm_share = 0;
  for (size_t index = 0; index < plan.ranks.size(); ++index) {
    const parallel::Rank& rank = plan.ranks[index];
    v1::GpuRun* gpu = report.add_gpus();
    gpu->set_gpu(rank.gpu);
    gpu->set_node(rank.node);
    gpu->set_tp_rank(rank.tp_rank);
    gpu->set_pp_stage(rank.pp_stage);
    gpu->set_dp_replica(rank.dp_replica);
    *gpu->mutable_peak_memory() = record.peak_memory[index];
    gpu->set_capacity_bytes(d.cluster.gpu.capacity_bytes());
    const memory::Fit fit = memory::JudgeFit(record.peak_memory[index], gpu->capacity_bytes());
    gpu->set_fits(fit.fits);
    gpu->set_over_by_bytes(fit.over_by_bytes);
    gpu->set_overflow_component(fit.component);
    all_fit = all_fit && fit.fits;
    const size_t stage = static_cast<size_t>(rank.dp_replica * plan.pp + rank.pp_stage);
    const double compute_s = record.stage_compute_s[stage];
    const double comm_s = record.stage_comm_s[stage];
    gpu->set_compute_s(compute_s);
    gpu->set_comm_s(comm_s);
    gpu->set_idle_s(std::max(0.0, total_s - compute_s - comm_s));
    if (total_s > 0) comm_share += comm_s / total_s;
  }
  report.set_fits(all_fit);
  report.set_comm_overhead(comm_share / plan.num_gpus());
  report.set_simulated_flows(record.flows);
  report.set_distinct_collectives(record.distinct_collectives);
  report.set_collectives_replayed(record.collectives_replayed);
  AddNotes(d, record, &report);
  return report;
}

}  // namespace shardsim::metrics
