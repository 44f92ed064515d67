"""rocm_visible: ROCR_VISIBLE_DEVICES, then HIP_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES, as the
ROCm runtimes read them (RvdFilter in rocr-runtime, Device::init in ROCm/clr)."""

from __future__ import annotations

import pytest

from carbonwrap.sensors.gpu import GpuInfo
from carbonwrap.sensors.rocm_visible import empty_variable, select_amd_cards, visible_indices

# Four GPUs as amdsmi lists them: (amdsmi index, ROCr UUID). GPU 3 has no unique id.
UUIDS = [
    (0, "GPU-babababababababa"),
    (1, "GPU-abbaabbaabbaabba"),
    (2, "GPU-babaabbaabbababa"),
    (3, ""),
]


def visible(environ: dict[str, str]) -> tuple[list[int], list[str]]:
    notes: list[str] = []
    return visible_indices(environ, UUIDS, notes), notes


def test_no_variable_shows_every_gpu_without_a_note() -> None:
    assert visible({}) == ([0, 1, 2, 3], [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", [2]),
        ("3,1", [3, 1]),  # ROCr reorders
        (" 1 , 2 ", [1, 2]),  # tokens are trimmed
        ("0x2", [2]),  # strtol base 0
        ("3,GPU-BABABABABABABABA,4", [3, 0]),  # the RvdFilter header's example B
        ("1,GPU-ABBAABBAABBAABBA,GPU-XX", [1]),  # example C: a repeat ends the list
        ("3,GPU-babaabba,GPU-XX", [3, 2]),  # example D: a unique prefix, any case
        ("GPU-BABA", []),  # matches GPUs 0 and 2: ambiguous, ends the list
        ("-1", []),
        ("1,0,2,3,0", [1, 0, 2, 3]),  # tokens beyond the number of GPUs are ignored
        ("1,,2", [1]),
        ("08", []),  # strtol stops at 8 in an octal number: not the whole token
    ],
)
def test_rocr_visible_devices(value: str, expected: list[int]) -> None:
    assert visible({"ROCR_VISIBLE_DEVICES": value})[0] == expected


def test_rocr_notes_what_it_narrowed_and_where_it_stopped() -> None:
    indices, notes = visible({"ROCR_VISIBLE_DEVICES": "2,7,1"})
    assert indices == [2]
    assert notes == [
        "ROCR_VISIBLE_DEVICES entry '7' names no further GPU here: ROCr ignores it and every "
        "entry after it",
        "ROCR_VISIBLE_DEVICES='2,7,1': the command sees GPU(s) 2",
    ]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HIP_VISIBLE_DEVICES": "2,0"}, [2, 0]),
        ({"HIP_VISIBLE_DEVICES": "1,1,3"}, [1, 3]),  # HIP skips a repeat and goes on
        ({"HIP_VISIBLE_DEVICES": "1,"}, [1]),  # a trailing comma adds nothing
        ({"HIP_VISIBLE_DEVICES": "01"}, []),  # an index must read back as written
        ({"HIP_VISIBLE_DEVICES": " 1"}, []),
        ({"HIP_VISIBLE_DEVICES": "GPU-abbaabba"}, [1]),  # within the agent's lower-case UUID
        ({"HIP_VISIBLE_DEVICES": "GPU-ABBAABBA"}, []),  # case-sensitive, unlike ROCr
        ({"HIP_VISIBLE_DEVICES": "GPU-baba,3"}, [0, 3]),  # the first match
        ({"CUDA_VISIBLE_DEVICES": "3"}, [3]),
        ({"HIP_VISIBLE_DEVICES": "0", "CUDA_VISIBLE_DEVICES": "3"}, [0]),  # HIP's wins
        # HIP indices count the GPUs ROCr leaves: ROCr shows 3, 2; HIP's 1 is amdsmi's 2.
        ({"ROCR_VISIBLE_DEVICES": "3,2", "HIP_VISIBLE_DEVICES": "1"}, [2]),
        ({"ROCR_VISIBLE_DEVICES": "3,2", "CUDA_VISIBLE_DEVICES": "2"}, []),
        ({"GPU_DEVICE_ORDINAL": "1"}, [0, 1, 2, 3]),  # OpenCL's only
    ],
)
def test_hip_visible_devices_over_what_rocr_leaves(
    environ: dict[str, str], expected: list[int]
) -> None:
    assert visible(environ)[0] == expected


def test_both_layers_are_named_in_the_note() -> None:
    indices, notes = visible({"ROCR_VISIBLE_DEVICES": "3,2", "HIP_VISIBLE_DEVICES": "1,5"})
    assert indices == [2]
    assert notes == [
        "HIP_VISIBLE_DEVICES entry '5' names no GPU among those ROCr shows: HIP ignores it and "
        "every entry after it",
        "ROCR_VISIBLE_DEVICES='3,2' and HIP_VISIBLE_DEVICES='1,5': the command sees GPU(s) 2",
    ]


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({}, None),
        ({"ROCR_VISIBLE_DEVICES": ""}, "ROCR_VISIBLE_DEVICES"),
        ({"ROCR_VISIBLE_DEVICES": "  "}, "ROCR_VISIBLE_DEVICES"),
        ({"HIP_VISIBLE_DEVICES": ""}, "HIP_VISIBLE_DEVICES"),
        ({"CUDA_VISIBLE_DEVICES": ""}, "CUDA_VISIBLE_DEVICES"),
        ({"HIP_VISIBLE_DEVICES": "0", "CUDA_VISIBLE_DEVICES": ""}, None),  # CUDA's is unread
        ({"ROCR_VISIBLE_DEVICES": "0", "HIP_VISIBLE_DEVICES": "0"}, None),
    ],
)
def test_an_empty_variable_means_no_gpu(environ: dict[str, str], name: str | None) -> None:
    assert empty_variable(environ) == name
    if name is not None:
        assert visible(environ)[0] == []


def card(position: int, uuid: str = "") -> GpuInfo:
    bus_id = f"0000:{position + 3:02x}:00.0"
    return GpuInfo(
        position, "AMD Radeon", uuid or bus_id, "hwmon-power", vendor="amd", pci_bus_id=bus_id
    )


def test_select_amd_cards_for_the_drm_sensor() -> None:
    cards = [card(0), card(1, "GPU-00000000000000ab"), card(2)]
    assert select_amd_cards(cards, {}) == cards
    assert select_amd_cards(cards, {"HIP_VISIBLE_DEVICES": "2,0"}) == [cards[2], cards[0]]
    assert select_amd_cards(cards, {"ROCR_VISIBLE_DEVICES": "GPU-00000000000000AB"}) == [cards[1]]
    assert select_amd_cards(cards, {"ROCR_VISIBLE_DEVICES": "0000:03"}) == []  # a bus id: no
    assert select_amd_cards(cards, {"CUDA_VISIBLE_DEVICES": ""}) == []
    notes: list[str] = []
    assert select_amd_cards(cards, {"ROCR_VISIBLE_DEVICES": "1"}, notes) == [cards[1]]
    assert notes == ["ROCR_VISIBLE_DEVICES='1': the command sees GPU(s) 1"]
