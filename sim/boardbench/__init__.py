"""The cocotb simulation of the board top (:class:`rtl.board.BoardLogic`, everything inside the pins) driven
through its UART pins by the host driver (:mod:`host.driver`) over cocotbext-uart.  See
:mod:`sim.boardbench.tests`.
"""
