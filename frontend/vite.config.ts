/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The build goes into the Python package, which serves it (app.main: app.frontend).
export default defineConfig({
  plugins: [react()],
  build: { outDir: "../app/web", emptyOutDir: true },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000", "/media": "http://127.0.0.1:8000" },
  },
  // The dashboard's logic (formatting, progress, budget shares, preview, messages): plain
  // functions, tested without a browser.
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
