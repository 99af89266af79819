// Data readers (hand-made IDX and CSV files, truncated and corrupt ones),
// toys, transforms, minibatches, and the pictures (PNG files that decode).
#include "helpers.h"

#include <iostream>
#include <sstream>

#include <stb_image.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "models/toolkit/datasets.h"
#include "models/toolkit/image.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/toy2d.h"
#include "models/toolkit/transforms.h"
#include "models/divergences.h"

using namespace dgm;
using namespace dgm::test;

namespace {
std::string tmp(const std::string& name) { return temp_path("dgm-tests-data", name); }
void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }
void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}
// An IDX file by hand: 0, 0, type 0x08, ndims, big-endian dims, data.
std::string idx_bytes(std::vector<uint32_t> dims, const std::string& data) {
  std::string s = {0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((d >> (8 * k)) & 0xff));
  return s + data;
}
}  // namespace

TEST_CASE("IDX: a hand-made file round-trips, plain and gzip", "[data][idx]") {
  std::string pixels = {0, 51, 102, 127, 0, 0, 0, static_cast<char>(255), 1, 2, 3, 4};  // 3 images of 2x2
  write(tmp("img.idx"), idx_bytes({3, 2, 2}, pixels));
  write_gz(tmp("lbl.idx.gz"), idx_bytes({3}, std::string{7, 0, 9}));
  data::IdxArray a = data::read_idx(tmp("img.idx"));
  CHECK(a.dims == std::vector<int64_t>{3, 2, 2});
  CHECK(a.values[1] == 51);
  data::ImageSet s = data::read_idx_pair(tmp("img.idx"), tmp("lbl.idx.gz"));
  CHECK(s.images.shape() == Shape{3, 1, 2, 2});
  CHECK(s.images.at(1) == Approx(0.2f));
  CHECK(s.images.at(7) == 1.0);
  CHECK(s.labels.to_vector() == std::vector<double>{7, 0, 9});
  CHECK(data::read_idx_pair(tmp("img.idx"), tmp("lbl.idx.gz"), 2).size() == 2);
}

TEST_CASE("IDX: truncated and corrupt files give errors naming the file and the byte", "[data][idx]") {
  const std::string p = tmp("bad.idx");
  write(p, idx_bytes({3, 2, 2}, std::string(10, 'x')));
  CHECK_THAT(error_of([&] { data::read_idx(p); }),
             Catch::Contains("bad.idx") && Catch::Contains("truncated") && Catch::Contains("byte offset 26"));
  write(p, std::string("\x01\x00\x08\x01", 4));
  CHECK_THAT(error_of([&] { data::read_idx(p); }), Catch::Contains("magic") && Catch::Contains("byte offset 0"));
  write(p, std::string("\x00\x00\x0d\x01", 4));
  CHECK_THAT(error_of([&] { data::read_idx(p); }), Catch::Contains("0x13") || Catch::Contains("not 0x08"));
  write(p, idx_bytes({2}, "abc"));
  CHECK_THAT(error_of([&] { data::read_idx(p); }), Catch::Contains("trailing"));
  write(p, idx_bytes({0}, ""));
  CHECK_THAT(error_of([&] { data::read_idx(p); }), Catch::Contains("dimension 0 is 0"));
  write(p, "ab");
  CHECK_THAT(error_of([&] { data::read_idx(p); }), Catch::Contains("shorter than the 4-byte magic"));
  // a gzip file cut in half
  write_gz(tmp("whole.gz"), idx_bytes({1000}, std::string(1000, 'a')) + std::string(5000, 'q'));
  std::ifstream in(tmp("whole.gz"), std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), {});
  write(tmp("cut.gz"), gz.substr(0, gz.size() / 2));
  CHECK_THAT(error_of([&] { data::read_idx(tmp("cut.gz")); }), Catch::Contains("cut.gz"));
  CHECK_THAT(error_of([&] { data::read_idx(tmp("missing.idx")); }), Catch::Contains("missing.idx") && Catch::Contains("no such file"));
  write(tmp("lbl2.idx"), idx_bytes({2}, std::string{1, 2}));
  write(tmp("img3.idx"), idx_bytes({3, 1, 1}, std::string{1, 2, 3}));
  CHECK_THAT(error_of([&] { data::read_idx_pair(tmp("img3.idx"), tmp("lbl2.idx")); }),
             Catch::Contains("3 images") && Catch::Contains("2 labels"));
}

TEST_CASE("a missing data set names where it looked and how to install it", "[data]") {
  std::string msg = error_of([] { data::mnist(data::Split::Train, "/nonexistent-dgm-dir"); });
  CHECK_THAT(msg, Catch::Contains("/nonexistent-dgm-dir") && Catch::Contains("train-images-idx3-ubyte"));
  CHECK_THAT(msg, Catch::Contains("--data"));
}

TEST_CASE("the synthetic glyphs in place of missing digits are said on stderr, once per folder", "[data][digits]") {
  // from an empty folder, so that neither ./data nor $DGM_DATA holds the digits
  struct Elsewhere {
    std::filesystem::path before = std::filesystem::current_path();
    std::string env = std::getenv("DGM_DATA") ? std::getenv("DGM_DATA") : "";
    Elsewhere() {
      const std::filesystem::path empty = temp_path("dgm-no-digits", "");
      std::filesystem::create_directories(empty);
      std::filesystem::current_path(empty);
      unsetenv("DGM_DATA");
    }
    ~Elsewhere() {
      std::filesystem::current_path(before);
      if (!env.empty()) setenv("DGM_DATA", env.c_str(), 1);
    }
  } elsewhere;
  std::ostringstream caught;
  std::streambuf* saved = std::cerr.rdbuf(caught.rdbuf());
  bool synthetic = false;
  const data::ImageSet a = data::digits_or_synthetic(data::Split::Train, "/nonexistent-dgm-digits-a", &synthetic);
  data::digits_or_synthetic(data::Split::Test, "/nonexistent-dgm-digits-a", nullptr);
  const std::string once = caught.str();
  data::digits_or_synthetic(data::Split::Test, "/nonexistent-dgm-digits-b", nullptr);
  const std::string twice = caught.str();
  std::cerr.rdbuf(saved);
  CHECK(synthetic);
  CHECK(a.size() > 0);
  CHECK_THAT(once, Catch::Contains("synthetic 8x8 glyphs") && Catch::Contains("/nonexistent-dgm-digits-a"));
  CHECK(once.find("synthetic", once.find("synthetic") + 1) == std::string::npos);  // the same folder: said once
  CHECK_THAT(twice.substr(once.size()), Catch::Contains("/nonexistent-dgm-digits-b"));
}

TEST_CASE("digits CSV: parsing and its errors", "[data][digits]") {
  std::string good;
  for (int r = 0; r < 2; ++r) {
    for (int i = 0; i < 64; ++i) good += std::to_string((i + r) % 17) + ",";
    good += std::to_string(r + 3) + "\n";
  }
  data::ImageSet s = data::parse_digits_csv(good, "tiny.csv");
  CHECK(s.images.shape() == Shape{2, 1, 8, 8});
  CHECK(s.images.at(16) == Approx(16 / 16.0));
  CHECK(s.labels.to_vector() == std::vector<double>{3, 4});
  CHECK(s.levels == 17);
  CHECK_THAT(error_of([] { data::parse_digits_csv("1,2,3\n", "short.csv"); }),
             Catch::Contains("short.csv") && Catch::Contains("line 1") && Catch::Contains("3 fields"));
  std::string bad = good;
  bad[2] = 'x';  // "0,x,..." on line 1
  CHECK_THAT(error_of([&] { data::parse_digits_csv(bad, "bad.csv"); }),
             Catch::Contains("line 1, field 2") && Catch::Contains("byte offset 2"));
  std::string big = "17," + good.substr(2);
  CHECK_THAT(error_of([&] { data::parse_digits_csv(big, "big.csv"); }), Catch::Contains("outside 0..16"));
  CHECK_THAT(error_of([] { data::parse_digits_csv("", "empty.csv"); }), Catch::Contains("no rows"));
}

TEST_CASE("toys: shapes, names, densities that integrate to one", "[data][toy]") {
  Generator g(1);
  for (data::Toy t : data::all_toys()) {
    INFO(data::toy_name(t));
    Tensor x = data::sample_toy(t, 100, g);
    CHECK(x.shape() == Shape{100, 2});
    CHECK(data::toy_from_name(data::toy_name(t)) == t);
    if (!data::toy_has_density(t)) continue;
    const int64_t m = 400;
    const double h = 10.0 / m;
    Tensor pts = Tensor::empty({m * m, 2}, DType::Float64);
    for (int64_t i = 0; i < m * m; ++i) {
      pts.data<double>()[2 * i] = -5 + (double(i / m) + 0.5) * h;
      pts.data<double>()[2 * i + 1] = -5 + (double(i % m) + 0.5) * h;
    }
    Tensor lp = data::toy_log_prob(t, pts);
    double total = 0;
    for (int64_t i = 0; i < lp.numel(); ++i) total += std::exp(lp.at(i));
    CHECK(total * h * h == Approx(1.0).margin(2e-3));
    // samples lie where the density is positive
    Tensor lps = data::toy_log_prob(t, x);
    for (int64_t i = 0; i < 100; ++i) CHECK(std::isfinite(lps.at(i)));
  }
  CHECK_THAT(error_of([] { data::toy_from_name("spiral"); }), Catch::Contains("two_moons") && Catch::Contains("checkerboard"));
  CHECK_THAT(error_of([] { data::toy_log_prob(data::Toy::SwissRoll, Tensor::zeros({1, 2})); }),
             Catch::Contains("no closed-form density"));
}

TEST_CASE("transforms: logit and its log-determinant, dequantization, binarization", "[data][transform]") {
  Generator g(2);
  Tensor y = g.uniform({4, 3}, 0, 1, DType::Float64);
  auto r = data::logit_transform(y, 0.05);
  for (int64_t n = 0; n < 4; ++n) {
    double want = 0;
    for (int64_t i = 0; i < 3; ++i) {
      const double s = 0.05 + 0.9 * y.at(n * 3 + i);
      want += std::log(0.9 / (s * (1 - s)));  // d/dy logit(s) = 0.9 / (s (1 - s))
    }
    CHECK(r.log_det.at(n) == Approx(want).epsilon(1e-12));
  }
  Tensor back = data::logit_inverse(r.z);
  for (int64_t i = 0; i < 12; ++i) CHECK(back.at(i) == Approx(y.at(i)).epsilon(1e-12));
  Tensor q = Tensor::from_vector(std::vector<float>{0, 0.5, 1}, {3});
  for (int rep = 0; rep < 100; ++rep) {
    Tensor d = data::dequantize_uniform(q, 3, g);  // levels 0, 1/2, 1 -> bins [0,1/3), [1/3,2/3), [2/3,1)
    CHECK((d.at(0) >= 0 && d.at(0) < 1 / 3.0));
    CHECK((d.at(1) >= 1 / 3.0 && d.at(1) < 2 / 3.0));
    CHECK((d.at(2) >= 2 / 3.0 && d.at(2) < 1.0));
  }
  CHECK(data::binarize_threshold(q, 0.5).to_vector() == std::vector<double>{0, 0, 1});
  Tensor u = g.uniform({50});
  // static: one fixed draw per seed (another seed gives other bits); its mean is the image's
  Tensor big = Tensor::full({20000}, 0.3);
  CHECK(mean(data::binarize_static(big, 3)).item() == Approx(0.3).margin(4 * std::sqrt(0.21 / 20000)));
  CHECK(mean(abs(data::binarize_static(big, 3) - data::binarize_static(big, 4))).item() ==
        Approx(0.42).margin(4 * std::sqrt(0.42 * 0.58 / 20000)));  // two independent draws disagree w.p. 2p(1-p)
  CHECK(data::scale_to_unit(Tensor::from_vector(std::vector<float>{-1, 1}, {2}), -1, 1).to_vector() ==
        std::vector<double>{0, 1});
}

TEST_CASE("Batches cover every index once per epoch", "[data]") {
  Generator g(3);
  data::Batches b(10, 4);
  auto e = b.epoch(g);
  CHECK(e.size() == 3);
  CHECK(b.batches_per_epoch() == 3);
  std::multiset<double> seen;
  for (auto& idx : e)
    for (double v : idx.to_vector()) seen.insert(v);
  CHECK(seen.size() == 10);
  CHECK(std::set<double>(seen.begin(), seen.end()).size() == 10);
  CHECK(e[2].numel() == 2);
  data::Batches d(10, 4, true, /*drop_last=*/true);
  CHECK(d.epoch(g).size() == 2);
  CHECK(d.batches_per_epoch() == 2);
  data::Batches inorder(5, 2, /*shuffle=*/false);
  CHECK(inorder.epoch(g)[1].to_vector() == std::vector<double>{2, 3});
}

TEST_CASE("PNG grids and plots decode to the expected size", "[data][png]") {
  Generator g(4);
  Tensor imgs = g.uniform({10, 1, 28, 28});
  const std::string p = tmp("grid.png");
  image::save_image_grid(p, imgs, 4, 2, 1);
  int w = 0, h = 0, c = 0;
  REQUIRE(stbi_info(p.c_str(), &w, &h, &c) == 1);
  CHECK(w == 4 * (56 + 1) + 1);
  CHECK(h == 3 * (56 + 1) + 1);
  Tensor rgb = g.uniform({3, 3, 8, 8});
  image::save_image_grid(tmp("rgb.png"), rgb, 0, 3, 0);
  REQUIRE(stbi_info(tmp("rgb.png").c_str(), &w, &h, &c) == 1);
  CHECK(w == 2 * 24);
  CHECK(h == 2 * 24);
  CHECK_THAT(error_of([&] { image::image_grid(g.uniform({2, 2, 4, 4})); }), Catch::Contains("[N, 1 or 3, H, W]"));
  // a plot: drawn when gnuplot is installed
  {
    std::ofstream csv(tmp("curve.csv"));
    csv << "step,loss\n1,3\n2,2\n3,1.5\n";
  }
  if (plot::gnuplot_available()) {
    REQUIRE(plot::line_plot(tmp("curve.csv"), tmp("curve.png"), "t", "step", "loss", 1, {{2, "loss"}}));
    REQUIRE(stbi_info(tmp("curve.png").c_str(), &w, &h, &c) == 1);
    CHECK(w == 800);
    CHECK(h == 560);
    // a series with a point missing ("nan", as a curve's validation between validations) is drawn,
    // and its script tells gnuplot to join the points either side rather than break the line there
    {
      std::ofstream csv(tmp("gaps.csv"));
      csv << "size,a,b\n100,0.5,nan\n1000,0.6,0.7\n10000,0.62,nan\n60000,0.63,0.84\n";
    }
    REQUIRE(plot::line_plot(tmp("gaps.csv"), tmp("gaps.png"), "t", "size", "accuracy", 1, {{2, "a"}, {3, "b"}}, false, true));
    CHECK_THAT(read_text(tmp("gaps.png") + ".gp"), Catch::Contains("set datafile missing \"nan\""));
  } else {
    CHECK_FALSE(plot::line_plot(tmp("curve.csv"), tmp("curve.png"), "t", "step", "loss", 1, {{2, "loss"}}));
  }
}

TEST_CASE("mode coverage: the toys' own samples cover every mode, 1 - exp(-9/2) of them within 3 sigma", "[data][toy]") {
  Generator g(4);
  for (data::Toy t : {data::Toy::EightGaussians, data::Toy::Grid25}) {
    INFO(data::toy_name(t));
    const data::Modes m = data::toy_modes(t);
    const int64_t n = 20000;
    const data::Coverage c = data::mode_coverage(m, data::sample_toy(t, n, g), 0.5 / static_cast<double>(m.centres.size(0)));
    CHECK(c.modes == m.centres.size(0));
    CHECK(c.modes_covered == c.modes);
    // |x - m|^2 / sigma^2 is chi-square with 2 degrees of freedom: P(<= 9) = 1 - exp(-4.5)
    const double p = 1 - std::exp(-4.5);
    CHECK(std::abs(c.high_quality_share - p) < 4 * std::sqrt(p * (1 - p) / n));
  }
  // all samples on one mode: one covered
  const data::Modes ring = data::toy_modes(data::Toy::EightGaussians);
  const data::Coverage one = data::mode_coverage(ring, Tensor::full({50, 2}, 0.0) + Tensor::from_vector(std::vector<double>{2, 0}, {1, 2}).to(DType::Float32), 0.05);
  CHECK(one.modes_covered == 1);
  CHECK(one.high_quality_share == Approx(1.0));
  CHECK_THAT(error_of([] { data::toy_modes(data::Toy::TwoMoons); }), Catch::Contains("two_moons"));
}

TEST_CASE("two moons: sample_toy draws each point independently, two_moons lays make_moons out evenly", "[data][toy]") {
  Generator g(3);
  const int64_t n = 2000, q = n / 4;
  // Each quarter of an independent sample holds both moons: its mean is the mixture's,
  // x: (E[cos] + E[1 - cos]) / 2 = 0.5, y: (2/pi + 0.5 - 2/pi) / 2 = 0.25, to 5 standard errors.
  // (two_moons() puts the upper moon first: its first quarter's mean y is 2/pi.)
  const Tensor x = data::sample_toy(data::Toy::TwoMoons, n, g);
  for (int64_t k = 0; k < 4; ++k) {
    double mx = 0, my = 0, vx = 0, vy = 0;
    for (int64_t i = k * q; i < (k + 1) * q; ++i) mx += x.at(2 * i) / q, my += x.at(2 * i + 1) / q;
    for (int64_t i = k * q; i < (k + 1) * q; ++i) vx += std::pow(x.at(2 * i) - mx, 2) / (q - 1), vy += std::pow(x.at(2 * i + 1) - my, 2) / (q - 1);
    INFO("quarter " << k << ": mean (" << mx << ", " << my << ")");
    CHECK(std::abs(mx - 0.5) <= 5 * std::sqrt(vx / q));
    CHECK(std::abs(my - 0.25) <= 5 * std::sqrt(vy / q));
  }
  const Tensor even = data::two_moons(n, 0.1, g).x;
  double first_y = 0;
  for (int64_t i = 0; i < q; ++i) first_y += even.at(2 * i + 1) / q;
  CHECK(first_y == Approx(2 / M_PI).margin(0.02));
  // Why it matters for sample quality: two evenly spaced sets are more alike than two samples
  // (the energy distance between them is far smaller), so they are no reference for a sampler.
  double independent = 0, evenly = 0;
  for (int r = 0; r < 4; ++r) {
    independent += models::energy_distance(data::sample_toy(data::Toy::TwoMoons, 600, g), data::sample_toy(data::Toy::TwoMoons, 600, g));
    evenly += models::energy_distance(data::two_moons(600, 0.1, g).x, data::two_moons(600, 0.1, g).x);
  }
  INFO("mean energy distance: independent samples " << independent / 4 << ", evenly spaced sets " << evenly / 4);
  CHECK(independent > 2 * evenly);
}
