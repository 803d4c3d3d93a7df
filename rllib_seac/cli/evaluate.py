"""`rllib evaluate`, `rllib render` and `rllib plot`: what comes after training."""

from __future__ import annotations

import json
from pathlib import Path

from rllib_seac.cli.common import UsageError, check_at_least, import_user_modules

PLOT_FORMATS = (".png", ".pdf", ".svg")


def evaluate(args) -> int:
    check_at_least(args.episodes, 1, "--episodes")
    check_at_least(args.seed, 0, "--seed")
    import_user_modules(args.imports)
    if args.best_of_snapshots:
        return best_of_snapshots(args)
    from rllib_seac.analysis.evaluation import evaluate as run_evaluation
    from rllib_seac.checkpoints import CheckpointError

    try:
        result = run_evaluation(
            args.checkpoint, args.episodes, args.seed, args.trust_checkpoint, args.imports or ()
        )
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
    return 0


def best_of_snapshots(args) -> int:
    """The paper's protocol over a run's kept snapshots (`analysis.protocol`)."""
    from rllib_seac.analysis import protocol
    from rllib_seac.checkpoints import CheckpointError

    trials = protocol.find_trials(args.checkpoint)
    if not trials:
        raise UsageError(
            f"{args.checkpoint} holds no trial with snapshots (checkpoint_* directories, or "
            "a campaign record's snapshots.json): keep them with checkpoint_config "
            "(tuned_configs/paper/ keeps one every 1M env steps)."
        )
    seed = 0 if args.seed is None else args.seed
    records = []
    for trial in trials:
        try:
            record = protocol.evaluate_trial(
                trial, args.episodes, seed, args.trust_checkpoint, args.imports or ()
            )
        except CheckpointError as e:
            raise UsageError(str(e)) from None
        records.append(record)
        if not args.json:
            best = f"best {record.best:.2f}" if record.evaluations else "no snapshot"
            print(f"{trial}: {record.algorithm}, {len(record.evaluations)} snapshots, {best}")
    if args.json:
        print(json.dumps([vars(r) for r in records], indent=2))
    else:
        print(protocol.table(records))
    return 0


def render(args) -> int:
    check_at_least(args.episodes, 1, "--episodes")
    check_at_least(args.max_steps, 1, "--max-steps")
    check_at_least(args.seed, 0, "--seed")
    if not args.fps > 0:
        raise UsageError(f"--fps must be > 0, got {args.fps}.")
    if Path(args.out).suffix.lower() != ".gif":
        raise UsageError(f"--out must name a .gif file, got {args.out}.")
    import_user_modules(args.imports)
    from rllib_seac.analysis.rendering import RenderError, render_gif
    from rllib_seac.checkpoints import CheckpointError

    try:
        frames = render_gif(
            args.checkpoint,
            args.out,
            episodes=args.episodes,
            max_steps=args.max_steps,
            fps=args.fps,
            seed=args.seed,
            trust=args.trust_checkpoint,
            imports=args.imports or (),
        )
    except (CheckpointError, RenderError) as e:
        raise UsageError(str(e)) from None
    print(f"wrote {args.out}: {frames} frames, {args.episodes} episode(s)")
    return 0


def plot(args) -> int:
    if Path(args.out).suffix.lower() not in PLOT_FORMATS:
        raise UsageError(f"--out must end in {', '.join(PLOT_FORMATS)}, got {args.out}.")
    from rllib_seac.analysis.plotting import PlotError
    from rllib_seac.analysis.plotting import plot as make_plot

    try:
        out = make_plot(args.run_dirs, args.out, args.kind, args.label_by, args.title)
    except PlotError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {out}")
    return 0


def import_authors(args) -> int:
    from rllib_seac.checkpoints import CheckpointError
    from rllib_seac.seac.authors_import import import_authors_agents

    try:
        path = import_authors_agents(args.directory, args.env, args.out)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {path}")
    return 0
