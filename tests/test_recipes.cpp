// tests/test_recipes.cpp — the recipe table (models/recipes.h): every setup builds, quick
// and full, into a model whose own config is the recipe's; flags change recipes; names are unique.
#include <nlohmann/json.hpp>
#include <set>

#include "helpers.h"
#include "models/diffusion.h"
#include "models/recipes.h"
#include "models/registry.h"

using namespace dgm;

TEST_CASE("recipes: every recipe builds, quick and full, into a model whose config_json is the recipe's", "[recipes]") {
  std::set<std::string> tags;
  const std::set<std::string> data_sets = {"digits17",           "digits_binarized",   "digits_thresholded", "fashion_binarized",
                                           "fashion_dequantized", "fashion_thresholded", "words",              "none"};
  for (const models::Recipe& r : models::recipes()) {
    INFO(r.tag);
    CHECK(tags.insert(r.tag).second);  // unique
    CHECK(data_sets.count(r.data) == 1);
    CHECK(r.full.epochs >= 1);
    CHECK(r.quick.epochs >= 1);
    CHECK(r.full.lr > 0);
    for (bool quick : {true, false}) {
      Generator g(3);
      if (r.model == "dcgan") {  // a GAN: its generator's config is the recipe's, with the class named
        const models::gan::GAN game = models::build_gan(r, quick, g);
        nlohmann::json mine = nlohmann::json::parse(game.generator->config_json());
        CHECK(mine["model"] == "ConvGenerator");
        mine.erase("model");
        CHECK(mine == nlohmann::json::parse(r.config_for(quick)));
        CHECK(test::error_of([&] { models::build(r, quick, g); }).find("build_gan") != std::string::npos);
        continue;
      }
      if (r.model == "ddpm2d") {  // bench_train's 2-D DDPM: no likelihood, its own builder
        CHECK(nlohmann::json::parse(models::build_ddpm2d(r, g)->config_json()) == nlohmann::json::parse(r.config_for(quick)));
        CHECK(test::error_of([&] { models::build(r, quick, g); }).find("build_ddpm2d") != std::string::npos);
        continue;
      }
      auto m = models::build(r, quick, g);
      REQUIRE(m);
      // the model's own account of its arguments: the recipe's fields, each with the recipe's value
      // (a model may add fields the recipe leaves to it, such as MADE's drawn ordering)
      const nlohmann::json mine = nlohmann::json::parse(m->config_json()), want = nlohmann::json::parse(r.config_for(quick));
      for (auto it = want.begin(); it != want.end(); ++it) {
        INFO(it.key());
        REQUIRE(mine.contains(it.key()));
        CHECK(mine[it.key()] == it.value());
      }
      CHECK(!r.title(quick).empty());
    }
  }
}

TEST_CASE("recipes: a quick run merges its patch; a flag changes both runs' configs", "[recipes]") {
  models::Recipe r = models::recipe("digits_ddpm");
  const nlohmann::json quick = nlohmann::json::parse(r.config_for(true)), full = nlohmann::json::parse(r.config_for(false));
  CHECK(quick["net"]["hidden"] == nlohmann::json({256, 256, 256}));
  CHECK(full["net"]["hidden"] == nlohmann::json({512, 512, 512}));
  CHECK(quick["net"]["embedding"] == 64);  // the rest of the nested object survives the patch
  CHECK(r.title(true) == "DDPM, T = 50, eps-MLP 256 x 3");
  CHECK(r.title(false) == "DDPM, T = 50, eps-MLP 512 x 3");

  r.set("net.hidden", "[64, 64]");
  CHECK(nlohmann::json::parse(r.config_for(true))["net"]["hidden"] == nlohmann::json({64, 64}));
  CHECK(nlohmann::json::parse(r.config_for(false))["net"]["hidden"] == nlohmann::json({64, 64}));
  CHECK(models::recipe("digits_ddpm").config_for(false) != r.config_for(false));  // the table itself is unchanged

  models::Recipe f = models::recipe("fashion_flow");
  f.set("hidden", "48");
  CHECK(models::config_differences(models::recipe("fashion_flow").config, f.config) == "hidden: 32 vs 48");
  Generator g(0);
  CHECK(nlohmann::json::parse(models::build(f, false, g)->config_json())["hidden"] == 48);
  const std::string typo = test::error_of([&] { f.set("widht", "3"); });
  CHECK(typo.find("recipe fashion_flow") != std::string::npos);
  CHECK(typo.find("no field 'widht'") != std::string::npos);
  CHECK(test::error_of([&] { f.set("hidden", "forty"); }).find("not a JSON value") != std::string::npos);
}

TEST_CASE("recipes: an unknown tag names the known ones; the harness's tables are the lessons' recipes", "[recipes]") {
  const std::string unknown = test::error_of([] { models::recipe("digits_mdae"); });
  for (const char* part : {"no recipe 'digits_mdae'", "digits_made", "fashion_flow"}) CHECK(unknown.find(part) != std::string::npos);
  const auto digits = models::recipes_on("digits17");
  REQUIRE(digits.size() >= 5);
  CHECK(digits.front().tag == "digits_made");
  for (const auto& r : digits) CHECK(!r.lesson.empty());
  CHECK(models::recipe("digits_made").lesson_checkpoint("runs") == "runs/autoregressive/digits_made.safetensors");
  CHECK(models::recipe("bench_made").lesson_checkpoint("runs").empty());
}

TEST_CASE("recipes: a GAN's loss comes from its training settings; an unknown one names the recipe", "[recipes]") {
  models::Recipe r = models::recipe("fashion_dcgan");
  CHECK(models::gan_options(r, false).loss == models::gan::loss_from_name(r.full.gan_loss));
  CHECK(models::gan_options(models::recipe("fashion_cdcgan"), false).loss == models::gan::Loss::NonSaturating);  // "": the default
  r.full.gan_loss = "hinj";
  CHECK_THAT(test::error_of([&] { models::gan_options(r, false); }), Catch::Contains("recipe fashion_dcgan") && Catch::Contains("'hinj'"));
}
