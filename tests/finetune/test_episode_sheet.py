"""The fine-tuning run's contact sheet (deft_core.finetune.sheet): every attempt drawn with its own images, the
outcome's frame colour, the elites (CEM's order and tie rule) in gold, missing or damaged images drawn grey and
named instead of stopping the sheet. `deft-robot show`: tests/robot_ft/test_cli_show.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from deft_core.finetune.cem import elite_indices
from deft_core.finetune.episode_log import EpisodeRecord
from deft_core.finetune.sheet import (ELITE, EXECUTED_MU, FAILURE, PRIOR_MU, SCORED, SUCCESS, VOID, SheetLayout,
                                      caption, contact_pixels, elite_episodes, order_records, render_sheet,
                                      render_trials, trial_tiles)

LAYOUT = SheetLayout(thumb=40, columns=3)


def _colour(episode: int, attempt: int, which: str) -> tuple[int, int, int]:
    """A solid colour per image that no frame uses, so a thumbnail can be recognised by one pixel."""
    return (20 + 30 * episode, 60 + 90 * attempt, 100 if which == "initial" else 200)


def _record(log_dir: Path, episode: int, reward, success, attempt: int = 0, status: str = "ok", error=None,
            images: bool = True) -> EpisodeRecord:
    names = {}
    if images:
        (log_dir / "images").mkdir(parents=True, exist_ok=True)
        for which in ("initial", "final"):
            name = f"images/k{episode:04d}_a{attempt}_{which}.png"
            rgb = np.zeros((30, 40, 3), np.uint8) + np.array(_colour(episode, attempt, which), np.uint8)
            cv2.imwrite(str(log_dir / name), rgb[:, :, ::-1])
            names[which] = name
    return EpisodeRecord(task="pick_cup", episode=episode, attempt=attempt, status=status, env_seed=episode,
                         xi=[0.0] * 22, epsilon=[0.0] * 22, executed=[0.0] * 22, reward=reward, success=success,
                         distribution={}, images=names, info={"error": error} if error else {},
                         void_reason="operator: the cup fell over during the reset" if status == "void" else None)


def _run(log_dir: Path) -> list[EpisodeRecord]:
    return [_record(log_dir, 1, 0.2, False),
            _record(log_dir, 2, 1.0, True),
            _record(log_dir, 3, None, None, status="void"),
            _record(log_dir, 3, 0.5, False, attempt=1),
            _record(log_dir, 4, 0.0, False, error="SimArm: controller error 31: collision: the wrist is blocked")]


def _px(img, x, y):
    return tuple(int(v) for v in img.getpixel((x, y)))


def test_each_attempt_is_drawn_with_its_own_images_outcome_colour_and_elite_frame(tmp_path):
    records = _run(tmp_path)
    sheet = render_sheet(tmp_path, records, num_elites=2, layout=LAYOUT)
    assert sheet.unreadable == []
    assert [(e, a) for e, a, _ in sheet.tiles] == [(1, 0), (2, 0), (3, 0), (3, 1), (4, 0)]  # void before its redo
    border = LAYOUT.frame + LAYOUT.elite_frame
    expected_frame = {(1, 0): FAILURE, (2, 0): SUCCESS, (3, 0): VOID, (3, 1): FAILURE, (4, 0): FAILURE}
    elites = {(2, 0), (3, 1)}  # the two best 'ok' rewards: 1.0 and 0.5; the void attempt is never an elite
    for episode, attempt, (x, y, w, h) in sheet.tiles:
        img = sheet.image
        assert _px(img, x + 1, y + 1) == (ELITE if (episode, attempt) in elites else (255, 255, 255))
        assert _px(img, x + LAYOUT.elite_frame + 1, y + LAYOUT.elite_frame + 1) == expected_frame[(episode, attempt)]
        assert _px(img, x + border + 20, y + border + 15) == _colour(episode, attempt, "initial")
        assert _px(img, x + border + LAYOUT.thumb + 2 + 20, y + border + 15) == _colour(episode, attempt, "final")


def test_operator_scores_are_blue_and_sorting_by_reward_follows_cems_tie_rule(tmp_path):
    records = [_record(tmp_path, 1, 0.7, None), _record(tmp_path, 2, 0.9, None), _record(tmp_path, 3, 0.7, None),
               _record(tmp_path, 4, None, None, status="void"), _record(tmp_path, 4, 0.1, None, attempt=1)]
    sheet = render_sheet(tmp_path, records, num_elites=2, layout=LAYOUT, sort="reward")
    # best first; of the two 0.7s the later episode ranks first (as CEM's elites); the void attempt last
    assert [(e, a) for e, a, _ in sheet.tiles] == [(2, 0), (3, 0), (1, 0), (4, 1), (4, 0)]
    assert elite_episodes(records, 2) == {2, 3}
    ok = [r for r in records if r.status == "ok"]
    assert elite_episodes(records, 2) == {ok[i].episode for i in elite_indices([r.reward for r in ok], 2)}
    x, y, _, _ = sheet.tiles[0][2]
    assert _px(sheet.image, x + LAYOUT.elite_frame + 1, y + LAYOUT.elite_frame + 1) == SCORED
    assert [r.episode for r in order_records(records, "episode")] == [1, 2, 3, 4, 4]
    with pytest.raises(ValueError, match="sort must be one of"):
        order_records(records, "time")


def test_missing_and_damaged_images_are_drawn_grey_and_named(tmp_path):
    records = _run(tmp_path)
    (tmp_path / "images" / "k0002_a0_final.png").unlink()
    (tmp_path / "images" / "k0004_a0_initial.png").write_bytes(b"not a png")
    records.append(_record(tmp_path, 5, 0.3, False, images=False))
    sheet = render_sheet(tmp_path, records, num_elites=2, layout=LAYOUT)
    assert sheet.unreadable == ["k 2 final: no such file images/k0002_a0_final.png",
                                "k 4 initial: images/k0004_a0_initial.png is not a readable image",
                                "k 5 initial: not recorded", "k 5 final: not recorded"]
    border = LAYOUT.frame + LAYOUT.elite_frame
    x, y, _, _ = sheet.tiles[1][2]  # episode 2: its initial image drawn, its final one grey
    assert _px(sheet.image, x + border + 20, y + border + 15) == _colour(2, 0, "initial")
    assert _px(sheet.image, x + border + LAYOUT.thumb + 2 + 30, y + border + 3) == (200, 200, 200)


def test_max_tiles_keeps_the_first_and_a_narrow_sheet_keeps_its_header(tmp_path):
    records = _run(tmp_path)
    sheet = render_sheet(tmp_path, records, num_elites=2, layout=SheetLayout(thumb=20, columns=1), max_tiles=2,
                         sort="reward", title="pick_cup: a long title that is wider than one narrow column of tiles")
    assert [(e, a) for e, a, _ in sheet.tiles] == [(2, 0), (3, 1)]
    grid_w = sheet.tiles[0][2][2] + 2 * LAYOUT.gap
    assert sheet.image.width > grid_w  # widened for the header's text instead of cutting it
    with pytest.raises(ValueError, match="max_tiles"):
        render_sheet(tmp_path, records, num_elites=2, max_tiles=0)
    with pytest.raises(ValueError, match="num_elites"):
        render_sheet(tmp_path, records, num_elites=0)


# ------------------------------------------------------------------------- where μ went, on I₀

K = [[40.0, 0.0, 20.0], [0.0, 40.0, 15.0], [0.0, 0.0, 1.0]]  # a 40 × 30 image, camera = base frame
IDENTITY = np.eye(4).tolist()


def _with_camera(record: EpisodeRecord, prior_mu, executed_mu, camera=None) -> EpisodeRecord:
    record.xi[:3] = list(prior_mu)
    record.executed[:3] = list(executed_mu)
    record.info["camera"] = {"K": K, "T_base_camera": IDENTITY} if camera is None else camera
    return record


def test_contact_pixels_project_the_prior_and_executed_mu_through_the_recorded_camera(tmp_path):
    rec = _with_camera(_record(tmp_path, 1, 0.5, False), (0.0, 0.0, 1.0), (0.25, -0.125, 1.0))
    assert contact_pixels(rec) == {"prior": (20.0, 15.0), "executed": (30.0, 10.0)}
    # a camera at (0.3, 0.1, 1.0) m in the base frame, turned 135° about base x: its optical axis (OpenCV z)
    # points down and towards −y at 45°, (0, −√½, −√½); T_base_camera is not its own inverse, so forgetting to
    # invert it (or inverting only the translation) lands elsewhere. The table point √2 m along the axis,
    # (0.3, −0.9, 0), is the principal point; 0.1 m further along the camera's x axis (base x) it is
    # 0.1 / √2 × 40 px to the right.
    c, s_ = np.cos(np.radians(135)), np.sin(np.radians(135))
    T = np.eye(4)
    T[:3, :3] = [[1, 0, 0], [0, c, -s_], [0, s_, c]]
    T[:3, 3] = [0.3, 0.1, 1.0]
    tilted = _with_camera(_record(tmp_path, 2, 0.5, False), (0.3, -0.9, 0.0), (0.4, -0.9, 0.0),
                          {"K": K, "T_base_camera": T.tolist()})
    px = contact_pixels(tilted)
    assert px["prior"] == pytest.approx((20.0, 15.0))
    assert px["executed"] == pytest.approx((20 + 40 * 0.1 / np.sqrt(2), 15.0))
    behind = _with_camera(_record(tmp_path, 3, 0.5, False), (0.0, 0.0, -1.0), (0.0, 0.0, 1.0))
    assert set(contact_pixels(behind)) == {"executed"}  # a point behind the camera is not drawn
    for bad in ({"K": [[1.0, 0.0], [0.0, 1.0]], "T_base_camera": IDENTITY},
                {"K": K, "T_base_camera": [[float("nan")] * 4] * 4}, {"K": "K", "T_base_camera": IDENTITY}, "camera"):
        assert contact_pixels(_with_camera(_record(tmp_path, 4, 0.5, False), (0, 0, 1), (0, 0, 1), bad)) == {}
    assert contact_pixels(_record(tmp_path, 5, 0.5, False)) == {}  # no camera kept: no marks, no error


def test_a_run_with_its_camera_gets_marks_on_i0_and_a_zoom_panel(tmp_path):
    records = [_with_camera(_record(tmp_path, 1, 1.0, True), (0.0, 0.0, 1.0), (0.25, 0.0, 1.0)),
               _record(tmp_path, 2, 0.2, False)]  # a record without a camera in the same run
    sheet = render_sheet(tmp_path, records, num_elites=1, layout=LAYOUT)
    border = LAYOUT.frame + LAYOUT.elite_frame
    (_, _, (x, y, w, _)), (_, _, (x2, y2, _, _)) = sheet.tiles
    assert w == 3 * LAYOUT.thumb + 2 * border + 4  # I₀, the zoom, the final image
    img = np.asarray(sheet.image)

    def panel(j, tx=x, ty=y):
        left = tx + border + j * (LAYOUT.thumb + 2)
        return img[ty + border:ty + border + 30, left:left + LAYOUT.thumb]

    # on I₀ (thumb = image width: scale 1) the executed μ is a magenta dot at (30, 15), the prior a cyan ring
    assert tuple(panel(0)[15, 30]) == EXECUTED_MU
    assert (panel(0) == PRIOR_MU).all(axis=-1).any() and tuple(panel(0)[15, 20]) != PRIOR_MU  # a ring, not a disc
    # the zoom enlarges I₀ around the marks: the 10 px between them on I₀ become 10 × 40/30 (a 30-px square of
    # I₀, as wide as the image is high and enough for both marks, drawn 40 px wide)
    def centre(p, colour):
        ys, xs = np.nonzero((p == colour).all(axis=-1))
        return np.array([xs.mean(), ys.mean()])

    def gap(p):
        return np.linalg.norm(centre(p, EXECUTED_MU) - centre(p, PRIOR_MU))

    assert gap(panel(0)) == pytest.approx(10, abs=1)
    assert gap(panel(1)) == pytest.approx(10 * 40 / 30, abs=1)
    assert tuple(panel(2)[15, 20]) == _colour(1, 0, "final")
    # the record without a camera: its I₀ unmarked, its zoom panel a grey placeholder
    assert not (panel(0, x2, y2) == EXECUTED_MU).all(axis=-1).any()
    assert tuple(panel(1, x2, y2)[2, 2]) == (200, 200, 200)


def test_rows_hold_five_tiles_of_two_images_or_four_of_three(tmp_path):
    def first_row(records):
        tiles = render_sheet(tmp_path, records, 1, layout=SheetLayout(thumb=40)).tiles
        return sum(box[1] == tiles[0][2][1] for _, _, box in tiles)

    plain = [_record(tmp_path, k, 0.1 * k, False) for k in range(1, 7)]
    assert first_row(plain) == 5
    assert first_row([_with_camera(r, (0, 0, 1), (0, 0, 1)) for r in plain]) == 4


def test_the_loop_keeps_the_initial_images_camera_when_the_environment_reports_one(tmp_path, toy_env_cls):
    from deft_core.finetune.cem import CEMConfig
    from deft_core.finetune.loop import FinetuneConfig, run_finetune

    class CameraEnv(toy_env_cls):
        def reset(self, episode, seed):
            obs = super().reset(episode, seed)
            obs.extras.update(K=np.array(K), T_base_camera=np.eye(4))
            return obs

    cfg = FinetuneConfig(task="pick_cup", seed=1, cem=CEMConfig(num_elites=1, warmup_episodes=1, total_episodes=2))
    env = CameraEnv()
    records = run_finetune(env, env.reward, cfg, tmp_path / "cam").records
    assert all(r.info["camera"] == {"K": K, "T_base_camera": IDENTITY} for r in records)
    plain = toy_env_cls()
    assert all("camera" not in r.info for r in run_finetune(plain, plain.reward, cfg, tmp_path / "toy").records)


def _trial(tmp_path, trial: int, reward: float, success: bool, error=None) -> dict:
    rec = _record(tmp_path, trial, reward, success)  # writes images/k000N_a0_*.png
    return {"trial": trial, "seed": 100 + trial, "success": success, "reward": reward, "xi": rec.xi,
            "executed": rec.executed, "variants": {}, "error": error, "wall_s": 0.1, "images": rec.images,
            "camera": None}


def test_an_evaluations_trials_are_drawn_in_order_or_best_first_without_elites(tmp_path):
    trials = [_trial(tmp_path, 2, 1.0, True), _trial(tmp_path, 1, 0.3, False, error="SimArm: controller error 31"),
              _trial(tmp_path, 3, 1.0, True)]
    sheet = render_trials(tmp_path, trials, title="pick_cup: deft on test objects", layout=LAYOUT)
    assert [n for n, _, _ in sheet.tiles] == [1, 2, 3] and sheet.unreadable == []
    border = LAYOUT.frame + LAYOUT.elite_frame
    for n, _, (x, y, _, _) in sheet.tiles:
        assert _px(sheet.image, x + 1, y + 1) == (255, 255, 255)  # no elites among evaluation trials
        frame = _px(sheet.image, x + LAYOUT.elite_frame + 1, y + LAYOUT.elite_frame + 1)
        assert frame == (SUCCESS if n != 1 else FAILURE)
        assert _px(sheet.image, x + border + 20, y + border + 15) == _colour(n, 0, "initial")
    best = render_trials(tmp_path, trials, sort="reward", layout=LAYOUT)
    assert [n for n, _, _ in best.tiles] == [3, 2, 1]  # the later of two equal rewards first
    tiles = trial_tiles(trials)
    assert [caption(t) for t in tiles][0] == ["trial 1 · r 0.30 · failure", "controller error 31"]


def test_the_zoom_keeps_the_priors_mu_when_the_marks_are_further_apart_than_the_image_is_high():
    from PIL import Image

    from deft_core.finetune.sheet_panels import _zoomed

    wide = Image.new("RGB", (640, 480), (90, 90, 90))  # a RealSense-sized I₀
    far = _zoomed(wide, 150, {"prior": (100.0, 100.0), "executed": (700.0, 100.0)})
    assert (np.asarray(far) == PRIOR_MU).all(axis=-1).any()
    near = _zoomed(wide, 150, {"prior": (100.0, 100.0), "executed": (160.0, 120.0)})
    assert (np.asarray(near) == PRIOR_MU).all(axis=-1).any() and (np.asarray(near) == EXECUTED_MU).all(axis=-1).any()
