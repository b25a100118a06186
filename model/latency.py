"""Stage latencies of the gate pipeline, in clock cycles: the one definition the cycle model
(:mod:`model.cycles`), the cell kinds' ``row_to_h`` and the gateware (:mod:`rtl`) all read.

A change here is followed by every consumer: the gateware builds its delay lines
from these numbers and asserts each component's own ``latency`` against them.
"""

#: Issue -> weight/z memory read -> operand registers -> product register -> accumulator (and hold).
LANE = 4
#: Every activation unit: table read, interpolation, mirror (``rtl.activation.ActivationUnit.latency``).
ACT = 3
#: Post-processor: row issue (P0) -> row registers (P1) -> requantized pre-activation (P2) -> into
#: the activation unit (P3).
ROW_TO_ACT = 3
#: Output FIFO (first-word-fall-through, buffered): h register -> element valid on the output stream.
FIFO = 2
#: Input: the vector is usable the cycle after its last element's handshake.
INPUT = 1
