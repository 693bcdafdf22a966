"""Test double for the image hand-pose backends (the fake renderer's rectangle "hand" is not a hand a
real estimator recognises); loaded by the jobs as ``--hand-pose tests.jobs.backends:FixedHandPose``."""

import numpy as np

from pipelines.stages.hand_pose import HandPose


class FixedHandPose:
    name = "fixed"

    def estimate(self, record, frame_rgb, contact):
        if frame_rgb is None or frame_rgb.ndim != 3:
            raise ValueError("needs the decoded contact frame")
        return HandPose(np.array([0.1, 0.2, 0.3]), np.zeros(45), self.name)
