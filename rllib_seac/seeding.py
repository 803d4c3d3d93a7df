"""How one run seed gives every env and every random stream its own seed."""

from __future__ import annotations

import torch

# Seeds of run `seed` are seed * SEEDS_PER_RUN + index: runs with different seeds
# share no env or action stream while a runner has fewer envs than this.
SEEDS_PER_RUN = 1000


def derived_seed(seed: int | None, index: int) -> int | None:
    """The seed of env `index` of a runner seeded `seed`, and of the action stream
    of the collector whose first env that is (None: unseeded)."""
    return None if seed is None else seed * SEEDS_PER_RUN + index


def action_generator(seed: int | None) -> torch.Generator:
    """A torch generator for sampling actions, seeded (or freshly random for None)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()  # a fresh seed: an unseeded Generator always starts the same
    else:
        generator.manual_seed(seed)
    return generator
