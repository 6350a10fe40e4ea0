"""Run a Plan as WebAssembly SIMD on wasmtime: the CPU half of webjit.

The plan renders to one module (`render_wasm.render_module`) over one linear memory laid out once
(`render_wasm.layout`). Weights are written when the runner is made, and the module's `load` runs the load-time
kernels then; inputs are written before each run; nothing is allocated per run but the returned outputs.
`set_variant` renders one kernel into a module of its own, instantiated over the same memory, so tuning swaps a
kernel without recompiling the plan; `run` rebuilds the plan module only when the variants changed since it was
built.

threads > 1 calls `run(t, nt)` from that many Python threads, each with its own store and instance over one shared
memory: wasmtime releases the GIL while wasm runs, the kernels split their work by (t, nt) and meet at the module's
atomic barrier, as Web Workers would in a browser.
"""
from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import wasmtime
import wasmtime._ffi as _ffi

from ..plan import DEVICE_DTYPES, Plan, device_inputs
from ..render_wasm import MAX_THREADS, function_name, layout, module, render
from ..space import Variant
from ..space_wasm import REGISTERS, retarget

_ENGINES: dict[bool, wasmtime.Engine] = {}


def _engine(relaxed: bool) -> wasmtime.Engine:
    """One engine per process and SIMD flavour: without relaxed SIMD, modules using it fail to compile."""
    if relaxed not in _ENGINES:
        cfg = wasmtime.Config()
        cfg.wasm_simd = True
        cfg.wasm_relaxed_simd = relaxed
        cfg.wasm_threads = True
        cfg.shared_memory = True
        _ENGINES[relaxed] = wasmtime.Engine(cfg)
    return _ENGINES[relaxed]


# The relaxed dot of 16 bytes -128 with 16 bytes 255: lane 0 is -130560 where the engine reads the second operand as
# unsigned bytes and does not saturate (V8 with AVX-VNNI), else something else (pmaddubsw saturates, sdot is signed).
UNSIGNED_DOT_PROBE = """(module (func (export "probe") (result i32) (i32x4.extract_lane 0
  (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.const i8x16 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128 -128)
    (v128.const i8x16 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1) (v128.const i32x4 0 0 0 0)))))"""


@lru_cache(maxsize=1)
def unsigned_dot() -> bool:
    """Whether this wasmtime's relaxed dot takes its second operand as unsigned bytes, exactly (matmul_i8 dot 2)."""
    store = wasmtime.Store(_engine(True))
    probe = wasmtime.Instance(store, wasmtime.Module(store.engine, wasmtime.wat2wasm(UNSIGNED_DOT_PROBE)), [])
    return probe.exports(store)["probe"](store) == -130560


class _SharedMemory(wasmtime.SharedMemory):
    """wasmtime-py 50 passes a pointer to the pointer when it imports a shared memory; pass the pointer."""

    def _as_extern(self):
        return _ffi.wasmtime_extern_t(_ffi.WASMTIME_EXTERN_SHAREDMEMORY,
                                      _ffi.wasmtime_extern_union(sharedmemory=self.ptr()))


def engine_info(relaxed: bool = True) -> dict:
    """The CPU and runtime, under the keys adapter_info uses for a GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version
    return {"vendor": "wasmtime", "device": cpu, "adapter_type": "CPU",
            "backend": f"WebAssembly SIMD{' + relaxed SIMD' if relaxed else ''}, wasmtime {version('wasmtime')}"}


class WasmRunner:
    def __init__(self, plan: Plan, variants: dict[str, Variant] | None = None, relaxed: bool = True, *,
                 threads: int = 1, registers: int = REGISTERS, dump=None):
        # the same kernels, with their WebAssembly spaces (the forms this engine computes exactly)
        self.plan = retarget(plan, registers, relaxed, relaxed and unsigned_dot())
        self.relaxed, self.threads = relaxed, threads
        self.variants = {k.name: (variants or {}).get(k.name) or k.default() for k in self.plan.kernels}
        self.layout = layout(self.plan, max(threads, MAX_THREADS))
        self.dump = dump or os.environ.get("WEBJIT_DUMP")
        self.engine = _engine(relaxed)
        self.stores = [wasmtime.Store(self.engine) for _ in range(threads)]
        pages = self.layout.pages
        if threads > 1:
            self.memory = _SharedMemory(self.engine, wasmtime.MemoryType(wasmtime.Limits(pages, pages), shared=True))
            ptr, size = self.memory.data_ptr(), self.memory.data_len()
        else:
            self.memory = wasmtime.Memory(self.stores[0], wasmtime.MemoryType(wasmtime.Limits(pages, pages)))
            ptr, size = self.memory.data_ptr(self.stores[0]), self.memory.data_len(self.stores[0])
        self.mem = np.ctypeslib.as_array(ptr, shape=(size,))
        for name, arr in self.plan.weights.items():
            self._view(name, arr.size)[...] = np.asarray(arr).reshape(-1)
        self.pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
        self.stats: dict[str, float] = {}   # seconds: render (kernels), assemble, wat2wasm, compile (last build)
        t = time.perf_counter()
        self.functions = {k.name: render(k, self.variants[k.name], self.plan.dtypes, self.layout)
                          for k in self.plan.kernels}
        self.stats["render"] = time.perf_counter() - t
        self._kernel_modules: dict[tuple[str, str], wasmtime.Module] = {}
        self.calls: list[list] = []          # per kernel, per thread: the function to call
        self._built: dict[str, str] = {}
        self._build()
        self.load_runs = 0  # how often the load-time kernels ran: once, and again only after one changed variant
        self._loaded_with: list[str] = []
        self.load()

    # -- building -------------------------------------------------------------------------------------------------
    def _compile(self, wat: str) -> wasmtime.Module:
        t = time.perf_counter()
        binary = wasmtime.wat2wasm(wat)
        t1 = time.perf_counter()
        mod = wasmtime.Module(self.engine, binary)
        self.stats["wat2wasm"], self.stats["compile"] = t1 - t, time.perf_counter() - t1
        self.stats["wasm_bytes"] = len(binary)
        return mod

    def _instances(self, mod: wasmtime.Module) -> list:
        return [wasmtime.Instance(s, mod, [self.memory]).exports(s) for s in self.stores]

    def _build(self) -> None:
        """Compile the whole plan as one module with the current variants."""
        names = [function_name(k) for k in self.plan.kernels]
        t = time.perf_counter()
        wat = module([self.functions[k.name] for k in self.plan.kernels], names, self.layout, self.threads > 1,
                     load=self.plan.load)
        self.stats["assemble"] = time.perf_counter() - t
        if self.dump:
            Path(self.dump).mkdir(parents=True, exist_ok=True)
            (Path(self.dump) / "plan.wat").write_text(wat)
        exports = self._instances(self._compile(wat))
        self._run = [e["run"] for e in exports]
        self._load = [e["load"] for e in exports]
        self.calls = [[e[n] for e in exports] for n in names]
        self._built = {k: v.key for k, v in self.variants.items()}

    def set_variant(self, index: int, variant: Variant) -> None:
        """Swap one kernel's variant (tuning, `validate --variants all`): compiled alone, run over the same memory."""
        k = self.plan.kernels[index]
        self.variants[k.name] = variant
        self.functions[k.name] = render(k, variant, self.plan.dtypes, self.layout)
        key = (k.name, variant.key)
        if key not in self._kernel_modules:
            self._kernel_modules[key] = self._compile(module([self.functions[k.name]], [function_name(k)],
                                                             self.layout, self.threads > 1))
        self.calls[index] = [e[function_name(k)] for e in self._instances(self._kernel_modules[key])]

    # -- running --------------------------------------------------------------------------------------------------
    def _call(self, funcs: list) -> None:
        """Call funcs[t](t, threads) on every thread at once, and wait for all."""
        n = self.threads
        try:
            if n == 1:
                funcs[0](self.stores[0], 0, 1)
                return
            pending = [self.pool.submit(funcs[t], self.stores[t], t, n) for t in range(1, n)]
            funcs[0](self.stores[0], 0, n)
            for f in pending:
                f.result()
        except wasmtime.Trap as e:
            raise RuntimeError(f"a WebAssembly kernel trapped: {e}") from None

    def _view(self, name: str, count: int) -> np.ndarray:
        dtype = DEVICE_DTYPES[self.plan.dtypes[name]]
        off = self.layout.offsets[name]
        return self.mem[off:off + 4 * count].view(dtype)

    def _write_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        for n, arr in device_inputs(self.plan, feeds).items():
            np.copyto(self._view(n, arr.size), arr.reshape(-1))

    def _fresh(self) -> None:
        if self._built != {k: v.key for k, v in self.variants.items()}:
            self._build()

    def _load_variants(self) -> list[str]:
        return [self.variants[k.name].key for k in self.plan.kernels[:self.plan.load]]

    def load(self) -> None:
        """The plan module's load(t, nt): the load-time kernels (the first `plan.load`), which write buffers that no
        forward pass writes."""
        self._fresh()
        if self.plan.load:
            self._call(self._load)
            self.load_runs += 1
        self._loaded_with = self._load_variants()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One forward pass: the plan module's run(t, nt) (after its load(t, nt) again if a load-time kernel changed
        variant since it ran)."""
        self._write_inputs(feeds)
        self._fresh()
        if self._load_variants() != self._loaded_with:
            self.load()
        self._call(self._run)
        return self.plan.gather_outputs(feeds, self.read)

    def run_kernels(self, which) -> None:
        """Run only the given kernels (by index), in order, on the memory as it is."""
        for i in which:
            self._call(self.calls[i])

    def kernel(self, index: int):
        """A callable that runs kernel `index` as its variant is now, even after later set_variant calls (to time
        variants side by side over the same memory)."""
        funcs = list(self.calls[index])
        return lambda: self._call(funcs)

    def read(self, name: str) -> np.ndarray:
        """The current contents of a value (a copy)."""
        shape = self.plan.shapes[name]
        raw = self._view(name, int(np.prod(shape, dtype=np.int64)))
        return raw.astype(self.plan.dtypes[name]).reshape(shape)

    def time(self, which=None, repeats: int = 10, warmup: int = 2) -> float:
        """Median seconds of the selected kernels (a forward pass, the plan module's run, by default).
        Single-threaded, the clock is the calling thread's CPU time (wasm runs on it), so other processes on the
        machine do not count; with threads, wall-clock time."""
        if which is None:
            self._fresh()
        clock = time.thread_time if self.threads == 1 else time.perf_counter
        times = []
        for r in range(repeats + warmup):
            t = clock()
            if which is None:
                self._call(self._run)
            else:
                self.run_kernels(which)
            if r >= warmup:
                times.append(clock() - t)
        return float(np.median(times))
