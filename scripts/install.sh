#!/usr/bin/env bash
# Installs Vantage as a system service: the binary, a configuration, a systemd unit with a dedicated user and
# hardening, log rotation, the manual pages and shell completions.
#
# Usage: scripts/install.sh [--binary PATH] [--root DIR] [--no-start] [--no-manual]
#   --binary PATH  install this binary (default: a release build, scripts/build-release.sh)
#   --root DIR     stage everything under DIR (for packages and tests): no user, no systemctl
#   --no-start     install and enable, but do not start
#   --no-manual    skip the manual pages (generating them builds the package's tools once)
#
# Layout: /usr/local/bin/vantage, /etc/vantage/vantage.yaml (kept when it exists), /srv/www/vantage (the sample
# site), /etc/systemd/system/vantage.service, /etc/logrotate.d/vantage, /usr/local/share/man/man1/vantage*.1,
# bash/zsh/fish completions; state in /var/lib/vantage (systemd StateDirectory), logs in /var/log/vantage.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
root=""
start=1
manual=1
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --no-start) start=0; shift ;;
    --no-manual) manual=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or with --root DIR to stage the files)" >&2
  exit 1
fi
if [ -z "$binary" ]; then binary="$(scripts/build-release.sh)"; fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

bindir=/usr/local/bin
config=/etc/vantage/vantage.yaml
www=/srv/www/vantage
install -d "$root$bindir" "$root/etc/vantage" "$root$www" "$root/etc/systemd/system" "$root/etc/logrotate.d" \
  "$root/usr/local/share/man/man1" "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"
install -m 0755 "$binary" "$root$bindir/vantage"

# The sample configuration with the service's paths (relative paths in it are taken from /etc/vantage).
if [ ! -e "$root$config" ]; then
  sed -e "s#root: ../public .*#root: $www#" \
      -e "s#dir: ../data/spool .*#dir: /var/lib/vantage/spool    \# the service's StateDirectory#" \
      -e "s#^access_log: stdout .*#access_log: /var/log/vantage/access.log   \# rotated by /etc/logrotate.d/vantage#" \
      conf/vantage.yaml > "$root$config"
  chmod 0640 "$root$config"
  cp -R public/. "$root$www/"
fi
sed -e "s#@BINARY@#$bindir/vantage#g" -e "s#@CONFIG@#$config#g" conf/systemd/vantage.service \
  > "$root/etc/systemd/system/vantage.service"
install -m 0644 conf/systemd/vantage.logrotate "$root/etc/logrotate.d/vantage"

# Manual pages from the command-line definitions (swift-argument-parser's generate-manual), when it builds here.
if [ "$manual" = 1 ]; then
  if swift package --allow-writing-to-package-directory generate-manual --multi-page >/dev/null 2>&1; then
    find .build/plugins/GenerateManual/outputs/vantage -name 'vantage*.1' -exec install -m 0644 {} "$root/usr/local/share/man/man1/" \;
  else
    echo "install.sh: the manual pages could not be generated (swift package generate-manual); continuing without" >&2
  fi
fi
"$binary" --generate-completion-script bash > "$root/usr/share/bash-completion/completions/vantage"
"$binary" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_vantage"
"$binary" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/vantage.fish"

if [ -n "$root" ]; then
  echo "staged under $root"
  exit 0
fi
if ! id vantage >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/vantage --no-create-home --shell /usr/sbin/nologin vantage
fi
chgrp vantage "$config"
systemctl daemon-reload
if [ "$start" = 1 ]; then
  systemctl enable --now vantage
  echo "vantage is running: systemctl status vantage; the configuration is $config (systemctl reload vantage after a change)"
else
  systemctl enable vantage
  echo "installed; start with: systemctl start vantage"
fi
