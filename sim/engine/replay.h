// Replays a static batch on the simulated cluster: the prefill of every
// sequence, then decode steps until each has its output tokens.
//
// How the time is made:
//   * Op times come from sim/cost for each step's shape (tokens in the step,
//     context of each sequence); identical layers share one computation.
//   * Tensor-parallel collectives (an all-reduce after the attention output
//     and after the FFN, one after the vocabulary-parallel embedding, an
//     all-gather of the logits) are simulated as flows on the platform's
//     links, with every TP group of the plan communicating at once (so groups
//     that share a PCIe switch or a NIC contend). Each distinct collective
//     (kind, bytes) is simulated once and its time reused for every layer and
//     step that repeats it: a layer's collective waits for its compute, so
//     compute never hides it.
//   * Pipeline stages are SimGrid actors. Each replica's batch is split into
//     micro-batches that flow through the stages; activations move between
//     stages as flows (every TP rank to its peer), and a sampled token returns
//     from the last stage to the first before that micro-batch's next step.
//   * The memory ledger of every GPU follows the KV cache step by step.
#ifndef SHARDSIM_SIM_ENGINE_REPLAY_H_
#define SHARDSIM_SIM_ENGINE_REPLAY_H_

#include <string>

#include "absl/status/statusor.h"
#include "sim/proto/report.pb.h"
#include "sim/scenario/scenario.h"

namespace shardsim::engine {

struct ReplayOptions {
  std::string trace_path;  // write a Perfetto trace here when not empty
  // In the trace, show the first `detailed_steps` steps op by op, layer by
  // layer, with each collective where it runs; later steps are one compute
  // and one communication slice each (a 1,000-step run would otherwise be
  // millions of slices).
  int detailed_steps = 0;
};

// Runs the replay. Builds a SimGrid platform, so call it at most once per
// process (SimGrid keeps one engine and one clock per process).
absl::StatusOr<v1::RunReport> Replay(const scenario::LoadedScenario& loaded,
                                     const ReplayOptions& options);

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_REPLAY_H_
