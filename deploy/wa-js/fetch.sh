#!/bin/sh
# Fetch the pinned @wppconnect/wa-js bundle (Apache-2.0) from npm into deploy/wa-js/wppconnect-wa.js and
# check it against the pinned SHA-256. worker-web refuses a bundle whose hash differs. The bundle is not
# committed (half a megabyte of someone else's build): the image runs this at build time.
# To move to a new version: change VERSION, run this with UPDATE_HASH=1, test, commit both files.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=$(cat "$here/VERSION")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@wppconnect/wa-js@$version" >/dev/null && tar xzf ./*.tgz package/dist/wppconnect-wa.js)
cp "$work/package/dist/wppconnect-wa.js" "$here/wppconnect-wa.js"
if [ "${UPDATE_HASH:-0}" = "1" ]; then
  (cd "$here" && sha256sum wppconnect-wa.js > wppconnect-wa.js.sha256)
fi
(cd "$here" && sha256sum -c wppconnect-wa.js.sha256)
echo "wa-js $version ready in $here/wppconnect-wa.js"
