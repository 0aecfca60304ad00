// Every oneDNN implementation of each ResNet-18 convolution (forward, input gradient, weight
// gradient; NHWC, as our shim calls them), timed alone: does the dispatch's first choice,
// which the shim and PyTorch both run, leave speed on the table? (For these convolutions it
// does not: each first choice is within run-to-run noise of the fastest.) Reference and
// SSE4.1 kernels are skipped: they take minutes.
//
//   g++ -O2 -std=c++17 -fopenmp -I.venv/include experiments/benchmarks/onednn_impls.cc \
//       -L.venv/lib -l:libdnnl.so.3 -Wl,-rpath,$PWD/.venv/lib -o /tmp/onednn_impls
//   OMP_NUM_THREADS=2 /tmp/onednn_impls f32 32     # or bf16; the batch
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Layer { int c, h, o, k, s, p, count; };  // in channels, input size, out channels, kernel, stride, pad

// ResNet-18's convolutions at 224x224, `count` of each.
const std::vector<Layer> kResNet18 = {
    {3, 224, 64, 7, 2, 3, 1},    {64, 56, 64, 3, 1, 1, 4},    {64, 56, 128, 3, 2, 1, 1},
    {128, 28, 128, 3, 1, 1, 3},  {64, 56, 128, 1, 2, 0, 1},   {128, 28, 256, 3, 2, 1, 1},
    {256, 14, 256, 3, 1, 1, 3},  {128, 28, 256, 1, 2, 0, 1},  {256, 14, 512, 3, 2, 1, 1},
    {512, 7, 512, 3, 1, 1, 3},   {256, 14, 512, 1, 2, 0, 1}};

template <class F> double median_ms(F run, int reps = 5) {
  std::vector<double> t;
  for (int i = 0; i < reps + 2; i++) {  // two untimed: the first call JIT-compiles
    auto a = std::chrono::steady_clock::now();
    run();
    auto b = std::chrono::steady_clock::now();
    if (i >= 2) t.push_back(std::chrono::duration<double, std::milli>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

bool too_slow(const std::string& impl) {
  return impl.find("ref") != std::string::npos || impl.find("sse41") != std::string::npos;
}

// Times each implementation on `pd`'s list; `execute(pd)` builds and runs one.
template <class PD, class Exec> void each_impl(const char* pass, PD pd, Exec execute) {
  int i = 0;
  do {
    std::string impl = pd.impl_info_str();
    if (!too_slow(impl)) printf("  %-5s %d %-44s %8.2f ms\n", pass, i, impl.c_str(), execute(pd));
    i++;
  } while (pd.next_impl());
}

int main(int argc, char** argv) {
  dt type = (argc > 1 && std::string(argv[1]) == "bf16") ? dt::bf16 : dt::f32;
  int n = argc > 2 ? std::atoi(argv[2]) : 32;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  auto algo = algorithm::convolution_direct;
  for (const Layer& l : kResNet18) {
    int oh = (l.h + 2 * l.p - l.k) / l.s + 1;
    memory::desc src({n, l.c, l.h, l.h}, type, tag::nhwc), dst({n, l.o, oh, oh}, type, tag::nhwc);
    memory::desc w({l.o, l.c, l.k, l.k}, type, tag::any), dw({l.o, l.c, l.k, l.k}, dt::f32, tag::any);
    memory::dims strides{l.s, l.s}, pad{l.p, l.p};
    auto fwd = convolution_forward::primitive_desc(eng, prop_kind::forward_training, algo, src, w, dst, strides, pad, pad);
    memory x(src, eng), y(dst, eng);
    printf("== %dx%d/%d %d -> %d at %d (x%d)\n", l.k, l.k, l.s, l.c, l.o, l.h, l.count);
    each_impl("fwd", fwd, [&](const convolution_forward::primitive_desc& pd) {
      memory wm(pd.weights_desc(), eng);
      convolution_forward p(pd);
      return median_ms([&] { p.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, y}}); s.wait(); });
    });
    if (l.c != 3) {  // the stem's input gradient is never computed
      auto bwd = convolution_backward_data::primitive_desc(eng, algo, src, w, dst, strides, pad, pad, fwd);
      each_impl("bwd_d", bwd, [&](const convolution_backward_data::primitive_desc& pd) {
        memory wm(pd.weights_desc(), eng);
        convolution_backward_data p(pd);
        return median_ms([&] { p.execute(s, {{DNNL_ARG_DIFF_DST, y}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, x}}); s.wait(); });
      });
    }
    auto bww = convolution_backward_weights::primitive_desc(eng, algo, src, dw, dst, strides, pad, pad, fwd);
    each_impl("bwd_w", bww, [&](const convolution_backward_weights::primitive_desc& pd) {
      memory wm(pd.diff_weights_desc(), eng);
      convolution_backward_weights p(pd);
      return median_ms([&] { p.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, y}, {DNNL_ARG_DIFF_WEIGHTS, wm}}); s.wait(); });
    });
    fflush(stdout);
  }
}
