// Host program that evaluates the kernels' shared device math (mask.cuh, loss_math.cuh,
// bn_math.cuh) so that test/kernels_build_test.ts can compare it with src/device/mask.ts and with
// float64 formulas on a machine without a GPU. Built with g++ (plain C++) or with nvcc -x cu (the
// same headers as __host__ __device__ functions).
//
// Reads one command per line from stdin and prints one result line per command:
//   draw SEED COUNTER ROW CLS            -> the 24-bit mask draw
//   sig Z TARGET W SCALE FOCAL GAMMA ALPHA -> "LOSS GRAD" of sigmoid_term
//   sl1 DIFF BETA                        -> "LOSS GRAD" of smooth_l1_term
//   exps ZHI ZLO M                       -> exp_shifted(ZHI, ZLO, M)
//   log1p X                              -> log1p_unit(X)
//   bnt X MEAN STAT GAMMA BETA EPS FROMVAR ADD RES RELU
//                                        -> one element of batch_norm_tail
// Floats print with 9 significant digits, which identifies a float32 exactly.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bn_math.cuh"
#include "loss_math.cuh"
#include "mask.cuh"

static float arg_f(const char* s) { return strtof(s, nullptr); }
static unsigned arg_u(const char* s) { return (unsigned)strtoul(s, nullptr, 10); }

int main() {
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    char* tok[12] = {nullptr};
    int n = 0;
    for (char* t = strtok(line, " \t\r\n"); t && n < 12; t = strtok(nullptr, " \t\r\n")) tok[n++] = t;
    if (n == 0) continue;
    if (!strcmp(tok[0], "draw") && n == 5) {
      printf("%u\n", mask_draw(arg_u(tok[1]), arg_u(tok[2]), arg_u(tok[3]), arg_u(tok[4])));
    } else if (!strcmp(tok[0], "sig") && n == 8) {
      const SigmoidTerm t = sigmoid_term(arg_f(tok[1]), atoi(tok[2]) != 0, arg_f(tok[3]),
                                         arg_f(tok[4]), atoi(tok[5]) != 0, arg_f(tok[6]),
                                         arg_f(tok[7]));
      printf("%.9g %.9g\n", t.loss, t.grad);
    } else if (!strcmp(tok[0], "sl1") && n == 3) {
      float g = 0.0f;
      const float l = smooth_l1_term(arg_f(tok[1]), arg_f(tok[2]), g);
      printf("%.9g %.9g\n", l, g);
    } else if (!strcmp(tok[0], "exps") && n == 4) {
      printf("%.9g\n", exp_shifted(arg_f(tok[1]), arg_f(tok[2]), arg_f(tok[3])));
    } else if (!strcmp(tok[0], "log1p") && n == 2) {
      printf("%.9g\n", log1p_unit(arg_f(tok[1])));
    } else if (!strcmp(tok[0], "bnt") && n == 11) {
      // the same sequence of operations as batch_norm_tail's element loop
      const float a = arg_f(tok[4]) * bn_inv_std(arg_f(tok[3]), arg_f(tok[6]), atoi(tok[7]) != 0);
      float o = bn_affine(arg_f(tok[1]), arg_f(tok[2]), a, arg_f(tok[5]));
      if (atoi(tok[8]) != 0) o += arg_f(tok[9]);
      printf("%.9g\n", bn_act(o, atoi(tok[10]) != 0));
    } else {
      fprintf(stderr, "unknown command: %s\n", tok[0]);
      return 2;
    }
  }
  return 0;
}
