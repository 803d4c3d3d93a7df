"""SE-PPO: RLlib's PPO with shared experience, and its config.

One PPO module per agent, each trained on its own data as RLlib's PPO trains it and,
weighted by `seppo_lambda` and the importance weight, on every other agent's data
(docs/seppo.md). With `seppo_lambda=0` it is RLlib's PPO with one module per agent
(IPPO). Config and algorithm share this file, as RLlib's ppo.py does: each names the
other.
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig

from rllib_seac._rllib_internals import mark_notices_not_for_our_algorithms_shown
from rllib_seac.agent_modules import agents_of_each_module, complete_grouping
from rllib_seac.config_checks import CheckedConfig, is_int, is_number

mark_notices_not_for_our_algorithms_shown()


class SEPPOConfigError(ValueError):
    """An SE-PPO setting that cannot work, with the one message that says why."""


class SEPPOConfig(CheckedConfig, PPOConfig):
    """RLlib's PPOConfig, plus:

    - `seppo_lambda` (default 1.0): the weight of the other agents' data in each
      agent's loss; 0 is IPPO.
    - `is_weight_clip` (default None): an upper bound on the importance weights
      pi_i / pi_k, unclipped when None (as SEAC's default).
    - `torch_num_threads` (default 1): torch's thread count in each process that
      runs the learner (with the default `num_learners=0`, the algorithm's own
      process, which also steps the local env runner); None leaves torch's setting.

    Without `multi_agent(...)`, `validate()` gives each agent of the env its own
    module, named after the agent. Every agent must act at every env step, with
    the same observation and action spaces.

    Example:
        >>> config = SEPPOConfig().environment("rware-tiny-4ag-v2").training(seppo_lambda=1.0)
        >>> algo = config.build_algo()
        >>> algo.train()
    """

    config_error = SEPPOConfigError

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or SEPPO)
        self.seppo_lambda = 1.0
        self.is_weight_clip = None
        # PPO's per-step action sampling works on a few rows: on a busy machine, two
        # torch threads spin against each other and env stepping (10x slower in
        # docs/seppo.md's measurement). Ray's workers get one thread already.
        self.torch_num_threads = 1

    def training(self, *, seppo_lambda=NotProvided, is_weight_clip=NotProvided, **kwargs):
        super().training(**kwargs)
        if seppo_lambda is not NotProvided:
            self.seppo_lambda = seppo_lambda
        if is_weight_clip is not NotProvided:
            self.is_weight_clip = is_weight_clip
        return self

    def get_default_learner_class(self):
        if self.framework_str != "torch":
            raise SEPPOConfigError(
                f"Bad SE-PPO config: only framework='torch' is supported, got "
                f"{self.framework_str!r}."
            )
        from rllib_seac.seppo.learner import SEPPOTorchLearner

        return SEPPOTorchLearner

    def validate(self) -> None:
        self._validate_seppo_settings()
        if self.env is not None:
            self._one_module_per_agent()
        super().validate()

    def _validate_seppo_settings(self) -> None:
        def fail(msg):
            raise SEPPOConfigError(f"Bad SE-PPO config: {msg}")

        if not is_number(self.seppo_lambda) or self.seppo_lambda < 0:
            fail(f"seppo_lambda must be a number >= 0, got {self.seppo_lambda!r}.")
        clip = self.is_weight_clip
        if clip is not None and not (is_number(clip) and clip > 0):
            fail(f"is_weight_clip must be None or a number > 0, got {clip!r}.")
        threads = self.torch_num_threads
        if threads is not None and not (is_int(threads) and threads >= 1):
            fail(
                "torch_num_threads must be an integer >= 1 (or None: torch's own), "
                f"got {threads!r}."
            )
        model = self.model_config if isinstance(self.model_config, dict) else {}
        if model.get("use_lstm") or model.get("use_attention"):
            fail("recurrent modules (use_lstm, use_attention) are not supported.")

    def _one_module_per_agent(self) -> None:
        """The env's agents (one instance of it), each with its own module unless the
        user grouped them; SE-PPO needs one agent per module and shared spaces."""
        from rllib_seac.envs import check_seac_spaces, make_env, register_envs

        if isinstance(self.env, str):
            register_envs([self.env])  # this package's env names, for RLlib's lookup
        try:
            env = make_env(self.env, dict(self.env_config))
        except ValueError:
            return  # an env RLlib finds (e.g. a gymnasium id); RLlib's checks apply
        try:
            agents = list(getattr(env, "possible_agents", None) or [])
            if not agents:
                return
            check_seac_spaces(env, "SE-PPO")
            grouping = complete_grouping(self, agents, shared=False)
        except ValueError as e:
            raise SEPPOConfigError(f"Bad SE-PPO config: {e}") from None
        finally:
            env.close()
        shared = {
            m: a
            for m, a in agents_of_each_module(grouping["policy_mapping_fn"], agents).items()
            if len(a) > 1
        }
        if shared:
            raise SEPPOConfigError(
                f"Bad SE-PPO config: every agent needs its own module; {shared} share one."
            )
        # Only on a change: validate() also runs on frozen (read-only) configs.
        if list(grouping["policies"]) != list(self.policies) or (
            grouping["policy_mapping_fn"] is not self.policy_mapping_fn
        ):
            self.multi_agent(**grouping)


class SEPPO(PPO):
    """Shared-experience PPO: RLlib's PPO algorithm with SEPPOTorchLearner."""

    @classmethod
    def get_default_config(cls) -> SEPPOConfig:
        return SEPPOConfig()
