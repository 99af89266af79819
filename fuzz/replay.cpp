// fuzz/replay.cpp — runs a fuzz target over its committed corpus, without libFuzzer.
//
// libFuzzer needs clang's runtime, which cannot be mixed with g++'s sanitizers, so the sanitizer
// build (make test SANITIZE=1) links each target (fuzz/fuzz_*.cpp) with this main instead: every
// input of fuzz/corpus/<target>/ is copied into a heap block of exactly its size (so a read one
// byte past the input is a heap-buffer-overflow) and handed to LLVMFuzzerTestOneInput.
//
//   fuzz_replay_<target> DIR...   exits 0 after every input, 1 if a folder has none
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
    return 2;
  }
  for (int a = 1; a < argc; ++a) {
    std::vector<fs::path> inputs;
    for (const auto& e : fs::directory_iterator(argv[a]))
      if (e.is_regular_file()) inputs.push_back(e.path());
    std::sort(inputs.begin(), inputs.end());
    if (inputs.empty()) {
      std::fprintf(stderr, "%s: no inputs in %s\n", argv[0], argv[a]);
      return 1;
    }
    size_t bytes = 0;
    for (const auto& path : inputs) {
      std::ifstream in(path, std::ios::binary);
      const std::vector<char> content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto block = std::make_unique<uint8_t[]>(content.size());  // exactly the input's size
      std::copy(content.begin(), content.end(), block.get());
      std::fprintf(stderr, "%s\n", path.filename().c_str());  // the last name printed is the culprit of a crash
      LLVMFuzzerTestOneInput(block.get(), content.size());
      bytes += content.size();
    }
    std::printf("replayed %zu inputs (%zu bytes) from %s\n", inputs.size(), bytes, argv[a]);
  }
  return 0;
}
