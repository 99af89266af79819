// dgm/autograd/checkpoint.cpp — safetensors reader and writer (nlohmann-json header).
#include "autograd/checkpoint.h"

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "autograd/graph.h"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace dgm {

namespace {

using json = nlohmann::json;

const char* st_dtype(DType d) {
  switch (d) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
  }
  return "?";
}

Error file_error(const std::string& path, const std::string& what) {
  return Error("checkpoint '" + path + "': " + what);
}

}  // namespace

void save_safetensors(const std::string& path, const nn::NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> names;
  for (auto& [name, t] : tensors) {
    if (!names.insert(name).second) throw file_error(path, "the name '" + name + "' appears twice");
    const uint64_t n = t.impl().storage->nbytes;
    header[name] = {{"dtype", st_dtype(t.dtype())}, {"shape", t.shape().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // the format pads the header to 8 bytes
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw file_error(path, std::string("cannot write: ") + std::strerror(errno));
    const uint64_t hn = h.size();
    out.write(reinterpret_cast<const char*>(&hn), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (auto& [_, t] : tensors)
      out.write(static_cast<const char*>(t.impl().storage->data), static_cast<std::streamsize>(t.impl().storage->nbytes));
    if (!out.flush()) throw file_error(path, "write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw file_error(path, std::string("cannot move the temporary file into place: ") + std::strerror(errno));
}

void save_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw file_error(path, std::string("cannot write: ") + std::strerror(errno));
    out << text;
    if (!out.flush()) throw file_error(path, "write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw file_error(path, std::string("cannot move the temporary file into place: ") + std::strerror(errno));
}

nn::NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(path, "cannot open it (" + std::string(std::strerror(errno)) + ")");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw file_error(path, "read failed (" + std::string(std::strerror(errno)) + ")");
  return parse_safetensors(bytes.data(), bytes.size(), path, metadata);
}

nn::NamedTensors parse_safetensors(const uint8_t* bytes, size_t size_in, const std::string& path,
                                   std::map<std::string, std::string>* metadata) {
  const uint64_t size = size_in;
  if (size < 8) throw file_error(path, "truncated: " + std::to_string(size) + " bytes, too short for the 8-byte header length");
  uint64_t hn = 0;
  std::memcpy(&hn, bytes, 8);
  if (hn > size - 8)
    throw file_error(path, "truncated or corrupt: the header claims " + std::to_string(hn) + " bytes but only " +
                               std::to_string(size - 8) + " follow byte 8");
  const std::string h(reinterpret_cast<const char*>(bytes) + 8, hn);
  json header;
  try {
    header = json::parse(h);
  } catch (const json::parse_error& e) {
    throw file_error(path, "the JSON header (bytes 8.." + std::to_string(8 + hn) + ") is corrupt at byte " +
                               std::to_string(8 + e.byte) + ": " + e.what());
  } catch (const json::exception& e) {  // e.g. a number too large for a double (found by the fuzzer)
    throw file_error(path, "the JSON header (bytes 8.." + std::to_string(8 + hn) + ") cannot be read: " + e.what());
  }
  if (!header.is_object()) throw file_error(path, "the JSON header is not an object");
  const uint64_t data_start = 8 + hn, data_size = size - data_start;

  nn::NamedTensors out;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (metadata && entry.is_object())
        for (auto& [k, v] : entry.items()) (*metadata)[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    const std::string& tensor = name;  // (clang 14 cannot capture a structured binding)
    auto bad = [&](const std::string& what) { return file_error(path, "tensor '" + tensor + "': " + what); };
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw bad("entry lacks dtype, shape or data_offsets");
    const std::string dt = entry["dtype"].is_string() ? entry["dtype"].get<std::string>() : "";
    DType dtype;
    if (dt == "F32") dtype = DType::Float32;
    else if (dt == "F64") dtype = DType::Float64;
    else if (dt == "I64") dtype = DType::Int64;
    else throw bad("unsupported dtype '" + dt + "' (dgm reads F32, F64, I64)");
    Shape shape;
    if (!entry["shape"].is_array()) throw bad("shape " + entry["shape"].dump() + " is not a list of sizes");
    uint64_t count = 1;  // the values the shape holds: never more than the file's bytes (no overflow, no huge allocation)
    for (auto& d : entry["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw bad("shape " + entry["shape"].dump() + " is not a list of sizes");
      const uint64_t n = d.get<uint64_t>();
      if (n != 0 && count > size / n) throw bad("shape " + entry["shape"].dump() + " holds more values than the file has bytes");
      count *= n;
      shape.push_back(d.get<int64_t>());
    }
    auto& off = entry["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad("data_offsets " + off.dump() + " is not [begin, end]");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    const uint64_t want = static_cast<uint64_t>(shape.numel()) * dtype_size(dtype);
    if (e < b || e - b != want)
      throw bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] hold " + std::to_string(e - b) +
                " bytes, but shape " + shape.str() + " " + dt + " needs " + std::to_string(want));
    if (e > data_size)
      throw bad("truncated: its data ends at byte " + std::to_string(data_start + e) + " of a " + std::to_string(size) +
                "-byte file");
    Tensor t = Tensor::empty(shape, dtype);
    if (want > 0) std::memcpy(t.impl().storage->data, bytes + data_start + b, want);
    out.emplace_back(name, t);
  }
  return out;
}

void save_checkpoint(const nn::Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata) {
  nn::NamedTensors all = module.named_parameters();
  for (auto& b : module.named_buffers()) all.push_back(b);
  save_safetensors(path, all, metadata);
}

void load_checkpoint(nn::Module& module, const std::string& path) {
  nn::NamedTensors file = load_safetensors(path);
  std::map<std::string, Tensor> by_name(file.begin(), file.end());
  nn::NamedTensors mine = module.named_parameters();
  for (auto& b : module.named_buffers()) mine.push_back(b);
  std::set<std::string> expected;
  // Check everything first ...
  std::string missing;
  for (auto& [name, t] : mine) {
    expected.insert(name);
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      missing += (missing.empty() ? "" : ", ") + name;
      continue;
    }
    if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype())
      throw file_error(path, "tensor '" + name + "' is " + it->second.shape().str() + " " +
                                 dtype_name(it->second.dtype()) + " in the file but " + t.shape().str() + " " +
                                 dtype_name(t.dtype()) + " in the module");
  }
  if (!missing.empty()) throw file_error(path, "missing tensors the module has: " + missing);
  std::string unexpected;
  for (auto& [name, _] : file)
    if (!expected.count(name)) unexpected += (unexpected.empty() ? "" : ", ") + name;
  if (!unexpected.empty()) throw file_error(path, "tensors the module does not have: " + unexpected);
  // ... then copy.
  NoGradGuard ng;
  for (auto& [name, t] : mine) {
    Tensor dst = t;
    dst.copy_(by_name.at(name));
  }
}

}  // namespace dgm
