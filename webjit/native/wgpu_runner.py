"""Run a Plan on a wgpu-py adapter: lavapipe where there is no GPU, a real GPU where there is one.

All buffers, pipelines and bind groups are made once in the constructor, which also runs the plan's load-time
kernels (`Plan.load`) once. `run` writes the inputs, records every other dispatch into one command encoder, copies
the outputs into persistent mappable buffers, and submits once: the only flush of a forward pass is the final read
of the outputs.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..errors import WebjitError
from ..plan import Plan, device_inputs, nbytes
from ..render_wgsl import render
from ..space import Variant, prune

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # silences a harmless warning from the Vulkan loader
import wgpu  # noqa: E402

LIMIT_KEYS = ["max-storage-buffer-binding-size", "max-buffer-size", "max-compute-workgroup-storage-size",
              "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x",
              "max-compute-workgroup-size-y", "max-storage-buffers-per-shader-stage"]
_DEVICE = None


def _device():
    """One device per process, with the adapter's own limits (they exceed WebGPU's defaults on most adapters)."""
    global _DEVICE
    if _DEVICE is None:
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if adapter is None:
            raise WebjitError("no WebGPU adapter found (install mesa-vulkan-drivers for a CPU adapter)")
        features = [f for f in ("timestamp-query",) if f in adapter.features]
        limits = {k: adapter.limits[k] for k in LIMIT_KEYS if k in adapter.limits}
        _DEVICE = (adapter, adapter.request_device_sync(required_features=features, required_limits=limits))
    return _DEVICE


def adapter_info() -> dict:
    adapter, device = _device()
    info = dict(adapter.info)
    return {"vendor": info.get("vendor", ""), "device": info.get("device", ""),
            "adapter_type": info.get("adapter_type", ""), "backend": info.get("backend_type", "")}


def device_limits() -> dict:
    """The device's limits under the names the tuning space uses."""
    _, device = _device()
    lim = device.limits
    return {"maxComputeInvocationsPerWorkgroup": lim["max-compute-invocations-per-workgroup"],
            "maxComputeWorkgroupStorageSize": lim["max-compute-workgroup-storage-size"],
            "maxComputeWorkgroupsPerDimension": lim["max-compute-workgroups-per-dimension"]}


class WgpuRunner:
    def __init__(self, plan: Plan, variants: dict[str, Variant] | None = None):
        self.plan = plan
        _, self.device = _device()
        limits = device_limits()
        self.variants = {}
        for k in plan.kernels:
            v = (variants or {}).get(k.name)
            if v is None:
                fitting = prune(k.space, limits)
                if not fitting:
                    raise WebjitError(f"kernel {k.name} (node '{k.node}'): no variant fits this device's limits")
                v = fitting[0]
            self.variants[k.name] = v
        d = self.device
        usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
        self.weights = {n: d.create_buffer_with_data(data=a.tobytes() or b"\0" * 4, usage=usage)
                        for n, a in plan.weights.items()}
        self.inputs = {n: d.create_buffer(size=nbytes(plan.shapes[n]), usage=usage) for n in plan.inputs}
        self.loaded = {n: d.create_buffer(size=size, usage=usage) for n, size in plan.loaded.items()}
        self.arena = [d.create_buffer(size=size, usage=usage) for size in plan.pool]
        self.readback = {o: d.create_buffer(size=-(-plan.slots[o][1] // 4) * 4, usage=wgpu.BufferUsage.MAP_READ
                                            | wgpu.BufferUsage.COPY_DST) for o in plan.outputs if o in plan.slots}
        self.pipelines: dict[str, object] = {}
        self.sources: dict[str, str] = {}
        self.dispatches = [self._prepare(k) for k in plan.kernels]
        self.per_run = range(plan.load, len(plan.kernels))  # the kernels of a forward pass
        self.load_runs = 0  # how often the load-time kernels ran: once, and again only after one changed variant
        self._loaded_with: list[str] = []
        self.load()

    # -- set-up ---------------------------------------------------------------------------------------------------
    def _buffer(self, name: str):
        for buffers in (self.weights, self.inputs, self.loaded):
            if name in buffers:
                return buffers[name]
        return self.arena[self.plan.slots[name][0]]

    def _binding(self, name: str) -> dict:
        buf = self._buffer(name)
        return {"buffer": buf, "offset": 0, "size": buf.size}

    def pipeline(self, kernel, variant: Variant):
        src = render(kernel, variant, self.plan.dtypes)
        if src not in self.pipelines:
            d = self.device
            entries = [{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE,
                        "buffer": {"type": wgpu.BufferBindingType.read_only_storage}} for i in range(len(kernel.inputs))]
            entries += [{"binding": len(kernel.inputs) + i, "visibility": wgpu.ShaderStage.COMPUTE,
                         "buffer": {"type": wgpu.BufferBindingType.storage}} for i in range(len(kernel.outputs))]
            layout = d.create_bind_group_layout(entries=entries)
            try:
                module = d.create_shader_module(code=src)
                pipe = d.create_compute_pipeline(layout=d.create_pipeline_layout(bind_group_layouts=[layout]),
                                                 compute={"module": module, "entry_point": "main"})
            except Exception as e:
                raise RuntimeError(f"kernel {kernel.name} variant {variant.key} does not compile:\n{e}\n{src}")
            self.pipelines[src] = (pipe, layout)
        return self.pipelines[src], src

    def _prepare(self, kernel, variant: Variant | None = None):
        variant = variant or self.variants[kernel.name]
        (pipe, layout), src = self.pipeline(kernel, variant)
        self.sources[kernel.name] = src
        names = list(kernel.inputs) + list(kernel.outputs)
        group = self.device.create_bind_group(layout=layout, entries=[
            {"binding": i, "resource": self._binding(n)} for i, n in enumerate(names)])
        return pipe, group, variant.dispatch

    def set_variant(self, index: int, variant: Variant) -> None:
        """Swap one kernel's variant (used by tuning and by `validate --variants all`)."""
        k = self.plan.kernels[index]
        self.variants[k.name] = variant
        self.dispatches[index] = self._prepare(k, variant)

    # -- running --------------------------------------------------------------------------------------------------
    def _load_variants(self) -> list[str]:
        return [self.variants[k.name].key for k in self.plan.kernels[:self.plan.load]]

    def load(self) -> None:
        """Run the load-time kernels (the first `plan.load`): they write `loaded`, which no forward pass writes."""
        if self.plan.load:
            self.run_kernels(range(self.plan.load))
            self.load_runs += 1
        self._loaded_with = self._load_variants()

    def _write_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        for n, arr in device_inputs(self.plan, feeds).items():
            if arr.size:
                self.device.queue.write_buffer(self.inputs[n], 0, arr.tobytes())

    def _encode(self, encoder, which=None) -> None:
        """Record the dispatches of the kernels `which` (indices; default: a forward pass, `per_run`)."""
        which = self.per_run if which is None else which
        cp = encoder.begin_compute_pass()
        for i, (pipe, group, grid) in enumerate(self.dispatches):
            if i in which:
                cp.set_pipeline(pipe)
                cp.set_bind_group(0, group)
                cp.dispatch_workgroups(*grid)
        cp.end()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One forward pass (after the load-time kernels again if one of them changed variant since they ran)."""
        if self._load_variants() != self._loaded_with:
            self.load()
        self._write_inputs(feeds)
        encoder = self.device.create_command_encoder()
        self._encode(encoder)
        for o, buf in self.readback.items():
            encoder.copy_buffer_to_buffer(self.arena[self.plan.slots[o][0]], 0, buf, 0, buf.size)
        self.device.queue.submit([encoder.finish()])
        return self.plan.gather_outputs(feeds, self._read_back)

    def _read_back(self, name: str) -> np.ndarray:
        buf = self.readback[name]
        buf.map_sync(wgpu.MapMode.READ)
        try:
            return self._decode(name, buf.read_mapped())
        finally:
            buf.unmap()

    def run_kernels(self, which) -> None:
        """Dispatch only the given kernels (by index) on the buffers as they are, and wait."""
        encoder = self.device.create_command_encoder()
        self._encode(encoder, set(which))
        self.device.queue.submit([encoder.finish()])
        self.sync()

    def read(self, name: str) -> np.ndarray:
        """The current contents of a value a kernel writes (test and validation use; allocates)."""
        size = self.plan.loaded[name] if name in self.loaded else self.plan.slots[name][1]
        return self._decode(name, self.device.queue.read_buffer(self._buffer(name), 0, -(-size // 4) * 4))

    def _decode(self, name: str, data) -> np.ndarray:
        dtype, shape = self.plan.dtypes[name], self.plan.shapes[name]
        n = int(np.prod(shape, dtype=np.int64))
        raw = np.frombuffer(data, dtype={"float32": np.float32, "bool": np.uint32}.get(dtype, np.int32))[:n]
        return raw.astype(dtype).reshape(shape)

    def sync(self) -> None:
        """Wait for all submitted work: map a 4-byte buffer written after it."""
        if not hasattr(self, "_fence"):
            self._fence = self.device.create_buffer(size=4, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)
        self._fence.map_sync(wgpu.MapMode.READ)
        self._fence.unmap()

    def time(self, which=None, repeats: int = 10, warmup: int = 2) -> float:
        """Median wall-clock seconds of the selected dispatches (a forward pass by default), submitted alone and
        waited for."""
        times = []
        for r in range(repeats + warmup):
            encoder = self.device.create_command_encoder()
            self._encode(encoder, which)
            t = time.perf_counter()
            self.device.queue.submit([encoder.finish()])
            self.sync()
            if r >= warmup:
                times.append(time.perf_counter() - t)
        return float(np.median(times))
