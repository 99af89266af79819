// dgm/lessons/common/harness.cpp
#include "lessons/common/harness.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/checkpoint.h"
#include "models/diffusion.h"
#include "models/flows.h"
#include "models/made.h"
#include "models/pixelcnn.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/progress.h"
#include "models/toolkit/transforms.h"
#include "models/unet.h"
#include "models/vae.h"

namespace dgm::lesson::harness {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- data sets
DataSet digits17(const Options& opt) {
  const DigitSplits d = load_digits(opt);
  return {"digits17",
          std::string(d.synthetic ? "synthetic 8x8 glyphs (the digits are not installed)" : "8x8 digits") +
              ", 17 grey levels; train 1,000 / validation 350 / test 447",
          d.train.images, d.validation.images, d.test.images, d.train.images, {}};
}

DataSet fashion_binarized(const Options& opt) {
  const data::ImageSet tr = data::fashion_mnist(data::Split::Train, opt.data), te = data::fashion_mnist(data::Split::Test, opt.data);
  auto gen = std::make_shared<Generator>(opt.seed + 17);
  return {"fashion_binarized",
          "Fashion-MNIST 28x28, binarized: dynamically for training, one fixed binarization of validation and test; "
          "train 55,000 / validation 5,000 / test 10,000",
          slice(tr.images, 0, 0, 55000), data::binarize_static(slice(tr.images, 0, 55000, 60000), 1),
          data::binarize_static(te.images, 0), data::binarize_static(slice(tr.images, 0, 0, 10000), 2),
          [gen](const Tensor& x) { return data::binarize_dynamic(x, *gen); }};
}

DataSet fashion_dequantized(const Options& opt) {
  const data::ImageSet tr = data::fashion_mnist(data::Split::Train, opt.data), te = data::fashion_mnist(data::Split::Test, opt.data);
  const Tensor train = slice(tr.images, 0, 0, 59000);
  return {"fashion_dequantized",
          "Fashion-MNIST 28x28, 256 levels (continuous models: uniform dequantization, the 1/256 scaling counted); "
          "train 59,000 / validation 1,000 / test 10,000",
          train, slice(tr.images, 0, 59000, 60000), te.images, train, {}};
}

// ---------------------------------------------------------------- recipes
// The lessons' own configurations (lesson_ar, lesson_flow, lesson_ddpm,
// lesson_vae), so that their checkpoints load here.
namespace {

std::function<void(train::FitOptions&)> epochs_batch(int epochs, int64_t batch, double lr = 1e-3) {
  return [=](train::FitOptions& o) {
    o.epochs = epochs;
    o.batch_size = batch;
    o.lr = lr;
  };
}

// Big data sets: "epochs" of 6,400 examples until the time budget is spent.
std::function<void(train::FitOptions&)> budget(double minutes, int64_t batch, double ema = 0) {
  return [=](train::FitOptions& o) {
    o.epochs = 1000;
    o.batch_size = batch;
    o.examples_per_epoch = 6400;
    o.max_seconds = minutes * 60;
    o.validate_every = 5;
    o.ema = ema;
  };
}

void eval_mode(models::TrainableDensity& m) { m.eval(); }

}  // namespace

std::vector<Recipe> digits_recipes(bool quick) {
  std::vector<Recipe> r;
  r.push_back({"digits_made", quick ? "MADE 128" : "MADE 512-512", "ar/digits_made", true,
               [quick](Generator& g) {
                 return std::make_shared<models::MADE>(64, quick ? std::vector<int64_t>{128} : std::vector<int64_t>{512, 512}, 17, g);
               },
               epochs_batch(quick ? 10 : 60, 50), {}, 0, false,
               "the book code's autoregressive model: ~89 nats (validation, read off its curve)"});
  r.push_back({"digits_pixelcnn", quick ? "PixelCNN 16 ch x 2" : "PixelCNN 64 ch x 5", "ar/digits_pixelcnn", false,
               [quick](Generator& g) { return std::make_shared<models::PixelCNN>(17, quick ? 16 : 64, quick ? 2 : 5, 8, 8, g); },
               epochs_batch(quick ? 3 : 40, 50), {}, 0, false, "the book code's autoregressive model: ~89 nats (validation)"});
  r.push_back({"digits_realnvp_mlp", "RealNVP, 8 affine couplings, MLP 128-128", "flow/digits_realnvp_mlp", true,
               [](Generator& g) { return models::make_realnvp(64, 8, {128, 128}, g, 17, /*actnorm=*/true, 0.05); },
               epochs_batch(quick ? 10 : 60, 64), eval_mode, 0, false,
               "the book code's RealNVP: ~125 nats (validation, still falling)"});
  r.push_back({"digits_realnvp_multiscale", "RealNVP multi-scale, ResNet couplings", "flow/digits_realnvp_multiscale", false,
               [quick](Generator& g) {
                 models::ImageFlowOptions io;
                 io.height = io.width = 8, io.levels = 17, io.scales = 2, io.steps = 2, io.hidden = quick ? 16 : 32, io.blocks = 1;
                 return models::make_image_flow(io, g);
               },
               epochs_batch(quick ? 3 : 40, 64), eval_mode, 0, false, "the book code's RealNVP: ~125 nats (validation)"});
  r.push_back({"digits_ddpm", quick ? "DDPM, T = 50, eps-MLP 256 x 3" : "DDPM, T = 50, eps-MLP 512 x 3", "ddpm/digits_ddpm", true,
               [quick](Generator& g) {
                 const int64_t h = quick ? 256 : 512;
                 return std::make_shared<models::DDPM>(64, models::NoiseSchedule::linear(50, 0.02, 0.3), std::vector<int64_t>{h, h, h}, g,
                                                       17, 64);
               },
               [quick](train::FitOptions& o) {
                 epochs_batch(quick ? 40 : 400, 64)(o);
                 o.ema = 0.999;
                 o.train_column = "train_loss";
               },
               {}, 0, /*no_validation=*/true, "the book code's diffusion (T = 5): ~134 nats"});
  return r;
}

std::vector<Recipe> fashion_binarized_recipes(double minutes) {
  std::vector<Recipe> r;
  r.push_back({"fashion_made", "MADE 1000-1000", "ar/fashion_made", true,
               [](Generator& g) { return std::make_shared<models::MADE>(784, std::vector<int64_t>{1000, 1000}, 2, g); },
               budget(minutes, 100), {}, 0, false, "binarized MNIST (another data set): MADE 86.64 nats (Germain et al. 2015)"});
  r.push_back({"fashion_pixelcnn", "PixelCNN 32 ch x 5", "ar/fashion_pixelcnn", false,
               [](Generator& g) { return std::make_shared<models::PixelCNN>(2, 32, 5, 28, 28, g); }, budget(minutes, 64), {}, 0, false,
               "binarized MNIST (another data set): PixelCNN 81.30 nats (van den Oord et al. 2016)"});
  r.push_back({"fashion_vae", "VAE 512-256, latent 16", "vae/vae", true,
               [](Generator& g) {
                 auto vae = std::make_shared<models::VAE>(784, std::vector<int64_t>{512, 256}, 16, models::Decoder::Bernoulli, g);
                 vae->iwae_k = 1;  // validation during training: the one-sample ELBO (IWAE-1000 is for the table)
                 return vae;
               },
               budget(minutes, 128), {}, 1000, false,
               "binarized MNIST (another data set): VAE 86.76, IWAE 84.78 nats (Burda et al. 2016)"});
  // the same trained VAE, two figures: the ELBO (one reparameterised sample per image: an unbiased
  // estimate of it) and the tighter IWAE bound with k = 1000
  auto iwae_k = [](int64_t k) { return [k](models::TrainableDensity& m) { dynamic_cast<models::VAE&>(m).iwae_k = k; }; };
  r.back().variants = {{"_elbo", ", -ELBO", iwae_k(1)}, {"_iwae", ", IWAE k = 1000", iwae_k(1000)}};
  return r;
}

std::vector<Recipe> fashion_dequantized_recipes(double minutes) {
  std::vector<Recipe> r;
  r.push_back({"fashion_flow", "RealNVP multi-scale (2 scales, 3 couplings, ResNet 32 ch)", "flow/fashion_flow", false,
               [](Generator& g) { return models::make_image_flow(models::ImageFlowOptions{}, g); }, budget(minutes, 64), eval_mode, 0,
               false, "Glow on Fashion-MNIST: 2.958 bits/dim (Nalisnick et al. 2019)"});
  r.push_back({"fashion_ddpm", "DDPM, T = 1000, U-Net 16-32-32", "ddpm/fashion_unet", false,
               [](Generator& g) {
                 models::UNetOptions uo;
                 uo.base = 16;
                 uo.groups = 4;
                 uo.multipliers = {1, 2, 2};
                 auto unet = std::make_shared<models::UNet>(uo, g);
                 return std::make_shared<models::DDPM>(Shape{1, 28, 28}, models::NoiseSchedule::linear(1000, 1e-4, 0.02), unet, g, 256);
               },
               budget(minutes, 64, 0.995), {}, 32, /*no_validation=*/true,
               "DDPM on CIFAR-10 (another data set): <= 3.70 bits/dim (Ho et al. 2020)"});
  return r;
}

// ---------------------------------------------------------------- load or train
namespace {

Tensor as_input(const Recipe& r, const Tensor& x) { return r.flat ? reshape(x, {x.size(0), -1}) : x; }

// The training seconds a trainer's JSON beside the checkpoint recorded (NaN if none).
double recorded_seconds(const fs::path& checkpoint) {
  fs::path json = checkpoint;
  json.replace_extension(".json");
  std::ifstream in(json);
  if (!in) return NAN;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_object() && j.contains("train_seconds") && j["train_seconds"].is_number() ? j["train_seconds"].get<double>() : NAN;
}

}  // namespace

Obtained obtain(const Recipe& r, const DataSet& d, const Settings& s, Generator& gen) {
  Obtained o;
  o.model = r.make(gen);
  std::vector<fs::path> candidates;
  if (s.load && !r.lesson_checkpoint.empty()) candidates.push_back(fs::path(s.runs) / (r.lesson_checkpoint + ".safetensors"));
  if (s.load) candidates.push_back(fs::path(s.out) / (r.tag + ".safetensors"));
  for (const auto& c : candidates) {
    if (!fs::exists(c)) continue;
    try {
      load_checkpoint(*o.model, c.string());
      o.source = "loaded " + c.string();
      o.checkpoint = c.string();
      o.train_seconds = recorded_seconds(c);
      return o;
    } catch (const std::exception& e) {
      std::cout << "   " << r.tag << ": " << c.string() << " does not fit this recipe (" << e.what() << "); looking further\n";
    }
  }
  train::FitOptions f;
  f.tag = r.tag;
  f.out_dir = s.out;
  f.prepare = d.prepare;
  f.data_transform = d.name + ": " + d.description;
  if (r.configure) r.configure(f);
  const Tensor validation = r.no_validation ? Tensor() : as_input(r, d.validation);
  const train::FitResult fr = train::fit(*o.model, as_input(r, d.train), validation, gen, f);
  o.train_seconds = fr.seconds;
  o.checkpoint = (fs::path(s.out) / (r.tag + ".safetensors")).string();
  std::ostringstream src;
  src << "trained here, " << fr.steps << " steps, " << std::fixed << std::setprecision(0) << fr.seconds << " s";
  o.source = src.str();
  return o;
}

Row evaluate(const Recipe& r, const DataSet& d, const Obtained& m) {
  if (r.prepare_evaluation) r.prepare_evaluation(*m.model);
  const int64_t n = r.test_examples > 0 ? std::min(r.test_examples, d.test.size(0)) : d.test.size(0);
  const int64_t n_train = std::min(n, d.train_eval.size(0));
  const train::Evaluation test = train::evaluate(*m.model, as_input(r, slice(d.test, 0, 0, n)), 250);
  const train::Evaluation tr = train::evaluate(*m.model, as_input(r, slice(d.train_eval, 0, 0, n_train)), 250);
  Row row;
  row.data_set = d.name, row.tag = r.tag, row.model = r.model, row.kind = test.kind, row.source = m.source;
  row.published = r.published;
  row.checkpoint = m.checkpoint;
  row.test_nll_nats = test.nll_nats, row.test_bpd = test.bits_per_dim, row.train_nll_nats = tr.nll_nats;
  row.gap_nats = test.nll_nats - tr.nll_nats;
  row.train_seconds = m.train_seconds;
  row.evaluation_seconds = test.seconds + tr.seconds;
  row.parameters = m.model->parameter_count();
  row.test_examples = n, row.dims = test.dims;
  return row;
}

std::vector<Row> evaluate_variants(const Recipe& r, const DataSet& d, const Obtained& m) {
  if (r.variants.empty()) return {evaluate(r, d, m)};
  std::vector<Row> rows;
  for (const auto& v : r.variants) {
    Recipe one = r;
    one.prepare_evaluation = v.prepare;
    Row row = evaluate(one, d, m);
    row.tag += v.tag_suffix;
    row.model += v.model_suffix;
    rows.push_back(row);
  }
  return rows;
}

std::vector<Row> run_table(const std::vector<Recipe>& recipes, const DataSet& d, const Settings& s, Generator& gen) {
  std::cout << "\n   " << d.name << ": " << d.description << "\n";
  std::vector<Row> rows;
  for (const auto& r : recipes) {
    const Obtained m = obtain(r, d, s, gen);
    // an evaluation can take minutes (the image DDPM's bound sums 1000 terms per image): say what runs
    std::cout << "   " << r.tag << ": evaluating on " << (r.test_examples > 0 ? std::min(r.test_examples, d.test.size(0)) : d.test.size(0))
              << " test and as many training examples ..." << std::endl;
    for (const Row& w : evaluate_variants(r, d, m)) {
      rows.push_back(w);
      std::cout << "   " << std::left << std::setw(28) << w.tag << std::right << std::fixed << std::setprecision(2) << std::setw(9)
                << w.test_nll_nats << " nats  " << std::setprecision(3) << w.test_bpd << " bits/dim  train " << std::setprecision(2)
                << w.train_nll_nats << "  gap " << w.gap_nats << "  (" << w.source << "; evaluated in " << std::setprecision(1)
                << w.evaluation_seconds << " s)\n";
    }
  }
  return rows;
}

// ---------------------------------------------------------------- output
std::string markdown(const std::vector<Row>& rows) {
  std::ostringstream md;
  std::string current;
  for (const auto& w : rows) {
    if (w.data_set != current) {
      current = w.data_set;
      md << "\n### " << current << "\n\n"
         << "| model | test NLL (nats) | bits/dim | train NLL | gap | parameters | train s | test images | log p is | from | published (same family) |\n"
         << "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n";
    }
    md << std::fixed << "| " << w.model << " | " << std::setprecision(2) << w.test_nll_nats << " | " << std::setprecision(3) << w.test_bpd
       << " | " << std::setprecision(2) << w.train_nll_nats << " | " << w.gap_nats << " | " << w.parameters << " | ";
    if (std::isfinite(w.train_seconds))
      md << std::setprecision(0) << w.train_seconds;
    else
      md << "?";
    md << " | " << w.test_examples << " | " << w.kind << " | " << w.source << " | " << w.published << " |\n";
  }
  return md.str();
}

void write_csv(const std::string& path, const std::vector<Row>& rows) {
  std::ofstream out(path);
  if (!out) throw Error("harness: cannot write '" + path + "'");
  out << "data_set,tag,test_nll_nats,test_bpd,train_nll_nats,gap_nats,parameters,train_seconds,test_examples\n";
  out << std::setprecision(9);
  for (const auto& w : rows)
    out << w.data_set << "," << w.tag << "," << w.test_nll_nats << "," << w.test_bpd << "," << w.train_nll_nats << "," << w.gap_nats << ","
        << w.parameters << "," << w.train_seconds << "," << w.test_examples << "\n";
}

}  // namespace dgm::lesson::harness
