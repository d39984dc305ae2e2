// Launches Debian's Chromium through playwright-core (a devDependency of client/). Never
// downloads a browser: set CHROMIUM to use another binary.

import fs from 'node:fs'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const require = createRequire(new URL('../../client/package.json', import.meta.url))

/** The Chromium binary the tests drive. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

/** Why the browser tests cannot run here, or null when they can. */
export function browserMissing () {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} not found (apt-get install -y chromium)`
  try {
    require.resolve('playwright-core')
  } catch {
    return 'playwright-core is not installed in client/ (npm --prefix client ci)'
  }
  return null
}

/**
 * Launches headless Chromium, with `args` beside the usual flags (e.g. the fake camera and
 * microphone a call test needs).
 * @param {{ args?: string[] }} [opts]
 */
export async function launch ({ args = [] } = {}) {
  const mod = await import(pathToFileURL(require.resolve('playwright-core')).href)
  const { chromium } = mod.chromium !== undefined ? mod : mod.default
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', ...args]
  })
}

/**
 * Bundles `contents` (a module that puts what a page needs on `window`) for a page, resolving
 * imports from `resolveDir`.
 */
export async function pageBundle (contents, resolveDir) {
  const esbuild = await import('esbuild')
  const built = await esbuild.build({
    stdin: { contents, resolveDir },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    logLevel: 'silent'
  })
  return built.outputFiles[0].text
}

/**
 * A page in a browser context of its own (kept in `contexts` for closing), on `url` (the
 * worker's origin, a secure one) with `script` added; its uncaught errors collect in `errors`.
 */
export async function scriptedPage (browser, contexts, url, script) {
  const context = await browser.newContext()
  contexts.push(context)
  const p = await context.newPage()
  p.errors = []
  p.on('pageerror', (err) => p.errors.push(err.message))
  await p.goto(url)
  await p.addScriptTag({ content: script })
  return p
}
