"""A choice of implementation made when a function is traced (e.g. how convolutions or
BatchNorm are computed), so that one config key reaches every layer of every model
without threading an argument through them."""

import contextlib
import functools

from cnn_jax.errors import UserError


class TraceSwitch:
    """`key` names the config key in errors; `choices[0]` is the default outside any block;
    `auto` resolves to `on_cpu` on CPU (a name, or a function returning one when the choice
    depends on what is installed) and to the default elsewhere."""

    def __init__(self, key: str, choices: tuple, on_cpu: str):
        self.key, self.choices, self.on_cpu = key, choices, on_cpu
        self._stack = [choices[0]]

    def check(self, name: str) -> str:
        if name not in self.choices:
            raise UserError(f"Unknown {self.key} {name!r}; use one of {', '.join(self.choices)}.")
        return name

    @contextlib.contextmanager
    def use(self, name: str):
        """Trace inside this block with implementation `name`."""
        self._stack.append(self.check(name))
        try:
            yield
        finally:
            self._stack.pop()

    def current(self) -> str:
        return self._stack[-1]

    def resolve(self, name: str, platform: str) -> str:
        if name == "auto":
            if platform != "cpu":
                return self.choices[0]
            return self.on_cpu() if callable(self.on_cpu) else self.on_cpu
        return name

    def wrap(self, fn, name: str):
        """`fn` (e.g. a TrainState's apply_fn) tracing with implementation `name`."""
        if self.check(name) == self.choices[0]:  # checked now, not at the first trace
            return fn

        @functools.wraps(fn)
        def traced(*args, **kwargs):
            with self.use(name):
                return fn(*args, **kwargs)

        return traced
