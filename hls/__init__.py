"""Code and file generators outside the numerics: the HLS-ready C++ reference (:mod:`hls.cpp`,
one step emitter per cell kind in :mod:`hls.kinds`), portable test vectors (:mod:`hls.vectors`)
and the command-line helpers they share (:mod:`hls.cli`).  Reads ``model/`` and the stream words of :mod:`rtl.streams`; never elaborates gateware."""
