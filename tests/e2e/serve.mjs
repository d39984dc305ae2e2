// Serves TandemX under `wrangler dev` for a test process in another language.
//
//   node tests/e2e/serve.mjs [KEY=VALUE ...]    (KEY=VALUE become `wrangler dev --var`s)
//
// Prints `READY <http url>` when the server answers /health, then `TOKEN <jwt>`: an owner
// token for every room of the development project. Reads commands on stdin, one per
// line: `restart` (stop gracefully, start again on the same storage; prints READY again) and
// `kill9` (SIGKILL the runtime, then start again; prints READY). Stops when stdin closes.

import readline from 'node:readline'
import { startServer } from './server.mjs'

const vars = Object.fromEntries(process.argv.slice(2).map((kv) => {
  const i = kv.indexOf('=')
  return [kv.slice(0, i), kv.slice(i + 1)]
}))

let server = await startServer({ vars })
announce()

/** Prints the server's URL, then an owner token valid for every room of the dev project. */
function announce () {
  console.log(`READY ${server.url}`)
  console.log(`TOKEN ${server.token}`)
}

const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  const command = line.trim()
  if (command === 'restart') {
    server = await server.restart()
  } else if (command === 'kill9') {
    await server.kill9()
    server = await server.restart()
  } else {
    console.log(`ERROR unknown command ${command}`)
    continue
  }
  announce()
}
await server.stop()
process.exit(0)
