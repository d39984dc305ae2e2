// A small stand-in for TandemX's signalling hub, for the call SDK's unit tests: `GET /signal`
// with the call-* frames of docs/calls.md (join with a participant limit, signal relayed to one
// participant, state, leave, the SDP check of who may publish, error frames), the exact-ping
// auto-response, and `GET /v1/projects/{project}/ice-servers`. Tokens are plain strings mapped
// to a user, a role and a room pattern; a test can close any connection with a code.

import http from 'node:http'
import { WebSocketServer } from 'ws'

/**
 * @typedef {{ user: string, role: string, rooms?: string }} TokenInfo
 * @param {{ tokens: Record<string, TokenInfo>, limit?: number, viewersPublish?: boolean,
 *   checkMedia?: boolean, iceServers?: object[] | (() => object[]), iceTtl?: number }} opts
 *   `iceServers` may be a function, called per request (fresh credentials each time); `iceTtl`
 *   is the answer's `ttl` in seconds (fractions allowed, for short tests).
 */
export async function startFakeSignal ({ tokens, limit = 8, viewersPublish = false, checkMedia = true, iceServers = [{ urls: ['stun:stun.test:3478'] }], iceTtl = 3600 }) {
  /** Every connection: { id, ws, token, info, publish, frames: string[], calls: Set<string> } */
  const conns = new Map()
  /** Every connection ever made, closed ones included (their frames stay readable). */
  const everyone = []
  /** room -> Map<peer id, { audio, video }> */
  const calls = new Map()
  /** Every ice-servers request: { project, authorization, at (unix ms) } */
  const iceRequests = []
  /** How many of the next ice-servers requests fail with a 503. */
  const ice = { failNext: 0 }
  let nextId = 100

  const server = http.createServer((req, res) => {
    const m = /^\/v1\/projects\/([^/]+)\/ice-servers$/.exec(new URL(req.url, 'http://x').pathname)
    if (req.url === '/') { res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>fake hub</title>'); return } // a page for a browser
    if (m === null) { res.writeHead(404).end(); return }
    const authorization = req.headers.authorization ?? null
    iceRequests.push({ project: decodeURIComponent(m[1]), authorization, at: Date.now() })
    const token = authorization?.replace(/^Bearer /, '')
    if (token === undefined || tokens[token] === undefined) {
      res.writeHead(401, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ title: 'Unauthorized', status: 401 }))
      return
    }
    if (ice.failNext > 0) {
      ice.failNext--
      res.writeHead(503, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ title: 'Unavailable', status: 503 }))
      return
    }
    const list = typeof iceServers === 'function' ? iceServers() : iceServers
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ iceServers: list, ttl: iceTtl, expires_at: Date.now() + iceTtl * 1000 }))
  })
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://x')
    const token = url.searchParams.get('token')
    if (url.pathname !== '/signal' || token === null || tokens[token] === undefined) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, token))
  })

  const covers = (pattern = '*', room) => pattern === '*' || pattern === room || (pattern.endsWith('*') && room.startsWith(pattern.slice(0, -1)))
  const send = (c, frame) => { if (c.ws.readyState === c.ws.OPEN) c.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)) }
  const error = (c, code, message, room, extra = {}) => send(c, { type: 'error', error: code, message, room, ...extra })
  const participant = (c, media) => ({ peer: c.id, user: c.info.user, role: c.info.role, publish: c.publish, audio: media.audio, video: media.video })
  const others = (room, id) => [...(calls.get(room)?.keys() ?? [])].filter((p) => p !== id).map((p) => conns.get(p))

  /** Whether an SDP sends media: an m=audio/video section whose direction includes send. */
  const sendsMedia = (sdp) => {
    const sections = sdp.split(/\r?\n(?=m=)/)
    const session = /a=(sendrecv|sendonly|recvonly|inactive)/.exec(sections[0])?.[1] ?? 'sendrecv'
    return sections.slice(1).some((s) => /^m=(audio|video)/.test(s) &&
      ['sendrecv', 'sendonly'].includes(/a=(sendrecv|sendonly|recvonly|inactive)/.exec(s)?.[1] ?? session))
  }

  const leave = (c, room) => {
    calls.get(room)?.delete(c.id)
    c.calls.delete(room)
    for (const o of others(room, c.id)) send(o, { type: 'call-peer-left', room, peer: c.id })
  }

  function onConnection (ws, token) {
    const info = tokens[token]
    const c = { id: nextId++, ws, token, info, publish: info.role === 'editor' || info.role === 'owner' || viewersPublish, frames: [], calls: new Set() }
    conns.set(c.id, c)
    everyone.push(c)
    ws.on('close', () => {
      for (const room of [...c.calls]) leave(c, room)
      conns.delete(c.id)
    })
    ws.on('message', (data) => {
      const text = data.toString()
      c.frames.push(text)
      if (text === '{"type":"ping"}') { send(c, '{"type":"pong"}'); return }
      let f
      try { f = JSON.parse(text) } catch { error(c, 'bad-json', 'not JSON'); return }
      const room = f.room
      if (typeof room !== 'string') { error(c, 'bad-frame', 'room missing'); return }
      if (!covers(info.rooms, room)) { error(c, 'forbidden-room', 'the token does not cover this room', room); return }
      const call = calls.get(room) ?? new Map()
      calls.set(room, call)
      if (f.type === 'call-join') {
        if (!call.has(c.id) && call.size >= limit) { error(c, 'call-full', `the call has its limit of ${limit} participants`, room, { limit }); return }
        const media = c.publish ? { audio: f.audio === true, video: f.video === true } : { audio: false, video: false }
        const fresh = !call.has(c.id)
        call.set(c.id, media)
        c.calls.add(room)
        const list = [...call.entries()].filter(([p]) => p !== c.id).map(([p, m]) => participant(conns.get(p), m))
        send(c, { type: 'call-joined', room, self: c.id, publish: c.publish, ...media, limit, participants: list })
        for (const o of others(room, c.id)) {
          send(o, fresh ? { type: 'call-peer-joined', room, participant: participant(c, media) } : { type: 'call-peer-state', room, peer: c.id, ...media })
        }
      } else if (!call.has(c.id)) {
        error(c, 'not-in-call', 'join the call first', room)
      } else if (f.type === 'call-signal') {
        const d = f.data
        if (typeof d !== 'object' || d === null || (d.sdp === undefined && d.candidate === undefined)) { error(c, 'bad-frame', 'data neither sdp nor candidate', room); return }
        if (checkMedia && !c.publish && d.sdp !== undefined && sendsMedia(d.sdp.sdp)) { error(c, 'forbidden-media', 'may not send media', room); return }
        if (!call.has(f.to) || f.to === c.id) { error(c, 'no-such-peer', 'no such participant', room); return }
        send(conns.get(f.to), { type: 'call-signal', room, from: c.id, data: d })
      } else if (f.type === 'call-state') {
        if (!c.publish && (f.audio || f.video)) { error(c, 'forbidden-media', 'may not send media', room); return }
        call.set(c.id, { audio: f.audio, video: f.video })
        for (const o of others(room, c.id)) send(o, { type: 'call-peer-state', room, peer: c.id, audio: f.audio, video: f.video })
      } else if (f.type === 'call-leave') {
        send(c, { type: 'call-left', room })
        leave(c, room)
      } else {
        error(c, 'unknown-type', 'unknown type', room)
      }
    })
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    url: `http://127.0.0.1:${port}`,
    iceRequests,
    /** `ice.failNext = n`: the next n ice-servers requests answer 503. */
    ice,
    /** The connection of `user` (the last one made). */
    conn: (user) => everyone.filter((c) => c.info.user === user).at(-1),
    /** Raw frames received from `user`'s connections, oldest first. */
    raw: (user) => everyone.filter((c) => c.info.user === user).flatMap((c) => c.frames),
    /** Frames received from `user`, parsed (pings left out), optionally of one type. */
    frames (user, type) {
      const all = this.raw(user)
      return all.filter((t) => t !== '{"type":"ping"}').map((t) => JSON.parse(t)).filter((f) => type === undefined || f.type === type)
    },
    /** The participants of `room`'s call, by peer id. */
    participants: (room) => [...(calls.get(room)?.keys() ?? [])],
    /** Sends a frame to `user`'s connection as the hub would. */
    sendTo (user, frame) { send(this.conn(user), frame) },
    /** Closes `user`'s connection with `code`. */
    close (user, code, reason = '') { this.conn(user)?.ws.close(code, reason) },
    async stop () {
      for (const c of conns.values()) c.ws.terminate()
      wss.close()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}
