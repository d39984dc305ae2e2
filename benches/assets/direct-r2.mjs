// The floor for asset transfers: a worker that puts request bodies straight into the local R2
// binding and streams objects straight back, with nothing else in the way (no auth, no D1, no
// sniffing). scripts/bench assets runs it beside TandemX.
export default {
  async fetch (req, env) {
    const key = new URL(req.url).pathname.slice(1)
    if (req.method === 'PUT') {
      await env.ASSETS.put(key, req.body)
      return new Response('stored', { status: 201 })
    }
    const object = await env.ASSETS.get(key)
    if (!object) return new Response('no such object', { status: 404 })
    return new Response(object.body, { headers: { 'content-length': String(object.size) } })
  }
}
