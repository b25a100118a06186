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
#: A bidirectional layer (``rtl.network.BiLayer``) beyond its cells' own timing: from its last input
#: element to its cells' first x element (the buffer readers start, then the buffer read), and from the
#: cells' last h element to the first output element (the completion check and phase change, then the
#: output memory read).
BIDIR = 5
