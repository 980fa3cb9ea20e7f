// libFuzzer target: the text-format loaders, end to end. The first byte
// picks the kind of file, the rest is its text: a scenario (with the files
// it names and every check), a model spec, a topology with its catalog, a
// sweep file (every point checked), a plan file (its base scenario and
// ranges), or a request trace CSV. Any input must give a Status, never a
// crash, a hang or a sanitizer report. (Kinds 0-3 were once picked by the
// byte mod 4: their seeds keep their meaning under mod 6.)
#include <cstddef>
#include <cstdint>
#include <string>

#include "sim/scenario/plan_spec.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/sweep_spec.h"
#include "sim/serving/requests.h"
#include "tests/fuzz/fuzz_sandbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const shardsim::fuzz::Sandbox& sandbox = shardsim::fuzz::Sandbox::Get();
  switch (data[0] % 6) {
    case 0: {
      const std::string path =
          sandbox.Write("scenarios", "input.textproto", data + 1, size - 1);
      (void)shardsim::scenario::LoadScenario(path, {});
      break;
    }
    case 1: {
      const std::string path =
          sandbox.Write("models", "input.textproto", data + 1, size - 1);
      (void)shardsim::scenario::LoadAndCheckModel(path);
      break;
    }
    case 2: {
      const std::string path =
          sandbox.Write("topologies", "input.textproto", data + 1, size - 1);
      (void)shardsim::scenario::LoadAndCheckTopology(path);
      break;
    }
    case 3: {
      const std::string path =
          sandbox.Write("scenarios", "sweep.textproto", data + 1, size - 1);
      (void)shardsim::scenario::LoadSweep(path);
      break;
    }
    case 4: {
      const std::string path =
          sandbox.Write("scenarios", "plan.textproto", data + 1, size - 1);
      (void)shardsim::scenario::LoadPlan(path);
      break;
    }
    default: {
      const std::string path =
          sandbox.Write("scenarios", "trace.csv", data + 1, size - 1);
      (void)shardsim::serving::ReadTrace(path, shardsim::v1::RequestTrace());
      break;
    }
  }
  return 0;
}
