"""Versions of the package and of the data contracts. Bump SCHEMA_VERSION on any change to
:mod:`deft_core.schema` (and add a test for the change); bump PIPELINE_VERSION when extraction
results would change for the same input.

Schema history (what each version added; :data:`READABLE_SCHEMA_VERSIONS` are the versions this code
still reads, older shards being upgraded on read as :mod:`deft_core.schema` says):

- 1: the affordance sample of DESIGN.md §3.
- 2 (2026-11-27): ``contact_mapping`` — how the contact points reached the first frame v1 (``object``,
  ``background`` or ``identity``; null in version-1 shards). Nothing a model reads changed, so
  checkpoints trained on version-1 shards still load.
- 3 (2026-11-27): ``contact_points_source`` — how the contact points were found at the contact frame
  (the skin-colour recipe's ``grasp_centre`` / ``contour`` / ``skin`` / ``box``, or from the dataset's own
  masks: ``hand_mask``, ``hand_mask_depth``, ``hand_mask_<fallback>``; null in older shards). Nothing a
  model reads changed.

Pipeline versions: 0.1.0; 0.2.0 (2026-11-27) HOI4D contact points from its 2Dseg masks and depth.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
PIPELINE_VERSION = "0.2.0"
