"""Samplers charforge's built-ins lack, through the sampler hook: min-p and epsilon
truncation (truncation.py), beam search and stochastic beam search (beam.py)."""
from __future__ import annotations

from charforge import Param, Sampler, hookimpl

from .beam import beam_decode, draw, greedy, stochastic_beam_decode
from .truncation import epsilon, epsilon_distribution, min_p, min_p_distribution

TEMPERATURE = Param(1.0, float, 0.0, None, low_open=True, help="logits are divided by it (> 0)")
WIDTH = Param(4, int, 1, 256, help="texts kept per step, 1 to 256")
SAMPLERS = (
    Sampler("min_p", "keep characters with p >= min_p x the top probability (min-p)", min_p,
            {"min_p": Param(0.1, float, 0.0, 1.0, low_open=True,
                            help="fraction of the top probability, in (0, 1]"),
             "temperature": TEMPERATURE}),
    Sampler("epsilon", "keep characters with p >= epsilon (epsilon sampling)", epsilon,
            {"epsilon": Param(0.02, float, 0.0, 1.0, high_open=True,
                              help="probability floor, in [0, 1)"),
             "temperature": TEMPERATURE}),
    Sampler("beam", "the likeliest text beam search of this width finds (deterministic)",
            greedy, {"width": WIDTH, "temperature": TEMPERATURE}, decode=beam_decode),
    Sampler("stochastic_beam", "the likeliest of `width` texts sampled without replacement "
            "(stochastic beam search)", draw, {"width": WIDTH, "temperature": TEMPERATURE},
            decode=stochastic_beam_decode),
)

__all__ = ["SAMPLERS", "min_p", "epsilon", "min_p_distribution", "epsilon_distribution",
           "beam_decode", "stochastic_beam_decode"]


@hookimpl
def charforge_register_samplers(register):
    for sampler in SAMPLERS:
        register(sampler)
