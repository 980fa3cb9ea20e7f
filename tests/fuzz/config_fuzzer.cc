// libFuzzer target: the text-format loaders, end to end. The first byte
// picks the kind of file, the rest is its text: a scenario (with the files
// it names and every check), a model spec, a topology with its catalog, or
// a sweep file (every point checked). Any input must give a Status, never
// a crash, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sim/scenario/scenario.h"
#include "sim/scenario/sweep_spec.h"
#include "tests/fuzz/fuzz_sandbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const shardsim::fuzz::Sandbox& sandbox = shardsim::fuzz::Sandbox::Get();
  switch (data[0] % 4) {
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
    default: {
      const std::string path =
          sandbox.Write("scenarios", "sweep.textproto", data + 1, size - 1);
      (void)shardsim::scenario::LoadSweep(path);
      break;
    }
  }
  return 0;
}
