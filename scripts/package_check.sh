#!/bin/bash
# Builds the Debian package from build/ (CPack), installs it with apt-get (which pulls in the
# runtime dependencies) and checks the installed programs: versions agree with the package,
# the desktop entry, icon and metainfo are in place, gptqw reads the sample model, and the
# window starts offscreen, loads the sample model and quits.
#   scripts/package_check.sh [build-dir] [data-dir]      (root, or sudo, for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${2:-${GPTQW_DATA_DIR:-../shared/data}}
(cd "$build" && cpack -G DEB)
deb=$(ls -t "$build"/gptq-workbench_*.deb | head -1)
echo "package: $deb"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends --reinstall "./$deb"
version=$(dpkg-query -W -f='${Version}' gptq-workbench)
test "$(/usr/bin/gptqw --version)" = "gptqw $version"
test "$(QT_QPA_PLATFORM=offscreen /usr/bin/gptq-workbench --version)" = "GPTQ Workbench $version"
for f in /usr/share/applications/gptq-workbench.desktop \
         /usr/share/icons/hicolor/scalable/apps/gptq-workbench.svg \
         /usr/share/metainfo/io.github.gptq_workbench.metainfo.xml; do
  test -s "$f" || { echo "missing: $f"; exit 1; }
done
grep -q "version=\"$version\"" /usr/share/metainfo/io.github.gptq_workbench.metainfo.xml
/usr/bin/gptqw inspect --model "$data/models/stories260K" > /dev/null
QT_QPA_PLATFORM=offscreen timeout 60 /usr/bin/gptq-workbench --model "$data/models/stories260K" --exit-after-load
echo "package check passed: gptq-workbench $version installed, started, loaded the sample model"
