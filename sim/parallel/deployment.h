// A deployment as plain values: the model, the cluster it runs on, the plan
// that places it, and the serving runtime's overheads. Everything below
// sim/scenario (memory, cost, engine, metrics) takes one of these, so a
// caller (the scenario loader, the planner, a test) can build it from files
// or in memory alike.
#ifndef SHARDSIM_SIM_PARALLEL_DEPLOYMENT_H_
#define SHARDSIM_SIM_PARALLEL_DEPLOYMENT_H_

#include <string>

#include "sim/hardware/cluster.h"
#include "sim/model/model_spec.h"
#include "sim/parallel/partition.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::parallel {

struct Deployment {
  std::string name;  // what reports call it (the scenario's name)
  model::ModelDims model;
  hardware::Cluster cluster;
  Plan plan;
  v1::Runtime runtime;  // unset fields: the defaults in sim/memory/ledger.h
};

}  // namespace shardsim::parallel

#endif  // SHARDSIM_SIM_PARALLEL_DEPLOYMENT_H_
