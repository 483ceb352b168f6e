import { defineConfig } from "vite";

// `npm run dev` proxies the API to a running local gateway (CHAT_API, default
// http://127.0.0.1:3000, as tools/run-local.sh serves it), so the page's defaults (the API at its
// own origin, the socket at /local) work from vite's server as from the gateway.
const api = process.env.CHAT_API ?? "http://127.0.0.1:3000";
const proxied = ["/_local", "/me", "/users", "/conversations", "/realtime"];

export default defineConfig({
  // Relative asset paths: the built page works from the local gateway's `/` and from any other
  // origin or path it is copied to (the deployed-stack mode).
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
  },
  server: {
    host: "127.0.0.1",
    proxy: {
      ...Object.fromEntries(proxied.map((path) => [path, { target: api }])),
      "/local": { target: api.replace(/^http/, "ws"), ws: true },
    },
  },
});
