// safetensors checkpoints: round trip, a file written by hand from the
// format's description, and every kind of bad file.
#include "helpers.h"

#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>
#include <fstream>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "models/diffusion.h"
#include "models/flows.h"
#include "models/made.h"
#include "models/mixtures.h"
#include "models/pixelcnn.h"
#include "models/registry.h"
#include "models/toolkit/distributions.h"
#include "models/unet.h"
#include "models/vae.h"

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

TEST_CASE("every model comes back from the JSON beside its checkpoint (make_model), computing the same numbers") {
  using namespace dgm;
  Generator g(5), g2(99);
  const std::string path = test::temp_path("dgm-registry", "model.safetensors");
  auto same_after_reload = [&](models::TrainableDensity& a, const std::function<Tensor(models::TrainableDensity&)>& f) {
    INFO(a.name() << " " << a.config_json());
    save_checkpoint(a, path);
    auto b = models::make_model(a.name(), a.config_json(), g2);  // other random initial weights
    load_checkpoint(*b, path);
    CHECK(b->config_json() == a.config_json());
    NoGradGuard ng;
    const Tensor ya = f(a), yb = f(*b);
    REQUIRE(ya.shape() == yb.shape());
    for (int64_t i = 0; i < ya.numel(); ++i) CHECK(ya.at(i) == yb.at(i));
  };
  const Tensor digits = dist::index_to_levels(g.randint({6, 1, 8, 8}, 0, 17), 17);
  const Tensor flat = reshape(digits, {6, 64});
  models::MADE made(64, {32}, 17, g);
  made.reorder(g, /*random=*/true);  // the ordering travels in the masks
  same_after_reload(made, [&](models::TrainableDensity& m) { return m.log_prob(flat); });
  models::PixelCNN pix(17, 8, 2, 8, 8, g, /*gated=*/true);
  same_after_reload(pix, [&](models::TrainableDensity& m) { return m.log_prob(digits); });
  models::VAE vae(64, {16, 8}, 3, models::Decoder::Gaussian, g);
  const Tensor z = g.normal({4, 3});
  same_after_reload(vae, [&](models::TrainableDensity& m) { return dynamic_cast<models::VAE&>(m).decode(z); });
  models::RealNVP2D r2(4, 16, g);
  const Tensor pts = g.normal({5, 2});
  same_after_reload(r2, [&](models::TrainableDensity& m) { return m.log_prob(pts); });
  auto nice = models::make_nice(64, 3, {16}, g, 0, models::Prior::Gaussian);
  same_after_reload(*nice, [&](models::TrainableDensity& m) { return m.log_prob(flat); });
  auto rnvp = models::make_realnvp(64, 2, {16}, g, 0, /*actnorm=*/true, 0.05);
  same_after_reload(*rnvp, [&](models::TrainableDensity& m) { return m.log_prob(flat); });
  models::ImageFlowOptions io;
  io.height = io.width = 8, io.levels = 0, io.scales = 2, io.steps = 1, io.hidden = 4, io.conv1x1 = true;
  auto img = models::make_image_flow(io, g);
  const Tensor unit = g.uniform({3, 1, 8, 8}, 0.1, 0.9);
  same_after_reload(*img, [&](models::TrainableDensity& m) { return m.log_prob(unit); });
  models::DDPM mlp_ddpm(64, models::NoiseSchedule::cosine(20), {32}, g, 17, 16);
  mlp_ddpm.objective = models::DDPM::Objective::Bound;
  const Tensor t = Tensor::from_indices({0, 5, 19, 7, 1, 2}, {6});
  same_after_reload(mlp_ddpm, [&](models::TrainableDensity& m) { return dynamic_cast<models::DDPM&>(m).predict_noise(flat, t); });
  models::UNetOptions uo;
  uo.base = 8, uo.groups = 2, uo.multipliers = {1, 2};
  models::DDPM unet_ddpm(Shape{1, 8, 8}, models::NoiseSchedule::linear(10, 1e-3, 0.1), std::make_shared<models::UNet>(uo, g), g, 17);
  same_after_reload(unet_ddpm, [&](models::TrainableDensity& m) { return dynamic_cast<models::DDPM&>(m).predict_noise(digits, t); });
  models::GaussianMixture gm = models::init_kmeans_pp(g.normal({50, 2}, 0, 1, DType::Float64), 3, g);
  models::GaussianMixtureGradient gmg(gm);
  same_after_reload(gmg, [&](models::TrainableDensity& m) { return m.log_prob(pts.to(DType::Float64)); });

  CHECK(test::error_of([&] { models::make_model("made", "{\"dims\": 4}", g); }).find("incomplete or malformed") != std::string::npos);
  CHECK(test::error_of([&] { models::make_model("gan", "{}", g); }).find("unknown model 'gan'") != std::string::npos);
}

TEST_CASE("a checkpoint header with a number too large for a double is a named error (found by the fuzzer)") {
  using namespace dgm;
  std::string header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1e999999}}";
  std::vector<uint8_t> bytes(8);
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), {0, 0, 128, 63});
  const std::string e = test::error_of([&] { parse_safetensors(bytes.data(), bytes.size(), "big.safetensors"); });
  CHECK(e.find("big.safetensors") != std::string::npos);
  CHECK(e.find("cannot be read") != std::string::npos);
}

TEST_CASE("a process killed while it writes a checkpoint never leaves a broken file in place of the previous one", "[checkpoint]") {
  const std::string path = test::temp_path("dgm-torn", "big.safetensors"), json = test::temp_path("dgm-torn", "big.json");
  // 16 MiB of one value per version: a write takes long enough to be killed in the middle
  auto version = [](float v) { return nn::NamedTensors{{"w", Tensor::full({4 * 1024 * 1024}, v)}}; };
  save_safetensors(path, version(0.f));
  save_text_atomically(json, "{\"version\": 0}\n");
  int killed_mid_write = 0;
  // six kills at 15 to 115 ms, and more rounds (up to 40) while none has landed in the middle of a
  // write: on a loaded machine under the sanitizers a forked writer can take longer to get going
  for (int round = 0; round < 40 && (round < 6 || killed_mid_write == 0); ++round) {
    std::filesystem::remove(path + ".tmp");
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // writes versions 1, 2, 3, ... until it is killed
      for (int k = 1;; ++k) {
        save_safetensors(path, version(static_cast<float>(k)));
        save_text_atomically(json, "{\"version\": " + std::to_string(k) + "}\n");
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(15 + 20 * (round % 6) + round));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    killed_mid_write += std::filesystem::exists(path + ".tmp") ? 1 : 0;
    // the file in place is whole: it loads, and every value is the one version it was written with
    const nn::NamedTensors back = load_safetensors(path);
    REQUIRE(back.size() == 1);
    const Tensor& w = back[0].second;
    CHECK(w.numel() == 4 * 1024 * 1024);
    CHECK(max(abs(w - w.at(0))).item() == 0.0);
    const std::string text = test::read_text(json);
    CHECK(text.rfind("{\"version\": ", 0) == 0);
    CHECK(text.back() == '\n');
  }
  CHECK(killed_mid_write > 0);  // the test did kill a write in progress (its temporary file was left behind)
}
