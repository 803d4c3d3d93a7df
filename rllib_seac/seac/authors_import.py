"""The authors' pretrained SEAC agents (uoe-agents/seac) as an rllib-seac checkpoint.

Their repository publishes one `agent{i}/models.pt` per agent: `torch.save` of
`{"model": Policy, "optimizer": Adam, ...}`, whole pickled objects of their own
classes (`model.Policy`, `model.MLPBase`, `distributions.Categorical`). Their
`Policy` holds the same network as our `SEACTorchRLModule`: an actor MLP
(Linear, ReLU, Linear, ReLU) whose features go through `dist.linear` to the logits
of a categorical policy, and a critic MLP of the same shape with `critic_linear`
on top; no observation normalisation. So agent i's tensors copy one to one into
module i of a SEAC algorithm built for the env, which then saves a checkpoint.

Their code need not be installed: `torch.load` reads the file through the
restricted unpickler of `rllib_seac.checkpoints`, which turns their classes (and
the torch.nn / torch.optim classes inside) into inert stand-ins that only keep the
pickled attributes, and calls nothing but torch's tensor-rebuild functions and
plain containers. Any other global is refused.
"""

from __future__ import annotations

import collections
import pickle
import types
import warnings
from pathlib import Path

import torch

from rllib_seac.agent_modules import module_of_each_agent
from rllib_seac.checkpoints import CheckpointError, RestrictedUnpickler, StandIn

MODEL_FILE = "models.pt"
# Their class modules (seac/model.py, seac/distributions.py, run from seac/) and the
# torch classes pickled inside their modules and optimizers: read as stand-ins.
STAND_IN_MODULES = ("model", "distributions")
STAND_IN_MODULE_PREFIXES = ("torch.nn.modules.", "torch.optim.")
# The only callables the file may invoke while loading.
ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    # Protocol-2 pickles name builtins the Python 2 way; newer torch.nn modules hold a set.
    **{(m, t.__name__): t for m in ("builtins", "__builtin__") for t in (dict, set)},
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
}
# Their Policy's tensors -> ours (SEACTorchRLModule with two hidden layers).
TENSOR_MAP = {
    "base.actor.0": "actor.0",
    "base.actor.2": "actor.2",
    "dist.linear": "actor.4",
    "base.critic.0": "critic.0",
    "base.critic.2": "critic.2",
    "base.critic_linear": "critic.4",
}


def _is_their_class(module: str, name: str) -> bool:
    return module in STAND_IN_MODULES or module.startswith(STAND_IN_MODULE_PREFIXES)


class _RestrictedUnpickler(RestrictedUnpickler):
    def __init__(self, file, **kwargs):
        super().__init__(file, allowed=ALLOWED_GLOBALS, stand_in_ok=_is_their_class, **kwargs)

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except pickle.UnpicklingError:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: not part of a pickled SEAC model"
            ) from None


# torch.load's `pickle_module`: it subclasses `Unpickler` (adding storage handling)
# and reads the legacy format's header records with `load`.
_restricted_pickle = types.ModuleType("restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.load = lambda file, **kwargs: _RestrictedUnpickler(file, **kwargs).load()


def read_authors_model(path) -> dict[str, torch.Tensor]:
    """Their `Policy`'s tensors from one `models.pt`, by the names its state_dict
    would give them (e.g. "base.actor.0.weight")."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # torch compares each pickled module's saved source with the class's;
            # a stand-in has none to compare.
            warnings.simplefilter("ignore")
            saved = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle
            )
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"cannot read {path} as an authors' SEAC model: {e}") from None
    policy = saved.get("model") if isinstance(saved, dict) else None
    if not isinstance(policy, StandIn) or type(policy).__name__ != "Policy":
        raise CheckpointError(f"{path} holds no 'model' Policy (their A2C.save format).")
    base = policy.__dict__.get("_modules", {}).get("base")
    if base is not None and base.__dict__.get("_recurrent"):
        raise CheckpointError(f"{path} is a recurrent (GRU) policy; only MLP policies import.")
    return _tensors(policy)


def _tensors(module: StandIn, prefix: str = "") -> dict[str, torch.Tensor]:
    state = module.__dict__
    tensors = {
        f"{prefix}{name}": value.detach()
        for name, value in state.get("_parameters", {}).items()
        if value is not None
    }
    for name, child in state.get("_modules", {}).items():
        if isinstance(child, StandIn):
            tensors.update(_tensors(child, f"{prefix}{name}."))
    return tensors


def to_module_state(tensors: dict[str, torch.Tensor], where: str = "") -> dict:
    """Their Policy's tensors as a SEACTorchRLModule state dict (hidden layers 64x64
    in their code; whatever sizes the tensors have here)."""
    expected = [f"{theirs}.{kind}" for theirs in TENSOR_MAP for kind in ("weight", "bias")]
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise CheckpointError(
            f"{where}: not the authors' MLP policy, missing tensor(s) {', '.join(missing)}"
        )
    state = {
        f"{ours}.{kind}": tensors[f"{theirs}.{kind}"].clone()
        for theirs, ours in TENSOR_MAP.items()
        for kind in ("weight", "bias")
    }
    hidden = hidden_sizes(state)
    obs_dim = state["actor.0.weight"].shape[1]
    shapes = {
        "actor.2.weight": (hidden[1], hidden[0]),
        "critic.0.weight": (hidden[0], obs_dim),
        "critic.2.weight": (hidden[1], hidden[0]),
        "critic.4.weight": (1, hidden[1]),
        "actor.4.weight": (state["actor.4.weight"].shape[0], hidden[1]),
    }
    for name, shape in shapes.items():
        if tuple(state[name].shape) != shape:
            raise CheckpointError(
                f"{where}: tensor {name} has shape {tuple(state[name].shape)}, "
                f"expected {shape} for hidden sizes {hidden} and {obs_dim} inputs"
            )
    return state


def hidden_sizes(state: dict) -> list[int]:
    return [state["actor.0.weight"].shape[0], state["actor.2.weight"].shape[0]]


def read_authors_agents(directory) -> list[dict]:
    """One module state dict per `agent{i}/models.pt` in `directory`, i = 0, 1, ..."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no such directory: {directory}")
    states = []
    while (directory / f"agent{len(states)}").is_dir():
        file = directory / f"agent{len(states)}" / MODEL_FILE
        if not file.is_file():
            raise CheckpointError(f"missing {file}: each agent{{i}} directory needs its models.pt")
        states.append(to_module_state(read_authors_model(file), where=str(file)))
    if not states:
        raise CheckpointError(
            f"{directory} has no agent0/{MODEL_FILE}: give the directory that holds "
            "agent0/, agent1/, ... (e.g. seac/pretrained/rware-small-4ag)"
        )
    sizes = {tuple(hidden_sizes(s)) for s in states}
    if len(sizes) > 1:
        raise CheckpointError(f"{directory}: the agents' hidden sizes differ: {sorted(sizes)}")
    return states


def _check_env(env: str, env_config: dict, states: list[dict]) -> list[str]:
    """The env's agent ids, after checking they match the agents' number and shapes."""
    from rllib_seac.envs import make_env

    try:
        instance = make_env(env, env_config)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    try:
        agents = list(instance.possible_agents)
        obs_spaces = [instance.observation_spaces[a] for a in agents]
        action_spaces = [instance.action_spaces[a] for a in agents]
    finally:
        instance.close()
    if len(agents) != len(states):
        raise CheckpointError(
            f"env {env} has {len(agents)} agents, the directory has {len(states)} (agent0..)"
        )
    for i, (state, obs_space, action_space) in enumerate(zip(states, obs_spaces, action_spaces)):
        inputs, actions = state["actor.0.weight"].shape[1], state["actor.4.weight"].shape[0]
        env_inputs, env_actions = obs_space.shape[0], getattr(action_space, "n", None)
        if (inputs, actions) != (env_inputs, env_actions):
            raise CheckpointError(
                f"agent{i} takes {inputs} observation values and has {actions} actions; "
                f"env {env} gives {env_inputs} and has {env_actions}: not this env's agents"
            )
    return agents


def import_authors_agents(directory, env: str, out, env_config: dict | None = None) -> str:
    """Writes an rllib-seac checkpoint at `out` whose agent i is the authors'
    `directory/agent{i}/models.pt`, for `env`. Returns the checkpoint path.

    The result loads with `rllib evaluate`, `rllib render` and
    `SEAC.from_checkpoint` (fine-tuning starts with fresh Adam moments and zero
    counters: their optimizer state is not imported). Only the shapes can be
    checked against the env: the authors' rware-small-4ag agents would import into
    any 4-agent rware env, all of which give 71-value observations.
    """
    from rllib_seac.seac.config import SEACConfig

    env_config = dict(env_config or {})
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"{out} exists and is not an empty directory: give a new one")
    states = read_authors_agents(directory)
    agents = _check_env(env, env_config, states)
    config = (
        SEACConfig()
        .environment(env, env_config=env_config)
        .training(hidden_sizes=hidden_sizes(states[0]))
    )
    algo = config.build_algo()
    try:
        modules = module_of_each_agent(algo.config.policy_mapping_fn, agents)
        weights = dict(zip(modules, states))
        algo.learner_group.set_weights(weights)
        algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group)
        return algo.save_to_path(str(out))
    finally:
        algo.stop()
