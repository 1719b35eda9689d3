"""Security primitives: keys, PKI, message signing, body encryption, replay, tokens."""
