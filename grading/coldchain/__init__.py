"""The cold chain: rooms and their sensors, storage bands, readings history, alarms through the
line's alarm engine (``grading.alarms``), pre-cooling and each lot's residence in the rooms.

Device I/O is not here: readings arrive from ``drivers/`` (a ``ClimateSensor`` polled by
``drivers.modbus.sensor.SensorPoller``) through ``ColdchainMonitor.on_reading``.
"""
