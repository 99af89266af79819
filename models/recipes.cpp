// dgm/models/recipes.cpp — the recipe table (recipes.h says what a recipe is).
//
// Adding a setup: one entry below. Its config is what the family's
// config_json() writes (the registry's fields); its tag is unique; its data
// set is one of data::load_data_set's names. tests/test_recipes.cpp builds
// every entry, quick and full, and checks that the built model's own config
// is the recipe's.
#include "models/recipes.h"

#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/diffusion.h"
#include "models/registry.h"

namespace dgm::models {

namespace {

using json = nlohmann::json;

Training epochs(int n, int64_t batch, double lr = 1e-3) {
  Training t;
  t.epochs = n, t.batch_size = batch, t.lr = lr;
  return t;
}

// Big data sets: a time budget, a point on the curve every 100 steps.
Training budget(double minutes, int64_t batch, double ema = 0) {
  Training t;
  t.epochs = 1000, t.batch_size = batch, t.minutes = minutes, t.ema = ema, t.validate_every_steps = 100;
  return t;
}

Training without_validation(Training t, double ema) {
  t.validation = false, t.ema = ema;
  return t;
}

std::vector<Recipe> make_table() {
  std::vector<Recipe> t;
  // ---------------------------------------------------------------- the 8x8 digits, 17 levels (lesson_autoregressive, lesson_flows, lesson_diffusion)
  t.push_back({"digits_made", "made", R"({"dims": 64, "hidden": [512, 512], "levels": 17})", "", "digits17", "autoregressive", true,
               epochs(60, 50), epochs(20, 50), 0, "the book code's autoregressive model: ~89 nats (validation, read off its curve)"});
  t.push_back({"digits_pixelcnn", "pixelcnn", R"({"levels": 17, "channels": 64, "blocks": 5, "height": 8, "width": 8, "gated": false})", "",
               "digits17", "autoregressive", false, epochs(40, 50), epochs(4, 50), 0, "the book code's autoregressive model: ~89 nats (validation)"});
  t.push_back({"digits_nice", "nice",
               R"({"builder": "nice", "dims": 64, "couplings": 4, "hidden": [256, 256], "levels": 17, "prior": "logistic"})", "",
               "digits17", "flows", true, epochs(200, 64), epochs(15, 64), 0, "NICE on MNIST: 1980.50 nats at 784 dims (Dinh et al. 2015)"});
  t.back().leaderboard = false;  // the lesson's additive baseline (a quick run's is worse than uniform), not a contender
  t.push_back({"digits_realnvp_mlp", "realnvp",
               R"({"builder": "realnvp", "dims": 64, "couplings": 8, "hidden": [128, 128], "levels": 17, "actnorm": true, "logit_alpha": 0.05})",
               "", "digits17", "flows", true, epochs(60, 64), epochs(15, 64), 0, "the book code's RealNVP: ~125 nats (validation, still falling)"});
  t.push_back({"digits_realnvp_multiscale", "realnvp multi-scale flow",
               R"({"builder": "image_flow", "channels": 1, "height": 8, "width": 8, "levels": 17, "scales": 2, "steps": 2,
                   "hidden": 32, "blocks": 1, "conv1x1": false, "logit_alpha": 0.05})",
               R"({"hidden": 16})", "digits17", "flows", false, epochs(40, 64), epochs(4, 64), 0,
               "the book code's RealNVP: ~125 nats (validation)"});
  t.push_back({"digits_ddpm", "ddpm",
               R"({"example_shape": [64], "schedule": {"kind": "linear", "T": 50, "beta_1": 0.02, "beta_T": 0.3}, "levels": 17,
                   "net": {"kind": "mlp", "dims": 64, "hidden": [512, 512, 512], "embedding": 64}, "objective": "simple"})",
               R"({"net": {"hidden": [256, 256, 256]}})", "digits17", "diffusion", true, without_validation(epochs(400, 64), 0.999),
               without_validation(epochs(40, 64), 0.999), 0, "the book code's diffusion (T = 5): ~134 nats"});
  // the same DDPM with a U-Net (two levels, 8x8 and 4x4): 95.9 nats fitted after 100 epochs, 40: 98.7, vs the eps-MLP's 115.7
  // after 400 (a probe, 2026-12-04, docs/chapters/diffusion.md section 6); beta_1 0.01 / 0.005 gave 98.0 / 98.2 at 40 epochs
  t.push_back({"digits_ddpm_unet", "ddpm",
               R"({"example_shape": [1, 8, 8], "schedule": {"kind": "linear", "T": 50, "beta_1": 0.02, "beta_T": 0.3}, "levels": 17,
                   "net": {"kind": "unet", "channels": 1, "base": 32, "multipliers": [1, 2], "blocks": 1, "groups": 8, "attention": false},
                   "objective": "simple"})",
               R"({"net": {"base": 8, "groups": 2}})", "digits17", "diffusion", false, without_validation(epochs(100, 64), 0.999),
               without_validation(epochs(10, 64), 0.999), 0, "the book code's diffusion (T = 5): ~134 nats"});
  // lesson_diffusion --quick: the U-Net on the digits, the paper's schedule stretched to T = 50, trained as fashion_unet
  t.push_back({"digits_unet", "ddpm",
               R"({"example_shape": [1, 8, 8], "schedule": {"kind": "linear", "T": 50, "beta_1": 0.002, "beta_T": 0.4}, "levels": 17,
                   "net": {"kind": "unet", "channels": 1, "base": 8, "multipliers": [1, 2, 2], "blocks": 1, "groups": 2, "attention": true},
                   "objective": "bound", "timesteps": "importance"})",
               "", "digits17", "", false, without_validation(epochs(5, 64), 0.995), without_validation(epochs(5, 64), 0.995), 16, ""});
  // lesson_vae --quick: the digits' grey levels as Bernoulli probabilities; KL warm-up over the first 30 of 60 epochs, as fashion_vae
  // (test IWAE-100 23.48 nats, 23.57 without), so that the quick run and its interrupt-and-resume test go through it
  {
    Training vae_digits = epochs(60, 50);
    vae_digits.kl_warmup_epochs = 30;
    t.push_back({"digits_vae", "vae", R"({"data_dim": 64, "hidden": [128], "latent_dim": 16, "decoder": "bernoulli"})", "",
                 "digits_binarized", "vae", true, vae_digits, vae_digits, 0, "the book code's VAE: ~100.5 nats (validation, 17 levels)"});
  }

  // ---------------------------------------------------------------- sequence models (lesson_sequence)
  {
    // the validation NLL levels off near epoch 60 and the training NLL goes on falling (1,000 images): keep-best
    Training full = epochs(100, 64), quick = epochs(3, 64);
    t.push_back({"digits_transformer", "transformer",
                 R"({"vocab": 17, "length": 64, "input": "levels", "width": 64, "layers": 2, "heads": 4, "dropout": 0.1,
                     "positions": "learned", "tie_weights": false})",
                 R"({"width": 32, "layers": 1})", "digits17", "sequence", true, full, quick, 0,
                 "the book code's autoregressive model: ~89 nats (validation)"});
    Training rnn_full = epochs(80, 64), rnn_quick = epochs(2, 64);
    rnn_full.clip_grad_norm = rnn_quick.clip_grad_norm = 1.0;
    t.push_back({"digits_pixelrnn", "pixelrnn", R"({"kind": "diagonal", "levels": 17, "height": 8, "width": 8, "channels": 32, "hidden": 32, "layers": 2})",
                 R"({"channels": 8, "hidden": 8, "layers": 1})", "digits17", "sequence", false, rnn_full, rnn_quick, 0,
                 "binarized MNIST (another data set): Diagonal BiLSTM 80.75 nats (van den Oord et al. 2016)"});
    // words: 57,489 training words, a pass is ~900 steps
    Training words_full = epochs(10, 64, 2e-3), words_quick = epochs(1, 64, 2e-3);
    words_full.clip_grad_norm = words_quick.clip_grad_norm = 1.0;
    words_quick.max_steps = 300;  // a third of a pass: --quick is what the sanitizer suite runs
    t.push_back({"words_lstm", "rnn", R"({"vocab": 27, "length": 24, "input": "words", "cell": "lstm", "embedding": 32, "hidden": 128, "layers": 1, "dropout": 0.0})",
                 R"({"hidden": 32})", "words", "sequence", true, words_full, words_quick, 0, "none for this word list"});
    Training tr_full = epochs(8, 64, 1e-3), tr_quick = epochs(1, 64, 2e-3);
    tr_quick.max_steps = 300;
    t.push_back({"words_transformer", "transformer",
                 R"({"vocab": 27, "length": 24, "input": "words", "width": 64, "layers": 2, "heads": 4, "dropout": 0.0,
                     "positions": "learned", "tie_weights": false})",
                 R"({"width": 32, "layers": 1})", "words", "sequence", true, tr_full, tr_quick, 0, "none for this word list"});
  }

  // ---------------------------------------------------------------- binarized Fashion-MNIST (lesson_autoregressive, lesson_vae)
  t.push_back({"fashion_made", "made", R"({"dims": 784, "hidden": [1000, 1000], "levels": 2})", "", "fashion_binarized", "autoregressive", true,
               epochs(30, 100), epochs(30, 100), 0, "binarized MNIST (another data set): MADE 86.64 nats (Germain et al. 2015)"});
  t.push_back({"fashion_pixelcnn", "pixelcnn", R"({"levels": 2, "channels": 32, "blocks": 5, "height": 28, "width": 28, "gated": false})",
               "", "fashion_binarized", "autoregressive", false, epochs(3, 64), epochs(3, 64), 0,
               "binarized MNIST (another data set): PixelCNN 81.30 nats (van den Oord et al. 2016)"});
  {  // lesson_sequence's full run: a Row LSTM within a time budget (0.074 s a step of 64: about 2.6 passes in 3 minutes)
    Training full = budget(3, 64), quick = budget(3, 64);
    full.clip_grad_norm = quick.clip_grad_norm = 1.0;
    t.push_back({"fashion_pixelrnn", "pixelrnn", R"({"kind": "row", "levels": 2, "height": 28, "width": 28, "channels": 16, "hidden": 16, "layers": 2})",
                 "", "fashion_binarized", "sequence", false, full, quick, 0,
                 "binarized MNIST (another data set): Row LSTM 80.54 nats (van den Oord et al. 2016)"});
  }
  {  // the learning rate decays to 0 along a cosine over the 130 epochs (no EMA here: the last iterate is the model), and the
     // KL term's weight rises from 0 to 1 over the first 30 (KL warm-up): test IWAE-1000 229.34 nats, against 231.82 after
     // 100 epochs without warm-up and 229.68 with 20 of 100 (docs/chapters/vae.md, section 5)
    Training full = epochs(130, 128);
    full.lr_schedule = "cosine";
    full.kl_warmup_epochs = 30;
    t.push_back({"fashion_vae", "vae", R"({"data_dim": 784, "hidden": [512, 256], "latent_dim": 16, "decoder": "bernoulli"})", "",
                 "fashion_binarized", "vae", true, full, full, 1000,
                 "binarized MNIST (another data set): VAE 86.76, IWAE 84.78 nats (Burda et al. 2016)"});
  }

  // ---------------------------------------------------------------- Fashion-MNIST, 256 levels (lesson_flows, lesson_diffusion)
  // 13 minutes: the run is the same step by step whatever its budget (constant rate, keep-best), and the best validation so far
  // falls to 3.325 at step 4,400 (docs/chapters/flows.md, "More minutes"); 12 minutes made 4,295 steps and read 3.352 on the
  // test set, 13 make about 4,700 at 6 steps a second (issue 32's bar is 3.35); the rest of the lesson takes about a minute
  t.push_back({"fashion_flow", "realnvp multi-scale flow",
               R"({"builder": "image_flow", "channels": 1, "height": 28, "width": 28, "levels": 256, "scales": 2, "steps": 3,
                   "hidden": 32, "blocks": 1, "conv1x1": false, "logit_alpha": 0.05})",
               "", "fashion_dequantized", "flows", false, budget(13, 64), budget(13, 64), 0,
               "Glow on Fashion-MNIST: 2.958 bits/dim (Nalisnick et al. 2019)"});
  // trained on the bound with t drawn by importance (p_t ~ w_t): after 2,000 steps 3.484 +- 0.037 bits/dim fitted on the
  // first 500 test images, against L_simple's 3.714 (half the batch by importance: 3.515; a probe, 2026-12-04, diffusion.md)
  t.push_back({"fashion_unet", "ddpm",
               R"({"example_shape": [1, 28, 28], "schedule": {"kind": "linear", "T": 1000, "beta_1": 0.0001, "beta_T": 0.02}, "levels": 256,
                   "net": {"kind": "unet", "channels": 1, "base": 16, "multipliers": [1, 2, 2], "blocks": 1, "groups": 4, "attention": true},
                   "objective": "bound", "timesteps": "importance"})",
               "", "fashion_dequantized", "diffusion", false, without_validation(budget(4, 64), 0.995),
               without_validation(budget(4, 64), 0.995), 1000, "DDPM on CIFAR-10 (another data set): <= 3.70 bits/dim (Ho et al. 2020)"});

  // ---------------------------------------------------------------- a GAN (lesson_gan; no likelihood, so no leaderboard row)
  {
    Training full;
    // 8 minutes: fid_domain 42.9 after 4, 24.4 after 8 (lesson_gan --minutes 60 --fid-curve, docs/chapters/gan.md)
    full.epochs = 1, full.batch_size = 64, full.lr = 2e-4, full.beta1 = 0.5, full.minutes = 8, full.max_steps = 1000000;
    full.gan_loss = "hinge";  // fid_domain 41.1 and 38.8 at 10,000 steps (two seeds) vs 47.5 non-saturating: docs/chapters/gan.md
    Training quick = full;
    quick.minutes = 0, quick.max_steps = 150;
    t.push_back({"fashion_dcgan", "dcgan", R"({"latent": 64, "channels": 1, "width": 32})", R"({"width": 16})", "fashion_dequantized",
                 "gan", false, full, quick, 0, "", false});
  }

  // ---------------------------------------------------------------- class-conditional models (lesson_conditional)
  // Fashion-MNIST and the digits binarized once (pixel > 0.5), as the intro's classifiers see them;
  // --quick trains the digits' versions. Each model's log_prob is the mixture p(x) = (1/K) sum_y p(x | y).
  {
    Training full = budget(4, 64), quick = epochs(8, 50);
    full.validate_every_steps = 300;
    t.push_back({"fashion_cpixelcnn", "pixelcnn",
                 R"({"levels": 2, "channels": 32, "blocks": 5, "height": 28, "width": 28, "gated": false, "classes": 10, "class_maps": 8})", "",
                 "fashion_thresholded", "conditional", false, full, full, 0, "none for Fashion-MNIST binarized at 0.5"});
    t.push_back({"digits_cpixelcnn", "pixelcnn",
                 R"({"levels": 2, "channels": 32, "blocks": 3, "height": 8, "width": 8, "gated": false, "classes": 10, "class_maps": 4})", "",
                 "digits_thresholded", "conditional", false, quick, quick, 0, ""});
    t.back().leaderboard = false;  // --quick's stand-in
    Training cvae = epochs(30, 256, 2e-3), cvae_quick = epochs(60, 50);  // 256 at 2e-3: samples as good as at 128 and 1e-3 in 3/4 of the time, for 0.7 nats of -ELBO (docs/chapters/conditional.md)
    cvae.lr_schedule = cvae_quick.lr_schedule = "cosine";
    t.push_back({"fashion_cvae", "vae", R"({"data_dim": 784, "hidden": [512, 256], "latent_dim": 16, "decoder": "bernoulli", "classes": 10, "prior": "class"})", "",
                 "fashion_thresholded", "conditional", true, cvae, cvae, 1000, "none for Fashion-MNIST binarized at 0.5"});
    t.push_back({"digits_cvae", "vae", R"({"data_dim": 64, "hidden": [128], "latent_dim": 8, "decoder": "bernoulli", "classes": 10, "prior": "class"})", "",
                 "digits_thresholded", "conditional", true, cvae_quick, cvae_quick, 0, ""});
    t.back().leaderboard = false;
    // classifier-free guidance on the digits (17 levels): the digits_ddpm eps-MLP with a class vector per label and one for none
    t.push_back({"digits_cddpm", "ddpm",
                 R"({"example_shape": [64], "schedule": {"kind": "linear", "T": 50, "beta_1": 0.02, "beta_T": 0.3}, "levels": 17,
                     "net": {"kind": "mlp", "dims": 64, "hidden": [512, 512, 512], "embedding": 64, "classes": 10}, "objective": "simple",
                     "p_uncond": 0.1})",
                 R"({"net": {"hidden": [256, 256, 256]}})", "digits17", "conditional", true, without_validation(epochs(300, 64), 0.999),
                 without_validation(epochs(40, 64), 0.999), 0, ""});
    t.back().leaderboard = false;  // its p(x) is the none-label model's bound: digits_ddpm's row is the family's
    // a class token in digits_transformer (models/sequence.h): its log p(x | y) on the digits' leaderboard
    t.push_back({"digits_ctransformer", "transformer",
                 R"({"vocab": 17, "length": 64, "input": "levels", "width": 64, "layers": 2, "heads": 4, "dropout": 0.1,
                     "positions": "learned", "tie_weights": false, "classes": 10})",
                 R"({"width": 32, "layers": 1})", "digits17", "conditional", true, epochs(30, 64), epochs(3, 64), 0,
                 "none for the digits given their label (-log p(x), digits_transformer: 84.46)"});
    // a conditional GAN on Fashion-MNIST's grey levels: fashion_dcgan's networks, a class vector in G, a projection in D
    Training cgan;
    cgan.epochs = 1, cgan.batch_size = 64, cgan.lr = 2e-4, cgan.beta1 = 0.5, cgan.minutes = 2, cgan.max_steps = 1000000;
    Training cgan_quick = cgan;
    cgan_quick.minutes = 0, cgan_quick.max_steps = 150;
    t.push_back({"fashion_cdcgan", "dcgan", R"({"latent": 64, "channels": 1, "width": 32, "classes": 10})", R"({"width": 16})",
                 "fashion_dequantized", "conditional", false, cgan, cgan_quick, 0, "", false});
  }

  // ---------------------------------------------------------------- bench_train's twins of ../shared/bench/torch_ref.cpp
  // (random inputs of the reference's shapes; no lesson trains them)
  t.push_back({"bench_vae", "vae", R"({"data_dim": 784, "hidden": [400], "latent_dim": 20, "decoder": "bernoulli"})", "", "none", "", true,
               epochs(1, 128), epochs(1, 128), 0, ""});
  t.push_back({"bench_made", "made", R"({"dims": 784, "hidden": [500, 500], "levels": 2})", "", "none", "", true, epochs(1, 128),
               epochs(1, 128), 0, ""});
  t.push_back({"bench_pixelcnn", "pixelcnn", R"({"levels": 2, "channels": 64, "blocks": 5, "height": 28, "width": 28, "gated": false})",
               "", "none", "", false, epochs(1, 32), epochs(1, 32), 0, ""});
  // lesson_sequence's families at the sizes of issue 29's benchmark (bench/torch_sequence_ref.cpp is the twin)
  t.push_back({"bench_transformer", "transformer",
               R"({"vocab": 17, "length": 64, "input": "levels", "width": 128, "layers": 4, "heads": 4, "dropout": 0.0,
                   "positions": "learned", "tie_weights": false})",
               "", "none", "", true, epochs(1, 64), epochs(1, 64), 0, ""});
  t.push_back({"bench_lstm", "rnn", R"({"vocab": 17, "length": 64, "input": "levels", "cell": "lstm", "embedding": 64, "hidden": 256, "layers": 1, "dropout": 0.0})",
               "", "none", "", true, epochs(1, 64), epochs(1, 64), 0, ""});
  t.push_back({"bench_realnvp2d", "realnvp2d", R"({"layers": 8, "hidden": 64})", "", "none", "", true, epochs(1, 512), epochs(1, 512), 0,
               ""});
  // the reference's DDPM in 2-D: eps-MLP on (x_t, t / T), 3-128-128-128-2, the paper's schedule (models::build_ddpm2d makes it)
  t.push_back({"bench_ddpm2d", "ddpm2d", R"({"schedule": {"kind": "linear", "T": 1000, "beta_1": 1e-4, "beta_T": 0.02}, "hidden": [128, 128, 128]})",
               "", "none", "", true, epochs(1, 512), epochs(1, 512), 0, ""});
  return t;
}

std::string join(const json& list, const char* sep) {
  std::string s;
  for (const auto& v : list) s += (s.empty() ? "" : sep) + v.dump();
  return s;
}

// Both json values, flattened to "a.b.c" -> value, for naming differences.
void flatten(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else {
    out[prefix] = j.dump();
  }
}

}  // namespace

const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> table = make_table();
  return table;
}

const Recipe& recipe(const std::string& tag) {
  for (const Recipe& r : recipes())
    if (r.tag == tag) return r;
  std::string known;
  for (const Recipe& r : recipes()) known += (known.empty() ? "" : ", ") + r.tag;
  throw Error("recipe: no recipe '" + tag + "' (known: " + known + ")");
}

std::vector<Recipe> recipes_on(const std::string& data) {
  std::vector<Recipe> out;
  for (const Recipe& r : recipes())
    if (r.data == data && !r.lesson.empty() && r.leaderboard) out.push_back(r);
  return out;
}

std::string Recipe::config_for(bool quick_run) const {
  json c = json::parse(config);
  if (quick_run && !quick_config.empty()) c.merge_patch(json::parse(quick_config));
  return c.dump();
}

Recipe& Recipe::set(const std::string& field, const std::string& json_value) {
  std::string pointer = "/" + field;  // "net.base" -> /net/base
  for (char& ch : pointer)
    if (ch == '.') ch = '/';
  const json::json_pointer at(pointer);
  json c = json::parse(config);
  if (!c.contains(at)) throw Error("recipe " + tag + ": its config has no field '" + field + "' (" + config + ")");
  const json v = json::parse(json_value, nullptr, false);
  if (v.is_discarded()) throw Error("recipe " + tag + ": '" + json_value + "' is not a JSON value (for " + field + ")");
  c[at] = v;
  config = c.dump();
  if (!quick_config.empty()) {  // the flag wins in a quick run too
    json q = json::parse(quick_config);
    if (q.contains(at)) q[at] = v;
    quick_config = q.dump();
  }
  return *this;
}

train::FitOptions Recipe::fit_options(bool quick_run) const {
  const Training& t = training(quick_run);
  train::FitOptions o;
  o.epochs = t.epochs, o.batch_size = t.batch_size, o.lr = t.lr, o.lr_schedule = t.lr_schedule, o.max_seconds = t.minutes * 60, o.ema = t.ema;
  o.validate_every = t.validate_every, o.validate_every_steps = t.validate_every_steps;
  o.max_steps = t.max_steps, o.beta1 = t.beta1, o.beta2 = t.beta2, o.clip_grad_norm = t.clip_grad_norm;
  o.tag = tag, o.recipe = tag;
  return o;
}

std::string Recipe::lesson_checkpoint(const std::string& runs_folder) const {
  return lesson.empty() ? "" : runs_folder + "/" + lesson + "/" + tag + ".safetensors";
}

std::string Recipe::title(bool quick_run) const { return describe(model, config_for(quick_run)); }

std::shared_ptr<TrainableDensity> build(const Recipe& r, bool quick_run, Generator& gen) {
  if (r.model == "dcgan") throw Error("recipe " + r.tag + ": a GAN has no likelihood; models::build_gan makes it");
  if (r.model == "ddpm2d") throw Error("recipe " + r.tag + ": bench_train's 2-D DDPM has no likelihood; models::build_ddpm2d makes it");
  try {
    return make_model(r.model, r.config_for(quick_run), gen);
  } catch (const Error& e) {
    throw Error("recipe " + r.tag + ": " + e.what());
  }
}

gan::GAN build_gan(const Recipe& r, bool quick_run, Generator& gen) {
  if (r.model != "dcgan") throw Error("recipe " + r.tag + ": a '" + r.model + "', not a GAN (models::build makes it)");
  const json c = json::parse(r.config_for(quick_run));
  const int64_t latent = c.at("latent"), channels = c.at("channels"), width = c.at("width"), classes = c.value("classes", 0);
  auto g = std::make_shared<gan::ConvGenerator>(latent, channels, width, gen, classes);
  auto d = std::make_shared<gan::ConvDiscriminator>(channels, width, gen, classes);
  return gan::GAN(g, latent, d);
}

std::shared_ptr<DDPM2D> build_ddpm2d(const Recipe& r, Generator& gen) {
  if (r.model != "ddpm2d") throw Error("recipe " + r.tag + ": a '" + r.model + "', not bench_train's 2-D DDPM");
  try {
    const json c = json::parse(r.config_for(false));
    return std::make_shared<DDPM2D>(NoiseSchedule::from_config(c.at("schedule").dump()), c.at("hidden").get<std::vector<int64_t>>(), gen);
  } catch (const std::exception& e) {
    throw Error("recipe " + r.tag + ": " + e.what());
  }
}

gan::Options gan_options(const Recipe& r, bool quick_run) {
  const Training& t = r.training(quick_run);
  gan::Options o;
  o.steps = t.max_steps, o.max_seconds = t.minutes * 60, o.batch_size = t.batch_size;
  o.lr = t.lr, o.beta1 = t.beta1, o.beta2 = t.beta2;
  if (!t.gan_loss.empty()) {
    try {
      o.loss = gan::loss_from_name(t.gan_loss);
    } catch (const Error& e) {
      throw Error("recipe " + r.tag + ": " + e.what());
    }
  }
  o.tag = r.tag;
  return o;
}

std::string describe(const std::string& model, const std::string& config_json) {
  const json c = json::parse(config_json);
  std::ostringstream os;
  if (model == "made") {
    os << "MADE " << join(c.at("hidden"), "-");
  } else if (model == "pixelcnn") {
    os << (c.value("classes", 0) > 0 ? "class-conditional " : "") << (c.value("gated", false) ? "gated PixelCNN " : "PixelCNN ")
       << c.at("channels").get<int64_t>() << " ch x " << c.at("blocks").get<int64_t>();
  } else if (model == "vae") {
    os << (c.value("classes", 0) > 0 ? "conditional VAE " : "VAE ") << join(c.at("hidden"), "-") << ", latent "
       << c.at("latent_dim").get<int64_t>();
  } else if (model == "realnvp2d") {
    os << "RealNVP 2-D, " << c.at("layers").get<int64_t>() << " couplings, MLP " << c.at("hidden").get<int64_t>() << "-"
       << c.at("hidden").get<int64_t>();
  } else if (model == "ddpm") {
    const json& n = c.at("net");
    os << (n.value("classes", 0) > 0 ? "class-conditional DDPM, T = " : "DDPM, T = ") << c.at("schedule").at("T").get<int64_t>() << ", ";
    if (n.at("kind") == "mlp") {
      os << "eps-MLP " << n.at("hidden")[0].get<int64_t>() << " x " << n.at("hidden").size();
    } else {
      os << "U-Net ";
      std::string widths;
      for (const auto& m : n.at("multipliers")) widths += (widths.empty() ? "" : "-") + std::to_string(n.at("base").get<int64_t>() * m.get<int64_t>());
      os << widths;
    }
  } else if (model == "transformer") {
    os << (c.value("classes", 0) > 0 ? "class-conditional Transformer " : "Transformer ") << c.at("layers").get<int64_t>() << " x " << c.at("width").get<int64_t>() << ", " << c.at("heads").get<int64_t>()
       << " heads";
  } else if (model == "rnn") {
    os << (c.at("cell") == "lstm" ? "LSTM " : "GRU ") << c.at("hidden").get<int64_t>() << " x " << c.at("layers").get<int64_t>();
  } else if (model == "pixelrnn") {
    os << "PixelRNN (" << (c.at("kind") == "row" ? "Row LSTM" : "Diagonal BiLSTM") << " " << c.at("hidden").get<int64_t>() << " x "
       << c.at("layers").get<int64_t>() << ")";
  } else if (model == "ddpm2d") {
    os << "DDPM 2-D, T = " << c.at("schedule").at("T").get<int64_t>() << ", eps-MLP " << join(c.at("hidden"), "-");
  } else if (model == "dcgan") {
    os << (c.value("classes", 0) > 0 ? "class-conditional DCGAN (projection discriminator), width " : "DCGAN, width ")
       << c.at("width").get<int64_t>() << ", z " << c.at("latent").get<int64_t>();
  } else if (c.contains("builder")) {
    const std::string b = c.at("builder");
    if (b == "nice")
      os << "NICE, " << c.at("couplings").get<int64_t>() << " additive couplings, MLP " << join(c.at("hidden"), "-");
    else if (b == "realnvp")
      os << "RealNVP, " << c.at("couplings").get<int64_t>() << " affine couplings, MLP " << join(c.at("hidden"), "-");
    else
      os << (c.at("conv1x1").get<bool>() ? "Glow-style" : "RealNVP") << " multi-scale (" << c.at("scales").get<int64_t>() << " scales, "
         << c.at("steps").get<int64_t>() << " couplings, ResNet " << c.at("hidden").get<int64_t>() << " ch x " << c.at("blocks").get<int64_t>()
         << ")";
  } else {
    os << model;
  }
  return os.str();
}

std::string config_differences(const std::string& a, const std::string& b) {
  std::map<std::string, std::string> fa, fb;
  flatten(json::parse(a), "", fa);
  flatten(json::parse(b), "", fb);
  std::string out;
  auto add = [&](const std::string& k, const std::string& x, const std::string& y) {
    out += (out.empty() ? "" : "; ") + k + ": " + x + " vs " + y;
  };
  for (const auto& [k, v] : fa) {
    const auto it = fb.find(k);
    if (it == fb.end())
      add(k, v, "(absent)");
    else if (it->second != v)
      add(k, v, it->second);
  }
  return out;  // fields only b has (a model's own additions, such as MADE's drawn ordering) are not differences
}

}  // namespace dgm::models
