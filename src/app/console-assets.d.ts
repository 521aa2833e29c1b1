// Type of the module scripts/build-console.mjs generates (src/app/console-assets.ts, not
// committed), so `tsc --noEmit` passes on a fresh clone before `npm run build:console`.
/** The web console's files by URL path ("/", "/console/app.js", "/console/app.css"). */
export declare const CONSOLE_ASSETS: Record<string, { type: string; body: string; etag: string }>;
