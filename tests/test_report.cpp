// tests/test_report.cpp — the report page every lesson writes (lessons/common/report.h).
#include <stb_image.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "helpers.h"
#include "lessons/common/lesson.h"
#include "models/toolkit/image.h"

using namespace dgm;
using test::read_text;
namespace fs = std::filesystem;

namespace {

// Every src="..." and href="..." of a page.
std::vector<std::string> links_of(const std::string& html) {
  std::vector<std::string> links;
  const std::regex link("(?:src|href)=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), link); it != std::sregex_iterator(); ++it)
    links.push_back((*it)[1].str());
  return links;
}

// A lesson named "fake" run into a fresh `out` (no other flag) with `steps`; its exit code.
int run_lesson(const fs::path& out, const std::string& description, const std::function<void(lesson::Lesson&)>& steps) {
  fs::remove_all(out);
  std::vector<std::string> args = {"lesson_fake", "--out", out.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  lesson::Lesson L("fake", description);
  return L.run(static_cast<int>(argv.size()), argv.data(), [&] { steps(L); });
}

// A tiny lesson run into <tmp>/runs/<name>: two checks (one failing when
// `fail`), a metric, two pictures and a CSV. Returns its exit code.
int run_fake_lesson(const fs::path& out, bool fail) {
  std::vector<std::string> args = {"lesson_fake", "--quick", "--out", out.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  lesson::Lesson L("fake", "a lesson <with> markup & quotes");
  return L.run(static_cast<int>(argv.size()), argv.data(), [&] {
    L.check_close("one plus one", 2.0, 2.0, 0.0);
    L.check_le("a bound that " + std::string(fail ? "fails" : "holds"), fail ? 2.0 : 1.0, 1.5);
    L.metric("test_nll_nats", 81.25);
    Generator g(0);
    image::save_image_grid(L.path("first.png"), g.uniform({4, 1, 8, 8}), 2, 4, 1);
    image::save_image_grid(L.path("second picture.png"), g.uniform({4, 1, 8, 8}), 2, 4, 1);
    L.write_csv("curve.csv", {"x", "y"}, {{0, 1}, {1, 2}});
    std::cout << "a line of the log <b>\n";
    std::cout << "\r[#...] 10%\r[##..] 50%\r[####] done\n";  // a progress bar redrawn on a terminal
  });
}

}  // namespace

TEST_CASE("report page: every link points at a file that exists, checks are coloured, pictures in order") {
  const fs::path runs = fs::path(test::temp_path("dgm-report", "")) / "runs";
  fs::remove_all(runs);
  fs::create_directories(runs / "fake");
  {  // a leftover of an earlier run: not listed
    std::ofstream(runs / "fake" / "stale.png") << "old";
  }
  REQUIRE(run_fake_lesson(runs / "fake", /*fail=*/true) == 1);
  const std::string page = read_text(runs / "fake" / "index.html");
  REQUIRE(!page.empty());
  for (const auto& link : links_of(page)) {
    INFO(link);
    std::string file = std::regex_replace(link, std::regex("%20"), " ");
    CHECK(fs::is_regular_file(runs / "fake" / file));
  }
  CHECK(page.find("stale.png") == std::string::npos);
  const auto first = page.find("src=\"first.png\""), second = page.find("src=\"second%20picture.png\"");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(first < second);
  CHECK(page.find("href=\"curve.csv\"") != std::string::npos);
  CHECK(page.find("<li class=\"pass\">&#10003; one plus one") != std::string::npos);
  CHECK(page.find("<li class=\"fail\">&#10007; a bound that fails") != std::string::npos);
  CHECK(page.find("1 of 2 checks passed") != std::string::npos);
  CHECK(page.find("test_nll_nats</td><td class=\"num\">81.25") != std::string::npos);
  CHECK(page.find("a lesson &lt;with&gt; markup &amp; quotes") != std::string::npos);
  CHECK(page.find("a line of the log &lt;b&gt;") != std::string::npos);  // the log, escaped
  CHECK(page.find("http") == std::string::npos);                          // nothing from the network
  CHECK(page.find("[####] done") != std::string::npos);                   // a redrawn line as last shown
  CHECK(page.find("50%") == std::string::npos);

  const std::string index = read_text(runs / "index.html");
  const auto links = links_of(index);
  REQUIRE(links.size() == 1);
  CHECK(links[0] == "fake/index.html");
  CHECK(index.find("1 of 2 passed") != std::string::npos);
}

TEST_CASE("report page: an error that stops a lesson is on its page") {
  const fs::path out = fs::path(test::temp_path("dgm-report", "")) / "error-run";
  CHECK(run_lesson(out, "stops", [](lesson::Lesson&) { throw Error("data file 'x' is truncated"); }) == 1);
  const std::string page = read_text(out / "index.html");
  CHECK(page.find("the lesson stopped with an error") != std::string::npos);
  CHECK(page.find("data file &#39;x&#39; is truncated") != std::string::npos);
}

TEST_CASE("report page: headless Chromium renders it, and not blank") {
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
  std::string chromium;
  for (const char* c : candidates)
    if (fs::exists(c)) chromium = c;
  if (chromium.empty()) {
    // CI sets DGM_REQUIRE_CHROMIUM=1 (.ci/run): there a missing browser is a failure, not a skip.
    const char* required = std::getenv("DGM_REQUIRE_CHROMIUM");
    if (required && std::string(required) == "1")
      FAIL("Chromium is required (DGM_REQUIRE_CHROMIUM=1) but neither /usr/bin/chromium nor /usr/bin/chromium-browser exists");
    WARN("skipped: Chromium is not installed (apt-get install chromium renders the page in this test)");
    return;
  }
  const fs::path runs = fs::path(test::temp_path("dgm-report-render", "")) / "runs";
  fs::remove_all(runs);
  run_fake_lesson(runs / "fake", /*fail=*/false);
  const fs::path shot = runs / "shot.png", profile = runs / "profile";
  const std::string command = chromium +
                              " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
                              " --disable-component-update --disable-sync --user-data-dir=" +
                              profile.string() + " --window-size=900,700 --screenshot=" + shot.string() + " file://" +
                              fs::absolute(runs / "fake" / "index.html").string() + " >/dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(shot.string().c_str(), &w, &h, &c, 3);
  REQUIRE(px != nullptr);
  CHECK(w == 900);
  CHECK(h == 700);
  std::set<int> colours;
  for (int i = 0; i < w * h; ++i) colours.insert(px[3 * i] << 16 | px[3 * i + 1] << 8 | px[3 * i + 2]);
  stbi_image_free(px);
  INFO("distinct colours in the screenshot: " << colours.size());
  CHECK(colours.size() > 50);  // text, the green summary and the two noise pictures; a blank page has 1
}

TEST_CASE("report page: a metric the frame writes itself (train_seconds) is an error, not silently replaced") {
  const fs::path out = fs::path(test::temp_path("dgm-report", "")) / "reserved-metric";
  CHECK(run_lesson(out, "sets train_seconds", [](lesson::Lesson& L) { L.metric("train_seconds", 12.5); }) == 1);
  const std::string page = read_text(out / "index.html");
  CHECK(page.find("written by the lesson frame") != std::string::npos);
}
