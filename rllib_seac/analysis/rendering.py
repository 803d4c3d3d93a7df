"""Animated GIFs of a checkpoint's agents, without a display.

rware and lbforaging draw with pyglet (OpenGL), which renders headless through EGL
when told to; MPE (predator-prey) draws into an off-screen pygame surface.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from rllib_seac.analysis.evaluation import AgentPolicies, run_episode
from rllib_seac.analysis.labels import env_label
from rllib_seac.seeding import action_generator

HEADLESS_HINT = (
    "pyglet-drawn envs (rware, lbforaging) need OpenGL: without a display, EGL "
    "(e.g. apt-get install libegl1), or run under xvfb-run"
)


class RenderError(ValueError):
    """An env that cannot give rgb_array frames here; the message says why."""


def use_headless_gl() -> None:
    """Without an X display, makes pyglet render through EGL instead of opening a
    window. Must run before pyglet's window module is imported, i.e. before an env's
    first render()."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        import pyglet

        pyglet.options["headless"] = True


def is_image(frame) -> bool:
    return isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[-1] in (3, 4)


def check_writable(out) -> None:
    """Fails at once, not after every frame is rendered, when the GIF `out` cannot be
    written: its directory is made (as the write would) and a file is tried in it."""
    path = Path(out)
    if path.is_dir():
        raise RenderError(f"cannot write {out}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as e:
        raise RenderError(f"cannot write {out}: {e.strerror or e} ({e.filename})") from None


def render_gif(
    checkpoint,
    out,
    *,
    episodes: int = 1,
    max_steps: int | None = None,
    fps: float = 10,
    seed: int | None = None,
    trust: bool = False,
    imports=(),
) -> int:
    """Writes `episodes` episodes (each cut at `max_steps`) of the checkpoint's agents,
    with their evaluation policies (see evaluation.py), to the GIF `out`; returns the
    number of frames. `trust`, `imports`: see AgentPolicies."""
    from PIL import Image

    check_writable(out)
    use_headless_gl()
    policies = AgentPolicies(checkpoint, trust, imports)
    name = env_label(policies.config.env)
    try:
        env = policies.make_env(render_mode="rgb_array")
    except (TypeError, ValueError) as e:
        raise RenderError(f"env {name} cannot be made with render_mode='rgb_array': {e}") from None
    frames = []

    def capture():
        if frames:
            frames.append(env.render())
            return
        # The first frame is where a missing display or OpenGL shows up.
        try:
            frame = env.render()
        except Exception as e:
            raise RenderError(
                f"env {name} cannot render here ({type(e).__name__}: {e}); {HEADLESS_HINT}."
            ) from None
        if not is_image(frame):
            raise RenderError(
                f"env {name} cannot render: with render_mode='rgb_array' its render() "
                f"returned {type(frame).__name__}, not an image."
            )
        frames.append(frame)

    generator = action_generator(seed)
    try:
        for episode in range(episodes):
            ep_seed = seed if episode == 0 else None
            run_episode(
                env, policies, generator, seed=ep_seed, max_steps=max_steps, on_frame=capture
            )
    finally:
        env.close()
    images = [Image.fromarray(np.ascontiguousarray(f[..., :3])) for f in frames]
    images[0].save(out, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return len(images)
