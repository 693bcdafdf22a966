"""DEFT fine-tuning (paper §3.2): CEM over grasp residuals (Algorithm 1), the durable episode log, and
the residual policies distilled from the best episodes.

Light modules (numpy only): :mod:`.cem`, :mod:`.episode_log`, :mod:`.loop`. The torch policies live in
:mod:`.policies`, :mod:`.cvae`, :mod:`.ablations` and :mod:`.policy_checkpoint` and are imported only
when used.
"""

from deft_core.finetune.cem import CEMConfig, CEMState, ResidualDistribution
from deft_core.finetune.episode_log import EpisodeLog, EpisodeRecord
from deft_core.finetune.loop import (VOID, EpisodeResult, FinetuneConfig, FinetuneEnv, FinetuneResult,
                                     Observation, ProgressEvent, RewardQuery, run_finetune, task_reward)

__all__ = ["CEMConfig", "CEMState", "ResidualDistribution", "EpisodeLog", "EpisodeRecord", "VOID",
           "EpisodeResult", "FinetuneConfig", "FinetuneEnv", "FinetuneResult", "Observation",
           "ProgressEvent", "RewardQuery", "run_finetune", "task_reward"]
