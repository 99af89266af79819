// safetensors checkpoints: round trip, a file written by hand from the
// format's description, and every kind of bad file.
#include "helpers.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "autograd/checkpoint.h"

using namespace dgm;
using namespace dgm::test;

namespace {
std::string tmp_path(const std::string& name) { return temp_path("dgm-tests", name); }
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
// 8-byte little-endian length + header + data, as the format describes it.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}
std::string floats(std::vector<float> v) { return std::string(reinterpret_cast<char*>(v.data()), v.size() * 4); }
}  // namespace

TEST_CASE("a module round-trips through safetensors", "[checkpoint]") {
  Generator g(1);
  auto a = nn::mlp({3, 4, 2}, g);
  auto b = nn::mlp({3, 4, 2}, g);
  const std::string path = tmp_path("roundtrip.safetensors");
  save_checkpoint(*a, path, {{"note", "test"}});
  CHECK(b->parameters()[0].to_vector() != a->parameters()[0].to_vector());
  load_checkpoint(*b, path);
  for (size_t i = 0; i < a->parameters().size(); ++i)
    CHECK(b->parameters()[i].to_vector() == a->parameters()[i].to_vector());
  std::map<std::string, std::string> meta;
  load_safetensors(path, &meta);
  CHECK(meta["note"] == "test");
  // the header is 8-byte aligned JSON, as the format requires
  std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);
  CHECK(bytes.substr(8, 1) == "{");
}

TEST_CASE("a hand-written safetensors file loads", "[checkpoint]") {
  const std::string path = tmp_path("hand.safetensors");
  write_bytes(path, safetensors_bytes(
                        R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},)"
                        R"("a":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]}})",
                        floats({1.5f, -2, 3, 10, 20})));
  auto ts = load_safetensors(path);
  std::map<std::string, Tensor> m(ts.begin(), ts.end());
  CHECK(m.at("a").shape() == Shape{1, 3});
  CHECK(m.at("a").to_vector() == std::vector<double>{1.5, -2, 3});
  CHECK(m.at("b").to_vector() == std::vector<double>{10, 20});
}

TEST_CASE("bad checkpoint files give clear errors", "[checkpoint]") {
  CHECK_THAT(error_of([] { load_safetensors(tmp_path("does-not-exist.safetensors")); }),
             Catch::Contains("does-not-exist.safetensors") && Catch::Contains("cannot open"));
  const std::string path = tmp_path("bad.safetensors");
  write_bytes(path, "abc");
  CHECK_THAT(error_of([&] { load_safetensors(path); }), Catch::Contains("truncated: 3 bytes"));
  write_bytes(path, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", floats({1, 2})));
  CHECK_THAT(error_of([&] { load_safetensors(path); }), Catch::Contains("tensor 'a': truncated"));
  write_bytes(path, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", floats({1, 2, 3})));
  CHECK_THAT(error_of([&] { load_safetensors(path); }), Catch::Contains("needs 16"));
  write_bytes(path, safetensors_bytes(R"({"a":{"dtype":"F32", "shape":[1],)", floats({1})));
  CHECK_THAT(error_of([&] { load_safetensors(path); }), Catch::Contains("JSON header") && Catch::Contains("corrupt at byte"));
  write_bytes(path, safetensors_bytes(R"({"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", "xx"));
  CHECK_THAT(error_of([&] { load_safetensors(path); }), Catch::Contains("unsupported dtype 'BF16'"));
  std::string huge(8, '\xff');
  write_bytes(path, huge + "{}");
  CHECK_THAT(error_of([&] { load_safetensors(path); }), Catch::Contains("header claims"));
}

TEST_CASE("a checkpoint that does not fit leaves the module unchanged", "[checkpoint]") {
  Generator g(2);
  auto small = nn::mlp({3, 4, 2}, g);
  auto other = nn::mlp({3, 5, 2}, g);
  const std::string path = tmp_path("other.safetensors");
  save_checkpoint(*other, path);
  std::vector<double> before = small->parameters()[3].to_vector();
  std::string msg = error_of([&] { load_checkpoint(*small, path); });
  CHECK_THAT(msg, Catch::Contains("'0.weight' is [5, 3] float32 in the file but [4, 3] float32 in the module"));
  CHECK(small->parameters()[3].to_vector() == before);
  auto deeper = nn::mlp({3, 4, 4, 2}, g);
  save_checkpoint(*deeper, path);
  CHECK_THAT(error_of([&] { load_checkpoint(*small, path); }), Catch::Contains("'2.weight' is [4, 4]"));
}
