#!/bin/bash
# Builds the Debian package from build/ (CPack), installs it with apt-get on a fresh Debian 12
# (a minimal debootstrap root, so apt-get itself has to pull in every runtime dependency) and
# checks the installed programs there: versions agree with the package, the desktop entry,
# icon and metainfo are in place, gptqw reads the sample model, and the window starts
# offscreen, loads the sample model and quits.
#   scripts/package_check.sh [build-dir] [data-dir]     fresh root (root; installs debootstrap)
#   GPTQW_PACKAGE_ROOT=host scripts/package_check.sh    install on this machine instead
# The fresh root is plain bookworm (no updates) from the mirror this machine's apt uses, and is
# deleted afterwards (about 100 s and 200 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${2:-${GPTQW_DATA_DIR:-../shared/data}}
(cd "$build" && cpack -G DEB)
deb=$(ls -t "$build"/gptq-workbench_*.deb | head -1)
echo "package: $deb"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

where="a fresh Debian 12 root"
install_on_host() {
  $SUDO apt-get install -y -qq --no-install-recommends --reinstall "./$deb"
  in_root() { bash -c "$1"; }
  model=$data/models/stories260K
}
# Fails only when the root cannot be made (no archive reachable).
make_fresh_root() {
  scripts/apt_install.sh debootstrap
  # The mirror and proxy apt uses here (CI may only reach its own Debian archive).
  local mirror proxy
  mirror=$(apt-get -qq --print-uris download base-files | sed -E "s|^'([^']*)/pool/.*|\1|")
  proxy=$(apt-config dump | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -1)
  root=$(mktemp -d /tmp/gptqw-fresh-root.XXXXXX)
  chmod 755 "$root"  # a root folder others can enter (apt downloads as _apt)
  trap '$SUDO rm -rf --one-file-system "$root"' EXIT
  echo "fresh Debian 12 root in $root from $mirror${proxy:+ via $proxy}"
  if ! $SUDO env ${proxy:+http_proxy=$proxy} debootstrap --variant=minbase bookworm "$root" "$mirror" \
       > "$root.log" 2>&1; then
    tail -5 "$root.log"
    return 1
  fi
  rm -f "$root.log"
  [ -z "$proxy" ] || echo "Acquire::http::Proxy \"$proxy\";" | $SUDO tee "$root/etc/apt/apt.conf.d/01proxy" > /dev/null
}
# A package that does not install there fails the check.
install_in_fresh_root() {
  $SUDO cp "$deb" "$root/tmp/"
  $SUDO mkdir "$root/tmp/stories260K"
  $SUDO cp -r "$data/models/stories260K/." "$root/tmp/stories260K/"
  in_root() { $SUDO chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
                DEBIAN_FRONTEND=noninteractive HOME=/root bash -c "$1"; }
  # No /dev/pts in the root: dpkg writes its log without a pseudo-terminal.
  in_root "apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends /tmp/${deb##*/}"
  model=/tmp/stories260K
}

if [ "${GPTQW_PACKAGE_ROOT:-fresh}" = host ]; then
  where="this machine"
  install_on_host
elif make_fresh_root; then
  install_in_fresh_root
else
  where="this machine: NOT a fresh root, debootstrap failed (log $root.log)"
  echo "package check: debootstrap could not make a fresh root; installing on this machine instead"
  install_on_host
fi

in_root "
set -euo pipefail
version=\$(dpkg-query -W -f='\${Version}' gptq-workbench)
test \"\$(gptqw --version)\" = \"gptqw \$version\"
test \"\$(QT_QPA_PLATFORM=offscreen gptq-workbench --version)\" = \"GPTQ Workbench \$version\"
for f in /usr/share/applications/gptq-workbench.desktop \
         /usr/share/icons/hicolor/scalable/apps/gptq-workbench.svg \
         /usr/share/metainfo/io.github.gptq_workbench.metainfo.xml; do
  test -s \"\$f\" || { echo \"missing: \$f\"; exit 1; }
done
grep -q \"version=\\\"\$version\\\"\" /usr/share/metainfo/io.github.gptq_workbench.metainfo.xml
gptqw inspect --model '$model' > /dev/null
QT_QPA_PLATFORM=offscreen timeout 60 gptq-workbench --model '$model' --exit-after-load
echo \"package check passed: gptq-workbench \$version installed on $where, started, loaded the sample model\"
"
