"""The reset/step contract SEACEnvRunner relies on, checked the same way for every env."""


def assert_reset_step_contract(env, n_actions: int) -> None:
    """Every agent observes (within its space) at reset and after a step, and gets a
    float reward and its own terminated/truncated flags beside "__all__"."""
    agents = env.possible_agents
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(agents)
    for aid in agents:
        assert env.get_observation_space(aid).contains(obs[aid])
        assert env.get_action_space(aid).n == n_actions
    obs, rewards, terminateds, truncateds, _ = env.step(dict.fromkeys(agents, 0))
    assert set(obs) == set(rewards) == set(agents)
    assert set(terminateds) == set(truncateds) == {*agents, "__all__"}
    assert all(isinstance(r, float) for r in rewards.values())
