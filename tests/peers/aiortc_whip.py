"""An independent WebRTC peer (aiortc) publishing into a live session over WHIP.

    aiortc_whip.py <whip url> <bearer token> <seconds>

Sends a moving VP8 test pattern (encoded by aiortc, i.e. PyAV/libvpx) and prints one
JSON line: the HTTP status, the resource Location, frames sent. Only loopback host
candidates are gathered (aiortc would otherwise drop 127.0.0.1).
"""

import asyncio
import fractions
import json
import sys
import urllib.request

import aioice.ice
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

# aioice leaves loopback out of its host candidates; a loopback-only test needs it.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


class Pattern(VideoStreamTrack):
    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        y, x = np.mgrid[0:240, 0:320]
        img = ((x + y + self.n * 4) % 256).astype(np.uint8)
        frame = VideoFrame.from_ndarray(np.stack([img, img, img], axis=-1), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.n += 1
        return frame


def http(method, url, token, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


async def main():
    url, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    pc = RTCPeerConnection()
    track = Pattern()
    pc.addTrack(track)
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers before returning
    loop = asyncio.get_running_loop()
    status, headers, answer = await loop.run_in_executor(None, http, "POST", url, token, pc.localDescription.sdp.encode())
    out = {"status": status, "location": headers.get("Location") or headers.get("location")}
    if status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.sleep(seconds)
        out["frames"] = track.n
        out["ice"] = pc.iceConnectionState
        base = url.split("/api/")[0]
        out["delete"] = (await loop.run_in_executor(None, http, "DELETE", base + out["location"], token))[0]
    else:
        out["body"] = answer
    await pc.close()
    print(json.dumps(out))


asyncio.run(main())
