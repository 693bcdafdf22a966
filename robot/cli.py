"""``deft-robot``: run DEFT on a robot (xArm6 + 16-DoF hand + RGB-D camera) or in the MuJoCo simulator.

Examples::

    deft-robot tasks
"""

from __future__ import annotations

import sys

from deft_core.cli_util import dispatch

#: command → (module, help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "world": ("robot.cli_world", "describe the procedural MuJoCo world (scenes, objects, hands)"),
    "calibrate-camera": ("robot.cli_calibrate", "camera extrinsics T_base_camera from checkerboard/ArUco images"),
    "calibrate-hand": ("robot.cli_calibrate", "fit the hand's joint→motor mapping from calibration pairs"),
    "tasks": ("robot.cli_tasks", "list the nine tasks: objects by split, success criteria, rewards"),
    "run-episode": ("robot.cli_run_episode", "execute one grasp (sim or robot) and save initial/final images, optional MP4"),
    "finetune": ("robot.cli_finetune", "fine-tune a task's grasps with CEM (Algorithm 1) from a prior; resumable"),
    "distill": ("robot.cli_distill", "distil a fine-tuning run's best episodes into a residual policy (cVAE or ablation)"),
    "eval": ("robot.cli_eval", "success rate of a policy on train/test objects over held-out resets"),
    "show": ("robot.cli_show", "a contact sheet of a run's episodes or an evaluation's trials: images, outcomes"),
    "report": ("robot.cli_report", "Table 2/3-style tables (markdown + JSON) and improvement curves from the runs"),
}


def main(argv=None) -> int:
    return dispatch("deft-robot", "DEFT robot process (no Ray).", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
