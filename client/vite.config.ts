// Builds the demo app (client/demo) into client/dist, which the worker serves as static assets.
// `npm run dev` serves it with hot reload and forwards rooms, signalling and the API to a local
// TandemX (scripts/dev, http://127.0.0.1:8787; set TANDEMX_URL to use another).
import { defineConfig } from 'vite'

const target = process.env.TANDEMX_URL ?? 'http://127.0.0.1:8787'

export default defineConfig({
  root: 'demo',
  base: '/',
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/rooms': { target, ws: true },
      '/signal': { target, ws: true },
      '/v1': target,
      '/health': target
    }
  }
})
