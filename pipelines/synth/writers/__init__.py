"""Dataset-format writers of the synthetic-data generator (Ego4D, EPIC-KITCHENS-100, HOI4D) and the
ground-truth sidecar. See docs/synthetic-data.md for the layouts."""
