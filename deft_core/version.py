"""Versions of the package and of the data contracts. Bump SCHEMA_VERSION on any change to
:mod:`deft_core.schema` (and add a test for the change); bump PIPELINE_VERSION when extraction
results would change for the same input.

Schema history (what each version added; :data:`READABLE_SCHEMA_VERSIONS` are the versions this code
still reads, older shards being upgraded on read as :mod:`deft_core.schema` says):

- 1: the affordance sample of DESIGN.md §3.
- 2 (2026-11-27): ``contact_mapping`` — how the contact points reached the first frame v1 (``object``,
  ``background`` or ``identity``; null in version-1 shards). Nothing a model reads changed, so
  checkpoints trained on version-1 shards still load.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
PIPELINE_VERSION = "0.1.0"
