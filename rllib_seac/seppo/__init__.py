"""SE-PPO: shared experience for RLlib's PPO (new API stack); seppo_lambda=0 is IPPO."""

from rllib_seac.seppo.seppo import SEPPO, SEPPOConfig, SEPPOConfigError

__all__ = ["SEPPO", "SEPPOConfig", "SEPPOConfigError"]
