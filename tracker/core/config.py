"""Tracking hyper-parameters: one frozen dataclass, validated when built."""
from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["TrackerConfig", "PRESETS", "REMOVED", "parse_model_spec", "without_removed"]


@dataclass(frozen=True)
class TrackerConfig:
    """SiamFC tracking parameters; the defaults are the paper's 3-scale preset.

    Sizes are in pixels. ``scale_lr`` and ``window_influence`` are blend factors in [0, 1]
    (``scale_lr``: how far the box size moves towards the new estimate each frame, from the
    scale pyramid or, for weights with a box head, towards the chosen proposal, scaled by its
    penalised score: see :func:`tracker.core.postprocess.find_box`).
    ``lost_threshold`` applies to :attr:`TrackResult.score` in [0, 1] (the network's probability for the
    NanoTrack networks, the peak relative to the first frame's for the others).
    """

    exemplar_sz: int | None = None  # crop sizes, px; None: the network's own (127/255 for SiamFC's networks,
    instance_sz: int | None = None  # 129/257 for effnet-lite0, whose search size works at any 32 k + 1 px)
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    window_influence: float = 0.176
    response_up: int = 16
    min_scale: float = 0.2  # box size never shrinks below this times the initial size
    max_scale: float = 5.0  # nor grows beyond this
    lost_threshold: float = 0.5
    template_lr: float = 0.0  # exemplar update rate on frames not lost; 0 keeps SiamFC's fixed exemplar
    penalty_k: float = 0.04  # box heads only: penalty on the size/aspect change a proposal implies (SiamFC++'s value)
    box_head: bool = True  # use the network's box head when it has one (False: the scale pyramid, response only)
    size_bias: bool = True  # box heads: divide proposals by the head's size error at the first frame (postprocess.size_bias)
    scale_every: int = 1  # image pyramid on every N-th frame (the first after init included), the current scale alone between;
    # scale_lr stays a rate per frame: a scale frame moves the size 1 - (1 - scale_lr) ** N of the way. Ignored by
    # box heads (one crop per frame already)
    psr_score: bool = False  # score = peak score x the response's peak-to-sidelobe ratio relative to the first frame's
    long_term: bool = False  # when lost: hold the last box, then search the whole frame and re-acquire (tracker.core.redetect)
    lost_frames: int = 3  # long_term: consecutive lost frames before the whole-frame search starts
    redetect_threshold: float = 0.5  # long_term: score a whole-frame peak needs to be re-acquired (>= lost_threshold)
    search_tiles: int = 0  # long_term: at most this many search crops per lost frame, in turn over the frame; 0: all
    half: bool = field(default=False)  # fp16 network on CUDA

    def __post_init__(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"TrackerConfig: {msg}")

        # Types first (values from JSON or --config can be anything): the range checks below compare numbers.
        for f in dataclasses.fields(self):
            v, kind = getattr(self, f.name), _KINDS[f.name]
            if kind is None:
                continue
            if kind == "bool":
                ok = isinstance(v, (bool, np.bool_))
            elif kind == "int":
                ok = isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
            else:
                ok = isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
            need(ok, f"{f.name} must be {_KIND_WORDS[kind]}, got {v!r} ({type(v).__name__})")

        for name in ("exemplar_sz", "instance_sz"):
            v = getattr(self, name)
            need(v is None or (isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and v > 0),
                 f"{name} must be a positive int or None, got {v!r}")
        if self.exemplar_sz is not None and self.instance_sz is not None:
            need(self.instance_sz > self.exemplar_sz,
                 f"instance_sz ({self.instance_sz}) must exceed exemplar_sz ({self.exemplar_sz})")
        need(self.context >= 0, f"context must be >= 0, got {self.context}")
        need(self.scale_num >= 1 and self.scale_num % 2 == 1, f"scale_num must be odd and >= 1, got {self.scale_num}")
        need(self.scale_step >= 1.0, f"scale_step must be >= 1, got {self.scale_step}")
        need(0 < self.scale_penalty <= 1, f"scale_penalty must be in (0, 1], got {self.scale_penalty}")
        need(0 <= self.scale_lr <= 1, f"scale_lr must be in [0, 1], got {self.scale_lr}")
        need(0 <= self.window_influence <= 1, f"window_influence must be in [0, 1], got {self.window_influence}")
        need(self.response_up >= 1, f"response_up must be >= 1, got {self.response_up}")
        need(0 < self.min_scale <= 1 <= self.max_scale, f"need 0 < min_scale <= 1 <= max_scale, got {self.min_scale}, {self.max_scale}")
        need(0 <= self.lost_threshold <= 1, f"lost_threshold must be in [0, 1], got {self.lost_threshold}")
        need(0 <= self.template_lr < 1, f"template_lr must be in [0, 1), got {self.template_lr}")
        need(self.penalty_k >= 0, f"penalty_k must be >= 0, got {self.penalty_k}")
        need(isinstance(self.scale_every, int) and self.scale_every >= 1, f"scale_every must be an int >= 1, got "
             f"{self.scale_every!r}")
        need(isinstance(self.lost_frames, int) and self.lost_frames >= 1, f"lost_frames must be an int >= 1, "
             f"got {self.lost_frames!r}")
        need(isinstance(self.search_tiles, int) and self.search_tiles >= 0, f"search_tiles must be an int >= 0, got "
             f"{self.search_tiles!r}")
        need(not self.long_term or self.lost_threshold <= self.redetect_threshold <= 1, f"redetect_threshold must be in [lost_threshold, 1] "
             f"= [{self.lost_threshold}, 1] with long_term (hysteresis: re-acquiring takes more than staying), got "
             f"{self.redetect_threshold}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrackerConfig":
        """Build from a mapping; an unknown key is an error (never silently dropped)."""
        if not isinstance(values, Mapping):
            raise ValueError(f"TrackerConfig: expected an object of tracking parameters (name: value), got "
                             f"{type(values).__name__} {values!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        removed = sorted(set(unknown) & set(REMOVED))
        if removed:
            raise ValueError(f"TrackerConfig: {removed} were removed from siamtrack (they lost on held-out data and "
                             "were off by default; docs/experiments.md, '2026-12-07: options removed')")
        if unknown:
            raise ValueError(f"TrackerConfig: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**dict(values))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "TrackerConfig":
        """A named preset (``"3scale"`` or ``"5scale"``) with optional overrides."""
        if name not in PRESETS:
            raise ValueError(f"TrackerConfig: unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    def replace(self, **overrides: Any) -> "TrackerConfig":
        """A copy with some fields changed (validated, unknown keys rejected)."""
        return self.from_dict({**dataclasses.asdict(self), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_crop_sizes(self, net) -> "TrackerConfig":
        """This config with unset crop sizes (None) filled in with ``net``'s own (``exemplar_sz``/``instance_sz``
        of a :class:`tracker.networks.models.SiamNet` or an ONNX export's network)."""
        if self.exemplar_sz is not None and self.instance_sz is not None:
            return self
        return self.replace(exemplar_sz=self.exemplar_sz or net.exemplar_sz, instance_sz=self.instance_sz or net.instance_sz)

    @property
    def scale_factors(self) -> np.ndarray:
        """The search region's size factors of the scale pyramid, smallest first: ``scale_step ** k`` for
        k = -(scale_num // 2) .. scale_num // 2."""
        n = self.scale_num
        return self.scale_step ** np.linspace(-(n // 2), n // 2, n)


# Each field's type, checked on construction: "int" (sizes, counts), "float" (rates, factors: an int is a float
# too), "bool" (flags); None: checked by its own rule (the crop sizes, which may be None).
_KINDS: dict[str, str | None] = {
    "exemplar_sz": None, "instance_sz": None, "scale_num": "int", "response_up": "int", "scale_every": "int",
    "lost_frames": "int", "search_tiles": "int", "box_head": "bool", "size_bias": "bool", "psr_score": "bool",
    "long_term": "bool", "half": "bool",
    **{k: "float" for k in ("context", "scale_step", "scale_penalty", "scale_lr", "window_influence", "min_scale",
                            "max_scale", "lost_threshold", "template_lr", "penalty_k", "redetect_threshold")},
}
_KIND_WORDS = {"int": "an int", "float": "a number", "bool": "true or false"}
assert set(_KINDS) == {f.name for f in dataclasses.fields(TrackerConfig)}, "a TrackerConfig field has no type check"

# Options that were measured, lost on held-out data and were removed (docs/experiments.md), with the value that
# turned each off (or its default): named in the error; saved configs holding them at these values still load.
REMOVED: dict[str, Any] = {"feature_pyramid": False, "box_size_lr": 0.0, "dcf_weight": 0.0, "dcf_lambda": 1e-2,
                           "dcf_sigma": 0.1, "dcf_rate": 0.02, "memory_size": 0, "memory_every": 10, "memory_score": 0.7,
                           "distractor_weight": 0.0, "distractor_ratio": 0.5, "distractor_size": 8,
                           "search_growth": 0.0, "hold_size": False}


def without_removed(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A saved config (an export's ``model.json``, a weights ``.json``) without the removed options it holds at
    their off values, which older files record; one set otherwise is an error naming ``source``."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{source}: its config must be an object of tracking parameters, got "
                         f"{type(values).__name__} {values!r}")
    on = {k: v for k, v in values.items() if k in REMOVED and v != REMOVED[k]}
    if on:
        raise ValueError(f"{source}: made with {on}, options removed from siamtrack (docs/experiments.md, "
                         "'2026-12-07: options removed'); export or save it again without them")
    return {k: v for k, v in values.items() if k not in REMOVED}

PRESETS: dict[str, dict[str, Any]] = {
    "3scale": dict(scale_num=3, scale_step=1.0375, scale_penalty=0.9745, scale_lr=0.59, window_influence=0.176),
    "5scale": dict(scale_num=5, scale_step=1.0255, scale_penalty=0.962, scale_lr=0.34, window_influence=0.168),
}


def parse_model_spec(spec: str) -> tuple[str, dict]:
    """``NAME[:key=value,...]`` -> (weights name or path, tracking-parameter overrides), e.g.
    ``siamfc-effnet:instance_sz=257`` or ``siamfc-effnet:box_head=false,scale_num=3``; values are JSON, but for
    ``preset``'s, a plain word (``nanotrack-v2:preset=fast``)."""
    name, sep, rest = spec.rpartition(":")
    if not sep or "=" not in rest:  # no overrides (a path may hold ':' itself)
        return spec, {}
    overrides: dict = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--models {spec!r}: expected key=value after ':', got {item!r}")
        text = value.strip().lower() if value.strip().lower() in ("true", "false") else value.strip()
        try:
            overrides[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            if key.strip() != "preset":  # the one key whose value is a plain word (preset=fast)
                raise ValueError(f"--models {spec!r}: {key.strip()}={value.strip()} is not a JSON value") from None
            overrides[key.strip()] = text
    return name, overrides
