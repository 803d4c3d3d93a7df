"""The README's main job, examples/train_rware.py, on a tiny budget in its own process."""

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_train_rware_prints_progress_and_writes_a_learning_curve(tmp_path):
    out = tmp_path / "run"
    # HOME: RLlib logs algorithms built outside Tune under ~/ray_results.
    env = {**os.environ, "RAY_TMPDIR": "/tmp/rllib_seac_example_ray", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_rware.py"), "--env-steps", "4000"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "iter    2  env steps     4,000" in proc.stdout
    assert f"results: {out}/progress.csv" in proc.stdout
    assert len((out / "progress.csv").read_text().splitlines()) == 3  # header + 2 iterations
    with Image.open(out / "learning_curve.png") as image:
        assert image.size == (600, 400)
    assert (out / "checkpoint").is_dir()
