// dgm/models/gan.cpp
#include "models/gan.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <iostream>
#include <sstream>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "autograd/optim.h"
#include "models/conditional.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/progress.h"
#include "models/toolkit/trainer.h"

namespace dgm::models::gan {

// ------------------------------------------------------------------ losses

Tensor discriminator_loss(const Tensor& real_logits, const Tensor& fake_logits) {
  return neg(mean(log_sigmoid(real_logits))) - mean(log_sigmoid(neg(fake_logits)));
}

Tensor generator_loss_saturating(const Tensor& fake_logits) { return mean(log_sigmoid(neg(fake_logits))); }

Tensor generator_loss_non_saturating(const Tensor& fake_logits) { return neg(mean(log_sigmoid(fake_logits))); }

Tensor critic_loss_wasserstein(const Tensor& real_scores, const Tensor& fake_scores) {
  return mean(fake_scores) - mean(real_scores);
}

Tensor generator_loss_wasserstein(const Tensor& fake_scores) { return neg(mean(fake_scores)); }

Tensor discriminator_loss_hinge(const Tensor& real_scores, const Tensor& fake_scores) {
  return mean(relu(1.0 - real_scores)) + mean(relu(fake_scores + 1.0));
}

Tensor gradient_penalty(const std::function<Tensor(const Tensor&)>& critic, const Tensor& real, const Tensor& fake,
                        Generator& gen, double lambda) {
  if (real.shape() != fake.shape())
    throw Error("gradient_penalty: real " + real.shape().str() + " and fake " + fake.shape().str() + " must have one shape");
  Shape per_example(std::vector<int64_t>(real.dim(), 1));
  per_example[0] = real.size(0);
  const Tensor u = gen.uniform(per_example, 0, 1, real.dtype());
  // the interpolates are a leaf: the penalty's gradient reaches the critic's parameters
  // through grad_x f(x_hat), not through the samples
  Tensor x_hat;
  {
    NoGradGuard ng;
    x_hat = u * real + (1.0 - u) * fake;
  }
  x_hat.set_requires_grad(true);
  const Tensor scores = critic(x_hat);
  const Tensor g = grad({sum(scores)}, {x_hat}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  const Tensor norm = sqrt(sum(flatten(square(g), 1), {1}) + 1e-12);  // ||grad||_2 per example
  return mean(square(norm - 1.0)) * lambda;
}

// ------------------------------------------------------------------ networks

std::string MLPGenerator::config_json() const {
  return nlohmann::json{{"model", "MLPGenerator"}, {"latent", latent_}, {"dims", dims_}, {"hidden", hidden_}}.dump();
}
std::string MLPDiscriminator::config_json() const {
  return nlohmann::json{{"model", "MLPDiscriminator"}, {"dims", dims_}, {"hidden", hidden_}}.dump();
}
std::string ConvGenerator::config_json() const {
  nlohmann::json c{{"model", "ConvGenerator"}, {"latent", latent_}, {"channels", channels_}, {"width", width_}};
  if (classes_ > 0) c["classes"] = classes_;
  return c.dump();
}
std::string ConvDiscriminator::config_json() const {
  nlohmann::json c{{"model", "ConvDiscriminator"}, {"channels", channels_}, {"width", width_}};
  if (classes_ > 0) c["classes"] = classes_;
  return c.dump();
}

Tensor Network::forward_given(const Tensor&, const Tensor&) {
  throw Error(nlohmann::json::parse(config_json()).at("model").get<std::string>() + ": not class-conditional (classes 0): call forward without labels");
}

namespace {
// The label checks of a conditional network: labels iff classes > 0, each in [0, classes).
void check_given(const std::string& who, int64_t classes, const Tensor& y, int64_t n) {
  if (classes > 0 && !y.defined())
    throw Error(who + ": class-conditional (" + std::to_string(classes) + " classes): call forward_given(input, labels)");
  if (classes == 0 && y.defined()) throw Error(who + ": not class-conditional (classes 0): call forward without labels");
  if (y.defined()) check_labels(y, n, classes, who);
}
}  // namespace

MLPGenerator::MLPGenerator(int64_t latent, int64_t dims, const std::vector<int64_t>& hidden, Generator& gen)
    : latent_(latent), dims_(dims), hidden_(hidden) {
  std::vector<int64_t> sizes = {latent};
  sizes.insert(sizes.end(), hidden.begin(), hidden.end());
  sizes.push_back(dims);
  net_ = register_module("net", nn::mlp<nn::ReLU>(sizes, gen));
}

Tensor MLPGenerator::forward(const Tensor& z) {
  if (z.dim() != 2 || z.size(1) != latent_)
    throw Error("MLPGenerator: expects z [N, " + std::to_string(latent_) + "], got " + z.shape().str());
  return net_->forward(z);
}

MLPDiscriminator::MLPDiscriminator(int64_t dims, const std::vector<int64_t>& hidden, Generator& gen)
    : dims_(dims), hidden_(hidden) {
  net_ = std::make_shared<nn::Sequential>();
  int64_t in = dims;
  for (int64_t h : hidden) {
    net_->add(std::make_shared<nn::Linear>(in, h, gen));
    net_->add(std::make_shared<nn::LeakyReLU>(0.2));
    in = h;
  }
  net_->add(std::make_shared<nn::Linear>(in, 1, gen));
  register_module("net", net_);
}

Tensor MLPDiscriminator::forward(const Tensor& x) {
  if (x.dim() != 2 || x.size(1) != dims_)
    throw Error("MLPDiscriminator: expects x [N, " + std::to_string(dims_) + "], got " + x.shape().str());
  return squeeze(net_->forward(x), 1);
}

ConvGenerator::ConvGenerator(int64_t latent, int64_t channels, int64_t width, Generator& gen, int64_t classes)
    : latent_(latent), channels_(channels), width_(width), classes_(classes) {
  if (classes < 0) throw Error("ConvGenerator: classes must be >= 0 (0: unconditional), got " + std::to_string(classes));
  const int64_t groups = std::max<int64_t>(1, width / 8);
  if (classes > 0) class_vectors_ = register_parameter("class_vectors", Tensor::zeros({classes, 2 * width * 7 * 7}));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(latent, 2 * width * 7 * 7, gen));
  n1_ = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, 2 * width));
  up1_ = register_module("up1", std::make_shared<nn::ConvTranspose2d>(2 * width, width, 4, gen, 2, 1));
  n2_ = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, width));
  up2_ = register_module("up2", std::make_shared<nn::ConvTranspose2d>(width, channels, 4, gen, 2, 1));
}

Tensor ConvGenerator::forward(const Tensor& z) { return run(z, Tensor()); }
Tensor ConvGenerator::forward_given(const Tensor& z, const Tensor& y) {
  if (!y.defined()) throw Error("ConvGenerator::forward_given: no labels");
  return run(z, y);
}

Tensor ConvGenerator::run(const Tensor& z, const Tensor& y) {
  if (z.dim() != 2 || z.size(1) != latent_)
    throw Error("ConvGenerator: expects z [N, " + std::to_string(latent_) + "], got " + z.shape().str());
  check_given("ConvGenerator", classes_, y, z.size(0));
  Tensor pre = fc_->forward(z);
  if (classes_ > 0) pre = pre + index_select(class_vectors_, 0, y);  // + e_y: the one-hot's columns
  Tensor h = reshape(pre, {z.size(0), 2 * width_, 7, 7});
  h = up1_->forward(relu(n1_->forward(h)));  // [w, 14, 14]
  h = up2_->forward(relu(n2_->forward(h)));  // [C, 28, 28]
  return sigmoid(h);
}

ConvDiscriminator::ConvDiscriminator(int64_t channels, int64_t width, Generator& gen, int64_t classes)
    : channels_(channels), width_(width), classes_(classes) {
  if (classes < 0) throw Error("ConvDiscriminator: classes must be >= 0 (0: unconditional), got " + std::to_string(classes));
  if (classes > 0) class_vectors_ = register_parameter("class_vectors", Tensor::zeros({classes, 2 * width * 7 * 7}));
  c1_ = register_module("conv1", std::make_shared<nn::Conv2d>(channels, width, 4, gen, 2, 1));
  c2_ = register_module("conv2", std::make_shared<nn::Conv2d>(width, 2 * width, 4, gen, 2, 1));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(2 * width * 7 * 7, 1, gen));
}

Tensor ConvDiscriminator::forward(const Tensor& x) { return run(x, Tensor()); }
Tensor ConvDiscriminator::forward_given(const Tensor& x, const Tensor& y) {
  if (!y.defined()) throw Error("ConvDiscriminator::forward_given: no labels");
  return run(x, y);
}

Tensor ConvDiscriminator::run(const Tensor& x, const Tensor& y) {
  if (x.dim() != 4 || x.size(1) != channels_ || x.size(2) != 28 || x.size(3) != 28)
    throw Error("ConvDiscriminator: expects images [N, " + std::to_string(channels_) + ", 28, 28], got " + x.shape().str());
  check_given("ConvDiscriminator", classes_, y, x.size(0));
  Tensor h = leaky_relu(c1_->forward(x), 0.2);
  const Tensor phi = flatten(leaky_relu(c2_->forward(h), 0.2), 1);  // phi(x) [N, 2w * 49]
  Tensor logit = squeeze(fc_->forward(phi), 1);                    // w . phi(x) + b
  if (classes_ > 0) logit = logit + sum(index_select(class_vectors_, 0, y) * phi, {1});  // + e_y . phi(x)
  return logit;
}

// ------------------------------------------------------------------ training

std::string loss_name(Loss loss) {
  switch (loss) {
    case Loss::Minimax: return "minimax (saturating)";
    case Loss::NonSaturating: return "non-saturating";
    case Loss::WassersteinGP: return "WGAN-GP";
    case Loss::Hinge: return "hinge";
  }
  return "?";
}

Loss loss_from_name(const std::string& name) {
  std::string known;
  for (Loss l : {Loss::Minimax, Loss::NonSaturating, Loss::WassersteinGP, Loss::Hinge}) {
    if (loss_name(l) == name) return l;
    known += (known.empty() ? "'" : ", '") + loss_name(l) + "'";
  }
  throw Error("gan: no loss called '" + name + "' (known: " + known + ")");
}

GAN::GAN(std::shared_ptr<Network> g, int64_t latent, std::shared_ptr<Network> d)
    : generator(std::move(g)), discriminator(std::move(d)), latent_(latent) {
  if (!generator || !discriminator) throw Error("GAN: needs a generator and a discriminator");
  if (generator->sample_shape() != discriminator->sample_shape())
    throw Error("GAN: the generator makes samples " + generator->sample_shape().str() + " but the discriminator reads " +
                discriminator->sample_shape().str());
  if (generator->classes() != discriminator->classes())
    throw Error("GAN: the generator knows " + std::to_string(generator->classes()) + " classes but the discriminator " +
                std::to_string(discriminator->classes()));
}

Tensor GAN::sample(int64_t n, Generator& gen) {
  NoGradGuard ng;
  return generator->forward(noise(n, gen));
}

Tensor GAN::sample_given(const Tensor& y, Generator& gen) {
  NoGradGuard ng;
  return generator->forward_given(noise(y.numel(), gen), y);
}

namespace {

// What a resumed game needs: both networks' parameters, both optimizers, the step, the curve so far and
// the running sums of its next row, the generator's state. Written atomically (save_safetensors).
void save_game(const std::string& path, GAN& gan, const optim::Adam& opt_g, const optim::Adam& opt_d, int64_t step,
               const std::vector<std::vector<double>>& curve, double d_sum, double g_sum, int64_t in_row, Generator& gen) {
  nn::NamedTensors t;
  for (auto& [name, p] : gan.generator->named_parameters()) t.push_back({"generator." + name, p.contiguous_copy()});
  for (auto& [name, p] : gan.discriminator->named_parameters()) t.push_back({"discriminator." + name, p.contiguous_copy()});
  for (auto& [name, v] : opt_g.state()) t.push_back({"adam_generator." + name, v});
  for (auto& [name, v] : opt_d.state()) t.push_back({"adam_discriminator." + name, v});
  if (!curve.empty()) t.push_back({"curve", train::curve_tensor(curve)});
  save_safetensors(path, t, {{"format", "dgm-gan-resume-1"}, {"step", std::to_string(step)}, {"d_sum", train::exact_text(d_sum)},
                             {"g_sum", train::exact_text(g_sum)}, {"in_row", std::to_string(in_row)}, {"generator", gen.state()}});
}

// The counterpart: every tensor is checked (by name and shape) before anything is copied.
int64_t load_game(const std::string& path, GAN& gan, optim::Adam& opt_g, optim::Adam& opt_d, std::vector<std::vector<double>>& curve,
                  double& d_sum, double& g_sum, int64_t& in_row, Generator& gen) {
  std::map<std::string, std::string> m;
  const nn::NamedTensors file = load_safetensors(path, &m);
  std::map<std::string, Tensor> t(file.begin(), file.end());
  if (m["format"] != "dgm-gan-resume-1") throw Error("gan::train: " + path + " is not a GAN's resume state");
  std::string differs;
  std::vector<std::pair<Tensor, Tensor>> copies;
  for (auto [role, net] : {std::pair<const char*, Network*>{"generator", gan.generator.get()}, {"discriminator", gan.discriminator.get()}})
    for (auto& [name, p] : net->named_parameters()) {
      const auto it = t.find(std::string(role) + "." + name);
      if (it == t.end() || it->second.shape() != p.shape())
        differs += std::string(differs.empty() ? "" : "; ") + role + "." + name + " is " +
                   (it == t.end() ? std::string("missing") : it->second.shape().str()) + " in the state, " + p.shape().str() + " here";
      else
        copies.push_back({p, it->second});
    }
  if (!differs.empty()) throw Error("gan::train: " + path + " does not belong to this game: " + differs + " (delete it, or run without --resume)");
  opt_g.load_state(train::with_prefix(t, "adam_generator."));
  opt_d.load_state(train::with_prefix(t, "adam_discriminator."));
  NoGradGuard ng;
  for (auto& [p, v] : copies) p.copy_(v);
  curve = t.count("curve") ? train::curve_rows(t.at("curve")) : std::vector<std::vector<double>>{};
  d_sum = train::from_exact_text(m["d_sum"]), g_sum = train::from_exact_text(m["g_sum"]), in_row = std::stoll(m["in_row"]);
  gen.set_state(m["generator"]);
  return std::stoll(m["step"]);
}

}  // namespace

namespace {
// The game of train and train_given: `labels` undefined for the unconditional one.
Result play(GAN& gan, const Tensor& data, const Tensor& labels, Generator& gen, const Options& o) {
  Shape example(std::vector<int64_t>(data.shape().begin() + 1, data.shape().end()));
  if (data.dim() < 2 || example != gan.discriminator->sample_shape())
    throw Error("gan::train: data " + data.shape().str() + " are not batches of the networks' samples " +
                gan.discriminator->sample_shape().str());
  const bool given = labels.defined();
  if (given != (gan.classes() > 0))
    throw Error(given ? "gan::train_given: the networks are unconditional (classes 0); train them with gan::train"
                      : "gan::train: the networks are class-conditional (" + std::to_string(gan.classes()) + " classes); train them with gan::train_given");
  if (given) check_labels(labels, data.size(0), gan.classes(), "gan::train_given");
  // D(x) or D(x, y); G(z) or G(z, y)
  auto D = [&](const Tensor& x, const Tensor& y) { return given ? gan.discriminator->forward_given(x, y) : gan.discriminator->forward(x); };
  auto G = [&](const Tensor& z, const Tensor& y) { return given ? gan.generator->forward_given(z, y) : gan.generator->forward(z); };
  const bool wgan = o.loss == Loss::WassersteinGP;
  optim::Adam opt_d(gan.discriminator->parameters(), o.lr, o.beta1, o.beta2);
  optim::Adam opt_g(gan.generator->parameters(), o.generator_lr > 0 ? o.generator_lr : o.lr, o.beta1, o.beta2);
  const int64_t n = data.size(0);
  Result r;
  progress::Stopwatch clock;
  double watching = 0;  // seconds spent in o.every: observation, not training (off the budget and the bar)
  // the recorder every trainer shares: the bar, the curve, both networks' checkpoints and JSON
  train::RecordOptions ro;
  ro.tag = o.tag, ro.out_dir = o.out_dir, ro.data_transform = o.data_transform, ro.progress = o.progress;
  ro.curve_title = o.tag + ": " + loss_name(o.loss) + " losses", ro.x_label = "step", ro.y_label = "loss";
  ro.train_column = "discriminator_loss", ro.validation_column = "generator_loss";
  ro.train_label = "discriminator", ro.validation_label = "generator";
  train::Recorder rec(ro);
  bool interrupted = false;
  double d_sum = 0, g_sum = 0;
  int64_t in_row = 0, first = 1;
  const std::string state = o.out_dir.empty() ? "" : rec.stem(".resume") + ".safetensors";
  if (o.resume && !state.empty() && std::filesystem::exists(state)) {
    first = load_game(state, gan, opt_g, opt_d, rec.curve(), d_sum, g_sum, in_row, gen) + 1;
    r.steps = first - 1;
    std::cout << "   " << o.tag << ": resumed from " << state << " at generator step " << r.steps << std::endl;
  }
  if (o.max_seconds > 0) rec.start_timed(o.max_seconds, o.steps, first - 1);  // (a resumed game's budget starts anew)
  else rec.start(o.steps, first - 1);
  for (int64_t step = first; step <= o.steps; ++step) {
    // ---- the discriminator (critic): n_critic steps against the frozen generator
    double d_value = 0;
    for (int64_t k = 0; k < o.n_critic; ++k) {
      const Tensor pick = gen.randint({o.batch_size}, 0, n);
      const Tensor real = index_select(data, 0, pick), y = given ? index_select(labels, 0, pick) : Tensor();  // fakes get the same labels
      Tensor fake;
      {
        NoGradGuard ng;
        fake = G(gan.noise(o.batch_size, gen), y);
      }
      opt_d.zero_grad();
      const Tensor real_out = D(real, y), fake_out = D(fake, y);
      Tensor d_loss = wgan ? critic_loss_wasserstein(real_out, fake_out) +
                                 gradient_penalty([&](const Tensor& x) { return D(x, y); }, real, fake, gen, o.lambda)
                           : o.loss == Loss::Hinge ? discriminator_loss_hinge(real_out, fake_out)
                                                   : discriminator_loss(real_out, fake_out);
      d_value = d_loss.item();
      train::require_finite(d_value, o.tag + ": the discriminator's loss", step);
      d_loss.backward();
      opt_d.step();
    }
    // ---- the generator: one step through the (now fixed) discriminator
    opt_g.zero_grad();
    const Tensor y = given ? index_select(labels, 0, gen.randint({o.batch_size}, 0, n)) : Tensor();  // labels as the data has them
    const Tensor fake_out = D(G(gan.noise(o.batch_size, gen), y), y);
    Tensor g_loss = o.loss == Loss::Minimax          ? generator_loss_saturating(fake_out)
                    : o.loss == Loss::NonSaturating ? generator_loss_non_saturating(fake_out)
                                                    : generator_loss_wasserstein(fake_out);
    const double g_value = g_loss.item();
    train::require_finite(g_value, o.tag + ": the generator's loss", step);
    g_loss.backward();
    opt_g.step();  // (the gradients it left in D are cleared by D's next zero_grad)
    d_sum += d_value, g_sum += g_value, ++in_row;
    const bool last = step == o.steps || (o.max_seconds > 0 && clock.seconds() - watching >= o.max_seconds);  // (a stop request writes no row: a resume goes on with its sums)
    if (step % o.log_every == 0 || last) {
      rec.add_row({static_cast<double>(step), d_sum / static_cast<double>(in_row), g_sum / static_cast<double>(in_row)});
      d_sum = g_sum = 0, in_row = 0;
    }
    char status[96];
    std::snprintf(status, sizeof status, "D %.3f  G %.3f", d_value, g_value);
    rec.progress(step, status);
    if (o.every && o.every_steps > 0 && step % o.every_steps == 0) {
      progress::Stopwatch w;
      o.every(step);
      const double spent = w.seconds();
      watching += spent;
      rec.exclude_seconds(spent);
    }
    r.steps = step;
    train::count_step();
    if (train::stop_requested()) interrupted = true;
    if (last || interrupted) break;
  }
  rec.finish(interrupted ? "interrupted at generator step " + std::to_string(r.steps) : "", !interrupted, o.max_seconds > 0 ? r.steps : -1);
  if (!state.empty()) save_game(state, gan, opt_g, opt_d, r.steps, rec.curve(), d_sum, g_sum, in_row, gen);
  r.seconds = clock.seconds() - watching;
  train::add_training_seconds(r.seconds);
  r.curve = rec.curve();
  rec.write_curve();
  for (auto [role, net] : {std::pair<const char*, Network*>{"generator", gan.generator.get()}, {"discriminator", gan.discriminator.get()}}) {
    const nlohmann::json config = nlohmann::json::parse(net->config_json());
    train::RunInfo info;
    info.steps = r.steps, info.seconds = r.seconds, info.interrupted = interrupted;
    info.fields["loss"] = loss_name(o.loss);
    rec.save(*net, info, std::string("_") + role, config.at("model").get<std::string>(), config.dump());
  }
  if (interrupted)
    throw train::Interrupted(o.tag + ": interrupted at generator step " + std::to_string(r.steps) + " of " + std::to_string(o.steps) +
                                 "; kept the networks so far (" + (o.out_dir.empty() ? "nowhere" : rec.stem("_generator") + ".safetensors") + ")",
                             r.steps, o.steps);
  return r;
}
}  // namespace

Result train(GAN& gan, const Tensor& data, Generator& gen, const Options& o) { return play(gan, data, Tensor(), gen, o); }

Result train_given(GAN& gan, const Tensor& data, const Tensor& labels, Generator& gen, const Options& o) {
  if (!labels.defined()) throw Error("gan::train_given: no labels");
  return play(gan, data, labels, gen, o);
}

}  // namespace dgm::models::gan
