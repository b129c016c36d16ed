#!/usr/bin/env bash
# Put the JavaScript the rendered book loads into _vendor/, so that every page works
# when it is opened from disk with no network: MathJax (the equations), RequireJS and
# the Jupyter widgets HTML manager (the saved widget views). _config.yml serves
# _vendor/ as part of the book's _static/ (html_static_path, mathjax_path,
# nb_ipywidgets_js); book/_ext/offline_assets.py stops the build when it is missing.
#
# The files come from the npm registry through npm itself (`npm pack`: the package's
# tarball only, no dependencies, no node_modules), pinned by version and checked
# against the sha512 recorded below. Nothing is fetched again while _vendor/.stamp
# matches the pins; to upgrade, change a pin and its hash (`npm pack NAME@VERSION
# --json` prints the integrity) and run `make assets`.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=_vendor
PINS=(
  "mathjax@3.2.2 sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
  "requirejs@2.3.7 sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw=="
  "@jupyter-widgets/html-manager@1.0.15 sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA=="
)
LAYOUT=1  # bump when the copied files below change
key="$( { printf '%s\n' "${PINS[@]}"; echo "layout $LAYOUT"; } | sha256sum | cut -c1-16)"
if [ -f "$DEST/.stamp" ] && [ "$(cat "$DEST/.stamp")" = "$key" ]; then exit 0; fi

die() { echo "ensure_assets: $*" >&2; exit 1; }
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_assets: installing Debian's npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q npm >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q npm >/dev/null 2>&1; } ||
      die "npm is missing and could not be installed; install Node.js and npm, then run 'make assets'"
  else
    die "npm is missing; install Node.js and npm (the book's MathJax and widget scripts come from the npm registry), then run 'make assets'"
  fi
fi

sha512() {  # the npm-style integrity of a file
  node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
}

work="$(mktemp -d "${TMPDIR:-/tmp}/vizlib-assets.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "ensure_assets: fetching the book's JavaScript into $DEST/ (npm pack: ${PINS[*]%% *})"
for pin in "${PINS[@]}"; do
  spec="${pin%% *}"; want="${pin##* }"
  name="${spec%@*}"; name="${name##*/}"
  file="$(cd "$work" && npm pack --silent "$spec" 2>/dev/null | tail -n 1)" || die "npm pack $spec failed (is the npm registry reachable?)"
  [ -f "$work/$file" ] || die "npm pack $spec wrote no tarball"
  got="$(sha512 "$work/$file")"
  [ "$got" = "$want" ] || die "$spec: tarball hash $got differs from the pinned $want"
  mkdir -p "$work/pkg/$name"
  tar -xzf "$work/$file" -C "$work/pkg/$name" --strip-components=1
done

out="$work/out"
mkdir -p "$out/mathjax/output" "$out/requirejs" "$out/html-manager"
# MathJax 3: the combined TeX+MathML -> CommonHTML component, and what it loads on demand
# (TeX extensions, fonts, the menu, accessibility, the other output); not latest.js (a CDN loader)
mj="$work/pkg/mathjax"
cp "$mj/LICENSE" "$mj/es5/tex-mml-chtml.js" "$out/mathjax/"
cp -r "$mj/es5/input" "$mj/es5/a11y" "$mj/es5/ui" "$mj/es5/adaptors" "$mj/es5/sre" "$out/mathjax/"
cp -r "$mj/es5/output/." "$out/mathjax/output/"
cp "$work/pkg/requirejs/require.js" "$out/requirejs/"
# the widgets' embedding bundle and the icon fonts it loads from beside itself
hm="$work/pkg/html-manager/dist"
cp "$hm/embed-amd.js" "$hm/embed.js.LICENSE.txt" "$out/html-manager/"
cp "$hm"/*.woff "$hm"/*.woff2 "$hm"/*.ttf "$hm"/*.eot "$hm"/*.svg "$out/html-manager/"
{ echo "Third-party JavaScript served with the book (scripts/ensure_assets.sh; fetched with npm pack):"
  printf '  %s\n' "${PINS[@]}"; } > "$out/VERSIONS.txt"
echo "$key" > "$out/.stamp"

rm -rf "$DEST.new"
cp -r "$out" "$DEST.new"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
echo "ensure_assets: $(du -sh "$DEST" | cut -f1) in $DEST/"
