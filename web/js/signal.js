// The signaling client (docs/signaling.md): one WebSocket, typed messages, candidates
// routed to the publish or subscribe peer connection.
export class Signal extends EventTarget {
  constructor(token) {
    super();
    this.token = token;
    this.pcs = {};
    this.iceServers = [];
  }

  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/signal`;
    this.ws = new WebSocket(url);
    return new Promise((resolve, reject) => {
      this.ws.onopen = () => this.send({ type: "auth", token: this.token });
      this.ws.onerror = () => reject(new Error("signaling connection failed"));
      this.ws.onclose = (e) => this.dispatchEvent(new CustomEvent("closed", { detail: e }));
      this.ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === "ice_servers") {
          this.iceServers = msg.ice_servers;
          resolve(this);
        }
        if (msg.type === "candidate") {
          const pc = this.pcs[msg.leg];
          if (pc) pc.addIceCandidate(msg.candidate).catch(() => {});
          return;
        }
        if (msg.type === "error" && !this.iceServers.length) reject(new Error(msg.message));
        this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
      };
    });
  }

  send(msg) {
    this.ws.send(JSON.stringify({ v: 1, ...msg }));
  }

  once(type) {
    return new Promise((resolve) => this.addEventListener(type, (e) => resolve(e.detail), { once: true }));
  }

  newPeer(leg) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.onicecandidate = (e) => {
      if (e.candidate) this.send({ type: "candidate", leg, candidate: e.candidate.toJSON() });
    };
    this.pcs[leg] = pc;
    return pc;
  }

  /// Sends camera and microphone: we offer, the server answers.
  async publish(stream, onChat) {
    const pc = this.newPeer("publish");
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    this.chat = pc.createDataChannel("chat");
    // The server sends chat, annotations and step cards here when the channel is open:
    // they are dispatched exactly like the same messages from the socket.
    this.chat.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (onChat && msg.type === "chat") onChat(msg);
      else this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
    };
    const answer = this.once("publish_answer");
    await pc.setLocalDescription(await pc.createOffer());
    this.send({ type: "publish", sdp: pc.localDescription.sdp });
    await pc.setRemoteDescription({ type: "answer", sdp: (await answer).sdp });
    // Network change: restart ICE on the same connection and session.
    pc.oniceconnectionstatechange = async () => {
      if (pc.iceConnectionState === "failed" || pc.iceConnectionState === "disconnected") {
        const again = this.once("publish_answer");
        await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
        this.send({ type: "publish", sdp: pc.localDescription.sdp });
        await pc.setRemoteDescription({ type: "answer", sdp: (await again).sdp });
      }
    };
    return pc;
  }

  /// Receives the others' tracks: the server offers, we answer. Calls are coalesced:
  /// one negotiation at a time, and a request that arrives meanwhile runs once after.
  subscribe(onTrack) {
    this.wantSubscribe = true;
    if (this.subscribing) return;
    this.subscribing = true;
    (async () => {
      while (this.wantSubscribe) {
        this.wantSubscribe = false;
        try {
          await this.subscribeOnce(onTrack);
        } catch (e) {
          console.warn("subscribe failed", e);
        }
      }
      this.subscribing = false;
    })();
  }

  async subscribeOnce(onTrack) {
    const dbg = (window.fixlineDebug = window.fixlineDebug || {});
    dbg.subscribes = (dbg.subscribes || 0) + 1;
    dbg.tracks = dbg.tracks || [];
    dbg.states = dbg.states || [];
    if (this.pcs.subscribe) this.pcs.subscribe.close();
    const offer = this.once("subscribe_offer");
    this.send({ type: "subscribe" });
    const { sdp } = await offer;
    const pc = this.newPeer("subscribe");
    pc.ontrack = (e) => {
      window.fixlineDebug.tracks.push(e.track.kind);
      onTrack(e.track, e.streams[0]);
    };
    pc.onconnectionstatechange = () => window.fixlineDebug.states.push(pc.connectionState);
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    this.send({ type: "subscribe_answer", sdp: pc.localDescription.sdp });
    return pc;
  }

  /// Sends a typed message over the data channel when it is open (lower latency for
  /// annotations), else over the socket.
  sendFast(msg) {
    if (this.chat && this.chat.readyState === "open") this.chat.send(JSON.stringify({ v: 1, ...msg }));
    else this.send(msg);
  }

  sendChat(text) {
    if (this.chat && this.chat.readyState === "open") this.chat.send(text);
    else this.send({ type: "chat", text });
  }
}

export async function api(path, { method = "GET", token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body) headers["content-type"] = "application/json";
  const r = await fetch(`/api/v1${path}`, { method, headers, body: body && JSON.stringify(body) });
  const data = r.status === 204 ? null : await r.json();
  if (!r.ok) throw new Error(data?.detail || r.statusText);
  return data;
}
