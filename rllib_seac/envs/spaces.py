"""The space contract SEAC relies on, checked once with a message that names agents."""

from __future__ import annotations

import gymnasium as gym


def check_seac_spaces(env, algorithm: str = "SEAC") -> tuple[gym.Space, gym.Space]:
    """Returns the one (observation, action) space pair every agent of `env` shares.

    Agent i re-evaluates its own networks on agent k's observations and actions
    (Eqs. 4 and 5), so all agents need the same spaces, and the policy is a
    categorical distribution, so the actions must be discrete. SEQL's Q-networks
    read the others' transitions likewise; `algorithm` names the one in the messages.
    """
    agents = list(env.possible_agents)
    if not agents:
        raise ValueError(f"Env {env!r} declares no agents (`possible_agents` is empty).")
    obs = {aid: env.get_observation_space(aid) for aid in agents}
    act = {aid: env.get_action_space(aid) for aid in agents}
    first = agents[0]
    for name, spaces in (("observation", obs), ("action", act)):
        groups = agents_by_space(spaces)
        if len(groups) > 1:
            # Every agent, grouped by its space: padding has to reach all but one group.
            listing = "; ".join(f"{', '.join(group)}: {space}" for space, group in groups)
            raise ValueError(
                f"{algorithm} needs identical {name} spaces for all agents, since each agent "
                f"is trained on the others' experience. These differ: {listing}. "
                "Pad them to one space (e.g. SuperSuit's pad_observations_v0 / "
                "pad_action_space_v0) or train them with another algorithm."
            )
    if not isinstance(act[first], gym.spaces.Discrete):
        raise ValueError(
            f"{algorithm} needs a Discrete action space (one output per action), but the "
            f"agents {agents} have {act[first]}."
        )
    if not (isinstance(obs[first], gym.spaces.Box) and len(obs[first].shape) == 1):
        raise ValueError(
            f"{algorithm}'s MLP networks need flat Box observations, but the agents {agents} "
            f"have {obs[first]}. Flatten them (e.g. gymnasium's FlattenObservation)."
        )
    return obs[first], act[first]


def agents_by_space(spaces: dict) -> list[tuple[gym.Space, list[str]]]:
    """(space, its agents) for each distinct space, in the order agents first have it."""
    groups: list[tuple[gym.Space, list[str]]] = []
    for aid, space in spaces.items():
        for known, group in groups:
            if known == space:
                group.append(aid)
                break
        else:
            groups.append((space, [aid]))
    return groups
