// dgm/models/toolkit/trainer.cpp
#include "models/toolkit/trainer.h"

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "autograd/optim.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/progress.h"
#include "models/toolkit/transforms.h"

namespace dgm::train {

double bits_per_dim(double nll_nats, int64_t dims) { return nll_nats / (static_cast<double>(dims) * std::log(2.0)); }

std::vector<double> chunked_means(const Tensor& data, int64_t chunk,
                                  const std::function<std::vector<Tensor>(const Tensor&)>& per_example) {
  NoGradGuard ng;
  const int64_t n = data.size(0);
  if (n == 0) throw Error("chunked_means: the data set is empty");
  std::vector<double> totals;
  for (int64_t s = 0; s < n; s += chunk) {
    std::vector<Tensor> qs = per_example(slice(data, 0, s, std::min(n, s + chunk)));
    totals.resize(qs.size(), 0.0);
    for (size_t i = 0; i < qs.size(); ++i) totals[i] += sum(qs[i]).item();
  }
  for (double& t : totals) t /= static_cast<double>(n);
  return totals;
}

Evaluation evaluate(models::DensityModel& model, const Tensor& data, int64_t chunk) {
  progress::Stopwatch clock;
  Evaluation e;
  e.nll_nats = -chunked_means(data, chunk, [&](const Tensor& x) { return std::vector<Tensor>{model.log_prob(x)}; })[0];
  e.examples = data.size(0);
  e.dims = data.numel() / data.size(0);
  e.bits_per_dim = bits_per_dim(e.nll_nats, e.dims);
  e.kind = model.log_prob_kind();
  e.seconds = clock.seconds();
  return e;
}

void require_finite(double value, const std::string& what, int64_t step) {
  if (!std::isfinite(value)) {
    std::ostringstream os;
    os << "training diverged: " << what << " is " << value << " at step " << step
       << " (try a smaller learning rate, or check the data)";
    throw Error(os.str());
  }
}

namespace {

std::vector<Tensor> copy_parameters(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (const Tensor& p : ps) out.push_back(p.contiguous_copy());
  return out;
}

// avg = d avg + (1 - d) p, in place, no graph
void update_ema(std::vector<Tensor>& avg, const std::vector<Tensor>& params, double d) {
  NoGradGuard ng;
  for (size_t i = 0; i < avg.size(); ++i) {
    avg[i].mul_(d);
    avg[i].add_(params[i], 1 - d);
  }
}

void write_outputs(nn::Module& model, const FitOptions& o, const FitResult& r) {
  if (o.out_dir.empty()) return;
  const std::string stem = (std::filesystem::path(o.out_dir) / o.tag).string();
  std::vector<std::string> columns = {"epoch", o.train_column, o.validation_column};
  columns.insert(columns.end(), o.extra_columns.begin(), o.extra_columns.end());
  plot::write_csv(stem + "_curve.csv", columns, r.curve);
  plot::line_plot(stem + "_curve.csv", stem + "_curve.png",
                  o.curve_title.empty() ? o.tag + ": negative log-likelihood" : o.curve_title, "epoch", o.y_label, 1,
                  {{2, "train (running)"}, {3, o.validation_label}}, o.log_y);
  if (!o.checkpoint) return;
  save_checkpoint(model, stem + ".safetensors",
                  {{"tag", o.tag}, {"best_epoch", std::to_string(r.best_epoch)}, {"epochs_run", std::to_string(r.epochs_run)}});
  nlohmann::ordered_json j;
  j["tag"] = o.tag;
  if (!o.model_name.empty()) j["model"] = o.model_name;
  if (!o.model_config.empty()) j["config"] = nlohmann::ordered_json::parse(o.model_config);  // a model's config_json()
  if (!o.data_transform.empty()) j["data_transform"] = o.data_transform;
  j["parameters"] = model.num_parameters();
  j["best_epoch"] = r.best_epoch, j["epochs_run"] = r.epochs_run, j["steps"] = r.steps;
  j["batch_size"] = o.batch_size, j["lr"] = o.lr, j["train_seconds"] = r.seconds;
  std::ofstream json(stem + ".json");
  json << j.dump(2) << "\n";
}

}  // namespace

FitResult fit(nn::Module& model, int64_t n_train, const std::function<Tensor(const Tensor&)>& batch_loss,
              const std::function<double()>& validate, Generator& gen, const FitOptions& o) {
  if (o.epochs < 1) throw Error("fit: epochs must be at least 1, got " + std::to_string(o.epochs));
  if (o.validate_every < 1) throw Error("fit: validate_every must be at least 1");
  optim::Adam opt(model.parameters(), o.lr);
  data::Batches batches(n_train, o.batch_size, o.shuffle, o.drop_last);
  FitResult r;
  std::vector<Tensor> best;
  if (validate && o.keep_best) best = copy_parameters(model.parameters());
  int validations_without_gain = 0;
  std::vector<Tensor> averaged;  // the EMA of the parameters (ema > 0)
  if (o.ema > 0) averaged = copy_parameters(model.parameters());
  // with a time limit the bar counts thousandths of whichever ends first: the epochs or the time
  const bool timed = o.max_seconds > 0;
  progress::ProgressBar bar(o.tag, timed ? 1000 : o.epochs);
  progress::Stopwatch clock;
  for (int e = 1; e <= o.epochs; ++e) {
    double total = 0;
    int64_t seen = 0;
    for (const Tensor& idx : batches.epoch(gen)) {
      if (o.before_step) o.before_step();
      opt.zero_grad();
      Tensor loss = batch_loss(idx);
      const double value = loss.item();
      require_finite(value, o.tag + " training loss", r.steps);
      loss.backward();
      opt.step();
      ++r.steps;
      if (o.ema > 0) update_ema(averaged, model.parameters(), std::min(o.ema, (1.0 + r.steps) / (10.0 + r.steps)));
      total += value * static_cast<double>(idx.numel());
      seen += idx.numel();
      if (o.max_seconds > 0 && clock.seconds() >= o.max_seconds) r.out_of_time = true;
      if (r.out_of_time || (o.examples_per_epoch > 0 && seen >= o.examples_per_epoch)) break;
    }
    r.last_train_loss = total / static_cast<double>(seen);
    r.epochs_run = e;
    const bool stop_now = (o.stop_when && o.stop_when(r.last_train_loss)) || r.out_of_time;
    std::ostringstream status;
    status << std::fixed << std::setprecision(2) << "train " << r.last_train_loss;
    if (e % o.validate_every == 0 || e == o.epochs || stop_now) {
      const double v = validate ? validate() : NAN;
      std::vector<double> row = {double(e), r.last_train_loss, v};
      if (o.extra) {
        std::vector<double> x = o.extra();
        row.insert(row.end(), x.begin(), x.end());
      }
      r.curve.push_back(row);
      if (validate) {
        status << ", validation " << v;
        if (v < r.best_validation) {
          r.best_validation = v;
          r.best_epoch = e;
          validations_without_gain = 0;
          if (o.keep_best) best = copy_parameters(model.parameters());
        } else if (++validations_without_gain >= o.patience && o.patience > 0) {
          r.stopped_early = true;
        }
      }
    }
    if (o.progress) {
      if (timed)
        bar.update(std::min<int64_t>(1000, std::max<int64_t>(e * 1000 / o.epochs, static_cast<int64_t>(clock.seconds() / o.max_seconds * 1000))),
                   "epoch " + std::to_string(e) + ", " + status.str());
      else
        bar.update(e, status.str());
    }
    if (r.stopped_early || stop_now) break;
  }
  if (o.progress)
    bar.finish(r.stopped_early ? "stopped early: no gain in " + std::to_string(o.patience) + " validations"
               : r.out_of_time ? "stopped at the time limit (" + std::to_string(static_cast<int>(o.max_seconds)) + " s)"
                               : "");
  r.seconds = clock.seconds();
  if (o.ema > 0) {  // end with the average (validation, if any, saw the last iterate)
    NoGradGuard ng;
    auto ps = model.parameters();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(averaged[i]);
  } else if (validate && o.keep_best) {
    NoGradGuard ng;
    auto ps = model.parameters();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(best[i]);
  }
  write_outputs(model, o, r);
  return r;
}

FitResult fit(models::TrainableDensity& model, const Tensor& train, const Tensor& validation, Generator& gen,
              const FitOptions& o, const std::function<double()>& validate) {
  auto loss = [&](const Tensor& idx) {
    Tensor x = index_select(train, 0, idx);
    return model.loss(o.prepare ? o.prepare(x) : x);
  };
  std::function<double()> val = validate;
  if (!val && validation.defined()) val = [&] { return evaluate(model, validation).nll_nats; };
  FitOptions with_model = o;
  if (with_model.model_name.empty()) with_model.model_name = model.name();
  if (with_model.model_config.empty()) with_model.model_config = model.config_json();
  return fit(static_cast<nn::Module&>(model), train.size(0), loss, val, gen, with_model);
}

}  // namespace dgm::train
