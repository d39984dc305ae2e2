// The minimap: every node as a dot in its kind's colour, the visible area as a frame. Click or
// drag in it to move the view there.

import { KIND_COLOR, type CanvasView } from './canvas.js'

const SVG_NS = 'http://www.w3.org/2000/svg'
const W = 200
const H = 130

/** Draws the minimap of `canvas` into `host` and keeps it current. */
export function mountMinimap (host: HTMLElement, canvas: CanvasView): void {
  const svg = document.createElementNS(SVG_NS, 'svg')
  svg.setAttribute('class', 'minimap')
  svg.setAttribute('width', String(W))
  svg.setAttribute('height', String(H))
  svg.setAttribute('aria-label', 'minimap')
  host.appendChild(svg)
  let scale = 1
  let ox = 0
  let oy = 0

  const draw = (): void => {
    const view = canvas.visibleWorld()
    const nodes = canvas.nodeList()
    let minX = view.x
    let minY = view.y
    let maxX = view.x + view.w
    let maxY = view.y + view.h
    for (const n of nodes) {
      minX = Math.min(minX, n.x)
      minY = Math.min(minY, n.y)
      maxX = Math.max(maxX, n.x + n.w)
      maxY = Math.max(maxY, n.y + n.h)
    }
    const pad = 40
    minX -= pad
    minY -= pad
    maxX += pad
    maxY += pad
    scale = Math.min(W / (maxX - minX), H / (maxY - minY))
    ox = (W - (maxX - minX) * scale) / 2 - minX * scale
    oy = (H - (maxY - minY) * scale) / 2 - minY * scale
    const parts: string[] = []
    for (const n of nodes) {
      parts.push(`<rect x="${n.x * scale + ox}" y="${n.y * scale + oy}" width="${Math.max(2, n.w * scale)}" height="${Math.max(2, n.h * scale)}" rx="1.5" fill="${KIND_COLOR[n.kind]}"/>`)
    }
    parts.push(`<rect class="viewport" x="${view.x * scale + ox}" y="${view.y * scale + oy}" width="${view.w * scale}" height="${view.h * scale}"/>`)
    svg.innerHTML = parts.join('')
  }

  const jump = (ev: PointerEvent): void => {
    const r = svg.getBoundingClientRect()
    canvas.centerOn((ev.clientX - r.left - ox) / scale, (ev.clientY - r.top - oy) / scale)
  }
  let dragging = false
  svg.addEventListener('pointerdown', (ev) => { dragging = true; svg.setPointerCapture(ev.pointerId); jump(ev) })
  svg.addEventListener('pointermove', (ev) => { if (dragging) jump(ev) })
  svg.addEventListener('pointerup', () => { dragging = false })

  const previous = canvas.onViewChange
  canvas.onViewChange = () => { previous(); draw() }
  draw()
}
