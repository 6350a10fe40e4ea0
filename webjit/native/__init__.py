"""Run plans natively: WebGPU through wgpu-py (lavapipe where there is no GPU)."""
from .wgpu_runner import WgpuRunner, adapter_info

__all__ = ["WgpuRunner", "adapter_info"]
