import { defineConfig } from "vitest/config";

// Vite serves and builds ui/; Tauri loads ui/dist (tauri.conf.json build.frontendDist).
export default defineConfig({
  root: __dirname,
  clearScreen: false,
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  server: { port: 5173, strictPort: true },
  build: { outDir: "dist", emptyOutDir: true, target: "es2021", chunkSizeWarningLimit: 800 },
  test: { environment: "happy-dom", include: ["src/**/*.test.ts", "src/**/*.test.tsx"] },
});
