"""Sockets and framing that know no message format: WebSocket, plain TCP and UDP readers,
MoldUDP64 (:mod:`hftcore.net.moldudp64`) and SoupBinTCP (:mod:`hftcore.net.soupbintcp`),
each handing complete messages to a `Consumer` as a pointer and a length, with the
receive timestamps.
"""
