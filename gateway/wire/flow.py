"""HTTP/2 flow control of every gRPC port and channel of a gateway: a fixed window per stream.

gRPC grows a stream's receive window from its bandwidth-delay estimate (BDP probing). On
loopback and LAN links the estimate runs to tens of MiB, and a gateway that passes a stream on
more slowly than it arrives (an attachment upload waits for each chunk's JetStream ack) then
holds that much of the stream in gRPC's buffers: a 100 MiB upload grew the sending gateway by
15 to 90 MiB from run to run. A fixed 4 MiB window bounds what one stream can hold, and still
allows 80 MiB/s per stream over a 50 ms round trip; the upload took the same time as with BDP
probing (``tests/integration/test_delivery_large.py`` prints both figures).
"""

from __future__ import annotations

from typing import Any

STREAM_WINDOW_BYTES = 4 * 1024 * 1024

FLOW_CONTROL: list[tuple[str, Any]] = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
]
