// The runtime's floor for scripts/bench: one Durable Object per room that relays every sync
// Update frame to the room's other sockets, answers a client's SyncStep1 with an empty
// SyncStep2, and keeps nothing. What TandemX costs above this is its own work (CRDT, log,
// protocol); what this costs is the runtime's (event dispatch, sends).
import { DurableObject } from 'cloudflare:workers'

// y-protocols: [messageSync=0, SyncStep1=0, state vector] and [0, SyncStep2=1, update].
const EMPTY_STEP1 = new Uint8Array([0, 0, 1, 0])
const EMPTY_STEP2 = new Uint8Array([0, 1, 2, 0, 0])

export class Relay extends DurableObject {
  constructor (ctx, env) {
    super(ctx, env)
    this.mode = env.MODE
    this.sockets = new Set()
  }

  async fetch (request) {
    const { 0: client, 1: server } = new WebSocketPair()
    if (this.mode === 'accept') {
      server.accept()
      this.sockets.add(server)
      server.binaryType = 'arraybuffer'
      server.addEventListener('message', (e) => this.onMessage(server, e.data))
      const drop = () => this.sockets.delete(server)
      server.addEventListener('close', drop)
      server.addEventListener('error', drop)
    } else {
      this.ctx.acceptWebSocket(server)
    }
    server.send(EMPTY_STEP1)
    return new Response(null, { status: 101, webSocket: client })
  }

  peers () {
    return this.mode === 'accept' ? this.sockets : this.ctx.getWebSockets()
  }

  onMessage (ws, data) {
    if (typeof data === 'string') return
    const bytes = new Uint8Array(data)
    if (bytes[0] !== 0) return
    if (bytes[1] === 0) {
      ws.send(EMPTY_STEP2)
    } else if (bytes[1] === 2) {
      for (const peer of this.peers()) {
        if (peer !== ws) peer.send(data)
      }
    }
  }

  webSocketMessage (ws, data) { this.onMessage(ws, data) }
  webSocketClose (ws) { ws.close() }
}

export default {
  fetch (request, env) {
    const url = new URL(request.url)
    if (url.pathname === '/health') return new Response('{"relay":"floor","durable_object":true}')
    const room = url.pathname.split('/')[2]
    if (!url.pathname.startsWith('/rooms/') || !room) return new Response('not found', { status: 404 })
    if (request.headers.get('Upgrade') !== 'websocket') return new Response('WebSocket only', { status: 426 })
    return env.ROOMS.get(env.ROOMS.idFromName(room)).fetch(request)
  }
}
