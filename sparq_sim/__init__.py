"""sparq-sim: predict, simulate and measure how fast SparQ Attention decodes on a device.

The prediction path (this package outside ``sparq_sim.kernels``) needs numpy and simpy only,
so ``sparq-sim predict`` starts fast and installs light; torch is for the kernels.
"""

__version__ = "0.1.0"

from sparq_sim.errors import UserError  # noqa: E402

__all__ = ["UserError", "__version__"]
