// XLA FFI handlers that run 2-D convolutions (forward, input gradient, weight gradient)
// through oneDNN on the CPU. XLA's own CPU convolutions are slow on the weight gradients
// of 3x3 layers; oneDNN's JIT kernels (what PyTorch runs) are several times faster there
// (docs/performance.md). Activations stay NHWC and weights HWIO, as in the JAX program; oneDNN picks
// its own blocked weight layout and we reorder the (small) weights to and from it.
//
// Creating a oneDNN primitive JIT-compiles a kernel, so primitives are cached by shape.

#include <cstdint>
#include <functional>
#include <string>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include <omp.h>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One convolution's geometry, in oneDNN's terms. `g` groups (g = c for depthwise): JAX's
// HWIO kernel is then (kh, kw, c/g, o), output channel g*(o/g)+j, oneDNN's "hwigo".
// Operands are `dt` (float32 or bfloat16). The output and the input gradient are `out`,
// the result buffer's type: the caller asks for `dt` (oneDNN accumulates in float32 and
// rounds once, as XLA's bfloat16 convolutions do, and writing bfloat16 saves a float32
// array and a conversion pass over it). The weight gradient is float32 (as the parameters).
struct Geometry {
  int64_t n, c, h, w, o, g, kh, kw, oh, ow;
  int64_t sh, sw, pt, pb, pl, pr;
  memory::data_type dt, out;

  auto key() const { return std::make_tuple(n, c, h, w, o, g, kh, kw, sh, sw, pt, pb, pl, pr, int(dt), int(out)); }
  memory::desc src(memory::data_type t) const { return memory::desc({n, c, h, w}, t, tag::nhwc); }
  memory::desc dst(memory::data_type t) const { return memory::desc({n, o, oh, ow}, t, tag::nhwc); }
  memory::dims weight_dims() const {
    return g == 1 ? memory::dims{o, c, kh, kw} : memory::dims{g, o / g, c / g, kh, kw};
  }
  // The kernel as JAX holds it, and "any": the layout oneDNN picks for a primitive.
  memory::desc weights_as_jax(memory::data_type t) const {
    return memory::desc(weight_dims(), t, g == 1 ? tag::hwio : tag::hwigo);
  }
  memory::desc weights_any(memory::data_type t) const { return memory::desc(weight_dims(), t, tag::any); }
  static constexpr memory::data_type f32 = memory::data_type::f32;
  memory::dims strides() const { return {sh, sw}; }
  memory::dims pad_l() const { return {pt, pl}; }
  memory::dims pad_r() const { return {pb, pr}; }
};

// The three primitives of one geometry, and the reorders between our HWIO weights and
// the layout oneDNN chose for them.
struct Conv {
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  memory::desc fwd_w, bwd_data_w, bwd_weights_w;
};

// oneDNN's dispatch list puts its general brgemm kernels before the depthwise ones, and for
// some depthwise shapes those win the dispatch and run far slower: MobileNet's strided
// depthwise input gradients in bfloat16 land in brgconv_strided (AMX), an order of magnitude
// slower than the float32 ones in jit_dw. So a depthwise convolution takes the first
// dedicated depthwise implementation (jit_dw, brdgmm_dw) on the list, if there is one.
template <typename Desc, typename Make>
Desc prefer_depthwise_kernel(bool depthwise, const Make& make) {
  if (depthwise) {
    Desc probe = make();
    do {
      if (std::string(probe.impl_info_str()).find("dw:") != std::string::npos) return probe;
    } while (probe.next_impl());
  }
  return make();  // next_impl moved `probe` along the list: start again from the first
}

Conv make_conv(const Geometry& g) {
  auto& eng = cpu_engine();
  auto algo = dnnl::algorithm::convolution_direct;
  auto t = g.dt, out = g.out, f32 = Geometry::f32;
  bool depthwise = g.g == g.c && g.g == g.o;
  using Fwd = dnnl::convolution_forward::primitive_desc;
  using BwdData = dnnl::convolution_backward_data::primitive_desc;
  using BwdWeights = dnnl::convolution_backward_weights::primitive_desc;
  auto fwd = prefer_depthwise_kernel<Fwd>(depthwise, [&] {
    return Fwd(eng, dnnl::prop_kind::forward_training, algo, g.src(t), g.weights_any(t), g.dst(out),
               g.strides(), g.pad_l(), g.pad_r());
  });
  auto bwd_data = prefer_depthwise_kernel<BwdData>(depthwise, [&] {
    return BwdData(eng, algo, g.src(out), g.weights_any(t), g.dst(t), g.strides(), g.pad_l(), g.pad_r(), fwd);
  });
  auto bwd_weights = prefer_depthwise_kernel<BwdWeights>(depthwise, [&] {
    return BwdWeights(eng, algo, g.src(t), g.weights_any(f32), g.dst(t), g.strides(), g.pad_l(), g.pad_r(), fwd);
  });
  return Conv{dnnl::convolution_forward(fwd), dnnl::convolution_backward_data(bwd_data),
              dnnl::convolution_backward_weights(bwd_weights), fwd.weights_desc(),
              bwd_data.weights_desc(), bwd_weights.diff_weights_desc()};
}

const Conv& conv_for(const Geometry& g) {
  static std::mutex mutex;
  static std::map<decltype(g.key()), std::unique_ptr<Conv>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[g.key()];
  if (!slot) slot = std::make_unique<Conv>(make_conv(g));
  return *slot;
}

memory wrap(const memory::desc& md, const void* data) {
  return memory(md, cpu_engine(), const_cast<void*>(data));
}

// `user` as layout `want`: the same memory when the layouts agree, else a reordered copy.
memory as_layout(dnnl::stream& s, const memory& user, const memory::desc& want) {
  if (user.get_desc() == want) return user;
  memory out(want, cpu_engine());
  dnnl::reorder(user, out).execute(s, const_cast<memory&>(user), out);
  return out;
}

ffi::Error data_type(ffi::DataType type, memory::data_type* dt) {
  switch (type) {
    case ffi::F32: *dt = memory::data_type::f32; return ffi::Error::Success();
    case ffi::BF16: *dt = memory::data_type::bf16; return ffi::Error::Success();
    default: return ffi::Error::InvalidArgument("onednn conv: only float32 and bfloat16");
  }
}

// x: the NHWC input (or its gradient), wd: the HWIO kernel's dims, y: the NHWC output;
// `out`: the type of the output and of the input gradient.
ffi::Error geometry(ffi::DataType operands, ffi::DataType out, const ffi::AnyBuffer& x,
                    ffi::Span<const int64_t> wd, const ffi::AnyBuffer& y, ffi::Span<const int64_t> strides,
                    ffi::Span<const int64_t> padding, Geometry* g) {
  auto xd = x.dimensions(), yd = y.dimensions();
  if (xd.size() != 4 || yd.size() != 4 || wd.size() != 4 || strides.size() != 2 || padding.size() != 4)
    return ffi::Error::InvalidArgument("onednn conv: expected NHWC operands, 2 strides, 4 pads");
  if (xd[3] % wd[2] != 0 || wd[3] % (xd[3] / wd[2]) != 0)
    return ffi::Error::InvalidArgument("onednn conv: channels do not split into groups");
  memory::data_type dt, dt_out;
  if (auto err = data_type(operands, &dt); err.failure()) return err;
  if (auto err = data_type(out, &dt_out); err.failure()) return err;
  *g = Geometry{xd[0], xd[3], xd[1], xd[2], wd[3], xd[3] / wd[2], wd[0], wd[1], yd[1], yd[2],
                strides[0], strides[1], padding[0], padding[1], padding[2], padding[3], dt, dt_out};
  return ffi::Error::Success();
}

// OpenMP teams that together outnumber the cores spin against each other: a step that
// takes seconds then takes many minutes. XLA runs independent ops at once (a convolution's
// two gradients, ResNet's two branches) and every CPU device of the process at once. So
// calls run one at a time per process, each on `threads` = the cores shared by the
// process's CPU devices.
ffi::Error run(int64_t threads, const std::function<void(dnnl::stream&)>& body) {
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> lock(one_at_a_time);
  omp_set_num_threads(static_cast<int>(threads));
  try {
    dnnl::stream s(cpu_engine());
    body(s);
    s.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("oneDNN: ") + e.what());
  }
  return ffi::Error::Success();
}

ffi::Error forward(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> y,
                   ffi::Span<const int64_t> strides, ffi::Span<const int64_t> padding, int64_t threads) {
  Geometry g;
  if (auto err = geometry(x.element_type(), y->element_type(), x, w.dimensions(), *y, strides, padding, &g); err.failure()) return err;
  return run(threads, [&](dnnl::stream& s) {
    const Conv& c = conv_for(g);
    memory wm = as_layout(s, wrap(g.weights_as_jax(g.dt), w.untyped_data()), c.fwd_w);
    c.fwd.execute(s, {{DNNL_ARG_SRC, wrap(g.src(g.dt), x.untyped_data())}, {DNNL_ARG_WEIGHTS, wm},
                      {DNNL_ARG_DST, wrap(g.dst(g.out), y->untyped_data())}});
  });
}

ffi::Error backward_data(ffi::AnyBuffer dy, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> dx,
                         ffi::Span<const int64_t> strides, ffi::Span<const int64_t> padding, int64_t threads) {
  Geometry g;
  if (auto err = geometry(w.element_type(), dx->element_type(), *dx, w.dimensions(), dy, strides, padding, &g); err.failure()) return err;
  return run(threads, [&](dnnl::stream& s) {
    const Conv& c = conv_for(g);
    memory wm = as_layout(s, wrap(g.weights_as_jax(g.dt), w.untyped_data()), c.bwd_data_w);
    c.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, wrap(g.dst(g.dt), dy.untyped_data())},
                           {DNNL_ARG_WEIGHTS, wm},
                           {DNNL_ARG_DIFF_SRC, wrap(g.src(g.out), dx->untyped_data())}});
  });
}

ffi::Error backward_weights(ffi::AnyBuffer x, ffi::AnyBuffer dy, ffi::Result<ffi::AnyBuffer> dw,
                            ffi::Span<const int64_t> strides, ffi::Span<const int64_t> padding, int64_t threads) {
  if (dw->element_type() != ffi::F32)
    return ffi::Error::InvalidArgument("onednn conv: the weight gradient is float32");
  Geometry g;
  if (auto err = geometry(x.element_type(), x.element_type(), x, dw->dimensions(), dy, strides, padding, &g); err.failure()) return err;
  return run(threads, [&](dnnl::stream& s) {
    const Conv& c = conv_for(g);
    memory user = wrap(g.weights_as_jax(Geometry::f32), dw->untyped_data());
    memory out = c.bwd_weights_w == user.get_desc() ? user : memory(c.bwd_weights_w, cpu_engine());
    c.bwd_weights.execute(s, {{DNNL_ARG_SRC, wrap(g.src(g.dt), x.untyped_data())},
                              {DNNL_ARG_DIFF_DST, wrap(g.dst(g.dt), dy.untyped_data())},
                              {DNNL_ARG_DIFF_WEIGHTS, out}});
    if (out != user) dnnl::reorder(out, user).execute(s, out, user);
  });
}

}  // namespace

#define CONV_HANDLER(symbol, impl)                                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(symbol, impl,                                    \
                                ffi::Ffi::Bind()                                 \
                                    .Arg<ffi::AnyBuffer>()                       \
                                    .Arg<ffi::AnyBuffer>()                       \
                                    .Ret<ffi::AnyBuffer>()                       \
                                    .Attr<ffi::Span<const int64_t>>("strides")   \
                                    .Attr<ffi::Span<const int64_t>>("padding")    \
                                    .Attr<int64_t>("threads"));

CONV_HANDLER(CnnJaxOnednnConvForward, forward)  // (x, w) -> y
CONV_HANDLER(CnnJaxOnednnConvBackwardData, backward_data)  // (dy, w) -> dx
CONV_HANDLER(CnnJaxOnednnConvBackwardWeights, backward_weights)  // (x, dy) -> dw
