"""The published eager PyTorch kernels: attn-torch (dense) and sparq-attn-torch(-oneK) (SparQ).

Phases, launches and bytes are in ``published_common``; the timer that knows their costs is
``--timing calibrated`` (docs/validation.md).
"""

from sparq_sim.implementations.published_common import PublishedImplementation

IMPLEMENTATION = PublishedImplementation(
    "published-torch",
    "published eager PyTorch kernels: attn-torch and sparq-attn-torch(-oneK), gathered copies written and read back",
    dense="attn-torch", sparq="sparq-attn-torch", sparq_once="sparq-attn-torch-oneK")
