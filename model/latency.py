"""Stage latencies of the gate pipeline, in clock cycles: the one definition the cycle model
(:mod:`model.cycles`), the cell kinds' ``row_to_h`` and the gateware (:mod:`rtl`) all read.

A change here is followed by every consumer: the gateware builds its delay lines
from these numbers and asserts each component's own ``latency`` against them.
"""

#: Issue -> the lane's read address register -> weight/z memory read -> read data register -> operand
#: registers -> product register -> accumulator (and hold).
LANE = 6


def tree(beat: int) -> int:
    """A lane's adder tree for ``beat`` products per cycle (``rtl.mac_lane.MacLane``): one register per
    level of pairwise sums, ``ceil(log2(beat))`` levels, between the product register and the
    accumulator (0 for one product per cycle)."""
    return (beat - 1).bit_length()


def lane(beat: int) -> int:
    """Issue of a row's last z chunk -> its sum in the lane's hold register: ``LANE`` plus the adder tree."""
    return LANE + tree(beat)

#: Several post-processors: a row's sum is chosen out of every lane's hold register in two registered
#: levels (a group of lanes, then the group; ``rtl.cell``), one cycle more than the single choice of one
#: post-processor, whose lanes are few enough for one level.
CHOICE = 1


def choice(posts: int) -> int:
    """Cycles the lane choice adds between a row's hand-over and its post-processor: ``CHOICE`` with
    several post-processors, 0 with one."""
    return CHOICE if posts > 1 else 0


#: Every activation unit: magnitude, table read, interpolation product, interpolation sum, clamp and
#: mirror (``rtl.activation.ActivationUnit.latency``).
ACT = 5
#: Post-processor: row issue (P0) -> row registers (P1) -> the row's memory words (bias, auxiliary, state)
#: registered (P2) -> requantized pre-activation (P3) -> into the activation unit (P4).  A kind whose
#: row sum has a product (the peephole) adds ``PRODUCT``.
ROW_TO_ACT = 4
#: Every post-processor product is registered before anything adds to it or rounds it (the
#: multiplier block's output register), so no clock cycle holds a multiply and a wide add.
PRODUCT = 1
#: Output FIFO (first-word-fall-through, buffered): h register -> element valid on the output stream.
FIFO = 2
#: Input: the vector is usable the cycle after its last element's handshake.
INPUT = 1
#: A bidirectional layer's sequence buffer read (``rtl.network.BiLayer``'s x and output buffers, block RAM
#: when large): the address issued, the memory's synchronous read, then its data registered before any
#: logic uses it.  The register is what keeps an ECP5 block RAM's 5.8 ns clock-to-output alone on its path.
BUFFER_READ = 2
#: A bidirectional layer beyond its cells' own timing: from its last input element to its cells' first x
#: element (the buffer readers start, then the buffer read), and from the cells' last h element to the
#: first output element (the completion check and phase change, then the output buffer read).
BIDIR = 3 + 2 * BUFFER_READ
