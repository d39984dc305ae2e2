// The fuzzer's seed corpus: valid y-protocols frames made with real Yjs (sync step 1 and 2,
// updates of every content kind, awareness, query awareness, auth), and frames encoded by hand
// in lib0's format where Yjs would not write them (deeply nested values, awareness floods).
// Everything here is deterministic: fixed client ids, no clock or randomness of its own.

import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'

export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const MSG_AUTH = 2
export const MSG_QUERY_AWARENESS = 3

/** Root types fuzzed content goes to; the honest providers only ever write HONEST_ROOT. */
export const HONEST_ROOT = 'honest'

/** @param {(enc: encoding.Encoder) => void} write */
export function frame (write) {
  const enc = encoding.createEncoder()
  write(enc)
  return encoding.toUint8Array(enc)
}

/** [messageSync, sub, varUint8Array(payload)] */
export function syncFrame (sub, payload) {
  return frame((enc) => {
    encoding.writeVarUint(enc, MSG_SYNC)
    encoding.writeVarUint(enc, sub)
    encoding.writeVarUint8Array(enc, payload)
  })
}

/** A sync Update message carrying a v1 update. */
export const updateFrame = (update) => syncFrame(2, update)

/** [messageAwareness, varUint8Array(update)] */
export function awarenessFrame (payload) {
  return frame((enc) => {
    encoding.writeVarUint(enc, MSG_AWARENESS)
    encoding.writeVarUint8Array(enc, payload)
  })
}

/**
 * An awareness update encoded by hand: `entries` is [clientId, clock, json string].
 * @param {Array<[number, number, string]>} entries
 */
export function awarenessPayload (entries) {
  return frame((enc) => {
    encoding.writeVarUint(enc, entries.length)
    for (const [client, clock, json] of entries) {
      encoding.writeVarUint(enc, client)
      encoding.writeVarUint(enc, clock)
      encoding.writeVarString(enc, json)
    }
  })
}

/** A doc with a fixed client id (so the corpus is the same on every run). */
function docWith (clientId, edit) {
  const doc = new Y.Doc({ gc: false })
  doc.clientID = clientId
  doc.transact(() => edit(doc))
  return doc
}

const update = (doc) => Y.encodeStateAsUpdate(doc)

/**
 * Hand-encoded v1 update of one client's structs, each written by `writeStruct(enc, i)`, and
 * an empty delete set (Yjs `writeStructs` / `UpdateEncoderV1`).
 */
export function structsUpdate (client, count, writeStruct) {
  return frame((enc) => {
    encoding.writeVarUint(enc, 1) // one client
    encoding.writeVarUint(enc, count) // its structs
    encoding.writeVarUint(enc, client)
    encoding.writeVarUint(enc, 0) // first clock
    for (let i = 0; i < count; i++) writeStruct(enc, i)
    encoding.writeVarUint(enc, 0) // delete set: no clients
  })
}

// Struct info bits and content refs (yjs src/structs/Item.js, src/utils/UpdateDecoder.js).
const HAS_PARENT_SUB = 0x20
const CONTENT_JSON = 2
const CONTENT_EMBED = 5
const CONTENT_FORMAT = 6
const CONTENT_TYPE = 7
const CONTENT_ANY = 8
const TYPE_MAP = 1

/** An item whose parent is the root type `root` (no origins), optionally a map entry `key`. */
function writeRootItem (enc, content, root, key) {
  encoding.writeUint8(enc, content | (key === undefined ? 0 : HAS_PARENT_SUB))
  encoding.writeVarUint(enc, 1) // parent given by root type name
  encoding.writeVarString(enc, root)
  if (key !== undefined) encoding.writeVarString(enc, key)
}

/**
 * lib0 `Any` nested `depth` levels (arrays or single-key objects) around null, written
 * iteratively: no encoder recursion, whatever the depth.
 */
export function nestedAnyUpdate (client, depth, shape) {
  return structsUpdate(client, 1, (enc) => {
    writeRootItem(enc, CONTENT_ANY, 'fz-deep', 'k')
    encoding.writeVarUint(enc, 1) // one value
    for (let i = 0; i < depth; i++) {
      if (shape === 'array') {
        encoding.writeUint8(enc, 117) // array
        encoding.writeVarUint(enc, 1)
      } else {
        encoding.writeUint8(enc, 118) // object
        encoding.writeVarUint(enc, 1)
        encoding.writeVarString(enc, 'k')
      }
    }
    encoding.writeUint8(enc, 126) // null
  })
}

/** JSON text nested `depth` levels deep: `[[[…null…]]]` or `{"k":{"k":…}}`. */
export function nestedJson (depth, shape) {
  return shape === 'array'
    ? '['.repeat(depth) + 'null' + ']'.repeat(depth)
    : '{"k":'.repeat(depth) + 'null' + '}'.repeat(depth)
}

/**
 * Deeply nested JSON in the content kinds that carry JSON text: an embed, a formatting
 * attribute, or legacy ContentJSON.
 */
export function nestedJsonUpdate (client, depth, kind, shape) {
  const json = nestedJson(depth, shape)
  return structsUpdate(client, 1, (enc) => {
    if (kind === 'embed') {
      writeRootItem(enc, CONTENT_EMBED, 'fz-deep-text')
      encoding.writeVarString(enc, json)
    } else if (kind === 'format') {
      writeRootItem(enc, CONTENT_FORMAT, 'fz-deep-text')
      encoding.writeVarString(enc, 'bold')
      encoding.writeVarString(enc, json)
    } else {
      writeRootItem(enc, CONTENT_JSON, 'fz-deep', 'k')
      encoding.writeVarUint(enc, 1)
      encoding.writeVarString(enc, json)
    }
  })
}

/** `depth` Y.Maps, each the value "k" of the one before: a chain of nested shared types. */
export function nestedTypesUpdate (client, depth) {
  return structsUpdate(client, depth, (enc, i) => {
    if (i === 0) {
      writeRootItem(enc, CONTENT_TYPE, 'fz-nest', 'k')
    } else {
      encoding.writeUint8(enc, CONTENT_TYPE | HAS_PARENT_SUB)
      encoding.writeVarUint(enc, 0) // parent given by the id of the item holding it
      encoding.writeVarUint(enc, client)
      encoding.writeVarUint(enc, i - 1)
      encoding.writeVarString(enc, 'k')
    }
    encoding.writeVarUint(enc, TYPE_MAP)
  })
}

/** An awareness update announcing `count` client ids at once. */
export function awarenessFloodPayload (clientBase, count, clock = 1) {
  const entries = []
  for (let i = 0; i < count; i++) {
    entries.push([clientBase + i, clock, JSON.stringify({ user: { name: `ghost ${i}`, color: '#aa3344' } })])
  }
  return awarenessPayload(entries)
}

/**
 * The corpus: named valid frames (and a few deliberately invalid classics) whose updates are
 * made by clients `clientBase`, `clientBase + 1`, …
 * @param {number} clientBase
 * @returns {Array<{ name: string, frame: Uint8Array | string }>}
 */
export function buildCorpus (clientBase) {
  let next = clientBase
  const id = () => next++
  const items = []
  const add = (name, f) => items.push({ name, frame: f })

  // Sync step 1: an empty state vector, and the state vector of a doc with content.
  const withText = docWith(id(), (d) => d.getText('fz-text').insert(0, 'state vector'))
  // (y-protocols' writers leave out the message type, as y-websocket writes it first.)
  const sync = (write) => frame((enc) => { encoding.writeVarUint(enc, MSG_SYNC); write(enc) })
  add('step1-empty', sync((enc) => syncProtocol.writeSyncStep1(enc, new Y.Doc())))
  add('step1-doc', sync((enc) => syncProtocol.writeSyncStep1(enc, withText)))
  // Sync step 2 of a doc (what a client answers the server's step 1 with).
  add('step2-text', sync((enc) => syncProtocol.writeSyncStep2(enc, withText, new Uint8Array([0]))))

  // Updates of every content kind.
  add('text-insert', updateFrame(update(docWith(id(), (d) => d.getText('fz-text').insert(0, 'hello fuzz')))))
  add('text-delete', updateFrame(update(docWith(id(), (d) => {
    const t = d.getText('fz-text')
    t.insert(0, 'delete most of this')
    t.delete(2, 12)
  }))))
  add('text-format', updateFrame(update(docWith(id(), (d) => {
    const t = d.getText('fz-rich')
    t.insert(0, 'bold and italic', { bold: true })
    t.format(5, 3, { italic: true, color: '#ff0000' })
  }))))
  add('text-embed', updateFrame(update(docWith(id(), (d) => {
    const t = d.getText('fz-rich')
    t.insert(0, 'see: ')
    t.insertEmbed(5, { image: 'https://example.com/x.png', alt: 'x' })
  }))))
  add('map-primitives', updateFrame(update(docWith(id(), (d) => {
    const m = d.getMap('fz-map')
    m.set('int', 42)
    m.set('neg', -7)
    m.set('float', 3.25)
    m.set('big', 2n ** 60n)
    m.set('str', 'π ∑ 🙂')
    m.set('yes', true)
    m.set('nil', null)
    m.set('bytes', new Uint8Array([1, 2, 3, 255]))
  }))))
  add('map-json', updateFrame(update(docWith(id(), (d) => {
    d.getMap('fz-map').set('json', { a: [1, { b: [true, null, 'x'] }], c: { d: { e: 'deep-ish' } } })
  }))))
  add('map-overwrite-delete', updateFrame(update(docWith(id(), (d) => {
    const m = d.getMap('fz-map')
    m.set('gone', 1)
    m.set('gone', 2)
    m.delete('gone')
  }))))
  add('array-values', updateFrame(update(docWith(id(), (d) => {
    const a = d.getArray('fz-array')
    a.push([1, 'two', { three: 3 }, [4], null, false])
    a.insert(1, ['inserted'])
    a.delete(0, 1)
  }))))
  add('nested-types', updateFrame(update(docWith(id(), (d) => {
    const outer = d.getMap('fz-map')
    const list = new Y.Array()
    outer.set('list', list)
    const inner = new Y.Map()
    list.push([inner])
    const text = new Y.Text()
    inner.set('text', text)
    text.insert(0, 'nested text')
  }))))
  add('xml', updateFrame(update(docWith(id(), (d) => {
    const frag = d.getXmlFragment('fz-xml')
    const p = new Y.XmlElement('p')
    p.setAttribute('class', 'lead')
    const t = new Y.XmlText()
    frag.insert(0, [p])
    p.insert(0, [t])
    t.insert(0, 'xml text', { bold: true })
    const hook = new Y.XmlHook('hook')
    frag.insert(1, [hook])
  }))))
  add('subdoc', updateFrame(update(docWith(id(), (d) => {
    d.getMap('fz-map').set('sub', new Y.Doc({ guid: 'fz-subdoc' }))
  }))))
  add('large-text', updateFrame(update(docWith(id(), (d) => d.getText('fz-text').insert(0, 'lorem ipsum '.repeat(900))))))
  add('many-edits', updateFrame((() => {
    const d = docWith(id(), () => {})
    const updates = []
    d.on('update', (u) => updates.push(u))
    const t = d.getText('fz-text')
    for (let i = 0; i < 200; i++) t.insert(i % 7, String.fromCharCode(97 + (i % 26)))
    return Y.mergeUpdates(updates)
  })()))
  add('update-v2-as-v1', updateFrame(Y.encodeStateAsUpdateV2(docWith(id(), (d) => d.getText('fz-text').insert(0, 'v2')))))
  add('step2-delete-unknown', syncFrame(1, frame((enc) => {
    encoding.writeVarUint(enc, 0) // no structs
    encoding.writeVarUint(enc, 1) // delete set: one client
    encoding.writeVarUint(enc, id())
    encoding.writeVarUint(enc, 1) // one range
    encoding.writeVarUint(enc, 0)
    encoding.writeVarUint(enc, 5)
  })))

  // Awareness: a real Awareness, a removal, and hand-made ones.
  const awDoc = new Y.Doc()
  awDoc.clientID = id()
  const aw = new awarenessProtocol.Awareness(awDoc)
  aw.setLocalState({ user: { name: 'Fuzzy', color: '#33aa77' }, cursor: { anchor: 1, head: 4 } })
  add('awareness', awarenessFrame(awarenessProtocol.encodeAwarenessUpdate(aw, [awDoc.clientID])))
  aw.setLocalState(null)
  add('awareness-null', awarenessFrame(awarenessProtocol.encodeAwarenessUpdate(aw, [awDoc.clientID])))
  aw.destroy()
  add('awareness-bad-json', awarenessFrame(awarenessPayload([[id(), 1, '{"user": ']])))
  add('awareness-empty-json', awarenessFrame(awarenessPayload([[id(), 1, '']])))
  add('awareness-deep-json', awarenessFrame(awarenessPayload([[id(), 1, nestedJson(2000, 'array')]])))

  // Query awareness and auth.
  add('query-awareness', new Uint8Array([MSG_QUERY_AWARENESS]))
  add('auth-denied', frame((enc) => {
    encoding.writeVarUint(enc, MSG_AUTH)
    authProtocol.writePermissionDenied(enc, 'a client claiming denial')
  }))
  add('auth-granted', new Uint8Array([MSG_AUTH, 1]))

  // Classics that must be refused.
  add('unknown-type', new Uint8Array([9, 0]))
  add('unknown-sync-type', new Uint8Array([MSG_SYNC, 7, 0]))
  add('empty', new Uint8Array(0))
  add('text-frame', 'a text frame')
  return items
}

export { Y }
