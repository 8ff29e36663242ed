// A Playwright browser server for watcher's `browsers:` (docs/deploy.md, Browser hosts).
//
// Launches this host's Chromium once and serves it to watcher over a WebSocket; each capture
// gets a fresh context in it. Prints the address to give watcher (ws://HOST:PORT/WS_PATH) on
// its first line. The server's Playwright must be the version watcher's client runs (both
// say it: `pip show playwright` there, `npm ls playwright-core` here).
//
// Environment:
//   PLAYWRIGHT_CORE  where playwright-core is (default: resolved by node, `npm i playwright-core@X`)
//   CHROMIUM         the Chromium to launch (default: Playwright's own, `npx playwright install chromium`)
//   HOST, PORT       where to listen (default 127.0.0.1:3000: reach it through an SSH tunnel)
//   WS_PATH          the endpoint's path; a long random one acts as a password, e.g.
//                    WS_PATH=/$(openssl rand -hex 16) (watcher redacts it from its logs)
"use strict";

const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");

// As watcher's own launch (watcher/capture/browser.py): no calls home to Google's services.
const ARGS = [
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--disable-dev-shm-usage",
];

(async () => {
  const args = [...ARGS];
  if (process.getuid && process.getuid() === 0) args.push("--no-sandbox"); // root: no sandbox
  const server = await chromium.launchServer({
    executablePath: process.env.CHROMIUM || undefined,
    headless: true,
    host: process.env.HOST || "127.0.0.1",
    port: Number(process.env.PORT || 3000),
    wsPath: process.env.WS_PATH || undefined,
    args,
  });
  console.log(server.wsEndpoint());
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
})().catch((error) => {
  console.error(`browser server could not start: ${error.message}`);
  process.exit(1);
});
