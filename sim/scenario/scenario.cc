#include "sim/scenario/scenario.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/status_macros.h"
#include "sim/base/units.h"
#include "sim/hardware/builtin_calibration.h"
#include "sim/scenario/overrides.h"
#include "sim/scenario/plan_spec.h"
#include "sim/scenario/pools.h"
#include "sim/scenario/runtime_profile.h"
#include "sim/scenario/sweep_spec.h"

namespace shardsim::scenario {
namespace {

// Overrides that choose which files are loaded apply before loading.
bool ChoosesFiles(const Override& o) {
  return o.path == "model_file" || o.path == "topology_file" ||
         o.path == "topology.gpu" || o.path == "topology.gpu_catalog_file";
}

absl::Status CheckWorkload(const v1::Scenario& s, const model::ModelDims& m,
                           const FieldLocator& where) {
  const v1::Workload& w = s.workload();
  if (w.batch_size() <= 0) {
    return where.Error("workload.batch_size",
                       absl::StrCat("must be positive, got ", w.batch_size()));
  }
  if (w.prompt_len() <= 0) {
    return where.Error("workload.prompt_len",
                       absl::StrCat("must be positive, got ", w.prompt_len()));
  }
  if (w.output_len() < 0) {
    return where.Error("workload.output_len",
                       absl::StrCat("must not be negative, got ", w.output_len()));
  }
  // Beyond these a run would take hours or its byte counts overflow.
  constexpr int64_t kMaxSequences = int64_t{1} << 24;
  constexpr int64_t kMaxPrompt = int64_t{1} << 24;
  constexpr int64_t kMaxOutput = int64_t{1} << 20;
  constexpr int64_t kMaxTokens = int64_t{1} << 32;
  if (w.batch_size() > kMaxSequences) {
    return where.Error("workload.batch_size",
                       absl::StrCat(w.batch_size(), " sequences is implausibly many (at most ",
                                    kMaxSequences, ")"));
  }
  if (w.prompt_len() > kMaxPrompt) {
    return where.Error("workload.prompt_len",
                       absl::StrCat(w.prompt_len(), " tokens is implausibly long (at most ",
                                    kMaxPrompt, ")"));
  }
  if (w.output_len() > kMaxOutput) {
    return where.Error("workload.output_len",
                       absl::StrCat(w.output_len(), " tokens is implausibly long (at most ",
                                    kMaxOutput, ")"));
  }
  if (w.batch_size() * (w.prompt_len() + w.output_len()) > kMaxTokens) {
    return where.Error("workload.batch_size",
                       absl::StrCat("batch x (prompt + output) = ",
                                    w.batch_size() * (w.prompt_len() + w.output_len()),
                                    " tokens is implausibly many (at most ", kMaxTokens, ")"));
  }
  if (m.kind == v1::ENCODER_ONLY && w.output_len() > 0) {
    return where.Error("workload.output_len",
                       absl::StrCat(m.name, " is encoder-only and generates no "
                                    "tokens; set output_len to 0"));
  }
  // Positions used: every token fed to the model (the last sampled one is
  // not), which must fit in a learned position table.
  const int64_t positions = w.prompt_len() + std::max<int64_t>(0, w.output_len() - 1);
  if (m.position_embedding == v1::LEARNED && positions > m.position_table_rows) {
    return where.Error(
        "workload.prompt_len",
        absl::StrCat(positions, " positions (the prompt and every generated token but the "
                     "last) exceed the ", m.position_table_rows,
                     " learned positions of ", m.name));
  }
  const v1::Runtime& r = s.runtime();
  if (r.has_cuda_context_bytes() &&
      (r.cuda_context_bytes() < 0 || r.cuda_context_bytes() > (int64_t{1} << 50))) {
    return where.Error("runtime.cuda_context_bytes", "must be between 0 and 2^50");
  }
  if (r.has_allocator_overhead_fraction() &&
      !(r.allocator_overhead_fraction() >= 0 && r.allocator_overhead_fraction() <= 1)) {
    return where.Error("runtime.allocator_overhead_fraction",
                       "must be between 0 and 1");
  }
  if (r.has_comm_buffer_bytes_per_communicator() &&
      (r.comm_buffer_bytes_per_communicator() < 0 ||
       r.comm_buffer_bytes_per_communicator() > (int64_t{1} << 50))) {
    return where.Error("runtime.comm_buffer_bytes_per_communicator",
                       "must be between 0 and 2^50");
  }
  if (r.has_cuda_graph_pool_bytes() &&
      (r.cuda_graph_pool_bytes() < 0 || r.cuda_graph_pool_bytes() > (int64_t{1} << 50))) {
    return where.Error("runtime.cuda_graph_pool_bytes", "must be between 0 and 2^50");
  }
  if (r.has_cuda_graph_pool_bytes() && r.name() != v1::VLLM) {
    return where.Error("runtime.cuda_graph_pool_bytes",
                       "is read only by runtime { name: VLLM } (the other runtimes' memory has no "
                       "CUDA-graph term)");
  }
  if (r.kv_block_tokens() < 0) {
    return where.Error("runtime.kv_block_tokens", "must not be negative");
  }
  return absl::OkStatus();
}

// The named runtime's time terms (sim/scenario/runtime_profile.h): seconds
// between 0 and an hour, a batch size between 0 and 2^20; and its memory
// fractions. Checked for every scenario, serving ones included.
absl::Status CheckRuntimeTimes(const v1::Runtime& r, const FieldLocator& where) {
  for (const auto& [field, set, seconds] :
       {std::tuple<const char*, bool, double>{"runtime.cpu_step_s", r.has_cpu_step_s(),
                                               r.cpu_step_s()},
        {"runtime.kernel_launch_s", r.has_kernel_launch_s(), r.kernel_launch_s()},
        {"runtime.graph_launch_s", r.has_graph_launch_s(), r.graph_launch_s()}}) {
    if (set && !(seconds >= 0 && seconds <= 3600)) {
      return where.Error(field, "must be between 0 and 3600 seconds");
    }
  }
  if (r.has_max_graph_batch() && (r.max_graph_batch() < 0 || r.max_graph_batch() > (1 << 20))) {
    return where.Error("runtime.max_graph_batch", "must be between 0 and 2^20");
  }
  // The named runtimes' own memory knobs (sim/memory/runtime_memory.h).
  for (const auto& [field, set, value, runtime, name] :
       {std::tuple<const char*, bool, double, v1::RuntimeName, const char*>{
            "runtime.mem_fraction_static", r.has_mem_fraction_static(),
            r.mem_fraction_static(), v1::SGLANG, "SGLANG"},
        {"runtime.kv_cache_free_gpu_mem_fraction", r.has_kv_cache_free_gpu_mem_fraction(),
         r.kv_cache_free_gpu_mem_fraction(), v1::TRTLLM, "TRTLLM"}}) {
    if (!set) continue;
    if (!(value > 0 && value <= 1)) return where.Error(field, "must be above 0 and at most 1");
    if (r.name() != runtime) {
      return where.Error(field, absl::StrCat("is read only by runtime { name: ", name, " }"));
    }
  }
  return absl::OkStatus();
}

// The GPU catalog a topology names; a missing one is reported against the
// topology's gpu_catalog_file field, which is where a user fixes it.
absl::StatusOr<v1::GpuCatalog> LoadCatalogFor(const std::string& catalog_path,
                                              const FieldLocator& topology_where) {
  absl::StatusOr<v1::GpuCatalog> catalog = hardware::LoadGpuCatalog(catalog_path);
  if (absl::IsNotFound(catalog.status())) {
    return topology_where.Error(
        "gpu_catalog_file",
        absl::StrCat(catalog.status().message(),
                     " (the GPU catalog; by default gpus.textproto beside the topology)"));
  }
  return catalog;
}

// Fills scenario.topology from topology_file (inline fields win) and returns
// the GPU catalog entry it names.
absl::StatusOr<v1::GpuSpec> ResolveTopology(const std::string& path,
                                            v1::Scenario* s,
                                            const FieldLocator& where,
                                            FieldLocator* topology_where,
                                            std::string* catalog_path_out) {
  *topology_where = where.Nested("topology");
  std::string topology_file = path;  // where relative catalog paths start
  if (!s->topology_file().empty()) {
    topology_file = ResolveRelative(path, s->topology_file());
    v1::Topology from_file;
    FieldLocator file_where;
    absl::Status status = LoadTextProto(topology_file, &from_file, &file_where);
    if (absl::IsNotFound(status)) {
      return where.Error("topology_file", status.message());
    }
    SHARDSIM_RETURN_IF_ERROR(status);
    // Inline links replace the file's wiring rather than adding to it.
    if (s->topology().links_size() > 0) from_file.clear_links();
    from_file.MergeFrom(s->topology());
    *s->mutable_topology() = from_file;
    topology_where->SetFallback(file_where);
  }
  if (s->topology().gpu().empty()) {
    return topology_where->Error("gpu", "missing: name a GPU from the catalog");
  }
  const std::string catalog_path =
      s->topology().gpu_catalog_file().empty() && s->topology_file().empty()
          // An inline topology uses the project's catalog.
          ? ResolveRelative(path, "../topologies/gpus.textproto")
          : hardware::CatalogPathFor(s->topology(), topology_file);
  *catalog_path_out = catalog_path;
  SHARDSIM_ASSIGN_OR_RETURN(v1::GpuCatalog catalog,
                            LoadCatalogFor(catalog_path, *topology_where));
  absl::StatusOr<v1::GpuSpec> gpu =
      hardware::FindGpu(catalog, s->topology().gpu(), catalog_path);
  if (!gpu.ok()) return topology_where->Error("gpu", gpu.status().message());
  return gpu;
}

// The calibration a topology asks for, checked where it is written (a
// scenario's inline topology, or a topology file) before the cluster takes
// it: its own collectives block with the checks every tuning passes
// (hardware::CheckTuning), and the built-in tuning it names.
absl::Status CheckTopologyCalibration(const v1::Topology& topology,
                                      const FieldLocator& where) {
  if (topology.has_collectives()) {
    if (std::optional<hardware::CalibrationProblem> problem =
            hardware::CheckTuning(topology.collectives())) {
      return where.Error(absl::StrCat("collectives.", problem->field), problem->why);
    }
  }
  if (!topology.has_collectives() && !topology.collective_tuning().empty()) {
    absl::StatusOr<v1::CollectiveTuning> named =
        hardware::BuiltInNamedTuning(topology.collective_tuning());
    if (!named.ok()) return where.Error("collective_tuning", named.status().message());
  }
  return absl::OkStatus();
}

absl::Status ResolveModel(const std::string& path, v1::Scenario* s,
                          const FieldLocator& where,
                          FieldLocator* model_where) {
  *model_where = where.Nested("model");
  if (s->model_file().empty()) return absl::OkStatus();
  const std::string model_file = ResolveRelative(path, s->model_file());
  FieldLocator file_where;
  absl::StatusOr<v1::ModelSpec> from_file =
      model::LoadModelFile(model_file, &file_where);
  if (absl::IsNotFound(from_file.status())) {
    return where.Error("model_file", from_file.status().message());
  }
  SHARDSIM_RETURN_IF_ERROR(from_file.status());
  from_file->MergeFrom(s->model());
  *s->mutable_model() = *from_file;
  model_where->SetFallback(file_where);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoadedScenario> LoadScenario(
    const std::string& path, const std::vector<std::string>& overrides) {
  v1::Scenario s;
  FieldLocator where;
  SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &s, &where));

  std::vector<Override> parsed;
  for (const std::string& text : overrides) {
    SHARDSIM_ASSIGN_OR_RETURN(Override o, ParseOverride(text));
    parsed.push_back(o);
  }
  for (const Override& o : parsed) {
    if (!ChoosesFiles(o)) continue;
    SHARDSIM_RETURN_IF_ERROR(ApplyOverride(o, &s));
    where.AddOverride(o.path, o.text);
  }

  FieldLocator model_where;
  FieldLocator topology_where;
  SHARDSIM_RETURN_IF_ERROR(ResolveModel(path, &s, where, &model_where));
  std::string catalog_path;
  SHARDSIM_ASSIGN_OR_RETURN(
      v1::GpuSpec gpu,
      ResolveTopology(path, &s, where, &topology_where, &catalog_path));

  for (const Override& o : parsed) {
    if (ChoosesFiles(o)) continue;
    SHARDSIM_RETURN_IF_ERROR(ApplyOverride(o, &s));
    where.AddOverride(o.path, o.text);
  }

  // Checks, in the order a user would fix them.
  LoadedScenario loaded;
  loaded.path = path;
  SHARDSIM_ASSIGN_OR_RETURN(loaded.model,
                            model::ResolveModel(s.model(), model_where));
  SHARDSIM_ASSIGN_OR_RETURN(
      loaded.cluster, hardware::BuildCluster(s.topology(), gpu, topology_where));
  SHARDSIM_RETURN_IF_ERROR(CheckTopologyCalibration(s.topology(), topology_where));
  SHARDSIM_RETURN_IF_ERROR(
      hardware::LoadCalibration(s.topology(), &loaded.cluster));
  // A serving scenario needs no static workload; one that gives both is checked.
  if (!s.has_serving() || s.has_workload()) {
    SHARDSIM_RETURN_IF_ERROR(CheckWorkload(s, loaded.model, where));
  }
  SHARDSIM_RETURN_IF_ERROR(CheckRuntimeTimes(s.runtime(), where));
  SHARDSIM_ASSIGN_OR_RETURN(
      loaded.plan,
      parallel::Partition(loaded.model, s.parallelism(), loaded.cluster, where));
  SHARDSIM_ASSIGN_OR_RETURN(loaded.pools,
                            CheckPools(s, path, loaded.model, loaded.cluster, where));
  loaded.name = s.name();
  loaded.runtime = s.runtime();
  // The named runtime's defaults that go by the GPU and the plan
  // (runtime_profile.h): SGLang's CUDA-graph maximum, and the scheduler
  // settings a serving block leaves unset.
  const int64_t capacity = loaded.cluster.gpu.capacity_bytes();
  if (loaded.runtime.name() == v1::SGLANG && !loaded.runtime.has_max_graph_batch()) {
    loaded.runtime.set_max_graph_batch(
        SglangCudaGraphMaxBatch(capacity, loaded.plan.tp, loaded.plan.pp));
  }
  if (s.has_serving()) {
    const v1::SchedulerConfig defaults =
        RuntimeSchedulerDefaults(ResolvedRuntimeName(s.runtime()), capacity,
                                 loaded.cluster.gpu.name(), loaded.plan.tp, loaded.plan.pp);
    v1::SchedulerConfig* scheduler = s.mutable_serving()->mutable_scheduler();
    if (scheduler->max_num_seqs() <= 0 && defaults.max_num_seqs() > 0) {
      scheduler->set_max_num_seqs(defaults.max_num_seqs());
    }
    if (scheduler->max_num_batched_tokens() <= 0 && defaults.max_num_batched_tokens() > 0) {
      scheduler->set_max_num_batched_tokens(defaults.max_num_batched_tokens());
    }
    if (!scheduler->has_chunked_prefill() && defaults.has_chunked_prefill()) {
      scheduler->set_chunked_prefill(defaults.chunked_prefill());
    }
    if (scheduler->block_size() <= 0 && defaults.block_size() > 0) {
      scheduler->set_block_size(defaults.block_size());
    }
  }
  // The runtime's sampler kernels for the scenario's sampling end each step
  // of a decoder's last stage (model::ModelDims::sampler).
  if (loaded.model.has_lm_head()) {
    loaded.model.sampler =
        ResolveRuntimeProfile(loaded.runtime).SamplerPasses(loaded.model.activation_dtype);
  }
  // vLLM runs its own attention backend, which the GPU profile's
  // vllm_attention was fitted to (hardware.proto: "a runtime model that
  // knows the engine is vLLM copies it into `attention`").
  if (ResolveRuntimeProfile(loaded.runtime).vllm_attention &&
      loaded.cluster.profile.vllm_attention().prefill_max_compute_efficiency() > 0) {
    *loaded.cluster.profile.mutable_attention() = loaded.cluster.profile.vllm_attention();
  }
  // A micro-batch holds at least one of its replica's sequences: more would
  // be empty, and an unbounded count is memory and time without end.
  const int64_t per_replica =
      (s.workload().batch_size() + loaded.plan.dp - 1) / loaded.plan.dp;
  if (s.parallelism().micro_batches() > per_replica) {
    return where.Error(
        "parallelism.micro_batches",
        absl::StrCat(s.parallelism().micro_batches(),
                     " micro-batches, but a replica has ", per_replica,
                     " sequences (workload.batch_size / dp): at most ",
                     per_replica));
  }
  loaded.scenario = std::move(s);
  loaded.where = where;
  return loaded;
}

absl::StatusOr<model::ModelDims> LoadAndCheckModel(const std::string& path) {
  FieldLocator where;
  SHARDSIM_ASSIGN_OR_RETURN(v1::ModelSpec spec,
                            model::LoadModelFile(path, &where));
  return model::ResolveModel(spec, where);
}

absl::StatusOr<hardware::Cluster> LoadAndCheckTopology(const std::string& path,
                                                       bool with_calibration) {
  v1::Topology topology;
  FieldLocator where;
  SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &topology, &where));
  if (topology.gpu().empty()) {
    return where.Error("gpu", "missing: name a GPU from the catalog");
  }
  const std::string catalog_path = hardware::CatalogPathFor(topology, path);
  SHARDSIM_ASSIGN_OR_RETURN(v1::GpuCatalog catalog, LoadCatalogFor(catalog_path, where));
  absl::StatusOr<v1::GpuSpec> gpu =
      hardware::FindGpu(catalog, topology.gpu(), catalog_path);
  if (!gpu.ok()) return where.Error("gpu", gpu.status().message());
  SHARDSIM_ASSIGN_OR_RETURN(hardware::Cluster cluster,
                            hardware::BuildCluster(topology, *gpu, where));
  if (with_calibration) {
    SHARDSIM_RETURN_IF_ERROR(CheckTopologyCalibration(topology, where));
    SHARDSIM_RETURN_IF_ERROR(hardware::LoadCalibration(topology, &cluster));
  }
  return cluster;
}

namespace {

enum class FileKind {
  kScenario,
  kModel,
  kTopology,
  kCatalog,
  kSweep,
  kPlan,
  kEfficiency,
  kCollectives
};

// What kind of config `path` is: a JSON file is a HuggingFace model; a
// "# proto-message: shardsim.v1.X" header says so; a file in models/ or
// topologies/ is what lives there; otherwise the schema that parses it, or
// whose parse gets furthest into the file before an error (so a typo in a
// model file is reported against ModelSpec, not Scenario).
FileKind KindOf(const std::string& path) {
  if (IsJsonPath(path)) return FileKind::kModel;
  std::string text;
  if (!ReadFile(path, &text).ok()) return FileKind::kScenario;
  const std::pair<const char*, FileKind> headers[] = {
      {"proto-message: shardsim.v1.ModelSpec", FileKind::kModel},
      {"proto-message: shardsim.v1.Topology", FileKind::kTopology},
      {"proto-message: shardsim.v1.GpuCatalog", FileKind::kCatalog},
      {"proto-message: shardsim.v1.Scenario", FileKind::kScenario},
      {"proto-message: shardsim.v1.Sweep", FileKind::kSweep},
      {"proto-message: shardsim.v1.Plan", FileKind::kPlan},
      {"proto-message: shardsim.v1.EfficiencyProfiles", FileKind::kEfficiency},
      {"proto-message: shardsim.v1.CollectiveTunings", FileKind::kCollectives},
  };
  for (const auto& [header, kind] : headers) {
    if (absl::StrContains(text, header)) return kind;
  }
  // A sweep sits beside the scenarios it varies; base_scenario, which no
  // other schema has, tells it apart without a header.
  {
    v1::Sweep sweep;
    FieldLocator ignored;
    if (ParseTextProto(text, path, &sweep, &ignored).ok() &&
        !sweep.base_scenario().empty()) {
      return FileKind::kSweep;
    }
  }
  if (absl::EndsWith(path, "gpus.textproto")) return FileKind::kCatalog;
  if (absl::StrContains(path, "models/")) return FileKind::kModel;
  if (absl::StrContains(path, "topologies/")) return FileKind::kTopology;
  if (absl::StrContains(path, "scenarios/")) return FileKind::kScenario;

  v1::Scenario scenario;
  v1::ModelSpec model;
  v1::Topology topology;
  v1::GpuCatalog catalog;
  const std::pair<google::protobuf::Message*, FileKind> candidates[] = {
      {&scenario, FileKind::kScenario}, {&model, FileKind::kModel},
      {&topology, FileKind::kTopology}, {&catalog, FileKind::kCatalog}};
  FileKind best = FileKind::kScenario;
  std::pair<int, int> furthest = {-1, -1};
  for (const auto& [message, kind] : candidates) {
    FieldLocator ignored;
    absl::Status status = ParseTextProto(text, path, message, &ignored);
    if (status.ok()) return kind;
    // "path:line:column: ..." -> (line, column).
    int line = 0;
    int column = 0;
    std::sscanf(std::string(status.message()).c_str() + path.size(), ":%d:%d",
                &line, &column);
    if (std::make_pair(line, column) > furthest) {
      furthest = {line, column};
      best = kind;
    }
  }
  return best;
}

}  // namespace

absl::StatusOr<std::string> ValidateFile(const std::string& path) {
  switch (KindOf(path)) {
    case FileKind::kModel: {
      SHARDSIM_ASSIGN_OR_RETURN(model::ModelDims m, LoadAndCheckModel(path));
      return absl::StrFormat("model %s: %d layers, hidden %d, %d/%d heads",
                             m.name, m.num_layers, m.hidden_size,
                             m.num_attention_heads, m.num_kv_heads);
    }
    case FileKind::kCatalog: {
      SHARDSIM_ASSIGN_OR_RETURN(v1::GpuCatalog catalog,
                                hardware::LoadGpuCatalog(path));
      return absl::StrFormat("GPU catalog: %d GPUs", catalog.gpus_size());
    }
    case FileKind::kTopology: {
      SHARDSIM_ASSIGN_OR_RETURN(hardware::Cluster c, LoadAndCheckTopology(path));
      return absl::StrFormat("topology %s: %d x %d %s", c.name, c.num_nodes,
                             c.gpus_per_node, c.gpu.name());
    }
    case FileKind::kEfficiency: {
      // The checks the built-in profiles pass (hardware::CheckProfile).
      v1::EfficiencyProfiles profiles;
      FieldLocator where;
      SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &profiles, &where));
      for (int i = 0; i < profiles.profiles_size(); ++i) {
        if (std::optional<hardware::CalibrationProblem> problem =
                hardware::CheckProfile(profiles.profiles(i))) {
          return where.Error(absl::StrCat("profiles[", i, "].", problem->field), problem->why);
        }
      }
      return absl::StrFormat("efficiency profiles: %d GPUs", profiles.profiles_size());
    }
    case FileKind::kCollectives: {
      // The checks every tuning passes (hardware::CheckTuning), the
      // built-in one and a topology's own collectives block alike.
      v1::CollectiveTunings tunings;
      FieldLocator where;
      SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &tunings, &where));
      if (std::optional<hardware::CalibrationProblem> problem =
              hardware::CheckTuning(tunings.default_tuning())) {
        return where.Error(absl::StrCat("default_tuning.", problem->field), problem->why);
      }
      for (int i = 0; i < tunings.machines_size(); ++i) {
        if (std::optional<hardware::CalibrationProblem> problem =
                hardware::CheckTuning(tunings.machines(i).tuning())) {
          return where.Error(absl::StrCat("machines[", i, "].tuning.", problem->field),
                             problem->why);
        }
      }
      return absl::StrFormat("collective tuning: a default and %d machines",
                             tunings.machines_size());
    }
    case FileKind::kPlan: {
      SHARDSIM_ASSIGN_OR_RETURN(PlanSpec plan, LoadPlan(path));
      return absl::StrFormat("plan %s: %d candidates of %s", plan.name, plan.candidates.size(),
                             plan.base_scenario);
    }
    case FileKind::kSweep: {
      SHARDSIM_ASSIGN_OR_RETURN(SweepSpec sweep, LoadSweep(path));
      return absl::StrFormat(
          "sweep %s: %d %spoints (%d skipped by rules) of %s", sweep.name,
          sweep.points.size(),
          sweep.sweep.command() == v1::Sweep::SERVE ? "serve " : "",
          sweep.skipped_by_rules, sweep.base_scenario);
    }
    case FileKind::kScenario:
      break;
  }
  SHARDSIM_ASSIGN_OR_RETURN(LoadedScenario s, LoadScenario(path, {}));
  if (!s.pools.empty()) {
    std::string pools;
    for (const parallel::PoolPlan& pool : s.pools) {
      absl::StrAppendFormat(&pools, "%s%s %s tp=%d pp=%d dp=%d on %d GPUs",
                            pools.empty() ? "" : ", ", pool.name,
                            v1::Pool::Role_Name(pool.role), pool.plan.tp, pool.plan.pp,
                            pool.plan.dp, pool.gpus.size());
    }
    return absl::StrFormat("scenario %s: %s on %s, pools: %s", s.scenario.name(), s.model.name,
                           s.cluster.name, pools);
  }
  return absl::StrFormat("scenario %s: %s on %s, tp=%d pp=%d dp=%d",
                         s.scenario.name(), s.model.name, s.cluster.name,
                         s.plan.tp, s.plan.pp, s.plan.dp);
}

}  // namespace shardsim::scenario
