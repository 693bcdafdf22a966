"""Synthetic egocentric video in the native layouts of Ego4D, EPIC-Kitchens-100 and HOI4D (DESIGN.md §5).

``render`` produces :class:`~pipelines.synth.clip.SynthClip` objects (frames + exact ground truth) from
the procedural MuJoCo world; the per-dataset writers turn them into each dataset's files.
"""
