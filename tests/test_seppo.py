"""SE-PPO (rllib_seac/seppo/): the loss written out loop by loop, the per-(i, k)
advantages against RLlib's own GAE, minibatches that line up across agents,
seppo_lambda = 0 as RLlib's IPPO, and training, checkpoints and evaluation."""

import copy
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.connectors.learner import (
    AddOneTsToEpisodesAndTruncate,
    GeneralAdvantageEstimation,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.minibatch_utils import MiniBatchCyclicIterator

from rllib_seac import SEPPO, SEPPOConfig, SEPPOConfigError, register_envs
from rllib_seac.agent_modules import default_grouping
from rllib_seac.analysis.evaluation import AgentPolicies
from rllib_seac.cli import main
from rllib_seac.seppo.connector import (
    SE_ADVANTAGES,
    SE_OLD_LOGP,
    SE_VALUE_TARGETS,
    SharedExperienceAdvantages,
)
from rllib_seac.seppo.minibatches import AlignedMiniBatchIterator
from tests.envs_for_tests import SpacesEnv

RWARE = "rware-tiny-2ag-v2"
OBS_DIM, N_ACTIONS, ROWS = 3, 4, 6
CLIP, VF_CLIP, VF_COEFF, ENTROPY_COEFF, KL_COEFF = 0.2, 0.5, 0.5, 0.01, 0.2


def agents(n):
    return [f"agent_{j}" for j in range(n)]


def loss_learner(n, seppo_lambda, is_weight_clip=None):
    config = (
        SEPPOConfig()
        .training(
            seppo_lambda=seppo_lambda,
            is_weight_clip=is_weight_clip,
            clip_param=CLIP,
            vf_clip_param=VF_CLIP,
            vf_loss_coeff=VF_COEFF,
            entropy_coeff=ENTROPY_COEFF,
            kl_coeff=KL_COEFF,
        )
        .rl_module(model_config={"fcnet_hiddens": [5], "vf_share_layers": False})
        .multi_agent(**default_grouping(agents(n), False))
        .debugging(seed=0)
    )
    spaces = gym.spaces.Box(-1, 1, (OBS_DIM,)), gym.spaces.Discrete(N_ACTIONS)
    return config.build_learner(spaces=dict.fromkeys(agents(n), spaces))


def log_probs(module, obs):
    """log pi(.|o) of one observation, by the module's actor."""
    out = module.forward_train({Columns.OBS: obs[None]})
    return torch.log_softmax(out[Columns.ACTION_DIST_INPUTS][0], -1)


def value(module, obs):
    return module.compute_values({Columns.OBS: obs[None]})[0]


def small_batch(learner, n, seed):
    """Each agent's minibatch: real tensors, one bootstrap row masked out, and the
    recorded log-probs a random distance from the modules' current ones, so that
    PPO's clip cuts some ratios and not others."""
    gen = torch.Generator().manual_seed(seed)
    mids = agents(n)
    batch = {}
    for k in mids:
        obs = torch.rand(ROWS, OBS_DIM, generator=gen) * 2 - 1
        actions = torch.randint(N_ACTIONS, (ROWS,), generator=gen)
        with torch.no_grad():
            now = torch.stack(
                [
                    torch.stack([log_probs(learner.module[i], o)[a] for o, a in zip(obs, actions)])
                    for i in mids
                ],
                dim=1,
            )
            values = torch.stack(
                [torch.stack([value(learner.module[i], o) for o in obs]) for i in mids], dim=1
            )
        shift = (torch.rand(ROWS, n, generator=gen) - 0.5) * 1.2
        old_logp = now + shift
        targets = values + torch.randn(ROWS, n, generator=gen)
        advantages = torch.randn(ROWS, n, generator=gen)
        j = mids.index(k)
        mask = torch.ones(ROWS, dtype=torch.bool)
        mask[-1] = False
        batch[k] = {
            Columns.OBS: obs,
            Columns.ACTIONS: actions,
            # pi_k's recorded log-prob: its own old log-prob (column k).
            Columns.ACTION_LOGP: old_logp[:, j].clone(),
            Columns.ACTION_DIST_INPUTS: torch.randn(ROWS, N_ACTIONS, generator=gen),
            Columns.LOSS_MASK: mask,
            Postprocessing.ADVANTAGES: advantages[:, j].clone(),
            Postprocessing.VALUE_TARGETS: targets[:, j].clone(),
            SE_ADVANTAGES: advantages,
            SE_VALUE_TARGETS: targets,
            # Column k of another module's old log-prob is pi_i_old; k's own is pi_k's.
            SE_OLD_LOGP: old_logp,
        }
    return batch


def reference_losses(learner, batch, n, seppo_lambda, is_weight_clip):
    """Each agent i's SE-PPO loss, written out: RLlib's PPO loss on its own rows,
    and lambda times the weighted clipped surrogate and value loss on each other
    agent's rows, one row at a time. Also counts the rows whose ratio PPO's clip
    cut (the clipped term was the smaller)."""
    mids = agents(n)
    totals, clipped = {}, 0
    for i, mid in enumerate(mids):
        module = learner.module[mid]
        data = batch[mid]
        own = []
        for t in range(ROWS):
            if not data[Columns.LOSS_MASK][t]:
                continue
            o, a = data[Columns.OBS][t], data[Columns.ACTIONS][t]
            lp = log_probs(module, o)
            ratio = torch.exp(lp[a] - data[Columns.ACTION_LOGP][t])
            adv = data[Postprocessing.ADVANTAGES][t]
            surrogate = torch.min(ratio * adv, ratio.clamp(1 - CLIP, 1 + CLIP) * adv)
            vf = (value(module, o) - data[Postprocessing.VALUE_TARGETS][t]) ** 2
            entropy = -(lp.exp() * lp).sum()
            prev = torch.log_softmax(data[Columns.ACTION_DIST_INPUTS][t], -1)
            kl = (prev.exp() * (prev - lp)).sum()
            own.append((-surrogate + VF_COEFF * vf.clamp(0, VF_CLIP) - ENTROPY_COEFF * entropy, kl))
        total = sum(x for x, _ in own) / len(own) + KL_COEFF * sum(kl for _, kl in own) / len(own)
        if seppo_lambda > 0:
            for k in mids:
                if k == mid:
                    continue
                other = batch[k]
                terms = []
                for t in range(ROWS):
                    if not other[Columns.LOSS_MASK][t]:
                        continue
                    o, a = other[Columns.OBS][t], other[Columns.ACTIONS][t]
                    old = other[SE_OLD_LOGP][t, i]
                    weight = float(torch.exp(old - other[Columns.ACTION_LOGP][t]))
                    if is_weight_clip is not None:
                        weight = min(weight, is_weight_clip)
                    ratio = torch.exp(log_probs(module, o)[a] - old)
                    adv = other[SE_ADVANTAGES][t, i]
                    surrogate = torch.min(ratio * adv, ratio.clamp(1 - CLIP, 1 + CLIP) * adv)
                    clipped += bool(ratio.clamp(1 - CLIP, 1 + CLIP) * adv < ratio * adv)
                    vf = (value(module, o) - other[SE_VALUE_TARGETS][t, i]) ** 2
                    terms.append(
                        seppo_lambda * weight * (-surrogate + VF_COEFF * vf.clamp(0, VF_CLIP))
                    )
                total = total + sum(terms) / len(terms)
        totals[mid] = total
    return totals, clipped


@pytest.mark.parametrize(
    "n, seppo_lambda, is_weight_clip",
    [(2, 1.0, None), (3, 0.5, None), (3, 1.0, 1.1), (2, 0.0, None)],
)
def test_loss_matches_the_loop_reference(n, seppo_lambda, is_weight_clip):
    learner = loss_learner(n, seppo_lambda, is_weight_clip)
    batch = small_batch(learner, n, seed=n)
    losses = learner.compute_losses(fwd_out=learner.module.forward_train(batch), batch=batch)
    reference, clipped = reference_losses(learner, batch, n, seppo_lambda, is_weight_clip)
    if seppo_lambda > 0:
        assert clipped > 0  # PPO's clip cut some of the others' ratios
    for mid in agents(n):
        torch.testing.assert_close(losses[mid], reference[mid], rtol=1e-5, atol=1e-6)
    # The gradients too: module i's loss moves only module i's parameters.
    mids = agents(n)
    params = [p for mid in mids for p in learner.module[mid].parameters()]
    got = torch.autograd.grad(sum(losses.values()), params, allow_unused=True)
    want = torch.autograd.grad(sum(reference.values()), params, allow_unused=True)
    for g, w in zip(got, want):
        if w is None:
            assert g is None or not g.any()
        else:
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


def test_others_data_adds_lambda_times_its_terms():
    # Agent i's loss is affine in lambda: own terms + lambda * others' terms.
    losses = {}
    for lam in (0.0, 0.5, 1.0):
        learner = loss_learner(3, lam)
        batch = small_batch(learner, 3, seed=7)
        out = learner.compute_losses(fwd_out=learner.module.forward_train(batch), batch=batch)
        losses[lam] = torch.stack([out[m] for m in agents(3)]).detach()
    others = losses[1.0] - losses[0.0]
    assert (others.abs() > 1e-3).all()
    torch.testing.assert_close(losses[0.5], losses[0.0] + 0.5 * others)


def test_rllibs_ppo_config_with_the_learner_is_se_ppo():
    from rllib_seac.seppo.learner import SEPPOTorchLearner

    config = (
        PPOConfig()
        .training(
            learner_class=SEPPOTorchLearner,
            clip_param=CLIP,
            vf_clip_param=VF_CLIP,
            vf_loss_coeff=VF_COEFF,
            entropy_coeff=ENTROPY_COEFF,
            kl_coeff=KL_COEFF,
        )
        .rl_module(model_config={"fcnet_hiddens": [5], "vf_share_layers": False})
        .multi_agent(**default_grouping(agents(2), False))
        .debugging(seed=0)
    )
    spaces = gym.spaces.Box(-1, 1, (OBS_DIM,)), gym.spaces.Discrete(N_ACTIONS)
    learner = config.build_learner(spaces=dict.fromkeys(agents(2), spaces))
    batch = small_batch(learner, 2, seed=5)
    losses = learner.compute_losses(fwd_out=learner.module.forward_train(batch), batch=batch)
    reference, _ = reference_losses(learner, batch, 2, 1.0, None)
    for mid in agents(2):
        torch.testing.assert_close(losses[mid], reference[mid], rtol=1e-5, atol=1e-6)


def rware_config(config, seppo_lambda=None, seed=3):
    config = (
        config.environment(RWARE)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .training(train_batch_size=200, minibatch_size=64, num_epochs=2, lr=1e-3)
        .rl_module(model_config={"fcnet_hiddens": [8], "vf_share_layers": False})
        .multi_agent(**default_grouping(agents(2), False))
        .debugging(seed=seed)
    )
    return config if seppo_lambda is None else config.training(seppo_lambda=seppo_lambda)


def test_per_pair_advantages_are_rllibs_gae_with_the_other_critic():
    # (i, k): module i's critic on agent k's episodes. RLlib's own GAE gives the same
    # when module k carries module i's weights.
    register_envs([RWARE])
    algo = rware_config(SEPPOConfig(), 1.0).build_algo()
    try:
        episodes = algo.env_runner.sample(num_timesteps=60, random_actions=False)
        config = algo.config
        module = algo.get_module("agent_0")
        space = module.observation_space, module.action_space
    finally:
        algo.stop()
    learner = config.build_learner(spaces=dict.fromkeys(agents(2), space))

    def run(rl_module, pieces):
        pipeline = config.build_learner_connector(
            input_observation_space=None, input_action_space=None
        )
        pipeline.prepend(AddOneTsToEpisodesAndTruncate())
        pipeline.append(GeneralAdvantageEstimation(gamma=config.gamma, lambda_=config.lambda_))
        for piece in pieces:
            pipeline.append(piece)
        return pipeline(rl_module=rl_module, batch={}, episodes=copy.deepcopy(episodes))

    ours = run(
        learner.module,
        [
            SharedExperienceAdvantages(
                module_ids=agents(2), gamma=config.gamma, lambda_=config.lambda_
            )
        ],
    )
    swapped = copy.deepcopy(learner.module)
    swapped["agent_1"].load_state_dict(learner.module["agent_0"].state_dict())
    rllib = run(swapped, [])
    for name, column in (
        (SE_ADVANTAGES, Postprocessing.ADVANTAGES),
        (SE_VALUE_TARGETS, Postprocessing.VALUE_TARGETS),
    ):
        torch.testing.assert_close(ours["agent_1"][name][:, 0], rllib["agent_1"][column])
        # The own column is RLlib's own GAE.
        torch.testing.assert_close(ours["agent_1"][name][:, 1], ours["agent_1"][column])
    # pi_0_old(a^1|o^1): module 0's log-prob of agent 1's actions, before the update.
    logits = learner.module["agent_0"].forward_train(ours["agent_1"])[Columns.ACTION_DIST_INPUTS]
    logp = torch.log_softmax(logits, -1).gather(1, ours["agent_1"][Columns.ACTIONS][:, None])[:, 0]
    torch.testing.assert_close(ours["agent_1"][SE_OLD_LOGP][:, 0], logp.detach())
    # Rows line up: both agents' batches hold the same episode chunks.
    for column in (Columns.LOSS_MASK, Columns.TERMINATEDS, Columns.TRUNCATEDS):
        assert torch.equal(ours["agent_0"][column], ours["agent_1"][column])


def step_batch(n_modules, rows):
    return MultiAgentBatch(
        {m: SampleBatch({"step": np.arange(rows)}) for m in agents(n_modules)}, rows
    )


@pytest.mark.parametrize("rows, size, epochs", [(20, 7, 3), (10, 25, 2), (12, 4, 1)])
def test_minibatches_are_rllibs_with_the_same_rows_for_every_module(rows, size, epochs):
    settings = dict(num_epochs=epochs, minibatch_size=size, shuffle_batch_per_epoch=True)
    np.random.seed(0)
    rllib = [
        mb["agent_0"]["step"] for mb in MiniBatchCyclicIterator(step_batch(1, rows), **settings)
    ]
    np.random.seed(0)
    ours = list(AlignedMiniBatchIterator(step_batch(3, rows), **settings))
    # One module: RLlib's minibatches, row for row (the same shuffles).
    assert len(ours) == len(rllib)
    for mb, want in zip(ours, rllib):
        np.testing.assert_array_equal(mb["agent_0"]["step"], want)
        # Every module: the same env steps.
        for m in agents(3)[1:]:
            np.testing.assert_array_equal(mb[m]["step"], mb["agent_0"]["step"])
    # The rows are shuffled between epochs (not the identity each time).
    if epochs > 1 and size < rows:
        assert not all(
            np.array_equal(mb["agent_0"]["step"], np.sort(mb["agent_0"]["step"])) for mb in ours
        )


def trained_weights(config, iterations=3):
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            algo.train()
        return {
            mid: {
                k: torch.as_tensor(v).clone() for k, v in algo.get_module(mid).state_dict().items()
            }
            for mid in agents(2)
        }
    finally:
        algo.stop()


@pytest.mark.slow
def test_lambda_zero_trains_rllibs_ippo_weights():
    register_envs([RWARE])
    # SEPPOConfig runs torch on one thread (torch_num_threads); RLlib's PPO leaves
    # torch's own count, which can sum in another order.
    torch.set_num_threads(1)
    ippo = trained_weights(rware_config(PPOConfig()))
    seppo0 = trained_weights(rware_config(SEPPOConfig(), 0.0))
    seppo1 = trained_weights(rware_config(SEPPOConfig(), 1.0))
    for mid in agents(2):
        for name, w in ippo[mid].items():
            assert torch.equal(seppo0[mid][name], w), (mid, name)
    assert any(not torch.equal(seppo1["agent_1"][k], w) for k, w in ippo["agent_1"].items())


def test_validate_gives_each_agent_a_module_and_refuses_bad_settings():
    config = SEPPOConfig().environment("rware-tiny-4ag-v2")
    config.validate()
    assert list(config.policies) == agents(4)
    assert [config.policy_mapping_fn(a, None) for a in agents(4)] == agents(4)
    with pytest.raises(SEPPOConfigError, match="seppo_lambda must be a number >= 0"):
        SEPPOConfig().training(seppo_lambda=-1).validate()
    with pytest.raises(SEPPOConfigError, match="is_weight_clip must be None or a number > 0"):
        SEPPOConfig().training(is_weight_clip=0).validate()
    shared = SEPPOConfig().environment(RWARE).multi_agent(**default_grouping(agents(2), True))
    with pytest.raises(SEPPOConfigError, match="every agent needs its own module"):
        shared.validate()
    # -1 too through build_algo(), which validates the config rebuilt from get_state().
    minus_one = SEPPOConfig().environment(RWARE).env_runners(num_env_runners=0)
    with pytest.raises(SEPPOConfigError, match="seppo_lambda must be a number >= 0, got -1"):
        minus_one.training(seppo_lambda=-1).build_algo()
    threads = SEPPOConfig().update_from_dict({"torch_num_threads": 0})
    with pytest.raises(SEPPOConfigError, match="torch_num_threads must be an integer >= 1"):
        threads.validate()
    lstm = SEPPOConfig().environment(RWARE).rl_module(model_config={"use_lstm": True})
    with pytest.raises(SEPPOConfigError, match="recurrent modules"):
        lstm.validate()
    spaces = SEPPOConfig().environment(SpacesEnv, env_config={"carrier_obs": 5})
    with pytest.raises(SEPPOConfigError, match="SE-PPO needs identical observation spaces"):
        spaces.validate()


def test_the_algorithms_process_runs_torch_on_torch_num_threads():
    # One thread by default; None leaves the process's own count.
    register_envs([RWARE])
    before = torch.get_num_threads()
    try:
        for threads, expected in ((1, 1), (None, 2)):
            torch.set_num_threads(2)
            config = rware_config(SEPPOConfig(), 1.0)
            config.update_from_dict({"torch_num_threads": threads}).build_algo().stop()
            assert torch.get_num_threads() == expected, threads
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_checkpoint_restores_and_evaluates(tmp_path):
    register_envs([RWARE])
    config = rware_config(SEPPOConfig(), 1.0).evaluation(
        evaluation_interval=None,
        evaluation_duration=2,
        evaluation_duration_unit="episodes",
        evaluation_config={"env_config": {"max_steps": 20}},
    )
    algo = config.build_algo()
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        weights = {k: v.clone() for k, v in algo.get_module("agent_1").state_dict().items()}
    finally:
        algo.stop()
    restored = SEPPO.from_checkpoint(path)
    try:
        assert isinstance(restored.config, SEPPOConfig) and restored.config.seppo_lambda == 1.0
        for k, v in restored.get_module("agent_1").state_dict().items():
            assert torch.equal(torch.as_tensor(v), weights[k]), k
        result = restored.evaluate()
        assert result["env_runners"]["num_episodes"] >= 2
        restored.train()  # and trains on
    finally:
        restored.stop()


def saved_after_one_iteration(config, path) -> dict:
    """Trains `config` for one iteration and saves it to `path`: each module's weights."""
    algo = config.build_algo()
    try:
        algo.train()
        algo.save_to_path(str(path))
        return {mid: algo.get_module(mid).state_dict() for mid in agents(2)}
    finally:
        algo.stop()


@pytest.mark.parametrize(
    "algorithm, config",
    [
        # SE-PPO's network set with RLlib's DefaultModelConfig, the IPPO twin's as a dict.
        (
            "SE-PPO",
            lambda: rware_config(SEPPOConfig(), 1.0).rl_module(
                model_config=DefaultModelConfig(fcnet_hiddens=[8], vf_share_layers=False)
            ),
        ),
        ("IPPO", lambda: rware_config(PPOConfig())),
    ],
    ids=["SE-PPO", "IPPO"],
)
def test_rllib_evaluate_reads_the_checkpoint_as_data(tmp_path, capsys, algorithm, config):
    # One small iteration, 20-step episodes.
    register_envs([RWARE])
    small = config().environment(env_config={"max_steps": 20})
    small = small.training(train_batch_size=100, minibatch_size=50, num_epochs=1)
    path = tmp_path / "checkpoint"
    weights = saved_after_one_iteration(small, path)
    # The policies evaluation reads as data are RLlib's restored modules: same weights,
    # same logits.
    policies = AgentPolicies(path)
    env = policies.make_env()
    obs, _ = env.reset(seed=0)
    env.close()
    restored = Algorithm.from_checkpoint(str(path))
    try:
        for mid in agents(2):
            module = restored.get_module(mid)
            for name, value in module.state_dict().items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(weights[mid][name]))
            batch = torch.as_tensor(obs[mid])[None]
            with torch.no_grad():
                logits = module.forward_inference({Columns.OBS: batch})
                ours = policies.actors[mid](batch)
            torch.testing.assert_close(ours, logits[Columns.ACTION_DIST_INPUTS])
    finally:
        restored.stop()
    outputs = []
    for trust in ([], ["--trust-checkpoint"]):
        args = ["evaluate", str(path), "--episodes", "2", "--seed", "0", *trust]
        assert main(args) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0].startswith(
        f"{algorithm} on {RWARE}, 2 episodes with stochastic policies (mean ± std over episodes)"
    )
    assert f"checkpoint: {path}" in outputs[0] and "agent_1 " in outputs[0]
    assert outputs[0] == outputs[1]  # unpickled by RLlib, the same policies


CONFIGS = Path(__file__).resolve().parents[1] / "tuned_configs"


def test_tuned_file_and_its_ippo_twin_differ_only_in_lambda():
    (seppo,) = yaml.safe_load((CONFIGS / "rware-tiny-4ag-seppo.yaml").read_text()).values()
    (ippo,) = yaml.safe_load((CONFIGS / "rware-tiny-4ag-ippo.yaml").read_text()).values()
    assert (seppo["run"], ippo["run"]) == ("SEPPO", "PPO")
    assert seppo["env"] == ippo["env"] == "rware-tiny-4ag-v2"
    assert seppo["stop"] == ippo["stop"]
    settings = dict(seppo["config"])
    assert settings.pop("seppo_lambda") == 1.0
    assert settings == ippo["config"]


@pytest.mark.slow
def test_cli_trains_the_tuned_file_and_its_checkpoint_restores_and_evaluates(tmp_path, capsys):
    # One iteration of the file through `rllib train file`, on a smaller batch.
    small = '{"train_batch_size": 400, "minibatch_size": 200, "num_epochs": 1}'
    path = CONFIGS / "rware-tiny-4ag-seppo.yaml"
    args = ["train", "file", str(path), "--stop", '{"training_iteration": 1}']
    args += ["--config", small, "--storage-path", str(tmp_path), "--checkpoint-at-end"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "seppo-rware-tiny-4ag: results in" in out and "ok, best episode_return_mean=" in out
    (checkpoint,) = tmp_path.glob("seppo-rware-tiny-4ag/*/checkpoint_*")
    assert f"evaluate: rllib evaluate {checkpoint}" in out  # the summary's hint
    restored = SEPPO.from_checkpoint(str(checkpoint))
    try:
        assert restored.config.seppo_lambda == 1.0
        assert sorted(restored.config.policies) == agents(4)
        assert restored.config.model_config["fcnet_hiddens"] == [64, 64]
        result = restored.train()
        assert set(agents(4)) <= set(result["learners"])
        assert "others_policy_loss" in result["learners"]["agent_3"]
    finally:
        restored.stop()
    # The paper's protocol over the Tune run's snapshots (here the one at the end).
    args = ["evaluate", str(tmp_path), "--best-of-snapshots", "--episodes", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{checkpoint.parent}: SE-PPO, 1 snapshots, best " in out
    assert "\n| SE-PPO | 1 | 1 | " in out
