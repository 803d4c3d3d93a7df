"""Columns of a SEAC train batch, under RLlib's names (`ray.rllib.core.columns.Columns`).

The env runners write them and the learner reads them; each module's batch holds
its agents' data laid out [agents of the module, envs, n_steps] and flattened to rows.
"""

from ray.rllib.core.columns import Columns

OBS = Columns.OBS
NEXT_OBS = Columns.NEXT_OBS
ACTIONS = Columns.ACTIONS
REWARDS = Columns.REWARDS
TERMINATEDS = Columns.TERMINATEDS
TRUNCATEDS = Columns.TRUNCATEDS
# log pi_k(a|o) of the policy that acted, recorded at sampling: the denominator of
# the importance weights of Eqs. 4 and 5 (RLlib's ACTION_LOGP holds the same).
BEHAVIOUR_LOGP = Columns.ACTION_LOGP

COLUMNS = (OBS, NEXT_OBS, ACTIONS, REWARDS, TERMINATEDS, TRUNCATEDS, BEHAVIOUR_LOGP)
