"""`report --model-card`: the co2_eq_emissions block, parsed with PyYAML and loaded through
huggingface_hub's ModelCard and ModelCardData (the Hub's fields:
https://huggingface.co/docs/hub/model-cards-co2)."""

from __future__ import annotations

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with huggingface_hub (test extra)")
huggingface_hub = pytest.importorskip("huggingface_hub", reason="in the test extra")

from carbonwrap.render.model_card import grams_text, model_card_yaml  # noqa: E402
from carbonwrap.report.model import Place  # noqa: E402
from carbonwrap.runlog.summary import GpuSummary, RunSummary  # noqa: E402

FIELDS = {"emissions", "source", "training_type", "geographical_location", "hardware_used"}


def run(
    run_id: str, co2e_g: float, host: str = "node1", region: str = "DK-DK1", **tags: str
) -> RunSummary:
    s = RunSummary(run_id=run_id, host=host, co2e_g=co2e_g, region={"code": region})
    s.tags = dict(tags)
    return s


def with_gpus(s: RunSummary, *names: str) -> RunSummary:
    for index, name in enumerate(names):
        s.gpus[index] = GpuSummary(index, name, f"GPU-{s.host}-{index}", methods={"sole": 3})
    s.gpus[len(names)] = GpuSummary(len(names), "unused", methods={"not-in-use": 3})
    return s


PLACES = {"DK-DK1": Place("Denmark", "DNK", "DK-DK1"), "FR": Place("France", "FRA", "")}


def test_the_block_sums_the_runs_and_loads_as_model_card_metadata() -> None:
    runs = [
        with_gpus(run("a", 1200.25, training_type="fine-tuning"), "NVIDIA A100", "NVIDIA A100"),
        with_gpus(run("b", 34.5, host="node2", region="FR"), "NVIDIA A100"),
        with_gpus(run("c", 0.25), "NVIDIA A100", "NVIDIA A100"),  # the same devices as "a"
    ]
    text = model_card_yaml(runs, PLACES, "1.2.3")
    block = yaml.safe_load(text)["co2_eq_emissions"]
    assert set(block) == FIELDS
    assert block["emissions"] == pytest.approx(1235.0)  # grams, all the runs
    assert isinstance(block["emissions"], float)
    assert block["source"] == "carbonwrap 1.2.3"
    assert block["training_type"] == "fine-tuning"
    assert block["geographical_location"] == "Denmark (DK-DK1); France (FR)"
    assert block["hardware_used"] == "3 x NVIDIA A100, CPU and memory of 2 hosts"

    card = huggingface_hub.ModelCard(f"---\n{text}---\n\n# A model\n")
    data = card.data.to_dict()
    assert data["co2_eq_emissions"] == block
    again = huggingface_hub.ModelCardData(co2_eq_emissions=block)
    assert yaml.safe_load(again.to_yaml()) == {"co2_eq_emissions": block}


def test_fields_without_a_value_are_left_out_and_text_stays_one_value() -> None:
    odd = run("x", 0.0000123456, region='zone: "quoted"\n#not a comment')
    block = yaml.safe_load(model_card_yaml([odd], {}, "0.1"))["co2_eq_emissions"]
    assert "training_type" not in block  # no tag: not guessed
    assert block["geographical_location"] == 'zone: "quoted"\n#not a comment'
    assert block["emissions"] == pytest.approx(0.0000123456)
    assert block["hardware_used"] == "CPU and memory of 1 host"


@pytest.mark.parametrize(
    ("grams", "text"),
    [(0.0, "0.0"), (1e-7, "0.000000100000"), (1234.5678, "1234.57"), (2.5e9, "2500000000.0")],
)
def test_grams_are_plain_decimals_that_yaml_reads_as_numbers(grams: float, text: str) -> None:
    assert grams_text(grams) == text
    assert isinstance(yaml.safe_load(f"x: {text}")["x"], float)
