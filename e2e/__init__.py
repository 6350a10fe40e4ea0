"""Browser harness: headless Chromium (the system build, WebGPU on SwiftShader) driving the web runtime through
Playwright. Used by the browser tests in tests/e2e and by `python -m e2e.bench`."""
