"""ze_visible_cards: ZE_AFFINITY_MASK as Intel's Level Zero runtime (compute-runtime) reads it."""

from __future__ import annotations

import pytest

from carbonwrap.sensors.ze_visible import ze_visible_cards

PCI_ORDER = {"ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}


def visible(mask: str | None, tiles: list[int], **environ: str) -> tuple[list[int], list[str]]:
    notes: list[str] = []
    env = {**PCI_ORDER, **environ}
    if mask is not None:
        env["ZE_AFFINITY_MASK"] = mask
    return ze_visible_cards(env, tiles, notes), notes


@pytest.mark.parametrize("mask", [None, "", "  ", "default"])
def test_unset_empty_or_default_shows_every_card(mask: str | None) -> None:
    assert visible(mask, [1, 1, 1]) == ([0, 1, 2], [])


def test_indices_name_cards_in_order_without_repeats() -> None:
    assert visible("2,0,2", [1, 1, 1]) == ([0, 2], [])


def test_flat_hierarchy_counts_tiles() -> None:
    """FLAT (the default): each tile of a two-tile card is a device of its own."""
    assert visible("2", [2, 2])[0] == [1]  # device 2 is card 1's first tile
    assert visible("0,1", [2, 2])[0] == [0]  # both tiles of card 0
    assert visible("3", [2, 2], ZE_FLAT_DEVICE_HIERARCHY="COMBINED")[0] == [1]


def test_composite_hierarchy_counts_cards_and_sub_devices() -> None:
    env = {"ZE_FLAT_DEVICE_HIERARCHY": "composite"}
    assert visible("1", [2, 2], **env)[0] == [1]
    assert visible("0.1", [2, 2], **env)[0] == [0]  # tile 1 of card 0: its whole card
    assert visible("2", [2, 2], **env)[0] == []  # only two devices in COMPOSITE


def test_unknown_entries_skipped_and_said() -> None:
    chosen, notes = visible("abc,1,9", [1, 1])
    assert chosen == [1]
    assert notes == [
        "ZE_AFFINITY_MASK entry 'abc' names no Intel GPU here: ignored",
        "ZE_AFFINITY_MASK entry '9' names no Intel GPU here: ignored",
    ]


def test_several_cards_without_pci_order_warn() -> None:
    notes: list[str] = []
    assert ze_visible_cards({"ZE_AFFINITY_MASK": "0"}, [1, 1], notes) == [0]
    assert len(notes) == 1
    assert "ZE_ENABLE_PCI_ID_DEVICE_ORDER=1" in notes[0]
    quiet: list[str] = []
    ze_visible_cards({"ZE_AFFINITY_MASK": "0"}, [1], quiet)  # one card: no ambiguity
    assert quiet == []
