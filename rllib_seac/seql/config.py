"""SEQLConfig: the AlgorithmConfig builder of SEQL and IQL (App. D of the paper)."""

from __future__ import annotations

import math

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.dqn import DQNConfig

from rllib_seac._rllib_internals import mark_notices_not_for_our_algorithms_shown
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
    is_schedule_of,
    mlp_parameters,
)
from rllib_seac.seql.replay_buffer import BUFFER_TYPE

mark_notices_not_for_our_algorithms_shown()

# The authors' code: epsilon decays from 1.0 by a constant factor per step to 0.01
# over num_episodes x 20 steps (120,000 x 20 = 2.4M on LBF with its 25-step episodes).
EPSILON_START = 1.0
EPSILON_END = 0.01
EPSILON_DECAY_STEPS = 2_400_000
EPSILON_KNOTS = 16


# Where SEQL's steps run: its own loop in the driver, or RLlib's DQN loop.
LOOPS = ("in_process", "rllib")
# The loop setting's old name: a checkpoint's config saved before the rename holds it.
OLD_LOOP_KEY = "direct_loop"

# Bytes of one agent's transition in its replay buffer besides its two
# observations: action (int64), reward (float32), terminated (bool).
TRANSITION_BYTES = 8 + 4 + 1


class SEQLConfigError(ValueError):
    """A SEQL setting that cannot work, with the one message that says why."""


def _fail(msg: str):
    raise SEQLConfigError(f"Bad SEQL config: {msg}")


def exponential_epsilon(
    steps: int, start: float = EPSILON_START, end: float = EPSILON_END, knots: int = EPSILON_KNOTS
) -> list[tuple[int, float]]:
    """RLlib's epsilon schedule (piecewise linear between (env step, epsilon) points)
    through `knots` + 1 points of the authors' exponential decay start -> end over
    `steps` env steps; epsilon stays at `end` after."""
    return [
        (round(steps * k / knots), start * (end / start) ** (k / knots)) for k in range(knots + 1)
    ]


class SEQLConfig(CheckedConfig, DQNConfig):
    """Shared Experience Q-Learning; `share_experience=False` gives IQL.

    Defaults are the authors' public code (uoe-agents/seac, seql/): batch 128, lambda
    1.0, soft target updates tau 0.05 after every update, gradient-norm clip 0.5, MLP
    of 2 hidden layers of 128 (ReLU), Adam lr 1e-4, buffer 1e6, epsilon 1.0 -> 0.01
    (exponential over 2.4M steps), one update per env step, gamma 0.99.

    Example:
        >>> config = SEQLConfig().environment("Foraging-8x8-2p-2f-v3")
        >>> algo = config.training(seql_lambda=1.0).build_algo()
        >>> algo.train()
    """

    config_error = staticmethod(_fail)

    def __init__(self, algo_class=None):
        from rllib_seac.seql.algorithm import SEQL

        super().__init__(algo_class=algo_class or SEQL)
        self.seql_lambda = 1.0
        self.share_experience = True
        self.mask_terminals = True
        self.loop = "in_process"
        self.fused_update = "auto"
        self.lr = 1e-4
        self.gamma = 0.99
        self.train_batch_size_per_learner = 128
        self.tau = 0.05
        self.target_network_update_freq = 0  # a soft update after every update
        self.grad_clip = 0.5
        self.grad_clip_by = "global_norm"
        self.double_q = False
        self.dueling = False
        self.n_step = 1
        self.td_error_loss_fn = "mse"
        self.epsilon = exponential_epsilon(EPSILON_DECAY_STEPS)
        self.replay_buffer_config = {"type": BUFFER_TYPE, "capacity": 1_000_000}
        # The authors update once the buffer holds a batch.
        self.num_steps_sampled_before_learning_starts = 128
        # One env, one step per sample, then one update: one update per env step.
        self.rollout_fragment_length = 1
        self.num_envs_per_env_runner = 1
        self.num_env_runners = 0
        self.rl_module(
            model_config={
                "fcnet_hiddens": [128, 128],
                "fcnet_activation": "relu",
                "head_fcnet_hiddens": [],
            }
        )
        # Batches of 128 rows through 128-unit MLPs: one torch thread beats several
        # that contend with env stepping for the cores (30x on a loaded 2-core machine).
        self.torch_num_threads = 1
        # Filled in by `validate()` from the env when left None.
        self.agent_ids = None

    def training(
        self,
        *,
        seql_lambda: float = NotProvided,
        share_experience: bool = NotProvided,
        mask_terminals: bool = NotProvided,
        loop: str = NotProvided,
        fused_update: str = NotProvided,
        **kwargs,
    ) -> SEQLConfig:
        """Sets SEQL's settings (and DQNConfig's: lr, gamma, tau, epsilon, ...).

        Args:
            seql_lambda: Weight of the loss on the other agents' transitions (the
                authors' code; 1.0 is the paper's SEQL).
            share_experience: True: each agent's batch is M/N transitions from every
                agent's buffer, the same batch for all agents (SEQL). False: each
                agent samples all M from its own buffer (IQL); lambda is then unused.
            mask_terminals: True: no bootstrap after a terminal state. False: the
                authors' code, which bootstraps there too.
            loop: "in_process" (default): SEQL's own loop (`seql/in_process/`): the
                same algorithm, one env stepped in the driver, numpy replay buffers
                and the learner's networks updated in place, ~20x faster. "rllib":
                RLlib's DQN `training_step` (env runners, episode replay buffer,
                LearnerGroup.update at every env step; a GPU learner).
            fused_update: "auto" (default): the in-process loop takes each gradient step
                with the fused step (`seql/in_process/fused_step.py`: the same loss
                differentiated by hand, every agent at once) while the learner's loss
                path and the modules are the stock ones and a self-check on a
                synthetic batch matches autograd; otherwise, and with "off", the
                learner's `compute_losses` through autograd.
        """
        super().training(**kwargs)
        for name, value in dict(
            seql_lambda=seql_lambda,
            share_experience=share_experience,
            mask_terminals=mask_terminals,
            loop=loop,
            fused_update=fused_update,
        ).items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def get_default_learner_class(self):
        from rllib_seac.seql.torch_learner import SEQLTorchLearner

        return SEQLTorchLearner

    def validate(self) -> None:
        if OLD_LOOP_KEY in self.__dict__:  # a config state from before the rename
            self.loop = "in_process" if self.__dict__.pop(OLD_LOOP_KEY) else "rllib"
        self._validate_seql_settings()
        self.replay_buffer_config = {
            **self.replay_buffer_config,
            "shared_experience": self.share_experience,
        }
        spaces = None
        if self.env is not None and self.agent_ids is None:
            spaces = self._set_up_agents_from_env()
        self._check_memory(spaces)
        super().validate()

    def _validate_seql_settings(self) -> None:
        fail = _fail
        lam = self.seql_lambda
        if not is_number(lam) or lam < 0:
            fail(f"seql_lambda must be a number >= 0, got {lam!r}.")
        if self.loop not in LOOPS:
            fail(f"loop must be one of {LOOPS}, got {self.loop!r}.")
        if self.fused_update not in ("auto", "off"):
            fail(f"fused_update must be one of ('auto', 'off'), got {self.fused_update!r}.")
        check_bools(
            self,
            ("share_experience", "mask_terminals", "store_buffer_in_checkpoints"),
            fail,
        )
        check_lr(self, fail)
        check_gamma(self, fail)
        check_grad_clip(self, fail)
        check_rllib_settings(self, fail)
        if not is_schedule_of(self.epsilon, lambda e: is_number(e) and 0 <= e <= 1):
            fail(
                "epsilon must be a number in [0, 1] (or a schedule of such, "
                f"[[env step, epsilon], ...] with increasing steps), got {self.epsilon!r}."
            )
        if not is_number(self.tau) or not 0 < self.tau <= 1:
            fail(f"tau must be a number in (0, 1], got {self.tau!r}.")
        for name, low in (
            ("train_batch_size_per_learner", 1),
            ("num_steps_sampled_before_learning_starts", 0),
            ("target_network_update_freq", 0),
        ):
            value = getattr(self, name)
            if not is_int(value) or value < low:
                fail(f"{name} must be an integer >= {low}, got {value!r}.")
        buffer = self.replay_buffer_config
        if not isinstance(buffer, dict):
            fail(f"replay_buffer_config must be a mapping, got {buffer!r}.")
        capacity = buffer.get("capacity", 1)
        if not is_int(capacity) or capacity < 1:
            fail(f"replay_buffer_config['capacity'] must be an integer >= 1, got {capacity!r}.")
        check_layer_sizes("fcnet_hiddens", self.model_config.get("fcnet_hiddens", []), fail)
        if self.framework_str != "torch":
            fail(f"only framework='torch' is supported, got {self.framework_str!r}.")
        settings = dict(double_q=False, dueling=False, num_atoms=1, n_step=1, noisy=False)
        for name, allowed in settings.items():
            if getattr(self, name) != allowed:
                fail(
                    f"{name} must be {allowed!r} (Eq. 6's plain DQN), got {getattr(self, name)!r}."
                )
        if self.loop == "in_process":
            self._validate_in_process_loop(fail)
        elif self.store_buffer_in_checkpoints:
            # RLlib 2.60's Algorithm.get_state stores no replay buffer on the new API
            # stack: DQN's loop would accept the setting and drop the buffer.
            fail(
                "store_buffer_in_checkpoints must be False with loop='rllib' (RLlib's "
                "DQN loop does not checkpoint its replay buffer), got True; set "
                "loop='in_process' to store the buffers in checkpoints."
            )

    def _validate_in_process_loop(self, fail) -> None:
        """The in-process loop steps one env and updates a CPU learner in the driver."""
        settings = dict(
            num_env_runners=0,
            num_envs_per_env_runner=1,
            num_learners=0,
            num_gpus_per_learner=0,
        )
        for name, allowed in settings.items():
            if getattr(self, name) != allowed:
                fail(
                    f"{name} must be {allowed!r} with loop='in_process' (one env and a CPU "
                    f"learner in the driver), got {getattr(self, name)!r}; set "
                    "loop='rllib' for RLlib's DQN loop."
                )

    def _set_up_agents_from_env(self) -> None:
        """One module per agent named after the env's agent ids; the agents' spaces
        must be equal, since each agent's Q-network also reads the others' data."""
        from rllib_seac.agent_modules import default_grouping
        from rllib_seac.envs import probe_env, register_envs

        if isinstance(self.env, str):
            register_envs([self.env])  # RLlib's env runners look names up in Tune's registry
        try:
            agents, spaces = probe_env(self.env, dict(self.env_config), "SEQL")
        except ValueError as e:
            raise SEQLConfigError(str(e)) from None
        self.agent_ids = agents
        self.multi_agent(**default_grouping(agents, shared=False))
        return spaces

    def _check_memory(self, spaces) -> None:
        """Refuses sizes whose arrays cannot fit in this machine's memory: each
        agent's replay buffer when full (allocated at its capacity), each agent's
        Q-network and target with gradients and Adam moments, and a batch's
        activations. Without the env's spaces (agents given), one input and action."""
        obs_space, action_space = spaces or (None, None)
        obs = max(1, int(getattr(obs_space, "shape", None) and math.prod(obs_space.shape) or 1))
        actions = max(1, int(getattr(action_space, "n", 1)))
        agents = len(self.agent_ids or []) or 1
        hidden = list(self.model_config.get("fcnet_hiddens", []))
        capacity = self.replay_buffer_config.get("capacity", 1)
        batch = self.train_batch_size_per_learner
        check_memory(
            {
                "replay buffers": agents * capacity * (2 * obs * FLOAT_BYTES + TRANSITION_BYTES),
                # weights, target, gradients, two Adam moments
                "networks": 5 * agents * mlp_parameters(obs, hidden, actions) * FLOAT_BYTES,
                "activations": 4 * agents * batch * sum(hidden) * FLOAT_BYTES,
            },
            "replay_buffer_config['capacity'], fcnet_hiddens or train_batch_size_per_learner",
            _fail,
        )
