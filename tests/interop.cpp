// tests/interop.cpp — dgm_interop: the dgm side of the bridge to numpy and PyTorch (docs/outputs.md).
//
//   dgm_interop write DIR    a checkpoint (dgm.safetensors) and expected.json (names, dtypes, shapes, values)
//   dgm_interop check DIR    loads DIR/numpy.safetensors (written by scripts/numpy_roundtrip.py) and checks
//                            it; then three corrupt copies of it (a malformed header, an offset out of range,
//                            an unknown dtype) must each fail to load with a named error, leaving the module as it was
//   dgm_interop export DIR   builds recipes' models (MADE, PixelCNN plain and gated, the VAE, RealNVP 2-D, NICE,
//                            RealNVP, the multi-scale image flow and its Glow-style variant, DDPM with the eps-MLP and
//                            with the U-Net,
//                            the DCGAN, the Transformer, an LSTM and a GRU language model), trains each briefly and writes, per model, <name>.safetensors,
//                            <name>.json (model, constructor arguments, recipe, data transform) and
//                            <name>_test.safetensors (100 inputs and dgm's figures on them) for scripts/to_torch.py
//   dgm_interop import DIR   loads each <tag>.torch.safetensors that scripts/to_torch.py wrote (a PyTorch state_dict)
//                            into a model built from <tag>.torch.json and writes dgm's figures on the same inputs
// Exit status 0 when every check held.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "models/diffusion.h"
#include "models/flows.h"
#include "models/gan.h"
#include "models/recipes.h"
#include "models/registry.h"
#include "models/made.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/toy2d.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/transforms.h"
#include "models/vae.h"

using namespace dgm;
namespace fs = std::filesystem;

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "ok    " : "FAIL  ") << what << "\n";
  if (!ok) ++failures;
}

// The tensors of the round trip: every dtype dgm writes, PyTorch-style names, awkward values.
nn::NamedTensors roundtrip_tensors() {
  Generator g(7);
  Tensor w = g.normal({3, 4}, 0, 1), b = Tensor::from_vector(std::vector<float>{-0.0f, 1e-38f, 3.4e38f}, {3});
  Tensor v = Tensor::from_vector(std::vector<double>{1e-300, -2.5, M_PI, 1.0 / 3.0, 6.02214076e23}, {5});
  Tensor counts = Tensor::from_indices({-1, 0, 9007199254740993LL, 42}, {2, 2});
  Tensor scalar = Tensor::scalar(0.125, DType::Float64);
  return {{"encoder.0.weight", w}, {"encoder.0.bias", b}, {"prior.log_var", v}, {"stats.count", counts}, {"step", scalar}};
}

std::string dtype_code(DType d) { return d == DType::Float32 ? "F32" : d == DType::Float64 ? "F64" : "I64"; }

int write_roundtrip(const fs::path& dir) {
  fs::create_directories(dir);
  const auto ts = roundtrip_tensors();
  save_safetensors((dir / "dgm.safetensors").string(), ts, {{"written_by", "dgm_interop"}});
  std::ofstream j(dir / "expected.json");
  j << "{";
  for (size_t i = 0; i < ts.size(); ++i) {
    const auto& [name, t] = ts[i];
    j << (i ? ",\n" : "\n") << " \"" << name << "\": {\"dtype\": \"" << dtype_code(t.dtype()) << "\", \"shape\": [";
    for (int64_t a = 0; a < static_cast<int64_t>(t.dim()); ++a) j << (a ? ", " : "") << t.size(a);
    j << "], \"values\": [";
    for (int64_t k = 0; k < t.numel(); ++k) {
      j << (k ? ", " : "");
      if (t.dtype() == DType::Int64)
        j << t.data<int64_t>()[k];
      else
        j << std::setprecision(17) << t.at(k);  // 17 significant digits: a double (and a float) exactly
    }
    j << "]}";
  }
  j << "\n}\n";
  std::cout << "wrote " << (dir / "dgm.safetensors").string() << " and expected.json (" << ts.size() << " tensors)\n";
  return 0;
}

// A module whose parameters and buffers have the round trip's names and shapes
// (what numpy's file is loaded into): encoder.0.{weight,bias}, prior.log_var, stats.count, step.
struct Tree : nn::Module {
  using nn::Module::register_buffer;
  using nn::Module::register_module;
  using nn::Module::register_parameter;
};
struct RoundtripModule : Tree {
  RoundtripModule() {
    auto zero = register_module("encoder", std::make_shared<Tree>())->register_module("0", std::make_shared<Tree>());
    zero->register_parameter("weight", Tensor::zeros({3, 4}));
    zero->register_parameter("bias", Tensor::zeros({3}));
    register_module("prior", std::make_shared<Tree>())->register_parameter("log_var", Tensor::zeros({5}, DType::Float64));
    register_module("stats", std::make_shared<Tree>())->register_buffer("count", Tensor::zeros({2, 2}, DType::Int64));
    register_buffer("step", Tensor::scalar(0, DType::Float64));
  }
  std::map<std::string, Tensor> state() const {
    std::map<std::string, Tensor> m;
    for (const auto& [n, t] : named_parameters()) m[n] = t;
    for (const auto& [n, t] : named_buffers()) m[n] = t;
    return m;
  }
};

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A copy of a safetensors file whose JSON header `edit` changes (the data stay as they were).
void corrupt_header(const fs::path& from, const fs::path& to, const std::function<void(std::string&)>& edit) {
  std::vector<uint8_t> b = read_bytes(from);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  std::string header(b.begin() + 8, b.begin() + 8 + static_cast<int64_t>(n));
  edit(header);
  std::vector<uint8_t> out(8);
  const uint64_t m = header.size();
  std::memcpy(out.data(), &m, 8);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), b.begin() + 8 + static_cast<int64_t>(n), b.end());
  write_bytes(to, out);
}

int check_roundtrip(const fs::path& dir) {
  const fs::path numpy_file = dir / "numpy.safetensors";
  std::map<std::string, std::string> meta;
  const nn::NamedTensors back = load_safetensors(numpy_file.string(), &meta);
  expect(meta.count("written_by") && meta["written_by"].rfind("numpy", 0) == 0, "numpy's metadata came through: " + meta["written_by"]);
  std::map<std::string, Tensor> got(back.begin(), back.end());
  for (const auto& [name, t] : roundtrip_tensors()) {
    const auto it = got.find(name);
    expect(it != got.end(), name + " is in numpy's file");
    if (it == got.end()) continue;
    const Tensor& u = it->second;
    expect(u.shape() == t.shape() && u.dtype() == t.dtype(), name + ": shape " + u.shape().str() + ", dtype " + dtype_code(u.dtype()));
    bool same = u.shape() == t.shape() && u.dtype() == t.dtype();
    for (int64_t k = 0; same && k < t.numel(); ++k) {
      if (t.dtype() == DType::Int64)
        same = u.data<int64_t>()[k] == t.data<int64_t>()[k] * 2 + 1;
      else if (t.dtype() == DType::Float32)
        same = u.data<float>()[k] == t.data<float>()[k] * 2.0f + 1.0f || (std::isinf(u.data<float>()[k]) && std::isinf(t.data<float>()[k] * 2.0f));
      else
        same = u.data<double>()[k] == t.data<double>()[k] * 2.0 + 1.0;
    }
    expect(same, name + ": numpy's values are dgm's times 2 plus 1, bit for bit");
  }
  const nn::NamedTensors extra = load_safetensors((dir / "numpy_extra.safetensors").string());
  const auto ar = extra.begin();
  bool arange_ok = extra.size() == 1 && ar->first == "numpy.arange" && ar->second.shape() == Shape{2, 3} &&
                   ar->second.dtype() == DType::Float64;
  for (int64_t k = 0; arange_ok && k < 6; ++k) arange_ok = ar->second.data<double>()[k] == static_cast<double>(k);
  expect(arange_ok, "numpy.arange: [2, 3] float64 0..5, written by numpy");

  // numpy's file into a module (every name present with its shape and dtype, and no other)
  RoundtripModule m;
  try {
    load_checkpoint(m, numpy_file.string());
    bool all = true;
    for (const auto& [n, t] : m.state())
      for (int64_t k = 0; all && k < t.numel(); ++k) all = t.at(k) == got.at(n).at(k) || (std::isinf(t.at(k)) && std::isinf(got.at(n).at(k)));
    expect(all, "load_checkpoint(module, numpy's file): every parameter and buffer has numpy's values");
  } catch (const std::exception& e) {
    expect(false, std::string("load_checkpoint(module, numpy's file): ") + e.what());
  }

  // three corrupt files: each a named error, the module unchanged
  const std::map<std::string, Tensor> before = m.state();
  struct Case {
    std::string file, error;
    std::function<void(std::string&)> edit;
  };
  using json = nlohmann::ordered_json;
  const std::vector<Case> cases = {
      {"corrupt_header.safetensors", "JSON header", [](std::string& h) { h[h.find('{')] = '['; }},  // malformed
      {"corrupt_offset.safetensors", "data ends at byte",  // an offset past the end of the file
       [](std::string& h) {
         json j = json::parse(h);
         auto& off = j["stats.count"]["data_offsets"];
         off = {off[0].get<uint64_t>() + 1000000, off[1].get<uint64_t>() + 1000000};
         h = j.dump();
       }},
      {"corrupt_dtype.safetensors", "unsupported dtype 'BF16'",  // a dtype dgm does not know
       [](std::string& h) {
         json j = json::parse(h);
         j["stats.count"]["dtype"] = "BF16";
         h = j.dump();
       }},
  };
  for (const auto& c : cases) {
    const fs::path bad = dir / c.file;
    std::string message;
    try {
      corrupt_header(numpy_file, bad, c.edit);
      load_checkpoint(m, bad.string());
    } catch (const Error& e) {
      message = e.what();
    }
    expect(message.find(bad.string()) != std::string::npos && message.find(c.error) != std::string::npos,
           c.file + ": \"" + message + "\"");
    bool unchanged = true;
    for (const auto& [n, t] : m.state()) {
      const Tensor& was = before.at(n);
      for (int64_t k = 0; unchanged && k < t.numel(); ++k) unchanged = t.at(k) == was.at(k);
    }
    expect(unchanged, c.file + ": the module is unchanged");
  }
  return failures == 0 ? 0 : 1;
}

// ------------------------------------------------------------ export for scripts/to_torch.py
// x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, one t per example, from the model's own schedule.
Tensor noised(models::DDPM& ddpm, const Tensor& x0, const Tensor& eps, const Tensor& t) {
  std::vector<float> a, b;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double ab = ddpm.schedule().alpha_bar[static_cast<size_t>(t.data<int64_t>()[i])];
    a.push_back(static_cast<float>(std::sqrt(ab))), b.push_back(static_cast<float>(std::sqrt(1 - ab)));
  }
  Shape column{t.numel()};
  for (size_t d = 1; d < x0.dim(); ++d) column.push_back(1);
  return x0 * Tensor::from_vector(a, column) + eps * Tensor::from_vector(b, column);
}

// Every model is a recipe's (models/recipes.h), built and trained briefly as its lesson does, so the
// JSON beside each checkpoint is the one a lesson writes; <name>_test.safetensors holds 100 inputs
// and dgm's figures on them for scripts/to_torch.py to reproduce.
void train_briefly(models::TrainableDensity& model, const models::Recipe& r, const std::string& name, const Tensor& train_x,
                   const std::string& transform, int epochs, const fs::path& dir, Generator& gen,
                   const std::function<Tensor(const Tensor&)>& prepare = {}) {
  train::FitOptions o = r.fit_options(/*quick=*/true);
  o.epochs = epochs;
  o.tag = name;
  o.out_dir = dir.string();
  o.progress = false;
  o.data_transform = transform;
  o.prepare = prepare;
  train::fit(model, train_x, Tensor(), gen, o);
}

int export_models(const fs::path& dir) {
  fs::create_directories(dir);
  Generator gen(3);
  const data::DataSet digits = data::load_data_set("digits17"), binarized = data::load_data_set("digits_binarized");
  const Tensor train_flat = reshape(digits.train, {digits.train.size(0), 64});
  const Tensor test_images = slice(digits.test, 0, 0, 100), test_flat = reshape(test_images, {100, 64});
  std::vector<std::string> written;
  auto save_test = [&](const std::string& name, const nn::NamedTensors& t) {
    save_safetensors((dir / (name + "_test.safetensors")).string(), t);
    written.push_back(name);
  };
  {  // MADE on the 17-level digits
    const models::Recipe& r = models::recipe("digits_made");
    auto m = models::build(r, true, gen);
    train_briefly(*m, r, "made", train_flat, digits.name + ": " + digits.description, 3, dir, gen);
    NoGradGuard g;
    save_test("made", {{"x", test_flat}, {"log_prob", m->log_prob(test_flat)}});
  }
  for (const bool gated : {false, true}) {  // PixelCNN, plain and gated, on the 17-level digits
    models::Recipe r = models::recipe("digits_pixelcnn");
    r.set("gated", gated ? "true" : "false");
    const std::string name = gated ? "pixelcnn_gated" : "pixelcnn";
    auto m = models::build(r, true, gen);
    train_briefly(*m, r, name, digits.train, digits.name + ": " + digits.description, 1, dir, gen);
    NoGradGuard g;
    save_test(name, {{"x", test_images}, {"log_prob", m->log_prob(test_images)}});
  }
  {  // the VAE on the binarized digits, the ELBO with noise passed to PyTorch
    const models::Recipe& r = models::recipe("digits_vae");
    auto m = models::build(r, true, gen);
    auto& vae = dynamic_cast<models::VAE&>(*m);
    train_briefly(vae, r, "vae", reshape(binarized.train, {binarized.train.size(0), 64}), binarized.name + ": " + binarized.description, 5,
                  dir, gen, [&](const Tensor& x) { return binarized.prepare(x, gen); });
    const Tensor test_bin = reshape(slice(binarized.test, 0, 0, 100), {100, 64});
    NoGradGuard g;
    const models::VAE::Posterior q = vae.encode(test_bin);
    const Tensor eps = gen.normal(q.mu.shape(), 0, 1);
    const Tensor z = q.mu + exp(q.logvar * 0.5) * eps;
    const Tensor kl = dist::sum_per_example(dist::Normal{q.mu, q.logvar}.kl_to_standard());
    const Tensor elbo = vae.log_likelihood(test_bin, z) - kl;
    save_test("vae", {{"x", test_bin}, {"eps", eps}, {"elbo", elbo}});
  }
  {  // RealNVP2D (bench_train's d_realnvp2d setup) on 8 Gaussians
    const models::Recipe& r = models::recipe("bench_realnvp2d");
    auto m = models::build(r, true, gen);
    const Tensor train_pts = data::sample_toy(data::Toy::EightGaussians, 4000, gen), test_pts = data::sample_toy(data::Toy::EightGaussians, 100, gen);
    train_briefly(*m, r, "realnvp2d", train_pts, "2-D toy 8gaussians, points as they are", 5, dir, gen);
    NoGradGuard g;
    save_test("realnvp2d", {{"x", test_pts}, {"log_prob", m->log_prob(test_pts)}});
  }
  // The flows of lesson_flows on the digits (and the image flow Glow-style): log p(u) of the continuous flow on
  // one dequantization u of 100 test images (the bound's one draw, without the -D log 17 of the levels)
  for (const auto& [name, tag] : std::vector<std::pair<std::string, std::string>>{
           {"nice", "digits_nice"}, {"realnvp", "digits_realnvp_mlp"}, {"image_flow", "digits_realnvp_multiscale"}, {"glow", "digits_realnvp_multiscale"}}) {
    models::Recipe r = models::recipe(tag);
    if (name == "glow") r.set("conv1x1", "true");
    auto m = models::build(r, true, gen);
    auto& flow = dynamic_cast<models::Flow&>(*m);
    const Tensor train_x = r.flat ? train_flat : digits.train, test_x = r.flat ? test_flat : test_images;
    train_briefly(flow, r, name, train_x, digits.name + ": " + digits.description, 2, dir, gen);
    flow.eval();
    NoGradGuard g;
    const Tensor u = flow.dequantize(test_x);
    save_test(name, {{"x", u}, {"log_prob", flow.log_prob_continuous(u)}});
  }
  // DDPM with the eps-MLP, and with the U-Net, on the digits: x_t from x_0 by the schedule, and the predicted noise
  for (const auto& [name, tag] : std::vector<std::pair<std::string, std::string>>{{"ddpm", "digits_ddpm"}, {"ddpm_unet", "digits_unet"}}) {
    const models::Recipe& r = models::recipe(tag);
    auto m = models::build(r, true, gen);
    auto& ddpm = dynamic_cast<models::DDPM&>(*m);
    train_briefly(ddpm, r, name, r.flat ? train_flat : digits.train, digits.name + ": " + digits.description, 1, dir, gen);
    NoGradGuard g;
    const Tensor x0 = ddpm.to_model_space(r.flat ? test_flat : test_images), eps = gen.normal(x0.shape());
    const Tensor t = gen.randint({100}, 0, ddpm.schedule().steps());
    save_test(name, {{"x0", x0}, {"eps", eps}, {"t", t}, {"eps_pred", ddpm.predict_noise(noised(ddpm, x0, eps, t), t)}});
  }
  // lesson_sequence's families: the Transformer on the digits (levels), an LSTM and a GRU on words (token ids,
  // the positions after a word's end not counted): log p(x) of 100 test examples
  {
    const models::Recipe& r = models::recipe("digits_transformer");
    auto m = models::build(r, true, gen);
    train_briefly(*m, r, "transformer", train_flat, digits.name + ": " + digits.description, 1, dir, gen);
    m->eval();
    NoGradGuard g;
    save_test("transformer", {{"x", test_flat}, {"log_prob", m->log_prob(test_flat)}});
  }
  {
    const data::DataSet words = data::load_data_set("words");
    const Tensor train_words = slice(words.train, 0, 0, 2000), test_words = slice(words.test, 0, 0, 100);
    for (const std::string cell : {"lstm", "gru"}) {
      models::Recipe r = models::recipe("words_lstm");
      r.set("cell", "\"" + cell + "\"").set("layers", "2");
      auto m = models::build(r, true, gen);
      train_briefly(*m, r, cell, train_words, words.name + " (the first 2,000 training words): " + words.description, 1, dir, gen);
      NoGradGuard g;
      save_test(cell, {{"x", test_words}, {"log_prob", m->log_prob(test_words)}});
    }
  }
  {  // the DCGAN of lesson_gan: G(z) for 100 z, D on 100 images
    const models::Recipe& r = models::recipe("fashion_dcgan");
    models::gan::GAN game = models::build_gan(r, true, gen);
    models::gan::Options o = models::gan_options(r, true);
    o.steps = 20, o.out_dir = dir.string(), o.tag = "dcgan", o.progress = false;
    o.data_transform = "uniform noise images in [0, 1] (the bridge compares computations, not quality)";
    const Tensor images = gen.uniform({256, 1, 28, 28});
    models::gan::train(game, images, gen, o);
    NoGradGuard g;
    const Tensor z = game.noise(100, gen), x = slice(images, 0, 0, 100);
    save_test("dcgan", {{"z", z}, {"g_of_z", game.generator->forward(z)}, {"x", x}, {"d_of_x", game.discriminator->forward(x)}});
  }
  std::cout << "wrote";
  for (const auto& n : written) std::cout << " " << n;
  std::cout << " (.safetensors, .json, _test.safetensors) into " << dir.string()
            << (digits.synthetic ? " (the synthetic digits: the real ones are not installed)" : "") << "\n";
  return 0;
}

// ------------------------------------------------------------ import from scripts/to_torch.py
// Each <tag>.torch.safetensors (a PyTorch state_dict) loads into a model built from <tag>.torch.json, and
// dgm's figure on the test inputs goes to <tag>.dgm_figures.safetensors for to_torch.py --check-import.
int import_models(const fs::path& dir) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (!file.ends_with(".torch.json")) continue;
    std::ifstream in(entry.path());
    const nlohmann::json j = nlohmann::json::parse(in);
    const std::string tag = j.at("tag"), model = j.at("model"), stem = j.at("test");
    const std::string config = j.at("config").dump();
    const nn::NamedTensors test = load_safetensors((dir / (stem + "_test.safetensors")).string());
    std::map<std::string, Tensor> t(test.begin(), test.end());
    Generator gen(0);
    Tensor figure;
    const std::string weights = (dir / (tag + ".torch.safetensors")).string();
    NoGradGuard g;
    if (model == "ConvGenerator" || model == "ConvDiscriminator") {
      const nlohmann::json c = j.at("config");
      if (model == "ConvGenerator") {
        models::gan::ConvGenerator net(c.at("latent"), c.at("channels"), c.at("width"), gen);
        load_checkpoint(net, weights);
        figure = net.forward(t.at("z"));
      } else {
        models::gan::ConvDiscriminator net(c.at("channels"), c.at("width"), gen);
        load_checkpoint(net, weights);
        figure = net.forward(t.at("x"));
      }
    } else {
      auto m = models::make_model(model, config, gen);
      load_checkpoint(*m, weights);
      m->eval();
      if (auto* vae = dynamic_cast<models::VAE*>(m.get())) {
        const models::VAE::Posterior q = vae->encode(t.at("x"));
        const Tensor z = q.mu + exp(q.logvar * 0.5) * t.at("eps");
        figure = vae->log_likelihood(t.at("x"), z) - dist::sum_per_example(dist::Normal{q.mu, q.logvar}.kl_to_standard());
      } else if (auto* ddpm = dynamic_cast<models::DDPM*>(m.get())) {
        figure = ddpm->predict_noise(noised(*ddpm, t.at("x0"), t.at("eps"), t.at("t")), t.at("t"));
      } else if (auto* flow = dynamic_cast<models::Flow*>(m.get())) {
        figure = flow->log_prob_continuous(t.at("x"));  // x is already the dequantized u
      } else {
        figure = m->log_prob(t.at("x"));
      }
    }
    save_safetensors((dir / (tag + ".dgm_figures.safetensors")).string(), {{"figure", figure.contiguous_copy()}});
    std::cout << "loaded PyTorch's " << tag << " (" << model << ") into dgm: " << figure.numel() << " values written\n";
    ++n;
  }
  if (n == 0) throw Error("dgm_interop import: no <tag>.torch.json in " + dir.string() + " (run scripts/to_torch.py DIR first)");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage = "usage: dgm_interop write|check|export|import DIR";
  if (argc != 3) {
    std::cerr << usage << "\n";
    return 2;
  }
  const std::string mode = argv[1];
  try {
    if (mode == "write") return write_roundtrip(argv[2]);
    if (mode == "check") return check_roundtrip(argv[2]);
    if (mode == "export") return export_models(argv[2]);
    if (mode == "import") return import_models(argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "dgm_interop " << mode << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << usage << "\n";
  return 2;
}
