"""A stop that cancels a task waiting on a Modbus reply stops it, even when the reply is there.

Python 3.11's ``asyncio.wait_for``, which pymodbus awaits each reply with, returns the reply
and drops the cancellation when both arrive in one loop turn. The line's PLC poll then polled
on, and ``gradeline run`` did not stop on Ctrl-C (seen in the browser tests' teardown).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse

from drivers.modbus.client import ModbusBus
from drivers.modbus.settings import ModbusTcpTransport


class ReplyRacingTheStop:
    """A connected client whose reply is already in when the task is cancelled; it awaits
    the reply with ``asyncio.wait_for`` as pymodbus does."""

    connected = True

    def __init__(self) -> None:
        self.requests = 0

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any:
        self.requests += 1
        reply = asyncio.get_running_loop().create_future()
        reply.set_result(ReadHoldingRegistersResponse(registers=[7] * count, dev_id=device_id))
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # the stop, in the same loop turn as the reply
        return await asyncio.wait_for(reply, timeout=1.0)

    read_coils = read_discrete_inputs = read_input_registers = read_holding_registers

    def close(self) -> None:
        self.connected = False


def test_a_cancel_that_races_the_reply_still_cancels_the_caller() -> None:
    bus = ModbusBus(ModbusTcpTransport(kind="tcp", host="127.0.0.1"))
    client = ReplyRacingTheStop()
    bus._client = client

    async def poll_until_stopped() -> int:
        polls = 0
        while polls < 100:  # without the fix: 100 polls, each answered, the cancel forgotten
            await bus.read("plc", 1, "holding", 100, 2)
            polls += 1
            await asyncio.sleep(0)
        return polls

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(poll_until_stopped())
    assert client.requests == 1
