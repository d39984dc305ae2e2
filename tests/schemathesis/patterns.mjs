// The patterns of the OpenAPI document, checked with JavaScript's regular expressions (ECMA 262,
// the dialect JSON Schema patterns are written in) against what the server's own rules say of
// the same values: tests/schemathesis/pattern-cases.json, written by `cargo test openapi`.
//
//   node tests/schemathesis/patterns.mjs       (run.mjs runs it first)

import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

const CASES = fileURLToPath(new URL('./pattern-cases.json', import.meta.url))

/** The cases where a pattern and the server's rule disagree. */
export function patternMismatches () {
  const cases = JSON.parse(fs.readFileSync(CASES, 'utf8'))
  return cases.filter(({ pattern, value, accepted }) => new RegExp(pattern, 'u').test(value) !== accepted)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bad = patternMismatches()
  for (const { name, value, accepted } of bad) {
    console.error(`${name}: ${JSON.stringify(value)} is ${accepted ? 'accepted' : 'refused'} by the server, but the pattern says otherwise`)
  }
  console.log(bad.length ? `${bad.length} pattern mismatches` : 'every pattern agrees with the server on every case')
  process.exit(bad.length ? 1 : 0)
}
