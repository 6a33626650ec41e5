import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The UI is served by `dself serve` from web/dist; relative asset paths keep it working under
// any mount point. `npm run dev` proxies /api (REST, SSE and the live WebSocket) to a local
// `dself serve` on port 8080.
export default defineConfig({
  base: "./",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true, changeOrigin: true } },
  },
});
