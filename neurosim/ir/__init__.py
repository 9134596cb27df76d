"""The spiking-network IR: one backend-neutral description that every simulator consumes.

A :class:`SpikingNetwork` is a directed acyclic graph of nodes kept in topological order, an input
:class:`Encoding` and a :class:`Readout`. The converter (:mod:`neurosim.convert`) produces it; each
backend (:mod:`neurosim.backends`) lowers it and returns a :class:`SimResult`. Conversion never knows
which simulator runs the result and a backend never knows which ANN it came from.

Shapes exclude the batch dimension: a Conv2d node maps ``(C_in, H, W) -> (C_out, H', W')``; a backend
prepends the batch. All arrays are float32 numpy arrays.

Exact discrete-time semantics (every backend must reproduce these; "float" precision bit-for-bit
up to float32 rounding, "fixed" up to its quantisation)
-----------------------------------------------------------------------------------------------------
Time runs ``t = 1 .. T`` in unit steps (dimensionless; ``dt`` only matters for NIR export). At
``t = 0`` every :class:`Neurons` membrane is ``v = v_init``, every :class:`SpikeMaxPool2d` count is
0 and the readout accumulator is 0. Each step:

1. **Encoding.** The input node ``"input"`` emits ``e_t`` (:class:`Encoding`): ``direct``: ``e_t = x``
   (the analog sample, every step); ``poisson``: ``e_t = sign(x) * [u_t < min(|x| / max_value, 1)]``
   with ``u_t ~ U[0, 1)`` (spikes of +-1); the weights reading the input were multiplied by
   ``max_value`` at conversion so that ``E[W e_t] = W x``. Backends that need reproducible spike trains
   take them from :func:`neurosim.encoding.encode`.
2. **Nodes in list order** (topological): every node computes its step-``t`` output from its inputs'
   step-``t`` outputs. **There is no synaptic delay**: a spike emitted by a population at step ``t``
   is summed into the next population's membrane in the same step ``t``. A backend whose synapses
   buffer one step (Lava's ``Dense``) adds one step of latency per synaptic layer; it must run
   ``T + depth`` steps and drop the first ``depth`` steps of the readout (or document the shift).

   * :class:`Linear`, :class:`Conv2d`: ``y_t = W * in_t + b`` (the bias is a constant current injected
     every step).
   * :class:`AvgPool2d` / :class:`SumPool2d`: window mean / sum of ``in_t`` (zero padding counted).
   * :class:`Flatten`: row-major reshape to 1-D.
   * :class:`Add`: ``y_t = sum_k w_k * in_t^(k)`` with per-input weights (scalar or per-channel).
   * :class:`Neurons` (IF when ``leak == 1``, LIF otherwise), elementwise::

         v   <- leak * v + I_t + bias          # I_t: the input node's step-t output
         s_t  = 1 if v > threshold else 0      # strict comparison, like snntorch, Lava and NIR
         s_t  = -1 if signed and s_t == 0 and v < 0 and C_{t-1} > 0
         v   <- v - threshold * s_t            # reset="subtract"  (reset by subtraction)
         v   <- v_reset where s_t == 1         # reset="zero"      (hard reset, value v_reset)
         C_t  = C_{t-1} + s_t                  # the neuron's net spike count, C_0 = 0

     The population outputs ``s_t`` (0/1, or -1/0/1 when ``signed``); its synaptic targets see
     ``s_t``, never ``threshold``-scaled spikes (the converter folds the scale into the next weights).
     A **signed** neuron (Wang et al., "Signed neuron with memory", IJCAI 2022) takes back a spike it
     emitted too early: when its membrane falls below 0 while its net count is positive it emits a
     negative spike and gains ``threshold``, so ``C_T = floor((sum_t I_t + v_init) / threshold)``
     whenever ``0 <= v_T <= threshold`` and spikes never overshoot for good. It needs
     ``reset="subtract"`` and a target that carries spike signs (Loihi 2's graded spikes, not Loihi 1).
   * :class:`SpikeMaxPool2d` (the spiking form of max-pooling, a count-based gate): keeps each input
     neuron's spike count ``C_t = C_{t-1} + in_t`` and emits
     ``y_t = maxpool(C_t) - maxpool(C_{t-1})``. Because counts change by at most 1 per step the output
     is again a 0/1 spike train (-1/0/1 for signed inputs), and its count after any ``t`` equals the
     largest input count in the window: the rate of max-pooled rates, exactly.
   * **Transformer operators** (:mod:`neurosim.ir.nodes`, issue 13). Stateless: :class:`Embedding`
     (``y_t = weight[in_t]``, token ids in, embedded rows out: the token input encoding),
     :class:`Constant` (``y_t = value``, no inputs: class token, position embedding), :class:`Reshape`,
     :class:`Transpose` (per-sample axes), :class:`Slice`, :class:`Concat`, :class:`TokenLinear`
     (``y_t = in_t W^T + b`` on the last axis of ``[tokens, features]``). On accumulated input, with
     running sums ``S_t = sum_{s<=t} in_s`` of their inputs::

         g_t = t * f(S_t / t),   y_t = g_t - g_{t-1},   g_0 = 0

     so the time average of the output is exactly ``f`` of the time average of the input at every
     ``t``: :class:`MatMul` (``f(A, B) = scale * A op(B)``, the product of two streams; ``op`` is the
     transpose with ``transpose_b``), :class:`Softmax` (last axis, optional causal mask),
     :class:`LayerNorm`, :class:`Activation` (GELU, GELU-tanh, SiLU, tanh). Their outputs are graded
     values; a population of Neurons after them makes spikes again.
3. **Readout** (:class:`Readout`) accumulates ``A <- A + y_t`` of its node: ``membrane`` reads a
   synaptic node's current (a non-spiking integrator, which NIR calls ``I``); ``spike_count`` reads
   a Neurons population's spikes. After ``T`` steps ``output = scale * A / T`` (the time-average,
   on the ANN's logit scale for ``membrane``; a rate times ``scale`` for ``spike_count``) and
   ``prediction = argmax(output)`` (first index on ties).

For conversion (IF, reset by subtraction, ``v_init = threshold/2``) the spike count of a population
after ``T`` steps is ``floor(T * a / threshold + 1/2)`` clipped to ``[0, T]`` when its input current
``a`` is constant: a uniform quantiser of the ANN activation (Bu et al., ICLR 2022).

What NIR cannot hold (subtractive reset, initial membrane, neuron bias, SpikeMaxPool2d, per-input
Add weights, the encoding and readout) is carried in the NIR graph's metadata; see :meth:`to_nir`.

Modules: :mod:`~neurosim.ir.nodes` (the node dataclasses, encoding, readout), :mod:`~neurosim.ir.network`
(:class:`SpikingNetwork`), :mod:`~neurosim.ir.io` (``.npz``), :mod:`~neurosim.ir.nir` (NIR),
:mod:`~neurosim.ir.result` (:class:`SimResult`); the semantics above as executable code are the
``reference`` backend (:mod:`neurosim.backends.reference`).
"""
from neurosim.ir.network import FORMAT_VERSION, SpikingNetwork
from neurosim.ir.nir import from_nir, to_nir
from neurosim.ir.nodes import (ENCODINGS, INPUT, NODE_TYPES, READOUTS, RESETS, Add, AvgPool2d, Conv2d, Encoding,
                               Flatten, Linear, Neurons, Node, Readout, SpikeMaxPool2d, SumPool2d)
from neurosim.ir.nodes import (ACTIVATION_FNS, TRANSFORMER_NODES, Activation, Concat, Constant, Embedding, LayerNorm,
                               MatMul, Reshape, Slice, Softmax, TokenLinear, Transpose)
from neurosim.ir.result import SimResult

__all__ = [
    "Node", "Linear", "Conv2d", "AvgPool2d", "SumPool2d", "SpikeMaxPool2d", "Flatten", "Add", "Neurons",
    "Encoding", "Readout", "SpikingNetwork", "SimResult", "NODE_TYPES", "INPUT", "ENCODINGS", "READOUTS", "RESETS",
    "FORMAT_VERSION", "to_nir", "from_nir",
    "Embedding", "Constant", "Reshape", "Transpose", "Slice", "Concat", "TokenLinear", "MatMul", "Softmax",
    "LayerNorm", "Activation", "TRANSFORMER_NODES", "ACTIVATION_FNS",
]
