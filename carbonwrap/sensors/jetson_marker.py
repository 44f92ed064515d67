"""Whether a Jetson's power monitors can be here, from two stat calls (the sensor not loaded)."""

from __future__ import annotations

import os


def jetson_present(sysfs_root: str | os.PathLike[str]) -> bool:
    """Two stat calls: an INA3221 driver (hwmon or NVIDIA's iio) is bound. Not proof of a
    Jetson (the chip is generic): JetsonSensor then checks the device tree."""
    drivers = os.path.join(sysfs_root, "bus", "i2c", "drivers")
    return os.path.isdir(os.path.join(drivers, "ina3221")) or os.path.isdir(
        os.path.join(drivers, "ina3221x")
    )
