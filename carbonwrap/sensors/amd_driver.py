"""amdsmi's import, where the amdgpu driver is present (`gpu_markers.amd_driver_present`)."""

from __future__ import annotations

import io
import os

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.gpu_markers import amd_driver_present, no_amd_driver_reason

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

INSTALL_HINT = (
    "the amdsmi Python package is not installed: install the one of your ROCm release "
    "(python3 -m pip install /opt/rocm/share/amd_smi, or from PyPI `amdsmi` of the same version "
    "as ROCm); no AMD GPU measurement"
)


def load_amdsmi(root: str | os.PathLike[str] = "/") -> Any:
    """The amdsmi module, imported only when GPU measurement is wanted and amdgpu is loaded."""
    if not amd_driver_present(root):
        raise SensorUnavailable(no_amd_driver_reason())
    printed = io.StringIO()  # amdsmi prints to stdout when libamd_smi.so is missing
    try:
        import contextlib  # only where an AMD driver is found

        with contextlib.redirect_stdout(printed):
            import importlib  # only where an AMD driver is found

            module: ModuleType = importlib.import_module("amdsmi")
    except ImportError as exc:
        if exc.name != "amdsmi":
            raise SensorUnavailable(library_mismatch(exc, printed.getvalue())) from exc
        raise SensorUnavailable(INSTALL_HINT) from exc
    except (OSError, AttributeError, KeyError) as exc:
        # OSError: libamd_smi.so not found; AttributeError, KeyError: a package of another
        # ROCm release than the library (as zeus found: ml-energy/zeus zeus/device/gpu/amd.py)
        raise SensorUnavailable(library_mismatch(exc, printed.getvalue())) from exc
    return module


def library_mismatch(exc: BaseException, printed: str) -> str:
    """Why amdsmi cannot be used though installed, and what to do."""
    said = f" ({exc}{'; ' + printed.strip() if printed.strip() else ''})"
    return (
        "the amdsmi Python package cannot use ROCm's libamd_smi.so"
        + said
        + ": install the amdsmi package of your ROCm release (python3 -m pip install "
        "/opt/rocm/share/amd_smi) and make sure ROCm's lib directory is found "
        "(ROCM_PATH, LD_LIBRARY_PATH)"
    )
