// dgm/models/toolkit/datasets.cpp — IDX and digits readers.
#include "models/toolkit/datasets.h"

#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>
#include <limits>

#include "autograd/ops.h"
#include "autograd/random.h"

namespace dgm::data {

namespace fs = std::filesystem;

// ----------------------------------------------------------------- files
std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  if (!fs::exists(path)) throw Error("cannot open '" + path + "': no such file");
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files unchanged
  if (!f) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      throw Error("'" + path + "' is corrupt: gzip data fails after " + std::to_string(out.size()) +
                  " decompressed bytes (" + msg + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  // A truncated gzip stream reads as a short file without an error from
  // gzread in some zlib versions; gzclose reports it.
  int rc = gzclose(f);
  if (rc != Z_OK && rc != Z_BUF_ERROR)
    throw Error("'" + path + "' is corrupt: gzip stream ends badly after " + std::to_string(out.size()) + " bytes");
  if (rc == Z_BUF_ERROR)
    throw Error("'" + path + "' is truncated: the gzip stream stops after " + std::to_string(out.size()) +
                " decompressed bytes");
  return out;
}

// ----------------------------------------------------------------- IDX
// Layout: 2 zero bytes, a type byte (0x08 = unsigned byte), the number of
// dimensions, then each dimension as a big-endian uint32, then the data.
IdxArray parse_idx(const uint8_t* b, size_t size, const std::string& name) {
  auto fail = [&](size_t offset, const std::string& what) {
    return Error("'" + name + "' is not a valid IDX file: " + what + " (byte offset " + std::to_string(offset) + ")");
  };
  if (size < 4) throw fail(size, "only " + std::to_string(size) + " bytes, shorter than the 4-byte magic number");
  if (b[0] != 0 || b[1] != 0) throw fail(0, "the magic number must start with two zero bytes");
  if (b[2] != 0x08)
    throw fail(2, "data type 0x" + std::to_string(static_cast<int>(b[2])) + " is not 0x08 (unsigned byte)");
  const size_t nd = b[3];
  if (nd == 0 || nd > 4) throw fail(3, std::to_string(nd) + " dimensions (expected 1 to 4)");
  if (size < 4 + 4 * nd) throw fail(size, "the header needs " + std::to_string(4 + 4 * nd) + " bytes, the file has " + std::to_string(size));
  IdxArray a;
  uint64_t total = 1;
  for (size_t i = 0; i < nd; ++i) {
    const uint8_t* p = b + 4 + 4 * i;
    const uint64_t d = (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | uint64_t(p[3]);
    if (d == 0) throw fail(4 + 4 * i, "dimension " + std::to_string(i) + " is 0");
    total *= d;
    if (total > (uint64_t(1) << 34)) throw fail(4 + 4 * i, "the dimensions claim more than 16 GiB");
    a.dims.push_back(static_cast<int64_t>(d));
  }
  const size_t header = 4 + 4 * nd;
  if (size - header < total)
    throw fail(size, "truncated: the header promises " + std::to_string(total) + " data bytes, the file has " +
                         std::to_string(size - header));
  if (size - header > total)
    throw fail(header + total, std::to_string(size - header - total) + " bytes of trailing data after the " +
                                   std::to_string(total) + " promised");
  a.values.assign(b + header, b + header + total);
  return a;
}

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_maybe_gzip(path);
  return parse_idx(bytes.data(), bytes.size(), path);
}

ImageSet ImageSet::slice(int64_t begin, int64_t end) const {
  ImageSet s;
  s.images = dgm::slice(images, 0, begin, end);
  s.labels = dgm::slice(labels, 0, begin, end);
  s.levels = levels;
  return s;
}

ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path, int64_t limit) {
  IdxArray im = read_idx(images_path);
  IdxArray lb = read_idx(labels_path);
  if (im.dims.size() != 3)
    throw Error("'" + images_path + "': images need 3 dimensions [N, H, W], the file has " + std::to_string(im.dims.size()));
  if (lb.dims.size() != 1)
    throw Error("'" + labels_path + "': labels need 1 dimension [N], the file has " + std::to_string(lb.dims.size()));
  if (im.dims[0] != lb.dims[0])
    throw Error("'" + images_path + "' holds " + std::to_string(im.dims[0]) + " images but '" + labels_path +
                "' holds " + std::to_string(lb.dims[0]) + " labels");
  const int64_t n = limit > 0 ? std::min(limit, im.dims[0]) : im.dims[0], h = im.dims[1], w = im.dims[2];
  ImageSet s;
  s.images = Tensor::empty({n, 1, h, w});
  s.labels = Tensor::empty({n}, DType::Int64);
  float* pi = s.images.data<float>();
  for (int64_t i = 0; i < n * h * w; ++i) pi[i] = static_cast<float>(im.values[static_cast<size_t>(i)]) / 255.f;
  int64_t* pl = s.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) pl[i] = lb.values[static_cast<size_t>(i)];
  s.levels = 256;
  return s;
}

std::vector<std::string> search_path(const std::string& dir, const std::string& system_dir) {
  std::vector<std::string> out;
  if (!dir.empty()) out.push_back(dir);
  if (const char* env = std::getenv("DGM_DATA"); env && *env) out.push_back(env);
  out.push_back("data");
  if (!system_dir.empty()) out.push_back(system_dir);
  return out;
}

namespace {
// The first folder holding `file` (or `file` + ".gz"); throws with every folder tried.
std::string find_file(const std::vector<std::string>& dirs, const std::string& file, const std::string& what,
                      const std::string& install) {
  for (const auto& d : dirs)
    for (const std::string& f : {file, file + ".gz"}) {
      fs::path p = fs::path(d) / f;
      if (fs::exists(p)) return p.string();
    }
  std::string tried;
  for (const auto& d : dirs) tried += (tried.empty() ? "" : ", ") + d;
  throw DataNotFound(what + ": '" + file + "[.gz]' not found in " + tried + ". " + install);
}

ImageSet idx_dataset(Split split, const std::string& dir, int64_t limit, const std::string& what,
                     const std::string& system_dir, const std::string& install) {
  if (split == Split::Validation)
    throw Error(what + " has no validation file; take one from the training set with ImageSet::slice");
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  auto dirs = search_path(dir, system_dir);
  const std::string images = find_file(dirs, prefix + "-images-idx3-ubyte", what, install);
  const std::string labels = find_file(dirs, prefix + "-labels-idx1-ubyte", what, install);
  return read_idx_pair(images, labels, limit);
}
}  // namespace

ImageSet fashion_mnist(Split split, const std::string& dir, int64_t limit) {
  constexpr int64_t kTrain = 59000;  // of the training file's 60,000; the rest is the validation split
  auto read = [&](Split file, int64_t n) {
    return idx_dataset(file, dir, n, "Fashion-MNIST", "/usr/share/datasets/fashion-mnist",
                       "Install it with: sudo apt-get install dataset-fashion-mnist (or pass --data DIR)");
  };
  auto first = [&](const ImageSet& s) { return limit > 0 && limit < s.size() ? s.slice(0, limit) : s; };
  switch (split) {
    case Split::Train: {
      const ImageSet s = read(Split::Train, limit > 0 ? std::min(limit, kTrain) : 0);
      return s.size() > kTrain ? s.slice(0, kTrain) : s;
    }
    case Split::Validation: {
      const ImageSet all = read(Split::Train, 0);
      if (all.size() <= kTrain) throw Error("Fashion-MNIST: the training file holds " + std::to_string(all.size()) + " images, fewer than the " +
                                            std::to_string(kTrain + 1) + " its validation split needs");
      return first(all.slice(kTrain, all.size()));
    }
    case Split::Test: return read(Split::Test, limit);
  }
  return {};
}

ImageSet mnist(Split split, const std::string& dir, int64_t limit) {
  return idx_dataset(split, dir, limit, "MNIST", "",
                     "Put the four MNIST IDX files there, or pass --data DIR (see docs/chapters/data.md)");
}

// ----------------------------------------------------------------- digits
ImageSet parse_digits_csv(const std::string& text, const std::string& name) {
  std::vector<float> pixels;
  std::vector<int64_t> labels;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string row = text.substr(pos, end - pos);
    const size_t row_offset = pos;
    pos = end + 1;
    if (!row.empty() && row.back() == '\r') row.pop_back();
    if (row.empty()) continue;
    std::vector<int64_t> vals;
    size_t p = 0;
    while (p <= row.size()) {
      size_t q = row.find(',', p);
      if (q == std::string::npos) q = row.size();
      std::string field = row.substr(p, q - p);
      // values are written as integers or as floats like "0.0"
      char* stop = nullptr;
      errno = 0;
      double v = field.empty() ? NAN : std::strtod(field.c_str(), &stop);
      if (field.empty() || errno != 0 || (stop && *stop != '\0') || !(std::abs(v) <= 1e9) || v != std::floor(v))
        throw Error("'" + name + "': line " + std::to_string(line) + ", field " + std::to_string(vals.size() + 1) +
                    " ('" + field.substr(0, 20) + "', byte offset " + std::to_string(row_offset + p) +
                    ") is not a whole number");
      vals.push_back(static_cast<int64_t>(v));
      p = q + 1;
    }
    if (vals.size() != 65)
      throw Error("'" + name + "': line " + std::to_string(line) + " (byte offset " + std::to_string(row_offset) +
                  ") has " + std::to_string(vals.size()) + " fields, expected 65 (64 pixels and a label)");
    for (int i = 0; i < 64; ++i) {
      if (vals[i] < 0 || vals[i] > 16)
        throw Error("'" + name + "': line " + std::to_string(line) + ", pixel " + std::to_string(i) + " is " +
                    std::to_string(vals[i]) + ", outside 0..16");
      pixels.push_back(static_cast<float>(vals[i]) / 16.f);
    }
    if (vals[64] < 0 || vals[64] > 9)
      throw Error("'" + name + "': line " + std::to_string(line) + ", label " + std::to_string(vals[64]) + " is not a digit");
    labels.push_back(vals[64]);
  }
  if (labels.empty()) throw Error("'" + name + "' holds no rows");
  ImageSet s;
  const int64_t n = static_cast<int64_t>(labels.size());
  s.images = Tensor::from_vector(pixels, {n, 1, 8, 8});
  s.labels = Tensor::from_indices(labels, {n});
  s.levels = 17;
  return s;
}

ImageSet digits(Split split, const std::string& dir) {
  auto dirs = search_path(dir, "");
  const std::string path = find_file(dirs, "digits.csv", "8x8 digits",
                                     "Extract it from Debian's python3-sklearn package with: scripts/get-digits.sh");
  std::vector<uint8_t> bytes = read_maybe_gzip(path);
  ImageSet all = parse_digits_csv(std::string(bytes.begin(), bytes.end()), path);
  if (all.size() != 1797)
    throw Error("'" + path + "' holds " + std::to_string(all.size()) + " digits, expected 1797");
  switch (split) {
    case Split::Train: return all.slice(0, 1000);
    case Split::Validation: return all.slice(1000, 1350);
    case Split::Test: return all.slice(1350, 1797);
  }
  return all;
}

// ----------------------------------------------------------------- words

std::vector<std::string> parse_word_list(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string w = text.substr(begin, end - begin);
    if (!w.empty() && w.back() == '\r') w.pop_back();
    bool letters = !w.empty();
    for (char ch : w) letters = letters && ch >= 'a' && ch <= 'z';
    if (letters) out.push_back(w);
    begin = end + 1;
  }
  return out;
}

Tensor encode_words(const std::vector<std::string>& list, int64_t length) {
  std::vector<float> t(list.size() * static_cast<size_t>(length), 0.0f);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string& w = list[i];
    if (static_cast<int64_t>(w.size()) > length - 1)
      throw Error("encode_words: '" + w + "' has " + std::to_string(w.size()) + " letters; at most " + std::to_string(length - 1) +
                  " fit in " + std::to_string(length) + " tokens with the end");
    for (size_t j = 0; j < w.size(); ++j) {
      if (w[j] < 'a' || w[j] > 'z') throw Error("encode_words: '" + w + "' has a character other than a-z");
      t[i * static_cast<size_t>(length) + j] = static_cast<float>(w[j] - 'a' + 1);
    }
  }
  return Tensor::from_vector(t, {static_cast<int64_t>(list.size()), length});
}

std::string decode_word(const Tensor& tokens, int64_t row) {
  const Tensor r = tokens.to(DType::Float64).contiguous_copy();
  const int64_t L = r.size(1);
  std::string w;
  for (int64_t j = 0; j < L; ++j) {
    const int64_t v = static_cast<int64_t>(std::lround(r.data<double>()[row * L + j]));
    if (v <= 0 || v > 26) break;
    w += static_cast<char>('a' + v - 1);
  }
  return w;
}

WordSet words(Split split, const std::string& dir) {
  const std::string path = find_file(search_path(dir, "/usr/share/dict"), "american-english", "the word list",
                                     "Install it with: sudo apt-get install wamerican (or pass --data DIR)");
  const std::vector<uint8_t> bytes = read_maybe_gzip(path);
  std::vector<std::string> all = parse_word_list(std::string(bytes.begin(), bytes.end()));
  if (all.size() < 100) throw Error("'" + path + "' holds " + std::to_string(all.size()) + " lowercase words; expected a word list (wamerican has 63,875)");
  Generator gen(20261203);  // one fixed shuffle: the split is the same on every machine
  const Tensor order = gen.permutation(static_cast<int64_t>(all.size()));
  const int64_t n = static_cast<int64_t>(all.size()), n_val = n / 20, n_test = n / 20, n_train = n - n_val - n_test;
  const int64_t begin = split == Split::Train ? 0 : split == Split::Validation ? n_train : n_train + n_val;
  const int64_t end = split == Split::Train ? n_train : split == Split::Validation ? n_train + n_val : n;
  WordSet s;
  for (int64_t i = begin; i < end; ++i) s.words.push_back(all[static_cast<size_t>(order.data<int64_t>()[i])]);
  s.tokens = encode_words(s.words);
  return s;
}

ImageSet synthetic_digits(Split split) {
  static const char* kGlyphs[10][7] = {
      {".####.", "#....#", "#...##", "#..#.#", "##...#", "#....#", ".####."},
      {"..##..", ".###..", "..##..", "..##..", "..##..", "..##..", ".####."},
      {".####.", "#....#", ".....#", "...##.", "..#...", ".#....", "######"},
      {".####.", "#....#", ".....#", "..###.", ".....#", "#....#", ".####."},
      {"...##.", "..#.#.", ".#..#.", "#...#.", "######", "....#.", "....#."},
      {"######", "#.....", "#####.", ".....#", ".....#", "#....#", ".####."},
      {"..###.", ".#....", "#.....", "#####.", "#....#", "#....#", ".####."},
      {"######", ".....#", "....#.", "...#..", "..#...", "..#...", "..#..."},
      {".####.", "#....#", "#....#", ".####.", "#....#", "#....#", ".####."},
      {".####.", "#....#", "#....#", ".#####", ".....#", "....#.", ".###.."}};
  const int64_t n = split == Split::Train ? 1000 : split == Split::Validation ? 350 : 447;
  Generator gen(split == Split::Train ? 101 : split == Split::Validation ? 202 : 303);
  ImageSet s;
  s.images = Tensor::zeros({n, 1, 8, 8});
  s.labels = Tensor::empty({n}, DType::Int64);
  s.levels = 17;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = gen.randint(0, 10), dx = gen.randint(0, 3), dy = gen.randint(0, 2);
    const int64_t ink = gen.randint(11, 17), bg = gen.randint(0, 3);
    s.labels.data<int64_t>()[i] = label;
    float* img = s.images.data<float>() + i * 64;
    for (int64_t p = 0; p < 64; ++p) img[p] = static_cast<float>(gen.randint(0, bg + 1)) / 16.f;
    for (int64_t y = 0; y < 7; ++y)
      for (int64_t x = 0; x < 6; ++x)
        if (kGlyphs[label][y][x] == '#' && y + dy < 8 && x + dx < 8)
          img[(y + dy) * 8 + x + dx] = static_cast<float>(std::max<int64_t>(0, ink - gen.randint(0, 4))) / 16.f;
  }
  return s;
}

ImageSet digits_or_synthetic(Split split, const std::string& dir, bool* synthetic) {
  try {
    ImageSet d = digits(split, dir);
    if (synthetic) *synthetic = false;
    return d;
  } catch (const DataNotFound& e) {
    if (synthetic) *synthetic = true;
    // never a silent fallback: say it once per folder, on stderr (the figures of glyphs are not the digits')
    static std::mutex m;
    static std::set<std::string> told;
    std::lock_guard<std::mutex> lock(m);
    if (told.insert(dir).second)
      std::cerr << "dgm: the digits are not installed (" << e.what() << "): using synthetic 8x8 glyphs in their place\n";
    return synthetic_digits(split);
  }
}

Tensor digits_as_28x28(Split split, const std::string& dir) {
  const ImageSet t = digits_or_synthetic(split, dir, nullptr);
  const Tensor up = upsample_nearest2d(t.images, 3);  // [N, 1, 24, 24]
  Tensor out = Tensor::zeros({t.size(), 1, 28, 28});
  for (int64_t n = 0; n < t.size(); ++n)
    for (int64_t i = 0; i < 24; ++i)
      for (int64_t j = 0; j < 24; ++j) out.data<float>()[(n * 28 + i + 2) * 28 + j + 2] = static_cast<float>(up.at((n * 24 + i) * 24 + j));
  return out;
}

}  // namespace dgm::data
