"""The lite tuning space: a literal list of variants per kernel kind, and the rules that prune it.

In the spirit of nnJIT's web-specific lite space: a few dozen candidates per kernel, filtered first by the shape
(no tile much bigger than the problem) and then by the device (`maxComputeInvocationsPerWorkgroup`,
`maxComputeWorkgroupStorageSize`) and a register-pressure rule. What survives is timed at load time.
"""
from __future__ import annotations

from dataclasses import dataclass

# The most a bundle plans for. Each device prunes further with its real limits (`prune(space, adapter_limits)`).
DEFAULT_LIMITS = {"maxComputeInvocationsPerWorkgroup": 256, "maxComputeWorkgroupStorageSize": 32768,
                  "maxComputeWorkgroupSizeX": 256, "maxComputeWorkgroupSizeY": 256,
                  "maxComputeWorkgroupsPerDimension": 65535,
                  "maxStorageBufferBindingSize": 134217728}  # 128 MiB, WebGPU's default: bigger weights are split
MAX_REGISTERS = 96  # f32 values a thread may keep live; beyond this GPUs spill (nnJIT's register filter)

# --- matmul: (BM, BN, TM, TN) output tile per workgroup and per thread, times the K tile. ----------------------
MATMUL_TILES = [(16, 16, 1, 1), (32, 32, 2, 2), (32, 32, 2, 4), (16, 64, 1, 4), (64, 16, 4, 1), (32, 64, 2, 4), (64, 32, 4, 2),
                (64, 64, 4, 4), (32, 128, 2, 8), (128, 32, 8, 2), (64, 128, 4, 8), (128, 64, 8, 4),
                (128, 128, 8, 8)]
MATMUL_TK = [8, 16, 32]
MATMUL_DIRECT = [(2, 2), (4, 4), (4, 8)]  # thread tiles also tried without workgroup memory (no barriers)
MATMUL_VEC4 = [(2, 4), (4, 4), (4, 8), (8, 4), (8, 8)]  # ... and as vec4 loads, where strides allow
# A tile is kept only if threads fit, the staged tiles fit workgroup memory, the accumulators plus one column of
# A and one row of B fit the register budget, and the tile is not over twice the padded problem in either dim.

# --- attention: BQ query rows per workgroup (one per thread), BK keys staged per step. --------------------------
ATTENTION_TILES = [(bq, bk) for bq in (16, 32, 64, 128) for bk in (8, 16, 32, 64)]
# Kept if BQ threads fit, the K and V tiles (BK x D each) fit workgroup memory, and BK <= 2 * keys.

# --- row kernels (softmax, layer/RMS norm): threads cooperating on one row. ------------------------------------
ROW_THREADS = [32, 64, 128, 256]  # kept if it fits, and no more than twice the row length rounded up to 32

# --- one thread per output element (elementwise, gather, reduce, cumsum, concat). -------------------------------
ELEMENTWISE = [(wg, per) for wg in (64, 128, 256) for per in (1, 2, 4)]  # threads, elements per thread


@dataclass(frozen=True)
class Variant:
    """One point of a kernel's tuning space with what it costs the device."""
    values: tuple          # sorted (name, value) pairs: the template's tunables
    dispatch: tuple[int, int, int]
    threads: int
    smem_bytes: int = 0
    registers: int = 0

    @property
    def v(self) -> dict:
        return dict(self.values)

    @property
    def key(self) -> str:
        """A short, file-name-safe id, e.g. 'BM64_BN64_TK16_TM4_TN4'."""
        return "_".join(f"{k}{int(v)}" for k, v in self.values)


def fits(variant: Variant, limits: dict | None = None) -> bool:
    lim = {**DEFAULT_LIMITS, **(limits or {})}
    return (variant.threads <= lim["maxComputeInvocationsPerWorkgroup"]
            and variant.smem_bytes <= lim["maxComputeWorkgroupStorageSize"]
            and variant.registers <= MAX_REGISTERS
            and max(variant.dispatch) <= lim["maxComputeWorkgroupsPerDimension"])


def prune(space: tuple[Variant, ...], limits: dict | None = None) -> tuple[Variant, ...]:
    return tuple(v for v in space if fits(v, limits))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def round_up(a: int, b: int) -> int:
    """a rounded up to a multiple of b."""
    return ceil_div(a, b) * b


def grid(groups: int) -> tuple[int, int, int]:
    """Spread a 1-D count of workgroups over x and y so no dimension exceeds the 65535 limit."""
    if groups <= 65535:
        return (groups, 1, 1)
    y = ceil_div(groups, 65535)
    return (ceil_div(groups, y), y, 1)
