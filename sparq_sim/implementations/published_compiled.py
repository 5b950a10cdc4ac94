"""The published torch.compile kernels: attn-compiled (dense) and sparq-attn-compiled(-oneK)."""

from sparq_sim.implementations.published_common import PublishedImplementation

IMPLEMENTATION = PublishedImplementation(
    "published-compiled",
    "published torch.compile kernels: attn-compiled and sparq-attn-compiled(-oneK)",
    dense="attn-compiled", sparq="sparq-attn-compiled", sparq_once="sparq-attn-compiled-oneK")
