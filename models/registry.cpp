// dgm/models/registry.cpp
#include "models/registry.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/diffusion.h"
#include "models/flows.h"
#include "models/made.h"
#include "models/mixtures.h"
#include "models/pixelcnn.h"
#include "models/pixelrnn.h"
#include "models/rnn.h"
#include "models/transformer.h"
#include "models/unet.h"
#include "models/vae.h"

namespace dgm::models {

namespace {

using json = nlohmann::json;

std::shared_ptr<NoisePredictor> predictor_from(const json& n, Generator& gen) {
  const std::string kind = n.at("kind");
  if (kind == "mlp")
    return std::make_shared<MLPNoisePredictor>(n.at("dims"), n.at("hidden").get<std::vector<int64_t>>(), gen, n.at("embedding"),
                                               n.value("classes", int64_t{0}));
  if (kind == "unet") {
    UNetOptions o;
    o.channels = n.at("channels"), o.base = n.at("base"), o.blocks = n.at("blocks"), o.groups = n.at("groups");
    o.multipliers = n.at("multipliers").get<std::vector<int64_t>>();
    o.attention = n.at("attention");
    o.classes = n.value("classes", int64_t{0});
    return std::make_shared<UNet>(o, gen);
  }
  throw Error("make_model: unknown noise predictor kind '" + kind + "'");
}

std::shared_ptr<TrainableDensity> build(const std::string& model, const json& c, Generator& gen) {
  if (model == "made") {
    auto m = std::make_shared<MADE>(c.at("dims"), c.at("hidden").get<std::vector<int64_t>>(), c.at("levels"), gen);
    if (c.contains("order")) m->set_order(c.at("order").get<std::vector<int64_t>>(), gen);  // sampling follows it
    return m;
  }
  if (model == "pixelcnn")
    return std::make_shared<PixelCNN>(c.at("levels"), c.at("channels"), c.at("blocks"), c.at("height"), c.at("width"), gen,
                                      c.at("gated"), c.value("classes", int64_t{0}),  // "classes": class-conditional
                                      c.value("class_maps", int64_t{0}));
  if (model == "vae") {
    const std::string dec = c.at("decoder"), prior = c.value("prior", std::string("standard"));
    if (dec != "bernoulli" && dec != "gaussian") throw Error("vae: \"decoder\" must be \"bernoulli\" or \"gaussian\", got \"" + dec + "\"");
    if (prior != "standard" && prior != "class") throw Error("vae: \"prior\" must be \"standard\" or \"class\", got \"" + prior + "\"");
    return std::make_shared<VAE>(c.at("data_dim"), c.at("hidden").get<std::vector<int64_t>>(), c.at("latent_dim"),
                                 dec == "gaussian" ? Decoder::Gaussian : Decoder::Bernoulli, gen, c.value("classes", int64_t{0}),
                                 prior == "class");
  }
  if (model == "realnvp2d") return std::make_shared<RealNVP2D>(c.at("layers"), c.at("hidden"), gen);
  if (model == "gmm_gradient") {
    const int64_t K = c.at("K"), D = c.at("D");
    GaussianMixture init;  // any valid mixture of this size: the checkpoint overwrites it
    init.weights = Tensor::full({K}, 1.0 / static_cast<double>(K), DType::Float64);
    init.means = Tensor::zeros({K, D}, DType::Float64);
    init.covs = Tensor::zeros({K, D, D}, DType::Float64);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t d = 0; d < D; ++d) init.covs.data<double>()[(k * D + d) * D + d] = 1;
    return std::make_shared<GaussianMixtureGradient>(init);
  }
  if (model == "ddpm") {
    auto m = std::make_shared<DDPM>(Shape(c.at("example_shape").get<std::vector<int64_t>>()), NoiseSchedule::from_config(c.at("schedule").dump()),
                                    predictor_from(c.at("net"), gen), gen, c.at("levels"));
    const std::string objective = c.at("objective");
    if (objective != "simple" && objective != "bound")
      throw Error("ddpm: \"objective\" must be \"simple\" or \"bound\", got \"" + objective + "\"");
    m->objective = objective == "bound" ? DDPM::Objective::Bound : DDPM::Objective::Simple;
    const std::string steps = c.value("timesteps", "uniform");  // checkpoints from before the option: uniform
    if (steps != "uniform" && steps != "importance")
      throw Error("ddpm: \"timesteps\" must be \"uniform\" or \"importance\", got \"" + steps + "\"");
    m->timesteps = steps == "importance" ? DDPM::Timesteps::Importance : DDPM::Timesteps::Uniform;
    if (c.contains("p_uncond")) m->p_uncond = c.at("p_uncond");
    return m;
  }
  if (model == "rnn") {
    RNNOptions o;
    o.vocab = c.at("vocab"), o.length = c.at("length"), o.input = token_input(c.at("input"));
    o.cell = c.at("cell"), o.embedding = c.at("embedding"), o.hidden = c.at("hidden"), o.layers = c.at("layers");
    o.dropout = c.at("dropout");
    o.bptt = c.value("bptt", 0);  // checkpoints from before the option: the whole sequence
    return std::make_shared<RNNLM>(o, gen);
  }
  if (model == "transformer") {
    TransformerOptions o;
    o.vocab = c.at("vocab"), o.length = c.at("length"), o.input = token_input(c.at("input"));
    o.width = c.at("width"), o.layers = c.at("layers"), o.heads = c.at("heads"), o.dropout = c.at("dropout");
    o.positions = c.at("positions"), o.tie_weights = c.at("tie_weights");
    o.classes = c.value("classes", 0);
    return std::make_shared<Transformer>(o, gen);
  }
  if (model == "pixelrnn") {
    PixelRNNOptions o;
    o.kind = c.at("kind"), o.levels = c.at("levels"), o.height = c.at("height"), o.width = c.at("width");
    o.channels = c.at("channels"), o.hidden = c.at("hidden"), o.layers = c.at("layers");
    return std::make_shared<PixelRNN>(o, gen);
  }
  if (c.contains("builder")) {  // the flows: by the builder that made them
    const std::string b = c.at("builder");
    if (b == "nice")
      return make_nice(c.at("dims"), c.at("couplings"), c.at("hidden").get<std::vector<int64_t>>(), gen, c.at("levels"),
                       c.at("prior") == "logistic" ? Prior::Logistic : Prior::Gaussian);
    if (b == "realnvp")
      return make_realnvp(c.at("dims"), c.at("couplings"), c.at("hidden").get<std::vector<int64_t>>(), gen, c.at("levels"),
                          c.at("actnorm"), c.at("logit_alpha"));
    if (b == "image_flow") return make_image_flow(image_flow_options(c.dump()), gen);
    throw Error("make_model: unknown flow builder '" + b + "'");
  }
  throw Error("make_model: unknown model '" + model + "' (a config without a constructor to match)");
}

}  // namespace

ImageFlowOptions image_flow_options(const std::string& config_json) {
  const json c = json::parse(config_json);
  ImageFlowOptions o;
  o.channels = c.at("channels"), o.height = c.at("height"), o.width = c.at("width"), o.levels = c.at("levels");
  o.scales = c.at("scales"), o.steps = c.at("steps"), o.hidden = c.at("hidden"), o.blocks = c.at("blocks");
  o.conv1x1 = c.at("conv1x1"), o.logit_alpha = c.at("logit_alpha");
  return o;
}

std::shared_ptr<TrainableDensity> make_model(const std::string& model, const std::string& config_json, Generator& gen) {
  json c;
  try {
    c = json::parse(config_json);
    return build(model, c, gen);
  } catch (const json::exception& e) {
    throw Error("make_model: the config of '" + model + "' is incomplete or malformed (" + e.what() + "): " + config_json);
  }
}

std::shared_ptr<TrainableDensity> make_model_from_file(const std::string& json_path, Generator& gen) {
  std::ifstream in(json_path);
  if (!in) throw Error("make_model: cannot read '" + json_path + "'");
  const json j = json::parse(in, nullptr, false);
  if (!j.is_object() || !j.contains("model") || !j.contains("config"))
    throw Error("make_model: '" + json_path + "' has no \"model\" and \"config\" (a checkpoint JSON from before they were written?)");
  return make_model(j["model"].get<std::string>(), j["config"].dump(), gen);
}

}  // namespace dgm::models
