// The counter-based generator behind the softmax-EQL mask, shared by the kernels and by the host
// program that checks it against src/device/mask.ts. A draw is a pure function of
// (seed, counter, row, class) built from 32-bit unsigned arithmetic only, so the CPU device and the
// GPU produce the same mask bit for bit.
//
// The mixer is the "lowbias32" integer hash (shifts 16/15/16, multipliers 0x7feb352d and
// 0x846ca68b). The inputs are folded in one after another starting from seed ^ 0x9e3779b9. The
// first two folds depend only on the call and the third only on the row, so the kernels hoist them
// (mask_call_key, mask_row_key) and fold only the class per element.
#ifndef EQL_MASK_CUH
#define EQL_MASK_CUH

#include "hd.cuh"

/// Mixes a 32-bit value.
EQL_HD unsigned int hash32(unsigned int x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/// The part of a draw fixed for one call: hash32(hash32(seed ^ 0x9e3779b9) ^ counter).
EQL_HD unsigned int mask_call_key(unsigned int seed, unsigned int counter) {
  return hash32(hash32(seed ^ 0x9e3779b9U) ^ counter);
}

/// The part of a draw fixed for one row.
EQL_HD unsigned int mask_row_key(unsigned int callKey, unsigned int row) {
  return hash32(callKey ^ row);
}

/// The 24-bit draw of one class from its row key: uniform on 0 .. 2^24 - 1.
EQL_HD unsigned int mask_draw_from_row(unsigned int rowKey, unsigned int cls) {
  return hash32(rowKey ^ cls) >> 8;
}

/// The 24-bit draw for one (seed, counter, row, class); maskDraw in src/device/mask.ts.
EQL_HD unsigned int mask_draw(unsigned int seed, unsigned int counter, unsigned int row,
                              unsigned int cls) {
  return mask_draw_from_row(mask_row_key(mask_call_key(seed, counter), row), cls);
}

#endif  // EQL_MASK_CUH
