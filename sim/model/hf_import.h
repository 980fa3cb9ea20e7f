// HuggingFace config.json -> ModelSpec.
//
// Reads the architecture fields that the transformers library's config class
// for each model_type defines (with its defaults when a key is absent) and
// maps them onto ModelSpec. Supported model_type values: llama, mistral and
// mixtral (with a sliding window when set), qwen2, qwen2_moe, qwen3,
// qwen3_moe, deepseek_v2, deepseek_v3 (MLA, shared and routed experts, the
// MTP layer count), gemma2, gemma3 (its text_config) and gemma3_text, phi3,
// gpt2, gptj, opt, falcon, bert. torch_dtype (or dtype) sets the precision;
// with neither, BF16 is assumed and an import note says so. A
// quantization_config for fp8 (per tensor or block-wise), gptq, awq or
// compressed-tensors (W4A16, W8A8 int or float) sets the weight and GEMM
// dtypes and the scale layout.
#ifndef SHARDSIM_SIM_MODEL_HF_IMPORT_H_
#define SHARDSIM_SIM_MODEL_HF_IMPORT_H_

#include <string>

#include "absl/status/status.h"
#include "sim/base/config_file.h"
#include "sim/proto/model.pb.h"

namespace shardsim::model {

// Parses `json` (the contents of `file`) into `spec`. Malformed JSON (a
// number past the double range included), an unknown model_type (the error
// lists the known ones), a missing required key or a value of the wrong type
// is an InvalidArgument naming file:line:column and the key; messages quote
// scalars only, never a whole nested value. `where` maps
// ModelSpec field paths to the JSON keys they came from.
absl::Status ImportHuggingFaceConfig(const std::string& json,
                                     const std::string& file,
                                     v1::ModelSpec* spec, FieldLocator* where);

}  // namespace shardsim::model

#endif  // SHARDSIM_SIM_MODEL_HF_IMPORT_H_
