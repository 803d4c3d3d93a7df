"""SEACConfig: the AlgorithmConfig builder of SEAC, IAC (lambda=0) and SNAC (shared)."""

from __future__ import annotations

import math
import warnings

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_seac._rllib_internals import mark_notices_not_for_our_algorithms_shown

# Re-exported: checkpoints saved before agent_modules.py pickled the mapping
# functions as rllib_seac.seac.config.agent_is_module / all_agents_share.
from rllib_seac.agent_modules import (  # noqa: F401
    SHARED_MODULE_ID,
    agent_is_module,
    agents_of_each_module,
    all_agents_share,
    complete_grouping,
)
from rllib_seac.config_checks import (
    FLOAT_BYTES,
    CheckedConfig,
    check_bools,
    check_gamma,
    check_grad_clip,
    check_layer_sizes,
    check_lr,
    check_memory,
    check_rllib_settings,
    is_int,
    is_number,
    mlp_parameters,
)

mark_notices_not_for_our_algorithms_shown()

SEAC_TARGETS = ("paper", "authors")
# Whether the learner may take its gradient steps with the fused step (`training`).
FUSED_UPDATE_MODES = ("auto", "off")
# seac_target's old name for "authors", still accepted with a FutureWarning (the
# category Python shows end users by default for deprecated features).
DEPRECATED_TARGETS = {"reference": "authors"}
# Settings that must be a number above a bound: (name, bound, bound allowed).
NUMBER_RANGES = (
    ("entropy_coeff", 0, True),
    ("vf_loss_coeff", 0, True),
    ("adam_eps", 0, False),
)


class SEACConfigError(ValueError):
    """A SEAC setting that cannot work, with the one message that says why."""


def _fail(msg: str):
    raise SEACConfigError(f"Bad SEAC config: {msg}")


# Bytes of one agent's row of a rollout besides its two observations: action (int64),
# behaviour log-prob, reward (float32), terminated, truncated (bool).
ROW_BYTES = 8 + 4 + 4 + 1 + 1


class SEACConfig(CheckedConfig, AlgorithmConfig):
    """Defaults are Table 2 of the paper (App. B).

    Example:
        >>> config = SEACConfig().environment("rware-tiny-2ag-v2")
        >>> algo = config.training(seac_lambda=1.0).build_algo()
        >>> algo.train()
    """

    config_error = staticmethod(_fail)

    def __init__(self, algo_class=None):
        from rllib_seac.seac.algorithm import SEAC

        super().__init__(algo_class=algo_class or SEAC)
        # Table 2: lr 3e-4, Adam eps 1e-3, gamma 0.99, entropy 0.01, value 0.5,
        # grad clip 0.5, no GAE, 5-step returns, 4 parallel envs, lambda 1.0.
        self.lr = 3e-4
        self.adam_eps = 1e-3
        self.gamma = 0.99
        self.entropy_coeff = 0.01
        self.vf_loss_coeff = 0.5
        self.grad_clip = 0.5
        self.grad_clip_by = "global_norm"
        self.n_steps = 5
        self.num_envs_per_env_runner = 4
        # Worker processes stepping each runner's envs (0: the runner's own process).
        self.num_env_processes_per_env_runner = 0
        self.num_env_runners = 0
        self.seac_lambda = 1.0
        self.seac_target = "paper"
        self.is_weight_clip = None
        self.shared_policy = False
        # A2C updates (one gradient step per n-step batch each) per `train()`.
        self.updates_per_iteration = 100
        self.overlap_sampling = False
        self.hidden_sizes = [64, 64]
        self.fused_update = "auto"
        # torch threads of each process that runs SEAC's learner or env runner
        # (the driver too, when they run there); None leaves torch's setting alone.
        # A2C's batches are tens of rows: one thread beats several that contend
        # with env stepping for the cores.
        self.torch_num_threads = 1
        # Filled in by `validate()` from the env when left None.
        self.agent_ids = None

        from rllib_seac.seac.env_runner import SEACEnvRunner

        self.env_runner_cls = SEACEnvRunner
        self.rollout_fragment_length = self.n_steps
        # The learner checks each agent's gradient norm for NaN/inf and stops with
        # a message (SEACTorchLearner.postprocess_gradients_for_module); RLlib's
        # own check scans each parameter twice per step and skips the update.
        self.torch_skip_nan_gradients = True
        # SEAC's env runners have no connector pipelines to merge or broadcast.
        self.merge_env_runner_states = False
        self.broadcast_env_runner_states = False
        # Tune's CPU/RAM/GPU sampling thread, which warns at start-up without gputil;
        # SEAC's results report their own timings.
        self.log_sys_usage = False

    def training(
        self,
        *,
        seac_lambda: float = NotProvided,
        seac_target: str = NotProvided,
        is_weight_clip: float | None = NotProvided,
        shared_policy: bool = NotProvided,
        n_steps: int = NotProvided,
        entropy_coeff: float = NotProvided,
        vf_loss_coeff: float = NotProvided,
        adam_eps: float = NotProvided,
        updates_per_iteration: int = NotProvided,
        overlap_sampling: bool = NotProvided,
        hidden_sizes: list[int] = NotProvided,
        fused_update: str = NotProvided,
        **kwargs,
    ) -> SEACConfig:
        """Sets SEAC's training settings (and AlgorithmConfig's usual ones: lr, gamma, grad_clip).

        Args:
            seac_lambda: lambda of Eqs. 4 and 5, the weight of other agents'
                experience. 0 gives IAC (independent A2C).
            seac_target: "paper" bootstraps the n-step target of agent k's data with
                the trained agent's critic V_i, as Eq. 5 writes; "authors" uses V_k,
                as the authors' public code does ("reference", its old name, still
                works and warns).
            is_weight_clip: Upper clip of the importance weights (None: unclipped).
            shared_policy: SNAC: one module shared by all agents, trained on the
                sum of their losses.
            n_steps: Rollout length and n of the n-step returns (5 in the paper).
            entropy_coeff, vf_loss_coeff: Weights of the entropy bonus and value loss.
            adam_eps: Adam's epsilon.
            updates_per_iteration: Gradient steps per `train()` call.
            overlap_sampling: With remote env runners or env worker processes
                (`env_runners(num_env_processes_per_env_runner=...)`), collect the
                next rollout while the learner updates on the current one. Uses
                more cores, at the price of rollouts one update old: the IS weights
                of other agents' data stay exact (they use the recorded behaviour
                log-probs); an agent's own data is then treated as on-policy
                although its policy has moved one step. Off: exact A2C.
            hidden_sizes: Hidden layers of both the actor and the critic MLP.
            fused_update: "auto" (default): on a CPU learner, take each gradient step
                with the fused step (`seac/fused_step.py`: the same loss
                differentiated by hand, several times faster on A2C's small
                batches) while the learner's loss path and the modules are the
                stock ones and a self-check on a synthetic batch matches autograd;
                otherwise, and with "off", autograd's step on `compute_losses`.
        """
        super().training(**kwargs)
        for name, value in dict(
            seac_lambda=seac_lambda,
            seac_target=seac_target,
            is_weight_clip=is_weight_clip,
            shared_policy=shared_policy,
            n_steps=n_steps,
            entropy_coeff=entropy_coeff,
            vf_loss_coeff=vf_loss_coeff,
            adam_eps=adam_eps,
            updates_per_iteration=updates_per_iteration,
            overlap_sampling=overlap_sampling,
            hidden_sizes=hidden_sizes,
            fused_update=fused_update,
        ).items():
            if value is not NotProvided:
                setattr(self, name, value)
        if n_steps is not NotProvided:
            self.rollout_fragment_length = n_steps
        return self

    def env_runners(
        self, *, num_env_processes_per_env_runner: int = NotProvided, **kwargs
    ) -> SEACConfig:
        """RLlib's env runner settings, plus:

        Args:
            num_env_processes_per_env_runner: Worker processes that step each env
                runner's envs in parallel (0: step them in the runner's process).
                The env must then be a name or a picklable class / function.
        """
        super().env_runners(**kwargs)
        if num_env_processes_per_env_runner is not NotProvided:
            self.num_env_processes_per_env_runner = num_env_processes_per_env_runner
        return self

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_seac.seac.rl_module import SEACTorchRLModule

        return RLModuleSpec(
            module_class=SEACTorchRLModule,
            model_config={"hidden_sizes": list(self.hidden_sizes)},
        )

    def get_default_learner_class(self):
        if self.num_learners > 1:
            from rllib_seac.seac.data_parallel import DataParallelSEACLearner

            return DataParallelSEACLearner
        from rllib_seac.seac.learner import SEACTorchLearner

        return SEACTorchLearner

    def envs_per_update(self) -> int:
        """Envs whose n-step rollouts make one update's batch (the local runner's when
        there are no remote ones)."""
        return self.num_envs_per_env_runner * max(1, self.num_env_runners)

    def module_agents(self) -> dict[str, list[str]]:
        """ModuleID -> the agents it acts for, in agent order."""
        return agents_of_each_module(self.policy_mapping_fn, self.agent_ids)

    def validate(self) -> None:
        self._validate_seac_settings()
        spaces = None
        if self.env is not None and self.agent_ids is None:
            spaces = self._set_up_agents_from_env()
        self._check_memory(spaces)
        if self.agent_ids is not None:
            self._complete_grouping()
        super().validate()

    def _validate_seac_settings(self) -> None:
        fail = _fail
        if not is_number(self.seac_lambda) or self.seac_lambda < 0:
            fail(f"seac_lambda must be a number >= 0, got {self.seac_lambda!r}.")
        for name, low, low_ok in NUMBER_RANGES:
            value = getattr(self, name)
            if not is_number(value) or value < low or (value == low and not low_ok):
                fail(f"{name} must be a number {'>=' if low_ok else '>'} {low}, got {value!r}.")
        check_gamma(self, fail)
        check_lr(self, fail)
        check_grad_clip(self, fail)
        check_layer_sizes("hidden_sizes", self.hidden_sizes, fail)
        check_rllib_settings(self, fail)
        check_bools(self, ("shared_policy", "overlap_sampling"), fail)
        if self.seac_target in DEPRECATED_TARGETS:
            new = DEPRECATED_TARGETS[self.seac_target]
            warnings.warn(
                f'seac_target="{self.seac_target}" is deprecated: use seac_target="{new}".',
                FutureWarning,
                stacklevel=3,
            )
            self.seac_target = new
        if self.seac_target not in SEAC_TARGETS:
            fail(f"seac_target must be one of {SEAC_TARGETS}, got {self.seac_target!r}.")
        if self.fused_update not in FUSED_UPDATE_MODES:
            fail(f"fused_update must be one of {FUSED_UPDATE_MODES}, got {self.fused_update!r}.")
        if not is_int(self.n_steps) or self.n_steps < 1:
            fail(f"n_steps must be an integer >= 1, got {self.n_steps!r}.")
        clip = self.is_weight_clip
        if clip is not None and not (is_number(clip) and clip > 0):
            fail(f"is_weight_clip must be None or > 0, got {self.is_weight_clip!r}.")
        if not is_int(self.updates_per_iteration) or self.updates_per_iteration < 1:
            fail(
                "updates_per_iteration must be an integer >= 1, got "
                f"{self.updates_per_iteration!r}."
            )
        processes = self.num_env_processes_per_env_runner
        if not is_int(processes) or not 0 <= processes <= self.num_envs_per_env_runner:
            fail(
                "num_env_processes_per_env_runner must be an integer from 0 to "
                f"num_envs_per_env_runner ({self.num_envs_per_env_runner}), got {processes!r}."
            )
        if self.num_learners > 1 and self.envs_per_update() % self.num_learners:
            fail(
                f"num_learners ({self.num_learners}) must divide the envs of one update "
                f"(num_envs_per_env_runner x num_env_runners = {self.envs_per_update()}): "
                "each learner trains on an equal share of the envs, so that the average "
                "of their gradients is the whole batch's."
            )
        if self.evaluation_interval:
            self._check_evaluation(fail)
        if self.framework_str != "torch":
            fail(f"only framework='torch' is supported, got {self.framework_str!r}.")
        self.rollout_fragment_length = self.n_steps

    def _check_evaluation(self, fail) -> None:
        """SEAC evaluates in the algorithm's own process (`SEAC.evaluate`), a number
        of whole episodes after the training iteration."""
        duration = self.evaluation_duration
        if not is_int(duration) or duration < 1:
            fail(f"evaluation_duration must be an integer >= 1 (episodes), got {duration!r}.")
        if self.evaluation_duration_unit != "episodes":
            fail(
                "evaluation_duration_unit must be 'episodes' (SEAC evaluates whole "
                f"episodes), got {self.evaluation_duration_unit!r}."
            )
        if self.evaluation_parallel_to_training:
            fail(
                "evaluation_parallel_to_training is not supported: SEAC evaluates in its "
                "own process after each evaluated iteration."
            )
        if self.evaluation_num_env_runners:
            fail(
                "evaluation_num_env_runners must be 0: SEAC evaluates in its own process, "
                f"got {self.evaluation_num_env_runners}."
            )

    def _set_up_agents_from_env(self):
        """The env's agent ids, from one instance of it; returns the agents' (shared)
        observation and action spaces."""
        from rllib_seac.envs import probe_env

        try:
            agents, spaces = probe_env(self.env, dict(self.env_config))
        except ValueError as e:
            raise SEACConfigError(str(e)) from None
        self.agent_ids = agents
        return spaces

    def _check_memory(self, spaces) -> None:
        """Refuses sizes whose arrays cannot fit in this machine's memory, before
        anything allocates them: the rollouts of one update (in the env runners and
        again in the learner's batch), the networks with their gradients and Adam
        moments, and the learner's activations (each agent's networks run on every
        agent's rows). Without the env's spaces (agents given), one input and action."""
        obs_space, action_space = spaces or (None, None)
        obs = max(1, int(getattr(obs_space, "shape", None) and math.prod(obs_space.shape) or 1))
        actions = max(1, int(getattr(action_space, "n", 1)))
        agents = len(self.agent_ids or []) or 1
        modules = 1 if self.shared_policy else agents
        rows = self.n_steps * self.envs_per_update() * agents
        hidden = list(self.hidden_sizes)
        parameters = mlp_parameters(obs, hidden, actions) + mlp_parameters(obs, hidden, 1)
        check_memory(
            {
                "rollouts": 2 * rows * (2 * obs * FLOAT_BYTES + ROW_BYTES),
                # weights, gradients, two Adam moments, the env runners' copy
                "networks": 5 * modules * parameters * FLOAT_BYTES,
                "activations": 2 * agents * rows * 2 * sum(hidden) * FLOAT_BYTES,
            },
            "n_steps, num_envs_per_env_runner, num_env_runners or hidden_sizes",
            _fail,
        )

    def _complete_grouping(self) -> None:
        """Keeps the user's `multi_agent(policies=..., policy_mapping_fn=...)`, filling
        in what is unset: one module per agent, or one shared (`shared_policy`)."""
        try:
            grouping = complete_grouping(self, self.agent_ids, self.shared_policy)
        except ValueError as e:
            raise SEACConfigError(f"Bad SEAC config: {e}") from None
        # Only on a change: validate() also runs on frozen (read-only) configs.
        if list(grouping["policies"]) != list(self.policies) or (
            grouping["policy_mapping_fn"] is not self.policy_mapping_fn
        ):
            self.multi_agent(**grouping)
