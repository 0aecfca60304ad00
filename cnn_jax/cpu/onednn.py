"""Convolutions through oneDNN on the CPU, as XLA FFI custom calls.

XLA's CPU convolutions are its weak spot: oneDNN's JIT kernels (what PyTorch calls) run a
3x3 layer's forward pass and both gradients faster (up to several times), and depthwise
3x3 convolutions many times faster (experiments/benchmarks/conv_kernels.py measures them; the
figures are in docs/performance.md). So conv_impl "onednn" hands every plain 2-D NHWC
convolution to oneDNN through `jax.ffi`: the forward pass and, in a custom VJP,
the input and weight gradients are each one call (cnn_jax/cpu/native/onednn_conv.cc).

oneDNN comes from PyPI (onednn-cpu-gomp and its headers, onednn-devel-cpu-gomp); the small
C++ shim is compiled with the host's C++ compiler on first use and cached by the hash of
everything that goes into it. Where any part is missing, `unavailable()` says which and
conv_impl "auto" keeps the pure-XLA path. Only the CPU has these targets: on GPU/TPU XLA's
convolutions are the fast path.
"""

import ctypes
import functools
import hashlib
import importlib.metadata
import os
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

SOURCE = Path(__file__).resolve().parent / "native" / "onednn_conv.cc"
_TARGETS = {
    "forward": "CnnJaxOnednnConvForward",
    "backward_data": "CnnJaxOnednnConvBackwardData",
    "backward_weights": "CnnJaxOnednnConvBackwardWeights",
}
_INSTALL = "pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0"


class Unavailable(Exception):
    """Why the oneDNN path cannot run here (one sentence with the fix)."""


def _installed_file(dist: str, suffix: str) -> Path:
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise Unavailable(f"the package {dist} is not installed; {_INSTALL}") from None
    for f in files:
        if ("/" + str(f)).endswith(suffix):
            return Path(f.locate()).resolve()
    raise Unavailable(f"the package {dist} has no {suffix}; reinstall it ({_INSTALL})")


def cache_dir() -> Path:
    root = os.environ.get("CNN_JAX_NATIVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cnn_jax", "native"
    )
    return Path(root)


def _compile_command(output: Path, include: Path, libdir: Path) -> list:
    return [
        os.environ.get("CXX", "g++"),
        "-O2",
        "-std=c++17",
        "-shared",
        "-fPIC",
        "-fopenmp",
        "-w",
        f"-I{include}",
        f"-I{jax.ffi.include_dir()}",
        str(SOURCE),
        f"-L{libdir}",
        "-l:libdnnl.so.3",
        f"-Wl,-rpath,{libdir}",
        "-o",
        str(output),
    ]


def build() -> Path:
    """The compiled shim, built into the cache on first use (atomically: parallel test
    workers or processes of one run may race here)."""
    lib = _installed_file("onednn-cpu-gomp", "/libdnnl.so.3")
    header = _installed_file("onednn-devel-cpu-gomp", "oneapi/dnnl/dnnl.hpp")
    include = header.parent.parent.parent
    probe = _compile_command(Path("OUT"), include, lib.parent)
    digest = hashlib.sha256(
        SOURCE.read_bytes() + " ".join(probe).encode() + importlib.metadata.version("jaxlib").encode()
    ).hexdigest()[:16]
    output = cache_dir() / f"libcnn_jax_onednn-{digest}.so"
    if output.exists():
        return output
    try:
        return _compile(output, include, lib.parent)
    except OSError as e:
        raise Unavailable(
            f"the oneDNN shim could not be written to {output.parent} ({e.strerror}); "
            "set CNN_JAX_NATIVE_CACHE to a writable directory"
        ) from None


def _compile(output: Path, include: Path, libdir: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        partial = Path(tmp) / output.name
        try:
            done = subprocess.run(_compile_command(partial, include, libdir), capture_output=True, text=True)
        except FileNotFoundError:
            raise Unavailable("no C++ compiler was found to build the oneDNN shim; install g++ (or set CXX)") from None
        if done.returncode != 0:
            raise Unavailable(
                f"compiling {SOURCE.name} failed ({done.stderr.strip()[-300:]}); "
                "check the compiler and the onednn-devel-cpu-gomp headers"
            )
        os.replace(partial, output)
    return output


@functools.cache
def _load():
    """Load the shim and register its targets with XLA; an Unavailable, cached, if it can't."""
    try:
        lib = ctypes.cdll.LoadLibrary(str(build()))
    except Unavailable as e:
        return e
    except OSError as e:
        return Unavailable(f"loading the oneDNN shim failed ({e}); reinstall onednn-cpu-gomp")
    for name, symbol in _TARGETS.items():
        jax.ffi.register_ffi_target(f"cnn_jax_onednn_{name}", jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    return None


def unavailable():
    """None when the oneDNN path can run here, else the reason (an Unavailable)."""
    return _load()


def supported(lhs, rhs) -> bool:
    """Operand types the shim handles: both float32 or both bfloat16."""
    return lhs.dtype == rhs.dtype and lhs.dtype in (np.dtype("float32"), jax.numpy.bfloat16)


def threads_per_call() -> int:
    """The host's cores shared among this process's CPU devices, whose calls run at once."""
    return max(1, len(os.sched_getaffinity(0)) // jax.local_device_count("cpu"))


# Each call's operands and result as einsum-like factors, for XLA's sharding propagation
# (Shardy): only the batch `b` is shared; it is summed away in the weight gradient.
_FACTORS = {
    "forward": "b h w c, k l i o -> b p q n",
    "backward_data": "b p q o, k l i n -> b h w c",
    "backward_weights": "b h w c, b p q o -> k l i n",
}


def _result_dtype(target: str, operands):
    """The output and the input gradient come in the operands' dtype (rounded once by oneDNN),
    the weight gradient in float32."""
    return np.float32 if target == "backward_weights" else operands


def _ffi(target: str, shape, a, b, attrs):
    result = jax.ShapeDtypeStruct(shape, _result_dtype(target, a.dtype))
    return jax.ffi.ffi_call(f"cnn_jax_onednn_{target}", result)(a, b, **attrs)


def _batch_partitioned(target: str, shape, attrs):
    """The FFI call `target` (result `shape`, see _result_dtype) as an op XLA's SPMD partitioner splits
    along the batch: each device runs oneDNN on its own examples, and the weight gradient's
    per-device sums are added over the batch's mesh axes. A plain custom call would be
    all-gathered and run whole on every device."""
    reduces = target == "backward_weights"

    def local(a, b):  # shapes here are one device's; the batch is the first operand's
        return _ffi(target, shape if reduces else (a.shape[0], *shape[1:]), a, b, attrs)

    def batch_axes(arg_shapes):  # the mesh axes the first operand's batch is split over, or None
        spec = arg_shapes[0].sharding.spec
        return spec[0] if len(spec) else None

    def result_sharding(mesh, batch):
        return NamedSharding(mesh, P() if reduces else P(batch))

    def partition(mesh, arg_shapes, result_shape):
        batch = batch_axes(arg_shapes)
        sharded = NamedSharding(mesh, P(batch))
        operands = (sharded, sharded if reduces else NamedSharding(mesh, P()))

        def lower(a, b):
            out = local(a, b)
            return lax.psum(out, batch) if reduces and batch is not None else out

        return mesh, lower, result_sharding(mesh, batch), operands

    def infer(mesh, arg_shapes, result_shape):
        return result_sharding(mesh, batch_axes(arg_shapes))

    call = custom_partitioning(local)
    call.def_partition(
        partition,
        infer_sharding_from_operands=infer,
        sharding_rule=_FACTORS[target],
        reduction_factors=("b",) if reduces else (),
    )

    # custom_partitioning has no batching rule: under vmap, one call per mapped slice.
    @jax.custom_batching.custom_vmap
    def mapped(a, b):
        return call(a, b)

    @mapped.def_vmap
    def _(axis_size, in_batched, a, b):
        if not any(in_batched):
            return call(a, b), False
        if all(in_batched):
            return lax.map(lambda ab: call(*ab), (a, b)), True
        return (lax.map(lambda x: call(x, b), a) if in_batched[0] else lax.map(lambda y: call(a, y), b)), True

    return mapped


def _call(target: str, shape, dtype, a, b, *, strides, padding):
    """One oneDNN call, its result as `dtype` (rounded once, by oneDNN or here)."""
    attrs = {
        "strides": np.asarray(strides, np.int64),
        "padding": np.asarray([p for pair in padding for p in pair], np.int64),
        "threads": np.int64(threads_per_call()),
    }
    return _batch_partitioned(target, shape, attrs)(a, b).astype(dtype)


def output_shape(x_shape, w_shape, strides, padding) -> tuple:
    size = lambda n, k, s, p: (n + p[0] + p[1] - k) // s + 1
    return (
        x_shape[0],
        size(x_shape[1], w_shape[0], strides[0], padding[0]),
        size(x_shape[2], w_shape[1], strides[1], padding[1]),
        w_shape[3],
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x, w, strides: tuple, padding: tuple):
    """NHWC x HWIO -> NHWC, explicit ((top, bottom), (left, right)) padding, through oneDNN."""
    return _call(
        "forward", output_shape(x.shape, w.shape, strides, padding), x.dtype, x, w, strides=strides, padding=padding
    )


def _conv_fwd(x, w, strides, padding):
    return conv(x, w, strides, padding), (x, w)


def _conv_bwd(strides, padding, residuals, g):
    x, w = residuals
    dx = _call("backward_data", x.shape, x.dtype, g, w, strides=strides, padding=padding)
    dw = _call("backward_weights", w.shape, w.dtype, x, g, strides=strides, padding=padding)
    return dx, dw


conv.defvjp(_conv_fwd, _conv_bwd)


def explicit_padding(x_shape, w_shape, strides, padding) -> tuple:
    """lax's padding argument (a mode string or pairs) as ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x_shape[1:3], w_shape[:2], strides, padding)
    return tuple((int(lo), int(hi)) for lo, hi in padding)
