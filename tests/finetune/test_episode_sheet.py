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
from deft_core.finetune.sheet import (ELITE, FAILURE, SCORED, SUCCESS, VOID, SheetLayout, elite_episodes,
                                      order_records, render_sheet)

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
