"""The published Triton SparQ kernels, sparq-attn-triton(-oneK): gathers fused into the dot
products, top-k/softmax/lerp left to PyTorch; dense baseline is the memory-efficient SDPA kernel."""

from sparq_sim.implementations.published_common import PublishedImplementation

IMPLEMENTATION = PublishedImplementation(
    "published-triton",
    "published Triton SparQ (gathers fused, top-k/softmax in PyTorch) against SDPA memory-efficient dense",
    dense="attn-mem-efficient", sparq="sparq-attn-triton", sparq_once="sparq-attn-triton-oneK",
    device_kinds=("gpu",))
