"""MuJoCo simulation of the workcell for the ``sim`` backends (imports mujoco; never imported by ``import robot``)."""
