"""The host side of the board's UART link: the byte protocol (:mod:`host.protocol`) and the driver built on it."""
