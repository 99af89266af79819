// Homework, autoregressive chapter, exercise 2 (10 points): PixelCNN's masks.
//   grade: make grade CHAPTER=autoregressive      (the math: docs/chapters/autoregressive.md, section 3)
#include "homework/autoregressive/exercises.h"

namespace hw::autoregressive {

// PixelCNN (van den Oord et al. 2016) orders pixels in raster order (row by row, left
// to right) and masks a k x k convolution kernel so that no output sees the future.
// Return the mask, float32 0/1 of shape [out_channels, in_channels, k, k] (k odd, centre c = k / 2):
//   - kernel positions above the centre row (y < c), or left of the centre in its row
//     (y == c and x < c): 1 for every channel pair;
//   - positions right of the centre or below it: 0;
//   - the centre itself (y == c and x == c): channels are split into `data_channels`
//     contiguous groups (R, G, B for a colour image), channel ch of C in group
//     ch * data_channels / C. Output group g may see input group h at the centre when
//         type A (first layer):  h <  g      (so with one data channel, never)
//         type B (later layers): h <= g
// A stack of one type-A and any number of type-B layers then predicts pixel p, colour g,
// from pixels before p and the colours before g of pixel p: the grader checks exactly that.
Tensor pixelcnn_mask(int64_t out_channels, int64_t in_channels, int64_t kernel, MaskType type, int64_t data_channels) {
  DGM_TODO("pixelcnn_mask");
}

}  // namespace hw::autoregressive
