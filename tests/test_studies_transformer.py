"""The ann_vs_snn study's Transformer task (issue 13): a trained bert_tiny on majority_tokens converted on the
plain path, run on snntorch, its Loihi 2 energy priced per operator (products of two streams as processor
work) beside the ANN on GPU and TPU."""
from __future__ import annotations

import pytest

import studies
from studies.store import Store


def test_ann_vs_snn_transformer_cells_are_the_pipeline_and_price_the_products(tmp_path):
    pytest.importorskip("neurosim.convert")
    from neurosim.loihi.operators import cost_operators
    from studies import ann_vs_snn as avs

    db = tmp_path / "s.sqlite"
    r = studies.run("ann_vs_snn", db=db, workers=0, quiet=True, quick=True,
                    only={"task": ["bert_tiny@majority_tokens"], "timesteps": ["2", "8"]})
    assert r.n_failed == 0, r.failures
    with Store(db, create=False) as s:
        df = s.frame("ann_vs_snn")
    # plain conversion, snntorch, float only: the other backends and options do not apply to a Transformer
    assert len(df) == 2 and set(df.backend) == {"snntorch"} and set(df.conversion) == {"plain"}
    hi = df.sort_values("timesteps").iloc[-1]
    assert hi.ann_accuracy > 0.8 and hi.snn_accuracy >= hi.ann_accuracy - 0.1
    assert 0 < hi.snn_product_energy_j < hi.snn_loihi2_energy_j
    ann, snn, test_set, _ = avs._task("bert_tiny@majority_tokens")
    res = snn.run(test_set.x[:int(hi.samples)], 8, backend="snntorch")
    assert res.accuracy(test_set.y[:int(hi.samples)].numpy()) == hi.snn_accuracy
    assert cost_operators(snn, res, "loihi2")["energy_j"] == pytest.approx(hi.snn_loihi2_energy_j)
    assert hi.ann_gpu_energy_j > 0 and hi.ann_tpu_energy_j > 0
