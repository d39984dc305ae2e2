// A small y-websocket server for the SDK's unit tests: speaks the same messages as TandemX
// (sync step 1 on connect, awareness re-broadcast to every connection including the sender,
// permission-denied for read-only connections) and lets a test close connections with a code.

import http from 'node:http'
import { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import * as awarenessProtocol from 'y-protocols/awareness'

/**
 * @param {{ readOnlyTokens?: Set<string>, refuse?: (token: string | null) => boolean }} [opts]
 */
export async function startFakeServer ({ readOnlyTokens = new Set(), refuse = () => false } = {}) {
  const doc = new Y.Doc()
  const awareness = new awarenessProtocol.Awareness(doc)
  awareness.setLocalState(null)
  /** @type {Set<import('ws').WebSocket>} */
  const conns = new Set()
  /** Every upgrade request: { room, token }. */
  const requests = []
  const server = http.createServer((_req, res) => { res.writeHead(426).end() })
  const wss = new WebSocketServer({ noServer: true })

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://x')
    const token = url.searchParams.get('token')
    requests.push({ room: url.pathname.replace(/^\/rooms\//, ''), token })
    if (refuse(token)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/problem+json\r\ncontent-length: 2\r\n\r\n{}')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, token))
  })

  const send = (ws, bytes) => { if (ws.readyState === ws.OPEN) ws.send(bytes) }
  const broadcast = (bytes, except) => { for (const c of conns) if (c !== except) send(c, bytes) }

  doc.on('update', (update, origin) => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 0)
    syncProtocol.writeUpdate(enc, update)
    broadcast(encoding.toUint8Array(enc), origin)
  })

  function onConnection (ws, token) {
    conns.add(ws)
    ws.tandemx = { token, readOnly: readOnlyTokens.has(token) }
    ws.on('close', () => conns.delete(ws))
    ws.on('message', (data) => {
      const decoder = decoding.createDecoder(new Uint8Array(data))
      const type = decoding.readVarUint(decoder)
      const enc = encoding.createEncoder()
      if (type === 0) {
        const syncType = decoding.peekVarUint(decoder)
        if (ws.tandemx.readOnly && syncType !== syncProtocol.messageYjsSyncStep1) {
          // Drop the update and say so, as TandemX does for viewers.
          const denied = encoding.createEncoder()
          encoding.writeVarUint(denied, 2)
          authProtocol.writePermissionDenied(denied, 'read-only')
          send(ws, encoding.toUint8Array(denied))
          return
        }
        encoding.writeVarUint(enc, 0)
        syncProtocol.readSyncMessage(decoder, enc, doc, ws)
        if (encoding.length(enc) > 1) send(ws, encoding.toUint8Array(enc))
      } else if (type === 1) {
        const update = decoding.readVarUint8Array(decoder)
        awarenessProtocol.applyAwarenessUpdate(awareness, update, ws)
        const out = encoding.createEncoder()
        encoding.writeVarUint(out, 1)
        encoding.writeVarUint8Array(out, update)
        broadcast(encoding.toUint8Array(out)) // sender included
      } else if (type === 3) {
        const out = encoding.createEncoder()
        encoding.writeVarUint(out, 1)
        encoding.writeVarUint8Array(out, awarenessProtocol.encodeAwarenessUpdate(awareness, [...awareness.getStates().keys()]))
        send(ws, encoding.toUint8Array(out))
      }
    })
    const step1 = encoding.createEncoder()
    encoding.writeVarUint(step1, 0)
    syncProtocol.writeSyncStep1(step1, doc)
    send(ws, encoding.toUint8Array(step1))
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    doc,
    requests,
    url: `http://127.0.0.1:${port}`,
    connections: () => [...conns],
    /** Closes every connection with `code` (e.g. 4401 "token expired"). */
    closeAll (code, reason = '') { for (const c of conns) c.close(code, reason) },
    /** Drops every connection without a close frame, as a network failure would. */
    dropAll () { for (const c of conns) c.terminate() },
    async stop () {
      for (const c of conns) c.terminate()
      wss.close()
      awareness.destroy()
      doc.destroy()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}
