"""Checkpoint soup: the average of LoRA adapters is the mean of their B A products, at their rank."""
import json

import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from biotag.models.soup import average_lora, soup  # noqa: E402
from biotag.runtime.errors import BiotagError  # noqa: E402

KA, KB = "m.q_proj.lora_A.weight", "m.q_proj.lora_B.weight"


def _adapter(gen, A=None, r=2, d_in=6, d_out=5):
    return {KA: torch.randn(r, d_in, generator=gen) if A is None else A.clone(),
            KB: torch.randn(d_out, r, generator=gen),
            "marker_emb": torch.randn(3, 4, generator=gen)}


def test_mean_of_products_is_exact_when_it_fits_the_rank():
    g = torch.Generator().manual_seed(0)
    a, b = _adapter(g), _adapter(g)                # two rank-2 updates: their mean has rank <= 4
    out, lost = average_lora([a, b], rank=4)
    want = (a[KB] @ a[KA] + b[KB] @ b[KA]) / 2
    assert torch.allclose(out[KB] @ out[KA], want, atol=1e-5)
    assert lost < 1e-10
    assert torch.allclose(out["marker_emb"], (a["marker_emb"] + b["marker_emb"]) / 2)
    # averaging the factors one by one would not give the mean update
    naive = ((a[KB] + b[KB]) / 2) @ ((a[KA] + b[KA]) / 2)
    assert not torch.allclose(naive, want, atol=1e-3)


def test_truncation_reports_the_energy_it_drops():
    g = torch.Generator().manual_seed(1)
    a, b = _adapter(g), _adapter(g)                # independent factors: the mean has rank 4
    out, lost = average_lora([a, b], rank=2)
    assert out[KA].shape == (2, 6) and out[KB].shape == (5, 2)
    assert 0 < lost < 1
    same, lost_same = average_lora([a, a], rank=2)
    assert torch.allclose(same[KB] @ same[KA], a[KB] @ a[KA], atol=1e-5) and lost_same < 1e-10


def _folder(tmp_path, name, tensors, markers=None, r=2):
    d = tmp_path / name
    d.mkdir()
    safetensors_torch.save_file(tensors, str(d / "adapter.safetensors"))
    cfg = {"training_config": {"lora": {"r": r, "alpha": 2 * r}}, "marker_ids": markers or {"⟦": 6},
           "lora_targets": ["q_proj"], "base_model": "tiny", "steps": 10}
    (d / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return d


def test_soup_writes_an_adapter_folder_naming_its_sources(tmp_path):
    g = torch.Generator().manual_seed(2)
    a = _folder(tmp_path, "a", _adapter(g))
    b = _folder(tmp_path, "b", _adapter(g))
    summary = soup([a, b], tmp_path / "out")
    cfg = json.loads((tmp_path / "out" / "config.json").read_text(encoding="utf-8"))
    assert [s["adapter"] for s in cfg["soup"]["sources"]] == [str(a), str(b)]
    assert all(len(s["sha256"]) == 64 for s in cfg["soup"]["sources"])
    assert summary["energy_lost"] == cfg["soup"]["energy_lost"]
    st = safetensors_torch.load_file(str(tmp_path / "out" / "adapter.safetensors"))
    assert set(st) == {KA, KB, "marker_emb"}


def test_soup_refuses_adapters_of_different_runs(tmp_path):
    g = torch.Generator().manual_seed(3)
    a = _folder(tmp_path, "a", _adapter(g))
    b = _folder(tmp_path, "b", _adapter(g), markers={"⟦": 7})
    with pytest.raises(BiotagError, match="marker_ids"):
        soup([a, b], tmp_path / "out")
    c = _folder(tmp_path, "c", _adapter(g, r=3), r=3)
    with pytest.raises(BiotagError, match="rank"):
        soup([a, c], tmp_path / "out")
    with pytest.raises(BiotagError, match="at least two"):
        soup([a], tmp_path / "out")
