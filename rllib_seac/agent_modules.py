"""Which RLModule acts for which agent: the one place the agent-to-module grouping
is read from a config (`policies` and `policy_mapping_fn`) or filled in.

SEAC's learner trains any grouping of agents into modules (several agents per
module share its weights); the defaults are one module per agent, named after
the agent, or one module all agents share (SNAC).
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.policy.sample_batch import DEFAULT_POLICY_ID

SHARED_MODULE_ID = "shared"


def agent_is_module(agent_id, episode=None, **kwargs):
    return agent_id


def all_agents_share(agent_id, episode=None, **kwargs):
    return SHARED_MODULE_ID


def module_of_each_agent(policy_mapping_fn, agent_ids) -> list[str]:
    """The module id of each agent, in agent order."""
    return [policy_mapping_fn(aid, None) for aid in agent_ids]


def agent_indices_of_each_module(policy_mapping_fn, agent_ids) -> dict[str, list[int]]:
    """ModuleID -> the positions in `agent_ids` of the agents it acts for, modules
    in the order of their first agent."""
    groups: dict[str, list[int]] = {}
    for j, mid in enumerate(module_of_each_agent(policy_mapping_fn, agent_ids)):
        groups.setdefault(mid, []).append(j)
    return groups


def agents_of_each_module(policy_mapping_fn, agent_ids) -> dict[str, list[str]]:
    """ModuleID -> the agents it acts for, modules in the order of their first agent."""
    agent_ids = list(agent_ids)
    return {
        mid: [agent_ids[j] for j in rows]
        for mid, rows in agent_indices_of_each_module(policy_mapping_fn, agent_ids).items()
    }


def default_grouping(agent_ids, shared: bool) -> dict:
    """`multi_agent()` settings: one module per agent, or one all agents share.

    A list, not a set: module order (and so which module draws which initial
    weights) must not depend on the process's string hashing.
    """
    if shared:
        return {"policies": [SHARED_MODULE_ID], "policy_mapping_fn": all_agents_share}
    return {"policies": list(agent_ids), "policy_mapping_fn": agent_is_module}


def grouping_is_set(config: AlgorithmConfig) -> tuple[bool, bool]:
    """Whether the user set `policies` and `policy_mapping_fn` (RLlib's defaults:
    the single module "default_policy", and its function that maps every agent to
    it)."""
    policies_set = list(config.policies) != [DEFAULT_POLICY_ID]
    mapping_set = config.policy_mapping_fn is not AlgorithmConfig.DEFAULT_POLICY_MAPPING_FN
    return policies_set, mapping_set


def complete_grouping(config: AlgorithmConfig, agent_ids, shared: bool) -> dict:
    """`multi_agent()` settings that keep what the user set and fill in the rest.

    Raises ValueError (one line) when the result does not give every agent a
    module that exists, leaves a module without agents, or, with `shared`, gives
    the agents more than one module.
    """
    policies_set, mapping_set = grouping_is_set(config)
    default = default_grouping(agent_ids, shared)
    if not mapping_set:
        if policies_set and set(config.policies) not in (
            {SHARED_MODULE_ID},
            set(default["policies"]),
        ):
            raise ValueError(
                f"policies {sorted(config.policies)} need a policy_mapping_fn: without one "
                f"only one module per agent ({', '.join(agent_ids)}) or one module "
                f"'{SHARED_MODULE_ID}' can be filled in."
            )
        if policies_set and set(config.policies) == {SHARED_MODULE_ID}:
            mapping = all_agents_share
        else:
            mapping = default["policy_mapping_fn"]
    else:
        mapping = config.policy_mapping_fn
    try:
        groups = agents_of_each_module(mapping, agent_ids)
    except Exception as e:  # a user function that fails on one of the env's agents
        raise ValueError(
            f"policy_mapping_fn failed on the env's agents ({', '.join(agent_ids)}): {e!r}"
        ) from None
    modules = list(groups)
    if policies_set:
        missing = [m for m in modules if m not in config.policies]
        if missing:
            raise ValueError(
                f"policy_mapping_fn maps agents to modules not in policies: {missing} "
                f"(policies: {sorted(config.policies)})."
            )
        idle = [m for m in config.policies if m not in groups]
        if idle:
            raise ValueError(
                f"policies {idle} act for none of the env's agents ({', '.join(agent_ids)}) "
                "under policy_mapping_fn: every module must act for at least one agent."
            )
    if shared and len(modules) > 1:
        raise ValueError(
            f"shared_policy=True needs one module for all agents, but policy_mapping_fn "
            f"gives {len(modules)}: {modules}."
        )
    # Modules in the order of their first agent (see default_grouping).
    if policies_set and isinstance(config.policies, dict):
        policies = {m: config.policies[m] for m in modules}
    else:
        policies = modules
    return {"policies": policies, "policy_mapping_fn": mapping}
