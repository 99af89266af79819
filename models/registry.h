// dgm/models/registry.h — a trained model back from its checkpoint's JSON.
//
// The trainer writes, beside <tag>.safetensors, <tag>.json with "model" (the
// model's name()) and "config" (its config_json(): the constructor's
// arguments). make_model builds an untrained model of that architecture, into
// which load_checkpoint then reads the parameters:
//   auto m = models::make_model("runs/autoregressive/digits_made.json", gen);   // or make_model(name, config, gen)
//   load_checkpoint(*m, "runs/autoregressive/digits_made.safetensors");
// Every TrainableDensity of the project is here: MADE, PixelCNN, VAE, the
// flows of make_nice / make_realnvp / make_image_flow, RealNVP2D, DDPM (MLP or
// U-Net noise predictor), GaussianMixtureGradient.
#pragma once

#include <memory>
#include <string>

#include "autograd/random.h"
#include "models/density.h"

namespace dgm::models {

// `model`: a name() as the JSON records it; `config_json`: the JSON object of
// the constructor's arguments. Throws naming what is missing or unknown.
std::shared_ptr<TrainableDensity> make_model(const std::string& model, const std::string& config_json, Generator& gen);
// The multi-scale image flow's options from its config (the JSON make_image_flow's model writes).
struct ImageFlowOptions;
ImageFlowOptions image_flow_options(const std::string& config_json);
// The same from the JSON file beside a checkpoint.
std::shared_ptr<TrainableDensity> make_model_from_file(const std::string& json_path, Generator& gen);

}  // namespace dgm::models
