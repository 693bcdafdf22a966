"""DEFT core: shared, light building blocks used by both the offline pipeline and the robot process.

Never imports ``ray`` or ``pipelines`` (see DESIGN.md §2). Public contracts:

- :mod:`deft_core.schema`     — the versioned affordance-sample Parquet schema and the errors table
- :mod:`deft_core.grasp`      — the 22-d grasp-parameter vector ξ = (μ, θ, P) and Table 4's sigmas
- :mod:`deft_core.trajectory` — the post-grasp trajectory τ (40 × 6 wrist displacements)
- :mod:`deft_core.geometry`   — rotations (axis-angle, Euler xyz, matrices, quaternions) and frames
- :mod:`deft_core.world`      — the procedural MuJoCo world (objects, human hand, robot hand, xArm6)
"""

from deft_core.version import PIPELINE_VERSION, SCHEMA_VERSION, __version__

__all__ = ["__version__", "SCHEMA_VERSION", "PIPELINE_VERSION"]
