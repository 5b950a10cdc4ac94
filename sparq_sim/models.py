"""Model shapes: the presets users name and the dataclass that holds one.

Only what decoding traffic depends on: layers, query and KV heads, head size, width, and the
parameter count (weights read once per decoding step). Sources: the models' config.json on
Hugging Face and their papers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sparq_sim.errors import UserError


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only transformer as far as decoding traffic is concerned."""

    name: str
    layers: int
    heads: int        # query heads
    kv_heads: int     # key/value heads (fewer than heads under grouped-query attention)
    head_dim: int
    d_model: int
    params: float     # parameters read per decoding step (all weights)

    def __post_init__(self):
        for field in ("layers", "heads", "kv_heads", "head_dim", "d_model"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"model {self.name}: {field} must be a positive integer, got {value!r}")
        if self.params <= 0:
            raise UserError(f"model {self.name}: params must be positive, got {self.params!r}")
        if self.heads % self.kv_heads:
            raise UserError(f"model {self.name}: heads ({self.heads}) must be a multiple of "
                            f"kv-heads ({self.kv_heads})")

    @property
    def group(self) -> int:
        """Query heads per KV head (1 without GQA)."""
        return self.heads // self.kv_heads

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json; 6,738,415,616 parameters
    "llama-2-7b": ModelConfig("llama-2-7b", layers=32, heads=32, kv_heads=32, head_dim=128,
                              d_model=4096, params=6.738e9),
    # https://huggingface.co/meta-llama/Llama-2-13b-hf/blob/main/config.json; 13,015,864,320 parameters
    "llama-2-13b": ModelConfig("llama-2-13b", layers=40, heads=40, kv_heads=40, head_dim=128,
                               d_model=5120, params=13.016e9),
    # https://huggingface.co/meta-llama/Llama-2-70b-hf/blob/main/config.json; 68,976,648,192 parameters
    "llama-2-70b": ModelConfig("llama-2-70b", layers=80, heads=64, kv_heads=8, head_dim=128,
                               d_model=8192, params=68.977e9),
    # https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json; 8,030,261,248 parameters
    "llama-3-8b": ModelConfig("llama-3-8b", layers=32, heads=32, kv_heads=8, head_dim=128,
                              d_model=4096, params=8.030e9),
    # https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json; 70,553,706,496 parameters
    "llama-3-70b": ModelConfig("llama-3-70b", layers=80, heads=64, kv_heads=8, head_dim=128,
                               d_model=8192, params=70.554e9),
    # https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json; 7,241,732,096 parameters
    "mistral-7b": ModelConfig("mistral-7b", layers=32, heads=32, kv_heads=8, head_dim=128,
                              d_model=4096, params=7.242e9),
}
DEFAULT_MODEL = "llama-2-7b"


def get_preset(name: str) -> ModelConfig:
    """Look up a preset by name, or raise UserError listing the known ones."""
    key = str(name).strip().lower()
    if key not in PRESETS:
        raise UserError(f"unknown model preset {name!r}: choose from {', '.join(PRESETS)}")
    return PRESETS[key]


def custom_model(base: ModelConfig, **overrides) -> ModelConfig:
    """A preset with some shape fields replaced (None means keep); named 'custom' if changed."""
    changes = {key: value for key, value in overrides.items() if value is not None}
    if not changes:
        return base
    fields = base.to_dict()
    fields.update(changes)
    fields["name"] = "custom" if fields["name"] == base.name else fields["name"]
    if "heads" in changes and "kv_heads" not in changes and base.kv_heads == base.heads:
        fields["kv_heads"] = fields["heads"]
    return ModelConfig(**fields)
