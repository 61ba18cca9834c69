"""Modbus devices: register maps from config, typed errors, polling, sensors and the PLC contract."""
