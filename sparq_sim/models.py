"""Model shapes: the presets users name and the dataclass that holds one.

Only what decoding traffic depends on: layers, query and KV heads, head size, width, and the
parameter count (weights read once per decoding step). Sources: the models' config.json on
Hugging Face and their papers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial

from sparq_sim.config_flags import flag
from sparq_sim.errors import UserError
from sparq_sim.units import parse_number, parse_positive_int

# Upper bounds of the shape flags: far above any real model, low enough that every count the
# traffic model and the simulator form stays finite and exact.
MAX_SHAPE = 4096          # layers, heads, KV heads, head dimension
MAX_D_MODEL = 1 << 20
MAX_PARAMS = 1e15
DEFAULT_MODEL = "llama-2-7b"
_SHAPE = partial(parse_positive_int, maximum=MAX_SHAPE)


def _parse_params(text, what: str) -> float:
    return parse_number(text, what, 0, MAX_PARAMS, "6.7e9")


def _preset_help() -> str:
    return f"model preset: {', '.join(PRESETS)} (default {DEFAULT_MODEL})"


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only transformer as far as decoding traffic is concerned.

    On the command line, --model names the preset and each shape flag overrides its field."""

    name: str = field(metadata=flag("--model", metavar="PRESET", help=_preset_help,
                                    default=DEFAULT_MODEL))
    layers: int = field(metadata=flag(parse=_SHAPE, help="number of layers"))
    heads: int = field(metadata=flag(parse=_SHAPE, help="query heads"))
    kv_heads: int = field(metadata=flag(parse=_SHAPE, help="key/value heads (GQA when fewer than heads)"))
    head_dim: int = field(metadata=flag(parse=_SHAPE, help="head dimension d_h"))
    d_model: int = field(metadata=flag(parse=partial(parse_positive_int, maximum=MAX_D_MODEL), help="model width"))
    params: float = field(metadata=flag(parse=_parse_params, help="parameter count, e.g. 6.7e9"))  # all weights

    def __post_init__(self):
        for name in ("layers", "heads", "kv_heads", "head_dim", "d_model"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"model {self.name}: {name} must be a positive integer, got {value!r}")
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


# Source of each row: the model's config.json on Hugging Face (huggingface.co/<repo>/blob/main/config.json);
# params is its total parameter count, rounded (exact count in the comment of the row).
_PRESET_ROWS = (
    # name,       layers, heads, kv_heads, head_dim, d_model, params,  Hugging Face repo
    ("llama-2-7b", 32, 32, 32, 128, 4096, 6.738e9, "meta-llama/Llama-2-7b-hf"),       # 6,738,415,616
    ("llama-2-13b", 40, 40, 40, 128, 5120, 13.016e9, "meta-llama/Llama-2-13b-hf"),    # 13,015,864,320
    ("llama-2-70b", 80, 64, 8, 128, 8192, 68.977e9, "meta-llama/Llama-2-70b-hf"),     # 68,976,648,192
    ("llama-3-8b", 32, 32, 8, 128, 4096, 8.030e9, "meta-llama/Meta-Llama-3-8B"),      # 8,030,261,248
    ("llama-3-70b", 80, 64, 8, 128, 8192, 70.554e9, "meta-llama/Meta-Llama-3-70B"),   # 70,553,706,496
    ("mistral-7b", 32, 32, 8, 128, 4096, 7.242e9, "mistralai/Mistral-7B-v0.1"),       # 7,241,732,096
    ("gemma-7b", 28, 16, 16, 256, 3072, 8.538e9, "google/gemma-7b"),                 # 8,537,680,896
    ("pythia-6.9b", 32, 32, 32, 128, 4096, 6.857e9, "EleutherAI/pythia-6.9b"),        # 6,857,302,016
)
PRESETS = {row[0]: ModelConfig(*row[:7]) for row in _PRESET_ROWS}


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
