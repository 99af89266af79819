// dgm/models/toolkit/datasets.h — real data sets: Fashion-MNIST / MNIST (IDX files)
// and the scikit-learn 8x8 digits (a CSV). Where each comes from and how to
// install it: docs/chapters/data.md.
//
// Every reader checks what it reads: a missing file is an error naming the
// folders searched and the one command that installs the data; a truncated or
// corrupt file is an error naming the file and the byte offset or field that
// failed. Readers never crash on bad bytes (they are fuzzed: scripts/fuzz.sh).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"

namespace dgm::data {

// A data set that is not installed: the message names every folder searched
// and the command that installs it. Only this error may be turned into a
// "skipped" by a lesson; a corrupt or truncated file is a plain Error.
struct DataNotFound : Error {
  using Error::Error;
};

// ----------------------------------------------------------------- IDX (the MNIST file format)
// A decoded IDX file: unsigned bytes and their dimensions.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
};
// Parses IDX bytes (already decompressed). `name` is used in error messages.
IdxArray parse_idx(const uint8_t* bytes, size_t size, const std::string& name);
// Reads a file, gzip-compressed or plain (zlib decides), and parses it.
IdxArray read_idx(const std::string& path);
// Reads a whole file, decompressing it if it is gzip. Throws naming the path.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

// An image data set: images [N, C, H, W] float32 in [0, 1], labels [N] int64.
struct ImageSet {
  Tensor images;
  Tensor labels;
  int64_t levels = 256;  // grey levels of the original data (256 for 8-bit, 17 for digits)
  int64_t size() const { return images.size(0); }
  ImageSet slice(int64_t begin, int64_t end) const;  // rows [begin, end)
};

enum class Split { Train, Validation, Test };

// The folders searched for a data set, in order: `dir` if given, $DGM_DATA,
// ./data, then the data set's system folder (`system_dir`).
std::vector<std::string> search_path(const std::string& dir, const std::string& system_dir);

// Fashion-MNIST (28x28, 10 classes). Debian's `dataset-fashion-mnist` installs
// it in /usr/share/datasets/fashion-mnist. Its training file of 60,000 images is
// split once, here: Train = the first 59,000, Validation = the last 1,000;
// Test = the 10,000 of the test file. `limit` > 0 keeps only the first `limit`
// images of the split.
ImageSet fashion_mnist(Split split, const std::string& dir = "", int64_t limit = 0);
// MNIST from IDX files a user already has (train-images-idx3-ubyte[.gz] ...), same layout.
ImageSet mnist(Split split, const std::string& dir, int64_t limit = 0);
// Reads one IDX image file and its label file.
ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path, int64_t limit = 0);

// The scikit-learn 8x8 digits: 1,797 images of 17 grey levels (0..16), from
// `digits.csv.gz` inside Debian's python3-sklearn package; scripts/get-digits.sh
// extracts it to ./data. Split as the reference book code does: the first
// 1,000 images train, the next 350 validation, the last 447 test. Pixel values
// are scaled to [0, 1] by /16 (levels = 17).
ImageSet digits(Split split, const std::string& dir = "");
// Parses the digits CSV text (65 comma-separated integers per line: 64 pixels, label).
ImageSet parse_digits_csv(const std::string& text, const std::string& name);

// A built-in stand-in with the digits' shape (8x8, 17 levels, labels 0-9, the
// same split sizes): ten 6x7 glyphs drawn at a random offset with random
// stroke and background intensities. Tests and --quick runs use it when the
// real digits are not installed, so they never need a download.
ImageSet synthetic_digits(Split split);
// The real digits when installed, else synthetic_digits (and *synthetic = true), said on stderr
// once per folder. A digits file that exists but is corrupt is an error, not a fallback.
ImageSet digits_or_synthetic(Split split, const std::string& dir, bool* synthetic);
// The digits of a split (or the glyphs) blown up to 28x28, each pixel 3x3 inside a border of 2: MNIST-like
// images the project can make, [N, 1, 28, 28] (an out-of-distribution set for Fashion-MNIST models).
Tensor digits_as_28x28(Split split, const std::string& dir = "");

// ----------------------------------------------------------------- words
// The English words of Debian's `wamerican` (american-english, in /usr/share/dict): the words of
// lowercase letters a-z only (63,875 of its 104,334 lines: no capitals, apostrophes or accents),
// shuffled once (a fixed seed) and split train 90% / validation 5% / test 5%.
// As tokens: 1..26 are 'a'..'z', 0 ends the word and pads it to kWordLength.
constexpr int64_t kWordLength = 24;  // the longest word (22 letters), its end, one spare
struct WordSet {
  std::vector<std::string> words;
  Tensor tokens;  // [N, kWordLength] float32 token ids
  int64_t size() const { return static_cast<int64_t>(words.size()); }
};
WordSet words(Split split, const std::string& dir = "");
// The list's words as tokens; a word with another character, or longer than length - 1, is an error.
Tensor encode_words(const std::vector<std::string>& words, int64_t length = kWordLength);
// Row `row` of tokens [N, L] (float or int64) as text, up to its end token.
std::string decode_word(const Tensor& tokens, int64_t row);
// The words of a word list's text (one a line) that are lowercase a-z only, in their order.
std::vector<std::string> parse_word_list(const std::string& text);

// ----------------------------------------------------------------- named data sets
// A data set as the recipes (models/recipes.h) name it: three splits of values in
// [0, 1], examples [N, C, H, W] (flat models reshape them to [N, D]).
struct DataSet {
  std::string name;         // "digits17", "digits_binarized", "digits_thresholded", "fashion_binarized", ...
  std::string description;  // one line: the transform and the split sizes
  Tensor train, validation, test;
  Tensor train_labels, validation_labels, test_labels;  // int64 [N] class labels (image sets; undefined for words)
  Tensor train_eval;        // training examples as a train NLL sees them (one fixed binarization, if any): the first
                            // rows of train, so their labels are train_labels' first rows
  int64_t levels = 256;     // the grey levels of the original data
  bool synthetic = false;   // the built-in glyphs stand in for the digits (not installed)
  // Fresh randomness per training batch (dynamic binarization), from the training loop's
  // generator (so a resumed run draws what it would have); empty: none.
  std::function<Tensor(const Tensor&, Generator&)> prepare;
  int64_t dims() const { return train.numel() / train.size(0); }
};
// digits17: the 8x8 digits (or the synthetic glyphs), 17 levels, train 1,000 /
// validation 350 / test 447. digits_binarized: the same, the grey level as a Bernoulli
// probability (binarized afresh for every batch; validation and test once, seeds 1 and 0).
// words: the word list's splits as token ids (not in [0, 1]: the sequence models read them as
// ids, models/sequence.h), levels = 27 (the end token and 26 letters).
// fashion_binarized: the same for Fashion-MNIST's splits (train_eval: the first 10,000
// training images, seed 2). fashion_dequantized: Fashion-MNIST's 256 levels.
// An unknown name is an error listing the known ones.
DataSet load_data_set(const std::string& name, const std::string& dir = "");

}  // namespace dgm::data
