// Signed URLs for `tandemx://asset/…` URIs, for apps that draw documents' images: one request
// per URI until its link nears expiry, shared by concurrent callers.

import { parseAssetUri, type AssetLink, type AssetRoutes, type PreviewFormat, type PreviewWidth } from './assets.js'

/** Options of `createAssetLinks`. */
export interface AssetLinksOptions {
  /** Seconds a link is asked for (default 3600). */
  expiresIn?: number
  /** A link is renewed when it has less than this left (default 300 s). */
  renewBeforeSeconds?: number
  /** The clock (unix ms). */
  now?: () => number
}

/** Signed URLs for asset URIs, cached until shortly before they expire. */
export interface AssetLinks {
  /**
   * A URL for `tandemx://asset/<id>[@<version>]` usable in `<img src>` (a preview when
   * `preview` is given). Rejects for a string that is not an asset URI.
   */
  resolve (uri: string, o?: { preview?: { w: PreviewWidth, format?: PreviewFormat } }): Promise<string>
  /** Forgets every cached link (say, after a sign-in as someone else). */
  clear (): void
}

/** Resolves asset URIs of `project` to signed URLs, one request per URI until it nears expiry. */
export function createAssetLinks (routes: Pick<AssetRoutes, 'signedUrl'>, project: string | (() => Promise<string>), o: AssetLinksOptions = {}): AssetLinks {
  const expiresIn = o.expiresIn ?? 3600
  const renewMs = (o.renewBeforeSeconds ?? 300) * 1000
  const now = o.now ?? Date.now
  const cache = new Map<string, Promise<AssetLink>>()
  const projectOf = async (): Promise<string> => typeof project === 'string' ? project : await project()
  return {
    async resolve (uri, { preview } = {}) {
      const ref = parseAssetUri(uri)
      if (ref === null) throw new RangeError(`not an asset URI: ${uri}`)
      const key = preview === undefined ? uri : `${uri} ${preview.w} ${preview.format ?? 'webp'}`
      const held = cache.get(key)
      if (held !== undefined) {
        const link = await held.catch(() => null)
        if (link !== null && link.expires_at - renewMs > now()) return link.url
        if (cache.get(key) === held) cache.delete(key)
        return await this.resolve(uri, { preview })
      }
      const asked = projectOf().then((p) => routes.signedUrl(p, ref.id, { version: ref.version, expiresIn, preview }))
      cache.set(key, asked)
      // A failure is not kept: the next call asks again.
      asked.catch(() => { if (cache.get(key) === asked) cache.delete(key) })
      return (await asked).url
    },
    clear () { cache.clear() }
  }
}
