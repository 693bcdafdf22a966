"""The nine tasks of the paper (§4) with Appendix F's success criteria computed from simulator
snapshots (:mod:`robot.tasks.base`) and a shaped reward in [0, 1] for CEM.

Default post-grasp trajectories τ are scripted in the **robot base frame** (x away from the robot,
y to its left, z up; 40 steps of ``(dx, dy, dz, droll, dpitch, dyaw)``, the rotation part being the
change of extrinsic Euler xyz angles of the wrist). They stand in for the paper's single human
demonstration per task; pass a demonstration file (``--trajectory``) to replace them.
"""

from __future__ import annotations

import numpy as np

from deft_core.trajectory import TRAJECTORY_DIM, TRAJECTORY_STEPS
from robot.tasks.base import Task, TaskOutcome, ramp, shaped, steps_profile

#: how far above its start an object must be to count as lifted (m)
LIFT_M = 0.03


def _deltas(**axes) -> np.ndarray:
    """Build a (40, 6) τ from per-axis increment arrays: ``_deltas(dz=..., droll=...)``."""
    idx = {"dx": 0, "dy": 1, "dz": 2, "droll": 3, "dpitch": 4, "dyaw": 5}
    d = np.zeros((TRAJECTORY_STEPS, TRAJECTORY_DIM))
    for k, v in axes.items():
        d[:, idx[k]] += v
    return d


def _lift(initial, final, role="object") -> float:
    return float(final.bodies[role].position[2] - initial.bodies[role].position[2])


class PickCup(Task):
    name = "pick_cup"
    criterion = "the cup leaves the table (≥ 3 cm up, no cup–table contact at the end) and the hand touches it throughout the trajectory"
    reward_terms = "0.5·hold fraction + 0.5·min(lift / 8 cm, 1); 1.0 on success"

    def default_trajectory_deltas(self):
        return _deltas(dz=steps_profile(0.15))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        lift, hold = _lift(first, last), self.hold_fraction(after)
        ok = self.held_throughout(after) and lift >= LIFT_M and not last.touching("object", "table")
        return TaskOutcome(ok, shaped(ok, 0.5 * hold + 0.5 * ramp(lift, 0.08)), {"lift_m": lift, "hold_fraction": hold})


class PourCup(Task):
    name = "pour_cup"
    criterion = "the cup is held throughout and turns so its top is lower than its base (tilt > 90°) while held"
    reward_terms = "0.4·hold fraction + 0.6·min(max tilt while held / 90°, 1); 1.0 on success"
    #: rotation of the wrist after lifting (rad, about the base x axis) and the lift (m)
    pour_angle = 2.5
    lift = 0.10

    def default_trajectory_deltas(self):
        return _deltas(dz=steps_profile(self.lift, 0, 15), droll=steps_profile(self.pour_angle, 15, 40))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        hold = self.hold_fraction(after)
        tilts = [np.degrees(np.arccos(np.clip(s.bodies["object"].up[2], -1, 1))) for s in after if s.touching("hand", "object")]
        tilt = float(max(tilts, default=0.0))
        ok = self.held_throughout(after) and tilt > 90.0
        return TaskOutcome(ok, shaped(ok, 0.4 * hold + 0.6 * ramp(tilt, 90.0)), {"max_tilt_deg": tilt, "hold_fraction": hold})


class OpenDrawer(Task):
    name = "open_drawer"
    criterion = "the drawer (initially 3 cm open) ends at least 1 cm more open than at the start"
    reward_terms = "0.3·(hand touched the drawer) + 0.7·min(opening gain / 1 cm, 1); 1.0 on success"
    pull = 0.12

    def default_trajectory_deltas(self):
        return _deltas(dx=steps_profile(-self.pull))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        gain = float(last.joints["drawer"] - first.joints["drawer"])
        touched = float(any(s.touching("hand", "object") for s in after))
        ok = gain >= 0.01
        return TaskOutcome(ok, shaped(ok, 0.3 * touched + 0.7 * ramp(gain, 0.01)), {"opening_gain_m": gain, "touched": bool(touched)})


class PickSpoon(Task):
    name = "pick_spoon"
    criterion = "the spoon is not in contact with the table at the end (and is ≥ 3 cm above where it lay)"
    reward_terms = "0.5·hold fraction + 0.5·min(lift / 5 cm, 1); 1.0 on success"

    def default_trajectory_deltas(self):
        return _deltas(dz=steps_profile(0.15))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        lift, hold = _lift(first, last), self.hold_fraction(after)
        ok = not last.touching("object", "table") and lift >= LIFT_M
        return TaskOutcome(ok, shaped(ok, 0.5 * hold + 0.5 * ramp(lift, 0.05)), {"lift_m": lift, "hold_fraction": hold})


def swept_angle(after, centre_key="support", point_key="object:body", require_hold=True) -> float:
    """Signed angle (rad) a point sweeps around a vertical axis through ``centre_key``'s body, summed over
    consecutive snapshots in which the hand holds the object (when ``require_hold``)."""
    total, prev = 0.0, None
    for s in after:
        c = s.bodies[centre_key].position
        p = s.points[point_key]
        ang = float(np.arctan2(p[1] - c[1], p[0] - c[0]))
        held = s.touching("hand", "object") or not require_hold
        if prev is not None and held:
            total += float((ang - prev + np.pi) % (2 * np.pi) - np.pi)
        prev = ang
    return total


class StirSpoon(Task):
    name = "stir_spoon"
    criterion = "the spoon's bowl sweeps ≥ 180° around the pot's axis while the hand holds the spoon"
    reward_terms = "0.3·hold fraction + 0.7·min(|swept angle| / 180°, 1); 1.0 on success"
    #: the wrist first moves ``push`` m towards the pot axis (+x) and lifts ``lift`` m (bowl off the floor,
    #: handle off the rim), then circles ``turns`` times with ``radius`` m about a vertical axis ``radius``
    #: ahead (+x) of it — for the spoon standing at the pot's near wall this circles the bowl round the axis
    radius = 0.03
    turns = 1.0
    push, lift = 0.03, 0.03

    def default_trajectory_deltas(self):
        ang = np.linspace(np.pi, np.pi + 2 * np.pi * self.turns, 31)
        d = _deltas(dz=steps_profile(self.lift, 0, 5), dx=steps_profile(self.push, 4, 9))
        d[9:39, 0] += np.diff(self.radius * np.cos(ang))
        d[9:39, 1] += np.diff(self.radius * np.sin(ang))
        return d

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        swept, hold = swept_angle(after), self.hold_fraction(after)
        ok = abs(swept) >= np.pi and self.held_throughout(after)
        return TaskOutcome(ok, shaped(ok, 0.3 * hold + 0.7 * ramp(abs(swept), np.pi)), {"swept_deg": float(np.degrees(swept)), "hold_fraction": hold})


class ScoopGrape(Task):
    name = "scoop_grape"
    criterion = "at the end the hand holds the spoon and a grape rests on the spoon, off the table"
    reward_terms = "0.3·hold fraction + 0.3·min(spoon lift / 5 cm, 1) + 0.4·(grape on spoon at the end); 1.0 on success"
    support_shapes = ("single",)

    def default_trajectory_deltas(self):
        # push the bowl under the grape (along +x, the tool-head direction when the spoon points away), then lift
        return _deltas(dx=steps_profile(0.06, 0, 15), dz=steps_profile(0.10, 15, 40), droll=steps_profile(0.0))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        hold, lift = self.hold_fraction(after), _lift(first, last)
        on_spoon = last.touching("object", "support") and not last.touching("support", "table")
        ok = on_spoon and last.touching("hand", "object") and lift >= LIFT_M
        return TaskOutcome(ok, shaped(ok, 0.3 * hold + 0.3 * ramp(lift, 0.05) + 0.4 * on_spoon),
                           {"grape_on_spoon": bool(on_spoon), "lift_m": lift, "hold_fraction": hold})


class PickGrape(Task):
    name = "pick_grape"
    criterion = "the whole bunch (one rigid body in sim: no grape can fall alone) is held above the table at the end"
    reward_terms = "0.5·hold fraction + 0.5·min(lift / 5 cm, 1); 1.0 on success"
    object_shapes = ("bunch",)

    def default_trajectory_deltas(self):
        return _deltas(dz=steps_profile(0.15))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        lift, hold = _lift(first, last), self.hold_fraction(after)
        ok = last.touching("hand", "object") and not last.touching("object", "table") and lift >= LIFT_M
        return TaskOutcome(ok, shaped(ok, 0.5 * hold + 0.5 * ramp(lift, 0.05)), {"lift_m": lift, "hold_fraction": hold})


class FlipBagel(Task):
    name = "flip_bagel"
    criterion = "the bagel's face that is up at the end is the one that was down at the start (up axis turned > 90°)"
    reward_terms = "0.2·hold fraction (spatula) + 0.8·min(bagel turn / 180°, 1); 1.0 on success"

    def default_trajectory_deltas(self):
        return _deltas(dx=steps_profile(0.08, 0, 12), dz=steps_profile(0.08, 12, 24), droll=steps_profile(2.6, 24, 40))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        u0, u1 = first.bodies["support"].up, last.bodies["support"].up
        turn = float(np.degrees(np.arccos(np.clip(u0 @ u1, -1, 1))))
        hold = self.hold_fraction(after)
        ok = bool(u0[2] > 0 > u1[2])
        return TaskOutcome(ok, shaped(ok, 0.2 * hold + 0.8 * ramp(turn, 180.0)), {"bagel_turn_deg": turn, "hold_fraction": hold})


class SqueezeLemon(Task):
    name = "squeeze_lemon"
    criterion = "at the end the hand holds the lemon on top of the juicer (lemon touches the juicer, centre within its rim)"
    reward_terms = "0.3·hold fraction + 0.4·closeness to the juicer axis + 0.3·(lemon on juicer); 1.0 on success"
    #: the juicer's rim radius used for "on top" (m); the scene's juicers are 7.5–8.5 cm
    rim_radius = 0.07

    def default_trajectory_deltas(self):
        # the lemon lies beside the juicer (scene: juicer +y of the lemon): lift, carry over, press down
        return _deltas(dz=steps_profile(0.10, 0, 10) + steps_profile(-0.06, 30, 40), dy=steps_profile(0.15, 10, 30))

    def evaluate(self, trace):
        first, after, last = self.split_trace(trace)
        hold = self.hold_fraction(after)
        d = float(np.linalg.norm(last.bodies["object"].position[:2] - last.bodies["support"].position[:2]))
        on = last.touching("object", "support") and not last.touching("object", "table")
        ok = on and d <= self.rim_radius and last.touching("hand", "object")
        return TaskOutcome(ok, shaped(ok, 0.3 * hold + 0.4 * ramp(0.2 - d, 0.2) + 0.3 * on),
                           {"lemon_to_juicer_axis_m": d, "on_juicer": bool(on), "hold_fraction": hold})


TASK_CLASSES = (PickCup, PourCup, OpenDrawer, PickSpoon, ScoopGrape, StirSpoon, PickGrape, FlipBagel, SqueezeLemon)
