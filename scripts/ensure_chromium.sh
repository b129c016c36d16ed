#!/usr/bin/env bash
# Install Debian's headless Chromium and ChromeDriver for the page test when
# they are missing and this machine can (root + apt-get). Never fails the
# build: the page test skips with a clear reason when they are absent.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: installing chromium and chromium-driver (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 ||
   { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }) ||
    echo "ensure_chromium: could not install chromium; the page test will be skipped"
else
  echo "ensure_chromium: chromium not found and cannot install it here (needs root and apt-get); the page test will be skipped"
fi
exit 0
