"""The Crossway gateway (security server): client side, provider side, transport, security, audit."""
