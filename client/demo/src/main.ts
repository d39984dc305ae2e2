// Entry point: the landing page (create a room, or join one by link) or, when the URL names a
// room and we know who the user is, the board.

import './styles.css'
import { openBoard } from './board.js'
import {
  COLORS,
  ROLES,
  newRoomName,
  pageIdentity,
  roomFromInput,
  saveIdentity,
  serverUrl,
  type Identity
} from './identity.js'
import type { Role } from '../../src/index.js'

const params = new URLSearchParams(location.search)
const server = serverUrl(params)
const roomParam = params.get('room')
const identity = pageIdentity(params)

function go (room: string, me: Identity): void {
  saveIdentity(me)
  const url = new URL(location.href)
  url.search = ''
  url.searchParams.set('room', room)
  if (params.get('server') !== null) url.searchParams.set('server', server)
  history.pushState(null, '', url)
  openBoard(server, room, me)
}

function landing (): void {
  const form = document.querySelector<HTMLFormElement>('#signin')!
  const name = form.querySelector<HTMLInputElement>('#name')!
  const role = form.querySelector<HTMLSelectElement>('#role')!
  const swatches = form.querySelector<HTMLElement>('#swatches')!
  const join = form.querySelector<HTMLInputElement>('#join-input')!
  const error = document.querySelector<HTMLElement>('#join-error')!
  let color = identity?.color ?? COLORS[Math.floor(Math.random() * COLORS.length)]

  name.value = identity?.name ?? ''
  for (const r of ROLES) role.add(new Option(r, r, false, r === (identity?.role ?? 'editor')))
  for (const c of COLORS) {
    const b = document.createElement('button')
    b.type = 'button'
    b.className = 'swatch'
    b.style.background = c
    b.setAttribute('aria-label', `colour ${c}`)
    b.setAttribute('aria-pressed', String(c === color))
    b.addEventListener('click', () => {
      color = c
      for (const s of swatches.children) s.setAttribute('aria-pressed', String(s === b))
    })
    swatches.appendChild(b)
  }
  if (roomParam !== null) {
    join.value = roomParam
    document.querySelector<HTMLElement>('#landing-title')!.textContent = `Join “${roomParam}”`
  }

  const me = (): Identity | null => {
    const n = name.value.trim()
    if (n === '') {
      name.focus()
      name.reportValidity()
      return null
    }
    return { name: n.slice(0, 40), color, role: role.value as Role }
  }
  document.querySelector('#create')!.addEventListener('click', () => {
    const who = me()
    if (who !== null) go(newRoomName(), who)
  })
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const who = me()
    if (who === null) return
    const room = roomFromInput(join.value)
    if (room === null) {
      error.textContent = 'Paste a board link, or a room name (letters, digits and . _ ~ - :).'
      join.focus()
      return
    }
    go(room, who)
  })
  name.focus()
}

window.addEventListener('popstate', () => location.reload())

if (roomParam !== null && identity !== null && roomFromInput(roomParam) !== null) {
  openBoard(server, roomParam, identity)
} else {
  landing()
}
