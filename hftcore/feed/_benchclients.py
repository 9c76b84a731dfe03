"""The bench clients that need optional pieces: hftcore's WebSocket reader (with the
Cython consumer of ``_bench.pyx``) and picows (asyncio)."""

from __future__ import annotations

import asyncio
import time

from hftcore.feed.bench import STAMP_DIGITS, Samples, _Client, summarize


class HftcoreClient(_Client):
    """``hftcore.net.ws`` ``WebSocket.pump`` into :class:`StampConsumer` (nogil, no
    allocation per frame)."""

    name = "hftcore"

    def connect(self):
        from hftcore.errors import ConnectionClosed
        from hftcore.feed._bench import StampConsumer
        from hftcore.net.ws import connect

        self.ws = connect(self.url, timeout=10)
        self.consumer = StampConsumer(self.messages)
        self._closed = ConnectionClosed
        self._timeout = 0.0 if self.spin else self.poll

    def step(self):
        try:
            self.ws.pump(self.consumer, self._timeout, self.spin)
        except self._closed:
            return True
        return self.consumer.done

    def close(self):
        try:
            self.ws.close()
        except Exception:  # the server may have gone already
            pass

    def results(self) -> dict:
        c = self.consumer
        n = c.frames
        out = {"stages": {}}
        if n:
            for stage in ("send_to_recv", "recv_to_frame", "send_to_frame"):
                out["stages"][stage] = summarize(getattr(c, stage))
            out["jitter_ns"] = float(c.jitter.value)
        span = (c.last_ns - c.first_ns) / 1e9
        later = n - c.first_batch
        out["frames"] = n
        out["bad_frames"] = c.bad
        out["messages_per_s"] = later / span if span > 0 and later > 0 else 0.0
        return out


class PicowsClient(_Client):
    """picows (asyncio, C-level framing, one Python callback per frame)."""

    name = "picows"

    def connect(self):
        import picows

        samples: Samples = self.samples
        total = self.messages
        loop = asyncio.new_event_loop()
        self.loop = loop
        self.done = loop.create_future()
        done = self.done
        clock, RT, mono = time.clock_gettime_ns, time.CLOCK_REALTIME, time.monotonic_ns
        TEXT, CLOSE = picows.WSMsgType.TEXT, picows.WSMsgType.CLOSE

        class Listener(picows.WSListener):
            def on_ws_frame(self, transport, frame):
                now = clock(RT)
                if frame.msg_type is TEXT:
                    m = mono()
                    if samples.frames == 0:
                        samples.first_ns, samples.first_batch = m, 1
                    samples.last_ns = m
                    samples.send.append(int(frame.get_payload_as_bytes()[:STAMP_DIGITS]))
                    samples.frame.append(now)
                    samples.frames += 1
                    if samples.frames >= total and not done.done():
                        done.set_result(True)
                elif frame.msg_type is CLOSE and not done.done():
                    done.set_result(True)

            def on_ws_disconnected(self, transport):
                if not done.done():
                    done.set_result(True)

        self.transport, _ = loop.run_until_complete(picows.ws_connect(Listener, self.url))

    def step(self):
        # Run the loop for at most `poll` seconds, then come back to the thread's loop.
        self.loop.run_until_complete(asyncio.wait([self.done], timeout=self.poll))
        return self.done.done()

    def close(self):
        try:
            self.transport.disconnect()
            self.loop.run_until_complete(asyncio.wait_for(self.transport.wait_disconnected(), 2))
        except Exception:  # already gone
            pass
        self.loop.close()


__all__ = ["HftcoreClient", "PicowsClient"]
