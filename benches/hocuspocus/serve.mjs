// Hocuspocus (@hocuspocus/server 3.4.0, the last release that runs on Node 20) as a benchmark
// column: no authentication hook, and documents kept in memory by the usual persistence hooks
// (stored when Hocuspocus stores them, at the latest when the last client leaves, and loaded
// from there), so a document outlives its connections as on the reference server and is gone
// when the process stops.
//
//   HOST=127.0.0.1 PORT=<port> node benches/hocuspocus/serve.mjs
import { Server } from '@hocuspocus/server'
import * as Y from 'yjs'

const stored = new Map()
const server = new Server({
  address: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 1234),
  quiet: true,
  async onLoadDocument ({ documentName, document }) {
    const state = stored.get(documentName)
    if (state) Y.applyUpdate(document, state)
    return document
  },
  async onStoreDocument ({ documentName, document }) {
    stored.set(documentName, Y.encodeStateAsUpdate(document))
  }
})
await server.listen()
console.log(`READY ws://${server.configuration.address}:${server.configuration.port}`)
