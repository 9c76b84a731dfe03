"""Sockets and framing that know no message format: WebSocket, plain TCP and UDP readers
(MoldUDP64 and SoupBinTCP to come), each handing complete messages to a `Consumer` as a
pointer and a length, with the receive timestamps.
"""
