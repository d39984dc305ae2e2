// PeerLink, one edge of a call's mesh, on its own: two links wired to each other through a
// queue (as the hub relays call-signal, in order), over the fake peer connections.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PeerLink } from '../lib/call-link.js'
import { createFakeRtc, FakeMediaStream, FakeTrack } from './fake-webrtc.mjs'

async function until (fn, what, timeout = 3000) {
  const start = Date.now()
  while (!fn()) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A newcomer's link and the answerer's, each sending to the other; what each sent, and errors. */
function pair (more = {}) {
  const rtc = createFakeRtc()
  const sent = { newcomer: [], answerer: [] }
  const errors = []
  const failed = { newcomer: 0, answerer: 0 }
  const links = {}
  const make = (name, other) => new PeerLink(name === 'newcomer' ? 2 : 1, {
    PeerConnection: rtc.RTCPeerConnection,
    MediaStream: FakeMediaStream,
    iceServers: [{ urls: ['stun:stun.test:3478'] }],
    local: new FakeMediaStream([new FakeTrack('audio'), new FakeTrack('video')]),
    send: (data) => {
      sent[name].push(data)
      setTimeout(() => { links[other].receive(data).catch((e) => errors.push(e)) }, 0)
    },
    accept: () => true,
    onStream: () => {},
    onFailed: () => { failed[name]++ },
    now: () => Date.now(),
    ...more
  })
  links.newcomer = make('newcomer', 'answerer')
  links.answerer = make('answerer', 'newcomer')
  const offers = (name) => sent[name].filter((d) => d.sdp?.type === 'offer')
  const answers = (name) => sent[name].filter((d) => d.sdp?.type === 'answer')
  const ufrag = (d) => /a=ice-ufrag:(\S+)/.exec(d.sdp.sdp)[1]
  const stable = () => [links.newcomer, links.answerer].every((l) => l.pc.signalingState === 'stable' && l.pc.iceConnectionState === 'connected')
  return { rtc, links, sent, errors, failed, offers, answers, ufrag, stable }
}

test('an ICE restart from the newcomer: a new offer with iceRestart, answered, candidates of the new ufrags applied', async () => {
  const { links, errors, offers, answers, ufrag, stable } = pair()
  await links.newcomer.offer()
  await until(stable, 'the first exchange')
  const servers = [{ urls: ['turn:turn.test:3478'], username: 'u2', credential: 'c2' }]
  links.newcomer.setIceServers(servers)
  assert.deepEqual(links.newcomer.pc.configurations, [{ iceServers: servers, bundlePolicy: 'max-bundle' }])
  await links.newcomer.restart()
  await until(() => answers('answerer').length === 2 && stable(), 'the restart answered')
  assert.deepEqual(links.newcomer.pc.offerOptions, [undefined, { iceRestart: true }])
  assert.notEqual(ufrag(offers('newcomer')[1]), ufrag(offers('newcomer')[0]))
  assert.notEqual(ufrag(answers('answerer')[1]), ufrag(answers('answerer')[0]))
  // The transceivers of the first exchange are kept; each side applied both generations' candidates.
  assert.equal(links.answerer.pc.getTransceivers().length, 2)
  await until(() => links.answerer.pc.candidates.length === 2 && links.newcomer.pc.candidates.length === 2, 'the candidates')
  assert.deepEqual(errors, [])
})

test('an ICE restart from the answerer is answered by the newcomer', async () => {
  const { links, errors, offers, answers, stable } = pair()
  await links.newcomer.offer()
  await until(stable, 'the first exchange')
  await links.answerer.restart()
  await until(() => answers('newcomer').length === 1 && stable(), 'the restart answered')
  assert.equal(offers('answerer').length, 1)
  assert.deepEqual(links.answerer.pc.offerOptions, [{ iceRestart: true }])
  assert.equal(links.newcomer.pc.getTransceivers().length, 2)
  assert.deepEqual(errors, [])
})

test('both restart at once: the newcomer\'s offer wins, the answerer rolls back and answers it', async () => {
  const { links, errors, offers, answers, stable } = pair()
  await links.newcomer.offer()
  await until(stable, 'the first exchange')
  await Promise.all([links.newcomer.restart(), links.answerer.restart()])
  await until(() => answers('answerer').length === 2 && stable(), 'one restart through')
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(offers('newcomer').length, 2)
  assert.equal(offers('answerer').length, 1) // ignored by the newcomer
  assert.equal(answers('newcomer').length, 0)
  assert.ok(stable())
  assert.deepEqual(errors, [])
})

test('a restart before the first exchange: none from the answerer; the newcomer\'s waits for the answer', async () => {
  const { links, errors, offers, answers, stable } = pair()
  await links.answerer.restart()
  assert.equal(offers('answerer').length, 0)
  const first = links.newcomer.offer()
  const again = links.newcomer.restart() // while the first offer is out
  await Promise.all([first, again])
  await until(() => answers('answerer').length === 2 && stable(), 'the first exchange, then the restart')
  assert.deepEqual(links.newcomer.pc.offerOptions, [undefined, { iceRestart: true }])
  assert.deepEqual(errors, [])
})

test('a closed link does nothing more', async () => {
  const { links, offers } = pair()
  await links.newcomer.offer()
  links.newcomer.close()
  links.newcomer.setIceServers([])
  await links.newcomer.restart()
  assert.equal(offers('newcomer').length, 1)
  assert.deepEqual(links.newcomer.pc.configurations, [])
})

test('ICE failed: the newcomer restarts once; a failure the restart does not mend is reported, not restarted again', async () => {
  const { links, errors, failed, offers, answers, stable } = pair()
  await links.newcomer.offer()
  await until(stable, 'the first exchange')
  links.newcomer.pc.fail()
  await until(() => answers('answerer').length === 2 && stable(), 'the restart answered')
  assert.deepEqual(links.newcomer.pc.offerOptions, [undefined, { iceRestart: true }])
  assert.deepEqual(failed, { newcomer: 0, answerer: 0 })
  // Failing again at once (within the backoff): reported, no restart.
  links.newcomer.pc.fail()
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.deepEqual(failed, { newcomer: 1, answerer: 0 })
  assert.equal(offers('newcomer').length, 2)
  assert.deepEqual(errors, [])
})

test('ICE failed and the restart fails too: one restart, then the failure is reported once', async () => {
  const { rtc, links, failed, offers, answers, stable } = pair()
  await links.newcomer.offer()
  await until(stable, 'the first exchange')
  rtc.iceWorks = false
  links.newcomer.pc.fail()
  await until(() => failed.newcomer === 1, 'the report')
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(offers('newcomer').length, 2)
  assert.equal(answers('answerer').length, 2)
  assert.equal(failed.newcomer, 1)
})

test('after the backoff, a new failure gets a restart of its own', async () => {
  let clock = 0
  const { links, failed, answers, stable } = pair({ now: () => clock, restartBackoffMs: 1000 })
  await links.newcomer.offer()
  await until(stable, 'the first exchange')
  links.newcomer.pc.fail()
  await until(() => answers('answerer').length === 2 && stable(), 'the first rescue')
  clock = 1000
  links.newcomer.pc.fail()
  await until(() => answers('answerer').length === 3 && stable(), 'the second rescue')
  assert.deepEqual(failed, { newcomer: 0, answerer: 0 })
})

test('the answerer waits for the newcomer\'s restart: no report when it comes and works, a report when it does not come', async () => {
  const { links, failed, offers, answers, stable } = pair({ restartGraceMs: 60 })
  await links.newcomer.offer()
  await until(stable, 'the first exchange')
  links.answerer.pc.fail()
  links.newcomer.pc.fail()
  await until(() => answers('answerer').length === 2 && stable(), 'the rescue')
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.deepEqual(failed, { newcomer: 0, answerer: 0 })
  assert.equal(offers('answerer').length, 0) // the answerer never offers for a failure
  // Only the answerer's side fails, and no restart comes: reported after the grace.
  links.answerer.pc.fail()
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(failed.answerer, 0)
  await until(() => failed.answerer === 1, 'the report after the grace')
  // Closed before the grace ends: nothing reported.
  const other = pair({ restartGraceMs: 30 })
  await other.links.newcomer.offer()
  await until(other.stable, 'the first exchange')
  other.links.answerer.pc.fail()
  other.links.answerer.close()
  await new Promise((resolve) => setTimeout(resolve, 60))
  assert.equal(other.failed.answerer, 0)
})
