// From what a static-batch run recorded to the RunReport: latency statistics,
// throughput, cost, per-GPU time and memory, and the notes that say how the
// numbers were made. Plain C++ (no SimGrid): the engine records, this module
// computes, sim/report formats.
#ifndef SHARDSIM_SIM_METRICS_RUN_METRICS_H_
#define SHARDSIM_SIM_METRICS_RUN_METRICS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/parallel/deployment.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::metrics {

// One micro-batch of one replica: its sequences, and when each of its steps'
// tokens was sampled (simulated clock, seconds).
struct MicroBatchRecord {
  int64_t sequences = 0;
  std::vector<double> token_times_s;
};

struct RunRecord {
  double start_s = 0;  // the clock when the first step began
  std::vector<std::vector<MicroBatchRecord>> micro_batches;  // [replica][micro-batch]
  std::vector<double> stage_compute_s;  // [replica * pp + stage]
  std::vector<double> stage_comm_s;
  std::vector<v1::MemoryBreakdown> peak_memory;  // by rank index
  int64_t flows = 0;                  // point-to-point transfers simulated
  int64_t distinct_collectives = 0;   // collectives simulated as flows
  int64_t collectives_replayed = 0;   // collectives run, each layer's counted
  // Expert groups in lock step (engine/executor.h RunExpertGroupStep):
  // dummy steps run by replicas without sequences, and the time replicas
  // waited at all-to-alls for slower ones (summed over replicas' stages).
  int64_t dummy_steps = 0;
  double expert_wait_s = 0;
  // The algorithm/protocol pairs TP collectives ran with ("nvls/Simple,
  // ring/LL"); empty without tp.
  std::string collective_algorithm;
};

// What every report says first: the scenario, model, cluster, GPU and plan
// (RunReport and ServeReport share these field names).
template <typename Report>
void SetDeploymentFields(const parallel::Deployment& d, Report* report) {
  report->set_scenario(d.name);
  report->set_model(d.model.name);
  report->set_cluster(d.cluster.name);
  report->set_gpu(d.cluster.gpu.name());
  report->set_tp(d.plan.tp);
  report->set_pp(d.plan.pp);
  report->set_dp(d.plan.dp);
}

// (value, weight) samples -> mean, p50, p99 with each sample counted
// `weight` times (a micro-batch's interval applies to each of its sequences).
v1::LatencyStats WeightedStats(std::vector<std::pair<double, int64_t>> samples);

v1::RunReport BuildRunReport(const parallel::Deployment& deployment,
                             const v1::Workload& workload, const RunRecord& record);

}  // namespace shardsim::metrics

#endif  // SHARDSIM_SIM_METRICS_RUN_METRICS_H_
