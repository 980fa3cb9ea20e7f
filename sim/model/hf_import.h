// HuggingFace config.json -> ModelSpec.
//
// Reads the architecture fields that the transformers library's config class
// for each model_type defines (with its defaults when a key is absent) and
// maps them onto ModelSpec. Supported model_type values: llama, mistral,
// qwen2, mixtral, gpt2, gptj, opt, falcon, bert. torch_dtype sets the
// precision (float32 when absent, as transformers assumes); a GPTQ/AWQ
// quantization_config sets INT4/INT8 weights and their group size.
#ifndef SHARDSIM_SIM_MODEL_HF_IMPORT_H_
#define SHARDSIM_SIM_MODEL_HF_IMPORT_H_

#include <string>

#include "absl/status/status.h"
#include "sim/base/config_file.h"
#include "sim/proto/model.pb.h"

namespace shardsim::model {

// Parses `json` (the contents of `file`) into `spec`. Malformed JSON, an
// unknown model_type, a missing required key or a value of the wrong type is
// an InvalidArgument naming file:line:column and the key. `where` maps
// ModelSpec field paths to the JSON keys they came from.
absl::Status ImportHuggingFaceConfig(const std::string& json,
                                     const std::string& file,
                                     v1::ModelSpec* spec, FieldLocator* where);

}  // namespace shardsim::model

#endif  // SHARDSIM_SIM_MODEL_HF_IMPORT_H_
