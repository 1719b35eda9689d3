"""The wire between gateways: frames, the envelope codec, stream chains, Multiplex and the
pooled mTLS channels. The only part of the gateway that touches the generated peer protobufs."""
