"""The task-conditioned affordance model f(v'1, T) → (μ̂, θ̂_wrist, P̂) of DEFT §3.1 / Appendix D.

- :mod:`.config`     — :class:`ModelConfig`, :class:`TrainConfig`, presets ``paper`` and ``tiny``
- :mod:`.encoders`   — visual trunks (``resnet``, ``r3m``) and text encoders (``minilm``, ``clip``, ``hash``)
- :mod:`.model`      — :class:`AffordanceModel` (deconv heatmaps + spatial softmax, transformer pose head)
- :mod:`.loss`       — Eq. 1 and validation metrics
- :mod:`.data`       — shard rows → tensors (Ray Data ``map_batches`` or a plain loop), split by video
- :mod:`.train_loop` — the pure ``train_func`` used by Ray Train and by a plain process
- :mod:`.checkpoint` — self-describing export directories; :func:`load_affordance` → predictor
- :mod:`.predictor`  — ``predict(image, object_box, text)`` in image pixels / camera frame
"""

from deft_core.affordance.checkpoint import CheckpointError, load_affordance, load_model, save_export
from deft_core.affordance.config import ModelConfig, TrainConfig, get_preset
from deft_core.affordance.model import AffordanceModel
from deft_core.affordance.predictor import AffordancePrediction, AffordancePredictor

__all__ = ["AffordanceModel", "AffordancePrediction", "AffordancePredictor", "CheckpointError", "ModelConfig",
           "TrainConfig", "get_preset", "load_affordance", "load_model", "save_export"]
