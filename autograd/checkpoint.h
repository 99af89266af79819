// dgm/autograd/checkpoint.h — saving and loading tensors as safetensors.
//
// The safetensors format: an 8-byte little-endian header length N, N bytes
// of JSON ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
// "__metadata__": {..}}), then the raw little-endian data. numpy and PyTorch
// users read it with the `safetensors` package, without dgm.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "autograd/nn.h"

namespace dgm {

// Writes the tensors (name -> tensor) to `path`, via a temporary file renamed
// into place, so an interrupted save never leaves a half-written checkpoint.
void save_safetensors(const std::string& path, const nn::NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Writes `text` to `path` the same way (a temporary file renamed into place): the JSON
// beside a checkpoint, a resume state's companions.
void save_text_atomically(const std::string& path, const std::string& text);
// Reads every tensor of a safetensors file. A missing, truncated or corrupt
// file throws a dgm::Error naming the file and what is wrong.
nn::NamedTensors load_safetensors(const std::string& path,
                                  std::map<std::string, std::string>* metadata = nullptr);

// The same from bytes already in memory; `path` names them in errors (the
// fuzz target feeds this arbitrary bytes: it must throw dgm::Error or succeed).
nn::NamedTensors parse_safetensors(const uint8_t* bytes, size_t size, const std::string& path,
                                   std::map<std::string, std::string>* metadata = nullptr);

// A module's parameters and buffers, by their dotted names.
void save_checkpoint(const nn::Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata = {});
// Loads into `module`; every name must be present with its shape and dtype.
// All tensors are checked before any is copied: on error the module is unchanged.
void load_checkpoint(nn::Module& module, const std::string& path);

}  // namespace dgm
