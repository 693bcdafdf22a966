"""The procedural MuJoCo world shared by the data generator and the robot simulator (DESIGN.md §5).

Modules (all generate MJCF from code; no external meshes):

- :mod:`deft_core.world.objects` — the tabletop objects of the nine tasks, train/test variants
- :mod:`deft_core.world.robot_hand` — the 16-DoF four-finger robot hand
- :mod:`deft_core.world.xarm6` — the xArm6 arm from UFactory's modified-DH table, and its FK
- :mod:`deft_core.world.kinematics` — damped-least-squares IK on a MuJoCo site
- :mod:`deft_core.world.robot_scene` — table + arm + hand + task objects + overhead RGB-D camera

Importing this package imports nothing heavy; ``mujoco`` is imported only by the modules that compile
or simulate models (``kinematics``, and the tests).
"""
