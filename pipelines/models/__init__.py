"""Model-backed extraction stages (hand-object detection, open-vocabulary boxes, segmentation) and the
Ray Data actor wrappers that run them on CPU or GPU actor pools. Nothing heavy is imported here:
backends import ``transformers`` / ``detectron2`` only when made (see :mod:`pipelines.models.base`)."""
