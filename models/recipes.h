// dgm/models/recipes.h — every named setup of the project, once.
//
// A model *family* is code (made.h, flows.h, diffusion.h ...). A *setup* is
// data: which family, its constructor's arguments, the data set it trains on,
// how long and how fast it trains in a quick and in a full run, and the
// published figure it stands beside. The table in recipes.cpp holds every
// setup a lesson trains, the harness evaluates, bench_train times and the
// PyTorch bridge rebuilds:
//
//   const models::Recipe& r = models::recipe("digits_made");
//   auto made = models::build(r, quick, gen);             // through models::make_model
//   train::fit(*made, ..., r.training(quick) ...);
//
// The config is the JSON the trainer writes beside the checkpoint ("model",
// "config"), so a checkpoint is rebuilt from its JSON alone. A lesson flag
// that changes a model changes the recipe it trains (Recipe::set), and the
// JSON records it: lesson_flows --hidden 48 writes hidden 48, and the harness
// rebuilds exactly that. Derivation toys inside a lesson (a 1-D flow, 3x3
// images) are not setups and stay in their lesson.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "models/density.h"
#include "models/gan.h"
#include "models/toolkit/trainer.h"

namespace dgm::models {

class DDPM2D;  // models/diffusion.h

// How one kind of run trains: the loop's settings (train::LoopOptions), which the
// lesson's flags (--epochs, --lr, a time budget) may override.
struct Training {
  int epochs = 10;                  // passes over the training set (with a budget: at most this many)
  int64_t batch_size = 64;
  double lr = 1e-3;                 // Adam
  std::string lr_schedule = "constant";  // or "cosine": from lr down to 0 over the run (train::LoopOptions)
  double minutes = 0;               // a time budget; 0: none
  double ema = 0;                   // the parameters' moving average (diffusion); 0: the last iterate
  int validate_every = 1;           // epochs between validations
  int64_t validate_every_steps = 0; // > 0: a validation (a point on the curve) every this many steps
  bool validation = true;           // false: no validation split (diffusion: EMA, the last iterate)
  int64_t max_steps = 0;            // a step budget (a GAN's generator steps); 0: none
  double beta1 = 0.9, beta2 = 0.999;  // Adam's moment decays
  double clip_grad_norm = 0;          // > 0: the gradients' global norm clipped to this (recurrent models)
  std::string gan_loss;               // a GAN's loss, as gan::loss_name writes it ("": non-saturating)
  double kl_warmup_epochs = 0;        // a VAE's KL weight rises from 0 to 1 over these epochs (models::kl_warmup); 0: none
};

struct Recipe {
  std::string tag;          // "digits_made": the checkpoint's stem and the harness's row
  std::string model;        // the family, as models::make_model knows it ("made", "pixelcnn", "ddpm", ...)
  std::string config;       // its constructor's arguments, JSON: the full run's
  std::string quick_config; // what differs in a --quick run, a JSON merge patch ("": nothing)
  std::string data;         // a data::DataSet name: "digits17", "fashion_binarized", "fashion_dequantized", ...; "none"
  std::string lesson;       // the lesson that trains it: its checkpoint is runs/<lesson>/<tag>.safetensors ("": none)
  bool flat = true;         // the model reads [N, D] rather than images [N, C, H, W]
  Training full, quick;
  int64_t test_examples = 0;  // the harness evaluates the first this many test examples; 0: all
  std::string published;      // the published figure for the family, with its source
  bool leaderboard = true;    // a row of the harness's table on its data set (if a lesson trains it)

  // The config of a quick or a full run (quick: config with quick_config merged in).
  std::string config_for(bool quick_run) const;
  const Training& training(bool quick_run) const { return quick_run ? quick : full; }
  // What the tables print, made from the config: "MADE 512-512", "DDPM, T = 50, eps-MLP 256 x 3".
  std::string title(bool quick_run) const;
  // A lesson flag that changes the model: `field` becomes `json_value` in both runs'
  // configs ("48", "true", "[64, 64]"). An unknown field is an error naming the recipe.
  Recipe& set(const std::string& field, const std::string& json_value);
  // The trainer's options for a quick or a full run: the loop's settings from training(quick),
  // the tag and the recipe's name for the recorder (the caller adds out_dir and the data transform).
  train::FitOptions fit_options(bool quick_run) const;
  // runs/<lesson>/<tag>.safetensors ("" without a lesson)
  std::string lesson_checkpoint(const std::string& runs_folder) const;
};

// The table, in the order the harness prints it.
const std::vector<Recipe>& recipes();
// One recipe by tag; an unknown tag is an error listing the known ones.
const Recipe& recipe(const std::string& tag);
// Every recipe on one data set that a lesson trains and the leaderboard lists (the harness's table for it).
std::vector<Recipe> recipes_on(const std::string& data);

// The recipe's model, untrained, for a quick or a full run (models::make_model on its config).
std::shared_ptr<TrainableDensity> build(const Recipe& r, bool quick_run, Generator& gen);
// A GAN's recipe (model "dcgan": {"latent", "channels", "width"}): the generator, then the discriminator.
gan::GAN build_gan(const Recipe& r, bool quick_run, Generator& gen);
// bench_train's 2-D DDPM (model "ddpm2d": {"schedule", "hidden"}), the twin of the reference's workload e.
std::shared_ptr<DDPM2D> build_ddpm2d(const Recipe& r, Generator& gen);
// A GAN recipe's training as gan::train's options (steps, time budget, batch, Adam, the loss), tag and recorder included.
gan::Options gan_options(const Recipe& r, bool quick_run);

// A one-line description of a family's config (what Recipe::title prints).
std::string describe(const std::string& model, const std::string& config_json);

// The fields of config `a` that `b` gives another value or lacks, "hidden: [32] vs [48]; gated: false vs true"
// ("" when there are none; fields only `b` has, such as MADE's drawn ordering, are not differences).
std::string config_differences(const std::string& a, const std::string& b);

}  // namespace dgm::models
