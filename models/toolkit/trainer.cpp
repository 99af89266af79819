// dgm/models/toolkit/trainer.cpp
#include "models/toolkit/trainer.h"

#include "models/conditional.h"

#include <cmath>
#include <csignal>
#include <numbers>
#include <cstdlib>
#include <filesystem>
#include <iostream>
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

double bits_per_dim(double nll_nats, double dims) { return nll_nats / (dims * std::log(2.0)); }

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
  // the mean and the mean of squares of log p(x), for the mean's standard error
  const std::vector<double> m = chunked_means(data, chunk, [&](const Tensor& x) {
    const Tensor lp = model.log_prob(x).to(DType::Float64);
    return std::vector<Tensor>{lp, square(lp)};
  });
  e.nll_nats = -m[0];
  e.examples = data.size(0);
  const double n = static_cast<double>(e.examples);
  e.nll_se = e.examples > 1 ? std::sqrt(std::max(0.0, m[1] - m[0] * m[0]) * n / (n - 1) / n) : NAN;
  e.dims = model.values_per_example(data);
  e.bits_per_dim = bits_per_dim(e.nll_nats, e.dims);
  e.kind = model.log_prob_kind();
  e.seconds = clock.seconds();
  return e;
}

Evaluation evaluate_given(models::ConditionalDensity& model, const Tensor& data, const Tensor& labels, int64_t chunk) {
  progress::Stopwatch clock;
  NoGradGuard ng;
  const int64_t N = data.size(0);
  models::check_labels(labels, N, model.classes(), "evaluate_given");
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < N; i += chunk) {
    const int64_t e = std::min(N, i + chunk);
    const Tensor lp = model.log_prob_given(slice(data, 0, i, e), slice(labels, 0, i, e)).to(DType::Float64);
    for (int64_t k = 0; k < lp.numel(); ++k) s += lp.at(k), s2 += lp.at(k) * lp.at(k);
  }
  Evaluation ev;
  const double n = static_cast<double>(N), m = s / n;
  ev.nll_nats = -m;
  ev.examples = N;
  ev.nll_se = N > 1 ? std::sqrt(std::max(0.0, s2 / n - m * m) / (n - 1)) : NAN;
  ev.dims = static_cast<double>(data.numel() / N);
  ev.bits_per_dim = bits_per_dim(ev.nll_nats, ev.dims);
  ev.kind = model.log_prob_given_kind() + ", log p(x | y)";
  ev.seconds = clock.seconds();
  return ev;
}

void require_finite(double value, const std::string& what, int64_t step) {
  if (!std::isfinite(value)) {
    std::ostringstream os;
    os << "training diverged: " << what << " is " << value << " at step " << step
       << " (try a smaller learning rate, or check the data)";
    throw Error(os.str());
  }
}

// ---------------------------------------------------------------- stopping
namespace {

volatile std::sig_atomic_t g_stop = 0;
int64_t g_steps_in_process = 0, g_interrupt_at = -1;

extern "C" void on_signal(int sig) {
  g_stop = 1;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process at once
}

}  // namespace

bool stop_requested() { return g_stop != 0; }
void request_stop() { g_stop = 1; }
void clear_stop() { g_stop = 0; }

void install_interrupt_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (const char* at = std::getenv("DGM_INTERRUPT_AT_STEP")) g_interrupt_at = std::atoll(at);
}

namespace {
double g_training_seconds = 0;
}
double training_seconds() { return g_training_seconds; }
void add_training_seconds(double seconds) { g_training_seconds += seconds; }

void count_step() {
  if (++g_steps_in_process == g_interrupt_at) std::raise(SIGINT);
}

// ---------------------------------------------------------------- the recorder
Recorder::Recorder(RecordOptions options) : o_(std::move(options)) {
  if (writes()) std::filesystem::create_directories(o_.out_dir);
}

std::string Recorder::stem(const std::string& suffix) const { return (std::filesystem::path(o_.out_dir) / (o_.tag + suffix)).string(); }

void Recorder::start(int64_t total, int64_t done) {
  if (!o_.progress) return;
  bar_ = std::make_unique<progress::ProgressBar>(o_.tag, total, done);
  if (done > 0) bar_->update(done, "resumed");
}

void Recorder::start_timed(double budget_seconds, int64_t step_cap, int64_t done_steps, double done_seconds) {
  if (!o_.progress) return;
  bar_ = std::make_unique<progress::ProgressBar>(progress::ProgressBar::timed(o_.tag, budget_seconds, step_cap, done_steps, done_seconds));
  if (done_steps > 0) bar_->update(done_steps, "resumed");
}

void Recorder::progress(int64_t done, const std::string& status) {
  if (bar_) bar_->update(done, status);
}

void Recorder::exclude_seconds(double seconds) {
  if (bar_) bar_->exclude(seconds);
}

void Recorder::finish(const std::string& note, bool reached_end, int64_t steps) {
  if (bar_ && reached_end) bar_->finish(note, steps);
  if (bar_ && !reached_end) std::cout << "\n   " << o_.tag << ": " << note << std::endl;
  bar_.reset();
}

void Recorder::write_curve() const {
  if (!writes()) return;
  std::vector<std::string> columns = {o_.x_label, o_.train_column, o_.validation_column};
  columns.insert(columns.end(), o_.extra_columns.begin(), o_.extra_columns.end());
  plot::write_csv(stem("_curve") + ".csv", columns, curve_);
  plot::line_plot(stem("_curve") + ".csv", stem("_curve") + ".png",
                  o_.curve_title.empty() ? o_.tag + ": negative log-likelihood" : o_.curve_title, o_.x_label, o_.y_label, 1,
                  {{2, o_.train_label}, {3, o_.validation_label}},
                  o_.log_y);
}

void Recorder::save(const nn::Module& model, const RunInfo& run, const std::string& suffix, const std::string& model_name,
                    const std::string& model_config) const {
  if (!writes() || !o_.checkpoint) return;
  save_checkpoint(model, stem(suffix) + ".safetensors",
                  {{"tag", o_.tag + suffix}, {"best_epoch", std::to_string(run.best_epoch)}, {"epochs_run", std::to_string(run.epochs_run)},
                   {"interrupted", run.interrupted ? "true" : "false"}});
  nlohmann::ordered_json j;
  j["tag"] = o_.tag + suffix;
  const std::string name = model_name.empty() ? o_.model_name : model_name;
  const std::string config = model_config.empty() ? o_.model_config : model_config;
  if (!name.empty()) j["model"] = name;
  if (!config.empty()) j["config"] = nlohmann::ordered_json::parse(config);  // a model's config_json()
  if (!o_.recipe.empty()) j["recipe"] = o_.recipe;
  if (!o_.data_transform.empty()) j["data_transform"] = o_.data_transform;
  j["parameters"] = model.num_parameters();
  j["best_epoch"] = run.best_epoch, j["epochs_run"] = run.epochs_run, j["steps"] = run.steps;
  j["train_seconds"] = run.seconds;
  if (run.interrupted) j["interrupted"] = true;
  for (const auto& [k, v] : run.fields) {
    const nlohmann::json number = nlohmann::json::parse(v, nullptr, false);
    j[k] = number.is_number() ? number : nlohmann::json(v);
  }
  save_text_atomically(stem(suffix) + ".json", j.dump(2) + "\n");
}

// ---------------------------------------------------------------- resume-state pieces
std::string exact_text(double v) {
  std::ostringstream os;
  os << std::hexfloat << v;
  return os.str();
}

double from_exact_text(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

Tensor curve_tensor(const std::vector<std::vector<double>>& curve) {
  if (curve.empty()) return Tensor();
  std::vector<double> flat;
  for (const auto& row : curve) flat.insert(flat.end(), row.begin(), row.end());
  return Tensor::from_vector(flat, {static_cast<int64_t>(curve.size()), static_cast<int64_t>(curve[0].size())});
}

std::vector<std::vector<double>> curve_rows(const Tensor& t) {
  const std::vector<double> flat = t.to_vector();
  std::vector<std::vector<double>> rows;
  for (int64_t i = 0; i < t.size(0); ++i) rows.emplace_back(flat.begin() + i * t.size(1), flat.begin() + (i + 1) * t.size(1));
  return rows;
}

std::map<std::string, Tensor> with_prefix(const std::map<std::string, Tensor>& tensors, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [k, v] : tensors)
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  return out;
}

// ---------------------------------------------------------------- the loop
namespace {

std::vector<Tensor> copy_parameters(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (const Tensor& p : ps) out.push_back(p.contiguous_copy());
  return out;
}

void copy_into(const std::vector<Tensor>& to, const std::vector<Tensor>& from) {
  NoGradGuard ng;
  for (size_t i = 0; i < to.size(); ++i) const_cast<Tensor&>(to[i]).copy_(from[i]);
}

// avg = d avg + (1 - d) p, in place, no graph
void update_ema(std::vector<Tensor>& avg, const std::vector<Tensor>& params, double d) {
  NoGradGuard ng;
  for (size_t i = 0; i < avg.size(); ++i) {
    avg[i].mul_(d);
    avg[i].add_(params[i], 1 - d);
  }
}

// the decay at a step: min(ema, (1 + step) / (10 + step)) (early steps average over fewer of them)
double ema_decay(double ema, int64_t step) { return std::min(ema, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step))); }

// Everything the loop needs to continue where it stopped.
struct LoopState {
  FitResult r;
  std::vector<Tensor> best, averaged;
  int validations_without_gain = 0;
  bool validated = false;      // a validation has happened (so `best` means something)
  int epoch = 1;               // the epoch in progress (1-based)
  int64_t position = 0;        // batches of it already done
  Tensor order;                // its order of the examples
  double epoch_total = 0, row_total = 0;
  int64_t epoch_seen = 0, row_seen = 0;
};

void save_state(const std::string& path, nn::Module& model, const optim::Adam& opt, const LoopState& s, const FitOptions& o,
                int64_t n_train, Generator& gen) {
  nn::NamedTensors t;
  for (auto& [name, p] : model.named_parameters()) t.push_back({"param." + name, p.contiguous_copy()});
  for (auto& [name, v] : opt.state()) t.push_back({"adam." + name, v});
  for (size_t i = 0; i < s.best.size(); ++i) t.push_back({"best." + std::to_string(i), s.best[i]});
  for (size_t i = 0; i < s.averaged.size(); ++i) t.push_back({"ema." + std::to_string(i), s.averaged[i]});
  if (s.order.defined()) t.push_back({"order", s.order.contiguous_copy()});
  if (!s.r.curve.empty()) t.push_back({"curve", curve_tensor(s.r.curve)});
  std::map<std::string, std::string> m = {
      {"format", "dgm-resume-1"}, {"tag", o.tag}, {"n_train", std::to_string(n_train)}, {"batch_size", std::to_string(o.batch_size)},
      {"epoch", std::to_string(s.epoch)}, {"position", std::to_string(s.position)}, {"steps", std::to_string(s.r.steps)},
      {"epochs_run", std::to_string(s.r.epochs_run)}, {"best_epoch", std::to_string(s.r.best_epoch)},
      {"best_validation", exact_text(s.r.best_validation)}, {"validations_without_gain", std::to_string(s.validations_without_gain)},
      {"validated", s.validated ? "1" : "0"}, {"seconds", exact_text(s.r.seconds)}, {"last_train_loss", exact_text(s.r.last_train_loss)},
      {"epoch_total", exact_text(s.epoch_total)}, {"epoch_seen", std::to_string(s.epoch_seen)}, {"row_total", exact_text(s.row_total)},
      {"row_seen", std::to_string(s.row_seen)}, {"generator", gen.state()}};
  for (size_t i = 0; i < o.generators.size(); ++i) m["generator." + std::to_string(i)] = o.generators[i]->state();
  save_safetensors(path, t, m);
}

// Reads a saved state into the model, the optimizer and `s`; everything is checked before
// anything changes, and a state that belongs to another run is an error naming what differs.
void load_state(const std::string& path, nn::Module& model, optim::Adam& opt, LoopState& s, const FitOptions& o, int64_t n_train,
                Generator& gen) {
  std::map<std::string, std::string> m;
  const nn::NamedTensors file = load_safetensors(path, &m);
  std::map<std::string, Tensor> t(file.begin(), file.end());
  auto meta = [&](const std::string& k) -> const std::string& {
    const auto it = m.find(k);
    if (it == m.end()) throw Error("resume: " + path + " has no '" + k + "' (not a dgm resume state)");
    return it->second;
  };
  if (meta("format") != "dgm-resume-1") throw Error("resume: " + path + " is format '" + meta("format") + "', expected dgm-resume-1");
  std::string differs;
  auto same = [&](const std::string& what, const std::string& saved, const std::string& now) {
    if (saved != now) differs += (differs.empty() ? "" : "; ") + what + " " + saved + " in the state, " + now + " now";
  };
  same("tag", meta("tag"), o.tag);
  same("training examples", meta("n_train"), std::to_string(n_train));
  same("batch size", meta("batch_size"), std::to_string(o.batch_size));
  auto params = model.named_parameters();
  for (auto& [name, p] : params) {
    const auto it = t.find("param." + name);
    if (it == t.end())
      differs += (differs.empty() ? "" : "; ") + std::string("parameter '") + name + "' is missing";
    else if (it->second.shape() != p.shape() || it->second.dtype() != p.dtype())
      differs += (differs.empty() ? "" : "; ") + std::string("parameter '") + name + "' is " + it->second.shape().str() + " " +
                 dtype_name(it->second.dtype()) + " in the state, " + p.shape().str() + " " + dtype_name(p.dtype()) + " in the model";
  }
  if (!differs.empty()) throw Error("resume: " + path + " does not belong to this run: " + differs + " (delete it, or run without --resume)");
  opt.load_state(with_prefix(t, "adam."));  // checks its own shapes before it copies
  NoGradGuard ng;
  for (auto& [name, p] : params) p.copy_(t.at("param." + name));
  auto list = [&](const std::string& prefix, std::vector<Tensor>& into) {
    into.clear();
    for (size_t i = 0; t.count(prefix + std::to_string(i)); ++i) into.push_back(t.at(prefix + std::to_string(i)).contiguous_copy());
  };
  list("best.", s.best);
  list("ema.", s.averaged);
  s.order = t.count("order") ? t.at("order").contiguous_copy() : Tensor();
  s.r.curve = t.count("curve") ? curve_rows(t.at("curve")) : std::vector<std::vector<double>>{};
  s.epoch = std::stoi(meta("epoch")), s.position = std::stoll(meta("position"));
  s.r.steps = std::stoll(meta("steps")), s.r.epochs_run = std::stoi(meta("epochs_run")), s.r.best_epoch = std::stoi(meta("best_epoch"));
  s.r.best_validation = from_exact_text(meta("best_validation")), s.r.seconds = from_exact_text(meta("seconds"));
  s.r.last_train_loss = from_exact_text(meta("last_train_loss"));
  s.validations_without_gain = std::stoi(meta("validations_without_gain")), s.validated = meta("validated") == "1";
  s.epoch_total = from_exact_text(meta("epoch_total")), s.epoch_seen = std::stoll(meta("epoch_seen"));
  s.row_total = from_exact_text(meta("row_total")), s.row_seen = std::stoll(meta("row_seen"));
  gen.set_state(meta("generator"));
  for (size_t i = 0; i < o.generators.size(); ++i) o.generators[i]->set_state(meta("generator." + std::to_string(i)));
  s.r.resumed = true;
}

}  // namespace

FitResult fit(nn::Module& model, int64_t n_train, const std::function<Tensor(const Tensor&)>& batch_loss,
              const std::function<double()>& validate, Generator& gen, const FitOptions& o) {
  if (o.epochs < 1) throw Error("fit: epochs must be at least 1, got " + std::to_string(o.epochs));
  if (o.validate_every < 1) throw Error("fit: validate_every must be at least 1");
  if (n_train <= 0 || o.batch_size <= 0) throw Error("fit: the data size and batch size must be positive");
  if (!(o.lr > 0)) throw Error("fit: the learning rate must be positive, got " + std::to_string(o.lr));
  if (o.lr_schedule != "constant" && o.lr_schedule != "cosine")
    throw Error("fit: lr_schedule must be \"constant\" or \"cosine\", got \"" + o.lr_schedule + "\"");
  RecordOptions record = o;
  if (o.seconds_column) record.extra_columns.push_back("train_seconds");
  Recorder rec(record);
  const std::vector<Tensor> params = model.parameters();
  optim::Adam opt(params, o.lr, o.beta1, o.beta2);
  const int64_t per_epoch = o.drop_last ? n_train / o.batch_size : (n_train + o.batch_size - 1) / o.batch_size;
  if (per_epoch < 1) throw Error("fit: no full batch of " + std::to_string(o.batch_size) + " in " + std::to_string(n_train) + " examples");
  LoopState s;
  if (validate && o.keep_best) s.best = copy_parameters(params);
  if (o.ema > 0) s.averaged = copy_parameters(params);
  const std::string state_path = rec.writes() ? rec.stem(".resume") + ".safetensors" : "";
  if (o.resume && !state_path.empty()) {
    if (std::filesystem::exists(state_path)) {
      load_state(state_path, model, opt, s, o, n_train, gen);
      std::cout << "   " << o.tag << ": resumed from " << state_path << " at step " << s.r.steps << " (epoch " << s.epoch << ")" << std::endl;
    } else {
      std::cout << "   " << o.tag << ": no resume state (" << state_path << "); training from the start" << std::endl;
    }
  }
  // the bar: epochs; with a step budget, steps; with a time budget, the clock against it (and the steps)
  const bool timed = o.max_seconds > 0 || o.max_steps > 0;
  const int64_t planned = static_cast<int64_t>(o.epochs) * per_epoch;
  const int64_t total_steps = o.max_steps > 0 ? std::min(planned, o.max_steps) : planned;
  if (o.max_seconds > 0) rec.start_timed(o.max_seconds, total_steps, s.r.steps, s.r.seconds);
  else if (timed) rec.start(total_steps, s.r.steps);
  else rec.start(o.epochs, s.r.epochs_run);
  const double seconds_before = s.r.seconds;
  progress::Stopwatch clock;
  double paused = 0;  // time spent in at_snapshot: not training
  auto seconds = [&] { return seconds_before + clock.seconds() - paused; };
  size_t next_snapshot = 0;  // the first mark not yet reached (a resumed run has passed some)
  while (next_snapshot < o.snapshot_seconds.size() && o.snapshot_seconds[next_snapshot] <= seconds_before) ++next_snapshot;
  // what a run stopped now would end with, handed to at_snapshot, then the live parameters back
  auto snapshot = [&] {
    progress::Stopwatch pause;
    const std::vector<Tensor> live = copy_parameters(params);
    if (o.ema > 0) copy_into(params, s.averaged);
    else if (validate && o.keep_best && s.validated) copy_into(params, s.best);
    o.at_snapshot(seconds(), s.r.steps);
    copy_into(params, live);
    paused += pause.seconds();
    rec.exclude_seconds(pause.seconds());
    while (next_snapshot < o.snapshot_seconds.size() && o.snapshot_seconds[next_snapshot] <= seconds()) ++next_snapshot;
  };
  bool interrupted = false, stop_now = false;

  // one validation: a curve row at `x` (epochs, fractional between them), keep-best, patience
  auto validation_row = [&](double x, double train_value, std::ostringstream& status) {
    const double v = validate ? validate() : NAN;
    std::vector<double> row = {x, train_value, v};
    if (o.extra) {
      std::vector<double> more = o.extra();
      row.insert(row.end(), more.begin(), more.end());
    }
    if (o.seconds_column) row.push_back(seconds());
    s.r.curve.push_back(row);
    if (!validate) return;
    status << ", validation " << v;
    s.validated = true;
    if (v < s.r.best_validation) {
      s.r.best_validation = v;
      s.r.best_epoch = s.epoch;
      s.validations_without_gain = 0;
      if (o.keep_best) s.best = copy_parameters(params);
    } else if (++s.validations_without_gain >= o.patience && o.patience > 0) {
      s.r.stopped_early = true;
    }
  };

  while (s.epoch <= o.epochs && !s.r.stopped_early && !stop_now && !interrupted) {
    if (s.position == 0) s.order = o.shuffle ? gen.permutation(n_train) : Tensor::arange(n_train, DType::Int64);
    std::ostringstream status;
    for (; s.position < per_epoch;) {
      const int64_t begin = s.position * o.batch_size, end = std::min(begin + o.batch_size, n_train);
      const Tensor idx = slice(s.order, 0, begin, end);
      if (o.before_step)
        o.before_step(StepInfo{s.r.steps, static_cast<double>(s.epoch - 1) + static_cast<double>(s.position) / static_cast<double>(per_epoch)});
      opt.zero_grad();
      Tensor loss = batch_loss(idx);
      const double value = loss.item();
      require_finite(value, o.tag + " training loss", s.r.steps);
      loss.backward();
      if (o.clip_grad_norm > 0) optim::clip_grad_norm_(params, o.clip_grad_norm);
      if (o.lr_schedule == "cosine") {  // the fraction of training done before this step
        const double f = o.max_seconds > 0 ? seconds() / o.max_seconds
                                           : static_cast<double>(s.r.steps) / static_cast<double>(total_steps);
        opt.set_lr(o.lr * 0.5 * (1 + std::cos(std::numbers::pi * std::min(1.0, f))));
      }
      opt.step();
      ++s.r.steps, ++s.position;
      if (o.ema > 0) update_ema(s.averaged, params, ema_decay(o.ema, s.r.steps));
      const double n = static_cast<double>(idx.numel());
      s.epoch_total += value * n, s.row_total += value * n;
      s.epoch_seen += idx.numel(), s.row_seen += idx.numel();
      count_step();
      if (o.at_snapshot && next_snapshot < o.snapshot_seconds.size() && seconds() >= o.snapshot_seconds[next_snapshot]) snapshot();
      if ((o.max_seconds > 0 && seconds() >= o.max_seconds) || (o.max_steps > 0 && s.r.steps >= o.max_steps)) s.r.out_of_time = true;
      if (stop_requested()) interrupted = true;
      // a validation due at this step happens even when a stop was asked for: the step is finished
      // as an uninterrupted run finishes it, so that a resumed run continues the same sequence
      if (o.validate_every_steps > 0 && s.r.steps % o.validate_every_steps == 0) {
        const double x = (s.epoch - 1) + static_cast<double>(s.position) / static_cast<double>(per_epoch);
        validation_row(x, s.row_total / static_cast<double>(s.row_seen), status);
        s.row_total = 0, s.row_seen = 0;
        if (timed) rec.progress(s.r.steps, "epoch " + std::to_string(s.epoch) + status.str());
        status.str("");
      }
      if (s.r.out_of_time || interrupted || s.r.stopped_early) break;
    }
    const bool epoch_done = s.position == per_epoch;
    if (s.epoch_seen > 0) s.r.last_train_loss = s.epoch_total / static_cast<double>(s.epoch_seen);
    if (epoch_done) {
      s.r.epochs_run = s.epoch;
      stop_now = o.stop_when && o.stop_when(s.r.last_train_loss);
    }
    stop_now = stop_now || s.r.out_of_time;
    status << std::fixed << std::setprecision(2) << "train " << s.r.last_train_loss;
    // with a step interval the rows come from it, plus one at the very end; else at epoch ends
    const bool last = stop_now || s.r.stopped_early || (epoch_done && s.epoch == o.epochs);
    const bool row_due = o.validate_every_steps > 0 ? (last && s.row_seen > 0)
                                                    : (epoch_done && (s.epoch % o.validate_every == 0 || s.epoch == o.epochs)) || stop_now;
    if (row_due) {  // (interrupted at the end of an epoch: its validation is still done, as in one run)
      const double x = o.validate_every_steps > 0 ? (s.epoch - 1) + static_cast<double>(s.position) / static_cast<double>(per_epoch)
                                                  : static_cast<double>(s.epoch);
      validation_row(x, o.validate_every_steps > 0 ? s.row_total / static_cast<double>(s.row_seen) : s.r.last_train_loss, status);
      s.row_total = 0, s.row_seen = 0;
    }
    if (epoch_done) {
      rec.progress(timed ? s.r.steps : s.epoch, "epoch " + std::to_string(s.epoch) + ", " + status.str());
      ++s.epoch, s.position = 0, s.epoch_total = 0, s.epoch_seen = 0;
    }
  }
  s.r.seconds = seconds();
  add_training_seconds(s.r.seconds - seconds_before);
  rec.finish(interrupted        ? "interrupted at step " + std::to_string(s.r.steps)
             : s.r.stopped_early ? "stopped early: no gain in " + std::to_string(o.patience) + " validations"
             : s.r.out_of_time   ? (o.max_steps > 0 && s.r.steps >= o.max_steps
                                      ? "stopped at the step budget (" + std::to_string(o.max_steps) + " steps)"
                                      : "stopped at the time limit (" + std::to_string(static_cast<int>(o.max_seconds)) + " s)")
                                 : "",
             !interrupted, timed ? s.r.steps : -1);
  // the state to continue from holds the live parameters: save it before the best or the average replace them
  if (!state_path.empty() && o.checkpoint) save_state(state_path, model, opt, s, o, n_train, gen);
  if (o.ema > 0)
    copy_into(params, s.averaged);  // end with the average (validation, if any, saw the last iterate)
  else if (validate && o.keep_best && s.validated)
    copy_into(params, s.best);
  RunInfo info{s.r.steps, s.r.epochs_run, s.r.best_epoch, s.r.seconds, interrupted, {}};
  std::ostringstream lr;
  lr << o.lr;
  info.fields["batch_size"] = std::to_string(o.batch_size);
  info.fields["lr"] = lr.str();
  if (o.lr_schedule != "constant") info.fields["lr_schedule"] = o.lr_schedule;
  rec.curve() = s.r.curve;
  rec.write_curve();
  rec.save(model, info);
  if (interrupted) {
    std::ostringstream what;
    what << o.tag << ": interrupted at step " << s.r.steps << " of " << total_steps << "; kept " << (rec.writes() ? rec.stem() + ".safetensors" : "nothing")
         << (state_path.empty() ? "" : ", resume state " + state_path);
    throw Interrupted(what.str(), s.r.steps, timed && o.max_seconds > 0 ? 0 : total_steps);
  }
  return s.r;
}

std::string update_checkpoint(const nn::Module& model, const FitOptions& o) {
  if (o.out_dir.empty() || !o.checkpoint) return "";
  const std::string path = Recorder(o).stem() + ".safetensors";
  if (!std::filesystem::exists(path)) throw Error("update_checkpoint: " + path + " does not exist (was the model trained with these options?)");
  std::map<std::string, std::string> metadata;
  load_safetensors(path, &metadata);
  save_checkpoint(model, path, metadata);
  return path;
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
  if (Generator* noise = model.noise_generator()) with_model.generators.push_back(noise);
  return fit(static_cast<nn::Module&>(model), train.size(0), loss, val, gen, with_model);
}

FitResult fit_given(models::TrainableDensity& model, const Tensor& train, const Tensor& train_labels, const Tensor& validation,
                    const Tensor& validation_labels, Generator& gen, const FitOptions& o, const std::function<double()>& validate) {
  auto* conditional = dynamic_cast<models::ConditionalDensity*>(&model);
  if (!conditional || conditional->classes() < 1)
    throw Error("fit_given: " + model.name() + " is not class-conditional (give its config a \"classes\" field)");
  models::check_labels(train_labels, train.size(0), conditional->classes(), "fit_given (training labels)");
  if (validation.defined()) models::check_labels(validation_labels, validation.size(0), conditional->classes(), "fit_given (validation labels)");
  auto loss = [&](const Tensor& idx) {
    Tensor x = index_select(train, 0, idx);
    return conditional->loss_given(o.prepare ? o.prepare(x) : x, index_select(train_labels, 0, idx));
  };
  std::function<double()> val = validate;
  if (!val && validation.defined()) val = [&] { return evaluate_given(*conditional, validation, validation_labels).nll_nats; };
  FitOptions with_model = o;
  if (with_model.model_name.empty()) with_model.model_name = model.name();
  if (with_model.model_config.empty()) with_model.model_config = model.config_json();
  if (Generator* noise = model.noise_generator()) with_model.generators.push_back(noise);
  FitResult r = fit(static_cast<nn::Module&>(model), train.size(0), loss, val, gen, with_model);
  // closed-form state on the kept parameters (the VAE's class prior), then into the checkpoint
  r.finished = conditional->finish_training(o.prepare ? o.prepare(train) : train, train_labels);
  if (!r.finished.empty()) {
    if (o.progress) std::cout << "   " << r.finished << "\n";
    update_checkpoint(model, with_model);
  }
  return r;
}

}  // namespace dgm::train
